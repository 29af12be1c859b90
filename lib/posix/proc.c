/* SPDX-License-Identifier: MIT */
/*
 * libkipc-posix.so: the IPC limits of /proc/sys under kipc-run.
 * Programs read and set /proc/sys/kernel/{msgmni,msgmax,msgmnb,
 * msg_next_id} and /proc/sys/fs/mqueue/{msg_max,msgsize_max,queues_max,
 * msg_default,msgsize_default}; here those files are kipc's (as gVisor
 * serves its own /proc): open(2), openat(2) and fopen(3) of one of those
 * absolute paths give
 *  - for reading, a memfd holding the kernel's value ("%lld\n");
 *  - for writing (the file is root's, 0644: EACCES at open for another
 *    effective uid, as on Linux; the kernel checks again), a descriptor
 *    whose write(2) parses the number as proc_dointvec does and sets it
 *    in the kernel at once (KIPC_SYS_sysctl: EINVAL out of range), or a
 *    stdio stream (fopencookie) that does the same when it flushes.
 * Other paths, relative ones included, go to libc untouched.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kipc/libkipc.h>
#include <kipc/mqueue.h>

#define EXPORT __attribute__((visibility("default")))

static const struct {
	const char *path;
	int key;
} files[] = {
	{"/proc/sys/kernel/msgmni", KIPC_SYSCTL_MSGMNI},
	{"/proc/sys/kernel/msgmax", KIPC_SYSCTL_MSGMAX},
	{"/proc/sys/kernel/msgmnb", KIPC_SYSCTL_MSGMNB},
	{"/proc/sys/kernel/msg_next_id", KIPC_SYSCTL_MSG_NEXT_ID},
	{"/proc/sys/fs/mqueue/msg_max", KIPC_SYSCTL_MQ_MSG_MAX},
	{"/proc/sys/fs/mqueue/msgsize_max", KIPC_SYSCTL_MQ_MSGSIZE_MAX},
	{"/proc/sys/fs/mqueue/queues_max", KIPC_SYSCTL_MQ_QUEUES_MAX},
	{"/proc/sys/fs/mqueue/msg_default", KIPC_SYSCTL_MQ_MSG_DEFAULT},
	{"/proc/sys/fs/mqueue/msgsize_default", KIPC_SYSCTL_MQ_MSGSIZE_DEFAULT},
};

/* The sysctl key of path, or 0. */
static int key_of(const char *path)
{
	if (!path || strncmp(path, "/proc/sys/", 10) != 0)
		return 0;
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		if (strcmp(path, files[i].path) == 0)
			return files[i].key;
	return 0;
}

/* Writable descriptors: fd -> key, checked by the memfd's inode. */
#define NWFD 4096
static struct {
	int key;
	dev_t dev;
	ino_t ino;
} wfd[NWFD];
static int any_wfd;

static int wfd_key(int fd)
{
	struct stat st;
	if (fd < 0 || fd >= NWFD || !__atomic_load_n(&wfd[fd].key, __ATOMIC_ACQUIRE))
		return 0;
	if (fstat(fd, &st) < 0 || st.st_dev != wfd[fd].dev || st.st_ino != wfd[fd].ino)
		return 0;
	return wfd[fd].key;
}

/* proc_dointvec's parse: blanks, an optional '-', digits, blanks. */
static int parse(const char *buf, size_t n, int64_t *v)
{
	char s[32];
	size_t i = 0, j = 0;
	while (i < n && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n'))
		i++;
	while (i < n && j < sizeof s - 1 && (buf[i] == '-' || (buf[i] >= '0' && buf[i] <= '9')))
		s[j++] = buf[i++];
	s[j] = '\0';
	while (i < n && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n'))
		i++;
	if (!j || i != n)
		return -EINVAL;
	char *end;
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (errno || *end || x < INT_MIN || x > INT_MAX)
		return -EINVAL;
	*v = x;
	return 0;
}

static ssize_t apply(int key, const char *buf, size_t n)
{
	int64_t v;
	if (!n)
		return 0;
	int err = parse(buf, n, &v);
	if (err) {
		errno = -err;
		return -1;
	}
	if (kipc_sysctl_set(key, v) < 0)
		return -1;
	return (ssize_t)n;
}

/* A descriptor for key opened with flags, or -1. */
static int open_sysctl(int key, int flags)
{
	int acc = flags & O_ACCMODE;
	if (acc != O_RDONLY && geteuid() != 0) {
		errno = EACCES;
		return -1;
	}
	int64_t v;
	if (kipc_sysctl_get(key, &v) < 0)
		return -1;
	int fd = memfd_create("kipc-sysctl", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
	if (fd < 0)
		return -1;
	char s[32];
	int len = snprintf(s, sizeof s, "%lld\n", (long long)v);
	if (acc == O_RDONLY && (write(fd, s, (size_t)len) != len || lseek(fd, 0, SEEK_SET) < 0)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (acc != O_RDONLY) {
		struct stat st;
		if (fd >= NWFD || fstat(fd, &st) < 0) {
			close(fd);
			errno = EMFILE;
			return -1;
		}
		wfd[fd].dev = st.st_dev;
		wfd[fd].ino = st.st_ino;
		__atomic_store_n(&wfd[fd].key, key, __ATOMIC_RELEASE);
		__atomic_store_n(&any_wfd, 1, __ATOMIC_RELEASE);
	}
	if (acc == O_RDONLY)
		fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK);
	return fd;
}

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef FILE *(*fopen_fn)(const char *, const char *);
typedef ssize_t (*write_fn)(int, const void *, size_t);

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

/*
 * open(2) and its three siblings: the nine /proc/sys files are kipc's
 * (open_sysctl), everything else goes to libc's own. dirfd is AT_FDCWD
 * for open and open64.
 */
/* libc's sym, looked up once into *cache; NULL (ENOSYS) if it has none. */
static void *real_sym(void **cache, const char *sym)
{
	void *real = __atomic_load_n(cache, __ATOMIC_RELAXED);
	if (!real) {
		real = dlsym(RTLD_NEXT, sym);
		if (!real) {
			errno = ENOSYS;
			return NULL;
		}
		__atomic_store_n(cache, real, __ATOMIC_RELAXED);
	}
	return real;
}

static int open_any(void **cache, const char *sym, bool at, int dirfd, const char *path,
		    int flags, mode_t m)
{
	int key = key_of(path);
	if (key)
		return open_sysctl(key, flags);
	void *real = real_sym(cache, sym);
	if (!real)
		return -1;
	return at ? ((openat_fn)real)(dirfd, path, flags, m) : ((open_fn)real)(path, flags, m);
}

#define OPEN_MODE(flags, m)                 \
	va_list ap;                         \
	va_start(ap, flags);                \
	mode_t m = mode_arg(flags, ap);     \
	va_end(ap)

EXPORT int open(const char *path, int flags, ...)
{
	OPEN_MODE(flags, m);
	static void *real_open;
	return open_any(&real_open, "open", false, AT_FDCWD, path, flags, m);
}

EXPORT int open64(const char *path, int flags, ...)
{
	OPEN_MODE(flags, m);
	static void *real_open64;
	return open_any(&real_open64, "open64", false, AT_FDCWD, path, flags, m);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	OPEN_MODE(flags, m);
	static void *real_openat;
	return open_any(&real_openat, "openat", true, dirfd, path, flags, m);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	OPEN_MODE(flags, m);
	static void *real_openat64;
	return open_any(&real_openat64, "openat64", true, dirfd, path, flags, m);
}

/* write(2) is async-signal-safe: libc's is looked up at load, not in a
 * signal handler's first write. */
static write_fn real_write;

__attribute__((constructor)) static void find_write(void)
{
	real_write = (write_fn)dlsym(RTLD_NEXT, "write");
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	write_fn real_ = __atomic_load_n(&real_write, __ATOMIC_RELAXED);
	if (!real_) {
		real_ = (write_fn)dlsym(RTLD_NEXT, "write");
		__atomic_store_n(&real_write, real_, __ATOMIC_RELAXED);
	}
	if (__atomic_load_n(&any_wfd, __ATOMIC_ACQUIRE)) {
		int key = wfd_key(fd);
		if (key)
			return apply(key, buf, n);
	}
	return real_(fd, buf, n);
}

/* fopen(3) of a writable file: a stream that sets the value on flush. */
static ssize_t cookie_write(void *c, const char *buf, size_t n)
{
	return apply((int)(intptr_t)c, buf, n);
}

static FILE *fopen_sysctl(int key, const char *mode)
{
	bool wr = strchr(mode, 'w') || strchr(mode, 'a') || strchr(mode, '+');
	int fd = open_sysctl(key, (wr ? O_WRONLY : O_RDONLY) | (strchr(mode, 'e') ? O_CLOEXEC : 0));
	if (fd < 0)
		return NULL;
	if (!wr)
		return fdopen(fd, mode);
	close(fd);
	cookie_io_functions_t io = {.write = cookie_write};
	return fopencookie((void *)(intptr_t)key, mode, io);
}

/* fopen(3) and fopen64: the /proc/sys files are kipc's, as for open. */
static FILE *fopen_any(void **cache, const char *sym, const char *path, const char *mode)
{
	int key = key_of(path);
	if (key)
		return fopen_sysctl(key, mode);
	void *real = real_sym(cache, sym);
	return real ? ((fopen_fn)real)(path, mode) : NULL;
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
	static void *real_fopen;
	return fopen_any(&real_fopen, "fopen", path, mode);
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
	static void *real_fopen64;
	return fopen_any(&real_fopen64, "fopen64", path, mode);
}
