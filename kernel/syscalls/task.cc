// SPDX-License-Identifier: MIT
/* The caller's own task queue: its attributes and counters. */
#include "syscalls.h"

namespace kipc {

long sys_taskq_stat(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (sqe.flags)
		return -EINVAL;
	return record_out<kipc_taskq_stat>(cur, sqe, [&](kipc_taskq_stat &st) {
		k.do_taskq_stat(cur, st);
		return 0L;
	});
}

/* Read the caller's credentials again from the OS (after set*id). */
long sys_cred_refresh(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (sqe.flags || sqe.target || sqe.len || sqe.len2)
		return -EINVAL;
	return k.do_cred_refresh(cur);
}

/* New capacity, message size or fixed size for the caller's task queue. */
long sys_taskq_setattr(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	kipc_mbox_attr attr;
	if (long err = record_in(cur, sqe, &attr))
		return err;
	return k.do_taskq_setattr(cur, attr);
}

} // namespace kipc
