// SPDX-License-Identifier: MIT
/*
 * System V message queues (msg_sysv.cc): the mechanism and its private
 * state (included by ipc.h; KernelImpl::msq is the one instance). A queue
 * is a SysvQueue, a Mailbox private to msg_sysv.cc, in the kernel's
 * System V id table (KernelImpl::msq_ids); the syscall entries
 * (kernel/syscalls/sysvmsg.cc) call the do_* functions below.
 */
#pragma once

#include <cstdint>
#include <unordered_map>

#include "mechanism.h"

struct kipc_cqe;
struct kipc_msqid_ds;
struct kipc_sysv_msginfo;

namespace kipc {

class KernelImpl;
struct MsgArgs;
struct SysvQueue;

class SysvQueues final : public Mechanism {
public:
	explicit SysvQueues(KernelImpl &k);

	long do_msgget(Task &cur, int32_t key, uint32_t msgflg);
	long do_msgsnd(Task &cur, int64_t id, MsgArgs &a, kipc_cqe &cqe);
	long do_msgrcv(Task &cur, int64_t id, uint32_t msgflg, MsgArgs &a, kipc_cqe &cqe);
	long do_msgctl(Task &cur, int64_t id, uint32_t cmd, kipc_msqid_ds *ds,
		       kipc_sysv_msginfo *info);

	/* /proc/sys/kernel/msg_next_id (sysctl.cc): the id the next msgget
	 * asks for, -1: none */
	int32_t next_id() const { return next_id_; }
	void set_next_id(int32_t id) { next_id_ = id; }
	size_t count() const { return count_; } /* queues alive */

	/* Mechanism */
	void destroying(Mailbox &mb) override;
	void charges(Charges &c) const override;
	int64_t key(const Mailbox &mb) const override;

private:
	SysvQueue *find(int64_t id, int *err) const;
	/* find(), then ipcperms(want): EACCES */
	SysvQueue *find(Task &cur, int64_t id, uint32_t want, int *err) const;
	long copy(Task &cur, SysvQueue &q, uint32_t msgflg, MsgArgs &a, kipc_cqe &cqe);

	KernelImpl &k_;
	std::unordered_map<int32_t, SysvQueue *> keys_;
	uint32_t count_ = 0;
	int32_t next_id_ = -1;
};

} // namespace kipc
