// SPDX-License-Identifier: MIT
/*
 * Receive push, the core's part (kernel/ipc/push.cc): push_next()
 * walks the messages a plain receive would take next, in delivery order,
 * without taking them; take_pushed() is that receive without the copy
 * (room freed, a blocked sender completes, counted and traced as a
 * receive). kipcd's rules around it are in tests/selftests/push_test.c.
 */
#include "harness.h"

#include <cstring>

using namespace kt;

namespace {

std::string payload(const PushMsg &m)
{
	return std::string(static_cast<const char *>(m.data), m.cqe.len);
}

} // namespace

TEST_CASE("push: the next messages in delivery order, still queued")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &r = w.spawn(101);
	int64_t id = o.mbox_create(8, 0, KIPC_MBOX_KERNEL_OWNED, 0666, 64);
	REQUIRE(id > 0);
	PushMsg m;
	CHECK(w.k->push_next(r.task, id, 0, 128, &m) == -EAGAIN); /* empty */
	for (const char *s : {"a", "b", "c"})
		CHECK(o.mbox_send(id, s).res() == 0);
	REQUIRE(w.k->push_next(r.task, id, 0, 128, &m) == 0);
	CHECK(payload(m) == "a");
	CHECK(m.cqe.res == 1);
	CHECK(m.cqe.pid == 100);
	CHECK(m.cqe.source == id);
	PushMsg b, c, none;
	REQUIRE(w.k->push_next(r.task, id, m.seq, 128, &b) == 0);
	CHECK(payload(b) == "b");
	REQUIRE(w.k->push_next(r.task, id, b.seq, 128, &c) == 0);
	CHECK(payload(c) == "c");
	CHECK(w.k->push_next(r.task, id, c.seq, 128, &none) == -EAGAIN);
	CHECK(mstat(o, id).nmsg == 3); /* nothing left the queue */
	/* a sequence number no queued message has */
	CHECK(w.k->push_next(r.task, id, c.seq + 1, 128, &none) == -ESTALE);
	/* too large for a slot: not pushed */
	CHECK(w.k->push_next(r.task, id, 0, 0, &none) == -EAGAIN);
}

TEST_CASE("push: take_pushed is a receive without the copy")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &r = w.spawn(101);
	int64_t id = o.mbox_create(2, 0, KIPC_MBOX_KERNEL_OWNED, 0666, 64);
	REQUIRE(id > 0);
	CHECK(o.mbox_send(id, "a").res() == 0);
	CHECK(o.mbox_send(id, "b").res() == 0);
	Op blocked = o.mbox_send(id, "c"); /* full: waits for room */
	CHECK(!blocked.done());
	PushMsg m;
	REQUIRE(w.k->push_next(r.task, id, 0, 128, &m) == 0);
	CHECK_FALSE(w.k->take_pushed(r.task, id, m.seq + 1)); /* not the head */
	CHECK(mstat(o, id).nmsg == 2);
	CHECK(w.k->take_pushed(r.task, id, m.seq));
	CHECK(blocked.done()); /* its room came */
	CHECK(blocked.res() == 0);
	kipc_mbox_stat st = mstat(o, id);
	CHECK(st.nmsg == 2);
	CHECK(st.nreceived == 1);
	CHECK(r.mbox_receive(id).text() == "b");
	CHECK(r.mbox_receive(id).text() == "c");
}

TEST_CASE("push: only what a plain receive of the task would take")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &r = w.spawn(101, 1001);
	PushMsg m;
	/* no receive right: a process-owned mailbox */
	int64_t own = o.mbox_create(8, 0, 0, 0600, 64);
	CHECK(o.mbox_send(own, "a").res() == 0);
	CHECK(w.k->push_next(r.task, own, 0, 128, &m) == -EPERM);
	/* not policy ANY: the receiver is decided at receive time */
	for (uint32_t policy : {KIPC_POLICY_ROUND_ROBIN, KIPC_POLICY_PAIR, KIPC_POLICY_EXCLUSIVE}) {
		int64_t p = o.mbox_create(8, policy, KIPC_MBOX_KERNEL_OWNED, 0666, 64);
		CHECK(o.mbox_send(p, "a").res() == 0);
		CHECK(w.k->push_next(r.task, p, 0, 128, &m) == -EINVAL);
	}
	/* a higher priority ends the chain; a typed message stops it */
	int64_t id = o.mbox_create(8, 0, KIPC_MBOX_KERNEL_OWNED, 0666, 64);
	CHECK(o.mbox_send(id, "a", 0, 1).res() == 0);
	CHECK(o.mbox_send(id, "b", 0, 0).res() == 0);
	REQUIRE(w.k->push_next(r.task, id, 0, 128, &m) == 0);
	CHECK(payload(m) == "a");
	PushMsg n;
	CHECK(w.k->push_next(r.task, id, m.seq, 128, &n) == -EAGAIN);
	CHECK(o.mbox_send(id, "t", 0, 0, 7).res() == 0);
	CHECK(w.k->push_next(r.task, id, 0, 128, &n) == -EAGAIN);
}

/*
 * kipcd's count of what it pushed can be wrong only through a bug of its
 * own, and then push_next() must say so (-ESTALE: it recalls), not read
 * the message it remembers: a message received meanwhile is freed, and
 * so may be its slab chunk (a large message's own chunk goes back at
 * once), whose id another slab may reuse.
 */
TEST_CASE("push: a pushed message received meanwhile is stale, not read")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &r = w.spawn(101);
	int64_t id = o.mbox_create(8, 0, KIPC_MBOX_KERNEL_OWNED, 0666, 16384);
	REQUIRE(id > 0);
	std::string big(9000, 'x'); /* past the largest size class: a chunk of its own */
	CHECK(o.mbox_send(id, big).res() == 0);
	CHECK(o.mbox_send(id, "b").res() == 0);
	PushMsg m, n;
	REQUIRE(w.k->push_next(r.task, id, 0, 16384, &m) == 0);
	CHECK(m.cqe.len == big.size());
	CHECK(r.mbox_receive(id, 16384).text() == big); /* freed, and its chunk */
	CHECK(w.k->push_next(r.task, id, m.seq, 16384, &n) == -ESTALE);
	/* what is queued now is pushed from the head again */
	REQUIRE(w.k->push_next(r.task, id, 0, 16384, &n) == 0);
	CHECK(payload(n) == "b");
}

/*
 * The own task queue (KIPC_PUSH_TASKQ): what receive(KIPC_ANY) takes
 * next, every message of it keyed by sender (an extension), so the walk
 * stops at a typed or call message instead of at the first extension.
 */
TEST_CASE("push: a task queue's next messages, still queued, up to a typed or call one")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &r = w.spawn(101);
	PushMsg m, n, none;
	CHECK(w.k->push_next(r.task, KIPC_PUSH_TASKQ, 0, 128, &m) == -EAGAIN); /* empty */
	for (const char *s : {"a", "b"})
		CHECK(o.send(101, s).res() == 0);
	CHECK(o.send(101, "t", 0, 0, 7).res() == 0); /* typed */
	CHECK(o.send(101, "c").res() == 0);
	REQUIRE(w.k->push_next(r.task, KIPC_PUSH_TASKQ, 0, 128, &m) == 0);
	CHECK(payload(m) == "a");
	CHECK(m.cqe.res == 1);
	CHECK(m.cqe.pid == 100);
	CHECK(m.cqe.type == 0);
	REQUIRE(w.k->push_next(r.task, KIPC_PUSH_TASKQ, m.seq, 128, &n) == 0);
	CHECK(payload(n) == "b");
	CHECK(w.k->push_next(r.task, KIPC_PUSH_TASKQ, n.seq, 128, &none) == -EAGAIN); /* typed */
	kipc_taskq_stat st{};
	CHECK(r.taskq_stat(&st) == 0);
	CHECK(st.nmsg == 4); /* nothing left the queue */
	/* what a receive of it reports, the same as the pushed slot says */
	CHECK(w.k->take_pushed(r.task, KIPC_PUSH_TASKQ, m.seq));
	CHECK_FALSE(w.k->take_pushed(r.task, KIPC_PUSH_TASKQ, m.seq)); /* gone */
	Op b = r.receive();
	CHECK(b.text() == "b");
	CHECK(b.cqe().seq == n.seq);
	CHECK(b.cqe().source == n.cqe.source);
	CHECK(r.receive().text() == "t");
	/* a call is not pushed: its receive hands out a token */
	Op call = o.call(101, "q");
	REQUIRE(w.k->push_next(r.task, KIPC_PUSH_TASKQ, 0, 128, &m) == 0);
	CHECK(payload(m) == "c");
	CHECK(w.k->push_next(r.task, KIPC_PUSH_TASKQ, m.seq, 128, &none) == -EAGAIN);
	CHECK(!call.done());
}

TEST_CASE("push: a task queue's take_pushed frees room for a blocked sender")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &r = w.spawn(101);
	REQUIRE(r.taskq_setattr(1) == 0);
	CHECK(o.send(101, "a").res() == 0);
	Op blocked = o.send(101, "b"); /* full: waits for room */
	CHECK(!blocked.done());
	PushMsg m;
	REQUIRE(w.k->push_next(r.task, KIPC_PUSH_TASKQ, 0, 128, &m) == 0);
	CHECK(w.k->take_pushed(r.task, KIPC_PUSH_TASKQ, m.seq));
	CHECK(blocked.done());
	CHECK(blocked.res() == 0);
	CHECK(r.receive().text() == "b");
}

/*
 * Which mailboxes a task's exit changes for their other receivers
 * (kipcd takes back only those pushes at an exit): its own
 * process-owned ones, which die with it; not a kernel-owned one it
 * owns, nor one it only holds a right in, nor anybody else's.
 */
TEST_CASE("push: exit_touches is the owner's process-owned mailbox alone")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &h = w.spawn(101), &r = w.spawn(102);
	int64_t own = o.mbox_create(8, 0, 0, 0666, 64);
	int64_t kern = o.mbox_create(8, 0, KIPC_MBOX_KERNEL_OWNED, 0666, 64);
	int64_t other = r.mbox_create(8, 0, 0, 0666, 64);
	REQUIRE(own > 0);
	REQUIRE(kern > 0);
	REQUIRE(other > 0);
	CHECK(o.grant(own, h.pid) == 0);
	CHECK(r.grant(other, h.pid) == 0);
	CHECK(w.k->exit_touches(o.task, own));
	CHECK_FALSE(w.k->exit_touches(o.task, kern));   /* it loses its owner only */
	CHECK_FALSE(w.k->exit_touches(h.task, own));    /* a holder's right is its own */
	CHECK_FALSE(w.k->exit_touches(h.task, other));
	CHECK_FALSE(w.k->exit_touches(o.task, other));  /* no right at all */
	CHECK(w.k->exit_touches(nullptr, kern));
	/* what the exits do: the owner's destroys, the others' leave the messages */
	CHECK(o.mbox_send(kern, "k").res() == 0);
	CHECK(o.mbox_send(own, "o").res() == 0);
	w.exit(h);
	CHECK(r.mbox_receive(kern).text() == "k");
	w.exit(o);
	CHECK(w.k->exit_touches(r.task, own)); /* gone */
	CHECK(r.mbox_send(kern, "k2").res() == 0);
	CHECK(r.mbox_receive(kern).text() == "k2");
}
