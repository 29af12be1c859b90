/* SPDX-License-Identifier: MIT */
/*
 * kipc transport: the attach handshake on the kernel's AF_UNIX socket and
 * the layout of the per-process shared region (rings + data arena).
 *
 * Plain C11, usable from C++20. Documentation/transport.md describes the
 * protocol step by step; this header is its normative layout.
 *
 * Ownership of every shared word is written next to it: "K" means only
 * the kernel writes it, "P" means only the process writes it. The kernel
 * treats every P word as hostile: it reads each one once per use, bounds
 * checks it and never trusts a value it read earlier from shared memory.
 * The region header (struct kipc_ring_ctl, first part) is informational
 * for the process; the kernel never reads it back.
 */
#ifndef _UAPI_KIPC_RING_H
#define _UAPI_KIPC_RING_H

#include <stdint.h>
#include <kipc/kipc.h>

/* ------------------------------------------------------------------ */
/* Attach handshake                                                    */

#define KIPC_MAGIC            0x4350494bu /* "KIPC", little endian */
#define KIPC_PROTO_VERSION    1u          /* the one version this kernel speaks */

/* Feature bits, negotiated: the kernel answers (requested & supported). */
#define KIPC_FEAT_NOTIFY_FD   (1u << 0)  /* a completion eventfd is passed (kipc_ring_fd) */
#define KIPC_FEAT_CQ_NODROP   (1u << 1)  /* CQ overflow is kept in the kernel, never dropped */
#define KIPC_FEAT_CREDIT     (1u << 3)  /* send credits in struct kipc_credit (transport.md section 12) */
#define KIPC_FEAT_PUSH       (1u << 4)  /* receive push in struct kipc_push (transport.md section 13) */
#define KIPC_FEAT_CQ_LAP     (1u << 5)  /* every CQE in the CQ carries its lap tag (KIPC_CQ_LAP) */
#define KIPC_FEAT_ALL         (KIPC_FEAT_NOTIFY_FD | KIPC_FEAT_CQ_NODROP | KIPC_FEAT_CREDIT | KIPC_FEAT_PUSH | KIPC_FEAT_CQ_LAP)
/* Not in KIPC_FEAT_ALL: a supervisor attaches for another process, which
 * its hello names with two descriptors (SCM_RIGHTS): a pidfd of it and its
 * /proc/<pid>/mem, which the supervisor could open only if it may
 * ptrace-attach it. The task is that process's (Documentation/transport.md). */
#define KIPC_FEAT_DELEGATE    (1u << 2)

/*
 * The first and only datagram the process sends on its connection.
 * Credentials are not part of it: the kernel reads SO_PEERCRED.
 */
struct kipc_attach_req {
	uint32_t magic;         /* KIPC_MAGIC */
	uint16_t version_min;   /* oldest protocol version the process speaks */
	uint16_t version_max;   /* newest */
	uint32_t features;      /* KIPC_FEAT_* the process wants */
	uint32_t rsvd[5];       /* zero */
};

/*
 * The kernel's answer. On success (error == 0) it carries three
 * descriptors in one SCM_RIGHTS message, in this order:
 *   [0] the region memfd (sealed: it cannot grow or shrink),
 *   [1] the doorbell eventfd (process writes, kernel polls),
 *   [2] the completion eventfd (kernel writes when armed; with
 *       KIPC_FEAT_NOTIFY_FD only).
 * On failure no descriptor is passed and the kernel closes the connection.
 */
struct kipc_attach_resp {
	uint32_t magic;         /* KIPC_MAGIC */
	int32_t  error;         /* 0 or -errno (-EPROTONOSUPPORT, -EEXIST, -ENOMEM ...) */
	uint16_t version;       /* the protocol version chosen */
	uint16_t rsvd0;
	uint32_t features;      /* the features granted */
	uint32_t sq_entries;    /* power of two */
	uint32_t cq_entries;    /* power of two */
	uint64_t map_size;      /* bytes of the memfd to map (MAP_SHARED) */
	uint64_t sq_off;        /* byte offset of struct kipc_sqe[sq_entries] */
	uint64_t cq_off;        /* byte offset of struct kipc_cqe[cq_entries] */
	uint64_t arena_off;     /* byte offset of the data arena */
	uint64_t arena_size;    /* sqe.addr/addr2 are offsets in [0, arena_size) */
	int32_t  pid;           /* the task's pid as the kernel sees it */
	uint32_t uid;
	uint32_t gid;
	uint32_t max_inflight;  /* requests the kernel accepts before it stops reading the SQ */
	uint64_t build_id;      /* kipcd's build (kipc_kernel_info), 0: unknown */
	uint32_t rsvd[2];
};

/* ------------------------------------------------------------------ */
/* The shared region                                                   */

/* sq_flags (K): the kernel's state as the process must see it. */
#define KIPC_SQ_NEED_WAKEUP  (1u << 0) /* write the doorbell after publishing sq_tail */
#define KIPC_SQ_CQ_OVERFLOW  (1u << 1) /* completions wait in the kernel: ring after reaping */
#define KIPC_SQ_DEAD         (1u << 2) /* the kernel shut down or detached you: ECONNRESET */

/* cq_flags (P): the process's wishes. */
#define KIPC_CQ_EVENTFD      (1u << 0) /* write the completion eventfd when posting */

#define KIPC_CACHELINE 64

/*
 * At offset 0 of the region. Hot indices sit on separate cache lines
 * so the process's stores and the kernel's stores never share one.
 * Indices are free-running uint32 counters; the slot is index & (entries-1).
 */
struct kipc_ring_ctl {
	/* line 0: written once by the kernel at attach, then read-only */
	uint32_t magic;         /* KIPC_MAGIC */
	uint32_t version;       /* KIPC_PROTO_VERSION */
	uint32_t sq_entries;
	uint32_t cq_entries;
	uint64_t sq_off;
	uint64_t cq_off;
	uint64_t arena_off;
	uint64_t arena_size;
	uint32_t pad0[4];

	uint32_t sq_head;       /* K: next SQE the kernel will read */
	uint32_t pad1[15];
	uint32_t sq_tail;       /* P: one past the last SQE published (store-release) */
	uint32_t pad2[15];
	uint32_t sq_flags;      /* K: KIPC_SQ_* */
	uint32_t pad3[15];
	uint32_t cq_head;       /* P: next CQE the process will read (store-release) */
	uint32_t pad4[15];
	uint32_t cq_tail;       /* K: one past the last CQE posted (store-release) */
	uint32_t pad5[15];
	/*
	 * The futex word (plain futex(2), not FUTEX_PRIVATE_FLAG). Bumped
	 * (atomic add) by the kernel after it published CQEs or consumed
	 * SQEs, and by a process thread that handed a completion to another
	 * thread. Sleepers increment waiters (P) first, then fence, then
	 * re-check the rings, then FUTEX_WAIT on the value read before.
	 */
	uint32_t wake_seq;      /* K+P: futex word */
	uint32_t waiters;       /* P: threads sleeping (or about to) on wake_seq */
	uint32_t pad6[14];
	uint32_t cq_flags;      /* P: KIPC_CQ_* */
	uint32_t pad7[15];
};

/*
 * The lap tag (KIPC_FEAT_CQ_LAP; transport.md section 5): the kernel
 * writes a CQE into slot idx & (cq_entries - 1), then stores its `lap`
 * field, KIPC_CQ_LAP(idx, cq_entries), with release ordering. The
 * process may take the CQE at its head once that slot's lap (acquire)
 * is KIPC_CQ_LAP(head, cq_entries), without reading cq_tail, which the
 * kernel still publishes (once per loop round, as without the feature).
 * The slot's previous entry carries the tag of the lap before, never
 * equal; a fresh region's zeroes never match (the first lap is 1).
 * The kernel never reads a lap back.
 */
#define KIPC_CQ_LAP(idx, entries) ((uint16_t)((uint32_t)(idx) / (uint32_t)(entries) + 1u))

/* The SQE array starts on its own page; sizes are fixed by the ABI. */
#define KIPC_RING_CTL_SIZE   4096u

/*
 * Send credits (KIPC_FEAT_CREDIT; Documentation/transport.md section 12).
 * At KIPC_CREDIT_OFF in the region, all K. The kernel has reserved room in
 * link `link` (a mailbox, or with op KIPC_SYS_send the task queue of pid
 * `link`) for `limit` sends of this grant `gen`: the process may submit
 * that many `op` entries (mbox_send or send) with KIPC_F_CREDIT and
 * sqe.timeout = gen, each at most msgsize bytes, and report each one successful once,
 * after publishing it, it still reads the same gen (a Dekker pair with
 * the kernel's revocation: store gen, full fence, read sq_tail). gen 0
 * means "no credits" or "being rewritten": read gen (acquire), the other
 * words, then gen again. limit only grows within one gen. The kernel
 * keeps its own count of every word and trusts none of what the process
 * writes; an entry that does not fit its count is an ordinary send.
 */
struct kipc_credit {
	uint32_t gen;           /* K: this grant; 0: none */
	uint32_t limit;         /* K: credit sends of this gen allowed, from 0 */
	int64_t  link;          /* K: the mailbox, or the pid (op) */
	uint32_t msgsize;       /* K: largest payload of a credit send */
	uint32_t op;            /* K: KIPC_SYS_mbox_send, or KIPC_SYS_send */
	uint32_t prio;          /* K: highest priority of a credit send */
	uint32_t pad[9];
};
#define KIPC_CREDIT_OFF      512u       /* after struct kipc_ring_ctl, same page */
/* sqe.flags of an mbox_send (or send) that uses a credit (never reaches the core);
 * its sqe.addr2 is the CLOCK_MONOTONIC ns read before publishing it, the
 * order among several holders' credit sends */
#define KIPC_F_CREDIT        (1u << 15)

/*
 * Receive push (KIPC_FEAT_PUSH; Documentation/transport.md section 13).
 * The kernel copies messages still queued in mailbox `link` ahead into
 * the slots; they stay queued (the kernel's count) until the process
 * claims them. `claim` is gen << 32 | the messages of this grant the
 * process has claimed: the process claims message k (claim == gen << 32
 * | k, slot k % KIPC_PUSH_SLOTS tagged gen << 32 | k in user_data) with
 * one compare-and-swap to k + 1; the kernel takes the grant back with
 * one exchange to 0, which tells it exactly what was claimed. gen 0:
 * no grant. The kernel writes `link` before it stores claim; it
 * writes a slot only after its previous message was claimed, the tag
 * last (release). It trusts nothing it reads of claim: out of range
 * detaches the process.
 */
struct kipc_push {
	uint64_t claim;         /* K+P: gen << 32 | claimed (CAS) */
	int64_t  link;          /* K: the mailbox, KIPC_PUSH_TASKQ or KIPC_PUSH_MQ(h) */
	uint32_t msgsize;       /* K: KIPC_PUSH_MQ: the queue's (a receive's buffer holds it) */
	uint32_t pad[11];
};
#define KIPC_PUSH_OFF        576u       /* after struct kipc_credit */
#define KIPC_PUSH_SLOTS      16u
#define KIPC_PUSH_MAX        128u       /* largest payload pushed */
#define KIPC_PUSH_TASKQ      (-1)       /* link: the process's own task queue */
#define KIPC_PUSH_MQ(h)      (-1 - (int64_t)(h)) /* link: the process's POSIX queue open h (> 0) */
struct kipc_push_slot {
	struct kipc_cqe cqe;    /* K: what the receive returns; user_data = tag */
	uint8_t data[KIPC_PUSH_MAX];
};
#define KIPC_PUSH_SLOT_OFF   1024u      /* KIPC_PUSH_SLOTS slots, to the end of the page */

/*
 * Bundles and provided buffers (Documentation/transport.md section 14).
 *
 * mbox_send_bundle: sqe.addr/len is an array of len / 16 descriptors in
 * the arena (1..KIPC_BUNDLE_MAX), each one message's payload (offset and
 * length in the arena); all have sqe.prio and sqe.type. The kernel copies
 * the array once, then sends message 0, 1, ... in order, each as one
 * mbox_send with the bundle's flags would be (without KIPC_F_NONBLOCK a
 * message that finds the mailbox full waits for room, then the rest goes
 * on; the timeout flags: one deadline for the bundle), and stops at the
 * first that fails. The
 * completion: res = n (all queued or delivered); res = k, 0 < k < n,
 * KIPC_CQE_F_PARTIAL and cqe.type = -errno of message k (messages 0..k-1
 * went, none after); res = -errno of message 0 (nothing went). seq: the
 * last message's that went. send_bundle: the same to the task queue of
 * pid sqe.target, each message as one send to it.
 */
struct kipc_bundle_desc {
	uint64_t addr;          /* arena offset of the payload */
	uint32_t len;           /* its length */
	uint32_t rsvd;          /* zero (else that message fails EINVAL) */
};
#define KIPC_BUNDLE_MAX      256u

/*
 * mbox_receive_multi: a provided-buffer ring in the arena, at sqe.addr
 * (8-byte aligned), of sqe.len entries (a power of two, at most
 * KIPC_BUF_RING_MAX). The process writes buffer descriptors into slot
 * i & (entries - 1) (KIPC_BUF_RING_BUF) and then advances tail (store-release); the
 * kernel takes them in ring order from sqe.len2 on, keeping its own head
 * (never read back), one buffer per message, and posts one completion
 * per message: res = length copied, KIPC_CQE_F_MORE | KIPC_CQE_F_BUFFER,
 * the bid in flags >> KIPC_CQE_BUFFER_SHIFT, the rest as a receive's. It
 * ends (a completion without F_MORE, no buffer used) with -ENOBUFS (a
 * message came and no buffer was provided), -EOVERFLOW (the CQ was
 * full), -EMSGSIZE (a buffer too small, without KIPC_F_TRUNC), -EFAULT
 * (a buffer outside the arena), -EINVAL (tail more than entries ahead of
 * the kernel's head), -ECANCELED (cancel), -EIDRM, ...; that message
 * stays queued. The process's next head is the last one plus the number
 * of completions with F_BUFFER.
 */
struct kipc_buf {
	uint64_t addr;          /* P: arena offset of the buffer */
	uint32_t len;           /* P: its size */
	uint16_t bid;           /* P: echoed in the completion's flags */
	uint16_t rsvd;
};
struct kipc_buf_ring {
	uint32_t tail;          /* P: one past the last buffer provided (release) */
	uint32_t rsvd[15];
	/* followed by entries struct kipc_buf (P): KIPC_BUF_RING_BUF() */
};
#define KIPC_BUF_RING_MAX    32768u
/* Buffer slot i (0..entries-1) of ring br. */
#define KIPC_BUF_RING_BUF(br, i) \
	((struct kipc_buf *)((uint8_t *)(br) + sizeof(struct kipc_buf_ring)) + (i))
#define KIPC_BUF_RING_SIZE(entries) (sizeof(struct kipc_buf_ring) + (size_t)(entries) * sizeof(struct kipc_buf))

#ifdef __cplusplus
static_assert(sizeof(struct kipc_sqe) == 64, "kipc_sqe is 64 bytes");
static_assert(sizeof(struct kipc_cqe) == 64, "kipc_cqe is 64 bytes");
static_assert(sizeof(struct kipc_ring_ctl) == 8 * KIPC_CACHELINE, "ctl layout");
static_assert(sizeof(struct kipc_attach_req) == 32, "attach_req layout");
static_assert(sizeof(struct kipc_attach_resp) == 96, "attach_resp layout");
static_assert(sizeof(struct kipc_credit) == KIPC_CACHELINE, "credit layout");
static_assert(sizeof(struct kipc_push) == KIPC_CACHELINE, "push layout");
static_assert(sizeof(struct kipc_bundle_desc) == 16 && sizeof(struct kipc_buf) == 16 && sizeof(struct kipc_buf_ring) == KIPC_CACHELINE, "bundle layouts");
static_assert(KIPC_PUSH_SLOT_OFF + KIPC_PUSH_SLOTS * sizeof(struct kipc_push_slot) <= KIPC_RING_CTL_SIZE, "push slots");
#else
_Static_assert(sizeof(struct kipc_sqe) == 64, "kipc_sqe is 64 bytes");
_Static_assert(sizeof(struct kipc_cqe) == 64, "kipc_cqe is 64 bytes");
_Static_assert(sizeof(struct kipc_ring_ctl) == 8 * KIPC_CACHELINE, "ctl layout");
_Static_assert(sizeof(struct kipc_attach_req) == 32, "attach_req layout");
_Static_assert(sizeof(struct kipc_attach_resp) == 96, "attach_resp layout");
_Static_assert(sizeof(struct kipc_credit) == KIPC_CACHELINE, "credit layout");
_Static_assert(sizeof(struct kipc_push) == KIPC_CACHELINE, "push layout");
_Static_assert(sizeof(struct kipc_bundle_desc) == 16 && sizeof(struct kipc_buf) == 16 && sizeof(struct kipc_buf_ring) == KIPC_CACHELINE, "bundle layouts");
_Static_assert(KIPC_PUSH_SLOT_OFF + KIPC_PUSH_SLOTS * sizeof(struct kipc_push_slot) <= KIPC_RING_CTL_SIZE, "push slots");
#endif

#endif /* _UAPI_KIPC_RING_H */
