// SPDX-License-Identifier: MIT
/*
 * Message syscalls: send/receive on task queues (direct communication) and
 * on mailboxes (indirect), receive from a set of mailboxes, and a look at
 * a mailbox's next message.
 */
#include "syscalls.h"

namespace kipc {

constexpr uint32_t kSendFlags = KIPC_F_WAIT_MASK | KIPC_F_CACHE | KIPC_F_SKIP_SUCCESS;
constexpr uint32_t kRecvFlags = KIPC_F_WAIT_MASK | KIPC_F_TRUNC | KIPC_F_TYPE | KIPC_F_EXCEPT;
constexpr size_t kSetMax = kRecvSetMax;

long sys_send(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	return msg_entry<kSendFlags, KernelImpl, &KernelImpl::do_task_send>(k, cur, sqe, cqe);
}

long sys_receive(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	return msg_entry<kRecvFlags, KernelImpl, &KernelImpl::do_task_receive>(k, cur, sqe, cqe);
}

long sys_mbox_send(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	return msg_entry<kSendFlags, Mailboxes, &Mailboxes::send>(k, cur, sqe, cqe);
}

long sys_mbox_receive(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	return msg_entry<kRecvFlags, Mailboxes, &Mailboxes::receive>(k, cur, sqe, cqe);
}

long sys_mbox_peek(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	return msg_entry<0, Mailboxes, &Mailboxes::peek>(k, cur, sqe, cqe);
}

long sys_mbox_receive_set(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	MsgArgs a;
	int64_t ids[kSetMax];
	if (long err = decode_msg(k, cur, sqe, kRecvFlags & ~(KIPC_F_TYPE | KIPC_F_EXCEPT), &a))
		return err;
	if (sqe.target || sqe.len2 == 0 || sqe.len2 % sizeof(int64_t) ||
	    sqe.len2 / sizeof(int64_t) > kSetMax)
		return -EINVAL;
	if (cur.mm && cur.mm->copy_from_user(ids, sqe.addr2, sqe.len2))
		return -EFAULT;
	return k.mbox.receive_set(cur, ids, sqe.len2 / sizeof(int64_t), a, cqe);
}

} // namespace kipc
