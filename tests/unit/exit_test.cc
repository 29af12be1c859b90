// SPDX-License-Identifier: MIT
/* Task exit: what goes with a task and what stays. */
#include "harness.h"

using namespace kt;

TEST_CASE("exit frees the task queue and everything queued on it")
{
	World w;
	Proc &a = w.spawn(100, 1001, 1001), &b = w.spawn(200, 1001, 1001);
	CHECK(a.send(200, "dropped-1").res() == 0);
	CHECK(a.send(200, "dropped-2").res() == 0);
	CHECK(w.charged(1001) > 0);
	w.exit(b);
	CHECK(w.charged(1001) == 0);
	CHECK(w.impl().find_task(200) == nullptr);
}

TEST_CASE("messages a task sent before exiting stay queued and are received")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	int64_t id = b.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666);
	CHECK(a.send(200, "direct").res() == 0);
	CHECK(a.mbox_send(id, "indirect").res() == 0);
	w.exit(a);
	Op r = b.receive();
	CHECK(r.text() == "direct");
	CHECK(r.cqe().pid == 100);
	CHECK(mbox_drain(b, id) == std::vector<std::string>{"indirect"});
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("an exiting task's parked requests complete nowhere and leave nothing behind")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(0, 0, 0, 0666);
	Op s = a.mbox_send(id, "pending", 0, 0, 0, ms(10));
	Op r = a.receive();
	Op c = a.call(100, "call");
	w.exit(a);
	CHECK(s.cqes().empty());
	CHECK(r.cqes().empty());
	CHECK(c.cqes().empty());
	CHECK(w.k->next_deadline() == INT64_MAX);
	CHECK(mstat(o, id).nsenders == 0);
	CHECK(drain(o).empty()); /* the call's request was withdrawn */
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("an exiting holder loses its right; kernel-owned mailboxes lose their owner")
{
	World w;
	Proc &o = w.spawn(100), &h = w.spawn(101);
	int64_t proc_owned = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666);
	int64_t kern = h.mbox_create(KIPC_CAP_DEFAULT, 0, KIPC_MBOX_KERNEL_OWNED, 0666);
	CHECK(o.grant(proc_owned, 101) == 0);
	CHECK(mstat(o, proc_owned).nholders == 2);
	w.exit(h);
	CHECK(mstat(o, proc_owned).nholders == 1);
	kipc_mbox_stat st = mstat(o, kern);
	CHECK(st.owner == 0);
	CHECK(st.nholders == 0);
	CHECK(w.impl().user(1000).mailboxes == 2);
	CHECK(o.mbox_destroy(kern) == 0);
}

TEST_CASE("round-robin: messages assigned to an exiting holder go to the others")
{
	World w;
	Proc &o = w.spawn(100), &h = w.spawn(101), &s = w.spawn(102);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, KIPC_POLICY_ROUND_ROBIN, 0, 0666);
	CHECK(o.grant(id, 101) == 0);
	CHECK(s.mbox_send(id, "to-o").cqe().pid == 100);
	CHECK(s.mbox_send(id, "to-h").cqe().pid == 101);
	w.exit(h);
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"to-o", "to-h"});
}

TEST_CASE("exclusive: the receiver inside exits, another may enter")
{
	World w;
	Proc &o = w.spawn(100), &h = w.spawn(101);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, KIPC_POLICY_EXCLUSIVE, 0, 0666);
	CHECK(o.grant(id, 101) == 0);
	h.mbox_receive(id);
	CHECK(o.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EBUSY);
	w.exit(h);
	CHECK(o.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
}

TEST_CASE("a pid that exits and comes back gets a fresh task queue")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	CHECK(a.send(200, "old-life").res() == 0);
	w.exit(b);
	Proc &b2 = w.spawn(200);
	CHECK(b2.receive(KIPC_ANY, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("the kernel going down completes nothing and frees everything")
{
	auto w = std::make_unique<World>();
	Proc &o = w->spawn(100), &a = w->spawn(101);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, KIPC_MBOX_KERNEL_OWNED, 0666);
	CHECK(a.mbox_send(id, "left").res() == 0);
	a.receive();
	a.mbox_send(id, "x", KIPC_F_CACHE);
	size_t before = a.cq.size();
	w->k.reset(); /* ~Kernel: no completions go out (ASan checks the frees) */
	CHECK(a.cq.size() == before);
	w->k = std::make_unique<Kernel>(w->clock, w->host, w->sink, w->limits, &w->host);
}
