/* SPDX-License-Identifier: MIT */
/*
 * kipc introspection: what the kernel tells tools (kipcs, kipcrm) about
 * its tasks, mailboxes, waiters, queued messages, limits and counters.
 *
 * Plain C11, usable from C++20. Lists are returned as arrays of the
 * fixed-size records below in the caller's buffer (sqe.addr2/len2): the
 * result is the *total* number of records visible to the caller, and
 * min(total, len2 / sizeof(record)) of them are written. A caller whose
 * buffer was too small sees res > records written and may retry larger.
 * Reserved fields are zero on output.
 *
 * Visibility follows permissions, as /proc and ipcs(1) do:
 *  - limits and global counters (sysinfo): everyone;
 *  - tasks: every task is listed with its public fields (pid, uid, gid,
 *    comm, state, atime); the rest (what it waits on, its queue, its
 *    counters) only for the same uid or root (with root_bypass), else
 *    zero with KIPC_INFO_HIDDEN set, like /proc/<pid>/ files that need
 *    ptrace access;
 *  - mailboxes, their waiters and queued message headers: a mailbox is
 *    visible to its owner's and creator's uid, to tasks holding its
 *    receive right, to tasks with read permission (mode bits), and to
 *    root; others are not listed (and EACCES by id);
 *  - a task queue's waiters and message headers: same uid or root.
 * Payloads are never returned.
 */
#ifndef _UAPI_KIPC_INTROSPECT_H
#define _UAPI_KIPC_INTROSPECT_H

#include <stdint.h>
#include <kipc/kipc.h>

#define KIPC_COMM_LEN 16

/* sqe.flags of waiter_list and msg_list */
#define KIPC_INTRO_TASKQ    (1u << 0)  /* target is a pid: its task queue */

/* kipc_task_info.state */
#define KIPC_TASK_RUNNING    0  /* attached, not waiting in a call */
#define KIPC_TASK_BLOCKED    1  /* waiting in a call (wait_* says where) */
#define KIPC_TASK_UNATTACHED 2  /* created by a send; never attached */

/* kipc_task_info.flags, kipc_mbox_info.flags */
#define KIPC_INFO_HIDDEN     (1u << 0)  /* private fields withheld (zero) */
#define KIPC_INFO_SELF       (1u << 1)  /* the calling task */

/*
 *  sysinfo      addr2/len2 = struct kipc_sysinfo out             res 0
 *  task_list    addr2/len2 = struct kipc_task_info[] out          res total
 *  task_info    target = pid, addr2/len2 = kipc_task_info out     res 0
 *  mbox_list    addr2/len2 = struct kipc_mbox_info[] out          res total
 *  mbox_info    target = id, addr2/len2 = kipc_mbox_info out      res 0
 *  waiter_list  target = id (pid with KIPC_INTRO_TASKQ),
 *               addr2/len2 = struct kipc_waiter_info[] out        res total
 *  kernel_info  addr2/len2 = struct kipc_kernel_info out         res 0
 *  msg_list     target = id (pid with KIPC_INTRO_TASKQ),
 *               addr2/len2 = struct kipc_msg_info[] out           res total
 */

struct kipc_sysinfo {
	/* limits (see Documentation/kconfig.md) */
	uint32_t msg_default;
	uint32_t msg_max;
	uint32_t msgsize_default;
	uint32_t msgsize_max;
	uint32_t mbox_per_user;
	uint32_t taskq_capacity;
	uint64_t bytes_per_user;
	uint32_t root_bypass;
	uint32_t msg_overhead;  /* bytes charged per message beyond its payload */
	/* now */
	uint32_t ntasks;        /* tasks (attached or not) */
	uint32_t nmboxes;       /* mailboxes */
	uint32_t nmsg;          /* messages in all links */
	uint32_t npending;      /* messages of blocked senders, cached messages */
	uint64_t nbytes;        /* payload bytes of nmsg + npending */
	uint32_t nparked;       /* parked requests */
	uint32_t ntracers;      /* open trace listeners */
	int64_t  boot_time;     /* CLOCK_REALTIME ns at boot */
	int64_t  uptime;        /* ns since boot */
	/* counters since boot */
	uint64_t nsent;         /* messages sent: reached a link or receiver */
	uint64_t ndelivered;    /* messages and replies delivered */
	uint64_t ntimeouts;
	uint64_t ncancels;
	uint64_t nattach;
	uint64_t nexit;
	uint64_t ndestroyed;    /* mailboxes destroyed */
	/* the caller's user */
	uint32_t uid;
	uint32_t user_mboxes;   /* mailboxes it created */
	uint64_t user_bytes;    /* bytes charged to it */
	/* more limits (appended: Documentation/kconfig.md) */
	uint32_t tasks_per_user;
	uint32_t mq_msg_default;
	uint32_t mq_msg_max;
	uint32_t mq_msgsize_default;
	uint32_t mq_msgsize_max;
	uint32_t mq_queues_max;
	uint64_t mq_bytes_per_user;
	uint32_t msgmax;
	uint32_t msgmnb;
	uint32_t msgmni;
	uint32_t rsvd0;
	uint64_t nskipped;      /* successes not posted (KIPC_F_SKIP_SUCCESS) */
	uint64_t nonecopy;      /* payloads copied once: sender's arena to receiver's */
};

struct kipc_task_info {
	int32_t  pid;
	uint32_t uid;
	uint32_t gid;
	uint32_t state;         /* KIPC_TASK_* */
	uint32_t flags;         /* KIPC_INFO_* */
	uint32_t nparked;       /* parked requests */
	char     comm[KIPC_COMM_LEN];
	int64_t  atime;         /* attach (or creation) time, CLOCK_REALTIME ns */
	/* BLOCKED: its oldest waiting call */
	uint32_t wait_op;       /* KIPC_SYS_* */
	int32_t  wait_pid;      /* task it waits on (receive from, reply, task queue), 0 */
	int64_t  wait_mbox;     /* mailbox it waits on, 0 */
	int64_t  wait_since;    /* CLOCK_MONOTONIC ns when it started waiting */
	int64_t  wait_deadline; /* CLOCK_MONOTONIC ns, 0: none */
	/* its task queue */
	uint32_t capacity;      /* as kipc_mbox_attr */
	uint32_t msgsize;
	uint64_t qbytes;
	uint32_t nmsg;          /* queued */
	uint32_t nsenders;      /* blocked senders and cached messages */
	uint64_t nbytes;
	uint32_t nreceivers;    /* its receives waiting (1, or 0) */
	uint32_t nheld;         /* mailboxes it holds the receive right of */
	uint64_t nsent;         /* messages it sent */
	uint64_t nreceived;     /* messages it received */
	int64_t  now;           /* CLOCK_MONOTONIC ns of this snapshot */
	uint64_t rsvd[3];
};

struct kipc_mbox_info {
	struct kipc_mbox_stat st; /* as mbox_stat reports it */
	uint32_t flags;         /* KIPC_INFO_* */
	int32_t  pair_sender;   /* pair policy: bound sender, 0 */
	int32_t  pair_receiver; /* pair policy: bound receiver, 0 */
	int32_t  excl;          /* exclusive policy: the task inside receive, 0 */
	int32_t  rr_next;       /* round robin: holder the next message goes to */
	uint32_t ncached;       /* of st.nsenders: cached (no sender waits) */
	uint64_t rsvd[4];
};

/* kipc_waiter_info.kind */
#define KIPC_WAITER_RECEIVER 1  /* parked in a receive on the link */
#define KIPC_WAITER_SENDER   2  /* blocked sending (or calling), message pending */
#define KIPC_WAITER_CACHED   3  /* a cached message; its sender goes on */
#define KIPC_WAITER_HOLDER   4  /* holds the receive right (mailboxes) */

/* kipc_waiter_info.flags */
#define KIPC_WAITER_F_OWNER  (1u << 0)  /* HOLDER: the owner */

struct kipc_waiter_info {
	int32_t  pid;
	uint32_t kind;          /* KIPC_WAITER_* */
	uint32_t op;            /* KIPC_SYS_* of the waiting call */
	uint32_t flags;         /* KIPC_WAITER_F_* */
	int64_t  since;         /* CLOCK_MONOTONIC ns it started waiting; 0 */
	int64_t  deadline;      /* CLOCK_MONOTONIC ns, 0: none */
	uint64_t seq;           /* SENDER, CACHED: the message */
	uint32_t len;           /* SENDER, CACHED: message length; RECEIVER: buffer */
	uint32_t rsvd0;
	uint64_t rsvd[2];
};

/* kipc_msg_info.flags */
#define KIPC_MSG_PENDING     (1u << 0)  /* outside the link: its sender waits */
#define KIPC_MSG_CALL        (1u << 1)  /* the request of a call */

struct kipc_msg_info {
	uint64_t seq;
	int32_t  sender;
	uint32_t len;
	int64_t  type;
	int64_t  stime;         /* CLOCK_REALTIME ns when it was sent */
	uint16_t prio;
	uint16_t flags;         /* KIPC_MSG_* */
	int32_t  route;         /* round robin: the holder it is assigned to */
	uint64_t rsvd[2];
};

/*
 * What kernel this is (kernel_info, everyone): kipcd --status, kipcs -u.
 * Strings are NUL-terminated. build_id identifies the sources and
 * configuration kipcd was built from; libkipc compares it with its own
 * (kipc_attach_resp.build_id) and warns once when they differ.
 */
struct kipc_kernel_info {
	char     version[16];   /* kipcd's KIPC_VERSION, "0.1.0" */
	uint64_t build_id;
	int32_t  pid;           /* kipcd's pid */
	uint32_t proto;         /* protocol version (KIPC_PROTO_VERSION) */
	uint32_t abi;           /* KIPC_ABI_VERSION */
	uint32_t sq_entries;    /* ring sizes every process gets */
	uint32_t cq_entries;
	uint32_t rsvd0;
	uint64_t arena_size;    /* bytes of each process's arena */
	char     loop[16];      /* event loop: "io_uring" or "epoll" */
	char     socket[108];   /* the socket it serves */
	char     cmdline[256];  /* the boot parameters given, "" if none */
	uint64_t rsvd[4];
};

#endif /* _UAPI_KIPC_INTROSPECT_H */
