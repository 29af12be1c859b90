/* SPDX-License-Identifier: MIT */
/*
 * libkipc-posix.so: one raw message queue system call (x86-64 numbers and
 * arguments) served from the functions that interpose on libc's (msg.c,
 * mqueue.c). Used by the SIGSYS handler of the seccomp filter
 * (seccomp.c: dynamic programs) and by the supervisor of static ones
 * (supervise.c), which hands it pointers to its mirrors of the program's
 * buffers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <mqueue.h>
#include <signal.h>
#include <stddef.h>
#include <sys/msg.h>
#include <sys/syscall.h>

#include "posix.h"

#if defined(__x86_64__)
/* The raw mq_open and mq_unlink take the name without glibc's '/'. */
static long with_slash(const char *uname, char *buf, size_t size)
{
	size_t i = 0;
	buf[0] = '/';
	for (;; i++) {
		if (i + 2 > size)
			return -ENAMETOOLONG;
		char c;
		if (__kipc_copy_from_user(&c, uname + i, 1))
			return -EFAULT;
		buf[i + 1] = c;
		if (!c)
			return 0;
	}
}

long __kipc_serve_syscall(long nr, const long *a)
{
	char name[512];
	long r;
	switch (nr) {
	case __NR_msgget:
		return msgget((key_t)a[0], (int)a[1]);
	case __NR_msgsnd:
		return msgsnd((int)a[0], (const void *)a[1], (size_t)a[2], (int)a[3]);
	case __NR_msgrcv:
		return msgrcv((int)a[0], (void *)a[1], (size_t)a[2], a[3], (int)a[4]);
	case __NR_msgctl:
		return msgctl((int)a[0], (int)a[1], (struct msqid_ds *)a[2]);
	case __NR_mq_open:
		if ((r = with_slash((const char *)a[0], name, sizeof name))) {
			errno = (int)-r;
			return -1;
		}
		return mq_open(name, (int)a[1], (mode_t)a[2], (struct mq_attr *)a[3]);
	case __NR_mq_unlink:
		if ((r = with_slash((const char *)a[0], name, sizeof name))) {
			errno = (int)-r;
			return -1;
		}
		return mq_unlink(name);
	case __NR_mq_timedsend:
		return mq_timedsend((mqd_t)a[0], (const char *)a[1], (size_t)a[2],
				    (unsigned)a[3], (const struct timespec *)a[4]);
	case __NR_mq_timedreceive:
		return mq_timedreceive((mqd_t)a[0], (char *)a[1], (size_t)a[2],
				       (unsigned *)a[3], (const struct timespec *)a[4]);
	case __NR_mq_notify: {
		/* The raw SIGEV_THREAD is Linux's netlink form (sigev_signo is
		 * a socket glibc made): not served, EINVAL. */
		struct sigevent sev;
		if (a[1] && __kipc_copy_from_user(&sev, (const void *)a[1], sizeof sev)) {
			errno = EFAULT;
			return -1;
		}
		if (a[1] && sev.sigev_notify == SIGEV_THREAD) {
			errno = EINVAL;
			return -1;
		}
		return mq_notify((mqd_t)a[0], a[1] ? &sev : NULL);
	}
	case __NR_mq_getsetattr:
		return __kipc_mq_getsetattr((mqd_t)a[0], (const struct mq_attr *)a[1],
					    (struct mq_attr *)a[2]);
	}
	errno = ENOSYS;
	return -1;
}
#endif
