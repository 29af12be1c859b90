// SPDX-License-Identifier: MIT
/* Cancellation: the library's signal path (EINTR) and plain cancel. */
#include "harness.h"

using namespace kt;

TEST_CASE("cancel a parked receive: ECANCELED, or EINTR with KIPC_F_INTR")
{
	World w;
	Proc &b = w.spawn(200);
	Op r1 = b.receive(), r2 = b.receive();
	CHECK(b.cancel(r1) == 0);
	CHECK(r1.res() == -ECANCELED);
	CHECK(b.cancel(r2, true) == 0);
	CHECK(r2.res() == -EINTR);
	CHECK(r1.cqes().size() == 1);
	CHECK(r2.cqes().size() == 1);
	CHECK(b.cancel(r1) == -ENOENT);
}

TEST_CASE("cancel a blocked send: the message is withdrawn and uncharged")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = full_mbox(o, a, "in");
	Op s = a.mbox_send(id, "out", 0, 0, 0, ms(100));
	CHECK(a.cancel(s, true) == 0);
	CHECK(s.res() == -EINTR);
	CHECK(w.k->next_deadline() == INT64_MAX); /* its timer is gone */
	CHECK(mstat(o, id).nsenders == 0);
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"in"});
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("only the request's own task can cancel it")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	Op r = b.receive();
	kipc_sqe s{};
	s.opcode = KIPC_SYS_cancel;
	s.target = int64_t(r.ud);
	CHECK(a.now(s) == -ENOENT); /* a's user_data namespace, not b's */
	CHECK(!r.done());
	CHECK(b.cancel(r) == 0);
}

TEST_CASE_FIXTURE(CachedSend, "cancel a cached send: the notification reports the cancel, the message is gone")
{
	CHECK(a.cancel(c) == 0);
	check_notified(c, -ECANCELED);
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"fill"});
	/* and the cache slot is free again */
	CHECK((a.mbox_send(id, "fill2").res() == 0));
	Op c2 = a.mbox_send(id, "cached2", KIPC_F_CACHE);
	CHECK((c2.cqe().flags & KIPC_CQE_F_MORE));
	CHECK(mbox_drain(o, id).size() == 2);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("cancel a call: before delivery withdrawn; after, DELIVERED and the reply is refused")
{
	World w;
	Proc &c = w.spawn(100), &s = w.spawn(200);
	Op c1 = c.call(200, "withdrawn");
	CHECK(c.cancel(c1, true) == 0);
	CHECK(c1.res() == -EINTR);
	CHECK(!(c1.cqe().flags & KIPC_CQE_F_DELIVERED));
	CHECK(s.receive(KIPC_ANY, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);

	Op c2 = c.call(200, "received");
	Op r = s.receive();
	CHECK(c.cancel(c2, true) == 0);
	CHECK(c2.res() == -EINTR);
	CHECK((c2.cqe().flags & KIPC_CQE_F_DELIVERED));
	CHECK(s.reply(r.cqe().token, "refused") == -ESRCH);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("cancel of a port-set receive leaves every member")
{
	World w;
	Proc &o = w.spawn(100);
	int64_t m1 = o.mbox_create(), m2 = o.mbox_create();
	Op r = o.receive_set({m1, m2});
	CHECK(o.cancel(r) == 0);
	CHECK(mstat(o, m1).nreceivers == 0);
	CHECK(mstat(o, m2).nreceivers == 0);
}

TEST_CASE("cancel: bad flags are EINVAL")
{
	World w;
	Proc &b = w.spawn(200);
	Op r = b.receive();
	kipc_sqe s{};
	s.opcode = KIPC_SYS_cancel;
	s.target = int64_t(r.ud);
	s.flags = KIPC_F_NONBLOCK;
	CHECK(b.now(s) == -EINVAL);
	CHECK(!r.done());
	CHECK(b.cancel(r) == 0);
}
