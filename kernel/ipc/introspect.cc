// SPDX-License-Identifier: MIT
/*
 * Introspection: snapshots of tasks, mailboxes, waiters, queued message
 * headers, limits and counters for tools (kipcs). Read-only: nothing
 * here changes kernel state. The records and the visibility rules are
 * in <kipc/introspect.h>; the syscalls that copy them out are in
 * kernel/syscalls/introspect.cc. The class is in introspect.h.
 *
 * Costs: a listing walks the tasks or the mailbox table once; waiters and
 * message headers walk one link. None of this is on a hot path.
 */
#include <algorithm>

#include "ipc.h"

#include <kipc/net.h>

namespace kipc {

bool Introspect::may_see_task(const Task &cur, const Task &t) const
{
	return cur.uid == t.uid || (cur.uid == 0 && k_.limits().root_bypass);
}

bool Introspect::may_see_mbox(const Task &cur, const Mailbox &mb) const
{
	return k_.mbox.may_admin(cur, mb) || mb.holds(&cur) || k_.mbox.ipcperms(cur, mb, kMayRead);
}

void Introspect::sysinfo(Task &cur, kipc_sysinfo &si) const
{
	const Limits &lim = k_.limits();
	const KernelImpl::Stats &stats = k_.counters();
	si = kipc_sysinfo{};
	si.msg_default = lim.msg_default;
	si.msg_max = lim.msg_max;
	si.msgsize_default = lim.msgsize_default;
	si.msgsize_max = lim.msgsize_max;
	si.mbox_per_user = lim.mbox_per_user;
	si.taskq_capacity = lim.taskq_capacity;
	si.bytes_per_user = lim.bytes_per_user;
	si.root_bypass = lim.root_bypass;
	si.msg_overhead = kMessageOverhead;
	auto add_link = [&](const Link &l) {
		si.nmsg += l.msgs.nmsg;
		si.npending += l.pending().nmsg;
		si.nbytes += l.msgs.nbytes + l.pending().nbytes;
	};
	k_.for_each_task([&](const Task &t) {
		si.ntasks++;
		si.nparked += t.parked.size();
		add_link(t.queue);
	});
	k_.mbox.for_each([&](const Mailbox *mb) {
		si.nmboxes++;
		add_link(mb->link);
	});
	si.ntracers = k_.tracer.nlisteners();
	si.boot_time = k_.boot_time();
	si.uptime = k_.now() - k_.boot_mono_time();
	si.nsent = stats.sent;
	si.ndelivered = stats.delivered;
	si.nskipped = stats.skipped;
	si.nonecopy = stats.onecopy;
	si.ntimeouts = stats.timeouts;
	si.ncancels = stats.cancels;
	si.nattach = stats.attach;
	si.nexit = stats.exit;
	si.ndestroyed = stats.destroyed;
	si.tasks_per_user = lim.tasks_per_user;
	si.mq_msg_default = lim.mq_msg_default;
	si.mq_msg_max = lim.mq_msg_max;
	si.mq_msgsize_default = lim.mq_msgsize_default;
	si.mq_msgsize_max = lim.mq_msgsize_max;
	si.mq_queues_max = lim.mq_queues_max;
	si.mq_bytes_per_user = lim.mq_bytes_per_user;
	si.msgmax = lim.msgmax;
	si.msgmnb = lim.msgmnb;
	si.msgmni = lim.msgmni;
	si.uid = cur.uid;
	if (const UserAcct *u = k_.find_user(cur.uid)) {
		si.user_mboxes = u->mailboxes;
		si.user_bytes = u->bytes;
	}
}

/* The syscall a parked request is in, and what it waits on. */
static void wait_of(const Request &r, uint32_t *op, pid_t *pid, int64_t *mbox)
{
	*op = r.opcode;
	*pid = 0;
	*mbox = 0;
	const Link *l = r.link;
	if (!l && !r.waits.empty())
		l = r.waits.front().link;
	if (r.awaited)
		*pid = r.awaited->pid;
	else if (l && l->task && l->task != r.task)
		*pid = l->task->pid;
	if (l && l->mbox)
		*mbox = l->mbox->id;
}

void Introspect::fill_task_info(const Task &cur, const Task &t, kipc_task_info &ti) const
{
	ti = kipc_task_info{};
	ti.pid = t.pid;
	ti.uid = t.uid;
	ti.gid = t.gid;
	t.comm.copy(ti.comm, KIPC_COMM_LEN - 1);
	ti.atime = t.atime;
	ti.now = k_.now();
	if (&cur == &t)
		ti.flags |= KIPC_INFO_SELF;
	const Request *wait = nullptr;
	t.parked.for_each([&](Request *r) {
		if (!wait && !r->cached)
			wait = r;
	});
	ti.state = !t.attached ? KIPC_TASK_UNATTACHED
		   : wait      ? KIPC_TASK_BLOCKED
			       : KIPC_TASK_RUNNING;
	if (!may_see_task(cur, t)) {
		ti.flags |= KIPC_INFO_HIDDEN;
		return;
	}
	ti.nparked = t.parked.size();
	if (wait) {
		pid_t pid;
		wait_of(*wait, &ti.wait_op, &pid, &ti.wait_mbox);
		ti.wait_pid = pid;
		ti.wait_since = wait->since;
		ti.wait_deadline = wait->deadline == kForever ? 0 : wait->deadline;
	}
	t.queue.stat(ti, ti);
	ti.nheld = t.held.size();
	ti.nsent = t.nsent;
	ti.nreceived = t.nreceived;
}

void Introspect::fill_mbox_info(const Task &, const Mailbox &mb, kipc_mbox_info &mi) const
{
	mi = kipc_mbox_info{};
	const Link &l = mb.link;
	k_.mbox.fill_stat(mb, mi.st);
	Mailboxes::PolicyView pv = k_.mbox.policy_view(mb);
	mi.pair_sender = pv.pair_sender;
	mi.pair_receiver = pv.pair_receiver;
	mi.excl = pv.excl;
	mi.rr_next = pv.rr_next;
	l.pending().for_each_unordered([&](Message *m) {
		if (!m->req() || m->req()->cached)
			mi.ncached++;
	});
}

long Introspect::task_info(Task &cur, pid_t pid, kipc_task_info &ti) const
{
	const Task *t = k_.find_task(pid);
	if (!t)
		return -ESRCH;
	fill_task_info(cur, *t, ti);
	return 0;
}

template <class F> long Introspect::on_mbox(Task &cur, int64_t id, F &&f) const
{
	int err;
	Mailbox *mb = k_.mbox.find(id, &err);
	if (!mb)
		return err;
	if (!may_see_mbox(cur, *mb))
		return -EACCES;
	f(*mb);
	return 0;
}

long Introspect::mbox_info(Task &cur, int64_t id, kipc_mbox_info &mi) const
{
	return on_mbox(cur, id, [&](const Mailbox &mb) { fill_mbox_info(cur, mb, mi); });
}

void Introspect::task_list(Task &cur, std::vector<kipc_task_info> &out) const
{
	out.reserve(k_.ntasks());
	k_.for_each_task([&](const Task &t) {
		out.emplace_back();
		fill_task_info(cur, t, out.back());
	});
	std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) { return a.pid < b.pid; });
}

void Introspect::mbox_list(Task &cur, std::vector<kipc_mbox_info> &out) const
{
	k_.mbox.for_each([&](const Mailbox *mb) {
		if (!may_see_mbox(cur, *mb))
			return;
		out.emplace_back();
		fill_mbox_info(cur, *mb, out.back());
	});
	std::sort(out.begin(), out.end(),
		  [](const auto &a, const auto &b) { return a.st.id < b.st.id; });
}

template <class F> long Introspect::on_link(Task &cur, int64_t target, bool taskq, F &&f) const
{
	if (taskq) {
		if ((target <= 0 || target > INT32_MAX) && !KIPC_NET_IS_PID(target))
			return -EINVAL; /* a pid, or a remote caller's proxy task */
		const Task *t = k_.find_task(pid_t(target));
		if (!t)
			return -ESRCH;
		if (!may_see_task(cur, *t))
			return -EACCES;
		f(t->queue);
		return 0;
	}
	return on_mbox(cur, target, [&](const Mailbox &mb) { f(mb.link); });
}

/* What a waiter's request says: the call that made it, since and until when. */
static void waiter_times(const Request &r, kipc_waiter_info &wi)
{
	wi.op = r.opcode;
	wi.since = r.since;
	wi.deadline = r.deadline == kForever ? 0 : r.deadline;
}

/* Receivers (longest-waiting first), then senders in delivery order, then holders. */
long Introspect::waiter_list(Task &cur, int64_t target, bool taskq,
			     std::vector<kipc_waiter_info> &out) const
{
	return on_link(cur, target, taskq, [&](const Link &l) {
		l.receivers().for_each([&](WaitEntry *w) {
			const Request *r = w->req;
			kipc_waiter_info wi{};
			wi.pid = r->task->pid;
			wi.kind = KIPC_WAITER_RECEIVER;
			waiter_times(*r, wi);
			wi.len = r->buflen;
			out.push_back(wi);
		});
		l.pending().for_each([&](Message *m) {
			const Request *r = m->req();
			kipc_waiter_info wi{};
			wi.pid = m->sender;
			wi.kind = r && !r->cached ? KIPC_WAITER_SENDER : KIPC_WAITER_CACHED;
			if (r)
				waiter_times(*r, wi);
			wi.seq = m->seq;
			wi.len = m->len;
			out.push_back(wi);
		});
		if (const Mailbox *mb = l.mbox) {
			for (const Task *t : mb->holders) {
				kipc_waiter_info wi{};
				wi.pid = t->pid;
				wi.kind = KIPC_WAITER_HOLDER;
				wi.flags = mb->owner == t ? KIPC_WAITER_F_OWNER : 0;
				out.push_back(wi);
			}
		}
	});
}

static kipc_msg_info msg_info(const Message *m, uint16_t flags)
{
	kipc_msg_info mi{};
	mi.seq = m->seq;
	mi.sender = m->sender;
	mi.len = m->len;
	mi.type = m->type();
	mi.stime = m->stime;
	mi.prio = m->prio;
	mi.flags = flags | (m->token() ? KIPC_MSG_CALL : 0);
	mi.route = m->route();
	return mi;
}

/* Queued messages in delivery order, then pending ones in delivery order. */
long Introspect::msg_list(Task &cur, int64_t target, bool taskq,
			  std::vector<kipc_msg_info> &out) const
{
	return on_link(cur, target, taskq, [&](const Link &l) {
		out.reserve(l.msgs.nmsg + l.pending().nmsg);
		l.msgs.for_each([&](Message *m) { out.push_back(msg_info(m, 0)); });
		l.pending().for_each(
			[&](Message *m) { out.push_back(msg_info(m, KIPC_MSG_PENDING)); });
	});
}

} // namespace kipc
