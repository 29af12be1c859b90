// SPDX-License-Identifier: MIT
/*
 * replyrecv_test: kipc_reply_receive (a reply and the next receive in one
 * request) serves many callers exactly once; hostile callers (a forged
 * or stale token, another task's call, a mailbox without the right) get
 * errors and take nothing; KIPC_F_SKIP_SUCCESS posts errors once and
 * successes not at all.
 */
#include "kipc_test.h"

#define MS 1000000ll
#define CALLERS 4
#define CALLS 50

struct req {
	unsigned id;
	long x;
};

TEST(reply_receive_serves_every_call_exactly_once)
{
	struct kipc_mbox_attr a = kt_attr(8);
	int64_t box = kipc_mbox_open(NULL, 0, &a);
	ASSERT_LT(0, box);
	struct kt_ledger l;
	ASSERT_EQ(0, kt_ledger_init(&l, CALLERS * CALLS));
	pid_t c[CALLERS];
	for (int k = 0; k < CALLERS; k++) {
		c[k] = fork();
		ASSERT_LE(0, c[k]);
		if (c[k] == 0) {
			for (int i = 0; i < CALLS; i++) {
				struct req q = {.id = (unsigned)(k * CALLS + i), .x = k * 1000 + i};
				long y = 0;
				kt_ledger_sent(&l, q.id);
				if (kipc_mbox_call(box, &q, sizeof q, &y, sizeof y, NULL, 0) != sizeof y)
					_exit(1);
				if (y != q.x + 1)
					_exit(2);
			}
			_exit(0);
		}
	}
	struct req q;
	struct kipc_msginfo info;
	ASSERT_EQ((ssize_t)sizeof q, kipc_mbox_receive(box, &q, sizeof q, &info, 0));
	for (int n = 1; n <= CALLERS * CALLS; n++) {
		ASSERT_TRUE(info.flags & KIPC_CQE_F_CALL);
		ASSERT_TRUE(kt_ledger_received(&l, q.id));
		long y = q.x + 1;
		if (n == CALLERS * CALLS) {
			ASSERT_EQ(0, kipc_reply(info.token, &y, sizeof y, 0));
			break;
		}
		ASSERT_EQ((ssize_t)sizeof q, kipc_mbox_reply_receive(info.token, &y, sizeof y, box, &q,
								     sizeof q, &info, 0))
			TH_LOG("reply_receive: %s", strerror(errno));
		EXPECT_TRUE(info.flags & KIPC_CQE_F_REPLIED);
	}
	for (int k = 0; k < CALLERS; k++)
		EXPECT_EQ(0, kt_wait(c[k]));
	unsigned nsent;
	EXPECT_EQ(0u, kt_ledger_check(&l, &nsent));
	EXPECT_EQ((unsigned)(CALLERS * CALLS), nsent);
	kt_ledger_destroy(&l);
	EXPECT_EQ(0, kipc_mbox_destroy(box));
}

struct hostile {
	int token_pipe[2];      /* server -> hostile: a "leaked" token, then go */
	int id_pipe[2];         /* hostile -> server: its mailbox */
	struct kt_barrier done; /* hostile -> server: its checks ran */
};

/*
 * A task that holds a token it did not receive, with a message in its own
 * task queue and a mailbox of its own (process-owned: only it receives).
 */
static int hostile_task(void *p)
{
	struct hostile *h = p;
	struct kipc_mbox_attr a = kt_attr(4);
	int64_t theirs = kipc_mbox_open(NULL, 0, &a);
	if (theirs < 0 || kipc_mbox_send(theirs, "stays", 5, 0, 0) < 0)
		return 10;
	if (write(h->id_pipe[1], &theirs, sizeof theirs) != sizeof theirs)
		return 10;
	uint64_t token;
	if (read(h->token_pipe[0], &token, sizeof token) != sizeof token)
		return 10;
	if (kipc_send(kipc_task_pid(), "own", 3, 0, 0) < 0)
		return 11;
	char buf[64];
	struct kipc_msginfo info;
	memset(&info, 0, sizeof info);
	/* another task's call: EPERM, nothing received, not REPLIED */
	if (kipc_reply_receive(token, "forged", 6, KIPC_ANY, buf, sizeof buf, &info,
			       KIPC_F_NONBLOCK) != -1 || errno != EPERM)
		return 12;
	if (info.flags & KIPC_CQE_F_REPLIED)
		return 13;
	/* a token never issued */
	if (kipc_reply_receive(token + 1000000, "x", 1, KIPC_ANY, buf, sizeof buf, &info,
			       KIPC_F_NONBLOCK) != -1 || errno != ESRCH)
		return 14;
	if (kipc_receive(KIPC_ANY, buf, sizeof buf, NULL, KIPC_F_NONBLOCK) != 3)
		return 15; /* its own message was not taken */
	kt_post(&h->done, 1);
	/* once the server answered it: stale */
	if (read(h->token_pipe[0], &token, sizeof token) != sizeof token)
		return 16;
	if (kipc_reply_receive(token, "late", 4, KIPC_ANY, buf, sizeof buf, &info,
			       KIPC_F_NONBLOCK) != -1 || errno != ESRCH)
		return 17;
	kt_post(&h->done, 1);
	/* the server's receive on our mailbox failed: the message is ours still */
	if (read(h->token_pipe[0], &token, sizeof token) != sizeof token)
		return 18;
	if (kipc_mbox_receive(theirs, buf, sizeof buf, NULL, KIPC_F_NONBLOCK) != 5 ||
	    memcmp(buf, "stays", 5))
		return 19;
	return 0;
}

static int caller_task(void *p)
{
	pid_t server = *(pid_t *)p;
	char rep[16] = {0};
	for (int i = 0; i < 2; i++) {
		ssize_t n = kipc_call(server, "q", 1, rep, sizeof rep, NULL, 0);
		if (n != 4 || memcmp(rep, i ? "ans2" : "ans1", 4))
			return 20 + i;
	}
	return 0;
}

TEST(hostile_tokens_and_a_mailbox_without_the_right)
{
	struct hostile h;
	ASSERT_EQ(0, pipe2(h.token_pipe, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(h.id_pipe, O_CLOEXEC));
	ASSERT_EQ(0, kt_barrier_init(&h.done));
	ASSERT_EQ(0, kipc_attach());
	pid_t me = kipc_task_pid();
	ASSERT_LT(0, me);
	pid_t hp = kt_fork(hostile_task, &h);
	ASSERT_LT(0, hp);
	pid_t cp = kt_fork(caller_task, &me);
	ASSERT_LT(0, cp);
	int64_t theirs;
	ASSERT_EQ((ssize_t)sizeof theirs, read(h.id_pipe[0], &theirs, sizeof theirs));
	char buf[16];
	struct kipc_msginfo info;
	ASSERT_EQ(1, kipc_receive(KIPC_ANY, buf, sizeof buf, &info, 0));
	ASSERT_TRUE(info.flags & KIPC_CQE_F_CALL);
	uint64_t token = info.token;
	ASSERT_EQ((ssize_t)sizeof token, write(h.token_pipe[1], &token, sizeof token));
	ASSERT_EQ(0, kt_wait_post(&h.done, 1));
	/* the forgeries left the call waiting: answer it, take the next call */
	ASSERT_EQ(1, kipc_reply_receive(token, "ans1", 4, KIPC_ANY, buf, sizeof buf, &info, 0))
		TH_LOG("reply_receive: %s", strerror(errno));
	EXPECT_TRUE(info.flags & KIPC_CQE_F_REPLIED);
	ASSERT_TRUE(info.flags & KIPC_CQE_F_CALL);
	uint64_t token2 = info.token;
	ASSERT_EQ((ssize_t)sizeof token, write(h.token_pipe[1], &token, sizeof token));
	ASSERT_EQ(0, kt_wait_post(&h.done, 1));
	/* answer the second call, receiving from a mailbox we have no right
	 * on: the reply is delivered, the receive fails and takes nothing */
	memset(&info, 0, sizeof info);
	EXPECT_EQ(-1, kipc_mbox_reply_receive(token2, "ans2", 4, theirs, buf, sizeof buf, &info,
					      KIPC_F_NONBLOCK));
	EXPECT_EQ(EPERM, errno); /* process-owned: only holders receive */
	EXPECT_TRUE(info.flags & KIPC_CQE_F_REPLIED);
	EXPECT_EQ(0, kt_wait(cp)); /* it got "ans2" */
	ASSERT_EQ((ssize_t)sizeof token, write(h.token_pipe[1], &token, sizeof token));
	EXPECT_EQ(0, kt_wait(hp));
	close(h.token_pipe[0]);
	close(h.token_pipe[1]);
	close(h.id_pipe[0]);
	close(h.id_pipe[1]);
	kt_barrier_destroy(&h.done);
}

TEST(skip_success_posts_errors_once_and_successes_never)
{
	struct kipc_mbox_attr a = kt_attr(2);
	int64_t box = kipc_mbox_open(NULL, 0, &a);
	ASSERT_LT(0, box);
	struct kipc_sysinfo si0, si1;
	ASSERT_EQ(0, kipc_sysinfo(&si0));
	char *m = kipc_buf_alloc(64);
	ASSERT_NE(NULL, m);
	memcpy(m, "m1m2m3", 6);
	for (int i = 0; i < 3; i++) {
		struct kipc_sqe *sqe = kipc_get_sqe();
		ASSERT_NE(NULL, sqe);
		kipc_prep_mbox_send(sqe, box, m + 2 * i, 2, 0,
				    KIPC_F_SKIP_SUCCESS | (i == 2 ? KIPC_F_NONBLOCK : 0));
		kipc_sqe_set_data(sqe, 1 + i);
	}
	struct kipc_sqe *nop = kipc_get_sqe();
	ASSERT_NE(NULL, nop);
	kipc_prep_nop(nop);
	kipc_sqe_set_data(nop, 99);
	ASSERT_EQ(4, kipc_submit());
	/* the third (full, nonblocking) fails once; then the nop; nothing else */
	struct kipc_cqe *cqe;
	ASSERT_EQ(0, kipc_wait_cqe_timeout(&cqe, KT_BOUND_MS * MS));
	EXPECT_EQ(3u, cqe->user_data);
	EXPECT_EQ(-EAGAIN, cqe->res);
	kipc_cqe_seen(cqe);
	ASSERT_EQ(0, kipc_wait_cqe_timeout(&cqe, KT_BOUND_MS * MS));
	EXPECT_EQ(99u, cqe->user_data);
	EXPECT_EQ(0, cqe->res);
	kipc_cqe_seen(cqe);
	EXPECT_EQ(-1, kipc_peek_cqe(&cqe));
	EXPECT_EQ(EAGAIN, errno);
	/* counted */
	ASSERT_EQ(0, kipc_sysinfo(&si1));
	EXPECT_LE(si0.nskipped + 2, si1.nskipped);
	/* the two succeeded, in order, and nothing else is there */
	char buf[8];
	EXPECT_EQ(2, kipc_mbox_receive(box, buf, sizeof buf, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, memcmp(buf, "m1", 2));
	EXPECT_EQ(2, kipc_mbox_receive(box, buf, sizeof buf, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, memcmp(buf, "m2", 2));
	EXPECT_EQ(-1, kipc_mbox_receive(box, buf, sizeof buf, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	/* a synchronous call waits for its completion: refused, nothing sent */
	EXPECT_EQ(-1, kipc_mbox_send(box, "s", 1, 0, KIPC_F_SKIP_SUCCESS));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kipc_reply(12345, "s", 1, KIPC_F_SKIP_SUCCESS));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kipc_mbox_receive(box, buf, sizeof buf, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	kipc_buf_free(m);
	EXPECT_EQ(0, kipc_mbox_destroy(box));
}

KIPC_TEST_MAIN
