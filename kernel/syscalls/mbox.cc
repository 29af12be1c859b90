// SPDX-License-Identifier: MIT
/* Mailbox management syscalls (see kernel/ipc/mailbox.cc). */
#include "syscalls.h"

namespace kipc {

/* "/name": a leading slash, no other, 1..KIPC_NAME_MAX bytes in all. */
static long copy_name(Task &cur, const kipc_sqe &sqe, std::string *name)
{
	if (sqe.len == 0)
		return 0; /* anonymous */
	if (sqe.len > KIPC_NAME_MAX)
		return -ENAMETOOLONG;
	name->resize(sqe.len);
	if (cur.mm && cur.mm->copy_from_user(name->data(), sqe.addr, sqe.len))
		return -EFAULT;
	if (name->size() < 2 || (*name)[0] != '/' ||
	    name->find_first_of(std::string_view("/\0", 2), 1) != std::string::npos)
		return -EINVAL;
	return 0;
}

long sys_mbox_open(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	std::string name;
	kipc_mbox_attr attr;
	if (sqe.flags & ~(KIPC_O_CREAT | KIPC_O_EXCL))
		return -EINVAL;
	if (long err = copy_name(cur, sqe, &name))
		return err;
	if (sqe.len2) {
		if (long err = copy_struct_from_user(cur, sqe.addr2, sqe.len2, &attr))
			return err;
	}
	return k.mbox.open(cur, name, name.empty() ? KIPC_O_CREAT : sqe.flags,
			      sqe.len2 ? &attr : nullptr);
}

long sys_mbox_destroy(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (sqe.flags)
		return -EINVAL;
	return k.mbox.destroy(cur, sqe.target);
}

long sys_mbox_stat(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	kipc_mbox_stat st;
	if (sqe.flags)
		return -EINVAL;
	if (sqe.len2 < sizeof(st))
		return -EINVAL;
	if (cur.mm && !cur.mm->access_ok(sqe.addr2, sizeof(st)))
		return -EFAULT;
	if (long err = k.mbox.stat(cur, sqe.target, st))
		return err;
	return copy_struct_to_user(cur, sqe.addr2, sqe.len2, st);
}

long sys_mbox_setattr(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	constexpr uint32_t all = KIPC_SET_MODE | KIPC_SET_UID | KIPC_SET_GID |
				 KIPC_SET_CAPACITY | KIPC_SET_POLICY;
	kipc_mbox_attr attr;
	if (sqe.flags || !sqe.len || (sqe.len & ~all))
		return -EINVAL;
	if (long err = copy_struct_from_user(cur, sqe.addr2, sqe.len2, &attr))
		return err;
	return k.mbox.setattr(cur, sqe.target, sqe.len, attr);
}

static long check_pid_arg(const kipc_sqe &sqe)
{
	if (sqe.flags)
		return -EINVAL;
	return sqe.pid <= 0 || sqe.pid > INT32_MAX ? -EINVAL : 0;
}

long sys_mbox_set_owner(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (long err = check_pid_arg(sqe))
		return err;
	return k.mbox.set_owner(cur, sqe.target, pid_t(sqe.pid));
}

long sys_mbox_grant(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (long err = check_pid_arg(sqe))
		return err;
	return k.mbox.grant(cur, sqe.target, pid_t(sqe.pid));
}

long sys_mbox_revoke(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (long err = check_pid_arg(sqe))
		return err;
	return k.mbox.revoke(cur, sqe.target, pid_t(sqe.pid));
}

} // namespace kipc
