// SPDX-License-Identifier: MIT
/*
 * sqroom_test: a synchronous call that finds the SQ full sleeps until
 * the kernel takes entries again, then goes on (transport.md sections 4
 * and 6). The process first holds max_inflight parked receives, so the
 * kernel stops reading its SQ, and fills the SQ behind them; its
 * synchronous send then has no room and sleeps in the library (the
 * sleeper re-checks sq_head: the kernel bumps and wakes wake_seq after
 * consuming entries only when someone waits). Another process's sends
 * complete some receives, the kernel reads the SQ again, and the send
 * goes through. Every message arrives exactly once.
 */
#include "kipc_test.h"

#define SQ_ENTRIES CONFIG_RING_ENTRIES
#define INFLIGHT (3 * CONFIG_RING_ENTRIES) /* max_inflight: SQ + CQ entries */
#define TOTAL (INFLIGHT + SQ_ENTRIES)
#define NSEND 300
#define NOP_UD 999999

struct ctx {
	int64_t mb;
	pid_t parent;
};

/* Once the parent sleeps in its send, complete NSEND of its receives. */
static int sender(void *arg)
{
	struct ctx *c = arg;
	if (kt_wait_mbox(c->mb, KT_RECEIVERS, INFLIGHT, KT_BOUND_MS) < 0)
		return 9;
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (kt_proc_state(c->parent) != 'S') {
		if (__ksft_now_ms() > deadline)
			return 10;
		kt_sleep_ms(1);
	}
	for (int i = 0; i < NSEND; i++)
		if (kipc_mbox_send(c->mb, &i, sizeof i, 0, 0) < 0)
			return 11;
	return 0;
}

TEST(sync_call_waits_for_sq_room)
{
	struct kipc_mbox_attr a = kt_attr(NSEND);
	int64_t mb = kipc_mbox_open(NULL, 0, &a);
	int64_t mb2 = kipc_mbox_open(NULL, 0, &a);
	ASSERT_LT(0, mb);
	ASSERT_LT(0, mb2);
	int *in = kipc_buf_alloc(TOTAL * sizeof(int));
	ASSERT_NE(NULL, in);

	/* TOTAL receives: INFLIGHT park in the kernel, SQ_ENTRIES fill the SQ. */
	int prepared = 0, posted = 0;
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (posted < TOTAL) {
		struct kipc_sqe *sqe;
		while (prepared < TOTAL && (sqe = kipc_get_sqe())) {
			kipc_prep_mbox_receive(sqe, mb, &in[prepared], sizeof(int), 0);
			kipc_sqe_set_data(sqe, (uint64_t)prepared);
			prepared++;
		}
		int n = kipc_submit();
		if (n > 0) {
			posted += n;
			continue;
		}
		ASSERT_EQ(EBUSY, errno); /* the kernel has not taken them yet */
		ASSERT_GT(deadline, __ksft_now_ms());
		kt_sleep_ms(1);
	}
	/*
	 * All TOTAL are in the SQ or the kernel: with SQ_ENTRIES slots, the
	 * kernel took INFLIGHT and reads no further. From here on a
	 * synchronous call of this process finds no room (so the sender
	 * checks the kernel's state, not us).
	 */
	struct kipc_sqe *sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_nop(sqe);
	kipc_sqe_set_data(sqe, NOP_UD);
	EXPECT_EQ(-1, kipc_submit());
	EXPECT_EQ(EBUSY, errno);

	struct ctx c = {mb, getpid()};
	pid_t kid = kt_fork(sender, &c);
	ASSERT_LT(0, kid);
	int x = 7;
	EXPECT_EQ(0, kipc_mbox_send(mb2, &x, sizeof x, 0, 0));
	EXPECT_EQ(0, kt_wait(kid));
	EXPECT_EQ(1, kipc_submit()); /* the nop, staged while the SQ was full */

	/* The nop, then NSEND receives: each message exactly once. */
	int seen[NSEND] = {0}, nrecv = 0, nnop = 0;
	while (nrecv + nnop < NSEND + 1) {
		struct kipc_cqe *cqe;
		ASSERT_EQ(0, kipc_wait_cqe_timeout(&cqe, KT_BOUND_MS * 1000000ll));
		if (cqe->user_data == NOP_UD) {
			EXPECT_EQ(0, cqe->res);
			nnop++;
		} else {
			ASSERT_EQ((int64_t)sizeof(int), cqe->res);
			ASSERT_GT(TOTAL, cqe->user_data);
			int v = in[cqe->user_data];
			ASSERT_LE(0, v);
			ASSERT_GT(NSEND, v);
			seen[v]++;
			nrecv++;
		}
		kipc_cqe_seen(cqe);
	}
	EXPECT_EQ(1, nnop);
	for (int i = 0; i < NSEND; i++)
		EXPECT_EQ(1, seen[i]);
	int y = 0;
	EXPECT_EQ((ssize_t)sizeof y, kipc_mbox_receive(mb2, &y, sizeof y, NULL, 0));
	EXPECT_EQ(7, y);
}

KIPC_TEST_MAIN
