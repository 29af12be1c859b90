// SPDX-License-Identifier: MIT
/* Multiple receivers on one mailbox: any, pair, exclusive, round-robin. */
#include "harness.h"

using namespace kt;

/* A mailbox of o's (mode 0622) with the policy, that pids 101 and 102
 * hold receive rights to as well. */
static int64_t held_by_three(Proc &o, uint32_t policy)
{
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, policy, 0, 0622);
	REQUIRE(id > 0);
	CHECK(o.grant(id, 101) == 0);
	CHECK(o.grant(id, 102) == 0);
	return id;
}

TEST_CASE("policy any: the longest-waiting receiver gets the next message")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101), &b = w.spawn(102), &s = w.spawn(103);
	int64_t id = held_by_three(o, KIPC_POLICY_ANY);
	Op rb = b.mbox_receive(id), ra = a.mbox_receive(id), ro = o.mbox_receive(id);
	Op s1 = s.mbox_send(id, "first");
	CHECK(s1.res() == 0);
	CHECK(s1.cqe().pid == 102); /* the sender learns who took it */
	CHECK(rb.text() == "first");
	CHECK(!ra.done());
	CHECK(s.mbox_send(id, "second").res() == 0);
	CHECK(ra.text() == "second");
	CHECK(s.mbox_send(id, "third").res() == 0);
	CHECK(ro.text() == "third");
	CHECK(mstat(o, id).nmsg == 0);
}

TEST_CASE("policy pair: the first sender and first receiver bind the link, others get EPERM")
{
	World w;
	Proc &o = w.spawn(100), &r2 = w.spawn(101), &s1 = w.spawn(102), &s2 = w.spawn(103);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, KIPC_POLICY_PAIR, 0, 0622);
	CHECK(o.grant(id, 101) == 0);
	Ledger l;
	l.sent_ok(s1.mbox_send(id, "p1"), "p1");
	CHECK(s2.mbox_send(id, "intruder").res() == -EPERM);
	CHECK(s2.mbox_call(id, "intruder").res() == -EPERM);
	Op r = o.mbox_receive(id);
	l.got(r);
	CHECK(r.text() == "p1");
	CHECK(r2.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EPERM);
	l.sent_ok(s1.mbox_send(id, "p2"), "p2");
	r = o.mbox_receive(id);
	l.got(r);
	CHECK(l.balanced());
	/* a binding whose task exited no longer binds */
	w.exit(s1);
	CHECK(s2.mbox_send(id, "new-partner").res() == 0);
	CHECK(o.mbox_receive(id).text() == "new-partner");
}

TEST_CASE("policy exclusive: a second concurrent receiver gets EBUSY")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101), &s = w.spawn(102);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, KIPC_POLICY_EXCLUSIVE, 0, 0622);
	CHECK(o.grant(id, 101) == 0);
	Op inside = o.mbox_receive(id);
	CHECK(!inside.done());
	CHECK(a.mbox_receive(id).res() == -EBUSY);
	CHECK(a.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EBUSY);
	CHECK(a.receive_set({id}).res() == -EBUSY);
	/* the same task may have several receives inside */
	Op inside2 = o.mbox_receive(id);
	CHECK(!inside2.done());
	CHECK(s.mbox_send(id, "x").res() == 0);
	CHECK(inside.text() == "x");
	CHECK(a.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EBUSY);
	CHECK(o.cancel(inside2) == 0);
	CHECK(inside2.res() == -ECANCELED);
	/* nobody inside: another holder may enter */
	CHECK(s.mbox_send(id, "y").res() == 0);
	CHECK(a.mbox_receive(id).text() == "y");
	Op ra = a.mbox_receive(id, 256, 0, 0, ms(5));
	CHECK(o.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EBUSY);
	w.advance_ms(5);
	CHECK(ra.res() == -ETIMEDOUT);
	CHECK(o.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
}

TEST_CASE("policy round-robin: messages rotate through holders and the sender is told who")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101), &b = w.spawn(102), &s = w.spawn(103);
	int64_t id = held_by_three(o, KIPC_POLICY_ROUND_ROBIN);
	const pid_t order[] = {100, 101, 102, 100, 101, 102};
	Ledger l;
	std::map<pid_t, std::vector<std::string>> expect;
	size_t n = std::min<size_t>(6, w.limits.msg_default);
	for (size_t i = 0; i < n; i++) {
		std::string m = "rr" + std::to_string(i);
		Op op = s.mbox_send(id, m);
		REQUIRE(op.res() == 0);
		CHECK(op.cqe().pid == order[i]);
		l.sent_ok(m);
		expect[order[i]].push_back(m);
	}
	/* each holder receives exactly its share, nothing else */
	for (Proc *p : {&b, &a, &o}) {
		auto got = mbox_drain(*p, id);
		CHECK(got == expect[p->pid]);
		l.got(got);
	}
	CHECK(l.balanced());
	/* a holder waiting gets its assignment at once */
	Op rb = b.mbox_receive(id);
	Op ra = a.mbox_receive(id);
	Op s1 = s.mbox_send(id, "next"); /* rotation continues where it was */
	CHECK(s1.res() == 0);
	pid_t to = s1.cqe().pid;
	CHECK((to == 100 || to == 101 || to == 102));
	if (to == 101) {
		CHECK(ra.text() == "next");
		CHECK(!rb.done());
	}
	CHECK(a.cancel(ra) >= -ENOENT);
	CHECK(b.cancel(rb) >= -ENOENT);
	mbox_drain(o, id);
}

TEST_CASE("round-robin: a holder's share goes back to the pool when its right is revoked")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101), &s = w.spawn(103);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, KIPC_POLICY_ROUND_ROBIN, 0, 0622);
	CHECK(o.grant(id, 101) == 0);
	Op s1 = s.mbox_send(id, "to-o"), s2 = s.mbox_send(id, "to-a");
	CHECK(s1.cqe().pid == 100);
	CHECK(s2.cqe().pid == 101);
	CHECK(o.revoke(id, 101) == 0);
	CHECK(a.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EPERM);
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"to-o", "to-a"});
}

TEST_CASE("round-robin: the sender is told when the rotation picks the sender itself")
{
	World w;
	Proc &o = w.spawn(100);
	w.spawn(101);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, KIPC_POLICY_ROUND_ROBIN, 0, 0622);
	CHECK(o.grant(id, 101) == 0);
	Op s1 = o.mbox_send(id, "mine");
	CHECK(s1.res() == 0);
	CHECK(s1.cqe().pid == 100);
	CHECK(o.mbox_receive(id, 256, KIPC_F_NONBLOCK).text() == "mine");
}

TEST_CASE("round-robin mailboxes take no type selector")
{
	World w;
	Proc &o = w.spawn(100);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, KIPC_POLICY_ROUND_ROBIN);
	CHECK(o.mbox_receive(id, 256, KIPC_F_TYPE | KIPC_F_NONBLOCK, 1).res() == -EINVAL);
}

TEST_CASE("policy pair: a send or receive that fails binds nothing")
{
	World w;
	Proc &o = w.spawn(100), &r2 = w.spawn(101), &s1 = w.spawn(102), &s2 = w.spawn(103);
	int64_t id = o.mbox_create(1, KIPC_POLICY_PAIR, 0, 0622, 16);
	CHECK(o.grant(id, 101) == 0);
	/* a receive that found nothing is not the first receiver */
	CHECK(r2.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
	CHECK(r2.receive_set({id}, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
	/* a rejected send is not the first sender */
	CHECK(s1.mbox_send(id, std::string(17, 'x')).res() == -EMSGSIZE);
	CHECK(s1.mbox_call(id, std::string(17, 'x')).res() == -EMSGSIZE);
	CHECK(s2.mbox_send(id, "s2-first").res() == 0);
	CHECK(s1.mbox_send(id, "s1", KIPC_F_NONBLOCK).res() == -EPERM);
	Op r = o.mbox_receive(id);
	CHECK(r.text() == "s2-first");
	CHECK(r2.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EPERM);
	/* a parked one binds: it is inside */
	Op parked = s2.mbox_send(id, "fill");
	CHECK(parked.res() == 0);
	Op blocked = s2.mbox_send(id, "blocked");
	CHECK(!blocked.done());
	CHECK(s1.mbox_send(id, "s1", KIPC_F_NONBLOCK).res() == -EPERM);
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"fill", "blocked"});
}

TEST_CASE("round-robin: a send that fails does not move the rotation")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101), &s = w.spawn(103);
	int64_t id = o.mbox_create(1, KIPC_POLICY_ROUND_ROBIN, 0, 0622);
	CHECK(o.grant(id, 101) == 0);
	Op first = s.mbox_send(id, "m1");
	REQUIRE(first.res() == 0);
	CHECK(first.cqe().pid == 100);
	CHECK(s.mbox_send(id, "full", KIPC_F_NONBLOCK).res() == -EAGAIN);
	CHECK(o.mbox_receive(id).text() == "m1");
	Op next = s.mbox_send(id, "m2");
	REQUIRE(next.res() == 0);
	CHECK(next.cqe().pid == 101); /* the failed send took no turn */
	CHECK(a.mbox_receive(id).text() == "m2");
}

TEST_CASE("policy pair: a destroyed mailbox's binding does not pass to the next one")
{
	World w;
	Proc &o = w.spawn(100), &s1 = w.spawn(102), &s2 = w.spawn(103);
	for (int round = 0; round < 2; round++) {
		int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, KIPC_POLICY_PAIR, 0, 0622);
		Proc &s = round ? s2 : s1; /* a fresh mailbox binds its own first sender */
		CHECK(s.mbox_send(id, "first").res() == 0);
		CHECK((round ? s1 : s2).mbox_send(id, "other", KIPC_F_NONBLOCK).res() == -EPERM);
		CHECK(o.mbox_receive(id).text() == "first");
		CHECK(o.mbox_destroy(id) == 0);
	}
}
