// SPDX-License-Identifier: MIT
/* mq_open(3)/mq_unlink(3) names, O_CREAT, O_EXCL, access modes, modes. */
#include "conform.h"

int main(void)
{
	char name[300];
	mqd_t q;

	res("open without slash", mq_open("kipct-noslash", O_RDWR | O_CREAT, 0600, NULL));
	res("open \"/\"", mq_open("/", O_RDWR | O_CREAT, 0600, NULL));
	res("open \"/a/b\"", mq_open("/kipct/b", O_RDWR | O_CREAT, 0600, NULL));
	res("open \"/.\"", mq_open("/.", O_RDWR | O_CREAT, 0600, NULL));
	res("open \"/..\"", mq_open("/..", O_RDWR | O_CREAT, 0600, NULL));
	res("unlink without slash", mq_unlink("kipct-noslash"));
	res("unlink \"/\"", mq_unlink("/"));

	/* NAME_MAX after the slash is fine, one more is not */
	snprintf(name, sizeof name, "%s-", qname("long"));
	memset(name + strlen(name), 'x', 256 - strlen(name));
	name[256] = '\0'; /* 255 characters after the slash */
	q = res("open 255-char name", mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, NULL));
	if (q >= 0) {
		mq_close(q);
		res("unlink 255-char name", mq_unlink(name));
	}
	name[256] = 'x';
	name[257] = '\0';
	res("open 256-char name", mq_open(name, O_RDWR | O_CREAT, 0600, NULL));
	res("unlink 256-char name", mq_unlink(name));

	const char *a = qname("a");
	res("open missing", mq_open(a, O_RDWR));
	res("unlink missing", mq_unlink(a));
	q = res("create", mq_open(a, O_RDWR | O_CREAT | O_EXCL, 0640, NULL));
	res("create again O_EXCL", mq_open(a, O_RDWR | O_CREAT | O_EXCL, 0640, NULL));
	mqd_t q2 = res("create again without O_EXCL", mq_open(a, O_RDWR | O_CREAT, 0600, NULL));
	val("distinct descriptors", q2 != q);
	mqd_t q3 = res("open O_RDONLY", mq_open(a, O_RDONLY));
	mqd_t q4 = res("open O_WRONLY", mq_open(a, O_WRONLY));
	res("open O_WRONLY|O_RDWR", mq_open(a, O_WRONLY | O_RDWR));
	res("open O_EXCL alone", mq_open(a, O_RDWR | O_EXCL));
	/* an invalid attr does not matter when the queue exists */
	struct mq_attr bad = {.mq_maxmsg = -1, .mq_msgsize = -1};
	mqd_t q5 = res("open existing, bad attr", mq_open(a, O_RDWR | O_CREAT, 0600, &bad));

	/* access modes */
	char buf[8192];
	res("send on O_RDONLY", mq_send(q3, "x", 1, 0));
	res("receive on O_WRONLY", mq_receive(q4, buf, sizeof buf, NULL));
	res("send on O_WRONLY", mq_send(q4, "x", 1, 0));
	res("receive on O_RDONLY", mq_receive(q3, buf, sizeof buf, NULL));

	/* close-on-exec, as Linux's mq_open */
	val("FD_CLOEXEC", (fcntl(q, F_GETFD) & FD_CLOEXEC) != 0);

	/* the mode, umask applied */
	mode_t old = umask(022);
	const char *b = qname("b");
	mqd_t qb = res("create with 0666 under umask 022", mq_open(b, O_RDWR | O_CREAT, 0666, NULL));
	umask(old);
	/* the creator may use it whatever the mode */
	const char *c = qname("c");
	mqd_t qc = res("create with mode 0", mq_open(c, O_RDWR | O_CREAT, 0, NULL));
	res("send on mode-0 queue", mq_send(qc, "y", 1, 0));
	res("receive on mode-0 queue", mq_receive(qc, buf, sizeof buf, NULL));

	res("unlink", mq_unlink(a));
	res("unlink twice", mq_unlink(a));
	res("open after unlink", mq_open(a, O_RDWR));
	res("still usable: send", mq_send(q, "z", 1, 0));
	res("still usable: receive", mq_receive(q2, buf, sizeof buf, NULL));
	mqd_t qn = res("recreate", mq_open(a, O_RDWR | O_CREAT | O_EXCL, 0600, NULL));
	struct mq_attr at;
	mq_getattr(qn, &at);
	val("recreated is empty", at.mq_curmsgs);
	res("send old", mq_send(q, "old", 3, 0));
	mq_getattr(qn, &at);
	val("new queue unaffected", at.mq_curmsgs);

	res("close", mq_close(q));
	res("close twice", mq_close(q));
	mq_close(q2);
	mq_close(q3);
	mq_close(q4);
	mq_close(q5);
	mq_close(qb);
	mq_close(qc);
	mq_close(qn);
	mq_unlink(a);
	mq_unlink(b);
	mq_unlink(c);
	return 0;
}
