// SPDX-License-Identifier: MIT
/*
 * Mailbox ids: a slot index and a sequence number, as Linux's ipc ids
 * (ipc/util.c):
 *
 *   id = seq << idx_bits | idx
 *
 * idx picks a slot; seq comes from a counter of the table bumped at every
 * creation (from seq_min up to seq_max, then back to seq_min), so an id
 * is not reused until the counter wraps. A slot remembers the seq of its
 * last occupant: an id whose seq is at most that was issued once and is
 * gone (EIDRM); a larger seq, another table's range or an idx never used
 * was never issued (EINVAL). Freed slots are reused last-freed first.
 *
 * The kernel has two tables (mailbox.cc):
 *  - native kipc mailboxes and POSIX queues: idx_bits 24, seq from 128,
 *    so ids are above INT32_MAX (64-bit ids, 2^24 slots, 32-bit seq);
 *  - System V queues: Linux's split, idx_bits 15 and seq up to 65535
 *    (ids seq * 32768 + idx), or with the ipcmni_extend boot parameter
 *    idx_bits 24 and seq up to 127, as Linux's ipcmni_extend. These ids
 *    are positive 32-bit ints, as msgget() returns them.
 */
#pragma once

#include <cerrno>
#include <cstdint>
#include <vector>

namespace kipc {

struct Mailbox;

class IdTable {
public:
	/* Ids seq << idx_bits | idx with seq in [seq_min, seq_max]; at most
	 * max_slots slots (<= 2^idx_bits). */
	IdTable(unsigned idx_bits, uint32_t seq_min, uint32_t seq_max, uint32_t max_slots);

	/*
	 * A slot for mb: its id, or -ENOSPC when every slot is in use (or,
	 * with want, none is free from want's index up). want >= 0: the id
	 * msg_next_id asks for (Linux's ipc_idr_alloc() with next_id): the
	 * first free index from want's index up, with want's seq.
	 */
	int64_t alloc(Mailbox *mb, int64_t want = -1);
	/* The mailbox of id, or nullptr with *err = -EINVAL / -EIDRM. */
	Mailbox *find(int64_t id, int *err) const;
	/* Free id's slot (it must be in use). */
	void free(int64_t id);

	/* By index (MSG_STAT): nullptr when free or beyond. */
	Mailbox *at(uint32_t idx) const { return idx < slots_.size() ? slots_[idx].mb : nullptr; }
	/* Slots ever used: indexes are below this. */
	uint32_t size() const { return uint32_t(slots_.size()); }
	uint32_t used() const { return used_; }
	unsigned idx_bits() const { return idx_bits_; }
	uint32_t idx_of(int64_t id) const { return uint32_t(id & ((int64_t(1) << idx_bits_) - 1)); }
	uint32_t seq_of(int64_t id) const { return uint32_t(id >> idx_bits_); }

	template <class F> void for_each(F &&f) const
	{
		for (const Slot &s : slots_)
			if (s.mb)
				f(s.mb);
	}

private:
	struct Slot {
		Mailbox *mb = nullptr;
		uint32_t seq = 0; /* seq of the current or last occupant */
	};
	unsigned idx_bits_;
	uint32_t seq_min_, seq_max_, max_slots_;
	uint32_t next_seq_;
	uint32_t used_ = 0;
	std::vector<Slot> slots_;
	std::vector<uint32_t> free_; /* free slots below slots_.size(), last freed at the back */
};

} // namespace kipc
