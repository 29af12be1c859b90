// SPDX-License-Identifier: MIT
/* Credentials change during a program's life: after seteuid(nobody) the
 * queues of root are checked against nobody (EACCES, EPERM), with the
 * supplementary groups of setgroups(); seteuid(0) gives root back; a child
 * that drops root for good with setresuid is nobody too. Needs root
 * (prints "skipped" otherwise, natively and under kipc-run alike). */
#include "conform.h"
#include <grp.h>
#include <sys/msg.h>

#define NOBODY 65534
#define GROUP 4242 /* a group nobody is not in */

static struct {
	long mtype;
	char text[8];
} m = {1, "x"};

static void as_nobody(size_t ngroups, const gid_t *groups)
{
	res("setgroups", setgroups(ngroups, groups));
	res("setegid nobody", setegid(NOBODY));
	res("seteuid nobody", seteuid(NOBODY));
}

static void as_root(void)
{
	res("seteuid 0", seteuid(0));
	res("setegid 0", setegid(0));
	res("setgroups none", setgroups(0, NULL));
}

int main(void)
{
	if (geteuid() != 0) {
		say("not root: skipped");
		return 0;
	}
	struct msqid_ds ds;
	gid_t grp = GROUP;
	int q = res("msgget 0600 as root", msgget(IPC_PRIVATE, 0600));

	as_nobody(0, NULL);
	res("IPC_STAT as nobody", msgctl(q, IPC_STAT, &ds));
	res("msgsnd as nobody", msgsnd(q, &m, 1, IPC_NOWAIT));
	res("IPC_SET as nobody", msgctl(q, IPC_SET, &ds));
	res("IPC_RMID as nobody", msgctl(q, IPC_RMID, NULL));
	as_root();
	res("IPC_STAT as root again", msgctl(q, IPC_STAT, &ds));

	/* group GROUP may read and write; nobody gets in only through
	 * a supplementary group */
	ds.msg_perm.gid = GROUP;
	ds.msg_perm.mode = 0060;
	res("IPC_SET gid 4242 mode 0060", msgctl(q, IPC_SET, &ds));
	as_nobody(1, &grp);
	res("msgsnd as nobody in group 4242", msgsnd(q, &m, 1, IPC_NOWAIT));
	res("IPC_STAT as nobody in group 4242", msgctl(q, IPC_STAT, &ds));
	val("qnum", (long)ds.msg_qnum);
	res("IPC_RMID as nobody in group 4242", msgctl(q, IPC_RMID, NULL));
	as_root();
	as_nobody(0, NULL);
	res("msgsnd as nobody, no groups", msgsnd(q, &m, 1, IPC_NOWAIT));
	as_root();

	/* POSIX: root's queue, mode 0600 */
	const char *name = qname("creds");
	mqd_t mq = res("mq_open 0600 as root", mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, NULL));
	as_nobody(0, NULL);
	res("mq_open O_RDWR as nobody", mq_open(name, O_RDWR));
	res("mq_open O_RDONLY as nobody", mq_open(name, O_RDONLY));
	res("mq_unlink as nobody", mq_unlink(name));
	as_root();

	/* a child that drops root for good */
	pid_t c = fork();
	if (c == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0)
			_exit(9);
		res("child: IPC_RMID as nobody", msgctl(q, IPC_RMID, NULL));
		res("child: mq_unlink as nobody", mq_unlink(name));
		res("child: seteuid 0 again", seteuid(0));
		_exit(0);
	}
	reap("child", c);

	res("mq_close", mq_close(mq));
	res("mq_unlink as root", mq_unlink(name));
	res("IPC_RMID as root", msgctl(q, IPC_RMID, NULL));
	return 0;
}
