// SPDX-License-Identifier: MIT
/* The IPC limits of /proc/sys: read by anyone, consistent with what the
 * calls see; written by root only (EACCES at open for nobody); a write out
 * of range is EINVAL at write(); a write changes what the next call does
 * (msgmni -> ENOSPC, msg_next_id -> the id, msg_max/msgsize_max -> EINVAL,
 * msg_default/msgsize_default -> a queue opened without attr, queues_max ->
 * ENOSPC without CAP_SYS_RESOURCE). The writes run in a child with a new
 * IPC namespace, so natively they change nothing outside the test; the
 * child starts from Linux's defaults, and puts back every value it sets.
 * Needs root (prints "skipped" otherwise, natively and under kipc-run). */
#include "conform.h"
#include <linux/capability.h>
#include <sched.h>
#include <sys/msg.h>
#include <sys/syscall.h>

#define K "/proc/sys/kernel/"
#define MQ "/proc/sys/fs/mqueue/"

static const char *const all[] = {
	K "msgmni", K "msgmax", K "msgmnb", K "msg_next_id", MQ "msg_max",
	MQ "msgsize_max", MQ "queues_max", MQ "msg_default", MQ "msgsize_default",
};

static long get(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -99;
	if (!f)
		return -100;
	if (fscanf(f, "%ld", &v) != 1)
		v = -101;
	fclose(f);
	return v;
}

/* fopen + fprintf + fclose, as a shell's echo > file */
static void put(const char *path, const char *text)
{
	char what[128];
	snprintf(what, sizeof what, "fopen+fclose %s <- %.*s", path, (int)strcspn(text, "\n"), text);
	FILE *f = fopen(path, "w");
	if (!f) {
		res(what, -1);
		return;
	}
	fputs(text, f);
	res(what, fclose(f) == 0 ? 0 : -1);
}

/* open + write + close */
static void put_fd(const char *path, const char *text)
{
	char what[128];
	snprintf(what, sizeof what, "write %s <- %s", path, text);
	int fd = open(path, O_WRONLY);
	if (fd < 0) {
		res(what, -1);
		return;
	}
	ssize_t n = write(fd, text, strlen(text));
	res(what, n == (ssize_t)strlen(text) ? 0 : -1);
	close(fd);
}

/* CAP_SYS_RESOURCE in or out of the effective set (it stays permitted) */
static void cap_resource(int on)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return;
	if (on)
		d[0].effective |= 1u << CAP_SYS_RESOURCE;
	else
		d[0].effective &= ~(1u << CAP_SYS_RESOURCE);
	res(on ? "CAP_SYS_RESOURCE on" : "CAP_SYS_RESOURCE off", syscall(SYS_capset, &h, d));
}

static void mq_try(const char *what, const char *name, long maxmsg, long msgsize)
{
	struct mq_attr a = {.mq_maxmsg = maxmsg, .mq_msgsize = msgsize};
	mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, maxmsg ? &a : NULL);
	res(what, q);
	if (q < 0)
		return;
	struct mq_attr g;
	mq_getattr(q, &g);
	say("  maxmsg %ld msgsize %ld", g.mq_maxmsg, g.mq_msgsize);
	mq_close(q);
	mq_unlink(name);
}

static int in_namespace(void)
{
	if (unshare(CLONE_NEWIPC) < 0) {
		say("unshare: %s", strerrorname_np(errno));
		return 1;
	}
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		say("%s: %ld", all[i], get(all[i]));

	/* System V */
	put(K "msgmni", "1\n");
	val("msgmni", get(K "msgmni"));
	int q1 = res("msgget", msgget(IPC_PRIVATE, 0600));
	res("msgget beyond msgmni", msgget(IPC_PRIVATE, 0600));
	put_fd(K "msgmni", "32000");
	int q2 = res("msgget", msgget(IPC_PRIVATE, 0600));
	put(K "msgmni", "40000\n");
	put_fd(K "msgmni", "-1");
	put_fd(K "msgmni", "12x");
	put_fd(K "msgmni", "");
	val("msgmni unchanged", get(K "msgmni"));

	put(K "msg_next_id", "12345\n");
	int q3 = msgget(IPC_PRIVATE, 0600);
	val("msgget after msg_next_id 12345", q3);
	val("msg_next_id is -1 again", get(K "msg_next_id"));
	put_fd(K "msg_next_id", "12345");
	int q4 = msgget(IPC_PRIVATE, 0600);
	val("msgget after msg_next_id 12345, index taken", q4);
	put(K "msg_next_id", "-5\n");
	put_fd(K "msg_next_id", "98304");
	int q5 = msgget(IPC_PRIVATE, 0600);
	val("msgget after msg_next_id 98304: seq 3", q5 / 32768);
	struct msqid_ds ds;
	val("IPC_STAT of 12345", msgctl(12345, IPC_STAT, &ds) == 0);

	put(K "msgmnb", "100\n");
	int q6 = msgget(IPC_PRIVATE, 0600);
	msgctl(q6, IPC_STAT, &ds);
	val("qbytes of a queue made after msgmnb 100", (long)ds.msg_qbytes);
	put(K "msgmnb", "16384\n");
	put(K "msgmax", "16\n");
	struct {
		long mtype;
		char t[64];
	} m = {1, "0123456789abcdefghij"};
	res("msgsnd 17 bytes, msgmax 16", msgsnd(q6, &m, 17, IPC_NOWAIT));
	res("msgsnd 16 bytes, msgmax 16", msgsnd(q6, &m, 16, IPC_NOWAIT));
	put(K "msgmax", "8192\n");
	res("msgsnd 20 bytes, msgmax 8192", msgsnd(q6, &m, 20, IPC_NOWAIT));
	int qs[] = {q1, q2, q3, q4, q5, q6};
	for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++)
		if (qs[i] >= 0)
			msgctl(qs[i], IPC_RMID, NULL);

	/* POSIX */
	const char *a = qname("proc-a"), *b = qname("proc-b");
	put(MQ "msg_max", "0\n");
	put(MQ "msgsize_max", "127\n");
	put(MQ "msg_default", "65537\n");
	cap_resource(0);
	put(MQ "msg_max", "5\n");
	put(MQ "msgsize_max", "128\n");
	mq_try("mq_open maxmsg 6 > msg_max 5", a, 6, 64);
	mq_try("mq_open msgsize 129 > msgsize_max 128", a, 5, 129);
	mq_try("mq_open maxmsg 5 msgsize 128", a, 5, 128);
	put(MQ "msg_default", "3\n");
	put(MQ "msgsize_default", "200\n");
	mq_try("mq_open without attr (min of default and max)", a, 0, 0);
	put(MQ "msgsize_max", "8192\n");
	mq_try("mq_open without attr", a, 0, 0);
	put(MQ "queues_max", "1\n");
	mqd_t qa = res("mq_open, queues_max 1", mq_open(a, O_CREAT | O_RDWR, 0600, NULL));
	res("mq_open beyond queues_max", mq_open(b, O_CREAT | O_RDWR, 0600, NULL));
	cap_resource(1);
	mqd_t qb = res("mq_open beyond queues_max after trying to raise it again",
		       mq_open(b, O_CREAT | O_RDWR, 0600, NULL));
	if (qa >= 0)
		mq_close(qa);
	if (qb >= 0)
		mq_close(qb);
	mq_unlink(a);
	mq_unlink(b);
	put(MQ "queues_max", "256\n");
	put(MQ "msg_max", "10\n");
	put(MQ "msg_default", "10\n");
	put(MQ "msgsize_default", "8192\n");
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		say("%s: %ld", all[i], get(all[i]));
	return 0;
}

int main(void)
{
	if (geteuid() != 0) {
		say("not root: skipped");
		return 0;
	}
	/* Reading: what the calls see. */
	struct msginfo mi;
	msgctl(0, IPC_INFO, (struct msqid_ds *)&mi);
	val("msgmax is IPC_INFO's", get(K "msgmax") == mi.msgmax);
	val("msgmnb is IPC_INFO's", get(K "msgmnb") == mi.msgmnb);
	val("msgmni is IPC_INFO's", get(K "msgmni") == mi.msgmni);
	int q = msgget(IPC_PRIVATE, 0600);
	struct msqid_ds ds;
	msgctl(q, IPC_STAT, &ds);
	val("msgmnb is a new queue's qbytes", get(K "msgmnb") == (long)ds.msg_qbytes);
	msgctl(q, IPC_RMID, NULL);
	const char *name = qname("proc");
	mqd_t mq = mq_open(name, O_CREAT | O_RDWR, 0600, NULL);
	struct mq_attr at;
	mq_getattr(mq, &at);
	long md = get(MQ "msg_default"), mx = get(MQ "msg_max");
	val("a queue without attr has min(msg_default, msg_max) messages",
	    at.mq_maxmsg == (md < mx ? md : mx));
	mq_close(mq);
	mq_unlink(name);

	/* Writing: root's files. */
	res("seteuid nobody", seteuid(65534));
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		FILE *f = fopen(all[i], "w");
		res(all[i], f ? 0 : -1);
		if (f)
			fclose(f);
		val("  readable", get(all[i]) > -99);
	}
	res("open O_RDWR msgmni as nobody", open(K "msgmni", O_RDWR));
	res("seteuid 0", seteuid(0));

	pid_t c = fork();
	if (c == 0)
		_exit(in_namespace());
	reap("namespace child", c);
	return 0;
}
