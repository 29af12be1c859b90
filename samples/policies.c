// SPDX-License-Identifier: MIT
/*
 * policies: four ways for several receivers to share one mailbox.
 *   any          the receiver that has waited longest gets the message
 *   pair         the first sender and the first receiver bind the link
 *                to themselves (a one-to-one link); others get EPERM
 *   exclusive    one task inside receive at a time; another gets EBUSY
 *   round-robin  each message is assigned at send time to the next
 *                holder of the receive right, in turn
 *
 * Each receiver is a child process; it exits with 100 + the digit it
 * received, or with the errno of its failed receive.
 *
 * Notice: who gets what under each policy, and the errors.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kipc/libkipc.h>

static int64_t mbox(uint32_t policy, uint32_t flags)
{
	struct kipc_mbox_attr a = {.capacity = 8, .msgsize = 8, .policy = policy,
				   .flags = flags, .mode = 0600};
	return kipc_mbox_open(NULL, 0, &a);
}

/* A child that receives once from box (flags) and exits with the result;
 * with linger, it stays (a live task) until a message on its task queue. */
static pid_t receiver_x(int64_t box, unsigned flags, int linger)
{
	pid_t pid = fork();
	if (pid == 0) {
		char c, cue;
		ssize_t n = kipc_mbox_receive(box, &c, 1, NULL, flags);
		int err = errno;
		if (linger)
			kipc_receive(KIPC_ANY, &cue, 1, NULL, 0);
		_exit(n == 1 ? 100 + c - '0' : err);
	}
	return pid;
}

static pid_t receiver(int64_t box, unsigned flags)
{
	return receiver_x(box, flags, 0);
}

static const char *result(pid_t pid)
{
	static char s[32];
	int st;
	waitpid(pid, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	if (code >= 100)
		snprintf(s, sizeof s, "got %d", code - 100);
	else
		snprintf(s, sizeof s, "failed %s", code > 0 ? strerrorname_np(code) : "?");
	return s;
}

/* Wait for the state: n receivers parked on box. */
static void receivers_waiting(int64_t box, unsigned n)
{
	struct kipc_mbox_stat st;
	while (kipc_mbox_stat(box, &st) == 0 && st.nreceivers < n)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
}

int main(void)
{
	/* Kernel-owned, mode 0600: the children (same user) may receive. */
	int64_t box = mbox(KIPC_POLICY_ANY, KIPC_MBOX_KERNEL_OWNED);
	pid_t a = receiver(box, 0);
	receivers_waiting(box, 1);
	pid_t b = receiver(box, 0);
	receivers_waiting(box, 2);
	kipc_mbox_send(box, "1", 1, 0, 0);
	kipc_mbox_send(box, "2", 1, 0, 0);
	printf("any:         A (waiting longest) %s, ", result(a));
	printf("B %s\n", result(b));
	kipc_mbox_destroy(box);

	box = mbox(KIPC_POLICY_PAIR, KIPC_MBOX_KERNEL_OWNED);
	kipc_mbox_send(box, "1", 1, 0, 0); /* the parent is now the bound sender */
	kipc_mbox_send(box, "2", 1, 0, 0);
	a = receiver_x(box, 0, 1);
	struct kipc_mbox_stat st;
	while (kipc_mbox_stat(box, &st) == 0 && st.nmsg == 2) /* until A took one */
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	b = receiver(box, KIPC_F_NONBLOCK);
	printf("pair:        B %s (A, the first receiver, holds the link), ", result(b));
	kipc_send(a, "go", 1, 0, 0);
	printf("A %s\n", result(a));
	kipc_mbox_destroy(box);

	box = mbox(KIPC_POLICY_EXCLUSIVE, KIPC_MBOX_KERNEL_OWNED);
	a = receiver(box, 0);
	receivers_waiting(box, 1);
	b = receiver(box, KIPC_F_NONBLOCK);
	printf("exclusive:   B %s while A waits inside receive, ", result(b));
	kipc_mbox_send(box, "1", 1, 0, 0);
	printf("A %s\n", result(a));
	kipc_mbox_destroy(box);

	/* Process-owned by the parent; the children get the right by grant. */
	box = mbox(KIPC_POLICY_ROUND_ROBIN, 0);
	pid_t kids[2];
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			char c;
			kipc_receive(KIPC_ANY, &c, 1, NULL, 0); /* the cue: "your turn" */
			int got = 0;
			while (kipc_mbox_receive(box, &c, 1, NULL, KIPC_F_NONBLOCK) == 1)
				got = got * 10 + c - '0';
			_exit(100 + got);
		}
		kipc_mbox_grant(box, kids[i]);
	}
	for (char c = '1'; c <= '6'; c++)
		kipc_mbox_send(box, &c, 1, 0, 0);
	struct kipc_msg_info q[6];
	ssize_t n = kipc_msg_list(box, 0, q, 6);
	printf("round-robin: assigned at send time:");
	for (ssize_t i = 0; i < n && i < 6; i++)
		printf(" %zd->%s", i + 1, q[i].route == kids[0] ? "A" : q[i].route == kids[1] ? "B" : "me");
	printf("\n");
	char mine[8] = "";
	for (char c; kipc_mbox_receive(box, &c, 1, NULL, KIPC_F_NONBLOCK) == 1;)
		strncat(mine, &c, 1);
	for (int i = 0; i < 2; i++)
		kipc_send(kids[i], "go", 1, 0, 0);
	printf("             me got %s, A %s, ", mine, result(kids[0]));
	printf("B %s\n", result(kids[1]));
	kipc_mbox_destroy(box);
	return 0;
}
