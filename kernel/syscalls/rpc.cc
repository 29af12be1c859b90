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
	int err;
	if (long e = decode_call(k, cur, sqe, &a))
		return e;
	if (sqe.target <= 0 || sqe.target > INT32_MAX)
		return -EINVAL;
	Task *dst = k.get_task(pid_t(sqe.target), &err);
	if (!dst)
		return err;
	if (cur.uid != 0 && cur.uid != dst->uid)
		return -EPERM;
	return k.do_call(cur, dst->queue, a, cqe);
}

long sys_mbox_call(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	MsgArgs a;
	int err;
	if (long e = decode_call(k, cur, sqe, &a))
		return e;
	Mailbox *mb = k.find_mbox(sqe.target, &err);
	if (!mb)
		return err;
	if ((err = k.check_send(cur, *mb)))
		return err;
	return k.do_call(cur, mb->link, a, cqe);
}

long sys_reply(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	MsgArgs a;
	if (long err = decode_msg(k, cur, sqe, 0, &a))
		return err;
	if (sqe.target <= 0)
		return -ESRCH;
	return k.do_reply(cur, uint64_t(sqe.target), a);
}

} // namespace kipc
