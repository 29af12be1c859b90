// SPDX-License-Identifier: MIT
/*
 * async_test: the liburing-like API. Batches of sends and receives in
 * flight at once, completions matched by user_data, the ring fd polls
 * readable, cancel (ECANCELED / EINTR / ENOENT), peek and wait timeouts,
 * reserved user_data.
 */
#include "kipc_test.h"

#define MS 1000000ll
#define BATCH 64

TEST(batch_sends_then_receives)
{
	struct kipc_mbox_attr a = kt_attr(BATCH);
	int64_t id = kipc_mbox_open(NULL, 0, &a);
	ASSERT_LT(0, id);
	int *out = kipc_buf_alloc(BATCH * sizeof(int));
	int *in = kipc_buf_alloc(BATCH * sizeof(int));
	ASSERT_NE(NULL, out);
	ASSERT_NE(NULL, in);
	for (int i = 0; i < BATCH; i++) {
		struct kipc_sqe *sqe = kipc_get_sqe();
		ASSERT_NE(NULL, sqe);
		out[i] = i * 3;
		kipc_prep_mbox_send(sqe, id, &out[i], sizeof(int), 0, 0);
		kipc_sqe_set_data(sqe, 100 + i);
	}
	EXPECT_EQ(BATCH, kipc_submit());
	int seen[BATCH] = {0};
	for (int i = 0; i < BATCH; i++) {
		struct kipc_cqe *cqe;
		ASSERT_EQ(0, kipc_wait_cqe_timeout(&cqe, KT_BOUND_MS * MS));
		ASSERT_LE(100, cqe->user_data);
		ASSERT_GT(100 + BATCH, cqe->user_data);
		EXPECT_EQ(0, cqe->res);
		seen[cqe->user_data - 100]++;
		kipc_cqe_seen(cqe);
	}
	for (int i = 0; i < BATCH; i++)
		EXPECT_EQ(1, seen[i]);
	struct kipc_cqe *cqe;
	EXPECT_EQ(-1, kipc_peek_cqe(&cqe));
	EXPECT_EQ(EAGAIN, errno);

	/* receives, all at once */
	for (int i = 0; i < BATCH; i++) {
		struct kipc_sqe *sqe = kipc_get_sqe();
		ASSERT_NE(NULL, sqe);
		kipc_prep_mbox_receive(sqe, id, &in[i], sizeof(int), 0);
		kipc_sqe_set_data(sqe, 1000 + i);
	}
	EXPECT_EQ(BATCH, kipc_submit());
	int total = 0;
	memset(seen, 0, sizeof seen);
	for (int i = 0; i < BATCH; i++) {
		ASSERT_EQ(0, kipc_wait_cqe_timeout(&cqe, KT_BOUND_MS * MS));
		EXPECT_EQ((int64_t)sizeof(int), cqe->res);
		int k = (int)(cqe->user_data - 1000);
		ASSERT_LE(0, k);
		ASSERT_GT(BATCH, k);
		EXPECT_EQ(0, in[k] % 3);
		seen[in[k] / 3]++;
		total++;
		kipc_cqe_seen(cqe);
	}
	EXPECT_EQ(BATCH, total);
	for (int i = 0; i < BATCH; i++)
		EXPECT_EQ(1, seen[i]);
}

TEST(ring_fd_polls_readable)
{
	int fd = kipc_ring_fd();
	ASSERT_LE(0, fd) TH_LOG("kipc_ring_fd: %s", strerror(errno));
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char *buf = kt_buf(_metadata, 16);
	kt_submit_receive(_metadata, buf, 16, 5);
	/* nothing yet: drain the fd, then it stays quiet */
	uint64_t v;
	while (poll(&p, 1, 0) == 1 && read(fd, &v, sizeof v) > 0)
		;
	struct kipc_cqe *cqe;
	EXPECT_EQ(-1, kipc_peek_cqe(&cqe));
	/* a message from another process completes the receive */
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0)
		_exit(kipc_send(getppid(), "hey", 3, 0, 0) == 0 ? 0 : 1);
	ASSERT_EQ(1, poll(&p, 1, KT_BOUND_MS));
	EXPECT_TRUE(p.revents & POLLIN);
	EXPECT_LT(0, read(fd, &v, sizeof v));
	int got = 0;
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (!got && __ksft_now_ms() < deadline) {
		if (kipc_peek_cqe(&cqe) == 0) {
			EXPECT_EQ(5, cqe->user_data);
			EXPECT_EQ(3, cqe->res);
			EXPECT_EQ(c, cqe->pid);
			kipc_cqe_seen(cqe);
			got = 1;
		} else {
			poll(&p, 1, 10);
		}
	}
	EXPECT_TRUE(got);
	EXPECT_EQ(0, memcmp(buf, "hey", 3));
	EXPECT_EQ(0, kt_wait(c));
}

TEST(cancel_parked_request)
{
	char *buf = kt_buf(_metadata, 16);
	kt_submit_receive(_metadata, buf, 16, 77);
	struct kipc_cqe *cqe;
	EXPECT_EQ(-1, kipc_wait_cqe_timeout(&cqe, 20 * MS));
	EXPECT_EQ(ETIMEDOUT, errno);
	ASSERT_EQ(0, kipc_cancel(77, 0)) TH_LOG("cancel: %s", strerror(errno));
	ASSERT_EQ(0, kipc_wait_cqe_timeout(&cqe, KT_BOUND_MS * MS));
	EXPECT_EQ(77, cqe->user_data);
	EXPECT_EQ(-ECANCELED, cqe->res);
	kipc_cqe_seen(cqe);
	/* again with KIPC_F_INTR: EINTR */
	kt_submit_receive(_metadata, buf, 16, 78);
	kt_settle();
	ASSERT_EQ(0, kipc_cancel(78, KIPC_F_INTR));
	ASSERT_EQ(0, kipc_wait_cqe_timeout(&cqe, KT_BOUND_MS * MS));
	EXPECT_EQ(78, cqe->user_data);
	EXPECT_EQ(-EINTR, cqe->res);
	kipc_cqe_seen(cqe);
	/* nothing parked under that name any more */
	EXPECT_EQ(-1, kipc_cancel(78, 0));
	EXPECT_EQ(ENOENT, errno);
	/* the cancelled receives took nothing */
	ASSERT_EQ(0, kipc_send(getpid(), "k", 1, 0, 0));
	char r[4];
	EXPECT_EQ(1, kipc_receive(KIPC_ANY, r, sizeof r, NULL, KIPC_F_NONBLOCK));
}

TEST(reserved_user_data_rejected)
{
	struct kipc_sqe *sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_nop(sqe);
	kipc_sqe_set_data(sqe, KIPC_UD_LIBRARY | 1);
	EXPECT_EQ(-1, kipc_submit());
	EXPECT_EQ(EINVAL, errno);
}

TEST(nop_batch_and_sync_calls_mix)
{
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 32; i++) {
			struct kipc_sqe *sqe = kipc_get_sqe();
			ASSERT_NE(NULL, sqe);
			kipc_prep_nop(sqe);
			kipc_sqe_set_data(sqe, (uint64_t)(round * 100 + i));
		}
		ASSERT_EQ(32, kipc_submit());
		/* a synchronous call while async ones are in flight */
		EXPECT_EQ(0, kipc_nop());
		for (int i = 0; i < 32; i++) {
			struct kipc_cqe *cqe;
			ASSERT_EQ(0, kipc_wait_cqe_timeout(&cqe, KT_BOUND_MS * MS));
			EXPECT_EQ(0, cqe->res);
			EXPECT_EQ(round * 100, cqe->user_data / 100 * 100);
			kipc_cqe_seen(cqe);
		}
	}
}

TEST(arena_exhaustion_enomem)
{
	void *p[4096];
	int n = 0;
	while (n < 4096 && (p[n] = kipc_buf_alloc(64 * 1024)) != NULL)
		n++;
	EXPECT_GT(4096, n);
	EXPECT_EQ(ENOMEM, errno);
	for (int i = 0; i < n; i++)
		kipc_buf_free(p[i]);
	/* the sync calls still work, and memory came back */
	EXPECT_EQ(0, kipc_nop());
	void *q = kipc_buf_alloc(64 * 1024);
	EXPECT_NE(NULL, q);
	kipc_buf_free(q);
}

KIPC_TEST_MAIN
