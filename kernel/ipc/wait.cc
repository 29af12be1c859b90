// SPDX-License-Identifier: MIT
/*
 * Parking, completing and cancelling requests; timeouts.
 *
 * A parked request is on: its task's parked list (always), the receivers
 * list of each link it waits on (receive), the awaited task's awaited_by
 * list (receive from Q, call waiting for a reply), the timer map (with a
 * deadline), and for calls the token map. finish() takes it off all of
 * them; after that nothing can find it, so finish() completes it (exactly
 * once) and frees it. Nothing else frees a request.
 *
 * Races, in the order the kernel resolves them:
 *  1. timeout vs delivery: run_timers() runs before every submit(), so an
 *     expired wait is completed ETIMEDOUT before any send of that instant
 *     can hand it a message; the message then stays queued.
 *  2. cancel vs delivery: a cancel finds the request only while it is
 *     parked. If a delivery completed it first, the cancel returns ENOENT
 *     and the completion (with the message) is already on its way.
 *  3. a cancelled or timed-out send or call that still holds its message
 *     withdraws it: the message never reaches a receiver.
 */
#include "ipc.h"

namespace kipc {

namespace {

/* Arrays of wait entries for receive_set: up to 8 links, up to kRecvSetMax. */
constexpr size_t kWaitsSmall = 8;
Slab &waits_slab(size_t n)
{
	static Slab *small = new Slab("waits-8", uint32_t(kSlabPtrPrefix + kWaitsSmall * sizeof(WaitEntry)));
	static Slab *large = new Slab("waits-max", uint32_t(kSlabPtrPrefix + kRecvSetMax * sizeof(WaitEntry)));
	return n <= kWaitsSmall ? *small : *large;
}

} // namespace

bool Waits::resize(size_t n)
{
	clear();
	if (n > 1) {
		void *p = n <= kRecvSetMax ? waits_slab(n).alloc_ptr() : nullptr;
		if (!p)
			return false;
		v_ = static_cast<WaitEntry *>(p);
		for (size_t i = 0; i < n; i++)
			new (&v_[i]) WaitEntry{};
	}
	n_ = uint32_t(n);
	return true;
}

void Waits::clear()
{
	if (n_ > 1) {
		for (size_t i = 0; i < n_; i++)
			v_[i].~WaitEntry();
		waits_slab(n_).free_ptr(v_);
		v_ = nullptr;
	}
	n_ = 0;
}

Request::~Request()
{
	/* off every list (the hooks assert theirs) and holding nothing */
	KIPC_BUG_ON(has_timer || token || slot || msg || bundle || !waits.empty());
}

ReqPtr KernelImpl::new_request(Task &cur, ReqKind op, const MsgArgs &a)
{
	ReqPtr r = std::make_unique<Request>();
	r->task = &cur;
	r->op = op;
	r->user_data = a.user_data;
	r->flags = a.flags;
	r->deadline = a.wait.deadline;
	r->since = now();
	r->opcode = cur_op;
	return r;
}

Request *KernelImpl::park(ReqPtr owned)
{
	Request *r = owned.release(); /* task->parked owns it now */
	r->task->parked.push_back(r);
	if (r->deadline != kForever) {
		r->timer = timers.emplace(r->deadline, r);
		r->has_timer = true;
	}
	return r;
}

void KernelImpl::trace_wake(const Request *r)
{
	KIPC_TRACE(*this, {.event = KIPC_TRACE_WAKE, .task = r->task,
			   .peer = current && current != r->task ? current->pid : 0,
			   .link = r->link ? r->link
				 : r->waits.empty() ? nullptr : r->waits.front().link,
			   .msg = r->msg});
}

/* Take r off every list: its owner is the caller now (finish() only).
 * wake: trace its WAKE (a bundle between two messages was woken). */
ReqPtr KernelImpl::unpark(Request *r, bool wake)
{
	if (r->op == ReqKind::TraceRead)
		tracer.unparked(r); /* and never traced: no feedback loop */
	else if (wake)
		trace_wake(r);
	if (r->task_node.linked())
		r->task->parked.remove(r);
	if (r->await_node.linked())
		r->awaited->awaited_by.remove(r);
	if (!r->waits.empty()) {
		for (WaitEntry &w : r->waits)
			if (w.node.linked())
				w.link->side->receivers.remove(&w);
		r->waits.clear();
		r->task->nrecv_parked--;
	}
	if (r->has_timer) {
		timers.erase(r->timer);
		r->has_timer = false;
	}
	if (r->cached && r->task->cached == r)
		r->task->cached = nullptr;
	if (r->slot) { /* mq_notify_wait: its registration forgets it */
		*r->slot = nullptr;
		r->slot = nullptr;
	}
	if (r->token) /* a call: its token goes */
		rpc.unparked(*r);
	return ReqPtr(r);
}

void KernelImpl::finish(Request *r, FinishFill fill)
{
	if (__builtin_expect(r->bundle != nullptr, 0))
		return finish_bundle(r, fill); /* it may go on (bundle.cc) */
	ReqPtr owned = unpark(r);
	kipc_cqe cqe{};
	if (!fill(*owned, cqe))
		return;
	cqe.user_data = owned->user_data;
	if (Calls::replied_first(owned->opcode))
		cqe.flags |= KIPC_CQE_F_REPLIED;
	complete(*owned->task, cqe, owned->opcode, owned->flags);
} /* owned frees the request */

void KernelImpl::finish(Request *r, const kipc_cqe &res, bool notify)
{
	finish(r, [&](Request &, kipc_cqe &cqe) {
		cqe = res;
		return notify;
	});
}

void KernelImpl::complete(Task &t, const kipc_cqe &cqe, uint16_t op, uint32_t flags)
{
	if (dying)
		return;
	if (KIPC_TRACING(*this))
		tracer.ret(t, cqe, op);
	if (__builtin_expect((flags & KIPC_F_SKIP_SUCCESS) && cqe.res >= 0 &&
			     !(cqe.flags & KIPC_CQE_F_PARTIAL), 0)) {
		stats.skipped++; /* traced above, counted here: only not posted */
		sink.skipped(t.priv, cqe);
		return;
	}
	sink.complete(t.priv, cqe);
}

void KernelImpl::abort_request(Request *r, int err, bool notify)
{
	kipc_cqe cqe{};
	cqe.res = err;
	if (r->cached)
		cqe.flags |= KIPC_CQE_F_NOTIF;
	if (r->op == ReqKind::Call && r->awaited)
		cqe.flags |= KIPC_CQE_F_DELIVERED; /* the server has the request */

	/* withdraw the message it still owns (3.) */
	Message *m = r->msg;
	Link *link = r->link;
	if (m) {
		MsgStore *s = link->store_of(*m);
		s->remove(m);
		m->set_req(nullptr);
		r->msg = nullptr;
		r->link = nullptr;
		cqe.seq = m->seq;
		free_message(m);
		if (s == &link->msgs)
			refill(*link);
	}
	finish(r, cqe, notify);
}

void KernelImpl::run_timers()
{
	int64_t t = now();
	while (!timers.empty() && timers.begin()->first <= t) {
		Request *r = timers.begin()->second;
		stats.timeouts++;
		if (r->op != ReqKind::TraceRead)
			KIPC_TRACE(*this, {.event = KIPC_TRACE_TIMEOUT, .task = r->task,
					   .link = r->link ? r->link
						 : r->waits.empty() ? nullptr : r->waits.front().link,
					   .msg = r->msg, .res = -ETIMEDOUT});
		abort_request(r, -ETIMEDOUT, true);
	}
}

/*
 * Cancel cur's parked request user_data; it completes with err (EINTR for
 * a signal, ECANCELED otherwise). Parked requests per task are bounded by
 * the transport's in-flight limit, so the scan is short.
 */
long KernelImpl::do_cancel(Task &cur, uint64_t user_data, int err)
{
	Request *found = nullptr;
	cur.parked.for_each([&](Request *r) {
		if (!found && r->user_data == user_data)
			found = r;
	});
	if (!found)
		return -ENOENT;
	stats.cancels++;
	if (found->op != ReqKind::TraceRead)
		KIPC_TRACE(*this, {.event = KIPC_TRACE_CANCEL, .task = &cur,
				   .link = found->link, .msg = found->msg, .res = err});
	abort_request(found, err, true);
	return 0;
}

} // namespace kipc
