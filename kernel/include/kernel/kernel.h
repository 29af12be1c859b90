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
#include <string_view>
#include <sys/types.h>

#include <kipc/kipc.h>

namespace kipc {

class Task;
class KernelImpl;

/* Credentials of a process, read from the connection (SO_PEERCRED). */
struct Creds {
	pid_t pid = 0;
	uid_t uid = 0;
	gid_t gid = 0;
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
};

/* The OS processes outside the kernel. */
class Host {
public:
	virtual ~Host() = default;
	/* Is pid a live process? If so fill its credentials. */
	virtual bool process_alive(pid_t pid, Creds *creds) = 0;
	/* Call Kernel::process_exited(pid) once pid exits (unattached tasks). */
	virtual void watch_process(pid_t pid) = 0;
	virtual void unwatch_process(pid_t pid) = 0;
};

/* Receives every completion; priv is what the host gave attach(). */
class CompletionSink {
public:
	virtual ~CompletionSink() = default;
	virtual void complete(void *priv, const kipc_cqe &cqe) = 0;
};

/* Runtime limits: Kconfig defaults, overridable at boot (msg_max=64). */
struct Limits {
	uint32_t msg_default;     /* default capacity of a bounded mailbox */
	uint32_t msg_max;         /* hard limit: messages per bounded link */
	uint32_t msgsize_default; /* default maximum message size */
	uint32_t msgsize_max;     /* hard limit: message size */
	uint32_t mbox_per_user;   /* mailboxes one uid may own */
	uint64_t bytes_per_user;  /* bytes one uid may have queued */
	uint32_t tasks_per_user;  /* processes one uid may have attached */
	uint32_t taskq_capacity;  /* default task queue capacity */
	bool root_bypass;         /* uid 0 bypasses mode bits */

	static Limits from_config();
	/* Set one "name=value" boot parameter; 0 or -EINVAL / -ENOENT. */
	int set(std::string_view name, std::string_view value);
	/* Are the limits consistent (defaults within hard limits)? 0 or -EINVAL. */
	int validate() const;
	/* The names set() accepts, for help texts and the boot log. */
	static const char *const param_names[];
};

/* Per-message kernel overhead charged to the sender's byte quota. */
extern const uint32_t kMessageOverhead;

/* Name of a syscall number, or nullptr (tools, traces, logs). */
const char *syscall_name(unsigned nr);

class Kernel {
public:
	Kernel(Clock &clock, Host &host, CompletionSink &sink,
	       const Limits &limits = Limits::from_config());
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
	/* A watched pid that never attached has exited. */
	void process_exited(pid_t pid);

	/* Execute one request on behalf of task. Completes via the sink. */
	void submit(Task *task, const kipc_sqe &sqe);

	/* Earliest timeout on CLOCK_MONOTONIC, or INT64_MAX when none. */
	int64_t next_deadline() const;
	/* Fire every timeout that has expired by the clock. */
	void run_timers();

	const Limits &limits() const;
	KernelImpl &impl() { return *impl_; }

private:
	std::unique_ptr<KernelImpl> impl_;
};

} // namespace kipc
