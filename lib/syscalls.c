/* SPDX-License-Identifier: MIT */
/*
 * libkipc: one synchronous wrapper per syscall of <kipc/syscalls.h>.
 * Each encodes its SQE (lib/sqe.h), names the user buffers that go
 * through the arena, and runs __kipc_sync(); -errno becomes errno and -1
 * in one place, __kipc_ret() (lib/internal.h). The calls of an ordinary
 * shape share one helper per shape (do_send, do_receive, ...) and are
 * generated from their rows of lib/calls.h at the end of this file; the
 * others are written out.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "calls.h"
#include "internal.h"

static void fill_info(struct kipc_msginfo *info, const struct kipc_cqe *c)
{
	if (info)
		*info = (struct kipc_msginfo){c->pid, c->prio, c->type, c->len,
					      c->flags, c->seq, c->source, c->token};
}

/* opts into sqe: its prio only on a call (the others fail EINVAL). */
static int apply_opts(struct kipc_sqe *sqe, const struct kipc_opts *opts)
{
	if (!opts)
		return 0;
	bool call = sqe->opcode == KIPC_SYS_call || sqe->opcode == KIPC_SYS_mbox_call;
	if ((opts->prio && !call) || opts->prio > KIPC_PRIO_MAX)
		return -EINVAL;
	sqe->timeout = opts->timeout;
	sqe->type = opts->type;
	if (call)
		sqe->prio = (uint16_t)opts->prio;
	return 0;
}

static long simple(uint8_t op, int64_t target, unsigned flags)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_simple(&sqe, op, target, flags);
	struct kipc_cqe cqe;
	return __kipc_sync(&sqe, NULL, NULL, &cqe);
}

int kipc_nop(void)
{
	return (int)__kipc_ret(simple(KIPC_SYS_nop, 0, 0));
}

/* ---------------------------------------------------------------- */
/* send / receive                                                     */

static long do_send(uint8_t op, int64_t target, const void *buf, size_t len,
		    unsigned prio, unsigned flags, const struct kipc_opts *opts)
{
	if (prio > KIPC_PRIO_MAX)
		return -EINVAL;
	if ((op == KIPC_SYS_mbox_send || op == KIPC_SYS_send) && !opts) {
		long r = __kipc_credit_send(op, target, 0, buf, len, prio, flags);
		if (r != 1)
			return r;
	}
	struct kipc_sqe sqe = {0};
	__kipc_enc_send(&sqe, op, target, 0, (uint32_t)len, (uint16_t)prio, flags);
	if (apply_opts(&sqe, opts))
		return -EINVAL;
	struct kipc_slot s = {.in = buf, .len = len};
	struct kipc_cqe cqe;
	long r = __kipc_sync(&sqe, &s, NULL, &cqe);
	return r < 0 ? r : 0;
}

static long do_receive(uint8_t op, int64_t target, void *buf, size_t len,
		       struct kipc_msginfo *info, unsigned flags,
		       const struct kipc_opts *opts)
{
	struct kipc_cqe cqe;
	if ((op == KIPC_SYS_mbox_receive || (op == KIPC_SYS_receive && target == KIPC_ANY)) &&
	    !opts) {
		/* a mailbox id is > 0: never the task queue's KIPC_PUSH_TASKQ */
		int64_t link = op == KIPC_SYS_receive ? KIPC_PUSH_TASKQ : target > 0 ? target : 0;
		long r = __kipc_push_receive(link, buf, len, flags, &cqe, false);
		if (r != KIPC_NOT_PUSHED) {
			if (r >= 0)
				fill_info(info, &cqe);
			return r;
		}
	}
	struct kipc_sqe sqe = {0};
	__kipc_enc_receive(&sqe, op, target, 0, (uint32_t)len, flags);
	if (apply_opts(&sqe, opts))
		return -EINVAL;
	struct kipc_slot s = {.out = buf, .len = len, .by_res = true};
	long r = __kipc_sync(&sqe, &s, NULL, &cqe);
	if (r >= 0)
		fill_info(info, &cqe);
	return r;
}

/* ---------------------------------------------------------------- */
/* Mailboxes                                                          */

int64_t kipc_mbox_open(const char *name, unsigned oflag,
		       const struct kipc_mbox_attr *attr)
{
	size_t nlen = name ? strlen(name) : 0;
	if (nlen > KIPC_NAME_MAX)
		return __kipc_ret(-ENAMETOOLONG);
	if (name && nlen == 0) /* malformed, not anonymous (that is NULL) */
		return __kipc_ret(-EINVAL);
	struct kipc_sqe sqe = {0};
	__kipc_enc_mbox_open(&sqe, oflag, 0, (uint32_t)nlen, 0,
			     attr ? (uint32_t)sizeof *attr : 0);
	struct kipc_slot s0 = {.in = name, .len = nlen};
	struct kipc_slot s1 = {.in = attr, .len = attr ? sizeof *attr : 0};
	struct kipc_cqe cqe;
	return __kipc_ret(__kipc_sync(&sqe, &s0, attr ? &s1 : NULL, &cqe));
}

int kipc_mbox_destroy(int64_t id)
{
	return (int)__kipc_ret(simple(KIPC_SYS_mbox_destroy, id, 0));
}

int kipc_mbox_stat(int64_t id, struct kipc_mbox_stat *st)
{
	long r = __kipc_sync_out(KIPC_SYS_mbox_stat, id, 0, st, sizeof *st);
	return __kipc_ret0(r);
}

int kipc_mbox_setattr(int64_t id, unsigned mask,
		      const struct kipc_mbox_attr *attr)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_rec(&sqe, KIPC_SYS_mbox_setattr, id, 0, mask, 0, sizeof *attr);
	struct kipc_slot s1 = {.in = attr, .len = sizeof *attr};
	struct kipc_cqe cqe;
	long r = __kipc_sync(&sqe, NULL, &s1, &cqe);
	return __kipc_ret0(r);
}

ssize_t kipc_mbox_receive_set_x(const int64_t *ids, unsigned nids, void *buf,
				size_t len, struct kipc_msginfo *info,
				unsigned flags, const struct kipc_opts *opts)
{
	size_t idlen = (size_t)nids * sizeof(int64_t);
	struct kipc_sqe sqe = {0};
	__kipc_enc_receive_set(&sqe, 0, (uint32_t)len, 0, nids, flags);
	if (apply_opts(&sqe, opts))
		return __kipc_ret(-EINVAL);
	struct kipc_slot s0 = {.out = buf, .len = len, .by_res = true};
	struct kipc_slot s1 = {.in = ids, .len = idlen};
	struct kipc_cqe cqe;
	long r = __kipc_sync(&sqe, &s0, &s1, &cqe);
	if (r >= 0)
		fill_info(info, &cqe);
	return __kipc_ret(r);
}

ssize_t kipc_mbox_receive_set(const int64_t *ids, unsigned nids, void *buf,
			      size_t len, struct kipc_msginfo *info,
			      unsigned flags)
{
	return kipc_mbox_receive_set_x(ids, nids, buf, len, info, flags, NULL);
}

/* ---------------------------------------------------------------- */
/* RPC                                                                */

/*
 * Run sqe and fill info from its completion on success, and on a
 * failure that has one (user_data set): a failed call still says whether
 * the server got the request (KIPC_CQE_F_DELIVERED), a failed
 * reply_receive whether the reply went (KIPC_CQE_F_REPLIED).
 */
static long sync_info(struct kipc_sqe *sqe, struct kipc_slot *s0, struct kipc_slot *s1,
		      struct kipc_msginfo *info)
{
	struct kipc_cqe cqe;
	memset(&cqe, 0, sizeof cqe);
	long r = __kipc_sync(sqe, s0, s1, &cqe);
	if (info && (r >= 0 || cqe.user_data))
		fill_info(info, &cqe);
	return r;
}

static long do_call(uint8_t op, int64_t target, const void *req,
		    size_t reqlen, void *reply, size_t replylen,
		    struct kipc_msginfo *info, unsigned flags,
		    const struct kipc_opts *opts)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_call(&sqe, op, target, 0, (uint32_t)reqlen, 0, (uint32_t)replylen, 0,
			flags);
	if (apply_opts(&sqe, opts))
		return -EINVAL;
	struct kipc_slot s0 = {.in = req, .len = reqlen};
	struct kipc_slot s1 = {.out = reply, .len = replylen, .by_res = true};
	return sync_info(&sqe, &s0, &s1, info);
}

int kipc_reply_x(uint64_t token, const void *buf, size_t len, unsigned flags,
		 const struct kipc_opts *opts)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_reply(&sqe, token, 0, (uint32_t)len, flags);
	if (apply_opts(&sqe, opts))
		return __kipc_ret0(-EINVAL);
	struct kipc_slot s = {.in = buf, .len = len};
	struct kipc_cqe cqe;
	long r = __kipc_sync(&sqe, &s, NULL, &cqe);
	return __kipc_ret0(r);
}

int kipc_reply(uint64_t token, const void *buf, size_t len, unsigned flags)
{
	return kipc_reply_x(token, buf, len, flags, NULL);
}

static long do_reply_receive(uint8_t op, uint64_t token, const void *rep, size_t replen,
			     int64_t from, void *buf, size_t len,
			     struct kipc_msginfo *info, unsigned flags,
			     const struct kipc_opts *opts)
{
	if (opts && (opts->type || opts->prio))
		return -EINVAL; /* the type field holds the token; a reply's prio is 0 */
	struct kipc_sqe sqe = {0};
	__kipc_enc_reply_receive(&sqe, op, from, 0, (uint32_t)len, token, 0, (uint32_t)replen,
				 flags);
	if (opts)
		sqe.timeout = opts->timeout;
	struct kipc_slot s0 = {.out = buf, .len = len, .by_res = true};
	struct kipc_slot s1 = {.in = rep, .len = replen};
	return sync_info(&sqe, &s0, &s1, info);
}

/* ---------------------------------------------------------------- */
/* Task queue                                                         */

int kipc_taskq_stat(struct kipc_taskq_stat *st)
{
	long r = __kipc_sync_out(KIPC_SYS_taskq_stat, 0, 0, st, sizeof *st);
	return __kipc_ret0(r);
}

int kipc_taskq_setattr(const struct kipc_mbox_attr *attr)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_rec(&sqe, KIPC_SYS_taskq_setattr, 0, 0, 0, 0, sizeof *attr);
	struct kipc_slot s1 = {.in = attr, .len = sizeof *attr};
	struct kipc_cqe cqe;
	long r = __kipc_sync(&sqe, NULL, &s1, &cqe);
	return __kipc_ret0(r);
}

int kipc_cred_refresh(void)
{
	pthread_mutex_lock(&__kipc_lib.lock);
	struct kipc_att *a = __kipc_lib.cur;
	bool attached = a && !a->dead && (a->pid == getpid() || a->delegated);
	pthread_mutex_unlock(&__kipc_lib.lock);
	if (!attached)
		return 0; /* the next attach reads them (SO_PEERCRED) */
	long r = simple(KIPC_SYS_cred_refresh, 0, 0);
	return __kipc_ret0(r);
}

int kipc_cancel(uint64_t user_data, unsigned flags)
{
	long r = simple(KIPC_SYS_cancel, (int64_t)user_data, flags);
	return __kipc_ret0(r);
}

static long do_pid(uint8_t op, int64_t id, pid_t pid)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_pid(&sqe, op, id, pid);
	struct kipc_cqe cqe;
	return __kipc_sync(&sqe, NULL, NULL, &cqe);
}

/* ---------------------------------------------------------------- */
/* The calls of lib/calls.h: one macro per shape                      */

#define SYNC_SEND(name, T)                                                          \
	int kipc_##name##_x(T target, const void *buf, size_t len, unsigned prio,   \
			    unsigned flags, const struct kipc_opts *opts)           \
	{                                                                           \
		return __kipc_ret0(do_send(KIPC_SYS_##name, target, buf, len, prio, \
					   flags, opts));                           \
	}                                                                           \
	int kipc_##name(T target, const void *buf, size_t len, unsigned prio,       \
			unsigned flags)                                             \
	{                                                                           \
		return kipc_##name##_x(target, buf, len, prio, flags, NULL);        \
	}                                                                           \
	int kipc_##name##_timed(T target, const void *buf, size_t len, unsigned prio, \
				unsigned flags, int64_t timeout)                    \
	{                                                                           \
		return kipc_##name##_x(target, buf, len, prio, flags | KIPC_F_TIMEOUT, \
				       &(struct kipc_opts){.timeout = timeout});    \
	}

/* A message into buf, reported in info; never waits (no variants). */
#define SYNC_READ(name, T)                                                          \
	ssize_t kipc_##name(T target, void *buf, size_t len,                        \
			    struct kipc_msginfo *info, unsigned flags)              \
	{                                                                           \
		return __kipc_ret(do_receive(KIPC_SYS_##name, target, buf, len, info, \
					     flags, NULL));                         \
	}

/* READ, and the variants of a call that waits. */
#define SYNC_RECEIVE(name, T)                                                       \
	SYNC_READ(name, T)                                                          \
	ssize_t kipc_##name##_x(T target, void *buf, size_t len,                    \
				struct kipc_msginfo *info, unsigned flags,          \
				const struct kipc_opts *opts)                       \
	{                                                                           \
		return __kipc_ret(do_receive(KIPC_SYS_##name, target, buf, len, info, \
					     flags, opts));                         \
	}                                                                           \
	ssize_t kipc_##name##_timed(T target, void *buf, size_t len,                \
				    struct kipc_msginfo *info, unsigned flags,      \
				    int64_t timeout)                                \
	{                                                                           \
		return kipc_##name##_x(target, buf, len, info, flags | KIPC_F_TIMEOUT, \
				       &(struct kipc_opts){.timeout = timeout});    \
	}

#define SYNC_CALL(name, T)                                                          \
	ssize_t kipc_##name##_x(T target, const void *req, size_t reqlen,           \
				void *reply, size_t replylen,                       \
				struct kipc_msginfo *info, unsigned flags,          \
				const struct kipc_opts *opts)                       \
	{                                                                           \
		return __kipc_ret(do_call(KIPC_SYS_##name, target, req, reqlen, reply, \
					  replylen, info, flags, opts));            \
	}                                                                           \
	ssize_t kipc_##name(T target, const void *req, size_t reqlen, void *reply,  \
			    size_t replylen, struct kipc_msginfo *info, unsigned flags) \
	{                                                                           \
		return kipc_##name##_x(target, req, reqlen, reply, replylen, info,  \
				       flags, NULL);                                \
	}

#define SYNC_REPLY_RECEIVE(name, T)                                                 \
	ssize_t kipc_##name##_x(uint64_t token, const void *reply, size_t replylen, \
				T from, void *buf, size_t len,                      \
				struct kipc_msginfo *info, unsigned flags,          \
				const struct kipc_opts *opts)                       \
	{                                                                           \
		return __kipc_ret(do_reply_receive(KIPC_SYS_##name, token, reply,   \
						   replylen, from, buf, len, info,  \
						   flags, opts));                   \
	}                                                                           \
	ssize_t kipc_##name(uint64_t token, const void *reply, size_t replylen,     \
			    T from, void *buf, size_t len,                          \
			    struct kipc_msginfo *info, unsigned flags)              \
	{                                                                           \
		return kipc_##name##_x(token, reply, replylen, from, buf, len, info, \
				       flags, NULL);                                \
	}

#define SYNC_PID(name, T)                                                           \
	int kipc_##name(T id, pid_t pid)                                            \
	{                                                                           \
		return __kipc_ret0(do_pid(KIPC_SYS_##name, id, pid));               \
	}

#define SYNC_(shape, name, T) SYNC_##shape(name, T)
KIPC_LIB_CALLS(SYNC_)
