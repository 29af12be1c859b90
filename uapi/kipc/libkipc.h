/* SPDX-License-Identifier: MIT */
/*
 * libkipc: the C library of kipc (link with -lkipc, pkg-config kipc).
 *
 * Two layers over one per-process shared ring (see <kipc/ring.h> and
 * Documentation/transport.md):
 *
 *  - synchronous wrappers, one per syscall in <kipc/syscalls.h>, libc
 *    style: they return -1 and set errno on failure;
 *  - an asynchronous API with liburing-like verbs (get an entry, prep an
 *    operation, submit, wait for or peek at completions, mark them seen).
 *
 * Every function in this header returns -1 (or NULL) and sets errno on
 * failure, unless its comment says otherwise.
 *
 * Bad pointers. A buffer that is NULL (with a nonzero length), unmapped
 * or, to be written, read-only fails EFAULT, as a kernel's copy does; it
 * never crashes the caller. A send buffer or a NULL receive buffer fails
 * before the call (nothing sent, nothing taken); a bad non-NULL receive
 * buffer is found when the message is copied out: the message is gone.
 *
 * Attaching. The first call attaches the process to the kernel at
 * $KIPC_SOCKET (else $XDG_RUNTIME_DIR/kipc/kipcd.sock, else
 * /tmp/kipc-$UID/kipcd.sock). If no kernel answers there, the library
 * starts one (kipcd from $KIPC_KIPCD, else next to libkipc's build
 * directory, else $PATH) unless KIPC_AUTOSTART=0. kipc_attach() does the
 * same explicitly. A forked child re-attaches on its first call: it is a
 * new task with its own ring; requests of the parent stay the parent's.
 *
 * Threads. Any number of threads may call the synchronous wrappers at
 * once; each waits for its own completion. The asynchronous API is used
 * from one thread at a time (like a liburing ring), concurrently with
 * synchronous wrappers in other threads.
 *
 * Blocking. A blocking call spins for CONFIG_LIB_SPIN_NS, then sleeps on
 * the ring's futex. Timeouts are kept by the kernel (exact, no drift).
 *
 * Signals. If a signal handler runs while a call is blocked:
 *  - if every signal that has a handler installed has SA_RESTART (what
 *    signal(3) installs), the call goes on waiting, as read(2) on a pipe
 *    would be restarted; the request never left the kernel's wait queue
 *    and a timeout keeps counting from the original call;
 *  - otherwise the call is cancelled in the kernel (KIPC_SYS_cancel with
 *    KIPC_F_INTR) and fails with EINTR, unless the operation completed
 *    before the cancel reached the kernel, in which case it returns
 *    success. The outcome is exact: never both, never neither.
 *
 * The kernel going away. If the kernel shuts down or dies while calls are
 * blocked, they fail with ECONNRESET (after a clean shutdown at once;
 * after kill -9 of kipcd within KIPC_DEAD_POLL_MS). The next call
 * re-attaches (starting a new kernel if allowed): it is a new task.
 */
#ifndef _KIPC_LIBKIPC_H
#define _KIPC_LIBKIPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <kipc/kipc.h>
#include <kipc/introspect.h>
#include <kipc/trace.h>
#include <kipc/net.h>
#include <kipc/ring.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KIPC_DEAD_POLL_MS 250  /* how often a sleeper checks that the kernel lives */

/* ------------------------------------------------------------------ */
/* Attach                                                              */

/* Attach now (otherwise the first call does). 0, or -1 with errno
 * (ECONNREFUSED: no kernel and autostart off or failed). Idempotent. */
int kipc_attach(void);
/* Detach: the kernel destroys this task (its mailboxes, queued messages,
 * parked requests). Blocked calls in other threads fail ECONNRESET. */
int kipc_detach(void);
/* Attach as another process, for a supervisor that serves its calls
 * (kipc-run with a static program): pidfd names it, memfd is its
 * /proc/<pid>/mem opened by the caller (the proof that the caller may
 * ptrace it, checked by the kernel; KIPC_FEAT_DELEGATE in <kipc/ring.h>).
 * This and every later attach of this process (not of its fork children)
 * is that process's task. The library keeps copies of both descriptors.
 * 0, or -1 with errno (EPERM: not proved; EEXIST: attached already). */
int kipc_attach_delegate(int pidfd, int memfd);
/* The pid the kernel knows this process by, or -1 if not attached. */
pid_t kipc_task_pid(void);

/* ------------------------------------------------------------------ */
/* Messages                                                            */

/* What a receive, call or send reports about a message (from the CQE). */
struct kipc_msginfo {
	pid_t    pid;       /* receive: the sender; send: the receiver when known */
	uint32_t prio;      /* priority */
	int64_t  type;      /* message type */
	uint32_t len;       /* full message length (> returned length if truncated) */
	uint32_t flags;     /* KIPC_CQE_F_* (TRUNC, CALL) */
	uint64_t seq;       /* kernel sequence number */
	int64_t  source;    /* mailbox id it came from, 0: task queue */
	uint64_t token;     /* with KIPC_CQE_F_CALL: pass to kipc_reply() */
};

/*
 * Extra arguments of the *_x variants. Pass NULL for the defaults.
 * timeout is used when flags has KIPC_F_TIMEOUT: nanoseconds, relative,
 * or absolute on CLOCK_MONOTONIC (| KIPC_F_ABSTIME) or CLOCK_REALTIME
 * (| KIPC_F_REALTIME). type is the message type on send/call/reply and
 * the selector on receive with KIPC_F_TYPE (System V msgtyp rules).
 * prio is a call's request priority (kipc_call_x, kipc_mbox_call_x;
 * 0..KIPC_PRIO_MAX); on every other call it must be 0 (EINVAL): a send
 * takes its priority as an argument.
 */
struct kipc_opts {
	int64_t  timeout;
	int64_t  type;
	uint32_t prio;
	uint32_t rsvd0;     /* zero */
	uint64_t rsvd1;     /* zero */
};

/* Nanoseconds of a struct timespec, for absolute timeouts. */
int64_t kipc_timespec_ns(const struct timespec *ts);

#if defined(_POSIX_C_SOURCE) && _POSIX_C_SOURCE >= 199309L /* clock_gettime */
/* The time of clock clk now, in nanoseconds: CLOCK_MONOTONIC for a
 * KIPC_F_ABSTIME deadline, CLOCK_REALTIME for KIPC_F_REALTIME. */
static inline int64_t kipc_clock_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return kipc_timespec_ns(&ts);
}
#endif

/* The struct timespec of ns >= 0 nanoseconds: kipc_timespec_ns() undone. */
static inline struct timespec kipc_ns_timespec(int64_t ns)
{
	struct timespec ts;
	ts.tv_sec = (time_t)(ns / 1000000000);
	ts.tv_nsec = (long)(ns % 1000000000);
	return ts;
}

/*
 * The process changed its credentials (setuid(2), seteuid(2), setgroups(2)
 * ...): the kernel reads them again from the OS (effective uid and gid,
 * supplementary groups) and checks every later call against them. Call it
 * after a raw set*id system call; libkipc-posix.so does after libc's.
 * A process not attached yet has nothing to do (attaching reads them).
 * 0 or -1.
 */
int kipc_cred_refresh(void);

/* A round trip through the kernel that does nothing. 0 or -1. */
int kipc_nop(void);

/*
 * Direct send to pid's task queue. flags: KIPC_F_NONBLOCK, KIPC_F_CACHE,
 * the timeout flags. 0 or -1 with errno (see semantics: EAGAIN, ESRCH,
 * EMSGSIZE, EDEADLK, ENOSPC, ETIMEDOUT, EINTR ...). A KIPC_F_CACHE send
 * that was cached returns 0; its later "enqueued" notification is only
 * visible through the asynchronous API (kipc_prep_send).
 * _timed: timeout in ns, KIPC_F_TIMEOUT is implied (add KIPC_F_ABSTIME
 * or KIPC_F_REALTIME for an absolute one).
 */
int kipc_send(pid_t pid, const void *buf, size_t len, unsigned prio,
	      unsigned flags);
int kipc_send_timed(pid_t pid, const void *buf, size_t len, unsigned prio,
		    unsigned flags, int64_t timeout);
int kipc_send_x(pid_t pid, const void *buf, size_t len, unsigned prio,
		unsigned flags, const struct kipc_opts *opts);

/*
 * Receive from the own task queue: the oldest message from `from`, or
 * from anyone with KIPC_ANY. flags: KIPC_F_NONBLOCK, KIPC_F_TRUNC,
 * KIPC_F_TYPE, KIPC_F_EXCEPT, the timeout flags. Returns the number of
 * bytes copied into buf, or -1. info may be NULL.
 */
ssize_t kipc_receive(pid_t from, void *buf, size_t len,
		     struct kipc_msginfo *info, unsigned flags);
ssize_t kipc_receive_timed(pid_t from, void *buf, size_t len,
			   struct kipc_msginfo *info, unsigned flags,
			   int64_t timeout);
ssize_t kipc_receive_x(pid_t from, void *buf, size_t len,
		       struct kipc_msginfo *info, unsigned flags,
		       const struct kipc_opts *opts);

/* ------------------------------------------------------------------ */
/* Mailboxes                                                           */

/*
 * Create or look up a mailbox. name: "/name" or NULL for an anonymous
 * one (always created). oflag: KIPC_O_CREAT, KIPC_O_EXCL. attr: NULL for
 * the defaults (capacity, msgsize, policy, mode 0600, process-owned).
 * Returns the mailbox id (> 0), or -1.
 */
int64_t kipc_mbox_open(const char *name, unsigned oflag,
		       const struct kipc_mbox_attr *attr);
int kipc_mbox_destroy(int64_t id);
int kipc_mbox_stat(int64_t id, struct kipc_mbox_stat *st);
/* mask: KIPC_SET_* selecting the fields of attr to change. */
int kipc_mbox_setattr(int64_t id, unsigned mask,
		      const struct kipc_mbox_attr *attr);
int kipc_mbox_set_owner(int64_t id, pid_t pid);
int kipc_mbox_grant(int64_t id, pid_t pid);
int kipc_mbox_revoke(int64_t id, pid_t pid);

int kipc_mbox_send(int64_t id, const void *buf, size_t len, unsigned prio,
		   unsigned flags);
int kipc_mbox_send_timed(int64_t id, const void *buf, size_t len,
			 unsigned prio, unsigned flags, int64_t timeout);
int kipc_mbox_send_x(int64_t id, const void *buf, size_t len, unsigned prio,
		     unsigned flags, const struct kipc_opts *opts);

ssize_t kipc_mbox_receive(int64_t id, void *buf, size_t len,
			  struct kipc_msginfo *info, unsigned flags);
ssize_t kipc_mbox_receive_timed(int64_t id, void *buf, size_t len,
				struct kipc_msginfo *info, unsigned flags,
				int64_t timeout);
ssize_t kipc_mbox_receive_x(int64_t id, void *buf, size_t len,
			    struct kipc_msginfo *info, unsigned flags,
			    const struct kipc_opts *opts);

/*
 * Look at the message kipc_mbox_receive(id, ...) would take now, without
 * taking it: copies its first len bytes into buf and returns its full
 * length (> len: the copy is truncated, KIPC_CQE_F_TRUNC in info->flags),
 * or -1. info (may be NULL): its sender, priority, type, length, seq and
 * source, as a receive reports them; never a call's token. Never waits:
 * EAGAIN when there is no message. The rights are receive's (EPERM
 * without the receive right on a process-owned mailbox, EACCES without
 * read permission on a kernel-owned one). flags: 0.
 */
ssize_t kipc_mbox_peek(int64_t id, void *buf, size_t len, struct kipc_msginfo *info,
		       unsigned flags);

/* Receive from whichever of nids mailboxes has a message first
 * (info->source tells which). */
ssize_t kipc_mbox_receive_set(const int64_t *ids, unsigned nids, void *buf,
			      size_t len, struct kipc_msginfo *info,
			      unsigned flags);
ssize_t kipc_mbox_receive_set_x(const int64_t *ids, unsigned nids, void *buf,
				size_t len, struct kipc_msginfo *info,
				unsigned flags, const struct kipc_opts *opts);

/* ------------------------------------------------------------------ */
/* Remote procedure call                                               */

/*
 * Send req to pid (or mailbox id) and wait for the reply. Returns the
 * reply's length copied into reply, or -1. info describes the reply;
 * with KIPC_CQE_F_DELIVERED in info->flags a failure happened after the
 * server had received the request.
 */
ssize_t kipc_call(pid_t pid, const void *req, size_t reqlen, void *reply,
		  size_t replylen, struct kipc_msginfo *info, unsigned flags);
ssize_t kipc_call_x(pid_t pid, const void *req, size_t reqlen, void *reply,
		    size_t replylen, struct kipc_msginfo *info, unsigned flags,
		    const struct kipc_opts *opts);
ssize_t kipc_mbox_call(int64_t id, const void *req, size_t reqlen,
		       void *reply, size_t replylen, struct kipc_msginfo *info,
		       unsigned flags);
ssize_t kipc_mbox_call_x(int64_t id, const void *req, size_t reqlen,
			 void *reply, size_t replylen,
			 struct kipc_msginfo *info, unsigned flags,
			 const struct kipc_opts *opts);
/* Answer a call received with KIPC_CQE_F_CALL (info.token). */
int kipc_reply(uint64_t token, const void *buf, size_t len, unsigned flags);
int kipc_reply_x(uint64_t token, const void *buf, size_t len, unsigned flags,
		 const struct kipc_opts *opts);
/*
 * Reply to the call of token with reply/replylen, then receive into buf
 * from the own task queue (from: a pid or KIPC_ANY) or from mailbox id:
 * a server loop's two calls in one kernel round trip (seL4 ReplyRecv).
 * The receive happens only if the reply was delivered. Returns the
 * received length as kipc_receive does, or -1; on failure info->flags
 * has KIPC_CQE_F_REPLIED if the reply was delivered (the error is the
 * receive's), and lacks it if the reply failed (ESRCH, EPERM, EMSGSIZE,
 * EFAULT...: nothing received; the call waits, or is gone). flags: the
 * receive's (KIPC_F_NONBLOCK, KIPC_F_TRUNC, the timeout flags; no type
 * selection: opts->type must be 0). The reply's type is 0.
 */
ssize_t kipc_reply_receive(uint64_t token, const void *reply, size_t replylen, pid_t from,
			   void *buf, size_t len, struct kipc_msginfo *info, unsigned flags);
ssize_t kipc_reply_receive_x(uint64_t token, const void *reply, size_t replylen, pid_t from,
			     void *buf, size_t len, struct kipc_msginfo *info,
			     unsigned flags, const struct kipc_opts *opts);
ssize_t kipc_mbox_reply_receive(uint64_t token, const void *reply, size_t replylen,
				int64_t id, void *buf, size_t len, struct kipc_msginfo *info,
				unsigned flags);
ssize_t kipc_mbox_reply_receive_x(uint64_t token, const void *reply, size_t replylen,
				  int64_t id, void *buf, size_t len,
				  struct kipc_msginfo *info, unsigned flags,
				  const struct kipc_opts *opts);

/* ------------------------------------------------------------------ */
/* Own task queue                                                      */

int kipc_taskq_stat(struct kipc_taskq_stat *st);
/* capacity, msgsize, qbytes and flags of attr are used. */
int kipc_taskq_setattr(const struct kipc_mbox_attr *attr);

/* ------------------------------------------------------------------ */
/* Introspection (<kipc/introspect.h>) and tracing (<kipc/trace.h>)    */

/*
 * Snapshots of the kernel for tools. The list calls fill min(total, n)
 * records of buf and return the total visible to the caller (so a
 * result > n means "call again with a larger buffer"), or -1. Buffers
 * travel through the arena: n * record size must fit in it (1 MiB by
 * default). Visibility rules: <kipc/introspect.h>.
 */
int kipc_sysinfo(struct kipc_sysinfo *si);
int kipc_kernel_info(struct kipc_kernel_info *ki);
ssize_t kipc_task_list(struct kipc_task_info *buf, size_t n);
int kipc_task_info(pid_t pid, struct kipc_task_info *ti);
ssize_t kipc_mbox_list(struct kipc_mbox_info *buf, size_t n);
int kipc_mbox_info(int64_t id, struct kipc_mbox_info *mi);
/* target: a mailbox id, or a pid with flags KIPC_INTRO_TASKQ. */
ssize_t kipc_waiter_list(int64_t target, unsigned flags,
			 struct kipc_waiter_info *buf, size_t n);
ssize_t kipc_msg_list(int64_t target, unsigned flags,
		      struct kipc_msg_info *buf, size_t n);

/*
 * Open this task's trace listener (attr NULL: every event, default ring;
 * EBUSY when one is open). kipc_trace_read() returns the number of
 * events (>= 1) written to buf, waiting while there are none; flags
 * KIPC_F_NONBLOCK (EAGAIN). _timed: relative ns, ETIMEDOUT. A signal
 * handler without SA_RESTART makes it fail EINTR; events stay in the
 * kernel for the next read. EBADF: no listener open.
 */
int kipc_trace_open(const struct kipc_trace_attr *attr);
ssize_t kipc_trace_read(struct kipc_trace_event *buf, size_t n, unsigned flags);
ssize_t kipc_trace_read_timed(struct kipc_trace_event *buf, size_t n,
			      unsigned flags, int64_t timeout);
int kipc_trace_close(void);

/* ------------------------------------------------------------------ */
/* POSIX message queues, the kernel's view (<kipc/mqueue.h>)           */

/*
 * A queue is named here by a handle: what kipc_mq_open returns, one per
 * open, with the access mode it granted, usable by this task only
 * (<kipc/mqueue.h>). fd is the descriptor this process holds the handle
 * as (the file kipc_mq_path names, opened), or -1: a task using a handle
 * for the first time (after fork, or one passed to it) names it, and the
 * kernel checks the process holds that descriptor of the open. A handle
 * the task does not hold is EBADF, and so are sending on a read-only one
 * and receiving on a write-only one. libkipc-posix.so builds the libc
 * mq_* calls (descriptors, O_NONBLOCK, SIGEV_THREAD) on these.
 * Flags of the timed calls: KIPC_F_NONBLOCK, KIPC_F_TIMEOUT |
 * KIPC_F_REALTIME with an absolute CLOCK_REALTIME ns timeout.
 * kipc_mq_notify returns 0, or the token of a SIGEV_THREAD registration
 * that kipc_mq_notify_wait waits on (ECANCELED: removed). kipc_mq_close
 * tells the kernel a descriptor closed (flush); flags KIPC_MQ_CLOSE_ABORT:
 * the open failed after all, undo it. kipc_mq_path: the open's
 * descriptor file, "<socket>.mq/o<handle><suffix>" (until first used).
 * kipc_mq_setfl tells the kernel a descriptor of the open had its status
 * flags changed (a new kipc_mq_attr.flgen); the _gen variants of the
 * timed calls fail ESTALE, nothing done, when flgen (0: no check) is no
 * longer the open's (<kipc/mqueue.h>).
 */
struct kipc_mq_open;
struct kipc_mq_attr;
struct kipc_mq_notify;
int64_t kipc_mq_open(const char *name, const struct kipc_mq_open *o);
int kipc_mq_unlink(const char *name);
int kipc_mq_timedsend(int64_t h, int fd, const void *buf, size_t len, unsigned prio,
		      unsigned flags, int64_t timeout);
ssize_t kipc_mq_timedreceive(int64_t h, int fd, void *buf, size_t len, unsigned *prio,
			     unsigned flags, int64_t timeout);
int64_t kipc_mq_notify(int64_t h, int fd, const struct kipc_mq_notify *n);
int kipc_mq_getattr(int64_t h, int fd, struct kipc_mq_attr *attr);
int kipc_mq_timedsend_gen(int64_t h, int fd, const void *buf, size_t len, unsigned prio,
			  unsigned flags, int64_t timeout, uint64_t flgen);
ssize_t kipc_mq_timedreceive_gen(int64_t h, int fd, void *buf, size_t len, unsigned *prio,
				 unsigned flags, int64_t timeout, uint64_t flgen);
int kipc_mq_setfl(int64_t h, int fd);
int kipc_mq_close(int64_t h, unsigned flags);
int kipc_mq_notify_wait(int64_t h, uint64_t token, pid_t *from, uid_t *uid);
int kipc_mq_path(int64_t h, const char *suffix, char *buf, size_t size);

/*
 * System V message queues, the kernel's view: msgflg and cmd take
 * Linux's values (KIPC_IPC_*, KIPC_MSG_* in <kipc/mqueue.h>); errors are
 * the kernel's (a receive buffer too small is EMSGSIZE, nothing to
 * receive with IPC_NOWAIT is EAGAIN: libkipc-posix.so makes them E2BIG
 * and ENOMSG). A signal handler always interrupts msgsnd and msgrcv
 * (EINTR), SA_RESTART or not, as on Linux. kipc_msgctl: buf/len is a
 * struct kipc_msqid_ds or kipc_sysv_msginfo (IPC_INFO, MSG_INFO).
 */
int kipc_msgget(int32_t key, int msgflg);
int kipc_msgsnd(int msqid, int64_t mtype, const void *buf, size_t len, int msgflg);
ssize_t kipc_msgrcv(int msqid, int64_t *mtype, void *buf, size_t len, int64_t msgtyp,
		    int msgflg);
int kipc_msgctl(int msqid, int cmd, void *buf, size_t len);

/*
 * The IPC limits of Linux's /proc/sys (key: KIPC_SYSCTL_* of
 * <kipc/mqueue.h>). kipc_sysctl_get: anyone, *val gets the value.
 * kipc_sysctl_set: root only (EACCES), EINVAL outside Linux's range;
 * changes the running kernel. 0 or -1.
 */
int kipc_sysctl_get(int key, int64_t *val);
int kipc_sysctl_set(int key, int64_t val);

/* ------------------------------------------------------------------ */
/* Asynchronous API                                                    */

/*
 * Cancel the parked asynchronous request with this user_data: it
 * completes with -ECANCELED (-EINTR with KIPC_F_INTR). 0, or -1 with
 * ENOENT when no such request is parked (it may have completed).
 */
int kipc_cancel(uint64_t user_data, unsigned flags);

/*
 * Buffers for asynchronous requests live in the shared data arena:
 * allocate them here (64-byte aligned; NULL + ENOMEM when the arena is
 * full). They stay valid until freed or until the process re-attaches
 * (fork, kernel restart).
 */
void *kipc_buf_alloc(size_t len);
void kipc_buf_free(void *buf);
/* Arena offset of a pointer into the arena (what sqe.addr holds). */
uint64_t kipc_buf_offset(const void *buf);

/*
 * Get a zeroed submission entry to fill, or NULL (EBUSY: kipc_submit()
 * first; or the attach errno). user_data values with bit 63 set are
 * reserved for the library (KIPC_UD_LIBRARY); submitting one fails EINVAL.
 */
#define KIPC_UD_LIBRARY (1ull << 63)
struct kipc_sqe *kipc_get_sqe(void);

/* Prep helpers: buffers must come from kipc_buf_alloc(). */
void kipc_prep_nop(struct kipc_sqe *sqe);
void kipc_prep_send(struct kipc_sqe *sqe, pid_t pid, const void *buf,
		    size_t len, unsigned prio, unsigned flags);
void kipc_prep_receive(struct kipc_sqe *sqe, pid_t from, void *buf,
		       size_t len, unsigned flags);
void kipc_prep_mbox_send(struct kipc_sqe *sqe, int64_t id, const void *buf,
			 size_t len, unsigned prio, unsigned flags);
void kipc_prep_mbox_receive(struct kipc_sqe *sqe, int64_t id, void *buf,
			    size_t len, unsigned flags);
void kipc_prep_mbox_peek(struct kipc_sqe *sqe, int64_t id, void *buf, size_t len,
			 unsigned flags);
void kipc_prep_mbox_receive_set(struct kipc_sqe *sqe, const int64_t *ids,
				unsigned nids, void *buf, size_t len,
				unsigned flags);
void kipc_prep_call(struct kipc_sqe *sqe, pid_t pid, const void *req,
		    size_t reqlen, void *reply, size_t replylen,
		    unsigned prio, unsigned flags);
void kipc_prep_mbox_call(struct kipc_sqe *sqe, int64_t id, const void *req,
			 size_t reqlen, void *reply, size_t replylen,
			 unsigned prio, unsigned flags);
void kipc_prep_reply(struct kipc_sqe *sqe, uint64_t token, const void *buf,
		     size_t len, unsigned flags);
void kipc_prep_reply_receive(struct kipc_sqe *sqe, uint64_t token, const void *reply,
			     size_t replylen, pid_t from, void *buf, size_t len,
			     unsigned flags);
void kipc_prep_mbox_reply_receive(struct kipc_sqe *sqe, uint64_t token, const void *reply,
				  size_t replylen, int64_t id, void *buf, size_t len,
				  unsigned flags);
void kipc_prep_cancel(struct kipc_sqe *sqe, uint64_t user_data,
		      unsigned flags);

/*
 * Bundles and multishot receives (transport.md section 14; the layouts
 * and exact results are in <kipc/ring.h>). kipc_prep_mbox_send_bundle:
 * n messages (1..KIPC_BUNDLE_MAX) to mailbox id in one entry, descs an
 * array in the arena (kipc_buf_alloc) naming payloads in the arena;
 * without KIPC_F_NONBLOCK a message that finds the mailbox full waits
 * for room as a blocking send's would and the rest goes on after it
 * (kipc_sqe_set_timeout: one deadline for the bundle); flags:
 * KIPC_F_NONBLOCK (EAGAIN instead), the timeout flags,
 * KIPC_F_SKIP_SUCCESS (a completion only when not all went).
 * kipc_prep_send_bundle: the same to the task queue of pid, each message
 * what one kipc_send to pid would do (a node-qualified pid: EXDEV).
 * kipc_prep_mbox_receive_multi: one entry that receives from mailbox id
 * into the buffers of ring br (entries: a power of two), from buffer
 * index head on, one completion per message with KIPC_CQE_F_MORE, until
 * one without it ends the request (flags: KIPC_F_TRUNC). Provide buffers
 * with kipc_buf_ring_add() and kipc_buf_ring_advance(), at any time.
 */
void kipc_prep_mbox_send_bundle(struct kipc_sqe *sqe, int64_t id,
				const struct kipc_bundle_desc *descs, unsigned n,
				unsigned prio, unsigned flags);
void kipc_prep_send_bundle(struct kipc_sqe *sqe, pid_t pid,
			   const struct kipc_bundle_desc *descs, unsigned n,
			   unsigned prio, unsigned flags);
void kipc_prep_mbox_receive_multi(struct kipc_sqe *sqe, int64_t id,
				  struct kipc_buf_ring *br, unsigned entries,
				  unsigned head, unsigned flags);
/* A ring of entries buffer slots in the arena (tail 0), or NULL with
 * errno (EINVAL: not a power of two up to KIPC_BUF_RING_MAX; ENOMEM). */
struct kipc_buf_ring *kipc_buf_ring_alloc(unsigned entries);
void kipc_buf_ring_free(struct kipc_buf_ring *br);
/* Write buffer buf (kipc_buf_alloc) of len bytes as the offset-th after
 * the tail; kipc_buf_ring_advance() then publishes count of them. */
static inline void kipc_buf_ring_add(struct kipc_buf_ring *br, unsigned entries, void *buf,
				     uint32_t len, uint16_t bid, unsigned offset)
{
	struct kipc_buf *b = KIPC_BUF_RING_BUF(br, (br->tail + offset) & (entries - 1));
	b->addr = kipc_buf_offset(buf);
	b->len = len;
	b->bid = bid;
	b->rsvd = 0;
}
static inline void kipc_buf_ring_advance(struct kipc_buf_ring *br, unsigned count)
{
	__atomic_store_n(&br->tail, br->tail + count, __ATOMIC_RELEASE);
}
/* The bid of the buffer a completion with KIPC_CQE_F_BUFFER used. */
static inline unsigned kipc_cqe_buffer_id(const struct kipc_cqe *cqe)
{
	return cqe->flags >> KIPC_CQE_BUFFER_SHIFT;
}

static inline void kipc_sqe_set_data(struct kipc_sqe *sqe, uint64_t data)
{
	sqe->user_data = data;
}
/* Sets KIPC_F_TIMEOUT; add KIPC_F_ABSTIME or KIPC_F_REALTIME in flags. */
static inline void kipc_sqe_set_timeout(struct kipc_sqe *sqe, int64_t ns,
					unsigned clock_flags)
{
	sqe->timeout = ns;
	sqe->flags |= KIPC_F_TIMEOUT | clock_flags;
}
static inline void kipc_sqe_set_type(struct kipc_sqe *sqe, int64_t type)
{
	sqe->type = type;
}

/*
 * KIPC_F_SKIP_SUCCESS in the flags of kipc_prep_send, kipc_prep_mbox_send
 * or kipc_prep_reply: no completion when the request succeeds (it is
 * still traced and counted, kipc_sysinfo's nskipped); an error completes
 * as usual, once. The kernel takes a process's entries in order and
 * copies a payload when it takes its entry, so any completion of a later
 * request says that the skipped ones before it were taken and their
 * buffers may be reused; one that failed at once has completed before
 * it, one that waited (a send to a full link) completes when it fails
 * (timeout, cancel, EIDRM ...) and posts nothing when it succeeds. Not with
 * KIPC_F_CACHE, nor in the synchronous wrappers (EINVAL), nor across the
 * network (a remote target: EINVAL).
 */

/*
 * Submit the entries got since the last submit, in order. Returns how
 * many went into the shared SQ; the rest stay staged (the SQ was full).
 * -1 with EBUSY when none fit: reap completions first. The kernel takes
 * at most max_inflight (SQ + CQ entries) requests of a process that have
 * not completed; beyond that they wait in the SQ.
 */
int kipc_submit(void);

/*
 * Completions of asynchronous requests, in the order the kernel posted
 * them. The pointer stays valid until kipc_cqe_seen().
 * kipc_peek_cqe: 0, or -1 with EAGAIN when none is waiting.
 * kipc_wait_cqe: 0, or -1 with EINTR (a signal handler ran) or
 * ECONNRESET. kipc_wait_cqe_timeout: relative ns; -1 ETIMEDOUT.
 */
int kipc_peek_cqe(struct kipc_cqe **cqe);
int kipc_wait_cqe(struct kipc_cqe **cqe);
int kipc_wait_cqe_timeout(struct kipc_cqe **cqe, int64_t timeout_ns);
void kipc_cqe_seen(struct kipc_cqe *cqe);

/*
 * An eventfd that becomes readable when completions may be waiting, for
 * poll/epoll loops: on readiness read(2) it, then kipc_peek_cqe() until
 * EAGAIN. The first call arms it in the kernel. Owned by the library.
 */
int kipc_ring_fd(void);

/*
 * Across machines (network.md): the node-qualified pid of task pid on
 * node (for kipc_send, kipc_call ...), or -1 with errno (EINVAL: a bad
 * name or pid; ENONET: this kernel has no network). Remote mailboxes
 * are opened as "/net/NODE/name". kipc_net_stat: 0 or -1 with errno.
 * kipc_net_peer: who the proxy task pid (a remote caller) stands for;
 * 0, or -1 with ESRCH (not a proxy) or ENONET.
 */
pid_t kipc_node_pid(const char *node, pid_t pid);
int kipc_net_stat(struct kipc_net_stat *st);
int kipc_net_peer(pid_t pid, struct kipc_net_peer *peer);

#ifdef __cplusplus
}
#endif

#endif /* _KIPC_LIBKIPC_H */
