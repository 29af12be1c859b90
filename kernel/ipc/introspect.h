// SPDX-License-Identifier: MIT
/*
 * Introspection (introspect.cc): a member of KernelImpl, read-only on
 * the core and the mailbox namespace; it owns only the kernel info the
 * host sets. Its methods are the introspection syscalls (see
 * <kipc/introspect.h> for the records and who may see what). Included
 * by ipc.h.
 */
#pragma once

#include <cstdint>
#include <vector>

#include <kipc/introspect.h>
#include <kipc/kipc.h>

namespace kipc {

class KernelImpl;
struct Task;
struct Mailbox;
struct Link;

class Introspect {
public:
	explicit Introspect(KernelImpl &k) : k_(k) {}
	Introspect(const Introspect &) = delete;
	Introspect &operator=(const Introspect &) = delete;

	void sysinfo(Task &cur, kipc_sysinfo &si) const;
	void kernel_info(kipc_kernel_info &ki) const { ki = kinfo_; }
	void set_kernel_info(const kipc_kernel_info &ki) { kinfo_ = ki; } /* the host's */
	long task_info(Task &cur, pid_t pid, kipc_task_info &ti) const;
	long mbox_info(Task &cur, int64_t id, kipc_mbox_info &mi) const;
	/* Every task (by pid), every mailbox cur may see (by id). */
	void task_list(Task &cur, std::vector<kipc_task_info> &out) const;
	void mbox_list(Task &cur, std::vector<kipc_mbox_info> &out) const;
	/* Waiters, queued messages of a mailbox or (taskq) a pid's task queue. */
	long waiter_list(Task &cur, int64_t target, bool taskq,
			 std::vector<kipc_waiter_info> &out) const;
	long msg_list(Task &cur, int64_t target, bool taskq, std::vector<kipc_msg_info> &out) const;

private:
	bool may_see_task(const Task &cur, const Task &t) const;
	bool may_see_mbox(const Task &cur, const Mailbox &mb) const;
	void fill_task_info(const Task &cur, const Task &t, kipc_task_info &ti) const;
	void fill_mbox_info(const Task &cur, const Mailbox &mb, kipc_mbox_info &mi) const;
	/* Find the link target names for cur (a mailbox, or a pid's task
	 * queue) and run f on it: 0, or why there is none. */
	template <class F> long on_link(Task &cur, int64_t target, bool taskq, F &&f) const;
	/* ... a mailbox id cur may see, f(mb) */
	template <class F> long on_mbox(Task &cur, int64_t id, F &&f) const;

	KernelImpl &k_;
	kipc_kernel_info kinfo_{}; /* set by the host (Kernel::set_kernel_info) */
};

} // namespace kipc
