// SPDX-License-Identifier: MIT
/*
 * fuzz_sq_ring: kipcd's reading of a process's shared region. The input
 * is what a hostile process writes into its region (control page, SQ
 * slots, data arena) between the kernel's rounds; each round runs the
 * daemon's own decoder (kernel/daemon/wire.h: sq_read_tail, sq_fetch and
 * ArenaMemory) the way Server::drain() does and feeds the copied entries
 * to the kernel. A tail out of range detaches the process, as in kipcd.
 * A well-behaved peer process sends to it and receives from it.
 */
#include "fuzz.h"


using namespace kfuzz;

namespace {

constexpr uint32_t kEntries = 8;
constexpr uint64_t kSqOff = KIPC_RING_CTL_SIZE;
constexpr uint64_t kArenaOff = kSqOff + kEntries * sizeof(kipc_sqe);
constexpr uint64_t kArenaSize = 4096;
constexpr uint64_t kRegion = kArenaOff + kArenaSize;

/* The process's region: what kipcd maps. */
struct Region {
	alignas(64) uint8_t bytes[kRegion] = {};
	kipc_ring_ctl *ctl() { return reinterpret_cast<kipc_ring_ctl *>(bytes); }
	kipc_sqe *sq() { return reinterpret_cast<kipc_sqe *>(bytes + kSqOff); }
};

/* The process writes: a few words anywhere, biased to the SQ and tail. */
void scribble(FuzzedDataProvider &in, Region &r, uint32_t head)
{
	int n = in.ConsumeIntegralInRange<int>(0, 6);
	for (int i = 0; i < n; i++) {
		switch (in.ConsumeIntegralInRange<int>(0, 5)) {
		case 0: /* publish some entries (or garbage) */
			r.ctl()->sq_tail = in.ConsumeIntegralInRange<int>(0, 7)
						   ? head + in.ConsumeIntegralInRange<uint32_t>(0, kEntries)
						   : in.ConsumeIntegral<uint32_t>();
			break;
		case 1:
		case 2: { /* one SQE slot */
			uint32_t slot = in.ConsumeIntegralInRange<uint32_t>(0, kEntries - 1);
			std::vector<uint8_t> b = in.ConsumeBytes<uint8_t>(sizeof(kipc_sqe));
			if (!b.empty())
				memcpy(&r.sq()[slot], b.data(), b.size());
			/* keep opcodes mostly meaningful */
			r.sq()[slot].opcode %= KIPC_NR_SYSCALLS + 2;
			break;
		}
		case 3: { /* arena bytes */
			uint64_t off = in.ConsumeIntegralInRange<uint64_t>(0, kArenaSize - 1);
			std::vector<uint8_t> b = in.ConsumeBytes<uint8_t>(
				in.ConsumeIntegralInRange<size_t>(0, 48));
			size_t len = std::min<uint64_t>(b.size(), kArenaSize - off);
			if (len)
				memcpy(r.bytes + kArenaOff + off, b.data(), len);
			break;
		}
		default: { /* any word of the control page */
			uint32_t w = in.ConsumeIntegralInRange<uint32_t>(0, KIPC_RING_CTL_SIZE / 4 - 1);
			uint32_t v = in.ConsumeIntegral<uint32_t>();
			memcpy(r.bytes + 4 * w, &v, 4);
		}
		}
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzedDataProvider in(data, size);
	kfuzz::Clock clock;
	kfuzz::Host host;
	Sink sink;
	auto region = std::make_unique<Region>();
	kipcd::ArenaMemory mm(region->bytes + kArenaOff, kArenaSize);
	Proc hostile(0), peer(4096);
	hostile.creds = Creds{100, 1000, 1000};
	hostile.unique_ud = false; /* it writes its own user_data */
	peer.creds = Creds{101, 1000, 1000};
	host.alive[100] = hostile.creds;
	host.alive[101] = peer.creds;
	Kernel k(clock, host, sink, small_limits(), &host);
	FUZZ_ASSERT(k.attach(hostile.creds, &mm, "hostile", &hostile, &hostile.task) == 0);
	FUZZ_ASSERT(k.attach(peer.creds, &peer.mem.user, "peer", &peer, &peer.task) == 0);
	KernelImpl &ki = k.impl();

	uint32_t head = in.ConsumeIntegral<uint32_t>(); /* free-running */
	region->ctl()->sq_tail = head;
	uint64_t peer_ud = 1ull << 40;
	int rounds = 0;
	while (in.remaining_bytes() > 0 && rounds++ < 64) {
		scribble(in, *region, head);
		/* Server::drain(): read the tail once, then copy each entry. */
		uint32_t tail;
		if (!kipcd::sq_read_tail(region->ctl(), head, kEntries, &tail)) {
			k.exit(hostile.task); /* "SQ tail out of range" */
			hostile.task = nullptr;
			break;
		}
		FUZZ_ASSERT(tail - head <= kEntries);
		while (head != tail) {
			kipc_sqe sqe = kipcd::sq_fetch(region->sq(), head, kEntries);
			head++;
			/* the process may rewrite the slot right after the copy */
			if (in.ConsumeBool())
				memset(&region->sq()[(head - 1) & (kEntries - 1)], 0xff,
				       sizeof(kipc_sqe));
			k.submit(hostile.task, sqe);
			ki.check_invariants();
		}
		/* The peer talks to it: a send, or a nonblocking receive. */
		kipc_sqe s{};
		s.user_data = peer_ud++;
		s.addr = 64;
		s.len = 16;
		if (in.ConsumeBool()) {
			s.opcode = KIPC_SYS_send;
			s.target = 100;
			s.flags = KIPC_F_NONBLOCK;
		} else {
			s.opcode = KIPC_SYS_receive;
			s.target = KIPC_ANY;
			s.flags = KIPC_F_NONBLOCK | KIPC_F_TRUNC;
		}
		k.submit(peer.task, s);
		if (in.ConsumeBool()) {
			clock.mono += 5'000'000;
			k.run_timers();
		}
		ki.check_invariants();
	}
	if (hostile.task) {
		k.exit(hostile.task);
		hostile.task = nullptr;
	}
	k.exit(peer.task);
	peer.task = nullptr;
	ki.check_invariants();
	return 0;
}
