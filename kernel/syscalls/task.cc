// SPDX-License-Identifier: MIT
/* The caller's own task queue: its attributes and counters. */
#include "syscalls.h"

namespace kipc {

long sys_taskq_stat(KernelImpl &, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (sqe.flags)
		return -EINVAL;
	const Link &l = cur.queue;
	kipc_taskq_stat st{};
	st.pid = cur.pid;
	st.uid = cur.uid;
	st.capacity = l.capacity;
	st.msgsize = l.msgsize;
	st.qbytes = l.unbounded() ? 0 : l.qbytes;
	st.flags = l.fixed ? KIPC_MBOX_FIXED : 0;
	st.nmsg = l.msgs.nmsg;
	st.nbytes = l.msgs.nbytes;
	st.nsenders = l.pending.nmsg;
	st.nreceivers = l.receivers.size();
	st.nsent = cur.nsent;
	st.nreceived = cur.nreceived;
	return copy_struct_to_user(cur, sqe.addr2, sqe.len2, st);
}

/* Read the caller's credentials again from the OS (after set*id). */
long sys_cred_refresh(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (sqe.flags || sqe.target || sqe.len || sqe.len2)
		return -EINVAL;
	return k.do_cred_refresh(cur);
}

/*
 * New capacity, message size or fixed size for the caller's task queue.
 * Messages already queued stay; a larger capacity admits waiting senders.
 */
long sys_taskq_setattr(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	kipc_mbox_attr attr;
	LinkAttr la;
	if (sqe.flags)
		return -EINVAL;
	if (long err = copy_struct_from_user(cur, sqe.addr2, sqe.len2, &attr))
		return err;
	if (attr.policy)
		return -EINVAL;
	if (long err = k.resolve_attr(&attr, true, &la))
		return err;
	k.init_link(cur.queue, la);
	k.refill(cur.queue);
	return 0;
}

} // namespace kipc
