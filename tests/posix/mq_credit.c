// SPDX-License-Identifier: MIT
/*
 * mq_send returning at once (under kipc-run, with a send credit: it
 * completes in the caller, before kipcd has taken it) is still seen by
 * another process's poll, mq_notify, mq_getattr and receives exactly as
 * a native send that had been taken before it returned; O_NONBLOCK
 * fails EAGAIN exactly at the capacity; mq_unlink and mq_close behave
 * as natively. Under kipc-run the test also checks that its sends took
 * the credit path (it reads its own credit words: a dynamic program's
 * kipc region, Documentation/transport.md section 12), and says so only
 * if they never did.
 */
#include "conform.h"
#include <poll.h>
#include <signal.h>
#include <stdint.h>

#define CAP 8

static int down[2], up[2]; /* parent -> child commands, child -> parent acks */
static const volatile uint32_t *credit; /* gen at +0, link at +8, op at +20 */
static int credited;



static void send1(mqd_t q, int v)
{
	char m[16];
	int n = snprintf(m, sizeof m, "%d", v);
	if (!credit)
		credit = kipc_words(512); /* KIPC_CREDIT_OFF */
	if (mq_send(q, m, (size_t)n, (unsigned)(v % 3)) < 0)
		say("send %d: -1 %s", v, strerrorname_np(errno));
	/* a grant for an mq_timedsend (34) of ours: the next sends use it */
	if (credit && __atomic_load_n(&credit[0], __ATOMIC_ACQUIRE) && credit[5] == 34)
		credited++;
}

/* The child: one command at a time, its output, then an ack. */
static void child(const char *name)
{
	mqd_t c = mq_open(name, O_RDONLY);
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
	char cmd;
	while (read(down[0], &cmd, 1) == 1) {
		char buf[16];
		unsigned prio;
		ssize_t n;
		struct mq_attr at;
		struct timespec ts = {1, 0}, zero = {0, 0};
		switch (cmd) {
		case 'p':
			show_poll("child", c);
			break;
		case 'r':
			n = mq_receive(c, buf, sizeof buf, &prio);
			if (n < 0)
				say("child receive: -1 %s", strerrorname_np(errno));
			else
				say("child receive: %.*s prio %u", (int)n, buf, prio);
			show_poll("child", c);
			break;
		case 'a':
			mq_getattr(c, &at);
			say("child curmsgs %ld", at.mq_curmsgs);
			break;
		case 'n':
			res("child mq_notify", mq_notify(c, &sev));
			break;
		case 's':
			say("child signal: %s", sigtimedwait(&usr1, NULL, &ts) == SIGUSR1 ? "SIGUSR1" : "none");
			break;
		case 'z':
			say("child signal now: %s",
			    sigtimedwait(&usr1, NULL, &zero) == SIGUSR1 ? "SIGUSR1" : "none");
			break;
		case 'd': /* drain, nonblocking */
			mq_getattr(c, &at);
			for (long i = 0; i < at.mq_curmsgs; i++)
				n = mq_receive(c, buf, sizeof buf, &prio);
			mq_getattr(c, &at);
			say("child drained, curmsgs %ld", at.mq_curmsgs);
			show_poll("child", c);
			break;
		}
		if (write(up[1], "k", 1) != 1)
			_exit(2);
	}
	mq_close(c);
	_exit(0);
}

static void ask(char cmd)
{
	char k;
	if (write(down[1], &cmd, 1) != 1 || read(up[0], &k, 1) != 1)
		say("child gone");
}

int main(void)
{
	const char *name = qname("credit");
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
	ask('p');

	/* A stream into a queue that has messages: every send is seen at once. */
	send1(q, 0);
	for (int v = 1; v < CAP; v++) {
		send1(q, v);
		ask('p');
		ask('a');
		show_poll("parent", q);
	}
	/* full: the descriptors stop polling POLLOUT; O_NONBLOCK says EAGAIN */
	struct mq_attr nb = {.mq_flags = O_NONBLOCK};
	res("parent O_NONBLOCK", mq_setattr(q, &nb, NULL));
	res("send to a full queue", mq_send(q, "x", 1, 0));
	/* the receiver takes them while more come */
	for (int v = CAP; v < CAP + 6; v++) {
		ask('r');
		send1(q, v);
		ask('a');
	}
	ask('d');
	show_poll("parent", q);

	/* mq_notify: registered on an empty queue, the next send fires it */
	ask('n');
	send1(q, 100);
	ask('s');
	/* sends into a queue with messages, then a registration: no signal */
	send1(q, 101);
	send1(q, 102);
	ask('n');
	send1(q, 103);
	send1(q, 104);
	ask('z');
	ask('a');
	/* emptied: the next send fires it */
	ask('d');
	send1(q, 105);
	ask('s');
	ask('d');

	/* mq_unlink: sends go on into the open queue; the name is gone */
	send1(q, 200);
	send1(q, 201);
	send1(q, 202);
	res("mq_unlink", mq_unlink(name));
	send1(q, 203);
	send1(q, 204);
	res("open the unlinked name", mq_open(name, O_RDONLY));
	ask('a');
	ask('r');
	ask('r');
	ask('d');

	/* mq_close: a send on the closed descriptor fails EBADF */
	send1(q, 300);
	send1(q, 301);
	res("mq_close", mq_close(q));
	res("send after close", mq_send(q, "y", 1, 0));
	ask('a');
	close(down[1]);
	reap("child", k);
	close(up[0]);
	if (credit && !credited)
		say("under kipc-run, no send found a credit");
	return 0;
}
