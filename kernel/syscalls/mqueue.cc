// SPDX-License-Identifier: MIT
/*
 * POSIX message queue syscalls (kernel/ipc/mqueue.cc has the logic: k.mq).
 * The checks run in Linux's order: the timeout's validity and the
 * priority (decode_msg), then the handle (EBADF: not the caller's, or
 * not open for this: PosixQueues::get), then the queue's rules. A
 * queue is named by a handle of the caller's (sqe.target), with the
 * descriptor its process holds it as (sqe.type) for a first use.
 */
#include "syscalls.h"

namespace kipc {

constexpr uint32_t kPathMax = 4096; /* Linux PATH_MAX: getname() */
constexpr size_t kNameMax = 255;    /* Linux NAME_MAX: one mqueue fs entry */

/*
 * "/name" as mq_open(3) takes it: the library checked the leading slash
 * (glibc's EINVAL); the kernel judges what follows it, as Linux's
 * getname() and lookup do.
 */
static long copy_mq_name(Task &cur, const kipc_sqe &sqe, std::string *name)
{
	if (sqe.len == 0)
		return -EINVAL;
	if (sqe.len >= kPathMax)
		return -ENAMETOOLONG;
	if (cur.mm && !cur.mm->access_ok(sqe.addr, sqe.len))
		return -EFAULT;
	name->resize(sqe.len);
	if (cur.mm && cur.mm->copy_from_user(name->data(), sqe.addr, sqe.len))
		return -EFAULT;
	if ((*name)[0] != '/' || name->find('\0') != std::string::npos)
		return -EINVAL;
	std::string_view n(*name);
	n.remove_prefix(1);
	if (n.empty())
		return -ENOENT;
	if (n == "." || n == ".." || n.find('/') != std::string_view::npos)
		return -EACCES;
	if (n.size() > kNameMax)
		return -ENAMETOOLONG;
	return 0;
}

long sys_mq_open(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	std::string name;
	kipc_mq_open o;
	if (sqe.flags)
		return -EINVAL;
	if (long err = copy_mq_name(cur, sqe, &name))
		return err;
	if (long err = copy_struct_from_user(cur, sqe.addr2, sqe.len2, &o))
		return err;
	if (o.oflag & ~(KIPC_MQ_ACCMODE | KIPC_O_CREAT | KIPC_O_EXCL) ||
	    o.flags & ~(KIPC_MQ_ATTR | KIPC_MQ_RLIMIT))
		return -EINVAL;
	return k.mq.do_mq_open(cur, name, o);
}

long sys_mq_unlink(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	std::string name;
	if (sqe.flags)
		return -EINVAL;
	if (long err = copy_mq_name(cur, sqe, &name))
		return err;
	return k.mq.do_mq_unlink(cur, name);
}

long sys_mq_timedsend(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	MsgArgs a;
	if (long err = decode_msg(k, cur, sqe, KIPC_F_WAIT_MASK, &a))
		return err;
	a.type = 0;
	return k.mq.do_mq_send(cur, sqe.target, sqe.type, a, cqe);
}

long sys_mq_timedreceive(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	MsgArgs a;
	if (sqe.prio)
		return -EINVAL;
	if (long err = decode_msg(k, cur, sqe, KIPC_F_WAIT_MASK, &a))
		return err;
	return k.mq.do_mq_receive(cur, sqe.target, sqe.type, a, cqe);
}

long sys_mq_notify(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	kipc_mq_notify n;
	if (long err = record_in(cur, sqe, &n))
		return err;
	switch (n.notify) {
	case KIPC_MQ_NOTIFY_REMOVE:
	case KIPC_MQ_SIGEV_NONE:
	case KIPC_MQ_SIGEV_THREAD:
		break;
	case KIPC_MQ_SIGEV_SIGNAL:
		if (n.signo < 0 || n.signo > 64) /* valid_signal(): 0.._NSIG */
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	return k.mq.do_mq_notify(cur, sqe.target, sqe.type, n);
}

long sys_mq_getattr(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (sqe.flags)
		return -EINVAL;
	return record_out<kipc_mq_attr>(cur, sqe, [&](kipc_mq_attr &at) {
		return k.mq.do_mq_getattr(cur, sqe.target, sqe.type, at);
	});
}

long sys_mq_setfl(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (sqe.flags)
		return -EINVAL;
	return k.mq.do_mq_setfl(cur, sqe.target, sqe.type);
}

long sys_mq_close(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &)
{
	if (sqe.flags & ~KIPC_MQ_CLOSE_ABORT)
		return -EINVAL;
	return k.mq.do_mq_close(cur, sqe.target, sqe.flags);
}

long sys_mq_notify_wait(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	if (sqe.flags || sqe.type <= 0)
		return -EINVAL;
	MsgArgs a;
	a.user_data = sqe.user_data;
	return k.mq.do_mq_notify_wait(cur, sqe.target, uint64_t(sqe.type), a, cqe);
}

} // namespace kipc
