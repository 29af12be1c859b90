// SPDX-License-Identifier: MIT
/*
 * The kernel dies under load and comes back:
 *  - kipcd killed with SIGKILL while 50 clients block in receive: every
 *    client's call returns ECONNRESET within a second of the kill;
 *  - a new kernel started on the same socket serves the same processes:
 *    their next calls attach them again as new tasks.
 */
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "kipc_test.h"

#define MS 1000000ll
#define NCLIENTS 50
#define RESET_BOUND_NS (1000 * MS)

struct board {
	int64_t t_kill;           /* when the parent killed the kernel */
	int64_t dt[NCLIENTS];     /* kill -> the client's call returned */
	int err[NCLIENTS];        /* errno of that call */
	int served[NCLIENTS];     /* the new kernel answered the client */
	int noticed;              /* clients whose call has returned */
};

static int client(int i, struct board *bd, struct kt_barrier *attached,
		  struct kt_barrier *restarted)
{
	char b[16];
	if (kipc_attach() < 0)
		return 100;
	int64_t mb = -1;
	if (i % 2) { /* half wait on a mailbox of their own, half on their queue */
		mb = kipc_mbox_open(NULL, 0, NULL);
		if (mb < 0)
			return 101;
	}
	kt_post(attached, 1);
	ssize_t n = mb > 0 ? kipc_mbox_receive(mb, b, sizeof b, NULL, 0) :
			     kipc_receive(KIPC_ANY, b, sizeof b, NULL, 0);
	bd->dt[i] = kt_now_ns() - __atomic_load_n(&bd->t_kill, __ATOMIC_ACQUIRE);
	bd->err[i] = n < 0 ? errno : 0;
	__atomic_add_fetch(&bd->noticed, 1, __ATOMIC_RELEASE);
	if (kt_wait_post_ms(restarted, 1, 30000) < 0)
		return 102;
	/* the first call may still report the old kernel's death */
	if (kipc_nop() < 0 && errno != ECONNRESET)
		return 103;
	if (kipc_nop() < 0)
		return 104;
	if (kipc_send(getpid(), "again", 5, 0, 0) < 0)
		return 105;
	n = kipc_receive(getpid(), b, sizeof b, NULL, KIPC_F_NONBLOCK);
	bd->served[i] = n == 5 && memcmp(b, "again", 5) == 0;
	return 0;
}

TEST_TIMEOUT(sigkill_with_50_blocked_clients_then_restart, 120)
{
	struct kt_kernel k;
	KT_BOOT_AND_USE(&k, NULL);

	struct board *bd = mmap(NULL, sizeof *bd, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, bd);
	memset(bd, 0, sizeof *bd);
	struct kt_barrier attached, restarted;
	ASSERT_EQ(0, kt_barrier_init(&attached));
	ASSERT_EQ(0, kt_barrier_init(&restarted));

	pid_t pids[NCLIENTS];
	for (int i = 0; i < NCLIENTS; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0)
			_exit(client(i, bd, &attached, &restarted));
	}
	ASSERT_EQ(0, kt_wait_post(&attached, NCLIENTS));

	/* every client is inside its receive in the kernel */
	ASSERT_EQ(0, kipc_attach());
	struct kipc_sysinfo si;
	int64_t deadline = kt_now_ns() + KT_BOUND_MS * MS;
	do {
		ASSERT_EQ(0, kipc_sysinfo(&si));
		if (si.nparked >= NCLIENTS)
			break;
		kt_sleep_ms(5);
	} while (kt_now_ns() < deadline);
	ASSERT_EQ(NCLIENTS, si.nparked);

	__atomic_store_n(&bd->t_kill, kt_now_ns(), __ATOMIC_RELEASE);
	kill(k.pid, SIGKILL);
	int st;
	ASSERT_EQ(0, ksft_waitpid_timeout(k.pid, &st, KT_BOUND_MS));
	k.pid = 0;

	/* every client has noticed (its call returned) before the restart;
	 * how soon is checked below (dt) */
	deadline = kt_now_ns() + KT_BOUND_MS * MS;
	while (__atomic_load_n(&bd->noticed, __ATOMIC_ACQUIRE) < NCLIENTS &&
	       kt_now_ns() < deadline)
		kt_sleep_ms(5);
	EXPECT_EQ(NCLIENTS, __atomic_load_n(&bd->noticed, __ATOMIC_ACQUIRE));
	char why[256];
	int r = kt_kernel_spawn(&k, NULL, why, sizeof why);
	ASSERT_EQ(KSFT_PASS, r) TH_LOG("%s", why);
	kt_post(&restarted, NCLIENTS);

	int late = 0, wrong = 0, unserved = 0;
	for (int i = 0; i < NCLIENTS; i++) {
		EXPECT_EQ(0, kt_wait(pids[i])) TH_LOG("client %d", i);
		if (bd->err[i] != ECONNRESET) {
			wrong++;
			TH_LOG("client %d: errno %d", i, bd->err[i]);
		} else if (bd->dt[i] > RESET_BOUND_NS) {
			late++;
			TH_LOG("client %d: ECONNRESET after %lld ms", i,
			       (long long)(bd->dt[i] / MS));
		}
		unserved += !bd->served[i];
	}
	EXPECT_EQ(0, wrong);
	EXPECT_EQ(0, late);
	EXPECT_EQ(0, unserved);

	/* the new kernel is healthy and holds nothing of the old clients */
	if (kipc_nop() < 0)
		EXPECT_EQ(ECONNRESET, errno); /* our own first call after the kill */
	ASSERT_EQ(0, kipc_sysinfo(&si));
	EXPECT_EQ(0, si.nparked);
	EXPECT_EQ(0, si.nmsg);
	EXPECT_EQ(0, si.nmboxes);
	EXPECT_EQ(0, WEXITSTATUS(kt_kernel_stop(&k, SIGTERM)));
	kt_kernel_cleanup_dir(&k);
	kt_barrier_destroy(&attached);
	kt_barrier_destroy(&restarted);
	munmap(bd, sizeof *bd);
}

KIPC_TEST_MAIN
