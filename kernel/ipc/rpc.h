// SPDX-License-Identifier: MIT
/*
 * Calls and replies (rpc.cc): a member of KernelImpl that owns the
 * calls in flight, by token. Included by ipc.h.
 */
#pragma once

#include <cstdint>
#include <unordered_map>

#include <kipc/kipc.h>

#include "slab.h"

namespace kipc {

class KernelImpl;
struct Task;
struct Link;
struct Request;
struct MsgArgs;

class Calls {
public:
	explicit Calls(KernelImpl &k) : k_(k) {}
	Calls(const Calls &) = delete;
	Calls &operator=(const Calls &) = delete;

	/* call on link: send a as a request and park until the reply. */
	long call(Task &cur, Link &link, MsgArgs &a, kipc_cqe &cqe);
	/* The call and mbox_call syscalls: call pid's task queue, mailbox id. */
	long task_call(Task &cur, int64_t pid, MsgArgs &a, kipc_cqe &cqe);
	long mbox_call(Task &cur, int64_t id, MsgArgs &a, kipc_cqe &cqe);
	/* The reply syscall: answer the call token with a. */
	long reply(Task &cur, uint64_t token, MsgArgs &a);
	/* A reply's bytes, cur's memory to caller's: 0, -EFAULT, -ENOMEM. */
	long copy_reply(Task &cur, Task &caller, uint64_t addr, uint64_t buf, uint32_t n);
	/*
	 * The reply_receive syscalls (seL4's ReplyRecv): reply(token, rep),
	 * then, only if it succeeded, receive a from pid `from`'s messages in
	 * cur's task queue or (mbox) from mailbox `from`. Every result after
	 * a delivered reply carries KIPC_CQE_F_REPLIED, an immediate one here,
	 * a parked receive's in finish() (replied_first()).
	 */
	long reply_receive(Task &cur, uint64_t token, MsgArgs &rep, bool mbox, int64_t from,
			   MsgArgs &a, kipc_cqe &cqe);
	/* Did the request made by syscall op deliver a reply before it parked? */
	static bool replied_first(uint16_t op)
	{
		return op == KIPC_SYS_reply_receive || op == KIPC_SYS_mbox_reply_receive;
	}

	/* A fresh token: calls and SIGEV_THREAD registrations share them. */
	uint64_t new_token() { return next_token_++; }
	/* Hook of finish(): call r ends, its token with it. */
	void unparked(Request &r);

private:
	KernelImpl &k_;
	/* token -> caller, nodes from a slab: no malloc per call */
	std::unordered_map<uint64_t, Request *, std::hash<uint64_t>, std::equal_to<uint64_t>,
			   PoolAlloc<std::pair<const uint64_t, Request *>>>
		calls_;
	uint64_t next_token_ = 1;
};

} // namespace kipc
