// SPDX-License-Identifier: MIT
/*
 * portset_test: receive from whichever of several mailboxes has a
 * message first (Mach port sets); info.source names the mailbox.
 */
#include "kipc_test.h"

TEST(receive_set_reports_source)
{
	int64_t ids[3];
	for (int i = 0; i < 3; i++) {
		ids[i] = kipc_mbox_open(NULL, 0, NULL);
		ASSERT_LT(0, ids[i]);
	}
	ASSERT_EQ(0, kipc_mbox_send(ids[1], "b", 1, 0, 0));
	char buf[4];
	struct kipc_msginfo info;
	ASSERT_EQ(1, kipc_mbox_receive_set(ids, 3, buf, sizeof buf, &info, 0));
	EXPECT_EQ('b', buf[0]);
	EXPECT_EQ(ids[1], info.source);
	EXPECT_EQ(-1, kipc_mbox_receive_set(ids, 3, buf, sizeof buf, &info, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
}

/* n new kernel-owned mailboxes into ids. */
static void open_boxes(struct __test_metadata *_metadata, int64_t *ids, int n)
{
	for (int i = 0; i < n; i++) {
		ids[i] = kt_shared_mbox(4);
		ASSERT_LT(0, ids[i]);
	}
}

/* A child that waits until a receiver waits on id, then does act(id);
 * it exits 0 when act succeeded. Its pid. */
static pid_t once_waited_on(struct __test_metadata *_metadata, int64_t id, int (*act)(int64_t))
{
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		if (kt_wait_mbox(id, KT_RECEIVERS, 1, KT_BOUND_MS) < 0)
			_exit(1);
		_exit(act(id) == 0 ? 0 : 2);
	}
	return c;
}

static int send_c(int64_t id)
{
	return kipc_mbox_send(id, "c", 1, 0, 0);
}

TEST(receive_set_blocks_until_any)
{
	int64_t ids[3];
	open_boxes(_metadata, ids, 3);
	/* once the parent is blocked on all three (on the last) */
	pid_t c = once_waited_on(_metadata, ids[2], send_c);
	char buf[4];
	struct kipc_msginfo info;
	ASSERT_EQ(1, kipc_mbox_receive_set(ids, 3, buf, sizeof buf, &info, 0));
	EXPECT_EQ(ids[2], info.source);
	EXPECT_EQ(c, info.pid);
	EXPECT_EQ(0, kt_wait(c));
	/* the set receive left no waiter behind on the others */
	for (int i = 0; i < 3; i++) {
		struct kipc_mbox_stat st;
		ASSERT_EQ(0, kipc_mbox_stat(ids[i], &st));
		EXPECT_EQ(0, st.nreceivers);
		kipc_mbox_destroy(ids[i]);
	}
}

TEST(receive_set_invalid)
{
	char buf[4];
	EXPECT_EQ(-1, kipc_mbox_receive_set(NULL, 0, buf, sizeof buf, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EINVAL, errno);
	int64_t ids[2] = {kipc_mbox_open(NULL, 0, NULL), 0};
	ASSERT_LT(0, ids[0]);
	ids[1] = kipc_mbox_open(NULL, 0, NULL);
	ASSERT_LT(0, ids[1]);
	ASSERT_EQ(0, kipc_mbox_destroy(ids[1]));
	EXPECT_EQ(-1, kipc_mbox_receive_set(ids, 2, buf, sizeof buf, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EIDRM, errno);
}

TEST(receive_set_woken_by_destroy)
{
	int64_t ids[2];
	open_boxes(_metadata, ids, 2);
	pid_t c = once_waited_on(_metadata, ids[0], kipc_mbox_destroy);
	char buf[4];
	EXPECT_EQ(-1, kipc_mbox_receive_set(ids, 2, buf, sizeof buf, NULL, 0));
	EXPECT_EQ(EIDRM, errno);
	EXPECT_EQ(0, kt_wait(c));
	kipc_mbox_destroy(ids[1]);
}

KIPC_TEST_MAIN
