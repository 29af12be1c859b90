// SPDX-License-Identifier: MIT
/*
 * The IPC limits Linux keeps in /proc/sys/kernel/{msgmni,msgmax,msgmnb,
 * msg_next_id} and /proc/sys/fs/mqueue/{msg_max,msgsize_max,queues_max,
 * msg_default,msgsize_default}: read by anyone, written by root only (the
 * files are root's, mode 0644), each within Linux's range
 * (ipc/ipc_sysctl.c, ipc/mq_sysctl.c), EINVAL beyond it. A write changes
 * the running kernel: the next msgget, mq_open or msgsnd uses it.
 * libkipc-posix.so serves the files from here under kipc-run.
 */
#include "ipc.h"

namespace kipc {

namespace {

struct Sysctl {
	uint32_t key;
	int64_t lo, hi;
};

/* Linux's extra1/extra2. msgmax and msgmnb are INT_MAX there; kipc's
 * boot parameter ranges bound them (a message travels through the arena). */
constexpr Sysctl kSysctls[] = {
	{KIPC_SYSCTL_MSGMNI, 0, kIdxMax}, /* ipcmni_extend: 1 << 24 (do_sysctl) */
	{KIPC_SYSCTL_MSGMAX, 0, 65536},
	{KIPC_SYSCTL_MSGMNB, 0, 1 << 30},
	{KIPC_SYSCTL_MSG_NEXT_ID, 0, INT32_MAX},
	{KIPC_SYSCTL_MQ_MSG_MAX, 1, 65536},
	{KIPC_SYSCTL_MQ_MSGSIZE_MAX, 128, 16777216},
	{KIPC_SYSCTL_MQ_QUEUES_MAX, 0, 1 << 30},
	{KIPC_SYSCTL_MQ_MSG_DEFAULT, 1, 65536},
	{KIPC_SYSCTL_MQ_MSGSIZE_DEFAULT, 128, 16777216},
};

} // namespace

long KernelImpl::do_sysctl(Task &cur, uint32_t key, bool write, int64_t *val)
{
	const Sysctl *s = nullptr;
	for (const Sysctl &e : kSysctls)
		if (e.key == key)
			s = &e;
	if (!s)
		return -EINVAL;
	Limits &l = lim;
	if (!write) {
		switch (key) {
		case KIPC_SYSCTL_MSGMNI: *val = l.msgmni; break;
		case KIPC_SYSCTL_MSGMAX: *val = l.msgmax; break;
		case KIPC_SYSCTL_MSGMNB: *val = l.msgmnb; break;
		case KIPC_SYSCTL_MSG_NEXT_ID: *val = msq.next_id(); break;
		case KIPC_SYSCTL_MQ_MSG_MAX: *val = l.mq_msg_max; break;
		case KIPC_SYSCTL_MQ_MSGSIZE_MAX: *val = l.mq_msgsize_max; break;
		case KIPC_SYSCTL_MQ_QUEUES_MAX: *val = l.mq_queues_max; break;
		case KIPC_SYSCTL_MQ_MSG_DEFAULT: *val = l.mq_msg_default; break;
		case KIPC_SYSCTL_MQ_MSGSIZE_DEFAULT: *val = l.mq_msgsize_default; break;
		}
		return 0;
	}
	/* The files are root's, 0644: the effective uid as of now (cred_refresh) */
	if (cur.uid != 0)
		return -EACCES;
	int64_t v = *val;
	int64_t hi = key == KIPC_SYSCTL_MSGMNI && lim.ipcmni_extend ? 1 << kIdxBitsExtend : s->hi;
	if (v < s->lo || v > hi)
		return -EINVAL;
	switch (key) {
	case KIPC_SYSCTL_MSGMNI: l.msgmni = uint32_t(v); break;
	case KIPC_SYSCTL_MSGMAX: l.msgmax = uint32_t(v); break;
	case KIPC_SYSCTL_MSGMNB: l.msgmnb = uint32_t(v); break;
	case KIPC_SYSCTL_MSG_NEXT_ID: msq.set_next_id(int32_t(v)); break;
	case KIPC_SYSCTL_MQ_MSG_MAX: l.mq_msg_max = uint32_t(v); break;
	case KIPC_SYSCTL_MQ_MSGSIZE_MAX: l.mq_msgsize_max = uint32_t(v); break;
	case KIPC_SYSCTL_MQ_QUEUES_MAX: l.mq_queues_max = uint32_t(v); break;
	case KIPC_SYSCTL_MQ_MSG_DEFAULT: l.mq_msg_default = uint32_t(v); break;
	case KIPC_SYSCTL_MQ_MSGSIZE_DEFAULT: l.mq_msgsize_default = uint32_t(v); break;
	}
	return 0;
}

} // namespace kipc
