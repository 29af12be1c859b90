// SPDX-License-Identifier: MIT
/*
 * Send credits: the room and the byte charge kipcd reserves for a
 * sender on a native mailbox or a task queue ahead of its sends (several senders may
 * hold some on one mailbox: held counts all of theirs), so that a send with a
 * credit completes in the caller (kipcd holds the credits and their
 * rules: kernel/daemon/credit.cc; the argument: transport.md section 12).
 *
 * The core's part is only the reservation. Room: reserve_sends() never
 * gives more than the link has beyond the held credits, and kipcd takes
 * every credit back before another request could fill the link, so a
 * credit send always finds room. Bytes: each credit holds the charge of
 * a message of msgsize bytes in its user's bytes_per_user (credit_bytes
 * says how much of bytes is such), so a credit send's message always
 * fits the quota; kipcd gives a credit's charge back just before the
 * send it carries allocates its own.
 */
#include <algorithm>

#include "ipc.h"

namespace kipc {

/*
 * The link a credit of op may reserve room in for t: a native mailbox t
 * may send to (mbox_calls), not round-robin (a keyed mailbox assigns at
 * send time, among holders that may leave); or the task queue of an
 * attached task t may send to (find_peer's rule: cred_refresh of either
 * side and the task's exit take the credits back first, credit.cc of
 * kipcd). A task queue is keyed by sender, decided now: its messages
 * carry an extension, charged. Or a POSIX queue (open id of t) that
 * has messages and no notification registered (mqueue.cc).
 */
namespace {

/* The task whose queue a send to id (a pid) goes to, or nullptr. */
Task *send_target(const KernelImpl &k, int64_t id)
{
	return id > 0 && id <= INT32_MAX ? k.find_task(pid_t(id)) : nullptr;
}

} // namespace

const Link *KernelImpl::credit_link(Task &t, uint8_t op, int64_t id)
{
	int err;
	if (op == KIPC_SYS_send) {
		Task *dst = send_target(*this, id);
		if (!dst || !dst->attached || (t.uid != 0 && t.uid != dst->uid))
			return nullptr;
		return &dst->queue;
	}
	if (op == KIPC_SYS_mq_timedsend)
		return mq.credit_link(t, id);
	if (op != KIPC_SYS_mbox_send)
		return nullptr;
	Mailbox *mb = mbox.find(id, &err);
	if (!mb || mbox.check_send(t, *mb)) /* a native mailbox (mbox_calls) cur may send to */
		return nullptr;
	return mb->link.keyed ? nullptr : &mb->link;
}

int64_t KernelImpl::credit_queue(uint8_t op, int64_t id, uint32_t *nmsg, uint32_t *cap,
				 uint32_t *msgsize)
{
	uint32_t c, m;
	*nmsg = 0;
	if (!cap)
		cap = &c;
	if (!msgsize)
		msgsize = &m;
	*cap = *msgsize = 0;
	if (op == KIPC_SYS_mq_timedsend)
		return mq.credit_queue(id, nmsg, cap, msgsize);
	int err;
	const Link *l = nullptr;
	if (op == KIPC_SYS_send) {
		Task *dst = send_target(*this, id);
		l = dst ? &dst->queue : nullptr;
	} else if (Mailbox *mb = op == KIPC_SYS_mbox_send ? mbox.find(id, &err) : nullptr) {
		l = &mb->link;
	}
	if (l) {
		*nmsg = l->msgs.nmsg;
		*cap = l->capacity;
	}
	return id;
}

uint32_t KernelImpl::reserve_sends(Task &t, uint8_t op, int64_t id, uint32_t held,
				   uint32_t want, uint32_t *msgsize, uint64_t *charge)
{
	const Link *lp = credit_link(t, op, id);
	if (!lp)
		return 0;
	const Link &l = *lp;
	if (l.capacity == 0 || l.fixed || l.pending().nmsg || l.msgsize == 0)
		return 0; /* rendezvous, fixed sizes, senders waiting for room */
	uint64_t n = want;
	/* a POSIX queue's credit sends never fill it: its descriptors keep
	 * polling POLLOUT, as they keep POLLIN (credit_link) */
	uint32_t cap = op == KIPC_SYS_mq_timedsend ? l.capacity - 1 : l.capacity;
	if (!l.unbounded()) {
		uint64_t slots = cap > l.msgs.nmsg ? cap - l.msgs.nmsg : 0;
		uint64_t bytes = l.qbytes > l.msgs.nbytes ? (l.qbytes - l.msgs.nbytes) / l.msgsize : 0;
		uint64_t room = std::min(slots, bytes);
		n = room > held ? std::min<uint64_t>(n, room - held) : 0;
	}
	/* a mailbox message has no extension unless typed (never, here);
	 * a task queue's has one (its route, the sender) */
	uint64_t each = l.quota ? message_charge(l.msgsize, l.keyed) : 0;
	UserAcct &u = user(t.uid);
	if (each) {
		uint64_t left = lim.bytes_per_user > u.bytes ? lim.bytes_per_user - u.bytes : 0;
		n = std::min(n, left / each);
	}
	u.bytes += n * each;
	u.credit_bytes += n * each;
	*msgsize = l.msgsize;
	*charge = each;
	return uint32_t(n);
}

void KernelImpl::release_sends(uid_t uid, uint64_t bytes)
{
	UserAcct &u = user(uid);
	KIPC_BUG_ON(bytes > u.credit_bytes || bytes > u.bytes);
	u.bytes -= bytes;
	u.credit_bytes -= bytes;
}

} // namespace kipc
