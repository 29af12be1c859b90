// SPDX-License-Identifier: MIT
/*
 * The fake operating system the unit tests (harness.h) and the fuzzers
 * (tests/fuzz/fuzz.h) both run the core on: a clock that moves only when
 * the test moves it, and the processes the host knows alive. No doctest
 * here: the fuzzers are built without it.
 */
#pragma once

#include <map>
#include <set>

#include <kernel/kernel.h>

namespace kipc::fakeos {

struct Clock : kipc::Clock {
	int64_t mono = 1'000'000'000;
	int64_t real = 1'700'000'000'000'000'000;
	int64_t monotonic_ns() const override { return mono; }
	int64_t realtime_ns() const override { return real; }
};

/* Host's process calls: alive are the live processes (attached or not)
 * with their credentials, watched those the kernel asked to hear of. */
struct Processes : kipc::Host {
	std::map<pid_t, Creds> alive;
	std::set<pid_t> watched;
	bool process_alive(pid_t pid, Creds *c) override
	{
		auto it = alive.find(pid);
		if (it == alive.end())
			return false;
		*c = it->second;
		return true;
	}
	void watch_process(pid_t pid) override { watched.insert(pid); }
	void unwatch_process(pid_t pid) override { watched.erase(pid); }
};

} // namespace kipc::fakeos
