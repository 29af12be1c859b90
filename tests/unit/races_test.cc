// SPDX-License-Identifier: MIT
/*
 * Races, replayed in an exact order: timeouts, cancels and exits that meet
 * a delivery at the same instant. Each test checks that every message sent
 * is received exactly once, or that its sender was told it failed.
 */
#include "harness.h"

using namespace kt;

/* Move the clock to t without running timers: the next submit() sees it. */
static void set_clock_to(World &w, int64_t mono)
{
	w.clock.real += mono - w.clock.mono;
	w.clock.mono = mono;
}

TEST_CASE("timeout and delivery at the same instant: the wait is over, the message stays queued")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	int64_t deadline = w.clock.mono + ms(5);
	Op r = b.receive(KIPC_ANY, 256, 0, 0, ms(5));
	set_clock_to(w, deadline);
	Ledger l;
	Op s = a.send(200, "same-instant");
	l.sent_ok(s, "same-instant");
	CHECK(r.res() == -ETIMEDOUT);
	CHECK(r.cqes().size() == 1);
	/* the message was not lost with the timed-out receive */
	auto got = drain(b);
	CHECK(got == std::vector<std::string>{"same-instant"});
	l.got(got);
	CHECK(l.balanced());
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("one nanosecond before the deadline the delivery wins")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	int64_t deadline = w.clock.mono + ms(5);
	Op r = b.receive(KIPC_ANY, 256, 0, 0, ms(5));
	set_clock_to(w, deadline - 1);
	CHECK(a.send(200, "just-in-time").res() == 0);
	CHECK(r.text() == "just-in-time");
	w.advance_ms(10);
	CHECK(r.cqes().size() == 1);
	CHECK(drain(b).empty());
}

TEST_CASE("blocked send timing out at the instant a receiver arrives: withdrawn, never delivered")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(0, 0, 0, 0666);
	int64_t deadline = w.clock.mono + ms(5);
	Op s = a.mbox_send(id, "too-late", 0, 0, 0, ms(5));
	CHECK(!s.done());
	set_clock_to(w, deadline);
	Op r = o.mbox_receive(id, 256, KIPC_F_NONBLOCK);
	CHECK(s.res() == -ETIMEDOUT);
	CHECK(r.res() == -EAGAIN);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("two receivers, one times out as the message arrives: the other gets it, once")
{
	World w;
	Proc &o = w.spawn(100), &b = w.spawn(101), &s = w.spawn(102);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666);
	CHECK(o.grant(id, 101) == 0);
	int64_t deadline = w.clock.mono + ms(5);
	Op first = o.mbox_receive(id, 256, 0, 0, ms(5)); /* longest waiting */
	Op second = b.mbox_receive(id);
	set_clock_to(w, deadline);
	Op snd = s.mbox_send(id, "one");
	CHECK(first.res() == -ETIMEDOUT);
	CHECK(second.text() == "one");
	CHECK(snd.cqe().pid == 101);
	CHECK(mstat(o, id).nmsg == 0);
}

TEST_CASE("cancel after delivery: ENOENT, the completion with the message stands")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	Op r = b.receive();
	CHECK(a.send(200, "delivered").res() == 0);
	CHECK(b.cancel(r) == -ENOENT);
	CHECK(b.cancel(r, true) == -ENOENT);
	CHECK(r.cqes().size() == 1);
	CHECK(r.text() == "delivered");
}

TEST_CASE("cancel before delivery: the receive fails, the message waits for the next receive")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	Op r = b.receive();
	CHECK(b.cancel(r, true) == 0);
	CHECK(r.res() == -EINTR);
	Ledger l;
	l.sent_ok(a.send(200, "after-cancel"), "after-cancel");
	CHECK(r.cqes().size() == 1);
	l.got(drain(b));
	CHECK(l.balanced());
}

TEST_CASE("cancel versus a rendezvous send: cancelled first, the message is never seen")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(0, 0, 0, 0666);
	Op s = a.mbox_send(id, "withdrawn");
	CHECK(a.cancel(s, true) == 0);
	CHECK(s.res() == -EINTR);
	CHECK(o.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
	/* and delivered first: the cancel finds nothing */
	Op s2 = a.mbox_send(id, "taken");
	CHECK(o.mbox_receive(id).text() == "taken");
	CHECK(a.cancel(s2, true) == -ENOENT);
	CHECK(s2.res() == 0);
	CHECK(s2.cqes().size() == 1);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("a queued call timing out frees room for a blocked sender behind it")
{
	World w;
	Proc &o = w.spawn(100), &c = w.spawn(101), &a = w.spawn(102);
	int64_t id = o.mbox_create(1, 0, 0, 0666);
	Op call = c.mbox_call(id, "call", 256, 0, ms(5));
	CHECK(mstat(o, id).nmsg == 1);
	Op s = a.mbox_send(id, "waiting");
	CHECK(!s.done());
	w.advance_ms(5);
	CHECK(call.res() == -ETIMEDOUT);
	CHECK(s.res() == 0);
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"waiting"});
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("owner exit with blocked senders, blocked receivers and queued messages")
{
	World w;
	Proc &o = w.spawn(100), &r = w.spawn(101), &s1 = w.spawn(102), &s2 = w.spawn(103);
	int64_t full = o.mbox_create(1, 0, 0, 0666);
	int64_t empty = o.mbox_create(1, 0, 0, 0666);
	CHECK(o.grant(empty, 101) == 0);
	CHECK(s1.mbox_send(full, "queued").res() == 0);
	Op b1 = s1.mbox_send(full, "blocked-1");
	Op b2 = s2.mbox_send(full, "blocked-2", 0, 0, 0, ms(50));
	Op c2 = s2.mbox_call(empty, "", 256, 0, 0);
	CHECK(!c2.done());
	/* the call took empty's one slot; a receiver would take it, so drain it first */
	Op rc = r.mbox_receive(empty);
	CHECK((rc.cqe().flags & KIPC_CQE_F_CALL));
	Op rr = r.mbox_receive(empty);
	Op ro = o.mbox_receive(empty); /* the owner's own parked receive */
	CHECK(!rr.done());
	w.exit(o);
	CHECK(b1.res() == -EIDRM);
	CHECK(b2.res() == -EIDRM);
	CHECK(rr.res() == -EIDRM);
	CHECK(b1.cqes().size() == 1);
	CHECK(b2.cqes().size() == 1);
	CHECK(rr.cqes().size() == 1);
	CHECK(ro.cqes().empty()); /* the exiting task gets no completions */
	/* the call was received before the mailbox died: it waits for r's reply */
	CHECK(!c2.done());
	CHECK(r.reply(rc.cqe().token, "still-answered") == 0);
	CHECK(c2.text() == "still-answered");
	w.advance_ms(100);
	CHECK(b2.cqes().size() == 1); /* its timer went with it */
	CHECK(w.charged(1000) == 0);
	CHECK(w.impl().user(1000).mailboxes == 0);
	CHECK(s1.mbox_send(full, "x").res() == -EIDRM);
}

TEST_CASE("a task exiting while others wait on it: receivers from it, callers, senders to it")
{
	Limits lim = Limits::from_config();
	lim.taskq_capacity = 1;
	World w(lim);
	Proc &q = w.spawn(100), &a = w.spawn(101), &b = w.spawn(102), &c = w.spawn(103);
	Op ra = a.receive(100);                 /* waits for a message from q */
	CHECK(b.send(100, "fills-q").res() == 0);
	Op sb = b.send(100, "blocked-on-q");    /* waits for room in q's queue */
	Op cc = c.call(100, "call-q");          /* queued behind, as a call */
	Op rq = q.receive(101);                 /* q's own parked receive */
	CHECK(!ra.done());
	CHECK(!sb.done());
	CHECK(!cc.done());
	REQUIRE(!rq.done());
	w.exit(q);
	CHECK(ra.res() == -ESRCH);
	CHECK(sb.res() == -ESRCH);
	CHECK(cc.res() == -ESRCH);
	CHECK(ra.cqes().size() == 1);
	CHECK(sb.cqes().size() == 1);
	CHECK(cc.cqes().size() == 1);
	CHECK(w.charged(1000) == 0);
	CHECK(w.impl().find_task(100) == nullptr);
}

TEST_CASE("a receiver exiting with a rendezvous sender on its queue: the sender fails, nothing leaks")
{
	Limits lim = Limits::from_config();
	lim.taskq_capacity = 0;
	World w(lim);
	Proc &a = w.spawn(100), &b = w.spawn(200);
	Op s = a.send(200, "never");
	w.exit(b);
	CHECK(s.res() == -ESRCH);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("a sender exiting while blocked: its message is withdrawn, a receiver never sees it")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = full_mbox(o, a, "queued");
	a.mbox_send(id, "blocked");
	w.exit(a);
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"queued"});
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("stress: interleaved senders, receivers, timeouts and cancels lose and duplicate nothing")
{
	World w;
	Proc &o = w.spawn(100);
	std::vector<Proc *> snd, rcv;
	for (pid_t p = 0; p < 4; p++)
		snd.push_back(&w.spawn(200 + p));
	for (pid_t p = 0; p < 3; p++)
		rcv.push_back(&w.spawn(300 + p));
	int64_t id = o.mbox_create(std::min<uint32_t>(2, w.limits.msg_max), 0, 0, 0666);
	for (Proc *r : rcv)
		REQUIRE(o.grant(id, r->pid) == 0);
	Ledger l;
	std::vector<std::pair<Op, std::string>> sends;
	std::vector<Op> recvs;
	uint32_t seed = 12345;
	auto rnd = [&](uint32_t n) {
		seed = seed * 1103515245 + 12345;
		return (seed >> 16) % n;
	};
	for (int i = 0; i < 400; i++) {
		switch (rnd(6)) {
		case 0:
		case 1: {
			std::string m = "msg" + std::to_string(i);
			Proc *p = snd[rnd(snd.size())];
			uint32_t flags = rnd(4) == 0 ? KIPC_F_NONBLOCK : 0;
			sends.push_back({p->mbox_send(id, m, flags, rnd(3), 0, rnd(2) ? ms(1 + rnd(3)) : 0), m});
			break;
		}
		case 2:
		case 3: {
			Proc *p = rcv[rnd(rcv.size())];
			recvs.push_back(p->mbox_receive(id, 256, 0, 0, rnd(2) ? ms(1 + rnd(3)) : 0));
			break;
		}
		case 4: {
			if (!recvs.empty()) {
				Op &r = recvs[rnd(recvs.size())];
				r.p->cancel(r, rnd(2));
			}
			if (!sends.empty()) {
				Op &s = sends[rnd(sends.size())].first;
				s.p->cancel(s, rnd(2));
			}
			break;
		}
		case 5:
			w.advance_ms(1);
			break;
		}
	}
	/* settle: cancel what still waits, then drain */
	for (Op &r : recvs)
		if (!r.done())
			CHECK(r.p->cancel(r) == 0);
	for (auto &[s, m] : sends)
		if (!s.done())
			CHECK(s.p->cancel(s) == 0);
	for (auto &[s, m] : sends) {
		REQUIRE(s.cqes().size() == 1);
		l.sent_ok(s, m);
	}
	for (Op &r : recvs) {
		REQUIRE(r.cqes().size() == 1);
		l.got(r);
	}
	l.got(mbox_drain(o, id));
	CHECK(l.no_dups());
	CHECK(l.balanced());
	CHECK(l.sent.size() > 10);
	CHECK(w.charged(1000) == 0);
}
