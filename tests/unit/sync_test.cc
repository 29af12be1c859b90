// SPDX-License-Identifier: MIT
/* Synchronization: blocking, nonblocking, timeouts, rendezvous, deadlock. */
#include "harness.h"

using namespace kt;

/* A world whose task queues are zero-capacity links. */
static Limits rendezvous_limits()
{
	Limits l = Limits::from_config();
	l.taskq_capacity = 0;
	return l;
}

TEST_CASE("receive blocks by default until a message arrives")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	Op r = b.receive();
	w.advance_ms(1000);
	CHECK(!r.done());
	CHECK(a.send(200, "wake").res() == 0);
	CHECK(r.text() == "wake");
}

TEST_CASE("NONBLOCK: EAGAIN instead of blocking, for send and receive")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	CHECK(b.receive(KIPC_ANY, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
	int64_t id = b.mbox_create(1, 0, 0, 0666);
	CHECK(b.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
	CHECK(a.mbox_send(id, "fits", KIPC_F_NONBLOCK).res() == 0);
	CHECK(a.mbox_send(id, "full", KIPC_F_NONBLOCK).res() == -EAGAIN);
	CHECK(w.charged(1000) == message_charge(4, false));
	CHECK(mbox_drain(b, id) == std::vector<std::string>{"fits"});
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("relative timeout: ETIMEDOUT when it expires, not before")
{
	World w;
	Proc &b = w.spawn(200);
	Op r = b.receive(KIPC_ANY, 256, 0, 0, ms(10));
	w.advance_ns(ms(10) - 1);
	CHECK(!r.done());
	CHECK(w.k->next_deadline() == w.clock.mono + 1);
	w.advance_ns(1);
	CHECK(r.res() == -ETIMEDOUT);
	CHECK(r.cqes().size() == 1);
	CHECK(w.k->next_deadline() == INT64_MAX);
}

TEST_CASE("send timeout on a full link: ETIMEDOUT and the message is withdrawn")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	int64_t id = full_mbox(b, a, "in");
	Op s = a.mbox_send(id, "late", 0, 0, 0, ms(3));
	CHECK(!s.done());
	w.advance_ms(3);
	CHECK(s.res() == -ETIMEDOUT);
	CHECK(mbox_drain(b, id) == std::vector<std::string>{"in"});
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("absolute timeouts on CLOCK_MONOTONIC and CLOCK_REALTIME")
{
	World w;
	Proc &b = w.spawn(200);
	Op rm = b.receive(KIPC_ANY, 256, KIPC_F_TIMEOUT | KIPC_F_ABSTIME, 0,
			  w.clock.mono + ms(5));
	Op rr = b.receive(KIPC_ANY, 256, KIPC_F_TIMEOUT | KIPC_F_REALTIME, 0,
			  w.clock.real + ms(7));
	w.advance_ms(5);
	CHECK(rm.res() == -ETIMEDOUT);
	CHECK(!rr.done());
	w.advance_ms(2);
	CHECK(rr.res() == -ETIMEDOUT);
	/* already expired: ETIMEDOUT at once, on either clock */
	CHECK(b.receive(KIPC_ANY, 256, KIPC_F_TIMEOUT | KIPC_F_ABSTIME, 0, w.clock.mono).res() ==
	      -ETIMEDOUT);
	CHECK(b.receive(KIPC_ANY, 256, KIPC_F_TIMEOUT | KIPC_F_REALTIME, 0, 1).res() ==
	      -ETIMEDOUT);
}

TEST_CASE("an absolute realtime deadline is converted once, at submit")
{
	/* Like a futex with FUTEX_CLOCK_REALTIME converted at entry: a later
	 * realtime clock step does not move a deadline already parked. */
	World w;
	Proc &b = w.spawn(200);
	Op r = b.receive(KIPC_ANY, 256, KIPC_F_TIMEOUT | KIPC_F_REALTIME, 0, w.clock.real + ms(5));
	w.clock.real += ms(100); /* settimeofday */
	w.advance_ms(4);
	CHECK(!r.done());
	w.advance_ms(1);
	CHECK(r.res() == -ETIMEDOUT);
}

TEST_CASE("a message available now is taken even with an expired timeout")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	CHECK(a.send(200, "ready").res() == 0);
	Op r = b.receive(KIPC_ANY, 256, KIPC_F_TIMEOUT | KIPC_F_ABSTIME, 0, 1);
	CHECK(r.text() == "ready");
}

TEST_CASE("timeout flags: bad combinations are EINVAL")
{
	World w;
	Proc &b = w.spawn(200);
	CHECK(b.receive(KIPC_ANY, 256, KIPC_F_ABSTIME).res() == -EINVAL);
	CHECK(b.receive(KIPC_ANY, 256, KIPC_F_REALTIME).res() == -EINVAL);
	CHECK(b.receive(KIPC_ANY, 256, KIPC_F_TIMEOUT, 0, -1).res() == -EINVAL);
	kipc_sqe s{};
	__kipc_enc_receive(&s, KIPC_SYS_receive, 0, b.mem.alloc(16), 16, KIPC_F_NONBLOCK);
	s.timeout = 5; /* timeout without KIPC_F_TIMEOUT */
	CHECK(b.now(s) == -EINVAL);
}

TEST_CASE("rendezvous: a blocking send on a zero-capacity link completes only when taken")
{
	World w(rendezvous_limits());
	Proc &a = w.spawn(100), &b = w.spawn(200);
	Op s = a.send(200, "meet");
	CHECK(!s.done());
	kipc_taskq_stat st;
	CHECK(b.taskq_stat(&st) == 0);
	CHECK(st.capacity == 0);
	CHECK(st.nmsg == 0);
	CHECK(st.nsenders == 1);
	Op r = b.receive();
	CHECK(r.text() == "meet");
	CHECK(s.res() == 0);
	CHECK(s.cqe().pid == 200);
	CHECK(s.cqe().seq == r.cqe().seq);
	/* receiver first: the send completes at once */
	Op r2 = b.receive();
	Op s2 = a.send(200, "meet2");
	CHECK(s2.res() == 0);
	CHECK(s2.cqe().pid == 200);
	CHECK(r2.text() == "meet2");
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("rendezvous: a nonblocking send succeeds only if a receiver is already waiting")
{
	World w(rendezvous_limits());
	Proc &a = w.spawn(100), &b = w.spawn(200);
	CHECK(a.send(200, "nobody", KIPC_F_NONBLOCK).res() == -EAGAIN);
	Op r = b.receive();
	CHECK(a.send(200, "somebody", KIPC_F_NONBLOCK).res() == 0);
	CHECK(r.text() == "somebody");
	CHECK(b.receive(KIPC_ANY, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
}

TEST_CASE("rendezvous over a zero-capacity mailbox")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(0, 0, 0, 0666);
	Op s = a.mbox_send(id, "zero");
	CHECK(!s.done());
	CHECK(mstat(o, id).nmsg == 0);
	CHECK(mstat(o, id).nsenders == 1);
	CHECK(o.mbox_receive(id).text() == "zero");
	CHECK(s.res() == 0);
}

TEST_CASE("EDEADLK: the send that would close a cycle of rendezvous sends fails")
{
	World w(rendezvous_limits());
	Proc &a = w.spawn(100), &b = w.spawn(101), &c = w.spawn(102);
	Op ab = a.send(101, "a->b");
	Op bc = b.send(102, "b->c");
	CHECK(!ab.done());
	CHECK(!bc.done());
	CHECK(c.send(100, "c->a").res() == -EDEADLK);
	/* two tasks */
	CHECK(b.send(101, "b->b").res() == -EDEADLK);
	/* nothing was lost: the blocked sends still complete */
	CHECK(c.receive().text() == "b->c");
	CHECK(bc.res() == 0);
	CHECK(b.receive().text() == "a->b");
	CHECK(ab.res() == 0);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("EDEADLK: a task parked in receive breaks the cycle")
{
	World w(rendezvous_limits());
	Proc &a = w.spawn(100), &b = w.spawn(101);
	Op ra = a.receive();
	Op ab = a.send(101, "a->b", KIPC_F_CACHE); /* a is also inside receive */
	Op ba = b.send(100, "b->a");
	CHECK(ba.res() == 0);
	CHECK(ra.text() == "b->a");
	CHECK(b.receive().text() == "a->b");
	REQUIRE(ab.cqes().size() == 2);
	CHECK((ab.cqes()[1].flags & KIPC_CQE_F_NOTIF));
}

TEST_CASE("EDEADLK: call cycles over zero-capacity links")
{
	World w(rendezvous_limits());
	Proc &a = w.spawn(100), &b = w.spawn(101);
	Op rb = b.receive();
	Op c1 = a.call(101, "a-calls-b");
	REQUIRE(rb.done());
	CHECK((rb.cqe().flags & KIPC_CQE_F_CALL));
	CHECK(!c1.done());
	/* b now calls a, who is waiting for b's reply: a cycle */
	CHECK(b.call(100, "b-calls-a").res() == -EDEADLK);
	CHECK(b.send(100, "b-sends-a").res() == -EDEADLK);
	CHECK(b.reply(rb.cqe().token, "answer") == 0);
	CHECK(c1.text() == "answer");
}

TEST_CASE("EDEADLK: a rendezvous send to a mailbox whose only receiver waits on us")
{
	World w(rendezvous_limits());
	Proc &a = w.spawn(100), &b = w.spawn(101);
	int64_t id = b.mbox_create(0, 0, 0, 0666);
	Op ba = b.send(100, "b->a"); /* b blocks sending to a */
	CHECK(!ba.done());
	CHECK(a.mbox_send(id, "a->mbox(b)").res() == -EDEADLK);
	CHECK(a.receive().text() == "b->a");
}
