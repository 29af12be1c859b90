// SPDX-License-Identifier: MIT
/*
 * api_test: the library calls no other test reaches: every _x variant
 * (kipc_opts' type and timeout reach the kernel), the prep helpers of
 * send, call, mailbox call, reply and receive-set, and
 * kipc_sqe_set_timeout / kipc_sqe_set_type. Each test checks what the
 * field it covers changes.
 */
#include "kipc_test.h"

#define MS 1000000ll

/* Submit sqe (user_data ud) and wait for its completion. 0 or -1. */
static int run_async(struct kipc_sqe *sqe, uint64_t ud, struct kipc_cqe *out)
{
	kipc_sqe_set_data(sqe, ud);
	if (kipc_submit() != 1)
		return -1;
	struct kipc_cqe *c;
	if (kipc_wait_cqe_timeout(&c, KT_BOUND_MS * MS) < 0)
		return -1;
	*out = *c;
	kipc_cqe_seen(c);
	return out->user_data == ud ? 0 : -1;
}

static int64_t open_box(void)
{
	return kt_shared_mbox(4);
}

TEST(x_variants_send_and_select_by_type)
{
	struct kipc_opts t5 = {.type = 5}, t6 = {.type = 6};
	ASSERT_EQ(0, kipc_attach());
	pid_t me = kipc_task_pid();
	ASSERT_EQ(getpid(), me);
	ASSERT_EQ(0, kipc_send_x(me, "five", 4, 0, 0, &t5));
	char buf[8];
	struct kipc_msginfo info;
	EXPECT_EQ(-1, kipc_receive_x(KIPC_ANY, buf, sizeof buf, &info,
				     KIPC_F_TYPE | KIPC_F_NONBLOCK, &t6));
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(4, kipc_receive_x(KIPC_ANY, buf, sizeof buf, &info, KIPC_F_TYPE, &t5));
	EXPECT_EQ(5, info.type);
	EXPECT_EQ(0, memcmp(buf, "five", 4));

	int64_t a = open_box(), b = open_box();
	ASSERT_LT(0, a);
	ASSERT_LT(0, b);
	ASSERT_EQ(0, kipc_mbox_send_x(b, "six", 3, 0, 0, &t6));
	ASSERT_EQ(0, kipc_mbox_send_x(a, "five", 4, 0, 0, &t5));
	/* a set takes no type selector */
	int64_t ids[2] = {a, b};
	EXPECT_EQ(-1, kipc_mbox_receive_set_x(ids, 2, buf, sizeof buf, &info, KIPC_F_TYPE, &t6));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(4, kipc_mbox_receive_set_x(ids, 1, buf, sizeof buf, &info, 0, NULL));
	EXPECT_EQ(a, info.source);
	EXPECT_EQ(5, info.type);
	/* by type from one mailbox: 5 is not in b, 6 is */
	EXPECT_EQ(-1, kipc_mbox_receive_x(b, buf, sizeof buf, &info,
					  KIPC_F_TYPE | KIPC_F_NONBLOCK, &t5));
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(3, kipc_mbox_receive_x(b, buf, sizeof buf, &info, KIPC_F_TYPE, &t6));
	EXPECT_EQ(6, info.type);
	kipc_mbox_destroy(a);
	kipc_mbox_destroy(b);
}

TEST(x_variants_time_out)
{
	struct kipc_opts o = {.timeout = 30 * MS};
	char buf[8];
	int64_t t0 = kt_now_ns();
	EXPECT_EQ(-1, kipc_receive_x(KIPC_ANY, buf, sizeof buf, NULL, KIPC_F_TIMEOUT, &o));
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_LE(30 * MS, kt_now_ns() - t0);
	int64_t a = open_box();
	ASSERT_LT(0, a);
	int64_t ids[1] = {a};
	EXPECT_EQ(-1, kipc_mbox_receive_set_x(ids, 1, buf, sizeof buf, NULL, KIPC_F_TIMEOUT, &o));
	EXPECT_EQ(ETIMEDOUT, errno);
	/* a call nobody answers: the caller's timeout ends it */
	EXPECT_EQ(-1, kipc_mbox_call_x(a, "q", 1, buf, sizeof buf, NULL, KIPC_F_TIMEOUT, &o));
	EXPECT_EQ(ETIMEDOUT, errno);
	pid_t idle = kt_fork_idle();
	ASSERT_LT(0, idle);
	EXPECT_EQ(-1, kipc_call_x(idle, "q", 1, buf, sizeof buf, NULL, KIPC_F_TIMEOUT, &o));
	EXPECT_EQ(ETIMEDOUT, errno);
	kill(idle, SIGKILL);
	kt_wait(idle);
	kipc_mbox_destroy(a);
}

struct server_arg {
	int64_t id;  /* the second call comes through this mailbox */
	bool async;  /* reply with kipc_prep_reply (else kipc_reply_x) */
	int replies; /* serve_short: 1 (too long, then exit) or 2 */
};

/*
 * Server: two calls (own queue, then the mailbox), each answered with
 * the request reversed, its type one more than the request's.
 */
static int serve_two(void *p)
{
	const struct server_arg *sa = p;
	char *out = kipc_buf_alloc(16);
	if (!out)
		return 9;
	for (int i = 0; i < 2; i++) {
		char buf[16];
		struct kipc_msginfo info;
		ssize_t n = i == 0 ? kipc_receive(KIPC_ANY, buf, sizeof buf, &info, 0)
				   : kipc_mbox_receive(sa->id, buf, sizeof buf, &info, 0);
		if (n <= 0 || !(info.flags & KIPC_CQE_F_CALL))
			return 10 + i;
		for (ssize_t k = 0; k < n; k++)
			out[k] = buf[n - 1 - k];
		if (!sa->async) {
			struct kipc_opts o = {.type = info.type + 1};
			if (kipc_reply_x(info.token, out, (size_t)n, 0, &o) < 0)
				return 20 + i;
			continue;
		}
		struct kipc_sqe *sqe = kipc_get_sqe();
		if (!sqe)
			return 30 + i;
		kipc_prep_reply(sqe, info.token, out, (size_t)n, 0);
		kipc_sqe_set_type(sqe, info.type + 1);
		struct kipc_cqe cqe;
		if (run_async(sqe, 100 + i, &cqe) < 0 || cqe.res != 0)
			return 40 + i;
	}
	return 0;
}

/* A new mailbox (*id) and serve_two() serving it (async: through the
 * async API). The server's pid. */
static pid_t two_call_server(struct __test_metadata *_metadata, bool async, int64_t *id)
{
	*id = open_box();
	ASSERT_LT(0, *id);
	struct server_arg sa = {.id = *id, .async = async};
	pid_t s = kt_fork(serve_two, &sa);
	ASSERT_LT(0, s);
	return s;
}

TEST(x_variants_call_and_reply_carry_types)
{
	int64_t id;
	pid_t s = two_call_server(_metadata, false, &id);
	struct kipc_opts o = {.type = 40};
	char buf[16];
	struct kipc_msginfo info;
	ASSERT_EQ(3, kipc_call_x(s, "abc", 3, buf, sizeof buf, &info, 0, &o));
	EXPECT_EQ(41, info.type);
	EXPECT_EQ(0, memcmp(buf, "cba", 3));
	EXPECT_EQ(s, info.pid);
	o.type = 50;
	ASSERT_EQ(2, kipc_mbox_call_x(id, "de", 2, buf, sizeof buf, &info, 0, &o));
	EXPECT_EQ(51, info.type);
	EXPECT_EQ(0, memcmp(buf, "ed", 2));
	EXPECT_EQ(0, kt_wait(s));
	kipc_mbox_destroy(id);
}

TEST(prep_send_with_type_and_prio)
{
	ASSERT_EQ(0, kipc_attach());
	pid_t me = kipc_task_pid();
	ASSERT_EQ(getpid(), me);
	char *b = kipc_buf_alloc(16);
	ASSERT_NE(NULL, b);
	memcpy(b, "typed", 5);
	struct kipc_sqe *sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_send(sqe, me, b, 5, 3, 0);
	kipc_sqe_set_type(sqe, 9);
	struct kipc_cqe cqe;
	ASSERT_EQ(0, run_async(sqe, 1, &cqe));
	EXPECT_EQ(0, cqe.res);
	char buf[8];
	struct kipc_msginfo info;
	ASSERT_EQ(5, kipc_receive(KIPC_ANY, buf, sizeof buf, &info, KIPC_F_NONBLOCK));
	EXPECT_EQ(9, info.type);
	EXPECT_EQ(3, info.prio);
	EXPECT_EQ(me, info.pid);
	EXPECT_EQ(0, memcmp(buf, "typed", 5));
	kipc_buf_free(b);
}

TEST(sqe_set_timeout_relative_and_absolute)
{
	char *b = kt_buf(_metadata, 16);
	struct kipc_sqe *sqe = kt_prep_receive(_metadata, b, 16, 0);
	kipc_sqe_set_timeout(sqe, 30 * MS, 0);
	EXPECT_TRUE(sqe->flags & KIPC_F_TIMEOUT);
	int64_t t0 = kt_now_ns();
	struct kipc_cqe cqe;
	ASSERT_EQ(0, run_async(sqe, 2, &cqe));
	EXPECT_EQ(-ETIMEDOUT, cqe.res);
	EXPECT_LE(30 * MS, kt_now_ns() - t0);
	/* absolute, CLOCK_REALTIME: a deadline already past */
	sqe = kt_prep_receive(_metadata, b, 16, 0);
	kipc_sqe_set_timeout(sqe, kt_realtime_ns() - 1000 * MS, KIPC_F_REALTIME);
	ASSERT_EQ(0, run_async(sqe, 3, &cqe));
	EXPECT_EQ(-ETIMEDOUT, cqe.res);
	kipc_buf_free(b);
}

TEST(sqe_set_type_selects_what_a_receive_takes)
{
	ASSERT_EQ(0, kipc_attach());
	pid_t me = kipc_task_pid();
	ASSERT_EQ(getpid(), me);
	ASSERT_EQ(0, kipc_send_x(me, "1", 1, 0, 0, &(struct kipc_opts){.type = 1}));
	ASSERT_EQ(0, kipc_send_x(me, "2", 1, 0, 0, &(struct kipc_opts){.type = 2}));
	char *b = kt_buf(_metadata, 16);
	struct kipc_sqe *sqe = kt_prep_receive(_metadata, b, 16, KIPC_F_TYPE);
	kipc_sqe_set_type(sqe, 2);
	struct kipc_cqe cqe;
	ASSERT_EQ(0, run_async(sqe, 4, &cqe));
	EXPECT_EQ(1, cqe.res);
	EXPECT_EQ(2, cqe.type);
	EXPECT_EQ('2', b[0]);
	char buf[4];
	EXPECT_EQ(1, kipc_receive(KIPC_ANY, buf, sizeof buf, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ('1', buf[0]);
	kipc_buf_free(b);
}

TEST(prep_mbox_receive_set_takes_from_any)
{
	int64_t a = open_box(), c = open_box();
	ASSERT_LT(0, a);
	ASSERT_LT(0, c);
	int64_t *ids = kipc_buf_alloc(2 * sizeof *ids);
	char *b = kipc_buf_alloc(16);
	ASSERT_NE(NULL, ids);
	ASSERT_NE(NULL, b);
	ids[0] = a;
	ids[1] = c;
	ASSERT_EQ(0, kipc_mbox_send(c, "from c", 6, 0, 0));
	struct kipc_sqe *sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_mbox_receive_set(sqe, ids, 2, b, 16, 0);
	struct kipc_cqe cqe;
	ASSERT_EQ(0, run_async(sqe, 5, &cqe));
	EXPECT_EQ(6, cqe.res);
	EXPECT_EQ(c, cqe.source);
	EXPECT_EQ(0, memcmp(b, "from c", 6));
	/* only the first id: a message in c is not seen */
	ASSERT_EQ(0, kipc_mbox_send(c, "x", 1, 0, 0));
	sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_mbox_receive_set(sqe, ids, 1, b, 16, KIPC_F_NONBLOCK);
	ASSERT_EQ(0, run_async(sqe, 6, &cqe));
	EXPECT_EQ(-EAGAIN, cqe.res);
	kipc_buf_free(ids);
	kipc_buf_free(b);
	kipc_mbox_destroy(a);
	kipc_mbox_destroy(c);
}

TEST(prep_call_mbox_call_and_reply)
{
	int64_t id;
	pid_t s = two_call_server(_metadata, true, &id);
	char *req = kipc_buf_alloc(16), *rep = kipc_buf_alloc(16);
	ASSERT_NE(NULL, req);
	ASSERT_NE(NULL, rep);
	memcpy(req, "abc", 3);
	struct kipc_sqe *sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_call(sqe, s, req, 3, rep, 16, 0, 0);
	struct kipc_cqe cqe;
	kipc_sqe_set_type(sqe, 60);
	ASSERT_EQ(0, run_async(sqe, 7, &cqe));
	EXPECT_EQ(3, cqe.res);
	EXPECT_EQ(61, cqe.type);
	EXPECT_EQ(s, cqe.pid);
	EXPECT_EQ(0, memcmp(rep, "cba", 3));
	memcpy(req, "wxyz", 4);
	sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_mbox_call(sqe, id, req, 4, rep, 16, 0, 0);
	ASSERT_EQ(0, run_async(sqe, 8, &cqe));
	EXPECT_EQ(4, cqe.res);
	EXPECT_EQ(0, memcmp(rep, "zyxw", 4));
	EXPECT_EQ(0, kt_wait(s));
	kipc_buf_free(req);
	kipc_buf_free(rep);
	kipc_mbox_destroy(id);
}

/*
 * Server for the short-reply-buffer tests: one call through the mailbox,
 * answered first too long for the caller's buffer (EMSGSIZE for the
 * server, the caller keeps waiting), then short enough.
 */
static int serve_short(void *p)
{
	const struct server_arg *sa = p;
	char *out = kipc_buf_alloc(16);
	if (!out)
		return 9;
	memcpy(out, "long", 4);
	char buf[16];
	struct kipc_msginfo info;
	ssize_t n = kipc_mbox_receive(sa->id, buf, sizeof buf, &info, 0);
	if (n <= 0 || !(info.flags & KIPC_CQE_F_CALL))
		return 10;
	for (int i = 0; i < sa->replies; i++) {
		size_t len = i == 0 ? 4 : 2;
		long want = i == 0 ? -EMSGSIZE : 0;
		if (!sa->async) {
			int r = kipc_reply(info.token, out, len, 0);
			if ((r < 0 ? -errno : r) != want)
				return 20 + i;
			continue;
		}
		struct kipc_sqe *sqe = kipc_get_sqe();
		if (!sqe)
			return 30 + i;
		kipc_prep_reply(sqe, info.token, out, len, 0);
		struct kipc_cqe cqe;
		if (run_async(sqe, 100 + i, &cqe) < 0)
			return 40 + i;
		if (cqe.res != want)
			return 50 + i;
	}
	return 0;
}

/* The caller of serve_short: a call through id with a 2-byte reply
 * buffer, sync or async. The result, *flags the completion's flags. */
static long short_call(int64_t id, bool async, char *rep, unsigned *flags)
{
	char *req = kipc_buf_alloc(16);
	if (!req)
		return -ENOMEM;
	memcpy(req, "q", 1);
	long r;
	if (!async) {
		struct kipc_msginfo info = {0};
		r = kipc_mbox_call(id, req, 1, rep, 2, &info, 0);
		r = r < 0 ? -errno : r;
		*flags = info.flags;
	} else {
		struct kipc_sqe *sqe = kipc_get_sqe();
		struct kipc_cqe cqe = {0};
		r = -ENOMEM;
		if (sqe) {
			kipc_prep_mbox_call(sqe, id, req, 1, rep, 2, 0, 0);
			r = run_async(sqe, 9, &cqe) < 0 ? -EIO : cqe.res;
		}
		*flags = cqe.flags;
	}
	kipc_buf_free(req);
	return r;
}

/*
 * A reply longer than the caller's buffer fails EMSGSIZE for the server
 * and the call goes on (semantics.md, section 9), sync and async alike:
 * a shorter reply then completes it; a server that gives up and exits
 * fails it ESRCH with KIPC_CQE_F_DELIVERED.
 */
TEST(short_reply_buffer_fails_the_reply_not_the_call)
{
	for (int async = 0; async < 2; async++) {
		for (int replies = 2; replies >= 1; replies--) {
			int64_t id = open_box();
			ASSERT_LT(0, id);
			struct server_arg sa = {.id = id, .async = async, .replies = replies};
			pid_t s = kt_fork(serve_short, &sa);
			ASSERT_LT(0, s);
			char *rep = kipc_buf_alloc(16);
			ASSERT_NE(NULL, rep);
			memset(rep, 0, 16);
			unsigned flags = 0;
			long r = short_call(id, async, rep, &flags);
			if (replies == 2) {
				EXPECT_EQ(2, r);
				EXPECT_EQ(0, memcmp(rep, "lo", 2));
			} else {
				EXPECT_EQ(-ESRCH, r);
				EXPECT_TRUE(flags & KIPC_CQE_F_DELIVERED);
				EXPECT_EQ(0, rep[0]); /* the long reply never landed */
			}
			EXPECT_EQ(0, rep[2]); /* nothing past the caller's buffer */
			EXPECT_EQ(0, kt_wait(s));
			kipc_buf_free(rep);
			kipc_mbox_destroy(id);
		}
	}
}

KIPC_TEST_MAIN
