// SPDX-License-Identifier: MIT
/* mq_send/mq_receive and the timed variants: priorities, sizes, errors,
 * blocking, absolute CLOCK_REALTIME deadlines, Linux's order of checks. */
#include "conform.h"
#include <pthread.h>

static mqd_t q;
static char buf[8192];

static void recv_one(const char *what, size_t len)
{
	unsigned prio = 99;
	ssize_t n = mq_receive(q, buf, len, &prio);
	if (n < 0)
		res(what, -1);
	else
		say("%s: %zd bytes prio %u \"%.*s\"", what, n, prio, (int)n, buf);
}

static void *late_sender(void *arg)
{
	(void)arg;
	msleep(100);
	mq_send(q, "late", 4, 7);
	return NULL;
}

int main(void)
{
	const char *a = qname("sr");
	struct mq_attr at = {.mq_maxmsg = 4, .mq_msgsize = 16};
	q = res("create 4 x 16", mq_open(a, O_RDWR | O_CREAT | O_EXCL, 0600, &at));

	res("send prio 1 \"a\"", mq_send(q, "a", 1, 1));
	res("send prio 5 \"b\"", mq_send(q, "b", 1, 5));
	res("send prio 1 \"c\"", mq_send(q, "c", 1, 1));
	res("send prio 32767 \"d\"", mq_send(q, "d", 1, 32767));
	mq_getattr(q, &at);
	val("curmsgs", at.mq_curmsgs);
	recv_one("receive", 16);
	recv_one("receive", 16);
	recv_one("receive", 16);
	recv_one("receive", 16);

	res("send prio 32768", mq_send(q, "x", 1, 32768));
	res("send 17 bytes", mq_send(q, "0123456789abcdefg", 17, 0));
	res("send 16 bytes", mq_send(q, "0123456789abcdef", 16, 0));
	res("send 0 bytes", mq_send(q, "", 0, 2));
	recv_one("receive into 15 bytes", 15);
	recv_one("receive", 16);
	recv_one("receive into 100 bytes", 100);
	res("send prio 32768 on bad fd", mq_send(-1, "x", 1, 32768));
	res("send too big on bad fd", mq_send(-1, buf, 100, 0));

	/* full and empty, nonblocking */
	struct mq_attr nb = {.mq_flags = O_NONBLOCK};
	mq_setattr(q, &nb, NULL);
	for (int i = 0; i < 4; i++)
		res("fill", mq_send(q, "f", 1, 0));
	res("send to full, O_NONBLOCK", mq_send(q, "f", 1, 0));
	struct timespec past = abs_ms(-1000), bad = {0, 1000000000}, neg = {-1, 0};
	res("timedsend full, O_NONBLOCK, past deadline", mq_timedsend(q, "f", 1, 0, &past));
	res("timedsend full, invalid timeout", mq_timedsend(q, "f", 1, 0, &bad));
	res("timedsend invalid timeout, too big", mq_timedsend(q, buf, 100, 0, &bad));
	res("timedsend invalid timeout, bad fd", mq_timedsend(-1, "f", 1, 0, &neg));
	for (int i = 0; i < 4; i++)
		recv_one("drain", 16);
	res("receive from empty, O_NONBLOCK", mq_receive(q, buf, 16, NULL));
	res("timedreceive empty, invalid timeout", mq_timedreceive(q, buf, 16, NULL, &bad));
	res("timedreceive empty, tv_sec -1", mq_timedreceive(q, buf, 16, NULL, &neg));
	res("send one", mq_send(q, "m", 1, 0));
	res("timedreceive nonempty, invalid timeout", mq_timedreceive(q, buf, 16, NULL, &bad));
	res("timedreceive nonempty, past deadline", mq_timedreceive(q, buf, 16, NULL, &past));

	/* blocking with deadlines */
	nb.mq_flags = 0;
	mq_setattr(q, &nb, NULL);
	res("timedreceive empty, past deadline", mq_timedreceive(q, buf, 16, NULL, &past));
	struct timespec soon = abs_ms(50);
	res("timedreceive empty, 50 ms", mq_timedreceive(q, buf, 16, NULL, &soon));
	for (int i = 0; i < 4; i++)
		mq_send(q, "g", 1, 0);
	res("timedsend full, past deadline", mq_timedsend(q, "g", 1, 0, &past));
	soon = abs_ms(50);
	res("timedsend full, 50 ms", mq_timedsend(q, "g", 1, 0, &soon));
	for (int i = 0; i < 4; i++)
		mq_receive(q, buf, 16, NULL);

	/* a blocked receiver gets a message sent later */
	pthread_t th;
	pthread_create(&th, NULL, late_sender, NULL);
	soon = abs_ms(5000);
	recv_one("timedreceive, sent 100 ms later", 16);
	pthread_join(th, NULL);

	/* blocked senders get in in arrival order, whatever their priority */
	for (int i = 0; i < 4; i++)
		mq_send(q, "h", 1, 3);
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			mqd_t c = mq_open(a, O_WRONLY);
			_exit(mq_send(c, k ? "second" : "first", k ? 6 : 5, k ? 9 : 1) < 0);
		}
		msleep(150); /* the first blocks before the second */
	}
	mq_getattr(q, &at);
	val("curmsgs with two blocked senders", at.mq_curmsgs);
	recv_one("receive", 16); /* h: frees one slot: "first" gets in */
	recv_one("receive", 16);
	recv_one("receive", 16);
	recv_one("receive", 16);
	recv_one("receive", 16);
	recv_one("receive", 16);
	reap("sender 1", kids[0]);
	reap("sender 2", kids[1]);

	res("close", mq_close(q));
	res("unlink", mq_unlink(a));
	return 0;
}
