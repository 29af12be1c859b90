// SPDX-License-Identifier: MIT
/*
 * Timeouts and cancellation racing delivery, in tight loops, with
 * exact-once accounting (signals racing delivery: signal_test; process
 * exit racing delivery: kipc-stress):
 *  - sender and receiver both use tiny random timeouts on a rendezvous
 *    task queue and on a one-slot mailbox: a send that timed out was
 *    withdrawn and is never received; every send that succeeded is
 *    received exactly once;
 *  - a receiver cancels each of its asynchronous receives right after
 *    submitting it: each receive either got one message (and the cancel
 *    found nothing) or was cancelled (and got none).
 */
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "kipc_test.h"

#define NMSG 2000
#define STOP 0xffffffffu
#define US 1000ll

static unsigned rnd(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 8;
}

struct link_ref {
	bool mbox;
	int64_t id; /* mailbox id, or the receiver's pid */
};

static int send_one(const struct link_ref *l, uint32_t v, int64_t timeout)
{
	if (l->mbox)
		return timeout ? kipc_mbox_send_timed(l->id, &v, sizeof v, 0, 0, timeout)
			       : kipc_mbox_send(l->id, &v, sizeof v, 0, 0);
	return timeout ? kipc_send_timed((pid_t)l->id, &v, sizeof v, 0, 0, timeout)
		       : kipc_send((pid_t)l->id, &v, sizeof v, 0, 0);
}

static ssize_t receive_one(const struct link_ref *l, uint32_t *v, int64_t timeout)
{
	if (l->mbox)
		return kipc_mbox_receive_timed(l->id, v, sizeof *v, NULL, 0, timeout);
	return kipc_receive_timed(KIPC_ANY, v, sizeof *v, NULL, 0, timeout);
}

/* Receiver: tiny timeouts until STOP; every message into the ledger. */
static int timed_receiver(const struct link_ref *l, struct kt_ledger *led,
			  struct kt_barrier *ready)
{
	unsigned seed = getpid();
	if (kipc_attach() < 0)
		return 100;
	if (!l->mbox) {
		struct kipc_mbox_attr a = kt_attr(0); /* rendezvous task queue */
		if (kipc_taskq_setattr(&a) < 0)
			return 101;
	}
	kt_post(ready, 1);
	for (;;) {
		uint32_t v;
		ssize_t n = receive_one(l, &v, (rnd(&seed) % 100) * US);
		if (n < 0) {
			if (errno != ETIMEDOUT)
				return 102;
			continue;
		}
		if (n != sizeof v)
			return 103;
		if (v == STOP)
			return 0;
		if (!kt_ledger_received(led, v))
			return 104;
	}
}

static void timeout_race(struct __test_metadata *_metadata, bool mbox)
{
	struct kt_ledger led;
	struct kt_barrier ready;
	struct link_ref l = {.mbox = mbox};
	ASSERT_EQ(0, kt_ledger_init(&led, NMSG));
	ASSERT_EQ(0, kt_barrier_init(&ready));
	if (mbox) {
		l.id = kt_shared_mbox(1); /* one slot */
		ASSERT_LT(0, l.id);
	}
	pid_t r = fork();
	ASSERT_LE(0, r);
	if (r == 0)
		_exit(timed_receiver(&l, &led, &ready));
	if (!mbox)
		l.id = r;
	ASSERT_EQ(0, kt_wait_post(&ready, 1));

	unsigned seed = 42, timedout = 0;
	for (uint32_t i = 0; i < NMSG; i++) {
		if (send_one(&l, i, 1 + (rnd(&seed) % 100) * US) == 0) {
			kt_ledger_sent(&led, i);
		} else {
			ASSERT_EQ(ETIMEDOUT, errno);
			timedout++;
		}
	}
	ASSERT_EQ(0, send_one(&l, STOP, 0));
	ASSERT_EQ(0, kt_wait(r));
	unsigned nsent;
	EXPECT_EQ(0, kt_ledger_check(&led, &nsent));
	TH_LOG("%u sent and received once, %u timed out and never seen", nsent, timedout);
	EXPECT_EQ(NMSG, nsent + timedout);
	if (mbox)
		kipc_mbox_destroy(l.id);
	kt_ledger_destroy(&led);
	kt_barrier_destroy(&ready);
}

TEST_TIMEOUT(timeouts_race_rendezvous_delivery, 120)
{
	timeout_race(_metadata, false);
}

TEST_TIMEOUT(timeouts_race_one_slot_mailbox, 120)
{
	timeout_race(_metadata, true);
}

/* Receiver: submit a receive and at once a cancel for it, until STOP. */
static int cancelling_receiver(struct kt_ledger *led, struct kt_barrier *ready,
			       unsigned *cancelled)
{
	if (kipc_attach() < 0)
		return 100;
	struct kipc_mbox_attr a = kt_attr(0);
	if (kipc_taskq_setattr(&a) < 0)
		return 101;
	uint32_t *buf = kipc_buf_alloc(sizeof *buf);
	if (!buf)
		return 102;
	kt_post(ready, 1);
	for (uint64_t ud = 1;; ud += 2) {
		struct kipc_sqe *sqe = kipc_get_sqe();
		if (!sqe)
			return 103;
		kipc_prep_receive(sqe, KIPC_ANY, buf, sizeof *buf, 0);
		kipc_sqe_set_data(sqe, ud);
		sqe = kipc_get_sqe();
		if (!sqe)
			return 104;
		kipc_prep_cancel(sqe, ud, 0);
		kipc_sqe_set_data(sqe, ud + 1);
		if (kipc_submit() != 2)
			return 105;
		int64_t rres = 1, cres = 1;
		for (int got = 0; got < 2; got++) {
			struct kipc_cqe *cqe;
			if (kipc_wait_cqe(&cqe) < 0)
				return 106;
			if (cqe->user_data == ud)
				rres = cqe->res;
			else if (cqe->user_data == ud + 1)
				cres = cqe->res;
			else
				return 107;
			kipc_cqe_seen(cqe);
		}
		if (rres >= 0) {
			/* it got a message: the cancel must have found nothing */
			if (rres != sizeof *buf || cres != -ENOENT)
				return 108;
			if (*buf == STOP)
				return 0;
			if (!kt_ledger_received(led, *buf))
				return 109;
		} else if (rres == -ECANCELED) {
			if (cres != 0)
				return 110;
			(*cancelled)++;
		} else {
			return 111;
		}
	}
}

TEST_TIMEOUT(cancel_races_delivery_exactly_once, 120)
{
	struct kt_ledger led;
	struct kt_barrier ready;
	ASSERT_EQ(0, kt_ledger_init(&led, NMSG));
	ASSERT_EQ(0, kt_barrier_init(&ready));
	unsigned *cancelled = mmap(NULL, sizeof *cancelled, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, cancelled);
	*cancelled = 0;
	pid_t r = fork();
	ASSERT_LE(0, r);
	if (r == 0)
		_exit(cancelling_receiver(&led, &ready, cancelled));
	ASSERT_EQ(0, kt_wait_post(&ready, 1));
	for (uint32_t i = 0; i < NMSG; i++) {
		ASSERT_EQ(0, kipc_send(r, &i, sizeof i, 0, 0));
		kt_ledger_sent(&led, i);
	}
	uint32_t stop = STOP;
	ASSERT_EQ(0, kipc_send(r, &stop, sizeof stop, 0, 0));
	ASSERT_EQ(0, kt_wait(r));
	unsigned c = *cancelled, nsent;
	munmap(cancelled, sizeof *cancelled);
	EXPECT_EQ(0, kt_ledger_check(&led, &nsent));
	EXPECT_EQ(NMSG, nsent);
	TH_LOG("%u messages received once; %u receives cancelled before delivery", nsent, c);
	kt_ledger_destroy(&led);
	kt_barrier_destroy(&ready);
}

KIPC_TEST_MAIN
