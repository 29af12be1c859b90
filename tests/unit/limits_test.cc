// SPDX-License-Identifier: MIT
/*
 * Per-user limits on what one user can make the kernel hold: attached
 * processes (tasks_per_user), and a flood into an unbounded mailbox
 * (bytes_per_user) that must end in ENOSPC with the charge bounded.
 */
#include "harness.h"

using namespace kt;

TEST_CASE("tasks_per_user: attach past the limit fails EAGAIN, per uid")
{
	Limits l = Limits::from_config();
	l.tasks_per_user = 2;
	World w(l);
	w.spawn(100, 1000);
	Proc &b = w.spawn(101, 1000);
	Proc &c = w.fork(102, 1000);
	Task *t = nullptr;
	CHECK(w.k->attach(Creds{c.pid, c.uid, c.gid}, &c.mem.user, "c", &c, &t) == -EAGAIN);
	CHECK(t == nullptr);
	/* another user is not affected */
	w.spawn(103, 1001);
	/* an exit makes room */
	w.exit(b);
	CHECK(w.k->attach(Creds{c.pid, c.uid, c.gid}, &c.mem.user, "c", &c, &c.task) == 0);
	CHECK(w.impl().user(1000).tasks == 2);
}

TEST_CASE("tasks_per_user: a task created by a send counts once it attaches")
{
	Limits l = Limits::from_config();
	l.tasks_per_user = 1;
	World w(l);
	Proc &a = w.spawn(100, 0); /* root may send to anyone */
	Proc &b = w.fork(101, 1001);
	CHECK(a.send(101, "early").res() == 0); /* b's queue exists, b has not attached */
	CHECK(w.impl().user(1001).tasks == 0);
	w.attach(b);
	CHECK(w.impl().user(1001).tasks == 1);
	CHECK(drain(b) == std::vector<std::string>{"early"});
	w.exit(b);
	CHECK(w.impl().user(1001).tasks == 0);
}

TEST_CASE("tasks_per_user: boot parameter")
{
	Limits l = Limits::from_config();
	CHECK(l.tasks_per_user == CONFIG_TASKS_PER_USER);
	CHECK(l.set("tasks_per_user", "7") == 0);
	CHECK(l.tasks_per_user == 7);
	CHECK(l.set("tasks_per_user", "0") == -EINVAL);
}

TEST_CASE("flood into an unbounded mailbox: ENOSPC, the charge stays bounded")
{
	Limits l = Limits::from_config();
	l.bytes_per_user = 64 * 1024;
	World w(l);
	Proc &a = w.spawn(100, 1000);
	int64_t id = a.mbox_create(KIPC_UNBOUNDED, 0, 0, 0600, 256); /* fits tiny_defconfig */
	REQUIRE(id > 0);
	std::string data(200, 'x');
	int ok = 0, nospc = 0;
	for (int i = 0; i < 1000; i++) {
		int64_t r = a.mbox_send(id, data, KIPC_F_NONBLOCK).res();
		if (r == 0)
			ok++;
		else if (r == -ENOSPC)
			nospc++;
	}
	CHECK(ok == int(l.bytes_per_user / message_charge(uint32_t(data.size()), false)));
	CHECK(nospc == 1000 - ok);
	CHECK(w.charged(1000) <= l.bytes_per_user);
	/* another user is not starved by the flood */
	Proc &b = w.spawn(101, 1001);
	kipc_mbox_attr m{};
	m.mode = 0622;
	CHECK(a.mbox_setattr(id, KIPC_SET_MODE, m) == 0);
	CHECK(b.mbox_send(id, data, KIPC_F_NONBLOCK).res() == 0);
	/* receiving frees the charge */
	CHECK(mbox_drain(a, id, 256).size() == size_t(ok + 1));
	CHECK(w.charged(1000) == 0);
	CHECK(w.charged(1001) == 0);
}
