// SPDX-License-Identifier: MIT
/*
 * Handles of POSIX queue opens (mqhandle.cc): the kernel's half of a
 * queue descriptor. Private to kernel/ipc/.
 *
 * An open is what Linux's struct file of an mqueue inode is: one
 * mq_open() of one queue, with the access mode granted at open (f_mode).
 * Its number (the handle) names it in every later call, but a number is
 * not a right: a task may use an open only while it is in that task's
 * table. The opener gets it at mq_open; any other task gets it only by
 * proving that its process holds a descriptor of the open (fork, exec
 * without close-on-exec, SCM_RIGHTS: Host::mq_holds, checked by the host
 * against the process's own descriptor table). A number guessed, or
 * another task's, is EBADF.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <sys/types.h>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace kipc {

struct Task;
struct Mailbox;

struct MqOpen {
	int64_t id;            /* the handle */
	Mailbox *mb;           /* the queue */
	uint32_t acc;          /* KIPC_MQ_RDONLY, WRONLY, RDWR (ACCMODE: neither) */
	uid_t uid;             /* the opener's: charged kMqOpenCost */
	bool created;          /* this open created the queue (an aborted open undoes it) */
	bool claimed = false;  /* the host has seen a descriptor of it */
	/* Bumped whenever a descriptor of the open had its status flags
	 * (O_NONBLOCK) changed (mq_setfl): a send or receive made with an
	 * older O_NONBLOCK reading fails -ESTALE, nothing done. */
	uint64_t flgen = 1;

	bool may_read() const { return acc == 0 || acc == 2; }
	bool may_write() const { return acc == 1 || acc == 2; }
};

class MqHandles {
public:
	/* A new open of mb, in t's table. */
	MqOpen *add(Task &t, Mailbox *mb, uint32_t acc, uid_t uid, bool created);
	/* The open numbered h, whoever holds it (nullptr: none). */
	MqOpen *find(int64_t h) const;
	/* Is o in t's table? */
	bool holds(const Task &t, const MqOpen &o) const;
	void adopt(Task &t, MqOpen &o);
	/* Take o out of t's table; true if no task's table has it now. */
	bool drop(Task &t, MqOpen &o);
	/* Every open in t's table (t is exiting: the caller drops them). */
	std::vector<MqOpen *> of_task(const Task &t) const;
	/* The tasks whose table has o (no order). */
	std::vector<const Task *> tasks_of(const MqOpen &o) const;
	/* Every open of mb. */
	std::vector<MqOpen *> of_queue(const Mailbox &mb) const;
	size_t count(const Mailbox &mb) const;
	/* The open dies: out of every table, freed. */
	void remove(MqOpen *o);
	size_t size() const { return opens_.size(); }

private:
	struct Entry {
		std::unique_ptr<MqOpen> open;
		std::unordered_set<const Task *> tasks;
	};
	std::unordered_map<int64_t, Entry> opens_;
	std::unordered_map<const Task *, std::unordered_set<int64_t>> by_task_;
	std::unordered_map<const Mailbox *, std::unordered_set<int64_t>> by_queue_;
	int64_t next_ = 1;
	/* The opens by_task_ or by_queue_ holds under key. */
	template <class Map> std::vector<MqOpen *> opens(const Map &m, typename Map::key_type key) const;
};

} // namespace kipc
