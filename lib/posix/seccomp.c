/* SPDX-License-Identifier: MIT */
/*
 * libkipc-posix.so: System V and POSIX message queue system calls made
 * without libc (syscall(__NR_msgsnd, ...), inline assembly, a runtime
 * that does not use libc's wrappers) run on kipc too. At load the library
 * installs a seccomp filter (x86-64) that traps msgget, msgsnd, msgrcv,
 * msgctl, mq_open, mq_unlink, mq_timedsend, mq_timedreceive, mq_notify
 * and mq_getsetattr (SECCOMP_RET_TRAP, as gVisor's systrap); the SIGSYS
 * handler serves each from the same functions that interpose on libc's
 * (msg.c, mqueue.c) and puts the result, -errno, in the syscall's return
 * register. The library itself never makes those calls: nothing needs to
 * get through. A program's own SIGSYS action is kept apart (sigaction()
 * and signal() are wrapped for SIGSYS) and gets every SIGSYS that is not
 * ours. KIPC_SECCOMP=0 turns this off; Documentation/posix.md has the
 * limits (no_new_privs). The i386 and x32 entries of these calls fail
 * ENOSYS (__kipc_filter(), serve.c): they never reach Linux's queues.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <mqueue.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "posix.h"

#define EXPORT __attribute__((visibility("default")))

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 /* si_code of a SECCOMP_RET_TRAP SIGSYS */
#endif

static const int trapped[] = {KIPC_TRAPPED_SYSCALLS};
#define NTRAPPED (sizeof trapped / sizeof trapped[0])

/*
 * The program's own SIGSYS action. Ours stays installed and first; the
 * program sees and sets its own through the wrapped sigaction() and
 * signal(), and gets every SIGSYS that is not one of our traps: kill(2),
 * or a SECCOMP_RET_TRAP of a filter of its own. Two slots: a writer fills
 * the other one and publishes it, so a handler never reads a torn one.
 */
static struct sigaction prog[2];
static int prog_cur;   /* atomic: the slot in use */
static int installed;  /* atomic: our handler is SIGSYS's */
static pthread_mutex_t prog_lock = PTHREAD_MUTEX_INITIALIZER;

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static int real_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	static sigaction_fn fn;
	sigaction_fn f = __atomic_load_n(&fn, __ATOMIC_RELAXED);
	if (!f) {
		f = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
		__atomic_store_n(&fn, f, __ATOMIC_RELAXED);
	}
	return f(sig, act, old);
}

static bool ours(int nr)
{
	for (unsigned i = 0; i < NTRAPPED; i++)
		if (nr == trapped[i])
			return true;
	return false;
}

/* Die of this SIGSYS as Linux would have killed the process. */
static void die_of(siginfo_t *si)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigemptyset(&dfl.sa_mask);
	real_sigaction(SIGSYS, &dfl, NULL);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGSYS, si);
}

/* A SIGSYS that is not ours: the program's action, as the kernel runs it. */
static void chain(int sig, siginfo_t *si, void *ucv)
{
	int cur = __atomic_load_n(&prog_cur, __ATOMIC_ACQUIRE);
	struct sigaction p = prog[cur];
	bool forced = si->si_code == SYS_SECCOMP; /* force_sig_seccomp() */
	if (!(p.sa_flags & SA_SIGINFO) && (p.sa_handler == SIG_DFL || p.sa_handler == SIG_IGN)) {
		if (p.sa_handler == SIG_DFL || forced)
			die_of(si); /* a forced signal ignored is the default */
		return;
	}
	if (p.sa_flags & SA_RESETHAND) {
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		sigemptyset(&dfl.sa_mask);
		sigaction(SIGSYS, &dfl, NULL);
	}
	/* Its mask, less SIGSYS: our traps must work in its handler too. */
	sigset_t mask = p.sa_mask, old;
	sigdelset(&mask, SIGSYS);
	pthread_sigmask(SIG_BLOCK, &mask, &old);
	if (p.sa_flags & SA_SIGINFO)
		p.sa_sigaction(sig, si, ucv);
	else
		p.sa_handler(sig);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void on_sigsys(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	if (si->si_code != SYS_SECCOMP || si->si_arch != AUDIT_ARCH_X86_64 ||
	    !ours(si->si_syscall)) {
		chain(sig, si, ucv);
		return;
	}
	int saved = errno;
	long a[6] = {g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], g[REG_R8], g[REG_R9]};
	long r = __kipc_serve_syscall(si->si_syscall, a);
	g[REG_RAX] = r < 0 ? -errno : r;
	errno = saved;
}

/* sigaction(2) of SIGSYS, once our filter is in: the program's view. */
EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (sig != SIGSYS || !__atomic_load_n(&installed, __ATOMIC_ACQUIRE))
		return real_sigaction(sig, act, old);
	struct sigaction a;
	if (act && __kipc_copy_from_user(&a, act, sizeof a)) {
		errno = EFAULT;
		return -1;
	}
	pthread_mutex_lock(&prog_lock);
	int cur = __atomic_load_n(&prog_cur, __ATOMIC_ACQUIRE);
	struct sigaction o = prog[cur];
	if (act) {
		prog[!cur] = a;
		__atomic_store_n(&prog_cur, !cur, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&prog_lock);
	if (old && __kipc_copy_to_user(old, &o, sizeof o)) {
		errno = EFAULT;
		return -1;
	}
	return 0;
}

/* glibc's signal(): BSD semantics (SA_RESTART, the signal blocked). */
EXPORT sighandler_t signal(int sig, sighandler_t h)
{
	typedef sighandler_t (*signal_fn)(int, sighandler_t);
	if (sig != SIGSYS || !__atomic_load_n(&installed, __ATOMIC_ACQUIRE)) {
		static signal_fn fn;
		if (!fn)
			fn = (signal_fn)dlsym(RTLD_NEXT, "signal");
		return fn(sig, h);
	}
	struct sigaction a = {.sa_handler = h, .sa_flags = SA_RESTART}, o;
	sigemptyset(&a.sa_mask);
	sigaddset(&a.sa_mask, sig);
	if (sigaction(sig, &a, &o) < 0)
		return SIG_ERR;
	return o.sa_handler;
}

__attribute__((constructor)) static void install(void)
{
	const char *env = getenv("KIPC_SECCOMP");
	if ((env && strcmp(env, "0") == 0) || getenv("KIPC_SUPERVISOR"))
		return; /* off, or kipc-run's supervisor (supervise.c) */
	struct sock_filter all[KIPC_FILTER_MAX];
	struct sock_fprog fprog = {.len = (unsigned short)__kipc_filter(all, NULL, 0, SECCOMP_RET_TRAP, 1),
				   .filter = all};

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (real_sigaction(SIGSYS, &sa, &prog[0]) < 0)
		return;
	/* Without CAP_SYS_ADMIN a filter needs no_new_privs (posix.md). */
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog);
	if (r != 0 && errno == EACCES && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
		r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog);
	if (r != 0) {
		fprintf(stderr, "libkipc-posix: seccomp filter not installed (%s): raw IPC "
				"system calls go to the host kernel\n", strerror(errno));
		real_sigaction(SIGSYS, &prog[0], NULL);
		return;
	}
	__atomic_store_n(&installed, 1, __ATOMIC_RELEASE);
}
#endif
