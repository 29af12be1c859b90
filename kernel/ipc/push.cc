// SPDX-License-Identifier: MIT
/*
 * Receive push, the core's part (kipcd holds the rules:
 * kernel/daemon/push.cc; the argument: transport.md section 13).
 * push_next() walks the messages a plain receive would take next, in
 * delivery order, without taking them; take_pushed() is that receive
 * without the copy (room freed, a blocked sender completes, counted and
 * traced as a receive). The link is a native mailbox of policy ANY the
 * task may receive from, (KIPC_PUSH_TASKQ) the task's own queue, or
 * (KIPC_PUSH_MQ(h)) the POSIX queue of the task's own readable open h,
 * while the queue is not full.
 *
 * Which messages: plain ones only (untyped, not calls), at most maxlen
 * bytes, of one priority. On a mailbox, plain messages have no
 * extension and a typed or call one queued puts an index in the store:
 * then nothing is pushed (the delivery order is no longer the plain
 * list's alone). On a task queue every message has an extension (it is
 * indexed by sender, for receive(Q)) and sits in the one list of them
 * in delivery order: the walk stops at a typed or call message.
 */
#include <kipc/ring.h>

#include "ipc.h"

namespace kipc {

/* The link t's plain receive of id takes from, checked as that receive checks it. */
Link *KernelImpl::push_link(Task &t, int64_t id, int *err)
{
	if (id == KIPC_PUSH_TASKQ)
		return &t.queue;
	if (id < KIPC_PUSH_TASKQ) /* KIPC_PUSH_MQ(h): t's own open h, readable */
		return mq.push_link(t, KIPC_PUSH_TASKQ - id, err);
	Mailbox *mb = mbox.find(id, err);
	if (!mb)
		return nullptr;
	/* a receive its mechanism decides at receive time (a policy) is not pushed */
	if (!mb->mech->plain_receive(*mb)) {
		*err = -EINVAL;
		return nullptr;
	}
	*err = mbox.check_receive(t, *mb);
	return *err ? nullptr : &mb->link;
}

/*
 * The message after after_seq is found by walking from the head of the
 * queue, not by a handle kipcd kept: the pushed messages not yet taken
 * are that head (at most KIPC_PUSH_SLOTS of them, in sequence order in
 * their priority's list), and a handle of one taken meanwhile (kipcd's
 * bug) would name freed memory, or a chunk another slab reuses.
 */
int KernelImpl::push_next(Task &t, int64_t id, uint64_t after_seq, uint32_t maxlen,
			  PushMsg *out)
{
	int err;
	Link *l = push_link(t, id, &err);
	if (!l)
		return err;
	const MsgStore &q = l->msgs;
	bool taskq = id == KIPC_PUSH_TASKQ;
	if (taskq ? !q.plain.empty() : bool(q.idx))
		return -EAGAIN; /* the delivery order is not one list's */
	Message *m = q.front();
	if (after_seq) {
		while (m && m->seq < after_seq)
			m = MsgList<HdrHook>::next(m);
		if (!m || m->seq != after_seq)
			return -ESTALE; /* the daemon lost track: it recalls */
		m = MsgList<HdrHook>::next(m); /* the next of its priority */
	}
	if (!m || m->len > maxlen || m->type() || m->token())
		return -EAGAIN;
	/* a POSIX queue's claim never changes its POLLOUT: none while full */
	if (id < KIPC_PUSH_TASKQ && l->msgs.nmsg >= l->capacity)
		return -EAGAIN;
	/* a blocked sender's message that would go ahead of m once room comes */
	if (const Message *w = l->pending().front(); w && w->prio > m->prio)
		return -EAGAIN;
	out->seq = m->seq;
	out->cqe = kipc_cqe{};
	out->cqe.res = m->len;
	describe_received(out->cqe, *m, m->len, l->id());
	out->data = m->data;
	return 0;
}

bool KernelImpl::take_pushed(Task &t, int64_t id, uint64_t seq)
{
	int err;
	Link *l = &t.queue;
	if (id < KIPC_PUSH_TASKQ) {
		l = mq.push_link(t, KIPC_PUSH_TASKQ - id, &err);
		if (!l)
			return false;
	} else if (id != KIPC_PUSH_TASKQ) {
		Mailbox *mb = mbox.find(id, &err);
		if (!mb)
			return false;
		l = &mb->link;
	}
	Message *m = l->msgs.front();
	if (!m || m->seq != seq || !l->use())
		return false;
	kipc_cqe cqe{};
	return deliver(t, *l, m, 0, m->len, 0, cqe, false) == 0;
}

} // namespace kipc
