// SPDX-License-Identifier: MIT
/*
 * copy_test: the one-copy hand-over (transport.md section 3, "One copy").
 *
 * A send that finds a receiver waiting is copied by kipcd once, from the
 * sender's arena straight into the receiver's buffer (kipc_sysinfo's
 * nonecopy counts it), as is a reply to a caller; a send nobody takes
 * keeps the kernel's own copy. What must hold besides:
 *
 *  - the bytes arrive intact, 8 KiB, through a mailbox, a task queue,
 *    a call and its reply;
 *  - a forged send offset or length fails the forger EFAULT, and the
 *    waiting receiver neither wakes nor loses its turn;
 *  - a receiver whose buffer is forged fails EFAULT and takes nothing;
 *    one whose buffer is too small is refused and the message it was
 *    offered stays queued, with its bytes, even when the sender's arena
 *    changes afterwards; the send's success stays exact;
 *  - a process receiving its own send (one arena, where source and
 *    buffer may overlap, even be forged to the same bytes) goes through
 *    the kernel's copy;
 *  - a short message received after a long one into the same buffer
 *    writes its bytes and no others (mailbox, peek, System V, a reply);
 *  - a receiver killed while it waits loses nothing sent after its exit;
 *  - the ledger: every id sent is received exactly once while receives
 *    time out (are cancelled) all the time, racing the hand-overs.
 */
#include "kipc_test.h"

#include <kipc/mqueue.h>
#include <sched.h>

#define BIG 8192u

static int64_t box; /* set before the children fork */

static void fill(char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (char)(seed * 131u + i * 7u + (i >> 8));
}

static bool intact(const char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != (char)(seed * 131u + i * 7u + (i >> 8)))
			return false;
	return true;
}

static uint64_t onecopies(void)
{
	struct kipc_sysinfo si;
	if (kipc_sysinfo(&si) < 0)
		return UINT64_MAX;
	return si.nonecopy;
}

static int64_t big_box(uint32_t capacity)
{
	struct kipc_mbox_attr a = kt_shared_attr(capacity);
	a.msgsize = BIG;
	return kipc_mbox_open(NULL, 0, &a);
}

/* Receive one BIG message of pattern seed from box, or (taskq) from the
 * own task queue: exit status. */
static int receive_big(bool taskq, unsigned seed)
{
	static char buf[BIG];
	ssize_t n = taskq ? kipc_receive(KIPC_ANY, buf, sizeof buf, NULL, 0)
			  : kipc_mbox_receive(box, buf, sizeof buf, NULL, 0);
	if (n != (ssize_t)BIG)
		return 1;
	return intact(buf, BIG, seed) ? 0 : 2;
}

/* seed: arg */
static int receive_box(void *arg)
{
	return receive_big(false, (unsigned)(uintptr_t)arg);
}

static int receive_taskq(void *arg)
{
	return receive_big(true, (unsigned)(uintptr_t)arg);
}

/* Serve one call: a request of pattern 5, a reply of pattern 6. */
static int serve_call(void *arg)
{
	static char buf[BIG];
	struct kipc_msginfo info;
	(void)arg;
	ssize_t n = kipc_receive(KIPC_ANY, buf, sizeof buf, &info, 0);
	if (n != (ssize_t)BIG || !(info.flags & KIPC_CQE_F_CALL))
		return 1;
	if (!intact(buf, BIG, 5))
		return 2;
	fill(buf, BIG, 6);
	return kipc_reply(info.token, buf, BIG, 0) == 0 ? 0 : 3;
}

/* Attach; box: a new mailbox of BIG messages, a child waiting in
 * receive_box(seed) on it. The child, or -1. */
static pid_t box_receiver(unsigned seed)
{
	if (kipc_attach() < 0 || (box = big_box(4)) <= 0)
		return -1;
	pid_t pid = kt_fork(receive_box, (void *)(uintptr_t)seed);
	if (pid <= 0 || kt_wait_mbox(box, KT_RECEIVERS, 1, KT_BOUND_MS) < 0)
		return -1;
	return pid;
}

TEST(mailbox_handover_is_one_copy)
{
	static char buf[BIG];
	pid_t pid = box_receiver(1);
	ASSERT_LT(0, pid);
	uint64_t before = onecopies();
	fill(buf, BIG, 1);
	ASSERT_EQ(0, kipc_mbox_send(box, buf, BIG, 0, 0));
	EXPECT_EQ(0, kt_wait(pid));
	EXPECT_EQ(before + 1, onecopies());
	EXPECT_EQ(0, kipc_mbox_destroy(box));
}

TEST(task_queue_handover_is_one_copy)
{
	static char buf[BIG];
	ASSERT_EQ(0, kipc_attach());
	pid_t pid = kt_fork(receive_taskq, (void *)(uintptr_t)2);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, kt_wait_blocked(pid, KIPC_SYS_receive));
	uint64_t before = onecopies();
	fill(buf, BIG, 2);
	ASSERT_EQ(0, kipc_send(pid, buf, BIG, 0, 0));
	EXPECT_EQ(0, kt_wait(pid));
	EXPECT_EQ(before + 1, onecopies());
}

TEST(call_and_reply_are_one_copy_each)
{
	static char req[BIG], rep[BIG];
	struct kipc_msginfo info;
	ASSERT_EQ(0, kipc_attach());
	pid_t pid = kt_fork(serve_call, NULL);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, kt_wait_blocked(pid, KIPC_SYS_receive));
	uint64_t before = onecopies();
	fill(req, BIG, 5);
	ASSERT_EQ((ssize_t)BIG, kipc_call(pid, req, BIG, rep, BIG, &info, 0));
	EXPECT_TRUE(intact(rep, BIG, 6));
	EXPECT_EQ(0, kt_wait(pid));
	EXPECT_EQ(before + 2, onecopies());
}

/* Submit an async mailbox send of b's BIG bytes with addr and len forced
 * to the given values; its result. */
static int forged_send(struct __test_metadata *_metadata, char *b, uint64_t addr, uint32_t len)
{
	struct kipc_sqe *sqe = kipc_get_sqe();
	struct kipc_cqe *cqe;
	ASSERT_NE(NULL, sqe);
	kipc_prep_mbox_send(sqe, box, b, BIG, 0, 0);
	sqe->addr = addr;
	sqe->len = len;
	kipc_sqe_set_data(sqe, 0x5e);
	ASSERT_EQ(1, kipc_submit());
	ASSERT_EQ(0, kipc_wait_cqe(&cqe));
	EXPECT_EQ(0x5e, cqe->user_data);
	int res = cqe->res;
	kipc_cqe_seen(cqe);
	return res;
}

TEST(forged_send_offset_hurts_only_the_forger)
{
	static char buf[BIG];
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_attach());
	box = big_box(4);
	ASSERT_LT(0, box);
	char *b = kt_buf(_metadata, BIG);
	uint64_t off = kipc_buf_offset(b);
	pid_t pid = kt_fork(receive_box, (void *)(uintptr_t)3);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, kt_wait_mbox(box, KT_RECEIVERS, 1, KT_BOUND_MS));
	uint64_t before = onecopies();
	fill(b, BIG, 9);
	/* past the arena, wrapping, and a length running off its end */
	EXPECT_EQ(-EFAULT, forged_send(_metadata, b, UINT64_MAX - 16, BIG));
	EXPECT_EQ(-EFAULT, forged_send(_metadata, b, 1ull << 40, BIG));
	EXPECT_EQ(-EFAULT, forged_send(_metadata, b, off + (64ull << 20), 16));
	EXPECT_EQ(-EFAULT, forged_send(_metadata, b, off, UINT32_MAX));
	/* the receiver still waits, nothing was queued or copied */
	ASSERT_EQ(0, kipc_mbox_stat(box, &st));
	EXPECT_EQ(1, st.nreceivers);
	EXPECT_EQ(0, st.nmsg);
	EXPECT_EQ(before, onecopies());
	fill(buf, BIG, 3);
	ASSERT_EQ(0, kipc_mbox_send(box, buf, BIG, 0, 0));
	EXPECT_EQ(0, kt_wait(pid));
	EXPECT_EQ(before + 1, onecopies());
	kipc_buf_free(b);
	EXPECT_EQ(0, kipc_mbox_destroy(box));
}

/* One async receive on box into b (len bytes; addr forced when not 0):
 * its result. */
static int async_receive(char *b, uint32_t len, uint64_t addr)
{
	struct kipc_cqe *cqe;
	struct kipc_sqe *sqe = kipc_get_sqe();
	if (!sqe)
		return -ENOMEM;
	kipc_prep_mbox_receive(sqe, box, b, len, 0);
	if (addr)
		sqe->addr = addr;
	kipc_sqe_set_data(sqe, 0x7e);
	if (kipc_submit() != 1 || kipc_wait_cqe(&cqe) < 0)
		return -EIO;
	int res = cqe->user_data == 0x7e ? cqe->res : -EIO;
	kipc_cqe_seen(cqe);
	return res;
}

/* A hostile receiver: a forged buffer fails EFAULT at once; then a
 * buffer too small is refused when the message is offered (EMSGSIZE,
 * the message stays queued); then it receives it for real, pattern 4. */
static int forged_receiver(void *arg)
{
	static char buf[BIG];
	(void)arg;
	char *b = kipc_buf_alloc(BIG);
	if (!b)
		return 1;
	if (async_receive(b, BIG, 1ull << 40) != -EFAULT)
		return 2;
	if (async_receive(b, 16, 0) != -EMSGSIZE)
		return 3;
	ssize_t n = kipc_mbox_receive(box, buf, sizeof buf, NULL, 0);
	if (n != (ssize_t)BIG)
		return 4;
	return intact(buf, BIG, 4) ? 0 : 5;
}

TEST(refused_handover_keeps_the_kernels_copy)
{
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_attach());
	box = big_box(4);
	ASSERT_LT(0, box);
	pid_t pid = kt_fork(forged_receiver, NULL);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, kt_wait_mbox(box, KT_RECEIVERS, 1, KT_BOUND_MS));
	uint64_t before = onecopies();
	/* async, so that the sender's arena bytes can change afterwards */
	char *b = kt_buf(_metadata, BIG);
	fill(b, BIG, 4);
	struct kipc_sqe *sqe = kipc_get_sqe();
	struct kipc_cqe *cqe;
	ASSERT_NE(NULL, sqe);
	kipc_prep_mbox_send(sqe, box, b, BIG, 0, 0);
	ASSERT_EQ(1, kipc_submit());
	ASSERT_EQ(0, kipc_wait_cqe(&cqe));
	EXPECT_EQ(0, cqe->res); /* queued: the offered receiver was too small */
	kipc_cqe_seen(cqe);
	memset(b, 0xee, BIG);   /* the kernel kept its own copy */
	EXPECT_EQ(0, kt_wait(pid));
	EXPECT_EQ(before, onecopies());
	ASSERT_EQ(0, kipc_mbox_stat(box, &st));
	EXPECT_EQ(0, st.nmsg);
	kipc_buf_free(b);
	EXPECT_EQ(0, kipc_mbox_destroy(box));
}

TEST(own_arena_goes_through_the_kernel)
{
	struct kipc_cqe *cqe;
	ASSERT_EQ(0, kipc_attach());
	char *rb = kt_buf(_metadata, BIG);
	static char sb[BIG];
	uint64_t before = onecopies();

	/* an async receive of the own task queue, then a send to self */
	kt_submit_receive(_metadata, rb, BIG, 0x71);
	ASSERT_EQ(0, kt_wait_taskq(KT_RECEIVERS, 1, KT_BOUND_MS));
	fill(sb, BIG, 7);
	ASSERT_EQ(0, kipc_send(getpid(), sb, BIG, 0, 0));
	ASSERT_EQ(0, kipc_wait_cqe(&cqe));
	EXPECT_EQ(0x71, cqe->user_data);
	EXPECT_EQ((int)BIG, cqe->res);
	kipc_cqe_seen(cqe);
	EXPECT_TRUE(intact(rb, BIG, 7));

	/* forged: the send's payload is the receive buffer itself, and a
	 * half-overlapping one: the bytes come out as they were */
	for (uint64_t shift = 0; shift <= BIG / 2; shift += BIG / 2) {
		char *sbuf = kt_buf(_metadata, 2 * BIG);
		fill(sbuf, 2 * BIG, 8);
		kt_submit_receive(_metadata, sbuf + shift, BIG, 0x72);
		ASSERT_EQ(0, kt_wait_taskq(KT_RECEIVERS, 1, KT_BOUND_MS));
		struct kipc_sqe *sqe = kipc_get_sqe();
		ASSERT_NE(NULL, sqe);
		kipc_prep_send(sqe, getpid(), sbuf, BIG, 0, 0);
		kipc_sqe_set_data(sqe, 0x73);
		ASSERT_EQ(1, kipc_submit());
		int got = 0;
		for (int i = 0; i < 2; i++) {
			ASSERT_EQ(0, kipc_wait_cqe(&cqe));
			if (cqe->user_data == 0x72)
				EXPECT_EQ((int)BIG, cqe->res);
			else
				EXPECT_EQ(0, cqe->res);
			got |= cqe->user_data == 0x72 ? 1 : 2;
			kipc_cqe_seen(cqe);
		}
		EXPECT_EQ(3, got);
		static char want[2 * BIG];
		fill(want, 2 * BIG, 8);
		EXPECT_EQ(0, memcmp(sbuf + shift, want, BIG)) TH_LOG("shift %llu",
								 (unsigned long long)shift);
		kipc_buf_free(sbuf);
	}
	EXPECT_EQ(before, onecopies());
	kipc_buf_free(rb);
}

/*
 * A short message received after a long one into the same buffer: the
 * returned bytes are the message's, every byte past them is still the
 * caller's own (the library copies out only what the kernel wrote, never
 * the rest of an arena buffer an earlier message filled).
 */
#define MINE 0x5a
#define SHORT 16u

static void expect_short(struct __test_metadata *_metadata, const char *rb, ssize_t n,
			 unsigned seed, const char *what)
{
	EXPECT_EQ((ssize_t)SHORT, n) TH_LOG("%s", what);
	EXPECT_TRUE(intact(rb, SHORT, seed)) TH_LOG("%s", what);
	size_t i = SHORT;
	while (i < BIG && rb[i] == MINE)
		i++;
	EXPECT_EQ(BIG, i) TH_LOG("%s: byte %zu of the buffer written", what, i);
}

/* Serve two calls: a BIG reply of pattern 9, then a SHORT one of 10. */
static int serve_long_then_short(void *arg)
{
	static char buf[BIG];
	struct kipc_msginfo info;
	(void)arg;
	for (unsigned seed = 9; seed <= 10; seed++) {
		if (kipc_receive(KIPC_ANY, buf, sizeof buf, &info, 0) < 0 ||
		    !(info.flags & KIPC_CQE_F_CALL))
			return 1;
		fill(buf, BIG, seed);
		if (kipc_reply(info.token, buf, seed == 9 ? BIG : SHORT, 0))
			return 2;
	}
	return 0;
}

TEST(short_after_long_writes_only_its_bytes)
{
	static char sb[BIG], rb[BIG];
	const struct kipc_opts o = {0}; /* with options: never a pushed receive */
	ASSERT_EQ(0, kipc_attach());
	box = big_box(4);
	ASSERT_LT(0, box);

	/* a mailbox: pushed or not, through the kernel for certain */
	for (int x = 0; x < 2; x++) {
		fill(sb, BIG, 11);
		ASSERT_EQ(0, kipc_mbox_send(box, sb, BIG, 0, 0));
		ASSERT_EQ((ssize_t)BIG, kipc_mbox_receive_x(box, rb, BIG, NULL, 0, &o));
		ASSERT_TRUE(intact(rb, BIG, 11));
		memset(rb, MINE, BIG);
		fill(sb, BIG, 12);
		ASSERT_EQ(0, kipc_mbox_send(box, sb, SHORT, 0, 0));
		expect_short(_metadata, rb,
			     x ? kipc_mbox_receive(box, rb, BIG, NULL, 0)
			       : kipc_mbox_receive_x(box, rb, BIG, NULL, 0, &o),
			     12, x ? "mbox_receive" : "mbox_receive_x");
	}

	/* a peek of both (the kernel's result is the message's length) */
	fill(sb, BIG, 13);
	ASSERT_EQ(0, kipc_mbox_send(box, sb, BIG, 0, 0));
	ASSERT_EQ((ssize_t)BIG, kipc_mbox_peek(box, rb, BIG, NULL, 0));
	ASSERT_EQ((ssize_t)BIG, kipc_mbox_receive_x(box, rb, BIG, NULL, 0, &o));
	fill(sb, BIG, 14);
	ASSERT_EQ(0, kipc_mbox_send(box, sb, SHORT, 0, 0));
	memset(rb, MINE, BIG);
	expect_short(_metadata, rb, kipc_mbox_peek(box, rb, BIG, NULL, 0), 14, "mbox_peek");
	EXPECT_EQ((ssize_t)SHORT, kipc_mbox_receive_x(box, rb, BIG, NULL, 0, &o));
	EXPECT_EQ(0, kipc_mbox_destroy(box));

	/* System V */
	int q = kipc_msgget(0 /* IPC_PRIVATE */, KIPC_IPC_CREAT | 0600);
	ASSERT_LE(0, q);
	int64_t t;
	fill(sb, BIG, 15);
	ASSERT_EQ(0, kipc_msgsnd(q, 1, sb, BIG, 0));
	ASSERT_EQ((ssize_t)BIG, kipc_msgrcv(q, &t, rb, BIG, 0, 0));
	fill(sb, BIG, 16);
	ASSERT_EQ(0, kipc_msgsnd(q, 1, sb, SHORT, 0));
	memset(rb, MINE, BIG);
	expect_short(_metadata, rb, kipc_msgrcv(q, &t, rb, BIG, 0, 0), 16, "msgrcv");
	EXPECT_EQ(0, kipc_msgctl(q, KIPC_IPC_RMID, NULL, 0));

	/* a call's replies */
	pid_t pid = kt_fork(serve_long_then_short, NULL);
	ASSERT_LT(0, pid);
	ASSERT_EQ((ssize_t)BIG, kipc_call(pid, sb, 1, rb, BIG, NULL, 0));
	ASSERT_TRUE(intact(rb, BIG, 9));
	memset(rb, MINE, BIG);
	expect_short(_metadata, rb, kipc_call(pid, sb, 1, rb, BIG, NULL, 0), 10, "call");
	EXPECT_EQ(0, kt_wait(pid));
}

TEST(receiver_killed_while_waiting_loses_nothing)
{
	static char buf[BIG];
	pid_t pid = box_receiver(1);
	ASSERT_LT(0, pid);
	kill(pid, SIGKILL);
	EXPECT_EQ(128 + SIGKILL, kt_wait(pid));
	ASSERT_EQ(0, kt_wait_mbox(box, KT_RECEIVERS, 0, KT_BOUND_MS));
	fill(buf, BIG, 10);
	ASSERT_EQ(0, kipc_mbox_send(box, buf, BIG, 0, 0));
	memset(buf, 0, BIG);
	EXPECT_EQ((ssize_t)BIG, kipc_mbox_receive(box, buf, BIG, NULL, KIPC_F_NONBLOCK));
	EXPECT_TRUE(intact(buf, BIG, 10));
	EXPECT_EQ(0, kipc_mbox_destroy(box));
}

/* The ledger: NLEDGER messages of 1 KiB, the id first, its pattern after. */
#define NLEDGER 2000
#define LSIZE 1024u

static struct kt_ledger led;

static int ledger_sender(void *arg)
{
	static char buf[LSIZE];
	(void)arg;
	for (uint32_t i = 0; i < NLEDGER; i++) {
		/* an empty mailbox first: a receive is parked or about to
		 * time out, so the send races its deadline for a hand-over */
		struct kipc_mbox_stat st;
		do {
			if (kipc_mbox_stat(box, &st) < 0)
				return 2;
			if (st.nmsg)
				sched_yield();
		} while (st.nmsg);
		fill(buf, LSIZE, i);
		memcpy(buf, &i, sizeof i);
		if (kipc_mbox_send(box, buf, LSIZE, 0, 0) == 0)
			kt_ledger_sent(&led, i);
		else
			return 1;
	}
	return 0;
}

/* Receive with deadlines of a few microseconds (most receives time out
 * and are taken off the mailbox) until the stop message; 0 if every
 * message was whole. */
static int ledger_receiver(void *arg)
{
	static char buf[LSIZE];
	struct kipc_opts o = {.timeout = 2000};
	(void)arg;
	for (;;) {
		ssize_t n = kipc_mbox_receive_x(box, buf, LSIZE, NULL, KIPC_F_TIMEOUT, &o);
		if (n < 0) {
			if (errno != ETIMEDOUT)
				return 1;
			o.timeout = o.timeout < 64000 ? o.timeout * 2 : 2000;
			continue;
		}
		uint32_t id;
		if (n == 1)
			return 0; /* stop */
		if (n != (ssize_t)LSIZE)
			return 2;
		memcpy(&id, buf, sizeof id);
		char want[LSIZE];
		fill(want, LSIZE, id);
		memcpy(want, &id, sizeof id);
		if (memcmp(want, buf, LSIZE) || !kt_ledger_received(&led, id))
			return 3;
	}
}

TEST(ledger_handovers_racing_timed_out_receives)
{
	ASSERT_EQ(0, kt_ledger_init(&led, NLEDGER));
	ASSERT_EQ(0, kipc_attach());
	box = big_box(8);
	ASSERT_LT(0, box);
	uint64_t before = onecopies();
	pid_t r1 = kt_fork(ledger_receiver, NULL);
	pid_t r2 = kt_fork(ledger_receiver, NULL);
	pid_t s = kt_fork(ledger_sender, NULL);
	ASSERT_LT(0, r1);
	ASSERT_LT(0, r2);
	ASSERT_LT(0, s);
	EXPECT_EQ(0, kt_wait_ms(s, 60000));
	ASSERT_EQ(0, kipc_mbox_send(box, "x", 1, 0, 0));
	ASSERT_EQ(0, kipc_mbox_send(box, "x", 1, 0, 0));
	EXPECT_EQ(0, kt_wait_ms(r1, 60000));
	EXPECT_EQ(0, kt_wait_ms(r2, 60000));
	unsigned nsent;
	EXPECT_EQ(0, kt_ledger_check(&led, &nsent));
	EXPECT_EQ(NLEDGER, nsent);
	uint64_t n = onecopies() - before;
	ksft_print("# %llu of %u messages handed over in one copy\n", (unsigned long long)n,
		   NLEDGER + 2);
	EXPECT_GE(NLEDGER + 2, n);
	EXPECT_EQ(0, kipc_mbox_destroy(box));
	kt_ledger_destroy(&led);
}

KIPC_TEST_MAIN
