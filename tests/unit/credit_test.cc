// SPDX-License-Identifier: MIT
/*
 * Send credits, the core's part (kernel/ipc/credit.cc): reserve_sends()
 * gives room beyond what is queued and held, charges each credit's bytes
 * to the sender's user, and refuses links where a credit could not be
 * honoured; release_sends() gives the charge back. kipcd's rules around
 * it are in tests/selftests/credit_test.c.
 */
#include "harness.h"

using namespace kt;

namespace {

struct Res {
	uint32_t n;
	uint32_t msgsize;
	uint64_t charge;
};

Res reserve(World &w, Proc &p, int64_t id, uint32_t held, uint32_t want,
	    uint8_t op = KIPC_SYS_mbox_send)
{
	Res r{};
	r.n = w.k->reserve_sends(p.task, op, id, held, want, &r.msgsize, &r.charge);
	return r;
}

} // namespace

TEST_CASE("credits: room beyond the queued messages and the credits held")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101, 1001);
	int64_t id = o.mbox_create(20, 0, 0, 0622, 64);
	REQUIRE(id > 0);
	CHECK(a.mbox_send(id, "m").res() == 0);
	uint64_t before = w.charged(1001);
	Res r = reserve(w, a, id, 0, 16);
	CHECK(r.n == 16);
	CHECK(r.msgsize == 64);
	CHECK(r.charge == message_charge(64, false));
	CHECK(w.charged(1001) == before + 16 * r.charge);
	/* 19 slots are free, 16 held: 3 more at most */
	Res more = reserve(w, a, id, 16, 16);
	CHECK(more.n == 3);
	CHECK(reserve(w, a, id, 19, 16).n == 0);
	/* a credit send: its charge back, then the send takes its own */
	w.k->release_sends(1001, r.charge);
	CHECK(a.mbox_send(id, "c").res() == 0);
	w.k->release_sends(1001, 18 * r.charge);
	CHECK(w.charged(1001) == before + message_charge(1, false));
	CHECK(mstat(o, id).nmsg == 2);
}

TEST_CASE("credits: the user's quota bounds them, and is charged")
{
	Limits l = roomy_limits();
	l.bytes_per_user = 64 * 1024;
	World w(l);
	Proc &a = w.spawn(100, 1000);
	int64_t id = a.mbox_create(KIPC_UNBOUNDED, 0, 0, 0600, 4096);
	REQUIRE(id > 0);
	Res r = reserve(w, a, id, 0, 64);
	CHECK(r.n == l.bytes_per_user / message_charge(4096, false));
	CHECK(w.charged(1000) == r.n * r.charge);
	/* nothing else fits the quota now: another send fails as it would */
	std::string big(4096, 'x');
	CHECK(a.mbox_send(id, big, KIPC_F_NONBLOCK).res() == -ENOSPC);
	w.k->release_sends(1000, r.n * r.charge);
	CHECK(w.charged(1000) == 0);
	CHECK(a.mbox_send(id, big, KIPC_F_NONBLOCK).res() == 0);
}

TEST_CASE("credits: refused where a send could not complete at once")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101, 1001);
	/* rendezvous */
	int64_t rdv = o.mbox_create(0, 0, 0, 0622);
	CHECK(reserve(w, a, rdv, 0, 16).n == 0);
	/* round-robin */
	int64_t rr = o.mbox_create(8, KIPC_POLICY_ROUND_ROBIN, 0, 0622);
	CHECK(reserve(w, a, rr, 0, 16).n == 0);
	/* fixed-size */
	int64_t fx = o.mbox_create(8, 0, KIPC_MBOX_FIXED, 0622, 16);
	CHECK(reserve(w, a, fx, 0, 16).n == 0);
	/* no write permission */
	int64_t ro = o.mbox_create(8, 0, 0, 0600);
	CHECK(reserve(w, a, ro, 0, 16).n == 0);
	/* full, and a sender waiting for room */
	int64_t full = o.mbox_create(1, 0, 0, 0622);
	CHECK(a.mbox_send(full, "1").res() == 0);
	CHECK(reserve(w, a, full, 0, 16).n == 0);
	Op blocked = a.mbox_send(full, "2");
	CHECK(!blocked.done());
	CHECK(o.mbox_receive(full).text() == "1");
	CHECK(blocked.res() == 0);
	Op again = a.mbox_send(full, "3");
	CHECK(!again.done());
	CHECK(reserve(w, a, full, 0, 16).n == 0);
	/* gone */
	CHECK(o.mbox_destroy(full) == 0);
	CHECK(again.res() == -EIDRM);
	CHECK(reserve(w, a, full, 0, 16).n == 0);
	/* POSIX and System V queues have their own calls */
	CHECK(w.charged(1001) == 0);
}

TEST_CASE("credits: a task queue's room, its messages' extension charged")
{
	World w(roomy_limits());
	Proc &b = w.spawn(100, 1001), &a = w.spawn(101, 1001);
	REQUIRE(b.taskq_setattr(20, 64) == 0);
	CHECK(a.send(b.pid, "m").res() == 0);
	uint64_t before = w.charged(1001);
	Res r = reserve(w, a, b.pid, 0, 16, KIPC_SYS_send);
	CHECK(r.n == 16);
	CHECK(r.msgsize == 64);
	/* keyed by sender: every message carries its extension */
	CHECK(r.charge == message_charge(64, true));
	CHECK(w.charged(1001) == before + 16 * r.charge);
	Res more = reserve(w, a, b.pid, 16, 16, KIPC_SYS_send);
	CHECK(more.n == 3);
	w.k->release_sends(1001, more.n * more.charge);
	/* the same number as a mailbox id is another link */
	CHECK(reserve(w, a, b.pid, 0, 16).n == 0);
	/* a credit send: its charge back, then the send takes its own, never more */
	w.k->release_sends(1001, r.charge);
	CHECK(a.send(b.pid, "c").res() == 0);
	CHECK(w.charged(1001) <= before + 16 * r.charge);
	w.k->release_sends(1001, 15 * r.charge);
	CHECK(w.charged(1001) == before + message_charge(1, true));
	CHECK(b.receive(a.pid).text() == "m");
	CHECK(b.receive(a.pid).text() == "c");
}

TEST_CASE("credits: a task queue only of an attached task the sender may send to")
{
	World w(roomy_limits());
	Proc &b = w.spawn(100, 1001), &a = w.spawn(101, 1001), &other = w.spawn(102, 1002);
	Proc &root = w.spawn(103, 0);
	/* another user's task: EPERM for its sends, no credit */
	CHECK(other.send(b.pid, "x").res() == -EPERM);
	CHECK(reserve(w, other, b.pid, 0, 16, KIPC_SYS_send).n == 0);
	/* root may send to anyone */
	Res r = reserve(w, root, b.pid, 0, 16, KIPC_SYS_send);
	CHECK(r.n == 16);
	w.k->release_sends(0, r.n * r.charge);
	/* a live process not attached yet: its sends queue, but no credits */
	Proc &late = w.fork(104, 1001);
	CHECK(a.send(late.pid, "early").res() == 0);
	CHECK(reserve(w, a, late.pid, 0, 16, KIPC_SYS_send).n == 0);
	/* no such process, a bad pid */
	CHECK(reserve(w, a, 999, 0, 16, KIPC_SYS_send).n == 0);
	CHECK(reserve(w, a, -1, 0, 16, KIPC_SYS_send).n == 0);
	CHECK(reserve(w, a, int64_t(1) << 40, 0, 16, KIPC_SYS_send).n == 0);
	/* full: none; a sender waiting for room: none */
	REQUIRE(b.taskq_setattr(1) == 0);
	CHECK(a.send(b.pid, "1").res() == 0);
	CHECK(reserve(w, a, b.pid, 0, 16, KIPC_SYS_send).n == 0);
	Op blocked = a.send(b.pid, "2");
	CHECK(!blocked.done());
	CHECK(b.receive().text() == "1");
	CHECK(blocked.res() == 0);
	Op again = a.send(b.pid, "3");
	CHECK(!again.done());
	CHECK(reserve(w, a, b.pid, 0, 16, KIPC_SYS_send).n == 0);
	/* other ops are not credits */
	CHECK(reserve(w, a, b.pid, 0, 16, KIPC_SYS_call).n == 0);
	CHECK(w.charged(1001) == w.impl().user(1001).bytes - w.impl().user(1001).credit_bytes);
	CHECK(w.impl().user(1001).credit_bytes == 0);
	w.exit(b);
	CHECK(again.res() == -ESRCH);
	CHECK(reserve(w, a, 100, 0, 16, KIPC_SYS_send).n == 0);
}
