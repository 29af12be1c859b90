// SPDX-License-Identifier: MIT
/*
 * kipcd: send credits (Documentation/transport.md section 12). A
 * synchronous mbox_send that has a credit completes in the caller: the
 * library publishes the entry and returns. What makes that result exact:
 *
 *  - room and bytes were reserved by the core (kernel/ipc/credit.cc) when
 *    the credits were granted, and every request that could take that
 *    room, the bytes, the permission or the mailbox away first revokes the
 *    credits (credit_before): the credit send always succeeds when taken;
 *  - before kipcd acts on any other request, and before timers, exits and
 *    revocations, it takes the holder's published credit sends
 *    (credit_run): everything that happens after a credit send returned
 *    sees it, as if kipcd had taken it when it was published;
 *  - a revocation stores gen 0, fences and reads sq_tail; the library
 *    publishes sq_tail, fences and reads gen: either we take the entry
 *    under the credit, or the library sees the revocation and waits for
 *    the entry's own completion.
 * One holder at a time, kernel-wide: two holders' published sends have
 * no order kipcd could know, and receive_set compares across mailboxes.
 */
#include "server.h"

#include <fmt/core.h>

namespace kipcd {

namespace {

constexpr uint32_t kCreditMax = 16;            /* credits a holder has at most */
constexpr int64_t kCreditIdleNs = 1000000000;  /* unused this long: taken back */
constexpr int64_t kCreditCooldownNs = 10000000; /* after another sender came */

/*
 * Requests of other processes that need no revocation: they neither add
 * messages, nor charge bytes, nor change rights, limits or objects.
 * (They still come after the holder's published credit sends.)
 */
bool leaves_credits(uint8_t opcode)
{
	switch (opcode) {
	case KIPC_SYS_nop:
	case KIPC_SYS_receive:
	case KIPC_SYS_mbox_receive:
	case KIPC_SYS_mbox_receive_set:
	case KIPC_SYS_mbox_stat:
	case KIPC_SYS_taskq_stat:
	case KIPC_SYS_cancel:
	case KIPC_SYS_sysinfo:
	case KIPC_SYS_task_list:
	case KIPC_SYS_task_info:
	case KIPC_SYS_mbox_list:
	case KIPC_SYS_mbox_info:
	case KIPC_SYS_waiter_list:
	case KIPC_SYS_msg_list:
	case KIPC_SYS_trace_read:
	case KIPC_SYS_mq_timedreceive:
	case KIPC_SYS_mq_getattr:
	case KIPC_SYS_msgrcv:
	case KIPC_SYS_kernel_info:
		return true;
	default:
		return false;
	}
}

template <typename T> void store_word(T *w, T v)
{
	std::atomic_ref<T>(*w).store(v, std::memory_order_release);
}

} // namespace

/* Is sqe a send under p's current credits (our count, not the process's)? */
bool Server::credit_fits(const Proc *p, const kipc_sqe &sqe) const
{
	return credit_.p == p && sqe.opcode == KIPC_SYS_mbox_send &&
	       (sqe.flags & KIPC_F_CREDIT) && !(sqe.flags & ~(KIPC_F_CREDIT | KIPC_F_NONBLOCK)) &&
	       sqe.target == credit_.link && sqe.timeout == int64_t(credit_.gen) &&
	       sqe.type == 0 && sqe.len <= credit_.msgsize && sqe.prio <= KIPC_PRIO_MAX &&
	       credit_.applied < credit_.limit;
}

/* Run one request of p in the core; sync_res_ is its result if it completed at once. */
void Server::submit(Proc *p, const kipc_sqe &sqe)
{
	push_before(p, sqe); /* push.cc */
	if (p->dead)
		return;
	sync_p_ = p;
	sync_ud_ = sqe.user_data;
	sync_res_ = 1;
	sync_done_ = false;
	kernel_.submit(p->task, sqe);
	sync_p_ = nullptr;
	if (!p->dead)
		push_after(p, sqe);
}

/* Take a credit send: its credit's charge goes back, its message takes its own. */
void Server::credit_apply(Proc *p, const kipc_sqe &sqe)
{
	credit_.applied++;
	credit_.used_ns = clock_.monotonic_ns();
	kernel_.release_sends(credit_.uid, credit_.charge);
	kipc_sqe s = sqe;
	s.flags &= ~KIPC_F_CREDIT;
	s.timeout = 0;
	submit(p, s);
	if (sync_res_ != 0) {
		credit_failed_++;
		klog(fmt::format("kipc: credit send of pid {} to {} failed ({}): a kipcd bug",
				 p->creds.pid, sqe.target, sync_res_));
	}
	if (!p->dead)
		credit_topup(p);
}

/*
 * Take the credit sends q has published at the head of its SQ, past the
 * usual budget and in-flight bound: their number is bounded by the
 * credits we gave. Stops at the first other entry (the library publishes
 * a credit send only when it has no ordinary entry waiting before it).
 */
void Server::credit_run(Proc *q)
{
	if (!q || q->dead)
		return;
	uint32_t tail;
	if (!sq_read_tail(q->ctl, q->sq_head, kSqEntries, &tail))
		return; /* garbage: its own drain detaches it */
	bool took = false;
	while (int32_t(tail - q->sq_head) > 0 && credit_.p == q && !q->dead) {
		kipc_sqe sqe = sq_fetch(q->sq, q->sq_head, kSqEntries);
		if (!credit_fits(q, sqe))
			break;
		q->sq_head++;
		store_release(&q->ctl->sq_head, q->sq_head);
		q->consumed = true;
		nconsumed_++;
		q->inflight++;
		note_active(q); /* polled while we spin, as drain() does */
		took = true;
		credit_apply(q, sqe);
	}
	if (took)
		mark_dirty(q);
}

/*
 * Before kipcd runs any other request of p: the holder's published credit
 * sends first; then take the credits back if the request could take
 * their room, bytes, rights or mailbox away.
 */
void Server::credit_before(Proc *p, const kipc_sqe &sqe)
{
	Proc *q = credit_.p;
	if (!q)
		return;
	if (q != p) {
		credit_run(q);
		if (!leaves_credits(sqe.opcode))
			credit_revoke(true);
		return;
	}
	/* the holder itself: its earlier credit sends were taken in SQ order */
	if (leaves_credits(sqe.opcode))
		return;
	if (sqe.opcode == KIPC_SYS_mbox_send && sqe.target == credit_.link &&
	    (credit_.applied == credit_.limit || credit_room(p)))
		return; /* no credit left (it tops them up), or room beyond them */
	credit_revoke(false);
}

/*
 * Has the holder's mailbox room for one more message beyond the credits
 * held? Then its own ordinary send there (its library had not seen the
 * last top-up yet) takes that room, not theirs: no revocation.
 */
bool Server::credit_room(Proc *p)
{
	uint32_t msgsize = 0;
	uint64_t charge = 0;
	uint32_t held = credit_.limit - credit_.applied;
	if (kernel_.reserve_sends(p->task, credit_.link, held, 1, &msgsize, &charge) != 1)
		return false;
	kernel_.release_sends(kernel_.creds(p->task).uid, charge);
	return msgsize == credit_.msgsize;
}

/* After p's ordinary request: a plain send that succeeded at once may earn credits. */
void Server::credit_after(Proc *p, const kipc_sqe &sqe)
{
	if (sqe.opcode != KIPC_SYS_mbox_send || sync_res_ != 0 || p->dead ||
	    (sqe.flags & ~(KIPC_F_NONBLOCK | KIPC_F_CREDIT)) || sqe.type)
		return;
	if (credit_.p == p && credit_.link == sqe.target)
		credit_topup(p);
	else if (!credit_.p)
		credit_grant(p, sqe.target);
}

void Server::credit_grant(Proc *p, int64_t link)
{
	if (!p->credit_ok || net_ || !p->overflow.empty() || p->stalled ||
	    clock_.monotonic_ns() < credit_cooldown_)
		return;
	uint32_t msgsize = 0;
	uint64_t charge = 0;
	uint32_t n = kernel_.reserve_sends(p->task, link, 0, kCreditMax, &msgsize, &charge);
	if (!n)
		return;
	if (++credit_gen_ == 0)
		credit_gen_ = 1;
	/* the task's uid as of its last cred_refresh: the user charged */
	credit_ = Credit{p, link, credit_gen_, n, 0, msgsize, charge,
			 kernel_.creds(p->task).uid, clock_.monotonic_ns()};
	/* gen is 0 here (never granted, or revoked): the words, then gen */
	kipc_credit *c = p->credit;
	store_word(&c->link, link);
	store_word(&c->msgsize, msgsize);
	store_word(&c->limit, n);
	store_word(&c->gen, credit_.gen);
}

/* More credits in the same grant while the holder uses them. */
void Server::credit_topup(Proc *p)
{
	if (credit_.p != p || !p->overflow.empty() || credit_revoking_)
		return; /* a process that does not reap gets no more */
	uint32_t held = credit_.limit - credit_.applied;
	if (held > kCreditMax / 2)
		return;
	uint32_t msgsize = 0;
	uint64_t charge = 0;
	uint32_t n = kernel_.reserve_sends(p->task, credit_.link, held, kCreditMax - held,
					   &msgsize, &charge);
	if (!n)
		return;
	if (msgsize != credit_.msgsize || charge != credit_.charge) {
		/* cannot change without a setattr, which revokes; be safe */
		kernel_.release_sends(credit_.uid, n * charge);
		return;
	}
	credit_.limit += n;
	store_word(&p->credit->limit, credit_.limit);
}

/*
 * Take the credits back. The Dekker pair with the library: store gen 0,
 * full fence, read sq_tail (credit_run): an entry published before that
 * read is taken under its credit now; one published after it was
 * published after its sender read gen 0, and that sender waits for the
 * entry's completion like an ordinary send's. The unused credits give
 * their bytes back.
 */
void Server::credit_revoke(bool contended)
{
	Proc *q = credit_.p;
	if (!q)
		return;
	if (!q->dead) {
		std::atomic_ref<uint32_t>(q->credit->gen).store(0, std::memory_order_seq_cst);
		std::atomic_thread_fence(std::memory_order_seq_cst);
		credit_revoking_ = true;
		credit_run(q);
		credit_revoking_ = false;
	}
	uint32_t unused = credit_.limit - credit_.applied;
	if (unused)
		kernel_.release_sends(credit_.uid, uint64_t(unused) * credit_.charge);
	credit_ = Credit{};
	if (contended)
		credit_cooldown_ = clock_.monotonic_ns() + kCreditCooldownNs;
}

/*
 * A process goes away (or a pid the core watches exited): a holder's
 * published credit sends are taken while its task still exists (they
 * returned success), and the credits of whoever holds them go back
 * before the exit can destroy a mailbox or change a binding.
 */
void Server::credit_exit(Proc *p)
{
	(void)p;
	credit_revoke(false);
	push_recall(false); /* its claims are taken, the rest stays queued (push.cc) */
}

/* Credits nobody used for kCreditIdleNs go back (the loop's timer wakes us). */
void Server::credit_timers()
{
	if (credit_.p && clock_.monotonic_ns() >= credit_deadline())
		credit_revoke(false);
}

int64_t Server::credit_deadline() const
{
	return credit_.p ? credit_.used_ns + kCreditIdleNs : INT64_MAX;
}

} // namespace kipcd
