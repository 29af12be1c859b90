// SPDX-License-Identifier: MIT
/*
 * Tasks: one per attached process, each with its task queue.
 *
 * A send to a live process that has not attached yet creates its task
 * ("unattached") so the message has somewhere to wait; the host watches
 * the pid, and if the process exits without attaching the task goes away
 * exactly like an exited one. attach() adopts it.
 */
#include "ipc.h"
#include <kipc/net.h>

namespace kipc {

LinkAttr KernelImpl::taskq_defaults() const
{
	LinkAttr a;
	a.capacity = lim.taskq_capacity;
	a.msgsize = lim.msgsize_default;
	a.qbytes = uint64_t(a.capacity) * a.msgsize;
	a.fixed = false;
	return a;
}

void KernelImpl::init_link(Link &l, const LinkAttr &a)
{
	l.capacity = a.capacity;
	l.qbytes = a.qbytes;
	l.msgsize = a.msgsize;
	l.fixed = a.fixed;
}

Task *KernelImpl::find_task(pid_t pid) const
{
	auto it = tasks.find(pid);
	return it == tasks.end() ? nullptr : it->second.get();
}

Task *KernelImpl::new_task(const Creds &c)
{
	auto t = std::make_unique<Task>();
	Task *p = t.get();
	p->pid = c.pid;
	p->uid = c.uid;
	p->gid = c.gid;
	p->groups = c.groups;
	p->queue.task = p;
	p->queue.keyed = true; /* by sender: receive(from Q) */
	p->atime = now_real();
	init_link(p->queue, taskq_defaults());
	tasks.emplace(c.pid, std::move(t));
	return p;
}

Task *KernelImpl::get_task(pid_t pid, int *err)
{
	if (Task *t = find_task(pid))
		return t;
	Creds c;
	if (pid <= 0 || !host.process_alive(pid, &c)) {
		*err = -ESRCH;
		return nullptr;
	}
	c.pid = pid;
	Task *t = new_task(c);
	host.watch_process(pid);
	return t;
}

int KernelImpl::attach(const Creds &c, UserMemory *mm, std::string_view comm, void *priv,
		       Task **out)
{
	/* A remote caller's proxy (kernel/net) is its node-qualified pid. */
	if (c.pid == 0 || (c.pid < 0 && !KIPC_NET_IS_PID(c.pid)))
		return -EINVAL;
	Task *t = find_task(c.pid);
	if (t && t->attached)
		return -EEXIST;
	if (user(c.uid).tasks >= lim.tasks_per_user)
		return -EAGAIN; /* like fork() past RLIMIT_NPROC */
	if (t) {
		host.unwatch_process(c.pid);
		t->uid = c.uid; /* the connection's credentials are authoritative */
		t->gid = c.gid;
		t->groups = c.groups;
	} else {
		t = new_task(c);
	}
	t->attached = true;
	user(c.uid).tasks++;
	t->mm = mm;
	t->priv = priv;
	t->comm = comm;
	t->ppid = c.ppid;
	stats.attach++;
	KIPC_TRACE(*this, {.event = KIPC_TRACE_ATTACH, .task = t, .peer = t->ppid});
	*out = t;
	return 0;
}

/*
 * Destroy a task (its process exited, attached or not):
 *  1. its parked requests are cancelled without completions (nobody is
 *     left to read them); blocked sends and calls withdraw their message;
 *     an accepted cached message stays queued: its send succeeded;
 *  2. requests waiting on it (receive from it, calls it was serving) fail
 *     ESRCH;
 *  3. its process-owned mailboxes are destroyed (EIDRM to their users),
 *     kernel-owned ones lose their owner, its receive rights go;
 *  4. its task queue is freed: senders waiting on it fail ESRCH.
 */
/*
 * The process changed its credentials (setuid(2), seteuid(2), setgroups(2)
 * ...): every later call is checked against what the OS says now, never
 * against what the process claims. Its task count moves to the new uid;
 * what it already has charged stays charged to whom it was charged.
 */
long KernelImpl::do_cred_refresh(Task &cur)
{
	Creds c;
	if (!host.process_alive(cur.pid, &c))
		return -ESRCH;
	set_creds(cur, std::move(c));
	return 0;
}

void KernelImpl::set_creds(Task &t, Creds c)
{
	if (c.uid != t.uid && t.attached) {
		user(t.uid).tasks--;
		user(c.uid).tasks++;
	}
	t.uid = c.uid;
	t.gid = c.gid;
	t.groups = std::move(c.groups);
}

void KernelImpl::do_taskq_stat(Task &cur, kipc_taskq_stat &st) const
{
	st = kipc_taskq_stat{};
	st.pid = cur.pid;
	st.uid = cur.uid;
	cur.queue.stat(st, st);
	st.flags = cur.queue.fixed ? KIPC_MBOX_FIXED : 0;
	st.nsent = cur.nsent;
	st.nreceived = cur.nreceived;
}

long KernelImpl::do_taskq_setattr(Task &cur, const kipc_mbox_attr &attr)
{
	LinkAttr la;
	if (long err = mbox.resolve_attr(&attr, true, &la))
		return err;
	init_link(cur.queue, la);
	refill(cur.queue);
	return 0;
}

void KernelImpl::exit_task(Task *t)
{
	stats.exit++;
	KIPC_TRACE(*this, {.event = KIPC_TRACE_EXIT, .task = t, .res = t->attached});
	while (Request *r = t->parked.front()) {
		if (r->cached) {
			r->msg->set_req(nullptr); /* orphan: stays pending */
			r->msg = nullptr;
			r->link = nullptr;
			finish(r, kipc_cqe{}, false);
			continue;
		}
		abort_request(r, -ESRCH, false);
	}
	while (Request *r = t->awaited_by.front())
		abort_request(r, -ESRCH, true);
	mbox.task_exit(*t);
	drain_link(t->queue, -ESRCH);
	for (Mechanism *m : mechs) /* what the other mechanisms hold for it */
		m->task_exit(*t);
	tracer.task_exit(*t);
	if (!t->attached)
		host.unwatch_process(t->pid);
	else
		user(t->uid).tasks--;
	tasks.erase(t->pid);
}

void KernelImpl::process_exited(pid_t pid)
{
	Task *t = find_task(pid);
	if (t && !t->attached)
		exit_task(t);
}

} // namespace kipc
