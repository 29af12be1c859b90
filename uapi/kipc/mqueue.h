/* SPDX-License-Identifier: MIT */
/*
 * kipc user-space API of the POSIX (mq_*) and System V (msg*) message
 * queue syscalls: the structures that travel in sqe.addr2. The queues are
 * kipc mailboxes with Linux's rules (Documentation/posix.md); the
 * preload library libkipc-posix.so turns the libc calls into these.
 *
 * Plain C11, usable from C++20; fixed-width types; reserved fields are
 * ignored on input and zeroed on output.
 */
#ifndef _UAPI_KIPC_MQUEUE_H
#define _UAPI_KIPC_MQUEUE_H

#include <stdint.h>
#include <kipc/kipc.h>

/* ------------------------------------------------------------------ */
/* POSIX message queues                                                */

/* kipc_mq_open.oflag: the access mode (as O_ACCMODE) and create bits */
#define KIPC_MQ_RDONLY    0u
#define KIPC_MQ_WRONLY    1u
#define KIPC_MQ_RDWR      2u
#define KIPC_MQ_ACCMODE   3u          /* 3: neither (Linux: EINVAL if it exists) */
/* plus KIPC_O_CREAT and KIPC_O_EXCL */

/* kipc_mq_open.flags */
#define KIPC_MQ_ATTR      (1u << 0)  /* maxmsg and msgsize are given */
#define KIPC_MQ_RLIMIT    (1u << 1)  /* rlimit is the caller's RLIMIT_MSGQUEUE */

/* mq_open: sqe.addr/len = name "/name", sqe.addr2/len2 = this (in). */
struct kipc_mq_open {
	uint32_t oflag;       /* KIPC_MQ_* access mode | KIPC_O_CREAT | KIPC_O_EXCL */
	uint32_t mode;        /* permission bits of a new queue (umask applied) */
	int64_t  maxmsg;      /* with KIPC_MQ_ATTR */
	int64_t  msgsize;     /* with KIPC_MQ_ATTR */
	uint32_t flags;       /* KIPC_MQ_ATTR, KIPC_MQ_RLIMIT */
	uint32_t rsvd0;
	uint64_t rlimit;      /* ignored: the kernel reads the caller's RLIMIT_MSGQUEUE */
	uint64_t rsvd[3];
};

/*
 * Handles. mq_open returns a handle (> 0): the open, with the access mode
 * it granted, usable by the task that opened it. Every other mq call
 * names it in sqe.target; timedsend, timedreceive, notify and getattr
 * also give in sqe.type the descriptor (fd) the caller's process holds
 * it as, or -1: a task that has not used the handle before (a fork
 * child, an exec'd image that kept the descriptor, a process it was
 * passed to) may use it once the kernel has checked that its process
 * holds that descriptor of the open. Otherwise, a handle the caller
 * does not hold is EBADF, and so are sending on a read-only handle and
 * receiving on a write-only one.
 */

/* mq_close: sqe.flags */
#define KIPC_MQ_CLOSE_ABORT (1u << 0) /* the mq_open failed after all: undo it */

/*
 * mq_getattr: sqe.addr2/len2 = this (out). flgen is the open's flags
 * generation (>= 1): mq_setfl (a descriptor's O_NONBLOCK changed) bumps
 * it. A caller that caches a descriptor's O_NONBLOCK reads flgen, then
 * the flags, and gives that flgen in sqe.addr2 of mq_timedsend and
 * mq_timedreceive (0: no check): a changed generation fails -ESTALE and
 * nothing is done, so it reads both again and retries.
 */
struct kipc_mq_attr {
	int64_t  maxmsg;
	int64_t  msgsize;
	int64_t  curmsgs;
	uint64_t flgen;
	uint64_t rsvd[4];
};

/* kipc_mq_notify.notify: Linux's SIGEV_* values, or remove */
#define KIPC_MQ_SIGEV_SIGNAL 0
#define KIPC_MQ_SIGEV_NONE   1
#define KIPC_MQ_SIGEV_THREAD 2
#define KIPC_MQ_NOTIFY_REMOVE (-1)   /* mq_notify(mqd, NULL) */

/*
 * mq_notify: sqe.addr2/len2 = this (in). Result: 0, or for
 * SIGEV_THREAD a token (> 0) that mq_notify_wait (sqe.target) parks on
 * until the notification fires (res 0, cqe.pid = sender pid, cqe.type =
 * sender uid) or is removed (-ECANCELED).
 */
struct kipc_mq_notify {
	int32_t  notify;      /* KIPC_MQ_SIGEV_* or KIPC_MQ_NOTIFY_REMOVE */
	int32_t  signo;       /* SIGEV_SIGNAL: 0..64 (0: no signal) */
	int64_t  value;       /* sigev_value */
	uint64_t rsvd[2];
};

/* ------------------------------------------------------------------ */
/* System V message queues                                             */

/* Linux's values of the System V flags and commands */
#define KIPC_IPC_CREAT    01000
#define KIPC_IPC_EXCL     02000
#define KIPC_IPC_NOWAIT   04000
#define KIPC_MSG_NOERROR  010000
#define KIPC_MSG_EXCEPT   020000
#define KIPC_MSG_COPY     040000
#define KIPC_IPC_RMID     0
#define KIPC_IPC_SET      1
#define KIPC_IPC_STAT     2
#define KIPC_IPC_INFO     3
#define KIPC_MSG_STAT     11
#define KIPC_MSG_INFO     12
#define KIPC_MSG_STAT_ANY 13

/* msgget: sqe.target = key, sqe.len = msgflg (IPC_CREAT, IPC_EXCL, mode). */
/* msgsnd: sqe.target = msqid, addr/len = mtext, type = mtype, flags NONBLOCK. */
/* msgrcv: sqe.target = msqid, addr/len = buffer, type = msgtyp,
 *         sqe.len2 = msgflg (IPC_NOWAIT, MSG_NOERROR, MSG_EXCEPT, MSG_COPY). */
/* msgctl: sqe.target = msqid (an index for MSG_STAT), sqe.len = cmd,
 *         addr2/len2 = kipc_msqid_ds (IPC_STAT, IPC_SET, MSG_STAT) or
 *         kipc_sysv_msginfo (IPC_INFO, MSG_INFO). */

struct kipc_msqid_ds {
	int64_t  key;
	uint32_t uid, gid;    /* owner */
	uint32_t cuid, cgid;  /* creator */
	uint32_t mode;        /* permission bits */
	uint32_t seq;         /* slot sequence number */
	int64_t  stime;       /* last msgsnd, seconds (0: never) */
	int64_t  rtime;       /* last msgrcv */
	int64_t  ctime;       /* creation or last IPC_SET */
	uint64_t cbytes;      /* bytes queued */
	uint64_t qnum;        /* messages queued */
	uint64_t qbytes;      /* byte bound */
	int32_t  lspid, lrpid;
	uint64_t rsvd[4];
};

struct kipc_sysv_msginfo {
	int32_t  msgpool, msgmap, msgmax, msgmnb, msgmni, msgssz, msgtql;
	uint16_t msgseg;
	uint16_t rsvd0;
	uint64_t rsvd[2];
};

/*
 * KIPC_SYS_sysctl: the IPC limits Linux has in /proc/sys (sqe.target =
 * one of these; sqe.len = 0 reads into cqe.type, 1 writes sqe.type).
 */
enum kipc_sysctl {
	KIPC_SYSCTL_MSGMNI = 1,         /* /proc/sys/kernel/msgmni */
	KIPC_SYSCTL_MSGMAX,             /* /proc/sys/kernel/msgmax */
	KIPC_SYSCTL_MSGMNB,             /* /proc/sys/kernel/msgmnb */
	KIPC_SYSCTL_MSG_NEXT_ID,        /* /proc/sys/kernel/msg_next_id */
	KIPC_SYSCTL_MQ_MSG_MAX,         /* /proc/sys/fs/mqueue/msg_max */
	KIPC_SYSCTL_MQ_MSGSIZE_MAX,     /* /proc/sys/fs/mqueue/msgsize_max */
	KIPC_SYSCTL_MQ_QUEUES_MAX,      /* /proc/sys/fs/mqueue/queues_max */
	KIPC_SYSCTL_MQ_MSG_DEFAULT,     /* /proc/sys/fs/mqueue/msg_default */
	KIPC_SYSCTL_MQ_MSGSIZE_DEFAULT, /* /proc/sys/fs/mqueue/msgsize_default */
};

#endif /* _UAPI_KIPC_MQUEUE_H */
