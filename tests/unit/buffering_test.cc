// SPDX-License-Identifier: MIT
/* Buffering: zero, bounded (messages and qbytes), unbounded with quotas, cache. */
#include "harness.h"

using namespace kt;

TEST_CASE("bounded: a sender blocks when the link is full and resumes when room frees")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	uint32_t cap = w.limits.msg_default;
	int64_t id = o.mbox_create(cap, 0, 0, 0666);
	Ledger l;
	for (uint32_t i = 0; i < cap; i++) {
		std::string m = "m" + std::to_string(i);
		l.sent_ok(a.mbox_send(id, m), m);
	}
	Op blocked = a.mbox_send(id, "over");
	CHECK(!blocked.done());
	CHECK(mstat(o, id).nmsg == cap);
	CHECK(mstat(o, id).nsenders == 1);
	Op r = o.mbox_receive(id);
	l.got(r);
	CHECK(r.text() == "m0");
	REQUIRE(blocked.done());
	l.sent_ok(blocked, "over");
	CHECK(mstat(o, id).nmsg == cap);
	l.got(mbox_drain(o, id));
	CHECK(l.balanced());
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("bounded by qbytes: a link holds at most qbytes payload bytes")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	kipc_mbox_attr at{};
	at.capacity = w.limits.msg_max;
	at.qbytes = 10;
	at.mode = 0666;
	int64_t id = o.mbox_open("", 0, &at);
	REQUIRE(id > 0);
	CHECK(mstat(o, id).attr.qbytes == 10);
	CHECK(a.mbox_send(id, "123456", KIPC_F_NONBLOCK).res() == 0);
	CHECK(a.mbox_send(id, "12345", KIPC_F_NONBLOCK).res() == -EAGAIN);
	CHECK(a.mbox_send(id, "1234", KIPC_F_NONBLOCK).res() == 0);
	CHECK(a.mbox_send(id, "", KIPC_F_NONBLOCK).res() == 0 ); /* zero bytes still fit */
	CHECK(mstat(o, id).nbytes == 10);
	CHECK(mbox_drain(o, id).size() == 3);
	/* a message larger than qbytes could never fit: EMSGSIZE, not a wait */
	CHECK(a.mbox_send(id, "12345678901").res() == -EMSGSIZE);
	CHECK(mstat(o, id).nmsg == 0);
}

TEST_CASE("default qbytes is capacity times msgsize")
{
	World w;
	Proc &o = w.spawn(100);
	int64_t id = o.mbox_create(2, 0, 0, 0600, 128);
	CHECK(mstat(o, id).attr.qbytes == 256);
	kipc_taskq_stat st;
	CHECK(o.taskq_stat(&st) == 0);
	CHECK(st.qbytes == uint64_t(w.limits.taskq_capacity) * w.limits.msgsize_default);
}

TEST_CASE("blocked senders enter a freed link in order, FIFO")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101), &b = w.spawn(102);
	int64_t id = full_mbox(o, a, "q");
	Op sb = b.mbox_send(id, "b-waits-first");
	Op sa = a.mbox_send(id, "a-waits-second");
	CHECK(o.mbox_receive(id).text() == "q");
	CHECK(sb.res() == 0);
	CHECK(!sa.done());
	CHECK(o.mbox_receive(id).text() == "b-waits-first");
	CHECK(sa.res() == 0);
	CHECK(o.mbox_receive(id).text() == "a-waits-second");
}

TEST_CASE("unbounded: never blocks on space; the user's byte quota ends it with ENOSPC, nothing queued")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101, 1001, 1001);
	const uint32_t len = std::min<uint32_t>(w.limits.msgsize_max, 1024);
	int64_t id = o.mbox_create(KIPC_UNBOUNDED, 0, 0, 0666, len);
	REQUIRE(id > 0);
	CHECK(mstat(o, id).attr.capacity == KIPC_UNBOUNDED);
	const uint64_t per = message_charge(len, false);
	const uint64_t fit = w.limits.bytes_per_user / per;
	REQUIRE(fit > w.limits.msg_default); /* more than a default bounded link holds */
	Ledger l;
	for (uint64_t i = 0; i < fit; i++) {
		std::string m = payload("u" + std::to_string(i) + ":", len);
		Op s = a.mbox_send(id, m); /* blocking: must never block */
		REQUIRE(s.done());
		REQUIRE(s.res() == 0);
		l.sent_ok(m);
	}
	CHECK(w.charged(1001) == fit * per);
	Op s = a.mbox_send(id, payload("over:", len));
	CHECK(s.res() == -ENOSPC);
	CHECK(w.charged(1001) == fit * per);
	CHECK(mstat(o, id).nmsg == fit);
	/* the quota is per user: another uid may still send */
	CHECK(o.mbox_send(id, "owner").res() == 0);
	l.sent_ok("owner");
	/* and per user across links */
	int64_t id2 = o.mbox_create(KIPC_UNBOUNDED, 0, 0, 0666, len);
	CHECK(a.mbox_send(id2, payload("other-link:", len)).res() == -ENOSPC);
	CHECK(mstat(o, id2).nmsg == 0);
	l.got(mbox_drain(o, id, len));
	CHECK(l.balanced());
	CHECK(w.charged(1001) == 0);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("quota: a blocked sender's message counts against its user's quota")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101, 1001, 1001);
	int64_t id = o.mbox_create(0, 0, 0, 0666);
	Op s = a.mbox_send(id, "held");
	CHECK(w.charged(1001) == message_charge(4, false));
	CHECK(o.mbox_receive(id).text() == "held");
	CHECK(s.res() == 0);
	CHECK(w.charged(1001) == 0);
}

TEST_CASE_FIXTURE(CachedSend, "cache: a full link accepts one extra message per task, then notifies")
{
	CHECK(c.cqes()[0].res == 0);
	CHECK((c.cqes()[0].flags & KIPC_CQE_F_MORE));
	CHECK(mstat(o, id).nsenders == 1);
	/* a second cached send while one is pending */
	CHECK(a.mbox_send(id, "second", KIPC_F_CACHE).res() == -EAGAIN);
	/* other tasks have their own cache slot */
	Proc &b = w.spawn(102);
	Op cb = b.mbox_send(id, "b-cached", KIPC_F_CACHE);
	CHECK((cb.cqe().flags & KIPC_CQE_F_MORE));
	CHECK(o.mbox_receive(id).text() == "fill");
	/* room: the cached message entered the link, the notification follows */
	check_notified(c, 0);
	CHECK((!(c.cqes()[1].flags & KIPC_CQE_F_MORE)));
	CHECK(c.cqes()[1].seq == c.cqes()[0].seq);
	CHECK(cb.cqes().size() == 1);
	/* the slot is free again */
	Op c2 = a.mbox_send(id, "cached-again", KIPC_F_CACHE);
	CHECK((c2.cqe().flags & KIPC_CQE_F_MORE));
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"cached", "b-cached", "cached-again"});
	CHECK(cb.cqes().size() == 2);
	CHECK(c2.cqes().size() == 2);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("cache: a send that fits completes normally without MORE")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(1, 0, 0, 0666);
	Op c = a.mbox_send(id, "fits", KIPC_F_CACHE);
	CHECK(c.res() == 0);
	CHECK(c.cqe().flags == 0);
	CHECK(c.cqes().size() == 1);
	CHECK(o.mbox_receive(id).text() == "fits");
	CHECK(c.cqes().size() == 1);
}

TEST_CASE("cache on a zero-capacity link: the notification comes when a receiver takes it")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(0, 0, 0, 0666);
	Op c = a.mbox_send(id, "rv", KIPC_F_CACHE);
	CHECK((c.cqe().flags & KIPC_CQE_F_MORE));
	Op r = o.mbox_receive(id);
	CHECK(r.text() == "rv");
	REQUIRE(c.cqes().size() == 2);
	CHECK((c.cqes()[1].flags & KIPC_CQE_F_NOTIF));
	CHECK(c.cqes()[1].pid == 100);
}

TEST_CASE_FIXTURE(CachedSend, "cache: the cached message's notification reports EIDRM when the mailbox dies first")
{
	CHECK(o.mbox_destroy(id) == 0);
	check_notified(c, -EIDRM);
	CHECK(w.charged(1000) == 0);
	CHECK(a.mbox_send(id, "x", KIPC_F_CACHE).res() == -EIDRM);
}

TEST_CASE("cache: a cached message survives its sender's exit and is delivered")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = full_mbox(o, a, "fill");
	CHECK((a.mbox_send(id, "cached", KIPC_F_CACHE).cqe().flags & KIPC_CQE_F_MORE));
	w.exit(a);
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"fill", "cached"});
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("task queue setattr: capacity, unbounded, rendezvous; growth admits waiting senders")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	CHECK(b.taskq_setattr(1) == 0);
	CHECK(a.send(200, "one").res() == 0);
	Op s = a.send(200, "two");
	CHECK(!s.done());
	CHECK(b.taskq_setattr(KIPC_UNBOUNDED) == 0);
	CHECK(s.res() == 0);
	kipc_taskq_stat st;
	CHECK(b.taskq_stat(&st) == 0);
	CHECK(st.capacity == KIPC_UNBOUNDED);
	CHECK(st.nmsg == 2);
	CHECK(drain(b) == std::vector<std::string>{"one", "two"});
	CHECK(b.taskq_setattr(w.limits.msg_max + 1) == -EINVAL);
	CHECK(b.taskq_setattr(KIPC_CAP_DEFAULT, 0, KIPC_MBOX_KERNEL_OWNED) == -EINVAL);
	kipc_mbox_attr pa{}; /* a task queue has one receiver: no policy */
	pa.capacity = 1;
	pa.policy = KIPC_POLICY_EXCLUSIVE;
	kipc_sqe ps{};
	__kipc_enc_rec(&ps, KIPC_SYS_taskq_setattr, 0, 0, 0, put_rec(b.mem, pa), sizeof pa);
	CHECK(b.now(ps) == -EINVAL);
	CHECK(b.taskq_stat(&st) == 0);
	CHECK(st.capacity == KIPC_UNBOUNDED); /* nothing changed */
	CHECK(b.taskq_setattr(KIPC_CAP_DEFAULT) == 0);
	CHECK(b.taskq_stat(&st) == 0);
	CHECK(st.capacity == w.limits.taskq_capacity);
}
