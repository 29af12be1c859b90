// SPDX-License-Identifier: MIT
/* System V and POSIX message queue system calls made with syscall(2),
 * not libc's wrappers, reach the same queues as the wrappers: a queue
 * made one way is used the other way. The raw mq_open and mq_unlink take
 * the name without its '/'; errors come back as -1 and errno. */
#include "conform.h"
#include <linux/netlink.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/syscall.h>

struct m {
	long mtype;
	char text[32];
};

/* The system call's SIGEV_THREAD: a 32-byte cookie for a netlink socket,
 * which gets it back with its last byte 1 (fired) or 2 (removed). */
static void cookie_back(const char *what, int nl, const unsigned char *cookie)
{
	unsigned char got[32];
	memset(got, 0, sizeof got);
	long n = recv(nl, got, sizeof got, MSG_WAITALL);
	val(what, n);
	val("  same cookie", memcmp(got, cookie, 31) == 0);
	val("  last byte", got[31]);
}

static void netlink_thread(int mq, mqd_t l)
{
	int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	int ux = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int pfd[2];
	if (nl < 0 || ux < 0 || pipe(pfd) < 0)
		return;
	unsigned char cookie[32];
	for (int i = 0; i < 32; i++)
		cookie[i] = (unsigned char)(0x40 + i);
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD;
	sev.sigev_value.sival_ptr = (void *)1;
	sev.sigev_signo = nl;
	res("raw SIGEV_THREAD bad cookie", syscall(SYS_mq_notify, mq, &sev));
	res("raw SIGEV_THREAD bad cookie, bad fd", syscall(SYS_mq_notify, 999, &sev));
	sev.sigev_value.sival_ptr = cookie;
	sev.sigev_signo = -1;
	res("raw SIGEV_THREAD socket -1", syscall(SYS_mq_notify, mq, &sev));
	sev.sigev_signo = pfd[0];
	res("raw SIGEV_THREAD on a pipe", syscall(SYS_mq_notify, mq, &sev));
	sev.sigev_signo = ux;
	res("raw SIGEV_THREAD on a unix socket", syscall(SYS_mq_notify, mq, &sev));
	sev.sigev_signo = nl;
	res("raw SIGEV_THREAD bad fd", syscall(SYS_mq_notify, 999, &sev));
	res("raw SIGEV_THREAD", syscall(SYS_mq_notify, mq, &sev));
	res("raw SIGEV_THREAD again", syscall(SYS_mq_notify, mq, &sev));
	res("libc mq_send", mq_send(l, "n", 1, 0));
	cookie_back("  cookie on send", nl, cookie);
	char buf[32];
	res("raw mq_timedreceive", syscall(SYS_mq_timedreceive, mq, buf, sizeof buf, NULL, NULL));
	res("raw SIGEV_THREAD, to be removed", syscall(SYS_mq_notify, mq, &sev));
	res("raw mq_notify remove", syscall(SYS_mq_notify, mq, NULL));
	cookie_back("  cookie on removal", nl, cookie);
	close(nl);
	close(ux);
	close(pfd[0]);
	close(pfd[1]);
}

int main(void)
{
	if (getenv("KIPC_TEST_LEAVE")) { /* run.sh: which kernel has it? */
		dprintf(3, "%ld\n", syscall(SYS_msgget, IPC_PRIVATE, IPC_CREAT | 0600));
		return 0;
	}
	struct m b = {.mtype = 3, .text = "raw"}, r;
	struct msqid_ds ds;

	int q = res("raw msgget", syscall(SYS_msgget, IPC_PRIVATE, IPC_CREAT | 0600));
	res("raw msgsnd", syscall(SYS_msgsnd, q, &b, 3, 0));
	res("libc IPC_STAT", msgctl(q, IPC_STAT, &ds));
	val("qnum", (long)ds.msg_qnum);
	memset(&r, 0, sizeof r);
	val("libc msgrcv", msgrcv(q, &r, sizeof r.text, 0, IPC_NOWAIT));
	say("  type %ld \"%s\"", r.mtype, r.text);
	res("libc msgsnd", msgsnd(q, &b, 3, 0));
	memset(&r, 0, sizeof r);
	val("raw msgrcv", syscall(SYS_msgrcv, q, &r, sizeof r.text, 3, IPC_NOWAIT));
	say("  type %ld \"%s\"", r.mtype, r.text);
	res("raw msgrcv empty", syscall(SYS_msgrcv, q, &r, sizeof r.text, 0, IPC_NOWAIT));
	res("raw msgsnd NULL", syscall(SYS_msgsnd, q, NULL, 3, 0));
	res("raw msgsnd bad id", syscall(SYS_msgsnd, -1, &b, 3, 0));
	res("raw msgctl IPC_STAT", syscall(SYS_msgctl, q, IPC_STAT, &ds));
	val("  qbytes > 0", ds.msg_qbytes > 0);
	res("raw msgctl IPC_RMID", syscall(SYS_msgctl, q, IPC_RMID, NULL));
	res("libc msgsnd after raw IPC_RMID", msgsnd(q, &b, 3, 0));

	const char *name = qname("raw");
	struct mq_attr at = {.mq_maxmsg = 4, .mq_msgsize = 32}, got;
	int mq = res("raw mq_open", syscall(SYS_mq_open, name + 1, O_CREAT | O_EXCL | O_RDWR, 0600, &at));
	res("raw mq_open again O_EXCL", syscall(SYS_mq_open, name + 1, O_CREAT | O_EXCL | O_RDWR, 0600, &at));
	res("raw mq_open a/b", syscall(SYS_mq_open, "a/b", O_RDWR, 0, NULL));
	mqd_t l = res("libc mq_open", mq_open(name, O_RDWR));
	res("raw mq_timedsend", syscall(SYS_mq_timedsend, mq, "hello", 5, 7, NULL));
	res("libc mq_getattr", mq_getattr(l, &got));
	val("  curmsgs", got.mq_curmsgs);
	char buf[32];
	unsigned prio = 0;
	val("libc mq_receive", mq_receive(l, buf, sizeof buf, &prio));
	val("  prio", prio);
	res("libc mq_send", mq_send(l, "world", 5, 2));
	memset(buf, 0, sizeof buf);
	val("raw mq_timedreceive", syscall(SYS_mq_timedreceive, mq, buf, sizeof buf, &prio, NULL));
	say("  \"%s\" prio %u", buf, prio);
	struct mq_attr nb = {.mq_flags = O_NONBLOCK};
	res("raw mq_getsetattr", syscall(SYS_mq_getsetattr, mq, &nb, &got));
	val("  old flags nonblock", !!(got.mq_flags & O_NONBLOCK));
	res("raw mq_timedreceive empty, nonblocking",
	    syscall(SYS_mq_timedreceive, mq, buf, sizeof buf, NULL, NULL));
	res("raw mq_getsetattr get", syscall(SYS_mq_getsetattr, mq, NULL, &got));
	val("  flags nonblock", !!(got.mq_flags & O_NONBLOCK));
	val("  maxmsg", got.mq_maxmsg);
	struct sigevent sev = {.sigev_notify = SIGEV_NONE};
	res("raw mq_notify SIGEV_NONE", syscall(SYS_mq_notify, mq, &sev));
	res("raw mq_notify remove", syscall(SYS_mq_notify, mq, NULL));
	res("raw mq_timedsend bad fd", syscall(SYS_mq_timedsend, 999, "x", 1, 0, NULL));
	netlink_thread(mq, l);
	res("libc mq_close", mq_close(l));
	res("close", close(mq));
	res("raw mq_unlink", syscall(SYS_mq_unlink, name + 1));
	res("libc mq_unlink after raw", mq_unlink(name));
	res("raw mq_unlink missing", syscall(SYS_mq_unlink, name + 1));
	return 0;
}
