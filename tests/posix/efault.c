// SPDX-License-Identifier: MIT
/* Bad pointers: every call that copies from or into user memory fails
 * EFAULT (never crashes), and queues or consumes what Linux does:
 * msgsnd/mq_send with a bad buffer queue nothing; msgrcv/mq_receive into
 * a bad buffer consume the message (ipc/msg.c do_msg_fill(),
 * ipc/mqueue.c store_msg() run after the message left the queue). */
#include "conform.h"
#include <sys/mman.h>
#include <sys/msg.h>

static char *page;   /* page[0..4095] readable and writable, page[4096..] PROT_NONE */
static char *ro;     /* a read-only page */
#define BAD ((void *)(page + 4096))
/* NULL the compiler cannot see (glibc declares these arguments nonnull) */
static void *volatile nul;
#define NUL ((void *)nul)

static long qnum(int q)
{
	struct msqid_ds ds;
	return msgctl(q, IPC_STAT, &ds) < 0 ? -1 : (long)ds.msg_qnum;
}

static long curmsgs(mqd_t q)
{
	struct mq_attr a;
	return mq_getattr(q, &a) < 0 ? -1 : a.mq_curmsgs;
}

static void sysv(void)
{
	int q = res("msgget", msgget(IPC_PRIVATE, 0600));
	struct {
		long mtype;
		char text[16];
	} m = {.mtype = 1, .text = "hello"};

	res("msgsnd NULL", msgsnd(q, NULL, 5, 0));
	res("msgsnd NULL size 0", msgsnd(q, NULL, 0, 0));
	res("msgsnd bad", msgsnd(q, BAD, 5, 0));
	/* mtype readable, the text beyond the end of the page is not */
	long *edge = (long *)(page + 4096 - sizeof(long));
	*edge = 1;
	res("msgsnd text past the page", msgsnd(q, edge, 5, 0));
	res("msgsnd text past the page size 0", msgsnd(q, edge, 0, IPC_NOWAIT));
	val("qnum (one empty message)", qnum(q));
	res("msgrcv the empty message", msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT));

	res("msgrcv NULL, empty queue", msgrcv(q, NULL, 16, 0, IPC_NOWAIT));
	res("msgsnd", msgsnd(q, &m, 5, 0));
	res("msgrcv NULL", msgrcv(q, NULL, 16, 0, IPC_NOWAIT));
	val("qnum after msgrcv NULL (consumed)", qnum(q));
	res("msgsnd", msgsnd(q, &m, 5, 0));
	res("msgrcv read-only buffer", msgrcv(q, ro, 16, 0, IPC_NOWAIT));
	val("qnum after msgrcv read-only (consumed)", qnum(q));
	res("msgsnd", msgsnd(q, &m, 5, 0));
	res("msgrcv text past the page", msgrcv(q, edge, 16, 0, IPC_NOWAIT));
	val("qnum after (consumed)", qnum(q));
	res("msgsnd", msgsnd(q, &m, 5, 0));
	res("msgrcv MSG_COPY NULL", msgrcv(q, NULL, 16, 0, IPC_NOWAIT | MSG_COPY));
	val("qnum after MSG_COPY (kept)", qnum(q));

	res("msgctl IPC_STAT NULL", msgctl(q, IPC_STAT, NULL));
	res("msgctl IPC_STAT bad", msgctl(q, IPC_STAT, BAD));
	res("msgctl IPC_STAT read-only", msgctl(q, IPC_STAT, (struct msqid_ds *)ro));
	res("msgctl IPC_SET NULL", msgctl(q, IPC_SET, NULL));
	res("msgctl IPC_SET bad", msgctl(q, IPC_SET, BAD));
	res("msgctl IPC_INFO NULL", msgctl(q, IPC_INFO, NULL));
	res("msgctl MSG_INFO bad", msgctl(q, MSG_INFO, BAD));
	res("msgctl IPC_STAT NULL of a removed id", msgctl(-1, IPC_STAT, NULL));
	res("msgctl IPC_RMID NULL", msgctl(q, IPC_RMID, NULL));
}

static void posix(void)
{
	const char *name = qname("efault");
	struct mq_attr at = {.mq_maxmsg = 4, .mq_msgsize = 16};
	res("mq_open bad attr", mq_open(name, O_CREAT | O_RDWR, 0600, BAD));
	mqd_t q = res("mq_open", mq_open(name, O_CREAT | O_RDWR | O_NONBLOCK, 0600, &at));
	char buf[16] = "hello";
	unsigned prio;

	res("mq_send NULL", mq_send(q, NUL, 5, 0));
	res("mq_send bad", mq_send(q, BAD, 5, 0));
	res("mq_send past the page", mq_send(q, page + 4096 - 2, 5, 0));
	val("curmsgs (none queued)", curmsgs(q));
	res("mq_send NULL size 0", mq_send(q, NUL, 0, 0));
	res("mq_receive the empty message", mq_receive(q, buf, sizeof buf, NULL));
	res("mq_timedsend bad timeout", mq_timedsend(q, buf, 5, 0, BAD));
	val("curmsgs (none queued)", curmsgs(q));

	res("mq_receive NULL, empty queue", mq_receive(q, NUL, 16, NULL));
	res("mq_send", mq_send(q, buf, 5, 0));
	res("mq_receive NULL", mq_receive(q, NUL, 16, NULL));
	val("curmsgs after mq_receive NULL", curmsgs(q));
	res("mq_send", mq_send(q, buf, 5, 0));
	res("mq_receive read-only", mq_receive(q, ro, 16, NULL));
	val("curmsgs after mq_receive read-only", curmsgs(q));
	res("mq_send", mq_send(q, buf, 5, 0));
	res("mq_receive bad prio", mq_receive(q, buf, 16, BAD));
	val("curmsgs after bad prio", curmsgs(q));
	res("mq_send", mq_send(q, buf, 5, 0));
	res("mq_timedreceive bad timeout", mq_timedreceive(q, buf, 16, &prio, BAD));
	val("curmsgs after bad timeout (kept)", curmsgs(q));

	res("mq_getattr NULL", mq_getattr(q, NUL));
	res("mq_getattr bad", mq_getattr(q, BAD));
	res("mq_getattr read-only", mq_getattr(q, (struct mq_attr *)ro));
	struct mq_attr old, nb = {.mq_flags = 0};
	res("mq_setattr bad new", mq_setattr(q, BAD, &old));
	res("mq_setattr NULL new", mq_setattr(q, NUL, &old));
	val("old flags nonblock", !!(old.mq_flags & O_NONBLOCK));
	res("mq_setattr bad old", mq_setattr(q, &nb, BAD));
	res("mq_getattr", mq_getattr(q, &old));
	val("flags nonblock after (the new flags applied)", !!(old.mq_flags & O_NONBLOCK));
	res("mq_setattr NULL NULL", mq_setattr(q, NUL, NULL));
	res("mq_close", mq_close(q));
	res("mq_unlink", mq_unlink(name));
}

int main(void)
{
	page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED || ro == MAP_FAILED || mprotect(page + 4096, 4096, PROT_NONE) < 0)
		return 1;
	sysv();
	posix();
	return 0;
}
