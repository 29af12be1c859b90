// SPDX-License-Identifier: MIT
/*
 * POSIX message queues with Linux's rules (ipc/mqueue.c), on kipc
 * mailboxes: a queue is a kernel-owned Mailbox of Flavour::Posix whose
 * Link holds the messages (priorities 0..32767, FIFO within one) and
 * whose PosixMq holds what Linux keeps in mqueue_inode_info: the name's
 * state, the RLIMIT_MSGQUEUE charge and the notification registration.
 *
 * Descriptors. Linux's queue descriptor is a file; here the host gives
 * each queue a file (kipcd: a FIFO, kernel/daemon/mqfs.cc) that the
 * library opens as the descriptor. The host keeps it polling like
 * mqueue_poll_file() (mq_readiness) and counts its openers, so that an
 * unlinked queue dies when its last descriptor closes (mq_unlinked,
 * mq_in_use, Kernel::mq_released). Everything per descriptor (access
 * mode, O_NONBLOCK) lives in the descriptor's open file description,
 * in the library; the kernel only sees the effect (EBADF is the
 * library's, NONBLOCK comes with each call).
 *
 * Rules kept from Linux:
 *  - creation order: ENOENT, ENOSPC (queues_max, uid 0 exempt), EINVAL
 *    (attr), EMFILE (the creator's RLIMIT_MSGQUEUE, charged for the
 *    queue's whole size at creation, as mqueue_get_inode() does);
 *  - a send to a queue with waiting receivers hands the message to the
 *    first of them (pipelined_send); blocked senders enter in arrival
 *    order when room frees (pipelined_receive), not by message priority;
 *  - a notification fires when a message is queued into an empty queue
 *    with no receiver waiting (__do_notify), then is unregistered; the
 *    owner's close of any descriptor of the queue, or its exit, removes
 *    it (mqueue_flush_file).
 */
#include <algorithm>

#include "ipc.h"

namespace kipc {

constexpr int64_t kHardMsgMax = 65536;            /* Linux HARD_MSGMAX */
constexpr int64_t kHardMsgsizeMax = 16 << 20;     /* Linux HARD_MSGSIZEMAX */
constexpr uint64_t kMsgMsgSize = 48;              /* sizeof(struct msg_msg), x86-64 */
constexpr uint64_t kTreeNodeSize = 48;            /* sizeof(struct posix_msg_tree_node) */
constexpr int64_t kMqPrioMax = KIPC_PRIO_MAX + 1; /* MQ_PRIO_MAX */

constexpr int kCapSysResource = 24;

/* Linux lifts msg_max, msgsize_max and queues_max for CAP_SYS_RESOURCE. */
static bool capable_resource(KernelImpl &k, const Task &t)
{
	return k.host.capable(t.pid, kCapSysResource);
}

Mailbox *KernelImpl::find_mq(int64_t id, int *err) const
{
	Mailbox *mb = find_mbox(id, err);
	if (!mb || mb->flavour != Flavour::Posix) {
		*err = -EBADF; /* a descriptor of no (or another) queue */
		return nullptr;
	}
	return mb;
}

/*
 * A fresh slot in the mailbox table for a POSIX or System V queue, with
 * the creator's credentials. The caller fills the rest.
 */
Mailbox *KernelImpl::new_ipc_mailbox(Task &cur, Flavour f, const LinkAttr &la,
				     uint32_t mode, int *err)
{
	Mailbox *mb = new_mailbox(cur, la, mode, err);
	if (!mb)
		return nullptr;
	mb->flavour = f;
	mb->link.fifo_senders = true;
	mb->link.quota = false; /* charged per queue (POSIX) or not at all (System V) */
	mb->flags = KIPC_MBOX_KERNEL_OWNED;
	mb->policy = KIPC_POLICY_ANY;
	mb->owner = nullptr;
	return mb;
}

/* The poll state of the queue's descriptors (mqueue_poll_file). */
void KernelImpl::mq_update_ready(Mailbox &mb)
{
	const Link &l = mb.link;
	uint8_t ready = (l.msgs.nmsg ? 1 : 0) | (l.msgs.nmsg < l.capacity ? 2 : 0);
	if (ready == mb.mq->ready)
		return;
	mb.mq->ready = ready;
	host.mq_readiness(mb.id, ready & 1, ready & 2);
}

long KernelImpl::do_mq_open(Task &cur, const std::string &name, const kipc_mq_open &o)
{
	uint32_t acc = o.oflag & KIPC_MQ_ACCMODE;

	/* prepare_open(): the name exists */
	if (auto it = mq_names.find(name); it != mq_names.end()) {
		Mailbox *mb = it->second;
		if ((o.oflag & KIPC_O_CREAT) && (o.oflag & KIPC_O_EXCL))
			return -EEXIST;
		if (acc == KIPC_MQ_ACCMODE)
			return -EINVAL;
		uint32_t want = acc == KIPC_MQ_RDONLY ? 4 : acc == KIPC_MQ_WRONLY ? 2 : 6;
		if (!ipcperms(cur, *mb, want))
			return -EACCES;
		return opened(*mb, false);
	}
	if (!(o.oflag & KIPC_O_CREAT))
		return -ENOENT;

	/* mqueue_create_attr(), mqueue_get_inode() */
	bool cap = capable_resource(*this, cur);
	if (mq_count >= lim.mq_queues_max && !cap)
		return -ENOSPC;
	int64_t maxmsg = std::min(lim.mq_msg_max, lim.mq_msg_default);
	int64_t msgsize = std::min(lim.mq_msgsize_max, lim.mq_msgsize_default);
	if (o.flags & KIPC_MQ_ATTR) {
		maxmsg = o.maxmsg;
		msgsize = o.msgsize;
	}
	if (maxmsg <= 0 || msgsize <= 0)
		return -EINVAL;
	if (cap ? maxmsg > kHardMsgMax || msgsize > kHardMsgsizeMax
		: maxmsg > lim.mq_msg_max || msgsize > lim.mq_msgsize_max)
		return -EINVAL;
	/* Both are bounded by the hard limits: no overflow (EOVERFLOW). */
	uint64_t charge = uint64_t(maxmsg) * uint64_t(msgsize) + uint64_t(maxmsg) * kMsgMsgSize +
			  uint64_t(std::min(maxmsg, kMqPrioMax)) * kTreeNodeSize;
	uint64_t rlimit = (o.flags & KIPC_MQ_RLIMIT) ? o.rlimit : lim.mq_bytes_per_user;
	UserAcct &u = user(cur.uid);
	if (u.mq_bytes + charge < u.mq_bytes || u.mq_bytes + charge > rlimit)
		return -EMFILE;

	LinkAttr la;
	la.capacity = uint32_t(maxmsg);
	la.msgsize = uint32_t(msgsize);
	la.qbytes = uint64_t(maxmsg) * uint64_t(msgsize);
	la.fixed = false;
	int err = 0;
	Mailbox *mb = new_ipc_mailbox(cur, Flavour::Posix, la, o.mode, &err);
	if (!mb)
		return err;
	mb->mq = std::make_unique<PosixMq>();
	mb->name = name;
	if ((err = host.mq_created(mb->id))) {
		destroy_mbox(mb);
		return err;
	}
	mb->mq->charge = charge;
	u.mq_bytes += charge;
	mq_count++;
	mq_names.emplace(name, mb);
	mq_update_ready(*mb);
	return opened(*mb, true);
}

long KernelImpl::do_mq_unlink(Task &cur, const std::string &name)
{
	auto it = mq_names.find(name);
	if (it == mq_names.end())
		return -ENOENT;
	Mailbox *mb = it->second;
	/* The directory is sticky: only the owner removes (glibc: EACCES). */
	if (cur.uid != mb->uid && !(cur.uid == 0 && lim.root_bypass))
		return -EACCES;
	mq_names.erase(it);
	mb->mq->unlinked = true;
	mb->ctime = now_real();
	host.mq_unlinked(mb->id);
	if (!host.mq_in_use(mb->id))
		destroy_mq(mb);
	return 0;
}

/* A notification fired (fired) or was removed: mq has no registrant. */
void KernelImpl::mq_remove_notify(Mailbox &mb, bool fired)
{
	MqNotify &n = mb.mq->notify;
	if (!n.owner)
		return;
	if (!fired && n.waiter)
		abort_request(n.waiter, -ECANCELED, true); /* clears n.waiter */
	n.owner->mq_notifying--;
	n = MqNotify{};
}

/* __do_notify(): cur queued the first message and nobody was waiting. */
static void mq_fire(KernelImpl &k, Mailbox &mb, Task &cur)
{
	MqNotify &n = mb.mq->notify;
	switch (n.kind) {
	case KIPC_MQ_SIGEV_SIGNAL:
		if (n.signo)
			k.host.mq_signal(n.owner->pid, n.signo, n.value, cur.pid, cur.uid);
		break;
	case KIPC_MQ_SIGEV_THREAD:
		if (Request *r = n.waiter) {
			kipc_cqe cqe{};
			cqe.pid = cur.pid;
			cqe.type = cur.uid;
			k.unpark(r);
			cqe.user_data = r->user_data;
			k.complete(*r->task, cqe, r->opcode);
			delete r;
		} else {
			k.mq_fired[n.token] = {n.owner->pid, cur.pid, cur.uid};
		}
		break;
	}
	k.mq_remove_notify(mb, true);
}

long KernelImpl::do_mq_send(Task &cur, Mailbox &mb, MsgArgs &a, kipc_cqe &cqe)
{
	if (a.len > mb.link.msgsize)
		return -EMSGSIZE;
	uint32_t before = mb.link.msgs.nmsg;
	long r = do_send(cur, mb.link, a, cqe);
	if (r == 0 && before == 0 && mb.link.msgs.nmsg == 1 && mb.mq->notify.owner)
		mq_fire(*this, mb, cur); /* queued, not handed to a receiver */
	mq_update_ready(mb);
	cqe.pid = 0; /* POSIX does not say who received it */
	return r;
}

long KernelImpl::do_mq_receive(Task &cur, Mailbox &mb, MsgArgs &a, kipc_cqe &cqe)
{
	if (a.len < mb.link.msgsize)
		return -EMSGSIZE;
	Link *l = &mb.link;
	long r = do_receive(cur, &l, 1, Selector{}, a, cqe);
	mq_update_ready(mb);
	return r;
}

long KernelImpl::do_mq_notify(Task &cur, Mailbox &mb, const kipc_mq_notify &req)
{
	MqNotify &n = mb.mq->notify;
	if (req.notify == KIPC_MQ_NOTIFY_REMOVE) {
		if (n.owner == &cur)
			mq_remove_notify(mb, false);
		return 0;
	}
	if (n.owner)
		return -EBUSY;
	n.owner = &cur;
	n.kind = req.notify;
	n.signo = req.signo;
	n.value = req.value;
	n.token = req.notify == KIPC_MQ_SIGEV_THREAD ? next_token++ : 0;
	cur.mq_notifying++;
	mb.ctime = now_real();
	return n.token;
}

long KernelImpl::do_mq_notify_wait(Task &cur, Mailbox *mb, uint64_t token, const MsgArgs &a,
				   kipc_cqe &cqe)
{
	if (auto it = mq_fired.find(token); it != mq_fired.end() && it->second.owner == cur.pid) {
		cqe.pid = it->second.from;
		cqe.type = it->second.uid;
		mq_fired.erase(it);
		return 0;
	}
	if (!mb)
		return -ECANCELED;
	MqNotify &n = mb->mq->notify;
	if (n.owner != &cur || n.kind != KIPC_MQ_SIGEV_THREAD || n.token != token)
		return -ECANCELED; /* removed before we got here */
	if (n.waiter)
		return -EBUSY;
	Request *r = new_request(cur, ReqKind::MqNotify, a);
	r->slot = &n.waiter;
	n.waiter = r;
	park(r);
	return -EQUEUED;
}

/* A descriptor of mb was closed by cur (mqueue_flush_file). */
long KernelImpl::do_mq_close(Task &cur, Mailbox &mb)
{
	if (mb.mq->notify.owner == &cur)
		mq_remove_notify(mb, false);
	if (mb.mq->unlinked && !host.mq_in_use(mb.id))
		destroy_mq(&mb);
	return 0;
}

void KernelImpl::mq_release(int64_t id)
{
	int err;
	Mailbox *mb = find_mbox(id, &err);
	if (mb && mb->flavour == Flavour::Posix && mb->mq->unlinked && !host.mq_in_use(id))
		destroy_mq(mb);
}

void KernelImpl::destroy_mq(Mailbox *mb)
{
	mq_remove_notify(*mb, false);
	if (auto it = mq_names.find(mb->name); it != mq_names.end() && it->second == mb)
		mq_names.erase(it);
	user(mb->cuid).mq_bytes -= mb->mq->charge;
	mq_count--;
	host.mq_destroyed(mb->id);
	destroy_mbox(mb); /* nobody can wait on it: no descriptor is left */
}

/* t exited: its registrations go, its unclaimed notifications too. */
void KernelImpl::mq_task_exit(Task &t)
{
	for (Slot &s : slots) {
		if (!t.mq_notifying)
			break;
		Mailbox *mb = s.mbox.get();
		if (mb && mb->flavour == Flavour::Posix && mb->mq->notify.owner == &t)
			mq_remove_notify(*mb, false);
	}
	std::erase_if(mq_fired, [&](const auto &e) { return e.second.owner == t.pid; });
}

} // namespace kipc
