// SPDX-License-Identifier: MIT
/*
 * direct_test: direct naming over task queues.
 *
 * Symmetric receive(Q) selects by sender and leaves the others queued;
 * asymmetric receive(ANY) reports the sender; sends to a live process
 * that has not attached yet wait for it; sends to a dead pid fail ESRCH;
 * a receive waiting for Q fails ESRCH when Q exits.
 */
#include "kipc_test.h"

struct msg {
	int from;
	int n;
};

TEST(send_to_self_and_receive_any)
{
	struct msg m = {.from = getpid(), .n = 7}, r;
	struct kipc_msginfo info;

	ASSERT_EQ(0, kipc_send(getpid(), &m, sizeof m, 0, 0));
	memset(&r, 0, sizeof r);
	memset(&info, 0, sizeof info);
	ASSERT_EQ((ssize_t)sizeof r, kipc_receive(KIPC_ANY, &r, sizeof r, &info, 0));
	EXPECT_EQ(7, r.n);
	EXPECT_EQ(getpid(), info.pid);
	EXPECT_EQ(sizeof m, info.len);
	EXPECT_EQ(0, info.source);
	EXPECT_EQ(getpid(), kipc_task_pid());
}

/* Child: send `count` messages numbered from `base` to the parent. */
struct sender_arg {
	pid_t to;
	int base, count;
	struct kt_barrier *go, *done;
};

static int sender(void *p)
{
	struct sender_arg *a = p;
	if (a->go && kt_wait_post(a->go, 1) < 0)
		return 2;
	for (int i = 0; i < a->count; i++) {
		struct msg m = {.from = getpid(), .n = a->base + i};
		if (kipc_send(a->to, &m, sizeof m, 0, 0) < 0)
			return 3;
	}
	if (a->done)
		kt_post(a->done, 1);
	/* Stay alive until told: receive(Q) needs Q alive for what it asks. */
	if (a->go && kt_wait_post(a->go, 1) < 0)
		return 4;
	return 0;
}

/* Receive three messages from `from` (blocking): want's, numbered base,
 * base + 1, base + 2; then nothing more from `from`. */
static void expect_three(struct __test_metadata *_metadata, pid_t from, pid_t want, int base)
{
	struct msg r;
	struct kipc_msginfo info;
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ((ssize_t)sizeof r, kipc_receive(from, &r, sizeof r, &info, 0));
		EXPECT_EQ(want, info.pid);
		EXPECT_EQ(base + i, r.n);
	}
	EXPECT_EQ(-1, kipc_receive(from, &r, sizeof r, &info, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
}

TEST(symmetric_receive_selects_sender)
{
	struct kt_barrier go1, go2, done;
	ASSERT_EQ(0, kt_barrier_init(&go1));
	ASSERT_EQ(0, kt_barrier_init(&go2));
	ASSERT_EQ(0, kt_barrier_init(&done));
	ASSERT_EQ(0, kipc_attach());

	struct sender_arg a1 = {getpid(), 100, 3, &go1, &done};
	struct sender_arg a2 = {getpid(), 200, 3, &go2, &done};
	pid_t p1 = kt_fork(sender, &a1);
	pid_t p2 = kt_fork(sender, &a2);
	ASSERT_LT(0, p1);
	ASSERT_LT(0, p2);
	/* p1 sends first, then p2: the queue holds 100 101 102 200 201 202 */
	kt_post(&go1, 1);
	ASSERT_EQ(0, kt_wait_post(&done, 1));
	kt_post(&go2, 1);
	ASSERT_EQ(0, kt_wait_post(&done, 1));

	/* receive(p2) skips p1's three messages; nothing more from p2 */
	expect_three(_metadata, p2, p2, 200);
	/* p1's are all still there, in order */
	expect_three(_metadata, KIPC_ANY, p1, 100);

	kt_post(&go1, 1);
	kt_post(&go2, 1);
	EXPECT_EQ(0, kt_wait(p1));
	EXPECT_EQ(0, kt_wait(p2));
}

TEST(fifo_and_sequence_numbers)
{
	struct kt_barrier go;
	ASSERT_EQ(0, kt_barrier_init(&go));
	ASSERT_EQ(0, kipc_attach());
	struct sender_arg a = {getpid(), 0, 50, NULL, NULL};
	pid_t p = kt_fork(sender, &a);
	ASSERT_LT(0, p);
	uint64_t last_seq = 0;
	for (int i = 0; i < 50; i++) {
		struct msg r;
		struct kipc_msginfo info;
		ASSERT_EQ((ssize_t)sizeof r, kipc_receive(p, &r, sizeof r, &info, 0));
		EXPECT_EQ(i, r.n);
		if (i)
			EXPECT_LT(last_seq, info.seq);
		last_seq = info.seq;
	}
	EXPECT_EQ(0, kt_wait(p));
}

/*
 * A message sent to a live child that has not attached yet waits in a
 * queue created for it; the child finds it when it attaches.
 */
static int late_attacher(void *p)
{
	struct kt_barrier *b = p;
	if (kt_wait_post(b, 1) < 0)
		return 2;
	struct msg r;
	struct kipc_msginfo info;
	ssize_t n = kipc_receive(KIPC_ANY, &r, sizeof r, &info, KIPC_F_NONBLOCK);
	if (n != (ssize_t)sizeof r)
		return 3;
	if (r.n != 42 || info.pid != getppid())
		return 4;
	return 0;
}

TEST(send_to_unattached_child)
{
	struct kt_barrier b;
	ASSERT_EQ(0, kt_barrier_init(&b));
	ASSERT_EQ(0, kipc_attach());
	pid_t c = kt_fork(late_attacher, &b);
	ASSERT_LT(0, c);
	struct msg m = {getpid(), 42};
	ASSERT_EQ(0, kipc_send(c, &m, sizeof m, 0, KIPC_F_NONBLOCK))
		TH_LOG("send to unattached child: %s", strerror(errno));
	kt_post(&b, 1);
	EXPECT_EQ(0, kt_wait(c));
}

TEST(send_to_dead_pid_fails_esrch)
{
	pid_t c = kt_dead_pid(_metadata);
	struct msg m = {getpid(), 1};
	EXPECT_EQ(-1, kipc_send(c, &m, sizeof m, 0, 0));
	EXPECT_EQ(ESRCH, errno);
	EXPECT_EQ(-1, kipc_send(c, &m, sizeof m, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(ESRCH, errno);
}

/* A child that attaches, says so, and exits when told. */
static int attach_then_exit(void *p)
{
	struct kt_barrier *b = p;
	if (kipc_attach() < 0)
		return 2;
	kt_post(&b[0], 1);
	if (kt_wait_post(&b[1], 1) < 0)
		return 3;
	return 0;
}

TEST(receive_from_exiting_task_fails_esrch)
{
	struct kt_barrier b[2];
	ASSERT_EQ(0, kt_barrier_init(&b[0]));
	ASSERT_EQ(0, kt_barrier_init(&b[1]));
	ASSERT_EQ(0, kipc_attach());
	pid_t c = kt_fork(attach_then_exit, b);
	ASSERT_LT(0, c);
	ASSERT_EQ(0, kt_wait_post(&b[0], 1));

	/* A message from someone else must not satisfy receive(c). */
	struct msg m = {getpid(), 5};
	ASSERT_EQ(0, kipc_send(getpid(), &m, sizeof m, 0, 0));

	kt_post(&b[1], 1); /* c exits while we wait for it */
	struct msg r;
	int64_t t0 = kt_now_ns();
	EXPECT_EQ(-1, kipc_receive(c, &r, sizeof r, NULL, 0));
	EXPECT_EQ(ESRCH, errno);
	EXPECT_GT(KT_BOUND_MS * 1000000ll, kt_now_ns() - t0);
	EXPECT_EQ(0, kt_wait(c));

	/* our own message is untouched */
	EXPECT_EQ((ssize_t)sizeof r, kipc_receive(KIPC_ANY, &r, sizeof r, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(5, r.n);

	/* and a receive(c) after it is gone fails at once */
	EXPECT_EQ(-1, kipc_receive(c, &r, sizeof r, NULL, 0));
	EXPECT_EQ(ESRCH, errno);
}

TEST(receive_any_blocks_until_a_message)
{
	struct kt_barrier go;
	ASSERT_EQ(0, kt_barrier_init(&go));
	ASSERT_EQ(0, kipc_attach());
	struct sender_arg a = {getpid(), 9, 1, &go, NULL};
	pid_t p = kt_fork(sender, &a);
	ASSERT_LT(0, p);
	struct msg r;
	struct kipc_msginfo info;
	EXPECT_EQ(-1, kipc_receive(KIPC_ANY, &r, sizeof r, &info, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	kt_post(&go, 1); /* the sender starts while we block */
	ASSERT_EQ((ssize_t)sizeof r, kipc_receive(KIPC_ANY, &r, sizeof r, &info, 0));
	EXPECT_EQ(9, r.n);
	EXPECT_EQ(p, info.pid);
	kt_post(&go, 1);
	EXPECT_EQ(0, kt_wait(p));
}

TEST(messages_of_an_exited_sender_stay_queued)
{
	ASSERT_EQ(0, kipc_attach());
	struct sender_arg a = {getpid(), 300, 2, NULL, NULL};
	pid_t p = kt_fork(sender, &a);
	ASSERT_LT(0, p);
	ASSERT_EQ(0, kt_wait(p));
	/* the sender is gone; what it sent is ours now */
	struct msg r;
	struct kipc_msginfo info;
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ((ssize_t)sizeof r, kipc_receive(KIPC_ANY, &r, sizeof r, &info, KIPC_F_NONBLOCK));
		EXPECT_EQ(300 + i, r.n);
		EXPECT_EQ(p, info.pid);
	}
}

TEST(send_invalid_arguments)
{
	struct msg m = {0, 0};
	EXPECT_EQ(-1, kipc_send(getpid(), &m, sizeof m, KIPC_PRIO_MAX + 1, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kipc_send(getpid(), &m, sizeof m, 0, 1u << 30));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kipc_send(-5, &m, sizeof m, 0, 0));
	EXPECT_TRUE(errno == ESRCH || errno == EINVAL) TH_LOG("errno %d", errno);
}

KIPC_TEST_MAIN
