// SPDX-License-Identifier: MIT
/*
 * POSIX message queues with Linux's rules (ipc/mqueue.c), on kipc
 * mailboxes: a queue is a PosixQueue, a kernel-owned Mailbox whose Link
 * holds the messages (priorities 0..32767, FIFO within one) and which
 * adds what Linux keeps in mqueue_inode_info: the name's state, the
 * RLIMIT_MSGQUEUE charge and the notification registration. The names,
 * the opens and the notifications not yet waited for are PosixQueues'
 * (mqueue.h), private to this file; the core calls its hooks
 * (mechanism.h): link_changed() keeps the poll state, task_exit() and
 * destroying() drop what a task or a queue leaves.
 *
 * Descriptors. Linux's queue descriptor is a file, and the access mode
 * granted at open lives on it (f_mode). Here each mq_open() makes an
 * open (mqhandle.h): a handle with the granted mode, in the opener
 * task's table, and a host file (kipcd: a FIFO of its own,
 * kernel/daemon/mqfs.cc) that the library opens as the descriptor. Every
 * later call names the handle and is checked against the caller's own
 * table and the open's mode (get()): EBADF for a number the task does
 * not hold, for sending on a read-only open and receiving on a
 * write-only one, as Linux's fdget() and f_mode checks. A task that got
 * the descriptor otherwise (fork, an exec that kept it, SCM_RIGHTS)
 * names it too, and the host checks that its process really holds a
 * descriptor of the open (MqHost::mq_holds) before the task may use it.
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
 *    first of them (pipelined_send), never to one whose process exited
 *    (drop_exited_receivers); blocked senders enter in arrival
 *    order when room frees (pipelined_receive), not by message priority;
 *  - a notification fires when a message is queued into an empty queue
 *    with no receiver waiting (__do_notify), then is unregistered; the
 *    owner's close of any descriptor of the queue, or its exit, removes
 *    it (mqueue_flush_file).
 */
#include <algorithm>

#include <utility>

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

/* A queue: the common Mailbox and what POSIX adds (mqueue_inode_info). */
struct PosixQueue final : Mailbox {
	explicit PosixQueue(Mechanism &m) : Mailbox(m) {}
	/* Larger than the mailbox slab's objects (Mailbox::operator new), and
	 * few (the queue limits): from the heap. delete of a Mailbox * comes
	 * here through the virtual destructor. */
	static void *operator new(size_t size) { return ::operator new(size); }
	static void operator delete(void *p) { ::operator delete(p); }
	bool unlinked = false;   /* the name is gone: dies with its last open */
	uint64_t charge = 0;     /* bytes charged to the creator (RLIMIT_MSGQUEUE) */
	uint8_t ready = 0;       /* last poll state told the host: bit 0 in, bit 1 out */
	struct {
		Task *owner = nullptr;   /* registrant (Linux: notify_owner); nullptr: none */
		int kind = 0;            /* KIPC_MQ_SIGEV_* */
		int signo = 0;
		int64_t value = 0;
		uint64_t token = 0;      /* SIGEV_THREAD */
		Request *waiter = nullptr; /* its parked mq_notify_wait */
	} notify;
};

/* Only POSIX queues have opens and come through these hooks. */
static PosixQueue &as_queue(Mailbox &mb)
{
	return static_cast<PosixQueue &>(mb);
}

namespace {
struct NoMqHost final : MqHost {
	int mq_opened(int64_t, uid_t, gid_t, uint32_t) override { return 0; }
	void mq_readiness(int64_t, bool, bool) override {}
	bool mq_holds(pid_t, int, int64_t) override { return false; }
	bool mq_in_use(int64_t) override { return false; }
	void mq_closed(int64_t) override {}
	bool mq_rlimit(pid_t, uint64_t *) override { return false; }
	void mq_signal(pid_t, int, int64_t, pid_t, uid_t) override {}
};
} // namespace

MqHost &no_mq_host()
{
	static NoMqHost none;
	return none;
}

PosixQueues::PosixQueues(KernelImpl &k, MqHost &host)
	: Mechanism(KIPC_MBOX_POSIX, KIPC_TRACE_F_POSIX, false), k_(k), host_(host)
{
}

PosixQueues::~PosixQueues() = default;

/* Linux lifts msg_max, msgsize_max and queues_max for CAP_SYS_RESOURCE. */
static bool capable_resource(KernelImpl &k, const Task &t)
{
	return k.host.capable(t.pid, kCapSysResource);
}

MqOpen *PosixQueues::get(Task &cur, int64_t h, int64_t fd, uint32_t need, int *err)
{
	*err = -EBADF;
	MqOpen *o = mqh_.find(h);
	if (!o)
		return nullptr;
	bool mine = mqh_.holds(cur, *o);
	if (!mine || !o->claimed) {
		/* Not ours yet, or the host has not seen a descriptor of it. */
		if (fd < 0 || fd > INT_MAX || !host_.mq_holds(cur.pid, int(fd), h)) {
			if (!mine)
				return nullptr;
		} else {
			o->claimed = true;
			if (!mine)
				mqh_.adopt(cur, *o);
		}
	}
	if ((need == KIPC_MQ_RDONLY && !o->may_read()) ||
	    (need == KIPC_MQ_WRONLY && !o->may_write()))
		return nullptr;
	return o;
}

PosixQueue *PosixQueues::queue(Task &cur, int64_t h, int64_t fd, uint32_t need, int *err)
{
	MqOpen *o = get(cur, h, fd, need, err);
	return o ? &as_queue(*o->mb) : nullptr;
}

/* The poll state of the queue's descriptors (mqueue_poll_file). */
void PosixQueues::update_ready(PosixQueue &q)
{
	const Link &l = q.link;
	uint8_t ready = (l.msgs.nmsg ? 1 : 0) | (l.msgs.nmsg < l.capacity ? 2 : 0);
	if (ready == q.ready)
		return;
	q.ready = ready;
	for (MqOpen *o : mqh_.of_queue(q))
		host_.mq_readiness(o->id, ready & 1, ready & 2);
}

/* The core queued or removed messages, or made room. */
void PosixQueues::link_changed(Mailbox &mb)
{
	update_ready(as_queue(mb));
}

/* mqueue_create_attr(), mqueue_get_inode(): a new queue named name. */
long PosixQueues::create(Task &cur, const std::string &name, const kipc_mq_open &o,
			 PosixQueue **out)
{
	const Limits &lim = k_.limits();
	bool cap = capable_resource(k_, cur);
	if (queues_.size() >= lim.mq_queues_max && !cap)
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
	/*
	 * RLIMIT_MSGQUEUE is the process's as the OS has it (the host reads
	 * it), never what the caller claims (kipc_mq_open.rlimit is ignored);
	 * without one, the kernel's mq_bytes_per_user.
	 */
	uint64_t rlimit = lim.mq_bytes_per_user;
	host_.mq_rlimit(cur.pid, &rlimit);
	UserAcct &u = k_.user(cur.uid);
	if (u.mq_bytes + charge < u.mq_bytes || u.mq_bytes + charge > rlimit)
		return -EMFILE;

	LinkAttr la;
	la.capacity = uint32_t(maxmsg);
	la.msgsize = uint32_t(msgsize);
	la.qbytes = uint64_t(maxmsg) * uint64_t(msgsize);
	la.fixed = false;
	int err = 0;
	Mailbox *mb = k_.mbox.create_queue(cur, std::make_unique<PosixQueue>(*this), false,
					 la, o.mode, &err);
	if (!mb)
		return err;
	PosixQueue &q = as_queue(*mb);
	q.name = name;
	q.charge = charge;
	u.mq_bytes += charge;
	queues_.insert(&q);
	names_.emplace(name, &q);
	update_ready(q);
	*out = &q;
	return 0;
}

long PosixQueues::do_mq_open(Task &cur, const std::string &name, const kipc_mq_open &o)
{
	uint32_t acc = o.oflag & KIPC_MQ_ACCMODE;
	PosixQueue *q = nullptr;
	bool created = false;
	UserAcct &u = k_.user(cur.uid);
	size_t unclaimed = 0;
	for (const MqOpen *op : mqh_.of_task(cur))
		unclaimed += !op->claimed;
	if (u.bytes + kMqOpenCost > k_.limits().bytes_per_user || unclaimed >= kMqUnclaimedMax)
		return -EMFILE; /* before anything is made: nothing to undo */

	/* prepare_open(): the name exists */
	if (auto it = names_.find(name); it != names_.end()) {
		q = it->second;
		if ((o.oflag & KIPC_O_CREAT) && (o.oflag & KIPC_O_EXCL))
			return -EEXIST;
		if (acc == KIPC_MQ_ACCMODE)
			return -EINVAL;
		uint32_t want = acc == KIPC_MQ_RDONLY ? kMayRead
				: acc == KIPC_MQ_WRONLY ? kMayWrite
							: kMayRead | kMayWrite;
		if (!k_.mbox.ipcperms(cur, *q, want))
			return -EACCES;
	} else {
		if (!(o.oflag & KIPC_O_CREAT))
			return -ENOENT;
		long r = create(cur, name, o, &q);
		if (r < 0)
			return r;
		created = true;
	}

	MqOpen *op = mqh_.add(cur, q, acc, cur.uid, created);
	u.bytes += kMqOpenCost;
	if (int err = host_.mq_opened(op->id, cur.uid, cur.gid, acc)) {
		u.bytes -= kMqOpenCost;
		mqh_.remove(op);
		if (created) /* a failed open leaves nothing behind */
			destroy(q);
		return err;
	}
	host_.mq_readiness(op->id, q->ready & 1, q->ready & 2);
	k_.tracer.opened(*q, created); /* the CREATE or OPEN event */
	return op->id;
}

/* The name goes (the queue dies with its last open). */
void PosixQueues::unlink(PosixQueue &q)
{
	names_.erase(q.name);
	q.name = std::string(); /* stat shows none */
	q.unlinked = true;
}

long PosixQueues::do_mq_unlink(Task &cur, const std::string &name)
{
	auto it = names_.find(name);
	if (it == names_.end())
		return -ENOENT;
	PosixQueue *q = it->second;
	/* The directory is sticky: only the owner removes (glibc: EACCES). */
	if (cur.uid != q->uid && !(cur.uid == 0 && k_.limits().root_bypass))
		return -EACCES;
	unlink(*q);
	q->ctime = k_.now_real();
	if (!mqh_.count(*q))
		destroy(q);
	return 0;
}

/* A notification fired (fired) or was removed: q has no registrant. */
void PosixQueues::remove_notify(PosixQueue &q, bool fired)
{
	auto &n = q.notify;
	if (!n.owner)
		return;
	if (!fired && n.waiter)
		k_.abort_request(n.waiter, -ECANCELED, true); /* clears n.waiter */
	if (!fired && n.kind == KIPC_MQ_SIGEV_THREAD)
		k_.user(n.owner->uid).bytes -= kMqNotifyCost;
	if (auto it = notifying_.find(n.owner); --it->second == 0)
		notifying_.erase(it);
	n = {};
}

/* __do_notify(): cur queued the first message and nobody was waiting. */
void PosixQueues::fire(PosixQueue &q, Task &cur)
{
	auto &n = q.notify;
	switch (n.kind) {
	case KIPC_MQ_SIGEV_SIGNAL:
		if (n.signo)
			host_.mq_signal(n.owner->pid, n.signo, n.value, cur.pid, cur.uid);
		break;
	case KIPC_MQ_SIGEV_THREAD:
		if (Request *r = n.waiter) {
			kipc_cqe cqe{};
			cqe.pid = cur.pid;
			cqe.type = cur.uid;
			k_.finish(r, cqe);
			k_.user(n.owner->uid).bytes -= kMqNotifyCost;
		} else { /* the charge stays with it until it is taken */
			fired_[n.token] = {n.owner->pid, cur.pid, cur.uid, n.owner->uid};
		}
		break;
	}
	remove_notify(q, true);
}

/*
 * The queue of a send or receive. a.addr2 is 0, or the flags generation
 * at which the caller read its descriptor's O_NONBLOCK (the library
 * caches it, libkipc-posix.so): -ESTALE, nothing done, if a descriptor
 * of the open had its flags changed since (mq_setfl), so the caller
 * reads them again and retries.
 */
PosixQueue *PosixQueues::xfer_queue(Task &cur, int64_t h, int64_t fd, uint32_t need,
				    MsgArgs &a, int *err)
{
	uint64_t flgen = std::exchange(a.addr2, 0);
	MqOpen *o = get(cur, h, fd, need, err);
	if (o && flgen && flgen != o->flgen) {
		*err = -ESTALE;
		return nullptr;
	}
	return o ? &as_queue(*o->mb) : nullptr;
}

/*
 * pipelined_send() hands the message to the first receiver waiting, but
 * not to one whose process has exited and whose exit the host has yet to
 * read: the exit may have come before this send (the sender may be the
 * process that reaped it), and the message would go with the dead
 * process. Such a receive ends here (it has nobody to complete to), and
 * the message goes to the next receiver, or is queued, as if the host
 * had read the exit first. One check of the receiver that would get it
 * (a poll of its pidfd in kipcd) per send that finds one waiting.
 */
static void drop_exited_receivers(KernelImpl &k, MqHost &host, Link &l)
{
	while (WaitEntry *w = l.receivers().front()) {
		if (!host.mq_exited(w->req->task->pid))
			return;
		k.abort_request(w->req, -ESRCH, false);
	}
}

long PosixQueues::do_mq_send(Task &cur, int64_t h, int64_t fd, MsgArgs &a, kipc_cqe &cqe)
{
	int err;
	PosixQueue *q = xfer_queue(cur, h, fd, KIPC_MQ_WRONLY, a, &err);
	if (!q)
		return err;
	KernelImpl::Sent how;
	if (a.len > q->link.msgsize)
		return -EMSGSIZE;
	drop_exited_receivers(k_, host_, q->link);
	long r = k_.do_send(cur, q->link, a, cqe, 0, nullptr, &how);
	/* __do_notify(): queued (not handed to a receiver) into an empty queue */
	if (how == KernelImpl::Sent::Queued && q->link.msgs.nmsg == 1 && q->notify.owner)
		fire(*q, cur);
	cqe.pid = 0; /* POSIX does not say who received it */
	return r;
}

long PosixQueues::do_mq_receive(Task &cur, int64_t h, int64_t fd, MsgArgs &a, kipc_cqe &cqe)
{
	int err;
	PosixQueue *q = xfer_queue(cur, h, fd, KIPC_MQ_RDONLY, a, &err);
	if (!q)
		return err;
	Link *l = &q->link;
	if (a.len < l->msgsize)
		return -EMSGSIZE;
	return k_.do_receive(cur, &l, 1, Selector{}, a, cqe);
}

long PosixQueues::do_mq_getattr(Task &cur, int64_t h, int64_t fd, kipc_mq_attr &at)
{
	int err;
	MqOpen *o = get(cur, h, fd, KIPC_MQ_ACCMODE, &err);
	if (!o)
		return err;
	const Link &l = o->mb->link;
	at = kipc_mq_attr{};
	at.maxmsg = l.capacity;
	at.msgsize = l.msgsize;
	at.curmsgs = l.msgs.nmsg;
	at.flgen = o->flgen;
	return 0;
}

/* A descriptor of open h had its status flags changed (fcntl(F_SETFL),
 * ioctl(FIONBIO), mq_setattr): every cached O_NONBLOCK of it is stale. */
long PosixQueues::do_mq_setfl(Task &cur, int64_t h, int64_t fd)
{
	int err;
	MqOpen *o = get(cur, h, fd, KIPC_MQ_ACCMODE, &err);
	if (!o)
		return err;
	o->flgen++;
	return 0;
}

long PosixQueues::do_mq_notify(Task &cur, int64_t h, int64_t fd, const kipc_mq_notify &req)
{
	int err;
	PosixQueue *q = queue(cur, h, fd, KIPC_MQ_ACCMODE, &err);
	if (!q)
		return err;
	auto &n = q->notify;
	if (req.notify == KIPC_MQ_NOTIFY_REMOVE) {
		if (n.owner == &cur)
			remove_notify(*q, false);
		return 0;
	}
	if (n.owner)
		return -EBUSY;
	if (req.notify == KIPC_MQ_SIGEV_THREAD) {
		UserAcct &u = k_.user(cur.uid);
		if (u.bytes + kMqNotifyCost > k_.limits().bytes_per_user)
			return -ENOMEM;
		u.bytes += kMqNotifyCost;
	}
	n.owner = &cur;
	n.kind = req.notify;
	n.signo = req.signo;
	n.value = req.value;
	n.token = req.notify == KIPC_MQ_SIGEV_THREAD ? k_.rpc.new_token() : 0;
	notifying_[&cur]++;
	q->ctime = k_.now_real();
	return n.token;
}

long PosixQueues::do_mq_notify_wait(Task &cur, int64_t h, uint64_t token, const MsgArgs &a,
				    kipc_cqe &cqe)
{
	if (auto it = fired_.find(token); it != fired_.end() && it->second.owner == cur.pid) {
		cqe.pid = it->second.from;
		cqe.type = it->second.uid;
		k_.user(it->second.owner_uid).bytes -= kMqNotifyCost;
		fired_.erase(it);
		return 0;
	}
	int err;
	PosixQueue *q = queue(cur, h, -1, KIPC_MQ_ACCMODE, &err);
	if (!q)
		return -ECANCELED; /* closed, and with it the registration */
	auto &n = q->notify;
	if (n.owner != &cur || n.kind != KIPC_MQ_SIGEV_THREAD || n.token != token)
		return -ECANCELED; /* removed before we got here */
	if (n.waiter)
		return -EBUSY;
	ReqPtr r = k_.new_request(cur, ReqKind::MqNotify, a);
	r->slot = &n.waiter;
	n.waiter = k_.park(std::move(r));
	return -EQUEUED;
}

/*
 * Open o ends: no task may use it, no descriptor of it is left. A task
 * whose table still had it closed its last descriptor of it without
 * telling us first (kipcd saw the FIFO lose its last reader before the
 * library's mq_close came): that is a close of a descriptor of the queue,
 * so its registration goes (mqueue_flush_file), as in do_mq_close.
 */
void PosixQueues::end_open(MqOpen *o)
{
	PosixQueue &q = as_queue(*o->mb);
	int64_t h = o->id;
	if (const Task *owner = q.notify.owner) {
		for (const Task *t : mqh_.tasks_of(*o))
			if (t == owner)
				remove_notify(q, false);
	}
	k_.user(o->uid).bytes -= kMqOpenCost;
	mqh_.remove(o);
	host_.mq_closed(h);
	if (q.unlinked && !mqh_.count(q))
		destroy(&q);
}

/*
 * A descriptor of open h was closed by cur (mqueue_flush_file): cur's
 * registration goes; h leaves cur's table (another descriptor of it in
 * the same process is proved again on its next use); the open ends once
 * no table has it and no descriptor is left. KIPC_MQ_CLOSE_ABORT: the
 * library could not make the descriptor of an mq_open that just
 * succeeded; the open ends, and a queue that open created is removed.
 */
long PosixQueues::do_mq_close(Task &cur, int64_t h, uint32_t flags)
{
	MqOpen *o = mqh_.find(h);
	if (!o || !mqh_.holds(cur, *o))
		return -EBADF;
	PosixQueue &q = as_queue(*o->mb);
	if (q.notify.owner == &cur)
		remove_notify(q, false);
	if (flags & KIPC_MQ_CLOSE_ABORT) {
		if (o->created && mqh_.count(q) == 1 && !q.unlinked)
			unlink(q);
		end_open(o);
		return 0;
	}
	if (mqh_.drop(cur, *o) && !(o->claimed && host_.mq_in_use(h)))
		end_open(o);
	return 0;
}

const Link *PosixQueues::credit_link(Task &cur, int64_t h)
{
	int err;
	MqOpen *o = get(cur, h, -1, KIPC_MQ_WRONLY, &err); /* cur's own, claimed */
	if (!o)
		return nullptr;
	const PosixQueue &q = as_queue(*o->mb);
	return q.notify.owner || q.link.msgs.nmsg == 0 ? nullptr : &q.link;
}

int64_t PosixQueues::credit_queue(int64_t h, uint32_t *nmsg, uint32_t *cap, uint32_t *msgsize)
{
	MqOpen *o = mqh_.find(h);
	if (!o)
		return 0;
	*nmsg = o->mb->link.msgs.nmsg;
	*cap = o->mb->link.capacity;
	*msgsize = o->mb->link.msgsize;
	return o->mb->link.id();
}

Link *PosixQueues::push_link(Task &cur, int64_t h, int *err)
{
	MqOpen *o = get(cur, h, -1, KIPC_MQ_RDONLY, err); /* cur's own, claimed */
	return o ? &o->mb->link : nullptr;
}

void PosixQueues::release(int64_t h)
{
	MqOpen *o = mqh_.find(h);
	if (o && o->claimed && !host_.mq_in_use(h))
		end_open(o);
}

void PosixQueues::destroy(PosixQueue *q)
{
	k_.mbox.destroy_mbox(q); /* destroying() first; nobody can wait on it: no descriptor is left */
}

/* destroy_mbox() starts: the registration, the opens, the name, the charge go. */
void PosixQueues::destroying(Mailbox &mb)
{
	PosixQueue &q = as_queue(mb);
	remove_notify(q, false);
	for (MqOpen *o : mqh_.of_queue(q)) { /* none but at teardown: it dies with its last open */
		k_.user(o->uid).bytes -= kMqOpenCost;
		host_.mq_closed(o->id);
		mqh_.remove(o);
	}
	if (auto it = names_.find(q.name); it != names_.end() && it->second == &q)
		names_.erase(it);
	k_.user(q.cuid).mq_bytes -= q.charge;
	queues_.erase(&q);
}

/* t exited: its registrations go, its unclaimed notifications, its opens. */
void PosixQueues::task_exit(Task &t)
{
	if (notifying_.count(&t))
		for (PosixQueue *q : queues_)
			if (q->notify.owner == &t)
				remove_notify(*q, false);
	std::erase_if(fired_, [&](const auto &e) {
		if (e.second.owner != t.pid)
			return false;
		k_.user(e.second.owner_uid).bytes -= kMqNotifyCost;
		return true;
	});
	for (MqOpen *o : mqh_.of_task(t))
		if (mqh_.drop(t, *o) && !(o->claimed && host_.mq_in_use(o->id)))
			end_open(o);
}

void PosixQueues::charges(Charges &c) const
{
	uint32_t nreg = 0;
	for (const PosixQueue *q : queues_) {
		for (const MqOpen *o : mqh_.of_queue(*q))
			c.bytes[o->uid] += kMqOpenCost;
		if (q->notify.owner && q->notify.kind == KIPC_MQ_SIGEV_THREAD)
			c.bytes[q->notify.owner->uid] += kMqNotifyCost;
		nreg += q->notify.owner != nullptr;
	}
	for (const auto &[token, f] : fired_)
		c.bytes[f.owner_uid] += kMqNotifyCost;
	uint32_t counted = 0;
	for (const auto &[t, n] : notifying_)
		counted += n;
	KIPC_BUG_ON(counted != nreg);
}

} // namespace kipc
