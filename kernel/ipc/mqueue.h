// SPDX-License-Identifier: MIT
/*
 * POSIX message queues (mqueue.cc): the mechanism and its private state
 * (included by ipc.h; KernelImpl::mq is the one instance). A queue is a
 * PosixQueue, a Mailbox private to mqueue.cc; the syscall entries
 * (kernel/syscalls/mqueue.cc) call the do_* functions below, the core
 * reaches the rest only through the Mechanism hooks.
 */
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <kipc/mqueue.h>

#include "mechanism.h"
#include "mqhandle.h"

struct kipc_cqe;

namespace kipc {

class KernelImpl;
class MqHost;
struct MsgArgs;
struct PosixQueue;

/* The host of a Kernel made without one: no files, no descriptor ever held. */
MqHost &no_mq_host();

class PosixQueues final : public Mechanism {
public:
	PosixQueues(KernelImpl &k, MqHost &host);
	~PosixQueues();

	long do_mq_open(Task &cur, const std::string &name, const kipc_mq_open &o);
	long do_mq_unlink(Task &cur, const std::string &name);
	/* h: cur's handle, fd: the descriptor its process holds it as (get()) */
	long do_mq_send(Task &cur, int64_t h, int64_t fd, MsgArgs &a, kipc_cqe &cqe);
	long do_mq_receive(Task &cur, int64_t h, int64_t fd, MsgArgs &a, kipc_cqe &cqe);
	long do_mq_notify(Task &cur, int64_t h, int64_t fd, const kipc_mq_notify &n);
	long do_mq_getattr(Task &cur, int64_t h, int64_t fd, kipc_mq_attr &at);
	long do_mq_setfl(Task &cur, int64_t h, int64_t fd);
	long do_mq_notify_wait(Task &cur, int64_t h, uint64_t token, const MsgArgs &a,
			       kipc_cqe &cqe);
	long do_mq_close(Task &cur, int64_t h, uint32_t flags);
	/* The host saw the last descriptor of open h close (Kernel::mq_released). */
	void release(int64_t h);
	/*
	 * Send credits (credit.cc): the link of open h cur may send to, if a
	 * send there changes nothing but the queue's count: messages queued
	 * already (its descriptors poll POLLIN and stay so) and nobody
	 * registered for a notification; nullptr if not. credit_queue(): the
	 * queue of open h (whoever's), the same for all its opens, and its
	 * count; 0 if none.
	 */
	const Link *credit_link(Task &cur, int64_t h);
	int64_t credit_queue(int64_t h, uint32_t *nmsg, uint32_t *cap, uint32_t *msgsize);
	/* Receive push (push.cc): the queue of cur's own readable open h. */
	Link *push_link(Task &cur, int64_t h, int *err);

	/* Inspection (tests, fuzz): queues alive, notifications not yet
	 * waited for, the opens. */
	size_t count() const { return queues_.size(); }
	size_t fired() const { return fired_.size(); }
	const MqHandles &handles() const { return mqh_; }

	/* Mechanism */
	void task_exit(Task &t) override;
	void link_changed(Mailbox &mb) override;
	void destroying(Mailbox &mb) override;
	void charges(Charges &c) const override;

private:
	struct Fired {
		pid_t owner, from;
		uid_t uid;        /* the sender's */
		uid_t owner_uid;  /* charged kMqNotifyCost */
	};

	/* The open h as cur may use it for need (KIPC_MQ_RDONLY/WRONLY/ACCMODE:
	 * any), cur's process holding it as descriptor fd (-1: none). */
	MqOpen *get(Task &cur, int64_t h, int64_t fd, uint32_t need, int *err);
	PosixQueue *queue(Task &cur, int64_t h, int64_t fd, uint32_t need, int *err);
	/* queue() for a send or receive made at a.addr2's flags generation */
	PosixQueue *xfer_queue(Task &cur, int64_t h, int64_t fd, uint32_t need, MsgArgs &a,
			       int *err);
	long create(Task &cur, const std::string &name, const kipc_mq_open &o,
		    PosixQueue **out);
	void unlink(PosixQueue &q);
	void update_ready(PosixQueue &q);
	void fire(PosixQueue &q, Task &cur);
	void remove_notify(PosixQueue &q, bool fired);
	void end_open(MqOpen *o);
	void destroy(PosixQueue *q);

	KernelImpl &k_;
	MqHost &host_;
	std::unordered_map<std::string, PosixQueue *> names_;
	std::unordered_set<PosixQueue *> queues_;    /* every queue alive */
	std::unordered_map<uint64_t, Fired> fired_;  /* SIGEV_THREAD, not yet waited */
	std::unordered_map<const Task *, uint32_t> notifying_; /* registrations per owner */
	MqHandles mqh_; /* opens and who may use them (mqhandle.h) */
};

} // namespace kipc
