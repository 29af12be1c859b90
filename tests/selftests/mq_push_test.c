// SPDX-License-Identifier: MIT
/*
 * mq_push_test: receive push for POSIX queues (transport.md section 13,
 * "POSIX queues"). kipcd copies a queue's next messages into the region
 * of a process receiving from its own open, and its plain
 * mq_timedreceive of one that is not the last completes in the caller.
 * With kipcd stopped (SIGSTOP), so the receives that returned are only
 * claimed in shared memory:
 *  - they return in order; the queue's poll state is unchanged (a
 *    message is left) and the last message goes to kipcd, which empties
 *    the queue (and its POLLIN) itself;
 *  - a send that fills the queue, or of higher priority, takes the push
 *    back before it runs;
 *  - another user's process forging a grant in its own region fools
 *    only its own library: kipcd takes nothing for it;
 *  - a process that writes garbage in its claim word is detached, and
 *    every message pushed to it is still queued;
 *  - the exact-once ledger: a pushed receiver, another process's open
 *    receiving from the same queue, a sender.
 * The descriptors are made as libkipc-posix.so makes them (mqd_open).
 */
/* for stop_kipcd() and cont_kipcd(): its mailbox helpers are not used here */
#pragma GCC diagnostic ignored "-Wunused-function"
/* a push here goes back only when a test takes it back (push_idle_ms) */
#define KT_BOOT_PARAMS "push_idle_ms=600000"
#include "kt_helper.h"
#include "mq_helper.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/wait.h>

#include <kipc/mqueue.h>
#include <kipc/ring.h>

static struct kipc_push *words(char *r)
{
	return (struct kipc_push *)(r + KIPC_PUSH_OFF);
}

static uint64_t claim_of(const struct kipc_push *w)
{
	return __atomic_load_n(&w->claim, __ATOMIC_ACQUIRE);
}

static int send_range(const struct mqd *d, uint32_t from, uint32_t to, unsigned prio)
{
	for (uint32_t v = from; v < to; v++)
		if (kipc_mq_timedsend(d->h, d->fd, &v, sizeof v, prio, KIPC_F_NONBLOCK, 0) < 0)
			return -1;
	return 0;
}

/*
 * Earn the push of d's empty queue (a plain receive that completes at
 * once with a message earns it): send a primer and take it back until
 * the grant is ours. 0 or -1.
 */
static int await_push(const struct kipc_push *w, const struct mqd *d)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (__ksft_now_ms() < deadline) {
		if (send_range(d, 1000, 1001, 0) < 0 || mq_recv1(d, KIPC_F_NONBLOCK) != 1000)
			return -1;
		if ((claim_of(w) >> 32) &&
		    __atomic_load_n(&w->link, __ATOMIC_ACQUIRE) == KIPC_PUSH_MQ(d->h))
			return 0;
		sched_yield();
	}
	return -1;
}

/* A new queue d (named from tag) whose push we hold, values [0, n) sent
 * at prio and pushed. 0 or -1. */
static int pushed_queue(const struct kipc_push *w, char *name, size_t len, const char *tag,
			uint32_t n, unsigned prio, struct mqd *d)
{
	if (mqd_open(kt_name(name, len, tag), KIPC_MQ_RDWR | KIPC_O_CREAT, 10, d) < 0)
		return -1;
	return await_push(w, d) < 0 || send_range(d, 0, n, prio) < 0 ||
		       kt_wait_push_slots(w, KIPC_PUSH_MQ(d->h), n) < 0
		       ? -1
		       : 0;
}

struct last {
	const struct mqd *d;
	int64_t got;
};

static void *receive_last(void *arg)
{
	struct last *l = arg;
	l->got = mq_recv1(l->d, KIPC_F_NONBLOCK);
	return NULL;
}

/* Start receive_last() in thread t and wait until its request is in the
 * SQ of region r (kipcd stopped: it cannot take it): 1, 0 (not within
 * the bound), or -1 (no thread). */
static int receive_last_published(char *r, struct last *l, pthread_t *t)
{
	volatile uint32_t *sq_tail =
		(volatile uint32_t *)(r + offsetof(struct kipc_ring_ctl, sq_tail));
	uint32_t tail = *sq_tail;
	if (pthread_create(t, NULL, receive_last, l))
		return -1;
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (*sq_tail == tail && __ksft_now_ms() < deadline)
		sched_yield();
	return *sq_tail != tail;
}

/* Pushed receives return without kipcd, in order, and leave the poll
 * state alone; the last message is received by kipcd, which empties
 * the queue. */
TEST(pushed_mq_receives_complete_without_kipcd_but_the_last)
{
	char name[64];
	struct mqd d;
	ASSERT_EQ(0, kipc_attach());
	char *r = kt_region();
	ASSERT_NE(NULL, r);
	struct kipc_push *w = words(r);
	ASSERT_EQ(0, pushed_queue(w, name, sizeof name, "mqpush", 8, 0, &d));
	ASSERT_EQ(0, stop_kipcd());
	int64_t got[7];
	for (int i = 0; i < 7; i++)
		got[i] = mq_recv1(&d, KIPC_F_NONBLOCK);
	char st = kt_proc_state(kt_main_kernel.pid);
	short ev = poll_now(d.fd);
	uint64_t c = claim_of(w);
	/* the last: to kipcd (its entry is published; nothing claimed) */
	struct last l = {&d, -1};
	pthread_t t;
	int published = receive_last_published(r, &l, &t);
	ASSERT_LE(0, published);
	uint64_t c2 = claim_of(w);
	cont_kipcd();
	pthread_join(t, NULL);
	ASSERT_EQ('T', st); /* the seven returned while kipcd was stopped */
	for (int i = 0; i < 7; i++)
		EXPECT_EQ(i, got[i]);
	EXPECT_EQ(POLLIN | POLLOUT, ev); /* one left: as natively */
	EXPECT_TRUE(published);
	EXPECT_EQ(c, c2);
	EXPECT_EQ(7, l.got);
	EXPECT_EQ(POLLOUT, poll_now(d.fd)); /* kipcd emptied it */
	EXPECT_EQ(0, curmsgs(&d));
	EXPECT_EQ(-EAGAIN, mq_recv1(&d, KIPC_F_NONBLOCK));
	mqd_close(&d);
	kipc_mq_unlink(name);
}

/*
 * A send that fills the queue takes the push back first (a claim from a
 * full queue would give its descriptors POLLOUT outside kipcd): with
 * kipcd stopped, the next receive goes to kipcd, which gives POLLOUT
 * back itself.
 */
TEST(a_send_that_fills_the_queue_takes_the_push_back)
{
	char name[64];
	struct mqd d;
	ASSERT_EQ(0, kipc_attach());
	char *r = kt_region();
	ASSERT_NE(NULL, r);
	struct kipc_push *w = words(r);
	ASSERT_EQ(0, pushed_queue(w, name, sizeof name, "mqfill", 9, 0, &d));
	ASSERT_EQ(0, send_range(&d, 9, 10, 0)); /* the last slot */
	EXPECT_EQ(0u, claim_of(w) >> 32);       /* taken back before it */
	EXPECT_EQ(POLLIN, poll_now(d.fd));
	ASSERT_EQ(0, stop_kipcd());
	struct last l = {&d, -1};
	pthread_t t;
	int published = receive_last_published(r, &l, &t);
	ASSERT_LE(0, published);
	short ev = poll_now(d.fd);
	cont_kipcd();
	pthread_join(t, NULL);
	EXPECT_TRUE(published); /* to kipcd, not pushed */
	EXPECT_EQ(POLLIN, ev);  /* still full until kipcd took it */
	EXPECT_EQ(0, l.got);
	EXPECT_EQ(POLLIN | POLLOUT, poll_now(d.fd));
	for (int64_t i = 1; i < 10; i++)
		EXPECT_EQ(i, mq_recv1(&d, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, curmsgs(&d));
	mqd_close(&d);
	kipc_mq_unlink(name);
}

/* A send of higher priority takes the push back and is received next. */
TEST(a_send_of_higher_priority_takes_the_push_back_and_comes_next)
{
	char name[64];
	struct mqd d;
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = words(kt_region());
	ASSERT_EQ(0, pushed_queue(w, name, sizeof name, "mqprio", 6, 1, &d));
	EXPECT_EQ(0, mq_recv1(&d, KIPC_F_NONBLOCK));
	ASSERT_EQ(0, send_range(&d, 100, 101, 2));
	EXPECT_EQ(0u, claim_of(w) >> 32);
	EXPECT_EQ(100, mq_recv1(&d, KIPC_F_NONBLOCK));
	for (int64_t i = 1; i < 6; i++)
		EXPECT_EQ(i, mq_recv1(&d, KIPC_F_NONBLOCK));
	EXPECT_EQ(-EAGAIN, mq_recv1(&d, KIPC_F_NONBLOCK));
	mqd_close(&d);
	kipc_mq_unlink(name);
}

/* A nonblocking bundle of [from, from + n) to mailbox id (tq: our task
 * queue): its completion's res, or -1000. */
static int64_t bundle_to(bool tq, int64_t id, uint32_t from, unsigned n)
{
	struct kipc_bundle_desc *d = kipc_buf_alloc(n * sizeof *d);
	uint32_t *vals = kipc_buf_alloc(n * sizeof *vals);
	struct kipc_sqe *sqe = kipc_get_sqe();
	struct kipc_cqe *cqe;
	if (!d || !vals || !sqe)
		return -1000;
	for (unsigned i = 0; i < n; i++) {
		vals[i] = from + i;
		d[i] = (struct kipc_bundle_desc){kipc_buf_offset(&vals[i]), sizeof vals[i], 0};
	}
	if (tq)
		kipc_prep_send_bundle(sqe, (pid_t)id, d, n, 0, KIPC_F_NONBLOCK);
	else
		kipc_prep_mbox_send_bundle(sqe, id, d, n, 0, KIPC_F_NONBLOCK);
	if (kipc_submit() != 1 || kipc_wait_cqe_timeout(&cqe, KT_BOUND_MS * 1000000ll) < 0)
		return -1000;
	int64_t res = cqe->res;
	kipc_cqe_seen(cqe);
	kipc_buf_free(vals);
	kipc_buf_free(d);
	return res;
}

/*
 * Requests on mailboxes and task queues cannot change which message is
 * next on a POSIX queue: they leave its push alone (the same grant, no
 * claim moved), and its pushed receives go on in order.
 */
TEST(mailbox_and_task_queue_requests_leave_the_push_alone)
{
	char name[64];
	struct mqd d;
	ASSERT_EQ(0, kipc_attach());
	int64_t box = open_box(16, true);
	ASSERT_LT(0, box);
	struct kipc_push *w = words(kt_region());
	ASSERT_EQ(0, pushed_queue(w, name, sizeof name, "mqleave", 6, 0, &d));
	uint64_t c = claim_of(w);
	uint32_t v = 7;
	pid_t me = getpid();
	EXPECT_EQ(0, kipc_mbox_send(box, &v, sizeof v, 0, 0));
	EXPECT_EQ(3, bundle_to(false, box, 10, 3));
	EXPECT_EQ(0, kipc_send(me, &v, sizeof v, 0, 0));
	EXPECT_EQ(3, bundle_to(true, me, 20, 3));
	EXPECT_EQ(c, claim_of(w));
	EXPECT_EQ(7, recv1(box, KIPC_F_NONBLOCK));
	for (int64_t i = 10; i < 13; i++)
		EXPECT_EQ(i, recv1(box, KIPC_F_NONBLOCK));
	uint32_t got[4];
	for (int i = 0; i < 4; i++)
		EXPECT_EQ((ssize_t)sizeof v,
			  kipc_receive(KIPC_ANY, &got[i], sizeof got[i], NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(7u, got[0]);
	for (int i = 1; i < 4; i++)
		EXPECT_EQ(19u + i, got[i]);
	EXPECT_EQ(c, claim_of(w));
	ASSERT_EQ(0, stop_kipcd()); /* still ours: pushed receives without kipcd */
	int64_t m[5];
	for (int i = 0; i < 5; i++)
		m[i] = mq_recv1(&d, KIPC_F_NONBLOCK);
	char st = kt_proc_state(kt_main_kernel.pid);
	cont_kipcd();
	EXPECT_EQ('T', st);
	for (int i = 0; i < 5; i++)
		EXPECT_EQ(i, m[i]);
	EXPECT_EQ(5, mq_recv1(&d, KIPC_F_NONBLOCK));
	EXPECT_EQ(-EAGAIN, mq_recv1(&d, KIPC_F_NONBLOCK));
	mqd_close(&d);
	kipc_mq_unlink(name);
	EXPECT_EQ(0, kipc_mbox_destroy(box));
}

/* The credit words of region r: a grant for an mq_timedsend of open h? */
static int mq_credit_for(const char *r, int64_t h)
{
	const struct kipc_credit *c = (const struct kipc_credit *)(r + KIPC_CREDIT_OFF);
	return __atomic_load_n(&c->gen, __ATOMIC_ACQUIRE) && c->op == KIPC_SYS_mq_timedsend &&
	       c->link == h;
}

/*
 * A queue's only message (a lock step's) earns its send no credit and
 * is not pushed: the next receive would take both back (transport.md
 * sections 12, 13). With a second message queued the send earns
 * credits and both are pushed: a pushed receive and a credit send then
 * return with kipcd stopped, and everything comes out once, in order.
 */
TEST(a_queues_only_message_earns_no_credit_and_is_not_pushed)
{
	char name[64];
	struct mqd d;
	ASSERT_EQ(0, kipc_attach());
	char *r = kt_region();
	ASSERT_NE(NULL, r);
	struct kipc_push *w = words(r);
	ASSERT_EQ(0, mqd_open(kt_name(name, sizeof name, "mqonly"), KIPC_MQ_RDWR | KIPC_O_CREAT,
			      10, &d));
	ASSERT_EQ(0, await_push(w, &d));
	const struct kipc_push_slot *slots = (const struct kipc_push_slot *)(r + KIPC_PUSH_SLOT_OFF);
	uint64_t c = claim_of(w);
	uint64_t tag = __atomic_load_n(&slots[(uint32_t)c % KIPC_PUSH_SLOTS].cqe.user_data,
				       __ATOMIC_ACQUIRE);
	ASSERT_EQ(0, send_range(&d, 0, 1, 0));
	/* a request after the send's: kipcd is done with it (its push round too) */
	EXPECT_EQ(1, curmsgs(&d));
	EXPECT_EQ(0, mq_credit_for(r, d.h));
	EXPECT_EQ(c, claim_of(w)); /* the grant is still ours */
	EXPECT_EQ(tag, __atomic_load_n(&slots[(uint32_t)c % KIPC_PUSH_SLOTS].cqe.user_data,
				       __ATOMIC_ACQUIRE));
	EXPECT_NE(c, tag); /* nothing pushed */
	ASSERT_EQ(0, send_range(&d, 1, 2, 0));
	EXPECT_EQ(2, curmsgs(&d));
	EXPECT_EQ(1, mq_credit_for(r, d.h));
	ASSERT_EQ(0, kt_wait_push_slots(w, KIPC_PUSH_MQ(d.h), 2));
	ASSERT_EQ(0, stop_kipcd());
	int64_t got = mq_recv1(&d, KIPC_F_NONBLOCK); /* pushed */
	int sent = send_range(&d, 2, 3, 0);           /* a credit send */
	char st = kt_proc_state(kt_main_kernel.pid);
	cont_kipcd();
	EXPECT_EQ('T', st); /* both returned while kipcd was stopped */
	EXPECT_EQ(0, got);
	EXPECT_EQ(0, sent);
	for (int64_t i = 1; i < 3; i++)
		EXPECT_EQ(i, mq_recv1(&d, KIPC_F_NONBLOCK));
	EXPECT_EQ(-EAGAIN, mq_recv1(&d, KIPC_F_NONBLOCK));
	mqd_close(&d);
	kipc_mq_unlink(name);
}

/* A buffer below the queue's msgsize: EMSGSIZE as from kipcd, not a pushed message. */
TEST(a_buffer_below_msgsize_is_not_pushed)
{
	char name[64];
	struct mqd d;
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = words(kt_region());
	ASSERT_EQ(0, pushed_queue(w, name, sizeof name, "mqpush", 4, 0, &d));
	uint32_t v[8];
	EXPECT_EQ(-1, kipc_mq_timedreceive(d.h, d.fd, v, 32, NULL, KIPC_F_NONBLOCK, 0));
	EXPECT_EQ(EMSGSIZE, errno);
	EXPECT_EQ(4, curmsgs(&d));
	for (int64_t i = 0; i < 4; i++)
		EXPECT_EQ(i, mq_recv1(&d, KIPC_F_NONBLOCK));
	mqd_close(&d);
	kipc_mq_unlink(name);
}

struct forger {
	char name[64];
	int up[2];
};

/* Earn a push, claim what the kernel never pushed, make a request. */
static int forge_claim(void *arg)
{
	struct forger *f = arg;
	struct mqd d;
	if (kipc_attach() < 0 || mqd_open(f->name, KIPC_MQ_RDWR, 10, &d) < 0)
		return 1;
	struct kipc_push *w = words(kt_region());
	if (await_push(w, &d) < 0 || send_range(&d, 0, 6, 0) < 0 ||
	    kt_wait_push_slots(w, KIPC_PUSH_MQ(d.h), 6) < 0)
		return 2;
	uint64_t c = claim_of(w);
	__atomic_store_n(&w->claim, c + 40, __ATOMIC_SEQ_CST); /* past what was pushed */
	int64_t r = curmsgs(&d);
	if (write(f->up[1], &r, sizeof r) != sizeof r)
		return 3;
	return 0;
}

/* A claim word past what was pushed detaches its writer; every message
 * pushed to it is still queued. */
TEST(garbage_mq_claim_detaches_and_keeps_the_messages)
{
	struct forger f;
	struct mqd d;
	ASSERT_EQ(0, kipc_attach());
	kt_name(f.name, sizeof f.name, "mqforge");
	ASSERT_EQ(0, mqd_open(f.name, KIPC_MQ_RDWR | KIPC_O_CREAT, 10, &d));
	ASSERT_EQ(0, pipe(f.up));
	pid_t pid = kt_fork(forge_claim, &f);
	ASSERT_LT(0, pid);
	close(f.up[1]); /* a child that gives up is an end of file, not a hang */
	int64_t r = 0;
	ssize_t n = read(f.up[0], &r, sizeof r);
	ASSERT_EQ((ssize_t)sizeof r, n) TH_LOG("the forger exited %d", n ? -1 : kt_wait(pid));
	EXPECT_EQ(-ECONNRESET, r);
	EXPECT_EQ(0, kt_wait(pid));
	EXPECT_EQ(6, curmsgs(&d));
	for (int64_t i = 0; i < 6; i++)
		EXPECT_EQ(i, mq_recv1(&d, KIPC_F_NONBLOCK));
	close(f.up[0]);
	mqd_close(&d);
	kipc_mq_unlink(f.name);
}

struct intruder {
	char name[64];
	int up[2];
};

/*
 * Another user's process: its own open of the queue, a grant it forges
 * in its own push words (slots 0 and 1, a message 999 the queue never
 * held), a pushed receive of it, then a request, then a receive kipcd
 * serves. Writes what it saw: the forged receive, the queue's count,
 * the real receive.
 */
static int intrude(void *arg)
{
	struct intruder *in = arg;
	struct mqd d;
	if (mqd_open(in->name, KIPC_MQ_RDWR, 10, &d) < 0)
		return 1;
	char *r = kt_region();
	if (!r)
		return 2;
	struct kipc_push *w = words(r);
	struct kipc_push_slot *slots = (struct kipc_push_slot *)(r + KIPC_PUSH_SLOT_OFF);
	uint64_t gen = 0x7777;
	for (uint32_t k = 0; k < 2; k++) {
		uint32_t v = 999 + k;
		memcpy(slots[k].data, &v, sizeof v);
		slots[k].cqe.len = sizeof v;
		slots[k].cqe.res = sizeof v;
		__atomic_store_n(&slots[k].cqe.user_data, gen << 32 | k, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&w->msgsize, 64, __ATOMIC_RELAXED);
	__atomic_store_n(&w->link, KIPC_PUSH_MQ(d.h), __ATOMIC_RELEASE);
	__atomic_store_n(&w->claim, gen << 32, __ATOMIC_SEQ_CST);
	int64_t got[3];
	got[0] = mq_recv1(&d, KIPC_F_NONBLOCK); /* fools only this library */
	got[1] = curmsgs(&d);
	got[2] = mq_recv1(&d, KIPC_F_NONBLOCK); /* slot 2 empty: kipcd's */
	if (write(in->up[1], got, sizeof got) != sizeof got)
		return 3;
	return 0;
}

/*
 * A grant forged by another user's process in its own region fools only
 * its own library: kipcd, which never granted it, takes nothing for it,
 * the holder's messages stay queued, and that process's receive through
 * kipcd takes the holder's next message, once.
 */
TEST(a_forged_grant_of_another_user_fools_only_its_own_library)
{
	NEED_ROOT();
	struct intruder in;
	struct mqd d;
	ASSERT_EQ(0, kipc_attach());
	struct kipc_push *w = words(kt_region());
	ASSERT_EQ(0, pushed_queue(w, in.name, sizeof in.name, "mqintr", 6, 0, &d));
	ASSERT_EQ(0, pipe(in.up));
	pid_t pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int r = kt_become(UID_A);
		_exit(r ? r : intrude(&in));
	}
	close(in.up[1]); /* a child that gives up is an end of file, not a hang */
	int64_t got[3] = {-1, -1, -1};
	ssize_t n = read(in.up[0], got, sizeof got);
	ASSERT_EQ((ssize_t)sizeof got, n) TH_LOG("the intruder exited %d", n ? -1 : kt_wait(pid));
	EXPECT_EQ(0, kt_wait(pid));
	EXPECT_EQ(999, got[0]); /* its own library, fooled */
	EXPECT_EQ(6, got[1]);   /* nothing was taken for it */
	EXPECT_EQ(0, got[2]);   /* the head, through kipcd */
	for (int64_t i = 1; i < 6; i++)
		EXPECT_EQ(i, mq_recv1(&d, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, curmsgs(&d));
	close(in.up[0]);
	mqd_close(&d);
	kipc_mq_unlink(in.name);
}

#define LEDGER_N 3000u

struct ledger {
	char name[64];
	int out[2];   /* a receiver's values, then UINT32_MAX */
};

/* Receive until the stop value; write every value received. */
static int ledger_receiver(void *arg)
{
	struct ledger *l = arg;
	struct mqd d;
	if (kipc_attach() < 0 || mqd_open(l->name, KIPC_MQ_RDWR, 10, &d) < 0)
		return 1;
	for (;;) {
		int64_t v = mq_recv1(&d, 0);
		if (v < 0)
			return 2;
		uint32_t u = (uint32_t)v;
		if (write(l->out[1], &u, sizeof u) != sizeof u)
			return 3;
		if (u == UINT32_MAX)
			return 0;
	}
}

static int ledger_sender(void *arg)
{
	struct ledger *l = arg;
	struct mqd d;
	if (kipc_attach() < 0 || mqd_open(l->name, KIPC_MQ_WRONLY, 10, &d) < 0)
		return 1;
	for (uint32_t v = 0; v < LEDGER_N; v++)
		if (kipc_mq_timedsend(d.h, d.fd, &v, sizeof v, 0, 0, 0) < 0)
			return 2;
	uint32_t stop = UINT32_MAX;
	for (int i = 0; i < 2; i++)
		if (kipc_mq_timedsend(d.h, d.fd, &stop, sizeof stop, 0, 0, 0) < 0)
			return 3;
	return 0;
}

/*
 * Two receivers of one queue (each its own open and process; one of
 * them holds the push, the other's receives through kipcd take the
 * holder's next message), a sender: every value received exactly once,
 * each receiver's in increasing order.
 */
TEST(ledger_pushed_mq_receives_racing_another_open)
{
	struct ledger l[2];
	struct mqd d;
	ASSERT_EQ(0, kipc_attach());
	kt_name(l[0].name, sizeof l[0].name, "mqledger");
	ASSERT_EQ(0, mqd_open(l[0].name, KIPC_MQ_RDWR | KIPC_O_CREAT, 10, &d));
	memcpy(l[1].name, l[0].name, sizeof l[0].name);
	pid_t rp[2];
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, pipe(l[i].out));
		rp[i] = kt_fork(ledger_receiver, &l[i]);
		ASSERT_LT(0, rp[i]);
		close(l[i].out[1]);
	}
	pid_t sp = kt_fork(ledger_sender, &l[0]);
	ASSERT_LT(0, sp);
	static uint8_t seen[LEDGER_N];
	memset(seen, 0, sizeof seen);
	uint32_t total = 0;
	bool ordered = true;
	for (int i = 0; i < 2; i++) {
		uint32_t v, last = 0;
		bool first = true;
		while (read(l[i].out[0], &v, sizeof v) == sizeof v && v != UINT32_MAX) {
			if (v >= LEDGER_N)
				continue;
			if (!first && v <= last)
				ordered = false;
			first = false;
			last = v;
			seen[v]++;
			total++;
		}
		close(l[i].out[0]);
	}
	EXPECT_EQ(0, kt_wait(sp));
	for (int i = 0; i < 2; i++)
		EXPECT_EQ(0, kt_wait(rp[i]));
	EXPECT_EQ(LEDGER_N, total);
	uint32_t once = 0;
	for (uint32_t v = 0; v < LEDGER_N; v++)
		once += seen[v] == 1;
	EXPECT_EQ(LEDGER_N, once);
	EXPECT_TRUE(ordered);
	EXPECT_EQ(0, curmsgs(&d));
	mqd_close(&d);
	kipc_mq_unlink(l[0].name);
}

KIPC_TEST_MAIN
