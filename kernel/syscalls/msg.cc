// SPDX-License-Identifier: MIT
/*
 * Message syscalls: send/receive on task queues (direct communication) and
 * on mailboxes (indirect), receive from a set of mailboxes, and a look at
 * a mailbox's next message.
 */
#include "syscalls.h"

#include <kipc/net.h>
#include <kipc/ring.h>

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

/* Many sends in one entry (bundle.cc), to a mailbox (mbox_send_bundle) or
 * a task queue (send_bundle): the descriptor array is copied once, each
 * payload is checked when its message is sent; it waits for room as a
 * send does (the wait flags), or not (KIPC_F_NONBLOCK). */
static long bundle_entry(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	MsgArgs a;
	kipc_bundle_desc d[KIPC_BUNDLE_MAX];
	if (long err = decode_msg(k, cur, sqe, KIPC_F_WAIT_MASK | KIPC_F_SKIP_SUCCESS, &a))
		return err;
	size_t n = sqe.len / sizeof d[0];
	if (n == 0 || n > KIPC_BUNDLE_MAX || sqe.len % sizeof d[0] || sqe.addr2 || sqe.len2)
		return -EINVAL;
	if (!cur.mm || cur.mm->copy_from_user(d, sqe.addr, sqe.len))
		return -EFAULT;
	return k.do_send_bundle(cur, sqe.opcode, sqe.target, d, n, a, cqe);
}

long sys_mbox_send_bundle(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	return bundle_entry(k, cur, sqe, cqe);
}

long sys_send_bundle(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	if (KIPC_NET_IS_PID(sqe.target))
		return -EXDEV; /* bundles do not cross nodes (network.md Limits) */
	return bundle_entry(k, cur, sqe, cqe);
}

/* A multishot receive into the buffer ring at addr, of len entries, from
 * buffer len2 on (bundle.cc). */
long sys_mbox_receive_multi(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	uint32_t entries = sqe.len;
	if ((sqe.flags & ~KIPC_F_TRUNC) || sqe.prio || sqe.type || sqe.timeout || sqe.addr2 ||
	    entries == 0 || entries > KIPC_BUF_RING_MAX || (entries & (entries - 1)) ||
	    sqe.addr % 8)
		return -EINVAL;
	if (!cur.mm || !cur.mm->access_ok(sqe.addr, KIPC_BUF_RING_SIZE(entries)))
		return -EFAULT;
	MsgArgs a;
	a.user_data = sqe.user_data;
	a.flags = sqe.flags;
	a.addr = sqe.addr;
	return k.mbox.receive_multi(cur, sqe.target, a, entries, sqe.len2);
}

} // namespace kipc
