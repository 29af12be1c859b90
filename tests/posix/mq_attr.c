// SPDX-License-Identifier: MIT
/* mq_attr: defaults, limits, mq_getattr/mq_setattr, EBADF. */
#include "conform.h"
#include <sys/resource.h>

static void show(const char *what, mqd_t q)
{
	struct mq_attr a;
	if (mq_getattr(q, &a) < 0) {
		res(what, -1);
		return;
	}
	say("%s: flags=%s maxmsg=%ld msgsize=%ld curmsgs=%ld", what,
	    a.mq_flags & O_NONBLOCK ? "O_NONBLOCK" : "0", a.mq_maxmsg, a.mq_msgsize,
	    a.mq_curmsgs);
}

/* A number from a /proc file, or 0. */
static long proc_long(const char *path)
{
	long v = 0;
	FILE *f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static void try_attr(const char *what, long maxmsg, long msgsize)
{
	struct mq_attr a = {.mq_maxmsg = maxmsg, .mq_msgsize = msgsize};
	const char *n = qname("try");
	mqd_t q = res(what, mq_open(n, O_RDWR | O_CREAT | O_EXCL, 0600, &a));
	if (q >= 0) {
		show(what, q);
		mq_close(q);
		mq_unlink(n);
	}
}

int main(void)
{
	const char *a = qname("attr");
	mqd_t q = res("create default", mq_open(a, O_RDWR | O_CREAT | O_EXCL, 0600, NULL));
	show("default", q);
	mq_close(q);
	mq_unlink(a);

	try_attr("maxmsg 3 msgsize 64", 3, 64);
	try_attr("maxmsg 0", 0, 64);
	try_attr("msgsize 0", 3, 0);
	try_attr("maxmsg -1", -1, 64);
	try_attr("msgsize -5", 3, -5);
	try_attr("maxmsg 1 msgsize 1", 1, 1);
	int root = geteuid() == 0;
	val("root", root);
	/*
	 * The boundaries are the machine's limits (kipc-run's kipcd boots
	 * with the same ones); CAP_SYS_RESOURCE lifts them to the hard limits.
	 */
	long msg_max = proc_long("/proc/sys/fs/mqueue/msg_max");
	long msgsize_max = proc_long("/proc/sys/fs/mqueue/msgsize_max");
	if (msg_max > 0 && msgsize_max > 0) {
		try_attr("maxmsg msg_max", msg_max, 16);
		try_attr("maxmsg msg_max+1", msg_max + 1, 16);
		try_attr("msgsize msgsize_max", 2, msgsize_max);
		try_attr("msgsize msgsize_max+1", 2, msgsize_max + 1);
	} else {
		say("no /proc/sys/fs/mqueue: boundaries skipped");
	}
	try_attr("maxmsg 65536", 65536, 1);
	try_attr("maxmsg 65537", 65537, 1);
	try_attr("msgsize 16M+1", 1, 16 * 1024 * 1024 + 1);

	/* RLIMIT_MSGQUEUE is charged at creation */
	struct rlimit old, rl;
	getrlimit(RLIMIT_MSGQUEUE, &old);
	rl = old;
	rl.rlim_cur = 10000;
	setrlimit(RLIMIT_MSGQUEUE, &rl);
	try_attr("rlimit 10000: 8 x 1024", 8, 1024);
	try_attr("rlimit 10000: 10 x 1024", 10, 1024);
	setrlimit(RLIMIT_MSGQUEUE, &old);

	q = res("create nonblocking", mq_open(a, O_RDWR | O_CREAT | O_NONBLOCK, 0600, NULL));
	show("nonblocking", q);
	struct mq_attr set = {.mq_flags = 0}, prev;
	res("setattr flags 0", mq_setattr(q, &set, &prev));
	say("previous flags: %s", prev.mq_flags & O_NONBLOCK ? "O_NONBLOCK" : "0");
	show("after setattr 0", q);
	set.mq_flags = O_NONBLOCK;
	set.mq_maxmsg = 99; /* ignored */
	res("setattr O_NONBLOCK, maxmsg ignored", mq_setattr(q, &set, NULL));
	show("after setattr O_NONBLOCK", q);
	set.mq_flags = O_NONBLOCK | O_APPEND;
	res("setattr unknown flag", mq_setattr(q, &set, NULL));
	/* fcntl changes the same flag */
	fcntl(q, F_SETFL, fcntl(q, F_GETFL) & ~O_NONBLOCK);
	show("after fcntl", q);
	/* dup shares the open file description */
	mqd_t d = dup(q);
	set.mq_flags = O_NONBLOCK;
	mq_setattr(d, &set, NULL);
	show("original after setattr on dup", q);
	res("send on dup", mq_send(d, "dup", 3, 0));
	show("curmsgs", q);
	res("close dup", close(d));
	res("getattr after dup closed", mq_getattr(q, &prev));

	/* EBADF */
	struct mq_attr x;
	res("getattr -1", mq_getattr(-1, &x));
	int fd = open("/dev/null", O_RDONLY);
	res("getattr /dev/null", mq_getattr(fd, &x));
	res("send /dev/null", mq_send(fd, "x", 1, 0));
	res("receive /dev/null", mq_receive(fd, (char *)&x, 8192, NULL));
	res("close /dev/null as mq", mq_close(fd));
	res("setattr bad flags, bad fd", mq_setattr(-1, &(struct mq_attr){.mq_flags = 1}, NULL));
	int p[2];
	pipe(p);
	res("getattr pipe", mq_getattr(p[0], &x));
	close(p[0]);
	close(p[1]);
	mq_close(q);
	res("getattr closed", mq_getattr(q, &x));
	mq_unlink(a);
	return 0;
}
