// SPDX-License-Identifier: MIT
/*
 * connlimit_test: connections and descriptors (issue 10, items 4 and 8;
 * Documentation/security.md).
 *  - hellos of 31, 33 and 200,000 bytes are refused (EPROTO), 32 attach;
 *  - one uid's silent connections are bounded (64: then EAGAIN at once)
 *    while another uid still attaches;
 *  - a kernel whose RLIMIT_NOFILE is exhausted by silent connections
 *    does not spin, refuses what it cannot take (EMFILE), closes silent
 *    connections at their deadline (ETIMEDOUT; hello_timeout_ms=300
 *    here), answers every one, and serves attaches again: with the
 *    io_uring loop and with the epoll loop.
 */
#include "kipc_test.h"

#include <grp.h>
#include <kipc/ring.h>
#include <sys/resource.h>

/* The kernel's answer on fd within ms: its error, or -1000 (none). */
static int answer(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, ms) != 1)
		return -1000;
	struct kipc_attach_resp r;
	ssize_t n = recv(fd, &r, sizeof r, MSG_DONTWAIT);
	if (n != sizeof r)
		return -1001;
	return r.error;
}

static int hello_of(size_t len)
{
	int fd = kt_connect(NULL, 0);
	if (fd < 0)
		return -2000;
	char *b = calloc(1, len);
	struct kipc_attach_req req = {
		.magic = KIPC_MAGIC,
		.version_min = KIPC_PROTO_VERSION,
		.version_max = KIPC_PROTO_VERSION,
	};
	memcpy(b, &req, len < sizeof req ? len : sizeof req);
	int err = send(fd, b, len, MSG_NOSIGNAL) == (ssize_t)len ? answer(fd, KT_BOUND_MS) : -2001;
	free(b);
	close(fd);
	return err;
}

TEST(hello_sizes)
{
	EXPECT_EQ(-EPROTO, hello_of(31));
	EXPECT_EQ(-EPROTO, hello_of(33));
	EXPECT_EQ(-EPROTO, hello_of(200000));
	EXPECT_EQ(0, hello_of(32));
}

static int attach_as(uid_t uid)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (uid && (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0))
			_exit(99);
		_exit(kipc_attach() == 0 && kipc_nop() == 0 ? 0 : errno);
	}
	return kt_wait(pid);
}

TEST(silent_connections_bounded_per_uid)
{
	if (geteuid() != 0)
		SKIP(return, "needs root to switch uids");
	enum { N = 70 };
	int fds[N];
	for (int i = 0; i < N; i++) {
		fds[i] = kt_connect(NULL, SOCK_NONBLOCK);
		ASSERT_LE(0, fds[i]);
	}
	/* Past 64 silent connections of our uid: EAGAIN at once. */
	for (int i = 64; i < N; i++)
		EXPECT_EQ(-EAGAIN, answer(fds[i], KT_BOUND_MS));
	/* Another uid is still served. */
	EXPECT_EQ(0, attach_as(61004));
	for (int i = 0; i < N; i++)
		close(fds[i]);
	/* And so are we, once ours are gone. */
	EXPECT_EQ(0, attach_as(0));
}

/* utime + stime of pid in ms. */
static int64_t cpu_ms(pid_t pid)
{
	char p[64], line[1024];
	snprintf(p, sizeof p, "/proc/%d/stat", pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	char *ok = fgets(line, sizeof line, f);
	fclose(f);
	if (!ok)
		return -1;
	char *q = strrchr(line, ')');
	unsigned long long ut, st;
	if (!q || sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return -1;
	return (int64_t)(ut + st) * 1000 / sysconf(_SC_CLK_TCK);
}

/* The kernel's answers on fds[0..n) that have none yet in ans[] (-1000),
 * until pred(ans, n) holds or KT_BOUND_MS passed; pred's last value. */
static bool answers_until(const int *fds, int *ans, int n, bool (*pred)(const int *, int))
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (!pred(ans, n) && __ksft_now_ms() < deadline) {
		struct pollfd p[n];
		for (int i = 0; i < n; i++)
			p[i] = (struct pollfd){.fd = ans[i] == -1000 ? fds[i] : -1, .events = POLLIN};
		if (poll(p, n, 100) < 0)
			return false;
		for (int i = 0; i < n; i++)
			if (p[i].revents)
				ans[i] = answer(fds[i], 0);
	}
	return pred(ans, n);
}

static bool one_refused(const int *ans, int n)
{
	for (int i = 0; i < n; i++)
		if (ans[i] == -EMFILE)
			return true;
	return false;
}

static bool all_answered(const int *ans, int n)
{
	for (int i = 0; i < n; i++)
		if (ans[i] == -1000)
			return false;
	return true;
}

static void exhaust(struct __test_metadata *_metadata, const char *loop)
{
	setenv("KIPC_LOOP", loop, 1);
	struct kt_kernel k;
	/* Silent connections are closed after 300 ms (5 s by default). */
	const char *params[] = {"hello_timeout_ms=300", NULL};
	KT_BOOT_AND_USE(&k, params);
	struct rlimit rl = {48, 48};
	ASSERT_EQ(0, prlimit(k.pid, RLIMIT_NOFILE, &rl, NULL));

	/* More silent connections than the kernel has descriptors, all
	 * there when it next looks (it is stopped while they connect): it
	 * takes what it can, and their deadlines start together. */
	enum { N = 60 };
	int fds[N], ans[N];
	ASSERT_EQ(0, kill(k.pid, SIGSTOP));
	for (int i = 0; i < N; i++) {
		fds[i] = kt_connect(k.sock, SOCK_NONBLOCK);
		ans[i] = -1000;
		if (fds[i] < 0)
			kill(k.pid, SIGCONT);
		ASSERT_LE(0, fds[i]);
	}
	ASSERT_EQ(0, kill(k.pid, SIGCONT));
	/* The kernel ran out: it refuses one on its reserve descriptor. */
	EXPECT_TRUE(answers_until(fds, ans, N, one_refused))
		TH_LOG("no connection was refused with EMFILE");

	/* An attach now waits in the backlog until the silent connections'
	 * deadline frees descriptors, or is refused EMFILE; it never hangs,
	 * and the kernel does not spin meanwhile. */
	int64_t cpu0 = cpu_ms(k.pid), t0 = __ksft_now_ms();
	int st = attach_as(0);
	int64_t cpu1 = cpu_ms(k.pid), t1 = __ksft_now_ms();
	ksft_print("# %s: attach under exhaustion: %s after %lld ms; kipcd CPU %lld ms\n",
		   loop, st ? strerror(st) : "attached", (long long)(t1 - t0),
		   (long long)(cpu1 - cpu0));
	EXPECT_TRUE(st == 0 || st == EMFILE) TH_LOG("attach under exhaustion: %d", st);
	EXPECT_LT((cpu1 - cpu0) * 2, t1 - t0 + 20)
		TH_LOG("kipcd used %lld ms of CPU in %lld ms", (long long)(cpu1 - cpu0),
		       (long long)(t1 - t0));
	/* Every silent connection is answered: refused (EMFILE) or closed
	 * at its deadline (ETIMEDOUT), none held for ever. */
	EXPECT_TRUE(answers_until(fds, ans, N, all_answered));
	int timed_out = 0;
	for (int i = 0; i < N; i++) {
		timed_out += ans[i] == -ETIMEDOUT;
		EXPECT_TRUE(ans[i] == -ETIMEDOUT || ans[i] == -EMFILE)
			TH_LOG("connection %d: %d", i, ans[i]);
	}
	EXPECT_LT(0, timed_out);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	/* Recovery: attaches are served again. */
	EXPECT_EQ(0, attach_as(0));
	EXPECT_EQ(0, attach_as(0));
	int sst = kt_kernel_stop(&k, SIGTERM);
	EXPECT_TRUE(WIFEXITED(sst) && WEXITSTATUS(sst) == 0);
	kt_kernel_cleanup_dir(&k);
}

TEST(fd_exhaustion_recovers_io_uring)
{
	exhaust(_metadata, "io_uring");
}

TEST(fd_exhaustion_recovers_epoll)
{
	exhaust(_metadata, "epoll");
}

KIPC_TEST_MAIN
