/* SPDX-License-Identifier: MIT */
/*
 * POSIX queue descriptors as libkipc-posix.so makes them (mqd_open: the
 * handle, its FIFO, a first use that has the kernel see the descriptor),
 * and the small calls the mq selftests share. Include after kt_helper.h.
 */
#ifndef _KIPC_MQ_HELPER_H
#define _KIPC_MQ_HELPER_H

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <kipc/mqueue.h>

struct mqd {
	int64_t h;
	int fd;
};

/* mq_open as libkipc-posix.so does it, with o: the handle, its FIFO, a
 * first use. 0, or -1 with errno (nothing left open). */
static inline int mqd_open_as(const char *name, const struct kipc_mq_open *o, struct mqd *d)
{
	static const char *const sfx[] = {".r", ".w", ".rw", ".x"};
	d->fd = -1;
	d->h = kipc_mq_open(name, o);
	if (d->h < 0)
		return -1;
	char path[PATH_MAX];
	struct kipc_mq_attr at;
	if (kipc_mq_path(d->h, sfx[o->oflag & 3], path, sizeof path) < 0 ||
	    (d->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0 ||
	    kipc_mq_getattr(d->h, d->fd, &at) < 0) {
		int e = errno;
		if (d->fd >= 0)
			close(d->fd);
		kipc_mq_close(d->h, KIPC_MQ_CLOSE_ABORT);
		errno = e;
		return -1;
	}
	return 0;
}

/* The same, a queue of cap 64-byte messages another user may open. */
static inline int mqd_open(const char *name, unsigned oflag, uint32_t cap, struct mqd *d)
{
	struct kipc_mq_open o;
	memset(&o, 0, sizeof o);
	o.oflag = oflag;
	o.mode = 0666; /* another user may open it (the hostile tests) */
	o.flags = KIPC_MQ_ATTR;
	o.maxmsg = cap;
	o.msgsize = 64;
	return mqd_open_as(name, &o, d);
}

static inline void mqd_close(struct mqd *d)
{
	kipc_mq_close(d->h, 0);
	close(d->fd);
}

/* One value (4 bytes), or -errno. */
static inline int64_t mq_recv1(const struct mqd *d, unsigned flags)
{
	uint32_t v[16];
	ssize_t n = kipc_mq_timedreceive(d->h, d->fd, v, 64, NULL, flags, 0);
	if (n < 0)
		return -errno;
	return n == 4 ? (int64_t)v[0] : -EBADMSG;
}

static inline int64_t curmsgs(const struct mqd *d)
{
	struct kipc_mq_attr at;
	return kipc_mq_getattr(d->h, d->fd, &at) < 0 ? -errno : (int64_t)at.curmsgs;
}

/* How poll(2) sees fd now (POLLIN, POLLOUT), without waiting. */
static inline short poll_now(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
	return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

#endif
