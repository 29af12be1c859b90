// SPDX-License-Identifier: MIT
/* mbox_peek: the next message of a mailbox, copied and left where it is. */
#include "harness.h"

using namespace kt;

namespace {

struct Peek {
	kipc_cqe cqe;
	std::string data; /* the bytes copied: min(len, buflen) */
};

/* mbox_peek of id into a buffer of buflen, with flags; it completes at once. */
Peek peek(Proc &p, int64_t id, uint32_t buflen = 256, uint32_t flags = 0)
{
	kipc_sqe s{};
	__kipc_enc_receive(&s, KIPC_SYS_mbox_peek, id, p.mem.alloc(buflen), buflen, flags);
	Op op = p.submit(s, s.addr, buflen);
	auto v = op.cqes();
	REQUIRE_MESSAGE(v.size() == 1, "mbox_peek did not complete at once");
	Peek r{v[0], {}};
	if (r.cqe.res > 0)
		r.data.assign(reinterpret_cast<const char *>(p.mem.arena.data() + s.addr),
			      std::min<uint32_t>(uint32_t(r.cqe.res), buflen));
	return r;
}

} // namespace

TEST_CASE("mbox_peek copies the message receive would take and leaves it queued")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0622);
	CHECK(a.mbox_send(id, "low", 0, 1, 7).res() == 0);
	CHECK(a.mbox_send(id, "urgent", 0, 5).res() == 0);
	uint64_t charged = w.charged(1000);

	Peek p = peek(o, id);
	CHECK(p.cqe.res == 6);
	CHECK(p.data == "urgent");
	CHECK(p.cqe.pid == 101);
	CHECK(p.cqe.prio == 5);
	CHECK(p.cqe.len == 6);
	CHECK(p.cqe.source == id);
	CHECK(p.cqe.flags == 0);
	CHECK(p.cqe.token == 0);
	CHECK(peek(o, id).data == "urgent"); /* again: still there */
	kipc_mbox_stat st = mstat(o, id);
	CHECK(st.nmsg == 2);
	CHECK(st.nreceived == 0);
	CHECK(st.lrpid == 0);
	CHECK(w.charged(1000) == charged);

	/* the receive takes what the peek showed, seq included */
	Op r = o.mbox_receive(id);
	CHECK(r.text() == "urgent");
	CHECK(r.cqe().seq == p.cqe.seq);

	/* a short buffer: the first bytes, the full length, TRUNC */
	p = peek(o, id, 2);
	CHECK(p.cqe.res == 3);
	CHECK(p.data == "lo");
	CHECK(p.cqe.flags == KIPC_CQE_F_TRUNC);
	CHECK(p.cqe.type == 7);
	CHECK(p.cqe.prio == 1);
	p = peek(o, id, 0);
	CHECK(p.cqe.res == 3);
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"low"});

	/* empty: EAGAIN at once, nothing parked */
	CHECK(peek(o, id).cqe.res == -EAGAIN);
	CHECK(mstat(o, id).nreceivers == 0);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("mbox_peek never waits: no wait flags, no timeout, no other flag")
{
	World w;
	Proc &o = w.spawn(100);
	int64_t id = o.mbox_create();
	CHECK(o.mbox_send(id, "m").res() == 0);
	for (uint32_t f : {KIPC_F_NONBLOCK, KIPC_F_TRUNC, KIPC_F_TYPE, KIPC_F_TIMEOUT, 1u << 30})
		CHECK(peek(o, id, 256, f).cqe.res == -EINVAL);
	kipc_sqe s{};
	__kipc_enc_receive(&s, KIPC_SYS_mbox_peek, id, o.mem.alloc(16), 16, 0);
	s.timeout = 1000; /* a timeout without KIPC_F_TIMEOUT */
	CHECK(o.now(s) == -EINVAL);
	/* a buffer outside the caller's arena */
	__kipc_enc_receive(&s, KIPC_SYS_mbox_peek, id, o.mem.arena.size() - 8, 16, 0);
	CHECK(o.now(s) == -EFAULT);
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"m"});
}

TEST_CASE("mbox_peek: bad and gone ids, and other kinds of queue")
{
	World w;
	Proc &o = w.spawn(100);
	CHECK(peek(o, 0).cqe.res == -EINVAL);
	CHECK(peek(o, -5).cqe.res == -EINVAL);
	CHECK(peek(o, 12345).cqe.res == -EINVAL);
	int64_t id = o.mbox_create();
	CHECK(o.mbox_destroy(id) == 0);
	CHECK(peek(o, id).cqe.res == -EIDRM);
}

TEST_CASE("mbox_peek checks the caller's right to receive, as mbox_receive does")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101), &x = w.spawn(200, 2000, 2000);
	/* process-owned: only holders of the receive right */
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666);
	CHECK(a.mbox_send(id, "secret").res() == 0);
	CHECK(peek(a, id).cqe.res == -EPERM);
	CHECK(peek(x, id).cqe.res == -EPERM);
	CHECK(o.grant(id, 101) == 0);
	CHECK(peek(a, id).data == "secret");
	CHECK(o.revoke(id, 101) == 0);
	CHECK(peek(a, id).cqe.res == -EPERM);

	/* kernel-owned: holders, or read permission by the mode bits */
	int64_t k = o.mbox_create(KIPC_CAP_DEFAULT, 0, KIPC_MBOX_KERNEL_OWNED, 0622);
	CHECK(x.mbox_send(k, "kernel-owned").res() == 0);
	CHECK(peek(x, k).cqe.res == -EACCES);
	CHECK(peek(o, k).data == "kernel-owned");
	kipc_mbox_attr attr{};
	attr.mode = 0644;
	CHECK(o.mbox_setattr(k, KIPC_SET_MODE, attr) == 0);
	CHECK(peek(x, k).data == "kernel-owned");
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"secret"});
	CHECK(mbox_drain(o, k) == std::vector<std::string>{"kernel-owned"});
}

TEST_CASE("mbox_peek shows a blocked sender's message and the sender stays blocked")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(0, 0, 0, 0622); /* rendezvous */
	Op s = a.mbox_send(id, "waiting");
	CHECK(!s.done());
	CHECK(peek(o, id).data == "waiting");
	CHECK(!s.done());
	CHECK(o.mbox_receive(id).text() == "waiting");
	CHECK(s.res() == 0);
}

TEST_CASE("mbox_peek of a call shows the request, not its token")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0622);
	Op c = a.mbox_call(id, "question");
	Peek p = peek(o, id);
	CHECK(p.data == "question");
	CHECK(p.cqe.token == 0);
	CHECK((p.cqe.flags & KIPC_CQE_F_CALL) == 0);
	Op r = o.mbox_receive(id);
	REQUIRE((r.cqe().flags & KIPC_CQE_F_CALL) != 0);
	CHECK(o.reply(r.cqe().token, "answer") == 0);
	CHECK(c.text() == "answer");
}

TEST_CASE("mbox_peek follows the policies and binds nothing")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101), &s = w.spawn(102);
	SUBCASE("round-robin: each holder sees its own share")
	{
		int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, KIPC_POLICY_ROUND_ROBIN, 0, 0622);
		CHECK(o.grant(id, 101) == 0);
		Op m1 = s.mbox_send(id, "first"), m2 = s.mbox_send(id, "second");
		REQUIRE(m1.res() == 0);
		REQUIRE(m2.res() == 0);
		Proc &p1 = m1.cqe().pid == 100 ? o : a, &p2 = m2.cqe().pid == 100 ? o : a;
		REQUIRE(&p1 != &p2);
		CHECK(peek(p1, id).data == "first");
		CHECK(peek(p2, id).data == "second");
		CHECK(p2.mbox_receive(id).text() == "second");
		CHECK(p1.mbox_receive(id).text() == "first");
	}
	SUBCASE("pair: a peek does not bind the receiver")
	{
		int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, KIPC_POLICY_PAIR, 0, 0622);
		CHECK(o.grant(id, 101) == 0);
		CHECK(s.mbox_send(id, "p").res() == 0);
		CHECK(peek(a, id).data == "p");
		CHECK(o.mbox_receive(id).text() == "p"); /* o, not a, binds it */
		CHECK(s.mbox_send(id, "q").res() == 0);
		CHECK(peek(a, id).cqe.res == -EPERM);
		CHECK(o.mbox_receive(id).text() == "q");
	}
}
