/* SPDX-License-Identifier: MIT */
/*
 * net_bench - cross-node kipc against plain NATS between two processes on
 * this machine (make netbench; never in make check). Rows:
 *   pingpong  kipc: mbox_call from node a to a server on node b (call and
 *             reply across); NATS: natsConnection_Request to a responder
 *             that sends at once (SendAsap, as libnats advises for a
 *             replier: the goal's reference) and one with libnats'
 *             default buffering (its flusher sleeps 1 ms per flush);
 *             kipc and the first in alternating blocks of 100 round trips
 *             (the same load for both), mean and p50
 *   stream    kipc: mbox_send from node a to a receiver on node b, 64,
 *             128 and 256 in flight, the receiver taking one message at a
 *             time or keeping 64 receives posted; the same stream from a
 *             process on node b (local: no network, the machine's
 *             ceiling); NATS: publish to a subscriber, run before the
 *             first row and after each (a row's ratio is against the two
 *             runs around it)
 * Each row prints "bench: SCENARIO IMPL N VALUE UNIT" (TH_LOG lines) and
 * the ratio kipc / NATS. Same fixture as net_test (net_fixture.h).
 */
#include "net_fixture.h"

#include <dirent.h>
#include <nats/nats.h>

#define PP_N 2000
#define ST_N 20000
#define MSG 64

struct bshare {
	struct kt_barrier ready;
	char name[64];
	int64_t t_start;  /* sender: when the first send went */
	int64_t t_end;    /* receiver: when the last message came */
	uint32_t maxq;    /* receiver: most messages seen queued */
	uint32_t maxs;    /* receiver: most senders seen waiting for room */
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

/* asap: publish at once (natsOptions_SetSendAsap), as libnats advises
 * for a replier; else libnats buffers for its flusher thread, which
 * sleeps 1 ms before each flush. */
static natsConnection *bench_conn(bool asap)
{
	char pw[64];
	snprintf(pw, sizeof pw, "pw-bench-%d", nf->nats_port);
	natsOptions *o;
	natsConnection *nc = NULL;
	natsOptions_Create(&o);
	natsOptions_SetURL(o, nf->url);
	natsOptions_SetUserInfo(o, "bench", pw);
	natsOptions_SetSendAsap(o, asap);
	if (natsConnection_Connect(&nc, o) != NATS_OK)
		nc = NULL;
	natsOptions_Destroy(o);
	return nc;
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

/* Plain NATS: a responder process (for PP_N + 10 requests); its pid. */
static pid_t nats_responder(bool asap)
{
	pid_t rsp = fork();
	if (rsp == 0) {
		natsConnection *nc = bench_conn(asap);
		natsSubscription *sub;
		if (!nc || natsConnection_SubscribeSync(&sub, nc, "bench.pp") != NATS_OK)
			_exit(10);
		natsConnection_Flush(nc);
		kt_post(&bs->ready, 1);
		for (int i = 0; i < PP_N + 10; i++) {
			natsMsg *m;
			if (natsSubscription_NextMsg(&m, sub, 30000) != NATS_OK)
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
	return rsp;
}

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return a < b ? -1 : a > b;
}

/* Mean and median of n round trips (ns), in us. */
static void pp_stats(int64_t *ns, int n, double *mean, double *p50)
{
	int64_t sum = 0;
	for (int i = 0; i < n; i++)
		sum += ns[i];
	qsort(ns, (size_t)n, sizeof *ns, cmp_i64);
	*mean = (double)sum / n / 1000.0;
	*p50 = (double)ns[n / 2] / 1000.0;
}

#define PP_BLOCK 100 /* round trips of one kind in a row: the kinds alternate */

/*
 * What a kernel's threads cost so far (/proc): voluntary context
 * switches (each a sleep, and the wake-up that ends it) and CPU ticks.
 * Less moved by the machine's load than a time is: how many times a
 * round trip puts a thread of kipcd to sleep.
 */
static void proc_cost(pid_t pid, long *csw, long *others, long *ticks)
{
	char path[320], line[256];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%s/status", (int)pid, e->d_name);
		FILE *f = fopen(path, "r");
		while (f && fgets(line, sizeof line, f)) {
			long v;
			if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
				*(atoi(e->d_name) == pid ? csw : others) += v; /* sleeps (a
				   yield that switches is not one); the loop's, the rest's */
		}
		if (f)
			fclose(f);
		snprintf(path, sizeof path, "/proc/%d/task/%s/stat", (int)pid, e->d_name);
		f = fopen(path, "r");
		if (f && fgets(line, sizeof line, f)) {
			char *p = strrchr(line, ')'); /* the name may hold spaces */
			long ut = 0, st = 0;
			if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld",
					&ut, &st) == 2)
				*ticks += ut + st;
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
}

/* kipcd a and b together. */
static void nodes_cost(long *csw, long *others, long *ticks)
{
	*csw = *others = *ticks = 0;
	proc_cost(nf->node[0].pid, csw, others, ticks);
	proc_cost(nf->node[1].pid, csw, others, ticks);
}

/*
 * kipc's mbox_call a->b against NATS request/reply, in alternating
 * blocks of PP_BLOCK so that both see the same load (the machine is
 * shared: a load change within seconds moves either by 2-7x).
 */
TEST_TIMEOUT(pingpong, 180)
{
	static int64_t tk[PP_N], tn[PP_N], tb[PP_N];
	bs = bshare_new("pp");
	pid_t srv = fork();
	if (srv == 0)
		_exit(nf_use(1) < 0 ? 80 : pp_server());
	ASSERT_EQ(0, kt_wait_post(&bs->ready, 1));
	char n[128], buf[MSG] = "ping", reply[MSG];
	snprintf(n, sizeof n, "/net/b%s", bs->name);
	int64_t id = kipc_mbox_open(n, 0, NULL);
	ASSERT_GT(id, 0);
	natsConnection *nc = bench_conn(false); /* Request() sends at once anyway */
	ASSERT_NE(NULL, nc);
	pid_t rsp = nats_responder(true);
	ASSERT_EQ(0, kt_wait_post(&bs->ready, 1));
	natsMsg *m;
	for (int i = 0; i < 10; i++) { /* warm up */
		ASSERT_EQ(MSG, kipc_mbox_call(id, buf, MSG, reply, sizeof reply, NULL, 0));
		ASSERT_EQ(NATS_OK, natsConnection_Request(&m, nc, "bench.pp", buf, MSG, 10000));
		natsMsg_Destroy(m);
	}
	long csw0, oth0, tick0, csw = 0, oth = 0, tick = 0, c1, o1, t1;
	for (int b = 0; b < PP_N; b += PP_BLOCK) {
		nodes_cost(&csw0, &oth0, &tick0);
		for (int i = b; i < b + PP_BLOCK; i++) {
			int64_t t = kt_now_ns();
			ASSERT_EQ(MSG, kipc_mbox_call(id, buf, MSG, reply, sizeof reply, NULL, 0));
			tk[i] = kt_now_ns() - t;
		}
		nodes_cost(&c1, &o1, &t1);
		csw += c1 - csw0, oth += o1 - oth0, tick += t1 - tick0;
		for (int i = b; i < b + PP_BLOCK; i++) {
			int64_t t = kt_now_ns();
			ASSERT_EQ(NATS_OK, natsConnection_Request(&m, nc, "bench.pp", buf, MSG, 10000));
			tn[i] = kt_now_ns() - t;
			natsMsg_Destroy(m);
		}
	}
	ASSERT_EQ(0, kt_wait(srv));
	ASSERT_EQ(0, kt_wait(rsp));
	/* The buffering replier (its flusher's 1 ms sleep per reply): alone. */
	rsp = nats_responder(false);
	ASSERT_EQ(0, kt_wait_post(&bs->ready, 1));
	for (int i = 0; i < PP_N + 10; i++) {
		int64_t t = kt_now_ns();
		ASSERT_EQ(NATS_OK, natsConnection_Request(&m, nc, "bench.pp", buf, MSG, 10000));
		if (i >= 10)
			tb[i - 10] = kt_now_ns() - t;
		natsMsg_Destroy(m);
	}
	ASSERT_EQ(0, kt_wait(rsp));
	natsConnection_Destroy(nc);
	double km, k50, nm, n50, bm, b50;
	pp_stats(tk, PP_N, &km, &k50);
	pp_stats(tn, PP_N, &nm, &n50);
	pp_stats(tb, PP_N, &bm, &b50);
	row("pingpong", "kipc", PP_N, km, "us/round trip, mean (mbox_call a->b, 64 B)");
	row("pingpong", "kipc", PP_N, k50, "us/round trip, p50");
	row("pingpong", "nats", PP_N, nm, "us/round trip, mean (request/reply, 64 B, replier sends at once)");
	row("pingpong", "nats", PP_N, n50, "us/round trip, p50");
	row("pingpong", "nats", PP_N, bm,
	    "us/round trip, mean (request/reply, 64 B, replier buffers: libnats' default)");
	ksft_print("# bench: pingpong  kipcd a and b: %.2f sleeps of their loop threads, %.2f of "
		   "their other threads (voluntary context switches), %.1f us CPU (all threads) per "
		   "round trip (/proc)\n", (double)csw / PP_N, (double)oth / PP_N,
		   (double)tick * 1e6 / (double)sysconf(_SC_CLK_TCK) / PP_N);
	ksft_print("# bench: pingpong  kipc/nats %.2fx mean, %.2fx p50 (goal <= 1.5x; blocks of %d "
		   "alternating); against the buffering replier %.2fx\n", km / nm, k50 / n50,
		   PP_BLOCK, km / bm);
}

static int st_receiver(int rwin)
{
	int64_t id = nf_mbox_create(bs->name, 1024, 0666);
	if (id < 0)
		return 10;
	char *bufs = kipc_buf_alloc((size_t)rwin * MSG);
	if (!bufs)
		return 12;
	kt_post(&bs->ready, 1);
	int posted = 0, got = 0;
	while (got < ST_N) {
		if (rwin == 1) {
			if (kipc_mbox_receive(id, bufs, MSG, NULL, 0) < 0)
				return 11;
			got++;
		} else {
			while (posted < ST_N && posted - got < rwin) {
				struct kipc_sqe *sqe = kipc_get_sqe();
				if (!sqe)
					break;
				kipc_prep_mbox_receive(sqe, id, bufs + (posted % rwin) * MSG, MSG, 0);
				posted++;
			}
			struct kipc_cqe *c;
			if (kipc_submit() < 0 || kipc_wait_cqe(&c) || c->res < 0)
				return 11;
			do {
				if (c->res < 0)
					return 11;
				kipc_cqe_seen(c);
				got++;
			} while (kipc_peek_cqe(&c) == 0);
		}
		if (got % 256 == 0) {
			struct kipc_mbox_stat st;
			if (kipc_mbox_stat(id, &st) == 0) {
				if (st.nmsg > bs->maxq)
					bs->maxq = st.nmsg;
				if (st.nsenders > bs->maxs)
					bs->maxs = st.nsenders;
			}
		}
	}
	bs->t_end = kt_now_ns();
	return 0;
}

/* ST_N sends to id with window of them in flight (the asynchronous API). */
static int st_send(int64_t id, int window)
{
	char *bufs = kipc_buf_alloc((size_t)window * MSG);
	if (!bufs) {
		ksft_print("# kipc_buf_alloc: %s\n", strerror(errno));
		return -1;
	}
	bs->t_start = kt_now_ns();
	int next = 0, inflight = 0, done = 0;
	while (done < ST_N) {
		while (next < ST_N && inflight < window) {
			struct kipc_sqe *sqe = kipc_get_sqe();
			if (!sqe)
				break;
			char *b = bufs + (next % window) * MSG;
			memcpy(b, "data", 5);
			kipc_prep_mbox_send(sqe, id, b, MSG, 0, 0);
			next++, inflight++;
		}
		struct kipc_cqe *c;
		if (kipc_submit() < 0 || kipc_wait_cqe(&c))
			return -1;
		do {
			if (c->res != 0)
				return -1;
			kipc_cqe_seen(c);
			inflight--, done++;
		} while (kipc_peek_cqe(&c) == 0);
	}
	kipc_buf_free(bufs);
	return 0;
}

/*
 * A stream to a receiver on node b: from node a (remote), or from
 * another process on b (local: the same stream without the network, the
 * ceiling the machine allows). msgs/s at the receiver.
 */
static double kipc_stream(int window, int rwin, bool local, const char *tag)
{
	bs = bshare_new(tag);
	pid_t rcv = fork();
	if (rcv == 0)
		_exit(nf_use(1) < 0 ? 80 : st_receiver(rwin));
	if (kt_wait_post(&bs->ready, 1))
		return 0;
	struct kipc_net_stat ns0 = {0}, ns = {0};
	kipc_net_stat(&ns0);
	/* What each kernel's threads cost per message (less moved by the
	 * load than the rate): which side bounds the stream. */
	long csw0[2] = {0}, oth0[2] = {0}, tick0[2] = {0}, csw1[2] = {0}, oth1[2] = {0},
	     tick1[2] = {0};
	for (int k = 0; k < 2; k++)
		proc_cost(nf->node[k].pid, &csw0[k], &oth0[k], &tick0[k]);
	if (local) {
		pid_t snd = fork();
		if (snd == 0) {
			if (nf_use(1) < 0)
				_exit(80);
			int64_t id = kipc_mbox_open(bs->name, 0, NULL);
			_exit(id > 0 && st_send(id, window) == 0 ? 0 : 81);
		}
		if (kt_wait(snd))
			return 0;
	} else {
		char n[128];
		snprintf(n, sizeof n, "/net/b%s", bs->name);
		int64_t id = kipc_mbox_open(n, 0, NULL);
		if (id <= 0 || st_send(id, window))
			return 0;
	}
	if (kt_wait(rcv))
		return 0;
	for (int k = 0; k < 2; k++)
		proc_cost(nf->node[k].pid, &csw1[k], &oth1[k], &tick1[k]);
	double us = 1e6 / (double)sysconf(_SC_CLK_TCK) / ST_N;
	ksft_print("# stream, %d in flight, %d receive%s posted%s: per message, kipcd a %.1f us CPU, "
		   "%.2f + %.2f sleeps (loop + other threads); kipcd b %.1f us CPU, %.2f + %.2f "
		   "sleeps (/proc)\n", window, rwin, rwin > 1 ? "s" : "", local ? " (local)" : "",
		   (double)(tick1[0] - tick0[0]) * us, (double)(csw1[0] - csw0[0]) / ST_N,
		   (double)(oth1[0] - oth0[0]) / ST_N, (double)(tick1[1] - tick0[1]) * us,
		   (double)(csw1[1] - csw0[1]) / ST_N, (double)(oth1[1] - oth0[1]) / ST_N);
	double rate = ST_N / ((double)(bs->t_end - bs->t_start) / 1e9);
	if (!local && kipc_net_stat(&ns) == 0)
		ksft_print("# stream, %d in flight, %d receive%s posted: %llu requests, "
			   "%llu retransmissions and probes\n", window, rwin, rwin > 1 ? "s" : "",
			   (unsigned long long)(ns.nsent - ns0.nsent),
			   (unsigned long long)(ns.nretrans - ns0.nretrans));
	ksft_print("# stream, %d in flight, %d receive%s posted%s: at most %u queued, %u "
		   "senders waiting for room\n", window, rwin, rwin > 1 ? "s" : "",
		   local ? " (local)" : "", bs->maxq, bs->maxs);
	return rate;
}

/* Plain NATS: ST_N publishes to a subscriber process; msgs/s there. */
static double nats_stream(void)
{
	char buf[MSG] = "data";
	bs = bshare_new("nst");
	pid_t sub_p = fork();
	if (sub_p == 0) {
		natsConnection *nc = bench_conn(false);
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
	natsConnection *nc = kt_wait_post(&bs->ready, 1) ? NULL : bench_conn(false);
	int64_t t0 = kt_now_ns();
	bool ok = nc != NULL;
	for (int i = 0; ok && i < ST_N; i++)
		ok = natsConnection_Publish(nc, "bench.st", buf, MSG) == NATS_OK;
	if (nc) {
		natsConnection_Flush(nc);
		natsConnection_Destroy(nc);
	}
	if (!ok)
		kill(sub_p, SIGKILL);
	if (kt_wait(sub_p) || !ok)
		return 0;
	return ST_N / ((double)(bs->t_end - t0) / 1e9);
}

TEST_TIMEOUT(stream, 240)
{
	static const struct {
		int window, rwin;
		bool local;
		const char *tag;
	} rows[] = {
		{64, 1, false, "s64"},
		{128, 1, false, "s128"},
		{256, 1, false, "s256"},
		{256, 64, false, "s256r"},
		{256, 1, true, "l256"},
	};
	/* Plain NATS before the first row and after each: a row's reference
	 * is the mean of the two runs around it (the same load, as near as
	 * a shared machine gives). */
	double rate[5], nats[6];
	ASSERT_GT(nats[0] = nats_stream(), 0);
	for (int i = 0; i < 5; i++) {
		rate[i] = kipc_stream(rows[i].window, rows[i].rwin, rows[i].local, rows[i].tag);
		ASSERT_GT(rate[i], 0);
		ASSERT_GT(nats[i + 1] = nats_stream(), 0);
	}
	double ratio[5], all = 0;
	for (int i = 0; i < 5; i++) {
		char what[96];
		snprintf(what, sizeof what, "msgs/s (mbox_send %s, 64 B, %d in flight, %d received at once)",
			 rows[i].local ? "b->b local" : "a->b", rows[i].window, rows[i].rwin);
		row("stream", rows[i].local ? "local" : "kipc", ST_N, rate[i], what);
		ratio[i] = rate[i] / ((nats[i] + nats[i + 1]) / 2);
	}
	for (int i = 0; i < 6; i++)
		all += nats[i] / 6;
	row("stream", "nats", ST_N, all, "msgs/s (publish -> subscriber, 64 B), mean of 6 runs");
	ksft_print("# bench: stream    nats runs %.0f %.0f %.0f %.0f %.0f %.0f k/s\n", nats[0] / 1e3,
		   nats[1] / 1e3, nats[2] / 1e3, nats[3] / 1e3, nats[4] / 1e3, nats[5] / 1e3);
	ksft_print("# bench: stream    kipc/nats %.2fx, %.2fx, %.2fx with 64, 128, 256 in flight, "
		   "%.2fx with 64 receives posted; local/nats %.2fx (goal >= 0.8x; each against the "
		   "NATS runs before and after it)\n",
		   ratio[0], ratio[1], ratio[2], ratio[3], ratio[4]);
}

NET_TEST_MAIN
