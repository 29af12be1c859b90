// SPDX-License-Identifier: MIT
/*
 * mailbox_test: indirect naming. Names and ids, process- and
 * kernel-owned mailboxes, destruction (EIDRM to waiters and later
 * users), ownership transfer, receive rights, permission bits.
 */
#include "kipc_test.h"

#include <pwd.h>

#define NOBODY 65534

/* Send the mailbox id (or an errno) to the parent over a pipe. */
struct idpipe {
	int fd[2];
};

static int64_t read_id(struct idpipe *p)
{
	int64_t id = 0;
	struct pollfd pfd = {.fd = p->fd[0], .events = POLLIN};
	if (poll(&pfd, 1, KT_BOUND_MS) != 1)
		return 0;
	if (read(p->fd[0], &id, sizeof id) != sizeof id)
		return 0;
	return id;
}

TEST(open_lookup_exclusive)
{
	char name[64];
	kt_name(name, sizeof name, "a");
	int64_t id = kipc_mbox_open(name, KIPC_O_CREAT, NULL);
	ASSERT_LT(0, id) TH_LOG("open %s: %s", name, strerror(errno));
	EXPECT_EQ(id, kipc_mbox_open(name, 0, NULL));
	EXPECT_EQ(id, kipc_mbox_open(name, KIPC_O_CREAT, NULL));
	EXPECT_EQ(-1, kipc_mbox_open(name, KIPC_O_CREAT | KIPC_O_EXCL, NULL));
	EXPECT_EQ(EEXIST, errno);

	char other[64];
	kt_name(other, sizeof other, "nonexistent");
	EXPECT_EQ(-1, kipc_mbox_open(other, 0, NULL));
	EXPECT_EQ(ENOENT, errno);

	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(id, st.id);
	EXPECT_STREQ(name, st.name);
	EXPECT_EQ(getpid(), st.owner);
	EXPECT_EQ(getuid(), st.cuid);
	EXPECT_EQ(0, st.nmsg);

	/* anonymous mailboxes are always new */
	int64_t a1 = kipc_mbox_open(NULL, 0, NULL);
	int64_t a2 = kipc_mbox_open(NULL, 0, NULL);
	EXPECT_LT(0, a1);
	EXPECT_LT(0, a2);
	EXPECT_NE(a1, a2);
	EXPECT_NE(id, a1);
}

TEST(bad_names_and_attributes)
{
	EXPECT_EQ(-1, kipc_mbox_open("noslash", KIPC_O_CREAT, NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kipc_mbox_open("/a/b", KIPC_O_CREAT, NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kipc_mbox_open("/", KIPC_O_CREAT, NULL));
	EXPECT_EQ(EINVAL, errno);
	/* "" is a malformed name, not an anonymous mailbox (that is NULL) */
	struct kipc_sysinfo si0, si1;
	ASSERT_EQ(0, kipc_sysinfo(&si0));
	EXPECT_EQ(-1, kipc_mbox_open("", KIPC_O_CREAT, NULL));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, kipc_sysinfo(&si1));
	EXPECT_EQ(si0.nmboxes, si1.nmboxes); /* nothing was created */

	char longname[KIPC_NAME_MAX + 10];
	longname[0] = '/';
	memset(longname + 1, 'x', sizeof longname - 2);
	longname[sizeof longname - 1] = '\0';
	EXPECT_EQ(-1, kipc_mbox_open(longname, KIPC_O_CREAT, NULL));
	EXPECT_TRUE(errno == ENAMETOOLONG || errno == EINVAL) TH_LOG("errno %d", errno);

	struct kipc_mbox_attr a = kt_attr(4);
	a.policy = KIPC_POLICY_MAX + 1;
	EXPECT_EQ(-1, kipc_mbox_open(NULL, 0, &a));
	EXPECT_EQ(EINVAL, errno);
	a = kt_attr(4);
	a.flags = 1u << 20;
	EXPECT_EQ(-1, kipc_mbox_open(NULL, 0, &a));
	EXPECT_EQ(EINVAL, errno);
	a = kt_attr(4);
	a.msgsize = 1u << 30; /* beyond msgsize_max */
	EXPECT_EQ(-1, kipc_mbox_open(NULL, 0, &a));
	EXPECT_EQ(EINVAL, errno);
	/* bad id */
	EXPECT_EQ(-1, kipc_mbox_send(-1, "x", 1, 0, 0));
	EXPECT_TRUE(errno == EINVAL || errno == EIDRM) TH_LOG("errno %d", errno);
}

struct lookup_arg {
	const char *name;
	struct kt_barrier *done;
};

static int lookup_and_send(void *p)
{
	struct lookup_arg *a = p;
	int64_t id = kipc_mbox_open(a->name, 0, NULL);
	if (id <= 0)
		return 2;
	int v = 77;
	if (kipc_mbox_send(id, &v, sizeof v, 0, 0) < 0)
		return 3;
	return 0;
}

TEST(other_process_finds_by_name)
{
	char name[64];
	kt_name(name, sizeof name, "shared");
	int64_t id = kipc_mbox_open(name, KIPC_O_CREAT, NULL);
	ASSERT_LT(0, id);
	struct lookup_arg a = {name, NULL};
	pid_t c = kt_fork(lookup_and_send, &a);
	ASSERT_LT(0, c);
	int v = 0;
	struct kipc_msginfo info;
	ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive(id, &v, sizeof v, &info, 0));
	EXPECT_EQ(77, v);
	EXPECT_EQ(c, info.pid);
	EXPECT_EQ(id, info.source);
	EXPECT_EQ(0, kt_wait(c));
}

/* Child: try to receive from id nonblocking; return errno (0: got one). */
static int try_receive(void *p)
{
	int64_t id = *(int64_t *)p;
	char buf[64];
	if (kipc_mbox_receive(id, buf, sizeof buf, NULL, KIPC_F_NONBLOCK) >= 0)
		return 0;
	return errno;
}

TEST(receive_right_grant_revoke)
{
	int64_t id = kipc_mbox_open(NULL, 0, NULL);
	ASSERT_LT(0, id);
	ASSERT_EQ(0, kipc_mbox_send(id, "m1", 2, 0, 0));
	ASSERT_EQ(0, kipc_mbox_send(id, "m2", 2, 0, 0));

	/* a non-owner without the right */
	pid_t c = kt_fork(try_receive, &id);
	ASSERT_LT(0, c);
	EXPECT_EQ(EPERM, kt_wait(c));

	/* granted: the child is a new process, grant needs its pid: use a
	 * child that waits to be granted */
	struct kt_barrier b[2];
	ASSERT_EQ(0, kt_barrier_init(&b[0]));
	ASSERT_EQ(0, kt_barrier_init(&b[1]));
	c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		if (kt_wait_post(&b[0], 1) < 0)
			_exit(100);
		int r1 = try_receive(&id);
		kt_post(&b[1], 1);
		if (kt_wait_post(&b[0], 1) < 0)
			_exit(100);
		int r2 = try_receive(&id);
		_exit(r1 == 0 && r2 == EPERM ? 0 : 10 + (r1 ? 1 : 0) + (r2 != EPERM ? 2 : 0));
	}
	EXPECT_EQ(0, kipc_mbox_grant(id, c)) TH_LOG("grant: %s", strerror(errno));
	kt_post(&b[0], 1);
	ASSERT_EQ(0, kt_wait_post(&b[1], 1));
	EXPECT_EQ(0, kipc_mbox_revoke(id, c)) TH_LOG("revoke: %s", strerror(errno));
	kt_post(&b[0], 1);
	EXPECT_EQ(0, kt_wait(c));

	/* the owner still receives the other message */
	char buf[8];
	EXPECT_EQ(2, kipc_mbox_receive(id, buf, sizeof buf, NULL, KIPC_F_NONBLOCK));
}

static int grant_from_non_owner(void *p)
{
	int64_t id = *(int64_t *)p;
	if (kipc_mbox_grant(id, getpid()) == 0)
		return 1;
	if (errno != EPERM)
		return 2;
	if (kipc_mbox_revoke(id, getppid()) == 0)
		return 3;
	if (kipc_mbox_set_owner(id, getpid()) == 0)
		return 5;
	return 0;
}

TEST(only_owner_manages)
{
	int64_t id = kipc_mbox_open(NULL, 0, NULL);
	ASSERT_LT(0, id);
	pid_t c = kt_fork(grant_from_non_owner, &id);
	ASSERT_LT(0, c);
	EXPECT_EQ(0, kt_wait(c));
	struct kipc_mbox_stat st;
	EXPECT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(getpid(), st.owner);
}

/* Child: create a mailbox (attr flags), pass the id up, exit or wait. */
struct creator_arg {
	struct idpipe pipe;
	uint32_t flags;
	const char *name;
};

static int create_and_exit(void *p)
{
	struct creator_arg *a = p;
	struct kipc_mbox_attr at = kt_attr(KIPC_CAP_DEFAULT);
	at.flags = a->flags;
	at.mode = 0666;
	int64_t id = kipc_mbox_open(a->name, KIPC_O_CREAT, &at);
	if (id <= 0)
		return 2;
	if (kipc_mbox_send(id, "left", 4, 0, 0) < 0)
		return 3;
	if (write(a->pipe.fd[1], &id, sizeof id) != sizeof id)
		return 4;
	return 0;
}

/* Poll (bounded) until the kernel no longer knows task pid. 0 or -1. */
static int wait_task_gone(pid_t pid)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	struct kipc_task_info ti;
	while (kipc_task_info(pid, &ti) == 0) {
		if (__ksft_now_ms() > deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		kt_sleep_ms(1);
	}
	return errno == ESRCH ? 0 : -1;
}

/* A child (*pid) creates the mailbox name with flags and exits: its id,
 * once the child is reaped. */
static int64_t made_by_a_child(struct __test_metadata *_metadata, uint32_t flags,
			       const char *name, pid_t *pid)
{
	struct creator_arg a = {.flags = flags, .name = name};
	ASSERT_EQ(0, pipe(a.pipe.fd));
	pid_t c = kt_fork(create_and_exit, &a);
	ASSERT_LT(0, c);
	int64_t id = read_id(&a.pipe);
	ASSERT_LT(0, id);
	ASSERT_EQ(0, kt_wait(c));
	*pid = c;
	return id;
}

TEST(process_owned_dies_with_owner)
{
	char name[64];
	pid_t c;
	int64_t id = made_by_a_child(_metadata, 0, kt_name(name, sizeof name, "po"), &c);
	/* The owner is gone (its connection closed): the kernel destroys the
	 * mailbox as part of the exit. Give the kernel the bound to notice. */
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	int r;
	while ((r = kipc_mbox_send(id, "x", 1, 0, KIPC_F_NONBLOCK)) == 0 &&
	       __ksft_now_ms() < deadline)
		kt_sleep_ms(5);
	EXPECT_EQ(-1, r);
	EXPECT_EQ(EIDRM, errno);
	char buf[8];
	EXPECT_EQ(-1, kipc_mbox_receive(id, buf, sizeof buf, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EIDRM, errno);
	struct kipc_mbox_stat st;
	EXPECT_EQ(-1, kipc_mbox_stat(id, &st));
	EXPECT_EQ(EIDRM, errno);
	EXPECT_EQ(-1, kipc_mbox_open(name, 0, NULL));
	EXPECT_EQ(ENOENT, errno);
}

TEST(kernel_owned_outlives_creator)
{
	char name[64];
	pid_t c;
	int64_t id = made_by_a_child(_metadata, KIPC_MBOX_KERNEL_OWNED,
				     kt_name(name, sizeof name, "ko"), &c);
	/* the kernel has processed the exit: the task is gone */
	ASSERT_EQ(0, wait_task_gone(c)) TH_LOG("task %d: %s", (int)c, strerror(errno));
	EXPECT_EQ(id, kipc_mbox_open(name, 0, NULL));
	char buf[8];
	EXPECT_EQ(4, kipc_mbox_receive(id, buf, sizeof buf, NULL, KIPC_F_NONBLOCK))
		TH_LOG("receive: %s", strerror(errno));
	EXPECT_EQ(0, kipc_mbox_send(id, "y", 1, 0, 0));
	EXPECT_EQ(0, kipc_mbox_destroy(id)) TH_LOG("destroy: %s", strerror(errno));
	EXPECT_EQ(-1, kipc_mbox_send(id, "z", 1, 0, 0));
	EXPECT_EQ(EIDRM, errno);
	EXPECT_EQ(-1, kipc_mbox_destroy(id));
	EXPECT_EQ(EIDRM, errno);
	EXPECT_EQ(-1, kipc_mbox_open(name, 0, NULL));
	EXPECT_EQ(ENOENT, errno);
}

/* Blocked in a send or a receive on id; returns the errno it woke with. */
static int block_send(void *p)
{
	int64_t id = *(int64_t *)p;
	if (kipc_mbox_send(id, "s", 1, 0, 0) == 0)
		return 0;
	return errno;
}

static int block_receive(void *p)
{
	int64_t id = *(int64_t *)p;
	char buf[8];
	if (kipc_mbox_receive(id, buf, sizeof buf, NULL, 0) >= 0)
		return 0;
	return errno;
}

TEST(destroy_wakes_waiters_with_eidrm)
{
	int64_t full = kt_shared_mbox(1);
	int64_t empty = kt_shared_mbox(1);
	ASSERT_LT(0, full);
	ASSERT_LT(0, empty);
	ASSERT_EQ(0, kipc_mbox_send(full, "f", 1, 0, 0));

	pid_t s = kt_fork(block_send, &full);
	pid_t r = kt_fork(block_receive, &empty);
	ASSERT_LT(0, s);
	ASSERT_LT(0, r);
	ASSERT_EQ(0, kt_wait_mbox(full, KT_SENDERS, 1, KT_BOUND_MS));
	ASSERT_EQ(0, kt_wait_mbox(empty, KT_RECEIVERS, 1, KT_BOUND_MS));

	ASSERT_EQ(0, kipc_mbox_destroy(full));
	ASSERT_EQ(0, kipc_mbox_destroy(empty));
	EXPECT_EQ(EIDRM, kt_wait(s));
	EXPECT_EQ(EIDRM, kt_wait(r));
	EXPECT_EQ(-1, kipc_mbox_send(full, "x", 1, 0, 0));
	EXPECT_EQ(EIDRM, errno);
	char buf[4];
	EXPECT_EQ(-1, kipc_mbox_receive(empty, buf, sizeof buf, NULL, 0));
	EXPECT_EQ(EIDRM, errno);
}

TEST(ids_are_not_reused_at_once)
{
	int64_t seen[16];
	for (int i = 0; i < 16; i++) {
		seen[i] = kipc_mbox_open(NULL, 0, NULL);
		ASSERT_LT(0, seen[i]);
		ASSERT_EQ(0, kipc_mbox_destroy(seen[i]));
		for (int j = 0; j < i; j++)
			EXPECT_NE(seen[j], seen[i]);
	}
	EXPECT_EQ(-1, kipc_mbox_send(seen[0], "x", 1, 0, 0));
	EXPECT_EQ(EIDRM, errno);
}

/* Child: take ownership handed over by the parent, receive, exit. */
static int new_owner(void *p)
{
	struct kt_barrier *b = p;
	int64_t id;
	if (kipc_attach() < 0)
		return 99;
	kt_post(&b[1], 1);
	if (kt_wait_post(&b[0], 1) < 0)
		return 100;
	if (read(b[2].fd[0], &id, sizeof id) != sizeof id)
		return 101;
	char buf[8];
	if (kipc_mbox_receive(id, buf, sizeof buf, NULL, KIPC_F_NONBLOCK) != 2)
		return 1;
	struct kipc_mbox_stat st;
	if (kipc_mbox_stat(id, &st) < 0 || st.owner != getpid())
		return 2;
	return 0; /* exiting destroys it: we own it now */
}

TEST(set_owner_transfers)
{
	struct kt_barrier b[3];
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0, kt_barrier_init(&b[i]));
	int64_t id = kipc_mbox_open(NULL, 0, NULL);
	ASSERT_LT(0, id);
	ASSERT_EQ(0, kipc_mbox_send(id, "hi", 2, 0, 0));
	pid_t c = kt_fork(new_owner, b);
	ASSERT_LT(0, c);
	ASSERT_EQ(0, kt_wait_post(&b[1], 1)); /* c is a task now */
	ASSERT_EQ(0, kipc_mbox_set_owner(id, c)) TH_LOG("set_owner: %s", strerror(errno));
	ASSERT_EQ(sizeof id, (size_t)write(b[2].fd[1], &id, sizeof id));
	/* we are not the owner any more */
	char buf[8];
	EXPECT_EQ(-1, kipc_mbox_grant(id, getpid()));
	EXPECT_EQ(EPERM, errno);
	kt_post(&b[0], 1);
	EXPECT_EQ(0, kt_wait(c));
	/* the new owner exited: a process-owned mailbox dies with it */
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	int r;
	while ((r = kipc_mbox_send(id, "x", 1, 0, KIPC_F_NONBLOCK)) == 0 &&
	       __ksft_now_ms() < deadline) {
		kipc_mbox_receive(id, buf, sizeof buf, NULL, KIPC_F_NONBLOCK);
		kt_sleep_ms(5);
	}
	EXPECT_EQ(-1, r);
	EXPECT_EQ(EIDRM, errno);
}

/* ---- permissions: need root to drop to another uid ---------------- */

static int as_nobody(int (*fn)(int64_t), int64_t id)
{
	pid_t c = fork();
	if (c == 0) {
		if (setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(100);
		_exit(fn(id));
	}
	return kt_wait(c);
}

static int nobody_send(int64_t id)
{
	return kipc_mbox_send(id, "n", 1, 0, KIPC_F_NONBLOCK) == 0 ? 0 : errno;
}

static int nobody_receive(int64_t id)
{
	char buf[8];
	return kipc_mbox_receive(id, buf, sizeof buf, NULL, KIPC_F_NONBLOCK) >= 0 ? 0 : errno;
}

static int nobody_direct_send(int64_t pid)
{
	return kipc_send((pid_t)pid, "d", 1, 0, KIPC_F_NONBLOCK) == 0 ? 0 : errno;
}

TEST(mode_bits_are_checked)
{
	if (getuid() != 0)
		SKIP(return, "needs root to run a child as another uid");
	struct kipc_mbox_attr a = kt_attr(8);
	a.flags = KIPC_MBOX_KERNEL_OWNED;
	a.mode = 0600;
	int64_t priv = kipc_mbox_open(NULL, 0, &a);
	ASSERT_LT(0, priv);
	a.mode = 0622; /* others may send, not receive */
	int64_t drop = kipc_mbox_open(NULL, 0, &a);
	ASSERT_LT(0, drop);
	a.mode = 0644; /* others may receive, not send */
	int64_t board = kipc_mbox_open(NULL, 0, &a);
	ASSERT_LT(0, board);
	ASSERT_EQ(0, kipc_mbox_send(board, "b", 1, 0, 0));

	EXPECT_EQ(EACCES, as_nobody(nobody_send, priv));
	EXPECT_EQ(EACCES, as_nobody(nobody_receive, priv));
	EXPECT_EQ(0, as_nobody(nobody_send, drop));
	EXPECT_EQ(EACCES, as_nobody(nobody_receive, drop));
	EXPECT_EQ(EACCES, as_nobody(nobody_send, board));
	EXPECT_EQ(0, as_nobody(nobody_receive, board));

	/* setattr opens the private one for others */
	struct kipc_mbox_attr m = kt_attr(8);
	m.mode = 0666;
	EXPECT_EQ(0, kipc_mbox_setattr(priv, KIPC_SET_MODE, &m));
	EXPECT_EQ(0, as_nobody(nobody_send, priv));
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(priv, &st));
	EXPECT_EQ(0666, st.attr.mode & 0777);
	EXPECT_EQ(1, st.nmsg);

	kipc_mbox_destroy(priv);
	kipc_mbox_destroy(drop);
	kipc_mbox_destroy(board);
}

TEST(direct_send_follows_kill_rules)
{
	if (getuid() != 0)
		SKIP(return, "needs root to run a child as another uid");
	ASSERT_EQ(0, kipc_attach());
	/* nobody may not signal root, so may not send to root's task */
	EXPECT_EQ(EPERM, as_nobody(nobody_direct_send, getpid()));
	/* root may send to anyone: to a nobody child that waits for it */
	int p[2];
	ASSERT_EQ(0, pipe(p));
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		if (setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(100);
		if (kipc_attach() < 0)
			_exit(101);
		if (write(p[1], "r", 1) != 1)
			_exit(102);
		char buf[8];
		_exit(kipc_receive_timed(KIPC_ANY, buf, sizeof buf, NULL, 0,
					 (int64_t)KT_BOUND_MS * 1000000) == 1 ? 0 : 1);
	}
	char ch;
	ASSERT_EQ(1, read(p[0], &ch, 1));
	EXPECT_EQ(0, kipc_send(c, "x", 1, 0, 0));
	EXPECT_EQ(0, kt_wait(c));
}

/* The harness's own wait: kt_wait_mbox(n) waits for exactly n (callers
 * wait for "r1 is parked" before starting r2: a count past n is a
 * different state), so a count already past n times out, and 0 can be
 * waited for. */
TEST(kt_wait_mbox_waits_for_exactly_n)
{
	int64_t id = kipc_mbox_open(NULL, 0, NULL);
	ASSERT_LT(0, id);
	ASSERT_EQ(0, kipc_mbox_send(id, "a", 1, 0, 0));
	ASSERT_EQ(0, kipc_mbox_send(id, "b", 1, 0, 0));
	EXPECT_EQ(0, kt_wait_mbox(id, KT_NMSG, 2, KT_BOUND_MS));
	EXPECT_EQ(-1, kt_wait_mbox(id, KT_NMSG, 1, 50));
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_EQ(-1, kt_wait_mbox(id, KT_NMSG, 0, 50));
	EXPECT_EQ(ETIMEDOUT, errno);
	char b[4];
	ASSERT_EQ(1, kipc_mbox_receive(id, b, sizeof b, NULL, 0));
	ASSERT_EQ(1, kipc_mbox_receive(id, b, sizeof b, NULL, 0));
	EXPECT_EQ(0, kt_wait_mbox(id, KT_NMSG, 0, KT_BOUND_MS));
	EXPECT_EQ(0, kipc_mbox_destroy(id));
}

KIPC_TEST_MAIN
