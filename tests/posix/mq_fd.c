// SPDX-License-Identifier: MIT
/*
 * mq_fd: a queue descriptor is a descriptor. O_NONBLOCK is the open file
 * description's, whoever changes it (mq_setattr, fcntl(F_SETFL),
 * ioctl(FIONBIO), syscall(SYS_fcntl); this process or another sharing
 * it), and a send or receive sees the change at once; dup, dup2, fork
 * and exec share or keep it; a number freed (close, dup2 over it,
 * close_range, syscall(SYS_close), mq_close) and reused for another file
 * is that file's, a queue or not.
 */
#include "conform.h"
#include <sys/ioctl.h>
#include <sys/syscall.h>

static char buf[64];

/* A receive on an empty queue: EAGAIN if non-blocking, else it times out. */
static void empty_recv(const char *what, mqd_t q)
{
	struct timespec ts = abs_ms(20);
	res(what, mq_timedreceive(q, buf, sizeof buf, NULL, &ts));
}

/* A send on a full queue (maxmsg 1, one queued): EAGAIN or ETIMEDOUT. */
static void full_send(const char *what, mqd_t q)
{
	struct timespec ts = abs_ms(20);
	res(what, mq_timedsend(q, "x", 1, 0, &ts));
}

static void nonblock(mqd_t q, int on)
{
	int fl = fcntl(q, F_GETFL);
	fcntl(q, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

static void tell(int fd)
{
	char c = 1;
	if (write(fd, &c, 1) != 1)
		_exit(3);
}

static void hear(int fd)
{
	char c;
	if (read(fd, &c, 1) != 1)
		_exit(4);
}

static mqd_t open_q(const char *n, int oflag)
{
	struct mq_attr a = {.mq_maxmsg = 1, .mq_msgsize = sizeof buf};
	return mq_open(n, oflag | O_CREAT, 0600, &a);
}

static long curmsgs(mqd_t q)
{
	struct mq_attr a;
	return mq_getattr(q, &a) < 0 ? -1 : a.mq_curmsgs;
}

/* The re-executed image: fd (kept over exec) is still the queue, with
 * the open file description's O_NONBLOCK. */
static int exec_child(int fd)
{
	say("exec: image");
	empty_recv("exec: recv on empty, non-blocking", fd);
	res("exec: send", mq_send(fd, "e", 1, 0));
	res("exec: recv", mq_receive(fd, buf, sizeof buf, NULL));
	nonblock(fd, 0);
	empty_recv("exec: recv on empty, blocking again", fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "exec") == 0)
		return exec_child(atoi(argv[2]));

	const char *n = qname("fd"), *n2 = qname("fd2");
	mqd_t q = res("open", open_q(n, O_RDWR));
	res("send", mq_send(q, "a", 1, 0));
	res("recv", mq_receive(q, buf, sizeof buf, NULL)); /* used: the library knows it */
	empty_recv("recv on empty, blocking", q);

	/* Every way of setting O_NONBLOCK, seen by the next call. */
	struct mq_attr nb = {.mq_flags = O_NONBLOCK}, bl = {0};
	mq_setattr(q, &nb, NULL);
	empty_recv("mq_setattr O_NONBLOCK: recv", q);
	mq_setattr(q, &bl, NULL);
	empty_recv("mq_setattr 0: recv", q);
	nonblock(q, 1);
	empty_recv("fcntl O_NONBLOCK: recv", q);
	nonblock(q, 0);
	empty_recv("fcntl clear: recv", q);
	int on = 1, off = 0;
	res("ioctl FIONBIO 1", ioctl(q, FIONBIO, &on));
	empty_recv("ioctl FIONBIO 1: recv", q);
	res("ioctl FIONBIO 0", ioctl(q, FIONBIO, &off));
	empty_recv("ioctl FIONBIO 0: recv", q);
	res("syscall fcntl O_NONBLOCK",
	    syscall(SYS_fcntl, q, F_SETFL, fcntl(q, F_GETFL) | O_NONBLOCK));
	empty_recv("syscall fcntl O_NONBLOCK: recv", q);
	nonblock(q, 0);

	/* A dup shares the open file description. */
	int d = res("dup", dup(q));
	empty_recv("the original, before the dup's change", q);
	nonblock(d, 1);
	empty_recv("O_NONBLOCK on the dup: recv on the original", q);
	res("send", mq_send(q, "b", 1, 0));
	full_send("O_NONBLOCK on the dup: send on full", q);
	nonblock(q, 0);
	full_send("cleared on the original: send on full via the dup", d);
	res("recv via the dup", mq_receive(d, buf, sizeof buf, NULL));
	res("close the dup", close(d));
	empty_recv("the original after the dup's close", q);

	/* Another process sharing it: its change is ours, ours is its. */
	int p2c[2], c2p[2];
	if (pipe(p2c) < 0 || pipe(c2p) < 0)
		return 1;
	pid_t k = fork();
	if (k == 0) {
		empty_recv("child: recv on empty, blocking", q);
		tell(c2p[1]);
		hear(p2c[0]); /* the parent set O_NONBLOCK with mq_setattr */
		empty_recv("child: after the parent's mq_setattr: recv", q);
		nonblock(q, 0);
		tell(c2p[1]);
		hear(p2c[0]);
		close(q);
		tell(c2p[1]);
		_exit(0);
	}
	hear(c2p[0]);
	mq_setattr(q, &nb, NULL);
	tell(p2c[1]);
	hear(c2p[0]); /* the child cleared it with fcntl */
	empty_recv("parent: after the child's fcntl: recv", q);
	tell(p2c[1]);
	hear(c2p[0]); /* the child closed its copy */
	res("parent: send after the child's close", mq_send(q, "c", 1, 0));
	res("parent: recv", mq_receive(q, buf, sizeof buf, NULL));
	reap("child", k);

	/* exec keeps a descriptor without close-on-exec, and its flags. */
	nonblock(q, 1);
	fcntl(q, F_SETFD, 0);
	k = fork();
	if (k == 0) {
		char fd[16];
		snprintf(fd, sizeof fd, "%d", q);
		execl("/proc/self/exe", argv[0], "exec", fd, (char *)NULL);
		_exit(5);
	}
	reap("exec child", k);
	empty_recv("after the exec'd image cleared O_NONBLOCK: recv", q);

	/* A number freed and reused is the new file's. */
	int num = q;
	res("close", close(q));
	int pp[2];
	res("pipe", pipe(pp));
	val("pipe took the number", pp[0] == num || pp[1] == num);
	res("send on the reused number", mq_send(num, "d", 1, 0));
	res("recv on the reused number", mq_receive(num, buf, sizeof buf, NULL));
	close(pp[0]);
	close(pp[1]);

	q = res("open again", open_q(n, O_RDWR));
	res("send", mq_send(q, "e", 1, 0));
	num = q;
	res("dup2 a pipe over it", dup2(pp[0] = open("/dev/null", O_RDONLY), num));
	res("send after dup2", mq_send(num, "f", 1, 0));
	close(pp[0]);
	close(num);

	q = res("open again", open_q(n, O_RDWR));
	res("recv", mq_receive(q, buf, sizeof buf, NULL));
	num = q;
	res("syscall close", syscall(SYS_close, q));
	pp[0] = open("/dev/null", O_RDONLY);
	val("/dev/null took the number", pp[0] == num);
	res("send after syscall close", mq_send(num, "g", 1, 0));
	close(pp[0]);

	q = res("open again", open_q(n, O_RDWR));
	num = q;
	res("close_range", close_range(q, q, 0));
	pp[0] = open("/dev/null", O_RDONLY);
	val("/dev/null took the number", pp[0] == num);
	res("send after close_range", mq_send(num, "h", 1, 0));
	close(pp[0]);

	/* Reused by another queue: the call goes to that queue. */
	q = res("open again", open_q(n, O_RDWR));
	res("send", mq_send(q, "i", 1, 0));
	num = q;
	res("mq_close", mq_close(q));
	mqd_t q2 = res("open another", open_q(n2, O_RDWR | O_NONBLOCK));
	val("it took the number", q2 == num);
	empty_recv("recv on it: its own, empty, non-blocking", q2);
	res("send to it", mq_send(q2, "j", 1, 0));
	val("its curmsgs", curmsgs(q2));
	q = res("open the first", open_q(n, O_RDWR));
	val("the first's curmsgs", curmsgs(q));
	mq_close(q);
	mq_close(q2);
	mq_unlink(n);
	mq_unlink(n2);
	return 0;
}
