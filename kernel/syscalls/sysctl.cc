// SPDX-License-Identifier: MIT
/* The IPC limits of /proc/sys (kernel/ipc/sysctl.cc has the rules). */
#include "syscalls.h"

namespace kipc {

long sys_sysctl(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	if (sqe.flags || sqe.len > 1 || sqe.len2 || sqe.target < 0 || sqe.target > UINT32_MAX)
		return -EINVAL;
	int64_t v = sqe.type;
	long r = k.do_sysctl(cur, uint32_t(sqe.target), sqe.len == 1, &v);
	if (r == 0 && sqe.len == 0)
		cqe.type = v;
	return r;
}

} // namespace kipc
