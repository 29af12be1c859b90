// SPDX-License-Identifier: MIT
/*
 * rpc_test: call/reply by pid and through a mailbox; concurrent callers
 * each get their own reply; a server that exits before replying wakes
 * the caller with an error; a reply to an unknown token fails; a call's
 * priority (opts.prio) orders its request.
 */
#include "kipc_test.h"

/* Serve n calls on the own task queue (id 0) or a mailbox: reply x+1. */
static int serve(int64_t id, int n)
{
	for (int i = 0; i < n; i++) {
		long x;
		struct kipc_msginfo info;
		ssize_t r = id ? kipc_mbox_receive(id, &x, sizeof x, &info, 0)
			       : kipc_receive(KIPC_ANY, &x, sizeof x, &info, 0);
		if (r != sizeof x || !(info.flags & KIPC_CQE_F_CALL))
			return 10;
		long y = x + 1;
		if (kipc_reply(info.token, &y, sizeof y, 0) < 0)
			return 11;
	}
	return 0;
}

static int serve_taskq_3(void *p)
{
	struct kt_barrier *b = p;
	if (kipc_attach() < 0)
		return 100;
	kt_post(b, 1);
	return serve(0, 3);
}

TEST(call_reply_by_pid)
{
	struct kt_barrier b;
	pid_t s = kt_fork_ready(_metadata, &b, serve_taskq_3);
	for (long i = 0; i < 3; i++) {
		long y = 0;
		struct kipc_msginfo info;
		ASSERT_EQ((ssize_t)sizeof y, kipc_call(s, &i, sizeof i, &y, sizeof y, &info, 0))
			TH_LOG("call: %s", strerror(errno));
		EXPECT_EQ(i + 1, y);
		EXPECT_EQ(s, info.pid);
	}
	EXPECT_EQ(0, kt_wait(s));
}

TEST(many_callers_through_a_mailbox)
{
	int64_t id = kipc_mbox_open(NULL, 0, NULL);
	ASSERT_LT(0, id);
	enum { CALLERS = 6, CALLS = 20 };
	pid_t c[CALLERS];
	for (int k = 0; k < CALLERS; k++) {
		c[k] = fork();
		ASSERT_LE(0, c[k]);
		if (c[k] == 0) {
			for (long i = 0; i < CALLS; i++) {
				long x = k * 1000 + i, y = 0;
				if (kipc_mbox_call(id, &x, sizeof x, &y, sizeof y, NULL, 0) != sizeof y)
					_exit(1);
				if (y != x + 1)
					_exit(2);
			}
			_exit(0);
		}
	}
	EXPECT_EQ(0, serve(id, CALLERS * CALLS));
	for (int k = 0; k < CALLERS; k++)
		EXPECT_EQ(0, kt_wait(c[k]));
}

/* Server: receive one call, then exit without replying. */
static int serve_and_die(void *p)
{
	struct kt_barrier *b = p;
	if (kipc_attach() < 0)
		return 100;
	kt_post(b, 1);
	long x;
	struct kipc_msginfo info;
	if (kipc_receive(KIPC_ANY, &x, sizeof x, &info, 0) != sizeof x)
		return 101;
	return 0;
}

TEST(server_exits_before_reply)
{
	struct kt_barrier b;
	pid_t s = kt_fork_ready(_metadata, &b, serve_and_die);
	long x = 1, y;
	struct kipc_msginfo info;
	memset(&info, 0, sizeof info);
	int64_t t0 = kt_now_ns();
	EXPECT_EQ(-1, kipc_call(s, &x, sizeof x, &y, sizeof y, &info, 0));
	EXPECT_EQ(ESRCH, errno);
	EXPECT_GT(KT_BOUND_MS * 1000000ll, kt_now_ns() - t0);
	EXPECT_EQ(0, kt_wait(s));
}

TEST(call_to_dead_pid)
{
	pid_t c = kt_dead_pid(_metadata);
	long x = 1, y;
	EXPECT_EQ(-1, kipc_call(c, &x, sizeof x, &y, sizeof y, NULL, 0));
	EXPECT_EQ(ESRCH, errno);
}

TEST(reply_with_bad_token)
{
	EXPECT_EQ(-1, kipc_reply(0xdeadbeef, "x", 1, 0));
	EXPECT_TRUE(errno == ESRCH || errno == EINVAL || errno == ENOENT) TH_LOG("errno %d", errno);
}

TEST(call_timeout_before_delivery)
{
	/* nobody serves our own queue: call ourselves with a timeout */
	pid_t idle = kt_fork_idle();
	ASSERT_LT(0, idle);
	long x = 1, y;
	struct kipc_opts o = {.timeout = 50 * 1000000ll};
	EXPECT_EQ(-1, kipc_call_x(idle, &x, sizeof x, &y, sizeof y, NULL, KIPC_F_TIMEOUT, &o));
	EXPECT_EQ(ETIMEDOUT, errno);
	kill(idle, SIGKILL);
	kt_wait(idle);
}

/* Call the pid at *p with opts.prio 7: 0 if the reply is x + 1. */
static int call_prio_7(void *p)
{
	long x = 7, y = 0;
	struct kipc_opts o = {.prio = 7};
	if (kipc_call_x(*(pid_t *)p, &x, sizeof x, &y, sizeof y, NULL, 0, &o) != sizeof y)
		return 10;
	return y == 8 ? 0 : 11;
}

/* opts.prio is a call's priority: the request goes ahead of a lower
 * queued message and comes with it. Past KIPC_PRIO_MAX, or on a call
 * that takes no such prio, it fails EINVAL and nothing is sent. */
TEST(call_priority_orders_the_request)
{
	pid_t me = getpid();
	long x = 1, y;
	struct kipc_opts big = {.prio = KIPC_PRIO_MAX + 1}, p3 = {.prio = 3};
	EXPECT_EQ(-1, kipc_call_x(me, &x, sizeof x, &y, sizeof y, NULL, 0, &big));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kipc_send_x(me, &x, sizeof x, 0, 0, &p3));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kipc_receive_x(KIPC_ANY, &y, sizeof y, NULL, KIPC_F_NONBLOCK, &p3));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kipc_reply_x(1, &x, sizeof x, 0, &p3));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kipc_reply_receive_x(1, &x, sizeof x, KIPC_ANY, &y, sizeof y, NULL,
					   KIPC_F_NONBLOCK, &p3));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, kt_wait_taskq(KT_NMSG, 0, KT_BOUND_MS));

	long low = 100;
	ASSERT_EQ(0, kipc_send(me, &low, sizeof low, 0, 0));
	pid_t c = kt_fork(call_prio_7, &me);
	ASSERT_LT(0, c);
	ASSERT_EQ(0, kt_wait_taskq(KT_NMSG, 2, KT_BOUND_MS)); /* the request is queued */
	struct kipc_msginfo info;
	ASSERT_EQ((ssize_t)sizeof x, kipc_receive(KIPC_ANY, &x, sizeof x, &info, 0));
	EXPECT_EQ(7, x);
	EXPECT_EQ(7u, info.prio);
	EXPECT_EQ(c, info.pid);
	EXPECT_TRUE(info.flags & KIPC_CQE_F_CALL);
	long r = x + 1;
	EXPECT_EQ(0, kipc_reply(info.token, &r, sizeof r, 0));
	ASSERT_EQ((ssize_t)sizeof x, kipc_receive(KIPC_ANY, &x, sizeof x, &info, 0));
	EXPECT_EQ(100, x);
	EXPECT_EQ(0, kt_wait(c));
}

KIPC_TEST_MAIN
