// SPDX-License-Identifier: MIT
/*
 * kipcd: receive push (Documentation/transport.md section 13). A
 * synchronous mbox_receive that finds its next message already copied
 * into its own region completes in the caller, with no round trip to
 * kipcd. What makes that result exact:
 *
 *  - a pushed message stays queued in the core until the receiver has
 *    claimed it (one compare-and-swap on kipc_push.claim); the kernel's
 *    queue is the count every other request sees;
 *  - before kipcd runs any request (submit()), and before timers and
 *    exits, it reads claim and takes the claimed messages from the queue
 *    (push_sync): everything that happens after a receive returned sees
 *    it received, as if kipcd had taken it when it was claimed;
 *  - a request that could change which message is next (any receive on
 *    the mailbox but the receiver's pushed ones, a send that would go
 *    ahead of the pushed messages, a change of rights, attributes or
 *    the mailbox, any exit) first takes the push back (push_recall):
 *    one atomic exchange of claim with 0 says exactly which messages were
 *    claimed before it; the others are simply still queued, and the
 *    receiver's next compare-and-swap fails.
 * One receiver at a time, kernel-wide (send credits have up to 8 holders).
 */
#include "server.h"

#include <cstring>

#include <fmt/core.h>

namespace kipcd {

namespace {

constexpr int64_t kPushIdleNs = 1000000000;   /* no claim this long: taken back */
constexpr int64_t kPushCooldownNs = 10000000; /* after another receiver came */
constexpr uint32_t kSlots = KIPC_PUSH_SLOTS;

/* Requests that cannot change which message the pushed ones are (they only read). */
bool only_reads(uint8_t opcode)
{
	switch (opcode) {
	case KIPC_SYS_nop:
	case KIPC_SYS_mbox_stat:
	case KIPC_SYS_taskq_stat:
	case KIPC_SYS_cancel:
	case KIPC_SYS_sysinfo:
	case KIPC_SYS_task_list:
	case KIPC_SYS_task_info:
	case KIPC_SYS_mbox_list:
	case KIPC_SYS_mbox_info:
	case KIPC_SYS_waiter_list:
	case KIPC_SYS_msg_list:
	case KIPC_SYS_trace_read:
	case KIPC_SYS_kernel_info:
	case KIPC_SYS_mq_getattr:
	/* other objects: task queues, POSIX and System V queues */
	case KIPC_SYS_send:
	case KIPC_SYS_receive:
	case KIPC_SYS_mq_timedreceive:
	case KIPC_SYS_msgrcv:
		return true;
	default:
		return false;
	}
}

} // namespace

/* Is claim one of the current grant, between what we took and what we pushed? */
bool Server::push_claimed(uint64_t claim, uint32_t *idx) const
{
	*idx = uint32_t(claim);
	return uint32_t(claim >> 32) == push_.gen &&
	       *idx - push_.synced <= push_.pushed - push_.synced;
}

/* The receiver claimed up to idx: take those messages from the queue. */
void Server::push_take(uint32_t idx)
{
	Proc *q = push_.p;
	while (push_.synced != idx) {
		if (!kernel_.take_pushed(q->task, push_.link, push_.seq[push_.synced % kSlots])) {
			klog(fmt::format("kipc: pushed message {} of pid {} is not at the head of {}: a kipcd bug",
					 push_.seq[push_.synced % kSlots], q->creds.pid, push_.link));
			break;
		}
		push_.synced++;
		push_.used_ns = clock_.monotonic_ns();
	}
}

void Server::push_sync()
{
	Proc *q = push_.p;
	if (!q || q->dead)
		return;
	uint64_t c = std::atomic_ref<uint64_t>(q->push->claim).load(std::memory_order_acquire);
	uint32_t idx;
	if (!push_claimed(c, &idx)) {
		push_ = Push{};
		detach(q, "push claim out of range");
		return;
	}
	if (idx != push_.synced)
		push_take(idx);
}

/* Copy what follows the pushed messages into free slots, the tag last. */
void Server::push_fill()
{
	Proc *q = push_.p;
	if (!q || q->dead)
		return;
	while (push_.pushed - push_.synced < kSlots) {
		bool first = push_.pushed == push_.synced;
		kipc::PushMsg m;
		int r = kernel_.push_next(q->task, push_.link,
					  first ? 0 : push_.seq[(push_.pushed - 1) % kSlots],
					  KIPC_PUSH_MAX, &m);
		if (r == -EAGAIN)
			return;
		if (r) { /* no longer allowed: the mailbox, its policy, the right */
			push_recall(false);
			return;
		}
		uint32_t k = push_.pushed;
		kipc_push_slot *s = &q->push_slots[k % kSlots];
		std::memcpy(s->data, m.data, m.cqe.len);
		std::memcpy(reinterpret_cast<char *>(&s->cqe) + sizeof s->cqe.user_data,
			    reinterpret_cast<const char *>(&m.cqe) + sizeof m.cqe.user_data,
			    sizeof m.cqe - sizeof m.cqe.user_data);
		std::atomic_ref<uint64_t>(s->cqe.user_data)
			.store(uint64_t(push_.gen) << 32 | k, std::memory_order_release);
		push_.seq[k % kSlots] = m.seq;
		push_.prio = m.cqe.prio; /* one level: push_next() follows its priority */
		push_.pushed++;
	}
}

void Server::push_grant(Proc *p, int64_t link)
{
	if (!p->push_ok || clock_.monotonic_ns() < push_cooldown_ || kernel_.tracing())
		return; /* a listener traces every call: receives go through kipcd */
	kipc::PushMsg m;
	int r = kernel_.push_next(p->task, link, 0, KIPC_PUSH_MAX, &m);
	if (r && r != -EAGAIN)
		return; /* not a mailbox we may push from */
	if (++push_gen_ == 0)
		push_gen_ = 1;
	push_ = Push{};
	push_.p = p;
	push_.link = link;
	push_.gen = push_gen_;
	push_.used_ns = clock_.monotonic_ns();
	std::atomic_ref<int64_t>(p->push->link).store(link, std::memory_order_release);
	std::atomic_ref<uint64_t>(p->push->claim)
		.store(uint64_t(push_.gen) << 32, std::memory_order_seq_cst);
	push_fill();
}

/*
 * Take the push back: one exchange of claim with 0 (the receiver's
 * compare-and-swap either came before it, and its message is taken
 * now, or fails). The messages pushed and not claimed never left the
 * queue.
 */
void Server::push_recall(bool contended)
{
	Proc *q = push_.p;
	if (!q)
		return;
	bool garbage = false;
	if (!q->dead) {
		uint64_t c = std::atomic_ref<uint64_t>(q->push->claim)
				     .exchange(0, std::memory_order_seq_cst);
		uint32_t idx;
		if (push_claimed(c, &idx))
			push_take(idx);
		else
			garbage = true;
	}
	push_ = Push{};
	if (contended)
		push_cooldown_ = clock_.monotonic_ns() + kPushCooldownNs;
	if (garbage)
		detach(q, "push claim out of range");
}

/*
 * Before kipcd runs any request of p: the receiver's claims first; then
 * take the push back if the request could change which message is next
 * while pushed ones are unclaimed.
 */
void Server::push_before(Proc *p, const kipc_sqe &sqe)
{
	if (!push_.p)
		return;
	push_sync();
	if (push_.p && kernel_.tracing()) {
		push_recall(false); /* a trace began: every receive is a call again */
		return;
	}
	if (!push_.p || push_.pushed == push_.synced)
		return; /* nothing outstanding: push_fill() checks the rest */
	if (only_reads(sqe.opcode))
		return;
	if (sqe.opcode == KIPC_SYS_mbox_send &&
	    (sqe.target != push_.link || sqe.prio <= push_.prio))
		return; /* elsewhere, or queued behind the pushed ones */
	if (sqe.opcode == KIPC_SYS_mbox_receive && sqe.target != push_.link)
		return;
	push_recall(p != push_.p);
}

/*
 * Before the network bridge enters the core for a remote caller (its
 * proxy task is no process of ours): its request as another process's,
 * or (nullptr) the proxy's exit or new credentials, which take the push
 * back as an exit does.
 */
void Server::push_before_net(const kipc_sqe *sqe)
{
	if (!push_.p)
		return;
	if (sqe)
		push_before(nullptr, *sqe);
	else
		push_recall(false);
}

/*
 * After p's request: a plain receive that completed at once may earn a
 * push, when it was p's only request in flight (a synchronous caller;
 * an asynchronous one with receives posted ahead would take it back with
 * its next receive, after a refill for nothing).
 */
void Server::push_after(Proc *p, const kipc_sqe &sqe)
{
	if (sqe.opcode != KIPC_SYS_mbox_receive || (sqe.flags & ~KIPC_F_NONBLOCK) || sqe.type ||
	    !sync_done_ || sync_res_ < 0)
		return;
	if (push_.p == p && push_.link == sqe.target)
		push_fill();
	else if (!push_.p && p->inflight == 0)
		push_grant(p, sqe.target); /* a synchronous caller: nothing else in flight */
}

/* Once per loop round: take what was claimed, push what came. */
void Server::push_round()
{
	if (!push_.p)
		return;
	push_sync();
	if (push_.p && kernel_.tracing())
		push_recall(false); /* a trace began (trace_read ran without push_before's view) */
	else
		push_fill();
}

/* A push nobody claimed from for kPushIdleNs goes back (another may want it). */
void Server::push_timers()
{
	if (push_.p && clock_.monotonic_ns() >= push_deadline())
		push_recall(false);
}

int64_t Server::push_deadline() const
{
	return push_.p ? push_.used_ns + kPushIdleNs : INT64_MAX;
}

} // namespace kipcd
