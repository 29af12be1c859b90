/* SPDX-License-Identifier: MIT */
/*
 * The submission entry of each syscall, encoded once (Documentation/
 * syscalls.md gives the same layout as a table). Not installed.
 *
 * Three users build their entries here: libkipc's synchronous wrappers
 * (lib/syscalls.c, mqueue.c, introspect.c) pass 0 for addr and addr2 and
 * name their buffers in slots, which __kipc_sync() copies into the arena
 * and fills in; the prep helpers (lib/async.c) pass kipc_buf_offset() of
 * the caller's arena buffers; the unit tests' harness (tests/unit/) passes
 * offsets in its fake arena. Timeouts and types are set on top with
 * kipc_sqe_set_timeout() and kipc_sqe_set_type() (<kipc/libkipc.h>).
 *
 * Each encoder writes the whole entry except user_data, which keeps what
 * kipc_get_sqe() or the caller put there: start from a zeroed entry.
 * addr and addr2 are arena offsets; lengths are the wire's 32 bits (a
 * synchronous wrapper refuses a longer buffer before, EMSGSIZE).
 *
 * Plain C, usable from C11 and C++20.
 */
#ifndef _LIBKIPC_SQE_H
#define _LIBKIPC_SQE_H

#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <kipc/kipc.h>
#include <kipc/mqueue.h>

/* The fields every entry has; the rest zeroed, user_data kept. */
static inline void __kipc_enc(struct kipc_sqe *sqe, uint8_t op, int64_t target,
			      uint32_t flags)
{
	uint64_t ud = sqe->user_data;
	memset(sqe, 0, sizeof *sqe);
	sqe->user_data = ud;
	sqe->opcode = op;
	sqe->target = target;
	sqe->flags = flags;
}

/* ---- messages ---------------------------------------------------- */

/* receive (target: sender pid or KIPC_ANY), mbox_receive (mailbox id):
 * the buffer at addr. Also the start of every call with a buffer at addr. */
static inline void __kipc_enc_receive(struct kipc_sqe *sqe, uint8_t op, int64_t target,
				      uint64_t addr, uint32_t len, uint32_t flags)
{
	__kipc_enc(sqe, op, target, flags);
	sqe->addr = addr;
	sqe->len = len;
}

/* send (target: pid), mbox_send (mailbox id): the payload at addr. */
static inline void __kipc_enc_send(struct kipc_sqe *sqe, uint8_t op, int64_t target,
				   uint64_t addr, uint32_t len, uint16_t prio,
				   uint32_t flags)
{
	__kipc_enc_receive(sqe, op, target, addr, len, flags);
	sqe->prio = prio;
}

/* mbox_receive_set: the buffer at addr, nids mailbox ids (int64_t) at ids. */
static inline void __kipc_enc_receive_set(struct kipc_sqe *sqe, uint64_t addr,
					  uint32_t len, uint64_t ids, uint32_t nids,
					  uint32_t flags)
{
	__kipc_enc_receive(sqe, KIPC_SYS_mbox_receive_set, 0, addr, len, flags);
	sqe->addr2 = ids;
	sqe->len2 = nids * (uint32_t)sizeof(int64_t);
}

/* call (target: pid), mbox_call (mailbox id): the request at addr, the
 * reply buffer at reply. */
static inline void __kipc_enc_call(struct kipc_sqe *sqe, uint8_t op, int64_t target,
				   uint64_t addr, uint32_t len, uint64_t reply,
				   uint32_t replylen, uint16_t prio, uint32_t flags)
{
	__kipc_enc_send(sqe, op, target, addr, len, prio, flags);
	sqe->addr2 = reply;
	sqe->len2 = replylen;
}

/* reply: the answer at addr to the call of token. */
static inline void __kipc_enc_reply(struct kipc_sqe *sqe, uint64_t token, uint64_t addr,
				    uint32_t len, uint32_t flags)
{
	__kipc_enc_send(sqe, KIPC_SYS_reply, (int64_t)token, addr, len, 0, flags);
}

/* reply_receive (target: sender pid or KIPC_ANY), mbox_reply_receive
 * (mailbox id): the buffer at addr as for receive, the reply to token at
 * reply. */
static inline void __kipc_enc_reply_receive(struct kipc_sqe *sqe, uint8_t op, int64_t target,
					    uint64_t addr, uint32_t len, uint64_t token,
					    uint64_t reply, uint32_t replylen, uint32_t flags)
{
	__kipc_enc_receive(sqe, op, target, addr, len, flags);
	sqe->addr2 = reply;
	sqe->len2 = replylen;
	sqe->type = (int64_t)token;
}

/* ---- objects ------------------------------------------------------ */

/* Calls with a target only: nop, mbox_destroy, cancel (target: the
 * request's user_data), cred_refresh, trace_close, mq_close. */
static inline void __kipc_enc_simple(struct kipc_sqe *sqe, uint8_t op, int64_t target,
				     uint32_t flags)
{
	__kipc_enc(sqe, op, target, flags);
}

/* mbox_open: the name at addr (len 0: anonymous), attributes at attr
 * (attrlen 0: none). */
static inline void __kipc_enc_mbox_open(struct kipc_sqe *sqe, uint32_t oflag,
					uint64_t addr, uint32_t len, uint64_t attr,
					uint32_t attrlen)
{
	__kipc_enc_receive(sqe, KIPC_SYS_mbox_open, 0, addr, len, oflag);
	sqe->addr2 = attr;
	sqe->len2 = attrlen;
}

/* mbox_set_owner, mbox_grant, mbox_revoke: mailbox id and a pid. */
static inline void __kipc_enc_pid(struct kipc_sqe *sqe, uint8_t op, int64_t id, pid_t pid)
{
	__kipc_enc(sqe, op, id, 0);
	sqe->pid = pid;
}

/* A record at addr2 (len2 bytes), read or written by the kernel:
 * mbox_stat, taskq_stat, the introspection calls (out); mbox_setattr
 * (arg: the mask), taskq_setattr, trace_open (in). */
static inline void __kipc_enc_rec(struct kipc_sqe *sqe, uint8_t op, int64_t target,
				  uint32_t flags, uint32_t arg, uint64_t addr2,
				  uint32_t len2)
{
	__kipc_enc(sqe, op, target, flags);
	sqe->len = arg;
	sqe->addr2 = addr2;
	sqe->len2 = len2;
}

/* trace_read: events into addr2 (len2 bytes). */
static inline void __kipc_enc_trace_read(struct kipc_sqe *sqe, uint64_t addr2,
					 uint32_t len2, uint32_t flags, int64_t timeout)
{
	__kipc_enc_rec(sqe, KIPC_SYS_trace_read, 0, flags, 0, addr2, len2);
	sqe->timeout = timeout;
}

/* sysctl: read key (set 0) or set it to val. */
static inline void __kipc_enc_sysctl(struct kipc_sqe *sqe, int key, int set, int64_t val)
{
	__kipc_enc(sqe, KIPC_SYS_sysctl, key, 0);
	sqe->len = set ? 1 : 0;
	sqe->type = set ? val : 0;
}

/* ---- POSIX message queues (target: the open handle, type: its fd) -- */

/* Calls that take a name at addr (and a record at o): mq_open (struct
 * kipc_mq_open), mq_unlink and net_node (olen 0). */
static inline void __kipc_enc_name(struct kipc_sqe *sqe, uint8_t op, uint64_t addr,
				   uint32_t len, uint64_t o, uint32_t olen)
{
	__kipc_enc_mbox_open(sqe, 0, addr, len, o, olen);
	sqe->opcode = op;
}

/* mq_timedsend (prio), mq_timedreceive (prio 0): the message at addr;
 * timeout counts with KIPC_F_TIMEOUT only. */
static inline void __kipc_enc_mq_xfer(struct kipc_sqe *sqe, uint8_t op, int64_t h, int fd,
				      uint64_t addr, uint32_t len, uint16_t prio,
				      uint32_t flags, int64_t timeout)
{
	__kipc_enc_send(sqe, op, h, addr, len, prio, flags);
	sqe->type = fd;
	sqe->timeout = (flags & KIPC_F_TIMEOUT) ? timeout : 0;
}

/* mq_notify (struct kipc_mq_notify in), mq_getattr (struct kipc_mq_attr
 * out): the record at addr2. */
static inline void __kipc_enc_mq_rec(struct kipc_sqe *sqe, uint8_t op, int64_t h, int fd,
				     uint64_t addr2, uint32_t len2)
{
	__kipc_enc_rec(sqe, op, h, 0, 0, addr2, len2);
	sqe->type = fd;
}

/* mq_notify_wait: the notification of token on h. */
static inline void __kipc_enc_mq_notify_wait(struct kipc_sqe *sqe, int64_t h,
					     uint64_t token)
{
	__kipc_enc(sqe, KIPC_SYS_mq_notify_wait, h, 0);
	sqe->type = (int64_t)token;
}

/* ---- System V message queues ------------------------------------- */

static inline void __kipc_enc_msgget(struct kipc_sqe *sqe, int32_t key, int msgflg)
{
	__kipc_enc(sqe, KIPC_SYS_msgget, key, 0);
	sqe->len = (uint32_t)msgflg;
}

/* msgsnd: mtext at addr; only IPC_NOWAIT of msgflg reaches the kernel
 * (as KIPC_F_NONBLOCK). */
static inline void __kipc_enc_msgsnd(struct kipc_sqe *sqe, int msqid, int64_t mtype,
				     uint64_t addr, uint32_t len, int msgflg)
{
	__kipc_enc_send(sqe, KIPC_SYS_msgsnd, msqid, addr, len, 0,
			(msgflg & KIPC_IPC_NOWAIT) ? KIPC_F_NONBLOCK : 0);
	sqe->type = mtype;
}

/* msgrcv: mtext into addr; msgflg whole in len2. */
static inline void __kipc_enc_msgrcv(struct kipc_sqe *sqe, int msqid, int64_t msgtyp,
				     uint64_t addr, uint32_t len, int msgflg)
{
	__kipc_enc_receive(sqe, KIPC_SYS_msgrcv, msqid, addr, len, 0);
	sqe->len2 = (uint32_t)msgflg;
	sqe->type = msgtyp;
}

/* msgctl: cmd in len, its buffer at addr2. */
static inline void __kipc_enc_msgctl(struct kipc_sqe *sqe, int msqid, int cmd,
				     uint64_t addr2, uint32_t len2)
{
	__kipc_enc_rec(sqe, KIPC_SYS_msgctl, msqid, 0, (uint32_t)cmd, addr2, len2);
}

#endif /* _LIBKIPC_SQE_H */
