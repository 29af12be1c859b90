// SPDX-License-Identifier: MIT
/*
 * Message syscalls: send/receive on task queues (direct communication) and
 * on mailboxes (indirect), and receive from a set of mailboxes.
 */
#include <algorithm>
#include <vector>

#include "syscalls.h"

namespace kipc {

constexpr uint32_t kSendFlags = KIPC_F_WAIT_MASK | KIPC_F_CACHE;
constexpr uint32_t kRecvFlags = KIPC_F_WAIT_MASK | KIPC_F_TRUNC | KIPC_F_TYPE | KIPC_F_EXCEPT;
constexpr size_t kSetMax = 64; /* mailboxes in one receive_set */

/* A direct send is allowed where kill(2) would be. */
static long lookup_peer(KernelImpl &k, Task &cur, int64_t pid, Task **out)
{
	int err;
	if (pid <= 0 || pid > INT32_MAX)
		return -EINVAL;
	Task *t = k.get_task(pid_t(pid), &err);
	if (!t)
		return err;
	if (cur.uid != 0 && cur.uid != t->uid)
		return -EPERM;
	*out = t;
	return 0;
}

static long type_selector(const MsgArgs &a, Selector *sel)
{
	if (a.flags & KIPC_F_EXCEPT && (!(a.flags & KIPC_F_TYPE) || a.type <= 0))
		return -EINVAL;
	sel->by_type = a.flags & KIPC_F_TYPE;
	sel->except = a.flags & KIPC_F_EXCEPT;
	sel->type = a.type;
	return 0;
}

long sys_send(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	MsgArgs a;
	Task *dst = nullptr;
	if (long err = decode_msg(k, cur, sqe, kSendFlags, &a))
		return err;
	if (long err = lookup_peer(k, cur, sqe.target, &dst))
		return err;
	return k.do_send(cur, dst->queue, a, cqe);
}

long sys_receive(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	MsgArgs a;
	Selector sel;
	if (long err = decode_msg(k, cur, sqe, kRecvFlags, &a))
		return err;
	if (sqe.target < 0 || sqe.target > INT32_MAX)
		return -EINVAL;
	if (long err = type_selector(a, &sel))
		return err;
	pid_t from = pid_t(sqe.target);
	Task *q = nullptr;
	bool gone = false;
	if (from != KIPC_ANY) {
		if (sel.by_type)
			return -EINVAL; /* one selector at a time */
		sel.key = from;
		int err;
		q = from == cur.pid ? &cur : k.get_task(from, &err);
		gone = !q;
	}
	Link *l = &cur.queue;
	return k.do_receive(cur, &l, 1, sel, a, cqe, q, gone);
}

long sys_mbox_send(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	MsgArgs a;
	int err;
	if (long e = decode_msg(k, cur, sqe, kSendFlags, &a))
		return e;
	Mailbox *mb = k.find_mbox(sqe.target, &err);
	if (!mb)
		return err;
	if ((err = k.check_send(cur, *mb)))
		return err;
	return k.do_send(cur, mb->link, a, cqe);
}

/*
 * Mailbox receivers select with rr/key = the caller: on a round-robin
 * mailbox that takes the messages assigned to the caller and unassigned
 * ones; on others every message is unassigned (route 0).
 */
static Selector mbox_selector(Task &cur)
{
	Selector sel;
	sel.rr = true;
	sel.key = cur.pid;
	return sel;
}

long sys_mbox_receive(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	MsgArgs a;
	int err;
	if (long e = decode_msg(k, cur, sqe, kRecvFlags, &a))
		return e;
	Mailbox *mb = k.find_mbox(sqe.target, &err);
	if (!mb)
		return err;
	Selector sel;
	if (mb->policy == KIPC_POLICY_ROUND_ROBIN) {
		if (a.flags & KIPC_F_TYPE)
			return -EINVAL; /* the rotation decides, not the type */
		sel = mbox_selector(cur);
	} else if (long e = type_selector(a, &sel)) {
		return e;
	}
	if ((err = k.check_receive(cur, *mb)))
		return err;
	Link *l = &mb->link;
	return k.do_receive(cur, &l, 1, sel, a, cqe);
}

long sys_mbox_receive_set(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	MsgArgs a;
	int err;
	if (long e = decode_msg(k, cur, sqe, kRecvFlags & ~(KIPC_F_TYPE | KIPC_F_EXCEPT), &a))
		return e;
	if (sqe.target || sqe.len2 == 0 || sqe.len2 % sizeof(int64_t) ||
	    sqe.len2 / sizeof(int64_t) > kSetMax)
		return -EINVAL;
	size_t n = sqe.len2 / sizeof(int64_t);
	int64_t ids[kSetMax];
	if (cur.mm && cur.mm->copy_from_user(ids, sqe.addr2, sqe.len2))
		return -EFAULT;
	Link *links[kSetMax];
	for (size_t i = 0; i < n; i++) {
		if (std::find(ids, ids + i, ids[i]) != ids + i)
			return -EINVAL; /* each mailbox once */
		Mailbox *mb = k.find_mbox(ids[i], &err);
		if (!mb)
			return err;
		if ((err = k.check_receive(cur, *mb)))
			return err;
		links[i] = &mb->link;
	}
	return k.do_receive(cur, links, n, mbox_selector(cur), a, cqe);
}

} // namespace kipc
