// SPDX-License-Identifier: MIT
/* Permissions: mailbox mode bits, uid 0, direct sends across uids. */
#include "harness.h"

using namespace kt;

TEST_CASE("mode bits: write permission is needed to send (owner, group, other)")
{
	World w;
	Proc &o = w.spawn(100, 1000, 500);
	Proc &grp = w.spawn(101, 1001, 500);
	Proc &oth = w.spawn(102, 1002, 502);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0620);
	CHECK(o.mbox_send(id, "owner").res() == 0);
	CHECK(grp.mbox_send(id, "group").res() == 0);
	CHECK(oth.mbox_send(id, "other").res() == -EACCES);
	CHECK(oth.mbox_call(id, "other").res() == -EACCES);
	int64_t id2 = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0402);
	CHECK(o.mbox_send(id2, "owner").res() == -EACCES); /* owner bits win */
	CHECK(grp.mbox_send(id2, "group").res() == -EACCES);
	CHECK(oth.mbox_send(id2, "other").res() == 0);
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"owner", "group"});
	CHECK(mbox_drain(o, id2) == std::vector<std::string>{"other"});
}

TEST_CASE("mode bits: read permission is needed to receive from a kernel-owned mailbox")
{
	World w;
	Proc &o = w.spawn(100, 1000, 500);
	Proc &grp = w.spawn(101, 1001, 500);
	Proc &oth = w.spawn(102, 1002, 502);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, KIPC_MBOX_KERNEL_OWNED, 0642);
	CHECK(oth.mbox_send(id, "m1").res() == 0);
	CHECK(oth.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EACCES);
	kipc_mbox_stat st;
	CHECK(oth.mbox_stat(id, &st) == -EACCES);
	CHECK(grp.mbox_receive(id, 256, KIPC_F_NONBLOCK).text() == "m1");
	/* chmod takes effect on the next call */
	kipc_mbox_attr a{};
	a.mode = 0646;
	CHECK(o.mbox_setattr(id, KIPC_SET_MODE, a) == 0);
	CHECK(oth.mbox_send(id, "m2").res() == 0);
	CHECK(oth.mbox_receive(id, 256, KIPC_F_NONBLOCK).text() == "m2");
}

TEST_CASE("losing read permission fails the parked receives of non-holders with EACCES")
{
	World w;
	Proc &o = w.spawn(100, 1000, 500);
	Proc &oth = w.spawn(102, 1002, 502);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, KIPC_MBOX_KERNEL_OWNED, 0666);
	CHECK(o.grant(id, 102) == 0);
	kipc_mbox_attr a{};
	a.mode = 0600;
	CHECK(o.mbox_setattr(id, KIPC_SET_MODE, a) == 0);
	Op r = oth.mbox_receive(id); /* holder: allowed */
	CHECK(!r.done());
	CHECK(o.revoke(id, 102) == 0);
	CHECK(r.res() == -EACCES);
}

TEST_CASE("uid 0 bypasses mode bits when root_bypass is on, not when it is off")
{
	for (bool bypass : {true, false}) {
		CAPTURE(bypass);
		Limits lim = Limits::from_config();
		lim.root_bypass = bypass;
		World w(lim);
		Proc &o = w.spawn(100, 1000, 1000);
		Proc &root = w.spawn(1, 0, 0);
		int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, KIPC_MBOX_KERNEL_OWNED, 0600);
		int64_t want = bypass ? 0 : -EACCES;
		CHECK(root.mbox_send(id, "r").res() == want);
		if (bypass)
			CHECK(root.mbox_receive(id, 256, KIPC_F_NONBLOCK).text() == "r");
		else
			CHECK(root.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EACCES);
		CHECK(root.mbox_destroy(id) == (bypass ? 0 : -EPERM));
		if (!bypass)
			CHECK(o.mbox_destroy(id) == 0);
	}
}

TEST_CASE("a direct send to another uid's task is EPERM, as kill(2) would be; root may")
{
	World w;
	Proc &a = w.spawn(100, 1000), &b = w.spawn(200, 2000);
	Proc &root = w.spawn(1, 0);
	CHECK(a.send(200, "x").res() == -EPERM);
	CHECK(a.call(200, "x").res() == -EPERM);
	CHECK(root.send(200, "from-root").res() == 0);
	CHECK(b.receive().text() == "from-root");
	CHECK(b.send(1, "to-root").res() == -EPERM);
	CHECK(w.charged(1000) == 0);
	CHECK(w.charged(2000) == 0);
}

TEST_CASE("admin operations need the owner or the owner's uid")
{
	World w;
	Proc &o = w.spawn(100, 1000), &x = w.spawn(101, 1001);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666);
	kipc_mbox_attr a{};
	a.uid = 1001;
	CHECK(x.mbox_setattr(id, KIPC_SET_UID, a) == -EPERM);
	CHECK(x.mbox_destroy(id) == -EPERM);
	CHECK(x.grant(id, 101) == -EPERM);
	CHECK(x.revoke(id, 100) == -EPERM);
	CHECK(o.mbox_setattr(id, KIPC_SET_UID, a) == 0);
	CHECK(x.mbox_destroy(id) == 0); /* now x's uid owns it */
}
