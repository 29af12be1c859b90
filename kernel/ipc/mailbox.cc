// SPDX-License-Identifier: MIT
/*
 * Mailboxes: the namespace (ids, names, per-user limits), ownership and
 * the receive right, permissions and the multi-receiver policies.
 *
 * Ids (ids.h) are seq << 24 | idx for native mailboxes and POSIX queues
 * (above INT32_MAX, 2^24 slots), Linux's seq * 32768 + idx (or, with
 * ipcmni_extend, seq << 24 | idx) for System V queues, each from a table
 * of its own. idx picks a slot; seq comes from the table's counter bumped
 * at every creation, so an id is not reused until the counter wraps. A
 * slot remembers the seq of its last occupant: an id whose seq is at most
 * that was issued once and is gone (EIDRM); a larger seq or an idx never
 * used was never issued (EINVAL).
 *
 * Rights. The owner task always holds the receive right and may grant it
 * to other tasks and revoke it. Receiving needs the right; on a
 * kernel-owned mailbox a task without it may also receive when the mode
 * bits grant it read permission. Sending needs write permission.
 * Ownership moves with mbox_set_owner (the old owner loses the right, as a
 * Mach receive right moves). A process-owned mailbox dies with its owner;
 * a kernel-owned one loses its owner and lives on until destroyed.
 */
#include <algorithm>

#include "ipc.h"

namespace kipc {

static Slab &mbox_slab()
{
	static Slab *s = new Slab("mailbox", uint32_t(kSlabPtrPrefix + sizeof(Mailbox)));
	return *s; /* never destroyed: kernels may outlive statics */
}

/* Preceded by its slab handle (Slab::alloc_ptr). */
void *Mailbox::operator new(size_t size)
{
	if (size + kSlabPtrPrefix > mbox_slab().objsize())
		kipc_bug(__FILE__, __LINE__, "mailbox larger than its slab object");
	if (void *p = mbox_slab().alloc_ptr())
		return p;
	throw std::bad_alloc();
}

void Mailbox::operator delete(void *p)
{
	if (p)
		mbox_slab().free_ptr(p);
}

bool Mailbox::holds(const Task *t) const
{
	return holders.find(t) < holders.size();
}

size_t Holders::find(const Task *t) const
{
	size_t n = size();
	for (size_t i = 0; i < n; i++)
		if ((*this)[i] == t)
			return i;
	return n;
}

void Holders::add(Mailbox *mb, Task *t)
{
	Holder *h = &first_;
	if (first_.task) {
		if (!rest_)
			rest_ = std::make_unique<std::vector<std::unique_ptr<Holder>>>();
		rest_->push_back(std::make_unique<Holder>());
		h = rest_->back().get();
	}
	h->task = t;
	h->mb = mb;
	t->held.push_back(h);
}

void Holders::remove(size_t i)
{
	Holder *h = i ? (*rest_)[i - 1].get() : &first_;
	h->task->held.remove(h);
	h->task = nullptr;
	if (!rest_)
		return;
	if (i == 0) {
		/* the second becomes the first, at its place in its task's list */
		Holder *next = (*rest_)[0].get();
		first_.task = next->task;
		first_.mb = next->mb;
		next->task->held.insert_after(next, &first_);
		next->task->held.remove(next);
		i = 1;
	}
	rest_->erase(rest_->begin() + long(i - 1));
	if (rest_->empty())
		rest_.reset();
}

Mailboxes::Mailboxes(KernelImpl &k, const Limits &l)
	: Mechanism(0, 0, true), k_(k), msq_ids_(l.ipcmni_extend ? kIdxBitsExtend : 15, 1,
			 l.ipcmni_extend ? kSeqMaxExtend : kSeqMax,
			 l.ipcmni_extend ? 1u << kIdxBitsExtend : kIdxMax)
{
}

Mailbox *Mailboxes::find(int64_t id, int *err) const
{
	/* the tables' ranges do not meet: System V ids are positive ints */
	return id > INT32_MAX ? mbox_ids_.find(id, err) : msq_ids_.find(id, err);
}

int Mailboxes::resolve_attr(const kipc_mbox_attr *a, bool is_taskq, LinkAttr *out) const
{
	const Limits &lim = k_.limits();
	uint32_t cap = a ? a->capacity : KIPC_CAP_DEFAULT;
	uint32_t msgsize = a && a->msgsize ? a->msgsize : lim.msgsize_default;
	uint32_t allowed = KIPC_MBOX_FIXED | (is_taskq ? 0 : KIPC_MBOX_KERNEL_OWNED);

	if (is_taskq && a && a->policy)
		return -EINVAL; /* a task queue has one receiver: no policy */
	if (cap == KIPC_CAP_DEFAULT)
		cap = is_taskq ? lim.taskq_capacity : lim.msg_default;
	if (cap != KIPC_UNBOUNDED && cap > lim.msg_max)
		return -EINVAL;
	if (msgsize > lim.msgsize_max)
		return -EINVAL;
	if (a && (a->flags & ~allowed))
		return -EINVAL;
	out->capacity = cap;
	out->msgsize = msgsize;
	out->fixed = a && (a->flags & KIPC_MBOX_FIXED);
	if (cap == KIPC_UNBOUNDED)
		out->qbytes = UINT64_MAX;
	else if (a && a->qbytes)
		out->qbytes = a->qbytes;
	else
		out->qbytes = uint64_t(cap) * msgsize;
	return 0;
}

/* Linux's in_group_p(): the effective gid or a supplementary group. */
static bool in_group(const Task &t, gid_t g)
{
	return t.gid == g || std::find(t.groups.begin(), t.groups.end(), g) != t.groups.end();
}

bool Mailboxes::ipcperms(const Task &cur, const Mailbox &mb, uint32_t want) const
{
	uint32_t granted = mb.mode;

	if (cur.uid == 0 && k_.limits().root_bypass)
		return true;
	if (cur.uid == mb.uid || cur.uid == mb.cuid)
		granted >>= 6;
	else if (in_group(cur, mb.gid) || in_group(cur, mb.cgid))
		granted >>= 3;
	return (want & ~granted & 7) == 0;
}

bool Mailboxes::may_admin(const Task &cur, const Mailbox &mb) const
{
	if (!mb.mech->mbox_calls)
		return false; /* POSIX and System V queues: their own calls only */
	return mb.owner == &cur || cur.uid == mb.uid || cur.uid == mb.cuid ||
	       (cur.uid == 0 && k_.limits().root_bypass);
}

/* A pair binding whose task is gone no longer binds. */
static bool bound_to_other(const KernelImpl &k, pid_t bound, const Task &cur)
{
	return bound && bound != cur.pid && k.find_task(bound);
}

int Mailboxes::check_send(Task &cur, Mailbox &mb)
{
	if (!mb.mech->mbox_calls)
		return -EINVAL;
	if (!ipcperms(cur, mb, kMayWrite))
		return -EACCES;
	const Policy *p = policy(mb);
	if (mb.policy == KIPC_POLICY_PAIR && p && bound_to_other(k_, p->pair_sender, cur))
		return -EPERM; /* bound by the first send that happens: sent() */
	return 0;
}

int Mailboxes::check_receive(Task &cur, Mailbox &mb)
{
	if (!mb.mech->mbox_calls)
		return -EINVAL;
	if (!mb.holds(&cur)) {
		if (!mb.kernel_owned())
			return -EPERM;
		if (!ipcperms(cur, mb, kMayRead))
			return -EACCES;
	}
	switch (mb.policy) {
	case KIPC_POLICY_PAIR: { /* bound when a receive happens: received() */
		const Policy *p = policy(mb);
		if (p && bound_to_other(k_, p->pair_receiver, cur))
			return -EPERM;
		break;
	}
	case KIPC_POLICY_EXCLUSIVE:
		if (Task *in = exclusive_receiver(mb); in && in != &cur)
			return -EBUSY;
		break;
	}
	return 0;
}

Mailbox *Mailboxes::create(Task &cur, std::unique_ptr<Mailbox> mb, bool sysv_ids,
			   const LinkAttr &la, uint32_t mode, int *err, int64_t want_id)
{
	IdTable &ids = sysv_ids ? msq_ids_ : mbox_ids_;
	int64_t id = ids.alloc(mb.get(), want_id);
	if (id < 0) {
		*err = int(id);
		return nullptr;
	}
	mb->link.mbox = mb.get();
	k_.init_link(mb->link, la);
	mb->id = id;
	mb->uid = mb->cuid = cur.uid;
	mb->gid = mb->cgid = cur.gid;
	mb->mode = mode & 0777;
	mb->ctime = k_.now_real();
	return mb.release(); /* owned by its table until destroy_mbox() */
}

Mailbox *Mailboxes::create_queue(Task &cur, std::unique_ptr<Mailbox> fresh, bool sysv_ids,
				 const LinkAttr &la, uint32_t mode, int *err, int64_t want_id)
{
	Mailbox *mb = create(cur, std::move(fresh), sysv_ids, la, mode, err, want_id);
	if (!mb)
		return nullptr;
	mb->link.fifo_senders = true;
	mb->link.quota = false; /* charged per queue (POSIX) or per message by its mechanism */
	mb->flags = KIPC_MBOX_KERNEL_OWNED;
	mb->policy = KIPC_POLICY_ANY;
	mb->owner = nullptr;
	return mb;
}

long Mailboxes::open(Task &cur, const std::string &name, uint32_t oflag,
		     const kipc_mbox_attr *attr)
{
	if (!name.empty()) {
		auto it = names_.find(name);
		if (it != names_.end()) {
			if ((oflag & KIPC_O_CREAT) && (oflag & KIPC_O_EXCL))
				return -EEXIST;
			return k_.tracer.opened(*it->second, false);
		}
		if (!(oflag & KIPC_O_CREAT))
			return -ENOENT;
	}

	LinkAttr la;
	if (int err = resolve_attr(attr, false, &la))
		return err;
	uint32_t policy = attr ? attr->policy : KIPC_POLICY_ANY;
	if (policy > KIPC_POLICY_MAX)
		return -EINVAL;
	UserAcct &u = k_.user(cur.uid);
	if (u.mailboxes >= k_.limits().mbox_per_user)
		return -ENOSPC;

	int err;
	Mailbox *p = create(cur, std::make_unique<Mailbox>(*this), false, la,
			    attr ? attr->mode : 0600, &err);
	if (!p)
		return err;
	p->name = name;
	p->flags = attr ? attr->flags : 0;
	p->policy = policy;
	p->link.keyed = policy == KIPC_POLICY_ROUND_ROBIN;
	p->owner = &cur;
	add_holder(*p, cur);
	if (!name.empty())
		names_.emplace(name, p);
	u.mailboxes++;
	return k_.tracer.opened(*p, true);
}

void Mailboxes::destroying(Mailbox &mb)
{
	policies_.erase(&mb);
	if (!mb.name.empty())
		names_.erase(mb.name);
	k_.user(mb.cuid).mailboxes--;
}

void Mailboxes::charges(Charges &c) const
{
	mbox_ids_.for_each([&](const Mailbox *mb) {
		if (mb->mech == this) /* POSIX queues share the table */
			c.mailboxes[mb->cuid]++;
	});
}

void Mailboxes::destroy_mbox(Mailbox *mb)
{
	mb->mech->destroying(*mb); /* its names, keys, counts and charges go first */
	k_.count_destroyed();
	const Task *current = k_.current_task();
	/* by the kernel (a POSIX queue's last close): its creator's user sees it */
	KIPC_TRACE(k_, {.event = KIPC_TRACE_DESTROY, .task = current, .link = &mb->link,
			   .flags = mb->mech->trace_flag,
			   .uid = current ? -1 : int64_t(mb->cuid)});
	k_.drain_link(mb->link, -EIDRM);
	while (!mb->holders.empty())
		mb->holders.remove(mb->holders.size() - 1);
	(mb->id > INT32_MAX ? mbox_ids_ : msq_ids_).free(mb->id); /* as find() */
	delete mb;
}

/* Run f(mb) on mailbox id if cur may administer it (destroy, setattr). */
template <class F> long Mailboxes::administered(Task &cur, int64_t id, F &&f)
{
	int err;
	Mailbox *mb = find(id, &err);
	if (!mb)
		return err;
	if (!may_admin(cur, *mb))
		return -EPERM;
	return f(mb);
}

long Mailboxes::destroy(Task &cur, int64_t id)
{
	return administered(cur, id, [&](Mailbox *mb) {
		destroy_mbox(mb);
		return 0L;
	});
}

void Mailboxes::fill_stat(const Mailbox &mb, kipc_mbox_stat &st) const
{
	const Link &l = mb.link;
	st = kipc_mbox_stat{};
	st.id = mb.id;
	l.stat(st.attr, st);
	st.attr.flags = mb.flags | mb.mech->mbox_flag; /* the kind: output only */
	st.attr.policy = mb.policy;
	st.attr.mode = mb.mode;
	st.attr.uid = mb.uid;
	st.attr.gid = mb.gid;
	st.cuid = mb.cuid;
	st.cgid = mb.cgid;
	st.owner = mb.owner ? mb.owner->pid : 0;
	st.nholders = mb.holders.size();
	const LinkSide &ls = l.used();
	st.lspid = ls.lspid;
	st.lrpid = ls.lrpid;
	st.stime = ls.stime;
	st.rtime = ls.rtime;
	st.ctime = mb.ctime;
	st.nsent = ls.nsent;
	st.nreceived = ls.nreceived;
	mb.name.copy(st.name, KIPC_NAME_MAX); /* an unlinked POSIX queue has none */
}

long Mailboxes::stat(Task &cur, int64_t id, kipc_mbox_stat &st)
{
	int err;
	Mailbox *mb = find(id, &err);
	if (!mb)
		return err;
	if (!mb->holds(&cur) && !ipcperms(cur, *mb, kMayRead))
		return -EACCES;
	fill_stat(*mb, st);
	return 0;
}

long Mailboxes::setattr(Task &cur, int64_t id, uint32_t mask, const kipc_mbox_attr &a)
{
	return administered(cur, id, [&](Mailbox *mb) { return set_attr(mb, mask, a); });
}

/* setattr of mb, which cur may administer */
long Mailboxes::set_attr(Mailbox *mb, uint32_t mask, const kipc_mbox_attr &a)
{
	LinkAttr la{};
	if (mask & KIPC_SET_CAPACITY) {
		kipc_mbox_attr want = a;
		want.msgsize = mb->link.msgsize;
		want.flags = mb->flags;
		if (int e = resolve_attr(&want, false, &la))
			return e;
	}
	if (mask & KIPC_SET_POLICY) {
		if (a.policy > KIPC_POLICY_MAX)
			return -EINVAL;
		if (a.policy != mb->policy && (mb->link.msgs.nmsg || mb->link.pending().nmsg ||
					       !mb->link.receivers().empty()))
			return -EBUSY; /* routes and bindings of queued traffic */
	}
	if (mask & KIPC_SET_MODE)
		mb->mode = a.mode & 0777;
	if (mask & KIPC_SET_UID)
		mb->uid = a.uid;
	if (mask & KIPC_SET_GID)
		mb->gid = a.gid;
	if (mask & KIPC_SET_POLICY) {
		mb->policy = a.policy;
		mb->link.keyed = a.policy == KIPC_POLICY_ROUND_ROBIN; /* nothing queued */
		if (auto it = policies_.find(mb); it != policies_.end())
			it->second.pair_sender = it->second.pair_receiver = 0;
	}
	if (mask & KIPC_SET_CAPACITY) {
		mb->link.capacity = la.capacity;
		mb->link.qbytes = la.qbytes;
		k_.refill(mb->link);
	}
	mb->ctime = k_.now_real();
	return 0;
}

void Mailboxes::add_holder(Mailbox &mb, Task &t)
{
	if (mb.holds(&t))
		return;
	mb.holders.add(&mb, &t);
}

/*
 * t loses the receive right: its round-robin share goes back to the pool
 * (route 0, which every receiver takes), and its receives parked on mb
 * that it may no longer do fail with the reason.
 */
void Mailboxes::remove_holder(Mailbox &mb, Task &t)
{
	size_t pos = mb.holders.find(&t);
	if (pos == mb.holders.size())
		return;
	mb.holders.remove(pos);
	if (auto it = policies_.find(&mb); it != policies_.end()) {
		uint32_t &next = it->second.rr_next;
		if (pos < next)
			next--;
		if (next >= mb.holders.size())
			next = 0;
	}
	if (mb.policy == KIPC_POLICY_ROUND_ROBIN) {
		/* its messages become unassigned and go to whoever comes first;
		 * receivers already waiting get them now */
		mb.link.msgs.rekey(t.pid, 0);
		if (mb.link.side)
			mb.link.side->pending.rekey(t.pid, 0);
		k_.serve_waiters(mb.link);
	}

	int why = 0;
	if (!mb.kernel_owned())
		why = -EPERM;
	else if (!ipcperms(t, mb, kMayRead))
		why = -EACCES;
	if (!why)
		return;
	std::vector<Request *> victims;
	mb.link.receivers().for_each([&](WaitEntry *w) {
		if (w->req->task == &t)
			victims.push_back(w->req);
	});
	for (Request *r : victims)
		k_.abort_request(r, why, true);
}

/* ---- the policies (Mechanism hooks) --------------------------------- */

const Mailboxes::Policy *Mailboxes::policy(const Mailbox &mb) const
{
	auto it = policies_.find(&mb);
	return it == policies_.end() ? nullptr : &it->second;
}

/* On an exclusive mailbox every parked receiver is the same task: the
 * others got EBUSY, and the policy does not change while one waits. */
Task *Mailboxes::exclusive_receiver(const Mailbox &mb)
{
	const WaitEntry *w = mb.link.receivers().front();
	return w ? w->req->task : nullptr;
}

pid_t Mailboxes::route(const Mailbox &mb) const
{
	if (mb.holders.empty()) /* keyed: round-robin */
		return 0;
	const Policy *p = policy(mb);
	return mb.holders[p ? p->rr_next % mb.holders.size() : 0]->pid;
}

void Mailboxes::sent(Mailbox &mb, const Task &cur)
{
	if (mb.policy == KIPC_POLICY_ROUND_ROBIN && !mb.holders.empty()) {
		Policy &p = policies_[&mb];
		p.rr_next = uint32_t((p.rr_next + 1) % mb.holders.size()); /* past route() */
	} else if (mb.policy == KIPC_POLICY_PAIR) {
		policies_[&mb].pair_sender = cur.pid;
	}
}

void Mailboxes::received(Mailbox &mb, const Task &cur)
{
	if (mb.policy == KIPC_POLICY_PAIR)
		policies_[&mb].pair_receiver = cur.pid;
}

Task *Mailboxes::sole_receiver(const Mailbox &mb) const
{
	const Policy *p = mb.policy == KIPC_POLICY_PAIR ? policy(mb) : nullptr;
	if (p && p->pair_receiver)
		return k_.find_task(p->pair_receiver);
	if (!mb.kernel_owned() && mb.holders.size() == 1)
		return mb.holders[0];
	return nullptr;
}

/* Round-robin and pair decide a receive by who makes it, exclusive by who
 * waits: only ANY may have its receiver chosen ahead (receive push). */
bool Mailboxes::plain_receive(const Mailbox &mb) const
{
	return mb.policy == KIPC_POLICY_ANY;
}

Mailboxes::PolicyView Mailboxes::policy_view(const Mailbox &mb) const
{
	PolicyView v{};
	const Policy *p = policy(mb);
	if (p) {
		v.pair_sender = p->pair_sender;
		v.pair_receiver = p->pair_receiver;
	}
	if (mb.policy == KIPC_POLICY_EXCLUSIVE)
		if (Task *in = exclusive_receiver(mb))
			v.excl = in->pid;
	if (mb.policy == KIPC_POLICY_ROUND_ROBIN && !mb.holders.empty())
		v.rr_next = route(mb);
	return v;
}

/* ---- by id: what the message syscalls ask for -------------------- */

/*
 * Mailbox receivers select with rr/key = the caller: on a round-robin
 * mailbox that takes the messages assigned to the caller and unassigned
 * ones; on others every message is unassigned (route 0).
 */
static Selector mbox_selector(Task &cur)
{
	Selector sel;
	sel.rr = true;
	sel.key = cur.pid;
	return sel;
}

Link *Mailboxes::to_send(Task &cur, int64_t id, int *err)
{
	Mailbox *mb = find(id, err);
	if (!mb)
		return nullptr;
	if ((*err = check_send(cur, *mb)))
		return nullptr;
	return &mb->link;
}

long Mailboxes::send(Task &cur, int64_t id, MsgArgs &a, kipc_cqe &cqe)
{
	int err;
	Link *l = to_send(cur, id, &err);
	return l ? k_.do_send(cur, *l, a, cqe) : err;
}

Link *Mailboxes::to_receive(Task &cur, int64_t id, const MsgArgs &a, Selector *sel,
			      int *err)
{
	Mailbox *mb = find(id, err);
	if (!mb)
		return nullptr;
	if (mb->policy == KIPC_POLICY_ROUND_ROBIN) {
		*err = a.flags & KIPC_F_TYPE ? -EINVAL : 0; /* the rotation decides, not the type */
		*sel = mbox_selector(cur);
	} else {
		*err = int(type_selector(a, sel));
	}
	if (!*err)
		*err = check_receive(cur, *mb);
	return *err ? nullptr : &mb->link;
}

long Mailboxes::receive(Task &cur, int64_t id, MsgArgs &a, kipc_cqe &cqe)
{
	int err;
	Selector sel;
	Link *l = to_receive(cur, id, a, &sel, &err);
	return l ? k_.do_receive(cur, &l, 1, sel, a, cqe) : err;
}

long Mailboxes::receive_set(Task &cur, const int64_t *ids, size_t n, MsgArgs &a,
			    kipc_cqe &cqe)
{
	int err;
	Link *links[kRecvSetMax];
	KIPC_BUG_ON(n > kRecvSetMax); /* the syscall checked */
	for (size_t i = 0; i < n; i++) {
		if (std::find(ids, ids + i, ids[i]) != ids + i)
			return -EINVAL; /* each mailbox once */
		Mailbox *mb = find(ids[i], &err);
		if (!mb)
			return err;
		if ((err = check_receive(cur, *mb)))
			return err;
		links[i] = &mb->link;
	}
	return k_.do_receive(cur, links, n, mbox_selector(cur), a, cqe);
}

/*
 * The next message a receive of cur would take (the same lookup and
 * rights as receive(): the queue first, then the blocked senders'), its
 * first a.len bytes copied to a.addr; it stays where it is, so nothing
 * is counted, traced as delivered or bound by a policy. The result is its
 * full length; cqe says who sent it, its priority, type and sequence
 * number, and TRUNC when a.len was shorter. Never waits: EAGAIN when
 * there is none. A call's token is not shown (a token is what lets its
 * receiver answer).
 */
long Mailboxes::peek(Task &cur, int64_t id, MsgArgs &a, kipc_cqe &cqe)
{
	int err;
	Selector sel;
	Link *l = to_receive(cur, id, a, &sel, &err);
	if (!l)
		return err;
	const Message *m = l->msgs.find(sel);
	if (!m)
		m = l->pending().find(sel);
	if (!m)
		return -EAGAIN;
	uint32_t n = std::min<uint32_t>(m->len, a.len);
	if (cur.mm && cur.mm->copy_to_user(a.addr, m->data, n))
		return -EFAULT;
	cqe.res = m->len;
	describe_received(cqe, *m, n, id);
	return cqe.res;
}

/*
 * Run f(mb, t) on mailbox id as its owner manages it for pid (set_owner,
 * grant, revoke): only the owning task, or any task of the mailbox's user
 * when a kernel-owned mailbox has lost its owner (the user adopts it); t
 * is pid's task, made for a live process that has not attached yet when
 * make (else ESRCH).
 */
template <class F> long Mailboxes::owned(Task &cur, int64_t id, pid_t pid, bool make, F &&f)
{
	int err;
	Mailbox *mb = find(id, &err);
	if (!mb)
		return err;
	if (mb->owner != &cur && (mb->owner || !may_admin(cur, *mb)))
		return -EPERM;
	Task *t = make ? k_.get_task(pid, &err) : k_.find_task(pid);
	if (!t)
		return make ? err : -ESRCH;
	return f(*mb, *t);
}

long Mailboxes::set_owner(Task &cur, int64_t id, pid_t pid)
{
	/* like grant: a live, unattached pid too */
	return owned(cur, id, pid, true, [&](Mailbox &mb, Task &t) {
		if (mb.owner == &t)
			return 0L;
		/* new owner and credentials first: the old owner's receives are judged by them */
		Task *old = mb.owner;
		mb.owner = &t;
		mb.uid = t.uid;
		mb.gid = t.gid;
		if (old)
			remove_holder(mb, *old);
		add_holder(mb, t);
		mb.ctime = k_.now_real();
		return 0L;
	});
}

long Mailboxes::grant(Task &cur, int64_t id, pid_t pid)
{
	return owned(cur, id, pid, true, [&](Mailbox &mb, Task &t) {
		add_holder(mb, t);
		return 0L;
	});
}

long Mailboxes::revoke(Task &cur, int64_t id, pid_t pid)
{
	return owned(cur, id, pid, false, [&](Mailbox &mb, Task &t) {
		if (&t == mb.owner)
			return long(-EPERM); /* the owner's right goes only with ownership */
		remove_holder(mb, t);
		return 0L;
	});
}

/* t exited (exit_task, step 3): its process-owned mailboxes are destroyed,
 * kernel-owned ones lose their owner, its receive rights go. */
void Mailboxes::task_exit(Task &t)
{
	while (!t.held.empty()) {
		Mailbox *mb = t.held.back()->mb;
		if (mb->owner == &t && !mb->kernel_owned()) {
			destroy_mbox(mb);
			continue;
		}
		if (mb->owner == &t)
			mb->owner = nullptr;
		remove_holder(*mb, t);
	}
}

} // namespace kipc
