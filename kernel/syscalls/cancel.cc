// SPDX-License-Identifier: MIT
/*
 * cancel: take back one of the caller's parked requests (by user_data).
 * The request completes with ECANCELED, or EINTR with KIPC_F_INTR (the
 * library's signal path). Returns 0, or ENOENT when no such request is
 * parked: it completed already and its completion is on the way.
 */
#include "syscalls.h"

namespace kipc {

long sys_cancel(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (sqe.flags & ~KIPC_F_INTR)
		return -EINVAL;
	int err = sqe.flags & KIPC_F_INTR ? -EINTR : -ECANCELED;
	return k.do_cancel(cur, uint64_t(sqe.target), err);
}

} // namespace kipc
