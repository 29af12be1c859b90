// SPDX-License-Identifier: MIT
/* Decoding shared by the message syscalls: flags, timeout, buffer. */
#include "syscalls.h"

namespace kipc {

/*
 * Common decoding of message calls. Validation order: flags, timeout,
 * priority, user buffer.
 */
long decode_msg(KernelImpl &k, Task &cur, const kipc_sqe &sqe, uint32_t allowed, MsgArgs *a)
{
	uint32_t f = sqe.flags;

	if (f & ~allowed)
		return -EINVAL;
	if ((f & KIPC_F_SKIP_SUCCESS) && (f & KIPC_F_CACHE))
		return -EINVAL; /* a cached send completes twice: nothing to skip */
	a->user_data = sqe.user_data;
	a->flags = f;
	a->wait.nonblock = f & KIPC_F_NONBLOCK;
	if (!(f & KIPC_F_TIMEOUT)) {
		if ((f & (KIPC_F_ABSTIME | KIPC_F_REALTIME)) || sqe.timeout)
			return -EINVAL;
	} else {
		if (sqe.timeout < 0)
			return -EINVAL;
		if ((f & KIPC_F_ABSTIME) && (f & KIPC_F_REALTIME))
			return -EINVAL; /* one clock: ABSTIME is monotonic, REALTIME realtime */
		int64_t now = k.now();
		int64_t d;
		if (f & KIPC_F_REALTIME) /* absolute on the realtime clock */
			d = __builtin_sub_overflow(sqe.timeout, k.now_real(), &d) ||
					    __builtin_add_overflow(now, d, &d)
				    ? kForever
				    : d;
		else if (f & KIPC_F_ABSTIME)
			d = sqe.timeout;
		else
			d = __builtin_add_overflow(now, sqe.timeout, &d) ? kForever : d;
		a->wait.deadline = d;
	}
	if (sqe.prio > KIPC_PRIO_MAX)
		return -EINVAL;
	if (cur.mm && !cur.mm->access_ok(sqe.addr, sqe.len))
		return -EFAULT;
	a->addr = sqe.addr;
	a->len = sqe.len;
	a->prio = sqe.prio;
	a->type = sqe.type;
	a->addr2 = sqe.addr2;
	a->len2 = sqe.len2;
	return 0;
}

} // namespace kipc
