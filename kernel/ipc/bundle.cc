// SPDX-License-Identifier: MIT
/*
 * Bundles and multishot receives (Documentation/transport.md section 14):
 * many messages for one submission entry on each side, as io_uring's
 * bundles and provided buffers.
 *
 * A bundle (mbox_send_bundle) is n nonblocking mailbox sends in a row,
 * each exactly what one mbox_send would do (rights, policy, charging,
 * tracing, ordering), stopping at the first that fails.
 *
 * A multishot receive (mbox_receive_multi, of a mailbox or, with target
 * KIPC_ANY, of the own task queue) is a receive that stays parked
 * after each message: each message it takes goes into the next buffer of
 * a ring the receiver provides in its arena, and completes with
 * KIPC_CQE_F_MORE. The ring is the receiver's shared memory: its tail is
 * read once per message, the descriptor copied before use and checked
 * like any user address; the kernel's head is its own (Request::ring_head).
 *
 * Ordering: a parked receive never sits next to a message it accepts. An
 * ordinary receive ends with its message; a multishot one stays, so
 * after each message it takes every other acceptable message queued
 * (those a delivery's refill moved into the queue, those a rekey made
 * acceptable) before it waits again, or it ends. After each message its
 * wait moves to the back of the link's receivers, as a receive posted
 * again would.
 */
#include <atomic>
#include <cstddef>

#include <kipc/ring.h>

#include "ipc.h"

namespace kipc {

namespace {

/* r's next provided buffer: 0, or -ENOBUFS (none), -EINVAL (the tail
 * ran more than the ring ahead of our head), -EFAULT. */
int next_buffer(Task &t, const Request &r, kipc_buf *b)
{
	uint32_t tail;
	if (!t.mm || t.mm->copy_from_user(&tail, r.buf + offsetof(kipc_buf_ring, tail), sizeof tail))
		return -EFAULT;
	std::atomic_thread_fence(std::memory_order_acquire); /* the entries after the tail */
	uint32_t avail = tail - r.ring_head;
	if (avail > r.buflen)
		return -EINVAL;
	if (avail == 0)
		return -ENOBUFS;
	uint64_t at = r.buf + sizeof(kipc_buf_ring) +
		      uint64_t(r.ring_head & (r.buflen - 1)) * sizeof(kipc_buf);
	if (t.mm->copy_from_user(b, at, sizeof *b))
		return -EFAULT;
	return t.mm->access_ok(b->addr, b->len) ? 0 : -EFAULT;
}

/* The first message of link that sel accepts (the queue's, then the
 * blocked senders'), as a receive would take it. */
Message *next_acceptable(Link &link, const Selector &sel)
{
	Message *m = link.msgs.find(sel);
	return m ? m : link.pending().find(sel);
}

} // namespace

/*
 * Give m to multishot r (parked or being submitted) in its next buffer
 * and post that completion (F_MORE): 0, or the -errno that ends r, with
 * m where it was. announce is traced first unless the error is EMSGSIZE
 * (as offer() does for a refused message).
 */
static int take_one(KernelImpl &k, Request &r, Link &link, Message *m, const TraceEv *announce)
{
	kipc_buf b;
	int err = next_buffer(*r.task, r, &b);
	if (!err && m->len > b.len && !(r.flags & KIPC_F_TRUNC))
		return -EMSGSIZE;
	if (!err && !k.sink.can_post(r.task->priv))
		err = -EOVERFLOW;
	if (announce)
		KIPC_TRACE(k, (*announce));
	if (err)
		return err;
	kipc_cqe cqe{};
	if ((err = k.deliver(*r.task, link, m, b.addr, b.len, r.flags, cqe)))
		return err;
	r.ring_head++;
	cqe.user_data = r.user_data;
	cqe.flags |= KIPC_CQE_F_MORE | KIPC_CQE_F_BUFFER | uint32_t(b.bid) << KIPC_CQE_BUFFER_SHIFT;
	k.complete(*r.task, cqe, r.opcode);
	if (Mailbox *mb = link.mbox)
		mb->mech->received(*mb, *r.task);
	return 0;
}

/* Every acceptable message queued, into r: 0 when none is left. */
static int take_queued(KernelImpl &k, Request &r, Link &link)
{
	while (Message *m = next_acceptable(link, r.sel))
		if (int err = take_one(k, r, link, m, nullptr))
			return err;
	return 0;
}

KernelImpl::Offer KernelImpl::offer_multi(Request *r, Link &link, Message *m,
					  const TraceEv *announce)
{
	int err = take_one(*this, *r, link, m, announce);
	if (err) {
		abort_request(r, err, true);
		return err == -EMSGSIZE ? Offer::Refused : Offer::Failed;
	}
	if ((err = take_queued(*this, *r, link))) {
		abort_request(r, err, true);
		return Offer::Delivered;
	}
	WaitEntry *w = &r->waits[0]; /* received again: the last to wait */
	link.side->receivers.remove(w);
	link.side->receivers.push_back(w);
	return Offer::Delivered;
}

long KernelImpl::do_receive_multi(Task &cur, Link &link, const Selector &sel, const MsgArgs &a,
				  uint32_t entries, uint32_t head)
{
	if (!link.use())
		return -ENOMEM;
	ReqPtr r = new_request(cur, ReqKind::Receive, a);
	r->multishot = true;
	r->buf = a.addr;
	r->buflen = entries;
	r->ring_head = head;
	r->sel = sel;
	/* what is queued first; the completions so far had F_MORE, this
	 * error is the last one */
	if (int err = take_queued(*this, *r, link))
		return err;
	if (!r->waits.resize(1))
		return -ENOMEM;
	r->waits[0].req = r.get();
	r->waits[0].link = &link;
	link.side->receivers.push_back(&r->waits[0]);
	if (Mailbox *mb = link.mbox)
		mb->mech->received(*mb, cur);
	cur.nrecv_parked++;
	KIPC_TRACE(*this, {.event = KIPC_TRACE_BLOCK, .task = &cur, .link = &link, .res = 1});
	park(std::move(r));
	return -EQUEUED;
}

/* ---- by id: what the syscalls ask for ------------------------------ */

long Mailboxes::send_bundle(Task &cur, int64_t id, const kipc_bundle_desc *d, size_t n,
			    MsgArgs &a, kipc_cqe &cqe)
{
	a.wait.nonblock = true; /* a bundle never waits */
	size_t k = 0;
	long err = 0;
	uint64_t seq = 0;
	for (; k < n; k++) {
		kipc_cqe one{};
		a.addr = d[k].addr;
		a.len = d[k].len;
		err = d[k].rsvd ? -EINVAL : send(cur, id, a, one);
		if (err)
			break;
		seq = one.seq;
	}
	if (k == 0)
		return err;
	cqe.seq = seq;
	if (k < n) {
		cqe.flags |= KIPC_CQE_F_PARTIAL;
		cqe.type = err;
	}
	return long(k);
}

long Mailboxes::receive_multi(Task &cur, int64_t id, const MsgArgs &a, uint32_t entries,
			      uint32_t head)
{
	int err;
	Selector sel; /* KIPC_ANY: the own task queue, as receive(KIPC_ANY) */
	Link *l = id == KIPC_ANY ? &cur.queue : to_receive(cur, id, a, &sel, &err);
	return l ? k_.do_receive_multi(cur, *l, sel, a, entries, head) : err;
}

} // namespace kipc
