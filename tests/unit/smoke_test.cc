// SPDX-License-Identifier: MIT
/* First contact: a direct send and receive through the syscall layer. */
#include "harness.h"

using namespace kt;

TEST_CASE("direct send then receive delivers the payload and the sender")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	Op s = a.send(200, "hello", 0, 0, 7);
	CHECK(s.res() == 0);
	Op r = b.receive();
	CHECK(r.res() == 5);
	CHECK(r.text() == "hello");
	CHECK(r.cqe().pid == 100);
	CHECK(r.cqe().type == 7);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE_FIXTURE(OneTask, "unknown syscall numbers fail ENOSYS")
{
	s.opcode = KIPC_NR_SYSCALLS;
	CHECK(a.now(s) == -ENOSYS);
	s.opcode = 255;
	CHECK(a.now(s) == -ENOSYS);
}
