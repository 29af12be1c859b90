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
#define KIPC_TRACE_SEND     3   /* a message was sent: seq, len, prio, link, res */
#define KIPC_TRACE_ENQUEUE  4   /* a message entered a link's queue */
#define KIPC_TRACE_BLOCK    5   /* a call parked (send, receive, call, ...) */
#define KIPC_TRACE_WAKE     6   /* a parked call was taken off its waits */
#define KIPC_TRACE_DELIVER  7   /* a message reached its receiver (peer: sender) */
#define KIPC_TRACE_TIMEOUT  8   /* a parked call timed out */
#define KIPC_TRACE_CANCEL   9   /* a parked call was cancelled */
#define KIPC_TRACE_DESTROY  10  /* a mailbox was destroyed */
#define KIPC_TRACE_NETSEND  13  /* a request went to another node (struct kipc_trace_net) */
#define KIPC_TRACE_NETRECV  14  /* a request of another node runs here (struct kipc_trace_net) */
#define KIPC_TRACE_LOST     15  /* res events were dropped: the ring was full */
#define KIPC_TRACE_NETEND   19  /* a remote caller's proxy task ended (struct kipc_trace_net) */
#define KIPC_TRACE_NETREFUSE 20 /* a request of another node was refused, not run (struct kipc_trace_net) */
#define KIPC_TRACE_NETNAME  21  /* the rest of the name of the net record before (struct kipc_trace_name) */
#define KIPC_TRACE_MAX      15

#define KIPC_TRACE_MASK(ev) (1u << (ev))
#define KIPC_TRACE_ALL      (0xfffeu | KIPC_TRACE_MASK(KIPC_TRACE_NETEND) | \
			     KIPC_TRACE_MASK(KIPC_TRACE_NETREFUSE))

/* kipc_trace_event.flags */
#define KIPC_TRACE_F_CALL    (1u << 0)  /* SEND, BLOCK, DELIVER: a call's request */
#define KIPC_TRACE_F_REPLY   (1u << 1)  /* DELIVER: a reply; BLOCK: awaits a reply */
#define KIPC_TRACE_F_CACHED  (1u << 2)  /* BLOCK: a cached send (sender goes on) */
#define KIPC_TRACE_F_HANDOFF (1u << 3)  /* DELIVER: to a waiting receiver, never queued */
#define KIPC_TRACE_F_PENDING (1u << 4)  /* DELIVER: taken from a blocked sender */

#define KIPC_TRACE_BUF_DEFAULT 4096u   /* events per listener */
#define KIPC_TRACE_BUF_MAX     65536u

struct kipc_trace_attr {
	uint32_t events;        /* KIPC_TRACE_MASK()s; 0: KIPC_TRACE_ALL (no calls) */
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

/*
 * Appended events (the records above are unchanged).
 *
 * CREATE, OPEN: a mailbox, POSIX queue or System V queue was created, or
 * an existing one was opened (mbox_open, mq_open, msgget). The record is
 * a struct kipc_trace_obj: its name (truncated to 47 bytes, then
 * KIPC_TRACE_F_TRUNC) or its System V key. Both are in KIPC_TRACE_ALL.
 *
 * SYSCALL, SYSRET: one call's submission and each of its completions,
 * strace-style (kipc-trace --). SYSCALL is a struct kipc_trace_call with
 * the call's decoded arguments; SYSRET a struct kipc_trace_ret with the
 * completion. A call that completes at once has its SYSRET right after
 * its SYSCALL (and the events it caused in between); a parked one has
 * it when it completes, whoever completes it. Match the two by pid and
 * user_data. A cached send has two SYSRETs: the first with
 * KIPC_CQE_F_MORE, the second with KIPC_CQE_F_NOTIF. The trace calls
 * themselves are never traced. Both are high-volume, so they are not in
 * KIPC_TRACE_ALL (nor in events 0): a listener asks for them by mask,
 * e.g. KIPC_TRACE_ALL | KIPC_TRACE_CALLS.
 *
 * All three record types have the size of struct kipc_trace_event and
 * share its first fields (ts, event, op, flags, pid): read a record as a
 * kipc_trace_event, then by event as the one it is.
 */
#define KIPC_TRACE_CREATE   11  /* struct kipc_trace_obj */
#define KIPC_TRACE_OPEN     12  /* struct kipc_trace_obj */
#define KIPC_TRACE_SYSCALL  16  /* struct kipc_trace_call */
#define KIPC_TRACE_SYSRET   17  /* struct kipc_trace_ret */
#define KIPC_TRACE_SYSARG   18  /* struct kipc_trace_obj: the name argument of
				   the SYSCALL just before it (mbox_open,
				   mq_open, mq_unlink, net_node), read from the caller's
				   memory; key: mq_open's oflag */
#define KIPC_TRACE_CALLS    (KIPC_TRACE_MASK(KIPC_TRACE_SYSCALL) | \
			     KIPC_TRACE_MASK(KIPC_TRACE_SYSRET) | \
			     KIPC_TRACE_MASK(KIPC_TRACE_SYSARG))

/* more kipc_trace_event.flags */
#define KIPC_TRACE_F_BLOCKED (1u << 5)  /* SEND: the sender blocked (BLOCK follows);
					   the outcome is a later ENQUEUE/DELIVER,
					   TIMEOUT or CANCEL */
#define KIPC_TRACE_F_TRUNC   (1u << 6)  /* CREATE, OPEN: the name was truncated */
#define KIPC_TRACE_F_POSIX   (1u << 7)  /* CREATE, OPEN, DESTROY: a POSIX queue */
#define KIPC_TRACE_F_SYSV    (1u << 8)  /* CREATE, OPEN, DESTROY: a System V queue */

/*
 * ATTACH: peer is the process's parent pid when it attached (0: unknown),
 * so that a tracer can follow a program's children.
 * SEND: res is 0, or the -errno the send failed with at once (EAGAIN,
 * ETIMEDOUT, EDEADLK, ...); a failed send's message was never queued.
 */

struct kipc_trace_obj {
	uint64_t ts;
	uint16_t event;         /* KIPC_TRACE_CREATE, KIPC_TRACE_OPEN */
	uint16_t op;
	uint32_t flags;         /* KIPC_TRACE_F_TRUNC, _POSIX, _SYSV */
	int32_t  pid;
	int32_t  key;           /* System V key (0: IPC_PRIVATE) */
	int64_t  mbox;          /* its id */
	char     name[48];      /* NUL-terminated; "" when anonymous */
};

struct kipc_trace_call {
	uint64_t ts;
	uint16_t event;         /* KIPC_TRACE_SYSCALL */
	uint16_t op;            /* KIPC_SYS_* */
	uint32_t flags;         /* the sqe's flags (KIPC_F_*, KIPC_O_*) */
	int32_t  pid;
	uint16_t prio;          /* the sqe's fields: */
	uint16_t rsvd0;
	int64_t  target;
	uint64_t user_data;
	uint32_t len;
	uint32_t len2;
	int64_t  type;          /* type, or pid (grant, revoke, set_owner) */
	int64_t  timeout;
	char     comm[16];
};

struct kipc_trace_ret {
	uint64_t ts;
	uint16_t event;         /* KIPC_TRACE_SYSRET */
	uint16_t op;            /* KIPC_SYS_* of the call */
	uint32_t flags;         /* the cqe's flags (KIPC_CQE_F_*) */
	int32_t  pid;           /* the caller */
	int32_t  peer;          /* the cqe's fields: */
	int64_t  source;
	uint64_t user_data;
	uint32_t len;
	uint16_t prio;
	uint16_t rsvd0;
	uint64_t seq;
	int64_t  res;           /* result or -errno */
	char     comm[16];
};

/*
 * NETSEND, NETRECV: kipc across machines (Documentation/network.md). A
 * request for another node does not enter the core at its origin: the
 * network bridge traces it there as the core traces a call (SYSCALL when
 * it is made, SYSRET when it completes) and adds NETSEND, the request
 * going to its home node, then a second NETSEND with KIPC_TRACE_F_DONE,
 * its outcome, when it completes. At the home node the request runs on
 * a proxy task (whose pid is the caller's node-qualified pid,
 * KIPC_NET_IS_PID): NETRECV, then the proxy's own events (send, block,
 * deliver ...). seq is the request's number at its origin and epoch that
 * origin kipcd's boot epoch (a restarted kipcd counts from 1 again); the
 * pair is the same in the three records, so a tool joins the traces of
 * the two nodes by (origin node, epoch, seq).
 *
 * NETREFUSE: at the home node, a request of another node that was
 * answered without running: res is what its origin is told (-EAGAIN: a
 * bound of the home; -EINVAL, -ESRCH, -ENOSYS: a bad request or a gone
 * task; -ENOLINK: given up by its caller, or an id never seen; -ESTALE:
 * it named another instance of the home, answered STALE). pid is the
 * caller's proxy task, or 0 when there is none (then only root's
 * listeners see it); name the caller, "NODE:PID".
 *
 * NETEND: at the home node, a remote caller's proxy task ended (its
 * EXIT follows). res says why: 0 its task exited at its node; -ESRCH a
 * new task there has its pid; -ENOLINK its node was silent for
 * net_timeout_ms; -ECONNRESET its node restarted (a new epoch);
 * -ESHUTDOWN its kipcd stopped (BYE); -EIDRM this kipcd stops. seq is 0.
 *
 * name is NUL-terminated. One longer than 31 bytes ("NODE:/name" up to
 * 31 + 1 + 255 bytes, "NODE:PID" up to 39) has its first 31 bytes here,
 * KIPC_TRACE_F_TRUNC and KIPC_TRACE_F_MORE: the records right after it
 * are NETNAMEs (struct
 * kipc_trace_name), each with the next 48 bytes (or fewer, NUL-ended) and
 * KIPC_TRACE_F_MORE on all but the last: the name is the concatenation.
 * They have the record's pid and mbox, and reach exactly the listeners
 * the record reaches (a listener never asks for NETNAME by its mask: it
 * comes with any of the four). Only a full ring separates them (a LOST
 * record comes instead of the rest): then the name is cut there
 * (kipc-trace shows "..."). All four are in KIPC_TRACE_ALL.
 */
#define KIPC_TRACE_F_DONE    (1u << 9)  /* NETSEND: the request completed: res */
#define KIPC_TRACE_F_MORE    (1u << 10) /* NET*, NETNAME: NETNAME records follow */

struct kipc_trace_net {
	uint64_t ts;
	uint16_t event;         /* KIPC_TRACE_NETSEND, _NETRECV, _NETREFUSE, _NETEND */
	uint16_t op;            /* the request: mbox_send, mbox_call, send, call,
				   mbox_open, cancel; NETEND: KIPC_SYS_NONE */
	uint32_t flags;         /* KIPC_TRACE_F_DONE, KIPC_TRACE_F_TRUNC (name) */
	int32_t  pid;           /* NETSEND: the caller; else the proxy task */
	int32_t  res;           /* NETSEND done: 0, a reply's length, or -errno;
				   NETREFUSE, NETEND: why (above) */
	int64_t  mbox;          /* NETSEND: the remote mailbox id the caller named
				   (done of mbox_open: the one it got), 0: a pid;
				   NETRECV: the mailbox here the request names, 0 */
	uint64_t seq;           /* the request's number at its origin */
	uint64_t epoch;         /* the origin kipcd's boot epoch (seq's) */
	char     name[32];      /* NETSEND: the target, "NODE:/name" or "NODE:PID";
				   else the caller, "NODE:PID" */
};

struct kipc_trace_name {
	uint64_t ts;
	uint16_t event;         /* KIPC_TRACE_NETNAME */
	uint16_t op;            /* the record's */
	uint32_t flags;         /* KIPC_TRACE_F_MORE: another NETNAME follows */
	int32_t  pid;           /* the record's */
	uint32_t rsvd0;
	int64_t  mbox;          /* the record's */
	char     text[48];      /* the next bytes of the name, NUL-ended if shorter */
};

#ifdef __cplusplus
static_assert(sizeof(struct kipc_trace_name) == sizeof(struct kipc_trace_event), "record size");
static_assert(sizeof(struct kipc_trace_net) == sizeof(struct kipc_trace_event), "record size");
static_assert(sizeof(struct kipc_trace_obj) == sizeof(struct kipc_trace_event), "record size");
static_assert(sizeof(struct kipc_trace_call) == sizeof(struct kipc_trace_event), "record size");
static_assert(sizeof(struct kipc_trace_ret) == sizeof(struct kipc_trace_event), "record size");
#else
_Static_assert(sizeof(struct kipc_trace_name) == sizeof(struct kipc_trace_event), "record size");
_Static_assert(sizeof(struct kipc_trace_net) == sizeof(struct kipc_trace_event), "record size");
_Static_assert(sizeof(struct kipc_trace_obj) == sizeof(struct kipc_trace_event), "record size");
_Static_assert(sizeof(struct kipc_trace_call) == sizeof(struct kipc_trace_event), "record size");
_Static_assert(sizeof(struct kipc_trace_ret) == sizeof(struct kipc_trace_event), "record size");
#endif

#endif /* _UAPI_KIPC_TRACE_H */
