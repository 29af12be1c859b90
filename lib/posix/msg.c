/* SPDX-License-Identifier: MIT */
/*
 * libkipc-posix.so: System V message queues (msgget(2), msgsnd(2),
 * msgrcv(2), msgctl(2)) on kipc. The kernel's side is
 * kernel/ipc/msg_sysv.cc; this file converts between libc's structures
 * and the kernel's, and the kernel's errno where System V names it
 * differently (EMSGSIZE -> E2BIG, EAGAIN on receive -> ENOMSG).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/msg.h>

#include <kipc/libkipc.h>
#include <kipc/mqueue.h>

#include "posix.h"

#define EXPORT __attribute__((visibility("default")))

/*
 * msgmax: msgsnd must not read more than this from the caller. Cached;
 * root may change it (/proc/sys/kernel/msgmax): a lower value is the
 * kernel's to enforce (it checks every msgsnd), a size above the cached
 * one asks again (refresh).
 */
static int32_t msgmax(bool refresh)
{
	static int32_t cached = -1;
	int32_t v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
	if (v < 0 || refresh) {
		struct kipc_sysv_msginfo mi;
		if (kipc_msgctl(0, KIPC_IPC_INFO, &mi, sizeof mi) < 0)
			return -1;
		v = mi.msgmax;
		__atomic_store_n(&cached, v, __ATOMIC_RELAXED);
	}
	return v;
}

EXPORT int msgget(key_t key, int msgflg)
{
	return kipc_msgget((int32_t)key, msgflg);
}

EXPORT int msgsnd(int msqid, const void *msgp, size_t msgsz, int msgflg)
{
	int32_t max = msgmax(false);
	if (max >= 0 && msgsz > (size_t)max)
		max = msgmax(true);
	if (max < 0)
		return -1;
	/* ksys_msgsnd(): mtype is read first; then size, id and mtype checks */
	long mtype;
	if (__kipc_copy_from_user(&mtype, msgp, sizeof mtype)) {
		errno = EFAULT;
		return -1;
	}
	if (msgsz > (size_t)max || (long)msgsz < 0 || msqid < 0 || mtype < 1) {
		errno = EINVAL;
		return -1;
	}
	return kipc_msgsnd(msqid, mtype, (const char *)msgp + sizeof(long), msgsz, msgflg);
}

EXPORT ssize_t msgrcv(int msqid, void *msgp, size_t msgsz, long msgtyp, int msgflg)
{
	if (msqid < 0 || (long)msgsz < 0) {
		errno = EINVAL;
		return -1;
	}
	/* No message is longer than msgmax: the arena needs no more. */
	int32_t max = msgmax(false);
	if (max >= 0 && msgsz > (size_t)max)
		max = msgmax(true); /* raised since? */
	if (max < 0)
		return -1;
	size_t len = msgsz > (size_t)max ? (size_t)max : msgsz;
	int64_t mtype = 0;
	/* A NULL msgp makes a bad (not NULL) text pointer: libkipc's copy
	 * fails EFAULT after the message was taken, as do_msg_fill(). */
	ssize_t n = kipc_msgrcv(msqid, &mtype, (char *)msgp + sizeof(long), len, msgtyp, msgflg);
	if (n < 0) {
		if (errno == EMSGSIZE)
			errno = E2BIG;
		else if (errno == EAGAIN)
			errno = ENOMSG;
		return -1;
	}
	long t = (long)mtype;
	if (__kipc_copy_to_user(msgp, &t, sizeof t)) {
		errno = EFAULT;
		return -1;
	}
	return n;
}

static void to_libc(const struct kipc_msqid_ds *k, struct msqid_ds *d)
{
	*d = (struct msqid_ds){
		.msg_perm = {.__key = (key_t)k->key, .uid = k->uid, .gid = k->gid,
			     .cuid = k->cuid, .cgid = k->cgid, .mode = (unsigned short)k->mode,
			     .__seq = (unsigned short)k->seq},
		.msg_stime = k->stime, .msg_rtime = k->rtime, .msg_ctime = k->ctime,
		.__msg_cbytes = k->cbytes, .msg_qnum = k->qnum, .msg_qbytes = k->qbytes,
		.msg_lspid = k->lspid, .msg_lrpid = k->lrpid,
	};
}

/* The result r of a call that succeeded, or EFAULT if its output cannot
 * be stored (the call itself happened, as copy_to_user() after it). */
static int put(int r, void *buf, const void *v, size_t len)
{
	if (r >= 0 && __kipc_copy_to_user(buf, v, len)) {
		errno = EFAULT;
		return -1;
	}
	return r;
}

EXPORT int msgctl(int msqid, int cmd, struct msqid_ds *buf)
{
	cmd &= ~0x100; /* IPC_64: glibc's own flag, as the kernel ignores it */
	struct kipc_msqid_ds k;
	struct kipc_sysv_msginfo mi;
	struct msqid_ds d;
	struct msginfo o;
	int r;
	switch (cmd) {
	case IPC_INFO:
	case MSG_INFO:
		r = kipc_msgctl(msqid, cmd, &mi, sizeof mi);
		if (r < 0)
			return r;
		memset(&o, 0, sizeof o);
		o.msgpool = mi.msgpool;
		o.msgmap = mi.msgmap;
		o.msgmax = mi.msgmax;
		o.msgmnb = mi.msgmnb;
		o.msgmni = mi.msgmni;
		o.msgssz = mi.msgssz;
		o.msgtql = mi.msgtql;
		o.msgseg = (unsigned short)mi.msgseg;
		return put(r, buf, &o, sizeof o);
	case IPC_SET:
		/* ksys_msgctl() copies the new values in before anything */
		if (__kipc_copy_from_user(&d, buf, sizeof d)) {
			errno = EFAULT;
			return -1;
		}
		memset(&k, 0, sizeof k);
		k.uid = d.msg_perm.uid;
		k.gid = d.msg_perm.gid;
		k.mode = d.msg_perm.mode;
		k.qbytes = d.msg_qbytes;
		return kipc_msgctl(msqid, cmd, &k, sizeof k);
	case IPC_STAT:
	case MSG_STAT:
	case MSG_STAT_ANY:
		r = kipc_msgctl(msqid, cmd, &k, sizeof k);
		if (r >= 0)
			to_libc(&k, &d);
		return put(r, buf, &d, sizeof d);
	default:
		return kipc_msgctl(msqid, cmd, NULL, 0);
	}
}
