// SPDX-License-Identifier: MIT
/* Calls and replies (see kernel/ipc/rpc.cc). */
#include "syscalls.h"

#include <kipc/net.h>

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
	if (long err = decode_msg(k, cur, sqe, KIPC_F_SKIP_SUCCESS, &a))
		return err;
	if (sqe.target <= 0)
		return -ESRCH;
	return k.rpc.reply(cur, uint64_t(sqe.target), a);
}

/*
 * reply_receive, mbox_reply_receive: the receive's fields where receive
 * has them (target, addr/len, flags, timeout), the reply's payload at
 * addr2/len2, its token in type. Both halves are checked before either
 * runs: a bad entry does nothing.
 */
static long reply_receive(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe,
			  bool mbox)
{
	MsgArgs a;
	if (long err = decode_msg(k, cur, sqe, KIPC_F_WAIT_MASK | KIPC_F_TRUNC, &a))
		return err;
	if (sqe.prio)
		return -EINVAL;
	if (cur.mm && !cur.mm->access_ok(sqe.addr2, sqe.len2))
		return -EFAULT;
	if (sqe.type <= 0)
		return -ESRCH; /* as reply: no such call */
	if (mbox ? KIPC_NET_IS_MBOX(sqe.target) : KIPC_NET_IS_PID(sqe.target))
		return -EXDEV; /* the network has its own receive: not fused */
	MsgArgs rep;
	rep.addr = sqe.addr2;
	rep.len = sqe.len2;
	a.type = 0;
	a.addr2 = 0;
	a.len2 = 0;
	return k.rpc.reply_receive(cur, uint64_t(sqe.type), rep, mbox, sqe.target, a, cqe);
}

long sys_reply_receive(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	return reply_receive(k, cur, sqe, cqe, false);
}

long sys_mbox_reply_receive(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	return reply_receive(k, cur, sqe, cqe, true);
}

} // namespace kipc
