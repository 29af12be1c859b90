// SPDX-License-Identifier: MIT
/* Receiving from a set of mailboxes (a Mach port set). */
#include "harness.h"

using namespace kt;

/* Two mailboxes of o (pid 100), m1 and m2, that a (101) sends to. */
struct TwoBoxes {
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t m1 = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666);
	int64_t m2 = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666);
};

TEST_CASE_FIXTURE(TwoBoxes, "receive_set takes the best message over all members, and reports its mailbox")
{
	CHECK(a.mbox_send(m1, "m1-old").res() == 0);
	CHECK(a.mbox_send(m2, "m2-new").res() == 0);
	CHECK(a.mbox_send(m2, "m2-prio", 0, 3).res() == 0);
	Op r = o.receive_set({m1, m2});
	CHECK(r.text() == "m2-prio");
	CHECK(r.cqe().source == m2);
	r = o.receive_set({m1, m2});
	CHECK(r.text() == "m1-old");
	CHECK(r.cqe().source == m1);
	r = o.receive_set({m2, m1});
	CHECK(r.text() == "m2-new");
	CHECK(o.receive_set({m1, m2}, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
}

TEST_CASE_FIXTURE(TwoBoxes, "a parked receive_set wakes once, for the first message on any member")
{
	Op r = o.receive_set({m1, m2});
	CHECK(mstat(o, m1).nreceivers == 1);
	CHECK(mstat(o, m2).nreceivers == 1);
	CHECK(a.mbox_send(m2, "on-m2").res() == 0);
	CHECK(r.text() == "on-m2");
	CHECK(r.cqes().size() == 1);
	CHECK(mstat(o, m1).nreceivers == 0);
	CHECK(a.mbox_send(m1, "on-m1").res() == 0);
	CHECK(mstat(o, m1).nmsg == 1); /* nobody took it twice */
	CHECK(mbox_drain(o, m1) == std::vector<std::string>{"on-m1"});
}

TEST_CASE("receive_set: argument errors")
{
	World w;
	Proc &o = w.spawn(100), &x = w.spawn(101);
	int64_t m1 = o.mbox_create();
	CHECK(o.receive_set({m1, m1}, 256, KIPC_F_NONBLOCK).res() == -EINVAL);
	CHECK(o.receive_set({m1, 12345}, 256, KIPC_F_NONBLOCK).res() == -EINVAL);
	CHECK(x.receive_set({m1}, 256, KIPC_F_NONBLOCK).res() == -EPERM);
	std::vector<int64_t> many(65, m1);
	CHECK(o.receive_set(many, 256, KIPC_F_NONBLOCK).res() == -EINVAL);
	kipc_sqe s{};
	__kipc_enc_receive_set(&s, 0, 0, 0, 0, KIPC_F_NONBLOCK);
	CHECK(o.now(s) == -EINVAL); /* empty set */
	s.len2 = 8;
	s.addr2 = o.mem.arena.size();
	CHECK(o.now(s) == -EFAULT);
	int64_t gone = o.mbox_create();
	CHECK(o.mbox_destroy(gone) == 0);
	CHECK(o.receive_set({m1, gone}, 256, KIPC_F_NONBLOCK).res() == -EIDRM);
}

TEST_CASE_FIXTURE(TwoBoxes, "a member destroyed while a receive_set waits: the receive fails EIDRM")
{
	Op r = o.receive_set({m1, m2});
	CHECK(o.mbox_destroy(m1) == 0);
	CHECK(r.res() == -EIDRM);
	CHECK(mstat(o, m2).nreceivers == 0);
	CHECK(a.mbox_send(m2, "kept").res() == 0);
	CHECK(mstat(o, m2).nmsg == 1);
	mbox_drain(o, m2);
}

TEST_CASE("receive_set with a timeout, and on a round-robin member")
{
	World w;
	Proc &o = w.spawn(100), &b = w.spawn(101), &s = w.spawn(102);
	int64_t rr = o.mbox_create(KIPC_CAP_DEFAULT, KIPC_POLICY_ROUND_ROBIN, 0, 0666);
	int64_t any = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666);
	CHECK(o.grant(rr, 101) == 0);
	Op r = o.receive_set({rr, any}, 256, 0, ms(2));
	Op s1 = s.mbox_send(rr, "rr-to-o");
	CHECK(s1.cqe().pid == 100);
	CHECK(r.text() == "rr-to-o");
	Op r2 = o.receive_set({rr, any}, 256, 0, ms(2));
	Op s2 = s.mbox_send(rr, "rr-to-b");
	CHECK(s2.cqe().pid == 101);
	CHECK(!r2.done());
	w.advance_ms(2);
	CHECK(r2.res() == -ETIMEDOUT);
	CHECK(b.mbox_receive(rr).text() == "rr-to-b");
}
