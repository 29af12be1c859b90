// SPDX-License-Identifier: MIT
/*
 * bundle_test: bundles (mbox_send_bundle) and multishot receives into a
 * provided-buffer ring (mbox_receive_multi), transport.md section 14,
 * against a real kipcd:
 *  - a stream of bundles into a multishot receive whose few buffers run
 *    out again and again: the exact-once ledger, in order;
 *  - hostile callers: garbage descriptors, buffers and rings outside the
 *    arena, a ring tail run past the kernel's head: each fails as
 *    documented and the messages stay queued;
 *  - the CQ full: the multishot ends EOVERFLOW, nothing lost;
 *  - the receiver killed while armed, the mailbox destroyed while armed:
 *    what it took is gone, the rest is queued in order (or EIDRM);
 *  - bundles that wait for room (no KIPC_F_NONBLOCK): one into a full
 *    mailbox completes whole as a receiver drains it, a timed one ends
 *    at its deadline with the exact count, hostile callers (a mailbox it
 *    may not send to, bad descriptors after a wait, huge counts, the
 *    mailbox destroyed and the caller killed while it waits);
 *  - bundles to a task queue (send_bundle): the good path, partial when
 *    full and nonblocking, one that waits completing whole as the
 *    receiver drains (listed as a waiting send_bundle), a timed one with
 *    the exact count, hostile callers (another user's pid: EPERM as
 *    send; a dead pid: ESRCH; a node-qualified pid: EXDEV; bad arrays),
 *    the caller killed and the receiver dying while it waits; next to
 *    credits for sends to that queue and its push (kept when the bundle
 *    has room or goes behind, taken back when it needs the room or goes
 *    ahead).
 */
/* a push or credits here go back only when a test takes them back
 * (push_idle_ms, credit_idle_ms) */
#define KT_BOOT_PARAMS "push_idle_ms=600000", "credit_idle_ms=600000"
#include "kipc_test.h"

#include <poll.h>
#include <sched.h>
#include <sys/wait.h>

#include <kipc/ring.h>
#include <sys/mman.h>

#define MS 1000000ll
#define NLEDGER 20000u
#define BUNDLE 32u

/* One completion within the bound, copied, or the test fails. */
static int wait1(struct kipc_cqe *out)
{
	struct kipc_cqe *cqe;
	if (kipc_wait_cqe_timeout(&cqe, KT_BOUND_MS * MS) < 0)
		return -1;
	*out = *cqe;
	kipc_cqe_seen(cqe);
	return 0;
}

/* A ring of n buffers of len bytes, all provided (bid i: bufs + i * len). */
struct ring {
	struct kipc_buf_ring *br;
	char *bufs;
	unsigned n, len, head;
};

static int ring_init(struct ring *r, unsigned n, unsigned len)
{
	r->br = kipc_buf_ring_alloc(n);
	r->bufs = kipc_buf_alloc((size_t)n * len);
	r->n = n;
	r->len = len;
	r->head = 0;
	if (!r->br || !r->bufs)
		return -1;
	for (unsigned i = 0; i < n; i++)
		kipc_buf_ring_add(r->br, n, r->bufs + (size_t)i * len, len, (uint16_t)i, i);
	kipc_buf_ring_advance(r->br, n);
	return 0;
}

static int arm(struct ring *r, int64_t id, uint64_t ud)
{
	struct kipc_sqe *sqe = kipc_get_sqe();
	if (!sqe)
		return -1;
	kipc_prep_mbox_receive_multi(sqe, id, r->br, r->n, r->head, 0);
	kipc_sqe_set_data(sqe, ud);
	return kipc_submit() == 1 ? 0 : -1;
}

/* The uint32_t in the buffer a completion used; our head moves past it. */
static uint32_t value_of(struct ring *r, const struct kipc_cqe *c)
{
	uint32_t v;
	memcpy(&v, r->bufs + (size_t)kipc_cqe_buffer_id(c) * r->len, sizeof v);
	r->head++;
	return v;
}

static void give_back(struct ring *r, const struct kipc_cqe *c)
{
	unsigned bid = kipc_cqe_buffer_id(c);
	kipc_buf_ring_add(r->br, r->n, r->bufs + (size_t)bid * r->len, r->len, (uint16_t)bid, 0);
	kipc_buf_ring_advance(r->br, 1);
}

/* Send values [from, to) in bundles, every other one nonblocking: a
 * blocking one waits for room and goes whole; a nonblocking one that
 * finds the mailbox full sends the next value as a send that waits, so
 * the order holds. 0, or -1. */
static int send_bundles(int64_t id, uint32_t from, uint32_t to, struct kt_ledger *led)
{
	struct kipc_bundle_desc *d = kipc_buf_alloc(BUNDLE * sizeof *d);
	uint32_t *vals = kipc_buf_alloc(BUNDLE * sizeof *vals);
	if (!d || !vals)
		return -1;
	for (unsigned i = 0; i < BUNDLE; i++)
		d[i] = (struct kipc_bundle_desc){kipc_buf_offset(&vals[i]), sizeof vals[i], 0};
	uint32_t next = from;
	for (unsigned round = 0; next < to; round++) {
		unsigned n = to - next < BUNDLE ? to - next : BUNDLE;
		unsigned flags = round % 2 ? KIPC_F_NONBLOCK : 0u;
		for (unsigned i = 0; i < n; i++)
			vals[i] = next + i;
		struct kipc_sqe *sqe = kipc_get_sqe();
		if (!sqe)
			return -1;
		kipc_prep_mbox_send_bundle(sqe, id, d, n, 0, flags);
		kipc_sqe_set_data(sqe, 7);
		struct kipc_cqe c;
		if (kipc_submit() != 1 || wait1(&c) < 0)
			return -1;
		if (!flags && (c.res != n || c.flags))
			return -1; /* a blocking bundle goes whole */
		int64_t went = c.res > 0 ? c.res : 0;
		if (c.res < 0 && c.res != -EAGAIN)
			return -1;
		if (c.res > 0 && c.res < n && (!(c.flags & KIPC_CQE_F_PARTIAL) || c.type != -EAGAIN))
			return -1;
		for (int64_t i = 0; i < went; i++)
			kt_ledger_sent(led, next + (uint32_t)i);
		next += (uint32_t)went;
		if (went < n) { /* full: this one waits for room */
			if (kipc_mbox_send(id, &next, sizeof next, 0, 0) < 0)
				return -1;
			kt_ledger_sent(led, next);
			next++;
		}
	}
	return 0;
}

struct stream {
	int64_t id;
	struct kt_ledger *led;
};

static int stream_sender(void *arg)
{
	struct stream *s = arg;
	if (kipc_attach() < 0)
		return 1;
	return send_bundles(s->id, 0, NLEDGER, s->led) ? 2 : 0;
}

/* Exact-once and in order: bundles into a multishot receive whose 8
 * buffers run out again and again (ENOBUFS, armed again from our head). */
TEST(ledger_bundles_into_a_multishot_receive)
{
	ASSERT_EQ(0, kipc_attach());
	struct kt_ledger led;
	ASSERT_EQ(0, kt_ledger_init(&led, NLEDGER));
	struct stream s = {kt_shared_mbox(64), &led};
	ASSERT_LT(0, s.id);
	struct ring r;
	ASSERT_EQ(0, ring_init(&r, 8, sizeof(uint32_t)));
	pid_t c = kt_fork(stream_sender, &s);
	ASSERT_LT(0, c);
	uint32_t expect = 0, rearms = 0, bad_order = 0;
	bool armed = false;
	while (expect < NLEDGER) {
		if (!armed) {
			ASSERT_EQ(0, arm(&r, s.id, 1));
			armed = true;
			rearms++;
		}
		struct kipc_cqe cq;
		ASSERT_EQ(0, wait1(&cq));
		ASSERT_EQ(1u, cq.user_data);
		if (cq.flags & KIPC_CQE_F_BUFFER) {
			ASSERT_EQ((int64_t)sizeof(uint32_t), cq.res);
			uint32_t v = value_of(&r, &cq);
			ASSERT_TRUE(kt_ledger_received(&led, v));
			bad_order += v != expect;
			expect = v + 1;
			give_back(&r, &cq); /* 8 buffers: a bundle of 32 runs them out */
		}
		if (!(cq.flags & KIPC_CQE_F_MORE)) {
			ASSERT_TRUE(cq.res == -ENOBUFS || cq.res == -EOVERFLOW)
				TH_LOG("multishot ended %lld", (long long)cq.res);
			armed = false;
		}
	}
	EXPECT_EQ(0, kt_wait(c));
	unsigned nsent = 0;
	EXPECT_EQ(0u, kt_ledger_check(&led, &nsent));
	EXPECT_EQ(NLEDGER, nsent);
	EXPECT_EQ(0u, bad_order);
	ksft_print("# armed %u times\n", rearms);
	if (armed) {
		EXPECT_EQ(0, kipc_cancel(1, 0));
		struct kipc_cqe cq;
		ASSERT_EQ(0, wait1(&cq));
		EXPECT_EQ(-ECANCELED, cq.res);
	}
	EXPECT_EQ(0, kipc_mbox_destroy(s.id));
	kt_ledger_destroy(&led);
}

static int64_t recv_u32(int64_t id)
{
	uint32_t v;
	ssize_t n = kipc_mbox_receive(id, &v, sizeof v, NULL, KIPC_F_NONBLOCK);
	return n == sizeof v ? (int64_t)v : n < 0 ? -errno : -EBADMSG;
}

/* Garbage from the caller: each fails as documented, nothing is lost. */
TEST(hostile_descriptors_and_rings)
{
	ASSERT_EQ(0, kipc_attach());
	int64_t id = kt_shared_mbox(64);
	ASSERT_LT(0, id);
	struct kipc_bundle_desc *d = kipc_buf_alloc(4 * sizeof *d);
	uint32_t *vals = kipc_buf_alloc(4 * sizeof *vals);
	ASSERT_NE(NULL, d);
	ASSERT_NE(NULL, vals);
	for (unsigned i = 0; i < 4; i++) {
		vals[i] = i;
		d[i] = (struct kipc_bundle_desc){kipc_buf_offset(&vals[i]), sizeof vals[i], 0};
	}
	d[2].addr = 1ull << 40; /* outside the arena */
	struct kipc_cqe c;
	struct kipc_sqe *sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_mbox_send_bundle(sqe, id, d, 4, 0, 0);
	ASSERT_EQ(1, kipc_submit());
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(2, c.res);
	EXPECT_TRUE(c.flags & KIPC_CQE_F_PARTIAL);
	EXPECT_EQ(-EFAULT, c.type);
	/* the array itself outside, or ragged */
	sqe = kipc_get_sqe();
	kipc_prep_mbox_send_bundle(sqe, id, d, 4, 0, 0);
	sqe->addr = ~0ull - 8;
	ASSERT_EQ(1, kipc_submit());
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(-EFAULT, c.res);
	sqe = kipc_get_sqe();
	kipc_prep_mbox_send_bundle(sqe, id, d, 4, 0, 0);
	sqe->len = 20;
	ASSERT_EQ(1, kipc_submit());
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(-EINVAL, c.res);

	/* a ring whose buffer points outside the arena */
	struct ring r;
	ASSERT_EQ(0, ring_init(&r, 4, sizeof(uint32_t)));
	KIPC_BUF_RING_BUF(r.br, 0)->addr = 1ull << 40;
	ASSERT_EQ(0, arm(&r, id, 2));
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(-EFAULT, c.res);
	EXPECT_FALSE(c.flags & KIPC_CQE_F_MORE);
	/* a tail run far past the head */
	KIPC_BUF_RING_BUF(r.br, 0)->addr = kipc_buf_offset(r.bufs);
	__atomic_store_n(&r.br->tail, 1000u, __ATOMIC_RELEASE);
	ASSERT_EQ(0, arm(&r, id, 3));
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(-EINVAL, c.res);
	/* the ring outside the arena, or not aligned */
	sqe = kipc_get_sqe();
	kipc_prep_mbox_receive_multi(sqe, id, r.br, 4, 0, 0);
	sqe->addr = ~0ull - 63; /* aligned, and far outside */
	ASSERT_EQ(1, kipc_submit());
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(-EFAULT, c.res);
	sqe = kipc_get_sqe();
	kipc_prep_mbox_receive_multi(sqe, id, r.br, 4, 0, 0);
	sqe->addr += 4;
	ASSERT_EQ(1, kipc_submit());
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(-EINVAL, c.res);
	/* every message that went is still queued, in order */
	EXPECT_EQ(0, recv_u32(id));
	EXPECT_EQ(1, recv_u32(id));
	EXPECT_EQ(-EAGAIN, recv_u32(id));

	/* the tail moved back while armed: the next message ends it, queued */
	__atomic_store_n(&r.br->tail, 4u, __ATOMIC_RELEASE);
	r.head = 0;
	ASSERT_EQ(0, arm(&r, id, 4));
	ASSERT_EQ(0, kt_wait_mbox(id, KT_RECEIVERS, 1, KT_BOUND_MS)); /* parked */
	__atomic_store_n(&r.br->tail, 200u, __ATOMIC_RELEASE);
	uint32_t v = 9;
	ASSERT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, 0));
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(4u, c.user_data);
	EXPECT_EQ(-EINVAL, c.res);
	EXPECT_EQ(9, recv_u32(id));
	EXPECT_EQ(0, kipc_mbox_destroy(id));
}

static int send_n(int64_t id, uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i < to; i++)
		if (kipc_mbox_send(id, &i, sizeof i, 0, 0) < 0)
			return -1;
	return 0;
}

struct range {
	int64_t id;
	uint32_t from, to;
};

static int range_sender(void *arg)
{
	struct range *g = arg;
	if (kipc_attach() < 0)
		return 1;
	return send_n(g->id, g->from, g->to) ? 2 : 0;
}

/* The receiver does not reap: its multishot ends EOVERFLOW when the CQ
 * is full; what did not fit stays queued, in order. */
TEST(full_cq_ends_the_multishot_and_loses_nothing)
{
	ASSERT_EQ(0, kipc_attach());
	int64_t id = kt_shared_mbox(1024);
	ASSERT_LT(0, id);
	struct ring r;
	ASSERT_EQ(0, ring_init(&r, 1024, sizeof(uint32_t)));
	ASSERT_EQ(0, arm(&r, id, 1));
	ASSERT_EQ(0, kt_wait_mbox(id, KT_RECEIVERS, 1, KT_BOUND_MS));
	struct range g = {id, 0, 1000};
	pid_t c = kt_fork(range_sender, &g);
	ASSERT_LT(0, c);
	EXPECT_EQ(0, kt_wait(c)); /* we reap nothing meanwhile */
	uint32_t got = 0;
	struct kipc_cqe cq;
	for (;;) {
		ASSERT_EQ(0, wait1(&cq));
		if (!(cq.flags & KIPC_CQE_F_MORE))
			break;
		ASSERT_EQ(got, value_of(&r, &cq));
		got++;
	}
	EXPECT_EQ(-EOVERFLOW, cq.res);
	ksft_print("# %u messages before the CQ was full\n", got);
	EXPECT_LT(100u, got);
	EXPECT_GT(1000u, got);
	for (uint32_t i = got; i < 1000; i++)
		ASSERT_EQ((int64_t)i, recv_u32(id));
	EXPECT_EQ(-EAGAIN, recv_u32(id));
	EXPECT_EQ(0, kipc_mbox_destroy(id));
}

struct victim {
	int64_t id;
	int up[2];
};

static int arm_and_wait(void *arg)
{
	struct victim *v = arg;
	if (kipc_attach() < 0)
		return 1;
	struct ring r;
	if (ring_init(&r, 128, sizeof(uint32_t)) < 0 || arm(&r, v->id, 1) < 0)
		return 2;
	struct kipc_cqe cq;
	if (wait1(&cq) < 0 || !(cq.flags & KIPC_CQE_F_MORE)) /* the first: we are armed */
		return 3;
	if (write(v->up[1], "a", 1) != 1)
		return 4;
	for (;;)
		pause(); /* killed armed, its completions unread */
}

/* The receiver killed with its multishot armed: what kipcd gave it is
 * counted received, the rest is queued in order; the mailbox destroyed
 * under an armed multishot ends it EIDRM. */
TEST(receiver_death_and_destroy_while_armed)
{
	ASSERT_EQ(0, kipc_attach());
	struct victim v;
	v.id = kt_shared_mbox(256);
	ASSERT_LT(0, v.id);
	ASSERT_EQ(0, pipe(v.up));
	pid_t c = kt_fork(arm_and_wait, &v);
	ASSERT_LT(0, c);
	ASSERT_EQ(0, kt_wait_mbox(v.id, KT_RECEIVERS, 1, KT_BOUND_MS));
	ASSERT_EQ(0, send_n(v.id, 0, 10));
	struct pollfd p = {.fd = v.up[0], .events = POLLIN};
	ASSERT_EQ(1, poll(&p, 1, KT_BOUND_MS));
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	/* kipcd saw the death: its multishot is gone, nothing more goes there */
	ASSERT_EQ(0, kt_wait_mbox(v.id, KT_RECEIVERS, 0, KT_BOUND_MS));
	ASSERT_EQ(0, send_n(v.id, 10, 100));
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(v.id, &st));
	EXPECT_EQ(10u, st.nreceived);
	EXPECT_EQ(90u, st.nmsg);
	for (uint32_t i = 10; i < 100; i++)
		ASSERT_EQ((int64_t)i, recv_u32(v.id));
	EXPECT_EQ(-EAGAIN, recv_u32(v.id));
	close(v.up[0]);
	close(v.up[1]);

	struct ring r;
	ASSERT_EQ(0, ring_init(&r, 4, sizeof(uint32_t)));
	ASSERT_EQ(0, arm(&r, v.id, 5));
	ASSERT_EQ(0, kt_wait_mbox(v.id, KT_RECEIVERS, 1, KT_BOUND_MS));
	EXPECT_EQ(0, kipc_mbox_destroy(v.id));
	struct kipc_cqe cq;
	ASSERT_EQ(0, wait1(&cq));
	EXPECT_EQ(5u, cq.user_data);
	EXPECT_EQ(-EIDRM, cq.res);
	EXPECT_FALSE(cq.flags & KIPC_CQE_F_MORE);
}

/* ---- next to send credits and receive push (transport.md 12, 13) --- */

static uint32_t credit_gen(const struct kipc_credit *c, int64_t id)
{
	uint32_t g = __atomic_load_n(&c->gen, __ATOMIC_ACQUIRE);
	return g && c->link == id ? g : 0;
}

static uint32_t push_gen(const struct kipc_push *w, int64_t id)
{
	uint64_t c = __atomic_load_n(&w->claim, __ATOMIC_ACQUIRE);
	return __atomic_load_n(&w->link, __ATOMIC_ACQUIRE) == id ? (uint32_t)(c >> 32) : 0;
}

/* Send primers (1000) until we hold at least 8 credits on id: how many
 * stay queued, or -1. */
static int earn_credits(int64_t id, const struct kipc_credit *c)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	int n = 0;
	while (__ksft_now_ms() < deadline) {
		uint32_t v = 1000;
		if (kipc_mbox_send(id, &v, sizeof v, 0, 0) < 0)
			return -1;
		n++;
		if (credit_gen(c, id) && c->limit >= 8)
			return n;
		/* timed: a plain receive may earn a push, whose end takes
		 * the credits on the mailbox back (push_uncap, transport.md 13) */
		if (kipc_mbox_receive_timed(id, &v, sizeof v, NULL, 0, 1000000000) != sizeof v ||
		    v != 1000)
			return -1;
		n--;
		sched_yield();
	}
	return -1;
}

/* Hold the push of the empty mailbox id with values [0, 5) queued, 0
 * received and [1, 5) pushed, not claimed. 0, or -1. */
static int earn_push(int64_t id, const struct kipc_push *w)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (!push_gen(w, id)) {
		uint32_t v = 1000;
		if (__ksft_now_ms() > deadline || kipc_mbox_send(id, &v, sizeof v, 0, 0) < 0 ||
		    kipc_mbox_receive(id, &v, sizeof v, NULL, 0) != sizeof v || v != 1000)
			return -1;
		sched_yield();
	}
	if (send_n(id, 0, 5) < 0 || kt_wait_push_slots(w, id, 5) < 0)
		return -1;
	return recv_u32(id) == 0 && push_gen(w, id) ? 0 : -1;
}

/* What the neighbour process does while we hold credits or a push. */
enum nb_mode {
	NB_ELSEWHERE, /* bundle [100, 108) to b, multishot them from b; bundle [200, 204) to a */
	NB_AHEAD,     /* bundle [200, 204) to a at priority 1 */
	NB_TAKE,      /* multishot the 4 messages queued in a */
	NB_FILL,      /* bundle [300, 332) to a: exits with how many went */
	NB_TQ_ROOM,   /* send_bundle [200, 204) to pid a */
	NB_TQ_AHEAD,  /* send_bundle [200, 204) to pid a at priority 1 */
	NB_TQ_FILL,   /* send_bundle [300, 332) to pid a: exits with how many went */
};

struct nb {
	int64_t a, b;
	enum nb_mode mode;
	struct kt_barrier up, down; /* ready, done / go, exit */
};

/* A nonblocking bundle of values [from, from + n) to mailbox id (pid: to
 * its task queue) at prio: the completion's res, or -1000. */
static int64_t bundle_to(bool pid, int64_t id, uint32_t from, unsigned n, unsigned prio)
{
	struct kipc_bundle_desc *d = kipc_buf_alloc(n * sizeof *d);
	uint32_t *vals = kipc_buf_alloc(n * sizeof *vals);
	struct kipc_sqe *sqe = kipc_get_sqe();
	struct kipc_cqe c;
	if (!d || !vals || !sqe)
		return -1000;
	for (unsigned i = 0; i < n; i++) {
		vals[i] = from + i;
		d[i] = (struct kipc_bundle_desc){kipc_buf_offset(&vals[i]), sizeof vals[i], 0};
	}
	if (pid)
		kipc_prep_send_bundle(sqe, (pid_t)id, d, n, prio, KIPC_F_NONBLOCK);
	else
		kipc_prep_mbox_send_bundle(sqe, id, d, n, prio, KIPC_F_NONBLOCK);
	if (kipc_submit() != 1 || wait1(&c) < 0)
		return -1000;
	return c.res;
}

static int64_t bundle_of(int64_t id, uint32_t from, unsigned n, unsigned prio)
{
	return bundle_to(false, id, from, n, prio);
}

/* Arm a multishot on id and take n values from it, from `from` on. 0, or -1. */
static int multishot_of(int64_t id, uint32_t from, unsigned n)
{
	struct ring r;
	if (ring_init(&r, 16, sizeof(uint32_t)) < 0 || arm(&r, id, 9) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		struct kipc_cqe c;
		if (wait1(&c) < 0 || !(c.flags & KIPC_CQE_F_MORE) || value_of(&r, &c) != from + i)
			return -1;
	}
	return 0;
}

static int neighbour(void *arg)
{
	struct nb *x = arg;
	if (kipc_attach() < 0)
		return 101;
	kt_post(&x->up, 1);
	if (kt_wait_post(&x->down, 1) < 0)
		return 102;
	int res = 0;
	switch (x->mode) {
	case NB_ELSEWHERE:
		if (bundle_of(x->b, 100, 8, 0) != 8 || multishot_of(x->b, 100, 8) < 0 ||
		    bundle_of(x->a, 200, 4, 0) != 4)
			return 103;
		break;
	case NB_AHEAD:
		if (bundle_of(x->a, 200, 4, 1) != 4)
			return 104;
		break;
	case NB_TAKE:
		if (multishot_of(x->a, 1, 4) < 0)
			return 105;
		break;
	case NB_FILL:
	case NB_TQ_FILL:
		res = (int)bundle_to(x->mode == NB_TQ_FILL, x->a, 300, 32, 0);
		if (res < 0 || res > 32)
			return 106;
		break;
	case NB_TQ_ROOM:
	case NB_TQ_AHEAD:
		if (bundle_to(true, x->a, 200, 4, x->mode == NB_TQ_AHEAD) != 4)
			return 108;
		break;
	}
	kt_post(&x->up, 1); /* done: checked before we exit (an exit takes every grant back) */
	if (kt_wait_post(&x->down, 1) < 0)
		return 107;
	return res;
}

/* Fork the neighbour; it is attached when this returns. */
static pid_t nb_start(struct __test_metadata *_metadata, struct nb *x, int64_t a, int64_t b,
		      enum nb_mode mode)
{
	*x = (struct nb){.a = a, .b = b, .mode = mode};
	ASSERT_EQ(0, kt_barrier_init(&x->up));
	ASSERT_EQ(0, kt_barrier_init(&x->down));
	pid_t c = kt_fork(neighbour, x);
	ASSERT_LT(0, c);
	ASSERT_EQ(0, kt_wait_post(&x->up, 1));
	return c;
}

/* Let it run its requests; 0 once they completed. */
static int nb_run(struct nb *x)
{
	kt_post(&x->down, 1);
	return kt_wait_post(&x->up, 1);
}

/* Let it exit: its exit status. */
static int nb_end(struct nb *x, pid_t c)
{
	kt_post(&x->down, 1);
	int st = kt_wait(c);
	kt_barrier_destroy(&x->up);
	kt_barrier_destroy(&x->down);
	return st;
}

/* Another process's bundles to another mailbox and to ours (with room
 * beyond our credits) and its multishot receive from another mailbox
 * take no credit back: they neither take the room ours hold nor change
 * a right. */
TEST(bundles_and_multishots_leave_credits_that_keep_their_room)
{
	ASSERT_EQ(0, kipc_attach());
	char *base = kt_region();
	ASSERT_NE(NULL, base);
	const struct kipc_credit *cw = (const void *)(base + KIPC_CREDIT_OFF);
	int64_t a = kt_shared_mbox(64), b = kt_shared_mbox(64);
	ASSERT_LT(0, a);
	ASSERT_LT(0, b);
	struct nb x;
	pid_t c = nb_start(_metadata, &x, a, b, NB_ELSEWHERE);
	int primers = earn_credits(a, cw);
	ASSERT_LT(0, primers);
	uint32_t gen = credit_gen(cw, a);
	ASSERT_EQ(0, nb_run(&x));
	EXPECT_EQ(gen, credit_gen(cw, a));
	/* our credit sends still go, after the neighbour's bundle */
	uint32_t v = 7;
	ASSERT_EQ(0, kipc_mbox_send(a, &v, sizeof v, 0, 0));
	for (int i = 0; i < primers; i++)
		EXPECT_EQ(1000, recv_u32(a));
	for (uint32_t i = 200; i < 204; i++)
		EXPECT_EQ((int64_t)i, recv_u32(a));
	EXPECT_EQ(7, recv_u32(a));
	EXPECT_EQ(-EAGAIN, recv_u32(a));
	EXPECT_EQ(-EAGAIN, recv_u32(b));
	EXPECT_EQ(0, nb_end(&x, c));
	EXPECT_EQ(0, kipc_mbox_destroy(a));
	EXPECT_EQ(0, kipc_mbox_destroy(b));
}

/* A bundle that needs the room our credits hold takes them back first:
 * it fills exactly the mailbox, and our next send finds it full. */
TEST(a_bundle_needing_the_credits_room_takes_them_back)
{
	ASSERT_EQ(0, kipc_attach());
	char *base = kt_region();
	ASSERT_NE(NULL, base);
	const struct kipc_credit *cw = (const void *)(base + KIPC_CREDIT_OFF);
	int64_t a = kt_shared_mbox(24);
	ASSERT_LT(0, a);
	struct nb x;
	pid_t c = nb_start(_metadata, &x, a, 0, NB_FILL);
	int primers = earn_credits(a, cw);
	ASSERT_LT(0, primers);
	ASSERT_EQ(0, nb_run(&x));
	EXPECT_EQ(0u, credit_gen(cw, a));
	uint32_t v = 7;
	EXPECT_EQ(-1, kipc_mbox_send(a, &v, sizeof v, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(24 - primers, nb_end(&x, c));
	for (int i = 0; i < primers; i++)
		EXPECT_EQ(1000, recv_u32(a));
	for (int i = 0; i < 24 - primers; i++)
		EXPECT_EQ(300 + i, recv_u32(a));
	EXPECT_EQ(-EAGAIN, recv_u32(a));
	EXPECT_EQ(0, kipc_mbox_destroy(a));
}

/* Another process's bundles to another mailbox and to ours at the
 * pushed messages' priority (they queue behind them) and its multishot
 * receive from another mailbox leave our push: we keep receiving
 * without kipcd, in order. */
TEST(bundles_behind_and_multishots_elsewhere_leave_the_push)
{
	ASSERT_EQ(0, kipc_attach());
	char *base = kt_region();
	ASSERT_NE(NULL, base);
	const struct kipc_push *pw = (const void *)(base + KIPC_PUSH_OFF);
	int64_t a = kt_shared_mbox(64), b = kt_shared_mbox(64);
	ASSERT_LT(0, a);
	ASSERT_LT(0, b);
	struct nb x;
	pid_t c = nb_start(_metadata, &x, a, b, NB_ELSEWHERE);
	ASSERT_EQ(0, earn_push(a, pw));
	uint32_t gen = push_gen(pw, a);
	ASSERT_EQ(0, nb_run(&x));
	EXPECT_EQ(gen, push_gen(pw, a));
	for (uint32_t i = 1; i < 5; i++)
		EXPECT_EQ((int64_t)i, recv_u32(a));
	for (uint32_t i = 200; i < 204; i++)
		EXPECT_EQ((int64_t)i, recv_u32(a));
	EXPECT_EQ(-EAGAIN, recv_u32(a));
	EXPECT_EQ(-EAGAIN, recv_u32(b));
	EXPECT_EQ(0, nb_end(&x, c));
	EXPECT_EQ(0, kipc_mbox_destroy(a));
	EXPECT_EQ(0, kipc_mbox_destroy(b));
}

/* A bundle of higher priority to our mailbox, and a multishot receive
 * from it, take the push back first: each finds the queue as if we had
 * no push (the bundle goes ahead; the multishot takes what we had not
 * claimed, in order), and our receives after them are exact. */
TEST(a_bundle_ahead_or_a_multishot_takes_the_push_back)
{
	ASSERT_EQ(0, kipc_attach());
	char *base = kt_region();
	ASSERT_NE(NULL, base);
	const struct kipc_push *pw = (const void *)(base + KIPC_PUSH_OFF);
	int64_t a = kt_shared_mbox(64);
	ASSERT_LT(0, a);
	struct nb x;
	pid_t c = nb_start(_metadata, &x, a, 0, NB_AHEAD);
	ASSERT_EQ(0, earn_push(a, pw));
	ASSERT_EQ(0, nb_run(&x));
	for (uint32_t i = 200; i < 204; i++)
		EXPECT_EQ((int64_t)i, recv_u32(a));
	for (uint32_t i = 1; i < 5; i++)
		EXPECT_EQ((int64_t)i, recv_u32(a));
	EXPECT_EQ(-EAGAIN, recv_u32(a));
	EXPECT_EQ(0, nb_end(&x, c));
	EXPECT_EQ(0, kipc_mbox_destroy(a));

	a = kt_shared_mbox(64);
	ASSERT_LT(0, a);
	c = nb_start(_metadata, &x, a, 0, NB_TAKE);
	ASSERT_EQ(0, earn_push(a, pw));
	ASSERT_EQ(0, nb_run(&x)); /* it took 1..4, in order */
	EXPECT_EQ(0u, push_gen(pw, a));
	EXPECT_EQ(-EAGAIN, recv_u32(a));
	EXPECT_EQ(0, nb_end(&x, c));
	EXPECT_EQ(0, kipc_mbox_destroy(a));
}

/* A bundle is one request: its messages carry its one send time (kipcd
 * reads CLOCK_REALTIME once per request), within the call's, and
 * msg_list sees each of them, in order. */
TEST(a_bundles_messages_carry_its_send_time)
{
	ASSERT_EQ(0, kipc_attach());
	int64_t id = kt_shared_mbox(64);
	ASSERT_LT(0, id);
	struct timespec t0, t1;
	clock_gettime(CLOCK_REALTIME, &t0);
	ASSERT_EQ(16, bundle_of(id, 0, 16, 0));
	clock_gettime(CLOCK_REALTIME, &t1);
	struct kipc_msg_info mi[16];
	ASSERT_EQ(16, kipc_msg_list(id, 0, mi, 16));
	int64_t a = t0.tv_sec * 1000000000ll + t0.tv_nsec, b = t1.tv_sec * 1000000000ll + t1.tv_nsec;
	for (int i = 0; i < 16; i++) {
		EXPECT_EQ(mi[0].stime, mi[i].stime);
		EXPECT_LE(a, mi[i].stime);
		EXPECT_GE(b, mi[i].stime);
		EXPECT_EQ(mi[0].seq + (uint64_t)i, mi[i].seq);
	}
	for (uint32_t i = 0; i < 16; i++)
		EXPECT_EQ((int64_t)i, recv_u32(id));
	EXPECT_EQ(0, kipc_mbox_destroy(id));
}

/* ---- a multishot receive of the own task queue (target KIPC_ANY) ---- */

#define NTQ 3000u

struct tq_sender {
	pid_t to;
};

/* Values [0, NTQ) to the task queue of to, then one call (NTQ) whose
 * reply must be NTQ + 1. */
static int tq_send(void *arg)
{
	struct tq_sender *t = arg;
	if (kipc_attach() < 0)
		return 1;
	for (uint32_t v = 0; v < NTQ; v++)
		if (kipc_send(t->to, &v, sizeof v, 0, 0) < 0)
			return 2;
	uint32_t req = NTQ, rep = 0;
	if (kipc_call(t->to, &req, sizeof req, &rep, sizeof rep, NULL, 0) != sizeof rep)
		return 3;
	return rep == NTQ + 1 ? 0 : 4;
}

/* Exact-once and in order from another process's sends, with its pid,
 * through 8 buffers that run out again and again (armed again from our
 * head); a call comes with its token, and our reply reaches the caller;
 * taskq_stat counts every message received. */
TEST(multishot_receive_of_the_own_task_queue)
{
	ASSERT_EQ(0, kipc_attach());
	struct kipc_taskq_stat st0;
	ASSERT_EQ(0, kipc_taskq_stat(&st0));
	struct ring r;
	ASSERT_EQ(0, ring_init(&r, 8, sizeof(uint32_t)));
	ASSERT_EQ(0, arm(&r, KIPC_ANY, 1));
	struct tq_sender t = {getpid()};
	pid_t c = kt_fork(tq_send, &t);
	ASSERT_LT(0, c);
	uint32_t next = 0;
	unsigned rearmed = 0;
	while (next <= NTQ) {
		struct kipc_cqe cq;
		ASSERT_EQ(0, wait1(&cq));
		ASSERT_EQ(1u, cq.user_data);
		if (cq.flags & KIPC_CQE_F_BUFFER) {
			ASSERT_EQ(c, cq.pid);
			uint32_t v = value_of(&r, &cq);
			ASSERT_EQ(next, v);
			if (v == NTQ) {
				ASSERT_TRUE(cq.flags & KIPC_CQE_F_CALL);
				uint32_t rep = NTQ + 1;
				ASSERT_EQ(0, kipc_reply(cq.token, &rep, sizeof rep, 0));
			} else {
				ASSERT_FALSE(cq.flags & KIPC_CQE_F_CALL);
			}
			next++;
			give_back(&r, &cq);
		}
		if (!(cq.flags & KIPC_CQE_F_MORE)) {
			ASSERT_TRUE(cq.res == -ENOBUFS || cq.res == -EOVERFLOW) TH_LOG("ended %lld", (long long)cq.res);
			ASSERT_EQ(0, arm(&r, KIPC_ANY, 1));
			rearmed++;
		}
	}
	EXPECT_EQ(0, kt_wait(c));
	ksft_print("# armed again %u times\n", rearmed);
	struct kipc_taskq_stat st;
	ASSERT_EQ(0, kipc_taskq_stat(&st));
	EXPECT_EQ(st0.nreceived + NTQ + 1, st.nreceived);
	EXPECT_EQ(0u, st.nmsg);
	EXPECT_EQ(1u, st.nreceivers); /* still armed */
	/* another task's queue is no target: only KIPC_ANY, or a mailbox */
	struct kipc_sqe *sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_mbox_receive_multi(sqe, -(int64_t)c, r.br, r.n, r.head, 0);
	kipc_sqe_set_data(sqe, 2);
	ASSERT_EQ(1, kipc_submit());
	struct kipc_cqe cq;
	ASSERT_EQ(0, wait1(&cq));
	EXPECT_EQ(2u, cq.user_data);
	EXPECT_EQ(-EINVAL, cq.res);
	ASSERT_EQ(0, kipc_cancel(1, 0));
	ASSERT_EQ(0, wait1(&cq));
	EXPECT_EQ(1u, cq.user_data);
	EXPECT_EQ(-ECANCELED, cq.res);
}

/* Our task queue's push held with messages pushed and not claimed: a
 * multishot receive of the queue takes it back first, then takes them,
 * in order, and none of them is received twice. */
TEST(a_task_queue_multishot_takes_its_push_back)
{
	ASSERT_EQ(0, kipc_attach());
	char *base = kt_region();
	ASSERT_NE(NULL, base);
	const struct kipc_push *pw = (const void *)(base + KIPC_PUSH_OFF);
	pid_t me = getpid();
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	uint32_t v = 1000;
	while (!push_gen(pw, KIPC_PUSH_TASKQ)) { /* a receive that completes at once earns it */
		ASSERT_GT(deadline, __ksft_now_ms());
		ASSERT_EQ(0, kipc_send(me, &v, sizeof v, 0, 0));
		ASSERT_EQ((ssize_t)sizeof v, kipc_receive(KIPC_ANY, &v, sizeof v, NULL, 0));
		sched_yield();
	}
	for (uint32_t i = 0; i < 5; i++)
		ASSERT_EQ(0, kipc_send(me, &i, sizeof i, 0, 0));
	ASSERT_EQ(0, kt_wait_push_slots(pw, KIPC_PUSH_TASKQ, 5));
	ASSERT_EQ((ssize_t)sizeof v, kipc_receive(KIPC_ANY, &v, sizeof v, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(0u, v);
	ASSERT_EQ(0, kt_wait_push_slots(pw, KIPC_PUSH_TASKQ, 4)); /* 1..4 pushed, not claimed */
	struct ring r;
	ASSERT_EQ(0, ring_init(&r, 8, sizeof(uint32_t)));
	ASSERT_EQ(0, arm(&r, KIPC_ANY, 3));
	for (uint32_t i = 1; i < 5; i++) {
		struct kipc_cqe cq;
		ASSERT_EQ(0, wait1(&cq));
		ASSERT_TRUE(cq.flags & KIPC_CQE_F_MORE);
		EXPECT_EQ(i, value_of(&r, &cq));
	}
	EXPECT_EQ(0u, push_gen(pw, KIPC_PUSH_TASKQ));
	EXPECT_EQ(-1, kipc_receive(KIPC_ANY, &v, sizeof v, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(0, kipc_cancel(3, 0));
	struct kipc_cqe cq;
	ASSERT_EQ(0, wait1(&cq));
	EXPECT_EQ(-ECANCELED, cq.res);
}

KIPC_TEST_MAIN

/* ---- bundles that wait for room ------------------------------------- */

/* A bundle of values [from, from + n) to mailbox id (pid: to its task
 * queue, send_bundle), flags (a timeout in ns when timeout_ns),
 * submitted with user_data ud: 0, or -1. */
static int submit_bundle_to(bool pid, int64_t id, uint32_t from, unsigned n, unsigned flags,
			    int64_t timeout_ns, uint64_t ud)
{
	struct kipc_bundle_desc *d = kipc_buf_alloc(n * sizeof *d);
	uint32_t *vals = kipc_buf_alloc(n * sizeof *vals);
	struct kipc_sqe *sqe = kipc_get_sqe();
	if (!d || !vals || !sqe)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		vals[i] = from + i;
		d[i] = (struct kipc_bundle_desc){kipc_buf_offset(&vals[i]), sizeof vals[i], 0};
	}
	if (pid)
		kipc_prep_send_bundle(sqe, (pid_t)id, d, n, 0, flags);
	else
		kipc_prep_mbox_send_bundle(sqe, id, d, n, 0, flags);
	if (timeout_ns)
		kipc_sqe_set_timeout(sqe, timeout_ns, 0);
	kipc_sqe_set_data(sqe, ud);
	return kipc_submit() == 1 ? 0 : -1;
}

static int submit_bundle(int64_t id, uint32_t from, unsigned n, unsigned flags,
			 int64_t timeout_ns, uint64_t ud)
{
	return submit_bundle_to(false, id, from, n, flags, timeout_ns, ud);
}

struct bsend {
	int64_t id;
	unsigned n;
};

/* A child: one blocking bundle of n values; exits 0 when all n went. */
static int blocking_sender(void *arg)
{
	struct bsend *b = arg;
	struct kipc_cqe c;
	if (kipc_attach() < 0 || submit_bundle(b->id, 0, b->n, 0, 0, 5) < 0)
		return 1;
	if (wait1(&c) < 0)
		return 3;
	return c.res == b->n && c.flags == 0 && c.user_data == 5 ? 0 : 4;
}

TEST(a_blocking_bundle_into_a_full_mailbox_completes_as_a_receiver_drains)
{
	ASSERT_EQ(0, kipc_attach());
	struct bsend b = {kt_shared_mbox(4), 200};
	ASSERT_LT(0, b.id);
	pid_t c = kt_fork(blocking_sender, &b);
	ASSERT_LT(0, c);
	/* 4 queued, the 5th waits as a blocked sender */
	ASSERT_EQ(0, kt_wait_mbox(b.id, KT_SENDERS, 1, KT_BOUND_MS));
	ASSERT_EQ(0, kt_wait_mbox(b.id, KT_NMSG, 4, KT_BOUND_MS));
	for (uint32_t i = 0; i < b.n; i++) {
		uint32_t v = ~0u;
		ASSERT_EQ((ssize_t)sizeof v,
			  kipc_mbox_receive_timed(b.id, &v, sizeof v, NULL, 0, KT_BOUND_MS * MS));
		ASSERT_EQ(i, v);
	}
	EXPECT_EQ(0, kt_wait(c));
	EXPECT_EQ(-EAGAIN, recv_u32(b.id));
	EXPECT_EQ(0, kt_wait_mbox(b.id, KT_SENDERS, 0, KT_BOUND_MS));
	EXPECT_EQ(0, kipc_mbox_destroy(b.id));
}

TEST(a_timed_bundle_times_out_with_the_exact_count)
{
	ASSERT_EQ(0, kipc_attach());
	int64_t id = kt_shared_mbox(4);
	ASSERT_LT(0, id);
	struct kipc_cqe c;
	ASSERT_EQ(0, submit_bundle(id, 0, 10, 0, 50 * MS, 6));
	ASSERT_EQ(0, wait1(&c)); /* at its deadline */
	EXPECT_EQ(6u, c.user_data);
	EXPECT_EQ(4, c.res);
	EXPECT_TRUE(c.flags & KIPC_CQE_F_PARTIAL);
	EXPECT_EQ(-ETIMEDOUT, c.type);
	EXPECT_EQ(0, kt_wait_mbox(id, KT_SENDERS, 0, KT_BOUND_MS));
	/* none went: the error alone */
	ASSERT_EQ(0, submit_bundle(id, 100, 3, 0, 10 * MS, 7));
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(-ETIMEDOUT, c.res);
	EXPECT_EQ(0u, c.flags);
	/* nonblocking: EAGAIN at once */
	ASSERT_EQ(0, submit_bundle(id, 100, 3, KIPC_F_NONBLOCK, 0, 8));
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(-EAGAIN, c.res);
	for (uint32_t i = 0; i < 4; i++)
		EXPECT_EQ(i, recv_u32(id));
	EXPECT_EQ(-EAGAIN, recv_u32(id));
	EXPECT_EQ(0, kipc_mbox_destroy(id));
}

static int nobody_bundle(void *arg)
{
	int64_t id = *(int64_t *)arg;
	struct kipc_cqe c;
	if (setgid(65534) < 0 || setuid(65534) < 0)
		return 100;
	if (kipc_attach() < 0 || submit_bundle(id, 0, 4, 0, 0, 9) < 0 || wait1(&c) < 0)
		return 101;
	return c.res == -EACCES && c.flags == 0 ? 0 : 102;
}

static int park_and_wait(void *arg)
{
	int64_t id = *(int64_t *)arg;
	struct kipc_cqe c;
	if (kipc_attach() < 0 || submit_bundle(id, 0, 8, 0, 0, 10) < 0)
		return 1;
	wait1(&c); /* killed while it waits */
	return 2;
}

/* Hostile callers of a bundle that waits: each fails as documented, and
 * what went is queued, in order, nothing else. */
TEST(hostile_blocking_bundles)
{
	ASSERT_EQ(0, kipc_attach());
	struct kipc_cqe c;
	/* a mailbox it may not send to: nothing goes, it does not wait */
	if (geteuid() == 0) {
		struct kipc_mbox_attr a = kt_shared_attr(2);
		a.mode = 0600;
		int64_t priv = kipc_mbox_open(NULL, 0, &a);
		ASSERT_LT(0, priv);
		pid_t n = kt_fork(nobody_bundle, &priv);
		ASSERT_LT(0, n);
		EXPECT_EQ(0, kt_wait(n));
		EXPECT_EQ(0, kt_wait_mbox(priv, KT_NMSG, 0, KT_BOUND_MS));
		EXPECT_EQ(0, kipc_mbox_destroy(priv));
	} else {
		ksft_print("# not root: the mailbox-it-may-not-send-to case skipped\n");
	}
	int64_t id = kt_shared_mbox(2);
	ASSERT_LT(0, id);
	/* huge counts, a ragged length, a stray word: EINVAL, nothing sent */
	unsigned lens[] = {(KIPC_BUNDLE_MAX + 1) * 16, 0xfffffff0u, 0, 24};
	for (unsigned i = 0; i < 4; i++) {
		struct kipc_bundle_desc *d = kipc_buf_alloc(sizeof *d);
		struct kipc_sqe *sqe = kipc_get_sqe();
		ASSERT_NE(NULL, d);
		ASSERT_NE(NULL, sqe);
		kipc_prep_mbox_send_bundle(sqe, id, d, 1, 0, 0);
		sqe->len = lens[i];
		ASSERT_EQ(1, kipc_submit());
		ASSERT_EQ(0, wait1(&c));
		EXPECT_EQ(i == 1 ? -EFAULT : -EINVAL, c.res) /* 4 GiB: past the arena first */
			TH_LOG("length %u", lens[i]);
	}
	/* a bad descriptor after a wait: the exact count, the rest never sent */
	struct kipc_bundle_desc *d = kipc_buf_alloc(5 * sizeof *d);
	uint32_t *vals = kipc_buf_alloc(5 * sizeof *vals);
	ASSERT_NE(NULL, d);
	ASSERT_NE(NULL, vals);
	for (unsigned i = 0; i < 5; i++) {
		vals[i] = 20 + i;
		d[i] = (struct kipc_bundle_desc){kipc_buf_offset(&vals[i]), sizeof vals[i], 0};
	}
	d[3].addr = 1ull << 40;
	struct kipc_sqe *sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_mbox_send_bundle(sqe, id, d, 5, 0, 0);
	kipc_sqe_set_data(sqe, 12);
	ASSERT_EQ(1, kipc_submit());
	ASSERT_EQ(0, kt_wait_mbox(id, KT_SENDERS, 1, KT_BOUND_MS)); /* 22 waits */
	EXPECT_EQ(20, recv_u32(id));
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(12u, c.user_data);
	EXPECT_EQ(3, c.res);
	EXPECT_TRUE(c.flags & KIPC_CQE_F_PARTIAL);
	EXPECT_EQ(-EFAULT, c.type);
	EXPECT_EQ(21, recv_u32(id));
	EXPECT_EQ(22, recv_u32(id));
	EXPECT_EQ(-EAGAIN, recv_u32(id));
	/* the caller killed while it waits: what went stays, nothing more */
	pid_t k = kt_fork(park_and_wait, &id);
	ASSERT_LT(0, k);
	ASSERT_EQ(0, kt_wait_mbox(id, KT_SENDERS, 1, KT_BOUND_MS));
	EXPECT_EQ(0, kill(k, SIGKILL));
	int st;
	EXPECT_EQ(k, waitpid(k, &st, 0));
	ASSERT_EQ(0, kt_wait_mbox(id, KT_SENDERS, 0, KT_BOUND_MS));
	EXPECT_EQ(0, recv_u32(id));
	EXPECT_EQ(1, recv_u32(id));
	EXPECT_EQ(-EAGAIN, recv_u32(id));
	/* the mailbox destroyed while it waits: EIDRM after the count */
	ASSERT_EQ(0, submit_bundle(id, 40, 4, 0, 0, 13));
	ASSERT_EQ(0, kt_wait_mbox(id, KT_SENDERS, 1, KT_BOUND_MS));
	EXPECT_EQ(0, kipc_mbox_destroy(id));
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(13u, c.user_data);
	EXPECT_EQ(2, c.res);
	EXPECT_TRUE(c.flags & KIPC_CQE_F_PARTIAL);
	EXPECT_EQ(-EIDRM, c.type);
	/* and a bundle to it now: nothing goes */
	ASSERT_EQ(0, submit_bundle(id, 50, 2, 0, 0, 14));
	ASSERT_EQ(0, wait1(&c));
	EXPECT_GT(0, c.res);
}

/* ---- bundles to a task queue (send_bundle) -------------------------- */

/* The own task queue bounded to cap messages. */
static int taskq_cap(uint32_t cap)
{
	struct kipc_mbox_attr a = kt_attr(cap);
	return kipc_taskq_setattr(&a);
}

/* The next value of the own task queue, within the bound: its sender in *from. */
static int64_t recv_q(pid_t *from, unsigned flags)
{
	uint32_t v;
	struct kipc_msginfo mi = {0};
	ssize_t n = kipc_receive_timed(KIPC_ANY, &v, sizeof v, &mi, flags, KT_BOUND_MS * MS);
	if (from)
		*from = mi.pid;
	return n == sizeof v ? (int64_t)v : n < 0 ? -errno : -EBADMSG;
}

/* A child's bundle to pid to and what its completion must be. */
struct tqb {
	pid_t to;
	uint32_t from;
	unsigned n, flags;
	int64_t timeout_ns;
	int64_t res, type; /* want: res, and type (-errno) when partial */
};

static int tq_bundle(void *arg)
{
	struct tqb *b = arg;
	struct kipc_cqe c;
	if (kipc_attach() < 0 ||
	    submit_bundle_to(true, b->to, b->from, b->n, b->flags, b->timeout_ns, 21) < 0)
		return 1;
	if (wait1(&c) < 0)
		return 2;
	if (c.user_data != 21 || c.res != b->res)
		return 3;
	bool partial = c.res > 0 && (unsigned)c.res < b->n;
	if (partial != !!(c.flags & KIPC_CQE_F_PARTIAL) || (partial && c.type != b->type))
		return 4;
	return 0;
}

TEST(a_bundle_to_a_task_queue_sends_each_as_send_partial_when_full)
{
	ASSERT_EQ(0, kipc_attach());
	ASSERT_EQ(0, taskq_cap(4));
	struct tqb b = {.to = getpid(), .from = 0, .n = 3, .flags = KIPC_F_NONBLOCK, .res = 3};
	pid_t c = kt_fork(tq_bundle, &b);
	ASSERT_LT(0, c);
	EXPECT_EQ(0, kt_wait(c));
	for (uint32_t i = 0; i < 3; i++) {
		pid_t from = 0;
		EXPECT_EQ(i, recv_q(&from, 0));
		EXPECT_EQ(c, from);
	}
	/* full and nonblocking: the first 4 go, the 5th fails EAGAIN */
	b = (struct tqb){.to = getpid(), .from = 10, .n = 10, .flags = KIPC_F_NONBLOCK,
			 .res = 4, .type = -EAGAIN};
	c = kt_fork(tq_bundle, &b);
	ASSERT_LT(0, c);
	EXPECT_EQ(0, kt_wait(c));
	struct kipc_taskq_stat st;
	ASSERT_EQ(0, kipc_taskq_stat(&st));
	EXPECT_EQ(4u, st.nmsg);
	EXPECT_EQ(0u, st.nsenders);
	for (uint32_t i = 10; i < 14; i++)
		EXPECT_EQ(i, recv_q(NULL, 0));
	EXPECT_EQ(-EAGAIN, recv_q(NULL, KIPC_F_NONBLOCK));
}

TEST(a_blocking_bundle_into_a_full_task_queue_completes_as_the_receiver_drains)
{
	ASSERT_EQ(0, kipc_attach());
	ASSERT_EQ(0, taskq_cap(4));
	struct tqb b = {.to = getpid(), .from = 0, .n = 200, .res = 200};
	pid_t c = kt_fork(tq_bundle, &b);
	ASSERT_LT(0, c);
	/* 4 queued, the 5th waits as a blocked sender, listed as the bundle's */
	ASSERT_EQ(0, kt_wait_taskq(KT_SENDERS, 1, KT_BOUND_MS));
	ASSERT_EQ(0, kt_wait_taskq(KT_NMSG, 4, KT_BOUND_MS));
	ASSERT_EQ(0, kt_wait_blocked(c, KIPC_SYS_send_bundle));
	struct kipc_waiter_info wi[4];
	ASSERT_EQ(1, kipc_waiter_list(getpid(), KIPC_INTRO_TASKQ, wi, 4));
	EXPECT_EQ(c, wi[0].pid);
	EXPECT_EQ(KIPC_WAITER_SENDER, wi[0].kind);
	EXPECT_EQ(KIPC_SYS_send_bundle, wi[0].op);
	for (uint32_t i = 0; i < b.n; i++) {
		pid_t from = 0;
		ASSERT_EQ(i, recv_q(&from, 0));
		ASSERT_EQ(c, from);
	}
	EXPECT_EQ(0, kt_wait(c));
	EXPECT_EQ(-EAGAIN, recv_q(NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, kt_wait_taskq(KT_SENDERS, 0, KT_BOUND_MS));
}

TEST(a_timed_bundle_to_a_task_queue_times_out_with_the_exact_count)
{
	ASSERT_EQ(0, kipc_attach());
	ASSERT_EQ(0, taskq_cap(4));
	struct tqb b = {.to = getpid(), .from = 0, .n = 10, .timeout_ns = 50 * MS, .res = 4,
			.type = -ETIMEDOUT};
	pid_t c = kt_fork(tq_bundle, &b);
	ASSERT_LT(0, c);
	EXPECT_EQ(0, kt_wait(c)); /* at its deadline */
	EXPECT_EQ(0, kt_wait_taskq(KT_SENDERS, 0, KT_BOUND_MS));
	/* none went: the error alone */
	b = (struct tqb){.to = getpid(), .from = 100, .n = 3, .timeout_ns = 10 * MS,
			 .res = -ETIMEDOUT};
	c = kt_fork(tq_bundle, &b);
	ASSERT_LT(0, c);
	EXPECT_EQ(0, kt_wait(c));
	for (uint32_t i = 0; i < 4; i++)
		EXPECT_EQ(i, recv_q(NULL, 0));
	EXPECT_EQ(-EAGAIN, recv_q(NULL, KIPC_F_NONBLOCK));
}

/* As another user: a send and a bundle to pid *arg fail alike (EPERM). */
static int other_user_sends(void *arg)
{
	pid_t to = *(pid_t *)arg;
	struct kipc_cqe c;
	uint32_t v = 1;
	if (kipc_send(to, &v, sizeof v, 0, KIPC_F_NONBLOCK) == 0 || errno != EPERM)
		return 10;
	if (submit_bundle_to(true, to, 0, 2, 0, 0, 22) < 0 || wait1(&c) < 0)
		return 11;
	return c.res == -EPERM && c.flags == 0 ? 0 : 12;
}

/* A bundle of one sqe to pid with the array length len (bytes): its result. */
static int64_t bundle_len(pid_t pid, unsigned len, uint64_t addr2)
{
	struct kipc_bundle_desc *d = kipc_buf_alloc(2 * sizeof *d);
	uint32_t *v = kipc_buf_alloc(sizeof *v);
	struct kipc_sqe *sqe = kipc_get_sqe();
	struct kipc_cqe c;
	if (!d || !v || !sqe)
		return -ENOMEM;
	d[0] = d[1] = (struct kipc_bundle_desc){kipc_buf_offset(v), sizeof *v, 0};
	kipc_prep_send_bundle(sqe, pid, d, 2, 0, KIPC_F_NONBLOCK);
	sqe->len = len;
	sqe->addr2 = addr2;
	if (kipc_submit() != 1 || wait1(&c) < 0)
		return -ETIME;
	return c.res;
}

/* A child that bounds its task queue to 2, says ready, and waits to die. */
static int small_receiver(void *arg)
{
	struct kt_barrier *b = arg;
	if (kipc_attach() < 0 || taskq_cap(2) < 0)
		return 1;
	kt_post(b, 1);
	for (;;)
		pause();
}

/* Hostile callers of a bundle to a task queue: each fails as send does,
 * and what went is queued, in order, nothing else. */
TEST(hostile_task_queue_bundles)
{
	ASSERT_EQ(0, kipc_attach());
	ASSERT_EQ(0, taskq_cap(2));
	pid_t me = getpid();
	struct kipc_cqe c;
	/* another user's pid: EPERM, as send says */
	if (geteuid() == 0)
		EXPECT_EQ(0, kt_as_user(UID_A, other_user_sends, &me));
	else
		ksft_print("# not root: the other-user case skipped\n");
	/* a dead pid: ESRCH, as send says */
	pid_t dead = kt_dead_pid(_metadata);
	uint32_t v = 1;
	EXPECT_EQ(-1, kipc_send(dead, &v, sizeof v, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(ESRCH, errno);
	ASSERT_EQ(0, submit_bundle_to(true, dead, 0, 2, 0, 0, 23));
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(-ESRCH, c.res);
	/* a node-qualified pid: bundles do not cross nodes; no pid at all */
	EXPECT_EQ(-EXDEV, bundle_len(KIPC_NET_PID(1, me), 32, 0));
	EXPECT_EQ(-EINVAL, bundle_len(0, 32, 0));
	/* the array: none, too many, ragged, outside the arena, a stray word */
	EXPECT_EQ(-EINVAL, bundle_len(me, 0, 0));
	EXPECT_EQ(-EINVAL, bundle_len(me, (KIPC_BUNDLE_MAX + 1) * 16, 0));
	EXPECT_EQ(-EINVAL, bundle_len(me, 24, 0));
	EXPECT_EQ(-EFAULT, bundle_len(me, 0xfffffff0u, 0));
	EXPECT_EQ(-EINVAL, bundle_len(me, 32, 8));
	EXPECT_EQ(-EAGAIN, recv_q(NULL, KIPC_F_NONBLOCK)); /* nothing went */
	/* a bad descriptor: the exact count, the rest never sent */
	struct kipc_bundle_desc *d = kipc_buf_alloc(3 * sizeof *d);
	uint32_t *vals = kipc_buf_alloc(3 * sizeof *vals);
	ASSERT_NE(NULL, d);
	ASSERT_NE(NULL, vals);
	for (unsigned i = 0; i < 3; i++) {
		vals[i] = 30 + i;
		d[i] = (struct kipc_bundle_desc){kipc_buf_offset(&vals[i]), sizeof vals[i], 0};
	}
	d[1].addr = 1ull << 40;
	struct kipc_sqe *sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_send_bundle(sqe, me, d, 3, 0, KIPC_F_NONBLOCK);
	ASSERT_EQ(1, kipc_submit());
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(1, c.res);
	EXPECT_TRUE(c.flags & KIPC_CQE_F_PARTIAL);
	EXPECT_EQ(-EFAULT, c.type);
	EXPECT_EQ(30, recv_q(NULL, 0));
	EXPECT_EQ(-EAGAIN, recv_q(NULL, KIPC_F_NONBLOCK));

	/* the caller killed while it waits: what went stays, nothing more */
	struct tqb b = {.to = me, .from = 0, .n = 8};
	pid_t k = kt_fork(tq_bundle, &b);
	ASSERT_LT(0, k);
	ASSERT_EQ(0, kt_wait_taskq(KT_SENDERS, 1, KT_BOUND_MS));
	EXPECT_EQ(0, kill(k, SIGKILL));
	int st;
	EXPECT_EQ(k, waitpid(k, &st, 0));
	ASSERT_EQ(0, kt_wait_taskq(KT_SENDERS, 0, KT_BOUND_MS));
	EXPECT_EQ(0, recv_q(NULL, 0));
	EXPECT_EQ(1, recv_q(NULL, 0));
	EXPECT_EQ(-EAGAIN, recv_q(NULL, KIPC_F_NONBLOCK));

	/* the receiver dies while it waits: ESRCH after the count */
	struct kt_barrier bar;
	pid_t r = kt_fork_ready(_metadata, &bar, small_receiver);
	ASSERT_EQ(0, submit_bundle_to(true, r, 0, 5, 0, 0, 24));
	ASSERT_EQ(0, kt_wait_blocked(me, KIPC_SYS_send_bundle));
	EXPECT_EQ(0, kill(r, SIGKILL));
	EXPECT_EQ(r, waitpid(r, &st, 0));
	kt_barrier_destroy(&bar);
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(24u, c.user_data);
	EXPECT_EQ(2, c.res);
	EXPECT_TRUE(c.flags & KIPC_CQE_F_PARTIAL);
	EXPECT_EQ(-ESRCH, c.type);
	/* and a bundle to it now: nothing goes */
	ASSERT_EQ(0, submit_bundle_to(true, r, 0, 2, 0, 0, 25));
	ASSERT_EQ(0, wait1(&c));
	EXPECT_EQ(-ESRCH, c.res);
}

/* Send primers (1000) to the own task queue until we hold at least 8
 * credits there: how many stay queued, or -1. */
static int earn_taskq_credits(const struct kipc_credit *c)
{
	pid_t me = getpid();
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	int n = 0;
	while (__ksft_now_ms() < deadline) {
		uint32_t v = 1000;
		if (kipc_send(me, &v, sizeof v, 0, 0) < 0)
			return -1;
		n++;
		if (credit_gen(c, me) && c->limit >= 8)
			return n;
		/* timed, as earn_credits() */
		if (kipc_receive_timed(KIPC_ANY, &v, sizeof v, NULL, 0, 1000000000) != sizeof v ||
		    v != 1000)
			return -1;
		n--;
		sched_yield();
	}
	return -1;
}

/* Another process's bundle to our task queue, with room beyond the
 * credits we hold there for sends to it, takes no credit back; one
 * that needs that room takes them back first and fills the queue
 * exactly (a bundle to a task queue is its n sends, credit.cc). */
TEST(task_queue_bundles_take_credits_back_only_for_room)
{
	ASSERT_EQ(0, kipc_attach());
	ASSERT_EQ(0, taskq_cap(64));
	char *base = kt_region();
	ASSERT_NE(NULL, base);
	const struct kipc_credit *cw = (const void *)(base + KIPC_CREDIT_OFF);
	pid_t me = getpid();
	struct nb x;
	pid_t c = nb_start(_metadata, &x, me, 0, NB_TQ_ROOM);
	int primers = earn_taskq_credits(cw);
	ASSERT_LT(0, primers);
	uint32_t gen = credit_gen(cw, me);
	ASSERT_EQ(0, nb_run(&x));
	EXPECT_EQ(gen, credit_gen(cw, me));
	uint32_t v = 7;
	ASSERT_EQ(0, kipc_send(me, &v, sizeof v, 0, 0)); /* a credit send, after the bundle */
	for (int i = 0; i < primers; i++)
		EXPECT_EQ(1000, recv_q(NULL, 0));
	for (uint32_t i = 200; i < 204; i++)
		EXPECT_EQ((int64_t)i, recv_q(NULL, 0));
	EXPECT_EQ(7, recv_q(NULL, 0));
	EXPECT_EQ(-EAGAIN, recv_q(NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, nb_end(&x, c));

	ASSERT_EQ(0, taskq_cap(24));
	c = nb_start(_metadata, &x, me, 0, NB_TQ_FILL);
	primers = earn_taskq_credits(cw);
	ASSERT_LT(0, primers);
	ASSERT_EQ(0, nb_run(&x));
	EXPECT_EQ(0u, credit_gen(cw, me));
	EXPECT_EQ(-1, kipc_send(me, &v, sizeof v, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(24 - primers, nb_end(&x, c));
	for (int i = 0; i < primers; i++)
		EXPECT_EQ(1000, recv_q(NULL, 0));
	for (int i = 0; i < 24 - primers; i++)
		EXPECT_EQ(300 + i, recv_q(NULL, 0));
	EXPECT_EQ(-EAGAIN, recv_q(NULL, KIPC_F_NONBLOCK));
}

/* Hold the push of the own (empty) task queue with [0, 5) sent, 0
 * received and [1, 5) pushed, not claimed. 0, or -1. */
static int earn_taskq_push(const struct kipc_push *w)
{
	pid_t me = getpid();
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	uint32_t v = 1000;
	while (!push_gen(w, KIPC_PUSH_TASKQ)) {
		if (__ksft_now_ms() > deadline || kipc_send(me, &v, sizeof v, 0, 0) < 0 ||
		    kipc_receive(KIPC_ANY, &v, sizeof v, NULL, 0) != sizeof v || v != 1000)
			return -1;
		sched_yield();
	}
	for (uint32_t i = 0; i < 5; i++)
		if (kipc_send(me, &i, sizeof i, 0, 0) < 0)
			return -1;
	if (kt_wait_push_slots(w, KIPC_PUSH_TASKQ, 5) < 0 ||
	    kipc_receive(KIPC_ANY, &v, sizeof v, NULL, KIPC_F_NONBLOCK) != sizeof v || v != 0)
		return -1; /* untimed: a receive the push serves */
	return push_gen(w, KIPC_PUSH_TASKQ) ? 0 : -1;
}

/* A bundle to our task queue behind the pushed messages leaves our push;
 * one of a higher priority goes ahead of them and takes it back first:
 * our receives after either are exact. */
TEST(task_queue_bundles_and_the_push)
{
	ASSERT_EQ(0, kipc_attach());
	ASSERT_EQ(0, taskq_cap(64));
	char *base = kt_region();
	ASSERT_NE(NULL, base);
	const struct kipc_push *pw = (const void *)(base + KIPC_PUSH_OFF);
	pid_t me = getpid();
	struct nb x;
	pid_t c = nb_start(_metadata, &x, me, 0, NB_TQ_ROOM);
	ASSERT_EQ(0, earn_taskq_push(pw));
	uint32_t gen = push_gen(pw, KIPC_PUSH_TASKQ);
	ASSERT_EQ(0, nb_run(&x));
	EXPECT_EQ(gen, push_gen(pw, KIPC_PUSH_TASKQ));
	for (uint32_t i = 1; i < 5; i++)
		EXPECT_EQ((int64_t)i, recv_q(NULL, 0));
	for (uint32_t i = 200; i < 204; i++)
		EXPECT_EQ((int64_t)i, recv_q(NULL, 0));
	EXPECT_EQ(-EAGAIN, recv_q(NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, nb_end(&x, c));

	c = nb_start(_metadata, &x, me, 0, NB_TQ_AHEAD);
	ASSERT_EQ(0, earn_taskq_push(pw));
	ASSERT_EQ(0, nb_run(&x));
	for (uint32_t i = 200; i < 204; i++)
		EXPECT_EQ((int64_t)i, recv_q(NULL, 0));
	for (uint32_t i = 1; i < 5; i++)
		EXPECT_EQ((int64_t)i, recv_q(NULL, 0));
	EXPECT_EQ(-EAGAIN, recv_q(NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, nb_end(&x, c));
}
