// SPDX-License-Identifier: MIT
/*
 * pidbind_test: a task is bound to its process, not to a pid number
 * (issue 10, item 2; Documentation/security.md).
 *  - a process connects, hands the socket to a grandchild and exits: the
 *    grandchild's hello is refused (ESRCH);
 *  - a process attaches, hands its attachment to a grandchild and exits:
 *    the task ends, the grandchild's calls fail ECONNRESET;
 *  - the same, with an mq_notify(SIGEV_SIGNAL) registered and the pid
 *    then given to a new process (clone3 set_tid, root only): the new
 *    process never gets the signal, and it can attach under its pid.
 *
 * The children that must keep their parent's attachment are made with a
 * raw fork (no pthread_atfork handlers), as an attacker would.
 */
#include "kipc_test.h"

#include <kipc/mqueue.h>
#include <kipc/ring.h>
#include <linux/sched.h>
#include <sys/syscall.h>

static pid_t raw_fork(void)
{
	return (pid_t)syscall(SYS_fork);
}

/* Send a hello on fd and return the kernel's error (0: attached). */
static int hello(int fd)
{
	struct kipc_attach_req req = {
		.magic = KIPC_MAGIC,
		.version_min = KIPC_PROTO_VERSION,
		.version_max = KIPC_PROTO_VERSION,
	};
	if (send(fd, &req, sizeof req, MSG_NOSIGNAL) != sizeof req)
		return -1000;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, KT_BOUND_MS) != 1)
		return -1001;
	struct kipc_attach_resp resp;
	ssize_t n = recv(fd, &resp, sizeof resp, 0); /* descriptors: closed */
	if (n != sizeof resp)
		return -1002;
	return resp.error;
}

/* Reap pid: 0 once it is gone. */
static int reap(pid_t pid)
{
	return kt_wait(pid) == 0 ? 0 : -1;
}

/*
 * A child runs prepare() (0, or its exit code) and forks a grandchild
 * with forker(), then exits. Once the child is reaped, the grandchild
 * runs result(); its value, read back within ms, goes to *out.
 */
static void orphan_result(struct __test_metadata *_metadata, int (*prepare)(void),
			  pid_t (*forker)(void), int (*result)(void), int ms, int *out)
{
	struct kt_barrier go;
	ASSERT_EQ(0, kt_barrier_init(&go));
	int res[2];
	ASSERT_EQ(0, pipe(res));
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		int e = prepare();
		if (e)
			_exit(e);
		pid_t g = forker();
		if (g < 0)
			_exit(2);
		if (g == 0) {
			/* the grandchild: waits until its parent is reaped */
			if (kt_wait_post(&go, 1) < 0)
				_exit(3);
			int err = result();
			if (write(res[1], &err, sizeof err) != sizeof err)
				_exit(4);
			_exit(0);
		}
		_exit(0);
	}
	ASSERT_EQ(0, reap(c));
	kt_post(&go, 1);
	struct pollfd p = {.fd = res[0], .events = POLLIN};
	ASSERT_EQ(1, poll(&p, 1, ms));
	ASSERT_EQ((ssize_t)sizeof *out, read(res[0], out, sizeof *out));
	close(res[0]);
	close(res[1]);
	kt_barrier_destroy(&go);
}

static int conn = -1; /* the child's connection, for the grandchild */

static int connect_only(void)
{
	conn = kt_connect(NULL, 0);
	return conn < 0 ? 1 : 0;
}

static int hello_on_conn(void)
{
	return hello(conn);
}

TEST(socket_handed_to_grandchild_hello_refused)
{
	int err = 0;
	orphan_result(_metadata, connect_only, fork, hello_on_conn, KT_BOUND_MS, &err);
	EXPECT_EQ(-ESRCH, err);
}

static int attach_only(void)
{
	return kipc_attach() < 0 ? 1 : 0;
}

/*
 * The task dies with its process: wait for that state. A call in flight
 * when it ends fails with ECONNRESET (the errno returned); a call made
 * after the library saw it end attaches this process anew, as its own
 * task (0). ETIMEDOUT: the inherited task outlived its process.
 */
static int nop_until_it_fails(void)
{
	pid_t owner = kipc_task_pid(); /* the child's task */
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (__ksft_now_ms() < deadline) {
		if (kipc_nop() < 0)
			return errno;
		pid_t t = kipc_task_pid();
		if (t == getpid())
			return 0;
		if (t >= 0 && t != owner)
			return EPROTO;
	}
	return ETIMEDOUT;
}

TEST(attachment_handed_to_grandchild_task_ends)
{
	int err = -1;
	/* raw_fork keeps the attachment */
	orphan_result(_metadata, attach_only, raw_fork, nop_until_it_fails, 2 * KT_BOUND_MS, &err);
	EXPECT_TRUE(err == ECONNRESET || err == 0) TH_LOG("the grandchild's calls: %s", strerror(err));
}

/* A new process with the given pid (clone3 set_tid), or -errno. */
static pid_t fork_with_pid(pid_t want)
{
	struct clone_args args;
	memset(&args, 0, sizeof args);
	pid_t tid = want;
	args.exit_signal = SIGCHLD;
	args.set_tid = (uint64_t)(uintptr_t)&tid;
	args.set_tid_size = 1;
	long r = syscall(SYS_clone3, &args, sizeof args);
	return r < 0 ? -errno : (pid_t)r;
}

static int send_to_queue(void *name)
{
	struct kipc_mq_open o = {.oflag = KIPC_MQ_WRONLY};
	int64_t q = kipc_mq_open(name, &o);
	if (q < 0)
		return 10;
	return kipc_mq_timedsend(q, -1, "m", 1, 0, 0, 0) == 0 ? 0 : 11;
}

TEST(recycled_pid_gets_no_signal_and_can_attach)
{
	char name[64];
	snprintf(name, sizeof name, "/pidbind-%d", getpid());
	struct kt_barrier ready, go, check;
	ASSERT_EQ(0, kt_barrier_init(&ready));
	ASSERT_EQ(0, kt_barrier_init(&go));
	ASSERT_EQ(0, kt_barrier_init(&check));
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		struct kipc_mq_open o = {.oflag = KIPC_MQ_RDWR | KIPC_O_CREAT,
					 .mode = 0600};
		int64_t q = kipc_mq_open(name, &o);
		struct kipc_mq_notify n = {.notify = KIPC_MQ_SIGEV_SIGNAL,
					   .signo = SIGUSR1};
		if (q < 0 || kipc_mq_notify(q, -1, &n) < 0)
			_exit(1);
		pid_t g = raw_fork(); /* the attacker keeps the attachment */
		if (g < 0)
			_exit(2);
		if (g == 0) {
			kt_wait_post(&go, 1);
			_exit(0);
		}
		_exit(0);
	}
	ASSERT_EQ(0, reap(c));
	/* The pid is free: give it to a new process. */
	pid_t r = fork_with_pid(c);
	if (r == -EPERM || r == -EEXIST || r == -ENOSYS || r == -EINVAL) {
		kt_post(&go, 1);
		SKIP(return, "clone3 set_tid: %s", strerror(-r));
	}
	ASSERT_LE(0, r);
	if (r == 0) {
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, SIGUSR1);
		sigprocmask(SIG_BLOCK, &s, NULL);
		/* The real owner of the pid attaches under it. */
		int att = kipc_attach() == 0 ? 0 : errno;
		pid_t me = kipc_task_pid();
		kt_post(&ready, 1);
		if (kt_wait_post(&check, 1) < 0)
			_exit(20);
		sigset_t pend;
		sigpending(&pend);
		if (sigismember(&pend, SIGUSR1))
			_exit(21); /* got the other process's notification */
		if (att)
			_exit(att == EEXIST ? 22 : 23);
		_exit(me == getpid() ? 0 : 24);
	}
	ASSERT_EQ(c, r);
	ASSERT_EQ(0, kt_wait_post(&ready, 1));
	/* The queue is empty: a send fires a registered notification, inside
	 * the send, before it completes. */
	pid_t s = kt_fork(send_to_queue, name);
	ASSERT_EQ(0, kt_wait(s));
	kt_post(&check, 1);
	int st = kt_wait(r);
	EXPECT_NE(21, st) TH_LOG("the notify signal reached the pid's new process");
	EXPECT_NE(22, st) TH_LOG("the pid's new owner got EEXIST on attach");
	EXPECT_EQ(0, st);
	kt_post(&go, 1);
	kt_barrier_destroy(&ready);
	kt_barrier_destroy(&go);
	kt_barrier_destroy(&check);
}

KIPC_TEST_MAIN
