// SPDX-License-Identifier: MIT
/*
 * rpc: remote procedure call. The client's call() sends a request and
 * blocks until the server replies (MINIX sendrec, QNX MsgSend). The
 * server receives calls on a named mailbox; each received call carries a
 * reply token, and reply(token, ...) answers exactly that call.
 *
 * The service squares a number. The client asks for a few, then sends 0
 * to stop the server.
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kipc/libkipc.h>

static int server(int64_t box)
{
	for (;;) {
		long n;
		struct kipc_msginfo info;
		if (kipc_mbox_receive(box, &n, sizeof n, &info, 0) < 0) {
			perror("server: receive");
			return 1;
		}
		if (!(info.flags & KIPC_CQE_F_CALL))
			continue; /* a plain message: nobody waits for an answer */
		long sq = n * n;
		printf("server: %d asked for %ld^2, answering %ld\n",
		       (int)info.pid, n, sq);
		fflush(stdout);
		if (kipc_reply(info.token, &sq, sizeof sq, 0) < 0) {
			perror("server: reply");
			return 1;
		}
		if (n == 0)
			return 0;
	}
}

int main(void)
{
	char name[64];
	snprintf(name, sizeof name, "/rpc-sample-%d", (int)getpid());
	int64_t box = kipc_mbox_open(name, KIPC_O_CREAT | KIPC_O_EXCL, NULL);
	if (box < 0) {
		perror("kipc_mbox_open");
		return 1;
	}
	printf("rpc: server mailbox %s\n", name);
	fflush(stdout);

	pid_t client = fork();
	if (client < 0) {
		perror("fork");
		return 1;
	}
	if (client == 0) {
		/* The client finds the service by name. */
		int64_t svc = kipc_mbox_open(name, 0, NULL);
		if (svc < 0) {
			perror("client: open");
			_exit(1);
		}
		long args[] = {3, 12, 7, 0};
		for (unsigned i = 0; i < sizeof args / sizeof args[0]; i++) {
			long answer;
			if (kipc_mbox_call(svc, &args[i], sizeof args[i], &answer,
					   sizeof answer, NULL, 0) < 0) {
				perror("client: call");
				_exit(1);
			}
			printf("client: %ld^2 = %ld\n", args[i], answer);
			fflush(stdout);
			if (answer != args[i] * args[i])
				_exit(1);
		}
		_exit(0);
	}

	/* The parent owns the mailbox (only the owner may receive): it is
	 * the server. */
	int ret = server(box);
	int status;
	waitpid(client, &status, 0);
	if (ret || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "rpc: FAILED\n");
		return 1;
	}
	printf("rpc: every call got its reply\n");
	return 0;
}
