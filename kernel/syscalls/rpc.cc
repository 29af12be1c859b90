// SPDX-License-Identifier: MIT
/* Calls and replies (see kernel/ipc/rpc.cc). */
#include "syscalls.h"

namespace kipc {

constexpr uint32_t kCallFlags = KIPC_F_WAIT_MASK | KIPC_F_TRUNC;

static long decode_call(KernelImpl &k, Task &cur, const kipc_sqe &sqe, MsgArgs *a)
{
	if (long err = decode_msg(k, cur, sqe, kCallFlags, a))
		return err;
	if (cur.mm && !cur.mm->access_ok(sqe.addr2, sqe.len2))
		return -EFAULT;
	return 0;
}

long sys_call(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	MsgArgs a;
	if (long err = decode_call(k, cur, sqe, &a))
		return err;
	return k.rpc.task_call(cur, sqe.target, a, cqe);
}

long sys_mbox_call(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	MsgArgs a;
	if (long err = decode_call(k, cur, sqe, &a))
		return err;
	return k.rpc.mbox_call(cur, sqe.target, a, cqe);
}

long sys_reply(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	MsgArgs a;
	if (long err = decode_msg(k, cur, sqe, 0, &a))
		return err;
	if (sqe.target <= 0)
		return -ESRCH;
	return k.rpc.reply(cur, uint64_t(sqe.target), a);
}

} // namespace kipc
