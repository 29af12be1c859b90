// SPDX-License-Identifier: MIT
/* Introspection syscalls: contents, totals, and who may see what. */
#include "intro_helpers.h"

using namespace kt;

TEST_CASE("sysinfo reports limits, objects and counters")
{
	World w;
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(101);
	int64_t box = a.mbox_create(4);
	REQUIRE(box > 0);
	REQUIRE(a.mbox_send(box, "one").res() == 0);
	REQUIRE(a.mbox_send(box, "two!").res() == 0);
	Op r = b.receive(KIPC_ANY); /* parks */
	kipc_sysinfo si = sysinfo(a);
	CHECK(si.msg_max == w.limits.msg_max);
	CHECK(si.bytes_per_user == w.limits.bytes_per_user);
	CHECK(si.msg_overhead == kMessageOverhead);
	CHECK(si.ntasks == 2);
	CHECK(si.nmboxes == 1);
	CHECK(si.nmsg == 2);
	CHECK(si.nbytes == 7);
	CHECK(si.nparked == 1);
	CHECK(si.nsent == 2);
	CHECK(si.nattach == 2);
	CHECK(si.uid == 1000);
	CHECK(si.user_mboxes == 1);
	CHECK(si.user_bytes == message_charge(3, false) + message_charge(4, false));
	CHECK(mbox_drain(a, box).size() == 2);
	w.advance_ms(5);
	si = sysinfo(a);
	CHECK(si.ndelivered == 2);
	CHECK(si.uptime == ms(5));
	CHECK(!r.done());
}

TEST_CASE("task_list: public fields for all, private ones for the same uid or root")
{
	World w;
	Proc &a = w.spawn(100, 1000);
	Proc &b = w.spawn(200, 2000);
	Proc &root = w.spawn(300, 0);
	int64_t box = a.mbox_create(1);
	Op r = a.mbox_receive(box, 64, 0, 0, ms(50)); /* a blocks */
	w.advance_ms(3);

	std::vector<kipc_task_info> v;
	REQUIRE(list(b, KIPC_SYS_task_list, v) == 3);
	REQUIRE(v.size() == 3);
	CHECK(v[0].pid == 100); /* sorted by pid */
	CHECK(v[1].pid == 200);
	CHECK(v[2].pid == 300);
	/* b sees a's public fields only */
	CHECK(v[0].uid == 1000);
	CHECK(v[0].state == KIPC_TASK_BLOCKED);
	CHECK(std::string(v[0].comm) == "test");
	CHECK((v[0].flags & KIPC_INFO_HIDDEN) != 0);
	CHECK(v[0].wait_op == 0);
	CHECK(v[0].capacity == 0);
	CHECK((v[1].flags & (KIPC_INFO_HIDDEN | KIPC_INFO_SELF)) == KIPC_INFO_SELF);

	/* a and root see where a waits */
	for (Proc *p : {&a, &root}) {
		kipc_task_info ti{};
		REQUIRE(one(*p, KIPC_SYS_task_info, 100, &ti) == 0);
		CHECK((ti.flags & KIPC_INFO_HIDDEN) == 0);
		CHECK(ti.state == KIPC_TASK_BLOCKED);
		CHECK(ti.wait_op == KIPC_SYS_mbox_receive);
		CHECK(ti.wait_mbox == box);
		CHECK(ti.now - ti.wait_since == ms(3));
		CHECK(ti.wait_deadline == ti.wait_since + ms(50));
		CHECK(ti.nparked == 1);
		CHECK(ti.nheld == 1);
		CHECK(ti.capacity == w.limits.taskq_capacity);
	}
	w.advance_ms(50);
	CHECK(r.res() == -ETIMEDOUT);
	kipc_task_info ti{};
	REQUIRE(one(a, KIPC_SYS_task_info, 100, &ti) == 0);
	CHECK(ti.state == KIPC_TASK_RUNNING);
	CHECK(one(a, KIPC_SYS_task_info, 999, &ti) == -ESRCH);
	CHECK(one(a, KIPC_SYS_task_info, 0, &ti) == -EINVAL);
}

TEST_CASE("task_list: total count and a short buffer; unattached tasks")
{
	World w;
	Proc &a = w.spawn(100);
	w.spawn(101);
	w.fork(102); /* alive, not attached */
	REQUIRE(a.send(102, "hello").res() == 0);
	std::vector<kipc_task_info> v;
	CHECK(list(a, KIPC_SYS_task_list, v, 2) == 3);
	CHECK(v.size() == 2);
	CHECK(list(a, KIPC_SYS_task_list, v, 0) == 3);
	REQUIRE(list(a, KIPC_SYS_task_list, v, 8) == 3);
	CHECK(v[2].state == KIPC_TASK_UNATTACHED);
	CHECK(v[2].nmsg == 1);
	CHECK(v[2].nbytes == 5);
	CHECK(v[0].nsent == 1);
}

TEST_CASE("mbox_list follows permissions: owner, holders, read bits, root")
{
	World w;
	Proc &a = w.spawn(100, 1000, 100);
	Proc &b = w.spawn(200, 2000, 200);
	Proc &c = w.spawn(300, 3000, 100); /* a's group */
	Proc &root = w.spawn(400, 0, 0);
	int64_t priv = a.mbox_create(4, 0, 0, 0600);
	int64_t group = a.mbox_create(4, 0, 0, 0640);
	int64_t world = a.mbox_create(4, 0, 0, 0604);
	int64_t granted = a.mbox_create(4, 0, 0, 0600);
	REQUIRE(a.grant(granted, 200) == 0);

	auto ids = [&](Proc &p) {
		std::vector<kipc_mbox_info> v;
		int64_t n = list(p, KIPC_SYS_mbox_list, v);
		std::vector<int64_t> out;
		for (auto &m : v)
			out.push_back(m.st.id);
		REQUIRE(n == int64_t(out.size()));
		return out;
	};
	CHECK(ids(a) == std::vector<int64_t>{priv, group, world, granted});
	CHECK(ids(b) == std::vector<int64_t>{world, granted});
	CHECK(ids(c) == std::vector<int64_t>{group}); /* group bits, not other bits */
	CHECK(ids(root).size() == 4);

	kipc_mbox_info mi{};
	CHECK(one(b, KIPC_SYS_mbox_info, priv, &mi) == -EACCES);
	CHECK(one(b, KIPC_SYS_mbox_info, world, &mi) == 0);
	CHECK(mi.st.attr.mode == 0604);
	CHECK(mi.st.owner == 100);
	CHECK(one(b, KIPC_SYS_mbox_info, 12345, &mi) == -EINVAL);
	REQUIRE(a.mbox_destroy(world) == 0);
	CHECK(one(b, KIPC_SYS_mbox_info, world, &mi) == -EIDRM);

	std::vector<kipc_waiter_info> wv;
	CHECK(list(b, KIPC_SYS_waiter_list, wv, 8, priv) == -EACCES);
	std::vector<kipc_msg_info> mv;
	CHECK(list(b, KIPC_SYS_msg_list, mv, 8, priv) == -EACCES);
	CHECK(list(root, KIPC_SYS_msg_list, mv, 8, priv) == 0);
}

TEST_CASE("mbox_info: fields, policy state and cached messages")
{
	World w;
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(101);
	kipc_mbox_attr attr{};
	attr.capacity = 1;
	attr.mode = 0666;
	attr.policy = KIPC_POLICY_PAIR;
	attr.flags = KIPC_MBOX_KERNEL_OWNED;
	int64_t box = a.mbox_open("/shop", KIPC_O_CREAT, &attr);
	REQUIRE(box > 0);
	REQUIRE(b.mbox_send(box, "x").res() == 0);
	Op c = b.mbox_send(box, "cached", KIPC_F_CACHE);
	REQUIRE(c.res() == 0);
	kipc_mbox_info mi{};
	REQUIRE(one(a, KIPC_SYS_mbox_info, box, &mi) == 0);
	CHECK(std::string(mi.st.name) == "/shop");
	CHECK(mi.st.attr.flags == KIPC_MBOX_KERNEL_OWNED);
	CHECK(mi.st.attr.policy == KIPC_POLICY_PAIR);
	CHECK(mi.pair_sender == 101);
	CHECK(mi.pair_receiver == 0);
	CHECK(mi.st.nmsg == 1);
	CHECK(mi.st.nsenders == 1);
	CHECK(mi.ncached == 1);
	CHECK(mi.st.nholders == 1);
	CHECK(mi.st.lspid == 101);
}

TEST_CASE("waiter_list: receivers, blocked senders, cached messages and holders")
{
	World w;
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(101);
	Proc &c = w.spawn(102);
	int64_t box = a.mbox_create(0, 0, KIPC_MBOX_KERNEL_OWNED, 0666); /* rendezvous */
	REQUIRE(a.grant(box, 102) == 0);
	Op s = b.mbox_send(box, "hello", 0, 0, 0, ms(100));
	w.advance_ms(2);
	std::vector<kipc_waiter_info> v;
	REQUIRE(list(c, KIPC_SYS_waiter_list, v, 8, box) == 3);
	CHECK(v[0].kind == KIPC_WAITER_SENDER);
	CHECK(v[0].pid == 101);
	CHECK(v[0].op == KIPC_SYS_mbox_send);
	CHECK(v[0].len == 5);
	CHECK(v[0].deadline - v[0].since == ms(100));
	CHECK(v[1].kind == KIPC_WAITER_HOLDER);
	CHECK(v[1].pid == 100);
	CHECK(v[1].flags == KIPC_WAITER_F_OWNER);
	CHECK(v[2].kind == KIPC_WAITER_HOLDER);
	CHECK(v[2].pid == 102);
	CHECK(v[2].flags == 0);
	Op r = c.mbox_receive(box);
	CHECK(r.text() == "hello");
	CHECK(s.res() == 0);

	/* a receiver waiting on its own task queue, seen by its own uid */
	Op q = b.receive(KIPC_ANY, 32);
	REQUIRE(list(a, KIPC_SYS_waiter_list, v, 8, 101, KIPC_INTRO_TASKQ) == 1);
	CHECK(v[0].kind == KIPC_WAITER_RECEIVER);
	CHECK(v[0].op == KIPC_SYS_receive);
	CHECK(v[0].len == 32);
	CHECK(list(a, KIPC_SYS_waiter_list, v, 8, 999, KIPC_INTRO_TASKQ) == -ESRCH);
	CHECK(list(a, KIPC_SYS_waiter_list, v, 8, box, 0x80) == -EINVAL);
	REQUIRE(a.send(101, "x").res() == 0);
	CHECK(q.text() == "x");
}

TEST_CASE("msg_list: headers in delivery order, pending ones last, no payloads")
{
	World w;
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(101);
	Proc &other = w.spawn(300, 3000);
	REQUIRE(b.taskq_setattr(2) == 0);
	REQUIRE(a.send(101, "low", 0, 1, 7).res() == 0);
	w.advance_ms(1);
	REQUIRE(a.send(101, "high!", 0, 5).res() == 0);
	Op blocked = a.send(101, "later");
	CHECK(!blocked.done());
	std::vector<kipc_msg_info> v;
	REQUIRE(list(b, KIPC_SYS_msg_list, v, 8, 101, KIPC_INTRO_TASKQ) == 3);
	CHECK(v[0].len == 5);
	CHECK(v[0].prio == 5);
	CHECK(v[1].len == 3);
	CHECK(v[1].type == 7);
	CHECK(v[0].stime - v[1].stime == ms(1));
	CHECK(v[2].flags == KIPC_MSG_PENDING);
	CHECK(v[0].sender == 100);
	CHECK(v[0].seq > v[1].seq);
	/* a short buffer: the total, and the first records */
	REQUIRE(list(b, KIPC_SYS_msg_list, v, 1, 101, KIPC_INTRO_TASKQ) == 3);
	CHECK(v.size() == 1);
	CHECK(list(other, KIPC_SYS_msg_list, v, 8, 101, KIPC_INTRO_TASKQ) == -EACCES);
	CHECK(drain(b).size() == 3);
	CHECK(blocked.res() == 0);
}

TEST_CASE_FIXTURE(OneTask, "introspection: bad flags and buffers")
{
	s.opcode = KIPC_SYS_task_list;
	s.flags = 1;
	CHECK(a.now(s) == -EINVAL);
	s.flags = 0;
	s.addr2 = (1 << 20) - 8;
	s.len2 = 4096;
	CHECK(a.now(s) == -EFAULT);
	s.opcode = KIPC_SYS_sysinfo;
	s.addr2 = 64;
	s.len2 = 8; /* shorter than the record */
	CHECK(a.now(s) == -EINVAL);
}

TEST_CASE("kernel_info: what the host set, to every caller; sysinfo has every limit")
{
	World w;
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(200, 2000); /* another user */
	kipc_kernel_info set{};
	std::snprintf(set.version, sizeof set.version, "9.9.9");
	set.build_id = 0x1234abcdull;
	set.pid = 4242;
	std::snprintf(set.loop, sizeof set.loop, "epoll");
	std::snprintf(set.cmdline, sizeof set.cmdline, "msg_max=4");
	w.k->set_kernel_info(set);
	kipc_kernel_info ki{};
	REQUIRE(one(b, KIPC_SYS_kernel_info, 0, &ki) == 0);
	CHECK(std::string(ki.version) == "9.9.9");
	CHECK(ki.build_id == 0x1234abcdull);
	CHECK(ki.pid == 4242);
	CHECK(std::string(ki.loop) == "epoll");
	CHECK(std::string(ki.cmdline) == "msg_max=4");

	kipc_sqe s{};
	s.opcode = KIPC_SYS_kernel_info;
	s.flags = 1;
	s.addr2 = 64;
	s.len2 = sizeof(kipc_kernel_info);
	CHECK(a.now(s) == -EINVAL); /* unknown flags */
	s.flags = 0;
	s.len2 = sizeof(kipc_kernel_info) - 1;
	CHECK(a.now(s) == -EINVAL); /* shorter than the record */
	s.addr2 = (1 << 20) - 8;
	s.len2 = sizeof(kipc_kernel_info);
	CHECK(a.now(s) == -EFAULT);

	kipc_sysinfo si = sysinfo(a);
	CHECK(si.tasks_per_user == w.limits.tasks_per_user);
	CHECK(si.mq_msg_max == w.limits.mq_msg_max);
	CHECK(si.mq_msgsize_max == w.limits.mq_msgsize_max);
	CHECK(si.mq_queues_max == w.limits.mq_queues_max);
	CHECK(si.mq_bytes_per_user == w.limits.mq_bytes_per_user);
	CHECK(si.msgmax == w.limits.msgmax);
	CHECK(si.msgmnb == w.limits.msgmnb);
	CHECK(si.msgmni == w.limits.msgmni);
	CHECK(si.rsvd0 == 0);
}
