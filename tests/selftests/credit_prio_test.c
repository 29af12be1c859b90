// SPDX-License-Identifier: MIT
/*
 * credit_prio_test: send credits against receive push on one native
 * link (transport.md sections 12 and 13). A credit send linearizes at
 * its publication, a pushed receive at its claim: a credit send that
 * returned must never be one that a later claimed receive should have
 * returned first (a higher priority than the pushed messages'). Two
 * helper processes, a sender S holding credits and a receiver R holding
 * the push, kipcd stopped (SIGSTOP) while S sends and R receives:
 *  - push first (R's low-priority messages pushed), then S's send of a
 *    higher priority: it returns only once kipcd took it, or R's next
 *    receive is that message; S's send at the pushed priority still
 *    returns without kipcd;
 *  - credits first, earned by a send of a higher priority, then R's
 *    push: S's credit send of that priority returns only once kipcd
 *    took it, or R's next receive is that message.
 * Each for a mailbox and for R's task queue (receive(KIPC_ANY)).
 */
/* a push here goes back only when a test takes it back (push_idle_ms) */
#define KT_BOOT_PARAMS "push_idle_ms=600000"
#include "kt_helper.h"

#include <kipc/ring.h>

/* The link a command names: mailbox id, or (taskq) the task queue of pid id. */
static int lsend(int64_t id, bool taskq, uint32_t v, unsigned prio)
{
	return taskq ? kipc_send((pid_t)id, &v, sizeof v, prio, KIPC_F_NONBLOCK)
		     : kipc_mbox_send(id, &v, sizeof v, prio, KIPC_F_NONBLOCK);
}

static int64_t lrecv(int64_t id, bool taskq)
{
	uint32_t v;
	ssize_t n = taskq ? kipc_receive(KIPC_ANY, &v, sizeof v, NULL, KIPC_F_NONBLOCK)
			  : kipc_mbox_receive(id, &v, sizeof v, NULL, KIPC_F_NONBLOCK);
	if (n < 0)
		return -errno;
	return n == sizeof v ? (int64_t)v : -EBADMSG;
}

static bool credited(int64_t id, bool taskq)
{
	const struct kipc_credit *c = (const struct kipc_credit *)(kt_region() + KIPC_CREDIT_OFF);
	return __atomic_load_n(&c->gen, __ATOMIC_ACQUIRE) && c->link == id &&
	       c->op == (taskq ? KIPC_SYS_send : KIPC_SYS_mbox_send) && c->limit >= 8;
}

static bool pushed(int64_t id, bool taskq)
{
	const struct kipc_push *w = (const struct kipc_push *)(kt_region() + KIPC_PUSH_OFF);
	return (__atomic_load_n(&w->claim, __ATOMIC_ACQUIRE) >> 32) &&
	       __atomic_load_n(&w->link, __ATOMIC_ACQUIRE) == (taskq ? KIPC_PUSH_TASKQ : id);
}

/* The helpers' commands; arg bit 32: the link is the task queue of pid id. */
enum {
	P_CRED = C_OWN, /* S: primers (1000 at prio) until credits: how many, or -1 */
	P_SEND,         /* S: send (uint32_t)arg at prio: 0 or -errno */
	P_GRANT,        /* R: receive (uint32_t)arg messages, then until the push is ours
			   (prio 1: each time a primer of our own): how many, or -1 */
	P_PUSHED,       /* R: wait until (uint32_t)arg messages are pushed: 0 or -1 */
	P_RECV,         /* R: one nonblocking receive: the value or -errno */
};

#define TASKQ (1ll << 32)

static int64_t prio_cmd(const struct cmd *c)
{
	bool taskq = c->arg & TASKQ;
	uint32_t a = (uint32_t)c->arg;
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS, n = 0;
	switch (c->op) {
	case P_CRED:
		while (__ksft_now_ms() < deadline) {
			if (lsend(c->id, taskq, 1000, c->prio) < 0)
				return -1;
			n++;
			if (credited(c->id, taskq))
				return n;
			sched_yield();
		}
		return -1;
	case P_SEND:
		return lsend(c->id, taskq, a, c->prio) < 0 ? -errno : 0;
	case P_GRANT:
		for (; n < a; n++)
			if (lrecv(c->id, taskq) < 0)
				return -1;
		while (!pushed(c->id, taskq) && __ksft_now_ms() < deadline) {
			if (c->prio && lsend(taskq ? getpid() : c->id, taskq, 1000, 0) < 0)
				return -1;
			if (lrecv(c->id, taskq) < 0)
				return -1;
			n += !c->prio;
			sched_yield();
		}
		return pushed(c->id, taskq) ? n : -1;
	case P_PUSHED:
		return kt_wait_push_slots((const struct kipc_push *)(kt_region() + KIPC_PUSH_OFF),
					  taskq ? KIPC_PUSH_TASKQ : c->id, a);
	case P_RECV:
		return lrecv(c->id, taskq);
	default:
		return -EINVAL;
	}
}

static int prio_loop(int in, int out)
{
	return helper_serve(in, out, prio_cmd);
}

#define PENDING INT64_MAX

/*
 * With kipcd stopped: give h command c and wait until it has read it
 * and sleeps, in its call (published, kipcd cannot answer: PENDING) or
 * back in its read with the answer written (the answer).
 */
static int64_t publish(struct helper *h, struct cmd c)
{
	if (helper_give_asleep(h, c) < 0)
		return INT64_MIN;
	struct pollfd p = {.fd = h->up, .events = POLLIN};
	return poll(&p, 1, 0) == 1 ? helper_answer(h) : PENDING;
}

struct pair {
	struct helper s, r;
	int64_t id;   /* the mailbox, or R's pid */
	int64_t link; /* id, with TASKQ for R's task queue */
};

static struct pair pair_setup(struct __test_metadata *_metadata, bool taskq)
{
	struct pair p;
	ASSERT_EQ(0, kipc_attach());
	ASSERT_EQ(0, helper_start(&p.s, prio_loop));
	ASSERT_EQ(0, helper_start(&p.r, prio_loop));
	p.id = taskq ? p.r.pid : open_box(64, true);
	ASSERT_LT(0, p.id);
	p.link = taskq ? TASKQ : 0;
	return p;
}

static void pair_done(struct __test_metadata *_metadata, struct pair *p)
{
	helper_stop(&p->r); /* forked after S: it holds S's pipe ends too */
	helper_stop(&p->s);
	if (!(p->link & TASKQ))
		EXPECT_EQ(0, kipc_mbox_destroy(p->id));
}

/* R receives want[0..n), then finds the link empty. */
static void expect_rest(struct __test_metadata *_metadata, struct pair *p, const int64_t *want,
			int n)
{
	for (int i = 0; i < n; i++)
		EXPECT_EQ(want[i], helper_do(&p->r, (struct cmd){P_RECV, p->id, p->link, 0}));
	EXPECT_EQ(-EAGAIN, helper_do(&p->r, (struct cmd){P_RECV, p->id, p->link, 0}));
}

/*
 * kipcd stopped: S sends 50 at priority 5 above the low messages low[0..n)
 * queued (pushed to R or not), then R receives. If S's send returned,
 * R's receive is 50, whatever was pushed; if it waits for kipcd, it is
 * concurrent with R's receive, which may return low[0] first. Then R
 * receives the rest in order. kipcd continues here.
 */
static void expect_not_overtaken(struct __test_metadata *_metadata, struct pair *p,
				 const int64_t *low, int n)
{
	int64_t high = publish(&p->s, (struct cmd){P_SEND, p->id, p->link | 50, 5});
	int64_t v = high == 0 || high == PENDING
			    ? helper_do_stopped(&p->r, (struct cmd){P_RECV, p->id, p->link, 0})
			    : INT64_MIN;
	cont_kipcd();
	ASSERT_TRUE(high == 0 || high == PENDING);
	if (high == PENDING)
		EXPECT_EQ(0, helper_answer(&p->s));
	if (v == 50 || high == 0) {
		EXPECT_EQ(50, v); /* it returned: nothing of lower priority before it */
		expect_rest(_metadata, p, low, n);
	} else {
		EXPECT_EQ(low[0], v); /* it had not returned: R's claim may go first */
		EXPECT_EQ(50, helper_do(&p->r, (struct cmd){P_RECV, p->id, p->link, 0}));
		expect_rest(_metadata, p, low + 1, n - 1);
	}
}

/*
 * Push first: R holds the push with S's primers and 0..3 (priority 0)
 * pushed, then S earns credits (a priority-0 send). kipcd stopped, S
 * sends 4 at priority 0: a credit send, it returns without kipcd; then
 * 50 at priority 5 (expect_not_overtaken).
 */
static void push_then_higher_credit_send(struct __test_metadata *_metadata, bool taskq)
{
	struct pair p = pair_setup(_metadata, taskq);
	int64_t n = helper_do(&p.s, (struct cmd){P_CRED, p.id, p.link, 0});
	ASSERT_LT(0, n);
	ASSERT_EQ(0, helper_do(&p.r, (struct cmd){P_GRANT, p.id, p.link, 1}));
	int64_t low[32], k = 0;
	for (int64_t i = 0; i < n; i++)
		low[k++] = 1000; /* S's primers, all at priority 0 */
	for (uint32_t v = 0; v < 4; v++) {
		ASSERT_EQ(0, lsend(p.id, taskq, v, 0));
		low[k++] = v;
	}
	/* credits held before the push went back when it stopped below them: again */
	int64_t n2 = helper_do(&p.s, (struct cmd){P_CRED, p.id, p.link, 0});
	ASSERT_LT(0, n2);
	ASSERT_GE(KIPC_PUSH_SLOTS, k + n2);
	for (int64_t i = 0; i < n2; i++)
		low[k++] = 1000;
	ASSERT_EQ(0, helper_do(&p.r, (struct cmd){P_PUSHED, p.id, p.link | k, 0}));
	low[k++] = 4;
	ASSERT_EQ(0, stop_kipcd());
	int64_t same = publish(&p.s, (struct cmd){P_SEND, p.id, p.link | 4, 0});
	if (same != 0)
		cont_kipcd();
	ASSERT_EQ(0, same); /* at the pushed priority: a credit send, without kipcd */
	expect_not_overtaken(_metadata, &p, low, (int)k);
	pair_done(_metadata, &p);
}

/*
 * Credits first, earned by a send at priority 5, with 0..7 (priority 0)
 * queued; then R earns the push (after S's primers). kipcd stopped, S
 * sends 50 at priority 5 (expect_not_overtaken).
 */
static void credits_then_push(struct __test_metadata *_metadata, bool taskq)
{
	struct pair p = pair_setup(_metadata, taskq);
	for (uint32_t v = 0; v < 8; v++)
		ASSERT_EQ(0, lsend(p.id, taskq, v, 0));
	int64_t n = helper_do(&p.s, (struct cmd){P_CRED, p.id, p.link, 5});
	ASSERT_LT(0, n);
	int64_t got = helper_do(&p.r, (struct cmd){P_GRANT, p.id, p.link | n, 0});
	ASSERT_LE(n, got); /* the primers (priority 5) first, then as many of 0..7 */
	ASSERT_GT(n + 7, got);
	ASSERT_EQ(0, stop_kipcd());
	int64_t low[8], k = 0;
	for (int64_t e = got - n; e < 8; e++)
		low[k++] = e;
	expect_not_overtaken(_metadata, &p, low, (int)k);
	pair_done(_metadata, &p);
}

TEST(mailbox_credit_send_above_the_pushed_priority_is_not_overtaken)
{
	push_then_higher_credit_send(_metadata, false);
}

TEST(task_queue_credit_send_above_the_pushed_priority_is_not_overtaken)
{
	push_then_higher_credit_send(_metadata, true);
}

TEST(mailbox_credits_earned_before_the_push_cannot_overtake_it)
{
	credits_then_push(_metadata, false);
}

TEST(task_queue_credits_earned_before_the_push_cannot_overtake_it)
{
	credits_then_push(_metadata, true);
}

KIPC_TEST_MAIN
