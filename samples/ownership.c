// SPDX-License-Identifier: MIT
/*
 * ownership: who may receive, and what happens when the owner dies.
 * A process-owned mailbox (the default) dies with its owner; a
 * kernel-owned one outlives it and can be adopted. Handing ownership
 * over (set_owner) moves the receive right, as a Mach receive right
 * moves: the old owner can no longer receive.
 *
 * Notice: EPERM after the hand-over, EIDRM once the owner died, and the
 * kernel-owned mailbox surviving its owner with its message.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kipc/libkipc.h>

/* A child that attaches, then waits for one message on its task queue
 * (its cue to exit): a live task we can hand things to. */
static pid_t helper(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		kipc_receive(KIPC_ANY, &c, 1, NULL, 0);
		_exit(0);
	}
	return pid;
}

static void finish(pid_t pid)
{
	kipc_send(pid, "x", 1, 0, 0);
	waitpid(pid, NULL, 0);
}

static const char *res(long r)
{
	return r < 0 ? strerrorname_np(errno) : "ok";
}

int main(void)
{
	char buf[16];
	struct kipc_mbox_attr proc = {.capacity = 4, .mode = 0600};
	struct kipc_mbox_attr kern = {.capacity = 4, .mode = 0600, .flags = KIPC_MBOX_KERNEL_OWNED};

	printf("1. hand a process-owned mailbox to a child\n");
	int64_t box = kipc_mbox_open(NULL, 0, &proc);
	pid_t child = helper();
	kipc_mbox_send(box, "job", 3, 0, 0);
	printf("   set_owner(child):          %s\n", res(kipc_mbox_set_owner(box, child)));
	printf("   parent receives:           %s (the right went with ownership)\n",
	       res(kipc_mbox_receive(box, buf, sizeof buf, NULL, KIPC_F_NONBLOCK)));
	finish(child);
	/* The kernel learns of the exit on its own (pidfd): wait for that state. */
	struct kipc_mbox_stat st;
	for (int i = 0; i < 5000 && kipc_mbox_stat(box, &st) == 0; i++)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	printf("   the child exited; send:    %s (the mailbox died with its owner)\n",
	       res(kipc_mbox_send(box, "late", 4, 0, 0)));

	printf("2. a kernel-owned mailbox outlives its owner\n");
	child = fork();
	if (child == 0) {
		int64_t id = kipc_mbox_open("/ownership-sample", KIPC_O_CREAT | KIPC_O_EXCL, &kern);
		_exit(id < 0 || kipc_mbox_send(id, "left behind", 12, 0, 0) < 0);
	}
	waitpid(child, NULL, 0);
	int64_t orphan = kipc_mbox_open("/ownership-sample", 0, NULL);
	for (int i = 0; i < 5000 && kipc_mbox_stat(orphan, &st) == 0 && st.owner; i++)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	printf("   its creator exited: owner %s, %u message queued\n", st.owner ? "?" : "none", st.nmsg);
	printf("   adopt it (set_owner(me)):  %s (same user may)\n",
	       res(kipc_mbox_set_owner(orphan, kipc_task_pid())));
	ssize_t n = kipc_mbox_receive(orphan, buf, sizeof buf, NULL, 0);
	printf("   receive:                   \"%.*s\"\n", (int)(n > 0 ? n : 0), buf);

	printf("3. grant and revoke the right to receive\n");
	child = helper();
	printf("   grant(child):              %s\n", res(kipc_mbox_grant(orphan, child)));
	kipc_mbox_stat(orphan, &st);
	printf("   holders now:               %u (owner and child)\n", st.nholders);
	printf("   revoke(child):             %s\n", res(kipc_mbox_revoke(orphan, child)));
	printf("   revoke(me, the owner):     %s (the owner's right goes only with ownership)\n",
	       res(kipc_mbox_revoke(orphan, kipc_task_pid())));
	finish(child);
	kipc_mbox_destroy(orphan);
	return 0;
}
