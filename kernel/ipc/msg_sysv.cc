// SPDX-License-Identifier: MIT
/*
 * System V message queues with Linux's rules (ipc/msg.c), on kipc
 * mailboxes: a queue is a kernel-owned Mailbox of Flavour::SysV whose id
 * is the msqid (seq * 32768 + index, Linux's scheme) and whose Link holds
 * the messages: every message has priority 0 and its mtype as the kipc
 * message type, so msgtyp selection is KIPC_F_TYPE (0: the first; > 0:
 * the first of that type, or with MSG_EXCEPT of any other; < 0: the
 * first of the lowest type <= |msgtyp|), MSG_NOERROR is KIPC_F_TRUNC.
 *
 * msg_qbytes bounds the bytes queued and, as Linux's msg_fits() does,
 * the number of messages too (link.capacity = link.qbytes). Waiting
 * senders enter in arrival order; a receiver already waiting gets a
 * matching message directly (pipelined_send), and one whose buffer is too
 * small for it fails (E2BIG in the library) while the message goes on.
 * IPC_RMID wakes every waiter with EIDRM. An id that is not a live queue
 * is EINVAL (ipc_obtain_object_check), as is an index without one for
 * MSG_STAT and MSG_STAT_ANY (which take id % 32768, a full id included).
 * IPC_INFO and MSG_INFO return the highest index in use (0 when none).
 *
 * What a user is charged (Documentation/security.md): a queue counts
 * against its creator's mbox_per_user (ENOSPC, as msgmni) and its header
 * (kSysvQueueCost) against the creator's bytes_per_user; each message,
 * payload plus header (kMessageOverhead), against the sender's: a send
 * past it fails ENOMEM (msgsnd(2): no memory for the message) and queues
 * nothing.
 */
#include <algorithm>

#include "ipc.h"

namespace kipc {

/* What a queue costs the kernel besides its messages. */
const uint64_t kSysvQueueCost = sizeof(Mailbox) + sizeof(SysvMsq);

Mailbox *KernelImpl::find_msq(int64_t id, int *err) const
{
	Mailbox *mb = mbox.find(id, err);
	if (!mb || mb->flavour != Flavour::SysV) {
		*err = -EINVAL;
		return nullptr;
	}
	return mb;
}

Mailbox *KernelImpl::find_msq(Task &cur, int64_t id, uint32_t want, int *err) const
{
	Mailbox *mb = find_msq(id, err);
	if (mb && !mbox.ipcperms(cur, *mb, want)) {
		*err = -EACCES;
		return nullptr;
	}
	return mb;
}

/* ipcperms() with msgget's flag: requested bits from all three triads. */
static uint32_t requested(uint32_t flg)
{
	return ((flg >> 6) | (flg >> 3) | flg) & 7;
}

long KernelImpl::do_msgget(Task &cur, int32_t key, uint32_t msgflg)
{
	if (key != 0) { /* IPC_PRIVATE always creates */
		auto it = msg_keys.find(key);
		if (it != msg_keys.end()) {
			if ((msgflg & KIPC_IPC_CREAT) && (msgflg & KIPC_IPC_EXCL))
				return -EEXIST;
			if (!mbox.ipcperms(cur, *it->second, requested(msgflg & 0777)))
				return -EACCES;
			return tracer.opened(*it->second, false);
		}
		if (!(msgflg & KIPC_IPC_CREAT))
			return -ENOENT;
	}
	if (msg_count >= lim.msgmni)
		return -ENOSPC;
	UserAcct &u = user(cur.uid);
	if (u.mailboxes >= lim.mbox_per_user)
		return -ENOSPC;
	if (u.bytes + kSysvQueueCost > lim.bytes_per_user)
		return -ENOMEM;
	LinkAttr la;
	la.qbytes = lim.msgmnb;
	la.capacity = lim.msgmnb; /* msg_fits(): 1 + q_qnum <= q_qbytes */
	la.msgsize = std::max(lim.msgmax, 1u);
	la.fixed = false;
	int err = 0;
	/* msg_next_id, once: the id a checkpoint/restore asked for */
	Mailbox *mb = new_ipc_mailbox(cur, Flavour::SysV, la, msgflg & 0777, &err, msg_next_id);
	if (!mb)
		return err;
	mb->link.quota = true; /* its messages count against the senders' bytes */
	msg_next_id = -1;
	mb->msq = std::make_unique<SysvMsq>();
	mb->msq->key = key;
	u.mailboxes++;
	u.bytes += kSysvQueueCost;
	if (key != 0)
		msg_keys.emplace(key, mb);
	msg_count++;
	return tracer.opened(*mb, true);
}

long KernelImpl::do_msgsnd(Task &cur, int64_t id, MsgArgs &a, kipc_cqe &cqe)
{
	int err;
	Mailbox *q = find_msq(cur, id, kMayWrite, &err);
	if (!q)
		return err;
	Mailbox &mb = *q;
	if (a.len > mb.link.qbytes && a.wait.nonblock)
		return -EAGAIN; /* Linux: it never fits */
	long r = do_send(cur, mb.link, a, cqe);
	cqe.pid = 0;
	return r == -ENOSPC ? -ENOMEM : r; /* the sender's bytes_per_user */
}

/* MSG_COPY: the msgtyp-th message (from 0), left in place. */
static long msg_copy(KernelImpl &k, Task &cur, Mailbox &mb, uint32_t msgflg, MsgArgs &a,
		     kipc_cqe &cqe)
{
	Message *found = nullptr;
	int64_t n = 0;
	mb.link.msgs.for_each([&](Message *m) { /* in delivery order */
		if (n++ == a.type)
			found = m;
	});
	if (!found)
		return -EAGAIN; /* ENOMSG in the library, as without a match */
	if (a.len < found->len && !(msgflg & KIPC_MSG_NOERROR))
		return -EMSGSIZE;
	if (found->len > std::min<uint64_t>(a.len, k.lim.msgmax))
		return -EINVAL; /* copy_msg(): the copy buffer is too small */
	if (cur.mm && cur.mm->copy_to_user(a.addr, found->data, found->len))
		return -EFAULT;
	cqe.len = found->len;
	cqe.type = found->type();
	cqe.pid = found->sender;
	cqe.seq = found->seq;
	return found->len;
}

long KernelImpl::do_msgrcv(Task &cur, int64_t id, uint32_t msgflg, MsgArgs &a, kipc_cqe &cqe)
{
	int err;
	Mailbox *q = find_msq(cur, id, kMayRead, &err);
	if (!q)
		return err;
	Mailbox &mb = *q;
	if (msgflg & KIPC_MSG_COPY)
		return msg_copy(*this, cur, mb, msgflg, a, cqe);
	Selector sel;
	if (a.type != 0) {
		sel.by_type = true;
		sel.type = a.type == INT64_MIN ? -INT64_MAX : a.type;
		sel.except = a.type > 0 && (msgflg & KIPC_MSG_EXCEPT);
	}
	if (msgflg & KIPC_MSG_NOERROR)
		a.flags |= KIPC_F_TRUNC;
	Link *l = &mb.link;
	return do_receive(cur, &l, 1, sel, a, cqe);
}

static void fill_ds(const KernelImpl &k, const Mailbox &mb, kipc_msqid_ds &ds)
{
	const Link &l = mb.link;
	ds = kipc_msqid_ds{};
	ds.key = mb.msq->key;
	ds.uid = mb.uid;
	ds.gid = mb.gid;
	ds.cuid = mb.cuid;
	ds.cgid = mb.cgid;
	ds.mode = mb.mode;
	ds.seq = k.mbox.sysv_ids().seq_of(mb.id);
	ds.stime = l.stime / 1000000000;
	ds.rtime = l.rtime / 1000000000;
	ds.ctime = mb.ctime / 1000000000;
	ds.cbytes = l.msgs.nbytes;
	ds.qnum = l.msgs.nmsg;
	ds.qbytes = l.qbytes;
	ds.lspid = l.lspid;
	ds.lrpid = l.lrpid;
}

void KernelImpl::destroy_msq(Mailbox *mb)
{
	if (auto it = msg_keys.find(mb->msq->key); it != msg_keys.end() && it->second == mb)
		msg_keys.erase(it);
	msg_count--;
	UserAcct &u = user(mb->cuid);
	u.mailboxes--;
	u.bytes -= kSysvQueueCost;
	mbox.destroy_mbox(mb); /* waiters wake with EIDRM */
}

long KernelImpl::do_msgctl(Task &cur, int64_t id, uint32_t cmd, kipc_msqid_ds *ds,
			   kipc_sysv_msginfo *info)
{
	int err;
	Mailbox *mb;
	switch (cmd) {
	case KIPC_IPC_INFO:
	case KIPC_MSG_INFO: {
		*info = kipc_sysv_msginfo{};
		info->msgmax = int32_t(lim.msgmax);
		info->msgmnb = int32_t(lim.msgmnb);
		info->msgmni = int32_t(lim.msgmni);
		info->msgssz = 16;   /* MSGSSZ */
		info->msgseg = 0xffff; /* MSGSEG, capped at 0xffff as Linux's */
		int32_t maxidx = 0, nmsg = 0, nbytes = 0;
		mbox.sysv_ids().for_each([&](const Mailbox *m) {
			maxidx = int32_t(mbox.sysv_ids().idx_of(m->id)); /* in index order */
			nmsg += m->link.msgs.nmsg;
			nbytes += int32_t(m->link.msgs.nbytes);
		});
		if (cmd == KIPC_MSG_INFO) {
			info->msgpool = int32_t(msg_count);
			info->msgmap = nmsg;
			info->msgtql = nbytes;
		} else {
			info->msgpool = int32_t(uint64_t(lim.msgmni) * lim.msgmnb / 1024);
			info->msgmap = int32_t(lim.msgmnb);
			info->msgtql = int32_t(lim.msgmnb);
		}
		return maxidx;
	}
	case KIPC_MSG_STAT:
	case KIPC_MSG_STAT_ANY: {
		/* An index; a full id names its index (ipcid_to_idx(): id % 32768,
		 * or id & 0xffffff with ipcmni_extend) */
		if (id < 0 || !(mb = mbox.sysv_ids().at(mbox.sysv_ids().idx_of(id))))
			return -EINVAL;
		if (cmd == KIPC_MSG_STAT && !mbox.ipcperms(cur, *mb, kMayRead))
			return -EACCES;
		fill_ds(*this, *mb, *ds);
		return mb->id;
	}
	case KIPC_IPC_STAT:
		if (!(mb = find_msq(cur, id, kMayRead, &err)))
			return err;
		fill_ds(*this, *mb, *ds);
		return 0;
	case KIPC_IPC_SET:
	case KIPC_IPC_RMID:
		if (!(mb = find_msq(id, &err)))
			return err;
		if (cur.uid != mb->cuid && cur.uid != mb->uid && !host.capable(cur.pid, kCapSysAdmin))
			return -EPERM;
		if (cmd == KIPC_IPC_RMID) {
			destroy_msq(mb);
			return 0;
		}
		if (ds->qbytes > lim.msgmnb && !host.capable(cur.pid, kCapSysResource))
			return -EPERM;
		mb->uid = ds->uid;
		mb->gid = ds->gid;
		mb->mode = ds->mode & 0777;
		mb->link.qbytes = ds->qbytes;
		mb->link.capacity = uint32_t(std::min<uint64_t>(ds->qbytes, UINT32_MAX - 2));
		mb->ctime = now_real();
		refill(mb->link); /* senders that fit now go in */
		return 0;
	default:
		return -EINVAL;
	}
}

} // namespace kipc
