// SPDX-License-Identifier: MIT
/* A program with a SIGSYS handler of its own: it sees its own action
 * (sigaction, signal), gets every SIGSYS meant for it (kill, a
 * SECCOMP_RET_TRAP of its own filter) with its siginfo, and its raw
 * message queue calls still work; with SIG_DFL its own trap kills it. */
#include "conform.h"
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static volatile sig_atomic_t got, got_code, got_nr;

static void on_sys(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	got++;
	got_code = si->si_code;
	got_nr = si->si_syscall;
}

/* Our own filter: getppid traps (SIGSYS, si_code SYS_SECCOMP). */
static long own_filter(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog p = {.len = sizeof f / sizeof f[0], .filter = f};
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p);
}

int main(void)
{
	struct {
		long mtype;
		char text[8];
	} m = {1, "x"};
	struct sigaction sa = {.sa_sigaction = on_sys, .sa_flags = SA_SIGINFO}, old;
	sigemptyset(&sa.sa_mask);
	res("sigaction SIGSYS", sigaction(SIGSYS, &sa, &old));
	val("the old action was SIG_DFL", old.sa_handler == SIG_DFL);
	res("sigaction SIGSYS query", sigaction(SIGSYS, NULL, &old));
	val("  it is ours", old.sa_sigaction == on_sys && (old.sa_flags & SA_SIGINFO));

	int q = res("raw msgget", syscall(SYS_msgget, IPC_PRIVATE, IPC_CREAT | 0600));
	res("raw msgsnd", syscall(SYS_msgsnd, q, &m, 1, 0));
	val("handler calls", got);

	kill(getpid(), SIGSYS);
	val("after kill: handler calls", got);
	val("  si_code is SI_USER", got_code == SI_USER);

	res("own seccomp filter", own_filter());
	syscall(SYS_getppid);
	val("trapped getppid: handler calls", got);
	val("  si_code is SYS_SECCOMP", got_code == 1);
	val("  si_syscall is getppid", got_nr == __NR_getppid);
	res("raw msgrcv with both filters", syscall(SYS_msgrcv, q, &m, sizeof m.text, 0, IPC_NOWAIT));
	val("  handler calls", got);

	val("signal(SIG_DFL) returns ours", (void *)signal(SIGSYS, SIG_DFL) == (void *)on_sys);
	pid_t c = fork();
	if (c == 0) {
		syscall(SYS_getppid); /* its own trap, SIG_DFL: killed */
		_exit(0);
	}
	int st = 0;
	waitpid(c, &st, 0);
	val("child killed by SIGSYS", WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS);
	val("signal(SIG_IGN) returns SIG_DFL", signal(SIGSYS, SIG_IGN) == SIG_DFL);
	kill(getpid(), SIGSYS);
	say("ignored kill survived");
	res("raw msgctl IPC_RMID", syscall(SYS_msgctl, q, IPC_RMID, NULL));
	return 0;
}
