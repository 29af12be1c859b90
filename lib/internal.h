/* SPDX-License-Identifier: MIT */
/*
 * libkipc internals. Not installed.
 *
 * Locking: one mutex, lib.lock, guards everything in struct kipc_lib and
 * every struct kipc_att field except the shared region itself, which is
 * accessed with atomics. A thread never sleeps holding lib.lock: it
 * registers a waiter, drops the lock, and sleeps on the shared futex.
 *
 * Attachments: struct kipc_att is one connection to the kernel with its
 * mapped region. It is reference-counted (sync calls in flight, async
 * buffers) so that a thread still looking at an old region after the
 * kernel died, or after another thread re-attached, never touches
 * unmapped memory. lib.cur is the attachment new calls use.
 */
#ifndef _LIBKIPC_INTERNAL_H
#define _LIBKIPC_INTERNAL_H

#include <limits.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <kipc/kipc.h>
#include <kipc/libkipc.h>
#include <kipc/ring.h>

#include "sqe.h"

#ifndef CONFIG_LIB_SPIN_NS
#define CONFIG_LIB_SPIN_NS 20000
#endif

#define KIPC_ARENA_UNIT 64u  /* allocation granule of the arena */

struct kipc_att {
	struct kipc_att *next;       /* on lib.atts */
	unsigned refs;               /* lib.cur's reference + users */
	bool dead;                   /* the kernel went away or detached us */
	int conn, doorbell, notify;  /* notify: -1 without KIPC_FEAT_NOTIFY_FD */
	void *map;
	size_t map_size;
	struct kipc_ring_ctl *ctl;
	struct kipc_sqe *sq;
	struct kipc_cqe *cq;
	uint8_t *arena;
	uint64_t arena_size;
	uint32_t sq_entries, cq_entries;
	uint32_t sq_tail;            /* our copy: we are the only writer */
	uint32_t cq_head;            /* ditto */
	bool cq_lap;                 /* KIPC_FEAT_CQ_LAP: poll the CQE's lap, not cq_tail */
	uint32_t max_inflight;
	pid_t pid;                   /* the task's (another's: kipc_attach_delegate) */
	bool delegated;
	uint64_t kernel_build;       /* kipcd's build id, 0: unknown */
	/* arena allocator: one bit per unit, len in units per allocation */
	uint64_t *bitmap;
	uint32_t *alloc_units;
	uint32_t nunits, hint;
	/* send credits (ring.c; transport.md section 12) */
	struct kipc_credit *credit;  /* NULL: not granted KIPC_FEAT_CREDIT */
	uint32_t credit_gen;         /* the grant credit_used counts for */
	uint32_t credit_used;        /* credit sends published under it */
	uint32_t credit_bufs;        /* their arena buffers not reaped yet */
	uint32_t plain_tail;         /* sq_tail after the last ordinary entry */
	uint64_t credit_lost;        /* credit sends the kernel failed (a bug) */
	uint64_t credit_stuck;       /* gen << 32 | limit a top-up wait gave up on: not again */
	/* receive push (ring.c; transport.md section 13) */
	struct kipc_push *push;      /* NULL: not granted KIPC_FEAT_PUSH */
	struct kipc_push_slot *push_slots;
	uint64_t push_stuck;         /* the claim a wait for its slot gave up on: not again */
};

/* user_data of a credit send: the library's, and its arena offset */
#define KIPC_UD_CREDIT (1ull << 62)

/* A synchronous call waiting for its completion. */
struct kipc_waiter {
	struct kipc_waiter *next;
	uint64_t user_data;
	struct kipc_cqe cqe;
	int done;                    /* atomic: cqe is valid */
};

struct kipc_lib {
	pthread_mutex_t lock;
	struct kipc_att *cur;        /* NULL: not attached */
	struct kipc_att *atts;       /* every attachment still referenced */
	uint64_t next_ud;
	struct kipc_waiter *waiters;
	/* async API: staged entries and reaped completions */
	struct kipc_sqe *stage;
	unsigned nstage, stage_cap;
	struct kipc_cqe *aq;         /* ring buffer of async completions */
	unsigned aq_head, aq_count, aq_cap;
	struct kipc_cqe peek;        /* what kipc_peek_cqe() handed out */
};

extern struct kipc_lib __kipc_lib;

/* attach.c */
/* Make sure lib.cur is a live attachment. Caller holds lib.lock. 0/-errno */
int __kipc_ensure_attached(void);
void __kipc_att_put(struct kipc_att *a);  /* lock held */
void __kipc_att_mark_dead(struct kipc_att *a);  /* lock held */
/* Where the kernel's socket is: 0 or -ENAMETOOLONG. */
int __kipc_socket_path(char *buf, size_t size);
/* The kernel built or installed with this library (lib/kipcd_path.c). */
extern const char __kipc_kipcd_path[];
extern const char __kipc_posix_lib_path[]; /* for kipc-run */
extern const uint64_t __kipc_build_id;
/* Did the kernel hang up? (poll on the connection, no wait) */
bool __kipc_conn_hung_up(struct kipc_att *a);

/* arena.c (lock held) */
int __kipc_arena_init(struct kipc_att *a);
void __kipc_arena_fini(struct kipc_att *a);
/* Returns an offset, or UINT64_MAX when there is no room. */
uint64_t __kipc_arena_alloc(struct kipc_att *a, size_t len);
void __kipc_arena_free(struct kipc_att *a, uint64_t off);

/* ring.c */
/* Push one entry into the SQ. With wait, waits for room (lock dropped
 * while asleep); without, -EBUSY when full. 0 or -errno. */
int __kipc_push_sqe(struct kipc_att *a, const struct kipc_sqe *sqe, bool wait);
/* Publish the SQ tail and ring the doorbell if the kernel sleeps. */
void __kipc_publish_sq(struct kipc_att *a);
/* A synchronous mbox_send (or send, or mq_timedsend of open id as
 * descriptor fd; op) with a send credit, completed here without waiting
 * for the kernel: 0 or -errno; 1: no credit, send the usual way. Takes
 * the lock. */
long __kipc_credit_send(uint8_t op, int64_t id, int fd, const void *buf, size_t len,
			unsigned prio, unsigned flags);
/* A synchronous mbox_receive of mailbox link (or, KIPC_PUSH_TASKQ, a
 * receive(KIPC_ANY) of our task queue; mq: KIPC_PUSH_MQ(h), a POSIX
 * queue's receive) of a message the kernel pushed into our
 * region, completed here: its length or -errno, *cqe what the kernel's
 * completion would say; KIPC_NOT_PUSHED (neither a length nor an errno:
 * a 1-byte message is a length): nothing pushed, receive the usual way.
 * Takes the lock. */
#define KIPC_NOT_PUSHED LONG_MIN
long __kipc_push_receive(int64_t link, void *buf, size_t len, unsigned flags,
			 struct kipc_cqe *cqe, bool mq);
/* Move posted CQEs to their waiters or the async queue. Lock held. */
void __kipc_reap(struct kipc_att *a);
/* Sleep until something may have changed (lock dropped while asleep).
 * deadline: CLOCK_MONOTONIC ns or 0. Returns 0, -EINTR, -ETIMEDOUT or
 * -ECONNRESET. */
int __kipc_sleep(struct kipc_att *a, int64_t deadline, const int *done);
/* This thread's hook, run (lock dropped) when it is about to sleep for
 * the kernel: what it waits for is in the ring. kipc-run's supervisor
 * orders a static program's calls by it (lib/posix/supervise.c). */
extern __thread void (*__kipc_on_sleep)(void);
/* Poll the CQ (and *done, if not NULL) for CONFIG_LIB_SPIN_NS before a
 * sleep; the lock is dropped meanwhile. */
void __kipc_spin(struct kipc_att *a, const int *done);
int64_t __kipc_now(void);

/* uaccess.c: copy between a caller's buffer and the arena; 0 or -EFAULT
 * (NULL with a length, an unmapped or, for a write, read-only page). */
int __kipc_copy_from_user(void *dst, const void *src, size_t len);
int __kipc_copy_to_user(void *dst, const void *src, size_t len);

/*
 * One synchronous request. slots[0] describes sqe.addr, slots[1]
 * sqe.addr2: `in` is copied into the arena before, `out` out of it after
 * (by_res: only min(len, res) bytes); a bad pointer is EFAULT, a slot with
 * a length and neither pointer too (before the call, nothing submitted). The caller fills the rest of the
 * sqe. Returns the result (>= 0) or -errno; *cqe gets the completion.
 */
struct kipc_slot {
	const void *in;
	void *out;
	size_t len;
	bool by_res;
};
long __kipc_sync(struct kipc_sqe *sqe, const struct kipc_slot *s0,
		 const struct kipc_slot *s1, struct kipc_cqe *cqe);
/* flags: KIPC_SYNC_NORESTART: EINTR after any signal handler, even with
 * SA_RESTART (System V msgsnd/msgrcv are never restarted). */
#define KIPC_SYNC_NORESTART 1u
/* A slot with a length but no buffer is an output whose EFAULT shows after
 * the call (the message is taken), as Linux's msgrcv and mq_timedreceive;
 * without this flag such a slot fails EFAULT before anything is submitted. */
#define KIPC_SYNC_LATE_FAULT 2u
long __kipc_sync_flags(struct kipc_sqe *sqe, const struct kipc_slot *s0,
		       const struct kipc_slot *s1, struct kipc_cqe *cqe,
		       unsigned flags);

/*
 * One call whose only output is a record at addr2 (len bytes): stat,
 * getattr and introspection calls. Returns the result or -errno.
 */
static inline long __kipc_sync_out(uint8_t op, int64_t target, unsigned flags,
				   void *buf, size_t len)
{
	if (len > UINT32_MAX)
		len = UINT32_MAX / 64 * 64;
	struct kipc_sqe sqe = {0};
	__kipc_enc_rec(&sqe, op, target, flags, 0, 0, (uint32_t)len);
	struct kipc_slot s1 = {.out = buf, .len = len};
	struct kipc_cqe cqe;
	return __kipc_sync(&sqe, NULL, len ? &s1 : NULL, &cqe);
}

/*
 * The one place a result of the library becomes the C convention:
 * r >= 0 is returned as it is; -errno sets errno and returns -1.
 */
static inline long __kipc_ret(long r)
{
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

/* The same for calls that return 0 on success, whatever the result. */
static inline int __kipc_ret0(long r)
{
	return r < 0 ? (int)__kipc_ret(r) : 0;
}

#endif /* _LIBKIPC_INTERNAL_H */
