// SPDX-License-Identifier: MIT
/* Direct naming: task queues, symmetric and asymmetric receive, ESRCH. */
#include "harness.h"

using namespace kt;

/* Two senders, a (pid 100) and b (101), and a receiver c (200) whose
 * queue holds all they send (tiny configs queue 2). */
struct ToC {
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(101), &c = w.spawn(200);
	ToC() { REQUIRE(c.taskq_setattr(KIPC_UNBOUNDED) == 0); }
};

TEST_CASE_FIXTURE(ToC, "asymmetric receive(ANY) takes the oldest message and reports its sender")
{
	Ledger l;
	l.sent_ok(b.send(200, "from-b-1"), "from-b-1");
	l.sent_ok(a.send(200, "from-a-1"), "from-a-1");
	l.sent_ok(b.send(200, "from-b-2"), "from-b-2");
	Op r1 = c.receive(KIPC_ANY), r2 = c.receive(KIPC_ANY), r3 = c.receive(KIPC_ANY);
	CHECK(r1.text() == "from-b-1");
	CHECK(r1.cqe().pid == 101);
	CHECK(r1.cqe().source == 0);
	CHECK(r2.text() == "from-a-1");
	CHECK(r2.cqe().pid == 100);
	CHECK(r3.text() == "from-b-2");
	l.got(r1), l.got(r2), l.got(r3);
	CHECK(l.balanced());
	CHECK(w.charged(1000) == 0);
}

TEST_CASE_FIXTURE(ToC, "symmetric receive(Q) takes only Q's messages and leaves the others in place")
{
	Ledger l;
	l.sent_ok(a.send(200, "a1"), "a1");
	l.sent_ok(b.send(200, "b1"), "b1");
	l.sent_ok(a.send(200, "a2"), "a2");
	l.sent_ok(b.send(200, "b2"), "b2");
	Op r = c.receive(101);
	CHECK(r.text() == "b1");
	CHECK(r.cqe().pid == 101);
	l.got(r);
	r = c.receive(101);
	CHECK(r.text() == "b2");
	l.got(r);
	CHECK(c.receive(101, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
	/* a's messages are still there, in order */
	auto rest = drain(c);
	CHECK(rest == std::vector<std::string>{"a1", "a2"});
	l.got(rest);
	CHECK(l.balanced());
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("a blocked receive(Q) ignores messages from others and wakes for Q")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(101), &c = w.spawn(200);
	Op r = c.receive(101);
	CHECK(!r.done());
	CHECK(a.send(200, "not-for-r").res() == 0);
	CHECK(!r.done());
	CHECK(b.send(200, "for-r").res() == 0);
	REQUIRE(r.done());
	CHECK(r.text() == "for-r");
	CHECK(drain(c) == std::vector<std::string>{"not-for-r"});
}

TEST_CASE("receive(self) takes messages the task sent to itself")
{
	World w;
	Proc &a = w.spawn(100);
	CHECK(a.send(100, "me").res() == 0);
	Op r = a.receive(100);
	CHECK(r.text() == "me");
	CHECK(r.cqe().pid == 100);
}

TEST_CASE("sending to a live unattached process creates its queue; it finds the message on attach")
{
	World w;
	Proc &a = w.spawn(100);
	Proc &child = w.fork(300);
	Op s = a.send(300, "welcome");
	CHECK(s.res() == 0);
	CHECK(w.host.watched.count(300) == 1);
	CHECK(w.charged(1000) > 0);
	w.attach(child);
	CHECK(w.host.watched.count(300) == 0);
	Op r = child.receive();
	CHECK(r.text() == "welcome");
	CHECK(r.cqe().pid == 100);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("the queue of an unattached process is freed when it exits without attaching")
{
	World w;
	Proc &a = w.spawn(100);
	Proc &child = w.fork(300);
	CHECK(a.send(300, "lost-with-child").res() == 0);
	CHECK(w.impl().find_task(300) != nullptr);
	w.exit(child);
	CHECK(w.impl().find_task(300) == nullptr);
	CHECK(w.host.watched.count(300) == 0);
	CHECK(w.charged(1000) == 0);
	CHECK(a.send(300, "again").res() == -ESRCH);
}

TEST_CASE("a sender blocked on an unattached process's full queue fails ESRCH when it exits")
{
	Limits lim = Limits::from_config();
	lim.taskq_capacity = 0;
	World w(lim);
	Proc &a = w.spawn(100);
	Proc &child = w.fork(300);
	Op s = a.send(300, "blocked");
	CHECK(!s.done());
	w.exit(child);
	CHECK(s.res() == -ESRCH);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("sending to a pid with no live process fails ESRCH")
{
	World w;
	Proc &a = w.spawn(100);
	CHECK(a.send(4242, "nobody").res() == -ESRCH);
	CHECK(a.call(4242, "nobody").res() == -ESRCH);
	CHECK(w.impl().find_task(4242) == nullptr);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("sending to a process that exited fails ESRCH")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	w.exit(b);
	CHECK(a.send(200, "late").res() == -ESRCH);
}

TEST_CASE("receive(Q) for a pid that does not exist fails ESRCH at once")
{
	World w;
	Proc &a = w.spawn(100);
	CHECK(a.receive(4242).res() == -ESRCH);
	CHECK(a.receive(4242, 256, 0, 0, ms(10)).res() == -ESRCH);
}

TEST_CASE("a blocked receive(Q) fails ESRCH as soon as Q exits")
{
	World w;
	Proc &a = w.spawn(100), &q = w.spawn(101);
	Op r = a.receive(101);
	CHECK(!r.done());
	w.exit(q);
	REQUIRE(r.done());
	CHECK(r.res() == -ESRCH);
	CHECK(r.cqes().size() == 1);
	/* and a later receive(Q) does not hang either */
	CHECK(a.receive(101).res() == -ESRCH);
}

TEST_CASE("a blocked receive(Q) on an unattached Q fails ESRCH when Q exits")
{
	World w;
	Proc &a = w.spawn(100);
	Proc &q = w.fork(101);
	Op r = a.receive(101);
	CHECK(!r.done());
	w.exit(q);
	CHECK(r.res() == -ESRCH);
}

TEST_CASE("messages Q sent before exiting are still received by receive(Q)")
{
	World w;
	Proc &a = w.spawn(100), &q = w.spawn(101);
	CHECK(q.send(100, "last-words").res() == 0);
	w.exit(q);
	Op r = a.receive(101);
	CHECK(r.text() == "last-words");
	CHECK(a.receive(101).res() == -ESRCH);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("receive from an invalid pid is EINVAL; attach twice is EEXIST")
{
	World w;
	Proc &a = w.spawn(100);
	CHECK(a.receive(-1).res() == -EINVAL);
	CHECK(a.send(-5, "x").res() == -EINVAL);
	CHECK(a.send(0, "x").res() == -EINVAL);
	Task *t = nullptr;
	CHECK(w.k->attach(Creds{100, 1000, 1000}, &a.mem.user, "dup", &a, &t) == -EEXIST);
}
