// SPDX-License-Identifier: MIT
/*
 * kipcd's decoders of what a process controls: the attach request and the
 * submission ring. Header-only and free of daemon state so the fuzzers
 * (tests/fuzz/) run exactly the code kipcd runs.
 *
 * Everything here reads untrusted bytes: each shared word is loaded once,
 * range-checked, and an SQE is copied out before anyone looks at it.
 */
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <sys/types.h>

#include <kernel/kernel.h>
#include <kipc/kipc.h>
#include <kipc/ring.h>

namespace kipcd {

/*
 * The attach request: the n bytes recv() returned into buf (n < 0: the
 * recv failed). Returns 0 and fills *req, or -EPROTO (wrong size or
 * magic) or -EPROTONOSUPPORT (no common version). *features is what the
 * kernel grants of what was asked for.
 */
inline int parse_hello(const void *buf, ssize_t n, kipc_attach_req *req,
		       uint32_t *features)
{
	if (n != static_cast<ssize_t>(sizeof *req))
		return -EPROTO;
	std::memcpy(req, buf, sizeof *req);
	if (req->magic != KIPC_MAGIC)
		return -EPROTO;
	if (req->version_min > KIPC_PROTO_VERSION ||
	    req->version_max < KIPC_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	*features = req->features & (KIPC_FEAT_ALL | KIPC_FEAT_DELEGATE);
	return 0;
}

/*
 * Read the process's sq_tail once (acquire: the entries before it are
 * visible). Returns false when it claims more than entries SQEs past
 * head: the process is broken and gets detached.
 */
inline bool sq_read_tail(kipc_ring_ctl *ctl, uint32_t head, uint32_t entries,
			 uint32_t *tail)
{
	uint32_t t = std::atomic_ref<uint32_t>(ctl->sq_tail)
			     .load(std::memory_order_acquire);
	if (t - head > entries)
		return false;
	*tail = t;
	return true;
}

/* Copy the SQE at index head out of the shared ring (entries: power of 2). */
inline kipc_sqe sq_fetch(const kipc_sqe *sq, uint32_t head, uint32_t entries)
{
	kipc_sqe sqe;
	std::memcpy(&sqe, &sq[head & (entries - 1)], sizeof sqe);
	return sqe;
}

/*
 * A task's data arena as the core sees it: [0, size) of kipcd's mapping.
 * Offsets and lengths are the process's: checked without overflow.
 */
class ArenaMemory final : public kipc::UserMemory {
public:
	ArenaMemory(uint8_t *base, uint64_t size) : base_(base), size_(size) {}

	bool access_ok(uint64_t addr, uint64_t len) const override
	{
		/* addr + len <= size, without overflow */
		return len <= size_ && addr <= size_ - len;
	}
	int copy_from_user(void *dst, uint64_t addr, uint64_t len) override
	{
		if (!access_ok(addr, len))
			return -EFAULT;
		if (len)
			std::memcpy(dst, base_ + addr, len);
		return 0;
	}
	int copy_to_user(uint64_t addr, const void *src, uint64_t len) override
	{
		if (!access_ok(addr, len))
			return -EFAULT;
		if (len)
			std::memcpy(base_ + addr, src, len);
		return 0;
	}
	const uint8_t *view(uint64_t addr, uint64_t len) const override
	{
		return access_ok(addr, len) ? base_ + addr : nullptr;
	}

private:
	uint8_t *base_;
	uint64_t size_;
};

} // namespace kipcd
