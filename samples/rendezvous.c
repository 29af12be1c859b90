// SPDX-License-Identifier: MIT
/*
 * rendezvous: a zero-capacity link. No message can wait in it, so a
 * blocking send completes only when a receiver takes the message: the
 * two processes meet. (Ada calls this a rendezvous; MINIX's send works
 * this way.)
 *
 * The receiver sleeps a while before receiving; the sender's send()
 * returns only after that, which the program checks and prints.
 */
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kipc/libkipc.h>

#define DELAY_MS 300

static double now_ms(void)
{
	return kipc_clock_ns(CLOCK_MONOTONIC) / 1e6;
}

int main(void)
{
	struct kipc_mbox_attr attr = {
		.capacity = 0, /* rendezvous */
		.flags = KIPC_MBOX_KERNEL_OWNED,
		.mode = 0600,
	};
	int64_t link = kipc_mbox_open(NULL, 0, &attr);
	if (link < 0) {
		perror("kipc_mbox_open");
		return 1;
	}
	double start = now_ms();
	fflush(stdout);

	pid_t receiver = fork();
	if (receiver < 0) {
		perror("fork");
		return 1;
	}
	if (receiver == 0) {
		struct timespec d = {0, DELAY_MS * 1000000L};
		nanosleep(&d, NULL); /* busy with something else */
		char msg[32];
		ssize_t n = kipc_mbox_receive(link, msg, sizeof msg - 1, NULL, 0);
		if (n < 0) {
			perror("receiver: receive");
			_exit(1);
		}
		msg[n] = '\0';
		printf("receiver: took \"%s\" at %.0f ms\n", msg, now_ms() - start);
		fflush(stdout); /* _exit() does not flush stdio */
		_exit(0);
	}

	printf("sender: sending at %.0f ms (the receiver is not ready)\n",
	       now_ms() - start);
	fflush(stdout);
	if (kipc_mbox_send(link, "meet me", 7, 0, 0) < 0) {
		perror("sender: send");
		return 1;
	}
	double done = now_ms() - start;
	printf("sender: send completed at %.0f ms\n", done);

	int status;
	waitpid(receiver, &status, 0);
	kipc_mbox_destroy(link);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return 1;
	if (done < DELAY_MS * 0.9) {
		fprintf(stderr, "rendezvous: send returned before the receiver took it\n");
		return 1;
	}
	printf("rendezvous: the send waited for the receiver\n");
	return 0;
}
