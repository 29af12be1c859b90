// SPDX-License-Identifier: MIT
/*
 * death_test: processes and the kernel going away.
 *  - the owner of a mailbox killed with SIGKILL while others block on it:
 *    they wake with EIDRM;
 *  - a task killed while blocked: the kernel cleans up and goes on;
 *  - the kernel killed with SIGKILL while clients block: ECONNRESET,
 *    no hang; a clean shutdown (SIGTERM) does the same.
 */
#include "kipc_test.h"

#define MS 1000000ll

static int blocked_sender(void *p)
{
	int64_t id = *(int64_t *)p;
	return kipc_mbox_send(id, "s", 1, 0, 0) == 0 ? 0 : errno;
}

static int blocked_receiver(void *p)
{
	int64_t id = *(int64_t *)p;
	char b[4];
	return kipc_mbox_receive(id, b, sizeof b, NULL, 0) >= 0 ? 0 : errno;
}

TEST(owner_sigkill_wakes_blocked_with_eidrm)
{
	int up[2], down[2]; /* owner -> parent: ids; parent -> owner: pids */
	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(down));
	pid_t o = fork();
	ASSERT_LE(0, o);
	if (o == 0) {
		/* owner: two process-owned mailboxes, one full; kernel-owned
		 * ones would survive. The receiver is granted through the
		 * queued id exchange below. */
		struct kipc_mbox_attr at = kt_attr(1);
		at.mode = 0666;
		int64_t ids[2];
		ids[0] = kipc_mbox_open(NULL, 0, &at);
		ids[1] = kipc_mbox_open(NULL, 0, &at);
		if (ids[0] <= 0 || ids[1] <= 0)
			_exit(100);
		if (kipc_mbox_send(ids[0], "f", 1, 0, 0) < 0)
			_exit(101);
		if (write(up[1], ids, sizeof ids) != sizeof ids)
			_exit(102);
		/* grant every pid the parent writes */
		pid_t who;
		while (read(down[0], &who, sizeof who) == sizeof who)
			kipc_mbox_grant(ids[1], who);
		for (;;)
			pause();
	}
	int64_t ids[2];
	struct pollfd pfd = {.fd = up[0], .events = POLLIN};
	ASSERT_EQ(1, poll(&pfd, 1, KT_BOUND_MS));
	ASSERT_EQ((ssize_t)sizeof ids, read(up[0], ids, sizeof ids));

	/* receivers need the right: attached children, granted by the owner */
	struct kt_barrier att, go;
	ASSERT_EQ(0, kt_barrier_init(&att));
	ASSERT_EQ(0, kt_barrier_init(&go));
	pid_t s[2], r[2];
	for (int i = 0; i < 2; i++) {
		s[i] = kt_fork(blocked_sender, &ids[0]);
		ASSERT_LT(0, s[i]);
		r[i] = fork();
		ASSERT_LE(0, r[i]);
		if (r[i] == 0) {
			if (kipc_attach() < 0)
				_exit(100);
			kt_post(&att, 1);
			if (kt_wait_post(&go, 1) < 0)
				_exit(101);
			_exit(blocked_receiver(&ids[1]));
		}
	}
	ASSERT_EQ(0, kt_wait_post(&att, 2));
	for (int i = 0; i < 2; i++)
		ASSERT_EQ((ssize_t)sizeof(pid_t), write(down[1], &r[i], sizeof(pid_t)));
	/* the grants are done when the stat shows two more holders */
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	struct kipc_mbox_stat st;
	do {
		ASSERT_EQ(0, kipc_mbox_stat(ids[1], &st));
		if (st.nholders >= 3 || __ksft_now_ms() > deadline)
			break;
		kt_sleep_ms(2);
	} while (1);
	kt_post(&go, 2);
	ASSERT_EQ(0, kt_wait_mbox(ids[0], KT_SENDERS, 2, KT_BOUND_MS));
	ASSERT_EQ(0, kt_wait_mbox(ids[1], KT_RECEIVERS, 2, KT_BOUND_MS))
		TH_LOG("receivers did not block (holders %u)", st.nholders);

	kill(o, SIGKILL);
	EXPECT_EQ(128 + SIGKILL, kt_wait(o));
	for (int i = 0; i < 2; i++) {
		EXPECT_EQ(EIDRM, kt_wait(s[i]));
		EXPECT_EQ(EIDRM, kt_wait(r[i]));
	}
	EXPECT_EQ(-1, kipc_mbox_send(ids[0], "x", 1, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(EIDRM, errno);
}

static int blocked_taskq_receiver(void *p)
{
	(void)p;
	char b[4];
	return kipc_receive(KIPC_ANY, b, sizeof b, NULL, 0) >= 0 ? 0 : errno;
}

TEST(task_killed_while_blocked_kernel_goes_on)
{
	int64_t id = kt_shared_mbox(0);
	ASSERT_LT(0, id);
	pid_t s = kt_fork(blocked_sender, &id);
	pid_t r = kt_fork(blocked_taskq_receiver, NULL);
	ASSERT_LT(0, s);
	ASSERT_LT(0, r);
	ASSERT_EQ(0, kt_wait_mbox(id, KT_SENDERS, 1, KT_BOUND_MS));
	ASSERT_EQ(0, kt_wait_blocked(r, KIPC_SYS_receive));
	kill(s, SIGKILL);
	kill(r, SIGKILL);
	EXPECT_EQ(128 + SIGKILL, kt_wait(s));
	EXPECT_EQ(128 + SIGKILL, kt_wait(r));
	/* the killed sender's message never arrives: nothing is waiting */
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	struct kipc_mbox_stat st;
	do {
		ASSERT_EQ(0, kipc_mbox_stat(id, &st));
		if (st.nsenders == 0)
			break;
		kt_sleep_ms(2);
	} while (__ksft_now_ms() < deadline);
	EXPECT_EQ(0, st.nsenders);
	char b[4];
	EXPECT_EQ(-1, kipc_mbox_receive_timed(id, b, sizeof b, NULL, 0, 30 * MS));
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_EQ(0, kipc_nop());
	kipc_mbox_destroy(id);
}

/* Clients blocked on a private kernel that then dies (sig). */
static void kernel_dies(struct __test_metadata *_metadata, int sig)
{
	struct kt_kernel k;
	KT_BOOT_AND_USE(&k, NULL);

	int64_t id = kipc_mbox_open(NULL, 0, NULL);
	ASSERT_LT(0, id);
	pid_t c[3];
	struct kt_barrier att;
	ASSERT_EQ(0, kt_barrier_init(&att));
	for (int i = 0; i < 3; i++) {
		c[i] = fork();
		ASSERT_LE(0, c[i]);
		if (c[i] == 0) {
			char b[8];
			if (kipc_attach() < 0)
				_exit(100);
			kt_post(&att, 1);
			ssize_t n = i == 0 ? kipc_receive(KIPC_ANY, b, sizeof b, NULL, 0) :
				    i == 1 ? kipc_mbox_send(id, "x", 1, 0, 0) /* EPERM/ok */ :
					     kipc_receive(getppid(), b, sizeof b, NULL, 0);
			if (n >= 0)
				_exit(0);
			_exit(errno);
		}
	}
	ASSERT_EQ(0, kt_wait_post(&att, 3));
	/* the two receives are parked when the kernel dies (a call made
	 * after its death may fail ECONNREFUSED instead) */
	ASSERT_EQ(0, kt_wait_blocked(c[0], KIPC_SYS_receive));
	ASSERT_EQ(0, kt_wait_blocked(c[2], KIPC_SYS_receive));
	int64_t t0 = kt_now_ns();
	kill(k.pid, sig);
	int st;
	ASSERT_EQ(0, ksft_waitpid_timeout(k.pid, &st, KT_BOUND_MS));
	k.pid = 0;
	if (sig == SIGTERM)
		EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) TH_LOG("status 0x%x", st);
	EXPECT_EQ(ECONNRESET, kt_wait(c[0]));
	EXPECT_EQ(ECONNRESET, kt_wait(c[2]));
	kt_wait(c[1]);
	EXPECT_GT(KT_BOUND_MS * MS, kt_now_ns() - t0);
	/* our own blocked-then-failed call, and no autostart */
	char b[8];
	EXPECT_EQ(-1, kipc_receive(KIPC_ANY, b, sizeof b, NULL, 0));
	EXPECT_TRUE(errno == ECONNRESET || errno == ECONNREFUSED) TH_LOG("errno %d", errno);
	kt_kernel_cleanup_dir(&k);
}

TEST(kernel_sigkill_blocked_calls_get_econnreset)
{
	kernel_dies(_metadata, SIGKILL);
}

TEST(kernel_sigterm_blocked_calls_get_econnreset)
{
	kernel_dies(_metadata, SIGTERM);
}

/* After the kernel restarts, the library re-attaches as a new task. */
TEST(reattach_after_kernel_restart)
{
	struct kt_kernel k;
	KT_BOOT_AND_USE(&k, NULL);
	ASSERT_EQ(0, kipc_nop());
	ASSERT_EQ(0, kipc_send(getpid(), "a", 1, 0, 0));
	ASSERT_LE(0, kt_kernel_stop(&k, SIGKILL));
	/* same socket path, new kernel */
	char dir[sizeof k.dir];
	snprintf(dir, sizeof dir, "%s", k.dir);
	kt_kernel_cleanup_dir(&k);
	struct kt_kernel k2;
	KT_BOOT_AND_USE(&k2, NULL);
	/* the first call may report the old kernel's death */
	int ret = kipc_nop();
	if (ret < 0)
		EXPECT_EQ(ECONNRESET, errno);
	EXPECT_EQ(0, kipc_nop());
	EXPECT_EQ(getpid(), kipc_task_pid());
	/* a new task: the old queue is gone */
	char b[4];
	EXPECT_EQ(-1, kipc_receive(KIPC_ANY, b, sizeof b, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(0, WEXITSTATUS(kt_kernel_stop(&k2, SIGTERM)));
	kt_kernel_cleanup_dir(&k2);
}

KIPC_TEST_MAIN
