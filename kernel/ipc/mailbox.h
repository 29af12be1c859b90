// SPDX-License-Identifier: MIT
/*
 * The mailbox namespace (mailbox.cc): a member of KernelImpl that owns
 * every mailbox through its id tables, and the names of native ones.
 * Its methods are the mailbox syscalls, the lookups by id the other
 * mechanisms share (find, to_send, to_receive) and the rules of rights,
 * permissions and policies. Included by ipc.h.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include <kernel/kernel.h>
#include <kipc/kipc.h>

#include "ids.h"
#include "mechanism.h"

struct kipc_bundle_desc; /* <kipc/ring.h> */

namespace kipc {

class KernelImpl;
struct Task;
struct Mailbox;
struct Link;
struct LinkAttr;
struct MsgArgs;
struct Selector;

/* Native mailboxes and POSIX queues: seq << 24 | idx, seq from 128 (ids
 * above INT32_MAX: never a System V id). */
constexpr unsigned kMboxIdxBits = 24;
constexpr uint32_t kMboxSeqMin = 128;

/* The namespace, and the mechanism of native mailboxes (mechanism.h):
 * their names here, counted in their creator's UserAcct::mailboxes. */
class Mailboxes final : public Mechanism {
public:
	Mailboxes(KernelImpl &k, const Limits &l);
	Mailboxes(const Mailboxes &) = delete;
	Mailboxes &operator=(const Mailboxes &) = delete;

	/* --- the mailbox syscalls --- */
	long open(Task &cur, const std::string &name, uint32_t oflag, const kipc_mbox_attr *attr);
	long destroy(Task &cur, int64_t id);
	long stat(Task &cur, int64_t id, kipc_mbox_stat &st);
	long setattr(Task &cur, int64_t id, uint32_t mask, const kipc_mbox_attr &a);
	long set_owner(Task &cur, int64_t id, pid_t pid);
	long grant(Task &cur, int64_t id, pid_t pid);
	long revoke(Task &cur, int64_t id, pid_t pid);
	/* mbox_send, mbox_receive, mbox_receive_set: by id, then the core */
	long send(Task &cur, int64_t id, MsgArgs &a, kipc_cqe &cqe);
	long receive(Task &cur, int64_t id, MsgArgs &a, kipc_cqe &cqe);
	long receive_set(Task &cur, const int64_t *ids, size_t n, MsgArgs &a, kipc_cqe &cqe);
	/* mbox_peek: the message mbox_receive would take, copied, left queued */
	long peek(Task &cur, int64_t id, MsgArgs &a, kipc_cqe &cqe);
	/* mbox_receive_multi (bundle.cc; a bundle: KernelImpl::do_send_bundle) */
	long receive_multi(Task &cur, int64_t id, const MsgArgs &a, uint32_t entries, uint32_t head);

	/* --- by id, for every mechanism --- */
	Mailbox *find(int64_t id, int *err) const;
	/* The link cur may send to (find, check_send). */
	Link *to_send(Task &cur, int64_t id, int *err);
	/* The link of mailbox id if cur may receive from it as a asks, and the
	 * selector that receive uses (find, policy rules, check_receive). */
	Link *to_receive(Task &cur, int64_t id, const MsgArgs &a, Selector *sel, int *err);
	/* Every mailbox (f may destroy the one it is given). */
	template <class F> void for_each(F &&f) const
	{
		mbox_ids_.for_each(f);
		msq_ids_.for_each(f);
	}
	/* The tables, read-only: native and POSIX (native), System V (sysv). */
	const IdTable &native_ids() const { return mbox_ids_; }
	const IdTable &sysv_ids() const { return msq_ids_; }

	/*
	 * A slot for mb (a new object of its mechanism's type: Mailbox,
	 * PosixQueue, ...) in the System V table (sysv_ids) or the native
	 * one, with the creator's credentials and mode (want_id >= 0: the id
	 * msg_next_id asks for); every kind of mailbox starts here, the
	 * caller fills in the rest. nullptr: *err. destroy_mbox() ends it:
	 * its mechanism's destroying() first.
	 */
	Mailbox *create(Task &cur, std::unique_ptr<Mailbox> mb, bool sysv_ids, const LinkAttr &la,
			uint32_t mode, int *err, int64_t want_id = -1);
	/* create() of a POSIX or System V queue: kernel-owned, no owner,
	 * senders in arrival order, not charged per message. */
	Mailbox *create_queue(Task &cur, std::unique_ptr<Mailbox> mb, bool sysv_ids,
			      const LinkAttr &la, uint32_t mode, int *err, int64_t want_id = -1);
	void destroy_mbox(Mailbox *mb);
	/* What mbox_stat (and the introspection calls) report of a mailbox. */
	void fill_stat(const Mailbox &mb, kipc_mbox_stat &st) const;
	int resolve_attr(const kipc_mbox_attr *a, bool is_taskq, LinkAttr *out) const;

	/* --- rights, permissions, policies --- */
	int check_send(Task &cur, Mailbox &mb);
	int check_receive(Task &cur, Mailbox &mb);
	bool ipcperms(const Task &cur, const Mailbox &mb, uint32_t want) const;
	bool may_admin(const Task &cur, const Mailbox &mb) const;
	void add_holder(Mailbox &mb, Task &t);
	void remove_holder(Mailbox &mb, Task &t);
	/* What introspection shows of mb's policy state (0: none). */
	struct PolicyView {
		pid_t pair_sender, pair_receiver; /* pair: the bound tasks */
		pid_t excl;    /* exclusive: the task inside receive */
		pid_t rr_next; /* round-robin: the holder the next message goes to */
	};
	PolicyView policy_view(const Mailbox &mb) const;
	/* Hook of task exit: t's mailboxes are destroyed or orphaned, its
	 * rights go (exit_task() calls it before t's task queue drains, the
	 * other mechanisms' after). */
	void task_exit(Task &t) override;
	/* Mechanism: a native mailbox goes: its name, its creator's count. */
	void destroying(Mailbox &mb) override;
	void charges(Charges &c) const override;
	/* Mechanism: the policies. Round-robin: the next holder, in grant
	 * order, and the rotation moves on once the send happened. Pair: the
	 * first sender and the first receiver whose operation happens bind
	 * the mailbox. Exclusive: the task parked inside receive (none: any)
	 * is the link's receivers', so it needs no state. A receive is plain
	 * under policy ANY only. */
	pid_t route(const Mailbox &mb) const override;
	void sent(Mailbox &mb, const Task &cur) override;
	void received(Mailbox &mb, const Task &cur) override;
	Task *sole_receiver(const Mailbox &mb) const override;
	bool plain_receive(const Mailbox &mb) const override;

private:
	/* The state of a round-robin or pair mailbox, made by its first send
	 * or receive that happens, gone with the mailbox. */
	struct Policy {
		uint32_t rr_next = 0; /* round-robin cursor into holders */
		pid_t pair_sender = 0, pair_receiver = 0;
	};
	const Policy *policy(const Mailbox &mb) const;
	static Task *exclusive_receiver(const Mailbox &mb);

	template <class F> long owned(Task &cur, int64_t id, pid_t pid, bool make, F &&f);
	template <class F> long administered(Task &cur, int64_t id, F &&f);
	long set_attr(Mailbox *mb, uint32_t mask, const kipc_mbox_attr &a);

	KernelImpl &k_;
	IdTable mbox_ids_{kMboxIdxBits, kMboxSeqMin, UINT32_MAX, 1u << kMboxIdxBits};
	IdTable msq_ids_;  /* System V queues */
	std::unordered_map<std::string, Mailbox *> names_; /* native mailboxes' */
	std::unordered_map<const Mailbox *, Policy> policies_;
};

} // namespace kipc
