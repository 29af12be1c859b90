// SPDX-License-Identifier: MIT
/*
 * order_test: ordering between processes (issue 15; transport.md,
 * "Ordering between processes"). A child blocks in msgrcv or msgsnd (its
 * state is S, so its request was submitted); then its parent removes the
 * queue. As on Linux the child gets EIDRM, never EINVAL (the removal run
 * before the child's earlier request), in every one of 2,000 rounds of
 * each. To give the kernel both requests at once, as a loaded machine
 * does, each round stops kipcd (SIGSTOP) before the child submits, and
 * a helper continues it once the parent, too, sleeps in its IPC_RMID.
 */
#include "kipc_test.h"

#include <kipc/mqueue.h>
#include <sched.h>
#include <sys/ioctl.h>

#define ROUNDS 2000

/* Wait until pid sleeps (state S in /proc/pid/stat). */
static int wait_sleeping(pid_t pid)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (__ksft_now_ms() < deadline) {
		char st = kt_proc_state(pid);
		if (st == 'S')
			return 0;
		if (st == 0)
			return -1;
		sched_yield();
	}
	return -1;
}

/*
 * Wait until the child has read what we wrote to the pipe. Sleeping alone
 * is not enough: on a loaded machine the child may still sleep in the
 * read() of the round before, and its request is not submitted yet.
 * Once the pipe is empty its next sleep is in its IPC call (kipcd is
 * stopped, so the call cannot complete).
 */
static int wait_taken(int fd)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	int n = 1;
	while (__ksft_now_ms() < deadline) {
		if (ioctl(fd, FIONREAD, &n) < 0) {
			ksft_print("# FIONREAD: %s\n", strerror(errno));
			return -1;
		}
		if (n == 0)
			return 0;
		sched_yield();
	}
	ksft_print("# the child did not read the pipe (%d bytes left)\n", n);
	return -1;
}

static int child(int in, int out, bool send)
{
	int ready = kipc_attach() < 0 ? errno : 0;
	if (write(out, &ready, sizeof ready) != sizeof ready || ready)
		return 1;
	int id;
	while (read(in, &id, sizeof id) == sizeof id) {
		char b[8] = "x";
		int64_t type = 1;
		int r = send ? kipc_msgsnd(id, 1, b, 1, 0)
			     : (int)kipc_msgrcv(id, &type, b, sizeof b, 0, 0);
		int err = r < 0 ? errno : 0;
		if (write(out, &err, sizeof err) != sizeof err)
			return 2;
	}
	return 0;
}

/* The helper: for each token, wait until pid sleeps, continue kipcd. */
static int helper(int in, pid_t pid, pid_t kipcd)
{
	char t;
	while (read(in, &t, 1) == 1) {
		if (wait_sleeping(pid) < 0)
			return 1;
		kill(kipcd, SIGCONT);
	}
	return 0;
}

static void race(struct __test_metadata *_metadata, bool send)
{
	int down[2], up[2], cont[2];
	ASSERT_EQ(0, pipe(down));
	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(cont));
	pid_t kipcd = kt_main_kernel.pid, self = getpid();
	pid_t h = fork();
	ASSERT_LE(0, h);
	if (h == 0) {
		close(cont[1]);
		close(down[0]);
		close(down[1]);
		close(up[0]);
		close(up[1]);
		_exit(helper(cont[0], self, kipcd));
	}
	close(cont[0]);
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		close(down[1]);
		close(up[0]);
		close(cont[1]);
		_exit(child(down[0], up[1], send));
	}
	close(down[0]);
	close(up[1]);
	ASSERT_EQ(0, kipc_attach());
	/* The child attaches before the first round stops kipcd. */
	int ready = -1;
	ASSERT_EQ((ssize_t)sizeof ready, read(up[0], &ready, sizeof ready));
	ASSERT_EQ(0, ready);
	int eidrm = 0, other = 0, last = 0;
	for (int i = 0; i < ROUNDS; i++) {
		int id = kipc_msgget(0 /* IPC_PRIVATE */, KIPC_IPC_CREAT | 0600);
		ASSERT_LE(0, id);
		if (send) {
			/* Full: a queue of one byte holding one message. */
			struct kipc_msqid_ds ds;
			ASSERT_EQ(0, kipc_msgctl(id, KIPC_IPC_STAT, &ds, sizeof ds));
			ds.qbytes = 1;
			ASSERT_EQ(0, kipc_msgctl(id, KIPC_IPC_SET, &ds, sizeof ds));
			ASSERT_EQ(0, kipc_msgsnd(id, 1, "f", 1, 0));
		}
		ASSERT_EQ(0, kill(kipcd, SIGSTOP));
		ASSERT_EQ((ssize_t)sizeof id, write(down[1], &id, sizeof id));
		/* Asleep, but not still in read(): in its call. */
		int asleep = wait_taken(down[1]) == 0 && wait_sleeping(c) == 0;
		if (!asleep)
			kill(kipcd, SIGCONT); /* not left stopped by a failure */
		ASSERT_TRUE(asleep);
		ASSERT_EQ(1, write(cont[1], "c", 1));
		int rm = kipc_msgctl(id, KIPC_IPC_RMID, NULL, 0);
		kill(kipcd, SIGCONT); /* in case the helper failed */
		ASSERT_EQ(0, rm);
		int err = 0;
		struct pollfd p = {.fd = up[0], .events = POLLIN};
		ASSERT_EQ(1, poll(&p, 1, KT_BOUND_MS));
		ASSERT_EQ((ssize_t)sizeof err, read(up[0], &err, sizeof err));
		if (err == EIDRM)
			eidrm++;
		else {
			other++;
			last = err;
		}
	}
	close(down[1]);
	close(cont[1]);
	EXPECT_EQ(0, kt_wait(c));
	EXPECT_EQ(0, kt_wait(h));
	close(up[0]);
	ksft_print("# %s: %d rounds: %d EIDRM, %d other (last: %s)\n",
		   send ? "msgsnd" : "msgrcv", ROUNDS, eidrm, other,
		   other ? strerror(last) : "-");
	EXPECT_EQ(ROUNDS, eidrm);
}

TEST(msgrcv_blocked_then_rmid_gives_eidrm)
{
	race(_metadata, false);
}

TEST(msgsnd_blocked_then_rmid_gives_eidrm)
{
	race(_metadata, true);
}

KIPC_TEST_MAIN
