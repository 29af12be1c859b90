/* SPDX-License-Identifier: MIT */
/*
 * libkipc: the ring client. Submitting, reaping, sleeping, and the
 * synchronous call every wrapper is built on.
 *
 * Submit (mirror of the kernel's drain() in kernel/daemon/ring.cc):
 *   store sq_tail (release); full fence; load sq_flags;
 *   KIPC_SQ_NEED_WAKEUP -> write the doorbell eventfd.
 * Sleep (the kernel publishes cq_tail and sq_head, fences, and bumps and
 * wakes wake_seq only when it then sees waiters != 0):
 *   seen = wake_seq; waiters++; full fence; re-check the CQ and our
 *   waiter (and, waiting for SQ room, sq_head); FUTEX_WAIT(wake_seq,
 *   seen); waiters--.
 * Either the kernel sees waiters != 0 and wakes us, or we see its CQ
 * tail (its sq_head); FUTEX_WAIT returns at once if wake_seq moved after
 * we read it. With lap tags (KIPC_FEAT_CQ_LAP) "the CQ" is the lap of
 * the entry at our head, which the kernel stores before that fence too.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define LOAD_ACQ(p)      __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOAD(p)          __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE_REL(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define FENCE()          __atomic_thread_fence(__ATOMIC_SEQ_CST)

int64_t __kipc_now(void)
{
	return kipc_clock_ns(CLOCK_MONOTONIC);
}

int64_t kipc_timespec_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static void ring_doorbell(struct kipc_att *a)
{
	uint64_t one = 1;
	if (write(a->doorbell, &one, sizeof one) < 0) {
		/* EAGAIN: the counter is saturated, the kernel will look */
	}
}

/*
 * Wake the other threads sleeping on this ring (a handed-over CQE), if
 * any sleeps. Lock held: a sleeper reads wake_seq and increments waiters
 * under the lock, before it lets go of it, and we reaped under it after
 * that, so we see its waiters; a sleeper that comes after us sees, under
 * the lock, what we handed. With nobody asleep (a single-threaded
 * caller reaping its own completion) no read-modify-write on the line of
 * wake_seq and waiters, which kipcd reads in every flush.
 */
static void wake_others(struct kipc_att *a)
{
	if (!LOAD(&a->ctl->waiters))
		return;
	__atomic_fetch_add(&a->ctl->wake_seq, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &a->ctl->wake_seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void __kipc_publish_sq(struct kipc_att *a)
{
	a->plain_tail = a->sq_tail; /* every entry published here is ordinary */
	STORE_REL(&a->ctl->sq_tail, a->sq_tail);
	FENCE();
	if (LOAD(&a->ctl->sq_flags) & KIPC_SQ_NEED_WAKEUP)
		ring_doorbell(a);
}

static void async_push(const struct kipc_cqe *cqe)
{
	if (__kipc_lib.aq_count == __kipc_lib.aq_cap) {
		unsigned cap = __kipc_lib.aq_cap ? 2 * __kipc_lib.aq_cap : 64;
		struct kipc_cqe *q = malloc(cap * sizeof *q);
		if (!q)
			return; /* out of memory: the completion is lost */
		for (unsigned i = 0; i < __kipc_lib.aq_count; i++)
			q[i] = __kipc_lib.aq[(__kipc_lib.aq_head + i) % __kipc_lib.aq_cap];
		free(__kipc_lib.aq);
		__kipc_lib.aq = q;
		__kipc_lib.aq_cap = cap;
		__kipc_lib.aq_head = 0;
	}
	__kipc_lib.aq[(__kipc_lib.aq_head + __kipc_lib.aq_count) % __kipc_lib.aq_cap] = *cqe;
	__kipc_lib.aq_count++;
}

/*
 * Is the CQE at head posted? With lap tags (KIPC_FEAT_CQ_LAP) its slot
 * says so: the kernel stores the tag after the entry, and the entry is
 * visible from then on, before the kernel publishes cq_tail at the end
 * of its loop round (one cache line to poll, not two). Without them,
 * cq_tail says so.
 */
static inline bool cq_posted(struct kipc_att *a, uint32_t head)
{
	if (a->cq_lap)
		return LOAD_ACQ(&a->cq[head & (a->cq_entries - 1)].lap) ==
		       KIPC_CQ_LAP(head, a->cq_entries);
	return LOAD_ACQ(&a->ctl->cq_tail) != head;
}

/* The same without the lock: the head as the last reap stored it. */
static inline bool cq_pending(struct kipc_att *a)
{
	return cq_posted(a, LOAD(&a->ctl->cq_head));
}

void __kipc_reap(struct kipc_att *a)
{
	if (a->dead && a != __kipc_lib.cur)
		return;
	uint32_t tail = a->cq_head + a->cq_entries; /* at most one CQ's worth */
	bool handed = false;
	if (!a->cq_lap) {
		tail = LOAD_ACQ(&a->ctl->cq_tail);
		if (tail - a->cq_head > a->cq_entries)
			return; /* cannot happen with an honest kernel */
	}
	while (a->cq_head != tail && (!a->cq_lap || cq_posted(a, a->cq_head))) {
		struct kipc_cqe cqe = a->cq[a->cq_head & (a->cq_entries - 1)];
		cqe.lap = 0; /* the ring's, not the completion's */
		a->cq_head++;
		if (cqe.user_data & KIPC_UD_LIBRARY) {
			struct kipc_waiter *w;
			for (w = __kipc_lib.waiters; w; w = w->next)
				if (w->user_data == cqe.user_data)
					break;
			/* No waiter: a cancel's own answer, a cached
			 * send's notification after the call returned, or
			 * a credit send's (its call returned at once). */
			if (w && !LOAD(&w->done)) {
				w->cqe = cqe;
				__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
				handed = true;
			} else if (!w && (cqe.user_data & KIPC_UD_CREDIT)) {
				__kipc_arena_free(a, cqe.user_data & ~(KIPC_UD_LIBRARY | KIPC_UD_CREDIT));
				a->credit_bufs--;
				if (cqe.res < 0)
					a->credit_lost++; /* never, with an honest kernel */
			}
		} else if (a == __kipc_lib.cur) {
			async_push(&cqe);
			handed = true;
		}
	}
	STORE_REL(&a->ctl->cq_head, a->cq_head);
	FENCE();
	uint32_t f = LOAD(&a->ctl->sq_flags);
	if (f & KIPC_SQ_CQ_OVERFLOW)
		ring_doorbell(a); /* completions wait in the kernel */
	if (f & KIPC_SQ_DEAD)
		a->dead = true;
	if (handed)
		wake_others(a);
}

__thread void (*__kipc_on_sleep)(void);

/* sq: the caller waits for room in the SQ, not for a completion. */
static int sleep_for(struct kipc_att *a, int64_t deadline, const int *done, bool sq)
{
	if (a->dead)
		return -ECONNRESET;
	uint32_t seen = LOAD_ACQ(&a->ctl->wake_seq);
	uint32_t sq_tail = a->sq_tail; /* ours, under the lock */
	__atomic_fetch_add(&a->ctl->waiters, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&__kipc_lib.lock);
	FENCE();

	int ret = 0;
	if (cq_pending(a) || (done && LOAD_ACQ(done)) ||
	    (sq && sq_tail - LOAD_ACQ(&a->ctl->sq_head) < a->sq_entries) ||
	    (LOAD(&a->ctl->sq_flags) & KIPC_SQ_DEAD))
		goto out;
	if (__kipc_on_sleep)
		__kipc_on_sleep();

	int64_t wait_ns = (int64_t)KIPC_DEAD_POLL_MS * 1000000;
	if (deadline) {
		int64_t left = deadline - __kipc_now();
		if (left <= 0) {
			ret = -ETIMEDOUT;
			goto out;
		}
		if (left < wait_ns)
			wait_ns = left;
	}
	struct timespec ts = kipc_ns_timespec(wait_ns);
	/* Shared futex (no FUTEX_PRIVATE_FLAG): the waker is kipcd. */
	if (syscall(SYS_futex, &a->ctl->wake_seq, FUTEX_WAIT, seen, &ts,
		    NULL, 0) < 0) {
		if (errno == EINTR) {
			ret = -EINTR;
		} else if (errno == ETIMEDOUT) {
			if (__kipc_conn_hung_up(a))
				ret = -ECONNRESET;
			else if (deadline && __kipc_now() >= deadline)
				ret = -ETIMEDOUT;
		}
	}
out:
	__atomic_fetch_sub(&a->ctl->waiters, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&__kipc_lib.lock);
	if (ret == -ECONNRESET)
		__kipc_att_mark_dead(a);
	return ret;
}

int __kipc_sleep(struct kipc_att *a, int64_t deadline, const int *done)
{
	return sleep_for(a, deadline, done, false);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * Polls of the CQ between two sched_yield() calls while spinning. Fewer is
 * better when the CPUs are shared (three runnable threads, kipcd and two
 * processes, on two CPUs): kipc-bench ping-pong p50 5.5 us with 64, 4.1 us
 * with 8, 3.9 us with 1 (Documentation/performance.md).
 */
#define SPIN_POLLS_PER_YIELD 1

/*
 * A fast path's words are about to change (kipcd tops credits up, or
 * pushes the next message, in its next round while it is awake): poll
 * *w for up to CONFIG_LIB_SPIN_NS, lock dropped, as a synchronous call
 * spins for its completion. True when it moved from seen: look again.
 */
static bool fast_wait(const void *w, uint64_t seen, bool wide)
{
	if (CONFIG_LIB_SPIN_NS <= 0)
		return false;
	pthread_mutex_unlock(&__kipc_lib.lock);
	int64_t end = __kipc_now() + CONFIG_LIB_SPIN_NS;
	bool moved;
	do {
		moved = wide ? LOAD_ACQ((const uint64_t *)w) != seen
			     : LOAD_ACQ((const uint32_t *)w) != (uint32_t)seen;
		if (moved)
			break;
		cpu_relax();
		sched_yield(); /* kipcd may need this CPU to make the change */
	} while (__kipc_now() < end);
	pthread_mutex_lock(&__kipc_lib.lock);
	return moved;
}

/* Spin until a completion is posted, *done is set, or the time end. */
static void spin_until(struct kipc_att *a, const int *done, int64_t end)
{
	pthread_mutex_unlock(&__kipc_lib.lock);
	do {
		for (int i = 0; i < SPIN_POLLS_PER_YIELD; i++) {
			if (cq_pending(a) || (done && LOAD_ACQ(done)))
				goto out;
			cpu_relax();
		}
		sched_yield(); /* on a busy CPU, let the kernel or peer run */
	} while (__kipc_now() < end);
out:
	pthread_mutex_lock(&__kipc_lib.lock);
}

/* Spin a little before the futex: a fast server answers in microseconds. */
void __kipc_spin(struct kipc_att *a, const int *done)
{
	if (CONFIG_LIB_SPIN_NS > 0)
		spin_until(a, done, __kipc_now() + CONFIG_LIB_SPIN_NS);
}

int __kipc_push_sqe(struct kipc_att *a, const struct kipc_sqe *sqe, bool wait)
{
	for (;;) {
		if (a->dead)
			return -ECONNRESET;
		uint32_t head = LOAD_ACQ(&a->ctl->sq_head);
		if (a->sq_tail - head < a->sq_entries) {
			a->sq[a->sq_tail & (a->sq_entries - 1)] = *sqe;
			a->sq_tail++;
			return 0;
		}
		/* Full: let the kernel take entries first. */
		if (!wait)
			return -EBUSY;
		__kipc_publish_sq(a);
		__kipc_reap(a);
		int r = sleep_for(a, 0, NULL, true);
		if (r == -ECONNRESET)
			return r;
	}
}

/*
 * Would Linux restart the interrupted call? We cannot tell which signal
 * ran, so: yes when every signal that has a handler has SA_RESTART.
 * Handlers of synchronous fault signals do not count: those signals come
 * from a faulting instruction of the thread itself, never interrupt a
 * sleep, and sanitizers and crash reporters install them without
 * SA_RESTART.
 */
static bool restart_ok(void)
{
	for (int sig = 1; sig <= SIGRTMAX; sig++) {
		struct sigaction sa;
		if (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL ||
		    sig == SIGTRAP || sig == SIGSYS)
			continue;
		if (sigaction(sig, NULL, &sa) < 0)
			continue;
		if (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN)
			continue;
		if (!(sa.sa_flags & SA_RESTART))
			return false;
	}
	return true;
}

/* Wait for w's completion. Lock held. interruptible: may cancel.
 * norestart: a signal handler always interrupts (System V msgsnd/msgrcv). */
static int wait_waiter(struct kipc_att *a, struct kipc_waiter *w, bool norestart)
{
	bool cancelled = false;
	int64_t end = __kipc_now() + CONFIG_LIB_SPIN_NS;
	if (CONFIG_LIB_SPIN_NS > 0)
		spin_until(a, &w->done, end);
	for (;;) {
		__kipc_reap(a);
		if (LOAD_ACQ(&w->done))
			return 0;
		if (a->dead)
			return -ECONNRESET;
		/*
		 * The spin ended on another request's completion (a credit
		 * send's, which follows every credit send): spin on for the
		 * rest of the time rather than sleep, or every wait behind a
		 * credit send would sleep and need kipcd's futex wake.
		 */
		if (CONFIG_LIB_SPIN_NS > 0 && __kipc_now() < end) {
			spin_until(a, &w->done, end);
			continue;
		}
		int r = __kipc_sleep(a, 0, &w->done);
		if (r == -ECONNRESET) {
			__kipc_reap(a); /* an exact result if it is there */
			return LOAD_ACQ(&w->done) ? 0 : -ECONNRESET;
		}
		if (r != -EINTR || cancelled)
			continue;
		__kipc_reap(a);
		if (LOAD_ACQ(&w->done) || (!norestart && restart_ok()))
			continue;
		/*
		 * Cancel the parked request (KIPC_F_INTR: it fails EINTR)
		 * and wait for its own completion: the kernel runs one
		 * request at a time, so either the operation completed
		 * first (we report it) or the cancel did (EINTR).
		 */
		struct kipc_sqe c = {.user_data = KIPC_UD_LIBRARY | __kipc_lib.next_ud++};
		__kipc_enc_simple(&c, KIPC_SYS_cancel, (int64_t)w->user_data, KIPC_F_INTR);
		if (__kipc_push_sqe(a, &c, true) == 0)
			__kipc_publish_sq(a);
		cancelled = true;
	}
}

/*
 * Arena room, waiting for credit sends' buffers if they hold it: those
 * come back by themselves (kipcd takes a credit send at once), so a call
 * never fails ENOMEM because earlier credit sends had not been reaped.
 */
static uint64_t arena_alloc_wait(struct kipc_att *a, size_t len)
{
	uint64_t off = __kipc_arena_alloc(a, len);
	while (off == UINT64_MAX && a->credit_bufs && !a->dead && len <= a->arena_size) {
		__kipc_reap(a);
		off = __kipc_arena_alloc(a, len);
		if (off != UINT64_MAX || !a->credit_bufs)
			break;
		if (__kipc_sleep(a, 0, NULL) == -ECONNRESET)
			break;
	}
	return off;
}

/*
 * Send credits (transport.md section 12). Under the lock: a credit of
 * the current grant left, the payload copied into the arena (a bad
 * buffer fails EFAULT here, and nothing was sent), every ordinary entry
 * we published already consumed by the kernel (so it takes this entry
 * first in any order it must), room in the SQ. Publish, full fence, and
 * read gen again: unchanged, the kernel will take the entry under the
 * credit before it acts on its revocation (it stores gen 0, fences, and
 * reads sq_tail), so the send has succeeded; changed, wait for the
 * kernel's own answer, as an ordinary send does. Either way the result
 * is exact. The entry's completion still comes; reaping it frees the
 * buffer.
 */
/* The order stamp of a credit send: CLOCK_MONOTONIC, kipcd's clock. */
static uint64_t credit_clock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

long __kipc_credit_send(uint8_t op, int64_t id, int fd, const void *buf, size_t len,
			unsigned prio, unsigned flags)
{
	if (flags & ~KIPC_F_NONBLOCK)
		return 1;
	bool waited = false;
	pthread_mutex_lock(&__kipc_lib.lock);
again:;
	struct kipc_att *a = __kipc_lib.cur;
	if (!a || a->dead || !a->credit || len > UINT32_MAX) {
		pthread_mutex_unlock(&__kipc_lib.lock);
		return 1;
	}
	struct kipc_credit *c = a->credit;
	if (a->credit_bufs)
		__kipc_reap(a);
	uint32_t gen = LOAD_ACQ(&c->gen);
	int64_t link = LOAD(&c->link);
	uint32_t limit = LOAD(&c->limit);
	uint32_t msgsize = LOAD(&c->msgsize);
	uint32_t cop = LOAD(&c->op);
	uint32_t cprio = LOAD(&c->prio);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (!gen || LOAD(&c->gen) != gen || cop != op || link != id || len > msgsize ||
	    prio > cprio)
		goto slow;
	if (gen != a->credit_gen) {
		a->credit_gen = gen;
		a->credit_used = 0;
	}
	uint32_t head = LOAD_ACQ(&a->ctl->sq_head);
	uint64_t at = (uint64_t)gen << 32 | limit;
	if (a->credit_used >= limit && !flags && !waited && a->credit_stuck != at &&
	    (int32_t)(head - a->plain_tail) >= 0) {
		/*
		 * All used, none taken back: kipcd tops the grant up as it
		 * takes them. A send through kipcd now would cost it a
		 * round trip and us the grant's order (the next credit send
		 * waits for that entry); wait a little for the top-up.
		 */
		waited = true;
		a->refs++; /* the lock is dropped: another thread may detach */
		bool moved = fast_wait(&c->limit, limit, false);
		if (!moved)
			a->credit_stuck = at; /* no room for more, or kipcd is away */
		__kipc_att_put(a);
		if (moved)
			goto again;
		goto slow;
	}
	if (a->credit_used >= limit || (int32_t)(head - a->plain_tail) < 0 ||
	    a->sq_tail - head >= a->sq_entries)
		goto slow;
	uint64_t off = __kipc_arena_alloc(a, len);
	if (off == UINT64_MAX)
		goto slow;
	if (__kipc_copy_from_user(a->arena + off, buf, len)) {
		__kipc_arena_free(a, off);
		pthread_mutex_unlock(&__kipc_lib.lock);
		return -EFAULT; /* as the ordinary send: nothing sent */
	}
	struct kipc_sqe sqe = {.user_data = KIPC_UD_LIBRARY | KIPC_UD_CREDIT | off};
	__kipc_enc_send(&sqe, op, id, off, (uint32_t)len, (uint16_t)prio, flags | KIPC_F_CREDIT);
	sqe.type = fd; /* an mq_timedsend's descriptor (__kipc_enc_mq_xfer), else 0 */
	sqe.timeout = gen;
	/* the order among several holders' sends: the time, before publishing */
	uint64_t stamp = credit_clock();
	sqe.addr2 = stamp;
	a->sq[a->sq_tail & (a->sq_entries - 1)] = sqe;
	a->sq_tail++;
	a->credit_used++;
	a->credit_bufs++;
	STORE_REL(&a->ctl->sq_tail, a->sq_tail);
	FENCE();
	bool kept = LOAD(&c->gen) == gen;
	if (LOAD(&a->ctl->sq_flags) & KIPC_SQ_NEED_WAKEUP)
		ring_doorbell(a);
	if (kept) {
		/* a send that begins after this one returns reads a later time */
		while (credit_clock() <= stamp)
			;
		pthread_mutex_unlock(&__kipc_lib.lock);
		return 0;
	}
	/* Revoked meanwhile: the kernel's completion says what happened. */
	a->refs++;
	struct kipc_waiter w = {.user_data = sqe.user_data};
	w.next = __kipc_lib.waiters;
	__kipc_lib.waiters = &w;
	long ret = wait_waiter(a, &w, false);
	struct kipc_waiter **pp = &__kipc_lib.waiters;
	while (*pp != &w)
		pp = &(*pp)->next;
	*pp = w.next;
	if (!ret)
		ret = w.cqe.res < 0 ? (long)w.cqe.res : 0;
	if (LOAD_ACQ(&w.done)) { /* else the kernel went away with it */
		__kipc_arena_free(a, off);
		a->credit_bufs--;
	}
	__kipc_att_put(a);
	pthread_mutex_unlock(&__kipc_lib.lock);
	return ret;
slow:
	pthread_mutex_unlock(&__kipc_lib.lock);
	return 1;
}

/*
 * Receive push (transport.md section 13). Under the lock: the grant in
 * claim is for this mailbox (or our task queue), the slot of the next message carries its
 * tag (the kernel wrote it, the tag last) and the message fits. Copy it
 * out, then claim it with one compare-and-swap of claim from k to k + 1:
 * the kernel takes a push back with one exchange of claim with 0, so
 * either our swap came first (the message is ours, and the kernel takes
 * it from the queue) or it fails and nothing was received here: the
 * receive goes to the kernel. A bad buffer fails EFAULT after the claim,
 * as the kernel's receive does (the message was received, its bytes
 * lost); a NULL one, and a message larger than the buffer, go to the
 * kernel, which says what happens. mq (a POSIX queue's receive): only
 * while the message after it is pushed too, so still queued (such a
 * receive never empties the queue without kipcd), and into a buffer of
 * the queue's msgsize at least (else EMSGSIZE, from the kernel).
 */
long __kipc_push_receive(int64_t link, void *buf, size_t len, unsigned flags,
			 struct kipc_cqe *cqe, bool mq)
{
	if (flags & ~KIPC_F_NONBLOCK || !buf || link == 0)
		return KIPC_NOT_PUSHED;
	bool waited = false;
	pthread_mutex_lock(&__kipc_lib.lock);
again:;
	struct kipc_att *a = __kipc_lib.cur;
	if (!a || a->dead || !a->push) {
		pthread_mutex_unlock(&__kipc_lib.lock);
		return KIPC_NOT_PUSHED;
	}
	uint64_t c = LOAD_ACQ(&a->push->claim);
	uint32_t k = (uint32_t)c;
	const struct kipc_push_slot *s = &a->push_slots[k % KIPC_PUSH_SLOTS];
	const struct kipc_push_slot *n = &a->push_slots[(k + 1) % KIPC_PUSH_SLOTS];
	if ((c >> 32) && LOAD(&a->push->link) == link && !flags && !waited && a->push_stuck != c &&
	    LOAD_ACQ(&s->cqe.user_data) != ((c & ~0xffffffffull) | k)) {
		/*
		 * Our grant, its next slot not filled yet: kipcd pushes
		 * what is queued in each round while it is awake. A receive
		 * through kipcd now would cost it a round trip (and a
		 * steal); wait a little for the slot. An empty link costs
		 * this wait once, before the receive that parks.
		 */
		waited = true;
		a->refs++; /* the lock is dropped: another thread may detach */
		bool moved = fast_wait(&s->cqe.user_data, LOAD(&s->cqe.user_data), true);
		if (!moved)
			a->push_stuck = c; /* nothing queued, or kipcd is away */
		__kipc_att_put(a);
		goto again; /* cur may have changed meanwhile */
	}
	if (!(c >> 32) || LOAD(&a->push->link) != link ||
	    LOAD_ACQ(&s->cqe.user_data) != ((c & ~0xffffffffull) | k) ||
	    (mq && (len < LOAD(&a->push->msgsize) ||
		    LOAD_ACQ(&n->cqe.user_data) != ((c & ~0xffffffffull) | (uint32_t)(k + 1))))) {
		pthread_mutex_unlock(&__kipc_lib.lock);
		return KIPC_NOT_PUSHED;
	}
	*cqe = s->cqe;
	if (cqe->len > len || cqe->len > KIPC_PUSH_MAX) {
		pthread_mutex_unlock(&__kipc_lib.lock);
		return KIPC_NOT_PUSHED;
	}
	bool fault = __kipc_copy_to_user(buf, s->data, cqe->len) != 0;
	bool won = __atomic_compare_exchange_n(&a->push->claim, &c, c + 1, false,
					       __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&__kipc_lib.lock);
	if (!won)
		return KIPC_NOT_PUSHED; /* taken back: the kernel's queue has it */
	return fault ? -EFAULT : (long)cqe->len;
}

long __kipc_sync(struct kipc_sqe *sqe, const struct kipc_slot *s0,
		 const struct kipc_slot *s1, struct kipc_cqe *cqe)
{
	return __kipc_sync_flags(sqe, s0, s1, cqe, 0);
}

long __kipc_sync_flags(struct kipc_sqe *sqe, const struct kipc_slot *s0,
		       const struct kipc_slot *s1, struct kipc_cqe *cqe,
		       unsigned flags)
{
	const struct kipc_slot *slots[2] = {s0, s1};
	uint64_t off[2] = {0, 0};
	bool have[2] = {false, false};
	long ret;

	if (sqe->flags & KIPC_F_SKIP_SUCCESS)
		return -EINVAL; /* a synchronous call waits for its completion */
	pthread_mutex_lock(&__kipc_lib.lock);
	ret = __kipc_ensure_attached();
	if (ret) {
		pthread_mutex_unlock(&__kipc_lib.lock);
		return ret;
	}
	struct kipc_att *a = __kipc_lib.cur;
	a->refs++;
	for (int i = 0; i < 2; i++) {
		const struct kipc_slot *s = slots[i];
		if (!s)
			continue;
		if (s->len > UINT32_MAX) {
			ret = -EMSGSIZE;
			goto out;
		}
		off[i] = arena_alloc_wait(a, s->len);
		if (off[i] == UINT64_MAX) {
			/* Larger than the arena can ever hold, or full now. */
			ret = s->len > a->arena_size ? -EMSGSIZE : -ENOMEM;
			goto out;
		}
		have[i] = true;
		if (s->in) {
			ret = __kipc_copy_from_user(a->arena + off[i], s->in, s->len);
			if (ret)
				goto out; /* EFAULT: nothing sent */
		} else if (s->out || (flags & KIPC_SYNC_LATE_FAULT)) {
			/*
			 * A record (stat, attributes, introspection): what the
			 * kernel does not write reads 0, never an earlier
			 * call's bytes. A by_res output (a message, a reply)
			 * needs nothing: the kernel writes the res bytes we
			 * copy out, and the caller's buffer past them is not
			 * written at all.
			 */
			if (!s->by_res)
				memset(a->arena + off[i], 0, s->len);
		} else if (s->len) {
			ret = -EFAULT; /* a NULL buffer: nothing sent or taken */
			goto out;
		}
	}
	if (have[0])
		sqe->addr = off[0];
	if (have[1])
		sqe->addr2 = off[1];

	struct kipc_waiter w = {.user_data = KIPC_UD_LIBRARY | __kipc_lib.next_ud++};
	sqe->user_data = w.user_data;
	w.next = __kipc_lib.waiters;
	__kipc_lib.waiters = &w;
	ret = __kipc_push_sqe(a, sqe, true);
	if (!ret) {
		__kipc_publish_sq(a);
		ret = wait_waiter(a, &w, flags & KIPC_SYNC_NORESTART);
	}
	struct kipc_waiter **pp = &__kipc_lib.waiters;
	while (*pp != &w)
		pp = &(*pp)->next;
	*pp = w.next;
	if (ret)
		goto out;

	*cqe = w.cqe;
	ret = (long)w.cqe.res;
	if (ret >= 0) {
		for (int i = 0; i < 2; i++) {
			const struct kipc_slot *s = slots[i];
			if (!s || s->in || !s->len)
				continue;
			size_t n = s->len;
			if (s->by_res && (uint64_t)ret < n)
				n = (size_t)ret;
			/* A bad (or, with KIPC_SYNC_LATE_FAULT, NULL) buffer:
			 * the call happened, its output is lost. */
			if (__kipc_copy_to_user(s->out, a->arena + off[i], n))
				ret = -EFAULT;
		}
	}
out:
	for (int i = 0; i < 2; i++)
		if (have[i])
			__kipc_arena_free(a, off[i]);
	__kipc_att_put(a);
	pthread_mutex_unlock(&__kipc_lib.lock);
	return ret;
}
