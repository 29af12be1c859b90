// SPDX-License-Identifier: MIT
/* Mailboxes: ownership, rights, destruction, ids and names. */
#include "harness.h"

using namespace kt;

TEST_CASE("indirect: any task may send to a mailbox, its owner receives")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101), &b = w.spawn(102);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0622);
	REQUIRE(id > 0);
	Ledger l;
	l.sent_ok(a.mbox_send(id, "a"), "a");
	l.sent_ok(b.mbox_send(id, "b"), "b");
	Op r = o.mbox_receive(id);
	CHECK(r.text() == "a");
	CHECK(r.cqe().pid == 101);
	CHECK(r.cqe().source == id);
	l.got(r);
	l.got(mbox_drain(o, id));
	CHECK(l.balanced());
	kipc_mbox_stat st = mstat(o, id);
	CHECK(st.owner == 100);
	CHECK(st.nsent == 2);
	CHECK(st.nreceived == 2);
	CHECK(st.lspid == 102);
	CHECK(st.lrpid == 100);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("a process-owned mailbox: tasks without the receive right get EPERM")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666);
	CHECK(a.mbox_send(id, "m").res() == 0);
	CHECK(a.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EPERM);
	CHECK(a.receive_set({id}, 256, KIPC_F_NONBLOCK).res() == -EPERM);
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"m"});
}

TEST_CASE("grant gives the receive right, revoke takes it back and fails its parked receive")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create();
	CHECK(o.grant(id, 101) == 0);
	CHECK(mstat(o, id).nholders == 2);
	CHECK(o.mbox_send(id, "granted").res() == 0);
	CHECK(a.mbox_receive(id).text() == "granted");
	Op r = a.mbox_receive(id);
	CHECK(!r.done());
	CHECK(a.grant(id, 101) == -EPERM); /* only the owner grants */
	CHECK(o.revoke(id, 101) == 0);
	CHECK(r.res() == -EPERM);
	CHECK(a.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EPERM);
	CHECK(o.revoke(id, 100) == -EPERM); /* the owner keeps its right */
	CHECK(o.revoke(id, 4242) == -ESRCH);
	CHECK(o.grant(id, 4242) == -ESRCH);
}

TEST_CASE("grant to a live process that has not attached yet works once it attaches")
{
	World w;
	Proc &o = w.spawn(100);
	Proc &c = w.fork(300);
	int64_t id = o.mbox_create();
	CHECK(o.grant(id, 300) == 0);
	CHECK(o.mbox_send(id, "for-child").res() == 0);
	w.attach(c);
	CHECK(c.mbox_receive(id).text() == "for-child");
}

TEST_CASE("ownership can go to a live process that has not attached yet")
{
	World w;
	Proc &o = w.spawn(100);
	Proc &c = w.fork(300, 1000, 1000);
	int64_t id = o.mbox_create();
	CHECK(o.mbox_send(id, "yours").res() == 0);
	CHECK(o.set_owner(id, 300) == 0);
	CHECK(o.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EPERM);
	w.attach(c);
	CHECK(c.mbox_receive(id).text() == "yours");
	/* process-owned: it dies with its new owner, attached or not */
	w.exit(c);
	CHECK(o.mbox_send(id, "gone").res() == -EIDRM);
}

TEST_CASE("ownership transfer moves the receive right and the owner's credentials")
{
	World w;
	Proc &o = w.spawn(100), &n = w.spawn(101, 1001, 1001);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0600);
	Op parked = o.mbox_receive(id);
	CHECK(n.set_owner(id, 101) == -EPERM); /* not the owner */
	CHECK(o.set_owner(id, 4242) == -ESRCH);
	CHECK(o.set_owner(id, 101) == 0);
	CHECK(parked.res() == -EPERM); /* the old owner's receive is over */
	kipc_mbox_stat st = mstat(n, id);
	CHECK(st.owner == 101);
	CHECK(st.attr.uid == 1001);
	CHECK(st.cuid == 1000);
	CHECK(o.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EPERM);
	CHECK(o.set_owner(id, 100) == -EPERM);
	/* the old owner's exit no longer destroys it, the new owner's does */
	w.exit(o);
	CHECK(mstat(n, id).owner == 101);
	CHECK(n.mbox_send(id, "x").res() == 0);
	CHECK(n.mbox_receive(id).text() == "x");
	w.exit(n);
	Proc &p = w.spawn(102);
	CHECK(p.mbox_send(id, "y").res() == -EIDRM);
}

TEST_CASE("a process-owned mailbox is destroyed when its owner exits")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_open("/owned", KIPC_O_CREAT);
	REQUIRE(id > 0);
	CHECK(a.mbox_send(id, "queued").res() == 0);
	w.exit(o);
	CHECK(a.mbox_send(id, "late").res() == -EIDRM);
	CHECK(a.mbox_open("/owned", 0) == -ENOENT);
	CHECK(w.charged(1000) == 0);
	CHECK(w.impl().user(1000).mailboxes == 0);
}

TEST_CASE("a kernel-owned mailbox outlives its creator until destroyed explicitly")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, KIPC_MBOX_KERNEL_OWNED, 0666);
	CHECK(mstat(o, id).owner == 100);
	CHECK(a.mbox_send(id, "survives").res() == 0);
	w.exit(o);
	kipc_mbox_stat st = mstat(a, id);
	CHECK(st.owner == 0);
	CHECK(st.nmsg == 1);
	/* mode bits grant read: a may receive without the right */
	CHECK(a.mbox_receive(id).text() == "survives");
	/* a user with the creator's uid adopts it */
	CHECK(a.set_owner(id, 101) == 0);
	CHECK(mstat(a, id).owner == 101);
	CHECK(a.mbox_destroy(id) == 0);
	CHECK(a.mbox_send(id, "gone").res() == -EIDRM);
	CHECK(w.impl().user(1000).mailboxes == 0);
}

TEST_CASE("a kernel-owned mailbox without read permission: non-holders get EACCES")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101, 1001, 1001);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, KIPC_MBOX_KERNEL_OWNED, 0622);
	CHECK(a.mbox_send(id, "m").res() == 0);
	CHECK(a.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EACCES);
	CHECK(o.grant(id, 101) == 0);
	CHECK(a.mbox_receive(id, 256, KIPC_F_NONBLOCK).text() == "m");
}

TEST_CASE("destroy: queued messages freed, blocked senders and receivers wake EIDRM, later uses EIDRM")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101, 1001, 1001), &b = w.spawn(102);
	int64_t id = o.mbox_create(1, 0, 0, 0666);
	int64_t id2 = o.mbox_create(1, 0, 0, 0666);
	CHECK(o.grant(id2, 102) == 0);
	CHECK(a.mbox_send(id, "queued").res() == 0);
	Op blocked = a.mbox_send(id, "blocked");
	CHECK(!blocked.done());
	Op r = b.mbox_receive(id2); /* a receiver blocked on the other mailbox */
	CHECK(!r.done());
	CHECK(a.mbox_destroy(id) == -EPERM); /* another uid, not the owner */
	CHECK(o.mbox_destroy(id) == 0);
	CHECK(blocked.res() == -EIDRM);
	CHECK(blocked.cqes().size() == 1);
	CHECK(w.charged(1001) == 0);
	CHECK(o.mbox_destroy(id2) == 0);
	CHECK(r.res() == -EIDRM);
	/* every later use of the ids */
	CHECK(a.mbox_send(id, "x").res() == -EIDRM);
	CHECK(a.mbox_receive(id).res() == -EIDRM);
	CHECK(o.mbox_destroy(id) == -EIDRM);
	kipc_mbox_stat st;
	CHECK(o.mbox_stat(id, &st) == -EIDRM);
	CHECK(o.grant(id, 101) == -EIDRM);
	CHECK(a.mbox_call(id, "x").res() == -EIDRM);
	/* even after the slot is reused by a new mailbox */
	int64_t id3 = o.mbox_create();
	CHECK(id3 != id);
	CHECK(id3 != id2);
	CHECK(a.mbox_send(id, "x").res() == -EIDRM);
	CHECK(a.mbox_send(id2, "x").res() == -EIDRM);
	CHECK(o.mbox_destroy(id3) == 0);
}

TEST_CASE("ids never issued are EINVAL, not EIDRM")
{
	World w;
	Proc &o = w.spawn(100);
	int64_t id = o.mbox_create();
	CHECK(o.mbox_send(0, "x").res() == -EINVAL);
	CHECK(o.mbox_send(-1, "x").res() == -EINVAL);
	CHECK(o.mbox_send(id + 1, "x").res() == -EINVAL);       /* idx never used */
	CHECK(o.mbox_send(id + (int64_t(1) << kMboxIdxBits), "x").res() == -EINVAL); /* seq not issued yet */
	CHECK(o.mbox_send(INT32_MAX, "x").res() == -EINVAL); /* a System V id, none issued */
	CHECK(o.mbox_send(int64_t(1) << (kMboxIdxBits + 32), "x").res() == -EINVAL); /* beyond any seq */
}

TEST_CASE("names: lookup, ENOENT, EEXIST, EINVAL, ENAMETOOLONG")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	CHECK(a.mbox_open("/chat", 0) == -ENOENT);
	int64_t id = o.mbox_open("/chat", KIPC_O_CREAT);
	REQUIRE(id > 0);
	CHECK(a.mbox_open("/chat", 0) == id);
	CHECK(a.mbox_open("/chat", KIPC_O_CREAT) == id);
	CHECK(a.mbox_open("/chat", KIPC_O_CREAT | KIPC_O_EXCL) == -EEXIST);
	CHECK(std::string(mstat(o, id).name) == "/chat");
	CHECK(o.mbox_open("chat", KIPC_O_CREAT) == -EINVAL);
	CHECK(o.mbox_open("/", KIPC_O_CREAT) == -EINVAL);
	CHECK(o.mbox_open("/a/b", KIPC_O_CREAT) == -EINVAL);
	CHECK(o.mbox_open(std::string("/a\0b", 4), KIPC_O_CREAT) == -EINVAL);
	std::string longest = "/" + std::string(KIPC_NAME_MAX - 1, 'n');
	CHECK(o.mbox_open(longest + "x", KIPC_O_CREAT) == -ENAMETOOLONG);
	int64_t lid = o.mbox_open(longest, KIPC_O_CREAT);
	CHECK(lid > 0);
	CHECK(std::string(mstat(o, lid).name) == longest);
	CHECK(o.mbox_open("/x", KIPC_O_EXCL | 0x80000000u) == -EINVAL);
	/* the name is free again once the mailbox is destroyed */
	CHECK(o.mbox_destroy(id) == 0);
	CHECK(a.mbox_open("/chat", 0) == -ENOENT);
	int64_t id2 = a.mbox_open("/chat", KIPC_O_CREAT | KIPC_O_EXCL);
	CHECK(id2 > 0);
	CHECK(id2 != id);
}

TEST_CASE("mailbox attributes: bad capacity, size, flags or policy are EINVAL")
{
	World w;
	Proc &o = w.spawn(100);
	const Limits &lim = w.limits;
	CHECK(o.mbox_create(lim.msg_max + 1) == -EINVAL);
	CHECK(o.mbox_create(lim.msg_max) > 0);
	CHECK(o.mbox_create(KIPC_CAP_DEFAULT, KIPC_POLICY_MAX + 1) == -EINVAL);
	CHECK(o.mbox_create(KIPC_CAP_DEFAULT, 0, 1u << 7) == -EINVAL);
	/* the flavour bits are output only: a mailbox cannot claim to be a queue */
	CHECK(o.mbox_create(KIPC_CAP_DEFAULT, 0, KIPC_MBOX_POSIX) == -EINVAL);
	CHECK(o.mbox_create(KIPC_CAP_DEFAULT, 0, KIPC_MBOX_SYSV) == -EINVAL);
	CHECK(o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0600, lim.msgsize_max + 1) == -EINVAL);
	CHECK(o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0600, lim.msgsize_max) > 0);
	kipc_mbox_attr a{};
	a.capacity = KIPC_CAP_DEFAULT;
	CHECK(o.mbox_setattr(o.mbox_create(), KIPC_SET_CAPACITY | (1u << 9), a) == -EINVAL);
}

TEST_CASE("setattr: capacity growth admits blocked senders; policy change with traffic is EBUSY")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = full_mbox(o, a, "one");
	Op s = a.mbox_send(id, "two");
	CHECK(!s.done());
	kipc_mbox_attr at{};
	at.capacity = 2;
	CHECK(a.mbox_setattr(id, KIPC_SET_CAPACITY, at) == 0); /* same uid: admin */
	CHECK(s.res() == 0);
	at.policy = KIPC_POLICY_EXCLUSIVE;
	CHECK(o.mbox_setattr(id, KIPC_SET_POLICY, at) == -EBUSY);
	CHECK(mbox_drain(o, id) == std::vector<std::string>{"one", "two"});
	CHECK(o.mbox_setattr(id, KIPC_SET_POLICY, at) == 0);
	CHECK(mstat(o, id).attr.policy == KIPC_POLICY_EXCLUSIVE);
	Proc &x = w.spawn(102, 1002, 1002);
	CHECK(x.mbox_setattr(id, KIPC_SET_MODE, at) == -EPERM);
}
