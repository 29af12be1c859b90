// SPDX-License-Identifier: MIT
/*
 * System V message queue syscalls (kernel/ipc/msg_sysv.cc has the logic: k.msq),
 * checked in Linux's order: msgsnd's size and mtype (EINVAL) before the
 * queue, msgrcv's MSG_COPY rules before the queue.
 */
#include "syscalls.h"

namespace kipc {

long sys_msgget(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (sqe.flags || sqe.target < INT32_MIN || sqe.target > INT32_MAX)
		return -EINVAL;
	return k.msq.do_msgget(cur, int32_t(sqe.target), sqe.len);
}

long sys_msgsnd(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	MsgArgs a;
	if (sqe.len > k.limits().msgmax || sqe.target < 0)
		return -EINVAL;
	if (sqe.type < 1)
		return -EINVAL;
	if (long e = decode_msg(k, cur, sqe, KIPC_F_NONBLOCK, &a))
		return e;
	a.prio = 0;
	return k.msq.do_msgsnd(cur, sqe.target, a, cqe);
}

long sys_msgrcv(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	MsgArgs a;
	uint32_t msgflg = sqe.len2;
	if (sqe.target < 0)
		return -EINVAL;
	if ((msgflg & KIPC_MSG_COPY) &&
	    ((msgflg & KIPC_MSG_EXCEPT) || !(msgflg & KIPC_IPC_NOWAIT)))
		return -EINVAL;
	kipc_sqe s = sqe;
	s.len2 = 0;
	s.flags = msgflg & KIPC_IPC_NOWAIT ? KIPC_F_NONBLOCK : 0;
	if (sqe.flags)
		return -EINVAL;
	if (long e = decode_msg(k, cur, s, KIPC_F_NONBLOCK, &a))
		return e;
	return k.msq.do_msgrcv(cur, sqe.target, msgflg, a, cqe);
}

long sys_msgctl(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	kipc_msqid_ds ds{};
	kipc_sysv_msginfo info{};
	uint32_t cmd = sqe.len;
	bool is_info = cmd == KIPC_IPC_INFO || cmd == KIPC_MSG_INFO;
	if (sqe.flags)
		return -EINVAL;
	if (cmd == KIPC_IPC_SET) {
		if (long e = copy_struct_from_user(cur, sqe.addr2, sqe.len2, &ds))
			return e;
	}
	long r = k.msq.do_msgctl(cur, sqe.target, cmd, &ds, &info);
	if (r < 0 || cmd == KIPC_IPC_SET || cmd == KIPC_IPC_RMID)
		return r;
	long e = is_info ? copy_struct_to_user(cur, sqe.addr2, sqe.len2, info)
			 : copy_struct_to_user(cur, sqe.addr2, sqe.len2, ds);
	return e ? e : r;
}

} // namespace kipc
