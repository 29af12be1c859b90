// SPDX-License-Identifier: MIT
/*
 * Introspection syscalls (see <kipc/introspect.h> and
 * kernel/ipc/introspect.cc): snapshots for tools. A list call returns the
 * total number of records the caller may see and writes as many as fit
 * in addr2/len2; one-record calls need len2 to cover the record.
 */
#include <vector>

#include "syscalls.h"

#include <kipc/net.h>

namespace kipc {

/* Copy min(v.size(), len2 / sizeof(T)) records out; the total, or -errno. */
template <class T>
static long copy_records(Task &cur, const kipc_sqe &sqe, const std::vector<T> &v)
{
	size_t n = std::min<size_t>(v.size(), sqe.len2 / sizeof(T));
	if (n && cur.mm && cur.mm->copy_to_user(sqe.addr2, v.data(), n * sizeof(T)))
		return -EFAULT;
	return long(v.size());
}

static long check_out(Task &cur, const kipc_sqe &sqe, uint32_t allowed_flags)
{
	if (sqe.flags & ~allowed_flags)
		return -EINVAL;
	if (cur.mm && !cur.mm->access_ok(sqe.addr2, sqe.len2))
		return -EFAULT;
	return 0;
}

/* A list call: the core's records, as many as fit copied out. */
template <class T, class Fill>
static long list_out(Task &cur, const kipc_sqe &sqe, uint32_t allowed_flags, Fill &&fill)
{
	std::vector<T> v;
	if (long err = check_out(cur, sqe, allowed_flags))
		return err;
	if (long err = fill(v))
		return err;
	return copy_records(cur, sqe, v);
}

long sys_sysinfo(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (long err = check_out(cur, sqe, 0))
		return err;
	return record_out<kipc_sysinfo>(cur, sqe, [&](kipc_sysinfo &si) {
		k.intro.sysinfo(cur, si);
		return 0L;
	});
}

long sys_kernel_info(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (long err = check_out(cur, sqe, 0))
		return err;
	return record_out<kipc_kernel_info>(cur, sqe, [&](kipc_kernel_info &ki) {
		k.intro.kernel_info(ki);
		return 0L;
	});
}

long sys_task_info(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (long err = check_out(cur, sqe, 0))
		return err;
	/* a pid, or a remote caller's proxy task (node-qualified, kipc/net.h) */
	if ((sqe.target <= 0 || sqe.target > INT32_MAX) && !KIPC_NET_IS_PID(sqe.target))
		return -EINVAL;
	return record_out<kipc_task_info>(
		cur, sqe, [&](kipc_task_info &ti) { return k.intro.task_info(cur, pid_t(sqe.target), ti); });
}

long sys_mbox_info(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (long err = check_out(cur, sqe, 0))
		return err;
	return record_out<kipc_mbox_info>(
		cur, sqe, [&](kipc_mbox_info &mi) { return k.intro.mbox_info(cur, sqe.target, mi); });
}

long sys_task_list(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	return list_out<kipc_task_info>(cur, sqe, 0, [&](auto &v) {
		k.intro.task_list(cur, v);
		return 0L;
	});
}

long sys_mbox_list(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	return list_out<kipc_mbox_info>(cur, sqe, 0, [&](auto &v) {
		k.intro.mbox_list(cur, v);
		return 0L;
	});
}

long sys_waiter_list(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	return list_out<kipc_waiter_info>(cur, sqe, KIPC_INTRO_TASKQ, [&](auto &v) {
		return k.intro.waiter_list(cur, sqe.target, sqe.flags & KIPC_INTRO_TASKQ, v);
	});
}

long sys_msg_list(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	return list_out<kipc_msg_info>(cur, sqe, KIPC_INTRO_TASKQ, [&](auto &v) {
		return k.intro.msg_list(cur, sqe.target, sqe.flags & KIPC_INTRO_TASKQ, v);
	});
}

} // namespace kipc
