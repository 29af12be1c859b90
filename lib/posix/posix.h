/* SPDX-License-Identifier: MIT */
/*
 * libkipc-posix.so internals (lib/posix/). Not installed.
 */
#ifndef _KIPC_POSIX_INTERNAL_H
#define _KIPC_POSIX_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

/* A cached queue descriptor: fd -> queue (mqueue.c). */
struct mqd_ent {
	int64_t id;        /* the open's handle; 0: none (published last) */
	int acc;           /* KIPC_MQ_* access mode */
	uint32_t msgsize;  /* the queue's msgsize (it never changes) */
	dev_t dev;         /* the descriptor's FIFO, to detect reuse */
	ino_t ino;
	/* (flgen << 1) | O_NONBLOCK: the open file description's O_NONBLOCK
	 * as read at the open's flags generation flgen (kipc_mq_attr); 0: not
	 * read yet. Sends and receives use it without fcntl(F_GETFL). */
	uint64_t fl;
};

/*
 * Where queue descriptors live (mqueue.c): this process's descriptor
 * table (the default), or, in kipc-run's supervisor of a static program,
 * the table of the process it serves (supervise.c), reached through
 * /proc/<pid>/fd, pidfd_getfd(2) and SECCOMP_IOCTL_NOTIF_ADDFD.
 */
struct stat;
struct mqd_space {
	int (*stat)(int fd, struct stat *st);
	ssize_t (*link)(int fd, char *buf, size_t size); /* what fd names */
	int (*getfl)(int fd);                            /* F_GETFL; -1, errno */
	int (*setfl)(int fd, int fl);                    /* F_SETFL; -1, errno */
	/* A FIFO we just opened becomes the queue descriptor: its number
	 * there (ours is closed), or -1 with errno (ours still open). */
	int (*install)(int fd);
	/* A descriptor of ours for the same open file (close-on-exec), or -1
	 * with errno (EBADF). */
	int (*dup)(int fd);
	int own; /* this process's: mq_open reserves the slot first */
};
extern const struct mqd_space *__kipc_mqd_space;

/* libkipc's (lib/internal.h): run by this thread when it is about to
 * sleep for kipcd, its request in the ring. */
extern __thread void (*__kipc_on_sleep)(void);

/* mq_notify(2)'s SIGEV_THREAD as Linux's system call has it (mqueue.c):
 * when the notification fires, the 32-byte cookie goes to the netlink
 * socket sock (ours, taken) with its last byte NOTIFY_WOKENUP; when the
 * registration is removed, with NOTIFY_REMOVED. 0 or -1 with errno. */
int __kipc_mq_notify_netlink(int mqdes, int sock, const unsigned char cookie[32]);

/* The queue behind fd: 0, or -EBADF. */
int __kipc_mqd_lookup(int fd, struct mqd_ent *out);
/* close(2) of libc, past our wrapper. */
int __kipc_real_close(int fd);

/* mq_getsetattr(2): mq_setattr with either pointer NULL (mqueue.c). */
struct mq_attr;
int __kipc_mq_getsetattr(int mqdes, const struct mq_attr *newattr, struct mq_attr *oldattr);

/* libkipc's copies from and to the caller's memory (lib/uaccess.c):
 * 0, or -EFAULT for a bad pointer, never a crash. */
int __kipc_copy_from_user(void *dst, const void *src, size_t len);
int __kipc_copy_to_user(void *dst, const void *src, size_t len);

/* The raw system calls the library serves (serve.c), x86-64 numbers. */
#define KIPC_TRAPPED_SYSCALLS                                               \
	__NR_msgget, __NR_msgsnd, __NR_msgrcv, __NR_msgctl, __NR_mq_open,   \
	__NR_mq_unlink, __NR_mq_timedsend, __NR_mq_timedreceive,            \
	__NR_mq_notify, __NR_mq_getsetattr
/* Build the library's seccomp filter into f (KIPC_FILTER_MAX entries): the
 * served calls and extra[] get action, their i386 and x32 entries ENOSYS;
 * with passthrough, __kipc_passthrough's calls pass (serve.c). Returns its
 * length. */
#define KIPC_FILTER_MAX 96
struct sock_filter;
unsigned __kipc_filter(struct sock_filter *f, const int *extra, unsigned nextra,
		       uint32_t action, int passthrough);
/* A real system call the filters let through (serve.c): Linux's result,
 * -errno on failure. Five arguments. */
long __kipc_passthrough(long nr, long a, long b, long c, long d, long e);
extern const char __kipc_passthrough_ret[];
/* One of them, nr with its six arguments: the result, or -1 with errno. */
long __kipc_serve_syscall(long nr, const long *args);

#endif /* _KIPC_POSIX_INTERNAL_H */
