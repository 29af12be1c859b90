// SPDX-License-Identifier: MIT
/*
 * sync_test: blocking, NONBLOCK (EAGAIN), timeouts (relative, absolute
 * on CLOCK_MONOTONIC and CLOCK_REALTIME, already expired) and the
 * EDEADLK check for cycles of zero-capacity sends.
 *
 * Timeouts are checked for "not early" and "not hanging" only.
 */
#include "kipc_test.h"

#define MS 1000000ll

TEST(nonblocking_receive_on_empty_queue)
{
	char buf[8];
	EXPECT_EQ(-1, kipc_receive(KIPC_ANY, buf, sizeof buf, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	int64_t id = kipc_mbox_open(NULL, 0, NULL);
	ASSERT_LT(0, id);
	EXPECT_EQ(-1, kipc_mbox_receive(id, buf, sizeof buf, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
}

TEST(nonblocking_send_on_full_link)
{
	int64_t id = kipc_mbox_open(NULL, 0, &(struct kipc_mbox_attr){.capacity = 1, .mode = 0600});
	ASSERT_LT(0, id);
	ASSERT_EQ(0, kipc_mbox_send(id, "a", 1, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(-1, kipc_mbox_send(id, "b", 1, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(1, st.nmsg);
}

TEST(relative_timeout_receive)
{
	char buf[8];
	int64_t t0 = kt_now_ns();
	EXPECT_EQ(-1, kipc_receive_timed(KIPC_ANY, buf, sizeof buf, NULL, 0, 100 * MS));
	EXPECT_EQ(ETIMEDOUT, errno);
	int64_t dt = kt_now_ns() - t0;
	EXPECT_LE(100 * MS, dt);
	EXPECT_GT(KT_BOUND_MS * MS, dt);
}

TEST(relative_timeout_send_on_full_mailbox)
{
	int64_t id = kipc_mbox_open(NULL, 0, &(struct kipc_mbox_attr){.capacity = 1, .mode = 0600});
	ASSERT_LT(0, id);
	ASSERT_EQ(0, kipc_mbox_send(id, "a", 1, 0, 0));
	int64_t t0 = kt_now_ns();
	EXPECT_EQ(-1, kipc_mbox_send_timed(id, "b", 1, 0, 0, 80 * MS));
	EXPECT_EQ(ETIMEDOUT, errno);
	int64_t dt = kt_now_ns() - t0;
	EXPECT_LE(80 * MS, dt);
	EXPECT_GT(KT_BOUND_MS * MS, dt);
	/* nothing was queued by the failed send */
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(1, st.nmsg);
	EXPECT_EQ(0, st.nsenders);
}

TEST(absolute_timeouts)
{
	char buf[8];
	int64_t id = kipc_mbox_open(NULL, 0, NULL);
	ASSERT_LT(0, id);

	int64_t t0 = kt_now_ns();
	EXPECT_EQ(-1, kipc_mbox_receive_timed(id, buf, sizeof buf, NULL, KIPC_F_ABSTIME,
					      t0 + 60 * MS));
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_LE(t0 + 60 * MS, kt_now_ns());

	int64_t r0 = kt_realtime_ns();
	EXPECT_EQ(-1, kipc_mbox_receive_timed(id, buf, sizeof buf, NULL, KIPC_F_REALTIME,
					      r0 + 60 * MS));
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_LE(r0 + 60 * MS, kt_realtime_ns());

	/* via the opts variant */
	struct kipc_opts o = {.timeout = kt_now_ns() + 30 * MS};
	EXPECT_EQ(-1, kipc_mbox_receive_x(id, buf, sizeof buf, NULL,
					  KIPC_F_TIMEOUT | KIPC_F_ABSTIME, &o));
	EXPECT_EQ(ETIMEDOUT, errno);
}

TEST(expired_timeout_fails_at_once)
{
	char buf[8];
	int64_t t0 = kt_now_ns();
	EXPECT_EQ(-1, kipc_receive_timed(KIPC_ANY, buf, sizeof buf, NULL, KIPC_F_ABSTIME,
					 t0 - 1000 * MS));
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_EQ(-1, kipc_receive_timed(KIPC_ANY, buf, sizeof buf, NULL, 0, 0));
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_GT(KT_BOUND_MS * MS, kt_now_ns() - t0);
	/* a message that is there is taken even with an expired timeout */
	ASSERT_EQ(0, kipc_send(getpid(), "x", 1, 0, 0));
	EXPECT_EQ(1, kipc_receive_timed(KIPC_ANY, buf, sizeof buf, NULL, 0, 0));
}

TEST(bad_wait_flags)
{
	char buf[8];
	EXPECT_EQ(-1, kipc_receive_timed(KIPC_ANY, buf, sizeof buf, NULL, 0, -5));
	EXPECT_TRUE(errno == EINVAL || errno == ETIMEDOUT) TH_LOG("errno %d", errno);
	EXPECT_EQ(-1, kipc_receive(KIPC_ANY, buf, sizeof buf, NULL,
				   KIPC_F_TIMEOUT | KIPC_F_ABSTIME | KIPC_F_REALTIME));
	EXPECT_EQ(EINVAL, errno);
}

/* A timed-out receive took nothing: a message sent later is intact. */
TEST(timeout_takes_nothing)
{
	char buf[8];
	int64_t id = kipc_mbox_open(NULL, 0, NULL);
	ASSERT_LT(0, id);
	EXPECT_EQ(-1, kipc_mbox_receive_timed(id, buf, sizeof buf, NULL, 0, 20 * MS));
	EXPECT_EQ(ETIMEDOUT, errno);
	kt_expect_no_receiver(_metadata, id);
}

/* A blocked sender wakes when a receiver frees space. */
static int fill_then_block(void *p)
{
	int64_t id = *(int64_t *)p;
	for (int i = 0; i < 3; i++)
		if (kipc_mbox_send(id, &i, sizeof i, 0, 0) < 0)
			return 10 + i;
	return 0;
}

TEST(blocked_sender_wakes_when_space_frees)
{
	int64_t id = kt_shared_mbox(2);
	ASSERT_LT(0, id);
	pid_t c = kt_fork(fill_then_block, &id);
	ASSERT_LT(0, c);
	ASSERT_EQ(0, kt_wait_mbox(id, KT_SENDERS, 1, KT_BOUND_MS));
	int v;
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive(id, &v, sizeof v, NULL, 0));
		EXPECT_EQ(i, v);
	}
	EXPECT_EQ(0, kt_wait(c));
	kipc_mbox_destroy(id);
}

/* ---- EDEADLK: zero-capacity send cycles ---------------------------- */

static int set_zero_capacity(void)
{
	struct kipc_mbox_attr a = kt_attr(0);
	return kipc_taskq_setattr(&a);
}

struct cyc_arg {
	pid_t *pids;        /* pids[i] sends to pids[(i+1) % n] */
	int n, me;
	struct kt_barrier *b; /* [0] attached, [1 + i] member i may go */
	int *pidmem;
};

static int cycle_member(void *p)
{
	struct cyc_arg *a = p;
	if (kipc_attach() < 0 || set_zero_capacity() < 0)
		return 100;
	kt_post(&a->b[0], 1);
	if (kt_wait_post(&a->b[1 + a->me], 1) < 0)
		return 101;
	pid_t to = a->pidmem[(a->me + 1) % a->n];
	int v = a->me;
	if (kipc_send(to, &v, sizeof v, 0, 0) == 0)
		return 0;
	int e = errno;
	return e == EDEADLK ? 1 : 50 + e % 50;
}

/* Members 0..n-2 block sending; then the last closes the cycle. */
static void run_cycle(struct __test_metadata *_metadata, int n)
{
	int *pidmem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, pidmem);
	struct kt_barrier b[9];
	for (int i = 0; i <= n; i++)
		ASSERT_EQ(0, kt_barrier_init(&b[i]));
	struct cyc_arg a[8];
	pid_t pids[8];
	for (int i = 0; i < n; i++) {
		a[i] = (struct cyc_arg){pids, n, i, b, pidmem};
		pids[i] = kt_fork(cycle_member, &a[i]);
		ASSERT_LT(0, pids[i]);
		pidmem[i] = pids[i];
	}
	ASSERT_EQ(0, kt_wait_post(&b[0], n));
	/* all but the last start: they block (nobody receives); each is
	 * parked in its send before the next starts */
	for (int i = 0; i < n - 1; i++) {
		kt_post(&b[1 + i], 1);
		ASSERT_EQ(0, kt_wait_blocked(pids[i], KIPC_SYS_send))
			TH_LOG("member %d not blocked in its send: %s", i, strerror(errno));
	}
	/* the last one would close the cycle */
	int64_t t0 = kt_now_ns();
	kt_post(&b[n], 1);
	int last = kt_wait(pids[n - 1]);
	EXPECT_EQ(1, last) TH_LOG("the closing send must fail EDEADLK");
	EXPECT_GT(KT_BOUND_MS * MS, kt_now_ns() - t0);
	for (int i = 0; i < n - 1; i++) {
		int st;
		/* still blocked, or woken with ESRCH because the member
		 * it sends to exited after its EDEADLK; never EDEADLK */
		if (waitpid(pids[i], &st, WNOHANG) == pids[i]) {
			EXPECT_EQ(50 + ESRCH, WEXITSTATUS(st))
				TH_LOG("member %d ended with %d", i, WEXITSTATUS(st));
			continue;
		}
		kill(pids[i], SIGKILL);
		kt_wait(pids[i]);
	}
}

TEST(two_task_send_cycle_edeadlk)
{
	run_cycle(_metadata, 2);
}

TEST(three_task_send_cycle_edeadlk)
{
	run_cycle(_metadata, 3);
}

TEST(self_send_on_zero_capacity_edeadlk)
{
	ASSERT_EQ(0, set_zero_capacity());
	EXPECT_EQ(-1, kipc_send(getpid(), "x", 1, 0, 0));
	EXPECT_EQ(EDEADLK, errno);
}

KIPC_TEST_MAIN
