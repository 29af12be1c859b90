/* SPDX-License-Identifier: MIT */
/*
 * libkipc: wrappers of the introspection and tracing syscalls
 * (<kipc/introspect.h>, <kipc/trace.h>). List calls return the total
 * number of records and fill min(total, n) of buf.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

int kipc_sysinfo(struct kipc_sysinfo *si)
{
	long r = __kipc_sync_out(KIPC_SYS_sysinfo, 0, 0, si, sizeof *si);
	return __kipc_ret0(r);
}

int kipc_kernel_info(struct kipc_kernel_info *ki)
{
	long r = __kipc_sync_out(KIPC_SYS_kernel_info, 0, 0, ki, sizeof *ki);
	return __kipc_ret0(r);
}

ssize_t kipc_task_list(struct kipc_task_info *buf, size_t n)
{
	return __kipc_ret(__kipc_sync_out(KIPC_SYS_task_list, 0, 0, buf, n * sizeof *buf));
}

int kipc_task_info(pid_t pid, struct kipc_task_info *ti)
{
	long r = __kipc_sync_out(KIPC_SYS_task_info, pid, 0, ti, sizeof *ti);
	return __kipc_ret0(r);
}

ssize_t kipc_mbox_list(struct kipc_mbox_info *buf, size_t n)
{
	return __kipc_ret(__kipc_sync_out(KIPC_SYS_mbox_list, 0, 0, buf, n * sizeof *buf));
}

int kipc_mbox_info(int64_t id, struct kipc_mbox_info *mi)
{
	long r = __kipc_sync_out(KIPC_SYS_mbox_info, id, 0, mi, sizeof *mi);
	return __kipc_ret0(r);
}

ssize_t kipc_waiter_list(int64_t target, unsigned flags,
			 struct kipc_waiter_info *buf, size_t n)
{
	return __kipc_ret(__kipc_sync_out(KIPC_SYS_waiter_list, target, flags, buf, n * sizeof *buf));
}

ssize_t kipc_msg_list(int64_t target, unsigned flags, struct kipc_msg_info *buf,
		      size_t n)
{
	return __kipc_ret(__kipc_sync_out(KIPC_SYS_msg_list, target, flags, buf, n * sizeof *buf));
}

int kipc_trace_open(const struct kipc_trace_attr *attr)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_rec(&sqe, KIPC_SYS_trace_open, 0, 0, 0, 0,
		       attr ? (uint32_t)sizeof *attr : 0);
	struct kipc_slot s1 = {.in = attr, .len = attr ? sizeof *attr : 0};
	struct kipc_cqe cqe;
	return (int)__kipc_ret(__kipc_sync(&sqe, NULL, attr ? &s1 : NULL, &cqe));
}

static long trace_read(struct kipc_trace_event *buf, size_t n, unsigned flags,
		       int64_t timeout)
{
	size_t len = n * sizeof *buf;
	if (len > UINT32_MAX)
		len = UINT32_MAX / sizeof *buf * sizeof *buf;
	struct kipc_sqe sqe = {0};
	__kipc_enc_trace_read(&sqe, 0, (uint32_t)len, flags, timeout);
	struct kipc_slot s1 = {.out = buf, .len = len};
	struct kipc_cqe cqe;
	return __kipc_sync(&sqe, NULL, len ? &s1 : NULL, &cqe);
}

ssize_t kipc_trace_read(struct kipc_trace_event *buf, size_t n, unsigned flags)
{
	return __kipc_ret(trace_read(buf, n, flags, 0));
}

ssize_t kipc_trace_read_timed(struct kipc_trace_event *buf, size_t n,
			      unsigned flags, int64_t timeout)
{
	return __kipc_ret(trace_read(buf, n, flags | KIPC_F_TIMEOUT, timeout));
}

int kipc_trace_close(void)
{
	struct kipc_sqe sqe = {0};
	__kipc_enc_simple(&sqe, KIPC_SYS_trace_close, 0, 0);
	struct kipc_cqe cqe;
	return (int)__kipc_ret(__kipc_sync(&sqe, NULL, NULL, &cqe));
}
