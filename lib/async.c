/* SPDX-License-Identifier: MIT */
/*
 * libkipc: the asynchronous API. Entries are staged in private memory
 * (kipc_get_sqe) and copied into the shared SQ by kipc_submit(), under
 * the library lock, so synchronous calls from other threads can share
 * the ring. Completions are reaped from the shared CQ into a private
 * queue (the synchronous waiters' completions go to them instead) and
 * handed out in order by kipc_peek_cqe()/kipc_wait_cqe().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define L __kipc_lib

struct kipc_sqe *kipc_get_sqe(void)
{
	pthread_mutex_lock(&L.lock);
	struct kipc_sqe *sqe = NULL;
	int err = __kipc_ensure_attached();
	if (!err) {
		unsigned cap = L.cur->sq_entries;
		if (L.stage_cap < cap) {
			struct kipc_sqe *s = realloc(L.stage, cap * sizeof *s);
			if (s) {
				L.stage = s;
				L.stage_cap = cap;
			}
		}
		if (L.nstage < L.stage_cap) {
			sqe = &L.stage[L.nstage++];
			memset(sqe, 0, sizeof *sqe);
		} else {
			err = L.stage_cap < cap ? -ENOMEM : -EBUSY;
		}
	}
	pthread_mutex_unlock(&L.lock);
	if (!sqe)
		errno = -err;
	return sqe;
}

int kipc_submit(void)
{
	pthread_mutex_lock(&L.lock);
	int err = __kipc_ensure_attached();
	int n = 0;
	if (err)
		goto out;
	struct kipc_att *a = L.cur;
	for (unsigned i = 0; i < L.nstage; i++) {
		if (L.stage[i].user_data & KIPC_UD_LIBRARY) {
			err = -EINVAL;
			break;
		}
	}
	if (err)
		goto out;
	a->refs++;
	for (unsigned i = 0; i < L.nstage; i++) {
		err = __kipc_push_sqe(a, &L.stage[i], false);
		if (err)
			break;
		n++;
	}
	if (n)
		__kipc_publish_sq(a);
	/* Entries that did not fit (SQ full: the kernel is busy or holds
	 * max_inflight requests) stay staged for the next kipc_submit(). */
	memmove(L.stage, L.stage + n, (L.nstage - n) * sizeof *L.stage);
	L.nstage -= n;
	__kipc_att_put(a);
out:
	pthread_mutex_unlock(&L.lock);
	if (err && !n) {
		errno = -err;
		return -1;
	}
	return n;
}

/* Lock held: reap, then hand out the head of the async queue. */
static bool head(struct kipc_cqe **cqe)
{
	if (L.cur)
		__kipc_reap(L.cur);
	if (!L.aq_count)
		return false;
	/* A stable copy: the queue may grow (move) before cqe_seen(). */
	L.peek = L.aq[L.aq_head];
	*cqe = &L.peek;
	return true;
}

int kipc_peek_cqe(struct kipc_cqe **cqe)
{
	pthread_mutex_lock(&L.lock);
	bool ok = head(cqe);
	pthread_mutex_unlock(&L.lock);
	if (!ok) {
		errno = EAGAIN;
		return -1;
	}
	return 0;
}

static int wait_cqe(struct kipc_cqe **cqe, int64_t deadline)
{
	int err = 0;
	bool spun = false;
	pthread_mutex_lock(&L.lock);
	for (;;) {
		if (head(cqe))
			break;
		struct kipc_att *a = L.cur;
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
	pthread_mutex_unlock(&L.lock);
	if (err) {
		errno = -err;
		return -1;
	}
	return 0;
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
	pthread_mutex_lock(&L.lock);
	if (L.aq_count && cqe == &L.peek) {
		L.aq_head = (L.aq_head + 1) % L.aq_cap;
		L.aq_count--;
	}
	pthread_mutex_unlock(&L.lock);
}

int kipc_ring_fd(void)
{
	pthread_mutex_lock(&L.lock);
	int err = __kipc_ensure_attached();
	int fd = -1;
	if (!err) {
		struct kipc_att *a = L.cur;
		if (a->notify < 0) {
			err = -EOPNOTSUPP;
		} else {
			__atomic_fetch_or(&a->ctl->cq_flags, KIPC_CQ_EVENTFD,
					  __ATOMIC_SEQ_CST);
			fd = a->notify;
		}
	}
	pthread_mutex_unlock(&L.lock);
	if (fd < 0)
		errno = -err;
	return fd;
}

/* ---------------------------------------------------------------- */
/* Prep helpers                                                       */

static uint64_t off(const void *buf)
{
	return buf ? kipc_buf_offset(buf) : 0;
}

static void prep(struct kipc_sqe *sqe, uint8_t op, int64_t target,
		 const void *buf, size_t len, unsigned flags)
{
	uint64_t ud = sqe->user_data;
	memset(sqe, 0, sizeof *sqe);
	sqe->user_data = ud;
	sqe->opcode = op;
	sqe->target = target;
	sqe->flags = flags;
	sqe->addr = off(buf);
	sqe->len = (uint32_t)len;
}

void kipc_prep_nop(struct kipc_sqe *sqe)
{
	prep(sqe, KIPC_SYS_nop, 0, NULL, 0, 0);
}

void kipc_prep_send(struct kipc_sqe *sqe, pid_t pid, const void *buf,
		    size_t len, unsigned prio, unsigned flags)
{
	prep(sqe, KIPC_SYS_send, pid, buf, len, flags);
	sqe->prio = (uint16_t)prio;
}

void kipc_prep_receive(struct kipc_sqe *sqe, pid_t from, void *buf,
		       size_t len, unsigned flags)
{
	prep(sqe, KIPC_SYS_receive, from, buf, len, flags);
}

void kipc_prep_mbox_send(struct kipc_sqe *sqe, int64_t id, const void *buf,
			 size_t len, unsigned prio, unsigned flags)
{
	prep(sqe, KIPC_SYS_mbox_send, id, buf, len, flags);
	sqe->prio = (uint16_t)prio;
}

void kipc_prep_mbox_receive(struct kipc_sqe *sqe, int64_t id, void *buf,
			    size_t len, unsigned flags)
{
	prep(sqe, KIPC_SYS_mbox_receive, id, buf, len, flags);
}

void kipc_prep_mbox_receive_set(struct kipc_sqe *sqe, const int64_t *ids,
				unsigned nids, void *buf, size_t len,
				unsigned flags)
{
	prep(sqe, KIPC_SYS_mbox_receive_set, 0, buf, len, flags);
	sqe->addr2 = off(ids);
	sqe->len2 = nids * (uint32_t)sizeof(int64_t);
}

void kipc_prep_call(struct kipc_sqe *sqe, pid_t pid, const void *req,
		    size_t reqlen, void *reply, size_t replylen,
		    unsigned prio, unsigned flags)
{
	prep(sqe, KIPC_SYS_call, pid, req, reqlen, flags);
	sqe->prio = (uint16_t)prio;
	sqe->addr2 = off(reply);
	sqe->len2 = (uint32_t)replylen;
}

void kipc_prep_mbox_call(struct kipc_sqe *sqe, int64_t id, const void *req,
			 size_t reqlen, void *reply, size_t replylen,
			 unsigned prio, unsigned flags)
{
	kipc_prep_call(sqe, 0, req, reqlen, reply, replylen, prio, flags);
	sqe->opcode = KIPC_SYS_mbox_call;
	sqe->target = id;
}

void kipc_prep_reply(struct kipc_sqe *sqe, uint64_t token, const void *buf,
		     size_t len, unsigned flags)
{
	prep(sqe, KIPC_SYS_reply, (int64_t)token, buf, len, flags);
}

void kipc_prep_cancel(struct kipc_sqe *sqe, uint64_t user_data,
		      unsigned flags)
{
	prep(sqe, KIPC_SYS_cancel, (int64_t)user_data, NULL, 0, flags);
}
