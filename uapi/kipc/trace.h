/* SPDX-License-Identifier: MIT */
/*
 * kipc tracing: tracepoints in the kernel, read through a listener.
 *
 * Plain C11, usable from C++20. A task opens one listener (trace_open)
 * with a filter and a ring size; from then on every tracepoint that
 * passes the filter appends a struct kipc_trace_event to the listener's
 * ring in the kernel. trace_read takes events out, oldest first, and
 * waits (the request parks, as a receive does) while the ring is empty,
 * like reading ftrace's trace_pipe. The ring is bounded: when it is full
 * new events are dropped and counted, and the next event that fits is
 * preceded by a KIPC_TRACE_LOST record whose res is how many were lost.
 * trace_close (or the task's exit) frees the listener.
 *
 * Visibility: a listener sees the events of tasks with its uid; root
 * (with root_bypass) sees every event.
 *
 * Cost: with no listener open, each tracepoint is one predictable branch
 * on a counter.
 *
 *  trace_open   addr2/len2 = struct kipc_trace_attr (len2 0: defaults)   res 0
 *  trace_read   addr2/len2 = struct kipc_trace_event[] out; flags
 *               KIPC_F_NONBLOCK and the timeout flags                    res events
 *  trace_close                                                           res 0
 */
#ifndef _UAPI_KIPC_TRACE_H
#define _UAPI_KIPC_TRACE_H

#include <stdint.h>
#include <kipc/kipc.h>

/* kipc_trace_event.event */
#define KIPC_TRACE_ATTACH   1   /* a process attached (comm, pid) */
#define KIPC_TRACE_EXIT     2   /* a task went away */
#define KIPC_TRACE_SEND     3   /* a message was made: seq, len, prio, link */
#define KIPC_TRACE_ENQUEUE  4   /* a message entered a link's queue */
#define KIPC_TRACE_BLOCK    5   /* a call parked (send, receive, call, ...) */
#define KIPC_TRACE_WAKE     6   /* a parked call was taken off its waits */
#define KIPC_TRACE_DELIVER  7   /* a message reached its receiver (peer: sender) */
#define KIPC_TRACE_TIMEOUT  8   /* a parked call timed out */
#define KIPC_TRACE_CANCEL   9   /* a parked call was cancelled */
#define KIPC_TRACE_DESTROY  10  /* a mailbox was destroyed */
#define KIPC_TRACE_LOST     15  /* res events were dropped: the ring was full */
#define KIPC_TRACE_MAX      15

#define KIPC_TRACE_MASK(ev) (1u << (ev))
#define KIPC_TRACE_ALL      0xfffeu

/* kipc_trace_event.flags */
#define KIPC_TRACE_F_CALL    (1u << 0)  /* SEND, BLOCK, DELIVER: a call's request */
#define KIPC_TRACE_F_REPLY   (1u << 1)  /* DELIVER: a reply; BLOCK: awaits a reply */
#define KIPC_TRACE_F_CACHED  (1u << 2)  /* BLOCK: a cached send (sender goes on) */
#define KIPC_TRACE_F_HANDOFF (1u << 3)  /* DELIVER: to a waiting receiver, never queued */
#define KIPC_TRACE_F_PENDING (1u << 4)  /* DELIVER: taken from a blocked sender */

#define KIPC_TRACE_BUF_DEFAULT 4096u   /* events per listener */
#define KIPC_TRACE_BUF_MAX     65536u

struct kipc_trace_attr {
	uint32_t events;        /* KIPC_TRACE_MASK()s; 0: all */
	uint32_t bufsize;       /* ring size in events; 0: KIPC_TRACE_BUF_DEFAULT */
	int32_t  pid;           /* only events whose pid or peer is pid; 0: all */
	uint32_t rsvd0;
	int64_t  mbox;          /* only events on this mailbox; 0: all */
	uint64_t rsvd[4];       /* zero */
};

struct kipc_trace_event {
	uint64_t ts;            /* CLOCK_MONOTONIC ns */
	uint16_t event;         /* KIPC_TRACE_* */
	uint16_t op;            /* KIPC_SYS_* being executed; KIPC_SYS_NONE: a timer, an exit */
	uint32_t flags;         /* KIPC_TRACE_F_* */
	int32_t  pid;           /* the task the event is about */
	int32_t  peer;          /* the other task (receiver, sender, waker), 0 */
	int64_t  mbox;          /* mailbox id; 0: the task queue of qpid */
	int32_t  qpid;          /* task queue owner when mbox is 0 (0: no link) */
	uint32_t len;           /* message length */
	uint64_t seq;           /* message sequence number, 0 */
	int64_t  res;           /* result or -errno; LOST: events lost */
	uint16_t prio;
	uint16_t rsvd0;
	uint32_t rsvd1;
	char     comm[16];      /* command name of pid */
};

#endif /* _UAPI_KIPC_TRACE_H */
