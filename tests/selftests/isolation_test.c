// SPDX-License-Identifier: MIT
/*
 * isolation_test - users cannot reach each other's things. Children run
 * under uids made up for the test (setresgid/setresuid to 60001+, no
 * passwd entry needed) against the test's kernel, which runs as root; the
 * kernel takes every credential from the connection (SO_PEERCRED).
 *  - mailbox mode bits are enforced for send (write) and receive (read);
 *  - nobody receives from another task's queue: receive only ever reads
 *    the caller's own queue, whatever pid it names;
 *  - a process cannot claim another pid: its task is the pid the kernel
 *    saw on the socket;
 *  - uid 0 bypasses mode bits (CONFIG_ROOT_BYPASS), so every check runs
 *    from an unprivileged uid;
 *  - the per-user byte quota: a flood into an unbounded mailbox ends in
 *    ENOSPC, and another user can still send.
 * Needs root (to switch uids); skips otherwise.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kipc_test.h"

struct mbx {
	int64_t id;
	int expect_send, expect_recv; /* 0 or the errno */
};

static int try_mbox(void *p)
{
	struct mbx *m = p;
	char b[8];
	int r = kipc_mbox_send(m->id, "x", 1, 0, KIPC_F_NONBLOCK);
	if ((r == 0 ? 0 : errno) != m->expect_send)
		return 10;
	ssize_t n = kipc_mbox_receive(m->id, b, sizeof b, NULL, KIPC_F_NONBLOCK);
	int e = n >= 0 ? 0 : errno;
	/* with the right to receive but nothing there: EAGAIN is a pass */
	if (e != m->expect_recv && !(m->expect_recv == 0 && e == EAGAIN))
		return 20;
	return 0;
}

/*
 * Mode bits of a kernel-owned mailbox of uid A, checked from uid B (on a
 * kernel-owned mailbox, read permission lets anyone receive).
 */
TEST(mode_bits_enforced_for_send_and_receive)
{
	NEED_ROOT();
	struct kipc_mbox_attr a = kt_attr(KIPC_UNBOUNDED);
	a.mode = 0600;
	a.flags = KIPC_MBOX_KERNEL_OWNED;
	int64_t id = kipc_mbox_open(NULL, KIPC_O_CREAT, &a);
	ASSERT_LT(0, id);
	struct kipc_mbox_attr set = {0};
	set.uid = UID_A;
	set.gid = UID_A;
	ASSERT_EQ(0, kipc_mbox_setattr(id, KIPC_SET_UID | KIPC_SET_GID, &set));

	struct mbx m = {id, EACCES, EACCES};
	EXPECT_EQ(0, kt_as_user(UID_B, try_mbox, &m));
	set.mode = 0602; /* others may write: send, not receive */
	ASSERT_EQ(0, kipc_mbox_setattr(id, KIPC_SET_MODE, &set));
	m = (struct mbx){id, 0, EACCES};
	EXPECT_EQ(0, kt_as_user(UID_B, try_mbox, &m));
	set.mode = 0604; /* others may read: receive, not send */
	ASSERT_EQ(0, kipc_mbox_setattr(id, KIPC_SET_MODE, &set));
	m = (struct mbx){id, EACCES, 0};
	EXPECT_EQ(0, kt_as_user(UID_B, try_mbox, &m));
	kipc_mbox_destroy(id);

	/* A process-owned mailbox: receiving needs the right, whatever the mode. */
	a.mode = 0666;
	a.flags = 0;
	id = kipc_mbox_open(NULL, KIPC_O_CREAT, &a);
	ASSERT_LT(0, id);
	m = (struct mbx){id, 0, EPERM};
	EXPECT_EQ(0, kt_as_user(UID_B, try_mbox, &m));
	kipc_mbox_destroy(id);
}

struct steal {
	pid_t victim;
};

/* B names A's pid in receive: it only ever reads its own queue. */
static int steal_from(void *p)
{
	struct steal *s = p;
	char b[32];
	ssize_t n = kipc_receive(s->victim, b, sizeof b, NULL, KIPC_F_NONBLOCK);
	if (n >= 0)
		return 10; /* got something from a queue that is not ours */
	if (errno != EAGAIN && errno != ESRCH)
		return 11;
	n = kipc_receive(KIPC_ANY, b, sizeof b, NULL, KIPC_F_NONBLOCK);
	if (n >= 0 || errno != EAGAIN)
		return 12;
	/* the task the kernel gave us is our own pid */
	if (kipc_task_pid() != getpid())
		return 13;
	return 0;
}

TEST(no_receiving_from_another_users_task_queue)
{
	NEED_ROOT();
	/* Our queue (root's) holds a message from ourselves. */
	ASSERT_EQ(0, kipc_send(getpid(), "secret", 6, 0, 0));
	struct steal s = {getpid()};
	EXPECT_EQ(0, kt_as_user(UID_B, steal_from, &s));
	char b[16];
	EXPECT_EQ(6, kipc_receive(KIPC_ANY, b, sizeof b, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, memcmp(b, "secret", 6));
}

/*
 * The kernel knows a process by the pid and uid it saw on the socket: a
 * receiver learns the sender's real pid; uid B cannot send to root's
 * task queue (EPERM: direct sends go to the same uid only, from root to
 * anyone).
 */
static int expect_from(void *p)
{
	pid_t parent = *(pid_t *)p;
	char b[16];
	struct kipc_msginfo info;
	memset(&info, 0, sizeof info);
	if (kipc_receive_timed(KIPC_ANY, b, sizeof b, &info, 0, 5000LL * 1000000) != 4)
		return 10;
	if (info.pid != parent)
		return 11;
	if (kipc_send(parent, "from-b", 6, 0, KIPC_F_NONBLOCK) == 0 || errno != EPERM)
		return 12;
	return 0;
}

TEST(credentials_come_from_the_connection)
{
	NEED_ROOT();
	pid_t me = getpid();
	pid_t child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		int r = kt_become(UID_B);
		_exit(r ? r : expect_from(&me));
	}
	/* queued for the child whether or not it has attached yet */
	EXPECT_EQ(0, kipc_send(child, "ping", 4, 0, 0));
	int st;
	ASSERT_EQ(0, ksft_waitpid_timeout(child, &st, KT_BOUND_MS));
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) TH_LOG("status 0x%x", st);
}

struct flood {
	int64_t id;
	long ok, nospc;
};

static int flood_it(void *p)
{
	struct flood *f = p;
	char buf[1024];
	memset(buf, 'f', sizeof buf);
	for (int i = 0; i < 100000; i++) {
		if (kipc_mbox_send(f->id, buf, sizeof buf, 0, KIPC_F_NONBLOCK) == 0)
			continue;
		return errno == ENOSPC ? 0 : 10;
	}
	return 11; /* never stopped: no quota */
}

TEST(flood_into_unbounded_mailbox_gets_enospc)
{
	NEED_ROOT();
	struct kipc_mbox_attr a = kt_attr(KIPC_UNBOUNDED);
	a.mode = 0622;
	int64_t id = kipc_mbox_open(NULL, KIPC_O_CREAT, &a);
	ASSERT_LT(0, id);
	struct flood f = {id, 0, 0};
	EXPECT_EQ(0, kt_as_user(UID_A, flood_it, &f));
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_LT(0, st.nmsg);
	/* bounded: about bytes_per_user worth, not 100000 messages */
	EXPECT_GT(100000u, st.nmsg);
	/* another user is not starved by A's flood */
	struct mbx m = {id, 0, EPERM};
	EXPECT_EQ(0, kt_as_user(UID_B, try_mbox, &m));
	kipc_mbox_destroy(id);
}

KIPC_TEST_MAIN
