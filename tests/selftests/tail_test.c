// SPDX-License-Identifier: MIT
/*
 * tail_test: a synchronous receive right after a credit send spins for
 * its answer instead of sleeping (lib/ring.c, wait_waiter()).
 *
 * Every credit send is followed by its completion (reaping it frees the
 * send's buffer). The library's spin before the futex used to end at
 * the first completion of any request: in a ping-pong over task queues
 * or mailboxes with send credits, the credit send's completion ended
 * the receive's spin at once and the receive slept in the futex every
 * round trip, so kipcd had to wake it every time (one FUTEX_WAIT and one
 * FUTEX_WAKE per round trip; the p99 tail of kipc-direct and kipc-mbox,
 * performance.md "fast-copy"). The spin now goes on for its time.
 *
 * Measured here with the ring's wake_seq word, which kipcd bumps only
 * when a thread of the process sleeps (or is about to) on it. A round
 * trip that was woken yet took less than the spin time slept before its
 * spin was over: that is the bug. Before the fix most round trips that
 * were woken were such short ones; now none is (a few are allowed for a
 * bump that lands in the next round trip).
 */
#include "kipc_test.h"

#include <kipc/ring.h>

#if !defined(CONFIG_LIB_SPIN_NS) || CONFIG_LIB_SPIN_NS <= 0
#undef CONFIG_LIB_SPIN_NS
#define CONFIG_LIB_SPIN_NS 0 /* no spin: every wait sleeps, none is early */
#endif

#define NROUND 2000

/* This process's shared region (its memfd mapped at offset 0), or NULL. */
static struct kipc_ring_ctl *ring_ctl(void)
{
	char want[64], line[512];
	snprintf(want, sizeof want, "/memfd:kipc:%d ", getpid());
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return NULL;
	struct kipc_ring_ctl *c = NULL;
	while (fgets(line, sizeof line, f)) {
		unsigned long start, off;
		if (strstr(line, want) && sscanf(line, "%lx-%*x %*s %lx", &start, &off) == 2 &&
		    off == 0) {
			c = (struct kipc_ring_ctl *)start;
			break;
		}
	}
	fclose(f);
	return c;
}

static uint32_t wakes(const struct kipc_ring_ctl *c)
{
	return __atomic_load_n(&c->wake_seq, __ATOMIC_ACQUIRE);
}

/*
 * Echo NROUND + 1 messages back to the sender, over task queues. It
 * polls (nonblocking receives) instead of parking in kipcd: a send that
 * a parked receiver takes at once, followed by the sender's receive, is
 * a lock step, which kipcd gives no credits (transport.md section 12);
 * the sender's sends here stay queued until the echo's next poll.
 */
static int echo(void *arg)
{
	char b[64];
	struct kipc_msginfo info;
	(void)arg;
	for (int i = 0; i <= NROUND; i++) {
		ssize_t n;
		while ((n = kipc_receive(KIPC_ANY, b, sizeof b, &info, KIPC_F_NONBLOCK)) < 0 &&
		       errno == EAGAIN)
			;
		if (n != 64)
			return 1;
		if (kipc_send(info.pid, b, 64, 0, 0) < 0)
			return 2;
	}
	return 0;
}

TEST(receive_after_credit_send_spins_not_sleeps)
{
	char b[64] = {1};
	ASSERT_EQ(0, kipc_attach());
	struct kipc_ring_ctl *c = ring_ctl();
	ASSERT_NE(NULL, c);
	const struct kipc_credit *cr =
		(const struct kipc_credit *)((const char *)c + KIPC_CREDIT_OFF);
	pid_t pid = kt_fork(echo, NULL);
	ASSERT_LT(0, pid);
	/* the first round trip earns the credits */
	ASSERT_EQ(0, kipc_send(pid, b, 64, 0, 0));
	ASSERT_EQ(64, kipc_receive(KIPC_ANY, b, sizeof b, NULL, 0));
	int credited = 0, woken = 0, early = 0;
	for (int i = 0; i < NROUND; i++) {
		credited += __atomic_load_n(&cr->gen, __ATOMIC_ACQUIRE) != 0;
		uint32_t w0 = wakes(c);
		int64_t t0 = kt_now_ns();
		ASSERT_EQ(0, kipc_send(pid, b, 64, 0, 0));
		ASSERT_EQ(64, kipc_receive(KIPC_ANY, b, sizeof b, NULL, 0));
		int64_t t = kt_now_ns() - t0;
		if (wakes(c) != w0) {
			woken++;
			early += t < CONFIG_LIB_SPIN_NS;
		}
	}
	EXPECT_EQ(0, kt_wait(pid));
	ksft_print("# %d round trips: %d with a grant, %d woken, %d of them shorter than the spin\n",
		   NROUND, credited, woken, early);
	/* the scenario is the credit sends' (most round trips had a grant) */
	EXPECT_LT(NROUND / 2, credited);
	EXPECT_GE(NROUND / 100, early);
}

KIPC_TEST_MAIN
