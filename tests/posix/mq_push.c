// SPDX-License-Identifier: MIT
/*
 * mq_receive returning at once (under kipc-run, with receive push: the
 * message was copied ahead into the receiver's region and is claimed
 * there, before kipcd has taken it) is still seen by another process's
 * poll, mq_getattr, sends and receives exactly as a native receive: the
 * last message, and a receive from a full queue, go through kipcd (so
 * the queue's POLLIN and POLLOUT change inside the call that changes
 * them); a send of higher priority made after a receive returned is the
 * next one received; a buffer smaller than msgsize fails EMSGSIZE;
 * O_NONBLOCK says EAGAIN exactly when the queue is empty; mq_notify
 * fires when the queue receives its first message after it was emptied.
 * Under kipc-run the test also checks that its receives took the push
 * path (it reads its own push words: a dynamic program's kipc region,
 * Documentation/transport.md section 13), and says so only if they
 * never did.
 */
#include "conform.h"
#include <poll.h>
#include <signal.h>
#include <stdint.h>

#define CAP 8

static int down[2], up[2]; /* parent -> child commands, child -> parent acks */
static const volatile uint64_t *push; /* claim at +0, link at +8 */
static int pushed;



static void send1(mqd_t q, int v, unsigned prio)
{
	char m[16];
	int n = snprintf(m, sizeof m, "%d", v);
	if (mq_send(q, m, (size_t)n, prio) < 0)
		say("send %d: -1 %s", v, strerrorname_np(errno));
}

/* A receive of the child; a claim of its grant moved the claim word. */
static void recv1(mqd_t c, size_t len)
{
	char buf[32];
	unsigned prio;
	if (!push)
		push = kipc_words(576); /* KIPC_PUSH_OFF */
	uint64_t before = push ? __atomic_load_n(push, __ATOMIC_ACQUIRE) : 0;
	ssize_t n = mq_receive(c, buf, len, &prio);
	uint64_t after = push ? __atomic_load_n(push, __ATOMIC_ACQUIRE) : 0;
	/* a grant for one of our POSIX opens (link < -1), claimed by this call */
	if (push && (before >> 32) && after == before + 1 && (int64_t)push[1] < -1)
		pushed++;
	if (n < 0)
		say("child receive: -1 %s", strerrorname_np(errno));
	else
		say("child receive: %.*s prio %u", (int)n, buf, prio);
}

/* The child: one command at a time, its output, then an ack. */
static void child(const char *name)
{
	mqd_t c = mq_open(name, O_RDONLY);
	char cmd;
	while (read(down[0], &cmd, 1) == 1) {
		struct mq_attr at, nb = {.mq_flags = O_NONBLOCK};
		switch (cmd) {
		case 'r':
			recv1(c, 16);
			break;
		case 'e': /* a buffer below msgsize */
			recv1(c, 15);
			break;
		case 'p':
			show_poll("child", c);
			break;
		case 'a':
			mq_getattr(c, &at);
			say("child curmsgs %ld", at.mq_curmsgs);
			break;
		case 'b':
			res("child O_NONBLOCK", mq_setattr(c, &nb, NULL));
			break;
		}
		if (write(up[1], "k", 1) != 1)
			_exit(2);
	}
	if (push && !pushed)
		say("under kipc-run, no receive was pushed");
	mq_close(c);
	_exit(0);
}

static void ask(char cmd)
{
	char k;
	if (write(down[1], &cmd, 1) != 1 || read(up[0], &k, 1) != 1)
		say("child gone");
}

/* The child receives one; the parent then looks at the queue. */
static void take(mqd_t q)
{
	ask('r');
	show_poll("parent", q);
	struct mq_attr at;
	mq_getattr(q, &at);
	say("parent curmsgs %ld", at.mq_curmsgs);
}

int main(void)
{
	const char *name = qname("push");
	struct mq_attr at = {.mq_maxmsg = CAP, .mq_msgsize = 16};
	mqd_t q = res("create", mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &at));
	if (pipe(down) < 0 || pipe(up) < 0)
		return 1;
	fflush(stdout);
	pid_t k = fork();
	if (k == 0) {
		close(down[1]);
		close(up[0]);
		child(name);
	}
	close(down[0]);
	close(up[1]);

	/* Rounds of a few messages, received to the last: each receive is
	 * seen at once, the last empties the queue (POLLIN goes). */
	for (int round = 0; round < 4; round++) {
		for (int v = 0; v < 5; v++)
			send1(q, round * 10 + v, 1);
		for (int v = 0; v < 5; v++)
			take(q);
	}

	/* A full queue: its first receive gives POLLOUT back. */
	for (int v = 0; v < CAP; v++)
		send1(q, 100 + v, 1);
	show_poll("parent", q);
	take(q);
	take(q);
	/* a send of higher priority after a receive returned comes next,
	 * then one of the same priority goes behind the rest */
	send1(q, 200, 5);
	take(q);
	send1(q, 201, 1);
	take(q);
	take(q);
	/* a buffer below msgsize: EMSGSIZE, nothing taken */
	ask('e');
	ask('a');
	/* O_NONBLOCK: every message, then EAGAIN at the empty queue */
	ask('b');
	for (int v = 0; v < 6; v++)
		take(q);
	ask('p');

	/* mq_notify after the receiver emptied the queue: the next send fires */
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	for (int v = 0; v < 4; v++)
		send1(q, 300 + v, 0);
	res("mq_notify on a queue with messages", mq_notify(q, &sev));
	for (int v = 0; v < 4; v++)
		take(q);
	struct timespec zero = {0, 0}, ts = {1, 0};
	say("signal before the send: %s",
	    sigtimedwait(&usr1, NULL, &zero) == SIGUSR1 ? "SIGUSR1" : "none");
	send1(q, 400, 0);
	say("signal after the send: %s",
	    sigtimedwait(&usr1, NULL, &ts) == SIGUSR1 ? "SIGUSR1" : "none");
	take(q);

	close(down[1]);
	reap("child", k);
	close(up[0]);
	res("mq_unlink", mq_unlink(name));
	return 0;
}
