// SPDX-License-Identifier: MIT
/*
 * Syscall entry points. Each is thin, as in Linux: check the cheap things
 * first (flags, ranges, that user addresses lie in the caller's arena),
 * decode the sqe into core arguments, then call the do_* function in
 * kernel/ipc/ that holds the logic. A handler returns a result >= 0,
 * -errno, or -EQUEUED when the request was parked; it may fill the
 * completion's message fields (cqe) for an immediate result.
 *
 * The declarations and the dispatch table (table.cc) are generated from
 * KIPC_ENUMERATE_SYSCALLS in <kipc/syscalls.h>.
 */
#pragma once

#include "../ipc/ipc.h"

namespace kipc {

using SyscallFn = long (*)(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe);

#define KIPC_SYSCALL_DECL_(nr, name, family) \
	long sys_##name(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe);
KIPC_ENUMERATE_SYSCALLS(KIPC_SYSCALL_DECL_)
#undef KIPC_SYSCALL_DECL_

/* Dispatch one sqe: ENOSYS for an unknown number. */
long dispatch(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe);

/*
 * Decode the common fields of a send, receive or call: flags must be in
 * allowed, the timeout well formed, the buffer inside the caller's arena,
 * the priority in range. Returns 0 or -errno.
 */
long decode_msg(KernelImpl &k, Task &cur, const kipc_sqe &sqe, uint32_t allowed,
		MsgArgs *a);

/* Copy a fixed-size struct in from user memory (len must cover it). */
template <class T>
long copy_struct_from_user(Task &cur, uint64_t addr, uint32_t len, T *out)
{
	if (len < sizeof(T))
		return -EINVAL;
	if (cur.mm && cur.mm->copy_from_user(out, addr, sizeof(T)))
		return -EFAULT;
	return 0;
}

template <class T>
long copy_struct_to_user(Task &cur, uint64_t addr, uint32_t len, const T &in)
{
	if (len < sizeof(T))
		return -EINVAL;
	if (cur.mm && cur.mm->copy_to_user(addr, &in, sizeof(T)))
		return -EFAULT;
	return 0;
}

} // namespace kipc
