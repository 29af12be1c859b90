// SPDX-License-Identifier: MIT
/*
 * Shared fakes for the libFuzzer targets: the kernel core in process with
 * a fake clock, fake processes and a sink that checks what it receives.
 * Like tests/unit/harness.h, without doctest: a broken expectation
 * aborts, and libFuzzer saves the input.
 */
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include <generated/autoconf.h>
#include <kernel/kernel.h>
#include <kipc/kipc.h>

#include "../../kernel/daemon/wire.h"
#include "../../kernel/ipc/ipc.h"
#include "../unit/fake_os.h"

#define FUZZ_ASSERT(cond)                                                     \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "fuzz: %s:%d: %s\n", __FILE__, __LINE__, \
				#cond);                                       \
			abort();                                              \
		}                                                             \
	} while (0)

namespace kfuzz {

using namespace kipc;

using Clock = kipc::fakeos::Clock;

struct Host final : kipc::fakeos::Processes, kipc::MqHost {
	/*
	 * MqHost: POSIX queues, as kipcd's MqFs keeps them: one descriptor file per
	 * open (handle), the descriptors processes hold of it, and
	 * Kernel::mq_released() once its last descriptor closes (never from
	 * inside a hook: the caller drains released()). Every call is
	 * checked against that state.
	 */
	std::map<int64_t, int> mq_fds;      /* live open -> descriptors held */
	std::vector<int64_t> mq_to_release; /* for Kernel::mq_released() */
	std::set<pid_t> capable_pids;       /* CAP_SYS_RESOURCE, CAP_SYS_ADMIN */
	std::map<pid_t, uint64_t> mq_rlimits; /* RLIMIT_MSGQUEUE the OS has */
	bool mq_fail_create = false;        /* the next descriptor file fails */
	uint64_t mq_nsignals = 0;
	int mq_opened(int64_t h, uid_t, gid_t, uint32_t) override
	{
		FUZZ_ASSERT(h > 0 && !mq_fds.count(h));
		if (mq_fail_create) {
			mq_fail_create = false;
			return -ENFILE;
		}
		mq_fds[h] = 0;
		return 0;
	}
	void mq_readiness(int64_t h, bool, bool) override { FUZZ_ASSERT(mq_fds.count(h)); }
	/* A live process holds any descriptor number of an open it has one of. */
	bool mq_holds(pid_t pid, int fd, int64_t h) override
	{
		auto it = mq_fds.find(h);
		return alive.count(pid) && fd >= 0 && it != mq_fds.end() && it->second > 0;
	}
	bool mq_in_use(int64_t h) override
	{
		auto it = mq_fds.find(h);
		FUZZ_ASSERT(it != mq_fds.end());
		return it->second > 0;
	}
	void mq_closed(int64_t h) override { FUZZ_ASSERT(mq_fds.erase(h) == 1); }
	bool mq_rlimit(pid_t pid, uint64_t *bytes) override
	{
		FUZZ_ASSERT(alive.count(pid)); /* only a live opener creates */
		auto it = mq_rlimits.find(pid);
		if (it == mq_rlimits.end())
			return false;
		*bytes = it->second;
		return true;
	}
	bool capable(pid_t pid, int cap) override
	{
		FUZZ_ASSERT(cap == kCapSysAdmin || cap == kCapSysResource);
		FUZZ_ASSERT(alive.count(pid));
		return capable_pids.count(pid);
	}
	void mq_signal(pid_t pid, int signo, int64_t, pid_t from, uid_t) override
	{
		FUZZ_ASSERT(alive.count(pid));
		FUZZ_ASSERT(alive.count(from));
		FUZZ_ASSERT(signo >= 1 && signo <= 64);
		mq_nsignals++;
	}
	/* A process opens (+1) or closes (-1) a descriptor of live open h. */
	void mq_descriptor(int64_t h, int delta)
	{
		auto it = mq_fds.find(h);
		if (it == mq_fds.end() || it->second + delta < 0)
			return;
		it->second += delta;
		if (it->second == 0 && delta < 0)
			mq_to_release.push_back(h);
	}
	/* Hand the pending releases to the kernel, as kipcd's loop does. */
	void release(Kernel &k)
	{
		std::vector<int64_t> v;
		v.swap(mq_to_release);
		for (int64_t h : v)
			k.mq_released(h);
	}
	/* The kernel's opens and the descriptor files agree. */
	void check(const KernelImpl &k) const
	{
		FUZZ_ASSERT(mq_fds.size() == k.mq.handles().size());
		for (const auto &[h, n] : mq_fds) {
			FUZZ_ASSERT(k.mq.handles().find(h) != nullptr);
			(void)n;
		}
	}
};

/* A process's arena, checked by kipcd's own ArenaMemory (the kernel gets
 * &mem.user). */
struct Mem {
	std::vector<uint8_t> arena;
	kipcd::ArenaMemory user;
	explicit Mem(size_t n) : arena(n), user(arena.data(), arena.size()) {}
	Mem(const Mem &) = delete; /* user points into arena */
	Mem &operator=(const Mem &) = delete;
};

/* One fake process; one incarnation per attach. */
struct Proc {
	Creds creds;
	Mem mem;
	Task *task = nullptr;
	uint32_t gen = 0;                    /* incarnation */
	bool unique_ud = true;               /* its user_data never repeat */
	std::map<uint64_t, int> finals;      /* user_data -> final completions */
	std::vector<int64_t> results;        /* positive results (ids, tokens) */
	explicit Proc(size_t arena) : mem(arena) {}
};

/*
 * Checks every completion: it goes to an attached task, and no request
 * completes twice (a cached send's KIPC_CQE_F_MORE is not final).
 */
struct Sink final : CompletionSink {
	void complete(void *priv, const kipc_cqe &cqe) override
	{
		FUZZ_ASSERT(priv != nullptr);
		Proc *p = static_cast<Proc *>(priv);
		FUZZ_ASSERT(p->task != nullptr);
		if (p->unique_ud && !(cqe.flags & KIPC_CQE_F_MORE)) {
			int &n = p->finals[cqe.user_data];
			n++;
			FUZZ_ASSERT(n == 1);
		}
		if (cqe.res > 0 && p->results.size() < 64)
			p->results.push_back(cqe.res);
		if (cqe.token && p->results.size() < 64)
			p->results.push_back(int64_t(cqe.token));
	}
};

/* Small limits so that quotas and full links are reached quickly. */
inline Limits small_limits()
{
	Limits l = Limits::from_config();
	l.msg_default = 4;
	l.msg_max = 8;
	l.msgsize_default = 256;
	l.msgsize_max = 1024;
	l.mbox_per_user = 8;
	l.bytes_per_user = 8192;
	l.taskq_capacity = 4;
	return l;
}

} // namespace kfuzz
