/* SPDX-License-Identifier: MIT */
/*
 * kipc user-space API: the types shared by the emulated kernel (kipcd),
 * libkipc and every program that talks to them.
 *
 * Plain C11, usable from C++20. Fixed-width types only; every structure has
 * reserved fields that are ignored on input and zeroed on output, so the
 * layout can grow without breaking old binaries. Errors are standard errno
 * values (returned negated in completions, set in errno by libkipc).
 */
#ifndef _UAPI_KIPC_KIPC_H
#define _UAPI_KIPC_KIPC_H

#include <stdint.h>
#include <kipc/syscalls.h>

#define KIPC_ABI_VERSION 1

/* ------------------------------------------------------------------ */
/* Names and special values                                            */

#define KIPC_ANY          0            /* receive(KIPC_ANY): from any sender */
#define KIPC_NAME_MAX     255          /* mailbox names: "/name", no other '/' */
#define KIPC_PRIO_MAX     32767        /* priorities are 0..KIPC_PRIO_MAX */
#define KIPC_UNBOUNDED    0xffffffffu  /* attr.capacity: no message bound */
#define KIPC_CAP_DEFAULT  0xfffffffeu  /* attr.capacity: the kernel default */

/* ------------------------------------------------------------------ */
/* Submission entry: one request, written by the process.              */

/* sqe.flags: how the call behaves (common to all calls) */
#define KIPC_F_NONBLOCK     (1u << 0)  /* EAGAIN instead of blocking */
#define KIPC_F_TIMEOUT      (1u << 1)  /* sqe.timeout is valid (ns, relative) */
#define KIPC_F_ABSTIME      (1u << 2)  /* ... absolute, CLOCK_MONOTONIC */
#define KIPC_F_REALTIME     (1u << 3)  /* ... absolute, CLOCK_REALTIME */
/* send */
#define KIPC_F_CACHE        (1u << 4)  /* full link: accept one extra message */
/* receive, call */
#define KIPC_F_TRUNC        (1u << 5)  /* truncate instead of EMSGSIZE */
#define KIPC_F_TYPE         (1u << 6)  /* select by sqe.type (System V msgtyp) */
#define KIPC_F_EXCEPT       (1u << 7)  /* with KIPC_F_TYPE > 0: any other type */
/* mbox_open */
#define KIPC_O_CREAT        (1u << 8)  /* create if it does not exist */
#define KIPC_O_EXCL         (1u << 9)  /* with O_CREAT: EEXIST if it exists */
/* cancel */
#define KIPC_F_INTR         (1u << 10) /* cancelled request fails EINTR, not ECANCELED */
/* send, mbox_send, reply: post no completion when it succeeds (an error
 * still completes; io_uring's IOSQE_CQE_SKIP_SUCCESS) */
#define KIPC_F_SKIP_SUCCESS (1u << 11)

#define KIPC_F_WAIT_MASK   (KIPC_F_NONBLOCK | KIPC_F_TIMEOUT | KIPC_F_ABSTIME | KIPC_F_REALTIME)

/*
 * Per-syscall use of the fields. Unused fields are ignored today; set them
 * to zero so that later versions may give them a meaning (rsvd0 and the
 * flags are checked: EINVAL when they hold unknown bits).
 *
 *  send          target=pid   addr/len=payload  prio type
 *  receive       target=pid|KIPC_ANY  addr/len=buffer  [type with F_TYPE]
 *  mbox_send     target=id    addr/len=payload  prio type
 *  mbox_receive  target=id    addr/len=buffer   [type with F_TYPE]
 *  mbox_receive_set  addr/len=buffer  addr2/len2=array of int64 ids (len2 bytes)
 *  mbox_send_bundle  target=id  addr/len=struct kipc_bundle_desc[] (len bytes)  prio type
 *  send_bundle   target=pid   (as mbox_send_bundle, to the task queue of pid)
 *  mbox_receive_multi  target=id  addr=struct kipc_buf_ring, len=its entries,
 *                len2=index of the first buffer to use (<kipc/ring.h>)
 *  call          target=pid   addr/len=request  addr2/len2=reply buffer  prio type
 *  mbox_call     target=id    (as call)
 *  reply         target=token addr/len=payload  type
 *  reply_receive target=pid|KIPC_ANY  addr/len=buffer (as receive)
 *                addr2/len2=reply payload  type=reply token
 *  mbox_reply_receive  target=id  (as reply_receive)
 *  mbox_open     addr/len=name (len 0: anonymous)  addr2/len2=kipc_mbox_attr (optional)
 *  mbox_destroy  target=id
 *  mbox_stat     target=id    addr2/len2=kipc_mbox_stat out
 *  mbox_setattr  target=id    addr2/len2=kipc_mbox_attr, len=KIPC_SET_* mask
 *  mbox_set_owner / mbox_grant / mbox_revoke   target=id  pid
 *  taskq_stat    addr2/len2=kipc_taskq_stat out
 *  taskq_setattr addr2/len2=kipc_mbox_attr (capacity, msgsize, qbytes, flags)
 *  cancel        target=user_data of the request to cancel
 *
 * Timeouts (with KIPC_F_TIMEOUT) are in nanoseconds; with KIPC_F_ABSTIME
 * they are absolute on CLOCK_MONOTONIC, with KIPC_F_REALTIME absolute on
 * CLOCK_REALTIME. A deadline is checked only when the call would wait: a
 * call that can complete at once (a queued message, room in the link)
 * succeeds even past its deadline; one that would wait fails ETIMEDOUT.
 */
struct kipc_sqe {
	uint8_t  opcode;      /* KIPC_SYS_* */
	uint8_t  rsvd0;
	uint16_t prio;        /* message priority, 0..KIPC_PRIO_MAX */
	uint32_t flags;       /* KIPC_F_*, KIPC_O_* */
	uint64_t user_data;   /* echoed in the completion */
	int64_t  target;      /* pid, mailbox id, reply token or user_data */
	uint64_t addr;        /* arena offset: payload, buffer or name */
	uint32_t len;         /* length at addr */
	uint32_t len2;        /* length at addr2 */
	uint64_t addr2;       /* arena offset: reply buffer, attr, stat, id array */
	union {
		int64_t type; /* message type, or type selector on receive */
		int64_t pid;  /* mbox_set_owner, mbox_grant, mbox_revoke */
	};
	int64_t  timeout;     /* ns, see KIPC_F_TIMEOUT */
};

/* ------------------------------------------------------------------ */
/* Completion entry: one result, written by the kernel.                */

/* cqe.flags */
#define KIPC_CQE_F_MORE      (1u << 0) /* another completion follows (cached send) */
#define KIPC_CQE_F_NOTIF     (1u << 1) /* the cached message reached the link */
#define KIPC_CQE_F_TRUNC     (1u << 2) /* the message was truncated */
#define KIPC_CQE_F_CALL      (1u << 3) /* received a call: answer with reply(token) */
#define KIPC_CQE_F_DELIVERED (1u << 4) /* call failed after its request was received */
#define KIPC_CQE_F_REPLIED   (1u << 5) /* reply_receive: the reply was delivered */
#define KIPC_CQE_F_PARTIAL   (1u << 6) /* (mbox_)send_bundle: only res messages were queued */
#define KIPC_CQE_F_BUFFER    (1u << 7) /* mbox_receive_multi: a provided buffer was used */
#define KIPC_CQE_BUFFER_SHIFT 16       /* ... its bid is flags >> KIPC_CQE_BUFFER_SHIFT */

struct kipc_cqe {
	uint64_t user_data;   /* from the sqe */
	int64_t  res;         /* >= 0 result, or -errno */
	uint32_t flags;       /* KIPC_CQE_F_* */
	uint16_t prio;        /* message priority (receive) */
	uint16_t lap;         /* in the CQ with KIPC_FEAT_CQ_LAP: the lap tag (ring.h); else 0 */
	int32_t  pid;         /* receive: sender; send: receiver when known */
	uint32_t len;         /* receive: full message length */
	int64_t  type;        /* message type */
	uint64_t seq;         /* kernel sequence number of the message */
	int64_t  source;      /* mailbox id the message came from (0: task queue) */
	uint64_t token;       /* reply token when KIPC_CQE_F_CALL */
};

/* ------------------------------------------------------------------ */
/* Mailboxes                                                           */

/* Multi-receiver policies */
#define KIPC_POLICY_ANY         0  /* longest-waiting receiver gets it */
#define KIPC_POLICY_PAIR        1  /* first sender and first receiver bind it */
#define KIPC_POLICY_EXCLUSIVE   2  /* one task inside receive at a time */
#define KIPC_POLICY_ROUND_ROBIN 3  /* rotate through receive-right holders */
#define KIPC_POLICY_MAX         3

/* attr.flags */
#define KIPC_MBOX_FIXED        (1u << 0) /* every message exactly msgsize */
#define KIPC_MBOX_KERNEL_OWNED (1u << 1) /* outlives its creator */
/* output only (stat, introspection): what kind of queue the mailbox is */
#define KIPC_MBOX_POSIX        (1u << 2) /* a POSIX message queue (mq_open) */
#define KIPC_MBOX_SYSV         (1u << 3) /* a System V message queue (msgget) */

/* mbox_setattr mask (sqe.len) */
#define KIPC_SET_MODE      (1u << 0)
#define KIPC_SET_UID       (1u << 1)
#define KIPC_SET_GID       (1u << 2)
#define KIPC_SET_CAPACITY  (1u << 3)  /* capacity and qbytes */
#define KIPC_SET_POLICY    (1u << 4)

struct kipc_mbox_attr {
	uint32_t capacity;    /* messages: 0 rendezvous, KIPC_UNBOUNDED, KIPC_CAP_DEFAULT */
	uint32_t msgsize;     /* maximum (or fixed) message size; 0: default */
	uint64_t qbytes;      /* byte bound of a bounded link; 0: capacity * msgsize */
	uint32_t flags;       /* KIPC_MBOX_* */
	uint32_t policy;      /* KIPC_POLICY_* */
	uint32_t mode;        /* permission bits: read = receive, write = send */
	uint32_t uid;         /* owner credentials (output; input for setattr) */
	uint32_t gid;
	uint32_t rsvd[7];
};

struct kipc_mbox_stat {
	int64_t  id;
	struct kipc_mbox_attr attr;
	uint32_t cuid;        /* creator */
	uint32_t cgid;
	int32_t  owner;       /* owning task's pid, 0 when none */
	uint32_t nmsg;        /* messages queued */
	uint64_t nbytes;      /* payload bytes queued */
	uint32_t nsenders;    /* tasks blocked sending (and cached messages) */
	uint32_t nreceivers;  /* receive requests waiting */
	uint32_t nholders;    /* tasks holding the receive right */
	int32_t  lspid;       /* last sender */
	int32_t  lrpid;       /* last receiver */
	uint32_t rsvd0;
	uint64_t stime;       /* last send, CLOCK_REALTIME ns */
	uint64_t rtime;       /* last receive */
	uint64_t ctime;       /* last change */
	uint64_t nsent;       /* counters */
	uint64_t nreceived;
	char     name[KIPC_NAME_MAX + 1];
	uint64_t rsvd[4];
};

struct kipc_taskq_stat {
	int32_t  pid;
	uint32_t uid;
	uint32_t capacity;    /* as kipc_mbox_attr */
	uint32_t msgsize;
	uint64_t qbytes;
	uint32_t flags;
	uint32_t nmsg;
	uint64_t nbytes;
	uint32_t nsenders;
	uint32_t nreceivers;
	uint64_t nsent;       /* messages this task sent */
	uint64_t nreceived;   /* messages this task received */
	uint64_t rsvd[4];
};

#endif /* _UAPI_KIPC_KIPC_H */
