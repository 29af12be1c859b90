// SPDX-License-Identifier: MIT
/*
 * peek_test - kipc_mbox_peek with real processes: it shows the message a
 * receive would take and leaves it queued; it never waits; synchronous
 * and through the ring (kipc_prep_mbox_peek); and hostile peekers (a
 * process without the receive right, another uid without read
 * permission, a bad buffer) see nothing and take nothing.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kipc_test.h"

static uint32_t nmsg(int64_t id)
{
	struct kipc_mbox_stat st;
	if (kipc_mbox_stat(id, &st) < 0)
		return UINT32_MAX;
	return st.nmsg;
}

TEST(peek_shows_the_next_message_and_leaves_it)
{
	struct kipc_mbox_attr a = kt_attr(8);
	int64_t id = kipc_mbox_open(NULL, KIPC_O_CREAT, &a);
	ASSERT_LT(0, id);
	ASSERT_EQ(0, kipc_mbox_send(id, "later", 5, 0, 0));
	ASSERT_EQ(0, kipc_mbox_send(id, "first!", 6, 3, 0));

	char b[16] = {0};
	struct kipc_msginfo mi;
	memset(&mi, 0xff, sizeof mi);
	EXPECT_EQ(6, kipc_mbox_peek(id, b, sizeof b, &mi, 0));
	EXPECT_EQ(0, memcmp(b, "first!", 6));
	EXPECT_EQ(kipc_task_pid(), mi.pid);
	EXPECT_EQ(3u, mi.prio);
	EXPECT_EQ(6u, mi.len);
	EXPECT_EQ(id, mi.source);
	EXPECT_EQ(0u, mi.flags);
	EXPECT_EQ(0u, mi.token);
	EXPECT_EQ(2u, nmsg(id));

	/* a short buffer: the first bytes, the full length, TRUNC */
	memset(b, 0, sizeof b);
	EXPECT_EQ(6, kipc_mbox_peek(id, b, 3, &mi, 0));
	EXPECT_EQ(0, memcmp(b, "fir\0", 4));
	EXPECT_EQ((uint32_t)KIPC_CQE_F_TRUNC, mi.flags);
	EXPECT_EQ(6, kipc_mbox_peek(id, NULL, 0, NULL, 0));

	/* the receive takes what the peek showed */
	uint64_t seq = mi.seq;
	struct kipc_msginfo ri;
	EXPECT_EQ(6, kipc_mbox_receive(id, b, sizeof b, &ri, KIPC_F_NONBLOCK));
	EXPECT_EQ(seq, ri.seq);
	EXPECT_EQ(5, kipc_mbox_peek(id, b, sizeof b, NULL, 0));
	EXPECT_EQ(5, kipc_mbox_receive(id, b, sizeof b, NULL, KIPC_F_NONBLOCK));

	/* empty: EAGAIN at once (no flag needed, none allowed) */
	EXPECT_EQ(-1, kipc_mbox_peek(id, b, sizeof b, NULL, 0));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(-1, kipc_mbox_peek(id, b, sizeof b, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kipc_mbox_peek(4242, b, sizeof b, NULL, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kipc_mbox_peek(id, NULL, 8, NULL, 0));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(0, kipc_mbox_destroy(id));
	EXPECT_EQ(-1, kipc_mbox_peek(id, b, sizeof b, NULL, 0));
	EXPECT_EQ(EIDRM, errno);
}

TEST(peek_through_the_ring)
{
	int64_t id = kipc_mbox_open(NULL, KIPC_O_CREAT, NULL);
	ASSERT_LT(0, id);
	ASSERT_EQ(0, kipc_mbox_send(id, "async peek", 10, 0, 0));
	char *buf = kipc_buf_alloc(64);
	ASSERT_NE(NULL, buf);
	struct kipc_sqe *sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_mbox_peek(sqe, id, buf, 4, 0);
	kipc_sqe_set_data(sqe, 77);
	ASSERT_EQ(1, kipc_submit());
	struct kipc_cqe *cqe;
	ASSERT_EQ(0, kipc_wait_cqe(&cqe));
	EXPECT_EQ(77u, cqe->user_data);
	EXPECT_EQ(10, cqe->res);
	EXPECT_EQ(10u, cqe->len);
	EXPECT_EQ((uint32_t)KIPC_CQE_F_TRUNC, cqe->flags);
	EXPECT_EQ(0, memcmp(buf, "asyn", 4));
	kipc_cqe_seen(cqe);
	EXPECT_EQ(1u, nmsg(id));
	kipc_buf_free(buf);
	EXPECT_EQ(0, kipc_mbox_destroy(id));
}

struct peeker {
	int64_t id;
	int expect;   /* the errno of the peek, 0: it sees "guarded" */
	bool bad_buf; /* peek into an unmapped page (EFAULT) */
};

static int try_peek(void *p)
{
	struct peeker *k = p;
	char b[16] = {0};
	void *buf = b;
	if (k->bad_buf) {
		buf = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (buf == MAP_FAILED)
			return 1;
	}
	struct kipc_msginfo mi = {0};
	ssize_t n = kipc_mbox_peek(k->id, buf, sizeof b, &mi, 0);
	if (k->expect)
		return n == -1 && errno == k->expect ? 0 : 10;
	return n == 7 && !memcmp(b, "guarded", 7) && mi.len == 7 ? 0 : 20;
}

/* Only the message's rightful receivers see it, and a peek takes nothing. */
TEST(hostile_peekers_see_nothing_and_take_nothing)
{
	/* process-owned: a process without the receive right */
	struct kipc_mbox_attr a = kt_attr(8);
	a.mode = 0666;
	int64_t id = kipc_mbox_open(NULL, KIPC_O_CREAT, &a);
	ASSERT_LT(0, id);
	ASSERT_EQ(0, kipc_mbox_send(id, "guarded", 7, 0, 0));
	struct peeker k = {id, EPERM, false};
	EXPECT_EQ(0, kt_wait(kt_fork(try_peek, &k)));
	k.bad_buf = true; /* the check comes before the copy: still EPERM */
	EXPECT_EQ(0, kt_wait(kt_fork(try_peek, &k)));
	EXPECT_EQ(1u, nmsg(id));
	EXPECT_EQ(0, kipc_mbox_destroy(id));

	/* kernel-owned, of uid A: uid B needs read permission to peek */
	if (geteuid() != 0)
		SKIP(return, "needs root to switch uids");
	a.flags = KIPC_MBOX_KERNEL_OWNED;
	a.mode = 0622; /* others may write, not read */
	id = kipc_mbox_open(NULL, KIPC_O_CREAT, &a);
	ASSERT_LT(0, id);
	struct kipc_mbox_attr set = {0};
	set.uid = UID_A;
	set.gid = UID_A;
	ASSERT_EQ(0, kipc_mbox_setattr(id, KIPC_SET_UID | KIPC_SET_GID, &set));
	ASSERT_EQ(0, kipc_mbox_send(id, "guarded", 7, 0, 0));
	k = (struct peeker){id, EACCES, false};
	EXPECT_EQ(0, kt_as_user(UID_B, try_peek, &k));
	set.mode = 0644; /* others may read: peek (and receive) */
	ASSERT_EQ(0, kipc_mbox_setattr(id, KIPC_SET_MODE, &set));
	k.expect = 0;
	EXPECT_EQ(0, kt_as_user(UID_B, try_peek, &k));
	EXPECT_EQ(1u, nmsg(id)); /* looked at, not taken */
	k.bad_buf = true; /* allowed, but a bad buffer: EFAULT, nothing taken */
	k.expect = EFAULT;
	EXPECT_EQ(0, kt_as_user(UID_B, try_peek, &k));
	EXPECT_EQ(1u, nmsg(id));
	char b[16];
	EXPECT_EQ(7, kipc_mbox_receive(id, b, sizeof b, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(0u, nmsg(id));
	EXPECT_EQ(0, kipc_mbox_destroy(id));
}

KIPC_TEST_MAIN
