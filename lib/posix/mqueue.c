/* SPDX-License-Identifier: MIT */
/*
 * libkipc-posix.so: the POSIX message queue API of libc (mq_open(3) and
 * friends), preloaded (LD_PRELOAD, `kipc-run`) so that unmodified
 * programs use kipc's queues. The kernel's side is kernel/ipc/mqueue.cc;
 * Documentation/posix.md has the design and every known difference.
 *
 * Descriptors. A queue descriptor is a real file descriptor: a FIFO that
 * kipcd makes for each open (<socket>.mq/o<handle>.<mode>, unlinked once
 * this process holds it), opened O_RDWR; the kernel's handle of the open
 * (what kipc_mq_open returned) goes with every call, with the descriptor
 * itself, so a task that did not open it (a fork child) may use it once
 * the kernel has seen that its process holds the descriptor. kipcd keeps
 * its poll state as Linux's mqueue file polls (POLLIN while a message is
 * queued, POLLOUT while the queue is not full), and counts its openers to
 * know when the open ends. So, as on Linux:
 *  - select/poll/epoll work on it;
 *  - O_NONBLOCK (mq_setattr, or fcntl) is the open file description's
 *    status flag, shared by dup() and fork();
 *  - the access mode is the path's suffix (.r, .w, .rw, .x), which
 *    readlink(/proc/self/fd/N) tells for any descriptor, dup'd or passed
 *    (the kernel keeps the mode granted at open and checks it too);
 *  - close, exit and exec (the FIFO is O_CLOEXEC, as mq_open's is) end
 *    the descriptor; fork shares it.
 * A small lock-free table caches fd -> (queue id, mode, inode, O_NONBLOCK).
 * mq_send and mq_receive trust it and make no system call of their own:
 * every call of this process that frees a descriptor number goes through
 * a wrapper here (close, dup2, dup3, close_range, closefrom, mq_close,
 * and syscall() of those), which clears its entry, so a reused number is
 * never mistaken for a queue; O_NONBLOCK is the open file description's,
 * which any process sharing it may change (fcntl(F_SETFL), ioctl(FIONBIO),
 * mq_setattr, all wrapped here): the setter tells the kernel
 * (kipc_mq_setfl), which then fails a send or receive made with an older
 * reading ESTALE, and the call reads the flags again. A kernel EBADF for
 * a cached entry (the open ended: its descriptor was closed some way no
 * wrapper saw) looks the descriptor up afresh once. Documentation/posix.md
 * ("Descriptors", "Known differences") has what is not seen. The other
 * calls check the inode with fstat().
 *
 * Order of checks: as Linux's syscalls (the timeout first, then the
 * priority, then the descriptor, then the queue: ipc/mqueue.c).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <kipc/libkipc.h>
#include <kipc/mqueue.h>

#include "posix.h"

#define EXPORT __attribute__((visibility("default")))

/* ---------------------------------------------------------------- */
/* Descriptor table: two levels, pages allocated on first use, read    */
/* without locks (an entry is published by its id, release/acquire).   */

#define PAGE_BITS 10
#define PAGE_SIZE_ENTRIES (1u << PAGE_BITS)
#define NPAGES 1024u /* fds up to 1M */

static struct mqd_ent *pages[NPAGES];
static int any_mqd; /* set once a queue descriptor exists in this process */

static const char *const acc_suffix[] = {".r", ".w", ".rw", ".x"};

static struct mqd_ent *ent_of(int fd, bool create)
{
	if (fd < 0 || (unsigned)fd >= NPAGES * PAGE_SIZE_ENTRIES)
		return NULL;
	struct mqd_ent **pp = &pages[(unsigned)fd >> PAGE_BITS];
	struct mqd_ent *p = __atomic_load_n(pp, __ATOMIC_ACQUIRE);
	if (!p) {
		if (!create)
			return NULL;
		struct mqd_ent *n = calloc(PAGE_SIZE_ENTRIES, sizeof *n);
		if (!n)
			return NULL;
		if (!__atomic_compare_exchange_n(pp, &p, n, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			free(n); /* another thread won: p is its page */
		else
			p = n;
	}
	return &p[(unsigned)fd & (PAGE_SIZE_ENTRIES - 1)];
}

static void ent_set(int fd, int64_t id, int acc, uint32_t msgsize, const struct stat *st,
		    uint64_t fl)
{
	struct mqd_ent *e = ent_of(fd, true);
	if (!e)
		return;
	__atomic_store_n(&e->id, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&e->acc, acc, __ATOMIC_RELAXED);
	__atomic_store_n(&e->msgsize, msgsize, __ATOMIC_RELAXED);
	__atomic_store_n(&e->fl, fl, __ATOMIC_RELAXED);
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	__atomic_store_n(&e->id, id, __ATOMIC_RELEASE);
	__atomic_store_n(&any_mqd, 1, __ATOMIC_RELEASE);
}

/*
 * The cached entry of fd, with no system call (a seqlock read: the id
 * is 0 while an entry is rewritten). 0, or -1: none.
 */
static int ent_get(int fd, struct mqd_ent *out)
{
	struct mqd_ent *e = ent_of(fd, false);
	if (!e)
		return -1;
	int64_t id = __atomic_load_n(&e->id, __ATOMIC_ACQUIRE);
	if (!id)
		return -1;
	out->acc = __atomic_load_n(&e->acc, __ATOMIC_RELAXED);
	out->msgsize = __atomic_load_n(&e->msgsize, __ATOMIC_RELAXED);
	out->fl = __atomic_load_n(&e->fl, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (__atomic_load_n(&e->id, __ATOMIC_RELAXED) != id)
		return -1;
	out->id = id;
	return 0;
}

/* A new O_NONBLOCK reading of fd's entry (if it is still open id's). */
static void ent_set_fl(int fd, int64_t id, uint64_t fl)
{
	struct mqd_ent *e = ent_of(fd, false);
	if (e && __atomic_load_n(&e->id, __ATOMIC_ACQUIRE) == id)
		__atomic_store_n(&e->fl, fl, __ATOMIC_RELAXED);
}

static void ent_clear(int fd)
{
	struct mqd_ent *e = ent_of(fd, false);
	if (e)
		__atomic_store_n(&e->id, 0, __ATOMIC_RELEASE);
}

/*
 * "<socket>.mq/o<handle><suffix>[ (deleted)]" -> handle and access mode;
 * -1 if not ours. The kernel checks the claim (a path can be made to
 * look like this; the descriptor cannot be made to be that open's).
 */
static int parse_path(const char *path, int64_t *id, int *acc)
{
	char dir[PATH_MAX];
	if (kipc_mq_path(0, "", dir, sizeof dir) < 0)
		return -1;
	size_t dlen = strlen(dir) - 2; /* strip "o0" */
	if (strncmp(path, dir, dlen) != 0 || path[dlen] != 'o')
		return -1;
	char *end;
	long long v = strtoll(path + dlen + 1, &end, 10);
	if (v <= 0)
		return -1;
	static const char deleted[] = " (deleted)";
	size_t elen = strlen(end);
	if (elen >= sizeof deleted - 1 &&
	    strcmp(end + elen - (sizeof deleted - 1), deleted) == 0)
		elen -= sizeof deleted - 1;
	for (int a = 0; a < 4; a++) {
		if (strlen(acc_suffix[a]) == elen && strncmp(end, acc_suffix[a], elen) == 0) {
			*id = v;
			*acc = a;
			return 0;
		}
	}
	return -1;
}

/*
 * The queue behind descriptor fd, or -EBADF (not open, or not a queue
 * descriptor). *e is a copy of its entry.
 */
int __kipc_mqd_lookup(int fd, struct mqd_ent *out)
{
	const struct mqd_space *sp = __kipc_mqd_space;
	struct stat st;
	if (sp->stat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))
		return -EBADF;
	struct mqd_ent *e = ent_of(fd, false);
	if (e) {
		int64_t id = __atomic_load_n(&e->id, __ATOMIC_ACQUIRE);
		if (id && e->dev == st.st_dev && e->ino == st.st_ino) {
			*out = *e;
			out->id = id;
			return 0;
		}
	}
	/* Not seen yet (dup'd by fcntl, passed over a socket ...): ask the path. */
	char path[PATH_MAX];
	ssize_t n = sp->link(fd, path, sizeof path - 1);
	if (n <= 0)
		return -EBADF;
	path[n] = '\0';
	int64_t id;
	int acc;
	if (parse_path(path, &id, &acc) < 0)
		return -EBADF;
	struct kipc_mq_attr at;
	if (kipc_mq_getattr(id, fd, &at) < 0)
		return -EBADF;
	ent_set(fd, id, acc, (uint32_t)at.msgsize, &st, 0);
	out->id = id;
	out->acc = acc;
	out->msgsize = (uint32_t)at.msgsize;
	out->dev = st.st_dev;
	out->ino = st.st_ino;
	out->fl = 0;
	return 0;
}

static void flags_changed(int fd, int64_t id);

static int fail(int err)
{
	errno = err;
	return -1;
}

static ssize_t own_link(int fd, char *buf, size_t size)
{
	char link[64];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	return readlink(link, buf, size);
}

typedef int (*fcntl_fn)(int, int, ...);
static int real_fcntl(int fd, int cmd, void *arg)
{
	static fcntl_fn fn;
	fcntl_fn f = __atomic_load_n(&fn, __ATOMIC_RELAXED);
	if (!f) {
		f = (fcntl_fn)dlsym(RTLD_NEXT, "fcntl64");
		if (!f)
			f = (fcntl_fn)dlsym(RTLD_NEXT, "fcntl");
		__atomic_store_n(&fn, f, __ATOMIC_RELAXED);
	}
	return f(fd, cmd, arg);
}

static int own_getfl(int fd)
{
	return real_fcntl(fd, F_GETFL, NULL);
}

static int own_setfl(int fd, int fl)
{
	return real_fcntl(fd, F_SETFL, (void *)(intptr_t)fl);
}

static int own_install(int fd)
{
	return fd;
}

static int own_dup(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

static const struct mqd_space own_space = {
	.stat = fstat,
	.link = own_link,
	.getfl = own_getfl,
	.setfl = own_setfl,
	.install = own_install,
	.dup = own_dup,
	.own = 1,
};
const struct mqd_space *__kipc_mqd_space = &own_space;

/* ---------------------------------------------------------------- */
/* The real close(2) and friends                                      */

typedef int (*close_fn)(int);
typedef int (*dup2_fn)(int, int);
typedef int (*dup3_fn)(int, int, int);

static void *real(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

int __kipc_real_close(int fd)
{
	static close_fn fn;
	close_fn f = __atomic_load_n(&fn, __ATOMIC_RELAXED);
	if (!f) {
		f = (close_fn)real("close");
		__atomic_store_n(&fn, f, __ATOMIC_RELAXED);
	}
	return f(fd);
}

/* ---------------------------------------------------------------- */
/* mq_open, mq_close, mq_unlink                                        */

static mode_t current_umask(void)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&lock);
	mode_t m = umask(0);
	umask(m);
	pthread_mutex_unlock(&lock);
	return m;
}

EXPORT mqd_t mq_open(const char *name, int oflag, ...)
{
	mode_t mode = 0;
	struct mq_attr *attr = NULL;
	struct mq_attr attr_copy;
	if (oflag & O_CREAT) {
		va_list ap;
		va_start(ap, oflag);
		mode = va_arg(ap, mode_t);
		attr = va_arg(ap, struct mq_attr *);
		va_end(ap);
	}
	if (name[0] != '/') /* glibc checks this before the syscall */
		return fail(EINVAL);
	/* The syscall copies the attributes in first (EFAULT). */
	if (attr) {
		if (__kipc_copy_from_user(&attr_copy, attr, sizeof attr_copy))
			return fail(EFAULT);
		attr = &attr_copy;
	}

	/* Linux takes the descriptor slot first: EMFILE before anything
	 * (a supervisor cannot reserve one in its program: posix.md). */
	const struct mqd_space *sp = __kipc_mqd_space;
	int reserve = -1;
	if (sp->own && (reserve = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		return -1;

	struct kipc_mq_open o;
	memset(&o, 0, sizeof o);
	int acc = oflag & O_ACCMODE;
	o.oflag = (uint32_t)acc | (oflag & O_CREAT ? KIPC_O_CREAT : 0) |
		  (oflag & O_EXCL ? KIPC_O_EXCL : 0);
	o.mode = (uint32_t)(mode & ~current_umask() & 0777);
	if (attr) {
		o.flags |= KIPC_MQ_ATTR;
		o.maxmsg = attr->mq_maxmsg;
		o.msgsize = attr->mq_msgsize;
	}
	/* RLIMIT_MSGQUEUE: the kernel reads the process's own. */
	int64_t id = kipc_mq_open(name, &o);
	if (id < 0) {
		int err = errno;
		if (reserve >= 0)
			__kipc_real_close(reserve);
		return fail(err);
	}
	/*
	 * The open's FIFO, then its first use with it (the kernel sees this
	 * process hold it, and kipcd unlinks its name). Any failure undoes
	 * the open: a failed mq_open leaves no queue and no file behind.
	 */
	char path[PATH_MAX];
	int fd = -1, err = 0;
	struct stat st;
	struct kipc_mq_attr at;
	if (kipc_mq_path(id, acc_suffix[acc], path, sizeof path) < 0)
		err = errno;
	if (reserve >= 0)
		__kipc_real_close(reserve);
	if (!err && (fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (oflag & O_NONBLOCK))) < 0)
		err = errno;
	if (!err && (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)))
		err = EIO;
	bool ours = true; /* fd is this process's descriptor */
	if (!err) {
		int q = sp->install(fd);
		if (q < 0) {
			err = errno;
		} else if (q != fd) {
			fd = q; /* the served program's now (posix.md) */
			ours = false;
		}
	}
	if (!err && kipc_mq_getattr(id, fd, &at) < 0)
		err = errno;
	if (err) {
		if (fd >= 0 && ours)
			__kipc_real_close(fd);
		kipc_mq_close(id, KIPC_MQ_CLOSE_ABORT);
		return fail(err);
	}
	/* The FIFO's open file description is new: its O_NONBLOCK is ours. */
	ent_set(fd, id, acc, (uint32_t)at.msgsize, &st,
		at.flgen << 1 | (oflag & O_NONBLOCK ? 1 : 0));
	return fd;
}

/*
 * This process's pid since its start or its last fork. A vfork(2) child
 * (no atfork handlers run) shares our memory until it execs or exits but
 * has a descriptor table of its own: the table here, and the kipc task
 * libkipc calls for, stay its parent's. So its close, dup2, dup3,
 * close_range and closefrom are only the real calls: its closing a
 * number the parent still holds must neither clear the parent's entry
 * nor tell the kernel that the parent closed it (which would remove the
 * parent's notification registration: Linux keeps it, the closer's tgid
 * not being the owner's, mqueue_flush_file()).
 */
static pid_t self_pid;

static void self_forked(void)
{
	self_pid = getpid();
}

__attribute__((constructor)) static void self_init(void)
{
	self_pid = getpid();
	pthread_atfork(NULL, NULL, self_forked);
}

/* Are the table and the task a vfork parent's (we are its child)? Asked
 * only once a queue descriptor exists (getpid() is a system call). */
static bool parents_table(void)
{
	return __atomic_load_n(&any_mqd, __ATOMIC_ACQUIRE) && __kipc_mqd_space->own &&
	       getpid() != self_pid;
}

/*
 * A descriptor of open id went away: the kernel's flush, after the real
 * close, so that the kernel sees at once whether any descriptor of the
 * open is left (an unlinked queue's charge comes back before our next
 * call). If kipcd saw the last descriptor go first, the open has ended
 * already, with the same flush: EBADF here, ignored.
 */
static void flushed(int64_t id)
{
	int saved = errno;
	kipc_mq_close(id, 0);
	errno = saved;
}

/* The real close, and fd's entry cleared once its number is free. */
static int close_clear(int fd)
{
	ent_clear(fd);
	int r = __kipc_real_close(fd);
	ent_clear(fd);
	return r;
}

/* glibc's mq_close() is close(2): any descriptor will do. */
EXPORT int mq_close(mqd_t mqdes)
{
	struct mqd_ent e;
	if (parents_table())
		return __kipc_real_close(mqdes);
	if (__kipc_mqd_lookup(mqdes, &e) < 0)
		return close_clear(mqdes);
	if (close_clear(mqdes) < 0)
		return -1;
	flushed(e.id);
	return 0;
}

EXPORT int mq_unlink(const char *name)
{
	if (name[0] != '/')
		return fail(EINVAL);
	if (kipc_mq_unlink(name) < 0)
		return errno == EPERM ? fail(EACCES) : -1;
	return 0;
}

/* close(2) of a queue descriptor is mq_close(). */
EXPORT int close(int fd)
{
	struct mqd_ent e;
	if (parents_table())
		return __kipc_real_close(fd);
	ent_clear(fd); /* whatever it was: the number is free after this */
	if (!__atomic_load_n(&any_mqd, __ATOMIC_ACQUIRE) || !__kipc_mqd_space->own ||
	    __kipc_mqd_lookup(fd, &e) < 0)
		return close_clear(fd);
	if (close_clear(fd) < 0)
		return -1;
	flushed(e.id);
	return 0;
}

/* dup2/dup3 onto a queue descriptor close it first. */
static int dup_common(int oldfd, int newfd, int flags, bool three)
{
	struct mqd_ent e;
	bool theirs = parents_table();
	bool was = !theirs && __atomic_load_n(&any_mqd, __ATOMIC_ACQUIRE) &&
		   __kipc_mqd_space->own && oldfd != newfd && __kipc_mqd_lookup(newfd, &e) == 0;
	int r;
	if (three) {
		static dup3_fn fn;
		if (!fn)
			fn = (dup3_fn)real("dup3");
		r = fn(oldfd, newfd, flags);
	} else {
		static dup2_fn fn;
		if (!fn)
			fn = (dup2_fn)real("dup2");
		r = fn(oldfd, newfd);
	}
	if (r >= 0 && oldfd != newfd && !theirs)
		ent_clear(newfd); /* another file now, a queue or not */
	if (r >= 0 && was)
		flushed(e.id);
	return r;
}

EXPORT int dup2(int oldfd, int newfd)
{
	return dup_common(oldfd, newfd, 0, false);
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	return dup_common(oldfd, newfd, flags, true);
}

/*
 * close_range(2) and closefrom(3): the entries of the closed numbers go,
 * and the kernel hears of each queue descriptor this process had looked
 * up among them (flushed(); one it never used is released when kipcd
 * sees its FIFO closed). CLOSE_RANGE_CLOEXEC closes nothing.
 */
typedef long (*syscall_fn)(long, ...);
static long real_syscall(long nr, long a, long b, long c, long d, long e, long f)
{
	static syscall_fn fn;
	syscall_fn s = __atomic_load_n(&fn, __ATOMIC_RELAXED);
	if (!s) {
		s = (syscall_fn)real("syscall");
		__atomic_store_n(&fn, s, __ATOMIC_RELAXED);
	}
	return s(nr, a, b, c, d, e, f);
}

static void closed_range(unsigned first, unsigned last)
{
	unsigned max = NPAGES * PAGE_SIZE_ENTRIES - 1;
	if (first > max)
		return;
	if (last > max)
		last = max;
	int saved = errno;
	for (unsigned fd = first;; fd++) {
		if (!__atomic_load_n(&pages[fd >> PAGE_BITS], __ATOMIC_ACQUIRE)) {
			fd |= PAGE_SIZE_ENTRIES - 1; /* a page never used: skip it */
		} else {
			struct mqd_ent e;
			if (ent_get((int)fd, &e) == 0) {
				ent_clear((int)fd);
				flushed(e.id);
			}
		}
		if (fd >= last)
			break;
	}
	errno = saved;
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	long r = real_syscall(SYS_close_range, first, last, flags, 0, 0, 0);
	if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC) && first <= last && !parents_table())
		closed_range(first, last);
	return (int)r;
}

EXPORT void closefrom(int lowfd)
{
	typedef void (*closefrom_fn)(int);
	static closefrom_fn fn;
	if (!fn)
		fn = (closefrom_fn)real("closefrom");
	fn(lowfd);
	if (lowfd >= 0 && !parents_table())
		closed_range((unsigned)lowfd, ~0u);
}

/* ---------------------------------------------------------------- */
/* O_NONBLOCK: the open file description's status flag                */

/*
 * A descriptor of open id (fd) had its status flags changed: the kernel
 * moves the open's flags generation on, so every process sharing the
 * open file description reads O_NONBLOCK again before its next send or
 * receive (kipc_mq_setfl). Its failure (the kernel went away) leaves
 * nothing to keep consistent.
 */
static void flags_changed(int fd, int64_t id)
{
	int saved = errno;
	ent_set_fl(fd, id, 0);
	kipc_mq_setfl(id, fd);
	errno = saved;
}

/* fd's status flags were just changed (F_SETFL, FIONBIO): is it a queue's? */
static void setfl_done(int fd)
{
	struct mqd_ent e;
	int saved = errno;
	if (__kipc_mqd_space->own && __kipc_mqd_lookup(fd, &e) == 0)
		flags_changed(fd, e.id);
	errno = saved;
}

static int do_fcntl(int fd, int cmd, void *arg)
{
	int r = real_fcntl(fd, cmd, arg);
	if (r >= 0 && cmd == F_SETFL)
		setfl_done(fd);
	return r;
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(fd, cmd, arg);
}

/* glibc's large-file name: the same call */
EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

static int do_ioctl(int fd, unsigned long req, void *arg)
{
	typedef int (*ioctl_fn)(int, unsigned long, ...);
	static ioctl_fn fn;
	ioctl_fn f = __atomic_load_n(&fn, __ATOMIC_RELAXED);
	if (!f) {
		f = (ioctl_fn)real("ioctl");
		__atomic_store_n(&fn, f, __ATOMIC_RELAXED);
	}
	int r = f(fd, req, arg);
	if (r >= 0 && req == FIONBIO)
		setfl_done(fd);
	return r;
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return do_ioctl(fd, req, arg);
}

/*
 * syscall(3) of the calls above goes through them too (gccgo's runtime
 * closes its descriptors this way); everything else is passed on.
 */
EXPORT long syscall(long nr, ...)
{
	va_list ap;
	va_start(ap, nr);
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	switch (nr) {
	case SYS_close:
		return close((int)a[0]);
	case SYS_dup2:
		return dup2((int)a[0], (int)a[1]);
	case SYS_dup3:
		return dup3((int)a[0], (int)a[1], (int)a[2]);
	case SYS_close_range:
		return close_range((unsigned)a[0], (unsigned)a[1], (int)a[2]);
	case SYS_fcntl:
		return do_fcntl((int)a[0], (int)a[1], (void *)a[2]);
	case SYS_ioctl:
		return do_ioctl((int)a[0], (unsigned long)a[1], (void *)a[2]);
	}
	return real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* ---------------------------------------------------------------- */
/* Sending and receiving                                               */

/* Linux's prepare_timeout(): EFAULT, then EINVAL unless 0 <= tv_nsec < 1e9
 * and tv_sec >= 0. */
static int abs_timeout(const struct timespec *u_ts, unsigned *flags, int64_t *ns)
{
	struct timespec t, *ts = &t;
	if (!u_ts)
		return 0;
	if (__kipc_copy_from_user(&t, u_ts, sizeof t))
		return -EFAULT;
	if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
		return -EINVAL;
	if (ts->tv_sec > INT64_MAX / 1000000000 - 1)
		return 0; /* beyond 2262: never */
	*ns = kipc_timespec_ns(ts);
	*flags |= KIPC_F_TIMEOUT | KIPC_F_REALTIME;
	return 0;
}

/*
 * The queue behind fd for a send or receive: its cached entry (*cached:
 * no system call; e->fl is its O_NONBLOCK reading, 0 if none yet), or
 * the checked lookup (fstat, readlink) when there is none, when the
 * table is another process's (kipc-run's supervisor), or with strict.
 */
static int xfer_lookup(int fd, bool strict, struct mqd_ent *e, bool *cached)
{
	/* KIPC_MQ_FDCHECK=1: every call checks, for a program that frees
	 * descriptors where no wrapper sees it (posix.md). */
	static int check = -1;
	int c = __atomic_load_n(&check, __ATOMIC_RELAXED);
	if (c < 0) {
		const char *v = getenv("KIPC_MQ_FDCHECK");
		c = v && strcmp(v, "1") == 0;
		__atomic_store_n(&check, c, __ATOMIC_RELAXED);
	}
	*cached = !strict && !c && __kipc_mqd_space->own && ent_get(fd, e) == 0;
	return *cached ? 0 : __kipc_mqd_lookup(fd, e);
}

/*
 * *flags |= KIPC_F_NONBLOCK if fd's open file description has O_NONBLOCK,
 * and *gen is the flags generation that reading holds at (0: read now,
 * no check). A cached entry without a reading gets one: the generation
 * first, then the flags, so a change between the two fails ESTALE.
 */
static int nonblock(int fd, struct mqd_ent *e, bool cached, unsigned *flags, uint64_t *gen)
{
	const struct mqd_space *sp = __kipc_mqd_space;
	*gen = 0;
	if (cached && !e->fl) {
		struct kipc_mq_attr at;
		if (kipc_mq_getattr(e->id, fd, &at) < 0)
			return -errno;
		int fl = sp->getfl(fd);
		if (fl < 0)
			return -EBADF;
		e->fl = at.flgen << 1 | (fl & O_NONBLOCK ? 1 : 0);
		ent_set_fl(fd, e->id, e->fl);
	}
	if (cached) {
		*gen = e->fl >> 1;
		if (e->fl & 1)
			*flags |= KIPC_F_NONBLOCK;
		return 0;
	}
	int fl = sp->getfl(fd);
	if (fl < 0)
		return -EBADF;
	if (fl & O_NONBLOCK)
		*flags |= KIPC_F_NONBLOCK;
	return 0;
}

/*
 * After a send or receive with a cached entry failed with err: go round
 * again? ESTALE: another descriptor of the open had its flags changed,
 * read them again. EBADF: the kernel has no such open for us, so the
 * cached number was freed behind the wrappers' back; look it up afresh.
 * Neither did anything.
 */
static bool xfer_again(int fd, int err, bool cached, struct mqd_ent *e, bool *strict)
{
	if (!cached)
		return false;
	if (err == ESTALE) {
		e->fl = 0;
		ent_set_fl(fd, e->id, 0);
		return true;
	}
	if (err == EBADF && !*strict) {
		ent_clear(fd);
		*strict = true;
		return true;
	}
	return false;
}

/* A send's or receive's state across its rounds. */
struct xfer {
	unsigned flags; /* KIPC_F_TIMEOUT, KIPC_F_REALTIME of the call */
	int64_t ns;
	struct mqd_ent e;
	bool strict, cached;
};

/* The deadline and the queue of a send or receive: 0 or -errno. With
 * bad (another argument is invalid): EINVAL after the deadline's checks
 * and before the descriptor's, as Linux checks them. */
static int xfer_start(int fd, const struct timespec *abs, bool bad, struct xfer *x)
{
	x->flags = 0;
	x->ns = 0;
	x->strict = false;
	int err = abs_timeout(abs, &x->flags, &x->ns);
	if (!err && bad)
		err = -EINVAL;
	return err ? err : xfer_lookup(fd, x->strict, &x->e, &x->cached);
}

/* A round failed with -err (err 0: with errno): 0 to go round again
 * (xfer_again, looking the queue up afresh when it turned strict), else
 * the error to fail with (-errno). */
static int xfer_retry(int fd, int err, struct xfer *x)
{
	if (!err)
		err = -errno;
	bool was_strict = x->strict;
	if (!xfer_again(fd, -err, x->cached, &x->e, &x->strict))
		return err;
	return x->strict != was_strict ? xfer_lookup(fd, x->strict, &x->e, &x->cached) : 0;
}

static int do_send(mqd_t mqdes, const char *msg_ptr, size_t msg_len,
		   unsigned int msg_prio, const struct timespec *abs)
{
	struct xfer x;
	int err;
	if ((err = xfer_start(mqdes, abs, msg_prio >= MQ_PRIO_MAX, &x)))
		return fail(-err);
	for (;;) {
		if (x.e.acc != KIPC_MQ_WRONLY && x.e.acc != KIPC_MQ_RDWR)
			return fail(EBADF);
		if (x.e.msgsize && msg_len > x.e.msgsize)
			return fail(EMSGSIZE);
		unsigned f = x.flags;
		uint64_t gen;
		if ((err = nonblock(mqdes, &x.e, x.cached, &f, &gen)) == 0 &&
		    kipc_mq_timedsend_gen(x.e.id, mqdes, msg_ptr, msg_len, msg_prio, f, x.ns,
					  gen) == 0)
			return 0;
		if ((err = xfer_retry(mqdes, err, &x)))
			return fail(-err);
	}
}

EXPORT int mq_timedsend(mqd_t mqdes, const char *msg_ptr, size_t msg_len,
			unsigned int msg_prio, const struct timespec *abs)
{
	return do_send(mqdes, msg_ptr, msg_len, msg_prio, abs);
}

EXPORT int mq_send(mqd_t mqdes, const char *msg_ptr, size_t msg_len,
		   unsigned int msg_prio)
{
	return do_send(mqdes, msg_ptr, msg_len, msg_prio, NULL);
}

static ssize_t do_receive(mqd_t mqdes, char *msg_ptr, size_t msg_len,
			  unsigned int *msg_prio, const struct timespec *abs)
{
	struct xfer x;
	int err;
	if ((err = xfer_start(mqdes, abs, false, &x)))
		return fail(-err);
	for (;;) {
		if (x.e.acc != KIPC_MQ_RDONLY && x.e.acc != KIPC_MQ_RDWR)
			return fail(EBADF);
		if (msg_len < x.e.msgsize)
			return fail(EMSGSIZE);
		unsigned f = x.flags;
		uint64_t gen;
		/* No message is longer than msgsize: the arena needs no more. */
		size_t len = x.e.msgsize && msg_len > x.e.msgsize ? x.e.msgsize : msg_len;
		/* A bad buffer or msg_prio: EFAULT after the message left the queue
		 * (libkipc's copies, as Linux's store_msg() and put_user()). */
		ssize_t r = -1;
		if ((err = nonblock(mqdes, &x.e, x.cached, &f, &gen)) == 0 &&
		    (r = kipc_mq_timedreceive_gen(x.e.id, mqdes, msg_ptr, len, msg_prio, f, x.ns,
						  gen)) >= 0)
			return r;
		if ((err = xfer_retry(mqdes, err, &x)))
			return fail(-err);
	}
}

EXPORT ssize_t mq_timedreceive(mqd_t mqdes, char *msg_ptr, size_t msg_len,
			       unsigned int *msg_prio, const struct timespec *abs)
{
	return do_receive(mqdes, msg_ptr, msg_len, msg_prio, abs);
}

EXPORT ssize_t mq_receive(mqd_t mqdes, char *msg_ptr, size_t msg_len,
			  unsigned int *msg_prio)
{
	return do_receive(mqdes, msg_ptr, msg_len, msg_prio, NULL);
}

/* ---------------------------------------------------------------- */
/* Attributes                                                          */

/* The attributes of mqdes into *attr (a local copy). 0 or -1. */
static int get_attr(mqd_t mqdes, struct mq_attr *attr)
{
	struct mqd_ent e;
	struct kipc_mq_attr at;
	int err;
	if ((err = __kipc_mqd_lookup(mqdes, &e)))
		return fail(-err);
	int fl = __kipc_mqd_space->getfl(mqdes);
	if (fl < 0)
		return fail(EBADF);
	if (kipc_mq_getattr(e.id, mqdes, &at) < 0)
		return -1;
	memset(attr, 0, sizeof *attr);
	attr->mq_flags = fl & O_NONBLOCK;
	attr->mq_maxmsg = at.maxmsg;
	attr->mq_msgsize = at.msgsize;
	attr->mq_curmsgs = at.curmsgs;
	return 0;
}

/*
 * Linux's mq_getsetattr(): newattr copied in (EFAULT), its flags checked
 * (EINVAL), the descriptor (EBADF), the new flags applied, then the old
 * attributes copied out (EFAULT, the new flags stay). glibc's mq_getattr
 * is mq_setattr(mqdes, NULL, attr): either may be NULL.
 */
int __kipc_mq_getsetattr(mqd_t mqdes, const struct mq_attr *newattr,
			 struct mq_attr *oldattr)
{
	struct mq_attr nw, old;
	if (newattr && __kipc_copy_from_user(&nw, newattr, sizeof nw))
		return fail(EFAULT);
	if (newattr && (nw.mq_flags & ~(long)O_NONBLOCK))
		return fail(EINVAL);
	if (get_attr(mqdes, &old) < 0)
		return -1;
	if (newattr) {
		const struct mqd_space *sp = __kipc_mqd_space;
		struct mqd_ent e;
		int fl = sp->getfl(mqdes);
		if (fl < 0 || __kipc_mqd_lookup(mqdes, &e) < 0)
			return fail(EBADF);
		fl = (fl & ~O_NONBLOCK) | (nw.mq_flags & O_NONBLOCK);
		if (sp->setfl(mqdes, fl) < 0)
			return -1;
		flags_changed(mqdes, e.id);
	}
	if (oldattr && __kipc_copy_to_user(oldattr, &old, sizeof old))
		return fail(EFAULT);
	return 0;
}

/* glibc declares the pointers nonnull; Linux lets them be NULL */
EXPORT int mq_setattr(mqd_t mqdes, const struct mq_attr *newattr,
		      struct mq_attr *oldattr)
{
	return __kipc_mq_getsetattr(mqdes, newattr, oldattr);
}

EXPORT int mq_getattr(mqd_t mqdes, struct mq_attr *attr)
{
	return __kipc_mq_getsetattr(mqdes, NULL, attr);
}

/* ---------------------------------------------------------------- */
/* Notification                                                        */

/* A raw SIGEV_THREAD's delivery: its socket and cookie. */
struct netlink_relay {
	int sock;
	unsigned char cookie[32];
};

struct notify_thread {
	int64_t id;
	uint64_t token;
	void (*fn)(union sigval);
	union sigval value;
	struct netlink_relay *relay; /* the raw form: no fn */
};

/*
 * Put the cookie into the netlink socket as Linux does, with Linux
 * itself: a queue of its own (made and unlinked at once), registered
 * with SIGEV_THREAD on the socket, then sent to (Linux sends the cookie
 * with NOTIFY_WOKENUP) or unregistered (NOTIFY_REMOVED). These real
 * calls go through the filters (__kipc_passthrough).
 */
static void relay(struct netlink_relay *r, bool fired)
{
	char name[64];
	snprintf(name, sizeof name, "kipc-relay-%d-%lx", (int)getpid(), (unsigned long)(uintptr_t)r);
	struct mq_attr at = {.mq_maxmsg = 1, .mq_msgsize = 1};
	long q = __kipc_passthrough(__NR_mq_open, (long)name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC,
				    0600, (long)&at, 0);
	if (q >= 0) {
		__kipc_passthrough(__NR_mq_unlink, (long)name, 0, 0, 0, 0);
		struct sigevent sev;
		memset(&sev, 0, sizeof sev);
		sev.sigev_notify = SIGEV_THREAD;
		sev.sigev_signo = r->sock;
		sev.sigev_value.sival_ptr = r->cookie;
		if (__kipc_passthrough(__NR_mq_notify, q, (long)&sev, 0, 0, 0) == 0) {
			if (fired)
				__kipc_passthrough(__NR_mq_timedsend, q, (long)"", 0, 0, 0);
			else
				__kipc_passthrough(__NR_mq_notify, q, 0, 0, 0, 0);
		}
		__kipc_real_close((int)q);
	}
	__kipc_real_close(r->sock);
	free(r);
}

/*
 * SIGEV_THREAD: wait in the kernel for the notification, then run the
 * function (glibc runs it in a new thread with sigev_notify_attributes;
 * so do we: this thread was created with them). A removed registration
 * ends the wait with ECANCELED and the function never runs.
 */
static void *notify_main(void *arg)
{
	struct notify_thread t = *(struct notify_thread *)arg;
	free(arg);
	/* Our traps must work in the function (SIGSYS, seccomp.c). */
	sigset_t sys;
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	int r = kipc_mq_notify_wait(t.id, t.token, NULL, NULL);
	if (t.relay)
		relay(t.relay, r == 0); /* fired, or removed (ECANCELED) */
	else if (r == 0)
		t.fn(t.value);
	return NULL;
}

static int notify(mqd_t mqdes, const struct sigevent *sev, struct netlink_relay *nl);

EXPORT int mq_notify(mqd_t mqdes, const struct sigevent *sev)
{
	return notify(mqdes, sev, NULL);
}

int __kipc_mq_notify_netlink(int mqdes, int sock, const unsigned char cookie[32])
{
	struct netlink_relay *r = malloc(sizeof *r);
	if (!r) {
		__kipc_real_close(sock);
		return fail(ENOMEM);
	}
	r->sock = sock;
	memcpy(r->cookie, cookie, sizeof r->cookie);
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD;
	int rc = notify(mqdes, &sev, r);
	if (rc < 0) {
		int err = errno;
		__kipc_real_close(sock);
		free(r);
		errno = err;
	}
	return rc;
}

static int notify(mqd_t mqdes, const struct sigevent *sev, struct netlink_relay *nl)
{
	struct kipc_mq_notify n;
	struct mqd_ent e;
	int err;
	memset(&n, 0, sizeof n);
	n.notify = KIPC_MQ_NOTIFY_REMOVE;
	if (sev) {
		if (sev->sigev_notify != SIGEV_NONE && sev->sigev_notify != SIGEV_SIGNAL &&
		    sev->sigev_notify != SIGEV_THREAD)
			return fail(EINVAL);
		if (sev->sigev_notify == SIGEV_SIGNAL &&
		    (sev->sigev_signo < 0 || sev->sigev_signo > 64))
			return fail(EINVAL);
		n.notify = sev->sigev_notify;
		n.signo = sev->sigev_notify == SIGEV_SIGNAL ? sev->sigev_signo : 0;
		n.value = (int64_t)(intptr_t)sev->sigev_value.sival_ptr;
	}
	if ((err = __kipc_mqd_lookup(mqdes, &e)))
		return fail(-err);
	int64_t token = kipc_mq_notify(e.id, mqdes, &n);
	if (token < 0)
		return -1;
	if (!sev || sev->sigev_notify != SIGEV_THREAD)
		return 0;

	struct notify_thread *t = malloc(sizeof *t);
	if (!t)
		goto nomem;
	t->id = e.id;
	t->token = (uint64_t)token;
	t->fn = sev->sigev_notify_function;
	t->value = sev->sigev_value;
	t->relay = nl;
	/* The waiter sleeps in the library with every signal blocked. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t th;
	pthread_attr_t def;
	pthread_attr_t *pa = sev->sigev_notify_attributes;
	int detached = PTHREAD_CREATE_JOINABLE;
	if (!pa) {
		pthread_attr_init(&def);
		pthread_attr_setdetachstate(&def, PTHREAD_CREATE_DETACHED);
		pa = &def;
	}
	pthread_attr_getdetachstate(pa, &detached);
	int rc = pthread_create(&th, pa, notify_main, t);
	if (pa == &def)
		pthread_attr_destroy(&def);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		free(t);
		goto nomem;
	}
	if (detached != PTHREAD_CREATE_DETACHED)
		pthread_detach(th);
	return 0;
nomem:
	n.notify = KIPC_MQ_NOTIFY_REMOVE;
	kipc_mq_notify(e.id, mqdes, &n);
	return fail(ENOMEM);
}
