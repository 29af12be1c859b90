// SPDX-License-Identifier: MIT
/* A queue descriptor under poll/select/epoll, dup and fork. */
#include "conform.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>


int main(void)
{
	const char *a = qname("poll");
	struct mq_attr at = {.mq_maxmsg = 2, .mq_msgsize = 8};
	char buf[8];
	mqd_t q = res("create 2 x 8", mq_open(a, O_RDWR | O_CREAT | O_EXCL, 0600, &at));
	show_poll("empty", q);
	mq_send(q, "1", 1, 0);
	show_poll("one", q);
	mq_send(q, "2", 1, 0);
	show_poll("full", q);
	mq_receive(q, buf, sizeof buf, NULL);
	show_poll("one again", q);
	mq_receive(q, buf, sizeof buf, NULL);
	show_poll("empty again", q);

	/* select */
	fd_set r, w;
	FD_ZERO(&r);
	FD_ZERO(&w);
	FD_SET(q, &r);
	FD_SET(q, &w);
	struct timeval tv = {0, 0};
	int n = select(q + 1, &r, &w, NULL, &tv);
	say("select empty: %d r=%d w=%d", n, FD_ISSET(q, &r), FD_ISSET(q, &w));

	/* epoll: a message sent by another process wakes the waiter */
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = q};
	res("epoll_ctl add", epoll_ctl(ep, EPOLL_CTL_ADD, q, &ev));
	fflush(stdout);
	pid_t k = fork();
	if (k == 0) {
		msleep(100);
		mqd_t c = mq_open(a, O_WRONLY);
		_exit(mq_send(c, "e", 1, 0) < 0);
	}
	struct epoll_event out;
	n = epoll_wait(ep, &out, 1, 5000);
	say("epoll_wait: %d%s", n, n == 1 && (out.events & EPOLLIN) ? " EPOLLIN" : "");
	reap("sender", k);
	mq_receive(q, buf, sizeof buf, NULL);
	n = epoll_wait(ep, &out, 1, 0);
	val("epoll_wait after receive", n);
	close(ep);

	/* poll blocks until a message comes */
	fflush(stdout);
	k = fork();
	if (k == 0) {
		msleep(100);
		mqd_t c = mq_open(a, O_WRONLY);
		_exit(mq_send(c, "p", 1, 0) < 0);
	}
	struct pollfd p = {.fd = q, .events = POLLIN};
	n = poll(&p, 1, 5000);
	say("poll wait: %d%s", n, p.revents & POLLIN ? " POLLIN" : "");
	reap("sender", k);
	mq_receive(q, buf, sizeof buf, NULL);

	/* fork: the child shares the descriptor and its O_NONBLOCK flag */
	fflush(stdout);
	k = fork();
	if (k == 0) {
		struct mq_attr nb = {.mq_flags = O_NONBLOCK};
		res("child: setattr O_NONBLOCK", mq_setattr(q, &nb, NULL));
		res("child: send", mq_send(q, "c1", 2, 3));
		res("child: send", mq_send(q, "c2", 2, 4));
		res("child: send to full", mq_send(q, "c3", 2, 5));
		res("child: close", mq_close(q));
		_exit(0);
	}
	reap("child", k);
	mq_getattr(q, &at);
	say("parent: flags=%s curmsgs=%ld", at.mq_flags & O_NONBLOCK ? "O_NONBLOCK" : "0",
	    at.mq_curmsgs);
	unsigned prio;
	ssize_t m = mq_receive(q, buf, sizeof buf, &prio);
	say("parent: receive %zd prio %u", m, prio);

	/* unlinked queue survives while a child holds it */
	fflush(stdout);
	int go[2];
	pipe(go);
	k = fork();
	if (k == 0) {
		char c;
		close(go[1]);
		read(go[0], &c, 1); /* parent unlinked and closed */
		res("child: send after parent unlink+close", mq_send(q, "late", 4, 0));
		m = mq_receive(q, buf, sizeof buf, &prio);
		say("child: receive %zd prio %u", m, prio);
		m = mq_receive(q, buf, sizeof buf, &prio);
		say("child: receive %zd prio %u", m, prio);
		_exit(0);
	}
	close(go[0]);
	res("parent: unlink", mq_unlink(a));
	res("parent: close", mq_close(q));
	res("parent: open unlinked", mq_open(a, O_RDWR));
	write(go[1], "g", 1);
	close(go[1]);
	reap("child", k);
	return 0;
}
