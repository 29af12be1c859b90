/* SPDX-License-Identifier: MIT */
/*
 * net_bench - cross-node kipc against plain NATS between two processes on
 * this machine (make netbench; never in make check). Rows:
 *   pingpong  kipc: mbox_call from node a to a server on node b (call and
 *             reply across); NATS: natsConnection_Request to a responder
 *   stream    kipc: mbox_send from node a to a receiver on node b;
 *             NATS: publish to a subscriber
 * Each row prints "bench: SCENARIO IMPL N VALUE UNIT" (TH_LOG lines) and
 * the ratio kipc / NATS. Same fixture as net_test (net_fixture.h).
 */
#include "net_fixture.h"

#include <nats/nats.h>

#define PP_N 2000
#define ST_N 20000
#define MSG 64

struct bshare {
	struct kt_barrier ready;
	char name[64];
	int64_t t_end;    /* receiver: when the last message came */
	double value[4];  /* kipc pingpong, nats pingpong, kipc stream, nats stream */
};

static struct bshare *bs;

static struct bshare *bshare_new(const char *tag)
{
	struct bshare *b = nf_shared(sizeof *b);
	if (!b)
		return NULL;
	kt_barrier_init(&b->ready);
	snprintf(b->name, sizeof b->name, "/kt-%d-%s", (int)getpid(), tag);
	return b;
}

static natsConnection *bench_conn(void)
{
	return nf_nats_as(NULL, "bench");
}

static void row(const char *scen, const char *impl, int n, double v, const char *unit)
{
	ksft_print("# bench: %-9s %-5s %6d %12.1f %s\n", scen, impl, n, v, unit);
}

/* ---------------------------------------------------------------- */

static int pp_server(void)
{
	int64_t id = nf_mbox_create(bs->name, 16, 0666);
	if (id < 0)
		return 10;
	kt_post(&bs->ready, 1);
	char buf[MSG];
	for (int i = 0; i < PP_N + 10; i++) {
		struct kipc_msginfo mi;
		if (kipc_mbox_receive(id, buf, sizeof buf, &mi, 0) < 0)
			return 11;
		if (kipc_reply(mi.token, buf, MSG, 0) < 0)
			return 12;
	}
	return 0;
}

TEST_TIMEOUT(pingpong, 120)
{
	bs = bshare_new("pp");
	pid_t srv = fork();
	if (srv == 0)
		_exit(nf_use(1) < 0 ? 80 : pp_server());
	ASSERT_EQ(0, kt_wait_post(&bs->ready, 1));
	char n[128], buf[MSG] = "ping", reply[MSG];
	snprintf(n, sizeof n, "/net/b%s", bs->name);
	int64_t id = kipc_mbox_open(n, 0, NULL);
	ASSERT_GT(id, 0);
	for (int i = 0; i < 10; i++) /* warm up */
		ASSERT_EQ(MSG, kipc_mbox_call(id, buf, MSG, reply, sizeof reply, NULL, 0));
	int64_t t0 = kt_now_ns();
	for (int i = 0; i < PP_N; i++)
		ASSERT_EQ(MSG, kipc_mbox_call(id, buf, MSG, reply, sizeof reply, NULL, 0));
	double kipc_us = (double)(kt_now_ns() - t0) / PP_N / 1000.0;
	ASSERT_EQ(0, kt_wait(srv));

	/* Plain NATS: a responder process and request/reply. */
	pid_t rsp = fork();
	if (rsp == 0) {
		natsConnection *nc = bench_conn();
		natsSubscription *sub;
		if (!nc || natsConnection_SubscribeSync(&sub, nc, "bench.pp") != NATS_OK)
			_exit(10);
		natsConnection_Flush(nc);
		kt_post(&bs->ready, 1);
		for (int i = 0; i < PP_N + 10; i++) {
			natsMsg *m;
			if (natsSubscription_NextMsg(&m, sub, 10000) != NATS_OK)
				_exit(11);
			natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m),
					       natsMsg_GetDataLength(m));
			natsMsg_Destroy(m);
		}
		natsConnection_Flush(nc);
		natsSubscription_Destroy(sub);
		natsConnection_Destroy(nc);
		_exit(0);
	}
	ASSERT_EQ(0, kt_wait_post(&bs->ready, 1));
	natsConnection *nc = bench_conn();
	ASSERT_NE(NULL, nc);
	natsMsg *m;
	for (int i = 0; i < 10; i++) {
		ASSERT_EQ(NATS_OK, natsConnection_Request(&m, nc, "bench.pp", buf, MSG, 10000));
		natsMsg_Destroy(m);
	}
	t0 = kt_now_ns();
	for (int i = 0; i < PP_N; i++) {
		ASSERT_EQ(NATS_OK, natsConnection_Request(&m, nc, "bench.pp", buf, MSG, 10000));
		natsMsg_Destroy(m);
	}
	double nats_us = (double)(kt_now_ns() - t0) / PP_N / 1000.0;
	natsConnection_Destroy(nc);
	ASSERT_EQ(0, kt_wait(rsp));
	row("pingpong", "kipc", PP_N, kipc_us, "us/round trip (mbox_call a->b, 64 B)");
	row("pingpong", "nats", PP_N, nats_us, "us/round trip (request/reply, 64 B)");
	ksft_print("# bench: pingpong  kipc/nats %.2fx (goal <= 1.5x)\n", kipc_us / nats_us);
}

static int st_receiver(void)
{
	int64_t id = nf_mbox_create(bs->name, 1024, 0666);
	if (id < 0)
		return 10;
	kt_post(&bs->ready, 1);
	char buf[MSG];
	for (int i = 0; i < ST_N; i++)
		if (kipc_mbox_receive(id, buf, sizeof buf, NULL, 0) < 0)
			return 11;
	bs->t_end = kt_now_ns();
	return 0;
}

/* kipc: ST_N sends with window of them in flight; msgs/s at the receiver. */
static double kipc_stream(int window, const char *tag)
{
	bs = bshare_new(tag);
	pid_t rcv = fork();
	if (rcv == 0)
		_exit(nf_use(1) < 0 ? 80 : st_receiver());
	if (kt_wait_post(&bs->ready, 1))
		return 0;
	char n[128], buf[MSG] = "data";
	snprintf(n, sizeof n, "/net/b%s", bs->name);
	int64_t id = kipc_mbox_open(n, 0, NULL);
	if (id <= 0)
		return 0;
	/* window sends in flight (the asynchronous API), as a stream would. */
	char *bufs = kipc_buf_alloc((size_t)window * MSG);
	if (!bufs) {
		ksft_print("# kipc_buf_alloc: %s\n", strerror(errno));
		return 0;
	}
	int64_t t0 = kt_now_ns();
	int next = 0, inflight = 0, done = 0;
	while (done < ST_N) {
		while (next < ST_N && inflight < window) {
			struct kipc_sqe *sqe = kipc_get_sqe();
			if (!sqe)
				break;
			char *b = bufs + (next % window) * MSG;
			memcpy(b, buf, MSG);
			kipc_prep_mbox_send(sqe, id, b, MSG, 0, 0);
			next++, inflight++;
		}
		if (kipc_submit() < 0)
			return 0;
		struct kipc_cqe *c;
		if (kipc_wait_cqe(&c) || c->res != 0)
			return 0;
		kipc_cqe_seen(c);
		inflight--, done++;
		/* the rest that completed already */
		while (kipc_peek_cqe(&c) == 0) {
			if (c->res != 0)
				return 0;
			kipc_cqe_seen(c);
			inflight--, done++;
		}
	}
	if (kt_wait(rcv))
		return 0;
	kipc_buf_free(bufs);
	struct kipc_net_stat ns;
	if (kipc_net_stat(&ns) == 0)
		ksft_print("# stream, %d in flight: a has sent %llu requests, %llu retransmissions "
			   "and probes\n", window, (unsigned long long)ns.nsent,
			   (unsigned long long)ns.nretrans);
	return ST_N / ((double)(bs->t_end - t0) / 1e9);
}

TEST_TIMEOUT(stream, 180)
{
	double kipc_rate = kipc_stream(64, "st");
	ASSERT_GT(kipc_rate, 0);
	double kipc_wide = kipc_stream(128, "sw");
	ASSERT_GT(kipc_wide, 0);
	char buf[MSG] = "data";
	int64_t t0;

	pid_t sub_p = fork();
	if (sub_p == 0) {
		natsConnection *nc = bench_conn();
		natsSubscription *sub;
		if (!nc || natsConnection_SubscribeSync(&sub, nc, "bench.st") != NATS_OK)
			_exit(10);
		natsSubscription_SetPendingLimits(sub, -1, -1);
		natsConnection_Flush(nc);
		kt_post(&bs->ready, 1);
		for (int i = 0; i < ST_N; i++) {
			natsMsg *m;
			if (natsSubscription_NextMsg(&m, sub, 10000) != NATS_OK)
				_exit(11);
			natsMsg_Destroy(m);
		}
		bs->t_end = kt_now_ns();
		natsSubscription_Destroy(sub);
		natsConnection_Destroy(nc);
		_exit(0);
	}
	ASSERT_EQ(0, kt_wait_post(&bs->ready, 1));
	natsConnection *nc = bench_conn();
	ASSERT_NE(NULL, nc);
	t0 = kt_now_ns();
	for (int i = 0; i < ST_N; i++)
		ASSERT_EQ(NATS_OK, natsConnection_Publish(nc, "bench.st", buf, MSG));
	natsConnection_Flush(nc);
	ASSERT_EQ(0, kt_wait(sub_p));
	double nats_rate = ST_N / ((double)(bs->t_end - t0) / 1e9);
	natsConnection_Destroy(nc);
	row("stream", "kipc", ST_N, kipc_rate, "msgs/s (mbox_send a->b, 64 B, 64 in flight)");
	row("stream", "kipc", ST_N, kipc_wide, "msgs/s (mbox_send a->b, 64 B, 128 in flight)");
	row("stream", "nats", ST_N, nats_rate, "msgs/s (publish -> subscriber, 64 B)");
	ksft_print("# bench: stream    kipc/nats %.2fx with 64 in flight, %.2fx with 128 "
		   "(goal >= 0.8x)\n", kipc_rate / nats_rate, kipc_wide / nats_rate);
}

NET_TEST_MAIN
