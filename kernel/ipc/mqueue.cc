// SPDX-License-Identifier: MIT
/*
 * POSIX message queues with Linux's rules (ipc/mqueue.c), on kipc
 * mailboxes: a queue is a kernel-owned Mailbox of Flavour::Posix whose
 * Link holds the messages (priorities 0..32767, FIFO within one) and
 * whose PosixMq holds what Linux keeps in mqueue_inode_info: the name's
 * state, the RLIMIT_MSGQUEUE charge and the notification registration.
 *
 * Descriptors. Linux's queue descriptor is a file, and the access mode
 * granted at open lives on it (f_mode). Here each mq_open() makes an
 * open (mqhandle.h): a handle with the granted mode, in the opener
 * task's table, and a host file (kipcd: a FIFO of its own,
 * kernel/daemon/mqfs.cc) that the library opens as the descriptor. Every
 * later call names the handle and is checked against the caller's own
 * table and the open's mode (mq_get): EBADF for a number the task does
 * not hold, for sending on a read-only open and receiving on a
 * write-only one, as Linux's fdget() and f_mode checks. A task that got
 * the descriptor otherwise (fork, an exec that kept it, SCM_RIGHTS)
 * names it too, and the host checks that its process really holds a
 * descriptor of the open (Host::mq_holds) before the task may use it.
 * The host polls each open like mqueue_poll_file() (mq_readiness) and
 * tells when the last descriptor of an open closed (Kernel::mq_released);
 * an unlinked queue dies with its last open. O_NONBLOCK stays the
 * descriptor's status flag, in the library; NONBLOCK comes with each call.
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

/*
 * A SIGEV_THREAD registration, and the notification it leaves when it
 * fires before its waiter came, cost this much of the registrant's
 * bytes_per_user until the waiter takes it, the registration is removed
 * or the registrant exits: mq_notify fails ENOMEM past the quota, so
 * unclaimed notifications cannot grow without bound.
 */
const uint64_t kMqNotifyCost = 64;

/*
 * An open costs the kernel its handle and the host a FIFO (kipcd: one
 * or two of its descriptors): kMqOpenCost of the opener's bytes_per_user
 * until it ends, and a task may have kMqUnclaimedMax opens whose
 * descriptor no process has taken yet (the library takes it at once).
 * Past either, mq_open fails EMFILE (Linux: RLIMIT_NOFILE).
 */
const uint64_t kMqOpenCost = 256;
constexpr size_t kMqUnclaimedMax = 16;

/* Linux lifts msg_max, msgsize_max and queues_max for CAP_SYS_RESOURCE. */
static bool capable_resource(KernelImpl &k, const Task &t)
{
	return k.host.capable(t.pid, kCapSysResource);
}

MqOpen *KernelImpl::mq_get(Task &cur, int64_t h, int64_t fd, uint32_t need, int *err)
{
	*err = -EBADF;
	MqOpen *o = mqh.find(h);
	if (!o)
		return nullptr;
	bool mine = mqh.holds(cur, *o);
	if (!mine || !o->claimed) {
		/* Not ours yet, or the host has not seen a descriptor of it. */
		if (fd < 0 || fd > INT_MAX || !host.mq_holds(cur.pid, int(fd), h)) {
			if (!mine)
				return nullptr;
		} else {
			o->claimed = true;
			if (!mine)
				mqh.adopt(cur, *o);
		}
	}
	if ((need == KIPC_MQ_RDONLY && !o->may_read()) ||
	    (need == KIPC_MQ_WRONLY && !o->may_write()))
		return nullptr;
	return o;
}

/*
 * A fresh slot in the mailbox table for a POSIX or System V queue, with
 * the creator's credentials. The caller fills the rest.
 */
Mailbox *KernelImpl::new_ipc_mailbox(Task &cur, Flavour f, const LinkAttr &la,
				     uint32_t mode, int *err, int64_t want_id)
{
	Mailbox *mb = mbox.create(cur, la, mode, err, want_id, f);
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
	for (MqOpen *o : mqh.of_queue(mb))
		host.mq_readiness(o->id, ready & 1, ready & 2);
}

/* mqueue_create_attr(), mqueue_get_inode(): a new queue named name. */
static long mq_create(KernelImpl &k, Task &cur, const std::string &name,
		      const kipc_mq_open &o, Mailbox **out)
{
	bool cap = capable_resource(k, cur);
	if (k.mq_count >= k.lim.mq_queues_max && !cap)
		return -ENOSPC;
	int64_t maxmsg = std::min(k.lim.mq_msg_max, k.lim.mq_msg_default);
	int64_t msgsize = std::min(k.lim.mq_msgsize_max, k.lim.mq_msgsize_default);
	if (o.flags & KIPC_MQ_ATTR) {
		maxmsg = o.maxmsg;
		msgsize = o.msgsize;
	}
	if (maxmsg <= 0 || msgsize <= 0)
		return -EINVAL;
	if (cap ? maxmsg > kHardMsgMax || msgsize > kHardMsgsizeMax
		: maxmsg > k.lim.mq_msg_max || msgsize > k.lim.mq_msgsize_max)
		return -EINVAL;
	/* Both are bounded by the hard limits: no overflow (EOVERFLOW). */
	uint64_t charge = uint64_t(maxmsg) * uint64_t(msgsize) + uint64_t(maxmsg) * kMsgMsgSize +
			  uint64_t(std::min(maxmsg, kMqPrioMax)) * kTreeNodeSize;
	/*
	 * RLIMIT_MSGQUEUE is the process's as the OS has it (the host reads
	 * it), never what the caller claims (kipc_mq_open.rlimit is ignored);
	 * without one, the kernel's mq_bytes_per_user.
	 */
	uint64_t rlimit = k.lim.mq_bytes_per_user;
	k.host.mq_rlimit(cur.pid, &rlimit);
	UserAcct &u = k.user(cur.uid);
	if (u.mq_bytes + charge < u.mq_bytes || u.mq_bytes + charge > rlimit)
		return -EMFILE;

	LinkAttr la;
	la.capacity = uint32_t(maxmsg);
	la.msgsize = uint32_t(msgsize);
	la.qbytes = uint64_t(maxmsg) * uint64_t(msgsize);
	la.fixed = false;
	int err = 0;
	Mailbox *mb = k.new_ipc_mailbox(cur, Flavour::Posix, la, o.mode, &err);
	if (!mb)
		return err;
	mb->mq = std::make_unique<PosixMq>();
	mb->name = name;
	mb->mq->charge = charge;
	u.mq_bytes += charge;
	k.mq_count++;
	k.mq_names.emplace(name, mb);
	k.mq_update_ready(*mb);
	*out = mb;
	return 0;
}

long KernelImpl::do_mq_open(Task &cur, const std::string &name, const kipc_mq_open &o)
{
	uint32_t acc = o.oflag & KIPC_MQ_ACCMODE;
	Mailbox *mb = nullptr;
	bool created = false;
	UserAcct &u = user(cur.uid);
	size_t unclaimed = 0;
	for (const MqOpen *op : mqh.of_task(cur))
		unclaimed += !op->claimed;
	if (u.bytes + kMqOpenCost > lim.bytes_per_user || unclaimed >= kMqUnclaimedMax)
		return -EMFILE; /* before anything is made: nothing to undo */

	/* prepare_open(): the name exists */
	if (auto it = mq_names.find(name); it != mq_names.end()) {
		mb = it->second;
		if ((o.oflag & KIPC_O_CREAT) && (o.oflag & KIPC_O_EXCL))
			return -EEXIST;
		if (acc == KIPC_MQ_ACCMODE)
			return -EINVAL;
		uint32_t want = acc == KIPC_MQ_RDONLY ? kMayRead
				: acc == KIPC_MQ_WRONLY ? kMayWrite
							: kMayRead | kMayWrite;
		if (!mbox.ipcperms(cur, *mb, want))
			return -EACCES;
	} else {
		if (!(o.oflag & KIPC_O_CREAT))
			return -ENOENT;
		long r = mq_create(*this, cur, name, o, &mb);
		if (r < 0)
			return r;
		created = true;
	}

	MqOpen *op = mqh.add(cur, mb, acc, cur.uid, created);
	u.bytes += kMqOpenCost;
	if (int err = host.mq_opened(op->id, cur.uid, cur.gid, acc)) {
		u.bytes -= kMqOpenCost;
		mqh.remove(op);
		if (created) { /* a failed open leaves nothing behind */
			mq_names.erase(name);
			destroy_mq(mb);
		}
		return err;
	}
	host.mq_readiness(op->id, mb->mq->ready & 1, mb->mq->ready & 2);
	tracer.opened(*mb, created); /* the CREATE or OPEN event */
	return op->id;
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
	if (!mqh.count(*mb))
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
	if (!fired && n.kind == KIPC_MQ_SIGEV_THREAD)
		user(n.owner->uid).bytes -= kMqNotifyCost;
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
			k.finish(r, cqe);
			k.user(n.owner->uid).bytes -= kMqNotifyCost;
		} else { /* the charge stays with it until it is taken */
			k.mq_fired[n.token] = {n.owner->pid, cur.pid, cur.uid, n.owner->uid};
		}
		break;
	}
	k.mq_remove_notify(mb, true);
}

long KernelImpl::do_mq_send(Task &cur, int64_t h, int64_t fd, MsgArgs &a, kipc_cqe &cqe)
{
	int err;
	Mailbox *mb = mq_queue(cur, h, fd, KIPC_MQ_WRONLY, &err);
	if (!mb)
		return err;
	Sent how;
	if (a.len > mb->link.msgsize)
		return -EMSGSIZE;
	long r = do_send(cur, mb->link, a, cqe, 0, nullptr, &how);
	/* __do_notify(): queued (not handed to a receiver) into an empty queue */
	if (how == Sent::Queued && mb->link.msgs.nmsg == 1 && mb->mq->notify.owner)
		mq_fire(*this, *mb, cur);
	mq_update_ready(*mb);
	cqe.pid = 0; /* POSIX does not say who received it */
	return r;
}

long KernelImpl::do_mq_receive(Task &cur, int64_t h, int64_t fd, MsgArgs &a, kipc_cqe &cqe)
{
	int err;
	Mailbox *mb = mq_queue(cur, h, fd, KIPC_MQ_RDONLY, &err);
	if (!mb)
		return err;
	Link *l = &mb->link;
	if (a.len < l->msgsize)
		return -EMSGSIZE;
	long r = do_receive(cur, &l, 1, Selector{}, a, cqe);
	mq_update_ready(*mb);
	return r;
}

long KernelImpl::do_mq_getattr(Task &cur, int64_t h, int64_t fd, kipc_mq_attr &at)
{
	int err;
	Mailbox *mb = mq_queue(cur, h, fd, KIPC_MQ_ACCMODE, &err);
	if (!mb)
		return err;
	const Link &l = mb->link;
	at = kipc_mq_attr{};
	at.maxmsg = l.capacity;
	at.msgsize = l.msgsize;
	at.curmsgs = l.msgs.nmsg;
	return 0;
}

long KernelImpl::do_mq_notify(Task &cur, int64_t h, int64_t fd, const kipc_mq_notify &req)
{
	int err;
	Mailbox *q = mq_queue(cur, h, fd, KIPC_MQ_ACCMODE, &err);
	if (!q)
		return err;
	Mailbox &mb = *q;
	MqNotify &n = mb.mq->notify;
	if (req.notify == KIPC_MQ_NOTIFY_REMOVE) {
		if (n.owner == &cur)
			mq_remove_notify(mb, false);
		return 0;
	}
	if (n.owner)
		return -EBUSY;
	if (req.notify == KIPC_MQ_SIGEV_THREAD) {
		UserAcct &u = user(cur.uid);
		if (u.bytes + kMqNotifyCost > lim.bytes_per_user)
			return -ENOMEM;
		u.bytes += kMqNotifyCost;
	}
	n.owner = &cur;
	n.kind = req.notify;
	n.signo = req.signo;
	n.value = req.value;
	n.token = req.notify == KIPC_MQ_SIGEV_THREAD ? rpc.new_token() : 0;
	cur.mq_notifying++;
	mb.ctime = now_real();
	return n.token;
}

long KernelImpl::do_mq_notify_wait(Task &cur, int64_t h, uint64_t token, const MsgArgs &a,
				   kipc_cqe &cqe)
{
	if (auto it = mq_fired.find(token); it != mq_fired.end() && it->second.owner == cur.pid) {
		cqe.pid = it->second.from;
		cqe.type = it->second.uid;
		user(it->second.owner_uid).bytes -= kMqNotifyCost;
		mq_fired.erase(it);
		return 0;
	}
	int err;
	MqOpen *o = mq_get(cur, h, -1, KIPC_MQ_ACCMODE, &err);
	if (!o)
		return -ECANCELED; /* closed, and with it the registration */
	MqNotify &n = o->mb->mq->notify;
	if (n.owner != &cur || n.kind != KIPC_MQ_SIGEV_THREAD || n.token != token)
		return -ECANCELED; /* removed before we got here */
	if (n.waiter)
		return -EBUSY;
	ReqPtr r = new_request(cur, ReqKind::MqNotify, a);
	r->slot = &n.waiter;
	n.waiter = park(std::move(r));
	return -EQUEUED;
}

/*
 * Open o ends: no task may use it, no descriptor of it is left. A task
 * whose table still had it closed its last descriptor of it without
 * telling us first (kipcd saw the FIFO lose its last reader before the
 * library's mq_close came): that is a close of a descriptor of the queue,
 * so its registration goes (mqueue_flush_file), as in do_mq_close.
 */
void KernelImpl::mq_end_open(MqOpen *o)
{
	Mailbox *mb = o->mb;
	int64_t h = o->id;
	if (const Task *owner = mb->mq->notify.owner) {
		for (const Task *t : mqh.tasks_of(*o))
			if (t == owner)
				mq_remove_notify(*mb, false);
	}
	user(o->uid).bytes -= kMqOpenCost;
	mqh.remove(o);
	host.mq_closed(h);
	if (mb->mq->unlinked && !mqh.count(*mb))
		destroy_mq(mb);
}

/*
 * A descriptor of open h was closed by cur (mqueue_flush_file): cur's
 * registration goes; h leaves cur's table (another descriptor of it in
 * the same process is proved again on its next use); the open ends once
 * no table has it and no descriptor is left. KIPC_MQ_CLOSE_ABORT: the
 * library could not make the descriptor of an mq_open that just
 * succeeded; the open ends, and a queue that open created is removed.
 */
long KernelImpl::do_mq_close(Task &cur, int64_t h, uint32_t flags)
{
	MqOpen *o = mqh.find(h);
	if (!o || !mqh.holds(cur, *o))
		return -EBADF;
	Mailbox &mb = *o->mb;
	if (mb.mq->notify.owner == &cur)
		mq_remove_notify(mb, false);
	if (flags & KIPC_MQ_CLOSE_ABORT) {
		if (o->created && mqh.count(mb) == 1 && !mb.mq->unlinked) {
			mq_names.erase(mb.name);
			mb.mq->unlinked = true;
		}
		mq_end_open(o);
		return 0;
	}
	if (mqh.drop(cur, *o) && !(o->claimed && host.mq_in_use(h)))
		mq_end_open(o);
	return 0;
}

/* The host saw the last descriptor of open h close. */
void KernelImpl::mq_release(int64_t h)
{
	MqOpen *o = mqh.find(h);
	if (o && o->claimed && !host.mq_in_use(h))
		mq_end_open(o);
}

void KernelImpl::destroy_mq(Mailbox *mb)
{
	mq_remove_notify(*mb, false);
	for (MqOpen *o : mqh.of_queue(*mb)) { /* none: it dies with its last open */
		user(o->uid).bytes -= kMqOpenCost;
		host.mq_closed(o->id);
		mqh.remove(o);
	}
	if (auto it = mq_names.find(mb->name); it != mq_names.end() && it->second == mb)
		mq_names.erase(it);
	user(mb->cuid).mq_bytes -= mb->mq->charge;
	mq_count--;
	mbox.destroy_mbox(mb); /* nobody can wait on it: no descriptor is left */
}

/* t exited: its registrations go, its unclaimed notifications, its opens. */
void KernelImpl::mq_task_exit(Task &t)
{
	if (t.mq_notifying)
		mbox.native_ids().for_each([&](Mailbox *mb) { /* POSIX queues are native ids */
			if (mb->flavour == Flavour::Posix && mb->mq->notify.owner == &t)
				mq_remove_notify(*mb, false);
		});
	std::erase_if(mq_fired, [&](const auto &e) {
		if (e.second.owner != t.pid)
			return false;
		user(e.second.owner_uid).bytes -= kMqNotifyCost;
		return true;
	});
	for (MqOpen *o : mqh.of_task(t))
		if (mqh.drop(t, *o) && !(o->claimed && host.mq_in_use(o->id)))
			mq_end_open(o);
}

} // namespace kipc
