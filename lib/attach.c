/* SPDX-License-Identifier: MIT */
/*
 * libkipc: finding the kernel, starting it, the attach handshake, the
 * lifetime of attachments, fork.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;

struct kipc_lib __kipc_lib = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.next_ud = 1,
};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* kipc_attach_delegate(): the process we attach for (pidfd, its mem). */
static int delegate_fds[2] = {-1, -1};

/* ---------------------------------------------------------------- */
/* fork: the child starts detached with fresh state                   */

static void atfork_prepare(void)
{
	pthread_mutex_lock(&__kipc_lib.lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&__kipc_lib.lock);
}

/*
 * In the child only the forking thread exists and the parent's ring
 * belongs to the parent: drop every descriptor and mapping (close and
 * munmap are async-signal-safe), forget waiters and staged entries, so
 * the first call attaches this process as a task of its own. Reaped but
 * unseen async completions stay (they are the parent's history).
 */
static void atfork_child(void)
{
	struct kipc_att *a = __kipc_lib.atts;
	while (a) {
		struct kipc_att *next = a->next;
		if (a->conn >= 0)
			close(a->conn);
		if (a->doorbell >= 0)
			close(a->doorbell);
		if (a->notify >= 0)
			close(a->notify);
		if (a->map)
			munmap(a->map, a->map_size);
		free(a->bitmap);
		free(a->alloc_units);
		free(a);
		a = next;
	}
	for (int i = 0; i < 2; i++) {
		if (delegate_fds[i] >= 0)
			close(delegate_fds[i]);
		delegate_fds[i] = -1; /* the child is itself */
	}
	__kipc_lib.atts = NULL;
	__kipc_lib.cur = NULL;
	__kipc_lib.waiters = NULL;
	__kipc_lib.nstage = 0;
	/* atfork_prepare's lock, released by the thread that took it (the
	 * child's only thread), as POSIX has fork handlers do: no reinit */
	pthread_mutex_unlock(&__kipc_lib.lock);
}

static void register_atfork(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* ---------------------------------------------------------------- */
/* Where the kernel is                                                */

static int socket_path(char *buf, size_t size)
{
	const char *s = getenv("KIPC_SOCKET");
	const char *x = getenv("XDG_RUNTIME_DIR");
	int n;
	if (s && *s)
		n = snprintf(buf, size, "%s", s);
	else if (x && *x)
		n = snprintf(buf, size, "%s/kipc/kipcd.sock", x);
	else
		n = snprintf(buf, size, "/tmp/kipc-%u/kipcd.sock",
			     (unsigned)getuid());
	return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

int __kipc_socket_path(char *buf, size_t size)
{
	return socket_path(buf, size);
}

/* How long connecting and the attach handshake may take, together. */
#define KIPC_ATTACH_TIMEOUT_NS 10000000000ll /* 10 s */

/*
 * Open the socket's directory without following a symlink and check it
 * as kipcd does: a directory owned by us or root that nobody else may
 * write in (-EACCES), not a symlink (-ELOOP); the socket in it must be a
 * socket, not a symlink. *dfd is an O_PATH descriptor of it.
 */
static int open_socket_dir(const char *path, int *dfd, const char **name)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	*name = slash ? slash + 1 : path;
	int fd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR ? -ELOOP : -errno;
	struct stat st;
	int err = 0;
	if (fstat(fd, &st) < 0)
		err = -errno;
	else if ((st.st_uid != 0 && st.st_uid != getuid() && st.st_uid != geteuid()) ||
		 (st.st_mode & (S_IWGRP | S_IWOTH)))
		err = -EACCES;
	else if (fstatat(fd, *name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		err = -errno;
	else if (S_ISLNK(st.st_mode))
		err = -ELOOP;
	else if (!S_ISSOCK(st.st_mode))
		err = -ENOTSOCK;
	if (err) {
		close(fd);
		return err;
	}
	*dfd = fd;
	return 0;
}

/*
 * Connect by a path through the checked directory descriptor, within
 * the attach deadline (SO_SNDTIMEO bounds a connect that waits for room
 * in a full backlog, and the hello's send), then make sure the server
 * is our own user's kernel or root's (-EPERM otherwise).
 */
static int connect_kernel(const char *path, int64_t deadline)
{
	int dfd = -1;
	const char *name;
	int err = open_socket_dir(path, &dfd, &name);
	if (err)
		return err;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int n = snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/%s", dfd, name);
	if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
		close(dfd);
		return -ENAMETOOLONG;
	}
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		close(dfd);
		return err;
	}
	for (;;) {
		int64_t left = deadline - __kipc_now();
		if (left <= 0) {
			err = -ETIMEDOUT;
			break;
		}
		struct timeval tv = {.tv_sec = left / 1000000000,
				     .tv_usec = left % 1000000000 / 1000 + 1};
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
			err = 0;
			break;
		}
		if (errno == EINTR)
			continue;
		err = errno == EAGAIN ? -ETIMEDOUT : -errno;
		break;
	}
	close(dfd);
	if (!err) {
		struct ucred uc;
		socklen_t ul = sizeof uc;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0)
			err = -errno;
		else if (uc.uid != 0 && uc.uid != getuid() && uc.uid != geteuid())
			err = -EPERM; /* another user's kernel: never hand it our data */
	}
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

static bool executable(const char *p)
{
	return access(p, X_OK) == 0;
}

static bool autostart_enabled(void)
{
	const char *e = getenv("KIPC_AUTOSTART");
	if (e && *e)
		return strcmp(e, "0") != 0 && strcmp(e, "n") != 0 &&
		       strcmp(e, "no") != 0;
#ifdef CONFIG_LIB_AUTOSTART
	return true;
#else
	return false;
#endif
}

/*
 * Why autostart failed, in one line on stderr, once per process (a
 * program that retries must not flood its terminal); errno says it too.
 */
__attribute__((format(printf, 1, 2)))
static void autostart_note(const char *fmt, ...)
{
	static bool said;
	if (said)
		return;
	said = true;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "libkipc: %s\n", line);
}

/*
 * A kipcd that refused its boot line on this socket left PATH.refused
 * (kernel/daemon/main.cc): the user asked for limits, so a kernel with
 * other (default) limits must not take the socket silently. Only a
 * regular file of our own counts; its first line says why.
 */
static int refused_boot(const char *path)
{
	char rp[PATH_MAX];
	if (snprintf(rp, sizeof rp, "%s.refused", path) >= (int)sizeof rp)
		return 0;
	int fd = open(rp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	char why[256] = "";
	bool ours = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_uid == geteuid();
	if (ours) {
		ssize_t n = read(fd, why, sizeof why - 1);
		why[n > 0 ? n : 0] = '\0';
		why[strcspn(why, "\n")] = '\0';
	}
	close(fd);
	if (!ours)
		return 0;
	autostart_note("not starting a kernel on %s: the last kipcd there "
		       "refused to boot (%s); start one with a valid boot "
		       "line, or remove %s",
		       path, why, rp);
	return -ECONNREFUSED;
}

/*
 * Start kipcd without --foreground: its parent process exits once the
 * socket listens, so after waitpid() the socket accepts. If another
 * process starts one at the same time, one of the two kernels wins the
 * socket's lock and the other exits 1: either way a kernel answers.
 *
 * The kernel: $KIPC_KIPCD, else the one built or installed with this
 * library (__kipc_kipcd_path), else kipcd on $PATH. Returns -errno if it
 * could not be run, else its exit status (*what: what was run).
 */
static int start_kernel(const char *path, char *what, size_t size)
{
	const char *env = getenv("KIPC_KIPCD");
	const char *kipcd = "kipcd"; /* posix_spawnp searches $PATH */
	if (env && *env)
		kipcd = env;
	else if (executable(__kipc_kipcd_path))
		kipcd = __kipc_kipcd_path;
	snprintf(what, size, "%s", kipcd);

	char *argv[] = {(char *)kipcd, "--quiet", "--socket", (char *)path, NULL};
	posix_spawnattr_t attr;
	posix_spawn_file_actions_t fa;
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int err = posix_spawnp(&pid, kipcd, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (err) {
		if (kipcd == env)
			autostart_note("cannot start a kernel for %s: "
				       "$KIPC_KIPCD=%s: %s",
				       path, env, strerror(err));
		else
			autostart_note("cannot start a kernel for %s: tried "
				       "%s and kipcd on $PATH: %s",
				       path, __kipc_kipcd_path, strerror(err));
		return -err;
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int autostart(const char *path)
{
	int fd = refused_boot(path);
	if (fd < 0)
		return fd;
	char what[PATH_MAX];
	int status = start_kernel(path, what, sizeof what);
	if (status < 0)
		return status;
	/* The kernel listens once its parent exited; a racing starter
	 * (we got 1: the other kernel holds the lock) may still be on its
	 * way: retry for a while. */
	for (int i = 0; i < 200; i++) {
		fd = connect_kernel(path, __kipc_now() + KIPC_ATTACH_TIMEOUT_NS);
		if (fd >= 0 || (fd != -ENOENT && fd != -ECONNREFUSED))
			return fd;
		if (status != 0 && status != 1)
			break; /* it failed; no other starter to wait for */
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	if (status == 0)
		autostart_note("started %s, but no kernel answers on %s", what,
			       path);
	else
		autostart_note("started %s for %s: it exited with status %d "
			       "(its message, if any, is above)",
			       what, path, status);
	return -ECONNREFUSED;
}

/*
 * A rebuilt kernel is not the running one: say so once per process when
 * the kernel we attached to was built from other sources or another
 * configuration than this library (build ids: lib/kipcd_path.c).
 */
static void warn_other_build(const struct kipc_att *a, const char *path)
{
	static bool said;
	if (said || !a->kernel_build || a->kernel_build == __kipc_build_id)
		return;
	said = true;
	fprintf(stderr,
		"libkipc: warning: the kernel at %s is build %016llx, this "
		"library is build %016llx (kipcd --stop, then start the new one)\n",
		path, (unsigned long long)a->kernel_build,
		(unsigned long long)__kipc_build_id);
}

/* ---------------------------------------------------------------- */
/* Handshake                                                          */

static int handshake(int fd, int64_t deadline, struct kipc_attach_resp *resp,
		     int fds[3], int *nfds)
{
	struct kipc_attach_req req = {
		.magic = KIPC_MAGIC,
		.version_min = KIPC_PROTO_VERSION,
		.version_max = KIPC_PROTO_VERSION,
		.features = KIPC_FEAT_ALL,
	};
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} dbuf;
	struct iovec riov = {.iov_base = &req, .iov_len = sizeof req};
	struct msghdr rmh = {.msg_iov = &riov, .msg_iovlen = 1};
	/* KIPC_CREDIT=0: no send credits (to measure without them) */
	const char *credit = getenv("KIPC_CREDIT");
	if (credit && !strcmp(credit, "0"))
		req.features &= ~KIPC_FEAT_CREDIT;
	/* KIPC_PUSH=0: no receive push (the same) */
	const char *push = getenv("KIPC_PUSH");
	if (push && !strcmp(push, "0"))
		req.features &= ~KIPC_FEAT_PUSH;
	/* KIPC_CQ_LAP=0: poll cq_tail, not the lap tags (the same) */
	const char *lap = getenv("KIPC_CQ_LAP");
	if (lap && !strcmp(lap, "0"))
		req.features &= ~KIPC_FEAT_CQ_LAP;
	if (delegate_fds[0] >= 0) {
		req.features |= KIPC_FEAT_DELEGATE;
		rmh.msg_control = dbuf.buf;
		rmh.msg_controllen = sizeof dbuf.buf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&rmh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(2 * sizeof(int));
		memcpy(CMSG_DATA(c), delegate_fds, 2 * sizeof(int));
	}
	while (sendmsg(fd, &rmh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;

	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	for (;;) {
		int64_t left = (deadline - __kipc_now()) / 1000000;
		if (left <= 0)
			return -ETIMEDOUT;
		int r = poll(&pfd, 1, (int)left);
		if (r > 0)
			break;
		if (r < 0 && errno != EINTR)
			return -errno;
	}

	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = {.iov_base = resp, .iov_len = sizeof *resp};
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf.buf,
		.msg_controllen = sizeof cbuf.buf,
	};
	ssize_t n;
	while ((n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC)) < 0)
		if (errno != EINTR)
			return -errno;
	*nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
			if (*nfds < 3)
				fds[(*nfds)++] = f;
			else
				close(f);
		}
	}
	if (n == 0)
		return -ECONNRESET;
	if (n != sizeof *resp || resp->magic != KIPC_MAGIC)
		return -EPROTO;
	if (resp->error)
		return resp->error < 0 ? resp->error : -EPROTO;
	if (resp->version != KIPC_PROTO_VERSION || *nfds < 2)
		return -EPROTO;
	return 0;
}

static void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

static bool pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static int attach_to(int fd, int64_t deadline, struct kipc_att **out)
{
	struct kipc_attach_resp resp;
	int fds[3] = {-1, -1, -1}, nfds = 0;
	int err = handshake(fd, deadline, &resp, fds, &nfds);
	if (err) {
		close_fds(fds, nfds);
		return err;
	}
	/* Check the layout against what we map before trusting it. */
	uint64_t sq_end = resp.sq_off + (uint64_t)resp.sq_entries * sizeof(struct kipc_sqe);
	uint64_t cq_end = resp.cq_off + (uint64_t)resp.cq_entries * sizeof(struct kipc_cqe);
	if (!pow2(resp.sq_entries) || !pow2(resp.cq_entries) ||
	    resp.sq_off < sizeof(struct kipc_ring_ctl) ||
	    sq_end > resp.map_size || cq_end > resp.map_size ||
	    resp.arena_off + resp.arena_size > resp.map_size ||
	    resp.arena_size / KIPC_ARENA_UNIT > UINT32_MAX) {
		close_fds(fds, nfds);
		return -EPROTO;
	}
	/* The region must be a memfd sealed as transport.md promises, of
	 * the size announced: a file the kernel (or whoever sent it) could
	 * shrink would kill us with SIGBUS. */
	const int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	int have = fcntl(fds[0], F_GET_SEALS);
	struct stat st;
	if (have < 0 || (have & seals) != seals || fstat(fds[0], &st) < 0 ||
	    (uint64_t)st.st_size != resp.map_size) {
		close_fds(fds, nfds);
		return -EPROTO;
	}
	void *map = mmap(NULL, resp.map_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, fds[0], 0);
	int merr = errno;
	close(fds[0]);
	if (map == MAP_FAILED) {
		close_fds(fds + 1, nfds - 1);
		return -merr;
	}
	struct kipc_att *a = calloc(1, sizeof *a);
	if (!a) {
		munmap(map, resp.map_size);
		close_fds(fds + 1, nfds - 1);
		return -ENOMEM;
	}
	a->refs = 1;
	a->conn = fd;
	a->doorbell = fds[1];
	a->notify = nfds > 2 ? fds[2] : -1;
	a->map = map;
	a->map_size = resp.map_size;
	a->ctl = map;
	a->sq = (struct kipc_sqe *)((char *)map + resp.sq_off);
	a->cq = (struct kipc_cqe *)((char *)map + resp.cq_off);
	a->arena = (uint8_t *)map + resp.arena_off;
	a->arena_size = resp.arena_size;
	a->sq_entries = resp.sq_entries;
	a->cq_entries = resp.cq_entries;
	a->max_inflight = resp.max_inflight;
	a->pid = resp.pid;
	a->kernel_build = resp.build_id;
	a->cq_lap = resp.features & KIPC_FEAT_CQ_LAP;
	if ((resp.features & KIPC_FEAT_CREDIT) && resp.arena_off >= KIPC_CREDIT_OFF + sizeof(struct kipc_credit))
		a->credit = (struct kipc_credit *)((char *)map + KIPC_CREDIT_OFF);
	if ((resp.features & KIPC_FEAT_PUSH) && resp.sq_off >= KIPC_RING_CTL_SIZE) {
		a->push = (struct kipc_push *)((char *)map + KIPC_PUSH_OFF);
		a->push_slots = (struct kipc_push_slot *)((char *)map + KIPC_PUSH_SLOT_OFF);
	}
	/* The kernel may already have posted (nothing yet): start at its view. */
	a->sq_tail = __atomic_load_n(&a->ctl->sq_tail, __ATOMIC_ACQUIRE);
	a->plain_tail = a->sq_tail;
	a->cq_head = __atomic_load_n(&a->ctl->cq_head, __ATOMIC_ACQUIRE);
	if (__kipc_arena_init(a)) {
		munmap(map, resp.map_size);
		close_fds(fds + 1, nfds - 1);
		free(a);
		return -ENOMEM;
	}
	*out = a;
	return 0;
}

int __kipc_ensure_attached(void)
{
	pthread_once(&atfork_once, register_atfork);
	if (__kipc_lib.cur && !__kipc_lib.cur->dead)
		return 0;
	if (__kipc_lib.cur) {
		/* The kernel went away: this call starts over, a new task. */
		__kipc_att_put(__kipc_lib.cur);
		__kipc_lib.cur = NULL;
	}
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int err = socket_path(path, sizeof path);
	if (err)
		return err;
	int64_t deadline = __kipc_now() + KIPC_ATTACH_TIMEOUT_NS;
	int fd = connect_kernel(path, deadline);
	if (fd == -ENOENT || fd == -ECONNREFUSED) { /* no kernel there */
		fd = autostart_enabled() ? autostart(path) : -ECONNREFUSED;
		deadline = __kipc_now() + KIPC_ATTACH_TIMEOUT_NS; /* for the hello */
	}
	if (fd < 0)
		return fd;
	struct kipc_att *a = NULL;
	err = attach_to(fd, deadline, &a);
	if (err) {
		close(fd);
		return err;
	}
	a->delegated = delegate_fds[0] >= 0;
	a->next = __kipc_lib.atts;
	__kipc_lib.atts = a;
	__kipc_lib.cur = a;
	__kipc_lib.nstage = 0;
	warn_other_build(a, path);
	return 0;
}

bool __kipc_conn_hung_up(struct kipc_att *a)
{
	struct pollfd pfd = {.fd = a->conn, .events = POLLRDHUP};
	return poll(&pfd, 1, 0) > 0 &&
	       (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* The attachment is unusable: fail every waiter with ECONNRESET. */
void __kipc_att_mark_dead(struct kipc_att *a)
{
	a->dead = true;
}

void __kipc_att_put(struct kipc_att *a)
{
	if (--a->refs)
		return;
	struct kipc_att **pp = &__kipc_lib.atts;
	while (*pp && *pp != a)
		pp = &(*pp)->next;
	if (*pp)
		*pp = a->next;
	close(a->conn);
	close(a->doorbell);
	if (a->notify >= 0)
		close(a->notify);
	munmap(a->map, a->map_size);
	__kipc_arena_fini(a);
	free(a);
}

/* ---------------------------------------------------------------- */
/* Public                                                             */

int kipc_attach(void)
{
	pthread_mutex_lock(&__kipc_lib.lock);
	int err = __kipc_ensure_attached();
	pthread_mutex_unlock(&__kipc_lib.lock);
	return (int)__kipc_ret(err);
}

int kipc_attach_delegate(int pidfd, int memfd)
{
	pthread_mutex_lock(&__kipc_lib.lock);
	int err = 0;
	if (__kipc_lib.cur && !__kipc_lib.cur->dead)
		err = -EEXIST;
	for (int i = 0; !err && i < 2; i++) {
		int fd = fcntl(i ? memfd : pidfd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			err = -errno;
		else
			delegate_fds[i] = fd;
	}
	if (!err)
		err = __kipc_ensure_attached();
	if (err && err != -EEXIST) {
		for (int i = 0; i < 2; i++) {
			if (delegate_fds[i] >= 0)
				close(delegate_fds[i]);
			delegate_fds[i] = -1;
		}
	}
	pthread_mutex_unlock(&__kipc_lib.lock);
	return (int)__kipc_ret(err);
}

/*
 * Closing the connection is the detach: the kernel destroys the task
 * and flags the region DEAD, which fails our other threads' blocked
 * calls with ECONNRESET.
 */
int kipc_detach(void)
{
	pthread_mutex_lock(&__kipc_lib.lock);
	struct kipc_att *a = __kipc_lib.cur;
	if (a) {
		a->dead = true;
		shutdown(a->conn, SHUT_RDWR);
		__kipc_lib.cur = NULL;
		__kipc_att_put(a);
	}
	pthread_mutex_unlock(&__kipc_lib.lock);
	return 0;
}

pid_t kipc_task_pid(void)
{
	pthread_mutex_lock(&__kipc_lib.lock);
	pid_t pid = __kipc_lib.cur && !__kipc_lib.cur->dead ? __kipc_lib.cur->pid : -1;
	pthread_mutex_unlock(&__kipc_lib.lock);
	return pid < 0 ? (pid_t)__kipc_ret(-ENOTCONN) : pid;
}
