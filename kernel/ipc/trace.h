// SPDX-License-Identifier: MIT
/*
 * Tracepoints (included by ipc.h; the code is in trace.cc).
 *
 * A tracepoint is KIPC_TRACE(k, {.event = ..., ...}): with no listener
 * open it costs one predictable branch on tracer.nlisteners, and its
 * arguments are not even evaluated. With listeners, trace_emit() fills
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
#include <vector>

#include <kipc/trace.h>

namespace kipc {

struct Task;
struct Link;
struct Message;
struct Request;

/* What a tracepoint knows; trace_emit() turns it into a kipc_trace_event. */
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
};

struct Tracer {
	uint32_t nlisteners = 0;    /* the one word every tracepoint tests */
	uint64_t built = 0;         /* records built (tests: none without listeners) */
	std::vector<std::unique_ptr<TraceListener>> listeners;
	std::vector<TraceListener *> wake; /* readers to complete */
};

#define KIPC_TRACE(k, ...)                                                \
	do {                                                              \
		if (__builtin_expect((k).tracer.nlisteners != 0, 0))      \
			(k).trace_emit(::kipc::TraceEv __VA_ARGS__);      \
	} while (0)

/* For tracepoints that call a trace_* function of their own (trace.cc). */
#define KIPC_TRACING(k) __builtin_expect((k).tracer.nlisteners != 0, 0)

} // namespace kipc
