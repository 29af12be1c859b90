// SPDX-License-Identifier: MIT
/*
 * Bundles and multishot receives (Documentation/transport.md section 14):
 * many messages for one submission entry on each side, as io_uring's
 * bundles and provided buffers.
 *
 * A bundle is n sends in a row to one mailbox (mbox_send_bundle) or one
 * task queue (send_bundle, by pid), each exactly what one mbox_send or
 * send would do (rights, policy, charging, tracing, ordering), stopping
 * at the first that fails: the link is looked up for each (bundle_link),
 * the rest is the same for both. With KIPC_F_NONBLOCK a full link fails
 * the message EAGAIN; else the message waits as a blocking send's does
 * (on the link's pending senders, behind those waiting before it), on
 * the bundle's own request, which then keeps the rest (BundleWait,
 * charged to the sender's user). When that message goes
 * (refill() queues it, or a receiver takes it: finish() of the request
 * with res 0), the request stays parked and the rest goes on when the
 * entry that moved it ends (leave(): resume_bundles()), as if the caller
 * had sent the next message on seeing the completion: never from inside
 * a delivery, so nothing the delivery walks changes under it. Any other
 * end of the request (deadline, cancel, destroy, lost right, exit of
 * either side) is finish() with an error: the completion says how many went.
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
#include <memory>
#include <vector>

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

/* ---- bundles ------------------------------------------------------- */

/* What a parked bundle keeps: the messages from went on, its arguments. */
struct BundleWait {
	uint16_t op;       /* KIPC_SYS_mbox_send_bundle or KIPC_SYS_send_bundle */
	int64_t id;        /* the mailbox, or the pid */
	MsgArgs a;         /* as decoded; addr/len per message */
	uid_t uid;         /* charged the bytes below */
	size_t went;       /* messages that went; message went waits, or goes next */
	uint64_t seq = 0;  /* the last that went */
	std::vector<kipc_bundle_desc> d;
	uint64_t charge() const { return sizeof *this + d.size() * sizeof d[0]; }
};

uint64_t KernelImpl::bundle_charge(const Request &r, uid_t *uid)
{
	if (!r.bundle)
		return 0;
	*uid = r.bundle->uid;
	return r.bundle->charge();
}

namespace {

/* The result of a bundle of n after went messages, ended by err (0: all
 * went): transport.md section 14's table. */
long bundle_result(size_t went, size_t n, long err, uint64_t seq, kipc_cqe &cqe)
{
	if (went == 0)
		return err;
	cqe.seq = seq;
	if (went < n) {
		cqe.flags |= KIPC_CQE_F_PARTIAL;
		cqe.type = err;
	}
	return long(went);
}

/* The link one send of bundle op by cur to id goes to, as that send
 * finds it: mailbox id (mbox_send), pid id's task queue (send). */
Link *bundle_link(KernelImpl &k, Task &cur, uint16_t op, int64_t id, int *err)
{
	if (op == KIPC_SYS_send_bundle)
		return k.task_to_send(cur, id, err);
	return k.mbox.to_send(cur, id, err);
}

/*
 * Send d[*went..n) by cur to id, each as one send of op (the link found
 * and the right checked for each): 0, all went; -EQUEUED, message *went
 * waits (on r: a parked bundle's request; nullptr: on the request
 * do_send() parks); else message *went's -errno.
 */
long send_from(KernelImpl &k, Task &cur, uint16_t op, int64_t id, const kipc_bundle_desc *d,
	       size_t n, MsgArgs &a, size_t *went, uint64_t *seq, Request *r)
{
	for (; *went < n; ++*went) {
		const kipc_bundle_desc &m = d[*went];
		if (m.rsvd)
			return -EINVAL;
		int err;
		Link *l = bundle_link(k, cur, op, id, &err);
		if (!l)
			return err;
		kipc_cqe one{};
		a.addr = m.addr;
		a.len = m.len;
		if (long res = k.do_send(cur, *l, a, one, 0, r))
			return res;
		*seq = one.seq;
	}
	return 0;
}

} // namespace

long KernelImpl::do_send_bundle(Task &cur, uint16_t op, int64_t id, const kipc_bundle_desc *d,
				size_t n, MsgArgs &a, kipc_cqe &cqe)
{
	size_t went = 0;
	uint64_t seq = 0;
	long err = send_from(*this, cur, op, id, d, n, a, &went, &seq, nullptr);
	if (err == -EQUEUED) { /* message went waits on the request do_send() parked */
		Request *r = cur.parked.back();
		auto b = std::make_unique<BundleWait>(BundleWait{op, id, a, cur.uid, went, seq, {}});
		b->d.assign(d, d + n);
		UserAcct &u = user(cur.uid);
		err = -ENOSPC;
		if (u.bytes + b->charge() <= lim.bytes_per_user) {
			u.bytes += b->charge();
			r->bundle = b.release();
			return -EQUEUED;
		}
		abort_request(r, err, false); /* its message withdrawn: it did not go */
	}
	return bundle_result(went, n, err, seq, cqe);
}

void KernelImpl::finish_bundle(Request *r, FinishFill fill)
{
	BundleWait &b = *r->bundle;
	kipc_cqe one{};
	bool post = fill(*r, one);
	if (post && one.res == 0) { /* its message went (refill, a receiver) */
		b.seq = one.seq;
		if (++b.went < b.d.size()) {
			trace_wake(r); /* as the blocking send of it would */
			bundles_ready.push_back(r); /* parked still: a cancel finds it */
			return;
		}
	}
	end_bundle(r, one.res, post);
}

void KernelImpl::end_bundle(Request *r, long err, bool post, bool waiting)
{
	if (std::erase(bundles_ready, r)) /* woken, its WAKE traced when its message went */
		waiting = false;
	ReqPtr owned = unpark(r, waiting);
	std::unique_ptr<BundleWait> b(owned->bundle);
	owned->bundle = nullptr;
	user(b->uid).bytes -= b->charge();
	if (!post)
		return;
	kipc_cqe cqe{};
	cqe.res = bundle_result(b->went, b->d.size(), err, b->seq, cqe);
	cqe.user_data = owned->user_data;
	complete(*owned->task, cqe, owned->opcode, owned->flags);
}

void KernelImpl::resume_bundles()
{
	Task *was = current;
	uint16_t op = cur_op;
	while (!bundles_ready.empty()) {
		Request *r = bundles_ready.front();
		bundles_ready.erase(bundles_ready.begin());
		BundleWait &b = *r->bundle;
		current = r->task; /* its sends, on its behalf */
		cur_op = r->opcode;
		long err = send_from(*this, *r->task, b.op, b.id, b.d.data(), b.d.size(), b.a,
				     &b.went, &b.seq, r);
		if (err != -EQUEUED) /* else it waits again, with message went */
			end_bundle(r, err, true, false);
	}
	current = was;
	cur_op = op;
}

/* ---- by id: what the syscalls ask for ------------------------------ */

long Mailboxes::receive_multi(Task &cur, int64_t id, const MsgArgs &a, uint32_t entries,
			      uint32_t head)
{
	int err;
	Selector sel; /* KIPC_ANY: the own task queue, as receive(KIPC_ANY) */
	Link *l = id == KIPC_ANY ? &cur.queue : to_receive(cur, id, a, &sel, &err);
	return l ? k_.do_receive_multi(cur, *l, sel, a, entries, head) : err;
}

} // namespace kipc
