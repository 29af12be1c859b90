// SPDX-License-Identifier: MIT
/* Remote procedure call: call, reply, and the server going away. */
#include "harness.h"

using namespace kt;

TEST_CASE("call blocks until the server replies; the reply lands in the reply buffer")
{
	World w;
	Proc &c = w.spawn(100), &s = w.spawn(200);
	Op call = c.call(200, "ping");
	CHECK(!call.done());
	Op r = s.receive();
	CHECK(r.text() == "ping");
	CHECK(r.cqe().pid == 100);
	CHECK((r.cqe().flags & KIPC_CQE_F_CALL));
	uint64_t token = r.cqe().token;
	CHECK(token != 0);
	CHECK(!call.done());
	CHECK(s.reply(token, "pong") == 0);
	CHECK(call.text() == "pong");
	CHECK(call.cqe().pid == 200);
	CHECK(call.cqes().size() == 1);
	/* a token answers once */
	CHECK(s.reply(token, "again") == -ESRCH);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("call to a server already waiting in receive; call through a mailbox")
{
	World w;
	Proc &c = w.spawn(100), &s = w.spawn(200);
	int64_t id = s.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666);
	Op r = s.mbox_receive(id);
	Op call = c.mbox_call(id, "req");
	REQUIRE(r.done());
	CHECK(r.text() == "req");
	CHECK(r.cqe().source == id);
	CHECK(s.reply(r.cqe().token, "resp") == 0);
	CHECK(call.text() == "resp");
}

TEST_CASE("only the task that received a call may reply to it")
{
	World w;
	Proc &c = w.spawn(100), &s = w.spawn(200), &x = w.spawn(300);
	Op call = c.call(200, "q");
	Op r = s.receive();
	CHECK(x.reply(r.cqe().token, "forged") == -EPERM);
	CHECK(x.reply(0, "nothing") == -ESRCH);
	CHECK(x.reply(987654, "nothing") == -ESRCH);
	CHECK(!call.done());
	CHECK(s.reply(r.cqe().token, "real") == 0);
	CHECK(call.text() == "real");
}

TEST_CASE("reply larger than the caller's buffer: EMSGSIZE, or truncated with TRUNC")
{
	World w;
	Proc &c = w.spawn(100), &s = w.spawn(200);
	Op call = c.call(200, "q", 4);
	Op r = s.receive();
	CHECK(s.reply(r.cqe().token, "0123456789") == -EMSGSIZE);
	CHECK(!call.done());
	CHECK(s.reply(r.cqe().token, "0123") == 0);
	CHECK(call.text() == "0123");
	Op call2 = c.call(200, "q", 4, KIPC_F_TRUNC);
	Op r2 = s.receive();
	CHECK(s.reply(r2.cqe().token, "0123456789") == 0);
	CHECK(call2.text() == "0123");
	CHECK((call2.cqe().flags & KIPC_CQE_F_TRUNC));
	CHECK(call2.cqe().len == 10);
}

TEST_CASE("server exits before replying: the caller wakes ESRCH with DELIVERED")
{
	World w;
	Proc &c = w.spawn(100), &s = w.spawn(200);
	Op call = c.call(200, "doomed");
	Op r = s.receive();
	CHECK(r.text() == "doomed");
	w.exit(s);
	REQUIRE(call.done());
	CHECK(call.res() == -ESRCH);
	CHECK((call.cqe().flags & KIPC_CQE_F_DELIVERED));
	CHECK(call.cqes().size() == 1);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("server exits with the request still queued: ESRCH without DELIVERED")
{
	World w;
	Proc &c = w.spawn(100), &s = w.spawn(200);
	Op call = c.call(200, "never-read");
	CHECK(!call.done());
	w.exit(s);
	CHECK(call.res() == -ESRCH);
	CHECK(!(call.cqe().flags & KIPC_CQE_F_DELIVERED));
	CHECK(w.charged(1000) == 0);
}

TEST_CASE_FIXTURE(ServedCall, "mailbox destroyed with a call queued: EIDRM; a received call survives until reply")
{
	Proc &c2 = w.spawn(101);
	Op queued = c2.mbox_call(id, "queued");
	CHECK(s.mbox_destroy(id) == 0);
	CHECK(queued.res() == -EIDRM);
	CHECK(!call.done());
	CHECK(s.reply(r.cqe().token, "late-but-fine") == 0);
	CHECK(call.text() == "late-but-fine");
}

TEST_CASE("call timeout: before delivery the request is withdrawn; after, DELIVERED and the reply is refused")
{
	World w;
	Proc &c = w.spawn(100), &s = w.spawn(200);
	Op c1 = c.call(200, "withdrawn", 256, 0, ms(5));
	w.advance_ms(5);
	CHECK(c1.res() == -ETIMEDOUT);
	CHECK(!(c1.cqe().flags & KIPC_CQE_F_DELIVERED));
	CHECK(s.receive(KIPC_ANY, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);

	Op c2 = c.call(200, "received", 256, 0, ms(5));
	Op r = s.receive();
	CHECK(r.text() == "received");
	w.advance_ms(5);
	CHECK(c2.res() == -ETIMEDOUT);
	CHECK((c2.cqe().flags & KIPC_CQE_F_DELIVERED));
	CHECK(s.reply(r.cqe().token, "too-late") == -ESRCH);
	CHECK(c2.cqes().size() == 1);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("caller exits while the server holds its request: the reply fails ESRCH")
{
	World w;
	Proc &c = w.spawn(100), &s = w.spawn(200);
	c.call(200, "orphan");
	Op r = s.receive();
	w.exit(c);
	CHECK(s.reply(r.cqe().token, "nobody-home") == -ESRCH);
}

TEST_CASE("call nonblocking on a full link is EAGAIN; the call reply buffer must be in the arena")
{
	Limits lim = Limits::from_config();
	lim.taskq_capacity = 0;
	World w(lim);
	Proc &c = w.spawn(100);
	w.spawn(200);
	CHECK(c.call(200, "x", 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
	kipc_sqe s{};
	__kipc_enc_call(&s, KIPC_SYS_call, 200, c.put("x"), 1, c.mem.arena.size() - 8, 16, 0,
			KIPC_F_NONBLOCK);
	CHECK(c.now(s) == -EFAULT);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("a server may serve several calls and answer them in any order")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(101), &s = w.spawn(200);
	Op ca = a.call(200, "from-a"), cb = b.call(200, "from-b");
	Op ra = s.receive(), rb = s.receive();
	CHECK(ra.text() == "from-a");
	CHECK(rb.text() == "from-b");
	CHECK(ra.cqe().token != rb.cqe().token);
	CHECK(s.reply(rb.cqe().token, "to-b") == 0);
	CHECK(s.reply(ra.cqe().token, "to-a") == 0);
	CHECK(ca.text() == "to-a");
	CHECK(cb.text() == "to-b");
}
