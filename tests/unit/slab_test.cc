// SPDX-License-Identifier: MIT
/*
 * kernel/ipc/slab.h on its own: handles, reuse, exhaustion (nullptr, the
 * callers' ENOMEM, nothing already allocated touched), memory given back
 * when chunks empty and under pressure; then the message store's memory
 * through the kernel: what a message costs and is charged, and that a
 * drained queue gives its chunks back.
 */
#include <cstring>
#include <map>
#include <set>
#include <vector>

#include <doctest/doctest.h>

#include "harness.h"

using namespace kipc;

TEST_CASE("slab: handles name their objects until freed; freed slots are reused")
{
	Slab s("test", 40);
	CHECK(s.objsize() == 40);
	std::vector<uint32_t> hs;
	std::set<void *> seen;
	for (uint32_t i = 0; i < 3 * s.per_chunk(); i++) {
		uint32_t h;
		void *p = s.alloc(&h);
		REQUIRE(p);
		CHECK(h != 0);
		CHECK(slab_at(h) == p);
		CHECK(seen.insert(p).second);
		memset(p, int(i & 0xff), 40);
		hs.push_back(h);
	}
	CHECK(s.live() == 3 * s.per_chunk());
	CHECK(s.chunks() == 3);
	for (size_t i = 0; i < hs.size(); i++) /* nothing overwritten */
		CHECK(static_cast<uint8_t *>(slab_at(hs[i]))[39] == uint8_t(i & 0xff));
	/* a freed slot comes back before a fresh one */
	void *p = slab_at(hs[5]);
	s.free(hs[5]);
	uint32_t h;
	CHECK(s.alloc(&h) == p);
	CHECK(h == hs[5]);
	for (uint32_t x : hs)
		s.free(x);
	CHECK(s.live() == 0);
}

TEST_CASE("slab: an emptied chunk goes back at once beyond one spare; shrink gives back the spare")
{
	Slab s("test", 64);
	const uint64_t before = slab_total_bytes();
	std::vector<uint32_t> hs(4 * s.per_chunk());
	for (uint32_t &h : hs)
		REQUIRE(s.alloc(&h));
	CHECK(s.chunks() == 4);
	CHECK(slab_total_bytes() == before + 4 * kSlabChunkBytes);
	for (uint32_t h : hs)
		s.free(h);
	CHECK(s.live() == 0);
	CHECK(s.chunks() == 1); /* one spare kept */
	CHECK(s.bytes() == kSlabChunkBytes);
	/* the spare serves the next allocation without a new chunk */
	uint32_t h;
	REQUIRE(s.alloc(&h));
	CHECK(s.chunks() == 1);
	s.free(h);
	/* under pressure the spare goes too (and other slabs' spares) */
	CHECK(slab_shrink_all() >= kSlabChunkBytes);
	CHECK(s.chunks() == 0);
	CHECK(s.bytes() == 0);
	CHECK(slab_total_bytes() <= before);
}

TEST_CASE("slab: exhaustion returns nullptr and loses nothing; a free makes room again")
{
	Slab s("test", 1024, false, 2); /* at most two chunks */
	std::vector<uint32_t> hs;
	for (;;) {
		uint32_t h;
		void *p = s.alloc(&h);
		if (!p)
			break;
		memcpy(p, &h, sizeof h);
		hs.push_back(h);
	}
	CHECK(hs.size() == 2 * s.per_chunk());
	CHECK(s.chunks() == 2);
	uint32_t h;
	CHECK(s.alloc(&h) == nullptr); /* still exhausted: no state changed by a failure */
	CHECK(s.live() == hs.size());
	for (uint32_t x : hs) { /* every object intact */
		uint32_t v;
		memcpy(&v, slab_at(x), sizeof v);
		CHECK(v == x);
	}
	s.free(hs.back());
	hs.pop_back();
	REQUIRE(s.alloc(&h));
	hs.push_back(h);
	for (uint32_t x : hs)
		s.free(x);
	CHECK(s.live() == 0);
}

TEST_CASE("slab: large objects get a chunk of their own, freed with them")
{
	Slab s("test-large", 0, true, 1);
	const uint64_t before = slab_total_bytes();
	uint32_t h, h2;
	auto *p = static_cast<uint8_t *>(s.alloc_large(100000, &h));
	REQUIRE(p);
	memset(p, 7, 100000);
	CHECK(slab_at(h) == p);
	CHECK(slab_total_bytes() > before + 100000);
	CHECK(s.alloc_large(10, &h2) == nullptr); /* its chunk limit */
	slab_free(h);
	CHECK(s.chunks() == 0);
	CHECK(slab_total_bytes() == before);
}

TEST_CASE("slab: pool allocator nodes come from a slab and go back to it")
{
	struct Node {
		char bytes[200];
	};
	Slab &ns = node_slab(sizeof(Node));
	uint64_t live = ns.live();
	PoolAlloc<Node> pa;
	std::vector<Node *> nodes;
	for (int i = 0; i < 1000; i++)
		nodes.push_back(pa.allocate(1));
	CHECK(ns.live() == live + 1000);
	Node *arr = pa.allocate(3); /* arrays: operator new, not the slab */
	CHECK(ns.live() == live + 1000);
	pa.deallocate(arr, 3);
	for (Node *n : nodes)
		pa.deallocate(n, 1);
	CHECK(ns.live() == live);
	/* and a map on it */
	{
		std::map<int, int, std::less<int>, PoolAlloc<std::pair<const int, int>>> m;
		uint64_t b = slab_total_bytes();
		for (int i = 0; i < 5000; i++)
			m[i] = i;
		CHECK(slab_total_bytes() > b);
	}
	slab_shrink_all();
}

TEST_CASE("messages: 44 bytes of header; charged exactly their slab objects")
{
	CHECK(kMessageOverhead == 44);
	CHECK(message_charge(0, false) == 44);
	CHECK(message_charge(64, false) == 44 + 64);
	CHECK(message_charge(65, false) == 44 + 80);     /* rounded to the class */
	CHECK(message_charge(1024, false) == 44 + 1024);
	CHECK(message_charge(64, true) == 44 + 64 + 40); /* and the extension */
	/* a large payload: its own malloc'd chunk (64-byte header, malloc's 8) */
	CHECK(message_charge(100000, false) == ((64 + 44 + 100000 + 8 + 15) & ~15ull));
}

TEST_CASE("messages: a message's handle is derived from its chunk and slot, whatever its slab")
{
	/* every size class, a large payload, with and without an extension */
	std::vector<Message *> ms;
	for (uint32_t len : {0u, 1u, 16u, 63u, 64u, 100u, 1000u, 4096u, 8192u, 8193u, 100000u})
		for (bool ext : {false, true})
			for (int i = 0; i < 3; i++) {
				Message *m = new_message(len, ext);
				REQUIRE(m);
				CHECK(uint32_t(m->len) == len);
				CHECK(msg_at(m->handle()) == m);
				CHECK((m->handle() >> kSlabSlotBits) == uint32_t(m->chunk));
				CHECK((m->ext() != nullptr) == ext);
				ms.push_back(m);
			}
	/* fields at their limits keep their values */
	Message *m = ms.front();
	m->seq = (1ull << 62) - 1;
	m->prio = KIPC_PRIO_MAX;
	m->where = MsgWhere::Pending;
	CHECK(uint64_t(m->seq) == (1ull << 62) - 1);
	CHECK(uint32_t(m->prio) == KIPC_PRIO_MAX);
	CHECK(MsgWhere(m->where) == MsgWhere::Pending);
	CHECK(msg_at(m->handle()) == m);
	m->where = MsgWhere::None;
	std::set<uint32_t> handles;
	for (Message *x : ms)
		CHECK(handles.insert(x->handle()).second);
	for (Message *x : ms)
		delete_message(x);
}

TEST_CASE("messages: a drained queue gives its memory back; the charge returns to 0")
{
	/* Room for n messages whatever the config (tiny: 4096 bytes a user). */
	Limits l = Limits::from_config();
	l.bytes_per_user = 1 << 20;
	kt::World w(l);
	kt::Proc &a = w.spawn(100);
	int64_t id = a.mbox_create(KIPC_UNBOUNDED, 0, 0, 0600, 64);
	REQUIRE(id > 0);
	/* the link's own state (Link::side) comes with its first use and
	 * stays with the mailbox: use it before counting the messages' */
	REQUIRE(a.mbox_receive(id, 64, KIPC_F_NONBLOCK).res() == -EAGAIN);
	slab_shrink_all();
	const uint64_t before = slab_total_bytes();
	const int n = 5000;
	for (int i = 0; i < n; i++)
		REQUIRE(a.mbox_send(id, std::string(64, 'x'), KIPC_F_NONBLOCK).res() == 0);
	CHECK(w.charged(1000) == n * message_charge(64, false));
	/* every message in a slab: n 108-byte objects in 64 KiB chunks */
	CHECK(slab_total_bytes() >= before + uint64_t(n) * 108);
	CHECK(slab_total_bytes() <= before + (uint64_t(n) * 108 / kSlabChunkBytes + 2) * kSlabChunkBytes);
	CHECK(kt::mbox_drain(a, id, 64).size() == n);
	CHECK(w.charged(1000) == 0);
	/* back to one spare chunk per slab used, and none after shrinking */
	CHECK(slab_total_bytes() <= before + 2 * kSlabChunkBytes);
	slab_shrink_all();
	CHECK(slab_total_bytes() <= before);
}
