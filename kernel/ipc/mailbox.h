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
#include <string>
#include <unordered_map>

#include <kernel/kernel.h>
#include <kipc/kipc.h>

#include "ids.h"

namespace kipc {

class KernelImpl;
struct Task;
struct Mailbox;
struct Link;
struct LinkAttr;
struct MsgArgs;
struct Selector;
enum class Flavour : uint8_t;

/* Native mailboxes and POSIX queues: seq << 24 | idx, seq from 128 (ids
 * above INT32_MAX: never a System V id). */
constexpr unsigned kMboxIdxBits = 24;
constexpr uint32_t kMboxSeqMin = 128;

class Mailboxes {
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
	 * A fresh slot in flavour f's table and the mailbox in it, with the
	 * creator's credentials and mode (want_id >= 0: the id msg_next_id
	 * asks for); every kind of mailbox starts here. destroy_mbox() ends it.
	 */
	Mailbox *create(Task &cur, const LinkAttr &la, uint32_t mode, int *err, int64_t want_id,
			Flavour f);
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
	/* Round-robin: the holder the next message goes to (0: any). */
	pid_t rr_assign(Mailbox &mb);
	/* Hook of task exit: t's mailboxes are destroyed or orphaned, its
	 * rights go. */
	void task_exit(Task &t);

private:
	Mailbox *owned(Task &cur, int64_t id, int *err);

	KernelImpl &k_;
	IdTable mbox_ids_{kMboxIdxBits, kMboxSeqMin, UINT32_MAX, 1u << kMboxIdxBits};
	IdTable msq_ids_;  /* System V queues */
	std::unordered_map<std::string, Mailbox *> names_; /* native mailboxes' */
};

} // namespace kipc
