// SPDX-License-Identifier: MIT
/* POSIX message queues in the core (kernel/ipc/mqueue.cc). */
#include "harness.h"
#include "intro_helpers.h"

using namespace kt;

namespace {

/* The syscalls, raw: what libkipc-posix.so sends. */
int64_t mq_open(Proc &p, const std::string &name, uint32_t oflag, int64_t maxmsg = 0,
		int64_t msgsize = 0, uint64_t rlimit = 0)
{
	kipc_mq_open o{};
	o.oflag = oflag;
	o.mode = 0600;
	if (maxmsg) {
		o.flags |= KIPC_MQ_ATTR;
		o.maxmsg = maxmsg;
		o.msgsize = msgsize;
	}
	if (rlimit) {
		o.flags |= KIPC_MQ_RLIMIT;
		o.rlimit = rlimit;
	}
	kipc_sqe s{};
	s.opcode = KIPC_SYS_mq_open;
	s.addr = p.put(name);
	s.len = name.size();
	s.addr2 = p.mem.alloc(sizeof o);
	std::memcpy(p.mem.arena.data() + s.addr2, &o, sizeof o);
	s.len2 = sizeof o;
	return p.submit(s).res();
}

int64_t simple(Proc &p, uint8_t op, int64_t id, const std::string &name = "")
{
	kipc_sqe s{};
	s.opcode = op;
	s.target = id;
	if (!name.empty()) {
		s.addr = p.put(name);
		s.len = name.size();
	}
	return p.submit(s).res();
}

Op mq_send(Proc &p, int64_t id, const std::string &data, uint16_t prio = 0, uint32_t flags = 0)
{
	kipc_sqe s{};
	s.opcode = KIPC_SYS_mq_timedsend;
	s.target = id;
	s.addr = p.put(data);
	s.len = data.size();
	s.prio = prio;
	s.flags = flags;
	return p.submit(s);
}

Op mq_receive(Proc &p, int64_t id, uint32_t len = 64, uint32_t flags = 0)
{
	kipc_sqe s{};
	s.opcode = KIPC_SYS_mq_timedreceive;
	s.target = id;
	s.addr = p.mem.alloc(len);
	s.len = len;
	s.flags = flags;
	return p.submit(s, s.addr, len);
}

int64_t mq_notify(Proc &p, int64_t id, int kind, int signo = 0, int64_t value = 0)
{
	kipc_mq_notify n{};
	n.notify = kind;
	n.signo = signo;
	n.value = value;
	kipc_sqe s{};
	s.opcode = KIPC_SYS_mq_notify;
	s.target = id;
	s.addr2 = p.mem.alloc(sizeof n);
	std::memcpy(p.mem.arena.data() + s.addr2, &n, sizeof n);
	s.len2 = sizeof n;
	return p.submit(s).res();
}

constexpr uint32_t kRW = KIPC_MQ_RDWR, kCreat = KIPC_O_CREAT, kExcl = KIPC_O_EXCL;

} // namespace

TEST_CASE("mqueue: names, O_CREAT, O_EXCL, access modes")
{
	World w;
	Proc &a = w.spawn(100);
	CHECK(mq_open(a, "/q", kRW) == -ENOENT);
	CHECK(mq_open(a, "/", kRW | kCreat) == -ENOENT);
	CHECK(mq_open(a, "/a/b", kRW | kCreat) == -EACCES);
	CHECK(mq_open(a, "/" + std::string(256, 'x'), kRW | kCreat) == -ENAMETOOLONG);
	int64_t id = mq_open(a, "/q", kRW | kCreat | kExcl);
	REQUIRE(id > 0);
	CHECK(mq_open(a, "/q", kRW | kCreat | kExcl) == -EEXIST);
	CHECK(mq_open(a, "/q", kRW | kCreat) == id);
	CHECK(mq_open(a, "/q", KIPC_MQ_ACCMODE) == -EINVAL);
	Proc &b = w.spawn(200, 2000, 2000); /* another user: mode 0600 */
	CHECK(mq_open(b, "/q", KIPC_MQ_RDONLY) == -EACCES);
	CHECK(simple(b, KIPC_SYS_mq_unlink, 0, "/q") == -EACCES);
	/* the kipc mailbox calls leave it alone; stat says what it is */
	CHECK(a.mbox_send(id, "x").res() == -EINVAL);
	CHECK(mstat(a, id).attr.flags == (KIPC_MBOX_KERNEL_OWNED | KIPC_MBOX_POSIX));
	CHECK(simple(a, KIPC_SYS_mq_unlink, 0, "/q") == 0);
	CHECK(simple(a, KIPC_SYS_mq_unlink, 0, "/q") == -ENOENT);
	CHECK(simple(a, KIPC_SYS_mq_getattr, id) == -EBADF); /* nobody held it: gone */
}

TEST_CASE("mqueue: limits: maxmsg, msgsize, queues_max, RLIMIT_MSGQUEUE")
{
	Limits l = Limits::from_config();
	l.mq_queues_max = 2;
	World w(l);
	Proc &a = w.spawn(100);
	CHECK(mq_open(a, "/big", kRW | kCreat, 11, 16) == -EINVAL);
	CHECK(mq_open(a, "/big", kRW | kCreat, 10, 8193) == -EINVAL);
	CHECK(mq_open(a, "/big", kRW | kCreat, -1, 16) == -EINVAL);
	w.host.cap_sys_resource = true;
	int64_t big = mq_open(a, "/big", kRW | kCreat, 11, 16);
	CHECK(big > 0);
	w.host.cap_sys_resource = false;
	CHECK(mq_open(a, "/two", kRW | kCreat) > 0);
	CHECK(mq_open(a, "/three", kRW | kCreat) == -ENOSPC);
	simple(a, KIPC_SYS_mq_unlink, 0, "/two");
	simple(a, KIPC_SYS_mq_unlink, 0, "/big");
	/* 8 * 1024 + 8 * 48 + 8 * 48 = 8960 bytes; 10000 allows one */
	CHECK(mq_open(a, "/r1", kRW | kCreat, 8, 1024, 10000) > 0);
	CHECK(mq_open(a, "/r2", kRW | kCreat, 8, 1024, 10000) == -EMFILE);
	CHECK(w.impl().user(1000).mq_bytes == 8960);
}

TEST_CASE("mqueue: priorities, sizes, full and empty, poll state")
{
	World w;
	Proc &a = w.spawn(100);
	int64_t id = mq_open(a, "/q", kRW | kCreat, 2, 8);
	CHECK(w.host.mq_ready[id] == 2); /* writable */
	CHECK(mq_send(a, id, "low", 1).res() == 0);
	CHECK(w.host.mq_ready[id] == 3);
	CHECK(mq_send(a, id, "high", 9).res() == 0);
	CHECK(w.host.mq_ready[id] == 1); /* full */
	CHECK(mq_send(a, id, "x", 0, KIPC_F_NONBLOCK).res() == -EAGAIN);
	CHECK(mq_send(a, id, "123456789").res() == -EMSGSIZE);
	CHECK(mq_receive(a, id, 7).res() == -EMSGSIZE);
	Op r = mq_receive(a, id, 8);
	CHECK(r.text() == "high");
	CHECK(r.cqe().prio == 9);
	CHECK(mq_receive(a, id, 8).text() == "low");
	CHECK(w.host.mq_ready[id] == 2);
	CHECK(mq_receive(a, id, 8, KIPC_F_NONBLOCK).res() == -EAGAIN);
}

TEST_CASE("mqueue: blocked senders enter in arrival order")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200), &c = w.spawn(300);
	int64_t id = mq_open(a, "/q", kRW | kCreat, 1, 8);
	CHECK(mq_send(a, id, "first").res() == 0);
	Op sb = mq_send(b, id, "low", 1);
	Op sc = mq_send(c, id, "high", 30000);
	CHECK(!sb.done());
	CHECK(mq_receive(a, id, 8).text() == "first");
	CHECK(sb.res() == 0);
	CHECK(!sc.done());
	CHECK(mq_receive(a, id, 8).text() == "low");
	CHECK(mq_receive(a, id, 8).text() == "high");
}

TEST_CASE("mqueue: notification: one registrant, one shot, not with a waiting receiver")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	int64_t id = mq_open(a, "/q", kRW | kCreat, 4, 8);
	CHECK(mq_notify(a, id, KIPC_MQ_SIGEV_SIGNAL, 65) == -EINVAL);
	CHECK(mq_notify(a, id, KIPC_MQ_SIGEV_SIGNAL, 10, 42) == 0);
	CHECK(mq_notify(b, id, KIPC_MQ_SIGEV_NONE) == -EBUSY);
	CHECK(mq_notify(b, id, KIPC_MQ_NOTIFY_REMOVE) == 0); /* not the owner: nothing */
	CHECK(mq_notify(a, id, KIPC_MQ_SIGEV_NONE) == -EBUSY);
	CHECK(mq_send(b, id, "m").res() == 0);
	REQUIRE(w.host.mq_signals.size() == 1);
	CHECK(w.host.mq_signals[0].pid == 100);
	CHECK(w.host.mq_signals[0].signo == 10);
	CHECK(w.host.mq_signals[0].value == 42);
	CHECK(w.host.mq_signals[0].from == 200);
	CHECK(mq_notify(b, id, KIPC_MQ_SIGEV_SIGNAL, 10) == 0); /* unregistered */
	CHECK(mq_send(a, id, "m").res() == 0);                 /* not empty: nothing */
	CHECK(w.host.mq_signals.size() == 1);
	mq_receive(a, id, 8);
	mq_receive(a, id, 8);
	Op r = mq_receive(a, id, 8); /* waits */
	CHECK(mq_send(a, id, "m").res() == 0);
	CHECK(r.text() == "m");
	CHECK(w.host.mq_signals.size() == 1); /* the receiver got it */
	w.exit(b);                            /* the registrant exits */
	CHECK(mq_notify(a, id, KIPC_MQ_SIGEV_NONE) == 0);
	/* closing a descriptor removes one's own registration */
	CHECK(simple(a, KIPC_SYS_mq_close, id) == 0);
	CHECK(mq_notify(a, id, KIPC_MQ_SIGEV_NONE) == 0);
}

TEST_CASE("mqueue: SIGEV_THREAD: the wait completes when it fires, or is cancelled")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	int64_t id = mq_open(a, "/q", kRW | kCreat, 4, 8);
	int64_t token = mq_notify(a, id, KIPC_MQ_SIGEV_THREAD);
	REQUIRE(token > 0);
	kipc_sqe s{};
	s.opcode = KIPC_SYS_mq_notify_wait;
	s.target = id;
	s.type = token;
	Op wait = a.submit(s);
	CHECK(!wait.done());
	CHECK(mq_send(b, id, "m").res() == 0);
	CHECK(wait.res() == 0);
	CHECK(wait.cqe().pid == 200);
	mq_receive(a, id, 8);
	/* fired before the wait arrives */
	token = mq_notify(a, id, KIPC_MQ_SIGEV_THREAD);
	CHECK(mq_send(b, id, "m").res() == 0);
	s.type = token;
	CHECK(a.submit(s).res() == 0);
	mq_receive(a, id, 8);
	/* removed: the wait ends ECANCELED */
	token = mq_notify(a, id, KIPC_MQ_SIGEV_THREAD);
	s.type = token;
	Op w2 = a.submit(s);
	CHECK(mq_notify(a, id, KIPC_MQ_NOTIFY_REMOVE) == 0);
	CHECK(w2.res() == -ECANCELED);
}

TEST_CASE("mqueue: an unlinked queue lives while a descriptor is open")
{
	World w;
	Proc &a = w.spawn(100);
	int64_t id = mq_open(a, "/q", kRW | kCreat, 4, 8);
	w.host.mq_fds[id] = 1;
	CHECK(mq_send(a, id, "kept").res() == 0);
	CHECK(simple(a, KIPC_SYS_mq_unlink, 0, "/q") == 0);
	CHECK(mq_open(a, "/q", kRW) == -ENOENT);
	CHECK(mq_receive(a, id, 8).text() == "kept");
	int64_t id2 = mq_open(a, "/q", kRW | kCreat | kExcl);
	CHECK(id2 > 0);
	CHECK(id2 != id);
	w.k->mq_released(id); /* still open: nothing happens */
	CHECK(mq_send(a, id, "x").res() == 0);
	w.host.mq_fds[id] = 0;
	w.k->mq_released(id);
	CHECK(mq_send(a, id, "x").res() == -EBADF);
	CHECK(w.impl().mq_count == 1);
}

TEST_CASE("mqueue: a trace read woken by the release of the last descriptor completes at once")
{
	World w;
	Proc &t = w.spawn(50, 0, 0); /* root: the release runs on no task's behalf */
	Proc &a = w.spawn(100);
	int64_t id = mq_open(a, "/q", kRW | kCreat, 4, 8);
	w.host.mq_fds[id] = 1;
	CHECK(simple(a, KIPC_SYS_mq_unlink, 0, "/q") == 0);
	REQUIRE(trace_open(t) == 0);
	Op r = trace_read(t, 8); /* nothing happened yet: it parks */
	CHECK(!r.done());
	w.host.mq_fds[id] = 0;
	w.k->mq_released(id); /* the queue goes: its DESTROY wakes the read */
	REQUIRE(r.done());
	auto v = events(r);
	REQUIRE(kinds(v) == "DESTROY");
	CHECK(v[0].mbox == id);
}
