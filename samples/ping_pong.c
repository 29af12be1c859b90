// SPDX-License-Identifier: MIT
/*
 * ping_pong: direct naming. Two processes send to each other by pid;
 * each message lands in the receiver's own task queue.
 *
 *   parent: send(child, "ping")   child: receive(parent) ...
 *   child:  send(parent, "pong")  parent: receive(child) ...
 *
 * receive(pid) is the symmetric form: it only takes messages from that
 * pid. receive(KIPC_ANY) would take anyone's and report the sender.
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kipc/libkipc.h>

#define ROUNDS 5

int main(void)
{
	pid_t parent = getpid();
	/* Attach before fork so the child inherits a running kernel. */
	if (kipc_attach() < 0) {
		perror("kipc_attach");
		return 1;
	}
	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 1;
	}
	if (child == 0) {
		/* The child is a task of its own: the library re-attaches. */
		char msg[16];
		for (int i = 0; i < ROUNDS; i++) {
			ssize_t n = kipc_receive(parent, msg, sizeof msg - 1, NULL, 0);
			if (n < 0) {
				perror("child: receive");
				_exit(1);
			}
			msg[n] = '\0';
			if (kipc_send(parent, "pong", 4, 0, 0) < 0) {
				perror("child: send");
				_exit(1);
			}
		}
		_exit(0);
	}

	for (int i = 1; i <= ROUNDS; i++) {
		char msg[16];
		struct kipc_msginfo info;
		if (kipc_send(child, "ping", 4, 0, 0) < 0) {
			perror("parent: send");
			return 1;
		}
		ssize_t n = kipc_receive(child, msg, sizeof msg - 1, &info, 0);
		if (n < 0) {
			perror("parent: receive");
			return 1;
		}
		msg[n] = '\0';
		printf("round %d: %d sent ping, %d answered %s\n", i, (int)parent,
		       (int)info.pid, msg);
	}
	int status;
	waitpid(child, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "ping_pong: child failed\n");
		return 1;
	}
	printf("ping_pong: %d rounds done\n", ROUNDS);
	return 0;
}
