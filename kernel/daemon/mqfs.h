// SPDX-License-Identifier: MIT
/*
 * kipcd's side of POSIX message queue descriptors (see mqfs.cc): one
 * FIFO per queue in "<socket>.mq/", which processes open as the queue's
 * descriptor. Private to kernel/daemon/.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <sys/types.h>
#include <unordered_map>

#include "kipcd.h"

namespace kipcd {

class MqFs {
public:
	/* released(id): an unlinked queue's last descriptor closed. */
	MqFs(Loop &loop, std::function<void(int64_t)> released)
		: loop_(loop), released_(std::move(released))
	{
	}
	~MqFs();
	MqFs(const MqFs &) = delete;
	MqFs &operator=(const MqFs &) = delete;

	/* The directory of the FIFOs: made, emptied of a dead kernel's. */
	void init(const std::string &dir);

	/* kipc::Host's mq_* hooks */
	int created(int64_t id);
	void readiness(int64_t id, bool readable, bool writable);
	void unlinked(int64_t id);
	bool in_use(int64_t id);
	void destroyed(int64_t id);
	static void signal(pid_t pid, int signo, int64_t value, pid_t from, uid_t uid);
	/* CapEff of /proc/<pid>/status has bit cap. */
	static bool capable(pid_t pid, int cap);

private:
	struct Queue {
		int rfd = -1;      /* our reader while the name exists */
		int wfd = -1;      /* our writer: POLLERR once no reader is left */
		int64_t watch = 0; /* on wfd, after unlink */
		uint32_t bytes = 0; /* in the pipe: 0 empty, 1 readable, 4097 full */
	};
	std::string path(int64_t id, const char *suffix = "") const;
	void remove_files(int64_t id) const;

	Loop &loop_;
	std::function<void(int64_t)> released_;
	std::string dir_;
	std::unordered_map<int64_t, Queue> qs_;
};

} // namespace kipcd
