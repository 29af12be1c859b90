// SPDX-License-Identifier: MIT
/*
 * Trace listeners: the rings behind KIPC_TRACE() (see trace.h) and the
 * trace_open/read/close calls (see <kipc/trace.h>).
 *
 * A trace_read that finds its ring empty parks like a receive: it is a
 * Request (ReqKind::TraceRead) on its task's parked list and, with a
 * deadline, on the timer map, so timeouts, cancels (EINTR from the
 * library's signal path) and exit work as for any parked call. finish()
 * calls unparked() to detach it from its listener. Events that arrive
 * while it is parked put the listener on the wake list; flush(),
 * called when each entry ends, completes those reads with
 * everything in their rings. Nothing about a trace read is itself traced
 * (no feedback loop).
 */
#include <algorithm>
#include <cstring>

#include "ipc.h"

#include <kipc/net.h>

namespace kipc {

static bool passes(const KernelImpl &k, const TraceListener &l, const kipc_trace_event &e,
		   uid_t uid)
{
	const kipc_trace_attr &a = l.attr;
	if (!((a.events ? a.events : KIPC_TRACE_ALL) & KIPC_TRACE_MASK(e.event)))
		return false;
	bool net = e.event == KIPC_TRACE_NETSEND || e.event == KIPC_TRACE_NETRECV ||
		   e.event == KIPC_TRACE_NETEND || e.event == KIPC_TRACE_NETREFUSE;
	if (a.pid && e.pid != a.pid && (net || e.peer != a.pid))
		return false; /* (a kipc_trace_net has res where peer is) */
	if (a.mbox && (e.mbox != a.mbox || (e.event == KIPC_TRACE_SYSCALL &&
					     (e.op == KIPC_SYS_send || e.op == KIPC_SYS_call ||
					      e.op == KIPC_SYS_send_bundle))))
		return false; /* SYSCALL: target is the mailbox; send, call, send_bundle: a pid */
	return l.task->uid == uid || (l.task->uid == 0 && k.limits().root_bypass);
}

static void push(TraceListener &l, const kipc_trace_event &e)
{
	size_t cap = l.ring.size();
	if (l.lost) {
		if (l.count + 2 > cap) { /* room for LOST and the event */
			l.lost++;
			return;
		}
		kipc_trace_event lost{};
		lost.ts = e.ts;
		lost.event = KIPC_TRACE_LOST;
		lost.op = KIPC_SYS_NONE;
		lost.res = int64_t(l.lost);
		l.ring[(l.head + l.count++) % cap] = lost;
		l.lost = 0;
	} else if (l.count == cap) {
		l.lost++;
		return;
	}
	l.ring[(l.head + l.count++) % cap] = e;
}

void Tracer::emit(const TraceEv &ev)
{
	kipc_trace_event e{};
	e.ts = uint64_t(k_.now());
	e.event = ev.event;
	e.op = k_.current_op();
	e.flags = ev.flags;
	e.pid = ev.task ? ev.task->pid : ev.pid;
	e.peer = ev.peer;
	if (ev.task)
		ev.task->comm.copy(e.comm, sizeof e.comm - 1);
	if (const Link *l = ev.link) {
		e.mbox = l->id();
		e.qpid = l->task ? l->task->pid : 0;
	}
	if (const Message *m = ev.msg) {
		e.len = m->len;
		e.seq = m->seq;
		e.prio = m->prio;
	}
	e.res = ev.res;
	uid_t uid = ev.task ? ev.task->uid : ev.uid >= 0 ? uid_t(ev.uid) : 0;
	if (!ev.task && ev.uid < 0) {
		if (const Task *t = k_.find_task(e.pid))
			uid = t->uid;
	}
	record(e, uid);
}

/*
 * The appended records (CREATE/OPEN, SYSCALL/SYSRET) have the layout of
 * a kipc_trace_event; the ring holds them as such.
 */
template <class R> static kipc_trace_event as_event(const R &r)
{
	static_assert(sizeof r == sizeof(kipc_trace_event));
	kipc_trace_event e;
	std::memcpy(&e, &r, sizeof e);
	return e;
}

long Tracer::opened(const Mailbox &mb, bool created)
{
	const Task *current = k_.current_task();
	if (on() && current) {
		kipc_trace_obj o{};
		o.ts = uint64_t(k_.now());
		o.event = created ? KIPC_TRACE_CREATE : KIPC_TRACE_OPEN;
		o.op = k_.current_op();
		o.flags = mb.mech->trace_flag;
		if (mb.name.size() >= sizeof o.name)
			o.flags |= KIPC_TRACE_F_TRUNC;
		o.pid = current->pid;
		o.key = mb.mech->key(mb);
		o.mbox = mb.id;
		mb.name.copy(o.name, sizeof o.name - 1);
		record(as_event(o), current->uid);
	}
	return mb.id;
}

/* The trace calls are not traced: a tracer reading would trace itself. */
static bool untraced(uint16_t op)
{
	return op == KIPC_SYS_trace_open || op == KIPC_SYS_trace_read ||
	       op == KIPC_SYS_trace_close;
}

/* What a SYSCALL and a SYSRET record (R) start with: when, which call, whose. */
template <class R>
static R syscall_record(const KernelImpl &k, const Task &t, uint16_t event, uint16_t op,
			uint32_t flags)
{
	R r{};
	r.ts = uint64_t(k.now());
	r.event = event;
	r.op = op;
	r.flags = flags;
	r.pid = t.pid;
	t.comm.copy(r.comm, sizeof r.comm - 1);
	return r;
}

void Tracer::call(const Task &t, const kipc_sqe &sqe)
{
	if (untraced(sqe.opcode))
		return;
	auto c = syscall_record<kipc_trace_call>(k_, t, KIPC_TRACE_SYSCALL, sqe.opcode, sqe.flags);
	c.prio = sqe.prio;
	c.target = sqe.target;
	c.user_data = sqe.user_data;
	c.len = sqe.len;
	c.len2 = sqe.len2;
	c.type = sqe.type;
	c.timeout = sqe.timeout;
	record(as_event(c), t.uid);
	if (sqe.opcode != KIPC_SYS_mbox_open && sqe.opcode != KIPC_SYS_mq_open &&
	    sqe.opcode != KIPC_SYS_mq_unlink && sqe.opcode != KIPC_SYS_net_node)
		return;
	/* the name, as far as the caller's memory holds it (the call checks it) */
	kipc_trace_obj o{};
	o.ts = c.ts;
	o.event = KIPC_TRACE_SYSARG;
	o.op = sqe.opcode;
	o.pid = t.pid;
	uint32_t n = std::min<uint32_t>(sqe.len, sizeof o.name - 1);
	if (sqe.len > n)
		o.flags |= KIPC_TRACE_F_TRUNC;
	if (t.mm && (!t.mm->access_ok(sqe.addr, n) || t.mm->copy_from_user(o.name, sqe.addr, n)))
		std::memset(o.name, 0, sizeof o.name);
	kipc_mq_open mo;
	if (sqe.opcode == KIPC_SYS_mq_open && t.mm && sqe.len2 >= sizeof mo &&
	    t.mm->access_ok(sqe.addr2, sizeof mo) && !t.mm->copy_from_user(&mo, sqe.addr2, sizeof mo))
		o.key = int32_t(mo.oflag);
	record(as_event(o), t.uid);
}

void Tracer::ret(const Task &t, const kipc_cqe &cqe, uint16_t op)
{
	if (untraced(op))
		return;
	auto r = syscall_record<kipc_trace_ret>(k_, t, KIPC_TRACE_SYSRET, op, cqe.flags);
	r.peer = cqe.pid;
	r.source = cqe.source;
	r.user_data = cqe.user_data;
	r.len = cqe.len;
	r.prio = cqe.prio;
	r.seq = cqe.seq;
	r.res = cqe.res;
	record(as_event(r), t.uid);
}

void Tracer::record(const kipc_trace_event &e, uid_t uid)
{
	built_++;
	bool net = e.event == KIPC_TRACE_NETSEND || e.event == KIPC_TRACE_NETRECV ||
		   e.event == KIPC_TRACE_NETEND || e.event == KIPC_TRACE_NETREFUSE;
	for (auto &lp : listeners_) {
		TraceListener &l = *lp;
		/* A NETNAME goes where its net record went (kipc/trace.h). */
		bool ok = e.event == KIPC_TRACE_NETNAME ? l.net_took : passes(k_, l, e, uid);
		if (net)
			l.net_took = ok;
		if (!ok)
			continue;
		push(l, e);
		if (l.reader && !l.wake) {
			l.wake = true;
			wake_.push_back(&l);
		}
	}
}

TraceListener *Tracer::listener_of(const Task &t) const
{
	auto it = by_task_.find(&t);
	return it == by_task_.end() ? nullptr : it->second;
}

long Tracer::open(Task &cur, const kipc_trace_attr &attr)
{
	if (listener_of(cur))
		return -EBUSY;
	if (attr.rsvd0 || std::any_of(std::begin(attr.rsvd), std::end(attr.rsvd),
				      [](uint64_t v) { return v != 0; }))
		return -EINVAL;
	if (attr.events & ~uint32_t(KIPC_TRACE_ALL | KIPC_TRACE_CALLS))
		return -EINVAL;
	/* pid: a task's, or a remote caller's proxy (node-qualified, kipc/net.h) */
	if (attr.bufsize > KIPC_TRACE_BUF_MAX || (attr.pid < 0 && !KIPC_NET_IS_PID(attr.pid)) ||
	    attr.mbox < 0)
		return -EINVAL;
	/* at least 2: room for a LOST record and one event */
	size_t events = std::max(2u, attr.bufsize ? attr.bufsize : KIPC_TRACE_BUF_DEFAULT);
	/* The ring is the user's: charged until the listener closes. */
	UserAcct &u = k_.user(cur.uid);
	uint64_t charge = events * sizeof(kipc_trace_event);
	if (u.trace_bytes + charge > k_.limits().trace_bytes_per_user)
		return -ENOSPC;
	auto l = std::make_unique<TraceListener>();
	l->task = &cur;
	l->attr = attr;
	l->ring.resize(events);
	u.trace_bytes += charge;
	by_task_.emplace(&cur, l.get());
	listeners_.push_back(std::move(l));
	nlisteners_++;
	return 0;
}

/* Move up to max events of l into the reader's buffer; how many, or -errno. */
static long take(TraceListener &l, Task &t, uint64_t buf, uint32_t buflen)
{
	size_t max = buflen / sizeof(kipc_trace_event);
	size_t n = std::min(max, l.count);
	size_t cap = l.ring.size();
	for (size_t i = 0; i < n; i++) {
		const kipc_trace_event &e = l.ring[(l.head + i) % cap];
		if (t.mm && t.mm->copy_to_user(buf + i * sizeof e, &e, sizeof e))
			return -EFAULT; /* nothing consumed */
	}
	l.head = (l.head + n) % cap;
	l.count -= n;
	return long(n);
}

long Tracer::read(Task &cur, const MsgArgs &a)
{
	TraceListener *l = listener_of(cur);
	if (!l)
		return -EBADF;
	if (l->reader)
		return -EBUSY; /* one reader at a time */
	if (a.len2 < sizeof(kipc_trace_event))
		return -EINVAL;
	if (l->count)
		return take(*l, cur, a.addr2, a.len2);
	if (a.wait.nonblock)
		return -EAGAIN;
	if (a.wait.deadline <= k_.now())
		return -ETIMEDOUT;
	ReqPtr r = k_.new_request(cur, ReqKind::TraceRead, a);
	r->buf = a.addr2;
	r->buflen = a.len2;
	l->reader = k_.park(std::move(r));
	return -EQUEUED;
}

void Tracer::unparked(Request *r)
{
	TraceListener *l = listener_of(*r->task);
	if (l && l->reader == r)
		l->reader = nullptr;
}

void Tracer::flush()
{
	std::vector<TraceListener *> v;
	v.swap(wake_);
	for (TraceListener *l : v) {
		l->wake = false;
		Request *r = l->reader;
		if (!r || !l->count)
			continue;
		k_.finish(r, [&](Request &rq, kipc_cqe &cqe) { /* clears l->reader */
			cqe.res = take(*l, *rq.task, rq.buf, rq.buflen);
			return true;
		});
	}
}

long Tracer::close(Task &cur)
{
	TraceListener *l = listener_of(cur);
	if (!l)
		return -EBADF;
	if (Request *r = l->reader)
		k_.abort_request(r, -EBADF, true);
	auto w = std::find(wake_.begin(), wake_.end(), l);
	if (w != wake_.end())
		wake_.erase(w);
	auto it = std::find_if(listeners_.begin(), listeners_.end(),
			       [&](const auto &p) { return p.get() == l; });
	by_task_.erase(&cur);
	k_.user(cur.uid).trace_bytes -= l->ring.size() * sizeof(kipc_trace_event);
	listeners_.erase(it);
	nlisteners_--;
	return 0;
}

void Tracer::task_exit(Task &t)
{
	if (listener_of(t))
		close(t);
}

} // namespace kipc
