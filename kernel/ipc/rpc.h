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
