// SPDX-License-Identifier: MIT
/*
 * mq_handoff_test: a send to a POSIX queue with a receiver waiting hands
 * the message to that receiver, as Linux's pipelined_send() does
 * (kernel/ipc/mqueue.cc), with real processes and a real kipcd:
 *  - the queue stays empty: its descriptors never poll POLLIN, not even
 *    for a moment (an edge-triggered epoll of one sees no edge), and
 *    mq_notify does not fire (__do_notify needs no waiting receiver):
 *    it stays registered (a notification that fires is unregistered); the same send with nobody waiting does both,
 *    so the checks can see a change;
 *  - a receiver killed while parked, and reaped before the send is
 *    published (kipcd stopped meanwhile, so it sees the death and the
 *    send in one round), gets nothing: the message is queued, or goes
 *    to the receiver parked behind it, and is never lost.
 * These are the rules any hand-off without kipcd (a send credit for the
 * waiting receivers, Documentation/performance.md "fast-mqhand") must
 * keep.
 */
/* for stop_kipcd() and cont_kipcd(): its mailbox helpers are not used here */
#pragma GCC diagnostic ignored "-Wunused-function"
/* a push here goes back only when a test takes it back (push_idle_ms) */
#define KT_BOOT_PARAMS "push_idle_ms=600000"
#include "kt_helper.h"
#include "mq_helper.h"

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#include <kipc/introspect.h>

static char qname[64]; /* the test's queue: set before the helpers fork */
static struct mqd hd;  /* a helper's own open of it */

enum {
	C_MQOPEN = C_OWN, /* open qname with oflag arg (0 or -errno) */
	C_MQRECV,         /* a blocking receive: the value or -errno */
};

static int64_t own(const struct cmd *c)
{
	switch (c->op) {
	case C_MQOPEN:
		return mqd_open(qname, (unsigned)c->arg, 4, &hd) < 0 ? -errno : 0;
	case C_MQRECV:
		return mq_recv1(&hd, 0);
	default:
		return -EINVAL;
	}
}

static int mq_helper_loop(int in, int out)
{
	return helper_serve(in, out, own);
}

/* A helper with its own open of qname (oflag). 0 or -1. */
static int start(struct helper *h, unsigned oflag)
{
	if (helper_start(h, mq_helper_loop) < 0)
		return -1;
	return helper_do(h, (struct cmd){.op = C_MQOPEN, .arg = oflag}) == 0 ? 0 : -1;
}

/* Give helper h a blocking receive and wait until kipcd has parked it. 0 or -1. */
static int park_receive(struct helper *h)
{
	struct cmd c = {.op = C_MQRECV};
	if (write(h->down, &c, sizeof c) != sizeof c)
		return -1;
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (__ksft_now_ms() < deadline) {
		struct kipc_task_info ti;
		if (kipc_task_info(h->pid, &ti) == 0 && ti.state == KIPC_TASK_BLOCKED &&
		    ti.wait_op == KIPC_SYS_mq_timedreceive)
			return 0;
		sched_yield();
	}
	return -1;
}

/* Notifications (SIGUSR1) this process got: any of its threads may take one. */
static volatile sig_atomic_t nsig;

static void on_usr1(int sig)
{
	(void)sig;
	nsig++;
}

/* Wait (bounded) until nsig reaches want. 0 or -1. */
static int wait_nsig(int want)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (nsig < want && __ksft_now_ms() < deadline)
		sched_yield();
	return nsig >= want ? 0 : -1;
}

/* Edges to readable the edge-triggered epoll ep saw since we last asked. */
static int edges(int ep)
{
	struct epoll_event ev;
	return epoll_wait(ep, &ev, 1, 0);
}

TEST(a_handed_message_changes_no_poll_state_and_fires_no_notification)
{
	ASSERT_EQ(0, kipc_attach());
	kt_name(qname, sizeof qname, "mqhand");
	struct mqd d;
	ASSERT_EQ(0, mqd_open(qname, KIPC_MQ_RDWR | KIPC_O_CREAT, 4, &d));
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	nsig = 0;
	struct kipc_mq_notify n;
	memset(&n, 0, sizeof n);
	n.notify = KIPC_MQ_SIGEV_SIGNAL;
	n.signo = SIGUSR1;
	ASSERT_LE(0, kipc_mq_notify(d.h, d.fd, &n));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, d.fd, &ev));
	ASSERT_EQ(0, edges(ep));

	struct helper r;
	ASSERT_EQ(0, start(&r, KIPC_MQ_RDONLY));
	for (uint32_t v = 1; v <= 3; v++) {
		ASSERT_EQ(0, park_receive(&r));
		ASSERT_EQ(0, kipc_mq_timedsend(d.h, d.fd, &v, sizeof v, 0, 0, 0));
		EXPECT_EQ(v, helper_answer(&r));
		/* Its completion came after anything the send changed. */
		EXPECT_EQ(0, curmsgs(&d));
		EXPECT_EQ(POLLOUT, poll_now(d.fd));
		EXPECT_EQ(0, edges(ep));
		EXPECT_EQ(0, nsig);
	}
	/* not fired: a notification that fires is unregistered */
	EXPECT_EQ(-1, kipc_mq_notify(d.h, d.fd, &n));
	EXPECT_EQ(EBUSY, errno);

	/* Nobody waiting: the same send queues, POLLIN, the notification fires. */
	uint32_t v = 4;
	ASSERT_EQ(0, kipc_mq_timedsend(d.h, d.fd, &v, sizeof v, 0, 0, 0));
	EXPECT_EQ(1, curmsgs(&d));
	EXPECT_EQ(POLLIN | POLLOUT, poll_now(d.fd));
	EXPECT_EQ(1, edges(ep));
	EXPECT_EQ(0, wait_nsig(1));
	EXPECT_EQ(1, nsig);
	EXPECT_EQ(4, mq_recv1(&d, KIPC_F_NONBLOCK));

	helper_stop(&r);
	close(ep);
	signal(SIGUSR1, SIG_DFL);
	mqd_close(&d);
	kipc_mq_unlink(qname);
}

struct sender {
	const struct mqd *d;
	pid_t tid;
	int res;
};

static void *send7(void *arg)
{
	struct sender *s = arg;
	uint32_t v = 7;
	__atomic_store_n(&s->tid, (pid_t)gettid(), __ATOMIC_RELEASE);
	s->res = kipc_mq_timedsend(s->d->h, s->d->fd, &v, sizeof v, 0, 0, 0) < 0 ? -errno : 0;
	return NULL;
}

/* The state letter of thread tid of this process, or 0. */
static char thread_state(pid_t tid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	char *p = fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
	fclose(f);
	return p && p[1] == ' ' ? p[2] : 0;
}

/*
 * Receiver k (and, with two, a second one behind it) parked; kipcd
 * stopped; k killed and reaped; then a send published; kipcd goes on.
 * The send succeeds and its message is the second receiver's, or queued.
 * The sender is one of our threads: kipcd was stopped while it polled
 * our ring (our wait for k's park kept it busy), so it may go on in the
 * middle of its round and take the send before it reads k's exit.
 */
static void killed_receiver(struct __test_metadata *_metadata, bool second)
{
	ASSERT_EQ(0, kipc_attach());
	kt_name(qname, sizeof qname, second ? "mqkill2" : "mqkill");
	struct mqd d;
	ASSERT_EQ(0, mqd_open(qname, KIPC_MQ_RDWR | KIPC_O_CREAT, 4, &d));
	struct helper k, r2;
	if (second) {
		ASSERT_EQ(0, start(&r2, KIPC_MQ_RDONLY));
	}
	ASSERT_EQ(0, start(&k, KIPC_MQ_RDONLY));
	ASSERT_EQ(0, park_receive(&k));
	if (second)
		ASSERT_EQ(0, park_receive(&r2));
	ASSERT_EQ(0, stop_kipcd());
	kill(k.pid, SIGKILL);
	int st;
	pid_t w = waitpid(k.pid, &st, 0);
	EXPECT_EQ(k.pid, w);
	EXPECT_TRUE(WIFSIGNALED(st));
	close(k.down);
	close(k.up);
	struct sender snd = {.d = &d};
	pthread_t th;
	ASSERT_EQ(0, pthread_create(&th, NULL, send7, &snd));
	/* asleep: its send is published (libkipc sleeps only after) */
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	pid_t tid = 0;
	while (__ksft_now_ms() < deadline &&
	       (!(tid = __atomic_load_n(&snd.tid, __ATOMIC_ACQUIRE)) || thread_state(tid) != 'S'))
		sched_yield();
	cont_kipcd();
	pthread_join(th, NULL);
	EXPECT_EQ(0, snd.res);
	if (second) {
		EXPECT_EQ(7, helper_answer(&r2));
		EXPECT_EQ(0, curmsgs(&d));
		helper_stop(&r2);
	} else {
		EXPECT_EQ(1, curmsgs(&d));
		EXPECT_EQ(7, mq_recv1(&d, KIPC_F_NONBLOCK));
	}
	EXPECT_EQ(0, curmsgs(&d));
	mqd_close(&d);
	kipc_mq_unlink(qname);
}

TEST(a_receiver_killed_while_parked_leaves_the_message_queued)
{
	killed_receiver(_metadata, false);
}

TEST(a_receiver_killed_while_parked_leaves_the_message_to_the_next)
{
	killed_receiver(_metadata, true);
}

KIPC_TEST_MAIN
