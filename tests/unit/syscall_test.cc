// SPDX-License-Identifier: MIT
/* The syscall layer: flags, reserved fields, user addresses, numbers. */
#include "harness.h"

using namespace kt;

TEST_CASE("unknown flags are EINVAL for every message call")
{
	World w;
	Proc &a = w.spawn(100);
	int64_t id = a.mbox_create();
	const uint32_t bogus = 1u << 20;
	CHECK(a.send(100, "x", bogus).res() == -EINVAL);
	CHECK(a.send(100, "x", KIPC_F_TRUNC).res() == -EINVAL);    /* receive-only flag */
	CHECK(a.receive(KIPC_ANY, 256, KIPC_F_CACHE).res() == -EINVAL); /* send-only flag */
	CHECK(a.mbox_send(id, "x", bogus).res() == -EINVAL);
	CHECK(a.mbox_receive(id, 256, bogus).res() == -EINVAL);
	CHECK(a.call(100, "x", 256, KIPC_F_CACHE).res() == -EINVAL);
	CHECK(a.receive_set({id}, 256, bogus).res() == -EINVAL);
	CHECK(a.mbox_open("/x", KIPC_O_CREAT | KIPC_F_NONBLOCK) == -EINVAL);
	kipc_sqe s{};
	s.opcode = KIPC_SYS_nop;
	s.flags = 1;
	CHECK(a.now(s) == -EINVAL);
	s.opcode = KIPC_SYS_mbox_destroy;
	s.target = id;
	CHECK(a.now(s) == -EINVAL);
	s.opcode = KIPC_SYS_mbox_grant;
	s.pid = 100;
	CHECK(a.now(s) == -EINVAL);
	s.opcode = KIPC_SYS_taskq_stat;
	CHECK(a.now(s) == -EINVAL);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("ABSTIME together with REALTIME is EINVAL")
{
	World w;
	Proc &a = w.spawn(100);
	CHECK(a.receive(KIPC_ANY, 256, KIPC_F_TIMEOUT | KIPC_F_ABSTIME | KIPC_F_REALTIME, 0,
			w.clock.real + ms(5))
		      .res() == -EINVAL);
}

TEST_CASE_FIXTURE(OneTask, "reserved fields: sqe.rsvd0 must be zero; attr reserved fields are ignored, stat's zeroed")
{
	s.opcode = KIPC_SYS_nop;
	s.rsvd0 = 1;
	CHECK(a.now(s) == -EINVAL);
	kipc_mbox_attr at{};
	at.capacity = KIPC_CAP_DEFAULT;
	at.mode = 0600;
	for (uint32_t &r : at.rsvd)
		r = 0xdeadbeef;
	int64_t id = a.mbox_open("", 0, &at);
	CHECK(id > 0);
	kipc_mbox_stat st;
	std::memset(&st, 0xff, sizeof(st));
	CHECK(a.mbox_stat(id, &st) == 0);
	for (uint32_t r : st.attr.rsvd)
		CHECK(r == 0);
	for (uint64_t r : st.rsvd)
		CHECK(r == 0);
	CHECK(st.rsvd0 == 0);
	CHECK(a.send(100, "x").res() == 0);
	Op r = a.receive();
	CHECK(r.cqe().lap == 0);
}

TEST_CASE("pid arguments out of range are EINVAL")
{
	World w;
	Proc &a = w.spawn(100);
	int64_t id = a.mbox_create();
	CHECK(a.grant(id, 0) == -EINVAL);
	CHECK(a.grant(id, -1) == -EINVAL);
	CHECK(a.set_owner(id, 0) == -EINVAL);
	CHECK(a.revoke(id, -7) == -EINVAL);
	CHECK(a.call(0, "x").res() == -EINVAL);
	CHECK(a.send(int64_t(INT32_MAX) + 1, "x").res() == -EINVAL);
}

TEST_CASE("EFAULT: every address must lie inside the caller's arena")
{
	World w;
	Proc &a = w.spawn(100);
	const uint64_t end = a.mem.arena.size();
	int64_t id = a.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666);
	auto msg = [&](uint8_t op, int64_t target, uint64_t addr, uint32_t len) {
		kipc_sqe s{}; /* send and receive share the layout */
		__kipc_enc_send(&s, op, target, addr, len, 0, KIPC_F_NONBLOCK);
		return a.now(s);
	};
	CHECK(msg(KIPC_SYS_send, 100, end - 2, 4) == -EFAULT);
	CHECK(msg(KIPC_SYS_send, 100, UINT64_MAX - 1, 4) == -EFAULT);
	CHECK(msg(KIPC_SYS_mbox_send, id, end, 1) == -EFAULT);
	CHECK(msg(KIPC_SYS_receive, 0, end - 1, 2) == -EFAULT);
	CHECK(msg(KIPC_SYS_mbox_receive, id, end + 100, 0) == -EFAULT);
	CHECK(msg(KIPC_SYS_send, 100, end, 0) == 0); /* empty, at the very end: fine */
	kipc_sqe s{};
	s.opcode = KIPC_SYS_mbox_open;
	s.flags = KIPC_O_CREAT;
	s.addr = end - 1;
	s.len = 4;
	CHECK(a.now(s) == -EFAULT);
	s.addr = a.put("/ok");
	s.len = 3;
	s.addr2 = end - 8;
	s.len2 = sizeof(kipc_mbox_attr);
	CHECK(a.now(s) == -EFAULT);
	s = kipc_sqe{};
	s.opcode = KIPC_SYS_mbox_stat;
	s.target = id;
	s.addr2 = end - 8;
	s.len2 = sizeof(kipc_mbox_stat);
	CHECK(a.now(s) == -EFAULT);
	s.opcode = KIPC_SYS_taskq_stat;
	s.target = 0;
	s.len2 = sizeof(kipc_taskq_stat);
	CHECK(a.now(s) == -EFAULT);
	s.opcode = KIPC_SYS_reply;
	s.target = 1;
	s.addr = end;
	s.len = 8;
	s.addr2 = 0;
	s.len2 = 0;
	CHECK(a.now(s) == -EFAULT);
	CHECK(drain(a) == std::vector<std::string>{""}); /* the empty one */
	CHECK(w.charged(1000) == 0);
}

TEST_CASE_FIXTURE(OneTask, "struct arguments shorter than the struct are EINVAL")
{
	s.opcode = KIPC_SYS_taskq_stat;
	s.addr2 = a.mem.alloc(sizeof(kipc_taskq_stat));
	s.len2 = sizeof(kipc_taskq_stat) - 1;
	CHECK(a.now(s) == -EINVAL);
	s.opcode = KIPC_SYS_taskq_setattr;
	s.len2 = sizeof(kipc_mbox_attr) - 1;
	CHECK(a.now(s) == -EINVAL);
	s.opcode = KIPC_SYS_mbox_stat;
	s.target = a.mbox_create();
	s.len2 = sizeof(kipc_mbox_stat) - 1;
	CHECK(a.now(s) == -EINVAL);
	s.opcode = KIPC_SYS_mbox_setattr;
	s.len = KIPC_SET_MODE;
	s.len2 = sizeof(kipc_mbox_attr) - 1;
	CHECK(a.now(s) == -EINVAL);
	s.len = 0; /* empty mask */
	s.len2 = sizeof(kipc_mbox_attr);
	CHECK(a.now(s) == -EINVAL);
}

TEST_CASE_FIXTURE(OneTask, "ENOSYS for numbers past the table; every number has a name")
{
	s.opcode = KIPC_NR_SYSCALLS;
	CHECK(a.now(s) == -ENOSYS);
#define KIPC_CHECK_NAME_(nr, name, family) CHECK(std::string(syscall_name(nr)) == #name);
	KIPC_ENUMERATE_SYSCALLS(KIPC_CHECK_NAME_)
#undef KIPC_CHECK_NAME_
	CHECK(syscall_name(KIPC_NR_SYSCALLS) == nullptr);
	CHECK(std::string(syscall_name(KIPC_SYS_mbox_receive_set)) == "mbox_receive_set");
}

TEST_CASE("the completion echoes user_data and reports the sequence number")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	Op s = a.send(200, "seq");
	Op r = b.receive();
	CHECK(s.cqe().user_data == s.ud);
	CHECK(r.cqe().user_data == r.ud);
	CHECK(s.cqe().seq == r.cqe().seq);
	CHECK(s.cqe().seq != 0);
}
