// SPDX-License-Identifier: MIT
/*
 * signal_test: signals arriving while a call is blocked.
 *  - SA_RESTART handlers: the call goes on waiting (like read(2));
 *  - other handlers: EINTR, and the request is cancelled in the kernel
 *    (it takes nothing, it delivers nothing);
 *  - the race: senders and receivers bombarded with signals while
 *    messages flow; every successful send is received exactly once and
 *    nothing that failed with EINTR is ever received.
 */
#include "kipc_test.h"

#include <sys/mman.h>
#include <sys/time.h>

#include <kipc/introspect.h>

#define MS 1000000ll

static volatile sig_atomic_t hits;
static int *shared_hits; /* also counted here when set (seen by the parent) */

static void on_signal(int sig)
{
	(void)sig;
	hits++;
	if (shared_hits)
		__atomic_fetch_add(shared_hits, 1, __ATOMIC_RELAXED);
}

static void install(int sig, int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

/*
 * Wait (bounded) until task pid is blocked in a call op the kernel has
 * parked, and the process sleeps (in the library's futex wait, not in
 * its spin before it). Fills *ti. 0 or -1.
 */
static int wait_parked_asleep(pid_t pid, uint32_t op, struct kipc_task_info *ti)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	for (;;) {
		int r = kipc_task_info(pid, ti);
		if (r < 0 && errno != ESRCH) /* ESRCH: not attached yet */
			return -1;
		if (r == 0 && ti->state == KIPC_TASK_BLOCKED && ti->wait_op == op &&
		    kt_proc_state(pid) == 'S')
			return 0;
		if (__ksft_now_ms() > deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		kt_sleep_ms(1);
	}
}

/* Wait (bounded) until *counter reaches want. 0 or -1. */
static int wait_count(const int *counter, int want)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (__atomic_load_n(counter, __ATOMIC_RELAXED) < want) {
		if (__ksft_now_ms() > deadline)
			return -1;
		kt_sleep_ms(1);
	}
	return 0;
}

/*
 * Each signal arrives while the receive is parked in the kernel and the
 * child sleeps in it; the handler runs, and the same parked request
 * (same wait_since: not cancelled and submitted again) goes on waiting
 * until the message comes.
 */
TEST(sa_restart_handler_keeps_waiting)
{
	enum { NSIG_SENT = 5 };
	shared_hits = mmap(NULL, sizeof *shared_hits, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, shared_hits);
	*shared_hits = 0;
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		install(SIGUSR1, SA_RESTART);
		char buf[8];
		ssize_t n = kipc_receive(KIPC_ANY, buf, sizeof buf, NULL, 0);
		if (n != 1)
			_exit(errno == EINTR ? 1 : 2);
		_exit(hits == NSIG_SENT ? 0 : 3);
	}
	struct kipc_task_info ti;
	int64_t since = 0;
	for (int i = 0; i < NSIG_SENT; i++) {
		ASSERT_EQ(0, wait_parked_asleep(c, KIPC_SYS_receive, &ti))
			TH_LOG("signal %d: %s", i, strerror(errno));
		if (i == 0)
			since = ti.wait_since;
		EXPECT_EQ(since, ti.wait_since);
		ASSERT_EQ(0, kill(c, SIGUSR1));
		ASSERT_EQ(0, wait_count(shared_hits, i + 1));
	}
	/* after the last handler: still the same parked receive */
	ASSERT_EQ(0, wait_parked_asleep(c, KIPC_SYS_receive, &ti));
	EXPECT_EQ(since, ti.wait_since);
	ASSERT_EQ(0, kipc_send(c, "m", 1, 0, 0));
	EXPECT_EQ(0, kt_wait(c));
	munmap(shared_hits, sizeof *shared_hits);
	shared_hits = NULL;
}

TEST(sa_restart_keeps_the_original_timeout)
{
	install(SIGALRM, SA_RESTART);
	struct itimerval it = {{0, 20000}, {0, 20000}};
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	char buf[8];
	int64_t t0 = kt_now_ns();
	EXPECT_EQ(-1, kipc_receive_timed(KIPC_ANY, buf, sizeof buf, NULL, 0, 200 * MS));
	EXPECT_EQ(ETIMEDOUT, errno);
	int64_t dt = kt_now_ns() - t0;
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	EXPECT_LE(200 * MS, dt);
	/* restarting must not start the timeout over each time */
	EXPECT_GT(KT_BOUND_MS * MS / 2, dt);
	EXPECT_LT(0, hits);
}

TEST(handler_without_restart_gets_eintr_and_cancels)
{
	struct kt_barrier b;
	ASSERT_EQ(0, kt_barrier_init(&b));
	int64_t id;
	{
		id = kt_shared_mbox(4);
		ASSERT_LT(0, id);
	}
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		install(SIGUSR1, 0);
		if (kipc_attach() < 0)
			_exit(100);
		kt_post(&b, 1);
		char buf[8];
		ssize_t n = kipc_mbox_receive(id, buf, sizeof buf, NULL, 0);
		if (n >= 0)
			_exit(1);
		_exit(errno == EINTR ? 0 : 2);
	}
	ASSERT_EQ(0, kt_wait_mbox(id, KT_RECEIVERS, 1, KT_BOUND_MS));
	/* A signal handled while the library still spins is not seen as an
	 * interruption (the spin has no signal check: a known limit): signal
	 * once the process sleeps in the futex wait. */
	struct kipc_task_info ti;
	ASSERT_EQ(0, wait_parked_asleep(c, KIPC_SYS_mbox_receive, &ti));
	kill(c, SIGUSR1);
	EXPECT_EQ(0, kt_wait(c));
	/* the cancelled receive is gone from the wait queue and took
	 * nothing: a message sent now stays */
	kt_expect_no_receiver(_metadata, id);
	kipc_mbox_destroy(id);
}

TEST(interrupted_rendezvous_send_delivers_nothing)
{
	int64_t id = kt_shared_mbox(0);
	ASSERT_LT(0, id);
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		install(SIGUSR1, 0);
		int r = kipc_mbox_send(id, "s", 1, 0, 0);
		_exit(r == 0 ? 1 : errno == EINTR ? 0 : 2);
	}
	ASSERT_EQ(0, kt_wait_mbox(id, KT_SENDERS, 1, KT_BOUND_MS));
	/* as above: signal once the sender sleeps, not while it spins */
	struct kipc_task_info ti;
	ASSERT_EQ(0, wait_parked_asleep(c, KIPC_SYS_mbox_send, &ti));
	kill(c, SIGUSR1);
	EXPECT_EQ(0, kt_wait(c));
	char buf[4];
	EXPECT_EQ(-1, kipc_mbox_receive_timed(id, buf, sizeof buf, NULL, 0, 30 * MS));
	EXPECT_EQ(ETIMEDOUT, errno);
	kipc_mbox_destroy(id);
}

/* ---- the race ----------------------------------------------------- */

#define RACE_N 4000
#define RACE_MS 1500

struct race {
	struct kt_ledger led;
	int64_t id;        /* mailbox, or 0: direct to the receiver pid */
	pid_t receiver;
	int *stats;        /* shared: [0] send EINTR, [1] recv EINTR, [2] sent */
	struct kt_barrier *ready;
};

static void bombard(void)
{
	install(SIGALRM, 0);
	struct itimerval it = {{0, 300}, {0, 300}};
	setitimer(ITIMER_REAL, &it, NULL);
}

static void calm(void)
{
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGALRM);
	sigprocmask(SIG_BLOCK, &s, NULL);
}

static int race_sender(void *p)
{
	struct race *r = p;
	if (kipc_attach() < 0)
		return 100;
	kt_post(r->ready, 1);
	if (kt_wait_post(&r->ready[1], 1) < 0)
		return 101;
	bombard();
	int64_t end = __ksft_now_ms() + RACE_MS;
	unsigned id;
	for (id = 0; id < RACE_N - 1 && __ksft_now_ms() < end; id++) {
		int ret = r->id ? kipc_mbox_send(r->id, &id, sizeof id, 0, 0)
				: kipc_send(r->receiver, &id, sizeof id, 0, 0);
		if (ret == 0) {
			kt_ledger_sent(&r->led, id);
		} else if (errno == EINTR) {
			__atomic_fetch_add(&r->stats[0], 1, __ATOMIC_RELAXED);
		} else {
			ksft_print("# sender: %s\n", strerror(errno));
			return 102;
		}
	}
	calm();
	/* the end marker, sent without signals */
	unsigned end_id = RACE_N;
	int ret = r->id ? kipc_mbox_send(r->id, &end_id, sizeof end_id, 0, 0)
			: kipc_send(r->receiver, &end_id, sizeof end_id, 0, 0);
	return ret == 0 ? 0 : 103;
}

static int race_receiver(void *p)
{
	struct race *r = p;
	if (kipc_attach() < 0)
		return 100;
	if (!r->id) {
		/* direct: a zero-capacity task queue, so senders block too */
		struct kipc_mbox_attr a = kt_attr(0);
		if (kipc_taskq_setattr(&a) < 0)
			return 105;
	}
	kt_post(r->ready, 1);
	if (kt_wait_post(&r->ready[1], 1) < 0)
		return 101;
	bombard();
	for (;;) {
		unsigned id;
		ssize_t n = r->id ? kipc_mbox_receive(r->id, &id, sizeof id, NULL, 0)
				  : kipc_receive(KIPC_ANY, &id, sizeof id, NULL, 0);
		if (n < 0) {
			if (errno == EINTR) {
				__atomic_fetch_add(&r->stats[1], 1, __ATOMIC_RELAXED);
				continue;
			}
			ksft_print("# receiver: %s\n", strerror(errno));
			return 102;
		}
		if (n != sizeof id)
			return 103;
		if (id == RACE_N)
			break;
		if (!kt_ledger_received(&r->led, id))
			return 104;
	}
	calm();
	return 0;
}

static void run_race(struct __test_metadata *_metadata, uint32_t capacity, bool direct)
{
	struct race r;
	memset(&r, 0, sizeof r);
	ASSERT_EQ(0, kt_ledger_init(&r.led, RACE_N + 1));
	r.stats = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r.stats);
	struct kt_barrier b[2];
	ASSERT_EQ(0, kt_barrier_init(&b[0]));
	ASSERT_EQ(0, kt_barrier_init(&b[1]));
	r.ready = b;
	if (!direct) {
		r.id = kt_shared_mbox(capacity);
		ASSERT_LT(0, r.id);
	}
	pid_t rc = kt_fork(race_receiver, &r);
	ASSERT_LT(0, rc);
	r.receiver = rc;
	ASSERT_EQ(0, kt_wait_post(&b[0], 1));
	pid_t sc = kt_fork(race_sender, &r);
	ASSERT_LT(0, sc);
	ASSERT_EQ(0, kt_wait_post(&b[0], 1));
	kt_post(&b[1], 2);
	EXPECT_EQ(0, kt_wait_ms(sc, RACE_MS + KT_BOUND_MS));
	EXPECT_EQ(0, kt_wait_ms(rc, KT_BOUND_MS));
	unsigned nsent;
	EXPECT_EQ(0, kt_ledger_check(&r.led, &nsent));
	TH_LOG("%u messages delivered; EINTR: %d sends, %d receives", nsent,
	       r.stats[0], r.stats[1]);
	EXPECT_LT(0, nsent);
	if (r.id)
		kipc_mbox_destroy(r.id);
}

TEST_TIMEOUT(eintr_race_rendezvous_mailbox, 20)
{
	run_race(_metadata, 0, false);
}

TEST_TIMEOUT(eintr_race_bounded_mailbox, 20)
{
	run_race(_metadata, 1, false);
}

TEST_TIMEOUT(eintr_race_task_queue, 20)
{
	run_race(_metadata, 0, true);
}

KIPC_TEST_MAIN
