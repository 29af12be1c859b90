// SPDX-License-Identifier: MIT
/* Trace listener syscalls (see <kipc/trace.h> and kernel/ipc/trace.cc). */
#include "syscalls.h"

namespace kipc {

long sys_trace_open(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	kipc_trace_attr attr{};
	if (sqe.flags)
		return -EINVAL;
	if (sqe.len2) {
		if (long err = copy_struct_from_user(cur, sqe.addr2, sqe.len2, &attr))
			return err;
	}
	return k.tracer.open(cur, attr);
}

long sys_trace_read(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	MsgArgs a;
	if (long err = decode_msg(k, cur, sqe, KIPC_F_WAIT_MASK, &a))
		return err;
	if (cur.mm && !cur.mm->access_ok(sqe.addr2, sqe.len2))
		return -EFAULT;
	return k.tracer.read(cur, a);
}

long sys_trace_close(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (sqe.flags)
		return -EINVAL;
	return k.tracer.close(cur);
}

} // namespace kipc
