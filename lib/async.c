/* SPDX-License-Identifier: MIT */
/*
 * libkipc: the asynchronous API. Entries are staged in private memory
 * (kipc_get_sqe) and copied into the shared SQ by kipc_submit(), under
 * the library lock, so synchronous calls from other threads can share
 * the ring. Completions are reaped from the shared CQ into a private
 * queue (the synchronous waiters' completions go to them instead) and
 * handed out in order by kipc_peek_cqe()/kipc_wait_cqe().
 */
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "internal.h"

struct kipc_sqe *kipc_get_sqe(void)
{
	pthread_mutex_lock(&__kipc_lib.lock);
	struct kipc_sqe *sqe = NULL;
	int err = __kipc_ensure_attached();
	if (!err) {
		unsigned cap = __kipc_lib.cur->sq_entries;
		if (__kipc_lib.stage_cap < cap) {
			struct kipc_sqe *s = realloc(__kipc_lib.stage, cap * sizeof *s);
			if (s) {
				__kipc_lib.stage = s;
				__kipc_lib.stage_cap = cap;
			}
		}
		if (__kipc_lib.nstage < __kipc_lib.stage_cap) {
			sqe = &__kipc_lib.stage[__kipc_lib.nstage++];
			memset(sqe, 0, sizeof *sqe);
		} else {
			err = __kipc_lib.stage_cap < cap ? -ENOMEM : -EBUSY;
		}
	}
	pthread_mutex_unlock(&__kipc_lib.lock);
	if (!sqe)
		__kipc_ret(err);
	return sqe;
}

int kipc_submit(void)
{
	pthread_mutex_lock(&__kipc_lib.lock);
	int err = __kipc_ensure_attached();
	int n = 0;
	if (err)
		goto out;
	struct kipc_att *a = __kipc_lib.cur;
	for (unsigned i = 0; i < __kipc_lib.nstage; i++) {
		if (__kipc_lib.stage[i].user_data & KIPC_UD_LIBRARY) {
			err = -EINVAL;
			break;
		}
	}
	if (err)
		goto out;
	a->refs++;
	for (unsigned i = 0; i < __kipc_lib.nstage; i++) {
		err = __kipc_push_sqe(a, &__kipc_lib.stage[i], false);
		if (err)
			break;
		n++;
	}
	if (n)
		__kipc_publish_sq(a);
	/* Entries that did not fit (SQ full: the kernel is busy or holds
	 * max_inflight requests) stay staged for the next kipc_submit(). */
	memmove(__kipc_lib.stage, __kipc_lib.stage + n, (__kipc_lib.nstage - n) * sizeof *__kipc_lib.stage);
	__kipc_lib.nstage -= n;
	__kipc_att_put(a);
out:
	pthread_mutex_unlock(&__kipc_lib.lock);
	return (int)__kipc_ret(err && !n ? err : n);
}

/* Lock held: reap, then hand out the head of the async queue. */
static bool head(struct kipc_cqe **cqe)
{
	if (__kipc_lib.cur)
		__kipc_reap(__kipc_lib.cur);
	if (!__kipc_lib.aq_count)
		return false;
	/* A stable copy: the queue may grow (move) before cqe_seen(). */
	__kipc_lib.peek = __kipc_lib.aq[__kipc_lib.aq_head];
	*cqe = &__kipc_lib.peek;
	return true;
}

int kipc_peek_cqe(struct kipc_cqe **cqe)
{
	pthread_mutex_lock(&__kipc_lib.lock);
	bool ok = head(cqe);
	pthread_mutex_unlock(&__kipc_lib.lock);
	return ok ? 0 : (int)__kipc_ret(-EAGAIN);
}

static int wait_cqe(struct kipc_cqe **cqe, int64_t deadline)
{
	int err = 0;
	bool spun = false;
	pthread_mutex_lock(&__kipc_lib.lock);
	for (;;) {
		if (head(cqe))
			break;
		struct kipc_att *a = __kipc_lib.cur;
		if (!a || a->dead) {
			err = -ECONNRESET;
			break;
		}
		a->refs++;
		if (!spun) {
			/* as a synchronous call does: the answer is often µs away */
			spun = true;
			__kipc_spin(a, NULL);
			__kipc_att_put(a);
			continue;
		}
		err = __kipc_sleep(a, deadline, NULL);
		__kipc_att_put(a);
		if (err == -ETIMEDOUT || err == -EINTR) {
			if (head(cqe))
				err = 0;
			break;
		}
		err = 0;
	}
	pthread_mutex_unlock(&__kipc_lib.lock);
	return (int)__kipc_ret(err);
}

int kipc_wait_cqe(struct kipc_cqe **cqe)
{
	return wait_cqe(cqe, 0);
}

int kipc_wait_cqe_timeout(struct kipc_cqe **cqe, int64_t timeout_ns)
{
	return wait_cqe(cqe, __kipc_now() + (timeout_ns > 0 ? timeout_ns : 0));
}

void kipc_cqe_seen(struct kipc_cqe *cqe)
{
	pthread_mutex_lock(&__kipc_lib.lock);
	if (__kipc_lib.aq_count && cqe == &__kipc_lib.peek) {
		__kipc_lib.aq_head = (__kipc_lib.aq_head + 1) % __kipc_lib.aq_cap;
		__kipc_lib.aq_count--;
	}
	pthread_mutex_unlock(&__kipc_lib.lock);
}

int kipc_ring_fd(void)
{
	pthread_mutex_lock(&__kipc_lib.lock);
	int err = __kipc_ensure_attached();
	int fd = -1;
	if (!err) {
		struct kipc_att *a = __kipc_lib.cur;
		if (a->notify < 0) {
			err = -EOPNOTSUPP;
		} else {
			__atomic_fetch_or(&a->ctl->cq_flags, KIPC_CQ_EVENTFD,
					  __ATOMIC_SEQ_CST);
			fd = a->notify;
		}
	}
	pthread_mutex_unlock(&__kipc_lib.lock);
	return (int)__kipc_ret(fd < 0 ? err : fd);
}

/* ---------------------------------------------------------------- */
/* Prep helpers                                                       */

/* The arena offset of a buffer of kipc_buf_alloc(), 0 for none. */
static uint64_t off(const void *buf)
{
	return buf ? kipc_buf_offset(buf) : 0;
}

void kipc_prep_nop(struct kipc_sqe *sqe)
{
	__kipc_enc_simple(sqe, KIPC_SYS_nop, 0, 0);
}

void kipc_prep_mbox_receive_set(struct kipc_sqe *sqe, const int64_t *ids,
				unsigned nids, void *buf, size_t len,
				unsigned flags)
{
	__kipc_enc_receive_set(sqe, off(buf), (uint32_t)len, off(ids), nids, flags);
}

void kipc_prep_reply(struct kipc_sqe *sqe, uint64_t token, const void *buf,
		     size_t len, unsigned flags)
{
	__kipc_enc_reply(sqe, token, off(buf), (uint32_t)len, flags);
}

void kipc_prep_mbox_send_bundle(struct kipc_sqe *sqe, int64_t id,
				const struct kipc_bundle_desc *descs, unsigned n,
				unsigned prio, unsigned flags)
{
	__kipc_enc_send(sqe, KIPC_SYS_mbox_send_bundle, id, off(descs),
			n * (uint32_t)sizeof *descs, (uint16_t)prio, flags);
}

void kipc_prep_send_bundle(struct kipc_sqe *sqe, pid_t pid,
			   const struct kipc_bundle_desc *descs, unsigned n,
			   unsigned prio, unsigned flags)
{
	__kipc_enc_send(sqe, KIPC_SYS_send_bundle, pid, off(descs),
			n * (uint32_t)sizeof *descs, (uint16_t)prio, flags);
}

void kipc_prep_mbox_receive_multi(struct kipc_sqe *sqe, int64_t id,
				  struct kipc_buf_ring *br, unsigned entries,
				  unsigned head, unsigned flags)
{
	__kipc_enc_receive(sqe, KIPC_SYS_mbox_receive_multi, id, off(br), entries, flags);
	sqe->len2 = head;
}

struct kipc_buf_ring *kipc_buf_ring_alloc(unsigned entries)
{
	if (!entries || entries > KIPC_BUF_RING_MAX || (entries & (entries - 1))) {
		errno = EINVAL;
		return NULL;
	}
	struct kipc_buf_ring *br = kipc_buf_alloc(KIPC_BUF_RING_SIZE(entries));
	if (br)
		memset(br, 0, KIPC_BUF_RING_SIZE(entries));
	return br;
}

void kipc_buf_ring_free(struct kipc_buf_ring *br)
{
	kipc_buf_free(br);
}

void kipc_prep_cancel(struct kipc_sqe *sqe, uint64_t user_data,
		      unsigned flags)
{
	__kipc_enc_simple(sqe, KIPC_SYS_cancel, (int64_t)user_data, flags);
}

/* The calls of lib/calls.h: one macro per shape (PID: synchronous only). */

#define PREP_SEND(name, T)                                                          \
	void kipc_prep_##name(struct kipc_sqe *sqe, T target, const void *buf,      \
			      size_t len, unsigned prio, unsigned flags)            \
	{                                                                           \
		__kipc_enc_send(sqe, KIPC_SYS_##name, target, off(buf), (uint32_t)len, \
				(uint16_t)prio, flags);                             \
	}

#define PREP_READ(name, T)                                                          \
	void kipc_prep_##name(struct kipc_sqe *sqe, T target, void *buf, size_t len, \
			      unsigned flags)                                       \
	{                                                                           \
		__kipc_enc_receive(sqe, KIPC_SYS_##name, target, off(buf), (uint32_t)len, \
				   flags);                                          \
	}
#define PREP_RECEIVE PREP_READ

#define PREP_CALL(name, T)                                                          \
	void kipc_prep_##name(struct kipc_sqe *sqe, T target, const void *req,      \
			      size_t reqlen, void *reply, size_t replylen,          \
			      unsigned prio, unsigned flags)                        \
	{                                                                           \
		__kipc_enc_call(sqe, KIPC_SYS_##name, target, off(req), (uint32_t)reqlen, \
				off(reply), (uint32_t)replylen, (uint16_t)prio, flags); \
	}

#define PREP_REPLY_RECEIVE(name, T)                                                 \
	void kipc_prep_##name(struct kipc_sqe *sqe, uint64_t token, const void *reply, \
			      size_t replylen, T from, void *buf, size_t len,       \
			      unsigned flags)                                       \
	{                                                                           \
		__kipc_enc_reply_receive(sqe, KIPC_SYS_##name, from, off(buf),      \
					 (uint32_t)len, token, off(reply),          \
					 (uint32_t)replylen, flags);                \
	}

#define PREP_PID(name, T)

#define PREP_(shape, name, T) PREP_##shape(name, T)
KIPC_LIB_CALLS(PREP_)
