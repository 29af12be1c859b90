// SPDX-License-Identifier: MIT
/*
 * garbage_test: hostile clients. A process attaches by hand over the
 * socket (following <kipc/ring.h>, without libkipc) and then sends bad
 * handshakes, bad submission entries, bad indices and random bytes over
 * its whole shared region. It may get errors or be detached; the kernel
 * and every other client must go on.
 *
 * The hostile side always runs in a child: the kernel knows a process by
 * its pid, and the parent checks the kernel through libkipc.
 */
#include "kipc_test.h"

#include <linux/futex.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include <kipc/ring.h>

#define MS 1000000ll

struct raw {
	int conn, doorbell, notify;
	void *map;
	size_t map_size;
	struct kipc_attach_resp resp;
	struct kipc_ring_ctl *ctl;
	struct kipc_sqe *sq;
	struct kipc_cqe *cq;
	uint8_t *arena;
};

/*
 * Send `len` bytes of req, read the answer. Returns the answer's length
 * (0: the kernel closed the connection), -1 on timeout or error.
 * Descriptors received go to fds (up to 3).
 */
static ssize_t raw_handshake(int fd, const void *req, size_t len,
			     struct kipc_attach_resp *resp, int fds[3], int *nfds)
{
	*nfds = 0;
	if (send(fd, req, len, MSG_NOSIGNAL) < 0)
		return -1;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, KT_BOUND_MS) != 1)
		return -1;
	/* Room for 3 descriptors: recvmsg closes any further ones (MSG_CTRUNC). */
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = {.iov_base = resp, .iov_len = sizeof *resp};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cbuf.buf, .msg_controllen = sizeof cbuf.buf};
	memset(resp, 0, sizeof *resp);
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == ECONNRESET ? 0 : -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh); /* the kernel sends one */
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
		*nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		memcpy(fds, CMSG_DATA(c), (size_t)*nfds * sizeof(int));
	}
	return n;
}

static struct kipc_attach_req good_req(void)
{
	struct kipc_attach_req r;
	memset(&r, 0, sizeof r);
	r.magic = KIPC_MAGIC;
	r.version_min = KIPC_PROTO_VERSION;
	r.version_max = KIPC_PROTO_VERSION;
	r.features = KIPC_FEAT_ALL;
	return r;
}

/* A full attach by hand. 0 or -1. */
static int raw_attach(struct raw *r)
{
	memset(r, 0, sizeof *r);
	r->conn = kt_connect(NULL, 0);
	if (r->conn < 0)
		return -1;
	struct kipc_attach_req req = good_req();
	int fds[3], nfds;
	ssize_t n = raw_handshake(r->conn, &req, sizeof req, &r->resp, fds, &nfds);
	if (n != sizeof r->resp || r->resp.error || nfds < 2)
		return -1;
	r->map_size = r->resp.map_size;
	r->map = mmap(NULL, r->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	close(fds[0]);
	if (r->map == MAP_FAILED)
		return -1;
	r->doorbell = fds[1];
	r->notify = nfds > 2 ? fds[2] : -1;
	r->ctl = r->map;
	r->sq = (struct kipc_sqe *)((char *)r->map + r->resp.sq_off);
	r->cq = (struct kipc_cqe *)((char *)r->map + r->resp.cq_off);
	r->arena = (uint8_t *)r->map + r->resp.arena_off;
	return 0;
}

static void raw_ring(struct raw *r)
{
	uint64_t one = 1;
	if (write(r->doorbell, &one, sizeof one) < 0) {
		/* saturated: the kernel will look anyway */
	}
}

/* Publish one SQE at the current tail. */
static void raw_submit(struct raw *r, const struct kipc_sqe *sqe)
{
	uint32_t tail = __atomic_load_n(&r->ctl->sq_tail, __ATOMIC_RELAXED);
	r->sq[tail & (r->resp.sq_entries - 1)] = *sqe;
	__atomic_store_n(&r->ctl->sq_tail, tail + 1, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	raw_ring(r);
}

/* Wait for the next CQE (bounded). 0 with *out, -1 on timeout/detach. */
static int raw_reap(struct raw *r, struct kipc_cqe *out)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	uint32_t head = __atomic_load_n(&r->ctl->cq_head, __ATOMIC_RELAXED);
	while (__atomic_load_n(&r->ctl->cq_tail, __ATOMIC_ACQUIRE) == head) {
		if (__ksft_now_ms() > deadline)
			return -1;
		if (__atomic_load_n(&r->ctl->sq_flags, __ATOMIC_ACQUIRE) & KIPC_SQ_DEAD)
			return -1;
		kt_sleep_ms(1);
	}
	*out = r->cq[head & (r->resp.cq_entries - 1)];
	__atomic_store_n(&r->ctl->cq_head, head + 1, __ATOMIC_RELEASE);
	return 0;
}

/* Submit a nop with user data ud; its completion into *cqe: 0, or -1. */
static int raw_nop_cqe(struct raw *r, uint64_t ud, struct kipc_cqe *cqe)
{
	struct kipc_sqe sqe;
	memset(&sqe, 0, sizeof sqe);
	sqe.opcode = KIPC_SYS_nop;
	sqe.user_data = ud;
	raw_submit(r, &sqe);
	return raw_reap(r, cqe);
}

/* One raw nop round trip. 0, or the step that failed. */
static int raw_nop(struct raw *r, uint64_t ud)
{
	struct kipc_cqe cqe;
	if (raw_nop_cqe(r, ud, &cqe) < 0)
		return 1;
	return cqe.user_data == ud && cqe.res == 0 ? 0 : 2;
}

/* The same, as checks: completed, with its user data, successfully. */
static void expect_nop(struct __test_metadata *_metadata, struct raw *r, uint64_t ud)
{
	struct kipc_cqe cqe;
	ASSERT_EQ(0, raw_nop_cqe(r, ud, &cqe));
	EXPECT_EQ(ud, cqe.user_data);
	EXPECT_EQ(0, cqe.res);
}

/* Is the kernel alive and serving (through libkipc, in the parent)? */
static void kernel_still_serves(struct __test_metadata *_metadata)
{
	EXPECT_EQ(0, kipc_nop()) TH_LOG("nop: %s", strerror(errno));
	/* and a fresh client can attach and work */
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		int64_t id = kipc_mbox_open(NULL, 0, NULL);
		char b[4];
		_exit(id > 0 && kipc_mbox_send(id, "ok", 2, 0, 0) == 0 &&
		      kipc_mbox_receive(id, b, sizeof b, NULL, 0) == 2 ? 0 : 1);
	}
	EXPECT_EQ(0, kt_wait(c));
}

/*
 * Run fn in a child attached by hand (the hostile side). The child must
 * end well (exit 0) and the kernel still serve (the parent, a new client).
 */
static void hostile(struct __test_metadata *_metadata,
		    void (*fn)(struct __test_metadata *, struct raw *))
{
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		struct raw r;
		ASSERT_EQ(0, raw_attach(&r));
		fn(_metadata, &r);
		_exit(0);
	}
	EXPECT_EQ(0, kt_wait(c));
	kernel_still_serves(_metadata);
}

/* ---- handshakes ---------------------------------------------------- */

static int bad_handshake(const void *req, size_t len)
{
	int fd = kt_connect(NULL, 0);
	if (fd < 0)
		return 100;
	struct kipc_attach_resp resp;
	int fds[3], nfds;
	ssize_t n = raw_handshake(fd, req, len, &resp, fds, &nfds);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	close(fd);
	if (n < 0)
		return 101; /* no answer at all: the kernel hung? */
	if (nfds > 0)
		return 102; /* it attached a bad request */
	if (n == 0)
		return 0;   /* closed: fine */
	return resp.error < 0 ? 0 : 103;
}

TEST(bad_handshakes_are_refused)
{
	ASSERT_EQ(0, kipc_attach());
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		struct kipc_attach_req q = good_req();
		int bad = 0;
		q.magic = 0x12345678;
		if (bad_handshake(&q, sizeof q))
			bad |= 1;
		q = good_req();
		q.version_min = q.version_max = 99;
		if (bad_handshake(&q, sizeof q))
			bad |= 2;
		q = good_req();
		q.version_min = 5;
		q.version_max = 1; /* empty range */
		if (bad_handshake(&q, sizeof q))
			bad |= 4;
		if (bad_handshake("abc", 3))
			bad |= 8;
		char big[4096];
		memset(big, 0xff, sizeof big);
		if (bad_handshake(big, sizeof big))
			bad |= 16;
		q = good_req();
		q.rsvd[0] = 0xdead;
		int v = bad_handshake(&q, sizeof q);
		if (v != 0 && v != 102) /* reserved: refuse or ignore */
			bad |= 32;
		_exit(bad);
	}
	EXPECT_EQ(0, kt_wait(c));
	kernel_still_serves(_metadata);
}

TEST(protocol_version_error_code)
{
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		int fd = kt_connect(NULL, 0);
		struct kipc_attach_req q = good_req();
		q.version_min = q.version_max = 99;
		struct kipc_attach_resp resp;
		int fds[3], nfds;
		ssize_t n = raw_handshake(fd, &q, sizeof q, &resp, fds, &nfds);
		_exit(n == sizeof resp && resp.error == -EPROTONOSUPPORT ? 0 : 1);
	}
	EXPECT_EQ(0, kt_wait(c));
}

static void hand_attach(struct __test_metadata *_metadata, struct raw *r)
{
	EXPECT_EQ(getpid(), r->resp.pid);
	EXPECT_EQ(KIPC_MAGIC, r->ctl->magic);
	expect_nop(_metadata, r, 1);
}

TEST(hand_attach_works)
{
	hostile(_metadata, hand_attach);
}


/* Wait (bounded) until the kernel has read everything sent on fd. */
static int raw_consumed(int fd)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	int unread;
	while (ioctl(fd, SIOCOUTQ, &unread) == 0 && unread > 0) {
		if (__ksft_now_ms() > deadline)
			return -1;
		kt_sleep_ms(1);
	}
	return unread == 0 ? 0 : -1;
}

static int second_attach_child(void *p)
{
	struct kt_barrier *b = p; /* b[0]: child -> parent, b[1]: parent -> child */
	struct raw r;
	if (raw_attach(&r) < 0)
		return 10;
	if (raw_nop(&r, 1))
		return 11;
	kt_post(&b[0], 1);
	if (kt_wait_post(&b[1], 1) < 0)
		return 12;
	/* a second, valid attach request on the attached connection */
	struct kipc_attach_req q = good_req();
	if (send(r.conn, &q, sizeof q, MSG_NOSIGNAL) != sizeof q)
		return 13;
	if (raw_consumed(r.conn) < 0)
		return 14; /* the kernel never read it */
	/* it got no answer: no response, no descriptors, no hangup */
	char buf[sizeof(struct kipc_attach_resp)];
	ssize_t n = recv(r.conn, buf, sizeof buf, MSG_DONTWAIT);
	if (n >= 0)
		return 15;
	if (errno != EAGAIN)
		return 16;
	/* and the first ring still works */
	if (raw_nop(&r, 2))
		return 17;
	kt_post(&b[0], 1);
	return kt_wait_post(&b[1], 1) < 0 ? 18 : 0;
}

/* How many tasks the kernel lists with this pid. */
static int tasks_with_pid(pid_t pid)
{
	struct kipc_task_info ti[256];
	ssize_t n = kipc_task_list(ti, 256);
	int k = 0;
	for (ssize_t i = 0; i < n && i < 256; i++)
		k += ti[i].pid == pid;
	return n < 0 ? -1 : k;
}

TEST(second_attach_is_not_a_second_task)
{
	struct kt_barrier b[2];
	ASSERT_EQ(0, kt_barrier_init(&b[0]));
	ASSERT_EQ(0, kt_barrier_init(&b[1]));
	pid_t c = kt_fork(second_attach_child, b);
	ASSERT_LT(0, c);
	ASSERT_EQ(0, kt_wait_post(&b[0], 1));
	struct kipc_task_info t0, t1;
	ASSERT_EQ(0, kipc_task_info(c, &t0));
	EXPECT_EQ(1, tasks_with_pid(c));
	kt_post(&b[1], 1);
	ASSERT_EQ(0, kt_wait_post(&b[0], 1));
	/* the same task: one entry, attached when it was, its requests counted */
	ASSERT_EQ(0, kipc_task_info(c, &t1));
	EXPECT_EQ(1, tasks_with_pid(c));
	EXPECT_EQ(t0.atime, t1.atime);
	EXPECT_EQ(KIPC_TASK_RUNNING, t1.state);
	kt_post(&b[1], 1);
	EXPECT_EQ(0, kt_wait(c));
	kernel_still_serves(_metadata);
}

/* ---- a client that does not reap ------------------------------------ */

/*
 * Publish sqes[0..n) as the SQ allows: wait (bounded) for the kernel to
 * take entries when the SQ is full. 0, or -1 if it stops taking them
 * before want entries in all were taken (want <= n).
 */
static int raw_push(struct raw *r, const struct kipc_sqe *sqes, uint32_t n, uint32_t want)
{
	uint32_t base = __atomic_load_n(&r->ctl->sq_tail, __ATOMIC_RELAXED);
	uint32_t i = 0;
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (i < n) {
		uint32_t head = __atomic_load_n(&r->ctl->sq_head, __ATOMIC_ACQUIRE);
		if (base + i - head < r->resp.sq_entries) {
			raw_submit(r, &sqes[i++]);
			continue;
		}
		if (head - base >= want)
			return 0; /* full, and taken as far as asked */
		if (__ksft_now_ms() > deadline)
			return -1;
		kt_sleep_ms(1);
	}
	while (__atomic_load_n(&r->ctl->sq_head, __ATOMIC_ACQUIRE) - base < want) {
		if (__ksft_now_ms() > deadline)
			return -1;
		kt_sleep_ms(1);
	}
	return 0;
}

/* Wait (bounded) until the kernel sets flag in sq_flags. 0 or -1. */
static int raw_wait_flag(struct raw *r, uint32_t flag)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (!(__atomic_load_n(&r->ctl->sq_flags, __ATOMIC_ACQUIRE) & flag)) {
		if (__ksft_now_ms() > deadline)
			return -1;
		kt_sleep_ms(1);
	}
	return 0;
}

/* Reap one CQE; ring first when completions wait in the kernel. */
static int raw_reap_ring(struct raw *r, struct kipc_cqe *out)
{
	if (__atomic_load_n(&r->ctl->sq_flags, __ATOMIC_ACQUIRE) & KIPC_SQ_CQ_OVERFLOW)
		raw_ring(r);
	return raw_reap(r, out);
}

/*
 * More completions than the CQ holds: the kernel keeps the rest (flag
 * CQ_OVERFLOW) and hands them over, in order, as the process reaps and
 * rings. None is lost or duplicated.
 */
static void cq_overflow(struct __test_metadata *_metadata, struct raw *r)
{
	uint32_t C = r->resp.cq_entries, n = C + r->resp.sq_entries;
	ASSERT_LT(n, r->resp.max_inflight + 1);
	struct kipc_sqe *sqes = calloc(n, sizeof *sqes);
	ASSERT_NE(NULL, sqes);
	for (uint32_t i = 0; i < n; i++) {
		sqes[i].opcode = KIPC_SYS_nop;
		sqes[i].user_data = 1000 + i;
	}
	ASSERT_EQ(0, raw_push(r, sqes, n, n));
	/* all taken, CQ full, the rest waits in the kernel */
	ASSERT_EQ(0, raw_wait_flag(r, KIPC_SQ_CQ_OVERFLOW));
	EXPECT_EQ(C, __atomic_load_n(&r->ctl->cq_tail, __ATOMIC_ACQUIRE) -
			     __atomic_load_n(&r->ctl->cq_head, __ATOMIC_RELAXED));
	for (uint32_t i = 0; i < n; i++) {
		struct kipc_cqe cqe;
		uint32_t head = __atomic_load_n(&r->ctl->cq_head, __ATOMIC_RELAXED);
		ASSERT_EQ(0, raw_reap_ring(r, &cqe)) TH_LOG("completion %u of %u", i, n);
		ASSERT_EQ(1000 + i, cqe.user_data);
		EXPECT_EQ(0, cqe.res);
		/* refilled from the overflow list: tagged as any other */
		EXPECT_EQ(KIPC_CQ_LAP(head, C), cqe.lap);
	}
	/* the kernel has handed over everything */
	raw_ring(r);
	EXPECT_EQ(0, raw_nop(r, 7));
	EXPECT_EQ(0, __atomic_load_n(&r->ctl->sq_flags, __ATOMIC_ACQUIRE) &
			     KIPC_SQ_CQ_OVERFLOW);
	free(sqes);
}

TEST(cq_overflow_keeps_every_completion)
{
	hostile(_metadata, cq_overflow);
}

/*
 * Lap tags (KIPC_FEAT_CQ_LAP): the kernel tags every CQE it writes with
 * its lap, over whatever the process left in the slot, and never reads a
 * tag back. Random bytes in every slot, then forged tags (the lap after
 * the one each slot gets next, or the one it gets next itself) change
 * nothing it does: over three laps of the CQ every completion is the
 * right one, carries its own lap, and cq_tail is still published.
 */
static void cq_laps(struct __test_metadata *_metadata, struct raw *r)
{
	uint32_t C = r->resp.cq_entries, S = r->resp.sq_entries;
	ASSERT_NE(0, r->resp.features & KIPC_FEAT_CQ_LAP);
	uint64_t x = 0x2545f4914f6cdd1dull ^ (uint64_t)getpid();
	uint64_t *w = (uint64_t *)r->cq;
	for (size_t i = 0; i < (size_t)C * sizeof(struct kipc_cqe) / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
	struct kipc_sqe *sqes = calloc(S, sizeof *sqes);
	ASSERT_NE(NULL, sqes);
	uint32_t ud = 5000;
	for (uint32_t batch = 0; batch < 3 * C / S; batch++) {
		uint32_t head = __atomic_load_n(&r->ctl->cq_head, __ATOMIC_RELAXED);
		for (uint32_t i = 0; i < S; i++) {
			memset(&sqes[i], 0, sizeof sqes[i]);
			sqes[i].opcode = KIPC_SYS_nop;
			sqes[i].user_data = ud + i;
			/* forge the slot: a tag the kernel must overwrite, or
			 * (every third batch) the very tag it will write */
			uint32_t h = head + i;
			r->cq[h & (C - 1)].lap = batch % 3 == 2 ? KIPC_CQ_LAP(h, C)
								: KIPC_CQ_LAP(h + C, C);
		}
		ASSERT_EQ(0, raw_push(r, sqes, S, S));
		for (uint32_t i = 0; i < S; i++) {
			struct kipc_cqe cqe;
			ASSERT_EQ(0, raw_reap(r, &cqe)) TH_LOG("batch %u, completion %u", batch, i);
			ASSERT_EQ(ud + i, cqe.user_data);
			EXPECT_EQ(0, cqe.res);
			EXPECT_EQ(KIPC_CQ_LAP(head + i, C), cqe.lap);
		}
		EXPECT_EQ(head + S, __atomic_load_n(&r->ctl->cq_tail, __ATOMIC_ACQUIRE));
		ud += S;
	}
	free(sqes);
	EXPECT_EQ(0, raw_nop(r, 9));
}

TEST(cq_lap_tags_are_written_never_read)
{
	hostile(_metadata, cq_laps);
}

struct stall_arg {
	int64_t id;            /* mailbox the receives wait on */
	struct kt_barrier *b;  /* b[0]: child -> parent, b[1]: parent -> child */
	uint32_t *max_inflight; /* shared: the child tells the parent */
};

#define STALL_EXTRA 4

/*
 * The child parks max_inflight receives and publishes STALL_EXTRA more;
 * the kernel stops reading the SQ at max_inflight, and takes one more
 * entry for each request that completes.
 */
static int stall_child(void *p)
{
	struct stall_arg *a = p;
	struct raw r;
	if (raw_attach(&r) < 0)
		return 10;
	uint32_t m = r.resp.max_inflight, n = m + STALL_EXTRA;
	if (m == 0 || n * 8 > r.resp.arena_size)
		return 11;
	struct kipc_sqe *sqes = calloc(n, sizeof *sqes);
	if (!sqes)
		return 12;
	for (uint32_t i = 0; i < n; i++) {
		sqes[i].opcode = KIPC_SYS_mbox_receive;
		sqes[i].target = a->id;
		sqes[i].addr = 8 * i;
		sqes[i].len = 8;
		sqes[i].user_data = 1 + i;
	}
	uint32_t base = __atomic_load_n(&r.ctl->sq_head, __ATOMIC_RELAXED);
	if (raw_push(&r, sqes, n, m) < 0)
		return 13; /* it stopped before max_inflight */
	free(sqes);
	*a->max_inflight = m;
	kt_post(&a->b[0], 1); /* parent: m receivers are parked */
	if (kt_wait_post(&a->b[1], 1) < 0)
		return 14;
	/* stalled: the extra entries were not taken */
	if (__atomic_load_n(&r.ctl->sq_head, __ATOMIC_ACQUIRE) - base != m)
		return 15;
	kt_post(&a->b[0], 1); /* parent: send one */
	struct kipc_cqe cqe;
	if (raw_reap_ring(&r, &cqe) < 0 || cqe.user_data != 1 || cqe.res != sizeof(int))
		return 16;
	kt_post(&a->b[0], 1); /* parent: one completed; m receivers again? */
	if (kt_wait_post(&a->b[1], 1) < 0)
		return 17;
	if (__atomic_load_n(&r.ctl->sq_head, __ATOMIC_ACQUIRE) - base != m + 1)
		return 18; /* exactly one more entry taken */
	kt_post(&a->b[0], 1); /* parent: send the rest */
	for (uint32_t i = 1; i < n; i++) {
		if (raw_reap_ring(&r, &cqe) < 0)
			return 19;
		int v;
		memcpy(&v, r.arena + 8 * (cqe.user_data - 1), sizeof v);
		if (cqe.user_data != 1 + i || cqe.res != sizeof v || v != (int)i)
			return 20; /* receivers are served in order */
	}
	return __atomic_load_n(&r.ctl->sq_head, __ATOMIC_ACQUIRE) - base == n ? 0 : 21;
}

TEST(inflight_limit_stalls_the_sq)
{
	int64_t id = kt_shared_mbox(0);
	ASSERT_LT(0, id);
	struct kt_barrier b[2];
	ASSERT_EQ(0, kt_barrier_init(&b[0]));
	ASSERT_EQ(0, kt_barrier_init(&b[1]));
	uint32_t *shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, shared);
	struct stall_arg a = {.id = id, .b = b, .max_inflight = shared};
	pid_t c = kt_fork(stall_child, &a);
	ASSERT_LT(0, c);
	ASSERT_EQ(0, kt_wait_post(&b[0], 1));
	uint32_t m = *shared;
	ASSERT_LT(0, m);
	/* the entries taken become parked receives */
	ASSERT_EQ(0, kt_wait_mbox(id, KT_RECEIVERS, m, KT_BOUND_MS));
	struct kipc_task_info ti;
	ASSERT_EQ(0, kipc_task_info(c, &ti));
	EXPECT_EQ(m, ti.nparked);
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(m, st.nreceivers);
	kt_post(&b[1], 1);
	ASSERT_EQ(0, kt_wait_post(&b[0], 1));
	int v = 0;
	ASSERT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, 0));
	ASSERT_EQ(0, kt_wait_post(&b[0], 1));
	/* the freed slot was taken by the next entry: m parked again */
	ASSERT_EQ(0, kt_wait_mbox(id, KT_RECEIVERS, m, KT_BOUND_MS));
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(m, st.nreceivers);
	kt_post(&b[1], 1);
	ASSERT_EQ(0, kt_wait_post(&b[0], 1));
	for (v = 1; v < (int)m + STALL_EXTRA; v++)
		ASSERT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, 0));
	EXPECT_EQ(0, kt_wait(c));
	munmap(shared, sizeof *shared);
	kipc_mbox_destroy(id);
	kernel_still_serves(_metadata);
}

/* ---- bad entries ----------------------------------------------------- */

static void garbage_sqes(struct __test_metadata *_metadata, struct raw *r)
{
	struct kipc_sqe bad[8];
	memset(bad, 0, sizeof bad);
	bad[0].opcode = 200;                       /* no such syscall */
	bad[1].opcode = KIPC_SYS_send;             /* payload outside the arena */
	bad[1].target = getpid();
	bad[1].addr = r->resp.arena_size + 4096;
	bad[1].len = 16;
	bad[2].opcode = KIPC_SYS_send;             /* offset + len wraps */
	bad[2].target = getpid();
	bad[2].addr = UINT64_MAX - 8;
	bad[2].len = 64;
	bad[3].opcode = KIPC_SYS_mbox_open;        /* name runs off the end */
	bad[3].addr = r->resp.arena_size - 4;
	bad[3].len = 200;
	bad[4].opcode = KIPC_SYS_send;             /* unknown flags */
	bad[4].target = getpid();
	bad[4].flags = 0xfff00000u;
	bad[5].opcode = KIPC_SYS_receive;          /* huge buffer */
	bad[5].flags = KIPC_F_NONBLOCK;
	bad[5].len = 0xffffffffu;
	bad[6].opcode = KIPC_SYS_mbox_receive_set; /* id array out of range */
	bad[6].addr2 = r->resp.arena_size;
	bad[6].len2 = 0x7fffffff;
	bad[6].flags = KIPC_F_NONBLOCK;
	bad[7].opcode = KIPC_SYS_nop;              /* reserved byte set */
	bad[7].rsvd0 = 0x5a;
	for (int i = 0; i < 8; i++) {
		bad[i].user_data = 10 + i;
		raw_submit(r, &bad[i]);
		struct kipc_cqe cqe;
		if (raw_reap(r, &cqe) < 0) {
			/* detached: allowed, the kernel chose to drop us */
			TH_LOG("detached after bad entry %d", i);
			return;
		}
		EXPECT_EQ(10 + i, cqe.user_data);
		EXPECT_GT(0, cqe.res) TH_LOG("bad entry %d: res %lld", i, (long long)cqe.res);
	}
	/* after all that, a good request still works */
	expect_nop(_metadata, r, 99);
}

TEST(garbage_sqes_fail_cleanly)
{
	ASSERT_EQ(0, kipc_attach());
	hostile(_metadata, garbage_sqes);
}

static void bad_indices(struct __test_metadata __attribute__((unused)) *_metadata,
			struct raw *r)
{
	/* a tail far ahead of the head: "a billion entries" */
	memset(r->sq, 0xa5, (size_t)r->resp.sq_entries * sizeof(struct kipc_sqe));
	__atomic_store_n(&r->ctl->sq_tail, r->ctl->sq_head + 1000000000u, __ATOMIC_RELEASE);
	raw_ring(r);
	kt_sleep_ms(50);
	/* a tail behind the head */
	__atomic_store_n(&r->ctl->sq_tail, r->ctl->sq_head - 5, __ATOMIC_RELEASE);
	raw_ring(r);
	/* a nonsense CQ head */
	__atomic_store_n(&r->ctl->cq_head, 0x7fffffffu, __ATOMIC_RELEASE);
	raw_ring(r);
	kt_sleep_ms(50);
}

TEST(garbage_indices)
{
	ASSERT_EQ(0, kipc_attach());
	hostile(_metadata, bad_indices);
}

static void random_bytes(struct __test_metadata __attribute__((unused)) *_metadata,
			struct raw *r)
{
	uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	for (int round = 0; round < 20; round++) {
		uint64_t *w = r->map;
		for (size_t i = 0; i < r->map_size / 8; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			w[i] = x;
		}
		raw_ring(r);
		kt_sleep_ms(5);
	}
	/* and a futex wake storm on the shared word */
	for (int i = 0; i < 100; i++)
		syscall(SYS_futex, &r->ctl->wake_seq, FUTEX_WAKE, 1, NULL, NULL, 0);
}

TEST(random_bytes_over_the_whole_region)
{
	ASSERT_EQ(0, kipc_attach());
	hostile(_metadata, random_bytes);
}

/* A garbage client next to a working one: the working one goes on. */
TEST(neighbours_are_not_disturbed)
{
	int64_t id = kipc_mbox_open(NULL, 0, &(struct kipc_mbox_attr){
		.capacity = 4, .flags = KIPC_MBOX_KERNEL_OWNED, .mode = 0666});
	ASSERT_LT(0, id);
	pid_t g = fork();
	ASSERT_LE(0, g);
	if (g == 0) {
		struct raw r;
		if (raw_attach(&r) < 0)
			_exit(1);
		int64_t end = __ksft_now_ms() + 500;
		uint32_t x = 1;
		while (__ksft_now_ms() < end) {
			uint32_t *w = (uint32_t *)r.sq;
			for (size_t i = 0; i < r.resp.sq_entries * sizeof(struct kipc_sqe) / 4; i++)
				w[i] = (x = x * 1103515245u + 12345u);
			__atomic_store_n(&r.ctl->sq_tail, x, __ATOMIC_RELEASE);
			raw_ring(&r);
		}
		_exit(0);
	}
	pid_t s = fork();
	ASSERT_LE(0, s);
	if (s == 0) {
		for (int i = 0; i < 2000; i++)
			if (kipc_mbox_send(id, &i, sizeof i, 0, 0) < 0)
				_exit(1);
		_exit(0);
	}
	for (int i = 0; i < 2000; i++) {
		int v;
		ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive_timed(id, &v, sizeof v, NULL, 0,
								     KT_BOUND_MS * MS));
		EXPECT_EQ(i, v);
	}
	EXPECT_EQ(0, kt_wait(s));
	EXPECT_EQ(0, kt_wait(g));
	kipc_mbox_destroy(id);
	kernel_still_serves(_metadata);
}

KIPC_TEST_MAIN
