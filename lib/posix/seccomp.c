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
 * get through. KIPC_SECCOMP=0 turns this off; Documentation/posix.md has
 * the limits (static programs, no_new_privs, a program's own SIGSYS
 * handler, the 32-bit entries).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <mqueue.h>
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

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 /* si_code of a SECCOMP_RET_TRAP SIGSYS */
#endif

static const int trapped[] = {KIPC_TRAPPED_SYSCALLS};
#define NTRAPPED (sizeof trapped / sizeof trapped[0])

static struct sigaction prev; /* a SIGSYS handler the program had before us */

static void on_sigsys(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	if (si->si_code != SYS_SECCOMP || si->si_arch != AUDIT_ARCH_X86_64) {
		if (prev.sa_flags & SA_SIGINFO && prev.sa_sigaction)
			prev.sa_sigaction(sig, si, ucv);
		else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN)
			prev.sa_handler(sig);
		else
			abort();
		return;
	}
	int saved = errno;
	long a[6] = {g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], g[REG_R8], g[REG_R9]};
	long r = __kipc_serve_syscall(si->si_syscall, a);
	g[REG_RAX] = r < 0 ? -errno : r;
	errno = saved;
}

__attribute__((constructor)) static void install(void)
{
	const char *env = getenv("KIPC_SECCOMP");
	if ((env && strcmp(env, "0") == 0) || getenv("KIPC_SUPERVISOR"))
		return; /* off, or kipc-run's supervisor (supervise.c) */
	struct sock_filter f[4 + NTRAPPED + 1];
	unsigned n = 0;
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	for (unsigned i = 0; i < NTRAPPED; i++)
		f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)trapped[i],
						      (unsigned char)(NTRAPPED - i), 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_filter trap = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP);
	struct sock_filter all[sizeof f / sizeof f[0] + 1];
	memcpy(all, f, n * sizeof f[0]);
	all[n++] = trap;
	struct sock_fprog prog = {.len = (unsigned short)n, .filter = all};

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, &prev) < 0)
		return;
	/* Without CAP_SYS_ADMIN a filter needs no_new_privs (posix.md). */
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
	if (r != 0 && errno == EACCES && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
		r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
	if (r != 0) {
		fprintf(stderr, "libkipc-posix: seccomp filter not installed (%s): raw IPC "
				"system calls go to the host kernel\n", strerror(errno));
		sigaction(SIGSYS, &prev, NULL);
	}
}
#endif
