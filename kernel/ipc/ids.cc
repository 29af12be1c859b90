// SPDX-License-Identifier: MIT
/* Mailbox ids (ids.h). */
#include "ids.h"

#include <algorithm>

namespace kipc {

IdTable::IdTable(unsigned idx_bits, uint32_t seq_min, uint32_t seq_max, uint32_t max_slots)
	: idx_bits_(idx_bits), seq_min_(seq_min), seq_max_(seq_max),
	  max_slots_(std::min<uint64_t>(max_slots, uint64_t(1) << idx_bits)), next_seq_(seq_min)
{
}

int64_t IdTable::alloc(Mailbox *mb, int64_t want)
{
	uint32_t idx, seq = next_seq_;
	if (want >= 0) {
		idx = idx_of(want);
		seq = seq_of(want);
		if (seq > seq_max_)
			return -EINVAL;
		/* id 0 names no mailbox: want 0 gives index 1 */
		while ((idx < slots_.size() && slots_[idx].mb) || (!seq && !idx))
			idx++;
		if (idx >= max_slots_)
			return -ENOSPC;
		while (slots_.size() <= idx) {
			free_.insert(free_.begin(), uint32_t(slots_.size())); /* reused last */
			slots_.emplace_back();
		}
		free_.erase(std::find(free_.begin(), free_.end(), idx));
	} else if (!free_.empty()) {
		idx = free_.back();
		free_.pop_back();
	} else if (slots_.size() < max_slots_) {
		idx = uint32_t(slots_.size());
		slots_.emplace_back();
	} else {
		return -ENOSPC;
	}
	if (want < 0)
		next_seq_ = next_seq_ >= seq_max_ ? seq_min_ : next_seq_ + 1;
	slots_[idx].mb = mb;
	slots_[idx].seq = seq;
	used_++;
	return int64_t(seq) << idx_bits_ | idx;
}

Mailbox *IdTable::find(int64_t id, int *err) const
{
	if (id <= 0 || (id >> idx_bits_) > int64_t(seq_max_)) {
		*err = -EINVAL;
		return nullptr;
	}
	uint32_t idx = idx_of(id), seq = seq_of(id);
	if (idx >= slots_.size()) {
		*err = -EINVAL;
		return nullptr;
	}
	const Slot &s = slots_[idx];
	if (s.mb && s.seq == seq)
		return s.mb;
	*err = seq && seq <= s.seq ? -EIDRM : -EINVAL;
	return nullptr;
}

void IdTable::free(int64_t id)
{
	uint32_t idx = idx_of(id);
	slots_[idx].mb = nullptr;
	free_.push_back(idx);
	used_--;
}

} // namespace kipc
