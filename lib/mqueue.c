/* SPDX-License-Identifier: MIT */
/*
 * libkipc: wrappers of the POSIX message queue syscalls (<kipc/mqueue.h>).
 * These are the kernel's view (a queue is its id); the libc-compatible
 * mq_* functions with descriptors are in lib/posix/ (libkipc-posix.so).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <kipc/mqueue.h>

#include "internal.h"

int64_t kipc_mq_open(const char *name, const struct kipc_mq_open *o)
{
	size_t nlen = strlen(name);
	if (nlen >= 4096)
		return __kipc_ret(-ENAMETOOLONG);
	struct kipc_sqe sqe = {0};
	__kipc_enc_name(&sqe, KIPC_SYS_mq_open, 0, (uint32_t)nlen, 0, sizeof *o);
	struct kipc_slot s0 = {.in = name, .len = nlen};
	struct kipc_slot s1 = {.in = o, .len = sizeof *o};
	struct kipc_cqe cqe;
	return __kipc_ret(__kipc_sync(&sqe, &s0, &s1, &cqe));
}

int kipc_mq_unlink(const char *name)
{
	size_t nlen = strlen(name);
	if (nlen >= 4096)
		return __kipc_ret(-ENAMETOOLONG);
	struct kipc_sqe sqe = {0};
	__kipc_enc_name(&sqe, KIPC_SYS_mq_unlink, 0, (uint32_t)nlen, 0, 0);
	struct kipc_slot s0 = {.in = name, .len = nlen};
	struct kipc_cqe cqe;
	return (int)__kipc_ret(__kipc_sync(&sqe, &s0, NULL, &cqe));
}

int kipc_mq_timedsend(int64_t h, int fd, const void *buf, size_t len, unsigned prio,
		      unsigned flags, int64_t timeout)
{
	return kipc_mq_timedsend_gen(h, fd, buf, len, prio, flags, timeout, 0);
}

int kipc_mq_timedsend_gen(int64_t h, int fd, const void *buf, size_t len, unsigned prio,
			  unsigned flags, int64_t timeout, uint64_t flgen)
{
	if (prio > KIPC_PRIO_MAX)
		return __kipc_ret(-EINVAL);
	/* with a send credit (transport.md section 12): no timeout, room
	 * reserved, so the flags generation cannot matter */
	long c = __kipc_credit_send(KIPC_SYS_mq_timedsend, h, fd, buf, len, prio, flags);
	if (c != 1)
		return __kipc_ret0(c);
	struct kipc_sqe sqe = {0};
	__kipc_enc_mq_xfer(&sqe, KIPC_SYS_mq_timedsend, h, fd, 0, (uint32_t)len,
			   (uint16_t)prio, flags, timeout);
	sqe.addr2 = flgen;
	struct kipc_slot s0 = {.in = buf, .len = len};
	struct kipc_cqe cqe;
	long r = __kipc_sync(&sqe, &s0, NULL, &cqe);
	return __kipc_ret0(r);
}

ssize_t kipc_mq_timedreceive(int64_t h, int fd, void *buf, size_t len, unsigned *prio,
			     unsigned flags, int64_t timeout)
{
	return kipc_mq_timedreceive_gen(h, fd, buf, len, prio, flags, timeout, 0);
}

ssize_t kipc_mq_timedreceive_gen(int64_t h, int fd, void *buf, size_t len, unsigned *prio,
				 unsigned flags, int64_t timeout, uint64_t flgen)
{
	struct kipc_cqe cqe;
	/* pushed (transport.md section 13): never the last message queued,
	 * so the descriptors' poll state cannot change; a message is there,
	 * so O_NONBLOCK and its flags generation cannot matter */
	long r = h > 0 && !(flags & ~KIPC_F_NONBLOCK)
			 ? __kipc_push_receive(KIPC_PUSH_MQ(h), buf, len, flags, &cqe, true)
			 : KIPC_NOT_PUSHED;
	if (r != KIPC_NOT_PUSHED)
		goto out;
	struct kipc_sqe sqe = {0};
	__kipc_enc_mq_xfer(&sqe, KIPC_SYS_mq_timedreceive, h, fd, 0, (uint32_t)len, 0,
			   flags, timeout);
	sqe.addr2 = flgen;
	struct kipc_slot s0 = {.out = buf, .len = len, .by_res = true};
	/* Linux's store_msg() and put_user() run after the message left the
	 * queue: a bad buffer or prio pointer loses it (EFAULT). */
	r = __kipc_sync_flags(&sqe, &s0, NULL, &cqe, KIPC_SYNC_LATE_FAULT);
out:;
	unsigned p = cqe.prio;
	if (r >= 0 && prio && __kipc_copy_to_user(prio, &p, sizeof p))
		r = -EFAULT;
	return __kipc_ret(r);
}

int64_t kipc_mq_notify(int64_t h, int fd, const struct kipc_mq_notify *n)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_mq_rec(&sqe, KIPC_SYS_mq_notify, h, fd, 0, sizeof *n);
	struct kipc_slot s1 = {.in = n, .len = sizeof *n};
	struct kipc_cqe cqe;
	return __kipc_ret(__kipc_sync(&sqe, NULL, &s1, &cqe));
}

int kipc_mq_getattr(int64_t h, int fd, struct kipc_mq_attr *attr)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_mq_rec(&sqe, KIPC_SYS_mq_getattr, h, fd, 0, sizeof *attr);
	struct kipc_slot s1 = {.out = attr, .len = sizeof *attr};
	struct kipc_cqe cqe;
	long r = __kipc_sync(&sqe, NULL, &s1, &cqe);
	return __kipc_ret0(r);
}

int kipc_mq_setfl(int64_t h, int fd)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_simple(&sqe, KIPC_SYS_mq_setfl, h, 0);
	sqe.type = fd;
	struct kipc_cqe cqe;
	long r = __kipc_sync(&sqe, NULL, NULL, &cqe);
	return __kipc_ret0(r);
}

int kipc_mq_close(int64_t h, unsigned flags)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_simple(&sqe, KIPC_SYS_mq_close, h, flags);
	struct kipc_cqe cqe;
	long r = __kipc_sync(&sqe, NULL, NULL, &cqe);
	return __kipc_ret0(r);
}

int kipc_mq_notify_wait(int64_t h, uint64_t token, pid_t *from, uid_t *uid)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_mq_notify_wait(&sqe, h, token);
	struct kipc_cqe cqe;
	long r = __kipc_sync(&sqe, NULL, NULL, &cqe);
	if (r >= 0) {
		if (from)
			*from = cqe.pid;
		if (uid)
			*uid = (uid_t)cqe.type;
	}
	return __kipc_ret0(r);
}

int kipc_mq_path(int64_t h, const char *suffix, char *buf, size_t size)
{
	char sock[4096];
	int err = __kipc_socket_path(sock, sizeof sock);
	if (err)
		return (int)__kipc_ret(err);
	int n = snprintf(buf, size, "%s.mq/o%lld%s", sock, (long long)h,
			 suffix ? suffix : "");
	if (n < 0 || (size_t)n >= size)
		return (int)__kipc_ret(-ENAMETOOLONG);
	return 0;
}

/* ---------------------------------------------------------------- */
/* System V message queues                                            */

int kipc_msgget(int32_t key, int msgflg)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_msgget(&sqe, key, msgflg);
	struct kipc_cqe cqe;
	return (int)__kipc_ret(__kipc_sync(&sqe, NULL, NULL, &cqe));
}

int kipc_msgsnd(int msqid, int64_t mtype, const void *buf, size_t len, int msgflg)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_msgsnd(&sqe, msqid, mtype, 0, (uint32_t)len, msgflg);
	struct kipc_slot s0 = {.in = buf, .len = len};
	struct kipc_cqe cqe;
	long r = __kipc_sync_flags(&sqe, &s0, NULL, &cqe, KIPC_SYNC_NORESTART);
	return __kipc_ret0(r);
}

ssize_t kipc_msgrcv(int msqid, int64_t *mtype, void *buf, size_t len, int64_t msgtyp,
		    int msgflg)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_msgrcv(&sqe, msqid, msgtyp, 0, (uint32_t)len, msgflg);
	struct kipc_slot s0 = {.out = buf, .len = len, .by_res = true};
	struct kipc_cqe cqe;
	/* As Linux's do_msg_fill(): a bad buffer loses the message (EFAULT). */
	long r = __kipc_sync_flags(&sqe, &s0, NULL, &cqe,
				   KIPC_SYNC_NORESTART | KIPC_SYNC_LATE_FAULT);
	int64_t t = cqe.type;
	if (r >= 0 && mtype && __kipc_copy_to_user(mtype, &t, sizeof t))
		r = -EFAULT;
	return __kipc_ret(r);
}

int kipc_sysctl_get(int key, int64_t *val)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_sysctl(&sqe, key, 0, 0);
	struct kipc_cqe cqe;
	long r = __kipc_sync(&sqe, NULL, NULL, &cqe);
	if (r >= 0 && __kipc_copy_to_user(val, &cqe.type, sizeof *val))
		r = -EFAULT;
	return __kipc_ret0(r);
}

int kipc_sysctl_set(int key, int64_t val)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_sysctl(&sqe, key, 1, val);
	struct kipc_cqe cqe;
	long r = __kipc_sync(&sqe, NULL, NULL, &cqe);
	return __kipc_ret0(r);
}

int kipc_msgctl(int msqid, int cmd, void *buf, size_t len)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_msgctl(&sqe, msqid, cmd, 0, (uint32_t)len);
	bool in = cmd == KIPC_IPC_SET;
	struct kipc_slot s1 = {.in = in ? buf : NULL, .out = in ? NULL : buf, .len = buf ? len : 0};
	struct kipc_cqe cqe;
	return (int)__kipc_ret(__kipc_sync(&sqe, NULL, buf ? &s1 : NULL, &cqe));
}
