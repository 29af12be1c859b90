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
};

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

#endif /* _KIPC_POSIX_INTERNAL_H */
