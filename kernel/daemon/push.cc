// SPDX-License-Identifier: MIT
/*
 * kipcd: receive push (Documentation/transport.md section 13). A
 * synchronous mbox_receive (or receive(KIPC_ANY) of the own task queue)
 * that finds its next message already copied into its own region
 * completes in the caller, with no round trip to kipcd. What makes that
 * result exact:
 *
 *  - a pushed message stays queued in the core until the receiver has
 *    claimed it (one compare-and-swap on kipc_push.claim); the kernel's
 *    queue is the count every other request sees;
 *  - before kipcd runs any request (submit()), and before timers and
 *    exits, it reads every holder's claim and takes the claimed messages
 *    from their queues (push_sync): everything that happens after a
 *    receive returned sees it received, as if kipcd had taken it when it
 *    was claimed;
 *  - a request that could change which message is next on a holder's
 *    link (a receive there but the holder's pushed ones, a send that
 *    would go ahead of the pushed messages, a change of rights,
 *    attributes or the mailbox, any exit) first takes that push back
 *    (push_recall_one): one atomic exchange of claim with 0 says exactly
 *    which messages were claimed before it; the others are simply still
 *    queued, and the receiver's next compare-and-swap fails.
 * Up to kHolders grants at once: one per process, each on one link, and
 * one per mailbox (a mailbox's queue has one head: two processes' slots
 * cannot both hold it, and their claims are in memories neither shares).
 * A plain receive through kipcd of a held link (another receiver's, or
 * the holder's own that found its slot empty) does not take the push back: kipcd
 * takes the holder's next unclaimed message out of its reach (claim
 * swapped to 0 from exactly that message's index), runs the receive,
 * which takes that message, and gives the holder its grant back past it
 * (push_steal, push_settle).
 */
#include "server.h"

#include <algorithm>
#include <cstring>

#include <fmt/core.h>

namespace kipcd {

namespace {

constexpr int64_t kPushCooldownNs = 10000000; /* after another receiver came */
constexpr uint32_t kSlots = KIPC_PUSH_SLOTS;
constexpr size_t kHolders = 8;                /* grants at once, kernel-wide */

} // namespace

/*
 * Can request sqe of p (nullptr: a remote caller) change which message
 * is next on g's link while pushed ones are unclaimed? Not when it
 * changes nothing, or concerns other objects, or sends behind the
 * pushed ones (at a priority not above theirs).
 */
bool Server::push_moves_head(const Push &g, const Proc *p, const kipc_sqe &sqe)
{
	uint8_t op = sqe.opcode;
	if (g.queue)
		return push_moves_mq(g, sqe);
	if (changes_nothing(op) || op == KIPC_SYS_mq_timedreceive || op == KIPC_SYS_msgrcv)
		return false; /* reads, or POSIX and System V queues */
	if (g.link == KIPC_PUSH_TASKQ) {
		switch (op) {
		case KIPC_SYS_send:
		case KIPC_SYS_call:
		case KIPC_SYS_send_bundle: /* each of its messages at sqe.prio */
			return sqe.target == g.p->creds.pid && sqe.prio > g.prio;
		case KIPC_SYS_receive:
		case KIPC_SYS_reply_receive:
		case KIPC_SYS_taskq_setattr:
			return p == g.p; /* the own queue: only the holder's */
		case KIPC_SYS_mbox_receive_multi: /* KIPC_ANY: of the own queue */
			return p == g.p && sqe.target == KIPC_ANY;
		case KIPC_SYS_mbox_send:
		case KIPC_SYS_mbox_receive:
		case KIPC_SYS_mbox_receive_set:
		case KIPC_SYS_mbox_send_bundle:
			return false; /* mailboxes */
		default:
			return true;
		}
	}
	switch (op) {
	case KIPC_SYS_send:
	case KIPC_SYS_receive:
	case KIPC_SYS_send_bundle:
		return false; /* task queues */
	case KIPC_SYS_mbox_send:
	case KIPC_SYS_mbox_send_bundle: /* each of its messages at sqe.prio */
		return sqe.target == g.link && sqe.prio > g.prio;
	case KIPC_SYS_mbox_receive:
	case KIPC_SYS_mbox_receive_multi: /* it takes the head: taken back, not stolen */
		return sqe.target == g.link;
	default:
		return true;
	}
}

/*
 * The same for a POSIX queue's push g: a receive of the queue (any
 * open's); a send to it that goes ahead of the pushed messages or
 * fills it (a claim must not change its POLLOUT); a close of the
 * holder's open; and every request on no queue, mailbox or task queue
 * that is not a read (setattr, destroy, cred_refresh, sysctl ...).
 */
bool Server::push_moves_mq(const Push &g, const kipc_sqe &sqe)
{
	uint32_t nmsg, cap;
	switch (sqe.opcode) {
	case KIPC_SYS_mq_timedsend:
		if (kernel_.credit_queue(KIPC_SYS_mq_timedsend, sqe.target, &nmsg, &cap) != g.queue)
			return false;
		return sqe.prio > g.prio || nmsg + 1 >= cap;
	case KIPC_SYS_mq_timedreceive:
		return kernel_.credit_queue(KIPC_SYS_mq_timedsend, sqe.target, &nmsg) == g.queue;
	case KIPC_SYS_mq_close:
		return sqe.target == KIPC_PUSH_TASKQ - g.link;
	case KIPC_SYS_mq_open:
	case KIPC_SYS_mq_unlink:    /* the queue lives while an open does */
	case KIPC_SYS_mq_notify:    /* a receive fires nothing */
	case KIPC_SYS_mq_notify_wait:
	case KIPC_SYS_mq_setfl:     /* a claimed receive finds its message */
	case KIPC_SYS_mbox_send:
	case KIPC_SYS_mbox_send_bundle:
	case KIPC_SYS_mbox_receive:
	case KIPC_SYS_mbox_receive_set:
	case KIPC_SYS_mbox_receive_multi:
	case KIPC_SYS_send:
	case KIPC_SYS_receive:
	case KIPC_SYS_send_bundle:
	case KIPC_SYS_call:
	case KIPC_SYS_reply:
	case KIPC_SYS_reply_receive:
	case KIPC_SYS_msgsnd:
	case KIPC_SYS_msgrcv:
		return false;
	default:
		return !changes_nothing(sqe.opcode);
	}
}

/*
 * The credit link (op, queue) whose sends queue where the messages of
 * p's push on link (queue: a POSIX queue's) are.
 */
std::pair<uint8_t, int64_t> Server::push_credit_link(const Proc *p, int64_t link,
						      int64_t queue) const
{
	if (queue)
		return {KIPC_SYS_mq_timedsend, queue};
	if (link == KIPC_PUSH_TASKQ)
		return {KIPC_SYS_send, p->creds.pid};
	return {KIPC_SYS_mbox_send, link};
}

/* Does a push hold the head of credit link (op, queue)? */
bool Server::push_on(uint8_t op, int64_t queue) const
{
	for (const Push &g : pushes_)
		if (push_credit_link(g.p, g.link, g.queue) == std::pair{op, queue})
			return true;
	return false;
}

/* The priority of the unclaimed messages pushed from credit link (op, queue); -1: none. */
int Server::push_floor(uint8_t op, int64_t queue) const
{
	for (const Push &g : pushes_)
		if (g.pushed != g.synced &&
		    push_credit_link(g.p, g.link, g.queue) == std::pair{op, queue})
			return g.prio;
	return -1;
}

/*
 * Push i stopped below the priority its mailbox's or task queue's
 * credits may carry (granted while no push was there: KIPC_PRIO_MAX).
 * Take them back, in a loop round (a revocation takes the published
 * credit sends: never inside another request); their holders' next
 * sends earn them again, capped (credit_grant), and the push goes on.
 */
void Server::push_uncap(size_t i)
{
	Push &g = pushes_[i];
	g.capped = false;
	auto [op, queue] = push_credit_link(g.p, g.link, g.queue);
	credit_revoke(nullptr, false, op, queue);
}

Server::Push *Server::push_of(const Proc *p)
{
	for (Push &g : pushes_)
		if (g.p == p)
			return &g;
	return nullptr;
}

/* Is claim one of g's grant, between what we took and what we pushed? */
bool Server::push_claimed(const Push &g, uint64_t claim, uint32_t *idx) const
{
	*idx = uint32_t(claim);
	return uint32_t(claim >> 32) == g.gen && *idx - g.synced <= g.pushed - g.synced;
}

/*
 * The receiver claimed up to idx: take those messages from the queue,
 * received at one CLOCK_REALTIME read (their receive times: kipcd's,
 * once it takes them, as the trace's are).
 */
void Server::push_take(Push &g, uint32_t idx)
{
	Proc *q = g.p;
	if (g.synced == idx)
		return;
	bool hold = !clock_.holding_real();
	if (hold)
		clock_.hold_real(true);
	while (g.synced != idx) {
		if (!kernel_.take_pushed(q->task, g.link, g.seq[g.synced % kSlots])) {
			klog(fmt::format("kipc: pushed message {} of pid {} is not at the head of {}: a kipcd bug",
					 g.seq[g.synced % kSlots], q->creds.pid, g.link));
			break;
		}
		g.synced++;
		q->st.pushed++;
	}
	g.used_ns = clock_.coarse_ns();
	if (hold)
		clock_.hold_real(false);
}

/* Every holder's claims: take what was claimed; garbage detaches its writer. */
void Server::push_sync()
{
	push_settle(false);
	for (size_t i = 0; i < pushes_.size(); i++) {
		Push &g = pushes_[i];
		if (steal_.p == g.p)
			continue; /* claim is 0 until push_settle() */
		uint64_t c = std::atomic_ref<uint64_t>(g.p->push->claim).load(std::memory_order_acquire);
		uint32_t idx;
		if (!push_claimed(g, c, &idx)) {
			Proc *q = g.p;
			pushes_.erase(pushes_.begin() + ptrdiff_t(i)); /* it claims nothing */
			detach(q, "push claim out of range"); /* an exit: takes every push back */
			return;
		}
		if (idx != g.synced)
			push_take(g, idx);
	}
}

/* Copy what follows g's pushed messages into free slots, the tag last; false: no longer allowed. */
bool Server::push_fill(Push &g)
{
	Proc *q = g.p;
	if (g.queue && g.pushed == g.synced) {
		/*
		 * A POSIX queue's pushed message is claimed only with the
		 * next one pushed behind it (the queue keeps POLLIN): its
		 * only message would wait for a receive through kipcd,
		 * which steals it back. Push from two on.
		 */
		uint32_t nmsg;
		if (kernel_.credit_queue(KIPC_SYS_mq_timedsend, KIPC_PUSH_TASKQ - g.link, &nmsg) ==
			    g.queue &&
		    nmsg < 2)
			return true;
	}
	while (g.pushed - g.synced < kSlots) {
		bool first = g.pushed == g.synced;
		kipc::PushMsg m;
		int r = kernel_.push_next(q->task, g.link, first ? 0 : g.seq[(g.pushed - 1) % kSlots],
					  KIPC_PUSH_MAX, &m);
		if (r == -EAGAIN)
			return true;
		if (r) /* no longer allowed: the mailbox, its policy, the right */
			return false;
		auto [op, queue] = push_credit_link(q, g.link, g.queue);
		if (int(m.cqe.prio) < credit_prio_max(op, queue)) {
			g.capped = !g.queue; /* a POSIX queue's credits: the earning send's */
			return true; /* a credit send held there could go ahead of it */
		}
		uint32_t k = g.pushed;
		kipc_push_slot *s = &q->push_slots[k % kSlots];
		std::memcpy(s->data, m.data, m.cqe.len);
		std::memcpy(reinterpret_cast<char *>(&s->cqe) + sizeof s->cqe.user_data,
			    reinterpret_cast<const char *>(&m.cqe) + sizeof m.cqe.user_data,
			    sizeof m.cqe - sizeof m.cqe.user_data);
		std::atomic_ref<uint64_t>(s->cqe.user_data)
			.store(uint64_t(g.gen) << 32 | k, std::memory_order_release);
		g.seq[k % kSlots] = m.seq;
		g.prio = m.cqe.prio; /* one level: push_next() follows its priority */
		g.pushed++;
		st_.push_fills++;
	}
	return true;
}

void Server::push_fill_or_recall(size_t i)
{
	if (!push_fill(pushes_[i]))
		push_recall_one(i, false);
}

void Server::push_grant(Proc *p, int64_t link)
{
	int64_t now = clock_.monotonic_ns();
	if (!p->push_ok || pushes_.size() >= kHolders || kernel_.tracing())
		return; /* a listener traces every call: receives go through kipcd */
	uint32_t nmsg, cap, msgsize = 0;
	int64_t queue = link < KIPC_PUSH_TASKQ
				? kernel_.credit_queue(KIPC_SYS_mq_timedsend, KIPC_PUSH_TASKQ - link,
						       &nmsg, &cap, &msgsize)
				: 0;
	if (link < KIPC_PUSH_TASKQ && !queue)
		return;
	int64_t key = Push::head_of(link, queue);
	for (const Push &g : pushes_)
		if (g.head() == key && link != KIPC_PUSH_TASKQ)
			return; /* one head, one holder */
	std::erase_if(push_cool_, [&](const auto &c) { return c.second <= now; });
	for (const auto &c : push_cool_)
		if (c.first == key)
			return;
	kipc::PushMsg m;
	int r = kernel_.push_next(p->task, link, 0, KIPC_PUSH_MAX, &m);
	if (r && r != -EAGAIN)
		return; /* not a link we may push from */
	if (++push_gen_ == 0)
		push_gen_ = 1;
	Push g;
	g.p = p;
	g.link = link;
	g.queue = queue;
	g.gen = push_gen_;
	g.used_ns = now;
	std::atomic_ref<uint32_t>(p->push->msgsize)
		.store(msgsize, std::memory_order_relaxed);
	std::atomic_ref<int64_t>(p->push->link).store(link, std::memory_order_release);
	std::atomic_ref<uint64_t>(p->push->claim)
		.store(uint64_t(g.gen) << 32, std::memory_order_seq_cst);
	pushes_.push_back(g);
	st_.push_grants++;
	push_fill_or_recall(pushes_.size() - 1);
}

/*
 * Take push i back: one exchange of claim with 0 (the receiver's
 * compare-and-swap either came before it, and its message is taken
 * now, or fails). The messages pushed and not claimed never left the
 * queue. contended: another receiver came (no grant of that mailbox
 * for a while).
 */
void Server::push_recall_one(size_t i, bool contended)
{
	push_settle(false);
	Push &g = pushes_[i];
	Proc *q = g.p;
	bool garbage = false;
	if (!q->dead) {
		uint64_t c = std::atomic_ref<uint64_t>(q->push->claim)
				     .exchange(0, std::memory_order_seq_cst);
		if (steal_.p == q) { /* 0 since the steal: nothing claimed after it */
			c = uint64_t(g.gen) << 32 | g.synced;
			steal_ = Steal{};
		}
		uint32_t idx;
		if (push_claimed(g, c, &idx))
			push_take(g, idx);
		else
			garbage = true;
	}
	if (contended)
		push_cool_.push_back({g.head(), clock_.monotonic_ns() + kPushCooldownNs});
	st_.push_recalls++;
	pushes_.erase(pushes_.begin() + ptrdiff_t(i));
	if (garbage)
		detach(q, "push claim out of range");
}

/*
 * p exits (or is detached): the claims first (rule 1), then back go its
 * own push and the pushes of the mailboxes its exit destroys (its
 * process-owned ones: kernel_.exit_touches()). Nothing else an exit
 * does changes which message is next on another process's link, or
 * whether it may take it: the messages p sent stay queued (a cached one
 * too), a call or blocked send it withdraws is behind every pushed
 * message (push_next() stops at a call; a blocked send is not queued),
 * the requests of others it fails take nothing out, its rights in other
 * mailboxes are its own (a kernel-owned one it owned loses its owner,
 * not its messages or modes), and the task queue it frees is its own.
 * nullptr (a pid that never attached: no Proc to ask about): every push.
 */
void Server::push_exit(Proc *p)
{
	if (pushes_.empty())
		return;
	if (!p) {
		st_.recall_exit += pushes_.size();
		push_recall(false);
		return;
	}
	push_sync();
	for (size_t i = pushes_.size(); i-- > 0;) {
		if (i >= pushes_.size())
			continue; /* a detach took several back */
		const Push &g = pushes_[i];
		if (g.p == p || (g.link != KIPC_PUSH_TASKQ && kernel_.exit_touches(p->task, g.link))) {
			st_.recall_exit++;
			push_recall_one(i, false);
		}
	}
}

/* Every push back (a trace listener, the network's proxy). */
void Server::push_recall(bool contended)
{
	while (!pushes_.empty())
		push_recall_one(pushes_.size() - 1, contended);
}

/*
 * A plain receive through kipcd of g's link (another receiver's, or
 * g's holder's own that found its slot empty before we pushed more): it
 * must take the head, which is g's next unclaimed message (if any). Swap claim from
 * exactly that message's index to 0: the holder's compare-and-swap of
 * it fails from now on (its receive goes to kipcd, exactly), and the
 * receive runs on a queue whose head is that message. A swap that fails
 * met a claim made meanwhile: take it, try the next. push_settle() after
 * the receive gives the holder its grant back.
 */
void Server::push_steal(size_t i)
{
	Push &g = pushes_[i];
	std::atomic_ref<uint64_t> claim(g.p->push->claim);
	while (g.synced != g.pushed) {
		uint64_t c = uint64_t(g.gen) << 32 | g.synced;
		if (claim.compare_exchange_strong(c, 0, std::memory_order_seq_cst)) {
			steal_ = {g.p, g.gen, g.synced, g.seq[g.synced % kSlots]};
			st_.push_steals++;
			return;
		}
		uint32_t idx;
		if (!push_claimed(g, c, &idx)) {
			Proc *q = g.p;
			pushes_.erase(pushes_.begin() + ptrdiff_t(i));
			detach(q, "push claim out of range");
			return;
		}
		push_take(g, idx);
	}
}

/*
 * After the receive a steal ran for (ran: push_after() says so; else
 * not while a request runs): if the holder's next message left
 * the queue (that receive took it), the grant continues past it; if it
 * is still the head (the receive failed: EMSGSIZE, EFAULT), from it. The
 * holder could not claim while claim was 0, so the store loses nothing.
 */
void Server::push_settle(bool ran)
{
	if (!steal_.p || (!ran && sync_p_))
		return; /* none, or its receive is still running */
	Steal s = steal_;
	steal_ = Steal{};
	Push *g = push_of(s.p);
	if (!g || g->gen != s.gen || g->synced != s.idx)
		return; /* taken back meanwhile (it stays 0) */
	kipc::PushMsg m;
	if (kernel_.push_next(s.p->task, g->link, 0, KIPC_PUSH_MAX, &m) != 0 || m.seq != s.seq)
		g->synced++; /* received by the other receiver */
	std::atomic_ref<uint64_t>(s.p->push->claim)
		.store(uint64_t(g->gen) << 32 | g->synced, std::memory_order_seq_cst);
}

/*
 * Before kipcd runs any request of p: every holder's claims first; then
 * take back each push the request could move the head of while pushed
 * ones are unclaimed.
 */
void Server::push_before(Proc *p, const kipc_sqe &sqe)
{
	if (pushes_.empty())
		return;
	push_sync();
	if (kernel_.tracing()) {
		push_recall(false); /* a trace began: every receive is a call again */
		return;
	}
	for (size_t i = pushes_.size(); i-- > 0;) {
		if (i >= pushes_.size())
			continue; /* a detach took several back */
		const Push &g = pushes_[i];
		if (g.pushed == g.synced || !push_moves_head(g, p, sqe))
			continue;
		bool plain = g.queue ? sqe.opcode == KIPC_SYS_mq_timedreceive /* type: its fd */
			   : g.link == KIPC_PUSH_TASKQ
				     ? sqe.opcode == KIPC_SYS_receive && sqe.target == KIPC_ANY && !sqe.type
				     : sqe.opcode == KIPC_SYS_mbox_receive && !sqe.type;
		if (p && plain && !(sqe.flags & ~KIPC_F_NONBLOCK))
			push_steal(i); /* a plain receive takes the head, g keeps the rest */
		else {
			st_.recall_head++;
			push_recall_one(i, p != g.p && g.link != KIPC_PUSH_TASKQ);
		}
	}
}

/*
 * Before the network bridge enters the core for a remote caller (its
 * proxy task is no process of ours): its request as another process's,
 * or (nullptr) the proxy's exit or new credentials, which take every
 * push back as an exit does.
 */
void Server::push_before_net(const kipc_sqe *sqe)
{
	if (pushes_.empty())
		return;
	if (sqe)
		push_before(nullptr, *sqe);
	else
		push_recall(false);
}

/*
 * After p's request: a plain receive that completed at once may earn a
 * push, when it was p's only request in flight (a synchronous caller;
 * an asynchronous one with receives posted ahead would take it back with
 * its next receive, after a refill for nothing). A process keeps one
 * grant, on the link of the receive that earned it.
 */
void Server::push_after(Proc *p, const kipc_sqe &sqe)
{
	int64_t link;
	push_settle(true); /* a steal for this request: it ran */
	if (sqe.opcode == KIPC_SYS_mbox_receive && sqe.target > 0 && !sqe.type)
		link = sqe.target;
	else if (sqe.opcode == KIPC_SYS_receive && sqe.target == KIPC_ANY && !sqe.type)
		link = KIPC_PUSH_TASKQ;
	else if (sqe.opcode == KIPC_SYS_mq_timedreceive && sqe.target > 0) /* type: its fd */
		link = KIPC_PUSH_MQ(sqe.target);
	else
		return;
	if ((sqe.flags & ~KIPC_F_NONBLOCK) || !sync_done_ || sync_res_ < 0)
		return;
	if (Push *g = push_of(p)) {
		if (g->link == link)
			push_fill_or_recall(size_t(g - pushes_.data()));
	} else if (p->inflight == 0) {
		push_grant(p, link); /* a synchronous caller: nothing else in flight */
	}
}

/* Once per loop round: take what was claimed, push what came. */
void Server::push_round()
{
	if (pushes_.empty())
		return;
	push_sync();
	if (kernel_.tracing()) {
		push_recall(false); /* a trace began (trace_read ran without push_before's view) */
		return;
	}
	for (size_t i = pushes_.size(); i-- > 0;) {
		if (i >= pushes_.size())
			continue; /* a detach took several back */
		push_fill_or_recall(i);
		/*
		 * Stopped below its credits' priority: take them back and go
		 * on now. Left for the next round, a kipcd that goes idle
		 * after this one would hold the push unfilled until a
		 * request came.
		 */
		if (i < pushes_.size() && pushes_[i].capped) {
			push_uncap(i);
			if (i < pushes_.size())
				push_fill_or_recall(i);
		}
	}
}

/* A push nobody claimed from for push_idle_ms goes back (another may want it). */
void Server::push_timers()
{
	push_settle(false);
	int64_t now = clock_.monotonic_ns();
	for (size_t i = pushes_.size(); i-- > 0;)
		if (i < pushes_.size() && now >= pushes_[i].used_ns + push_idle_ns_) {
			st_.recall_idle++;
			push_recall_one(i, false);
		}
}

int64_t Server::push_deadline() const
{
	int64_t d = INT64_MAX;
	for (const Push &g : pushes_)
		d = std::min(d, g.used_ns + push_idle_ns_);
	return d;
}

} // namespace kipcd
