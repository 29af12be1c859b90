// SPDX-License-Identifier: MIT
/*
 * No malloc per message or request on the hot path: messages, requests,
 * the wait entries of a receive (a receive_set's array), timer nodes and
 * call map nodes come from slabs, so a steady stream of sends, parked
 * receives, receive_sets, timeouts, calls and replies, rendezvous and
 * blocked senders, and cancels makes no heap allocation at all once the
 * slabs have their chunks.
 *
 * The core is driven through KernelImpl's do_* functions, not the facade:
 * the facade of this build runs check_invariants() after every call, and
 * the checks allocate (they are not the hot path). Every operator new of
 * the program is counted here; the slabs' chunks (malloc) are counted by
 * slab_total_bytes().
 */
#include <atomic>
#include <cstdlib>
#include <new>

#include "harness.h"

namespace {
std::atomic<uint64_t> g_news{0};
}

void *operator new(size_t n)
{
	g_news.fetch_add(1, std::memory_order_relaxed);
	if (void *p = std::malloc(n ? n : 1))
		return p;
	throw std::bad_alloc();
}
void operator delete(void *p) noexcept
{
	std::free(p);
}
void operator delete(void *p, size_t) noexcept
{
	std::free(p);
}

using namespace kt;

namespace {

struct HotLoop {
	World &w;
	Proc &a, &b;
	int64_t id, id0, id1, set[3];
	uint64_t abuf, bbuf, rbuf;
	uint64_t ud = 1000000;

	HotLoop(World &w_, Proc &a_, Proc &b_) : w(w_), a(a_), b(b_)
	{
		id = b.mbox_create(16);
		id0 = b.mbox_create(0);  /* rendezvous */
		id1 = b.mbox_create(1);  /* fills at once */
		for (int64_t &s : set)
			s = b.mbox_create(4);
		abuf = a.mem.alloc(64);
		bbuf = b.mem.alloc(64);
		rbuf = a.mem.alloc(64);
		std::memcpy(a.mem.arena.data() + abuf, "0123456789abcdef", 16);
		a.cq.reserve(1 << 16);
		b.cq.reserve(1 << 16);
	}
	MsgArgs args(uint64_t buf, uint32_t len, int64_t timeout_ms = -1)
	{
		MsgArgs m;
		m.user_data = ud++;
		m.addr = buf;
		m.len = len;
		if (timeout_ms >= 0)
			m.wait.deadline = w.clock.mono + timeout_ms * 1'000'000;
		return m;
	}
	long send(int64_t to, int64_t timeout_ms = -1)
	{
		MsgArgs m = args(abuf, 16, timeout_ms);
		kipc_cqe c{};
		return w.impl().mbox.send(*a.task, to, m, c);
	}
	long receive(int64_t from, int64_t timeout_ms = -1, kipc_cqe *out = nullptr)
	{
		MsgArgs m = args(bbuf, 64, timeout_ms);
		kipc_cqe c{};
		long r = w.impl().mbox.receive(*b.task, from, m, c);
		if (out)
			*out = c;
		return r;
	}
	void round()
	{
		KernelImpl &k = w.impl();
		/* a parked receive with a deadline (a timer), fed by a send */
		CHECK(receive(id, 1000) == -EQUEUED);
		CHECK(send(id) == 0);
		/* a receive_set (an array of wait entries), fed on its last mailbox */
		MsgArgs rs = args(bbuf, 64, 1000);
		kipc_cqe c{};
		CHECK(k.mbox.receive_set(*b.task, set, 3, rs, c) == -EQUEUED);
		CHECK(send(set[2]) == 0);
		/* a call with a deadline (a timer and a calls entry), its reply */
		MsgArgs call = args(abuf, 16, 1000);
		call.addr2 = rbuf;
		call.len2 = 64;
		CHECK(k.rpc.mbox_call(*a.task, id, call, c) == -EQUEUED);
		kipc_cqe got{};
		CHECK(receive(id, -1, &got) == 16);
		MsgArgs rep = args(bbuf, 8);
		CHECK(k.rpc.reply(*b.task, got.token, rep) == 0);
		/* a receive that times out */
		CHECK(receive(id, 1) == -EQUEUED);
		w.clock.mono += 2'000'000;
		k.run_timers();
		/* rendezvous: the send blocks (deadlock check), a receive takes it */
		CHECK(send(id0, 1000) == -EQUEUED);
		CHECK(receive(id0) == 16);
		/* a full mailbox: the second send blocks, the first receive refills */
		CHECK(send(id1) == 0);
		CHECK(send(id1, 1000) == -EQUEUED);
		CHECK(receive(id1) == 16);
		CHECK(receive(id1) == 16);
		/* a cancelled receive */
		MsgArgs cr = args(bbuf, 64, 1000);
		CHECK(k.mbox.receive(*b.task, id, cr, c) == -EQUEUED);
		CHECK(k.do_cancel(*b.task, cr.user_data, -ECANCELED) == 0);
		a.cq.clear();
		b.cq.clear();
	}
};

} // namespace

TEST_CASE("the hot path allocates nothing once the slabs have their chunks")
{
	World w(roomy_limits());
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(101);
	HotLoop h(w, a, b);
	for (int i = 0; i < 3; i++) /* the slabs and the maps' buckets grow */
		h.round();
	uint64_t news = g_news.load();
	uint64_t chunks = slab_total_bytes();
	for (int i = 0; i < 1000; i++)
		h.round();
	CHECK(g_news.load() - news == 0);
	CHECK(slab_total_bytes() == chunks);
	CHECK(w.impl().next_deadline() == INT64_MAX); /* every timer went */
}

TEST_CASE("the counting allocator sees a malloc where the core would make one")
{
	/* the test above could not fail if nothing were counted */
	uint64_t news = g_news.load();
	auto *v = new std::vector<int>(1);
	delete v;
	CHECK(g_news.load() - news == 2);
}
