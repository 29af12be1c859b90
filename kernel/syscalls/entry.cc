// SPDX-License-Identifier: MIT
/*
 * The Kernel facade: what hosts call (see kernel.h). Every call enters
 * here, takes the Entry guard (who runs, which syscall) and leaves by
 * completing the trace reads its events woke; submit() dispatches one sqe
 * through the table (table.cc) to its thin entry. The core (kernel/ipc/)
 * never calls up into this layer.
 */
#include "syscalls.h"

namespace kipc {

static void debug_check(KernelImpl &k)
{
#ifdef CONFIG_DEBUG_CHECKS
	k.debug_check();
#else
	(void)k;
#endif
}

Kernel::Kernel(Clock &clock, Host &host, CompletionSink &sink, const Limits &limits,
	       MqHost *mq)
	: impl_(std::make_unique<KernelImpl>(clock, host, mq ? *mq : no_mq_host(), sink, limits))
{
}

/*
 * Every entry runs on behalf of a task (or of none: timers) and ends by
 * completing the trace reads its events woke (trace.cc).
 */
struct Entry {
	KernelImpl &k;
	Entry(KernelImpl &k_, Task *t, uint16_t op) : k(k_) { k.enter(t, op); }
	~Entry() { k.leave(); }
};

Kernel::~Kernel() = default;

int Kernel::attach(const Creds &creds, UserMemory *mm, std::string_view comm, void *priv,
		   Task **out)
{
	Entry e(*impl_, nullptr, KIPC_SYS_NONE);
	return impl_->attach(creds, mm, comm, priv, out);
}

uint32_t Kernel::reserve_sends(Task *t, uint8_t op, int64_t id, uint32_t held, uint32_t want,
			       uint32_t *msgsize, uint64_t *charge)
{
	Entry e(*impl_, t, KIPC_SYS_NONE);
	uint32_t n = t ? impl_->reserve_sends(*t, op, id, held, want, msgsize, charge) : 0;
	debug_check(*impl_);
	return n;
}

int Kernel::push_next(Task *t, int64_t id, uint64_t after_seq, uint32_t maxlen, PushMsg *out)
{
	Entry e(*impl_, t, KIPC_SYS_NONE);
	return t ? impl_->push_next(*t, id, after_seq, maxlen, out) : -EINVAL;
}

bool Kernel::take_pushed(Task *t, int64_t id, uint64_t seq)
{
	Entry e(*impl_, t, KIPC_SYS_NONE);
	bool ok = t && impl_->take_pushed(*t, id, seq);
	debug_check(*impl_);
	return ok;
}

bool Kernel::exit_touches(Task *t, int64_t id)
{
	Entry e(*impl_, t, KIPC_SYS_NONE);
	int err;
	Mailbox *mb = impl_->mbox.find(id, &err);
	return !t || !mb || (mb->owner == t && !mb->kernel_owned());
}

int64_t Kernel::credit_queue(uint8_t op, int64_t id, uint32_t *nmsg, uint32_t *cap,
			     uint32_t *msgsize)
{
	Entry e(*impl_, nullptr, KIPC_SYS_NONE);
	return impl_->credit_queue(op, id, nmsg, cap, msgsize);
}

void Kernel::release_sends(uid_t uid, uint64_t bytes)
{
	Entry e(*impl_, nullptr, KIPC_SYS_NONE);
	impl_->release_sends(uid, bytes);
	debug_check(*impl_);
}

int Kernel::charge_host(uid_t uid, uint64_t bytes)
{
	Entry e(*impl_, nullptr, KIPC_SYS_NONE);
	UserAcct &u = impl_->user(uid);
	if (u.bytes + bytes > impl_->limits().bytes_per_user)
		return -ENOSPC;
	u.bytes += bytes;
	u.host_bytes += bytes;
	return 0;
}

void Kernel::uncharge_host(uid_t uid, uint64_t bytes)
{
	Entry e(*impl_, nullptr, KIPC_SYS_NONE);
	UserAcct &u = impl_->user(uid);
	KIPC_BUG_ON(bytes > u.host_bytes || bytes > u.bytes);
	u.bytes -= bytes;
	u.host_bytes -= bytes;
	debug_check(*impl_);
}

void Kernel::exit(Task *task)
{
	{
		Entry e(*impl_, task, KIPC_SYS_NONE);
		impl_->exit_task(task);
	}
	debug_check(*impl_);
}

void Kernel::process_exited(pid_t pid)
{
	{
		Entry e(*impl_, impl_->find_task(pid), KIPC_SYS_NONE);
		impl_->process_exited(pid);
	}
	debug_check(*impl_);
}

Creds Kernel::creds(const Task *task) const
{
	return Creds(task->pid, task->uid, task->gid, task->groups);
}

void Kernel::set_creds(Task *task, const Creds &creds)
{
	{
		Entry e(*impl_, task, KIPC_SYS_NONE);
		impl_->set_creds(*task, creds);
	}
	debug_check(*impl_);
}

void Kernel::submit(Task *task, const kipc_sqe &sqe)
{
	KernelImpl &k = *impl_;
	kipc_cqe cqe{};

	{
		Entry e(k, nullptr, KIPC_SYS_NONE);
		k.run_timers(); /* an expired wait is over before anything new happens */
	}
	{
		Entry e(k, task, sqe.opcode);
		if (KIPC_TRACING(k))
			k.tracer.call(*task, sqe);
		long res = dispatch(k, *task, sqe, cqe);
		if (res != -EQUEUED) {
			if (res < 0) { /* an error says nothing else, but whether a reply went */
				uint32_t replied = cqe.flags & KIPC_CQE_F_REPLIED;
				cqe = kipc_cqe{};
				cqe.flags = replied;
			}
			cqe.res = res;
			cqe.user_data = sqe.user_data;
			k.complete(*task, cqe, sqe.opcode, sqe.flags);
		}
	}
	debug_check(k);
}

void Kernel::mq_released(int64_t id)
{
	{
		Entry e(*impl_, nullptr, KIPC_SYS_NONE);
		impl_->mq.release(id);
	}
	debug_check(*impl_);
}

int64_t Kernel::next_deadline() const
{
	return impl_->next_deadline();
}

void Kernel::run_timers()
{
	{
		Entry e(*impl_, nullptr, KIPC_SYS_NONE);
		impl_->run_timers();
	}
	debug_check(*impl_);
}

bool Kernel::tracing() const
{
	return KIPC_TRACING(*impl_);
}

void Kernel::trace_call(Task *task, const kipc_sqe &sqe)
{
	if (!KIPC_TRACING(*impl_) || !task)
		return;
	Entry e(*impl_, task, sqe.opcode);
	impl_->tracer.call(*task, sqe);
}

void Kernel::trace_ret(Task *task, const kipc_cqe &cqe, uint16_t op)
{
	if (!KIPC_TRACING(*impl_) || !task)
		return;
	Entry e(*impl_, task, op);
	impl_->tracer.ret(*task, cqe, op);
}

void Kernel::trace_record(Task *task, const kipc_trace_event &ev)
{
	if (!KIPC_TRACING(*impl_))
		return;
	kipc_trace_event r = ev;
	r.ts = uint64_t(impl_->now());
	if (!task) { /* the kernel's own (the network's): pid 0, root's to see */
		r.pid = 0;
		impl_->tracer.record(r, 0);
		return;
	}
	Entry e(*impl_, task, ev.op);
	r.pid = task->pid;
	impl_->tracer.record(r, task->uid);
}

const Limits &Kernel::limits() const
{
	return impl_->limits();
}

void Kernel::set_kernel_info(const kipc_kernel_info &info)
{
	impl_->intro.set_kernel_info(info);
}

} // namespace kipc
