// SPDX-License-Identifier: MIT
/*
 * Tracepoints (included by ipc.h; the code is in trace.cc).
 *
 * A tracepoint is KIPC_TRACE(k, {.event = ..., ...}): with no listener
 * open it costs one predictable branch on tracer.on(), and its
 * arguments are not even evaluated. With listeners, Tracer::emit() fills
 * one kipc_trace_event and appends it to the ring of every listener
 * whose filter and permissions let it through. A full ring drops the
 * event and counts it (never grows). A listener whose reader is parked
 * in trace_read goes on the wake list; the facade completes those reads
 * once the current syscall (or timer run, or exit) is over, so a read
 * returns a batch and tracing never completes a request from inside a
 * tracepoint.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include <kipc/kipc.h>
#include <kipc/trace.h>

namespace kipc {

struct Task;
struct Link;
struct Message;
struct Request;

/* What a tracepoint knows; Tracer::emit() turns it into a kipc_trace_event. */
struct TraceEv {
	uint16_t event = 0;
	const Task *task = nullptr; /* the task the event is about (or pid) */
	pid_t pid = 0;              /* when task is nullptr */
	pid_t peer = 0;
	const Link *link = nullptr;
	const Message *msg = nullptr;
	int64_t res = 0;
	uint32_t flags = 0;
	int64_t uid = -1;           /* whose event, when no task is (-1: pid's user) */
};

struct TraceListener {
	Task *task;                 /* whose listener */
	kipc_trace_attr attr;       /* filter */
	std::vector<kipc_trace_event> ring;
	size_t head = 0;            /* oldest event */
	size_t count = 0;           /* events in the ring */
	uint64_t lost = 0;          /* dropped since the last LOST record */
	Request *reader = nullptr;  /* parked trace_read */
	bool wake = false;          /* on Tracer::wake */
	bool net_took = false;      /* it took the last net record: its NETNAMEs too */
};

class KernelImpl;
struct Mailbox;
struct MsgArgs;

/*
 * The trace listeners and what reaches them (trace.cc): a member of
 * KernelImpl, its state private. The core calls emit() through
 * KIPC_TRACE(), call() and ret() around each syscall, and three hooks:
 * unparked() when finish() ends a trace_read, flush() when an entry
 * ends, task_exit() when a task goes.
 */
class Tracer {
public:
	explicit Tracer(KernelImpl &k) : k_(k) {}
	Tracer(const Tracer &) = delete;
	Tracer &operator=(const Tracer &) = delete;

	bool on() const { return nlisteners_ != 0; } /* the one word every tracepoint tests */
	void emit(const TraceEv &ev);
	/* CREATE/OPEN of mb; returns its id (the open calls end with it). */
	long opened(const Mailbox &mb, bool created);
	void call(const Task &t, const kipc_sqe &sqe);             /* SYSCALL */
	void ret(const Task &t, const kipc_cqe &cqe, uint16_t op); /* SYSRET */
	/* An event made outside the core (the network bridge's NETSEND,
	 * NETRECV): to the listeners that may see uid's events. */
	void record(const kipc_trace_event &e, uid_t uid);

	/* The trace_open, trace_read, trace_close calls of cur. */
	long open(Task &cur, const kipc_trace_attr &attr);
	long read(Task &cur, const MsgArgs &a);
	long close(Task &cur);

	/* Hooks of the core. */
	void unparked(Request *r);            /* finish() of a trace_read */
	bool woken() const { return !wake_.empty(); }
	void flush();                         /* complete the reads woken */
	void task_exit(Task &t);              /* its listener closes */

	uint32_t nlisteners() const { return nlisteners_; }
	uint64_t built() const { return built_; } /* records built (tests: none without listeners) */
	size_t listeners() const { return listeners_.size(); }

private:
	TraceListener *listener_of(const Task &t) const; /* t's, or nullptr */

	KernelImpl &k_;
	uint32_t nlisteners_ = 0;
	uint64_t built_ = 0;
	std::vector<std::unique_ptr<TraceListener>> listeners_; /* in open order */
	std::unordered_map<const Task *, TraceListener *> by_task_; /* each task's one */
	std::vector<TraceListener *> wake_; /* readers to complete */
};

#define KIPC_TRACE(k, ...)                                                \
	do {                                                              \
		if (__builtin_expect((k).tracer.on(), 0))                 \
			(k).tracer.emit(::kipc::TraceEv __VA_ARGS__);     \
	} while (0)

/* For tracepoints that call a trace function of their own (trace.cc). */
#define KIPC_TRACING(k) __builtin_expect((k).tracer.on(), 0)

} // namespace kipc
