// SPDX-License-Identifier: MIT
/*
 * Syscall entry points. Each is thin, as in Linux: check the cheap things
 * first (flags, ranges, that user addresses lie in the caller's arena),
 * decode the sqe into core arguments, then call the do_* function in
 * kernel/ipc/ that holds the logic. A handler returns a result >= 0,
 * -errno, or -EQUEUED when the request was parked; it may fill the
 * completion's message fields (cqe) for an immediate result.
 *
 * The declarations and the dispatch table (table.cc) are generated from
 * KIPC_ENUMERATE_SYSCALLS in <kipc/syscalls.h>.
 */
#pragma once

#include "../ipc/ipc.h"

namespace kipc {

using SyscallFn = long (*)(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe);

#define KIPC_SYSCALL_DECL_(nr, name, family) \
	long sys_##name(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe);
KIPC_ENUMERATE_SYSCALLS(KIPC_SYSCALL_DECL_)
#undef KIPC_SYSCALL_DECL_

/* Dispatch one sqe: ENOSYS for an unknown number. */
long dispatch(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe);

/*
 * Decode the common fields of a send, receive or call: flags must be in
 * allowed, the timeout well formed, the buffer inside the caller's arena,
 * the priority in range. Returns 0 or -errno.
 */
long decode_msg(KernelImpl &k, Task &cur, const kipc_sqe &sqe, uint32_t allowed,
		MsgArgs *a);

/* Copy a fixed-size struct in from user memory (len must cover it). */
template <class T>
long copy_struct_from_user(Task &cur, uint64_t addr, uint32_t len, T *out)
{
	if (len < sizeof(T))
		return -EINVAL;
	if (cur.mm && cur.mm->copy_from_user(out, addr, sizeof(T)))
		return -EFAULT;
	return 0;
}

template <class T>
long copy_struct_to_user(Task &cur, uint64_t addr, uint32_t len, const T &in)
{
	if (len < sizeof(T))
		return -EINVAL;
	if (cur.mm && cur.mm->copy_to_user(addr, &in, sizeof(T)))
		return -EFAULT;
	return 0;
}

/*
 * The part of the kernel a member function belongs to: the core itself,
 * or one of the mechanisms around it (ipc.h: KernelImpl's members).
 */
template <class C> C &part(KernelImpl &k);
template <> inline KernelImpl &part(KernelImpl &k) { return k; }
template <> inline Mailboxes &part(KernelImpl &k) { return k.mbox; }
template <> inline Calls &part(KernelImpl &k) { return k.rpc; }

/*
 * The shapes most entries have, after their own cheap checks:
 *  msg_entry: decode_msg() with the allowed flags, then one call (of the
 *             core or a mechanism: &KernelImpl::do_task_send,
 *             &Mailboxes::send) on the target;
 *  record_in:  no flags, one record copied in from addr2/len2;
 *  record_out: fill one record (0 or -errno), copy it to addr2/len2.
 */
template <class C>
using MsgCall = long (C::*)(Task &cur, int64_t target, MsgArgs &a, kipc_cqe &cqe);
template <uint32_t Allowed, class C, MsgCall<C> Do>
long msg_entry(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	MsgArgs a;
	if (long err = decode_msg(k, cur, sqe, Allowed, &a))
		return err;
	return (part<C>(k).*Do)(cur, sqe.target, a, cqe);
}

/* An entry that takes one record (and no flags): -EINVAL, or as copy_struct_from_user. */
template <class T> long record_in(Task &cur, const kipc_sqe &sqe, T *out)
{
	if (sqe.flags)
		return -EINVAL;
	return copy_struct_from_user(cur, sqe.addr2, sqe.len2, out);
}

template <class T, class Fill> long record_out(Task &cur, const kipc_sqe &sqe, Fill &&fill)
{
	T rec;
	if (long err = fill(rec))
		return err;
	return copy_struct_to_user(cur, sqe.addr2, sqe.len2, rec);
}

} // namespace kipc
