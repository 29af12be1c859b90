// SPDX-License-Identifier: MIT
/*
 * Mechanisms: the kinds of mailbox around the core (included by ipc.h).
 *
 * A Mailbox is the common object, as Linux's kern_ipc_perm: id, name,
 * credentials, mode and the Link that holds the messages. What a kind
 * adds is its own: kipc's native mailboxes (mailbox.cc), POSIX queues
 * (PosixQueue and PosixQueues, mqueue.cc) and System V queues (SysvQueue
 * and SysvQueues, msg_sysv.cc) derive their mailboxes from Mailbox in
 * their own file and keep their tables private. Each mailbox points at
 * the Mechanism that made it (Mailbox::mech); the core never asks which
 * kind a mailbox is, it calls these hooks:
 *
 *  - task_exit(t): t is exiting (exit_task, once its requests, rights and
 *    task queue are gone): what the mechanism holds for t goes;
 *  - link_changed(mb): messages entered or left mb's queue, or room may
 *    have appeared (do_send queued one; refill() ran: after a delivery
 *    from the queue, a withdrawn message or new bounds);
 *  - destroying(mb): destroy_mbox(mb) starts: the mechanism drops its
 *    state of mb (names, keys, counts, charges); the core then drains the
 *    link and frees mb;
 *  - charges(c) (debug checks): what the mechanism charges users;
 * and the hooks of the receive policies (native mailboxes: round-robin,
 * pair; the queues keep the defaults):
 *  - route(mb): who a message do_send() is making for mb's keyed link
 *    (Link::keyed) is for; 0: whoever receives first;
 *  - sent(mb, cur): a send by cur to mb happened (it reached a receiver
 *    or the queue, or waits inside the link);
 *  - received(mb, cur): a receive by cur on mb happened (it took one of
 *    mb's messages, or waits on mb);
 *  - sole_receiver(mb): the one task that can receive from mb, or
 *    nullptr (deadlock detection);
 *  - plain_receive(mb): a receive from mb takes the link's next message
 *    whoever of those that may receive makes it, and changes no state of
 *    the policy: a receive that may be chosen ahead of the call (receive
 *    push, credit.cc);
 * and reads what stat and trace records say of a kind (mbox_flag,
 * trace_flag, key()) and whether the kipc mailbox calls take it
 * (mbox_calls). See Documentation/internals.md, "Mechanisms".
 */
#pragma once

#include <cstdint>
#include <sys/types.h>
#include <unordered_map>

namespace kipc {

struct Task;
struct Mailbox;

/* What users are charged, as check_invariants() recomputes it. */
struct Charges {
	std::unordered_map<uid_t, uint64_t> bytes;     /* UserAcct::bytes */
	std::unordered_map<uid_t, uint32_t> mailboxes; /* UserAcct::mailboxes */
};

class Mechanism {
public:
	Mechanism(uint32_t mbox_flag, uint32_t trace_flag, bool mbox_calls)
		: mbox_flag(mbox_flag), trace_flag(trace_flag), mbox_calls(mbox_calls)
	{
	}
	Mechanism(const Mechanism &) = delete;
	Mechanism &operator=(const Mechanism &) = delete;

	const uint32_t mbox_flag;  /* in stat's attr.flags (KIPC_MBOX_POSIX), or 0 */
	const uint32_t trace_flag; /* on CREATE, OPEN, DESTROY (KIPC_TRACE_F_POSIX), or 0 */
	const bool mbox_calls;     /* the kipc mailbox calls (send, receive, setattr,
				      destroy, grant ...) take its mailboxes */

	virtual void task_exit(Task &t) { (void)t; }
	virtual void link_changed(Mailbox &mb) { (void)mb; }
	virtual void destroying(Mailbox &mb) = 0;
	virtual void charges(Charges &c) const = 0;
	virtual pid_t route(const Mailbox &mb) const { (void)mb; return 0; }
	virtual void sent(Mailbox &mb, const Task &cur) { (void)mb; (void)cur; }
	virtual void received(Mailbox &mb, const Task &cur) { (void)mb; (void)cur; }
	virtual Task *sole_receiver(const Mailbox &mb) const { (void)mb; return nullptr; }
	virtual bool plain_receive(const Mailbox &mb) const { (void)mb; return true; }
	/* The key CREATE and OPEN records show (System V), or 0. */
	virtual int64_t key(const Mailbox &mb) const { (void)mb; return 0; }

protected:
	~Mechanism() = default;
};

} // namespace kipc
