// SPDX-License-Identifier: MIT
/*
 * deadlock: on rendezvous (zero-capacity) links a blocked sender waits
 * for one receiver. When a send would close a cycle of tasks each
 * waiting for the next, the kernel refuses it with EDEADLK instead of
 * letting both wait for ever (MINIX does the same check).
 *
 * Two processes each own a rendezvous mailbox. The child blocks sending
 * to the parent's; the parent then sends to the child's: a cycle.
 *
 * Notice: the first send waits (no cycle yet); the second fails at once.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kipc/libkipc.h>

int main(void)
{
	/* Process-owned: the owner is the only one that can receive. */
	struct kipc_mbox_attr attr = {.capacity = 0, .mode = 0600};
	char name[64];
	snprintf(name, sizeof name, "/deadlock-child-%d", (int)getpid());
	int64_t mine = kipc_mbox_open(NULL, 0, &attr);
	if (mine < 0) {
		perror("kipc_mbox_open");
		return 1;
	}
	int r = kipc_mbox_send_timed(mine, "me", 2, 0, 0, 1000000000);
	printf("parent: a send to my own rendezvous: %s (only I could receive it)\n",
	       r < 0 ? strerrorname_np(errno) : "ok?");

	pid_t child = fork();
	if (child == 0) {
		attr.mode = 0666;
		int64_t theirs = kipc_mbox_open(name, KIPC_O_CREAT | KIPC_O_EXCL, &attr);
		if (theirs < 0 || kipc_mbox_send(mine, "hello", 5, 0, 0) < 0)
			_exit(1); /* blocked until the parent receives */
		_exit(0);
	}
	/* Wait for the state: the child is blocked sending to our mailbox. */
	struct kipc_mbox_stat st = {0};
	while (kipc_mbox_stat(mine, &st) == 0 && st.nsenders == 0) {
		struct timespec d = {0, 1000000};
		nanosleep(&d, NULL);
	}
	printf("child: blocked sending to the parent's rendezvous\n");
	int64_t theirs = kipc_mbox_open(name, 0, NULL);
	r = kipc_mbox_send_timed(theirs, "hi", 2, 0, 0, 1000000000);
	printf("parent: send to the child's rendezvous: %s\n", r < 0 ? strerrorname_np(errno) : "ok?");
	printf("        (the child waits for me, I would wait for the child)\n");

	char buf[8];
	ssize_t n = kipc_mbox_receive(mine, buf, sizeof buf, NULL, 0);
	int status;
	waitpid(child, &status, 0);
	printf("parent: received \"%.*s\": the child's send completes, no cycle any more\n",
	       (int)(n > 0 ? n : 0), buf);
	kipc_mbox_destroy(mine);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
