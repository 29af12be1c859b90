// SPDX-License-Identifier: MIT
/*
 * producer_consumer: the textbook bounded-buffer problem, with a bounded
 * mailbox instead of a shared array, semaphores and a mutex.
 *
 * The mailbox holds at most BUFFER_SIZE messages. The producer blocks in
 * send() when it is full, the consumer blocks in receive() when it is
 * empty: the kernel does the counting that "empty" and "full" semaphores
 * do in the shared-memory version.
 *
 * usage: producer_consumer [DELAY_MS]
 * With DELAY_MS the consumer waits that long before each receive, so the
 * mailbox fills up and the producer blocks: watch it with `kipcs --watch`
 * and `kipc-trace` in other terminals.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kipc/libkipc.h>

#define BUFFER_SIZE 4   /* capacity of the mailbox */
#define ITEMS       12  /* items the producer makes */

int main(int argc, char **argv)
{
	long delay_ms = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
	struct timespec delay = {delay_ms / 1000, delay_ms % 1000 * 1000000L};

	/* A kernel-owned mailbox: it exists until we destroy it. */
	struct kipc_mbox_attr attr = {
		.capacity = BUFFER_SIZE,
		.flags = KIPC_MBOX_KERNEL_OWNED,
		.mode = 0600,
	};
	int64_t box = kipc_mbox_open(NULL, 0, &attr);
	if (box < 0) {
		perror("kipc_mbox_open");
		return 1;
	}
	printf("producer_consumer: mailbox %lld holds at most %d items\n",
	       (long long)box, BUFFER_SIZE);
	fflush(stdout);

	pid_t producer = fork();
	if (producer < 0) {
		perror("fork");
		return 1;
	}
	if (producer == 0) {
		/* Producer: send ITEMS numbers, then -1 meaning "done". */
		for (int item = 1; item <= ITEMS; item++) {
			if (kipc_mbox_send(box, &item, sizeof item, 0, 0) < 0) {
				perror("producer: send");
				_exit(1);
			}
		}
		int done = -1;
		_exit(kipc_mbox_send(box, &done, sizeof done, 0, 0) < 0);
	}

	/* Consumer: receive until "done", checking the order. */
	int expected = 1, item;
	for (;;) {
		if (delay_ms > 0)
			nanosleep(&delay, NULL);
		if (kipc_mbox_receive(box, &item, sizeof item, NULL, 0) < 0) {
			perror("consumer: receive");
			return 1;
		}
		if (item == -1)
			break;
		printf("consumer: got item %d\n", item);
		if (item != expected++) {
			fprintf(stderr, "consumer: item out of order\n");
			return 1;
		}
	}

	int status;
	waitpid(producer, &status, 0);
	kipc_mbox_destroy(box);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || expected != ITEMS + 1) {
		fprintf(stderr, "producer_consumer: FAILED\n");
		return 1;
	}
	printf("producer_consumer: %d items, in order, through %d slots\n",
	       ITEMS, BUFFER_SIZE);
	return 0;
}
