// SPDX-License-Identifier: MIT
/*
 * push_test: receive push (transport.md section 13). kipcd copies queued
 * messages ahead into the region of the process that receives them, and
 * a plain synchronous mbox_receive then completes in the caller. The
 * hazards, most with kipcd stopped (SIGSTOP), so that the receives that
 * returned are only claimed in shared memory when another request is
 * made:
 *  - the receives return the messages in order, and a stat made after
 *    them sees them gone;
 *  - another receiver gets the next message, never one the first
 *    received, and the first then continues after it;
 *  - the receiver dies with messages pushed: what it received is gone,
 *    the rest is still queued, in order;
 *  - a timed or truncating receive of the receiver, and a send of higher
 *    priority, come in their exact place;
 *  - a process that writes garbage in its claim word is detached, and
 *    every message pushed to it is still queued;
 *  - the exact-once ledger with a second receiver racing the pushed one;
 *  - exits: one of a process that holds no right, or only a right, in
 *    the mailbox leaves the push (the receives after it still complete
 *    without kipcd); the owner's, which destroys it, takes it back.
 * The test reads its own push words (struct kipc_push in its region) to
 * know that the push path was taken.
 */
/* a push here goes back only when a test takes it back (push_idle_ms) */
#define KT_BOOT_PARAMS "push_idle_ms=600000"
#include "kt_helper.h"

#include <kipc/ring.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

static struct kipc_push *push_words(void)
{
	char *r = kt_region();
	return r ? (struct kipc_push *)(r + KIPC_PUSH_OFF) : NULL;
}

static uint64_t claim_of(const struct kipc_push *w)
{
	return __atomic_load_n(&w->claim, __ATOMIC_ACQUIRE);
}

static bool pushed_for(const struct kipc_push *w, int64_t id)
{
	return (claim_of(w) >> 32) && __atomic_load_n(&w->link, __ATOMIC_ACQUIRE) == id;
}

static int send_range(int64_t id, uint32_t from, uint32_t to)
{
	for (uint32_t v = from; v < to; v++)
		if (kipc_mbox_send(id, &v, sizeof v, 0, 0) < 0)
			return -1;
	return 0;
}

/*
 * Earn the push for the empty mailbox id: a plain receive that completes
 * at once with a message earns it, unless another receiver took it back
 * in the last 10 ms: send ourselves a primer and take it back until it
 * is ours. 0 or -1.
 */
static int await_push(int64_t id, const struct kipc_push *w)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (__ksft_now_ms() < deadline) {
		uint32_t v = 1000;
		if (kipc_mbox_send(id, &v, sizeof v, 0, 0) < 0 || recv1(id, KIPC_F_NONBLOCK) != 1000)
			return -1;
		if (pushed_for(w, id))
			return 0;
		sched_yield();
	}
	return -1;
}

/*
 * A new mailbox whose push we hold, values [0, n) queued and pushed,
 * and the first received. Returns the mailbox.
 */
static int64_t pushed_box(const struct kipc_push *w, uint32_t n)
{
	int64_t id = open_box(64, true);
	if (id < 0 || await_push(id, w) < 0 || send_range(id, 0, n) < 0 ||
	    kt_wait_push_slots(w, 0, n < KIPC_PUSH_SLOTS ? n : KIPC_PUSH_SLOTS) < 0 || recv1(id, 0) != 0)
		return -1;
	return pushed_for(w, id) ? id : -1;
}

/* One value of our own task queue (receive(KIPC_ANY)), or -errno. */
static int64_t trecv1(unsigned flags)
{
	uint32_t v;
	ssize_t n = kipc_receive(KIPC_ANY, &v, sizeof v, NULL, flags);
	if (n < 0)
		return -errno;
	return n == sizeof v ? (int64_t)v : -EBADMSG;
}

static int tsend_range(pid_t to, uint32_t from, uint32_t end, unsigned prio)
{
	for (uint32_t v = from; v < end; v++)
		if (kipc_send(to, &v, sizeof v, prio, 0) < 0)
			return -1;
	return 0;
}

/* As await_push, for our own task queue (we send ourselves the primer). */
static int await_push_taskq(const struct kipc_push *w)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (__ksft_now_ms() < deadline) {
		if (tsend_range(getpid(), 1000, 1001, 0) < 0 || trecv1(KIPC_F_NONBLOCK) != 1000)
			return -1;
		if (pushed_for(w, KIPC_PUSH_TASKQ))
			return 0;
		sched_yield();
	}
	return -1;
}

/* Our task queue's push held, values [0, n) from ourselves queued and pushed. */
static int pushed_taskq(const struct kipc_push *w, uint32_t n)
{
	if (await_push_taskq(w) < 0 || tsend_range(getpid(), 0, n, 0) < 0 ||
	    kt_wait_push_slots(w, 0, n < KIPC_PUSH_SLOTS ? n : KIPC_PUSH_SLOTS) < 0)
		return -1;
	return pushed_for(w, KIPC_PUSH_TASKQ) ? 0 : -1;
}

/* The helper's own command: send arg to the task queue of pid id at prio. */
enum { C_TSEND = C_OWN };

static int64_t tsend_cmd(const struct cmd *c)
{
	uint32_t v = (uint32_t)c->arg;
	if (c->op != C_TSEND)
		return -EINVAL;
	return kipc_send((pid_t)c->id, &v, sizeof v, c->prio, KIPC_F_NONBLOCK) < 0 ? -errno : 0;
}

static int tsend_loop(int in, int out)
{
	return helper_serve(in, out, tsend_cmd);
}

/* ---- the tests ---------------------------------------------------- */

/* A pushed one-byte message is received once, as a length of 1 (the
 * library's "not pushed" answer once was 1, which lost such messages:
 * claimed here, then asked of the kernel, which had none). */
TEST(pushed_one_byte_messages_are_received_once)
{
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = push_words();
	ASSERT_NE(NULL, w);
	int64_t id = open_box(64, true);
	ASSERT_LT(0, id);
	ASSERT_EQ(0, await_push(id, w));
	for (char c = 'x'; c <= 'z'; c++)
		ASSERT_EQ(0, kipc_mbox_send(id, &c, 1, 0, 0));
	ASSERT_EQ(0, kt_wait_push_slots(w, 0, 3));
	for (char c = 'x'; c <= 'z'; c++) {
		char r[4] = {0};
		EXPECT_EQ(1, kipc_mbox_receive(id, r, sizeof r, NULL, KIPC_F_NONBLOCK));
		EXPECT_EQ(c, r[0]);
	}
	char r[4];
	EXPECT_EQ(-1, kipc_mbox_receive(id, r, sizeof r, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(0, nmsg(id));
	EXPECT_EQ(0, kipc_mbox_destroy(id));
}

/* Pushed receives return without kipcd, in order; a stat made after
 * them sees them gone. */
TEST(pushed_receives_complete_without_kipcd)
{
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = push_words();
	ASSERT_NE(NULL, w);
	int64_t id = pushed_box(w, 12);
	ASSERT_LT(0, id);
	struct helper h;
	ASSERT_EQ(0, helper_start(&h, helper_loop));
	ASSERT_EQ(0, stop_kipcd());
	int64_t got[6];
	for (int i = 0; i < 6; i++)
		got[i] = recv1(id, KIPC_F_NONBLOCK);
	char st = kt_proc_state(kt_main_kernel.pid);
	if (st != 'T')
		cont_kipcd();
	ASSERT_EQ('T', st); /* they returned while kipcd was stopped */
	for (int i = 0; i < 6; i++)
		EXPECT_EQ(i + 1, got[i]);
	EXPECT_EQ(5, helper_do_stopped(&h, (struct cmd){C_STAT, id, 0, 0}));
	for (int64_t v = 7; v < 12; v++)
		EXPECT_EQ(v, recv1(id, KIPC_F_NONBLOCK));
	EXPECT_EQ(-EAGAIN, recv1(id, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, nmsg(id));
	helper_stop(&h);
	EXPECT_EQ(0, kipc_mbox_destroy(id));
}

/* Another receiver gets the next message, never one we received; our
 * next receive comes after it, still pushed. */
TEST(another_receiver_gets_the_next_message)
{
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = push_words();
	ASSERT_NE(NULL, w);
	int64_t id = pushed_box(w, 12);
	ASSERT_LT(0, id);
	struct helper h;
	ASSERT_EQ(0, helper_start(&h, helper_loop));
	ASSERT_EQ(0, stop_kipcd());
	int64_t a = recv1(id, KIPC_F_NONBLOCK), b = recv1(id, KIPC_F_NONBLOCK);
	EXPECT_EQ('T', kt_proc_state(kt_main_kernel.pid));
	EXPECT_EQ(1, a);
	EXPECT_EQ(2, b);
	EXPECT_EQ(3, helper_do_stopped(&h, (struct cmd){C_RECV_NB, id, 0, 0}));
	/* not taken back: kipcd gave the other receiver our next message and
	 * us the grant past it */
	uint64_t c = claim_of(w);
	EXPECT_NE(0u, c >> 32);
	EXPECT_EQ(4u, (uint32_t)c); /* message 0 of the grant was value 0 */
	ASSERT_EQ(0, stop_kipcd());
	for (int64_t v = 4; v < 8; v++)
		EXPECT_EQ(v, recv1(id, KIPC_F_NONBLOCK));
	EXPECT_EQ('T', kt_proc_state(kt_main_kernel.pid)); /* still pushed */
	cont_kipcd();
	for (int64_t v = 8; v < 12; v++)
		EXPECT_EQ(v, recv1(id, KIPC_F_NONBLOCK));
	EXPECT_EQ(-EAGAIN, recv1(id, KIPC_F_NONBLOCK));
	EXPECT_EQ(-EAGAIN, helper_do(&h, (struct cmd){C_RECV_NB, id, 0, 0}));
	helper_stop(&h);
	EXPECT_EQ(0, kipc_mbox_destroy(id));
}

struct death {
	int64_t id;
	int up[2], down[2];
};

static int receive_and_die(void *arg)
{
	struct death *d = arg;
	if (kipc_attach() < 0)
		return 1;
	struct kipc_push *w = push_words();
	if (!w || await_push(d->id, w) < 0 || send_range(d->id, 0, 12) < 0 ||
	    kt_wait_push_slots(w, 0, 12) < 0)
		return 2;
	int64_t v0 = recv1(d->id, 0);
	int64_t got[3] = {v0, -1, -1};
	char go;
	if (v0 != 0 || !pushed_for(w, d->id) ||
	    write(d->up[1], &got[0], sizeof got[0]) != sizeof got[0] ||
	    read(d->down[0], &go, 1) != 1) /* the parent stopped kipcd */
		return 2;
	got[1] = recv1(d->id, KIPC_F_NONBLOCK);
	got[2] = recv1(d->id, KIPC_F_NONBLOCK);
	if (write(d->up[1], &got[1], 2 * sizeof got[1]) != 2 * sizeof got[1])
		return 3;
	for (;;)
		pause(); /* killed with its claims only in shared memory */
}

/* The receiver dies with messages pushed: what it received is gone, the
 * rest is still queued, in order. */
TEST(receiver_death_leaves_the_rest_queued)
{
	ASSERT_EQ(0, kipc_attach());
	struct death d;
	d.id = open_box(64, true);
	ASSERT_LT(0, d.id);
	ASSERT_EQ(0, pipe(d.up));
	ASSERT_EQ(0, pipe(d.down));
	pid_t c = kt_fork(receive_and_die, &d);
	ASSERT_LT(0, c);
	int64_t first = -1, next[2] = {-1, -1};
	struct pollfd p = {.fd = d.up[0], .events = POLLIN};
	ASSERT_EQ(1, poll(&p, 1, KT_BOUND_MS));
	ASSERT_EQ((ssize_t)sizeof first, read(d.up[0], &first, sizeof first));
	EXPECT_EQ(0, first);
	ASSERT_EQ(0, stop_kipcd());
	ASSERT_EQ(1, write(d.down[1], "g", 1));
	if (poll(&p, 1, KT_BOUND_MS) != 1 ||
	    read(d.up[0], next, sizeof next) != (ssize_t)sizeof next) {
		cont_kipcd();
		ASSERT_TRUE(false);
	}
	EXPECT_EQ('T', kt_proc_state(kt_main_kernel.pid));
	EXPECT_EQ(1, next[0]);
	EXPECT_EQ(2, next[1]);
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	cont_kipcd();
	for (int64_t v = 3; v < 12; v++)
		EXPECT_EQ(v, recv1(d.id, KIPC_F_NONBLOCK));
	EXPECT_EQ(-EAGAIN, recv1(d.id, KIPC_F_NONBLOCK));
	for (int i = 0; i < 2; i++) {
		close(d.up[i]);
		close(d.down[i]);
	}
	EXPECT_EQ(0, kipc_mbox_destroy(d.id));
}

/* Wait (bounded) until kipcd has let pid's task go: 0 or -1. */
static int wait_task_gone(pid_t pid)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	struct kipc_task_info ti;
	while (kipc_task_info(pid, &ti) == 0 || errno != ESRCH) {
		if (__ksft_now_ms() > deadline)
			return -1;
		kt_sleep_ms(1);
	}
	return 0;
}

/* Fork fn, wait for its exit (status 0) and for kipcd to let its task go. */
static int run_and_reap(int (*fn)(void *), void *arg)
{
	int st;
	pid_t c = kt_fork(fn, arg);
	if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	return wait_task_gone(c);
}

static int attach_and_exit(void *arg)
{
	int64_t id = *(int64_t *)arg;
	struct kipc_mbox_stat st;
	return kipc_attach() < 0 || kipc_mbox_stat(id, &st) < 0;
}

/* An exit of a process that holds no right in our mailbox leaves our
 * push: the receives after it still complete without kipcd, in order. */
TEST(an_unrelated_exit_leaves_the_push)
{
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = push_words();
	ASSERT_NE(NULL, w);
	int64_t id = pushed_box(w, 12);
	ASSERT_LT(0, id);
	uint64_t gen = claim_of(w) >> 32;
	ASSERT_EQ(0, run_and_reap(attach_and_exit, &id));
	ASSERT_EQ(gen, claim_of(w) >> 32); /* not taken back (else the receives wait for kipcd) */
	ASSERT_EQ(0, stop_kipcd());
	int64_t got[6];
	for (int i = 0; i < 6; i++)
		got[i] = recv1(id, KIPC_F_NONBLOCK);
	char st = kt_proc_state(kt_main_kernel.pid);
	cont_kipcd();
	EXPECT_EQ('T', st); /* they returned while kipcd was stopped */
	for (int i = 0; i < 6; i++)
		EXPECT_EQ(i + 1, got[i]);
	for (int64_t v = 7; v < 12; v++)
		EXPECT_EQ(v, recv1(id, KIPC_F_NONBLOCK));
	EXPECT_EQ(-EAGAIN, recv1(id, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, kipc_mbox_destroy(id));
}

struct exiter {
	bool own;      /* open a mailbox only its holders receive from, grant the parent */
	pid_t parent;
	int up[2], down[2];
};

/* Attach (and maybe open and grant), hand the id up (0: none), exit when
 * told: a mailbox of its own dies with it. */
static int exit_when_told(void *arg)
{
	struct exiter *x = arg;
	char go;
	if (kipc_attach() < 0)
		return 1;
	int64_t id = x->own ? open_box(64, false) : 0;
	if (id < 0 || (x->own && kipc_mbox_grant(id, x->parent) < 0) ||
	    write(x->up[1], &id, sizeof id) != sizeof id || read(x->down[0], &go, 1) != 1)
		return 2;
	return 0;
}

static pid_t exiter_start(struct exiter *x, bool own, int64_t *id)
{
	x->own = own;
	x->parent = getpid();
	if (pipe(x->up) < 0 || pipe(x->down) < 0)
		return -1;
	pid_t c = kt_fork(exit_when_told, x);
	struct pollfd p = {.fd = x->up[0], .events = POLLIN};
	if (c < 0 || poll(&p, 1, KT_BOUND_MS) != 1 || read(x->up[0], id, sizeof *id) != sizeof *id)
		return -1;
	return c;
}

/* Let it exit; 0 once kipcd has let its task go. */
static int exiter_end(struct exiter *x, pid_t c)
{
	int st;
	int r = write(x->down[1], "g", 1) == 1 && waitpid(c, &st, 0) == c && WIFEXITED(st) &&
			WEXITSTATUS(st) == 0 ? wait_task_gone(c) : -1;
	for (int i = 0; i < 2; i++) {
		close(x->up[i]);
		close(x->down[i]);
	}
	return r;
}

/* A push nobody claims from goes back after push_idle_ms (this
 * program's kipcd has a long one: its own kipcd here), and its messages
 * are where they were: received through kipcd, in order, once. */
TEST(an_unclaimed_push_goes_back_after_push_idle_ms)
{
	static const char *const params[] = {"push_idle_ms=50", NULL};
	struct kt_kernel k;
	char why[256] = "";
	ASSERT_EQ(KSFT_PASS, kt_kernel_boot(&k, params, why, sizeof why)) TH_LOG("%s", why);
	kt_kernel_use(&k);
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = push_words();
	ASSERT_NE(NULL, w);
	int64_t id = pushed_box(w, 4);
	ASSERT_LT(0, id);
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while ((claim_of(w) >> 32) && __ksft_now_ms() < deadline)
		sched_yield();
	EXPECT_EQ(0u, claim_of(w) >> 32);
	for (int64_t v = 1; v < 4; v++)
		EXPECT_EQ(v, recv1(id, KIPC_F_NONBLOCK));
	EXPECT_EQ(-EAGAIN, recv1(id, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, kipc_mbox_destroy(id));
	kipc_detach();
	int st = kt_kernel_stop(&k, SIGTERM);
	EXPECT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	kt_kernel_cleanup_dir(&k);
}

/* The owner of a mailbox we hold the push of exits: the mailbox dies with
 * it, and our next receive fails EIDRM, never a message pushed before. */
TEST(an_owners_exit_takes_back_the_push_of_its_mailbox)
{
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = push_words();
	ASSERT_NE(NULL, w);
	struct exiter x;
	int64_t id = -1;
	pid_t c = exiter_start(&x, true, &id);
	ASSERT_LT(0, c);
	ASSERT_LT(0, id);
	ASSERT_EQ(0, await_push(id, w));
	ASSERT_EQ(0, send_range(id, 0, 12));
	ASSERT_EQ(0, kt_wait_push_slots(w, 0, 12));
	EXPECT_EQ(0, recv1(id, 0));
	ASSERT_TRUE(pushed_for(w, id));
	ASSERT_EQ(0, exiter_end(&x, c));
	EXPECT_EQ(0u, claim_of(w) >> 32); /* taken back before the mailbox went */
	EXPECT_EQ(-EIDRM, recv1(id, KIPC_F_NONBLOCK));
}

/* A process that holds a right in the mailbox we hold the push of (not
 * its owner) exits: its right goes, nothing of ours; the push stays,
 * and the receives after the exit complete without kipcd, in order. */
TEST(a_holders_exit_leaves_the_push)
{
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = push_words();
	ASSERT_NE(NULL, w);
	int64_t id = pushed_box(w, 12), none = -1;
	ASSERT_LT(0, id);
	struct exiter x;
	pid_t c = exiter_start(&x, false, &none);
	ASSERT_LT(0, c);
	ASSERT_EQ(0, kipc_mbox_grant(id, c)); /* a change of rights: takes our push back */
	EXPECT_EQ(1, recv1(id, 0));            /* ... which this receive earns again */
	ASSERT_EQ(0, kt_wait_push_slots(w, 0, 10));
	uint64_t gen = claim_of(w) >> 32;
	ASSERT_TRUE(pushed_for(w, id));
	ASSERT_EQ(0, exiter_end(&x, c));
	ASSERT_EQ(gen, claim_of(w) >> 32); /* not taken back (else the receives wait for kipcd) */
	ASSERT_EQ(0, stop_kipcd());
	int64_t got[10];
	for (int i = 0; i < 10; i++)
		got[i] = recv1(id, KIPC_F_NONBLOCK);
	char st = kt_proc_state(kt_main_kernel.pid);
	cont_kipcd();
	EXPECT_EQ('T', st);
	for (int i = 0; i < 10; i++)
		EXPECT_EQ(i + 2, got[i]);
	EXPECT_EQ(-EAGAIN, recv1(id, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, kipc_mbox_destroy(id));
}

/* The receiver's own receives that kipcd serves (timed, truncating) and
 * another's send of higher priority come in their exact place. */
TEST(kernel_receives_and_priorities_keep_their_place)
{
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = push_words();
	ASSERT_NE(NULL, w);
	int64_t id = pushed_box(w, 10);
	ASSERT_LT(0, id);
	EXPECT_EQ(1, recv1(id, 0));
	uint32_t v;
	ASSERT_EQ((ssize_t)sizeof v,
		  kipc_mbox_receive_timed(id, &v, sizeof v, NULL, 0, (int64_t)KT_BOUND_MS * 1000000));
	EXPECT_EQ(2u, v);
	EXPECT_EQ(3, recv1(id, 0));
	ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive(id, &v, sizeof v, NULL, KIPC_F_TRUNC));
	EXPECT_EQ(4u, v);
	/* regain the push, then another process sends ahead of it */
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	int64_t expect = 5;
	while (!pushed_for(w, id) && expect < 10 && __ksft_now_ms() < deadline)
		EXPECT_EQ(expect++, recv1(id, 0));
	ASSERT_TRUE(pushed_for(w, id)) TH_LOG("no push again after receiving up to %lld",
					      (long long)expect - 1);
	struct helper h;
	ASSERT_EQ(0, helper_start(&h, helper_loop));
	EXPECT_EQ(0, helper_do(&h, (struct cmd){C_SEND, id, 50, 5}));
	EXPECT_EQ(50, recv1(id, 0));
	while (expect < 10)
		EXPECT_EQ(expect++, recv1(id, KIPC_F_NONBLOCK));
	EXPECT_EQ(-EAGAIN, recv1(id, KIPC_F_NONBLOCK));
	helper_stop(&h);
	EXPECT_EQ(0, kipc_mbox_destroy(id));
}

struct garbage {
	int64_t id;
	uint64_t claim; /* 0: gen + 1; 1: past what was pushed */
};

static int claim_garbage(void *arg)
{
	struct garbage *g = arg;
	if (kipc_attach() < 0)
		return 1;
	struct kipc_push *w = push_words();
	if (!w || await_push(g->id, w) < 0 || send_range(g->id, 0, 8) < 0 ||
	    kt_wait_push_slots(w, 0, 8) < 0 || stop_kipcd() < 0)
		return 2;
	/* kipcd stopped: the receive completes here, and kipcd cannot take
	 * its claim (a loop round would) before the garbage lands */
	int64_t got = pushed_for(w, g->id) && kt_wait_push_slots(w, 0, 8) == 0 ? recv1(g->id, 0) : -1;
	uint64_t c = claim_of(w);
	__atomic_store_n(&w->claim, g->claim ? c + KIPC_PUSH_SLOTS + 1 : c + (1ull << 32),
			 __ATOMIC_SEQ_CST);
	cont_kipcd();
	if (got != 0)
		return 2;
	if (kipc_nop() == 0 || errno != ECONNRESET)
		return 3;
	return 0;
}

/* A claim word the kernel did not write (another grant, or past what
 * was pushed) detaches the process; every message pushed to it is still
 * queued, the one it had claimed included. */
TEST(garbage_claim_word_detaches)
{
	ASSERT_EQ(0, kipc_attach());
	for (uint64_t kind = 0; kind < 2; kind++) {
		struct garbage g = {open_box(64, true), kind};
		ASSERT_LT(0, g.id);
		pid_t c = kt_fork(claim_garbage, &g);
		ASSERT_LT(0, c);
		EXPECT_EQ(0, kt_wait(c));
		/* a claim word the kernel cannot trust claims nothing: the
		 * message it had claimed is still queued too */
		EXPECT_EQ(8, nmsg(g.id));
		for (int64_t v = 0; v < 8; v++)
			EXPECT_EQ(v, recv1(g.id, KIPC_F_NONBLOCK));
		EXPECT_EQ(0, kipc_mbox_destroy(g.id));
	}
}

#define NLEDGER 3000
#define LSTOP 0xffffffffu

struct race {
	int64_t id;
	struct kt_ledger *led;
	uint32_t last[2];   /* the last value each receiver got (FIFO check) */
	unsigned bad_order;
	unsigned local[2];  /* receives each receiver completed itself (pushed) */
};

static int ledger_sender(void *arg)
{
	struct race *r = arg;
	if (kipc_attach() < 0)
		return 1;
	for (uint32_t i = 0; i < NLEDGER; i++)
		if (kipc_mbox_send(r->id, &i, sizeof i, 0, 0) == 0)
			kt_ledger_sent(r->led, i);
	uint32_t v = LSTOP;
	for (int i = 0; i < 2; i++)
		if (kipc_mbox_send(r->id, &v, sizeof v, 0, 0) < 0)
			return 2;
	return 0;
}

static int ledger_receive(struct race *r, int who, const struct kipc_push *w)
{
	int64_t deadline = __ksft_now_ms() + 4 * KT_BOUND_MS;
	while (__ksft_now_ms() < deadline) {
		uint32_t v;
		uint64_t before = w ? claim_of(w) : 0;
		ssize_t n = kipc_mbox_receive(r->id, &v, sizeof v, NULL, who ? KIPC_F_NONBLOCK : 0);
		if (n < 0 && errno == EAGAIN) {
			sched_yield();
			continue;
		}
		if (n != sizeof v)
			return -1;
		if (w && (before >> 32) && claim_of(w) == before + 1)
			r->local[who]++;
		if (v == LSTOP)
			return 0;
		if (!kt_ledger_received(r->led, v) || (r->last[who] != LSTOP && v <= r->last[who]))
			r->bad_order++;
		r->last[who] = v;
		if (who) { /* the second receiver comes now and then */
			int64_t until = __ksft_now_ms() + 2;
			while (__ksft_now_ms() < until)
				sched_yield();
		}
	}
	return -1;
}

static int second_receiver(void *arg)
{
	struct race *r = arg;
	if (kipc_attach() < 0)
		return 1;
	return ledger_receive(r, 1, push_words()) ? 2 : 0;
}

/* Exact-once: every message sent is received once, each receiver's in
 * order, with a second receiver now and then: its receives through kipcd
 * take the holder's next message, or it earned the grant itself. */
TEST(ledger_pushed_receives_racing_another_receiver)
{
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = push_words();
	ASSERT_NE(NULL, w);
	struct kt_ledger led;
	ASSERT_EQ(0, kt_ledger_init(&led, NLEDGER));
	struct race *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r);
	memset(r, 0, sizeof *r);
	r->last[0] = r->last[1] = LSTOP;
	r->id = open_box(256, true);
	ASSERT_LT(0, r->id);
	r->led = &led;
	pid_t s = kt_fork(ledger_sender, r);
	ASSERT_LT(0, s);
	pid_t o = kt_fork(second_receiver, r);
	ASSERT_LT(0, o);
	EXPECT_EQ(0, ledger_receive(r, 0, w));
	EXPECT_EQ(0, kt_wait(s));
	EXPECT_EQ(0, kt_wait(o));
	unsigned nsent = 0;
	EXPECT_EQ(0u, kt_ledger_check(&led, &nsent));
	EXPECT_EQ(NLEDGER, nsent);
	EXPECT_EQ(0u, r->bad_order);
	ksft_print("# pushed receives: %u of the first receiver's, %u of the second's\n",
		   r->local[0], r->local[1]);
	/* the push path was taken (by whichever receiver earned the grant) */
	EXPECT_LT(0u, r->local[0] + r->local[1]);
	EXPECT_EQ(0, kipc_mbox_destroy(r->id));
	munmap(r, sizeof *r);
	kt_ledger_destroy(&led);
}

/* ---- several receivers, task queues -------------------------------- */

struct pair {
	int64_t id;          /* the child's mailbox */
	int up[2], down[2];
};

/* The child: hold the push of its own mailbox, then (kipcd stopped by
 * the parent) receive three pushed messages and report them. */
static int second_holder(void *arg)
{
	struct pair *d = arg;
	if (kipc_attach() < 0)
		return 1;
	struct kipc_push *w = push_words();
	if (!w || await_push(d->id, w) < 0 || send_range(d->id, 0, 8) < 0 ||
	    kt_wait_push_slots(w, 0, 8) < 0 || !pushed_for(w, d->id))
		return 2;
	char go = 0;
	int64_t got[3];
	if (write(d->up[1], &go, 1) != 1 || read(d->down[0], &go, 1) != 1)
		return 3;
	for (int i = 0; i < 3; i++)
		got[i] = recv1(d->id, KIPC_F_NONBLOCK);
	if (write(d->up[1], got, sizeof got) != sizeof got)
		return 4;
	return 0;
}

/* Two processes hold pushes at once, each on its own mailbox: both
 * receive without kipcd, each its own messages in order. */
TEST(two_receivers_hold_pushes_at_once)
{
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = push_words();
	ASSERT_NE(NULL, w);
	struct pair d;
	d.id = open_box(64, true); /* first: a mailbox_open takes our push back */
	ASSERT_LT(0, d.id);
	int64_t id = pushed_box(w, 12);
	ASSERT_LT(0, id);
	ASSERT_EQ(0, pipe(d.up));
	ASSERT_EQ(0, pipe(d.down));
	pid_t c = kt_fork(second_holder, &d);
	ASSERT_LT(0, c);
	char ready;
	struct pollfd p = {.fd = d.up[0], .events = POLLIN};
	ASSERT_EQ(1, poll(&p, 1, KT_BOUND_MS));
	ASSERT_EQ(1, read(d.up[0], &ready, 1));
	ASSERT_TRUE(pushed_for(w, id)); /* ours is still held: both at once */
	ASSERT_EQ(0, stop_kipcd());
	int64_t got[3], theirs[3] = {-1, -1, -1};
	for (int i = 0; i < 3; i++)
		got[i] = recv1(id, KIPC_F_NONBLOCK);
	bool answered = write(d.down[1], "g", 1) == 1 && poll(&p, 1, KT_BOUND_MS) == 1 &&
			read(d.up[0], theirs, sizeof theirs) == (ssize_t)sizeof theirs;
	char st = kt_proc_state(kt_main_kernel.pid);
	cont_kipcd();
	ASSERT_TRUE(answered);
	EXPECT_EQ('T', st); /* all six returned while kipcd was stopped */
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(i + 1, got[i]);
		EXPECT_EQ(i, theirs[i]);
	}
	EXPECT_EQ(0, kt_wait(c));
	EXPECT_EQ(8, nmsg(id));
	EXPECT_EQ(5, nmsg(d.id));
	for (int64_t v = 4; v < 12; v++)
		EXPECT_EQ(v, recv1(id, KIPC_F_NONBLOCK));
	for (int64_t v = 3; v < 8; v++)
		EXPECT_EQ(v, recv1(d.id, KIPC_F_NONBLOCK));
	for (int i = 0; i < 2; i++) {
		close(d.up[i]);
		close(d.down[i]);
	}
	EXPECT_EQ(0, kipc_mbox_destroy(id));
	EXPECT_EQ(0, kipc_mbox_destroy(d.id));
}

/* receive(KIPC_ANY) of the own task queue is pushed too: it returns
 * without kipcd, in order, and the queue's count sees it. */
TEST(task_queue_receives_complete_without_kipcd)
{
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = push_words();
	ASSERT_NE(NULL, w);
	ASSERT_EQ(0, pushed_taskq(w, 12));
	ASSERT_EQ(0, stop_kipcd());
	int64_t got[6];
	struct kipc_msginfo info[6];
	for (int i = 0; i < 6; i++) {
		uint32_t v;
		ssize_t n = kipc_receive(KIPC_ANY, &v, sizeof v, &info[i], KIPC_F_NONBLOCK);
		got[i] = n == sizeof v ? (int64_t)v : -errno;
	}
	char st = kt_proc_state(kt_main_kernel.pid);
	cont_kipcd();
	EXPECT_EQ('T', st);
	for (int i = 0; i < 6; i++) {
		EXPECT_EQ(i, got[i]);
		EXPECT_EQ(getpid(), info[i].pid); /* what the kernel's receive says */
		EXPECT_EQ(4u, info[i].len);
		EXPECT_EQ(0u, info[i].token);
	}
	struct kipc_taskq_stat ts;
	ASSERT_EQ(0, kipc_taskq_stat(&ts));
	EXPECT_EQ(6u, ts.nmsg);
	for (int64_t v = 6; v < 12; v++)
		EXPECT_EQ(v, trecv1(KIPC_F_NONBLOCK));
	EXPECT_EQ(-EAGAIN, trecv1(KIPC_F_NONBLOCK));
}

/* A send ahead of the pushed messages (a higher priority, by another
 * process, made with kipcd stopped) takes the push back and comes next;
 * the receiver's receive(Q) and timed receive through kipcd come in
 * their place; a call is received from kipcd, with its token. */
TEST(task_queue_sends_ahead_and_kernel_receives_keep_their_place)
{
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = push_words();
	ASSERT_NE(NULL, w);
	struct helper h;
	ASSERT_EQ(0, helper_start(&h, tsend_loop));
	ASSERT_EQ(0, pushed_taskq(w, 10));
	EXPECT_EQ(0, trecv1(0));
	ASSERT_EQ(0, stop_kipcd());
	EXPECT_EQ(1, trecv1(KIPC_F_NONBLOCK)); /* pushed: returns with kipcd stopped */
	EXPECT_EQ(0, helper_do_stopped(&h, (struct cmd){C_TSEND, getpid(), 50, 5}));
	EXPECT_EQ(0u, claim_of(w) >> 32); /* taken back before the send ran */
	EXPECT_EQ(50, trecv1(0));
	uint32_t v;
	ASSERT_EQ((ssize_t)sizeof v, kipc_receive(getpid(), &v, sizeof v, NULL, 0));
	EXPECT_EQ(2u, v);
	EXPECT_EQ(3, trecv1(0));
	ASSERT_EQ((ssize_t)sizeof v, kipc_receive_timed(KIPC_ANY, &v, sizeof v, NULL, 0,
							 (int64_t)KT_BOUND_MS * 1000000));
	EXPECT_EQ(4u, v);
	for (int64_t e = 5; e < 10; e++)
		EXPECT_EQ(e, trecv1(KIPC_F_NONBLOCK));
	EXPECT_EQ(-EAGAIN, trecv1(KIPC_F_NONBLOCK));
	helper_stop(&h);
}

static int taskq_garbage(void *arg)
{
	(void)arg;
	if (kipc_attach() < 0)
		return 1;
	struct kipc_push *w = push_words();
	if (!w || pushed_taskq(w, 8) < 0 || stop_kipcd() < 0)
		return 2;
	int64_t got = trecv1(0);
	uint64_t c = claim_of(w);
	__atomic_store_n(&w->claim, c + KIPC_PUSH_SLOTS + 1, __ATOMIC_SEQ_CST);
	cont_kipcd();
	if (got != 0)
		return 3;
	if (kipc_nop() == 0 || errno != ECONNRESET)
		return 4;
	return 0;
}

/* One holder's garbage claim word detaches it alone: another holder's
 * pushed receives that returned are kept, the rest of its messages stay
 * queued in order. */
TEST(garbage_claim_of_one_holder_leaves_the_others_exact)
{
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = push_words();
	ASSERT_NE(NULL, w);
	int64_t id = pushed_box(w, 12);
	ASSERT_LT(0, id);
	EXPECT_EQ(1, recv1(id, KIPC_F_NONBLOCK));
	EXPECT_EQ(2, recv1(id, KIPC_F_NONBLOCK));
	pid_t c = kt_fork(taskq_garbage, NULL);
	ASSERT_LT(0, c);
	EXPECT_EQ(0, kt_wait(c));
	EXPECT_EQ(9, nmsg(id));
	for (int64_t v = 3; v < 12; v++)
		EXPECT_EQ(v, recv1(id, KIPC_F_NONBLOCK));
	EXPECT_EQ(-EAGAIN, recv1(id, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, kipc_mbox_destroy(id));
}

/*
 * Exact-once with several pushed receivers at once: two on their own
 * mailboxes and one on its task queue, a sender for each, an intruder
 * receiving now and then from both mailboxes (kipcd gives it the
 * holder's next message), and the task queue's receiver taking every
 * 50th message through kipcd (receive(Q): its push taken back). Every
 * message is received once, each receiver's in the order sent.
 */
#define NMULTI 2000
#define NDEST 3
#define NPRIME 32 /* queued before the receivers start: their first receives complete at once */

struct multi {
	int64_t id[2];
	pid_t taskq;                 /* the task queue's receiver */
	pid_t sender[NDEST];
	struct kt_ledger *led;
	int primed[NDEST], sent_all, intruder_done;
	unsigned bad_order, local[NDEST], intruded;
};

struct multi_who {
	struct multi *m;
	uint32_t d;
};

static int multi_send1(struct multi *m, uint32_t d, uint32_t v)
{
	return d < 2 ? kipc_mbox_send(m->id[d], &v, sizeof v, 0, 0)
		     : kipc_send(m->taskq, &v, sizeof v, 0, 0);
}

static int multi_sender(void *arg)
{
	struct multi_who *who = arg;
	struct multi *m = who->m;
	uint32_t d = who->d;
	if (kipc_attach() < 0)
		return 1;
	for (uint32_t i = 0; i < NMULTI; i++) {
		if (i == NPRIME)
			__atomic_store_n(&m->primed[d], 1, __ATOMIC_SEQ_CST);
		if (multi_send1(m, d, d * NMULTI + i) == 0)
			kt_ledger_sent(m->led, d * NMULTI + i);
	}
	__atomic_fetch_add(&m->sent_all, 1, __ATOMIC_SEQ_CST);
	int64_t deadline = __ksft_now_ms() + 4 * KT_BOUND_MS;
	while (!__atomic_load_n(&m->intruder_done, __ATOMIC_SEQ_CST))
		if (__ksft_now_ms() > deadline)
			return 2;
		else
			sched_yield();
	return multi_send1(m, d, LSTOP) ? 3 : 0;
}

static int multi_intruder(void *arg)
{
	struct multi *m = arg;
	if (kipc_attach() < 0)
		return 1;
	uint32_t last[2] = {LSTOP, LSTOP};
	while (__atomic_load_n(&m->sent_all, __ATOMIC_SEQ_CST) < NDEST) {
		for (int d = 0; d < 2; d++) {
			uint32_t v;
			ssize_t n = kipc_mbox_receive(m->id[d], &v, sizeof v, NULL, KIPC_F_NONBLOCK);
			if (n < 0 && errno == EAGAIN)
				continue;
			if (n != sizeof v)
				return 2;
			if (!kt_ledger_received(m->led, v) || v / NMULTI != (uint32_t)d ||
			    (last[d] != LSTOP && v <= last[d]))
				__atomic_fetch_add(&m->bad_order, 1, __ATOMIC_SEQ_CST);
			last[d] = v;
			__atomic_fetch_add(&m->intruded, 1, __ATOMIC_SEQ_CST);
		}
		int64_t until = __ksft_now_ms() + 1;
		while (__ksft_now_ms() < until)
			sched_yield();
	}
	__atomic_store_n(&m->intruder_done, 1, __ATOMIC_SEQ_CST);
	return 0;
}

/* Receive destination d's messages until the stop, checking the order. */
static int multi_receive(struct multi *m, uint32_t d)
{
	struct kipc_push *w = push_words();
	if (!w)
		return -1;
	uint32_t last = LSTOP, n = 0;
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (!__atomic_load_n(&m->primed[d], __ATOMIC_SEQ_CST))
		if (__ksft_now_ms() > deadline)
			return -1;
		else
			sched_yield();
	for (;;) {
		uint32_t v;
		uint64_t before = claim_of(w);
		ssize_t r = d < 2 ? kipc_mbox_receive(m->id[d], &v, sizeof v, NULL, 0)
				  : n % 50 == 49 ? kipc_receive(m->sender[d], &v, sizeof v, NULL, 0)
						 : kipc_receive(KIPC_ANY, &v, sizeof v, NULL, 0);
		if (r != sizeof v)
			return -1;
		n++;
		if ((before >> 32) && claim_of(w) == before + 1)
			__atomic_fetch_add(&m->local[d], 1, __ATOMIC_SEQ_CST);
		if (v == LSTOP)
			return 0;
		if (!kt_ledger_received(m->led, v) || v / NMULTI != d || (last != LSTOP && v <= last))
			__atomic_fetch_add(&m->bad_order, 1, __ATOMIC_SEQ_CST);
		last = v;
	}
}

static int multi_mbox_receiver(void *arg)
{
	struct multi_who *who = arg;
	if (kipc_attach() < 0)
		return 1;
	return multi_receive(who->m, who->d) ? 2 : 0;
}

TEST(ledger_several_pushed_receivers_racing)
{
	ASSERT_EQ(0, kipc_attach());
	struct kt_ledger led;
	ASSERT_EQ(0, kt_ledger_init(&led, NDEST * NMULTI));
	struct multi *m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, m);
	memset(m, 0, sizeof *m);
	m->led = &led;
	m->taskq = getpid();
	m->id[0] = open_box(256, true);
	m->id[1] = open_box(256, true);
	ASSERT_LT(0, m->id[0]);
	ASSERT_LT(0, m->id[1]);
	struct multi_who who[NDEST] = {{m, 0}, {m, 1}, {m, 2}};
	pid_t r[2], s[NDEST];
	for (int d = 0; d < 2; d++) {
		r[d] = kt_fork(multi_mbox_receiver, &who[d]);
		ASSERT_LT(0, r[d]);
	}
	for (int d = 0; d < NDEST; d++) {
		s[d] = kt_fork(multi_sender, &who[d]);
		ASSERT_LT(0, s[d]);
		m->sender[d] = s[d];
	}
	pid_t in = kt_fork(multi_intruder, m);
	ASSERT_LT(0, in);
	EXPECT_EQ(0, multi_receive(m, 2));
	for (int d = 0; d < NDEST; d++)
		EXPECT_EQ(0, kt_wait(s[d]));
	EXPECT_EQ(0, kt_wait(in));
	for (int d = 0; d < 2; d++)
		EXPECT_EQ(0, kt_wait(r[d]));
	unsigned nsent = 0;
	EXPECT_EQ(0u, kt_ledger_check(&led, &nsent));
	EXPECT_EQ(NDEST * NMULTI, nsent);
	EXPECT_EQ(0u, m->bad_order);
	ksft_print("# pushed receives: %u, %u (mailboxes), %u (task queue); the intruder took %u\n",
		   m->local[0], m->local[1], m->local[2], m->intruded);
	/* the push path was taken (how often depends on who runs ahead) */
	EXPECT_LT(0u, m->local[0] + m->local[1] + m->local[2]);
	EXPECT_EQ(0, kipc_mbox_destroy(m->id[0]));
	EXPECT_EQ(0, kipc_mbox_destroy(m->id[1]));
	munmap(m, sizeof *m);
	kt_ledger_destroy(&led);
}

KIPC_TEST_MAIN
