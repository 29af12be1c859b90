// SPDX-License-Identifier: MIT
/*
 * kipcd's side of POSIX message queue descriptors (see mqfs.cc): one
 * FIFO per open, made in "<socket>.mq/" and unlinked as soon as its
 * opener holds it, which the opener's process has as the queue's
 * descriptor. Private to kernel/daemon/.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <sys/types.h>
#include <unordered_map>
#include <vector>

#include "kipcd.h"

namespace kipcd {

class MqFs {
public:
	/* released(h): the last descriptor of open h closed. */
	MqFs(Loop &loop, std::function<void(int64_t)> released)
		: loop_(loop), released_(std::move(released))
	{
	}
	~MqFs();
	MqFs(const MqFs &) = delete;
	MqFs &operator=(const MqFs &) = delete;

	/* The directory of the FIFOs: made or checked, emptied of a dead kernel's. */
	void init(const std::string &dir);

	/* kipc::Host's mq_* hooks */
	int opened(int64_t h, uid_t uid, gid_t gid, uint32_t acc);
	void readiness(int64_t h, bool readable, bool writable);
	bool holds(pid_t pid, int fd, int64_t h);
	bool in_use(int64_t h);
	void closed(int64_t h);
	/* The loop's round ended at now (monotonic ns); idle: it may block
	 * next. Closes the spare readers when idle or kSpareNs after the
	 * first was opened, so that a release shows (see mqfs.cc). */
	void sweep(int64_t now, bool idle);
	static bool rlimit(pid_t pid, uint64_t *bytes);
	/* CapEff of /proc/<pid>/status has bit cap. */
	static bool capable(pid_t pid, int cap);

private:
	struct Open {
		std::string name;  /* in dir_, until claimed */
		int rfd = -1;      /* our reader until claimed */
		int spare = -1;    /* once claimed: a reader kept from a drain until sweep() */
		int wfd = -1;      /* our writer: POLLERR once no reader is left */
		uint32_t left = 0; /* the bytes our last change left in the pipe */
		int64_t watch = 0; /* on wfd, once claimed */
		dev_t dev = 0;     /* the FIFO */
		ino_t ino = 0;
		bool claimed = false;
	};
	void drop(Open &o);
	int reader(int64_t h, Open &o);
	static void close_spare(Open &o);
	void sweep_all();

	Loop &loop_;
	std::function<void(int64_t)> released_;
	std::string dir_;
	int dfd_ = -1; /* dir_, opened once and checked: everything is made through it */
	std::unordered_map<int64_t, Open> os_;
	std::vector<int64_t> spared_; /* opens that may have a spare reader */
	int64_t sweep_at_ = 0;        /* when the spares go at the latest; 0: none */
};

} // namespace kipcd
