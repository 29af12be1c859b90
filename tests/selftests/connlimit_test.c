// SPDX-License-Identifier: MIT
/*
 * connlimit_test: connections and descriptors (issue 10, items 4 and 8;
 * Documentation/security.md).
 *  - hellos of 31, 33 and 200,000 bytes are refused (EPROTO), 32 attach;
 *  - one uid's silent connections are bounded (64: then EAGAIN at once)
 *    while another uid still attaches;
 *  - a kernel whose RLIMIT_NOFILE is exhausted by silent connections
 *    does not spin, refuses what it cannot take (EMFILE), closes silent
 *    connections at their deadline (ETIMEDOUT), and serves attaches
 *    again: with the io_uring loop and with the epoll loop.
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

static void exhaust(struct __test_metadata *_metadata, const char *loop)
{
	setenv("KIPC_LOOP", loop, 1);
	struct kt_kernel k;
	KT_BOOT_AND_USE(&k, NULL);
	struct rlimit rl = {48, 48};
	ASSERT_EQ(0, prlimit(k.pid, RLIMIT_NOFILE, &rl, NULL));

	/* More silent connections than the kernel has descriptors. */
	enum { N = 60 };
	int fds[N];
	for (int i = 0; i < N; i++) {
		fds[i] = kt_connect(k.sock, SOCK_NONBLOCK);
		ASSERT_LE(0, fds[i]);
	}
	/* The kernel ran out: it refuses one on its reserve descriptor. */
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	bool shed = false;
	while (!shed && __ksft_now_ms() < deadline) {
		struct pollfd p[N];
		for (int i = 0; i < N; i++)
			p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
		ASSERT_LE(0, poll(p, N, 100));
		for (int i = 0; i < N; i++)
			if (p[i].revents & POLLIN)
				shed |= answer(fds[i], 0) == -EMFILE;
	}
	EXPECT_TRUE(shed) TH_LOG("no connection was refused with EMFILE");

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
	/* The accepted silent connections were closed at their deadline. */
	int timed_out = 0;
	for (int i = 0; i < N; i++)
		if (answer(fds[i], 0) == -ETIMEDOUT)
			timed_out++;
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
