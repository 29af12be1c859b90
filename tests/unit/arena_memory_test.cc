// SPDX-License-Identifier: MIT
/*
 * kipcd's ArenaMemory (kernel/daemon/wire.h): the bounds check every
 * sqe.addr/len of a process goes through. The harness's fake processes
 * use it too, so every unit test runs it; here are its edges.
 */
#include "harness.h"

using namespace kt;

TEST_CASE("ArenaMemory: [addr, addr + len) must lie in the arena, without overflow")
{
	uint8_t buf[256] = {};
	kipcd::ArenaMemory m(buf + 64, 128);
	CHECK(m.access_ok(0, 128));
	CHECK(m.access_ok(128, 0));
	CHECK(m.access_ok(127, 1));
	CHECK(m.access_ok(0, 0));
	CHECK(!m.access_ok(128, 1));
	CHECK(!m.access_ok(1, 128));
	CHECK(!m.access_ok(129, 0));
	CHECK(!m.access_ok(0, 129));
	CHECK(!m.access_ok(UINT64_MAX, 2));     /* addr + len wraps */
	CHECK(!m.access_ok(2, UINT64_MAX));
	CHECK(!m.access_ok(UINT64_MAX, UINT64_MAX));
	CHECK(!m.access_ok(UINT64_MAX - 64, 128));
}

TEST_CASE("ArenaMemory: a copy out of bounds fails EFAULT and touches nothing")
{
	uint8_t buf[256];
	memset(buf, 0xaa, sizeof buf);
	kipcd::ArenaMemory m(buf + 64, 128);
	uint8_t src[8] = {1, 2, 3, 4, 5, 6, 7, 8}, dst[8] = {};
	CHECK(m.copy_to_user(120, src, 8) == 0);
	CHECK(buf[64 + 127] == 8);
	CHECK(m.copy_from_user(dst, 120, 8) == 0);
	CHECK(dst[7] == 8);
	CHECK(m.copy_to_user(121, src, 8) == -EFAULT);
	CHECK(m.copy_to_user(UINT64_MAX - 3, src, 8) == -EFAULT);
	CHECK(m.copy_from_user(dst, 128, 1) == -EFAULT);
	CHECK(m.copy_to_user(128, src, 0) == 0); /* empty at the end: fine */
	for (int i = 0; i < 64; i++) /* neither guard band was written */
		CHECK((buf[i] == 0xaa && buf[192 + i] == 0xaa));
	CHECK(buf[64 + 120] == 1);
}

TEST_CASE("ArenaMemory: the core refuses a send whose payload leaves the arena")
{
	World w;
	Proc &a = w.spawn(100);
	w.spawn(101);
	uint64_t size = a.mem.arena.size();
	kipc_sqe s{};
	s.opcode = KIPC_SYS_send;
	s.target = 101;
	s.addr = size - 4;
	s.len = 8;
	CHECK(a.submit(s).res() == -EFAULT);
	s.addr = UINT64_MAX - 2; /* wraps */
	s.len = 8;
	CHECK(a.submit(s).res() == -EFAULT);
	s.addr = size - 8; /* the last bytes: fine */
	CHECK(a.submit(s).res() == 0);
}
