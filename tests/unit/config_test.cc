// SPDX-License-Identifier: MIT
/*
 * Kconfig options: each test shows the option changes behaviour, with the
 * numbers taken from the CONFIG_ macros so the suite passes under any
 * config (defconfig, tiny_defconfig).
 */
#include "harness.h"

using namespace kt;

TEST_CASE("Limits::from_config follows the CONFIG_ values")
{
	Limits l = Limits::from_config();
	CHECK(l.msg_default == CONFIG_MSG_DEFAULT);
	CHECK(l.msg_max == CONFIG_MSG_MAX);
	CHECK(l.msgsize_default == CONFIG_MSGSIZE_DEFAULT);
	CHECK(l.msgsize_max == CONFIG_MSGSIZE_MAX);
	CHECK(l.mbox_per_user == CONFIG_MBOX_PER_USER);
	CHECK(l.bytes_per_user == CONFIG_BYTES_PER_USER);
	CHECK(l.taskq_capacity == CONFIG_TASKQ_CAPACITY);
#ifdef CONFIG_ROOT_BYPASS
	CHECK(l.root_bypass);
#else
	CHECK(!l.root_bypass);
#endif
}

TEST_CASE("CONFIG_MSG_DEFAULT: a KIPC_CAP_DEFAULT mailbox holds exactly that many, then EAGAIN")
{
	World w;
	Proc &o = w.spawn(100);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT);
	CHECK(mstat(o, id).attr.capacity == CONFIG_MSG_DEFAULT);
	for (int i = 0; i < CONFIG_MSG_DEFAULT; i++)
		REQUIRE(o.mbox_send(id, "m", KIPC_F_NONBLOCK).res() == 0);
	CHECK(o.mbox_send(id, "m", KIPC_F_NONBLOCK).res() == -EAGAIN);
	CHECK(mbox_drain(o, id).size() == CONFIG_MSG_DEFAULT);
	/* no attributes at all: the same default */
	int64_t id2 = o.mbox_open("/dflt", KIPC_O_CREAT);
	CHECK(mstat(o, id2).attr.capacity == CONFIG_MSG_DEFAULT);
	CHECK(mstat(o, id2).attr.msgsize == CONFIG_MSGSIZE_DEFAULT);
}

TEST_CASE("CONFIG_MSG_MAX: capacity CONFIG_MSG_MAX is allowed, one more is EINVAL")
{
	World w;
	Proc &o = w.spawn(100);
	int64_t id = o.mbox_create(CONFIG_MSG_MAX);
	CHECK(id > 0);
	CHECK(mstat(o, id).attr.capacity == CONFIG_MSG_MAX);
	CHECK(o.mbox_create(CONFIG_MSG_MAX + 1) == -EINVAL);
	CHECK(o.taskq_setattr(CONFIG_MSG_MAX + 1) == -EINVAL);
	CHECK(o.taskq_setattr(CONFIG_MSG_MAX) == 0);
	kipc_mbox_attr a{};
	a.capacity = CONFIG_MSG_MAX + 1;
	CHECK(o.mbox_setattr(id, KIPC_SET_CAPACITY, a) == -EINVAL);
	/* a boot parameter lowers it per World */
	Limits l = Limits::from_config();
	REQUIRE(l.set("msg_max", "1") == 0);
	REQUIRE(l.set("msg_default", "1") == 0);
	World w2(l);
	Proc &p = w2.spawn(100);
	CHECK(p.mbox_create(2) == -EINVAL);
	CHECK(p.mbox_create(1) > 0);
}

TEST_CASE("CONFIG_MSGSIZE_MAX: a link's msgsize over it is EINVAL; CONFIG_MSGSIZE_DEFAULT is the default")
{
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	CHECK(o.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0600, CONFIG_MSGSIZE_MAX + 1) == -EINVAL);
	CHECK(o.taskq_setattr(KIPC_CAP_DEFAULT, CONFIG_MSGSIZE_MAX + 1) == -EINVAL);
	int64_t id = o.mbox_create(KIPC_UNBOUNDED, 0, 0, 0666, CONFIG_MSGSIZE_MAX);
	REQUIRE(id > 0);
	std::string big(CONFIG_MSGSIZE_MAX, 'b');
	if (message_charge(CONFIG_MSGSIZE_MAX, false) <= CONFIG_BYTES_PER_USER)
		CHECK(a.mbox_send(id, big).res() == 0);
	CHECK(a.mbox_send(id, big + "!").res() == -EMSGSIZE);
	mbox_drain(o, id, CONFIG_MSGSIZE_MAX);
	kipc_taskq_stat st;
	CHECK(a.taskq_stat(&st) == 0);
	CHECK(st.msgsize == CONFIG_MSGSIZE_DEFAULT);
	CHECK(o.send(101, std::string(CONFIG_MSGSIZE_DEFAULT + 1, 'x')).res() == -EMSGSIZE);
}

TEST_CASE("CONFIG_MBOX_PER_USER: that many mailboxes per uid, then ENOSPC")
{
	World w;
	Proc &o = w.spawn(100), &other = w.spawn(101, 1001, 1001);
	std::vector<int64_t> ids;
	for (int i = 0; i < CONFIG_MBOX_PER_USER; i++) {
		int64_t id = o.mbox_create();
		REQUIRE(id > 0);
		ids.push_back(id);
	}
	CHECK(o.mbox_create() == -ENOSPC);
	CHECK(o.mbox_open("/one-more", KIPC_O_CREAT) == -ENOSPC);
	CHECK(o.mbox_open("/one-more", 0) == -ENOENT);
	CHECK(other.mbox_create() > 0); /* per user */
	CHECK(o.mbox_destroy(ids.back()) == 0);
	CHECK(o.mbox_create() > 0);
	/* root is not exempt */
	Proc &root = w.spawn(1, 0, 0);
	for (int i = 0; i < CONFIG_MBOX_PER_USER; i++)
		REQUIRE(root.mbox_create() > 0);
	CHECK(root.mbox_create() == -ENOSPC);
}

TEST_CASE("CONFIG_BYTES_PER_USER: the quota ends an unbounded link with ENOSPC")
{
	World w;
	Proc &o = w.spawn(100);
	const uint32_t len = 64; /* CONFIG_MSGSIZE_MAX is at least 128 */
	int64_t id = o.mbox_create(KIPC_UNBOUNDED, 0, 0, 0666, len);
	const uint64_t per = message_charge(len, false);
	uint64_t n = 0;
	for (;; n++) {
		Op s = o.mbox_send(id, payload(std::to_string(n) + ":", len));
		REQUIRE(s.done());
		if (s.res() != 0) {
			CHECK(s.res() == -ENOSPC);
			break;
		}
	}
	CHECK(n == CONFIG_BYTES_PER_USER / per);
	CHECK(w.charged(1000) == n * per);
	CHECK(w.charged(1000) <= CONFIG_BYTES_PER_USER);
	CHECK(mstat(o, id).nmsg == n);
	CHECK(mbox_drain(o, id, len).size() == n);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("CONFIG_TASKQ_CAPACITY: a task queue holds that many by default, then senders block")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	kipc_taskq_stat st;
	CHECK(b.taskq_stat(&st) == 0);
	CHECK(st.capacity == CONFIG_TASKQ_CAPACITY);
	for (int i = 0; i < CONFIG_TASKQ_CAPACITY; i++)
		REQUIRE(a.send(200, "t", KIPC_F_NONBLOCK).res() == 0);
	CHECK(a.send(200, "t", KIPC_F_NONBLOCK).res() == -EAGAIN);
	Op blocked = a.send(200, "last");
	CHECK(!blocked.done());
	CHECK(drain(b).size() == CONFIG_TASKQ_CAPACITY + 1);
	CHECK(blocked.res() == 0);
}

TEST_CASE("CONFIG_ROOT_BYPASS: uid 0 and the mode bits")
{
	World w;
	Proc &o = w.spawn(100);
	Proc &root = w.spawn(1, 0, 0);
	int64_t id = o.mbox_create(KIPC_CAP_DEFAULT, 0, KIPC_MBOX_KERNEL_OWNED, 0600);
#ifdef CONFIG_ROOT_BYPASS
	CHECK(root.mbox_send(id, "root").res() == 0);
	CHECK(root.mbox_receive(id, 256, KIPC_F_NONBLOCK).text() == "root");
#else
	CHECK(root.mbox_send(id, "root").res() == -EACCES);
	CHECK(root.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EACCES);
#endif
}

namespace {
struct BugRecorder {
	static inline int calls = 0;
	static void handler(const char *, int, const char *) { calls++; }
};
} // namespace

TEST_CASE("CONFIG_DEBUG_CHECKS: a corrupted counter is reported after the next syscall")
{
	World w;
	Proc &a = w.spawn(100);
	CHECK(a.send(100, "x").res() == 0);
	BugHandler saved = kipc_bug_handler;
	kipc_bug_handler = BugRecorder::handler;
	BugRecorder::calls = 0;
	MsgStore &q = a.task->queue.msgs;
	q.nmsg += 1; /* corrupt */
	kipc_sqe nop{};
	nop.opcode = KIPC_SYS_nop;
	CHECK(a.now(nop) == 0);
	int seen = BugRecorder::calls;
	q.nmsg -= 1; /* restore before anything else looks */
	kipc_bug_handler = saved;
#ifdef CONFIG_DEBUG_CHECKS
	CHECK(seen > 0);
#else
	CHECK(seen == 0);
#endif
	CHECK(drain(a) == std::vector<std::string>{"x"});
}

TEST_CASE("boot parameters: Limits::set accepts known names in range, rejects the rest")
{
	Limits l = Limits::from_config();
	CHECK(l.set("msg_max", "0") == -EINVAL);
	CHECK(l.set("msg_max", "x") == -EINVAL);
	CHECK(l.set("no_such", "1") == -ENOENT);
	CHECK(l.set("no_such", "x") == -ENOENT);
	CHECK(l.set("root_bypass", "2") == -EINVAL);
	CHECK(l.set("root_bypass", "0") == 0);
	CHECK(!l.root_bypass);
	CHECK(l.set("taskq_capacity", "0") == 0);
	CHECK(l.taskq_capacity == 0);
	World w(l);
	Proc &a = w.spawn(100);
	w.spawn(200);
	CHECK(a.send(200, "rv", KIPC_F_NONBLOCK).res() == -EAGAIN); /* rendezvous queues */
}

TEST_CASE("boot parameters: a default above its hard limit is inconsistent")
{
	Limits l = Limits::from_config();
	CHECK(l.validate() == 0);
	REQUIRE(l.set("msg_max", "1") == 0);
	CHECK(l.set("msg_default", "2") == 0);
	CHECK(l.validate() == -EINVAL);
	l = Limits::from_config();
	REQUIRE(l.set("msgsize_max", "128") == 0);
	REQUIRE(l.set("msgsize_default", "129") == 0);
	CHECK(l.validate() == -EINVAL);
}

TEST_CASE("boot parameters: a conflict names both values; defaults not given follow their limit")
{
	Limits l = Limits::from_config();
	CHECK(l.conflict() == "");
	REQUIRE(l.set("msg_max", "4") == 0);
	REQUIRE(l.set("msg_default", "10") == 0);
	l.taskq_capacity = 64; /* whatever the configuration says */
	CHECK(l.conflict() == "msg_default=10 exceeds msg_max=4");
	/* Given explicitly: it stays and conflicts. */
	CHECK(l.fit_defaults({"msg_max", "msg_default"}) == "taskq_capacity=4");
	CHECK(l.msg_default == 10);
	CHECK(l.validate() == -EINVAL);

	/* kipcd msg_max=4 bytes_per_user=4096 (Documentation/index.md) */
	l = Limits::from_config();
	REQUIRE(l.set("msg_max", "4") == 0);
	REQUIRE(l.set("bytes_per_user", "4096") == 0);
	l.taskq_capacity = 64;
	l.msg_default = 10;
	CHECK(l.fit_defaults({"msg_max", "bytes_per_user"}) == "msg_default=4 taskq_capacity=4");
	CHECK(l.msg_default == 4);
	CHECK(l.taskq_capacity == 4);
	CHECK(l.validate() == 0);
	CHECK(l.fit_defaults({}) == "");

	l = Limits::from_config();
	l.msg_default = l.taskq_capacity = l.msg_max; /* consistent elsewhere */
	REQUIRE(l.set("msgsize_max", "128") == 0);
	l.msgsize_default = 8192;
	CHECK(l.conflict() == "msgsize_default=8192 exceeds msgsize_max=128");
	CHECK(l.fit_defaults({"msgsize_max"}) == "msgsize_default=128");
	CHECK(l.describe().find("msgsize_default=128 msgsize_max=128") != std::string::npos);
	CHECK(l.describe().find("tasks_per_user=") != std::string::npos);
	CHECK(l.describe().find("msgmni=") != std::string::npos);
}
