// SPDX-License-Identifier: MIT
/* Messages: sizes, truncation, priorities, type selection. */
#include "harness.h"

using namespace kt;

TEST_CASE("variable size up to the link's msgsize; larger is EMSGSIZE")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666, 100);
	CHECK(a.mbox_send(id, std::string(100, 'x')).res() == 0);
	CHECK(a.mbox_send(id, std::string(101, 'x')).res() == -EMSGSIZE);
	/* default msgsize of a task queue */
	uint32_t dflt = w.limits.msgsize_default;
	CHECK(a.send(100, std::string(dflt, 'd')).res() == 0);
	CHECK(a.send(100, std::string(dflt + 1, 'd')).res() == -EMSGSIZE);
	/* the task queue's message has an extension (its route is indexed) */
	CHECK(w.charged(1000) == message_charge(100, false) + message_charge(dflt, true));
	mbox_drain(o, id, 100);
	drain(o, KIPC_ANY, dflt);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("fixed-size links: every message exactly msgsize, else EINVAL")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, KIPC_MBOX_FIXED, 0666, 16);
	CHECK((mstat(o, id).attr.flags & KIPC_MBOX_FIXED));
	CHECK(a.mbox_send(id, std::string(16, 'f')).res() == 0);
	CHECK(a.mbox_send(id, std::string(15, 'f')).res() == -EINVAL);
	CHECK(a.mbox_send(id, "").res() == -EINVAL);
	CHECK(a.mbox_send(id, std::string(17, 'f')).res() == -EMSGSIZE);
	CHECK(o.taskq_setattr(KIPC_CAP_DEFAULT, 8, KIPC_MBOX_FIXED) == 0);
	CHECK(a.send(100, "12345678").res() == 0);
	CHECK(a.send(100, "1234567").res() == -EINVAL);
	CHECK(mbox_drain(o, id).size() == 1);
	CHECK(drain(o) == std::vector<std::string>{"12345678"});
}

TEST_CASE("a zero-length message is legal")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	CHECK(a.send(200, "").res() == 0);
	Op r = b.receive(KIPC_ANY, 0);
	CHECK(r.res() == 0);
	CHECK(r.cqe().len == 0);
	CHECK(r.cqe().pid == 100);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("a receive buffer too small fails EMSGSIZE and leaves the message queued")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	CHECK(a.send(200, "0123456789").res() == 0);
	Op r = b.receive(KIPC_ANY, 4);
	CHECK(r.res() == -EMSGSIZE);
	kipc_taskq_stat st;
	CHECK(b.taskq_stat(&st) == 0);
	CHECK(st.nmsg == 1);
	CHECK(b.receive(KIPC_ANY, 10).text() == "0123456789");
}

TEST_CASE("a parked receiver with a small buffer fails EMSGSIZE; the message stays for the next")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101), &s = w.spawn(102);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666);
	CHECK(o.grant(id, 101) == 0);
	Op small = o.mbox_receive(id, 4);
	Op big = a.mbox_receive(id, 64);
	Op snd = s.mbox_send(id, "too-long-for-4");
	CHECK(snd.res() == 0);
	CHECK(small.res() == -EMSGSIZE);
	CHECK(big.text() == "too-long-for-4");
	CHECK(mstat(o, id).nmsg == 0);
}

TEST_CASE("TRUNC: a small buffer gets the head of the message and the flag")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	CHECK(a.send(200, "0123456789").res() == 0);
	Op r = b.receive(KIPC_ANY, 4, KIPC_F_TRUNC);
	CHECK(r.res() == 4);
	CHECK(r.text() == "0123");
	CHECK(r.cqe().len == 10);
	CHECK((r.cqe().flags & KIPC_CQE_F_TRUNC));
	CHECK(b.receive(KIPC_ANY, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("priorities: higher first, FIFO within a priority; out of range is EINVAL")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	REQUIRE(b.taskq_setattr(KIPC_UNBOUNDED) == 0);
	CHECK(a.send(200, "p0-a", 0, 0).res() == 0);
	CHECK(a.send(200, "p5-a", 0, 5).res() == 0);
	CHECK(a.send(200, "pmax", 0, KIPC_PRIO_MAX).res() == 0);
	CHECK(a.send(200, "p5-b", 0, 5).res() == 0);
	CHECK(a.send(200, "p0-b", 0, 0).res() == 0);
	CHECK(a.send(200, "bad", 0, KIPC_PRIO_MAX + 1).res() == -EINVAL);
	Op r = b.receive();
	CHECK(r.text() == "pmax");
	CHECK(r.cqe().prio == KIPC_PRIO_MAX);
	CHECK(drain(b) == std::vector<std::string>{"p5-a", "p5-b", "p0-a", "p0-b"});
}

TEST_CASE("priorities order blocked senders too")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101), &b = w.spawn(102);
	int64_t id = full_mbox(o, a, "q");
	Op lo = a.mbox_send(id, "low", 0, 1);
	Op hi = b.mbox_send(id, "high", 0, 9);
	CHECK(o.mbox_receive(id).text() == "q");
	CHECK(hi.res() == 0);
	CHECK(!lo.done());
	CHECK(o.mbox_receive(id).text() == "high");
	CHECK(lo.res() == 0);
	CHECK(o.mbox_receive(id).text() == "low");
}

TEST_CASE("receive from Q respects priority among Q's messages")
{
	World w;
	Proc &a = w.spawn(100), &q = w.spawn(101), &b = w.spawn(200);
	REQUIRE(b.taskq_setattr(KIPC_UNBOUNDED) == 0);
	CHECK(q.send(200, "q-low", 0, 1).res() == 0);
	CHECK(a.send(200, "a-high", 0, 9).res() == 0);
	CHECK(q.send(200, "q-high", 0, 7).res() == 0);
	CHECK(b.receive(101).text() == "q-high");
	CHECK(b.receive(101).text() == "q-low");
	CHECK(b.receive().text() == "a-high");
}

TEST_CASE("type selection: > 0 exact, < 0 lowest type <= |T|, EXCEPT any other, 0 any")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	REQUIRE(b.taskq_setattr(KIPC_UNBOUNDED) == 0);
	auto s = [&](const char *m, int64_t type, uint16_t prio = 0) {
		REQUIRE(a.send(200, m, 0, prio, type).res() == 0);
	};
	s("t3", 3);
	s("t1", 1);
	s("t2", 2);
	s("t3b", 3);
	s("t5", 5);
	auto recv = [&](uint32_t flags, int64_t type) {
		Op r = b.receive(KIPC_ANY, 256, flags | KIPC_F_NONBLOCK, type);
		return r.res() < 0 ? "err" + std::to_string(r.res()) : r.text();
	};
	CHECK(recv(KIPC_F_TYPE, 3) == "t3");
	CHECK(recv(KIPC_F_TYPE, 4) == "err" + std::to_string(-EAGAIN));
	CHECK(recv(KIPC_F_TYPE, -2) == "t1");
	CHECK(recv(KIPC_F_TYPE, -2) == "t2");
	CHECK(recv(KIPC_F_TYPE, -2) == "err" + std::to_string(-EAGAIN));
	CHECK(recv(KIPC_F_TYPE | KIPC_F_EXCEPT, 3) == "t5");
	CHECK(recv(KIPC_F_TYPE | KIPC_F_EXCEPT, 3) == "err" + std::to_string(-EAGAIN));
	CHECK(recv(KIPC_F_TYPE, 0) == "t3b");
	Op r = b.receive(KIPC_ANY, 256, KIPC_F_NONBLOCK);
	CHECK(r.res() == -EAGAIN);
}

TEST_CASE("type selection honours priority within the selected type")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	REQUIRE(b.taskq_setattr(KIPC_UNBOUNDED) == 0);
	CHECK(a.send(200, "t1-lo", 0, 0, 1).res() == 0);
	CHECK(a.send(200, "t2-hi", 0, 9, 2).res() == 0);
	CHECK(a.send(200, "t1-hi", 0, 5, 1).res() == 0);
	CHECK(b.receive(KIPC_ANY, 256, KIPC_F_TYPE, 1).text() == "t1-hi");
	CHECK(b.receive(KIPC_ANY, 256, KIPC_F_TYPE | KIPC_F_EXCEPT, 2).text() == "t1-lo");
	Op r = b.receive();
	CHECK(r.text() == "t2-hi");
	CHECK(r.cqe().type == 2);
}

TEST_CASE("a parked typed receive waits for a matching type")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666);
	Op r = o.mbox_receive(id, 256, KIPC_F_TYPE, 7);
	CHECK(a.mbox_send(id, "t6", 0, 0, 6).res() == 0);
	CHECK(!r.done());
	CHECK(a.mbox_send(id, "t7", 0, 0, 7).res() == 0);
	CHECK(r.text() == "t7");
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"t6"});
}

TEST_CASE("type selector misuse is EINVAL")
{
	World w;
	Proc &a = w.spawn(100);
	CHECK(a.receive(KIPC_ANY, 256, KIPC_F_EXCEPT | KIPC_F_NONBLOCK, 3).res() == -EINVAL);
	CHECK(a.receive(KIPC_ANY, 256, KIPC_F_TYPE | KIPC_F_EXCEPT | KIPC_F_NONBLOCK, -3).res() ==
	      -EINVAL);
	CHECK(a.receive(100, 256, KIPC_F_TYPE | KIPC_F_NONBLOCK, 3).res() == -EINVAL);
	CHECK(a.receive_set({1}, 256, KIPC_F_TYPE | KIPC_F_NONBLOCK).res() == -EINVAL);
}
