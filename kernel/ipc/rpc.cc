// SPDX-License-Identifier: MIT
/*
 * Remote procedure call: call() sends a request and waits for the reply of
 * the task that receives it (MINIX sendrec, QNX MsgSend, Mach msg_rpc).
 *
 * A call is one parked request that goes through two phases:
 *  Sending     its request message is pending: the sender waits for room
 *              in a full link, or for a receiver on a zero-capacity one.
 *  AwaitReply  the message is in the link (queued) or was received.
 *              While it is queued or pending the message carries the call's
 *              token and points back at the request, and cancelling or
 *              timing out withdraws it: the server never sees it.
 *              Once a server received it (the receive reported the token
 *              with KIPC_CQE_F_CALL) the request is on the server's
 *              awaited_by list (request->awaited is the server) and
 *              reply(token) completes it. If the server exits first the
 *              call fails ESRCH; a cancel or timeout now fails it with
 *              KIPC_CQE_F_DELIVERED set (the server has the request), and
 *              the server's late reply fails ESRCH.
 */
#include <algorithm>

#include "ipc.h"

namespace kipc {

long Calls::task_call(Task &cur, int64_t pid, MsgArgs &a, kipc_cqe &cqe)
{
	int err;
	Link *l = k_.task_to_send(cur, pid, &err);
	return l ? call(cur, *l, a, cqe) : err;
}

long Calls::call(Task &cur, Link &link, MsgArgs &a, kipc_cqe &cqe)
{
	ReqPtr r = k_.new_request(cur, ReqKind::Call, a);
	r->buf = a.addr2;
	r->buflen = a.len2;
	r->token = new_token();

	long res = k_.do_send(cur, link, a, cqe, r->token, r.get());
	if (res < 0 && res != -EQUEUED) {
		r->token = 0; /* never in calls: r goes with its owner */
		return res;
	}
	calls_.emplace(r->token, r.get());
	if (res == 0) /* the request is in the link: wait for the reply */
		KIPC_TRACE(k_, {.event = KIPC_TRACE_BLOCK, .task = &cur, .link = &link,
				   .flags = KIPC_TRACE_F_REPLY});
	k_.park(std::move(r));
	return -EQUEUED;
}

long Calls::mbox_call(Task &cur, int64_t id, MsgArgs &a, kipc_cqe &cqe)
{
	int err;
	Link *l = k_.mbox.to_send(cur, id, &err);
	return l ? call(cur, *l, a, cqe) : err;
}

/*
 * The reply's n bytes from cur's memory at addr to caller's at buf: in
 * one copy between two memories that have views (kipcd's arenas), else
 * through a message object (a slab, no malloc), read whole before the
 * caller's buffer is written (one task's arena: they may overlap).
 */
long Calls::copy_reply(Task &cur, Task &caller, uint64_t addr, uint64_t buf, uint32_t n)
{
	const uint8_t *src = cur.mm && caller.mm && cur.mm != caller.mm ? cur.mm->view(addr, n)
									  : nullptr;
	if (src) {
		if (caller.mm->copy_to_user(buf, src, n))
			return -EFAULT;
		k_.count_onecopy();
		return 0;
	}
	Message *data = new_message(n, false);
	if (!data)
		return -ENOMEM;
	int fault = (cur.mm && cur.mm->copy_from_user(data->data, addr, n)) ||
		    (caller.mm && caller.mm->copy_to_user(buf, data->data, n));
	delete_message(data);
	return fault ? -EFAULT : 0;
}

long Calls::reply(Task &cur, uint64_t token, MsgArgs &a)
{
	auto it = calls_.find(token);
	if (it == calls_.end())
		return -ESRCH; /* no such call, or its caller gave up */
	Request *r = it->second;
	if (r->awaited != &cur)
		return -EPERM; /* only the task that received the call answers it */
	if (a.len > r->buflen && !(r->flags & KIPC_F_TRUNC))
		return -EMSGSIZE;

	uint32_t n = std::min(a.len, r->buflen);
	Task *caller = r->task;
	if (long err = copy_reply(cur, *caller, a.addr, r->buf, n))
		return err;

	uint64_t seq = k_.count_reply(cur, *caller);
	k_.finish(r, [&](Request &, kipc_cqe &cqe) {
		cqe.res = n;
		cqe.flags = n < a.len ? KIPC_CQE_F_TRUNC : 0;
		cqe.pid = cur.pid;
		cqe.len = a.len;
		cqe.type = a.type;
		cqe.seq = seq;
		if (KIPC_TRACING(k_)) {
			Message m{}; /* a reply is never a queued message: describe it */
			m.len = a.len;
			m.seq = seq;
			KIPC_TRACE(k_, {.event = KIPC_TRACE_DELIVER, .task = caller,
					   .peer = cur.pid, .msg = &m, .res = n,
					   .flags = KIPC_TRACE_F_REPLY});
		}
		return true;
	});
	return 0;
}

/*
 * Reply, then receive: one request where a server loop made two. The
 * reply goes first and must succeed: if it fails (ESRCH: no such call or
 * its caller gave up; EPERM: another task's call; EMSGSIZE, EFAULT,
 * ENOMEM) nothing is received and the result is the reply's error,
 * without KIPC_CQE_F_REPLIED, exactly as a failed reply() alone. Once the
 * reply is delivered the receive runs as receive() or mbox_receive()
 * would (its own rights checks, waiting, timeout, cancel) and whatever it
 * returns, success or error, says KIPC_CQE_F_REPLIED.
 */
long Calls::reply_receive(Task &cur, uint64_t token, MsgArgs &rep, bool mbox, int64_t from,
			  MsgArgs &a, kipc_cqe &cqe)
{
	if (long err = reply(cur, token, rep))
		return err;
	long res = mbox ? k_.mbox.receive(cur, from, a, cqe) : k_.do_task_receive(cur, from, a, cqe);
	cqe.flags |= KIPC_CQE_F_REPLIED; /* parked (-EQUEUED): finish() says it */
	return res;
}

void Calls::unparked(Request &r)
{
	calls_.erase(r.token);
	r.token = 0;
}

} // namespace kipc
