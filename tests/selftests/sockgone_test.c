// SPDX-License-Identifier: MIT
/*
 * A kernel whose socket path no longer names its socket can never be
 * reached again: kipcd notices (inotify on the socket's directory) and
 * shuts down as on SIGTERM (exit 0, its lock file removed, attached
 * processes' calls return ECONNRESET), and never removes what now sits
 * at the path.
 *  - the socket removed;
 *  - the socket's directory removed;
 *  - another file renamed over the socket: the kernel exits, the file stays.
 */
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "kipc_test.h"

TEST(socket_removed_kernel_exits_cleanly)
{
	struct kt_kernel k;
	KT_BOOT_AND_USE(&k, NULL);
	ASSERT_EQ(0, kipc_attach());
	int64_t mb = kipc_mbox_open(NULL, 0, NULL);
	ASSERT_LT(0, mb);
	ASSERT_EQ(0, unlink(k.sock));
	int st = kt_kernel_stop(&k, 0); /* it exits by itself */
	ASSERT_TRUE(st >= 0 && WIFEXITED(st)) TH_LOG("status 0x%x", st);
	EXPECT_EQ(0, WEXITSTATUS(st));
	char lock[PATH_MAX + 8];
	snprintf(lock, sizeof lock, "%s.lock", k.sock);
	EXPECT_NE(0, access(lock, F_OK)) TH_LOG("the lock file is left behind");
	char b[8];
	EXPECT_GT(0, kipc_mbox_send(mb, b, sizeof b, 0, 0));
	EXPECT_EQ(ECONNRESET, errno);
	kipc_detach();
	kt_kernel_cleanup_dir(&k);
}

TEST(socket_dir_removed_kernel_exits_cleanly)
{
	struct kt_kernel k;
	KT_BOOT_AND_USE(&k, NULL);
	kt_rm_dir(k.dir);
	int st = kt_kernel_stop(&k, 0); /* it exits by itself */
	ASSERT_TRUE(st >= 0 && WIFEXITED(st)) TH_LOG("status 0x%x", st);
	EXPECT_EQ(0, WEXITSTATUS(st));
	kt_kernel_cleanup_dir(&k);
}

TEST(socket_replaced_kernel_exits_replacement_kept)
{
	struct kt_kernel k;
	KT_BOOT_AND_USE(&k, NULL);
	char other[PATH_MAX + 8];
	snprintf(other, sizeof other, "%s/other", k.dir);
	int fd = open(other, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ASSERT_LE(0, fd);
	close(fd);
	ASSERT_EQ(0, rename(other, k.sock));
	int st = kt_kernel_stop(&k, 0); /* it exits by itself */
	ASSERT_TRUE(st >= 0 && WIFEXITED(st)) TH_LOG("status 0x%x", st);
	EXPECT_EQ(0, WEXITSTATUS(st));
	struct stat s;
	EXPECT_EQ(0, lstat(k.sock, &s)) TH_LOG("kipcd removed what replaced its socket");
	EXPECT_TRUE(S_ISREG(s.st_mode));
	kt_kernel_cleanup_dir(&k);
}

KIPC_TEST_MAIN
