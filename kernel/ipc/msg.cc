// SPDX-License-Identifier: MIT
/*
 * Sending and receiving on a link (a task queue or a mailbox): the core of
 * kipc, shared by direct and indirect communication and by calls.
 *
 * A message moves through at most three places:
 *
 *   sender --(room)--> link->msgs --(receive)--> receiver
 *      \                                            ^
 *       `--(full, or zero capacity)--> link->pending (the sender waits)
 *
 * Send (do_send):
 *  1. A receiver already waiting that accepts the message gets it at once
 *     ("pipelined send", as Linux mqueue does): no queueing, the sender is
 *     told who received it.
 *  2. Otherwise, if nobody waits for room before us and the link has room,
 *     the message is queued and the send completes.
 *  3. Otherwise the link is full (always, at zero capacity): the send fails
 *     EAGAIN (nonblocking) or ETIMEDOUT (expired deadline), is cached
 *     (KIPC_F_CACHE: the message joins pending, the send completes with
 *     KIPC_CQE_F_MORE and a KIPC_CQE_F_NOTIF completion follows when the
 *     message reaches the link), or parks with its message on pending.
 *
 * Receive (do_receive):
 *  1. Take the first acceptable message of link->msgs; if there is none,
 *     the first acceptable pending message (a rendezvous: its sender is
 *     waiting and completes now). A buffer too small fails EMSGSIZE and
 *     leaves the message in place, unless KIPC_F_TRUNC.
 *  2. Taking from msgs frees room: refill() moves pending messages into
 *     the link in delivery order and completes their senders.
 *  3. Nothing acceptable: EAGAIN, ETIMEDOUT, or park on every link.
 */
#include <algorithm>
#include <cstring>
#include <new>

#include "ipc.h"

namespace kipc {

int64_t Link::id() const
{
	return mbox ? mbox->id : 0;
}

const LinkSide Link::idle_{};

bool Link::use()
{
	if (side)
		return true;
	void *p = node_slab(sizeof(LinkSide)).alloc_ptr();
	if (!p)
		return false;
	side.reset(new (p) LinkSide);
	return true;
}

void Link::SideDelete::operator()(LinkSide *s) const
{
	s->~LinkSide();
	node_slab(sizeof(LinkSide)).free_ptr(s);
}

Message *KernelImpl::alloc_message(Task &cur, uint32_t len, uint8_t flags, int *err, bool quota)
{
	UserAcct &u = user(cur.uid);
	uint64_t charge = message_charge(len, flags & kMsgExt);

	if (quota && u.bytes + charge > lim.bytes_per_user) {
		*err = -ENOSPC;
		return nullptr;
	}
	Message *m = new_message(len, flags & kMsgExt);
	if (!m) {
		*err = -ENOMEM;
		return nullptr;
	}
	m->flags |= flags;
	m->seq = next_msg_seq++;
	m->stime = now_real();
	m->sender = cur.pid;
	m->quota_uid = cur.uid;
	u.bytes += charge;
	return m;
}

uint64_t KernelImpl::count_reply(Task &cur, Task &caller)
{
	uint64_t seq = next_msg_seq++;
	cur.nsent++;
	stats.sent++;
	caller.nreceived++;
	stats.delivered++;
	return seq;
}

void KernelImpl::free_message(Message *m)
{
	KIPC_BUG_ON(m->where != MsgWhere::None || m->req());
	user(m->quota_uid).bytes -= message_charge(m->len, m->flags & kMsgExt);
	delete_message(m);
}

/*
 * The message m left the sender's hands for good (delivered, or dropped
 * with err). Tell the sender if it still waits on m.
 */
static void sender_done(KernelImpl &k, Message *m, int err, Task *receiver)
{
	Request *r = m->req();
	if (!r)
		return;
	m->set_req(nullptr);
	r->msg = nullptr;
	r->link = nullptr;
	if (r->op == ReqKind::Call) {
		if (err) {
			k.abort_request(r, err, true);
			return;
		}
		/* the request was received: wait for receiver's reply */
		r->phase = CallPhase::AwaitReply;
		r->awaited = receiver;
		receiver->awaited_by.push_back(r);
		return;
	}
	kipc_cqe cqe{};
	cqe.res = err;
	cqe.pid = receiver ? receiver->pid : 0;
	cqe.seq = m->seq;
	if (r->cached)
		cqe.flags |= KIPC_CQE_F_NOTIF;
	k.finish(r, cqe);
}

/*
 * A message counts as sent when it reaches a link's queue or a receiver
 * (not when its sender blocks: a blocked send that times out or is
 * cancelled sent nothing). sender: its task, nullptr when gone.
 */
void KernelImpl::count_sent(Link &link, Task *sender, pid_t pid, int64_t stime)
{
	LinkSide &ls = *link.side; /* sends and receives use() it first */
	ls.nsent++;
	ls.lspid = pid;
	ls.stime = stime;
	stats.sent++;
	if (sender)
		sender->nsent++;
}

/*
 * Messages entered or left the queue of link, or room appeared: its
 * mechanism's hook (a POSIX queue's poll state). Called once the link is
 * settled: after refill(), and by a send that queued.
 */
static void link_changed(Link &link)
{
	if (Mailbox *mb = link.mbox)
		mb->mech->link_changed(*mb);
}

void KernelImpl::refill(Link &link)
{
	if (!link.side)
		return; /* nothing pending */
	MsgStore &pending = link.side->pending;
	while (Message *m = link.fifo_senders ? pending.oldest() : pending.front()) {
		if (!link.has_room(m->len))
			break;
		pending.remove(m);
		link.msgs.push(m);
		Request *r = m->req();
		count_sent(link, r ? r->task : find_task(m->sender), m->sender, m->stime);
		KIPC_TRACE(*this, {.event = KIPC_TRACE_ENQUEUE, .task = r ? r->task : nullptr,
				   .pid = m->sender, .link = &link, .msg = m});
		if (r && r->op == ReqKind::Call)
			r->phase = CallPhase::AwaitReply; /* queued: keeps its request on m */
		if (!r || r->op == ReqKind::Call)
			continue;
		m->set_req(nullptr);
		r->msg = nullptr;
		r->link = nullptr;
		kipc_cqe cqe{};
		cqe.pid = link.mbox ? m->route() : 0; /* a mailbox's assignee, or 0 */
		cqe.seq = m->seq;
		if (r->cached)
			cqe.flags |= KIPC_CQE_F_NOTIF;
		finish(r, cqe);
	}
	link_changed(link);
}

/* The lent message's payload into the kernel's copy; nothing lent after. */
void KernelImpl::keep_lent()
{
	if (lent.m)
		std::memcpy(lent.m->data, lent.src, lent.m->len);
	lent = {};
}

int KernelImpl::deliver(Task &rcv, Link &link, Message *m, uint64_t buf, uint32_t buflen,
			uint32_t flags, kipc_cqe &cqe, bool copy)
{
	uint32_t n = std::min<uint32_t>(m->len, buflen);

	if (m->len > buflen && !(flags & KIPC_F_TRUNC))
		return -EMSGSIZE;
	const uint8_t *src = m->data;
	bool one = m == lent.m;
	if (one && rcv.mm == lent.mm) { /* one arena: source and buffer may overlap */
		keep_lent();
		one = false;
	} else if (one) {
		src = lent.src; /* the sender's arena, straight to the receiver's */
	}
	if (copy && rcv.mm && rcv.mm->copy_to_user(buf, src, n))
		return -EFAULT; /* the message stays where it is */
	if (one && copy && rcv.mm)
		stats.onecopy++;

	bool from_link = m->where == MsgWhere::Queued;
	Request *sreq = m->req();
	uint64_t token = m->token();
	if (m->where == MsgWhere::Pending) /* a blocked or cached send completes now */
		count_sent(link, sreq ? sreq->task : find_task(m->sender), m->sender,
			   m->stime);
	KIPC_TRACE(*this, {.event = KIPC_TRACE_DELIVER, .task = &rcv, .peer = m->sender,
			   .link = &link, .msg = m, .res = n,
			   .flags = (token ? KIPC_TRACE_F_CALL : 0u) |
				    (m->where == MsgWhere::None ? KIPC_TRACE_F_HANDOFF
				     : m->where == MsgWhere::Pending ? KIPC_TRACE_F_PENDING : 0u)});
	if (MsgStore *s = link.store_of(*m)) /* none: handed over by a sender, never queued */
		s->remove(m);

	cqe.res = n;
	describe_received(cqe, *m, n, link.id());
	stats.delivered++;
	link.side->nreceived++;
	link.side->lrpid = rcv.pid;
	link.side->rtime = now_real();
	rcv.nreceived++;

	if (token) {
		Request *call = sreq;
		if (call && call->op == ReqKind::Call) {
			cqe.flags |= KIPC_CQE_F_CALL;
			cqe.token = token;
			if (call->phase == CallPhase::Sending)
				call->phase = CallPhase::AwaitReply;
		}
	}
	sender_done(*this, m, 0, &rcv);
	free_message(m);
	if (from_link)
		refill(link);
	return 0;
}

KernelImpl::Offer KernelImpl::offer(Request *r, Link &link, Message *m, const TraceEv *announce)
{
	if (r->multishot)
		return offer_multi(r, link, m, announce);
	if (m->len > r->buflen && !(r->flags & KIPC_F_TRUNC)) {
		abort_request(r, -EMSGSIZE, true); /* System V does the same */
		return Offer::Refused;
	}
	if (announce) /* what caused it, before the WAKE and DELIVER */
		KIPC_TRACE(*this, (*announce));
	Offer res = Offer::Delivered;
	finish(r, [&](Request &rq, kipc_cqe &cqe) {
		if (int err = deliver(*rq.task, link, m, rq.buf, rq.buflen, rq.flags, cqe)) {
			cqe = kipc_cqe{}; /* the buffer went bad: fail it, keep the message */
			cqe.res = err;
			res = Offer::Failed;
		}
		return true;
	});
	return res;
}

/*
 * Hand m to the longest-waiting receiver on link that accepts it; one
 * that cannot take it fails and the next one is tried. Returns the
 * receiver, or nullptr when m stays with us.
 */
static Task *handoff(KernelImpl &k, Link &link, Message *m, const TraceEv &send, bool &traced)
{
	for (WaitEntry *w = link.receivers().front(), *next; w; w = next) {
		next = link.receivers().next(w);
		Request *r = w->req;
		if (!r->sel.matches(m))
			continue;
		Task *rcv = r->task;
		KernelImpl::Offer res = k.offer(r, link, m, traced ? nullptr : &send);
		if (res != KernelImpl::Offer::Refused)
			traced = true; /* the SEND before the WAKE and DELIVER it causes */
		if (res == KernelImpl::Offer::Delivered)
			return rcv;
	}
	return nullptr;
}

void KernelImpl::serve_waiters(Link &link)
{
	for (WaitEntry *w = link.receivers().front(), *next; w; w = next) {
		next = link.receivers().next(w);
		Request *r = w->req;
		Message *m = link.msgs.find(r->sel);
		if (!m)
			m = link.pending().find(r->sel);
		if (m)
			offer(r, link, m);
	}
}

/*
 * A send or a receive by cur on link happened: it completed, or waits
 * inside the link (an operation that fails did not happen). A mailbox's
 * mechanism hears of it (its policies: the pair binding, the round-robin
 * rotation).
 */
static void sent(Link &link, const Task &cur)
{
	if (Mailbox *mb = link.mbox)
		mb->mech->sent(*mb, cur);
}

static void received(Link &link, const Task &cur)
{
	if (Mailbox *mb = link.mbox)
		mb->mech->received(*mb, cur);
}

static void account_send(KernelImpl &k, Link &link, Task &cur, int64_t stime)
{
	sent(link, cur);
	k.count_sent(link, &cur, cur.pid, stime);
}

long KernelImpl::do_send(Task &cur, Link &link, MsgArgs &a, kipc_cqe &cqe, uint64_t token,
			 Request *call, Sent *how)
{
	int err = 0;
	Mailbox *mb = link.mbox;
	Sent where = Sent::Not;
	if (!how)
		how = &where;
	*how = Sent::Not;

	if (a.len > link.msgsize)
		return -EMSGSIZE;
	if (link.capacity && !link.unbounded() && a.len > link.qbytes)
		return -EMSGSIZE; /* it could never fit in the byte bound */
	if (link.fixed && a.len != link.msgsize)
		return -EINVAL;
	if (!link.use())
		return -ENOMEM;
	/* keyed links index by route: task queues (sender), round-robin (assignee) */
	bool keyed = link.keyed;
	uint8_t mflags = keyed || a.type || token ? kMsgExt | (keyed ? kMsgKeyed : 0) : 0;
	Message *m = alloc_message(cur, a.len, mflags, &err, link.quota);
	if (!m)
		return err;
	/* A receiver waits: its delivery copies the payload from the
	 * sender's memory (one copy); the kernel keeps a copy only if
	 * nobody takes it (keep_lent()). */
	const uint8_t *src = !link.receivers().empty() && cur.mm ? cur.mm->view(a.addr, a.len)
								  : nullptr;
	if (!src && cur.mm && cur.mm->copy_from_user(m->data, a.addr, a.len)) {
		free_message(m);
		return -EFAULT;
	}
	m->prio = a.prio;
	if (MsgExt *e = m->ext()) {
		e->type = a.type;
		e->token = token;
	}
	if (keyed)
		m->ext()->route = mb ? mb->mech->route(*mb) : cur.pid;

	cqe.seq = m->seq;
	if (mb)
		cqe.pid = m->route(); /* the sender is told who gets it (round-robin), or 0 */
	/* SEND is traced once its outcome is known, before what it causes */
	TraceEv send{.event = KIPC_TRACE_SEND, .task = &cur,
		     .peer = link.task ? link.task->pid : 0, .link = &link, .msg = m,
		     .flags = token ? KIPC_TRACE_F_CALL : 0u};
	bool traced = false;

	/* 1. pipelined send: a waiting receiver takes it now */
	bool is_call = call && call->op == ReqKind::Call; /* else a bundle's */
	if (is_call) {
		m->set_req(call);
		call->msg = m;
		call->link = &link;
		call->phase = CallPhase::Sending;
	}
	if (!link.receivers().empty()) {
		uint64_t seq = m->seq;
		int64_t stime = m->stime;
		if (src)
			lent = {m, src, cur.mm};
		Task *rcv = handoff(*this, link, m, send, traced);
		if (rcv) {
			lent = {};
			account_send(*this, link, cur, stime); /* m is gone */
			*how = Sent::Handed;
			cqe.pid = rcv->pid;
			cqe.seq = seq;
			return 0;
		}
		keep_lent(); /* nobody took it: it stays, with its bytes */
	}
	/* 2. room in the link, and nobody waits for room before us */
	if (link.pending().nmsg == 0 && link.has_room(a.len)) {
		if (!traced)
			KIPC_TRACE(*this, (send));
		account_send(*this, link, cur, m->stime);
		link.msgs.push(m);
		KIPC_TRACE(*this, {.event = KIPC_TRACE_ENQUEUE, .task = &cur, .link = &link,
				   .msg = m});
		if (is_call)
			call->phase = CallPhase::AwaitReply;
		*how = Sent::Queued;
		link_changed(link);
		return 0;
	}
	/* 3. full */
	err = 0;
	if (a.flags & KIPC_F_CACHE) {
		if (cur.cached)
			err = -EAGAIN;
	} else if (a.wait.nonblock) {
		err = -EAGAIN;
	} else if (a.wait.deadline <= now()) {
		err = -ETIMEDOUT;
	} else if (link.capacity == 0 && would_deadlock(cur, link)) {
		err = -EDEADLK;
	}
	if (err) {
		if (!traced) {
			send.res = err;
			KIPC_TRACE(*this, (send));
		}
		if (is_call) {
			m->set_req(nullptr);
			call->msg = nullptr;
			call->link = nullptr;
			call->phase = CallPhase::None;
		}
		free_message(m);
		return err;
	}
	if (!traced) {
		send.flags |= KIPC_TRACE_F_BLOCKED;
		KIPC_TRACE(*this, (send));
	}
	sent(link, cur); /* it waits inside the link: it happened (not counted yet) */
	ReqPtr own = call ? nullptr : new_request(cur, ReqKind::Send, a);
	Request *r = call ? call : own.get();
	r->msg = m;
	r->link = &link;
	m->set_req(r);
	if (a.flags & KIPC_F_CACHE) {
		r->cached = true;
		r->deadline = kForever;
		cur.cached = r;
		cqe.flags |= KIPC_CQE_F_MORE;
	}
	link.side->pending.push(m);
	KIPC_TRACE(*this, {.event = KIPC_TRACE_BLOCK, .task = &cur, .link = &link, .msg = m,
			   .flags = (is_call ? KIPC_TRACE_F_CALL : 0u) |
				    (r->cached ? KIPC_TRACE_F_CACHED : 0u)});
	bool cached = r->cached;
	*how = Sent::Pending;
	if (own) /* a call is parked by Calls::call */
		park(std::move(own));
	return cached ? 0 : -EQUEUED;
}

long KernelImpl::do_receive(Task &cur, Link *const *links, size_t n, const Selector &sel,
			    MsgArgs &a, kipc_cqe &cqe, Task *awaited, bool awaited_gone)
{
	Message *best = nullptr;
	Link *from = nullptr;

	for (size_t i = 0; i < n; i++)
		if (!links[i]->use())
			return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		Message *m = links[i]->msgs.find(sel);
		if (!m)
			m = links[i]->pending().find(sel);
		if (m && (!best || delivered_before(m, best))) {
			best = m;
			from = links[i];
		}
	}
	if (best) {
		int err = deliver(cur, *from, best, a.addr, a.len, a.flags, cqe);
		if (err)
			return err;
		received(*from, cur);
		return cqe.res;
	}
	if (awaited_gone)
		return -ESRCH;
	if (a.wait.nonblock)
		return -EAGAIN;
	if (a.wait.deadline <= now())
		return -ETIMEDOUT;

	ReqPtr r = new_request(cur, ReqKind::Receive, a);
	if (!r->waits.resize(n))
		return -ENOMEM;
	if (awaited && awaited != &cur) {
		r->awaited = awaited;
		awaited->awaited_by.push_back(r.get());
	}
	r->buf = a.addr;
	r->buflen = a.len;
	r->sel = sel;
	for (size_t i = 0; i < n; i++) {
		r->waits[i].req = r.get();
		r->waits[i].link = links[i];
		links[i]->side->receivers.push_back(&r->waits[i]);
		received(*links[i], cur);
	}
	cur.nrecv_parked++;
	KIPC_TRACE(*this, {.event = KIPC_TRACE_BLOCK, .task = &cur, .link = links[0],
			   .res = long(n)});
	park(std::move(r));
	return -EQUEUED;
}

/* ---- by name: what the syscalls ask for ---------------------------- */

long KernelImpl::find_peer(Task &cur, int64_t pid, Task **out)
{
	int err;
	if (pid <= 0 || pid > INT32_MAX)
		return -EINVAL;
	Task *t = get_task(pid_t(pid), &err);
	if (!t)
		return err;
	if (cur.uid != 0 && cur.uid != t->uid)
		return -EPERM;
	*out = t;
	return 0;
}

long type_selector(const MsgArgs &a, Selector *sel)
{
	if (a.flags & KIPC_F_EXCEPT && (!(a.flags & KIPC_F_TYPE) || a.type <= 0))
		return -EINVAL;
	sel->by_type = a.flags & KIPC_F_TYPE;
	sel->except = a.flags & KIPC_F_EXCEPT;
	sel->type = a.type;
	return 0;
}

Link *KernelImpl::task_to_send(Task &cur, int64_t pid, int *err)
{
	Task *dst = nullptr;
	*err = int(find_peer(cur, pid, &dst));
	return dst ? &dst->queue : nullptr;
}

long KernelImpl::do_task_send(Task &cur, int64_t pid, MsgArgs &a, kipc_cqe &cqe)
{
	int err;
	Link *l = task_to_send(cur, pid, &err);
	return l ? do_send(cur, *l, a, cqe) : err;
}

long KernelImpl::do_task_receive(Task &cur, int64_t target, MsgArgs &a, kipc_cqe &cqe)
{
	if (target < 0 || target > INT32_MAX)
		return -EINVAL;
	Selector sel;
	if (long err = type_selector(a, &sel))
		return err;
	pid_t from = pid_t(target);
	Task *q = nullptr;
	bool gone = false;
	if (from != KIPC_ANY) {
		if (sel.by_type)
			return -EINVAL; /* one selector at a time */
		sel.key = from;
		int err;
		q = from == cur.pid ? &cur : get_task(from, &err);
		gone = !q;
	}
	Link *l = &cur.queue;
	return do_receive(cur, &l, 1, sel, a, cqe, q, gone);
}

/*
 * Destroy every message of a link that is going away (mailbox destroyed,
 * task exited): err goes to senders still waiting on their message and to
 * callers whose request was still queued; parked receivers fail with err.
 */
void KernelImpl::drain_link(Link &link, int err)
{
	if (!link.side) /* never used: nothing pending, nobody waits */
		return link.msgs.drain([&](Message *m) {
			sender_done(*this, m, err, nullptr);
			free_message(m);
		});
	while (WaitEntry *w = link.receivers().front())
		abort_request(w->req, err, true);
	for (MsgStore *s : {&link.side->pending, &link.msgs}) {
		s->drain([&](Message *m) {
			sender_done(*this, m, err, nullptr);
			free_message(m);
		});
	}
}

/*
 * Would blocking cur on the zero-capacity link close a cycle of tasks each
 * waiting for the next? An edge t -> u exists when t is inside no receive
 * and waits on u: a rendezvous send whose only possible receiver is u, or
 * a call waiting for u's reply. Like MINIX, a task is treated as one
 * thread of control: a multi-threaded process that would receive on
 * another thread later is not seen.
 */
namespace {

/* Tasks of a wait-chain walk: inline while short (no malloc per blocking send). */
class TaskStack {
public:
	bool empty() const { return n_ == 0; }
	void push_back(const Task *t)
	{
		if (n_ < kInline)
			inline_[n_] = t;
		else
			more_.push_back(t);
		n_++;
	}
	const Task *pop_back()
	{
		n_--;
		if (n_ < kInline)
			return inline_[n_];
		const Task *t = more_.back();
		more_.pop_back();
		return t;
	}
	bool contains(const Task *t) const
	{
		return std::find(inline_, inline_ + std::min(n_, kInline), t) != inline_ + std::min(n_, kInline) ||
		       std::find(more_.begin(), more_.end(), t) != more_.end();
	}

private:
	static constexpr size_t kInline = 16;
	const Task *inline_[kInline];
	size_t n_ = 0;
	std::vector<const Task *> more_;
};

} // namespace

/* The one task that can receive from link: a task queue's owner, or what
 * the mailbox's mechanism says (nullptr: several, or nobody yet). */
static Task *sole_receiver(const Link &link)
{
	return link.task ? link.task : link.mbox->mech->sole_receiver(*link.mbox);
}

bool KernelImpl::would_deadlock(const Task &cur, const Link &link) const
{
	if (cur.nrecv_parked)
		return false;
	Task *first = sole_receiver(link);
	if (!first)
		return false;
	TaskStack stack, seen;
	stack.push_back(first);
	while (!stack.empty()) {
		const Task *t = stack.pop_back();
		if (t == &cur)
			return true;
		if (t->nrecv_parked || seen.contains(t))
			continue;
		seen.push_back(t);
		t->parked.for_each([&](Request *r) {
			const Task *next = nullptr;
			if (r->phase == CallPhase::AwaitReply && r->awaited)
				next = r->awaited;
			else if (r->msg && !r->cached && r->link && r->link->capacity == 0 &&
				 r->msg->where == MsgWhere::Pending)
				next = sole_receiver(*r->link);
			if (next)
				stack.push_back(next);
		});
	}
	return false;
}

} // namespace kipc
