// SPDX-License-Identifier: MIT
/*
 * fork_test: a forked child is a task of its own. It re-attaches on its
 * first call, with its own pid and ring; the parent's requests stay the
 * parent's.
 */
#include "kipc_test.h"

TEST(child_reattaches_as_its_own_task)
{
	ASSERT_EQ(0, kipc_attach());
	pid_t parent = getpid();
	EXPECT_EQ(parent, kipc_task_pid());
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		/* not attached until the first call */
		if (kipc_task_pid() != -1)
			_exit(1);
		if (kipc_nop() < 0)
			_exit(2);
		if (kipc_task_pid() != getpid())
			_exit(3);
		pid_t me = getpid();
		if (kipc_send(parent, &me, sizeof me, 0, 0) < 0)
			_exit(4);
		_exit(0);
	}
	pid_t got = 0;
	struct kipc_msginfo info;
	ASSERT_EQ((ssize_t)sizeof got, kipc_receive(KIPC_ANY, &got, sizeof got, &info, 0));
	EXPECT_EQ(c, got);
	EXPECT_EQ(c, info.pid);
	EXPECT_EQ(0, kt_wait(c));
	EXPECT_EQ(parent, kipc_task_pid());
	EXPECT_EQ(0, kipc_nop());
}

TEST(parent_async_request_survives_fork)
{
	char *buf = kt_buf(_metadata, 16);
	kt_submit_receive(_metadata, buf, 16, 4242);
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		/* the parent's parked receive is not ours: our queue is empty
		 * and our completions are our own */
		char b[4];
		if (kipc_receive(KIPC_ANY, b, sizeof b, NULL, KIPC_F_NONBLOCK) != -1 || errno != EAGAIN)
			_exit(1);
		if (kipc_send(getppid(), "fork", 4, 0, 0) < 0)
			_exit(2);
		struct kipc_cqe *cqe;
		if (kipc_peek_cqe(&cqe) == 0)
			_exit(3);
		_exit(0);
	}
	EXPECT_EQ(0, kt_wait(c));
	struct kipc_cqe *cqe;
	ASSERT_EQ(0, kipc_wait_cqe_timeout(&cqe, (int64_t)KT_BOUND_MS * 1000000));
	EXPECT_EQ(4242, cqe->user_data);
	EXPECT_EQ(4, cqe->res);
	EXPECT_EQ(c, cqe->pid);
	kipc_cqe_seen(cqe);
	EXPECT_EQ(0, memcmp(buf, "fork", 4));
}

TEST(many_children_at_once)
{
	ASSERT_EQ(0, kipc_attach());
	enum { N = 16, MSGS = 50 };
	pid_t c[N];
	for (int i = 0; i < N; i++) {
		c[i] = fork();
		ASSERT_LE(0, c[i]);
		if (c[i] == 0) {
			for (int k = 0; k < MSGS; k++) {
				int v = i * MSGS + k;
				if (kipc_send(getppid(), &v, sizeof v, 0, 0) < 0)
					_exit(1);
			}
			_exit(0);
		}
	}
	static int seen[N * MSGS];
	int last[N];
	for (int i = 0; i < N; i++)
		last[i] = -1;
	for (int k = 0; k < N * MSGS; k++) {
		int v;
		struct kipc_msginfo info;
		ASSERT_EQ((ssize_t)sizeof v, kipc_receive(KIPC_ANY, &v, sizeof v, &info, 0));
		ASSERT_LE(0, v);
		ASSERT_GT(N * MSGS, v);
		seen[v]++;
		int who = v / MSGS;
		EXPECT_EQ(c[who], info.pid);
		EXPECT_LT(last[who], v); /* FIFO per sender */
		last[who] = v;
	}
	for (int i = 0; i < N * MSGS; i++)
		EXPECT_EQ(1, seen[i]);
	for (int i = 0; i < N; i++)
		EXPECT_EQ(0, kt_wait(c[i]));
}

TEST(grandchild_chain)
{
	/* parent -> child -> grandchild, each a task, messages back up */
	ASSERT_EQ(0, kipc_attach());
	pid_t top = getpid();
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		pid_t g = fork();
		if (g < 0)
			_exit(1);
		if (g == 0)
			_exit(kipc_send(top, "g", 1, 0, 0) == 0 ? 0 : 1);
		int st;
		waitpid(g, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			_exit(2);
		_exit(kipc_send(top, "c", 1, 0, 0) == 0 ? 0 : 3);
	}
	char b[2][2];
	ASSERT_EQ(1, kipc_receive(KIPC_ANY, b[0], 1, NULL, 0));
	ASSERT_EQ(1, kipc_receive(KIPC_ANY, b[1], 1, NULL, 0));
	EXPECT_EQ('g', b[0][0]);
	EXPECT_EQ('c', b[1][0]);
	EXPECT_EQ(0, kt_wait(c));
}

KIPC_TEST_MAIN
