// SPDX-License-Identifier: MIT
/*
 * kipcd: the per-process rings. drain() consumes a process's SQ into the
 * core, post() writes the completions the core sends, flush() publishes
 * them once per loop round (transport.md sections 4-6; the shared-memory
 * rules are in server.h).
 */
#include "server.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace kipcd {

namespace {

/* Calls that destroy or change an object: others' published requests go first. */
bool orders_others(uint8_t opcode)
{
	switch (opcode) {
	case KIPC_SYS_mbox_destroy:
	case KIPC_SYS_mbox_setattr:
	case KIPC_SYS_mbox_set_owner:
	case KIPC_SYS_mbox_revoke:
	case KIPC_SYS_taskq_setattr:
	case KIPC_SYS_mq_unlink:
	case KIPC_SYS_mq_close:
	case KIPC_SYS_msgctl:
		return true;
	default:
		return false;
	}
}

} // namespace

/* ---------------------------------------------------------------- */
/* Completions                                                        */

void Server::complete(void *priv, const kipc_cqe &cqe)
{
	if (Net::is_proxy(priv)) { /* a remote caller's request (kernel/net) */
		if (net_) /* (null while ~Net ends the proxies) */
			net_->proxy_complete(priv, cqe);
		return;
	}
	Proc *p = static_cast<Proc *>(priv);
	if (!p || p->dead)
		return;
	if (!(cqe.flags & KIPC_CQE_F_MORE) && p->inflight)
		p->inflight--;
	if (p == sync_p_ && sync_held_)
		post_held(); /* p's completions in the order they came */
	if (p == sync_p_ && cqe.user_data == sync_ud_ && !(cqe.flags & KIPC_CQE_F_MORE)) {
		sync_res_ = cqe.res; /* Server::submit()'s request completed at once */
		sync_done_ = true;
		sync_cqe_ = cqe; /* posted once submit() has granted what it earns */
		sync_held_ = true;
		return;
	}
	post(p, cqe);
	mark_dirty(p);
}

/* Post the completion submit() held back (a dead process gets none). */
void Server::post_held()
{
	sync_held_ = false;
	if (!sync_p_->dead) {
		post(sync_p_, sync_cqe_);
		mark_dirty(sync_p_);
	}
}

/* A success not posted (KIPC_F_SKIP_SUCCESS): the request ended all the same. */
void Server::skipped(void *priv, const kipc_cqe &cqe)
{
	if (Net::is_proxy(priv)) { /* (the network passes no such flag: never) */
		complete(priv, cqe);
		return;
	}
	Proc *p = static_cast<Proc *>(priv);
	if (!p || p->dead)
		return;
	if (p->inflight)
		p->inflight--;
	mark_dirty(p); /* a stalled drain may go on */
}

/*
 * A multishot receive posts a completion per message: only into the CQ,
 * never into the overflow list, which only a request's last completion
 * may join (so it stays bounded by kMaxInflight). One slot stays for
 * that last one. cq_head is untrusted: a wrong one stalls its writer.
 */
bool Server::can_post(void *priv)
{
	if (Net::is_proxy(priv))
		return true;
	Proc *p = static_cast<Proc *>(priv);
	if (!p || p->dead)
		return false; /* the message stays queued */
	uint32_t used = p->cq_tail - load_acquire(&p->ctl->cq_head);
	return p->overflow.empty() && used + 1 < kCqEntries;
}

/*
 * Write one CQE, or keep it in the overflow list: never drop, never
 * block. cq_head is the process's and untrusted: a value that claims
 * more than cq_entries are in use counts as "full", which only stalls
 * the process that wrote it.
 */
void Server::post(Proc *p, const kipc_cqe &cqe)
{
	if (p->overflow.empty()) {
		uint32_t head = load_acquire(&p->ctl->cq_head);
		uint32_t used = p->cq_tail - head;
		if (used < kCqEntries) {
			cq_write(p, cqe);
			return;
		}
	}
	p->overflow.push_back(cqe);
}

/*
 * Write cqe at our cq_tail and advance it. With KIPC_FEAT_CQ_LAP the
 * slot's lap tag goes last (release): from then on the process may take
 * the entry, before flush() publishes cq_tail. The tag is the only word
 * of the slot the process polls, so it is never written with the rest:
 * the bytes around it first, then the tag alone.
 */
void Server::cq_write(Proc *p, const kipc_cqe &cqe)
{
	kipc_cqe *slot = &p->cq[p->cq_tail & (kCqEntries - 1)];
	if (!p->cq_lap) {
		*slot = cqe;
	} else {
		constexpr size_t at = offsetof(kipc_cqe, lap), end = at + sizeof cqe.lap;
		auto *d = reinterpret_cast<unsigned char *>(slot);
		auto *s = reinterpret_cast<const unsigned char *>(&cqe);
		std::memcpy(d, s, at);
		std::memcpy(d + end, s + end, sizeof cqe - end);
		std::atomic_ref<uint16_t>(slot->lap).store(KIPC_CQ_LAP(p->cq_tail, kCqEntries),
							   std::memory_order_release);
	}
	p->cq_tail++;
}

/* ---------------------------------------------------------------- */
/* Submissions                                                        */

/* What p's ordinary request was, for fast_stats(). */
void Server::fast_count(Proc *p, const kipc_sqe &sqe)
{
	switch (sqe.opcode) {
	case KIPC_SYS_send:
	case KIPC_SYS_mbox_send:
	case KIPC_SYS_mq_timedsend:
		p->st.send++;
		break;
	case KIPC_SYS_receive:
	case KIPC_SYS_mbox_receive:
	case KIPC_SYS_mq_timedreceive:
		p->st.recv++;
		break;
	default:
		return;
	}
	p->st.parked += !sync_done_;
}

/*
 * Consume the SQ: at most kSqEntries entries per round (fairness), and
 * nothing while kMaxInflight requests are in flight or waiting in the
 * overflow list (bounded memory: the SQ itself is the backlog).
 *
 * Sleep/wake handshake (the process does the mirror image):
 *   kernel: set NEED_WAKEUP; full fence; load sq_tail; empty -> sleep
 *   process: store sq_tail (release); full fence; load sq_flags;
 *            NEED_WAKEUP -> write the doorbell
 * One of the two always sees the other's store.
 */
void Server::drain(Proc *p, bool polling)
{
	p->runnable = false;
	if (polling)
		note_active(p); /* NEED_WAKEUP stays clear until the spin ends */
	uint32_t budget = kSqEntries;
	for (;;) {
		p->set_sq_flags(p->sq_flags & ~KIPC_SQ_NEED_WAKEUP);
		uint32_t tail;
		if (!sq_read_tail(p->ctl, p->sq_head, kSqEntries, &tail)) {
			detach(p, "SQ tail out of range");
			return;
		}
		/* (credit_run() may have taken entries past tail: int32_t) */
		while (int32_t(tail - p->sq_head) > 0) {
			if (p->inflight + p->overflow.size() >= kMaxInflight) {
				p->stalled = true;
				mark_dirty(p);
				return;
			}
			if (budget == 0) {
				if (!p->runnable) {
					p->runnable = true;
					runnable_.push_back(p);
				}
				mark_dirty(p);
				return;
			}
			budget--;
			kipc_sqe sqe = sq_fetch(p->sq, p->sq_head, kSqEntries);
			if (credit_fits(p, sqe)) {
				/* credit.cc: taken with the other holders', in their order */
				credit_run();
				if (p->dead)
					return;
				continue;
			}
			/* The entry is ours now: the slot may be reused. */
			p->sq_head++;
			store_release(&p->ctl->sq_head, p->sq_head);
			p->consumed = true;
			nconsumed_++;
			note_active(p);
			p->inflight++;
			if (sqe.flags & KIPC_F_CREDIT) { /* no credit: an ordinary send */
				sqe.flags &= ~KIPC_F_CREDIT;
				sqe.timeout = 0; /* it carried the grant */
				sqe.addr2 = 0;   /* ... and the order stamp */
			}
			/* until it is submitted, none of p's credit sends behind
			 * it may be taken (by another's request run here) */
			p->taking = true;
			if (orders_others(sqe.opcode) && !ordering_) {
				drain_others(p);
				if (p->dead)
					return;
			}
			/* before it runs: its completion may be reaped at once */
			credit_lockstep(p, sqe);
			/* one for another node takes nothing here: the credit
			 * sends that returned go first, as before any request */
			bool remote = net_ && net_->wants(p, sqe, *p->mm);
			if (remote)
				credit_run();
			else
				credit_before(p, sqe);
			if (p->dead)
				return;
			p->taking = false;
			if (remote) {
				kipc::Creds c = kernel_.creds(p->task); /* cred_refresh's */
				net_->submit({p, p->creds.pid, c.uid, c.gid, p->mm.get(), p->task}, sqe);
			} else {
				submit(p, sqe);
				fast_count(p, sqe);
			}
			if (p->dead)
				return;
			credit_after(p, sqe);
		}
		p->stalled = false;
		if (polling)
			break; /* we come back without a doorbell */
		p->set_sq_flags(p->sq_flags | KIPC_SQ_NEED_WAKEUP);
		std::atomic_thread_fence(std::memory_order_seq_cst);
		if (load_relaxed(&p->ctl->sq_tail) == p->sq_head)
			break;
	}
	if (p->consumed)
		mark_dirty(p);
}

/*
 * Before a call that destroys or changes an object runs, every request
 * other processes have already published takes effect: a process
 * blocked in msgrcv (its request is in its SQ, whether or not we have
 * read its doorbell yet) sees the IPC_RMID that its parent issued after
 * it, as EIDRM, never the EINVAL of a queue that was already gone. Only
 * what fits the usual per-round budget and in-flight bound is taken
 * (transport.md, "Ordering between processes").
 */
void Server::drain_others(Proc *p)
{
	ordering_ = true;
	std::vector<Proc *> others;
	others.reserve(procs_.size());
	for (auto &[pid, q] : procs_)
		if (q.get() != p && !q->dead)
			others.push_back(q.get());
	for (Proc *q : others)
		if (!q->dead && load_acquire(&q->ctl->sq_tail) != q->sq_head)
			drain(q, q->active);
	ordering_ = false;
}

/* Move overflowed completions into free CQ slots; how many moved. */
uint32_t Server::refill(Proc *p)
{
	uint32_t moved = 0;
	if (p->overflow.empty())
		return 0;
	uint32_t head = load_acquire(&p->ctl->cq_head);
	uint32_t used = p->cq_tail - head;
	while (!p->overflow.empty() && used < kCqEntries) {
		cq_write(p, p->overflow.front());
		p->overflow.pop_front();
		used++;
		moved++;
	}
	return moved;
}

/*
 * Publish what this round produced: overflow into free CQ slots, the CQ
 * tail, flags, then one futex wake and one eventfd write at most.
 */
void Server::flush(Proc *p)
{
	p->dirty = false;
	if (p->dead)
		return;
	for (int round = 0; round < 4; round++) {
		refill(p);
		if (p->stalled && p->inflight + p->overflow.size() < kMaxInflight)
			drain(p);
		else
			break;
		if (p->dead)
			return;
	}
	/*
	 * CQ_OVERFLOW and the process's reap are a Dekker pair: we store the
	 * flag, fence, and look at cq_head again; the process stores cq_head,
	 * fences, and looks at the flag (then rings). Either we see the room
	 * it made, or it sees the flag: overflowed completions never wait
	 * for an unrelated event.
	 */
	for (;;) {
		uint32_t f = p->sq_flags;
		f = p->overflow.empty() ? f & ~KIPC_SQ_CQ_OVERFLOW
					: f | KIPC_SQ_CQ_OVERFLOW;
		p->set_sq_flags(f);
		if (p->overflow.empty())
			break;
		std::atomic_thread_fence(std::memory_order_seq_cst);
		if (!refill(p))
			break;
	}

	bool posted = p->cq_tail != p->cq_published;
	if (posted) {
		store_release(&p->ctl->cq_tail, p->cq_tail);
		p->cq_published = p->cq_tail;
	}
	if (posted || p->consumed) {
		/*
		 * Wake only when someone waits: the cq_tail and sq_head stores
		 * above, a full fence, then waiters. A sleeper increments
		 * waiters, fences and re-checks the CQ (and, waiting for SQ
		 * room, sq_head) before FUTEX_WAIT on the wake_seq it read
		 * first: either we see it and bump and wake, or it sees our
		 * stores. With nobody asleep (a spinning process) no RMW on
		 * wake_seq's line and no system call.
		 */
		p->consumed = false;
		std::atomic_thread_fence(std::memory_order_seq_cst);
		if (load_relaxed(&p->ctl->waiters) != 0) {
			p->st.woken++;
			std::atomic_ref<uint32_t>(p->ctl->wake_seq)
				.fetch_add(1, std::memory_order_seq_cst);
			futex_wake(&p->ctl->wake_seq);
		}
	}
	if (posted && p->notify >= 0 &&
	    (load_relaxed(&p->ctl->cq_flags) & KIPC_CQ_EVENTFD)) {
		uint64_t one = 1;
		if (write(p->notify, &one, sizeof one) < 0) {
			/* EAGAIN: counter saturated, it is readable anyway */
		}
	}
}

/*
 * While spinning: take whatever the active processes published. At the
 * end (stop): drain once more the normal way, which sets NEED_WAKEUP and
 * re-checks the tail, and forget them.
 */
void Server::poll_active(bool stop)
{
	std::vector<Proc *> v = active_;
	if (stop) {
		for (Proc *p : active_)
			p->active = false;
		active_.clear();
	}
	for (Proc *p : v) {
		if (p->dead)
			continue;
		if (stop || load_acquire(&p->ctl->sq_tail) != p->sq_head)
			drain(p, !stop);
	}
}

} // namespace kipcd
