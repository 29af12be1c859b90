// SPDX-License-Identifier: MIT
/* Tracepoints and trace listeners. */
#include "intro_helpers.h"

using namespace kt;

TEST_CASE("trace: nobody listens by default; open and close count listeners")
{
	World w;
	Proc &t = w.spawn(50);
	CHECK(w.impl().tracer.nlisteners == 0);
	REQUIRE(trace_open(t) == 0);
	CHECK(w.impl().tracer.nlisteners == 1);
	CHECK(trace_open(t) == -EBUSY);
	CHECK(sysinfo(t).ntracers == 1);
	REQUIRE(trace_close(t) == 0);
	CHECK(trace_close(t) == -EBADF);
	CHECK(trace_read(t, 8, KIPC_F_NONBLOCK).res() == -EBADF);
	CHECK(w.impl().tracer.nlisteners == 0);
	kipc_trace_attr bad{};
	bad.rsvd[1] = 1;
	CHECK(trace_open(t, &bad) == -EINVAL);
	bad = {};
	bad.bufsize = KIPC_TRACE_BUF_MAX + 1;
	CHECK(trace_open(t, &bad) == -EINVAL);
	bad = {};
	bad.events = 1u << 20;
	CHECK(trace_open(t, &bad) == -EINVAL);
}

TEST_CASE("trace: a handed-over message: block, send, wake, deliver")
{
	World w;
	Proc &t = w.spawn(50);
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(101);
	int64_t box = a.mbox_create(4, 0, 0, 0666);
	REQUIRE(trace_open(t) == 0);
	w.advance_ms(1);
	Op r = a.mbox_receive(box);
	w.advance_ms(1);
	REQUIRE(b.mbox_send(box, "hi").res() == 0);
	CHECK(r.text() == "hi");
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "BLOCK SEND WAKE DELIVER");
	CHECK(v[0].pid == 100);
	CHECK(v[0].mbox == box);
	CHECK(v[0].op == KIPC_SYS_mbox_receive);
	CHECK(v[1].pid == 101);
	CHECK(v[1].len == 2);
	CHECK(v[1].ts - v[0].ts == uint64_t(ms(1)));
	CHECK(v[2].pid == 100);
	CHECK(v[2].peer == 101);
	CHECK(v[3].pid == 100);
	CHECK(v[3].peer == 101);
	CHECK(v[3].seq == v[1].seq);
	CHECK(v[3].seq == r.cqe().seq);
	CHECK((v[3].flags & KIPC_TRACE_F_HANDOFF) != 0);
	CHECK(v[3].op == KIPC_SYS_mbox_send);
	CHECK(std::string(v[3].comm) == "test");
}

TEST_CASE("trace: a full link: enqueue, block, deliver, refill, wake")
{
	World w;
	Proc &t = w.spawn(50);
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(101);
	int64_t box = a.mbox_create(1, 0, 0, 0666);
	REQUIRE(trace_open(t) == 0);
	REQUIRE(b.mbox_send(box, "1").res() == 0);
	Op s = b.mbox_send(box, "2");
	CHECK(!s.done());
	Op r = a.mbox_receive(box);
	CHECK(r.text() == "1");
	CHECK(s.res() == 0);
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "SEND ENQUEUE SEND BLOCK DELIVER ENQUEUE WAKE");
	CHECK(v[0].seq == v[1].seq);
	CHECK(v[2].seq == v[3].seq);
	CHECK(v[4].seq == v[0].seq);
	CHECK(v[5].seq == v[2].seq);
	CHECK(v[5].pid == 101);
	CHECK(v[6].pid == 101);
	CHECK(v[6].peer == 100); /* woken by the receive */
}

TEST_CASE("trace: task queue events name the queue's owner")
{
	World w;
	Proc &t = w.spawn(50);
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(101);
	REQUIRE(trace_open(t) == 0);
	REQUIRE(a.send(101, "x", 0, 3).res() == 0);
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "SEND ENQUEUE");
	CHECK(v[0].mbox == 0);
	CHECK(v[0].qpid == 101);
	CHECK(v[0].peer == 101);
	CHECK(v[0].prio == 3);
	CHECK(b.receive().text() == "x");
}

TEST_CASE("trace: call and reply")
{
	World w;
	Proc &t = w.spawn(50);
	Proc &c = w.spawn(100);
	Proc &s = w.spawn(101);
	REQUIRE(trace_open(t) == 0);
	Op call = c.call(101, "ping");
	Op r = s.receive();
	REQUIRE((r.cqe().flags & KIPC_CQE_F_CALL) != 0);
	REQUIRE(s.reply(r.cqe().token, "pong!") == 0);
	CHECK(call.text() == "pong!");
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "SEND ENQUEUE BLOCK DELIVER WAKE DELIVER");
	CHECK((v[0].flags & KIPC_TRACE_F_CALL) != 0);
	CHECK((v[2].flags & KIPC_TRACE_F_REPLY) != 0);
	CHECK((v[3].flags & KIPC_TRACE_F_CALL) != 0);
	CHECK((v[5].flags & KIPC_TRACE_F_REPLY) != 0);
	CHECK(v[5].pid == 100);
	CHECK(v[5].peer == 101);
	CHECK(v[5].len == 5);
}

TEST_CASE("trace: attach, timeout, cancel, destroy and exit")
{
	World w;
	Proc &t = w.spawn(50);
	REQUIRE(trace_open(t) == 0);
	Proc &a = w.spawn(100);
	int64_t box = a.mbox_create(4);
	Op r1 = a.mbox_receive(box, 64, 0, 0, ms(5));
	w.advance_ms(5);
	CHECK(r1.res() == -ETIMEDOUT);
	Op r2 = a.mbox_receive(box);
	REQUIRE(a.cancel(r2) == 0);
	CHECK(r2.res() == -ECANCELED);
	w.exit(a);
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "ATTACH BLOCK TIMEOUT WAKE BLOCK CANCEL WAKE EXIT DESTROY");
	CHECK(v[0].pid == 100);
	CHECK(std::string(v[0].comm) == "test");
	CHECK(v[2].res == -ETIMEDOUT);
	CHECK(v[2].op == KIPC_SYS_NONE); /* a timer, not a syscall */
	CHECK(v[5].res == -ECANCELED);
	CHECK(v[8].mbox == box);
	CHECK(v[8].pid == 100);
}

TEST_CASE("trace: a parked read completes after the syscall, with the batch")
{
	World w;
	Proc &t = w.spawn(50);
	Proc &a = w.spawn(100);
	w.spawn(101);
	REQUIRE(trace_open(t) == 0);
	Op rd = trace_read(t, 16);
	CHECK(!rd.done());
	REQUIRE(a.send(101, "x").res() == 0);
	REQUIRE(rd.done());
	CHECK(kinds(events(rd)) == "SEND ENQUEUE");
	/* the reader's own wakeup is not traced */
	CHECK(trace_read(t, 16, KIPC_F_NONBLOCK).res() == -EAGAIN);
	/* a short buffer takes what fits; the rest stays */
	REQUIRE(a.send(101, "y").res() == 0);
	Op one = trace_read(t, 1);
	CHECK(kinds(events(one)) == "SEND");
	CHECK(kinds(drain_events(t)) == "ENQUEUE");
}

TEST_CASE("trace: read timeouts, cancels, and close with a reader")
{
	World w;
	Proc &t = w.spawn(50);
	REQUIRE(trace_open(t) == 0);
	Op rd = trace_read(t, 8, 0, ms(10));
	w.advance_ms(10);
	CHECK(rd.res() == -ETIMEDOUT);
	Op rd2 = trace_read(t, 8);
	CHECK(trace_read(t, 8).res() == -EBUSY);
	REQUIRE(t.cancel(rd2, true) == 0);
	CHECK(rd2.res() == -EINTR);
	Op rd3 = trace_read(t, 8);
	REQUIRE(trace_close(t) == 0);
	CHECK(rd3.res() == -EBADF);
	CHECK(trace_read(t, 8, KIPC_F_NONBLOCK).res() == -EBADF);
	REQUIRE(trace_open(t) == 0);
	trace_read(t, 8); /* parked when its task exits */
	w.exit(t); /* the listener goes with its task */
	CHECK(w.impl().tracer.nlisteners == 0);
	CHECK(w.impl().tracer.listeners.empty());
}

TEST_CASE("trace: a full ring drops events, counts them, and says so")
{
	World w;
	Proc &t = w.spawn(50);
	Proc &a = w.spawn(100);
	int64_t box = a.mbox_create(KIPC_UNBOUNDED);
	kipc_trace_attr at{};
	at.bufsize = 4;
	REQUIRE(trace_open(t, &at) == 0);
	for (int i = 0; i < 5; i++)
		REQUIRE(a.mbox_send(box, "m").res() == 0); /* 10 events */
	auto v = drain_events(t);
	CHECK(kinds(v) == "SEND ENQUEUE SEND ENQUEUE");
	REQUIRE(a.mbox_send(box, "m").res() == 0);
	v = drain_events(t);
	REQUIRE(kinds(v) == "LOST SEND ENQUEUE");
	CHECK(v[0].res == 6);
	REQUIRE(a.mbox_send(box, "m").res() == 0);
	CHECK(kinds(drain_events(t)) == "SEND ENQUEUE");
}

TEST_CASE("trace: filters by pid, mailbox and event")
{
	World w;
	Proc &t1 = w.spawn(50);
	Proc &t2 = w.spawn(51);
	Proc &t3 = w.spawn(52);
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(101);
	int64_t box1 = a.mbox_create(4, 0, 0, 0666);
	int64_t box2 = a.mbox_create(4, 0, 0, 0666);
	kipc_trace_attr f{};
	f.pid = 101;
	REQUIRE(trace_open(t1, &f) == 0);
	f = {};
	f.mbox = box2;
	REQUIRE(trace_open(t2, &f) == 0);
	f = {};
	f.events = KIPC_TRACE_MASK(KIPC_TRACE_DELIVER);
	REQUIRE(trace_open(t3, &f) == 0);
	REQUIRE(a.mbox_send(box1, "a1").res() == 0);
	REQUIRE(b.mbox_send(box2, "b2").res() == 0);
	CHECK(mbox_drain(a, box1).size() == 1);
	auto v1 = drain_events(t1);
	CHECK(kinds(v1) == "SEND ENQUEUE");
	CHECK(v1[0].pid == 101);
	auto v2 = drain_events(t2);
	CHECK(kinds(v2) == "SEND ENQUEUE");
	CHECK(v2[0].mbox == box2);
	auto v3 = drain_events(t3);
	CHECK(kinds(v3) == "DELIVER");
}

TEST_CASE("trace: a listener sees its own uid's tasks; root sees all")
{
	World w;
	Proc &other = w.spawn(50, 2000);
	Proc &root = w.spawn(51, 0);
	Proc &a = w.spawn(100, 1000);
	Proc &b = w.spawn(101, 2000);
	REQUIRE(trace_open(other) == 0);
	REQUIRE(trace_open(root) == 0);
	REQUIRE(a.send(100, "to myself").res() == 0);
	REQUIRE(b.send(101, "me too").res() == 0);
	auto v = drain_events(other);
	CHECK(kinds(v) == "SEND ENQUEUE");
	CHECK(v[0].pid == 101);
	CHECK(kinds(drain_events(root)) == "SEND ENQUEUE SEND ENQUEUE");
}
