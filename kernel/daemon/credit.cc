// SPDX-License-Identifier: MIT
/*
 * kipcd: send credits (Documentation/transport.md section 12). A
 * synchronous mbox_send (or send, to a task queue) that has a credit
 * completes in the caller: the library publishes the entry and returns.
 * What makes that result exact:
 *
 *  - room and bytes were reserved by the core (kernel/ipc/credit.cc) when
 *    the credits were granted, and every request that could take that
 *    room, the bytes, the permission or the link away first revokes the
 *    credits (credit_before; a task queue's right depends on its task's
 *    user too: its cred_refresh revokes the credits held on it): the
 *    credit send always succeeds when taken;
 *  - before kipcd acts on any other request, and before timers, exits and
 *    revocations, it takes the holder's published credit sends
 *    (credit_run): everything that happens after a credit send returned
 *    sees it, as if kipcd had taken it when it was published;
 *  - a revocation stores gen 0, fences and reads sq_tail; the library
 *    publishes sq_tail, fences and reads gen: either we take the entry
 *    under the credit, or the library sees the revocation and waits for
 *    the entry's own completion.
 * Several holders (fan-in): each credit send carries the CLOCK_MONOTONIC
 * time its sender read before publishing it; kipcd takes the published
 * sends of all holders together, in that order, and only those stamped
 * before the moment it began looking (credit_collect), so a send that
 * returned before another began is always taken first.
 */
#include "server.h"

#include <algorithm>

#include <fmt/core.h>

namespace kipcd {

namespace {

constexpr uint32_t kCreditMax = 16;            /* credits a holder has at most */
constexpr size_t kCreditHolders = 8;           /* holders at a time, kernel-wide */
constexpr uint32_t kCreditMin = 4;             /* fewer: no grant to a second holder */
constexpr int64_t kCreditCooldownNs = 10000000; /* after another sender came */

/*
 * Requests of other processes that need no revocation: they neither add
 * messages, nor charge bytes, nor change rights, limits or objects.
 * (They still come after the holder's published credit sends.)
 */
/* The sends a credit may carry: to a mailbox, a task queue, a POSIX queue. */
bool credit_op(uint8_t op)
{
	return op == KIPC_SYS_mbox_send || op == KIPC_SYS_send || op == KIPC_SYS_mq_timedsend;
}

/* A multishot receive only takes messages out, as a receive does. */
bool leaves_credits(uint8_t op)
{
	return changes_nothing(op) || op == KIPC_SYS_receive || op == KIPC_SYS_mbox_receive ||
	       op == KIPC_SYS_mbox_receive_set || op == KIPC_SYS_mq_timedreceive ||
	       op == KIPC_SYS_msgrcv || op == KIPC_SYS_mbox_receive_multi;
}

/* The send a bundle is made of (bundle.cc): mbox_send, send; else op. */
uint8_t send_of(uint8_t op)
{
	if (op == KIPC_SYS_mbox_send_bundle)
		return KIPC_SYS_mbox_send;
	return op == KIPC_SYS_send_bundle ? uint8_t(KIPC_SYS_send) : op;
}

/*
 * The messages a send request may add to its link: 1, or a bundle's
 * descriptors (bundle.cc; a malformed length fails EINVAL and sends
 * nothing, counting it as the most is only careful). 0: no send.
 */
uint32_t sends_of(const kipc_sqe &sqe)
{
	if (credit_op(sqe.opcode))
		return 1;
	if (send_of(sqe.opcode) == sqe.opcode)
		return 0;
	uint32_t n = sqe.len / sizeof(kipc_bundle_desc);
	return n && n <= KIPC_BUNDLE_MAX ? n : KIPC_BUNDLE_MAX;
}

} // namespace

bool changes_nothing(uint8_t opcode)
{
	switch (opcode) {
	case KIPC_SYS_nop:
	case KIPC_SYS_cancel:
	case KIPC_SYS_mbox_stat:
	case KIPC_SYS_mbox_peek:
	case KIPC_SYS_taskq_stat:
	case KIPC_SYS_mq_getattr:
	case KIPC_SYS_sysinfo:
	case KIPC_SYS_kernel_info:
	case KIPC_SYS_task_list:
	case KIPC_SYS_task_info:
	case KIPC_SYS_mbox_list:
	case KIPC_SYS_mbox_info:
	case KIPC_SYS_waiter_list:
	case KIPC_SYS_msg_list:
	case KIPC_SYS_trace_read:
		return true;
	default:
		return false;
	}
}

namespace {

template <typename T> void store_word(T *w, T v)
{
	std::atomic_ref<T>(*w).store(v, std::memory_order_release);
}

} // namespace

Server::Credit *Server::credit_of(const Proc *p)
{
	for (Credit &c : credits_)
		if (c.p == p)
			return &c;
	return nullptr;
}

/*
 * Is sqe a send under p's current credits (our count, not the
 * process's), with ahead more of its credit sends taken before it?
 */
bool Server::credit_fits(const Proc *p, const kipc_sqe &sqe, uint32_t ahead) const
{
	for (const Credit &c : credits_)
		if (c.p == p)
			return sqe.opcode == c.op && (sqe.flags & KIPC_F_CREDIT) &&
			       !(sqe.flags & ~(KIPC_F_CREDIT | KIPC_F_NONBLOCK)) &&
			       sqe.target == c.link && sqe.timeout == int64_t(c.gen) &&
			       (sqe.type == 0 || c.op == KIPC_SYS_mq_timedsend) && /* its fd */
			       sqe.len <= c.msgsize && sqe.prio <= c.prio &&
			       c.applied + ahead < c.limit;
	return false;
}

/* Credits held and not used on queue (of op), all holders together. */
uint32_t Server::credit_held(uint8_t op, int64_t queue) const
{
	uint32_t n = 0;
	for (const Credit &c : credits_)
		if (c.op == op && c.queue == queue)
			n += c.limit - c.applied;
	return n;
}

/*
 * Run one request of p in the core; sync_res_ is its result if it
 * completed at once. Its completion is posted after the push it may
 * earn is granted: a synchronous receiver that reaps it sees the grant
 * in its next receive (the grant's stores come before the CQE's).
 */
void Server::submit(Proc *p, const kipc_sqe &sqe)
{
	push_before(p, sqe); /* push.cc */
	if (p->dead)
		return;
	sync_p_ = p;
	sync_ud_ = sqe.user_data;
	sync_res_ = 1;
	sync_done_ = false;
	clock_.hold_real(true);
	kernel_.submit(p->task, sqe);
	clock_.hold_real(false);
	if (!p->dead)
		push_after(p, sqe);
	if (sync_held_)
		post_held();
	sync_p_ = nullptr;
}

/*
 * Take p's credit send at the head of its SQ (credit_fits() said so):
 * its credit's charge goes back, its message takes its own.
 */
void Server::credit_apply(Proc *p, const kipc_sqe &sqe)
{
	Credit *c = credit_of(p);
	p->sq_head++;
	store_release(&p->ctl->sq_head, p->sq_head);
	p->consumed = true;
	nconsumed_++;
	p->inflight++;
	note_active(p); /* polled while we spin, as drain() does */
	mark_dirty(p);
	c->applied++;
	p->st.credit++;
	c->used_ns = clock_.coarse_ns();
	kernel_.release_sends(c->uid, c->charge);
	kipc_sqe s = sqe;
	s.flags &= ~KIPC_F_CREDIT;
	s.timeout = 0;
	s.addr2 = 0; /* it carried the order stamp */
	submit(p, s);
	if (sync_res_ != 0) {
		credit_failed_++;
		klog(fmt::format("kipc: credit send of pid {} to {} failed ({}): a kipcd bug",
				 p->creds.pid, sqe.target, sync_res_));
	}
	uint32_t nmsg;
	p->handoff = kernel_.credit_queue(c->op, c->link, &nmsg) && nmsg == 0;
	if (!p->dead)
		credit_topup(p);
}

/*
 * Take the credit sends the holders have published at the heads of
 * their SQs, past the usual budget and in-flight bound (their number is
 * bounded by the credits we gave). Each holder's stop at its first other
 * entry (the library publishes a credit send only when it has no
 * ordinary entry waiting before it).
 *
 * With one holder its SQ order is the order. With several, the order
 * is the stamps' (the CLOCK_MONOTONIC time the sender read before it
 * published, made strictly increasing by the library), and only the
 * entries stamped before cut, the time read before we look at any SQ,
 * are taken now: a send A that returned before a send B began was
 * published before B's stamp, so if B is taken here (B's stamp < cut,
 * and we read A's tail after cut) A is seen here too, and goes first.
 * An entry stamped at or after cut waits for the next collect. A stamp
 * is trusted only for the order of its own holder's entries among the
 * others': it is capped at the time we first saw the entry (an honest
 * stamp is always earlier) and never below the holder's previous one,
 * so a forged stamp delays a holder's own entry by one collect at most
 * and moves it only among entries concurrent with it.
 *
 * Returns whether an entry of a holder being revoked was put off.
 */
bool Server::credit_collect()
{
	if (credits_.size() == 1) {
		Proc *q = credits_[0].p;
		uint32_t tail;
		if (q->dead || !sq_read_tail(q->ctl, q->sq_head, kSqEntries, &tail))
			return false; /* garbage: its own drain detaches it */
		while (int32_t(tail - q->sq_head) > 0 && credit_of(q) && !q->dead && !q->taking) {
			kipc_sqe sqe = sq_fetch(q->sq, q->sq_head, kSqEntries);
			if (!credit_fits(q, sqe))
				break;
			credit_apply(q, sqe);
		}
		return false;
	}
	struct Cand {
		Proc *q;
		uint32_t idx;
		int64_t ts;
	};
	std::vector<Cand> cands;
	bool late = false;
	int64_t cut = clock_.monotonic_ns();
	for (Credit &c : credits_) {
		Proc *q = c.p;
		uint32_t tail;
		if (q->dead || q->taking || !sq_read_tail(q->ctl, q->sq_head, kSqEntries, &tail))
			continue;
		int64_t seen = clock_.monotonic_ns(); /* after the tail: later than any honest stamp */
		int64_t prev = c.last_ts;
		for (uint32_t idx = q->sq_head, k = 0; int32_t(tail - idx) > 0; idx++, k++) {
			kipc_sqe sqe = sq_fetch(q->sq, idx, kSqEntries);
			if (!credit_fits(q, sqe, k))
				break;
			int64_t cap = c.deferred && c.defer_idx == idx ? c.defer_ns : seen;
			int64_t ts = sqe.addr2 < uint64_t(cap) ? int64_t(sqe.addr2) : cap;
			ts = std::max(ts, prev);
			if (ts >= cut) {
				if (!c.deferred || c.defer_idx != idx) {
					c.deferred = true;
					c.defer_idx = idx;
					c.defer_ns = seen;
				}
				late |= c.revoking;
				break;
			}
			cands.push_back({q, idx, ts});
			prev = ts;
		}
	}
	std::stable_sort(cands.begin(), cands.end(),
			 [](const Cand &a, const Cand &b) { return a.ts < b.ts; });
	for (const Cand &x : cands) {
		/* a revocation inside an earlier take (an exit) may have taken it */
		Credit *c = credit_of(x.q);
		if (!c || x.q->dead || x.q->sq_head != x.idx)
			continue;
		kipc_sqe sqe = sq_fetch(x.q->sq, x.idx, kSqEntries);
		if (!credit_fits(x.q, sqe))
			continue;
		c->last_ts = x.ts;
		if (c->deferred && c->defer_idx == x.idx)
			c->deferred = false;
		credit_apply(x.q, sqe);
	}
	return late;
}

/* Before anything else happens: the credit sends that returned. */
void Server::credit_run()
{
	if (!credits_.empty())
		credit_collect();
}

/*
 * Before kipcd runs any other request of p: the holders' published
 * credit sends first; then take credits back if the request could take
 * their room, bytes, rights or mailbox away. A send takes only room:
 * nothing to take back when its mailbox has room for it beyond the
 * credits held there (or none are held there).
 */
void Server::credit_before(Proc *p, const kipc_sqe &sqe)
{
	credit_before(p, p->task, sqe);
}

/*
 * Before the network bridge enters the core for a remote caller (its
 * proxy task, which has no Proc and holds no credits): as before a
 * local process's request. nullptr: the proxy exits or changes
 * credentials, which revokes as an exit does.
 */
void Server::credit_before_net(kipc::Task *task, const kipc_sqe *sqe)
{
	if (credits_.empty())
		return;
	if (sqe)
		credit_before(nullptr, task, *sqe);
	else
		credit_revoke(nullptr, false);
}

/* p: the requester's Proc, nullptr for a proxy task (credit_before_net). */
void Server::credit_before(Proc *p, kipc::Task *task, const kipc_sqe &sqe)
{
	if (credits_.empty())
		return;
	credit_run();
	if (sqe.opcode == KIPC_SYS_mq_timedreceive) {
		/*
		 * A POSIX queue never empties under credit sends: its
		 * descriptors poll POLLIN while they are held, as if each
		 * send had been taken when it returned. A receive that may
		 * take its last message takes them back first.
		 */
		uint32_t nmsg;
		int64_t q = kernel_.credit_queue(KIPC_SYS_mq_timedsend, sqe.target, &nmsg);
		if (q && nmsg <= 1)
			credit_revoke(nullptr, false, KIPC_SYS_mq_timedsend, q);
		return;
	}
	if (leaves_credits(sqe.opcode))
		return;
	Credit *c = p ? credit_of(p) : nullptr;
	if (uint32_t nsend = sends_of(sqe)) {
		/*
		 * A send takes room and its user's bytes: nothing to take
		 * back while the link has room for it beyond the credits
		 * held there and its user has bytes beyond those its credits
		 * hold (credit_room). Else as few grants as make that room:
		 * p's own on the link first (its send uses the room it
		 * held), then the one holding the most there, then those of
		 * p's user elsewhere (their bytes). Another sender is no
		 * reason to stop granting: several holders share a link.
		 * A bundle is nsend mailbox or task queue sends: room for
		 * all of them (each counted at the link's largest message).
		 */
		uint8_t op = send_of(sqe.opcode);
		int64_t link = sqe.target;
		uint32_t nmsg;
		int64_t queue = kernel_.credit_queue(op, link, &nmsg);
		auto on = [&](const Credit &h) {
			return h.op == op && h.queue == queue && h.limit != h.applied;
		};
		uid_t uid = kernel_.creds(task).uid;
		while (!credit_room(task, op, link, queue, nsend)) {
			const Credit *v = nullptr;
			if (c && on(*c))
				v = c;
			for (const Credit &h : credits_)
				if (!v && on(h))
					v = &h;
				else if (v && v != c && on(h) &&
					 h.limit - h.applied > v->limit - v->applied)
					v = &h;
			for (const Credit &h : credits_)
				if (!v && h.uid == uid && h.limit != h.applied)
					v = &h;
			if (!v)
				return; /* nothing held that this send could need */
			st_.revoke_room++;
			credit_revoke(v->p, false);
			c = p ? credit_of(p) : nullptr;
		}
		return;
	}
	if (sqe.opcode == KIPC_SYS_cred_refresh && p) {
		/* its own rights, and who may send to its task queue (find_peer) */
		credit_revoke(p, false, KIPC_SYS_send, p->creds.pid);
		return;
	}
	credit_revoke(nullptr, !c);
}

/*
 * Has link room for n more messages of p beyond the credits held
 * there? Then p's ordinary sends take that room, not theirs.
 */
bool Server::credit_room(kipc::Task *task, uint8_t op, int64_t link, int64_t queue, uint32_t n)
{
	uint32_t msgsize = 0;
	uint64_t charge = 0;
	uint32_t got = kernel_.reserve_sends(task, op, link, credit_held(op, queue), n, &msgsize,
					     &charge);
	kernel_.release_sends(kernel_.creds(task).uid, got * charge);
	if (got != n)
		return false;
	return true;
}

/*
 * A lock step (a ping-pong, a call made of a send and a receive): p's
 * credit send was taken at once by a parked receiver (its link empty
 * again) and p's next request is a receive. Credits buy it nothing (it
 * waits for the answer anyway), and its early receive parks in kipcd
 * where, after a synchronous send, the answer would often have found it
 * pushed (section 13). Its credits go back, and none come again while
 * its sends are taken at once (credit_grant; a holder is never in lock
 * step, so its top-ups need no check): a send that stays queued (its
 * receiver is behind) ends the lock step. Before the receive runs (as
 * rule 2's revocations): its completion may be reaped as soon as it is
 * written, and p then finds its credits gone.
 */
void Server::credit_lockstep(Proc *p, const kipc_sqe &sqe)
{
	bool receive = leaves_credits(sqe.opcode) && !changes_nothing(sqe.opcode);
	if (p->handoff && receive && !p->lockstep) {
		p->lockstep = true;
		credit_revoke(p, false); /* between two requests of p, as rule 2 revokes */
	}
	p->handoff = false;
}

/* Does p's lock step go on? Its send that left its link with nmsg queued says (and ends it). */
bool Server::credit_still_lockstep(Proc *p, uint32_t nmsg)
{
	if (p->lockstep && nmsg != 0)
		p->lockstep = false; /* its sends queue: the receiver is behind */
	return p->lockstep;
}

/* After p's ordinary request: a plain send that succeeded at once may earn credits. */
void Server::credit_after(Proc *p, const kipc_sqe &sqe)
{
	if (!credit_op(sqe.opcode) || sync_res_ != 0 || p->dead ||
	    (sqe.flags & ~(KIPC_F_NONBLOCK | KIPC_F_CREDIT)) ||
	    (sqe.type && sqe.opcode != KIPC_SYS_mq_timedsend)) /* typed; a POSIX send's fd */
		return;
	if (Credit *c = credit_of(p)) {
		if (c->op == sqe.opcode && c->link == sqe.target)
			credit_topup(p);
		return; /* one link per holder */
	}
	credit_grant(p, sqe.opcode, sqe.target, sqe.prio);
}

/*
 * The highest priority a credit send held on link (op, queue) may have;
 * -1: none held. A message pushed there is at least this (push.cc): no
 * credit send published can go ahead of a pushed one.
 */
int Server::credit_prio_max(uint8_t op, int64_t queue) const
{
	int m = -1;
	for (const Credit &c : credits_)
		if (c.op == op && c.queue == queue)
			m = std::max(m, int(c.prio));
	return m;
}

/*
 * prio: the earning send's. Credit sends are of that priority at most,
 * and of none above a push's unclaimed messages on the link
 * (push_floor): they queue behind what a receiver may claim. With no
 * push on a mailbox or task queue, any priority (push_uncap() takes
 * such credits back when a push there stops below them).
 */
void Server::credit_grant(Proc *p, uint8_t op, int64_t link, uint16_t prio)
{
	if (!p->credit_ok || !p->overflow.empty() || p->stalled ||
	    credits_.size() >= kCreditHolders || clock_.monotonic_ns() < credit_cooldown_)
		return;
	/* several holders are ordered by their clock: it must be ours */
	if (!credits_.empty()) {
		if (!p->credit_clock)
			return;
		for (const Credit &c : credits_)
			if (!c.p->credit_clock)
				return;
	}
	uint32_t msgsize = 0;
	uint64_t charge = 0;
	uint32_t nmsg;
	int64_t queue = kernel_.credit_queue(op, link, &nmsg);
	if (!queue || credit_still_lockstep(p, nmsg))
		return;
	/*
	 * A POSIX queue holding only the earning send's message: the next
	 * receive (any open's) empties it, and takes every credit there
	 * back before it runs (credit_before). In lock step that is the
	 * peer's next request: a grant and a revocation for nothing.
	 */
	if (op == KIPC_SYS_mq_timedsend && nmsg < 2)
		return;
	if (op != KIPC_SYS_mq_timedsend && !push_on(op, queue))
		prio = KIPC_PRIO_MAX; /* no receiver's claim to go ahead of */
	if (int f = push_floor(op, queue); f >= 0 && f < prio)
		prio = uint16_t(f);
	uint32_t n = kernel_.reserve_sends(p->task, op, link, credit_held(op, queue), kCreditMax,
					   &msgsize, &charge);
	if (n && n < kCreditMin && !credits_.empty()) {
		/* a nearly full mailbox: the grant would be taken back at once */
		kernel_.release_sends(kernel_.creds(p->task).uid, n * charge);
		n = 0;
	}
	if (!n)
		return;
	if (++credit_gen_ == 0)
		credit_gen_ = 1;
	/* the task's uid as of its last cred_refresh: the user charged */
	Credit c;
	c.p = p;
	c.op = op;
	c.link = link;
	c.queue = queue;
	c.gen = credit_gen_;
	c.limit = n;
	c.msgsize = msgsize;
	c.prio = prio;
	c.charge = charge;
	c.uid = kernel_.creds(p->task).uid;
	c.used_ns = clock_.monotonic_ns();
	credits_.reserve(kCreditHolders); /* no reallocation under a Credit * */
	credits_.push_back(c);
	/* gen is 0 here (never granted, or revoked): the words, then gen */
	kipc_credit *w = p->credit;
	store_word(&w->link, link);
	store_word(&w->op, uint32_t(op));
	store_word(&w->msgsize, msgsize);
	store_word(&w->prio, uint32_t(prio));
	store_word(&w->limit, n);
	store_word(&w->gen, c.gen);
	st_.grants++;
}

/* More credits in the same grant while the holder uses them. */
void Server::credit_topup(Proc *p)
{
	Credit *c = credit_of(p);
	if (!c || !p->overflow.empty() || c->revoking)
		return; /* a process that does not reap gets no more */
	uint32_t held = c->limit - c->applied;
	if (held > kCreditMax / 2)
		return;
	uint32_t msgsize = 0;
	uint64_t charge = 0;
	uint32_t n = kernel_.reserve_sends(p->task, c->op, c->link, credit_held(c->op, c->queue),
					   kCreditMax - held, &msgsize, &charge);
	if (!n)
		return;
	if (msgsize != c->msgsize || charge != c->charge) {
		/* cannot change without a setattr, which revokes; be safe */
		kernel_.release_sends(c->uid, n * charge);
		return;
	}
	c->limit += n;
	store_word(&p->credit->limit, c->limit);
	st_.topups++;
}

/*
 * Take back the credits of only and of the holders of op on queue (a
 * task queue's pid, a POSIX queue's id; neither: of every holder). The
 * Dekker pair with the library: store gen 0, full fence, read
 * sq_tail (credit_collect): an entry published before that read is
 * taken under its credit now; one published after it was published
 * after its sender read gen 0, and that sender waits for the entry's
 * completion like an ordinary send's. Entries put off by the stamp
 * order are taken by the next collects (each one at most one collect
 * later). The unused credits give their bytes back.
 */
void Server::credit_revoke(const Proc *only, bool contended, uint8_t op, int64_t queue)
{
	bool any = false;
	for (Credit &c : credits_) {
		bool mine = (!only && !op) || c.p == only || (op && c.op == op && c.queue == queue);
		if (!mine || c.revoking)
			continue;
		c.revoking = true;
		any = true;
		if (!c.p->dead)
			std::atomic_ref<uint32_t>(c.p->credit->gen).store(0, std::memory_order_seq_cst);
	}
	if (!any)
		return;
	st_.revokes++;
	std::atomic_thread_fence(std::memory_order_seq_cst);
	while (credit_collect()) {
	}
	for (auto it = credits_.begin(); it != credits_.end();) {
		if (!it->revoking) {
			++it;
			continue;
		}
		uint32_t unused = it->limit - it->applied;
		if (unused)
			kernel_.release_sends(it->uid, uint64_t(unused) * it->charge);
		it = credits_.erase(it);
	}
	if (contended)
		credit_cooldown_ = clock_.monotonic_ns() + kCreditCooldownNs;
}

/*
 * A process goes away (or, nullptr, a pid the core watches exited): the
 * holders' published credit sends are taken while their tasks still
 * exist (they returned success), and every credit goes back before the
 * exit can destroy a mailbox or change a binding. The pushes the exit
 * could change go back too (push_exit).
 */
void Server::credit_exit(Proc *p)
{
	st_.revoke_exit += !credits_.empty();
	credit_revoke(nullptr, false);
	push_exit(p); /* push.cc */
}

/* Credits nobody used for credit_idle_ms go back (the loop's timer wakes us). */
void Server::credit_timers()
{
	int64_t now = clock_.monotonic_ns();
	std::vector<Proc *> idle;
	for (const Credit &c : credits_)
		if (now >= c.used_ns + credit_idle_ns_)
			idle.push_back(c.p);
	for (Proc *p : idle)
		credit_revoke(p, false);
	st_.revoke_idle += idle.size();
}

int64_t Server::credit_deadline() const
{
	int64_t d = INT64_MAX;
	for (const Credit &c : credits_)
		d = std::min(d, c.used_ns + credit_idle_ns_);
	return d;
}

} // namespace kipcd
