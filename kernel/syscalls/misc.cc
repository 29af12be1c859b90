// SPDX-License-Identifier: MIT
/* nop: completes at once with 0; measures the ring and the dispatcher. */
#include "syscalls.h"

namespace kipc {

long sys_nop(KernelImpl &, Task &, const kipc_sqe &sqe, kipc_cqe &)
{
	return sqe.flags ? -EINVAL : 0;
}

} // namespace kipc
