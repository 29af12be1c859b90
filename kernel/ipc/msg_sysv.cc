// SPDX-License-Identifier: MIT
/*
 * System V message queues with Linux's rules (ipc/msg.c), on kipc
 * mailboxes: a queue is a SysvQueue (a kernel-owned Mailbox and its key),
 * private to this file as Linux's msg_queue is to msg.c, whose id is the
 * msqid (seq * 32768 + index, Linux's scheme) and whose Link holds
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
 *
 * The keys, the count and msg_next_id are SysvQueues' (msg_sysv.h); the
 * core reaches them only through its hooks (mechanism.h): destroying()
 * when a queue goes, charges() for the debug checks.
 */
#include <algorithm>

#include "ipc.h"

namespace kipc {

/* A queue: the common Mailbox and its key (Linux's msg_queue). */
struct SysvQueue final : Mailbox {
	explicit SysvQueue(Mechanism &m) : Mailbox(m) {}
	/* Larger than the mailbox slab's objects (Mailbox::operator new), and
	 * few (the queue limits): from the heap. delete of a Mailbox * comes
	 * here through the virtual destructor. */
	static void *operator new(size_t size) { return ::operator new(size); }
	static void operator delete(void *p) { ::operator delete(p); }
	int32_t key = 0; /* IPC_PRIVATE (0) or the key */
};

/* What a queue costs the kernel besides its messages. */
const uint64_t kSysvQueueCost = sizeof(SysvQueue);

SysvQueues::SysvQueues(KernelImpl &k)
	: Mechanism(KIPC_MBOX_SYSV, KIPC_TRACE_F_SYSV, false), k_(k)
{
}

/* Every mailbox of the System V id table is a queue (ids.h). */
SysvQueue *SysvQueues::find(int64_t id, int *err) const
{
	Mailbox *mb = id >= 0 && id <= INT32_MAX ? k_.mbox.sysv_ids().find(id, err) : nullptr;
	if (!mb) {
		*err = -EINVAL;
		return nullptr;
	}
	return static_cast<SysvQueue *>(mb);
}

SysvQueue *SysvQueues::find(Task &cur, int64_t id, uint32_t want, int *err) const
{
	SysvQueue *q = find(id, err);
	if (q && !k_.mbox.ipcperms(cur, *q, want)) {
		*err = -EACCES;
		return nullptr;
	}
	return q;
}

int64_t SysvQueues::key(const Mailbox &mb) const
{
	return static_cast<const SysvQueue &>(mb).key;
}

/* ipcperms() with msgget's flag: requested bits from all three triads. */
static uint32_t requested(uint32_t flg)
{
	return ((flg >> 6) | (flg >> 3) | flg) & 7;
}

long SysvQueues::do_msgget(Task &cur, int32_t key, uint32_t msgflg)
{
	const Limits &lim = k_.limits();
	if (key != 0) { /* IPC_PRIVATE always creates */
		auto it = keys_.find(key);
		if (it != keys_.end()) {
			if ((msgflg & KIPC_IPC_CREAT) && (msgflg & KIPC_IPC_EXCL))
				return -EEXIST;
			if (!k_.mbox.ipcperms(cur, *it->second, requested(msgflg & 0777)))
				return -EACCES;
			return k_.tracer.opened(*it->second, false);
		}
		if (!(msgflg & KIPC_IPC_CREAT))
			return -ENOENT;
	}
	if (count_ >= lim.msgmni)
		return -ENOSPC;
	UserAcct &u = k_.user(cur.uid);
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
	Mailbox *mb = k_.mbox.create_queue(cur, std::make_unique<SysvQueue>(*this), true, la,
					 msgflg & 0777, &err, next_id_);
	if (!mb)
		return err;
	SysvQueue &q = static_cast<SysvQueue &>(*mb);
	q.link.quota = true; /* its messages count against the senders' bytes */
	next_id_ = -1;
	q.key = key;
	u.mailboxes++;
	u.bytes += kSysvQueueCost;
	if (key != 0)
		keys_.emplace(key, &q);
	count_++;
	return k_.tracer.opened(q, true);
}

long SysvQueues::do_msgsnd(Task &cur, int64_t id, MsgArgs &a, kipc_cqe &cqe)
{
	int err;
	SysvQueue *q = find(cur, id, kMayWrite, &err);
	if (!q)
		return err;
	if (a.len > q->link.qbytes && a.wait.nonblock)
		return -EAGAIN; /* Linux: it never fits */
	long r = k_.do_send(cur, q->link, a, cqe);
	cqe.pid = 0;
	return r == -ENOSPC ? -ENOMEM : r; /* the sender's bytes_per_user */
}

/* MSG_COPY: the msgtyp-th message (from 0), left in place. */
long SysvQueues::copy(Task &cur, SysvQueue &q, uint32_t msgflg, MsgArgs &a, kipc_cqe &cqe)
{
	Message *found = nullptr;
	int64_t n = 0;
	q.link.msgs.for_each([&](Message *m) { /* in delivery order */
		if (n++ == a.type)
			found = m;
	});
	if (!found)
		return -EAGAIN; /* ENOMSG in the library, as without a match */
	if (a.len < found->len && !(msgflg & KIPC_MSG_NOERROR))
		return -EMSGSIZE;
	if (found->len > std::min<uint64_t>(a.len, k_.limits().msgmax))
		return -EINVAL; /* copy_msg(): the copy buffer is too small */
	if (cur.mm && cur.mm->copy_to_user(a.addr, found->data, found->len))
		return -EFAULT;
	cqe.len = found->len;
	cqe.type = found->type();
	cqe.pid = found->sender;
	cqe.seq = found->seq;
	return found->len;
}

long SysvQueues::do_msgrcv(Task &cur, int64_t id, uint32_t msgflg, MsgArgs &a, kipc_cqe &cqe)
{
	int err;
	SysvQueue *q = find(cur, id, kMayRead, &err);
	if (!q)
		return err;
	if (msgflg & KIPC_MSG_COPY)
		return copy(cur, *q, msgflg, a, cqe);
	Selector sel;
	if (a.type != 0) {
		sel.by_type = true;
		sel.type = a.type == INT64_MIN ? -INT64_MAX : a.type;
		sel.except = a.type > 0 && (msgflg & KIPC_MSG_EXCEPT);
	}
	if (msgflg & KIPC_MSG_NOERROR)
		a.flags |= KIPC_F_TRUNC;
	Link *l = &q->link;
	return k_.do_receive(cur, &l, 1, sel, a, cqe);
}

static void fill_ds(const KernelImpl &k, const SysvQueue &mb, kipc_msqid_ds &ds)
{
	const Link &l = mb.link;
	ds = kipc_msqid_ds{};
	ds.key = mb.key;
	ds.uid = mb.uid;
	ds.gid = mb.gid;
	ds.cuid = mb.cuid;
	ds.cgid = mb.cgid;
	ds.mode = mb.mode;
	ds.seq = k.mbox.sysv_ids().seq_of(mb.id);
	ds.stime = l.used().stime / 1000000000;
	ds.rtime = l.used().rtime / 1000000000;
	ds.ctime = mb.ctime / 1000000000;
	ds.cbytes = l.msgs.nbytes;
	ds.qnum = l.msgs.nmsg;
	ds.qbytes = l.qbytes;
	ds.lspid = l.used().lspid;
	ds.lrpid = l.used().lrpid;
}

/* destroy_mbox() starts (IPC_RMID, or the kernel's end): key, count, charge go. */
void SysvQueues::destroying(Mailbox &mb)
{
	SysvQueue &q = static_cast<SysvQueue &>(mb);
	if (auto it = keys_.find(q.key); it != keys_.end() && it->second == &q)
		keys_.erase(it);
	count_--;
	UserAcct &u = k_.user(q.cuid);
	u.mailboxes--;
	u.bytes -= kSysvQueueCost;
}

void SysvQueues::charges(Charges &c) const
{
	uint32_t n = 0;
	k_.mbox.sysv_ids().for_each([&](const Mailbox *mb) {
		c.mailboxes[mb->cuid]++;
		c.bytes[mb->cuid] += kSysvQueueCost;
		n++;
	});
	KIPC_BUG_ON(n != count_);
}

long SysvQueues::do_msgctl(Task &cur, int64_t id, uint32_t cmd, kipc_msqid_ds *ds,
			   kipc_sysv_msginfo *info)
{
	const Limits &lim = k_.limits();
	const IdTable &msq_ids = k_.mbox.sysv_ids();
	int err;
	SysvQueue *mb;
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
		msq_ids.for_each([&](const Mailbox *m) {
			maxidx = int32_t(msq_ids.idx_of(m->id)); /* in index order */
			nmsg += m->link.msgs.nmsg;
			nbytes += int32_t(m->link.msgs.nbytes);
		});
		if (cmd == KIPC_MSG_INFO) {
			info->msgpool = int32_t(count_);
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
		if (id < 0 || !(mb = static_cast<SysvQueue *>(msq_ids.at(msq_ids.idx_of(id)))))
			return -EINVAL;
		if (cmd == KIPC_MSG_STAT && !k_.mbox.ipcperms(cur, *mb, kMayRead))
			return -EACCES;
		fill_ds(k_, *mb, *ds);
		return mb->id;
	}
	case KIPC_IPC_STAT:
		if (!(mb = find(cur, id, kMayRead, &err)))
			return err;
		fill_ds(k_, *mb, *ds);
		return 0;
	case KIPC_IPC_SET:
	case KIPC_IPC_RMID:
		if (!(mb = find(id, &err)))
			return err;
		if (cur.uid != mb->cuid && cur.uid != mb->uid &&
		    !k_.host.capable(cur.pid, kCapSysAdmin))
			return -EPERM;
		if (cmd == KIPC_IPC_RMID) {
			k_.mbox.destroy_mbox(mb); /* destroying(); waiters wake with EIDRM */
			return 0;
		}
		if (ds->qbytes > lim.msgmnb && !k_.host.capable(cur.pid, kCapSysResource))
			return -EPERM;
		mb->uid = ds->uid;
		mb->gid = ds->gid;
		mb->mode = ds->mode & 0777;
		mb->link.qbytes = ds->qbytes;
		mb->link.capacity = uint32_t(std::min<uint64_t>(ds->qbytes, UINT32_MAX - 2));
		mb->ctime = k_.now_real();
		k_.refill(mb->link); /* senders that fit now go in */
		return 0;
	default:
		return -EINVAL;
	}
}

} // namespace kipc
