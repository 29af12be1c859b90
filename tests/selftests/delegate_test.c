// SPDX-License-Identifier: MIT
/*
 * delegate_test: a supervisor attaches for another process
 * (kipc_attach_delegate, KIPC_FEAT_DELEGATE; kernel/daemon/delegate.cc),
 * as kipc-run does for a static program. The task is the process's own,
 * with its credentials, and only a caller that proves it may ptrace the
 * process (its /proc/<pid>/mem) gets it:
 *  - for its own child: the task's pid is the child's;
 *  - root for a child that became UID_A: the queue it makes is UID_A's,
 *    not root's;
 *  - hostile: UID_B names UID_A's process with its own /proc/self/mem,
 *    with UID_A's /proc/<pid>/status, or with an eventfd for a pidfd:
 *    EPERM, no task; a pidfd of a process that exited: ESRCH.
 */
#include "kipc_test.h"

#include <kipc/mqueue.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static int pidfd_of(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int open_proc(pid_t pid, const char *what, int flags)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/%s", (int)pid, what);
	return open(p, flags | O_CLOEXEC);
}

struct target {
	pid_t pid;
	int pidfd, other; /* other: the descriptor offered as proof */
	int want_errno;   /* 0: attach must work */
	uid_t want_uid;
};

/* In a child: delegate for t and check what the kernel made of it. */
static int delegate(void *arg)
{
	struct target *t = arg;
	int r = kipc_attach_delegate(t->pidfd, t->other);
	if (t->want_errno) {
		if (r != -1 || errno != t->want_errno)
			return 10;
		/* and no task was made for us either way */
		return kipc_task_pid() == -1 ? 0 : 11;
	}
	if (r != 0)
		return 20;
	if (kipc_task_pid() != t->pid)
		return 21;
	int id = kipc_msgget(0 /* IPC_PRIVATE */, KIPC_IPC_CREAT | 0600);
	if (id < 0)
		return 22;
	struct kipc_msqid_ds ds;
	int ok = kipc_msgctl(id, KIPC_IPC_STAT, &ds, sizeof ds) == 0 &&
		 ds.uid == t->want_uid && ds.cuid == t->want_uid;
	kipc_msgctl(id, KIPC_IPC_RMID, NULL, 0);
	return ok ? 0 : 23;
}

static pid_t idle_as(uid_t uid)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (uid != getuid() && (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0))
			_exit(90);
		for (;;)
			pause();
	}
	return pid;
}

/* Wait until pid runs as uid (its setresuid is done). */
static bool runs_as(pid_t pid, uid_t uid)
{
	for (int i = 0; i < KT_BOUND_MS; i++) {
		struct stat st;
		char p[64];
		snprintf(p, sizeof p, "/proc/%d", (int)pid);
		if (stat(p, &st) == 0 && st.st_uid == uid)
			return true;
		kt_sleep_ms(1);
	}
	return false;
}

static void stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Delegate for an idle child that runs as uid, with its pidfd and its
 * /proc/<pid>/mem as the proof: the task must be the child's, and what
 * it creates want_uid's. */
static void delegate_for_child(struct __test_metadata *_metadata, uid_t uid, uid_t want_uid)
{
	struct target t = {.pid = idle_as(uid), .want_uid = want_uid};
	ASSERT_GT(t.pid, 0);
	ASSERT_TRUE(runs_as(t.pid, uid));
	t.pidfd = pidfd_of(t.pid);
	t.other = open_proc(t.pid, "mem", O_RDWR);
	ASSERT_GE(t.pidfd, 0);
	ASSERT_GE(t.other, 0);
	EXPECT_EQ(0, kt_wait(kt_fork(delegate, &t)));
	close(t.pidfd);
	close(t.other);
	stop(t.pid);
}

TEST(own_child_is_the_task)
{
	delegate_for_child(_metadata, getuid(), geteuid());
}

TEST(root_for_a_user_gets_the_users_credentials)
{
	NEED_ROOT();
	delegate_for_child(_metadata, UID_A, UID_A);
}

/* As UID_B: the proof is whatever B can open. */
struct hostile {
	pid_t victim;
	const char *what; /* "self-mem", "status", "eventfd" */
};

static int hostile_delegate(void *arg)
{
	struct hostile *h = arg;
	struct target t = {.pid = h->victim, .want_errno = EPERM};
	/* kt_become attached B as itself; and its uid change made it
	 * undumpable (its own /proc files root's). */
	kipc_detach();
	prctl(PR_SET_DUMPABLE, 1);
	t.pidfd = pidfd_of(h->victim);
	if (!strcmp(h->what, "self-mem")) {
		t.other = open_proc(getpid(), "mem", O_RDWR);
	} else if (!strcmp(h->what, "status")) {
		t.other = open_proc(h->victim, "status", O_RDONLY);
	} else {
		t.other = open_proc(getpid(), "mem", O_RDWR);
		close(t.pidfd);
		t.pidfd = eventfd(0, EFD_CLOEXEC);
	}
	if (t.pidfd < 0 || t.other < 0)
		return 30;
	/* The kernel's check stops us first: B may not open A's mem. */
	if (open_proc(h->victim, "mem", O_RDWR) >= 0)
		return 31;
	return delegate(&t);
}

TEST(another_users_process_is_refused)
{
	NEED_ROOT();
	pid_t victim = idle_as(UID_A);
	ASSERT_GT(victim, 0);
	ASSERT_TRUE(runs_as(victim, UID_A));
	static const char *const ways[] = {"self-mem", "status", "eventfd"};
	for (unsigned i = 0; i < sizeof ways / sizeof ways[0]; i++) {
		struct hostile h = {victim, ways[i]};
		EXPECT_EQ(0, kt_as_user(UID_B, hostile_delegate, &h))
			TH_LOG("proof: %s", ways[i]);
	}
	stop(victim);
}

TEST(exited_process_is_refused)
{
	struct target t = {.pid = idle_as(getuid()), .want_errno = ESRCH};
	ASSERT_GT(t.pid, 0);
	t.pidfd = pidfd_of(t.pid);
	t.other = open_proc(t.pid, "mem", O_RDWR);
	ASSERT_GE(t.other, 0);
	kill(t.pid, SIGKILL);
	waitpid(t.pid, NULL, 0);
	EXPECT_EQ(0, kt_wait(kt_fork(delegate, &t)));
	close(t.pidfd);
	close(t.other);
}

KIPC_TEST_MAIN
