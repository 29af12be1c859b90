// SPDX-License-Identifier: MIT
/* System V message queues: msgget keys and flags, msgsnd/msgrcv with
 * msgtyp 0/>0/<0, MSG_EXCEPT, MSG_NOERROR, MSG_COPY, IPC_NOWAIT, E2BIG,
 * ENOMSG, EIDRM, EINTR, msgctl IPC_STAT/IPC_SET/IPC_RMID/IPC_INFO/
 * MSG_INFO/MSG_STAT. */
#include "conform.h"
#include <pthread.h>
#include <sys/msg.h>
#include <sys/time.h>

struct m {
	long mtype;
	char text[64];
};

static int q;

static void snd(const char *what, long type, const char *text, int flg)
{
	struct m b = {.mtype = type};
	strcpy(b.text, text);
	res(what, msgsnd(q, &b, strlen(text), flg));
}

static void rcv(const char *what, size_t len, long typ, int flg)
{
	struct m b;
	memset(&b, 0, sizeof b);
	ssize_t n = msgrcv(q, &b, len, typ, flg);
	if (n < 0)
		res(what, -1);
	else
		say("%s: %zd bytes type %ld \"%.*s\"", what, n, b.mtype, (int)n, b.text);
}

static void on_alarm(int s)
{
	(void)s;
}

static void *rmid_later(void *arg)
{
	(void)arg;
	msleep(100);
	msgctl(q, IPC_RMID, NULL);
	return NULL;
}

int main(void)
{
	key_t key = (key_t)(0x4b500000 | (getpid() & 0xfffff));
	res("msgget missing key", msgget(key, 0600));
	q = res("msgget IPC_CREAT|IPC_EXCL", msgget(key, IPC_CREAT | IPC_EXCL | 0640));
	res("msgget IPC_CREAT|IPC_EXCL again", msgget(key, IPC_CREAT | IPC_EXCL | 0600));
	val("msgget IPC_CREAT again is the same id", msgget(key, IPC_CREAT | 0600) == q);
	val("msgget 0 is the same id", msgget(key, 0) == q);
	int p1 = res("IPC_PRIVATE", msgget(IPC_PRIVATE, 0600));
	int p2 = res("IPC_PRIVATE again", msgget(IPC_PRIVATE, 0600));
	val("private queues differ", p1 != p2);

	struct msqid_ds ds;
	res("IPC_STAT", msgctl(q, IPC_STAT, &ds));
	say("mode %o qbytes %lu qnum %lu cbytes %lu key ok %d uid ok %d stime %ld rtime %ld ctime>0 %d",
	    ds.msg_perm.mode & 0777, (unsigned long)ds.msg_qbytes, (unsigned long)ds.msg_qnum,
	    (unsigned long)ds.__msg_cbytes, ds.msg_perm.__key == key, ds.msg_perm.uid == getuid(),
	    (long)ds.msg_stime, (long)ds.msg_rtime, ds.msg_ctime > 0);

	/* msgsnd checks */
	struct m b = {.mtype = 0};
	res("msgsnd mtype 0", msgsnd(q, &b, 1, 0));
	b.mtype = -3;
	res("msgsnd mtype -3", msgsnd(q, &b, 1, 0));
	b.mtype = 1;
	res("msgsnd msqid -1", msgsnd(-1, &b, 1, 0));
	int gone = msgget(IPC_PRIVATE, 0600);
	msgctl(gone, IPC_RMID, NULL);
	res("msgsnd removed msqid", msgsnd(gone, &b, 1, 0));
	char big[8192 + 2 * sizeof(long)];
	memset(big, 0, sizeof big);
	*(long *)big = 1;
	res("msgsnd 8193 bytes", msgsnd(q, big, 8193, IPC_NOWAIT));
	res("msgsnd 8192 bytes", msgsnd(q, big, 8192, IPC_NOWAIT));
	res("msgrcv it", msgrcv(q, big, 8192, 0, IPC_NOWAIT));

	/* types */
	snd("send type 5 \"e\"", 5, "e", 0);
	snd("send type 3 \"c1\"", 3, "c1", 0);
	snd("send type 1 \"a\"", 1, "a", 0);
	snd("send type 3 \"c2\"", 3, "c2", 0);
	snd("send type 2 \"b\"", 2, "b", 0);
	snd("send type 0-length", 7, "", 0);
	msgctl(q, IPC_STAT, &ds);
	say("qnum %lu cbytes %lu", (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes);
	rcv("MSG_COPY 0", 64, 0, MSG_COPY | IPC_NOWAIT);
	rcv("MSG_COPY 2", 64, 2, MSG_COPY | IPC_NOWAIT);
	rcv("MSG_COPY 9", 64, 9, MSG_COPY | IPC_NOWAIT);
	rcv("MSG_COPY without IPC_NOWAIT", 64, 0, MSG_COPY);
	rcv("MSG_COPY with MSG_EXCEPT", 64, 0, MSG_COPY | IPC_NOWAIT | MSG_EXCEPT);
	rcv("MSG_COPY 1 into 1 byte", 1, 1, MSG_COPY | IPC_NOWAIT);
	rcv("type 3", 64, 3, IPC_NOWAIT);
	rcv("type -4 (lowest <= 4)", 64, -4, IPC_NOWAIT);
	rcv("type -4", 64, -4, IPC_NOWAIT);
	rcv("type 5 MSG_EXCEPT", 64, 5, IPC_NOWAIT | MSG_EXCEPT);
	rcv("type 4", 64, 4, IPC_NOWAIT);
	rcv("type 0 MSG_EXCEPT (any)", 64, 0, IPC_NOWAIT | MSG_EXCEPT);
	snd("send type 9 \"long text\"", 9, "long text", 0);
	rcv("into 4 bytes", 4, 0, IPC_NOWAIT);
	rcv("into 4 bytes MSG_NOERROR", 4, 0, IPC_NOWAIT | MSG_NOERROR);
	rcv("0-length", 64, 0, IPC_NOWAIT);
	rcv("empty, IPC_NOWAIT", 64, 0, IPC_NOWAIT);
	res("msgrcv removed msqid", msgrcv(gone, big, 64, 0, IPC_NOWAIT));

	/* a full queue: msg_qbytes bounds bytes and messages */
	struct msqid_ds set;
	msgctl(q, IPC_STAT, &set);
	set.msg_qbytes = 20;
	res("IPC_SET qbytes 20", msgctl(q, IPC_SET, &set));
	msgctl(q, IPC_STAT, &ds);
	val("qbytes", (long)ds.msg_qbytes);
	snd("send 16 bytes", 1, "0123456789abcdef", IPC_NOWAIT);
	snd("send 8 more, IPC_NOWAIT", 1, "01234567", IPC_NOWAIT);
	snd("send 4 more", 1, "0123", IPC_NOWAIT);
	rcv("drain", 64, 0, IPC_NOWAIT);
	rcv("drain", 64, 0, IPC_NOWAIT);
	for (int i = 0; i < 20; i++)
		msgsnd(q, &(struct m){.mtype = 1}, 0, IPC_NOWAIT);
	snd("21st empty message", 1, "", IPC_NOWAIT);
	for (int i = 0; i < 20; i++)
		msgrcv(q, big, 8, 0, IPC_NOWAIT);
	set.msg_qbytes = 16384;
	res("IPC_SET qbytes back", msgctl(q, IPC_SET, &set));
	set.msg_qbytes = 16385;
	set.msg_perm.mode = 0600;
	res("IPC_SET qbytes above msgmnb", msgctl(q, IPC_SET, &set));
	set.msg_qbytes = 16384;
	res("IPC_SET mode 0600", msgctl(q, IPC_SET, &set));
	msgctl(q, IPC_STAT, &ds);
	say("mode %o", ds.msg_perm.mode & 0777);

	/* msgctl info */
	struct msginfo mi;
	int maxidx = msgctl(0, IPC_INFO, (struct msqid_ds *)&mi);
	say("IPC_INFO: >= 0 %d msgmax %d msgmnb %d msgmni %d msgssz %d msgseg %d",
	    maxidx >= 0, mi.msgmax, mi.msgmnb, mi.msgmni, mi.msgssz, mi.msgseg);
	int r = msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);
	say("MSG_INFO: >= 0 %d pool>=3 %d", r >= 0, mi.msgpool >= 3);
	int found = 0;
	for (int i = 0; i <= maxidx; i++) {
		int id = msgctl(i, MSG_STAT, &ds);
		if (id == q)
			found = 1;
	}
	val("MSG_STAT finds the queue by index", found);
	res("MSG_STAT bad index", msgctl(maxidx + 1000, MSG_STAT, &ds));
	res("bad cmd", msgctl(q, 999, &ds));
	res("IPC_STAT removed id", msgctl(gone, IPC_STAT, &ds));

	/* EINTR: never restarted, SA_RESTART or not */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 0}, {0, 100000}};
	setitimer(ITIMER_REAL, &it, NULL);
	rcv("msgrcv interrupted (SA_RESTART)", 64, 0, 0);

	/* a blocked receiver gets a message sent later by another process */
	fflush(stdout);
	pid_t k = fork();
	if (k == 0) {
		msleep(100);
		struct m c = {.mtype = 4, .text = "kid"};
		_exit(msgsnd(q, &c, 3, 0) < 0);
	}
	rcv("blocked msgrcv type 4", 64, 4, 0);
	reap("sender", k);
	msgctl(q, IPC_STAT, &ds);
	val("lspid is the sender", ds.msg_lspid == k);
	val("lrpid is us", ds.msg_lrpid == getpid());

	/* IPC_RMID wakes a blocked receiver with EIDRM */
	pthread_t th;
	pthread_create(&th, NULL, rmid_later, NULL);
	rcv("blocked msgrcv, queue removed", 64, 0, 0);
	pthread_join(th, NULL);
	res("msgsnd after IPC_RMID", msgsnd(q, &b, 1, 0));
	res("IPC_RMID again", msgctl(q, IPC_RMID, NULL));
	res("msgget removed key", msgget(key, 0));
	res("IPC_RMID private 1", msgctl(p1, IPC_RMID, NULL));
	res("IPC_RMID private 2", msgctl(p2, IPC_RMID, NULL));
	return 0;
}
