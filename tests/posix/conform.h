/* SPDX-License-Identifier: MIT */
/*
 * Differential conformance tests of POSIX and System V message queues:
 * each program prints a transcript of results and errno names (never
 * pids, ids or times) that must be the same natively and under kipc-run
 * (tests/posix/run.sh diffs them). Written from the POSIX and Linux
 * man pages; where Linux differs from POSIX the transcript shows Linux.
 */
#ifndef KIPC_POSIX_CONFORM_H
#define KIPC_POSIX_CONFORM_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* "what: ok" / "what: -1 EAGAIN"; returns r. */
static inline long res(const char *what, long r)
{
	if (r < 0)
		printf("%s: -1 %s\n", what, strerrorname_np(errno));
	else
		printf("%s: ok\n", what);
	fflush(stdout);
	return r;
}

/* "what: value" */
static inline void val(const char *what, long v)
{
	printf("%s: %ld\n", what, v);
	fflush(stdout);
}

static inline void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* A queue name private to this run: "/kipct-<tag>-<pid>". */
static inline const char *qname(const char *tag)
{
	static char buf[8][64];
	static int n;
	char *b = buf[n++ % 8];
	snprintf(b, 64, "/kipct-%s-%d", tag, (int)getpid());
	return b;
}

/* CLOCK_REALTIME now + ms (negative: in the past). */
static inline struct timespec abs_ms(long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long long ns = (long long)ts.tv_sec * 1000000000 + ts.tv_nsec + ms * 1000000LL;
	ts.tv_sec = ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	return ts;
}

static inline void msleep(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Wait for a child; print how it ended. */
static inline void reap(const char *what, pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st))
		printf("%s: exit %d\n", what, WEXITSTATUS(st));
	else
		printf("%s: signal %d\n", what, WTERMSIG(st));
	fflush(stdout);
}

/* Say how poll(2) sees q now (POLLIN, POLLOUT), without waiting. */
static inline void show_poll(const char *who, mqd_t q)
{
	struct pollfd p = {.fd = q, .events = POLLIN | POLLOUT};
	int n = poll(&p, 1, 0);
	say("%s: poll %d%s%s", who, n, p.revents & POLLIN ? " POLLIN" : "",
	    p.revents & POLLOUT ? " POLLOUT" : "");
}

/*
 * The word at offset off of this process's kipc region (kipc-run, a
 * dynamic program; the offsets are uapi/kipc/ring.h's), NULL natively:
 * how the tests of the fast paths see whether one was used.
 */
static inline const volatile void *kipc_words(unsigned long off)
{
	char want[64], line[512];
	unsigned long region = 0;
	snprintf(want, sizeof want, "/memfd:kipc:%d ", (int)getpid());
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return NULL;
	while (fgets(line, sizeof line, f)) {
		unsigned long start, pgoff;
		if (strstr(line, want) && sscanf(line, "%lx-%*x %*s %lx", &start, &pgoff) == 2 &&
		    pgoff == 0)
			region = start;
	}
	fclose(f);
	return region ? (const volatile void *)(region + off) : NULL;
}

#endif
