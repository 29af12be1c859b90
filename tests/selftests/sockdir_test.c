// SPDX-License-Identifier: MIT
/*
 * sockdir_test: the socket, its directory and the shared memory (issue
 * 10, item 3; Documentation/security.md). Root only: the test switches
 * between two uids of its own, an attacker and a victim.
 *  - the victim's socket directory is 0777 and the attacker planted
 *    symlinks to the victim's files in it, or the attacker made it a
 *    symlink to the victim's own directory, or pre-created it: the
 *    victim's kipcd refuses with one line saying why and deletes nothing;
 *  - a server of another uid is refused by the library (EPERM);
 *  - a server that hands out an unsealed memfd is refused (EPROTO).
 */
#include "kipc_test.h"

#include <grp.h>
#include <kipc/ring.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define ATTACKER 61001
#define VICTIM   61002

static char base[256];

static void become(uid_t uid)
{
	if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
		_exit(99);
}

/* base: a sticky world-writable directory, as /tmp is. */
static int make_base(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(base, sizeof base, "%s/kipc-sockdir.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base))
		return -1;
	return chmod(base, 01777);
}

static void rm_rf(const char *p)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
	if (system(cmd) != 0)
		ksft_print("# could not remove %s\n", p);
}

/* Run kipcd as uid on sock; its exit status, stderr in err. */
static int run_kipcd_as(uid_t uid, const char *sock, char *err, size_t errlen)
{
	char kipcd[PATH_MAX];
	kt_find_kipcd(kipcd, sizeof kipcd);
	int p[2];
	if (!kipcd[0] || pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		become(uid);
		dup2(p[1], STDERR_FILENO);
		execl(kipcd, kipcd, "--foreground", "--socket", sock, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	struct pollfd pfd = {.fd = p[0], .events = POLLIN};
	while (n + 1 < errlen && poll(&pfd, 1, KT_BOUND_MS) == 1 &&
	       (r = read(p[0], err + n, errlen - 1 - n)) > 0)
		n += (size_t)r;
	err[n] = '\0';
	close(p[0]);
	return kt_wait(pid);
}

/* The victim's files: a directory 0700 with q1 and precious in it. */
static void victim_files(char *dir, size_t len)
{
	snprintf(dir, len, "%s/victim", base);
	pid_t pid = fork();
	if (pid == 0) {
		become(VICTIM);
		char f[PATH_MAX + 16];
		if (mkdir(dir, 0700) < 0)
			_exit(1);
		snprintf(f, sizeof f, "%s/q1", dir);
		int a = open(f, O_CREAT | O_WRONLY, 0600);
		snprintf(f, sizeof f, "%s/precious", dir);
		int b = open(f, O_CREAT | O_WRONLY, 0600);
		_exit(a >= 0 && b >= 0 && write(b, "data", 4) == 4 ? 0 : 2);
	}
	kt_wait(pid);
}

static bool victim_intact(const char *dir)
{
	char f[PATH_MAX + 16];
	struct stat st;
	snprintf(f, sizeof f, "%s/q1", dir);
	if (stat(f, &st) < 0)
		return false;
	snprintf(f, sizeof f, "%s/precious", dir);
	return stat(f, &st) == 0 && st.st_size == 4;
}

static int attacker_plants(const char *what, const char *victim)
{
	pid_t pid = fork();
	if (pid == 0) {
		become(ATTACKER);
		char d[PATH_MAX], l[PATH_MAX + 32];
		snprintf(d, sizeof d, "%s/kipc-%d", base, VICTIM);
		if (!strcmp(what, "0777")) {
			/* the attacker's own 0777 directory is refused for its
			 * owner; this one is the victim's, left 0777 */
			snprintf(l, sizeof l, "%s/kipcd.sock.mq", d);
			if (symlink(victim, l) < 0)
				_exit(2);
			snprintf(l, sizeof l, "%s/kipcd.sock.lock", d);
			if (symlink("../victim/precious", l) < 0)
				_exit(3);
		} else if (!strcmp(what, "symlink")) {
			if (symlink(victim, d) < 0)
				_exit(4);
		} else if (mkdir(d, 0755) < 0) {
			_exit(5);
		}
		_exit(0);
	}
	return kt_wait(pid);
}

static void refused(struct __test_metadata *_metadata, const char *how, const char *why)
{
	char victim[PATH_MAX], sock[PATH_MAX + 32], err[1024];
	ASSERT_EQ(0, make_base());
	victim_files(victim, sizeof victim);
	if (!strcmp(how, "0777")) {
		pid_t v = fork();
		if (v == 0) {
			become(VICTIM);
			char d[PATH_MAX];
			snprintf(d, sizeof d, "%s/kipc-%d", base, VICTIM);
			_exit(mkdir(d, 0777) == 0 && chmod(d, 0777) == 0 ? 0 : 1);
		}
		ASSERT_EQ(0, kt_wait(v));
	}
	ASSERT_EQ(0, attacker_plants(how, victim));
	snprintf(sock, sizeof sock, "%s/kipc-%d/kipcd.sock", base, VICTIM);
	EXPECT_EQ(1, run_kipcd_as(VICTIM, sock, err, sizeof err));
	EXPECT_NE(NULL, strstr(err, "refusing the socket directory")) TH_LOG("stderr: %s", err);
	EXPECT_NE(NULL, strstr(err, why)) TH_LOG("stderr: %s", err);
	int lines = 0;
	for (const char *c = err; *c; c++)
		lines += *c == '\n';
	EXPECT_EQ(1, lines) TH_LOG("not one line: %s", err);
	EXPECT_TRUE(victim_intact(victim));
	rm_rf(base);
}

TEST(dir_0777_with_symlinks_refused_nothing_deleted)
{
	NEED_ROOT();
	refused(_metadata, "0777", "mode 0777 lets others write in it");
}

TEST(dir_symlink_refused_nothing_deleted)
{
	NEED_ROOT();
	refused(_metadata, "symlink", "is a symlink");
}

TEST(dir_of_another_user_refused)
{
	NEED_ROOT();
	refused(_metadata, "other", "owned by uid 61001, not by uid 61002");
}

/*
 * A fake kernel at path: bound by root in a root-owned 0755 directory
 * (so the library's directory check passes), listening as listen_uid
 * (SO_PEERCRED names the listener). It answers one hello with a valid
 * layout and a memfd sealed with seals (-1: none). Returns its pid.
 */
static pid_t fake_kernel(const char *path, uid_t listen_uid, int seals, struct kt_barrier *up)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path)
		_exit(7);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || chmod(path, 0666) < 0)
		_exit(1);
	if (listen_uid)
		become(listen_uid);
	if (listen(l, 8) < 0)
		_exit(2);
	kt_post(up, 1);
	int c = accept(l, NULL, NULL);
	if (c < 0)
		_exit(3);
	struct kipc_attach_req req;
	if (recv(c, &req, sizeof req, 0) != sizeof req)
		_exit(0); /* the library hung up first: refused before the hello */
	struct kipc_attach_resp r = {
		.magic = KIPC_MAGIC, .version = KIPC_PROTO_VERSION,
		.sq_entries = 8, .cq_entries = 16, .map_size = 12288,
		.sq_off = 4096, .cq_off = 4096 + 8 * 64, .arena_off = 8192,
		.arena_size = 4096, .pid = 1, .max_inflight = 24,
	};
	int fds[2];
	fds[0] = memfd_create("fake", MFD_ALLOW_SEALING);
	fds[1] = eventfd(0, 0);
	if (fds[0] < 0 || fds[1] < 0 || ftruncate(fds[0], 12288) < 0)
		_exit(4);
	if (seals >= 0 && fcntl(fds[0], F_ADD_SEALS, seals) < 0)
		_exit(5);
	struct iovec iov = {&r, sizeof r};
	union {
		char b[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr a;
	} cb;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cb.b, .msg_controllen = sizeof cb.b};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, sizeof fds);
	if (sendmsg(c, &mh, MSG_NOSIGNAL) < 0)
		_exit(6);
	char b;
	struct pollfd p = {.fd = c, .events = POLLIN};
	poll(&p, 1, KT_BOUND_MS); /* until the client hangs up */
	(void)read(c, &b, 1);
	_exit(0);
}

/* Attach as the victim to path: errno, or 0. */
static int victim_attach(const char *path)
{
	pid_t pid = fork();
	if (pid == 0) {
		become(VICTIM);
		setenv("KIPC_SOCKET", path, 1);
		setenv("KIPC_AUTOSTART", "0", 1);
		_exit(kipc_attach() == 0 ? 0 : errno);
	}
	return kt_wait(pid);
}

static void fake(struct __test_metadata *_metadata, uid_t listen_uid, int seals, int want)
{
	char path[PATH_MAX + 32];
	ASSERT_EQ(0, make_base());
	ASSERT_EQ(0, chmod(base, 0755));
	snprintf(path, sizeof path, "%s/kipcd.sock", base);
	struct kt_barrier up;
	ASSERT_EQ(0, kt_barrier_init(&up));
	pid_t k = fake_kernel(path, listen_uid, seals, &up);
	ASSERT_LT(0, k);
	ASSERT_EQ(0, kt_wait_post(&up, 1));
	EXPECT_EQ(want, victim_attach(path));
	EXPECT_EQ(0, kt_wait(k));
	kt_barrier_destroy(&up);
	rm_rf(base);
}

TEST(server_of_another_uid_refused)
{
	NEED_ROOT();
	fake(_metadata, ATTACKER, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, EPERM);
}

TEST(unsealed_memfd_refused)
{
	NEED_ROOT();
	fake(_metadata, 0, -1, EPROTO);
}

TEST(memfd_without_seal_seal_refused)
{
	NEED_ROOT();
	fake(_metadata, 0, F_SEAL_SHRINK | F_SEAL_GROW, EPROTO);
}

TEST(sealed_fake_server_of_root_accepted)
{
	/* The same fake kernel, sealed as promised: the checks above are
	 * what refused it, not the fake itself. */
	NEED_ROOT();
	fake(_metadata, 0, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, 0);
}

KIPC_TEST_MAIN
