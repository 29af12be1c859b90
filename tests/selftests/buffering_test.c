// SPDX-License-Identifier: MIT
/*
 * buffering_test: zero capacity (rendezvous), bounded (messages and
 * qbytes), unbounded (per-user byte quota, ENOSPC, nothing queued) and
 * Mach's cached send on a full link.
 */
#include "kipc_test.h"

#define MS 1000000ll

static int64_t shared_mbox(uint32_t cap)
{
	return kt_shared_mbox(cap);
}

/* Child: send one message; record in shared memory when send returned. */
struct rv_arg {
	int64_t id;
	volatile int *returned;
};

static int send_one(void *p)
{
	struct rv_arg *a = p;
	int v = 11;
	int r = kipc_mbox_send(a->id, &v, sizeof v, 0, 0);
	__atomic_store_n(a->returned, 1, __ATOMIC_SEQ_CST);
	return r == 0 ? 0 : errno;
}

TEST(rendezvous_send_completes_only_when_taken)
{
	int64_t id = shared_mbox(0);
	ASSERT_LT(0, id);
	volatile int *returned = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, returned);
	struct rv_arg a = {id, returned};
	pid_t c = kt_fork(send_one, &a);
	ASSERT_LT(0, c);
	ASSERT_EQ(0, kt_wait_mbox(id, KT_SENDERS, 1, KT_BOUND_MS));
	kt_settle();
	/* no message waits in a zero-capacity link, and the sender is blocked */
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(0, st.nmsg);
	EXPECT_EQ(0, *returned);
	int v = 0;
	ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive(id, &v, sizeof v, NULL, 0));
	EXPECT_EQ(11, v);
	EXPECT_EQ(0, kt_wait(c));
	EXPECT_EQ(1, *returned);
	kipc_mbox_destroy(id);
}

TEST(zero_capacity_nonblocking_send)
{
	int64_t id = shared_mbox(0);
	ASSERT_LT(0, id);
	/* nobody waits: EAGAIN */
	EXPECT_EQ(-1, kipc_mbox_send(id, "x", 1, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	/* a receiver waits: it succeeds */
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		char b[4];
		_exit(kipc_mbox_receive(id, b, sizeof b, NULL, 0) == 1 && b[0] == 'y' ? 0 : 1);
	}
	ASSERT_EQ(0, kt_wait_mbox(id, KT_RECEIVERS, 1, KT_BOUND_MS));
	EXPECT_EQ(0, kipc_mbox_send(id, "y", 1, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, kt_wait(c));
	kipc_mbox_destroy(id);
}

TEST(zero_capacity_task_queue)
{
	struct kipc_mbox_attr a = kt_attr(0);
	ASSERT_EQ(0, kipc_taskq_setattr(&a));
	struct kipc_taskq_stat st;
	ASSERT_EQ(0, kipc_taskq_stat(&st));
	EXPECT_EQ(0, st.capacity);
	pid_t me = getpid();
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		if (kipc_send(me, "n", 1, 0, KIPC_F_NONBLOCK) == 0 || errno != EAGAIN)
			_exit(1);
		_exit(kipc_send(me, "b", 1, 0, 0) == 0 ? 0 : 2);
	}
	ASSERT_EQ(0, kt_wait_taskq(KT_SENDERS, 1, KT_BOUND_MS));
	ASSERT_EQ(0, kipc_taskq_stat(&st));
	EXPECT_EQ(0, st.nmsg);
	char b[4];
	EXPECT_EQ(1, kipc_receive(c, b, sizeof b, NULL, 0));
	EXPECT_EQ('b', b[0]);
	EXPECT_EQ(0, kt_wait(c));
}

TEST(bounded_by_messages)
{
	int64_t id = kipc_mbox_open(NULL, 0, &(struct kipc_mbox_attr){.capacity = 3, .mode = 0600});
	ASSERT_LT(0, id);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0, kipc_mbox_send(id, &i, sizeof i, 0, KIPC_F_NONBLOCK));
	int v = 3;
	EXPECT_EQ(-1, kipc_mbox_send(id, &v, sizeof v, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(-1, kipc_mbox_send_timed(id, &v, sizeof v, 0, 0, 10 * MS));
	EXPECT_EQ(ETIMEDOUT, errno);
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(3, st.nmsg);
	EXPECT_EQ(3, st.attr.capacity);
	ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive(id, &v, sizeof v, NULL, 0));
	EXPECT_EQ(0, v);
	v = 3;
	EXPECT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, KIPC_F_NONBLOCK));
}

TEST(bounded_by_bytes)
{
	struct kipc_mbox_attr a = kt_attr(100);
	a.qbytes = 100;
	int64_t id = kipc_mbox_open(NULL, 0, &a);
	ASSERT_LT(0, id);
	char buf[60] = {0};
	ASSERT_EQ(0, kipc_mbox_send(id, buf, 60, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(-1, kipc_mbox_send(id, buf, 60, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(0, kipc_mbox_send(id, buf, 40, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(-1, kipc_mbox_send(id, buf, 1, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(2, st.nmsg);
	EXPECT_EQ(100, st.nbytes);
}

TEST(bad_capacity)
{
	struct kipc_mbox_attr a = kt_attr(1u << 30); /* above msg_max */
	EXPECT_EQ(-1, kipc_mbox_open(NULL, 0, &a));
	EXPECT_EQ(EINVAL, errno);
}

/*
 * Unbounded: never blocks on space, but the user's byte quota holds:
 * past it ENOSPC and nothing is queued. Uses a child so the quota is
 * given back when it exits.
 */
static int fill_quota(void *p)
{
	(void)p;
	struct kipc_mbox_attr a = kt_attr(KIPC_UNBOUNDED);
	int64_t id = kipc_mbox_open(NULL, 0, &a);
	if (id <= 0)
		return 100;
	static char buf[8192];
	int sent = 0;
	for (int i = 0; i < 100000; i++) {
		if (kipc_mbox_send(id, buf, sizeof buf, 0, 0) < 0) {
			if (errno != ENOSPC)
				return 101;
			break;
		}
		sent++;
	}
	if (sent == 100000)
		return 102; /* the kernel grew without bound */
	struct kipc_mbox_stat st;
	if (kipc_mbox_stat(id, &st) < 0)
		return 103;
	if (st.nmsg != (uint32_t)sent)
		return 104; /* the failed send queued something */
	/* a smaller message may still fit or not, never a partial one */
	if (kipc_mbox_send(id, buf, sizeof buf, 0, 0) == 0 || errno != ENOSPC)
		return 105;
	/* receiving one gives its bytes back */
	if (kipc_mbox_receive(id, buf, sizeof buf, NULL, 0) != sizeof buf)
		return 106;
	if (kipc_mbox_send(id, buf, sizeof buf, 0, 0) < 0)
		return 107;
	return 0;
}

TEST(unbounded_hits_user_quota_enospc)
{
	pid_t c = kt_fork(fill_quota, NULL);
	ASSERT_LT(0, c);
	EXPECT_EQ(0, kt_wait(c));
	/* the quota came back when the child's mailbox died */
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	int64_t id = kipc_mbox_open(NULL, 0, &(struct kipc_mbox_attr){.capacity = KIPC_UNBOUNDED, .mode = 0600});
	ASSERT_LT(0, id);
	static char buf[8192];
	int r;
	while ((r = kipc_mbox_send(id, buf, sizeof buf, 0, 0)) < 0 && errno == ENOSPC &&
	       __ksft_now_ms() < deadline)
		kt_sleep_ms(5);
	EXPECT_EQ(0, r);
	kipc_mbox_destroy(id);
}

/* ---- cached send ---------------------------------------------------- */

TEST(cached_send_on_full_link)
{
	int64_t id = kipc_mbox_open(NULL, 0, &(struct kipc_mbox_attr){.capacity = 1, .mode = 0600});
	ASSERT_LT(0, id);
	int v = 1;
	ASSERT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, 0));
	/* full: the cached one is accepted at once */
	v = 2;
	int64_t t0 = kt_now_ns();
	EXPECT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, KIPC_F_CACHE));
	EXPECT_GT(KT_BOUND_MS * MS, kt_now_ns() - t0);
	/* a second one while it is pending: EAGAIN */
	v = 3;
	EXPECT_EQ(-1, kipc_mbox_send(id, &v, sizeof v, 0, KIPC_F_CACHE));
	EXPECT_EQ(EAGAIN, errno);
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(1, st.nmsg);
	/* taking one moves the cached message in, in order */
	int r;
	ASSERT_EQ((ssize_t)sizeof r, kipc_mbox_receive(id, &r, sizeof r, NULL, 0));
	EXPECT_EQ(1, r);
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(1, st.nmsg);
	ASSERT_EQ((ssize_t)sizeof r, kipc_mbox_receive(id, &r, sizeof r, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(2, r);
	/* nothing else: the refused one was not queued */
	EXPECT_EQ(-1, kipc_mbox_receive(id, &r, sizeof r, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	/* and the cache slot is free again */
	ASSERT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, 0));
	EXPECT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, KIPC_F_CACHE));
}

TEST(cached_send_notifies_through_async_api)
{
	int64_t id = kipc_mbox_open(NULL, 0, &(struct kipc_mbox_attr){.capacity = 1, .mode = 0600});
	ASSERT_LT(0, id);
	ASSERT_EQ(0, kipc_mbox_send(id, "a", 1, 0, 0));
	char *buf = kipc_buf_alloc(8);
	ASSERT_NE(NULL, buf);
	buf[0] = 'b';
	struct kipc_sqe *sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_mbox_send(sqe, id, buf, 1, 0, KIPC_F_CACHE);
	kipc_sqe_set_data(sqe, 99);
	ASSERT_EQ(1, kipc_submit());
	struct kipc_cqe *cqe;
	ASSERT_EQ(0, kipc_wait_cqe_timeout(&cqe, (int64_t)KT_BOUND_MS * MS));
	EXPECT_EQ(99, cqe->user_data);
	EXPECT_EQ(0, cqe->res);
	EXPECT_TRUE(cqe->flags & KIPC_CQE_F_MORE) TH_LOG("flags 0x%x", cqe->flags);
	kipc_cqe_seen(cqe);
	/* no notification before space frees */
	EXPECT_EQ(-1, kipc_peek_cqe(&cqe));
	EXPECT_EQ(EAGAIN, errno);
	char r[4];
	ASSERT_EQ(1, kipc_mbox_receive(id, r, sizeof r, NULL, 0));
	ASSERT_EQ(0, kipc_wait_cqe_timeout(&cqe, (int64_t)KT_BOUND_MS * MS));
	EXPECT_EQ(99, cqe->user_data);
	EXPECT_TRUE(cqe->flags & KIPC_CQE_F_NOTIF) TH_LOG("flags 0x%x", cqe->flags);
	EXPECT_FALSE(cqe->flags & KIPC_CQE_F_MORE);
	kipc_cqe_seen(cqe);
	ASSERT_EQ(1, kipc_mbox_receive(id, r, sizeof r, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ('b', r[0]);
}

TEST(taskq_setattr_bounds)
{
	struct kipc_mbox_attr a = kt_attr(2);
	ASSERT_EQ(0, kipc_taskq_setattr(&a));
	ASSERT_EQ(0, kipc_send(getpid(), "1", 1, 0, 0));
	ASSERT_EQ(0, kipc_send(getpid(), "2", 1, 0, 0));
	EXPECT_EQ(-1, kipc_send(getpid(), "3", 1, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	struct kipc_taskq_stat st;
	ASSERT_EQ(0, kipc_taskq_stat(&st));
	EXPECT_EQ(2, st.capacity);
	EXPECT_EQ(2, st.nmsg);
	EXPECT_EQ(getpid(), st.pid);
}

KIPC_TEST_MAIN
