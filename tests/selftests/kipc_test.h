/* SPDX-License-Identifier: MIT */
/*
 * kipc_test.h - helpers for kipc selftests (include after
 * kselftest_harness.h is pulled in; this header includes it).
 *
 *  - Booting a private kernel: KIPC_TEST_MAIN boots one kipcd for the
 *    whole program on a socket in a fresh mkdtemp directory, exports
 *    KIPC_SOCKET for libkipc (and KIPC_AUTOSTART=0, so a dead kernel is
 *    never silently replaced), runs the tests, then stops the kernel with
 *    SIGTERM and reports "kernel_exit_clean" as one more test: it passes
 *    when kipcd exited 0. kipcd is $KIPC_KIPCD, else $KIPCD, else
 *    ../../bin/kipcd next to the test binary; the loop is $KIPC_LOOP
 *    (passed as --loop); the kernel's log goes to <dir>/kipcd.log and is
 *    shown when something goes wrong.
 *    A test may boot a kernel of its own with kt_kernel_boot() (to kill it,
 *    or to give it boot parameters); it uses it after kt_kernel_use().
 *    Every kernel boots with the limits the selftests are written for
 *    (KT_LIMITS: configs/kipc_defconfig's), whatever .config says, then
 *    the program's KT_BOOT_PARAMS (define it before including this
 *    header: "msg_max=64", "taskq_capacity=8"), then a test's own params.
 *    A kernel a test left running (a failed ASSERT skips its cleanup) is
 *    killed after the test and its directory removed, by the runner.
 *
 *  - Processes: kt_fork() runs a function in a child and exits with its
 *    return value; kt_wait() reaps it with a generous bound and checks the
 *    exit status.
 *
 *  - Sequencing: struct kt_barrier, a pipe that one side posts to and the
 *    other waits on (with a bound: a lost post fails the test, it does
 *    not hang it). Both ends stay open in every process.
 *
 *  - struct kt_ledger: shared counters per message id: how often it was
 *    sent successfully and how often it was received, for "nothing lost,
 *    nothing duplicated" checks.
 *
 *  - Waiting for a kernel state without sleeping for a guessed time:
 *    kt_wait_mbox() polls kipc_mbox_stat() until a count is exactly n.
 */
#ifndef _KIPC_KIPC_TEST_H
#define _KIPC_KIPC_TEST_H

#include "kselftest_harness.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <kipc/kipc.h>
#include <kipc/libkipc.h>
#include <kipc/ring.h>

#define KT_BOUND_MS 10000 /* "does not hang": generous bound for a wait */

/* ------------------------------------------------------------------ */
/* Small things                                                        */

static inline int64_t kt_now_ns(void)
{
	return kipc_clock_ns(CLOCK_MONOTONIC);
}

static inline int64_t kt_realtime_ns(void)
{
	return kipc_clock_ns(CLOCK_REALTIME);
}

/* The scheduler state of pid ('R', 'S', ...) from /proc, or 0. */
static inline char kt_proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *e = strrchr(buf, ')');
	return e && e[1] == ' ' ? e[2] : 0;
}

static inline void kt_sleep_ms(int ms)
{
	struct timespec ts = kipc_ns_timespec(ms * 1000000ll);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A mailbox name unique to this process and tag: "/kt-<pid>-<tag>". */
static inline const char *kt_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/kt-%d-%s", (int)getpid(), tag);
	return buf;
}

/* Default mailbox attributes with the given capacity. */
static inline struct kipc_mbox_attr kt_attr(uint32_t capacity)
{
	struct kipc_mbox_attr a;
	memset(&a, 0, sizeof a);
	a.capacity = capacity;
	a.mode = 0600;
	return a;
}

/* The attributes of a mailbox every test process may use: kernel-owned
 * (it outlives the task that made it), mode 0666. */
static inline struct kipc_mbox_attr kt_shared_attr(uint32_t capacity)
{
	struct kipc_mbox_attr a = kt_attr(capacity);
	a.flags = KIPC_MBOX_KERNEL_OWNED;
	a.mode = 0666;
	return a;
}

/* A new anonymous mailbox of that kind: its id, or -1 (errno). */
static inline int64_t kt_shared_mbox(uint32_t capacity)
{
	struct kipc_mbox_attr a = kt_shared_attr(capacity);
	return kipc_mbox_open(NULL, 0, &a);
}

/* A new buffer of len bytes in the async arena (kipc_buf_alloc). */
static inline char *kt_buf(struct __test_metadata *_metadata, size_t len)
{
	char *b = kipc_buf_alloc(len);
	ASSERT_NE(NULL, b);
	return b;
}

/* An async receive from the own task queue into buf (len bytes of the
 * async arena), flags as for kipc_prep_receive: the entry, unsubmitted. */
static inline struct kipc_sqe *kt_prep_receive(struct __test_metadata *_metadata, void *buf,
					       uint32_t len, uint32_t flags)
{
	struct kipc_sqe *sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_receive(sqe, KIPC_ANY, buf, len, flags);
	return sqe;
}

/* The same with user data ud, submitted alone. */
static inline void kt_submit_receive(struct __test_metadata *_metadata, void *buf, uint32_t len,
				     uint64_t ud)
{
	struct kipc_sqe *sqe = kt_prep_receive(_metadata, buf, len, 0);
	kipc_sqe_set_data(sqe, ud);
	ASSERT_EQ(1, kipc_submit());
}

/* ------------------------------------------------------------------ */
/* A private kernel                                                    */

struct kt_kernel {
	pid_t pid;
	char dir[256];
	char sock[PATH_MAX];
	char log[PATH_MAX];
	int slot;  /* in kt_reg, -1: not tracked */
};

static struct kt_kernel kt_main_kernel;

/* The limits of configs/kipc_defconfig: what the selftests assume. */
#define KT_LIMITS "msg_default=10", "msg_max=1024", "msgsize_default=8192", \
	"msgsize_max=65536", "mbox_per_user=256", "bytes_per_user=819200", \
	"taskq_capacity=64", "tasks_per_user=1024"

/*
 * Kernels booted by tests, in memory shared by the runner and the test
 * processes (mapped by the runner's setup, before any test forks): the
 * runner cleans up after each test what the test did not.
 */
#define KT_MAX_KERNELS 16
struct kt_reg {
	struct {
		int used;
		pid_t pid;
		char dir[256];
	} k[KT_MAX_KERNELS];
};
static struct kt_reg *kt_reg;

static inline void kt_reg_track(struct kt_kernel *k)
{
	k->slot = -1;
	for (int i = 0; kt_reg && i < KT_MAX_KERNELS; i++) {
		if (!__atomic_exchange_n(&kt_reg->k[i].used, 1, __ATOMIC_SEQ_CST)) {
			kt_reg->k[i].pid = 0;
			snprintf(kt_reg->k[i].dir, sizeof kt_reg->k[i].dir, "%s", k->dir);
			k->slot = i;
			return;
		}
	}
}

static inline void kt_reg_pid(struct kt_kernel *k, pid_t pid)
{
	if (kt_reg && k->slot >= 0)
		kt_reg->k[k->slot].pid = pid;
}

/* Remove a kernel's directory and whatever is in it (socket, log, ...). */
static inline void kt_rm_dir(const char *dir)
{
	char cmd[PATH_MAX + 32];
	if (dir[0] != '/' || !strstr(dir, "/kipc-selftest.") || strchr(dir, '\''))
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		ksft_print("# cleanup: cannot remove %s\n", dir);
}

/* Is pid a running (not zombie) kipcd of dir? */
static inline bool kt_kernel_of(pid_t pid, const char *dir)
{
	char p[64], buf[4096];
	snprintf(p, sizeof p, "/proc/%d/cmdline", (int)pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false; /* a zombie has no command line */
	for (ssize_t i = 0; i < n; i++)
		if (!buf[i])
			buf[i] = ' ';
	buf[n] = '\0';
	return strstr(buf, dir) != NULL;
}

/* The runner, after each test: what the test left behind goes. */
static inline void __kt_after_each(void)
{
	if (kt_main_kernel.pid > 0) /* a test killed while it had kipcd stopped */
		kill(kt_main_kernel.pid, SIGCONT);
	for (int i = 0; kt_reg && i < KT_MAX_KERNELS; i++) {
		if (!kt_reg->k[i].used)
			continue;
		pid_t pid = kt_reg->k[i].pid;
		if (pid > 0 && kt_kernel_of(pid, kt_reg->k[i].dir)) {
			ksft_print("# cleanup: the test left kipcd %d running: killed\n", (int)pid);
			kill(pid, SIGKILL);
			int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
			while (kt_kernel_of(pid, kt_reg->k[i].dir) && __ksft_now_ms() < deadline)
				kt_sleep_ms(2);
		}
		kt_rm_dir(kt_reg->k[i].dir);
		kt_reg->k[i].pid = 0;
		__atomic_store_n(&kt_reg->k[i].used, 0, __ATOMIC_SEQ_CST);
	}
}

/* The kipcd binary, or "" when none is found. */
static inline void kt_find_kipcd(char *buf, size_t len)
{
	const char *e = getenv("KIPC_KIPCD");
	if (!e || !*e)
		e = getenv("KIPCD");
	if (e && *e) {
		snprintf(buf, len, "%s", e);
		return;
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	buf[0] = '\0';
	if (n <= 0)
		return;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash)
		return;
	*slash = '\0';
	if (snprintf(buf, len, "%s/../../bin/kipcd", exe) >= (int)len ||
	    access(buf, X_OK) != 0)
		buf[0] = '\0';
}

/* A connection to the kernel socket at path (NULL: $KIPC_SOCKET), made
 * by hand (no handshake); extra: socket(2) flags such as SOCK_NONBLOCK.
 * The fd, or -1. */
static inline int kt_connect(const char *path, int extra)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!path)
		path = getenv("KIPC_SOCKET");
	if (!path || strlen(path) >= sizeof sa.sun_path)
		return -1;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | extra, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Can we connect to path? */
static inline bool kt_socket_accepts(const char *path)
{
	int fd = kt_connect(path, 0);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Print the kernel log as diagnostics (the last lines). */
static inline void kt_kernel_dump_log(const struct kt_kernel *k)
{
	FILE *f = fopen(k->log, "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		ksft_print("# kipcd: %s\n", line);
	}
	fclose(f);
}

/*
 * Boot kipcd --foreground on a socket in a fresh temporary directory,
 * with extra boot parameters (NULL-terminated, may be NULL). Waits until
 * the socket accepts (bounded). Returns 0, KSFT_SKIP (no kipcd binary) or
 * KSFT_FAIL, with a reason in why.
 */
static inline int kt_kernel_spawn(struct kt_kernel *k, const char *const *params,
				  char *why, size_t whylen);

static inline int kt_kernel_boot(struct kt_kernel *k, const char *const *params,
				 char *why, size_t whylen)
{
	memset(k, 0, sizeof *k);
	const char *tmp = getenv("TMPDIR");
	snprintf(k->dir, sizeof k->dir, "%s/kipc-selftest.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(k->dir)) {
		snprintf(why, whylen, "mkdtemp %.200s: %s", k->dir, strerror(errno));
		return KSFT_FAIL;
	}
	if (k != &kt_main_kernel)
		kt_reg_track(k);
	else
		k->slot = -1;
	/* Tests that drop privileges must still reach the socket. */
	chmod(k->dir, 0755);
	snprintf(k->sock, sizeof k->sock, "%s/kipcd.sock", k->dir);
	snprintf(k->log, sizeof k->log, "%s/kipcd.log", k->dir);
	return kt_kernel_spawn(k, params, why, whylen);
}

/*
 * Start kipcd on k's socket (again, after it died: a restart on the same
 * path, which clients attached to the old kernel reconnect to) and wait
 * until it accepts.
 */
static inline int kt_kernel_spawn(struct kt_kernel *k, const char *const *params,
				  char *why, size_t whylen)
{
	char kipcd[PATH_MAX];
	kt_find_kipcd(kipcd, sizeof kipcd);
	if (!kipcd[0]) {
		snprintf(why, whylen, "no kipcd (set KIPC_KIPCD or build build/bin/kipcd)");
		return KSFT_SKIP;
	}
	static const char *const limits[] = {KT_LIMITS,
#ifdef KT_BOOT_PARAMS
					     KT_BOOT_PARAMS,
#endif
					     NULL};
	const char *argv[48];
	int argc = 0;
	char loop[64] = "";
	argv[argc++] = kipcd;
	argv[argc++] = "--foreground";
	argv[argc++] = "--socket";
	argv[argc++] = k->sock;
	const char *l = getenv("KIPC_LOOP");
	if (l && *l) {
		snprintf(loop, sizeof loop, "--loop=%s", l);
		argv[argc++] = loop;
	}
	for (int i = 0; limits[i] && argc < 40; i++)
		argv[argc++] = limits[i];
	for (int i = 0; params && params[i] && argc < 46; i++)
		argv[argc++] = params[i];
	argv[argc] = NULL;

	pid_t pid = fork();
	if (pid < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		return KSFT_FAIL;
	}
	if (pid == 0) {
		/* Its own group: test cleanup kills never reach it by accident. */
		setpgid(0, 0);
		int fd = open(k->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			dup2(fd, STDOUT_FILENO);
		}
		if (null >= 0)
			dup2(null, STDIN_FILENO);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(kipcd, (char *const *)argv);
		dprintf(STDERR_FILENO, "exec %s: %s\n", kipcd, strerror(errno));
		_exit(127);
	}
	k->pid = pid;
	kt_reg_pid(k, pid);
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (!kt_socket_accepts(k->sock)) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			k->pid = 0;
			kt_kernel_dump_log(k);
			snprintf(why, whylen, "kipcd exited before it listened (status 0x%x)", st);
			return KSFT_FAIL;
		}
		if (__ksft_now_ms() > deadline) {
			kt_kernel_dump_log(k);
			snprintf(why, whylen, "kipcd did not listen within %d ms", KT_BOUND_MS);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			k->pid = 0;
			return KSFT_FAIL;
		}
		kt_sleep_ms(2);
	}
	return KSFT_PASS;
}

/* Make libkipc (in this process and what it forks later) use kernel k. */
static inline void kt_kernel_use(const struct kt_kernel *k)
{
	setenv("KIPC_SOCKET", k->sock, 1);
	setenv("KIPC_AUTOSTART", "0", 1);
}

/*
 * In a test: boot kernel k (params as for kt_kernel_boot) and use it.
 * The test is skipped when there is no kipcd and fails when it does not
 * boot (the reason is logged).
 */
#define KT_BOOT_AND_USE(k, params)                                             \
	do {                                                                   \
		char why_[256];                                                \
		int r_ = kt_kernel_boot(k, params, why_, sizeof why_);         \
		if (r_ == KSFT_SKIP)                                           \
			SKIP(return, "%s", why_);                              \
		ASSERT_EQ(KSFT_PASS, r_) TH_LOG("%s", why_);                   \
		kt_kernel_use(k);                                              \
	} while (0)

static inline void kt_kernel_cleanup_dir(struct kt_kernel *k)
{
	kt_rm_dir(k->dir);
	if (kt_reg && k->slot >= 0) {
		kt_reg->k[k->slot].pid = 0;
		__atomic_store_n(&kt_reg->k[k->slot].used, 0, __ATOMIC_SEQ_CST);
		k->slot = -1;
	}
}

/*
 * Stop the kernel with sig (SIGTERM: a clean shutdown; 0: send nothing,
 * it is exiting by itself) and reap it. Returns its wait status, or -1
 * when it did not exit within the bound (it is killed then).
 */
static inline int kt_kernel_stop(struct kt_kernel *k, int sig)
{
	int st = -1;
	if (k->pid > 0) {
		if (sig)
			kill(k->pid, sig);
		if (ksft_waitpid_timeout(k->pid, &st, KT_BOUND_MS) < 0) {
			kill(k->pid, SIGKILL);
			waitpid(k->pid, NULL, 0);
			st = -1;
		}
		k->pid = 0;
		kt_reg_pid(k, 0);
	}
	return st;
}

static inline int __kt_main_setup(char *why, size_t len)
{
	void *reg = mmap(NULL, sizeof *kt_reg, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (reg != MAP_FAILED)
		kt_reg = (struct kt_reg *)reg;
	int r = kt_kernel_boot(&kt_main_kernel, NULL, why, len);
	if (r == KSFT_PASS)
		kt_kernel_use(&kt_main_kernel);
	else if (kt_main_kernel.dir[0])
		kt_kernel_cleanup_dir(&kt_main_kernel);
	return r;
}

static inline int __kt_main_teardown(char *why, size_t len)
{
	int alive = kill(kt_main_kernel.pid, 0) == 0;
	int st = kt_kernel_stop(&kt_main_kernel, SIGTERM);
	int r = KSFT_PASS;
	if (!alive) {
		snprintf(why, len, "kipcd had already died");
		r = KSFT_FAIL;
	} else if (st == -1) {
		snprintf(why, len, "kipcd did not exit within %d ms of SIGTERM", KT_BOUND_MS);
		r = KSFT_FAIL;
	} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		if (WIFSIGNALED(st))
			snprintf(why, len, "kipcd died of signal %d", WTERMSIG(st));
		else
			snprintf(why, len, "kipcd exited with status %d", WEXITSTATUS(st));
		r = KSFT_FAIL;
	}
	if (r != KSFT_PASS || getenv("KIPC_TEST_SHOW_LOG"))
		kt_kernel_dump_log(&kt_main_kernel);
	kt_kernel_cleanup_dir(&kt_main_kernel);
	return r;
}

#define KIPC_TEST_MAIN                                                         \
	TEST_HARNESS_MAIN_HOOKS(__kt_main_setup, __kt_main_teardown,           \
				"kernel_exit_clean", .after_each = __kt_after_each)

/* ------------------------------------------------------------------ */
/* Processes                                                           */

/*
 * Run fn(arg) in a child process, which exits with fn's return value
 * (checks in the child fail the test through the shared result too).
 */
static inline pid_t kt_fork(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(fn(arg));
	return pid;
}

/* Made-up test users (no account needed: a root test switches to them). */
#define UID_A 60001
#define UID_B 60002

/* Skip a test that must switch uids unless it runs as root. */
#define NEED_ROOT()                                                     \
	do {                                                            \
		if (geteuid() != 0)                                     \
			SKIP(return, "needs root to switch uids");      \
	} while (0)

/* In a child: become uid (gid the same) and attach. 0 or an exit code. */
static inline int kt_become(uid_t uid)
{
	if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
		return 90;
	if (getuid() != uid || geteuid() != uid)
		return 91;
	if (kipc_attach() < 0)
		return 92;
	return 0;
}

/* Run fn(arg) as uid in a child: its exit status (0: all its checks held),
 * -2 if it did not end within KT_BOUND_MS (it is killed). Needs root. */
static inline int kt_as_user(uid_t uid, int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int r = kt_become(uid);
		_exit(r ? r : fn(arg));
	}
	int st;
	if (ksft_waitpid_timeout(pid, &st, KT_BOUND_MS) != 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -2;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * Reap pid within timeout_ms. Returns its exit status (0..255), 128+sig
 * when killed by a signal, or -1 on timeout (it is killed then).
 */
static inline int kt_wait_ms(pid_t pid, int timeout_ms)
{
	int st;
	if (ksft_waitpid_timeout(pid, &st, timeout_ms) < 0) {
		ksft_print("# child %d did not exit within %d ms: killed\n", (int)pid,
			   timeout_ms);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

static inline int kt_wait(pid_t pid)
{
	return kt_wait_ms(pid, KT_BOUND_MS);
}

/* The pid of a child that exited and was reaped (a dead pid). */
static inline pid_t kt_dead_pid(struct __test_metadata *_metadata)
{
	pid_t pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(0);
	ASSERT_EQ(0, kt_wait(pid));
	return pid;
}

/* Fork a child that does nothing until killed (a live, unattached pid). */
static inline pid_t kt_fork_idle(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

/* ------------------------------------------------------------------ */
/* Barrier                                                             */

struct kt_barrier {
	int fd[2];
};

static inline int kt_barrier_init(struct kt_barrier *b)
{
	return pipe2(b->fd, O_CLOEXEC);
}

static inline void kt_barrier_destroy(struct kt_barrier *b)
{
	close(b->fd[0]);
	close(b->fd[1]);
}

/* Post n tokens. */
static inline void kt_post(struct kt_barrier *b, int n)
{
	while (n-- > 0) {
		while (write(b->fd[1], "x", 1) < 0 && errno == EINTR)
			;
	}
}

/* Take n tokens within timeout_ms. 0, or -1 (ETIMEDOUT). */
static inline int kt_wait_post_ms(struct kt_barrier *b, int n, int timeout_ms)
{
	int64_t deadline = __ksft_now_ms() + timeout_ms;
	while (n > 0) {
		int64_t left = deadline - __ksft_now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct pollfd p = {.fd = b->fd[0], .events = POLLIN};
		int r = poll(&p, 1, (int)left);
		if (r <= 0)
			continue;
		char c;
		if (read(b->fd[0], &c, 1) == 1)
			n--;
	}
	return 0;
}

static inline int kt_wait_post(struct kt_barrier *b, int n)
{
	return kt_wait_post_ms(b, n, KT_BOUND_MS);
}

/* Fork fn(b) (as kt_fork) with a new barrier b, and wait (bounded) for
 * the child's first post on it: its "ready". The child's pid. */
static inline pid_t kt_fork_ready(struct __test_metadata *_metadata, struct kt_barrier *b,
				  int (*fn)(void *))
{
	ASSERT_EQ(0, kt_barrier_init(b));
	pid_t pid = kt_fork(fn, b);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, kt_wait_post(b, 1));
	return pid;
}

/* ------------------------------------------------------------------ */
/* Ledger                                                              */

struct kt_ledger {
	unsigned n;
	int *sent;      /* successful sends of id i */
	int *received;  /* receptions of id i */
};

static inline int kt_ledger_init(struct kt_ledger *l, unsigned n)
{
	size_t sz = 2 * n * sizeof(int);
	int *m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -1;
	memset(m, 0, sz);
	l->n = n;
	l->sent = m;
	l->received = m + n;
	return 0;
}

static inline void kt_ledger_destroy(struct kt_ledger *l)
{
	munmap(l->sent, 2 * l->n * sizeof(int));
}

static inline void kt_ledger_sent(struct kt_ledger *l, unsigned id)
{
	if (id < l->n)
		__atomic_fetch_add(&l->sent[id], 1, __ATOMIC_SEQ_CST);
}

/* Returns false for an id out of range (a corrupted message). */
static inline bool kt_ledger_received(struct kt_ledger *l, unsigned id)
{
	if (id >= l->n)
		return false;
	__atomic_fetch_add(&l->received[id], 1, __ATOMIC_SEQ_CST);
	return true;
}

/*
 * Every id: sent at most once and received exactly as often as sent.
 * Logs the first few differences. Returns the number of bad ids and
 * counts the sent ones in *nsent.
 */
static inline unsigned kt_ledger_check(const struct kt_ledger *l, unsigned *nsent)
{
	unsigned bad = 0, s = 0;
	for (unsigned i = 0; i < l->n; i++) {
		int a = __atomic_load_n(&l->sent[i], __ATOMIC_SEQ_CST);
		int b = __atomic_load_n(&l->received[i], __ATOMIC_SEQ_CST);
		s += a > 0;
		if (a > 1 || a != b) {
			if (bad < 8)
				ksft_print("# ledger: message %u sent %d times, received %d times\n",
					   i, a, b);
			bad++;
		}
	}
	if (nsent)
		*nsent = s;
	return bad;
}

/* ------------------------------------------------------------------ */
/* Waiting for kernel state                                            */

/*
 * Poll the mailbox's stat until field `what` is exactly `want` (what:
 * 0 nreceivers, 1 nsenders, 2 nmsg), within timeout_ms: "both receivers
 * are parked", "the sender is gone" (want 0); a count past want is not
 * that state and times out. Returns 0 or -1 (errno from kipc_mbox_stat,
 * or ETIMEDOUT).
 */
enum { KT_RECEIVERS, KT_SENDERS, KT_NMSG };

/* Field `what` of the mailbox id's stat, or (taskq) of the own task
 * queue's, into *v: 0 or -1. */
static inline int kt_stat_count(bool taskq, int64_t id, int what, uint32_t *v)
{
	uint32_t rcv, snd, nmsg;
	if (taskq) {
		struct kipc_taskq_stat st;
		if (kipc_taskq_stat(&st) < 0)
			return -1;
		rcv = st.nreceivers, snd = st.nsenders, nmsg = st.nmsg;
	} else {
		struct kipc_mbox_stat st;
		if (kipc_mbox_stat(id, &st) < 0)
			return -1;
		rcv = st.nreceivers, snd = st.nsenders, nmsg = st.nmsg;
	}
	*v = what == KT_RECEIVERS ? rcv : what == KT_SENDERS ? snd : nmsg;
	return 0;
}

static inline int kt_wait_stat(bool taskq, int64_t id, int what, uint32_t want,
			       int timeout_ms)
{
	int64_t deadline = __ksft_now_ms() + timeout_ms;
	for (;;) {
		uint32_t v;
		if (kt_stat_count(taskq, id, what, &v) < 0)
			return -1;
		if (v == want)
			return 0;
		if (__ksft_now_ms() > deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		kt_sleep_ms(1);
	}
}

static inline int kt_wait_mbox(int64_t id, int what, uint32_t want, int timeout_ms)
{
	return kt_wait_stat(false, id, what, want, timeout_ms);
}

/* Same for the own task queue (nreceivers is this task's receivers). */
static inline int kt_wait_taskq(int what, uint32_t want, int timeout_ms)
{
	return kt_wait_stat(true, 0, what, want, timeout_ms);
}

/* Wait (bounded) until task pid is blocked in a call op the kernel has
 * parked (its task info: KIPC_TASK_BLOCKED in op). 0, or -1 with errno
 * (ETIMEDOUT). A task not attached yet (ESRCH) is waited for. */
static inline int kt_wait_blocked(pid_t pid, uint32_t op)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	for (;;) {
		struct kipc_task_info ti;
		int r = kipc_task_info(pid, &ti);
		if (r < 0 && errno != ESRCH)
			return -1;
		if (r == 0 && ti.state == KIPC_TASK_BLOCKED && ti.wait_op == op)
			return 0;
		if (__ksft_now_ms() > deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		kt_sleep_ms(1);
	}
}

/* Mailbox id has no receiver waiting and holds no message, and a message
 * sent now is queued: what a cancelled or timed-out receive leaves. */
static inline void kt_expect_no_receiver(struct __test_metadata *_metadata, int64_t id)
{
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(0, st.nreceivers);
	ASSERT_EQ(0, kipc_mbox_send(id, "m", 1, 0, 0));
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(1, st.nmsg);
}

/* ------------------------------------------------------------------ */
/* The own region: its credit and push words (transport.md 12, 13)     */

/* This process's region (ring, credit and push words), or NULL. */
static inline char *kt_region(void)
{
	char want[64], line[512];
	snprintf(want, sizeof want, "/memfd:kipc:%d ", getpid());
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return NULL;
	char *r = NULL;
	while (fgets(line, sizeof line, f)) {
		unsigned long start, off;
		if (strstr(line, want) && sscanf(line, "%lx-%*x %*s %lx", &start, &off) == 2 &&
		    off == 0) {
			r = (char *)start;
			break;
		}
	}
	fclose(f);
	return r;
}

/*
 * Wait until the push grant in w (on link; 0: whichever) has its next n
 * slots filled, from its claim on (kipcd fills them in its rounds): 0,
 * or -1 (not within the bound).
 */
static inline int kt_wait_push_slots(const struct kipc_push *w, int64_t link, uint32_t n)
{
	const struct kipc_push_slot *slots =
		(const struct kipc_push_slot *)((const char *)w - KIPC_PUSH_OFF + KIPC_PUSH_SLOT_OFF);
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (__ksft_now_ms() < deadline) {
		uint64_t c = __atomic_load_n(&w->claim, __ATOMIC_ACQUIRE);
		uint32_t k = (uint32_t)c, i = 0;
		while (i < n && (c >> 32) &&
		       (!link || __atomic_load_n(&w->link, __ATOMIC_ACQUIRE) == link) &&
		       __atomic_load_n(&slots[(k + i) % KIPC_PUSH_SLOTS].cqe.user_data,
				       __ATOMIC_ACQUIRE) == ((c & ~0xffffffffull) | (k + i)))
			i++;
		if (i == n)
			return 0;
		sched_yield();
	}
	return -1;
}

/* Sleep 20 ms: a grace period where no kernel state can be waited for
 * (not to order events; wait for the state instead). */
static inline void kt_settle(void)
{
	kt_sleep_ms(20);
}

#endif /* _KIPC_KIPC_TEST_H */
