// SPDX-License-Identifier: MIT
/*
 * The kipc kernel core as its hosts see it: kipcd's transport and the unit
 * tests. Everything behind this header runs on one thread, never blocks
 * and never sleeps: a request either completes inside submit() or is
 * parked and completed later from submit() of another request,
 * run_timers(), exit() or process_exited(). Completions go to the
 * CompletionSink; time comes from the Clock; the world of OS processes is
 * reached through the Host.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <sys/types.h>

#include <kipc/kipc.h>

struct kipc_kernel_info; /* <kipc/introspect.h> */
struct kipc_trace_event; /* <kipc/trace.h> */

namespace kipc {

class Task;
class KernelImpl;

/* Credentials of a process, read from the connection (SO_PEERCRED). */
struct Creds {
	Creds() = default;
	Creds(pid_t p, uid_t u, gid_t g, std::vector<gid_t> gs = {})
		: pid(p), uid(u), gid(g), groups(std::move(gs)) {}
	pid_t pid = 0;
	uid_t uid = 0;               /* effective uid */
	gid_t gid = 0;               /* effective gid */
	std::vector<gid_t> groups;   /* supplementary groups */
	pid_t ppid = 0;              /* parent pid at attach (for tracers), 0: unknown */
};

/*
 * A queued message the daemon may push ahead into its receiver's
 * memory (receive push, transport.md section 13): what a receive of it
 * would report, and its payload (valid until the next core call).
 */
struct PushMsg {
	uint64_t seq = 0;            /* the message, while it stays queued */
	kipc_cqe cqe{};              /* as a receive of it completes (res = len) */
	const void *data = nullptr;
};

/* Where time comes from. The daemon reads the real clocks; tests fake it. */
class Clock {
public:
	virtual ~Clock() = default;
	virtual int64_t monotonic_ns() const = 0;
	virtual int64_t realtime_ns() const = 0;
};

/*
 * One task's user memory (its shared data arena). Addresses and lengths
 * come from the process and are untrusted: each call checks them and
 * returns 0 or -EFAULT. Nothing else of the process is ever touched.
 */
class UserMemory {
public:
	virtual ~UserMemory() = default;
	virtual bool access_ok(uint64_t addr, uint64_t len) const = 0;
	virtual int copy_from_user(void *dst, uint64_t addr, uint64_t len) = 0;
	virtual int copy_to_user(uint64_t addr, const void *src, uint64_t len) = 0;
	/*
	 * [addr, addr + len) where the kernel can read it in place, for a
	 * copy straight into another task's memory (one copy instead of two
	 * through a kernel buffer); nullptr when out of bounds, or when this
	 * memory has no such view: the caller then copies through the kernel.
	 * The bytes are the process's and may change under the reader.
	 */
	virtual const uint8_t *view(uint64_t addr, uint64_t len) const
	{
		(void)addr, (void)len;
		return nullptr;
	}
};

/* The OS processes outside the kernel. */
class Host {
public:
	virtual ~Host() = default;
	/* Is pid a live process? If so fill its credentials, as they are
	 * now (KIPC_SYS_cred_refresh reads them again). */
	virtual bool process_alive(pid_t pid, Creds *creds) = 0;
	/* Call Kernel::process_exited(pid) once pid exits (unattached tasks). */
	virtual void watch_process(pid_t pid) = 0;
	virtual void unwatch_process(pid_t pid) = 0;

	/* Has pid the capability (CAP_SYS_RESOURCE = 24 ...) in effect? */
	virtual bool capable(pid_t pid, int cap) { (void)pid, (void)cap; return false; }
};

/*
 * The host as POSIX message queues need it (kernel/ipc/mqueue.cc,
 * mqhandle.h): descriptors, their poll state, notification signals. Each
 * open (mq_open) has a host file (kipcd: a FIFO of its own,
 * kernel/daemon/mqfs.cc) that the opener's process opens as the
 * descriptor: it polls like Linux's mqueue file and its descriptors,
 * counted by the OS across dup, fork and exec, decide when the open ends.
 * A Kernel made without one has no files: no descriptor is ever held.
 */
class MqHost {
public:
	virtual ~MqHost() = default;
	/* Open number h (access mode acc) of uid/gid: make its file. 0 or -errno. */
	virtual int mq_opened(int64_t h, uid_t uid, gid_t gid, uint32_t acc) = 0;
	/* Poll state: readable = a message is queued, writable = not full. */
	virtual void mq_readiness(int64_t h, bool readable, bool writable) = 0;
	/*
	 * Does process pid hold, as its descriptor fd, a descriptor of open
	 * h? Checked against the process's descriptor table as the OS keeps
	 * it, never by asking the process. Once true, the host calls
	 * Kernel::mq_released(h) when the last descriptor of h closes.
	 */
	virtual bool mq_holds(pid_t pid, int fd, int64_t h) = 0;
	/* Does any process still hold a descriptor of open h? */
	virtual bool mq_in_use(int64_t h) = 0;
	/* Open h ended: remove its file. */
	virtual void mq_closed(int64_t h) = 0;
	/* RLIMIT_MSGQUEUE of pid as the OS has it (false: unknown). */
	virtual bool mq_rlimit(pid_t pid, uint64_t *bytes) = 0;
	/* SIGEV_SIGNAL: queue signo to pid with si_code SI_MESGQ. */
	virtual void mq_signal(pid_t pid, int signo, int64_t value, pid_t from, uid_t uid) = 0;
	/*
	 * Has attached process pid exited, though the host has not ended
	 * its task yet (its exit is still to be read)? A send does not hand
	 * its message to a receive such a process left parked.
	 */
	virtual bool mq_exited(pid_t pid)
	{
		(void)pid;
		return false;
	}
};

/* Receives every completion; priv is what the host gave attach(). */
class CompletionSink {
public:
	virtual ~CompletionSink() = default;
	virtual void complete(void *priv, const kipc_cqe &cqe) = 0;
	/* A request ended with success and asked for no completion
	 * (KIPC_F_SKIP_SUCCESS): cqe is what complete() would have had. A
	 * host that counts requests in flight counts this one as ended. */
	virtual void skipped(void *priv, const kipc_cqe &cqe)
	{
		(void)priv;
		(void)cqe;
	}
	/* May a multishot receive of priv post one more completion now
	 * (mbox_receive_multi: its CQ has room)? No: it ends EOVERFLOW
	 * instead, the message stays queued. */
	virtual bool can_post(void *priv)
	{
		(void)priv;
		return true;
	}
};

/* Runtime limits: Kconfig defaults, overridable at boot (msg_max=64). */
struct Limits {
	uint32_t msg_default;     /* default capacity of a bounded mailbox */
	uint32_t msg_max;         /* hard limit: messages per bounded link */
	uint32_t msgsize_default; /* default maximum message size */
	uint32_t msgsize_max;     /* hard limit: message size */
	uint32_t mbox_per_user;   /* mailboxes one creator uid may have */
	uint64_t bytes_per_user;  /* bytes one uid may have queued */
	uint32_t tasks_per_user;  /* processes one uid may have attached */
	uint32_t taskq_capacity;  /* default task queue capacity */
	bool root_bypass;         /* uid 0 bypasses mode bits */
	/* POSIX message queues (Linux's /proc/sys/fs/mqueue defaults) */
	uint32_t mq_msg_default;     /* maxmsg of a queue opened without attr */
	uint32_t mq_msg_max;         /* maxmsg limit (uid 0: HARD_MSGMAX) */
	uint32_t mq_msgsize_default; /* msgsize of a queue opened without attr */
	uint32_t mq_msgsize_max;     /* msgsize limit (uid 0: HARD_MSGSIZEMAX) */
	uint32_t mq_queues_max;      /* queues in the system (uid 0: no limit) */
	uint64_t mq_bytes_per_user;  /* RLIMIT_MSGQUEUE when the caller sends none */
	/* System V message queues (Linux's /proc/sys/kernel defaults) */
	uint32_t msgmax;             /* largest message */
	uint32_t msgmnb;             /* default qbytes of a queue */
	uint32_t msgmni;             /* queues in the system */
	uint32_t ipcmni_extend;      /* 1: System V ids seq << 24 | idx, msgmni up
					to 2^24 (Linux's ipcmni_extend); 0: seq * 32768 + idx */
	uint64_t trace_bytes_per_user; /* trace listeners' rings one uid may have */
	uint32_t hello_timeout_ms;   /* kipcd: how long a connection may be silent
					before its hello (the core has no use for it) */
	uint32_t push_idle_ms;       /* kipcd: a receive push nobody claims from
					this long goes back (transport.md section 13) */
	uint32_t credit_idle_ms;     /* kipcd: send credits nobody uses this long
					go back (transport.md section 12) */

	static Limits from_config();
	/* Set one "name=value" boot parameter; 0 or -EINVAL / -ENOENT. */
	int set(std::string_view name, std::string_view value);
	/* Are the limits consistent (defaults within hard limits)? 0 or -EINVAL. */
	int validate() const;
	/* The first inconsistency ("msg_default=10 exceeds msg_max=4"), or "". */
	std::string conflict() const;
	/*
	 * Lower each default that exceeds its hard limit to that limit,
	 * unless its name is in given (set explicitly: then it conflicts).
	 * Returns what was lowered ("msg_default=4 taskq_capacity=4"), or "".
	 */
	std::string fit_defaults(const std::vector<std::string> &given);
	/* Every parameter as "name=value ...", in param_names order. */
	std::string describe() const;
	/* The names set() accepts, for help texts and the boot log. */
	static const char *const param_names[];
};

/* Per-message kernel overhead charged to the sender's byte quota: the
 * header; message_charge() is what a message is charged in all. */
extern const uint32_t kMessageOverhead;
/* Bytes a message of len payload bytes takes and is charged: its slab
 * object (header and payload, rounded up to its size class) and, when
 * ext (typed, a call, or on a task queue or round-robin mailbox), its
 * 40-byte extension. */
uint64_t message_charge(uint32_t len, bool ext);

/* Name of a syscall number, or nullptr (tools, traces, logs). */
const char *syscall_name(unsigned nr);

class Kernel {
public:
	/* mq: the POSIX queues' host (nullptr: none, no descriptor files) */
	Kernel(Clock &clock, Host &host, CompletionSink &sink,
	       const Limits &limits = Limits::from_config(), MqHost *mq = nullptr);
	~Kernel();
	Kernel(const Kernel &) = delete;
	Kernel &operator=(const Kernel &) = delete;

	/*
	 * A process attached. Creates its task (or adopts the task queue
	 * that sends to the not-yet-attached pid created). Returns 0 or
	 * -errno (-EEXIST: pid already attached).
	 */
	int attach(const Creds &creds, UserMemory *mm, std::string_view comm,
		   void *priv, Task **out);
	/* The process is gone (connection closed): destroy its task. */
	void exit(Task *task);
	/*
	 * Send credits (transport.md section 12): reserve room for up to
	 * want more sends op of task t (KIPC_SYS_mbox_send: to native
	 * mailbox id; KIPC_SYS_send: to the task queue of attached pid id;
	 * KIPC_SYS_mq_timedsend: to the POSIX queue of t's open id, while it
	 * has messages and no notification registration, never filling it),
	 * beyond the held ones it already has, and charge their bytes to
	 * its user. Returns
	 * how many (0: not eligible); *msgsize is the largest payload one may
	 * carry, *charge the bytes each one holds. release_sends() gives
	 * bytes of such charge back to uid.
	 */
	uint32_t reserve_sends(Task *t, uint8_t op, int64_t id, uint32_t held, uint32_t want,
			       uint32_t *msgsize, uint64_t *charge);
	void release_sends(uid_t uid, uint64_t bytes);
	/*
	 * The link credits of op to id take room in, the same for every
	 * sender (id itself, or for KIPC_SYS_mq_timedsend the queue of open
	 * id, 0: none), its queued messages, its capacity and msgsize.
	 */
	int64_t credit_queue(uint8_t op, int64_t id, uint32_t *nmsg, uint32_t *cap = nullptr,
			     uint32_t *msgsize = nullptr);
	/*
	 * Bytes a host holds for uid outside the core (kernel/net: the parts
	 * of a remote message not complete yet), in its bytes_per_user: 0,
	 * or -ENOSPC when they do not fit (as a message's would not).
	 * uncharge_host() gives them back.
	 */
	int charge_host(uid_t uid, uint64_t bytes);
	void uncharge_host(uid_t uid, uint64_t bytes);
	/*
	 * Receive push (transport.md section 13). push_next(): the message
	 * that follows the one of sequence number after_seq (0: the first)
	 * in the delivery order of native mailbox id (KIPC_PUSH_TASKQ: of
	 * t's own task queue), if task t may receive it with a plain
	 * mbox_receive (receive(KIPC_ANY)) and it is plain (untyped, not a call,
	 * at most maxlen bytes, in the same priority as its predecessor): 0
	 * and *out, else -errno (-EAGAIN: nothing to push now; -ESTALE:
	 * after_seq is not queued at the head of that priority any more).
	 * take_pushed(): t
	 * receives the first message of id (or of its queue), which must be seq, without
	 * copying it (it was pushed); false if it is not (a daemon bug).
	 */
	int push_next(Task *t, int64_t id, uint64_t after_seq, uint32_t maxlen, PushMsg *out);
	bool take_pushed(Task *t, int64_t id, uint64_t seq);
	/*
	 * Does task t's exit change native mailbox id for its other
	 * receivers: is it t's own (process-owned: it is destroyed with
	 * t)? A kipcd push of it must go back first (transport.md section
	 * 13); t's other rights only go (a kernel-owned mailbox loses its
	 * owner, not its messages or anyone else's right). true too when
	 * id is gone or t is nullptr.
	 */
	bool exit_touches(Task *t, int64_t id);
	/* A watched pid that never attached has exited. */
	void process_exited(pid_t pid);
	/* The last descriptor of POSIX queue open h closed (MqHost::mq_holds). */
	void mq_released(int64_t h);

	/* The credentials task's calls are checked against (attach, then
	 * cred_refresh), and a host's change of them (kernel/net: a remote
	 * caller's uid as its node says, mapped). */
	Creds creds(const Task *task) const;
	void set_creds(Task *task, const Creds &creds);

	/* Execute one request on behalf of task. Completes via the sink. */
	void submit(Task *task, const kipc_sqe &sqe);

	/* Earliest timeout on CLOCK_MONOTONIC, or INT64_MAX when none. */
	int64_t next_deadline() const;
	/* Fire every timeout that has expired by the clock. */
	void run_timers();

	/*
	 * Tracing a call the host runs itself (kipcd's network bridge: a
	 * request for another node never enters the core): its SYSCALL, its
	 * SYSRET, and a record of the host's (a kipc_trace_net), as the core
	 * traces its own, to the listeners that may see task's events.
	 */
	bool tracing() const;
	void trace_call(Task *task, const kipc_sqe &sqe);
	void trace_ret(Task *task, const kipc_cqe &cqe, uint16_t op);
	void trace_record(Task *task, const kipc_trace_event &e); /* e.ts: now; task nullptr: the kernel's (pid 0, root sees it) */

	const Limits &limits() const;
	/* What kernel_info reports (the host's version, pid, loop, ...). */
	void set_kernel_info(const kipc_kernel_info &info);
	KernelImpl &impl() { return *impl_; }

private:
	std::unique_ptr<KernelImpl> impl_;
};

} // namespace kipc
