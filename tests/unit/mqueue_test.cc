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
	__kipc_enc_name(&s, KIPC_SYS_mq_open, p.put(name), name.size(), put_rec(p.mem, o),
			   sizeof o);
	return p.submit(s).res();
}

int64_t simple(Proc &p, uint8_t op, int64_t id, const std::string &name = "", int64_t fd = -1)
{
	kipc_sqe s{};
	s.opcode = op;
	s.target = id;
	s.type = fd;
	if (!name.empty()) {
		s.addr = p.put(name);
		s.len = name.size();
	}
	return p.submit(s).res();
}

Op mq_send(Proc &p, int64_t id, const std::string &data, uint16_t prio = 0, uint32_t flags = 0,
	   int64_t fd = -1)
{
	kipc_sqe s{};
	__kipc_enc_mq_xfer(&s, KIPC_SYS_mq_timedsend, id, fd, p.put(data), data.size(), prio,
			   flags, 0);
	return p.submit(s);
}

Op mq_receive(Proc &p, int64_t id, uint32_t len = 64, uint32_t flags = 0, int64_t fd = -1)
{
	kipc_sqe s{};
	__kipc_enc_mq_xfer(&s, KIPC_SYS_mq_timedreceive, id, fd, p.mem.alloc(len), len, 0, flags,
			   0);
	return p.submit(s, s.addr, len);
}

int64_t mq_notify(Proc &p, int64_t id, int kind, int signo = 0, int64_t value = 0,
		  int64_t fd = -1)
{
	kipc_mq_notify n{};
	n.notify = kind;
	n.signo = signo;
	n.value = value;
	kipc_sqe s{};
	__kipc_enc_mq_rec(&s, KIPC_SYS_mq_notify, id, fd, put_rec(p.mem, n), sizeof n);
	return p.submit(s).res();
}

constexpr uint32_t kRW = KIPC_MQ_RDWR, kCreat = KIPC_O_CREAT, kExcl = KIPC_O_EXCL;

int64_t getattr(Proc &p, int64_t h, int64_t fd = -1)
{
	kipc_sqe s{};
	__kipc_enc_mq_rec(&s, KIPC_SYS_mq_getattr, h, fd, p.mem.alloc(sizeof(kipc_mq_attr)),
			  sizeof(kipc_mq_attr));
	return p.submit(s).res();
}

/* The mailbox id of the queue handle h opens. */
int64_t qid(World &w, int64_t h)
{
	MqOpen *o = w.impl().mq.handles().find(h);
	REQUIRE(o);
	return o->mb->id;
}

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
	int64_t id2 = mq_open(a, "/q", kRW | kCreat);
	CHECK(id2 > 0);
	CHECK(id2 != id); /* a new open: a handle of its own */
	CHECK(mq_open(a, "/q", KIPC_MQ_ACCMODE) == -EINVAL);
	Proc &b = w.spawn(200, 2000, 2000); /* another user: mode 0600 */
	CHECK(mq_open(b, "/q", KIPC_MQ_RDONLY) == -EACCES);
	CHECK(simple(b, KIPC_SYS_mq_unlink, 0, "/q") == -EACCES);
	/* the kipc mailbox calls leave it alone; stat says what it is */
	CHECK(a.mbox_send(qid(w, id), "x").res() == -EINVAL);
	CHECK(mstat(a, qid(w, id)).attr.flags == (KIPC_MBOX_KERNEL_OWNED | KIPC_MBOX_POSIX));
	CHECK(simple(a, KIPC_SYS_mq_unlink, 0, "/q") == 0);
	CHECK(simple(a, KIPC_SYS_mq_unlink, 0, "/q") == -ENOENT);
	CHECK(w.impl().mq.count() == 1); /* open twice: lives on */
	CHECK(simple(a, KIPC_SYS_mq_close, id) == 0);
	CHECK(simple(a, KIPC_SYS_mq_close, id) == -EBADF);
	CHECK(getattr(a, id) == -EBADF);
	CHECK(getattr(a, id2) == 0);
	CHECK(w.impl().mq.count() == 1);
	CHECK(simple(a, KIPC_SYS_mq_close, id2) == 0);
	CHECK(w.impl().mq.count() == 0); /* its last open closed: gone */
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
	int64_t two = mq_open(a, "/two", kRW | kCreat);
	CHECK(two > 0);
	CHECK(mq_open(a, "/three", kRW | kCreat) == -ENOSPC);
	simple(a, KIPC_SYS_mq_unlink, 0, "/two");
	simple(a, KIPC_SYS_mq_unlink, 0, "/big");
	CHECK(mq_open(a, "/three", kRW | kCreat) == -ENOSPC); /* still open */
	simple(a, KIPC_SYS_mq_close, two);
	simple(a, KIPC_SYS_mq_close, big);
	/* 8 * 1024 + 8 * 48 + 8 * 48 = 8960 bytes; 10000 allows one */
	w.host.mq_rlimits[a.pid] = 10000;
	CHECK(mq_open(a, "/r1", kRW | kCreat, 8, 1024) > 0);
	CHECK(mq_open(a, "/r2", kRW | kCreat, 8, 1024) == -EMFILE);
	/* what the caller claims as its RLIMIT_MSGQUEUE changes nothing */
	CHECK(mq_open(a, "/r2", kRW | kCreat, 8, 1024, UINT64_MAX) == -EMFILE);
	CHECK(w.impl().user(1000).mq_bytes == 8960);
	Proc &b = w.spawn(200, 2000, 2000); /* another user is still served */
	CHECK(mq_open(b, "/r2", kRW | kCreat, 8, 1024) > 0);
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
	Op sb = mq_send(b, mq_open(b, "/q", KIPC_MQ_WRONLY), "low", 1);
	Op sc = mq_send(c, mq_open(c, "/q", KIPC_MQ_WRONLY), "high", 30000);
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
	int64_t hb = mq_open(b, "/q", kRW);
	CHECK(mq_notify(a, id, KIPC_MQ_SIGEV_SIGNAL, 65) == -EINVAL);
	CHECK(mq_notify(a, id, KIPC_MQ_SIGEV_SIGNAL, 10, 42) == 0);
	CHECK(mq_notify(b, hb, KIPC_MQ_SIGEV_NONE) == -EBUSY);
	CHECK(mq_notify(b, hb, KIPC_MQ_NOTIFY_REMOVE) == 0); /* not the owner: nothing */
	CHECK(mq_notify(a, id, KIPC_MQ_SIGEV_NONE) == -EBUSY);
	CHECK(mq_send(b, hb, "m").res() == 0);
	REQUIRE(w.host.mq_signals.size() == 1);
	CHECK(w.host.mq_signals[0].pid == 100);
	CHECK(w.host.mq_signals[0].signo == 10);
	CHECK(w.host.mq_signals[0].value == 42);
	CHECK(w.host.mq_signals[0].from == 200);
	CHECK(mq_notify(b, hb, KIPC_MQ_SIGEV_SIGNAL, 10) == 0); /* unregistered */
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
	int64_t id2 = mq_open(a, "/q", kRW);
	CHECK(simple(a, KIPC_SYS_mq_close, id2) == 0);
	CHECK(mq_notify(a, id, KIPC_MQ_SIGEV_NONE) == 0);
}

TEST_CASE("mqueue: a send hands nothing to a waiting receiver whose process exited unseen")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200), &c = w.spawn(300), &d = w.spawn(400);
	int64_t ha = mq_open(a, "/q", kRW | kCreat, 4, 8);
	int64_t hb = mq_open(b, "/q", kRW), hc = mq_open(c, "/q", kRW), hd = mq_open(d, "/q", kRW);
	CHECK(mq_notify(a, ha, KIPC_MQ_SIGEV_SIGNAL, 10) == 0);
	Op rb = mq_receive(b, hb, 8); /* waits first */
	Op rc = mq_receive(c, hc, 8); /* behind it */
	w.host.mq_dead.insert(200);   /* b's process exited; the host has not said so */
	CHECK(mq_send(a, ha, "m1").res() == 0);
	CHECK(!rb.done()); /* nothing completes to a dead process */
	CHECK(rc.text() == "m1");
	CHECK(w.host.mq_signals.empty()); /* handed over: no notification */
	CHECK(w.host.mq_ready[ha] == 2);  /* still empty */
	/* Only a dead receiver waits: the message is queued, as with none. */
	Op rd = mq_receive(d, hd, 8);
	w.host.mq_dead.insert(400);
	CHECK(mq_send(a, ha, "m2").res() == 0);
	CHECK(!rd.done());
	CHECK(w.host.mq_ready[ha] == 3);
	CHECK(w.host.mq_signals.size() == 1); /* queued into an empty queue */
	/* The exits the host reads later find nothing left to end. */
	w.exit(b);
	w.exit(d);
	Op r = mq_receive(a, ha, 8);
	CHECK(r.text() == "m2");
}

TEST_CASE("mqueue: SIGEV_THREAD: the wait completes when it fires, or is cancelled")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	int64_t id = mq_open(a, "/q", kRW | kCreat, 4, 8);
	int64_t hb = mq_open(b, "/q", KIPC_MQ_WRONLY);
	int64_t token = mq_notify(a, id, KIPC_MQ_SIGEV_THREAD);
	REQUIRE(token > 0);
	kipc_sqe s{};
	__kipc_enc_mq_notify_wait(&s, id, token);
	Op wait = a.submit(s);
	CHECK(!wait.done());
	CHECK(mq_send(b, hb, "m").res() == 0);
	CHECK(wait.res() == 0);
	CHECK(wait.cqe().pid == 200);
	mq_receive(a, id, 8);
	/* fired before the wait arrives */
	token = mq_notify(a, id, KIPC_MQ_SIGEV_THREAD);
	CHECK(mq_send(b, hb, "m").res() == 0);
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
	w.host.mq_held.insert({a.pid, 5, id});
	CHECK(getattr(a, id, 5) == 0); /* claimed: fd 5 */
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
	CHECK(simple(a, KIPC_SYS_mq_close, id) == 0); /* one descriptor closed ... */
	CHECK(mq_send(a, id, "x").res() == -EBADF);   /* ... the task's right with it */
	CHECK(mq_send(a, id, "x", 0, 0, 5).res() == 0); /* its process still holds fd 5 */
	w.host.mq_fds[id] = 0;
	w.host.mq_held.clear();
	w.k->mq_released(id); /* the last descriptor closed */
	CHECK(mq_send(a, id, "x").res() == -EBADF);
	CHECK(w.impl().mq.count() == 1);
}

TEST_CASE("mqueue: a handle is its task's, with the access mode granted at open")
{
	World w;
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(200, 2000, 2000); /* another user */
	Proc &c = w.spawn(300);             /* a's user, a's fork child say */
	int64_t h = mq_open(a, "/q", kRW | kCreat, 4, 8);
	REQUIRE(h > 0);
	CHECK(mq_send(a, h, "secret").res() == 0);
	int64_t q = qid(w, h);
	/* Another user scans numbers: every one is EBADF, nothing moves. */
	for (int64_t n : {h, q, h + 1, int64_t(1), int64_t(2)}) {
		CAPTURE(n);
		CHECK(mq_receive(b, n, 8, KIPC_F_NONBLOCK).res() == -EBADF);
		CHECK(mq_send(b, n, "forged", 0, KIPC_F_NONBLOCK).res() == -EBADF);
		CHECK(mq_notify(b, n, KIPC_MQ_SIGEV_SIGNAL, 9) == -EBADF);
		CHECK(getattr(b, n) == -EBADF);
		CHECK(simple(b, KIPC_SYS_mq_close, n) == -EBADF);
		/* naming a descriptor its process does not hold changes nothing */
		CHECK(mq_receive(b, n, 8, KIPC_F_NONBLOCK, 3).res() == -EBADF);
	}
	/* Same user, other task: the number is not a right either. */
	CHECK(mq_receive(c, h, 8, KIPC_F_NONBLOCK).res() == -EBADF);
	/* ... until its process holds a descriptor of the open (fork). */
	w.host.mq_held.insert({c.pid, 4, h});
	CHECK(mq_receive(c, h, 8, KIPC_F_NONBLOCK, 7).res() == -EBADF); /* not that fd */
	CHECK(mq_receive(c, h, 8, KIPC_F_NONBLOCK, 4).text() == "secret");
	CHECK(mq_send(c, h, "again").res() == 0); /* adopted: no fd needed now */
	/* The mode granted at open: a read-only handle cannot send, a
	 * write-only one cannot receive (Linux: EBADF); both may ask. */
	int64_t r = mq_open(a, "/q", KIPC_MQ_RDONLY), wr = mq_open(a, "/q", KIPC_MQ_WRONLY);
	CHECK(mq_send(a, r, "x", 0, KIPC_F_NONBLOCK).res() == -EBADF);
	CHECK(mq_receive(a, wr, 8, KIPC_F_NONBLOCK).res() == -EBADF);
	CHECK(getattr(a, r) == 0);
	CHECK(mq_notify(a, wr, KIPC_MQ_SIGEV_NONE) == 0);
	CHECK(mq_receive(a, r, 8, KIPC_F_NONBLOCK).text() == "again");
	CHECK(mq_send(a, wr, "y").res() == 0);
	/* The queue is untouched by all of b's tries. */
	CHECK(w.impl().mq.handles().find(h)->mb->link.msgs.nmsg == 1);
	/* An exiting task's handles go with it. */
	const Task *ct = c.task;
	CHECK(w.impl().mq.handles().of_task(*ct).size() == 1);
	w.exit(c);
	CHECK(w.impl().mq.handles().of_task(*ct).empty()); /* the key only: ct is gone */
}

TEST_CASE("mqueue: a failed open leaves nothing behind")
{
	World w;
	Proc &a = w.spawn(100);
	w.host.mq_open_err = -ENFILE; /* the host could not make the descriptor */
	CHECK(mq_open(a, "/q", kRW | kCreat, 4, 8) == -ENFILE);
	CHECK(w.impl().mq.count() == 0);
	CHECK(w.impl().user(1000).mq_bytes == 0);
	w.host.mq_open_err = 0;
	CHECK(mq_open(a, "/q", kRW) == -ENOENT);
	/* The library could not open the descriptor: it aborts the open. */
	int64_t h = mq_open(a, "/q", kRW | kCreat, 4, 8);
	REQUIRE(h > 0);
	kipc_sqe s{};
	__kipc_enc_simple(&s, KIPC_SYS_mq_close, h, KIPC_MQ_CLOSE_ABORT);
	CHECK(a.submit(s).res() == 0);
	CHECK(w.impl().mq.count() == 0);
	CHECK(w.impl().mq.handles().size() == 0);
	CHECK(w.host.mq_ready.empty());
	CHECK(mq_open(a, "/q", kRW) == -ENOENT);
	/* An abort of an open that did not create the queue removes only itself. */
	int64_t h1 = mq_open(a, "/q", kRW | kCreat, 4, 8);
	int64_t h2 = mq_open(a, "/q", kRW);
	s.target = h2;
	CHECK(a.submit(s).res() == 0);
	CHECK(mq_open(a, "/q", kRW) > 0);
	CHECK(getattr(a, h1) == 0);
}

TEST_CASE("mqueue: unclaimed SIGEV_THREAD notifications are charged: ENOMEM, others go on")
{
	Limits l = Limits::from_config();
	l.bytes_per_user = kMqOpenCost + 64 * kMqNotifyCost + kMqNotifyCost / 2;
	World w(l);
	Proc &a = w.spawn(100), &b = w.spawn(200, 2000, 2000);
	int64_t h = mq_open(a, "/q", kRW | kCreat, 4, 8);
	int64_t r = 0;
	int fired = 0;
	/* register, fire, never wait: each leaves a notification behind */
	while ((r = mq_notify(a, h, KIPC_MQ_SIGEV_THREAD)) > 0 && fired < 100000) {
		REQUIRE(mq_send(a, h, "m").res() == 0);
		REQUIRE(mq_receive(a, h, 8).res() == 1);
		fired++;
	}
	CHECK(r == -ENOMEM);
	CHECK(fired == 64);
	CHECK(w.impl().mq.fired() == 64);
	/* another user registers on its own queue */
	int64_t hb = mq_open(b, "/qb", kRW | kCreat, 4, 8);
	CHECK(mq_notify(b, hb, KIPC_MQ_SIGEV_THREAD) > 0);
	/* the exit of the registrant frees what it left */
	w.exit(a);
	CHECK(w.impl().mq.fired() == 0);
	CHECK(w.impl().user(1000).bytes == 0);
}

TEST_CASE("mqueue: a recycled pid gets neither the old task's notification nor its messages")
{
	World w;
	Proc &old = w.spawn(100), &b = w.spawn(200);
	int64_t id = mq_open(old, "/recycled", kRW | kCreat, 4, 8);
	CHECK(mq_notify(old, id, KIPC_MQ_SIGEV_SIGNAL, 10) == 0);
	CHECK(b.send(100, "for the old process").res() == 0);
	w.exit(old); /* the host saw its pidfd fire */
	Proc &fresh = w.spawn(100); /* a new process got the number */
	int64_t id2 = mq_open(b, "/recycled", kRW);
	CHECK(mq_send(b, id2, "m").res() == 0);
	CHECK(w.host.mq_signals.empty());
	CHECK(fresh.receive(KIPC_ANY, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
}

TEST_CASE("mqueue: a trace read woken by the release of the last descriptor completes at once")
{
	World w;
	Proc &t = w.spawn(50, 0, 0); /* root: the release runs on no task's behalf */
	Proc &a = w.spawn(100);
	int64_t id = mq_open(a, "/q", kRW | kCreat, 4, 8);
	int64_t q = qid(w, id);
	w.host.mq_held.insert({a.pid, 5, id});
	CHECK(getattr(a, id, 5) == 0); /* claimed: fd 5 */
	w.host.mq_fds[id] = 1;
	CHECK(simple(a, KIPC_SYS_mq_unlink, 0, "/q") == 0);
	CHECK(simple(a, KIPC_SYS_mq_close, id) == 0); /* only fd 5 keeps it */
	REQUIRE(trace_open(t) == 0);
	Op r = trace_read(t, 8); /* nothing happened yet: it parks */
	CHECK(!r.done());
	w.host.mq_fds[id] = 0;
	w.host.mq_held.clear();
	w.k->mq_released(id); /* the queue goes: its DESTROY wakes the read */
	REQUIRE(r.done());
	auto v = events(r);
	REQUIRE(kinds(v) == "DESTROY");
	CHECK(v[0].mbox == q);
}

TEST_CASE("mqueue: opens are charged: a flood of mq_open ends in EMFILE, others go on")
{
	Limits l = Limits::from_config();
	World w(l);
	Proc &a = w.spawn(100), &b = w.spawn(200, 2000, 2000);
	int64_t h = mq_open(a, "/q", kRW | kCreat, 4, 8);
	REQUIRE(h > 0);
	/* opens nobody takes the descriptor of: a few, then EMFILE */
	int64_t r;
	int n = 1;
	while ((r = mq_open(a, "/q", kRW)) > 0 && n < 100000)
		n++;
	CHECK(r == -EMFILE);
	CHECK(n == 16);
	/* taken descriptors: up to the user's bytes_per_user */
	for (MqOpen *o : w.impl().mq.handles().of_task(*a.task))
		o->claimed = true;
	while ((r = mq_open(a, "/q", kRW)) > 0 && n < 100000) {
		w.impl().mq.handles().find(r)->claimed = true;
		n++;
	}
	CHECK(r == -EMFILE);
	CHECK(uint64_t(n) == l.bytes_per_user / kMqOpenCost);
	CHECK(w.host.mq_ready.size() == size_t(n)); /* the host's files: as many */
	/* another user is still served; a's exit gives everything back */
	CHECK(mq_open(b, "/q2", kRW | kCreat) > 0);
	w.exit(a);
	CHECK(w.impl().user(1000).bytes == 0);
	CHECK(w.host.mq_ready.size() == 1); /* b's */
}

TEST_CASE("mqueue: an open whose last descriptor closed takes its holder's registration")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	int64_t h = mq_open(a, "/q", kRW | kCreat, 4, 8);
	w.host.mq_held.insert({a.pid, 5, h});
	REQUIRE(getattr(a, h, 5) == 0); /* claimed */
	w.host.mq_fds[h] = 1;
	REQUIRE(mq_notify(a, h, KIPC_MQ_SIGEV_SIGNAL, 10) == 0);
	int64_t hb = mq_open(b, "/q", kRW);
	CHECK(mq_notify(b, hb, KIPC_MQ_SIGEV_NONE) == -EBUSY);
	/* a's process closed fd 5 and the host saw it before a's mq_close */
	w.host.mq_fds[h] = 0;
	w.k->mq_released(h);
	CHECK(simple(a, KIPC_SYS_mq_close, h) == -EBADF); /* the late flush */
	CHECK(mq_notify(b, hb, KIPC_MQ_SIGEV_NONE) == 0);  /* a's registration went */
}

TEST_CASE("mqueue: a send or receive made at an old flags generation fails ESTALE, nothing done")
{
	World w;
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(200, 2000, 2000); /* another user */
	Proc &c = w.spawn(300);             /* a's user: a fork child holding fd 5 */
	int64_t h = mq_open(a, "/q", kRW | kCreat, 2, 8);
	REQUIRE(h > 0);
	auto flgen = [&](Proc &p, int64_t fd = -1) {
		kipc_sqe s{};
		kipc_mq_attr at{};
		__kipc_enc_mq_rec(&s, KIPC_SYS_mq_getattr, h, fd, 0, sizeof at);
		REQUIRE(get_rec(p, s, &at) == 0);
		return at.flgen;
	};
	auto xfer = [&](Proc &p, bool send, uint64_t gen, int64_t fd = -1) {
		kipc_sqe s{};
		__kipc_enc_mq_xfer(&s, send ? KIPC_SYS_mq_timedsend : KIPC_SYS_mq_timedreceive, h,
				   fd, send ? p.put("m") : p.mem.alloc(8), send ? 1 : 8, 0,
				   KIPC_F_NONBLOCK, 0);
		s.addr2 = gen;
		return p.submit(s, send ? 0 : s.addr, send ? 0 : 8).res();
	};
	uint64_t g = flgen(a);
	CHECK(g == 1);
	CHECK(xfer(a, true, g) == 0);
	CHECK(xfer(a, true, 0) == 0); /* 0: no check */
	/* Another process sharing the descriptor changes its flags. */
	w.host.mq_held.insert({c.pid, 5, h});
	CHECK(simple(c, KIPC_SYS_mq_setfl, h, "", 5) == 0);
	CHECK(flgen(a) == g + 1);
	/* The old reading: refused before anything happens. */
	CHECK(xfer(a, false, g) == -ESTALE);
	CHECK(xfer(a, true, g) == -ESTALE); /* full: would have been EAGAIN */
	CHECK(w.impl().mq.handles().find(h)->mb->link.msgs.nmsg == 2);
	CHECK(xfer(a, false, g + 1) == 1);
	CHECK(xfer(c, false, g + 1) == 1);
	CHECK(xfer(c, false, g + 1) == -EAGAIN);
	/* Nobody else moves it: a number is not a right (EBADF), and a
	 * malformed call is refused. */
	for (int64_t n : {h, h + 1}) {
		CHECK(simple(b, KIPC_SYS_mq_setfl, n) == -EBADF);
		CHECK(simple(b, KIPC_SYS_mq_setfl, n, "", 5) == -EBADF);
	}
	kipc_sqe s{};
	__kipc_enc_simple(&s, KIPC_SYS_mq_setfl, h, 1);
	CHECK(a.submit(s).res() == -EINVAL);
	CHECK(flgen(a) == g + 1);
	/* A closed handle: its setfl is EBADF like every other call. */
	CHECK(simple(c, KIPC_SYS_mq_close, h) == 0);
	w.host.mq_held.clear();
	CHECK(simple(c, KIPC_SYS_mq_setfl, h, "", 5) == -EBADF);
}

TEST_CASE("mqueue: receive push: the own readable open's queue, nothing while full")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(101);
	int64_t h = mq_open(a, "/p", kRW | kCreat | kExcl, 3, 16);
	int64_t wo = mq_open(a, "/p", KIPC_MQ_WRONLY);
	REQUIRE(h > 0);
	REQUIRE(wo > 0);
	kipc::PushMsg m;
	/* empty: nothing to push; a write-only open, another task's: not ours */
	CHECK(w.k->push_next(a.task, KIPC_PUSH_MQ(h), 0, KIPC_PUSH_MAX, &m) == -EAGAIN);
	CHECK(w.k->push_next(a.task, KIPC_PUSH_MQ(wo), 0, KIPC_PUSH_MAX, &m) == -EBADF);
	CHECK(w.k->push_next(b.task, KIPC_PUSH_MQ(h), 0, KIPC_PUSH_MAX, &m) == -EBADF);
	CHECK(mq_send(a, h, "one", 1).res() == 0);
	CHECK(mq_send(a, h, "two", 1).res() == 0);
	REQUIRE(w.k->push_next(a.task, KIPC_PUSH_MQ(h), 0, KIPC_PUSH_MAX, &m) == 0);
	CHECK(m.cqe.len == 3);
	CHECK(m.cqe.prio == 1);
	uint64_t first = m.seq;
	REQUIRE(w.k->push_next(a.task, KIPC_PUSH_MQ(h), first, KIPC_PUSH_MAX, &m) == 0);
	CHECK(std::string(reinterpret_cast<const char *>(m.data), 3) == "two");
	/* full: a claim would give its descriptors POLLOUT, so nothing */
	CHECK(mq_send(a, h, "three", 1).res() == 0);
	CHECK(w.host.mq_ready[h] == 1);
	CHECK(w.k->push_next(a.task, KIPC_PUSH_MQ(h), 0, KIPC_PUSH_MAX, &m) == -EAGAIN);
	/* a pushed message taken: received, room made, the poll state kept */
	CHECK(w.k->take_pushed(a.task, KIPC_PUSH_MQ(h), first));
	CHECK(w.host.mq_ready[h] == 3);
	CHECK(!w.k->take_pushed(a.task, KIPC_PUSH_MQ(h), first)); /* gone */
	CHECK(mq_receive(a, h, 16).text() == "two");
}

TEST_CASE("mqueue: send credits only while the queue has messages, never filling it, "
	  "no notification registered")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(101);
	int64_t h = mq_open(a, "/c", kRW | kCreat | kExcl, 8, 16);
	REQUIRE(h > 0);
	auto reserve = [&](Proc &p, int64_t held, uint32_t want) {
		uint32_t msgsize = 0;
		uint64_t charge = 0;
		uint32_t n = w.k->reserve_sends(p.task, KIPC_SYS_mq_timedsend, h, uint32_t(held),
						want, &msgsize, &charge);
		if (n)
			w.k->release_sends(p.uid, n * charge);
		return n;
	};
	uint32_t nmsg = 9;
	CHECK(w.k->credit_queue(KIPC_SYS_mq_timedsend, h, &nmsg) == qid(w, h));
	CHECK(nmsg == 0);
	CHECK(w.k->credit_queue(KIPC_SYS_mq_timedsend, h + 100, &nmsg) == 0);
	/* empty: a send would make its descriptors poll POLLIN */
	CHECK(reserve(a, 0, 16) == 0);
	CHECK(mq_send(a, h, "1").res() == 0);
	/* 8 slots, 1 queued: 6, so that the last slot stays for a send kipcd takes */
	CHECK(reserve(a, 0, 16) == 6);
	CHECK(reserve(a, 6, 16) == 0);
	CHECK(reserve(a, 2, 3) == 3);
	/* not b's open: b may not send on it */
	CHECK(reserve(b, 0, 16) == 0);
	/* a notification registered: none */
	CHECK(mq_notify(a, h, KIPC_MQ_SIGEV_NONE) == 0);
	CHECK(reserve(a, 0, 16) == 0);
	CHECK(mq_notify(a, h, KIPC_MQ_NOTIFY_REMOVE) == 0);
	CHECK(reserve(a, 0, 16) == 6);
	/* other ops name other links */
	CHECK(w.k->reserve_sends(a.task, KIPC_SYS_mbox_send, h, 0, 16, &nmsg, nullptr) == 0);
	CHECK(simple(a, KIPC_SYS_mq_close, h) == 0);
	CHECK(reserve(a, 0, 16) == 0);
	CHECK(w.impl().user(a.uid).credit_bytes == 0);
}
