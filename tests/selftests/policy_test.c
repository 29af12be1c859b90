// SPDX-License-Identifier: MIT
/*
 * policy_test: several receivers on one mailbox. any (longest-waiting
 * receiver first), pair (first sender and receiver bind the link),
 * exclusive (one receiver inside receive), round-robin (the kernel
 * rotates through the holders of the receive right and tells the sender).
 */
#include "kipc_test.h"

static int64_t policy_mbox(uint32_t policy)
{
	struct kipc_mbox_attr a = kt_attr(16);
	a.policy = policy;
	return kipc_mbox_open(NULL, 0, &a);
}

/* A granted receiver: attach, say so, receive once, exit with the value. */
struct rcv_arg {
	int64_t id;
	unsigned flags;
	struct kt_barrier ready[2]; /* [0] attached, [1] granted */
};

static int receive_once(void *p)
{
	struct rcv_arg *a = p;
	if (kipc_attach() < 0)
		return 100;
	kt_post(a->ready, 1);
	/* wait until granted: a receive before it fails EPERM */
	if (kt_wait_post(&a->ready[1], 1) < 0)
		return 101;
	int v = 0;
	if (kipc_mbox_receive(a->id, &v, sizeof v, NULL, a->flags) != sizeof v)
		return errno == EPERM ? 102 : errno == EBUSY ? 103 : 104;
	return v;
}

/* Fork a receiver, grant it the receive right, let it go. */
static pid_t granted_receiver(struct __test_metadata *_metadata, struct rcv_arg *a)
{
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(0, kt_barrier_init(&a->ready[i]));
	pid_t c = kt_fork(receive_once, a);
	ASSERT_LT(0, c);
	ASSERT_EQ(0, kt_wait_post(&a->ready[0], 1));
	ASSERT_EQ(0, kipc_mbox_grant(a->id, c)) TH_LOG("grant: %s", strerror(errno));
	kt_post(&a->ready[1], 1);
	return c;
}

/* Send buf (an int in the async arena) alone through the async API with
 * user data ud: its completion, successful (the caller marks it seen). */
static struct kipc_cqe *send_alone(struct __test_metadata *_metadata, int64_t id, int *buf,
				   uint64_t ud)
{
	struct kipc_sqe *sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_mbox_send(sqe, id, buf, sizeof(int), 0, 0);
	kipc_sqe_set_data(sqe, ud);
	ASSERT_EQ(1, kipc_submit());
	struct kipc_cqe *cqe;
	ASSERT_EQ(0, kipc_wait_cqe_timeout(&cqe, (int64_t)KT_BOUND_MS * 1000000));
	EXPECT_EQ(ud, cqe->user_data);
	EXPECT_EQ(0, cqe->res);
	return cqe;
}

TEST(any_longest_waiting_receiver_first)
{
	int64_t id = policy_mbox(KIPC_POLICY_ANY);
	ASSERT_LT(0, id);
	struct rcv_arg a1 = {.id = id}, a2 = {.id = id};
	pid_t r1 = granted_receiver(_metadata, &a1);
	ASSERT_EQ(0, kt_wait_mbox(id, KT_RECEIVERS, 1, KT_BOUND_MS));
	pid_t r2 = granted_receiver(_metadata, &a2);
	ASSERT_EQ(0, kt_wait_mbox(id, KT_RECEIVERS, 2, KT_BOUND_MS));

	int v = 1;
	ASSERT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, 0));
	EXPECT_EQ(1, kt_wait(r1)); /* r1 waited longer */
	v = 2;
	ASSERT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, 0));
	EXPECT_EQ(2, kt_wait(r2));
}

TEST(pair_binds_first_sender_and_receiver)
{
	int64_t id = policy_mbox(KIPC_POLICY_PAIR);
	ASSERT_LT(0, id);
	/* first sender: us */
	int v = 5;
	ASSERT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, 0));
	/* first receiver: r1 */
	struct rcv_arg a1 = {.id = id};
	pid_t r1 = granted_receiver(_metadata, &a1);
	EXPECT_EQ(5, kt_wait(r1));
	/* (a binding whose task exited no longer binds: see
	 * pair_second_receiver_gets_eperm_while_first_lives) */

	/* another sender gets EPERM */
	pid_t s = fork();
	ASSERT_LE(0, s);
	if (s == 0)
		_exit(kipc_mbox_send(id, &v, sizeof v, 0, KIPC_F_NONBLOCK) == 0 ? 0 : errno);
	EXPECT_EQ(EPERM, kt_wait(s));
}

TEST(pair_second_receiver_gets_eperm_while_first_lives)
{
	int64_t id = policy_mbox(KIPC_POLICY_PAIR);
	ASSERT_LT(0, id);
	struct rcv_arg a1 = {.id = id}, a2 = {.id = id};
	pid_t r1 = granted_receiver(_metadata, &a1);
	ASSERT_EQ(0, kt_wait_mbox(id, KT_RECEIVERS, 1, KT_BOUND_MS));
	pid_t r2 = granted_receiver(_metadata, &a2);
	EXPECT_EQ(102, kt_wait(r2));
	int v = 9;
	ASSERT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, 0));
	EXPECT_EQ(9, kt_wait(r1));
}

TEST(exclusive_second_receiver_gets_ebusy)
{
	int64_t id = policy_mbox(KIPC_POLICY_EXCLUSIVE);
	ASSERT_LT(0, id);
	struct rcv_arg a1 = {.id = id};
	pid_t r1 = granted_receiver(_metadata, &a1);
	ASSERT_EQ(0, kt_wait_mbox(id, KT_RECEIVERS, 1, KT_BOUND_MS));

	int v;
	/* we (the owner) try while r1 is inside receive */
	EXPECT_EQ(-1, kipc_mbox_receive(id, &v, sizeof v, NULL, 0));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-1, kipc_mbox_receive(id, &v, sizeof v, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EBUSY, errno);

	v = 3;
	ASSERT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, 0));
	EXPECT_EQ(3, kt_wait(r1));
	/* nobody inside now: we may receive */
	v = 4;
	ASSERT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, 0));
	int r = 0;
	EXPECT_EQ((ssize_t)sizeof r, kipc_mbox_receive(id, &r, sizeof r, NULL, 0));
	EXPECT_EQ(4, r);
}

/*
 * Round-robin: the kernel assigns each message to the next holder of the
 * receive right and reports it in the send completion (async API). Each
 * holder then receives exactly the messages routed to it.
 */
#define RR_MSGS 12
struct rr_shared {
	pid_t route[RR_MSGS];
};

struct rr_arg {
	int64_t id;
	struct kt_barrier *b;  /* [0] attached [1] granted+sent [2] done */
	struct rr_shared *sh;
};

static int rr_holder(void *p)
{
	struct rr_arg *a = p;
	if (kipc_attach() < 0)
		return 100;
	kt_post(&a->b[0], 1);
	if (kt_wait_post(&a->b[1], 1) < 0)
		return 101;
	int got = 0, v;
	while (kipc_mbox_receive(a->id, &v, sizeof v, NULL, KIPC_F_NONBLOCK) == sizeof v) {
		if (v < 0 || v >= RR_MSGS || a->sh->route[v] != getpid())
			return 102; /* someone else's message */
		got++;
	}
	if (errno != EAGAIN)
		return 103;
	return got;
}

TEST(round_robin_rotates_and_reports_receiver)
{
	int64_t id = policy_mbox(KIPC_POLICY_ROUND_ROBIN);
	ASSERT_LT(0, id);
	struct rr_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	struct kt_barrier b[3];
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0, kt_barrier_init(&b[i]));
	struct rr_arg a = {id, b, sh};
	pid_t h[2];
	for (int i = 0; i < 2; i++) {
		h[i] = kt_fork(rr_holder, &a);
		ASSERT_LT(0, h[i]);
	}
	ASSERT_EQ(0, kt_wait_post(&b[0], 2));
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(0, kipc_mbox_grant(id, h[i]));

	/* The sender is a third process that does not hold the right. */
	pid_t snd = fork();
	ASSERT_LE(0, snd);
	if (snd == 0) {
		int *bufs = kipc_buf_alloc(RR_MSGS * sizeof(int));
		ASSERT_NE(NULL, bufs);
		for (int i = 0; i < RR_MSGS; i++) {
			bufs[i] = i;
			/* one at a time: the rotation order is the send order */
			struct kipc_cqe *cqe = send_alone(_metadata, id, &bufs[i], 1000 + i);
			sh->route[i] = cqe->pid;
			kipc_cqe_seen(cqe);
		}
		_exit(0);
	}
	ASSERT_EQ(0, kt_wait(snd));
	/* every route is a holder; consecutive messages go to different
	 * holders; each holder got its share */
	int count[3] = {0, 0, 0};
	for (int i = 0; i < RR_MSGS; i++) {
		int k = sh->route[i] == h[0] ? 0 : sh->route[i] == h[1] ? 1 :
			sh->route[i] == getpid() ? 2 : -1;
		EXPECT_LE(0, k) TH_LOG("message %d routed to pid %d", i, sh->route[i]);
		if (k >= 0)
			count[k]++;
		if (i)
			EXPECT_NE(sh->route[i - 1], sh->route[i]);
	}
	kt_post(&b[1], 2);
	EXPECT_EQ(count[0], kt_wait(h[0]));
	EXPECT_EQ(count[1], kt_wait(h[1]));
	EXPECT_LT(0, count[0]);
	EXPECT_LT(0, count[1]);
	/* messages routed to us (if the owner is in the rotation) */
	int mine = 0, v;
	while (kipc_mbox_receive(id, &v, sizeof v, NULL, KIPC_F_NONBLOCK) == sizeof v) {
		EXPECT_EQ(getpid(), sh->route[v]);
		mine++;
	}
	EXPECT_EQ(count[2], mine);
	EXPECT_EQ(RR_MSGS, count[0] + count[1] + count[2]);
}

/* The owner sending to its own round-robin mailbox is told when a
 * message is routed to itself: the completion names its pid, not 0. */
TEST(round_robin_reports_self_as_receiver)
{
	int64_t id = policy_mbox(KIPC_POLICY_ROUND_ROBIN);
	ASSERT_LT(0, id);
	int *buf = kipc_buf_alloc(sizeof(int));
	ASSERT_NE(NULL, buf);
	*buf = 1;
	struct kipc_cqe *cqe = send_alone(_metadata, id, buf, 7);
	/* we are the only holder */
	EXPECT_EQ(getpid(), cqe->pid);
	kipc_cqe_seen(cqe);
}

TEST(setattr_policy)
{
	int64_t id = policy_mbox(KIPC_POLICY_ANY);
	ASSERT_LT(0, id);
	struct kipc_mbox_attr a = kt_attr(16);
	a.policy = KIPC_POLICY_EXCLUSIVE;
	EXPECT_EQ(0, kipc_mbox_setattr(id, KIPC_SET_POLICY, &a));
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(KIPC_POLICY_EXCLUSIVE, st.attr.policy);
	a.policy = 42;
	EXPECT_EQ(-1, kipc_mbox_setattr(id, KIPC_SET_POLICY, &a));
	EXPECT_EQ(EINVAL, errno);
}

KIPC_TEST_MAIN
