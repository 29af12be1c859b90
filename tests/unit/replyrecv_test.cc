// SPDX-License-Identifier: MIT
/*
 * reply_receive (seL4 ReplyRecv): a reply and the next receive in one
 * request; and KIPC_F_SKIP_SUCCESS: successes that post no completion.
 */
#include "intro_helpers.h"

#include <kipc/net.h>

using namespace kt;

namespace {

/* reply_receive (from: pid or KIPC_ANY) or, with mbox, mbox_reply_receive. */
Op reply_receive(Proc &p, uint64_t token, const std::string &data, int64_t from = KIPC_ANY,
		 bool mbox = false, uint32_t buflen = 256, uint32_t flags = 0, int64_t timeout = 0)
{
	kipc_sqe s{};
	__kipc_enc_reply_receive(&s, mbox ? KIPC_SYS_mbox_reply_receive : KIPC_SYS_reply_receive,
				 from, p.mem.alloc(buflen), buflen, token, p.put(data),
				 uint32_t(data.size()), flags);
	return p.submit(timed(s, timeout), s.addr, buflen);
}

uint64_t sysinfo_skipped(Proc &p)
{
	kipc_sysinfo si{};
	uint64_t a = p.mem.alloc(sizeof si);
	kipc_sqe s{};
	__kipc_enc_rec(&s, KIPC_SYS_sysinfo, 0, 0, 0, a, sizeof si);
	REQUIRE(p.now(s) == 0);
	std::memcpy(&si, p.mem.arena.data() + a, sizeof si);
	return si.nskipped;
}

} // namespace

TEST_CASE("reply_receive answers the call, then takes the next one queued")
{
	World w;
	Proc &c1 = w.spawn(100), &c2 = w.spawn(101), &s = w.spawn(200);
	Op a = c1.call(200, "one");
	Op b = c2.call(200, "two");
	Op r = s.receive();
	REQUIRE(r.text() == "one");
	Op rr = reply_receive(s, r.cqe().token, "ans-one");
	/* the reply reached its caller, the next call is received: one completion */
	CHECK(a.text() == "ans-one");
	CHECK(a.cqe().pid == 200);
	REQUIRE(rr.done());
	CHECK(rr.text() == "two");
	CHECK(rr.cqes().size() == 1);
	CHECK((rr.cqe().flags & KIPC_CQE_F_CALL));
	CHECK((rr.cqe().flags & KIPC_CQE_F_REPLIED));
	CHECK(rr.cqe().pid == 101);
	CHECK(!b.done());
	CHECK(s.reply(rr.cqe().token, "ans-two") == 0);
	CHECK(b.text() == "ans-two");
	CHECK(w.charged(1000) == 0);
}

TEST_CASE_FIXTURE(ServedCall, "reply_receive parks when nothing is queued; the next call completes it, REPLIED")
{
	Op rr = reply_receive(s, r.cqe().token, "a1", id, true);
	CHECK(call.text() == "a1");
	CHECK(!rr.done());
	Op b = c.mbox_call(id, "q2");
	REQUIRE(rr.done());
	CHECK(rr.text() == "q2");
	CHECK(rr.cqe().source == id);
	CHECK((rr.cqe().flags & (KIPC_CQE_F_CALL | KIPC_CQE_F_REPLIED)) ==
	      (KIPC_CQE_F_CALL | KIPC_CQE_F_REPLIED));
	/* the parked receive's timeout, cancel: the error says the reply went */
	Op rr2 = reply_receive(s, rr.cqe().token, "a2", id, true, 256, 0, ms(5));
	CHECK(b.text() == "a2");
	w.advance_ms(5);
	CHECK(rr2.res() == -ETIMEDOUT);
	CHECK((rr2.cqe().flags & KIPC_CQE_F_REPLIED));
	Op c3 = c.mbox_call(id, "q3");
	Op r3 = s.mbox_receive(id);
	Op rr3 = reply_receive(s, r3.cqe().token, "a3", id, true);
	CHECK(c3.text() == "a3");
	CHECK(s.cancel(rr3) == 0);
	CHECK(rr3.res() == -ECANCELED);
	CHECK((rr3.cqe().flags & KIPC_CQE_F_REPLIED));
	CHECK(rr3.cqes().size() == 1);
}

TEST_CASE("reply_receive whose reply fails receives nothing; the error is the reply's, not REPLIED")
{
	World w;
	Proc &c = w.spawn(100), &s = w.spawn(200), &x = w.spawn(300);
	Op a = c.call(200, "q", 4);
	Op r = s.receive();
	uint64_t tok = r.cqe().token;
	Op queued = c.send(200, "plain"); /* a message that must stay queued */
	/* a stale or forged token */
	Op bad = reply_receive(s, 987654, "x");
	CHECK(bad.res() == -ESRCH);
	CHECK(!(bad.cqe().flags & KIPC_CQE_F_REPLIED));
	CHECK(reply_receive(s, 0, "x").res() == -ESRCH);
	/* too large for the caller's buffer: the call still waits */
	Op big = reply_receive(s, tok, "0123456789");
	CHECK(big.res() == -EMSGSIZE);
	CHECK(!(big.cqe().flags & KIPC_CQE_F_REPLIED));
	CHECK(!a.done());
	/* another task replying to this call: EPERM, and x receives nothing */
	x.send(300, "x-own"); /* (x's own queue has a message it must keep) */
	Op forged = reply_receive(x, tok, "fake");
	CHECK(forged.res() == -EPERM);
	CHECK(!(forged.cqe().flags & KIPC_CQE_F_REPLIED));
	CHECK(x.receive(KIPC_ANY, 256, KIPC_F_NONBLOCK).text() == "x-own");
	CHECK(!a.done());
	/* nothing was taken by the failures: the plain message is still there */
	CHECK(s.receive(KIPC_ANY, 256, KIPC_F_NONBLOCK).text() == "plain");
	/* the real one; the token answers once */
	Op ok = reply_receive(s, tok, "fine", KIPC_ANY, false, 256, KIPC_F_NONBLOCK);
	CHECK(a.text() == "fine");
	CHECK(ok.res() == -EAGAIN);
	CHECK((ok.cqe().flags & KIPC_CQE_F_REPLIED));
	Op again = reply_receive(s, tok, "twice", KIPC_ANY, false, 256, KIPC_F_NONBLOCK);
	CHECK(again.res() == -ESRCH);
	CHECK(!(again.cqe().flags & KIPC_CQE_F_REPLIED));
	CHECK(a.cqes().size() == 1);
	(void)queued;
}

TEST_CASE("reply_receive: the caller gone; a bad entry does nothing at all")
{
	World w;
	Proc &c = w.spawn(100), &s = w.spawn(200), &c2 = w.spawn(101);
	c.call(200, "q");
	Op r = s.receive();
	w.exit(c);
	Op b = c2.call(200, "next");
	Op gone = reply_receive(s, r.cqe().token, "late");
	CHECK(gone.res() == -ESRCH); /* nothing received: the next call waits */
	CHECK(!(gone.cqe().flags & KIPC_CQE_F_REPLIED));
	Op r2 = s.receive();
	CHECK(r2.text() == "next");
	/* bad flags, priority, receive buffer or reply outside the arena: EINVAL or
	 * EFAULT, the call not answered */
	uint64_t tok = r2.cqe().token;
	kipc_sqe e{};
	__kipc_enc_reply_receive(&e, KIPC_SYS_reply_receive, KIPC_ANY, s.mem.alloc(16), 16, tok,
				 s.put("r"), 1, KIPC_F_TYPE);
	CHECK(s.now(e) == -EINVAL);
	e.flags = KIPC_F_SKIP_SUCCESS;
	CHECK(s.now(e) == -EINVAL);
	e.flags = 0;
	e.prio = 1;
	CHECK(s.now(e) == -EINVAL);
	e.prio = 0;
	e.addr = s.mem.arena.size() - 8;
	CHECK(s.now(e) == -EFAULT);
	e.addr = s.mem.alloc(16);
	e.addr2 = s.mem.arena.size() - 0;
	CHECK(s.now(e) == -EFAULT);
	/* a remote source (the network's own receive): EXDEV before the reply */
	CHECK(reply_receive(s, tok, "r", KIPC_NET_PID(1, 5)).res() == -EXDEV);
	CHECK(reply_receive(s, tok, "r", KIPC_NET_MBOX_BIT | 5, true).res() == -EXDEV);
	CHECK(!b.done());
	CHECK(s.cq.back().flags == 0);
	CHECK(s.reply(tok, "ok") == 0);
	CHECK(b.text() == "ok");
}

TEST_CASE("mbox_reply_receive checks the receive right after the reply was delivered")
{
	World w;
	Proc &c = w.spawn(100), &s = w.spawn(200), &o = w.spawn(300);
	int64_t theirs = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666); /* o's: s may not receive */
	Op a = c.call(200, "q");
	Op r = s.receive();
	o.mbox_send(theirs, "not-for-s");
	Op rr = reply_receive(s, r.cqe().token, "ans", theirs, true);
	CHECK(a.text() == "ans"); /* the reply went */
	CHECK(rr.res() == -EPERM);
	CHECK((rr.cqe().flags & KIPC_CQE_F_REPLIED));
	CHECK(o.mbox_receive(theirs, 256, KIPC_F_NONBLOCK).text() == "not-for-s");
	/* a mailbox that does not exist */
	Op a2 = c.call(200, "q2");
	Op r2 = s.receive();
	Op rr2 = reply_receive(s, r2.cqe().token, "ans2", 12345, true);
	CHECK(a2.text() == "ans2");
	CHECK(rr2.res() < 0);
	CHECK((rr2.cqe().flags & KIPC_CQE_F_REPLIED));
}

TEST_CASE("SKIP_SUCCESS: sends and replies that succeed post nothing, errors complete once")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	int64_t id = b.mbox_create(2, 0, 0, 0666);
	uint64_t before = sysinfo_skipped(a);
	Op s1 = a.mbox_send(id, "m1", KIPC_F_SKIP_SUCCESS);
	Op s2 = a.mbox_send(id, "m2", KIPC_F_SKIP_SUCCESS);
	CHECK(!s1.done());
	CHECK(!s2.done());
	CHECK(a.skipped.size() == 2);
	CHECK(a.skipped[0].res == 0);
	CHECK(a.skipped[0].user_data == s1.ud);
	CHECK(sysinfo_skipped(a) == before + 2);
	/* full: the nonblocking one fails at once, once */
	Op s3 = a.mbox_send(id, "m3", KIPC_F_SKIP_SUCCESS | KIPC_F_NONBLOCK);
	REQUIRE(s3.done());
	CHECK(s3.res() == -EAGAIN);
	CHECK(s3.cqes().size() == 1);
	/* a blocked one that later succeeds: nothing posted when room comes */
	Op s4 = a.mbox_send(id, "m4", KIPC_F_SKIP_SUCCESS);
	CHECK(!s4.done());
	CHECK(b.mbox_receive(id).text() == "m1");
	CHECK(!s4.done());
	CHECK(a.skipped.size() == 3);
	CHECK(a.skipped.back().user_data == s4.ud);
	/* a blocked one that times out: its error completes, once */
	Op s5 = a.mbox_send(id, "m5", KIPC_F_SKIP_SUCCESS, 0, 0, ms(5));
	w.advance_ms(5);
	CHECK(s5.res() == -ETIMEDOUT);
	CHECK(s5.cqes().size() == 1);
	CHECK(a.skipped.size() == 3);
	/* the messages are all there, in order */
	CHECK(b.mbox_receive(id).text() == "m2");
	CHECK(b.mbox_receive(id).text() == "m4");
	CHECK(b.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
	/* task queue send to nobody: ESRCH completes */
	Op s6 = a.send(999, "x", KIPC_F_SKIP_SUCCESS);
	CHECK(s6.res() == -ESRCH);
	/* reply */
	Op call = b.call(100, "q");
	Op r = a.receive();
	Op bad = a.submit([&] {
		kipc_sqe s{};
		__kipc_enc_reply(&s, 4242, a.put("x"), 1, KIPC_F_SKIP_SUCCESS);
		return s;
	}());
	CHECK(bad.res() == -ESRCH);
	Op good = a.submit([&] {
		kipc_sqe s{};
		__kipc_enc_reply(&s, r.cqe().token, a.put("ans"), 3, KIPC_F_SKIP_SUCCESS);
		return s;
	}());
	CHECK(!good.done());
	CHECK(call.text() == "ans");
	CHECK(a.skipped.back().user_data == good.ud);
	/* not with a cached send, not on a receive */
	CHECK(a.mbox_send(id, "c", KIPC_F_SKIP_SUCCESS | KIPC_F_CACHE).res() == -EINVAL);
	CHECK(b.mbox_receive(id, 256, KIPC_F_SKIP_SUCCESS).res() == -EINVAL);
	CHECK(sysinfo_skipped(a) == before + 4);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("SKIP_SUCCESS: a skipped success is still traced (SYSRET) and its message counted")
{
	World w;
	Proc &t = w.spawn(50), &a = w.spawn(100), &b = w.spawn(101);
	int64_t box = b.mbox_create(4, 0, 0, 0666);
	kipc_trace_attr at{};
	at.events = KIPC_TRACE_ALL | KIPC_TRACE_CALLS;
	REQUIRE(trace_open(t, &at) == 0);
	uint64_t sent = sysinfo(t).nsent;
	drain_events(t);
	Op s = a.mbox_send(box, "quiet", KIPC_F_SKIP_SUCCESS);
	CHECK(!s.done());
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "SYSCALL SEND ENQUEUE SYSRET");
	kipc_trace_ret r;
	std::memcpy(&r, &v[3], sizeof r);
	CHECK(r.pid == 100);
	CHECK(r.op == KIPC_SYS_mbox_send);
	CHECK(r.user_data == s.ud);
	CHECK(r.res == 0);
	CHECK(sysinfo(t).nsent == sent + 1);
	CHECK(b.mbox_receive(box).text() == "quiet");
	/* a reply_receive's SYSRET says REPLIED */
	Op call = b.call(100, "q");
	Op rcv = a.receive();
	drain_events(t);
	Op rr = reply_receive(a, rcv.cqe().token, "ans", KIPC_ANY, false, 256, KIPC_F_NONBLOCK);
	CHECK(call.text() == "ans");
	CHECK(rr.res() == -EAGAIN);
	v = drain_events(t);
	REQUIRE(!v.empty());
	std::memcpy(&r, &v.back(), sizeof r);
	CHECK(v.back().event == KIPC_TRACE_SYSRET);
	CHECK(r.op == KIPC_SYS_reply_receive);
	CHECK(r.res == -EAGAIN);
	CHECK((r.flags & KIPC_CQE_F_REPLIED));
}
