/* SPDX-License-Identifier: MIT */
/*
 * kselftest_harness.h - a small kselftest-style test harness for kipc.
 *
 * Written for this project (header-only C11 with GNU extensions); it
 * follows the shape of Linux's tools/testing/selftests harness so tests
 * read the same:
 *
 *	TEST(name) { ASSERT_EQ(0, f()); }
 *	TEST_TIMEOUT(name, seconds) { ... }
 *
 *	FIXTURE(box) { int64_t id; };
 *	FIXTURE_SETUP(box) { self->id = open(); ASSERT_LT(0, self->id); }
 *	FIXTURE_TEARDOWN(box) { close(self->id); }
 *	TEST_F(box, name) { EXPECT_EQ(0, use(self->id)); }
 *	TEST_F_TIMEOUT(box, name, seconds) { ... }
 *
 *	TEST_HARNESS_MAIN
 *
 * Every test runs in a forked child that leads its own process group.
 * The parent waits for it with a timeout (30 s unless overridden); on
 * timeout the whole group is killed with SIGKILL and the test fails.
 * When a test ends, whatever it left running in its group is killed too.
 *
 * Checks. ASSERT_* stops the test (the fixture's teardown still runs if
 * its setup completed); EXPECT_* records the failure and goes on. Both
 * take (expected, seen) like Linux's and compare as intmax_t; both may be
 * followed by a statement that runs only on failure:
 *
 *	ASSERT_EQ(0, ret) TH_LOG("send: %s", strerror(errno));
 *
 * The result lives in shared memory, so a failed EXPECT_* or ASSERT_* in a
 * process the test forked also fails the test (an ASSERT_* there ends that
 * process with exit status 1).
 *
 * SKIP(statement, fmt, ...) marks the test skipped and runs statement
 * (usually `return`). TH_LOG(fmt, ...) prints a "# " diagnostic line.
 *
 * Output: TAP version 13 on stdout, "ok N name" / "not ok N name" /
 * "ok N name # SKIP reason", ending with
 * "# Totals: pass:P fail:F xfail:0 xpass:0 skip:S error:0".
 * Exit status: 0 when nothing failed, 1 when something failed, 4
 * (KSFT_SKIP) when every test was skipped.
 *
 * Options: -l lists the tests, -t NAME runs only the named test (may be
 * repeated; "fixture.name" for TEST_F), -h prints usage.
 *
 * A program may run code around all its tests with
 * TEST_HARNESS_MAIN_HOOKS(setup, teardown, teardown_name): see
 * struct ksft_hooks below. kipc_test.h uses it to boot the kernel.
 */
#ifndef _KIPC_KSELFTEST_HARNESS_H
#define _KIPC_KSELFTEST_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kipc/libkipc.h> /* kipc_clock_ns */

#define KSFT_PASS  0
#define KSFT_FAIL  1
#define KSFT_XFAIL 2
#define KSFT_XPASS 3
#define KSFT_SKIP  4

#define KSFT_DEFAULT_TIMEOUT 30 /* seconds */

/* ------------------------------------------------------------------ */
/* Output                                                              */

/*
 * Every line goes out with one write(2) on stdout: no stdio buffer can be
 * duplicated by fork() and lines of concurrent processes do not mix.
 */
static inline void __attribute__((format(printf, 1, 2)))
ksft_print(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, p, (size_t)n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (int)w;
	}
}

/* ------------------------------------------------------------------ */
/* Test metadata                                                       */

/* Shared between the runner, the test process and what it forks. */
struct __ksft_result {
	volatile int failed;     /* any check failed (atomic) */
	volatile int skipped;    /* SKIP() was called */
	char skip_reason[256];
};

struct __test_metadata {
	const char *name;               /* "name" or "fixture.name" */
	void (*fn)(struct __test_metadata *);
	int timeout;                    /* seconds */
	struct __ksft_result *res;      /* shared mapping */
	pid_t test_pid;                 /* the test's own process */
	bool jmp_ok;                    /* jmp is armed */
	jmp_buf jmp;
	struct __test_metadata *next;
};

struct __ksft_registry {
	struct __test_metadata *head, *tail;
	unsigned count;
};
static struct __ksft_registry __ksft_tests;

static inline void __ksft_register(struct __test_metadata *t)
{
	if (!__ksft_tests.head)
		__ksft_tests.head = t;
	else
		__ksft_tests.tail->next = t;
	__ksft_tests.tail = t;
	__ksft_tests.count++;
}

/*
 * The metadata of the test running in this process (and the processes
 * it forked), for helpers that have no _metadata argument.
 */
static struct __test_metadata *__ksft_current;

/* ------------------------------------------------------------------ */
/* Checks                                                              */

static inline void __ksft_fail(struct __test_metadata *m)
{
	__atomic_store_n(&m->res->failed, 1, __ATOMIC_SEQ_CST);
}

/* Called after the failure statement ran. Returns 0 to end the for loop. */
static inline int __ksft_bail(struct __test_metadata *m, bool is_assert)
{
	__ksft_fail(m);
	if (!is_assert)
		return 0;
	if (getpid() == m->test_pid && m->jmp_ok)
		longjmp(m->jmp, 1);
	/* A process the test forked: it cannot go on either. */
	_exit(1);
}

#define __KSFT_CMP(_exp, _seen, _op, _assert)                                  \
	for (int __ksft_trig = ({                                              \
		     intmax_t __e = (intmax_t)(_exp);                          \
		     intmax_t __s = (intmax_t)(_seen);                         \
		     int __bad = !(__e _op __s);                               \
		     if (__bad)                                                \
			     ksft_print("# %s:%d: Expected %s (%jd) %s %s (%jd)\n",\
					__FILE__, __LINE__, #_exp, __e, #_op,  \
					#_seen, __s);                          \
		     __bad;                                                    \
	     });                                                               \
	     __ksft_trig; __ksft_trig = __ksft_bail(_metadata, _assert))

#define __KSFT_BOOL(_seen, _want, _assert)                                     \
	for (int __ksft_trig = ({                                              \
		     int __bad = (!!(_seen)) != (_want);                         \
		     if (__bad)                                                \
			     ksft_print("# %s:%d: Expected %s to be %s\n",     \
					__FILE__, __LINE__, #_seen,            \
					(_want) ? "true" : "false");           \
		     __bad;                                                    \
	     });                                                               \
	     __ksft_trig; __ksft_trig = __ksft_bail(_metadata, _assert))

#define __KSFT_STR(_exp, _seen, _eq, _assert)                                  \
	for (int __ksft_trig = ({                                              \
		     const char *__e = (_exp), *__s = (_seen);                 \
		     int __bad = (strcmp(__e, __s) == 0) != (_eq);             \
		     if (__bad)                                                \
			     ksft_print("# %s:%d: Expected '%s' %s '%s'\n",    \
					__FILE__, __LINE__, __e,               \
					(_eq) ? "==" : "!=", __s);             \
		     __bad;                                                    \
	     });                                                               \
	     __ksft_trig; __ksft_trig = __ksft_bail(_metadata, _assert))

#define ASSERT_EQ(expected, seen) __KSFT_CMP(expected, seen, ==, true)
#define ASSERT_NE(expected, seen) __KSFT_CMP(expected, seen, !=, true)
#define ASSERT_LT(expected, seen) __KSFT_CMP(expected, seen, <, true)
#define ASSERT_LE(expected, seen) __KSFT_CMP(expected, seen, <=, true)
#define ASSERT_GT(expected, seen) __KSFT_CMP(expected, seen, >, true)
#define ASSERT_GE(expected, seen) __KSFT_CMP(expected, seen, >=, true)
#define ASSERT_TRUE(seen)         __KSFT_BOOL(seen, 1, true)
#define ASSERT_FALSE(seen)        __KSFT_BOOL(seen, 0, true)
#define ASSERT_STREQ(exp, seen)   __KSFT_STR(exp, seen, 1, true)
#define ASSERT_STRNE(exp, seen)   __KSFT_STR(exp, seen, 0, true)

#define EXPECT_EQ(expected, seen) __KSFT_CMP(expected, seen, ==, false)
#define EXPECT_NE(expected, seen) __KSFT_CMP(expected, seen, !=, false)
#define EXPECT_LT(expected, seen) __KSFT_CMP(expected, seen, <, false)
#define EXPECT_LE(expected, seen) __KSFT_CMP(expected, seen, <=, false)
#define EXPECT_GT(expected, seen) __KSFT_CMP(expected, seen, >, false)
#define EXPECT_GE(expected, seen) __KSFT_CMP(expected, seen, >=, false)
#define EXPECT_TRUE(seen)         __KSFT_BOOL(seen, 1, false)
#define EXPECT_FALSE(seen)        __KSFT_BOOL(seen, 0, false)
#define EXPECT_STREQ(exp, seen)   __KSFT_STR(exp, seen, 1, false)
#define EXPECT_STRNE(exp, seen)   __KSFT_STR(exp, seen, 0, false)

/* A diagnostic line, prefixed with "# " and the source position. */
#define TH_LOG(fmt, ...)                                                       \
	ksft_print("# %s:%d: " fmt "\n", __FILE__, __LINE__, ##__VA_ARGS__)

/* Fail the test unconditionally (goes on, like EXPECT_*). */
#define FAIL_TEST(fmt, ...)                                                    \
	do {                                                                   \
		TH_LOG(fmt, ##__VA_ARGS__);                                    \
		__ksft_fail(_metadata);                                        \
	} while (0)

/* Mark the test skipped with a reason, then run statement. */
#define SKIP(statement, fmt, ...)                                              \
	do {                                                                   \
		snprintf(_metadata->res->skip_reason,                          \
			 sizeof _metadata->res->skip_reason, fmt,              \
			 ##__VA_ARGS__);                                       \
		_metadata->res->skipped = 1;                                   \
		statement;                                                     \
	} while (0)

/* ------------------------------------------------------------------ */
/* Declaring tests                                                     */

#define __KSFT_REGISTER(_id, _name, _fn, _timeout)                             \
	static struct __test_metadata _id = {                                  \
		.name = _name, .fn = _fn, .timeout = _timeout,                 \
	};                                                                     \
	static void __attribute__((constructor)) _id##_register(void)          \
	{                                                                      \
		__ksft_register(&_id);                                         \
	}

#define TEST(name) TEST_TIMEOUT(name, KSFT_DEFAULT_TIMEOUT)

#define TEST_TIMEOUT(name, secs)                                               \
	static void test_##name(struct __test_metadata *_metadata);            \
	__KSFT_REGISTER(__ksft_meta_##name, #name, test_##name, secs)          \
	static void test_##name(                                               \
		struct __test_metadata __attribute__((unused)) *_metadata)

#define FIXTURE_DATA(fixture) struct __ksft_fixture_##fixture
#define FIXTURE(fixture) FIXTURE_DATA(fixture)

#define FIXTURE_SETUP(fixture)                                                 \
	static void __ksft_setup_##fixture(                                    \
		struct __test_metadata __attribute__((unused)) *_metadata,     \
		FIXTURE_DATA(fixture) __attribute__((unused)) *self)

#define FIXTURE_TEARDOWN(fixture)                                              \
	static void __ksft_teardown_##fixture(                                 \
		struct __test_metadata __attribute__((unused)) *_metadata,     \
		FIXTURE_DATA(fixture) __attribute__((unused)) *self)

#define TEST_F(fixture, name) TEST_F_TIMEOUT(fixture, name, KSFT_DEFAULT_TIMEOUT)

/*
 * The wrapper runs setup, the body and teardown in the test process. An
 * ASSERT_* in setup or body longjmps back here; teardown runs if setup
 * completed. An ASSERT_* in teardown ends the test.
 */
#define TEST_F_TIMEOUT(fixture, name, secs)                                    \
	static void __ksft_body_##fixture##_##name(                            \
		struct __test_metadata *_metadata,                             \
		FIXTURE_DATA(fixture) *self);                                  \
	static void __ksft_wrap_##fixture##_##name(                            \
		struct __test_metadata *_metadata)                             \
	{                                                                      \
		FIXTURE_DATA(fixture) self_;                                   \
		volatile bool set_up = false;                                  \
		memset(&self_, 0, sizeof self_);                               \
		_metadata->jmp_ok = true;                                      \
		if (setjmp(_metadata->jmp) == 0) {                             \
			__ksft_setup_##fixture(_metadata, &self_);             \
			set_up = true;                                         \
			if (!_metadata->res->skipped)                          \
				__ksft_body_##fixture##_##name(_metadata,      \
							       &self_);        \
		}                                                              \
		_metadata->jmp_ok = false;                                     \
		if (set_up)                                                    \
			__ksft_teardown_##fixture(_metadata, &self_);          \
	}                                                                      \
	__KSFT_REGISTER(__ksft_meta_##fixture##_##name, #fixture "." #name,    \
			__ksft_wrap_##fixture##_##name, secs)                  \
	static void __ksft_body_##fixture##_##name(                            \
		struct __test_metadata __attribute__((unused)) *_metadata,     \
		FIXTURE_DATA(fixture) __attribute__((unused)) *self)

/* ------------------------------------------------------------------ */
/* Running                                                             */

/*
 * Hooks around the whole run, in the runner process. setup() returns
 * KSFT_PASS, KSFT_SKIP (every test is reported skipped with `why`) or
 * KSFT_FAIL (every test fails). teardown() runs after the last test and
 * is reported as one more test named teardown_name (KSFT_PASS or
 * KSFT_FAIL; diagnostics in `why`). after_each() runs in the runner after
 * each test's processes are gone, whatever the result (cleaning up what
 * a failed test left). Any may be NULL.
 */
struct ksft_hooks {
	int (*setup)(char *why, size_t len);
	int (*teardown)(char *why, size_t len);
	const char *teardown_name;
	void (*after_each)(void);
};

static inline int64_t __ksft_now_ms(void)
{
	return kipc_clock_ns(CLOCK_MONOTONIC) / 1000000;
}

/*
 * Wait for pid for at most timeout_ms (-1: forever). Returns 0 with
 * *status filled, or -1 with errno ETIMEDOUT (the process still runs).
 * Uses a pidfd when the kernel has pidfd_open, else polls waitpid.
 */
static inline int ksft_waitpid_timeout(pid_t pid, int *status, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : __ksft_now_ms() + timeout_ms;
#ifdef SYS_pidfd_open
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0) {
		for (;;) {
			int64_t left = deadline == INT64_MAX ? -1 : deadline - __ksft_now_ms();
			if (deadline != INT64_MAX && left < 0)
				left = 0;
			struct pollfd p = {.fd = pfd, .events = POLLIN};
			int r = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0) {
				if (deadline != INT64_MAX && __ksft_now_ms() >= deadline) {
					close(pfd);
					errno = ETIMEDOUT;
					return -1;
				}
				continue;
			}
			break;
		}
		close(pfd);
	}
#endif
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		if (__ksft_now_ms() >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static inline bool __ksft_selected(const char *name, char **only, int nonly)
{
	if (!nonly)
		return true;
	for (int i = 0; i < nonly; i++)
		if (strcmp(only[i], name) == 0)
			return true;
	return false;
}

/* Runs one test; returns KSFT_PASS, KSFT_FAIL or KSFT_SKIP. */
static inline int __ksft_run_one(struct __test_metadata *t, const char **why)
{
	static char reason[300];
	struct __ksft_result *res = mmap(NULL, sizeof *res, PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	*why = NULL;
	if (res == MAP_FAILED) {
		ksft_print("# mmap: %s\n", strerror(errno));
		return KSFT_FAIL;
	}
	memset(res, 0, sizeof *res);
	t->res = res;

	pid_t pid = fork();
	if (pid < 0) {
		ksft_print("# fork: %s\n", strerror(errno));
		munmap(res, sizeof *res);
		return KSFT_FAIL;
	}
	if (pid == 0) {
		setpgid(0, 0);
		t->test_pid = getpid();
		__ksft_current = t;
		t->fn(t);
		_exit(res->failed ? KSFT_FAIL : res->skipped ? KSFT_SKIP : KSFT_PASS);
	}
	setpgid(pid, pid); /* also here: no race with the child's own call */

	int status = 0, ret;
	if (ksft_waitpid_timeout(pid, &status, t->timeout * 1000) < 0) {
		ksft_print("# %s: timed out after %d s: killed\n", t->name, t->timeout);
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		ret = KSFT_FAIL;
	} else if (WIFSIGNALED(status)) {
		ksft_print("# %s: test process died of signal %d (%s)\n", t->name,
			   WTERMSIG(status), strsignal(WTERMSIG(status)));
		ret = KSFT_FAIL;
	} else if (res->failed || WEXITSTATUS(status) == KSFT_FAIL) {
		ret = KSFT_FAIL;
	} else if (WEXITSTATUS(status) == KSFT_SKIP || res->skipped) {
		snprintf(reason, sizeof reason, "%s", res->skip_reason);
		*why = reason;
		ret = KSFT_SKIP;
	} else if (WEXITSTATUS(status) != KSFT_PASS) {
		ksft_print("# %s: test process exited with status %d\n", t->name,
			   WEXITSTATUS(status));
		ret = KSFT_FAIL;
	} else {
		ret = KSFT_PASS;
	}
	/* Whatever the test left running in its group goes now. */
	kill(-pid, SIGKILL);
	munmap(res, sizeof *res);
	return ret;
}

static inline int test_harness_run(int argc, char **argv,
				   const struct ksft_hooks *hooks)
{
	char *only[64];
	int nonly = 0, opt;
	while ((opt = getopt(argc, argv, "hlt:")) != -1) {
		switch (opt) {
		case 'l':
			for (struct __test_metadata *t = __ksft_tests.head; t; t = t->next)
				printf("%s\n", t->name);
			return KSFT_PASS;
		case 't':
			if (nonly < 64)
				only[nonly++] = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [-l] [-t test]...\n", argv[0]);
			return opt == 'h' ? KSFT_PASS : KSFT_FAIL;
		}
	}

	unsigned total = 0;
	for (struct __test_metadata *t = __ksft_tests.head; t; t = t->next)
		total += __ksft_selected(t->name, only, nonly);
	bool has_td = hooks && hooks->teardown;

	ksft_print("TAP version 13\n");
	ksft_print("1..%u\n", total + has_td);

	char why[512] = "";
	int global = KSFT_PASS;
	if (hooks && hooks->setup) {
		global = hooks->setup(why, sizeof why);
		if (global != KSFT_PASS)
			ksft_print("# setup: %s\n", why[0] ? why : "failed");
	}

	unsigned n = 0, pass = 0, fail = 0, skip = 0;
	for (struct __test_metadata *t = __ksft_tests.head; t; t = t->next) {
		if (!__ksft_selected(t->name, only, nonly))
			continue;
		n++;
		const char *reason = NULL;
		int r;
		if (global == KSFT_SKIP) {
			r = KSFT_SKIP;
			reason = why;
		} else if (global != KSFT_PASS) {
			r = KSFT_FAIL;
		} else {
			ksft_print("# RUN %s\n", t->name);
			r = __ksft_run_one(t, &reason);
			if (hooks && hooks->after_each)
				hooks->after_each();
		}
		if (r == KSFT_PASS) {
			pass++;
			ksft_print("ok %u %s\n", n, t->name);
		} else if (r == KSFT_SKIP) {
			skip++;
			ksft_print("ok %u %s # SKIP %s\n", n, t->name,
				   reason && *reason ? reason : "");
		} else {
			fail++;
			ksft_print("not ok %u %s\n", n, t->name);
		}
	}

	if (has_td) {
		n++;
		why[0] = '\0';
		int r = global == KSFT_PASS ? hooks->teardown(why, sizeof why) : KSFT_SKIP;
		const char *name = hooks->teardown_name ? hooks->teardown_name : "teardown";
		if (r == KSFT_PASS) {
			pass++;
			ksft_print("ok %u %s\n", n, name);
		} else if (r == KSFT_SKIP) {
			skip++;
			ksft_print("ok %u %s # SKIP setup did not complete\n", n, name);
		} else {
			fail++;
			if (why[0])
				ksft_print("# %s: %s\n", name, why);
			ksft_print("not ok %u %s\n", n, name);
		}
	}

	ksft_print("# Totals: pass:%u fail:%u xfail:0 xpass:0 skip:%u error:0\n",
		   pass, fail, skip);
	if (fail)
		return KSFT_FAIL;
	if (n && skip == n)
		return KSFT_SKIP;
	return KSFT_PASS;
}

#define TEST_HARNESS_MAIN                                                      \
	int main(int argc, char **argv)                                        \
	{                                                                      \
		return test_harness_run(argc, argv, NULL);                     \
	}

#define TEST_HARNESS_MAIN_HOOKS(setup_fn, teardown_fn, teardown_name_, ...)    \
	int main(int argc, char **argv)                                        \
	{                                                                      \
		static const struct ksft_hooks hooks = {                       \
			.setup = setup_fn,                                     \
			.teardown = teardown_fn,                               \
			.teardown_name = teardown_name_,                       \
			__VA_ARGS__                                            \
		};                                                             \
		return test_harness_run(argc, argv, &hooks);                   \
	}

#endif /* _KIPC_KSELFTEST_HARNESS_H */
