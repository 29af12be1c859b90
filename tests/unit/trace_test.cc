// SPDX-License-Identifier: MIT
/* Tracepoints and trace listeners. */
#include "intro_helpers.h"

using namespace kt;

/* A tracer (pid 50) and two tasks it sees, a (100) and b (101). */
struct Traced {
	World w;
	Proc &t = w.spawn(50);
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(101);
};

TEST_CASE("trace: nobody listens by default; open and close count listeners")
{
	World w;
	Proc &t = w.spawn(50);
	CHECK(w.impl().tracer.nlisteners() == 0);
	REQUIRE(trace_open(t) == 0);
	CHECK(w.impl().tracer.nlisteners() == 1);
	CHECK(trace_open(t) == -EBUSY);
	CHECK(sysinfo(t).ntracers == 1);
	REQUIRE(trace_close(t) == 0);
	CHECK(trace_close(t) == -EBADF);
	CHECK(trace_read(t, 8, KIPC_F_NONBLOCK).res() == -EBADF);
	CHECK(w.impl().tracer.nlisteners() == 0);
	kipc_trace_attr bad{};
	bad.rsvd[1] = 1;
	CHECK(trace_open(t, &bad) == -EINVAL);
	bad = {};
	bad.bufsize = KIPC_TRACE_BUF_MAX + 1;
	CHECK(trace_open(t, &bad) == -EINVAL);
	bad = {};
	bad.events = 1u << 21; /* no such event (19, 20: the network's) */
	CHECK(trace_open(t, &bad) == -EINVAL);
}

TEST_CASE_FIXTURE(Traced, "trace: a handed-over message: block, send, wake, deliver")
{
	int64_t box = a.mbox_create(4, 0, 0, 0666);
	REQUIRE(trace_open(t) == 0);
	w.advance_ms(1);
	Op r = a.mbox_receive(box);
	w.advance_ms(1);
	REQUIRE(b.mbox_send(box, "hi").res() == 0);
	CHECK(r.text() == "hi");
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "BLOCK SEND WAKE DELIVER");
	CHECK(v[0].pid == 100);
	CHECK(v[0].mbox == box);
	CHECK(v[0].op == KIPC_SYS_mbox_receive);
	CHECK(v[1].pid == 101);
	CHECK(v[1].len == 2);
	CHECK(v[1].ts - v[0].ts == uint64_t(ms(1)));
	CHECK(v[2].pid == 100);
	CHECK(v[2].peer == 101);
	CHECK(v[3].pid == 100);
	CHECK(v[3].peer == 101);
	CHECK(v[3].seq == v[1].seq);
	CHECK(v[3].seq == r.cqe().seq);
	CHECK((v[3].flags & KIPC_TRACE_F_HANDOFF) != 0);
	CHECK(v[3].op == KIPC_SYS_mbox_send);
	CHECK(std::string(v[3].comm) == "test");
}

TEST_CASE_FIXTURE(Traced, "trace: a full link: enqueue, block, deliver, refill, wake")
{
	int64_t box = a.mbox_create(1, 0, 0, 0666);
	REQUIRE(trace_open(t) == 0);
	REQUIRE(b.mbox_send(box, "1").res() == 0);
	Op s = b.mbox_send(box, "2");
	CHECK(!s.done());
	Op r = a.mbox_receive(box);
	CHECK(r.text() == "1");
	CHECK(s.res() == 0);
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "SEND ENQUEUE SEND BLOCK DELIVER ENQUEUE WAKE");
	CHECK(v[0].seq == v[1].seq);
	CHECK(v[2].seq == v[3].seq);
	CHECK(v[4].seq == v[0].seq);
	CHECK(v[5].seq == v[2].seq);
	CHECK(v[5].pid == 101);
	CHECK(v[6].pid == 101);
	CHECK(v[6].peer == 100); /* woken by the receive */
}

TEST_CASE_FIXTURE(Traced, "trace: task queue events name the queue's owner")
{
	REQUIRE(trace_open(t) == 0);
	REQUIRE(a.send(101, "x", 0, 3).res() == 0);
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "SEND ENQUEUE");
	CHECK(v[0].mbox == 0);
	CHECK(v[0].qpid == 101);
	CHECK(v[0].peer == 101);
	CHECK(v[0].prio == 3);
	CHECK(b.receive().text() == "x");
}

TEST_CASE("trace: call and reply")
{
	World w;
	Proc &t = w.spawn(50);
	Proc &c = w.spawn(100);
	Proc &s = w.spawn(101);
	REQUIRE(trace_open(t) == 0);
	Op call = c.call(101, "ping");
	Op r = s.receive();
	REQUIRE((r.cqe().flags & KIPC_CQE_F_CALL) != 0);
	REQUIRE(s.reply(r.cqe().token, "pong!") == 0);
	CHECK(call.text() == "pong!");
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "SEND ENQUEUE BLOCK DELIVER WAKE DELIVER");
	CHECK((v[0].flags & KIPC_TRACE_F_CALL) != 0);
	CHECK((v[2].flags & KIPC_TRACE_F_REPLY) != 0);
	CHECK((v[3].flags & KIPC_TRACE_F_CALL) != 0);
	CHECK((v[5].flags & KIPC_TRACE_F_REPLY) != 0);
	CHECK(v[5].pid == 100);
	CHECK(v[5].peer == 101);
	CHECK(v[5].len == 5);
}

TEST_CASE("trace: attach, timeout, cancel, destroy and exit")
{
	World w;
	Proc &t = w.spawn(50);
	REQUIRE(trace_open(t) == 0);
	Proc &a = w.spawn(100);
	int64_t box = a.mbox_create(4);
	Op r1 = a.mbox_receive(box, 64, 0, 0, ms(5));
	w.advance_ms(5);
	CHECK(r1.res() == -ETIMEDOUT);
	Op r2 = a.mbox_receive(box);
	REQUIRE(a.cancel(r2) == 0);
	CHECK(r2.res() == -ECANCELED);
	w.exit(a);
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "ATTACH CREATE BLOCK TIMEOUT WAKE BLOCK CANCEL WAKE EXIT DESTROY");
	CHECK(v[0].pid == 100);
	CHECK(std::string(v[0].comm) == "test");
	CHECK(v[1].mbox == box);
	CHECK(v[3].res == -ETIMEDOUT);
	CHECK(v[3].op == KIPC_SYS_NONE); /* a timer, not a syscall */
	CHECK(v[6].res == -ECANCELED);
	CHECK(v[9].mbox == box);
	CHECK(v[9].pid == 100);
}

TEST_CASE("trace: a parked read completes after the syscall, with the batch")
{
	World w;
	Proc &t = w.spawn(50);
	Proc &a = w.spawn(100);
	w.spawn(101);
	REQUIRE(trace_open(t) == 0);
	Op rd = trace_read(t, 16);
	CHECK(!rd.done());
	REQUIRE(a.send(101, "x").res() == 0);
	REQUIRE(rd.done());
	CHECK(kinds(events(rd)) == "SEND ENQUEUE");
	/* the reader's own wakeup is not traced */
	CHECK(trace_read(t, 16, KIPC_F_NONBLOCK).res() == -EAGAIN);
	/* a short buffer takes what fits; the rest stays */
	REQUIRE(a.send(101, "y").res() == 0);
	Op one = trace_read(t, 1);
	CHECK(kinds(events(one)) == "SEND");
	CHECK(kinds(drain_events(t)) == "ENQUEUE");
}

TEST_CASE("trace: read timeouts, cancels, and close with a reader")
{
	World w;
	Proc &t = w.spawn(50);
	REQUIRE(trace_open(t) == 0);
	Op rd = trace_read(t, 8, 0, ms(10));
	w.advance_ms(10);
	CHECK(rd.res() == -ETIMEDOUT);
	Op rd2 = trace_read(t, 8);
	CHECK(trace_read(t, 8).res() == -EBUSY);
	REQUIRE(t.cancel(rd2, true) == 0);
	CHECK(rd2.res() == -EINTR);
	Op rd3 = trace_read(t, 8);
	REQUIRE(trace_close(t) == 0);
	CHECK(rd3.res() == -EBADF);
	CHECK(trace_read(t, 8, KIPC_F_NONBLOCK).res() == -EBADF);
	REQUIRE(trace_open(t) == 0);
	trace_read(t, 8); /* parked when its task exits */
	w.exit(t); /* the listener goes with its task */
	CHECK(w.impl().tracer.nlisteners() == 0);
	CHECK(w.impl().tracer.listeners() == 0);
}

TEST_CASE("trace: a full ring drops events, counts them, and says so")
{
	World w;
	Proc &t = w.spawn(50);
	Proc &a = w.spawn(100);
	int64_t box = a.mbox_create(KIPC_UNBOUNDED);
	kipc_trace_attr at{};
	at.bufsize = 4;
	REQUIRE(trace_open(t, &at) == 0);
	for (int i = 0; i < 5; i++)
		REQUIRE(a.mbox_send(box, "m").res() == 0); /* 10 events */
	auto v = drain_events(t);
	CHECK(kinds(v) == "SEND ENQUEUE SEND ENQUEUE");
	REQUIRE(a.mbox_send(box, "m").res() == 0);
	v = drain_events(t);
	REQUIRE(kinds(v) == "LOST SEND ENQUEUE");
	CHECK(v[0].res == 6);
	REQUIRE(a.mbox_send(box, "m").res() == 0);
	CHECK(kinds(drain_events(t)) == "SEND ENQUEUE");
}

TEST_CASE("trace: filters by pid, mailbox and event")
{
	World w;
	Proc &t1 = w.spawn(50);
	Proc &t2 = w.spawn(51);
	Proc &t3 = w.spawn(52);
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(101);
	int64_t box1 = a.mbox_create(4, 0, 0, 0666);
	int64_t box2 = a.mbox_create(4, 0, 0, 0666);
	kipc_trace_attr f{};
	f.pid = 101;
	REQUIRE(trace_open(t1, &f) == 0);
	f = {};
	f.mbox = box2;
	REQUIRE(trace_open(t2, &f) == 0);
	f = {};
	f.events = KIPC_TRACE_MASK(KIPC_TRACE_DELIVER);
	REQUIRE(trace_open(t3, &f) == 0);
	REQUIRE(a.mbox_send(box1, "a1").res() == 0);
	REQUIRE(b.mbox_send(box2, "b2").res() == 0);
	CHECK(mbox_drain(a, box1).size() == 1);
	auto v1 = drain_events(t1);
	CHECK(kinds(v1) == "SEND ENQUEUE");
	CHECK(v1[0].pid == 101);
	auto v2 = drain_events(t2);
	CHECK(kinds(v2) == "SEND ENQUEUE");
	CHECK(v2[0].mbox == box2);
	auto v3 = drain_events(t3);
	CHECK(kinds(v3) == "DELIVER");
}

TEST_CASE("trace: a listener sees its own uid's tasks; root sees all")
{
	World w;
	Proc &other = w.spawn(50, 2000);
	Proc &root = w.spawn(51, 0);
	Proc &a = w.spawn(100, 1000);
	Proc &b = w.spawn(101, 2000);
	REQUIRE(trace_open(other) == 0);
	REQUIRE(trace_open(root) == 0);
	REQUIRE(a.send(100, "to myself").res() == 0);
	REQUIRE(b.send(101, "me too").res() == 0);
	auto v = drain_events(other);
	CHECK(kinds(v) == "SEND ENQUEUE");
	CHECK(v[0].pid == 101);
	CHECK(kinds(drain_events(root)) == "SEND ENQUEUE SEND ENQUEUE");
}

TEST_CASE("trace: listeners' rings are charged to their user: ENOSPC past the limit")
{
	Limits l = Limits::from_config();
	l.trace_bytes_per_user = 3 * KIPC_TRACE_BUF_MAX * sizeof(kipc_trace_event);
	World w(l);
	kipc_trace_attr big{};
	big.bufsize = KIPC_TRACE_BUF_MAX;
	std::vector<Proc *> ps;
	int64_t r = 0;
	for (pid_t pid = 100; pid < 110 && r == 0; pid++) {
		ps.push_back(&w.spawn(pid));
		r = trace_open(*ps.back(), &big);
	}
	CHECK(r == -ENOSPC);
	CHECK(ps.size() == 4); /* three fit */
	Proc &b = w.spawn(200, 2000, 2000);
	CHECK(trace_open(b, &big) == 0); /* another user still gets one */
	CHECK(trace_close(*ps[0]) == 0); /* a close gives its ring back */
	CHECK(trace_open(*ps[3], &big) == 0);
	w.exit(*ps[1]); /* and so does an exit */
	Proc &c = w.spawn(300);
	CHECK(trace_open(c, &big) == 0);
	CHECK(w.impl().user(1000).trace_bytes == l.trace_bytes_per_user);
}

/* kipc_trace_event as the record its event says it is */
template <class R> static R as(const kipc_trace_event &e)
{
	R r;
	std::memcpy(&r, &e, sizeof r);
	return r;
}

static kipc_trace_attr calls_attr(uint32_t extra = KIPC_TRACE_ALL)
{
	kipc_trace_attr at{};
	at.events = extra | KIPC_TRACE_CALLS;
	return at;
}

TEST_CASE_FIXTURE(Traced, "trace: a failed send carries its error; only what happened is counted")
{
	int64_t box = a.mbox_create(1, 0, 0, 0666);
	REQUIRE(trace_open(t) == 0);
	REQUIRE(b.mbox_send(box, "1").res() == 0);
	CHECK(b.mbox_send(box, "2", KIPC_F_NONBLOCK).res() == -EAGAIN);
	Op s3 = b.mbox_send(box, "3", 0, 0, 0, ms(5));
	CHECK(!s3.done());
	w.advance_ms(5);
	CHECK(s3.res() == -ETIMEDOUT);
	Op s4 = b.mbox_send(box, "4"); /* blocks, then gets in */
	CHECK(!s4.done());
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "SEND ENQUEUE SEND SEND BLOCK TIMEOUT WAKE SEND BLOCK");
	CHECK(v[0].res == 0);
	CHECK(v[0].flags == 0);
	CHECK(v[2].res == -EAGAIN);
	CHECK((v[3].flags & KIPC_TRACE_F_BLOCKED) != 0);
	CHECK(v[5].seq == v[3].seq);
	CHECK(v[5].res == -ETIMEDOUT);

	kipc_mbox_stat st{};
	REQUIRE(a.mbox_stat(box, &st) == 0);
	CHECK(st.nsent == 1); /* neither the EAGAIN nor the timed-out send */
	CHECK(st.lspid == 101);
	CHECK(b.task->nsent == 1);
	CHECK(sysinfo(t).nsent == 1);
	CHECK(a.mbox_receive(box).text() == "1");
	CHECK(s4.res() == 0); /* in the queue now: counted now */
	REQUIRE(a.mbox_stat(box, &st) == 0);
	CHECK(st.nsent == 2);
	CHECK(b.task->nsent == 2);
	CHECK(sysinfo(t).nsent == 2);
	v = drain_events(t);
	CHECK(kinds(v) == "DELIVER ENQUEUE WAKE");
}

TEST_CASE("trace: a cancelled blocked send is not counted either")
{
	World w;
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(101);
	int64_t box = a.mbox_create(0, 0, 0, 0666); /* rendezvous */
	Op s = b.mbox_send(box, "x");
	CHECK(!s.done());
	REQUIRE(b.cancel(s, true) == 0);
	CHECK(s.res() == -EINTR);
	kipc_mbox_stat st{};
	REQUIRE(a.mbox_stat(box, &st) == 0);
	CHECK(st.nsent == 0);
	CHECK(b.task->nsent == 0);
	/* a rendezvous send taken from its blocked sender counts */
	Op s2 = b.mbox_send(box, "y");
	CHECK(a.mbox_receive(box).text() == "y");
	CHECK(s2.res() == 0);
	REQUIRE(a.mbox_stat(box, &st) == 0);
	CHECK(st.nsent == 1);
	CHECK(b.task->nsent == 1);
}

TEST_CASE("trace: create and open events carry the mailbox's name")
{
	World w;
	Proc &t = w.spawn(50);
	Proc &a = w.spawn(100);
	REQUIRE(trace_open(t) == 0);
	int64_t jobs = a.mbox_open("/jobs");
	REQUIRE(jobs > 0);
	CHECK(a.mbox_open("/jobs", 0) == jobs);
	CHECK(a.mbox_open("/nope", 0) == -ENOENT); /* no event: nothing opened */
	std::string longname = "/" + std::string(60, 'x');
	int64_t l = a.mbox_open(longname);
	REQUIRE(l > 0);
	REQUIRE(a.mbox_destroy(jobs) == 0);
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "CREATE OPEN CREATE DESTROY");
	auto c = as<kipc_trace_obj>(v[0]);
	CHECK(c.pid == 100);
	CHECK(c.mbox == jobs);
	CHECK(c.op == KIPC_SYS_mbox_open);
	CHECK(std::string(c.name) == "/jobs");
	CHECK(c.flags == 0);
	CHECK(as<kipc_trace_obj>(v[1]).mbox == jobs);
	auto lc = as<kipc_trace_obj>(v[2]);
	CHECK(std::string(lc.name) == longname.substr(0, 47));
	CHECK((lc.flags & KIPC_TRACE_F_TRUNC) != 0);
	CHECK(v[3].mbox == jobs);
}

TEST_CASE_FIXTURE(Traced, "trace: calls: SYSCALL with the arguments, SYSRET with the result")
{
	int64_t box = a.mbox_create(1, 0, 0, 0666);
	kipc_trace_attr at = calls_attr(0);
	REQUIRE(trace_open(t, &at) == 0);
	Op r = a.mbox_receive(box, 64, KIPC_F_TRUNC);
	w.advance_ms(3);
	REQUIRE(b.mbox_send(box, "hello", 0, 7).res() == 0);
	CHECK(r.res() == 5);
	CHECK(b.mbox_send(box, "x", KIPC_F_NONBLOCK).res() == 0);
	CHECK(b.mbox_send(box, "y", KIPC_F_NONBLOCK).res() == -EAGAIN);
	auto v = drain_events(t); /* the trace reads themselves are not traced */
	REQUIRE(kinds(v) == "SYSCALL SYSCALL SYSRET SYSRET SYSCALL SYSRET SYSCALL SYSRET");
	auto rc = as<kipc_trace_call>(v[0]);
	CHECK(rc.pid == 100);
	CHECK(rc.op == KIPC_SYS_mbox_receive);
	CHECK(rc.target == box);
	CHECK(rc.len == 64);
	CHECK(rc.flags == KIPC_F_TRUNC);
	CHECK(std::string(rc.comm) == "test");
	auto sc = as<kipc_trace_call>(v[1]);
	CHECK(sc.pid == 101);
	CHECK(sc.op == KIPC_SYS_mbox_send);
	CHECK(sc.len == 5);
	CHECK(sc.prio == 7);
	CHECK(sc.ts - rc.ts == uint64_t(ms(3)));
	/* the parked receive completes inside the send, before the send does */
	auto rr = as<kipc_trace_ret>(v[2]);
	CHECK(rr.pid == 100);
	CHECK(rr.op == KIPC_SYS_mbox_receive);
	CHECK(rr.user_data == rc.user_data);
	CHECK(rr.res == 5);
	CHECK(rr.peer == 101);
	CHECK(rr.source == box);
	CHECK(rr.prio == 7);
	auto sr = as<kipc_trace_ret>(v[3]);
	CHECK(sr.pid == 101);
	CHECK(sr.op == KIPC_SYS_mbox_send);
	CHECK(sr.user_data == sc.user_data);
	CHECK(sr.res == 0);
	CHECK(sr.seq == rr.seq);
	auto ec = as<kipc_trace_call>(v[6]);
	CHECK(ec.flags == KIPC_F_NONBLOCK);
	auto er = as<kipc_trace_ret>(v[7]);
	CHECK(er.res == -EAGAIN);
	CHECK(er.user_data == ec.user_data);
}

TEST_CASE("trace: calls are asked for: events 0 and KIPC_TRACE_ALL leave them out")
{
	World w;
	Proc &t = w.spawn(50);
	Proc &u = w.spawn(51);
	Proc &a = w.spawn(100);
	kipc_trace_attr all{};
	all.events = KIPC_TRACE_ALL;
	REQUIRE(trace_open(t) == 0);
	REQUIRE(trace_open(u, &all) == 0);
	REQUIRE(a.send(100, "x").res() == 0);
	CHECK(kinds(drain_events(t)) == "SEND ENQUEUE");
	CHECK(kinds(drain_events(u)) == "SEND ENQUEUE");
}

TEST_CASE("trace: a timed-out call's SYSRET says ETIMEDOUT; a cancelled one EINTR")
{
	World w;
	Proc &t = w.spawn(50);
	Proc &a = w.spawn(100);
	int64_t box = a.mbox_create(1, 0, 0, 0666);
	kipc_trace_attr at = calls_attr(0);
	REQUIRE(trace_open(t, &at) == 0);
	Op r = a.mbox_receive(box, 64, 0, 0, ms(2));
	w.advance_ms(2);
	CHECK(r.res() == -ETIMEDOUT);
	Op r2 = a.mbox_receive(box);
	REQUIRE(a.cancel(r2, true) == 0);
	auto v = drain_events(t);
	/* the cancel is a call too: its SYSRET (0) after the receive's (EINTR) */
	REQUIRE(kinds(v) == "SYSCALL SYSRET SYSCALL SYSCALL SYSRET SYSRET");
	CHECK(as<kipc_trace_ret>(v[1]).res == -ETIMEDOUT);
	CHECK(as<kipc_trace_ret>(v[1]).op == KIPC_SYS_mbox_receive);
	CHECK(as<kipc_trace_call>(v[3]).op == KIPC_SYS_cancel);
	CHECK(as<kipc_trace_ret>(v[4]).res == -EINTR);
	CHECK(as<kipc_trace_ret>(v[4]).user_data == as<kipc_trace_call>(v[2]).user_data);
	CHECK(as<kipc_trace_ret>(v[5]).op == KIPC_SYS_cancel);
}

TEST_CASE("trace: another user's calls are not shown; root sees them")
{
	World w;
	Proc &mallory = w.spawn(50, 2000);
	Proc &root = w.spawn(51, 0);
	Proc &a = w.spawn(100, 1000);
	kipc_trace_attr at = calls_attr();
	at.pid = 100; /* asking for a's pid does not get around the uid check */
	REQUIRE(trace_open(mallory, &at) == 0);
	REQUIRE(trace_open(root, &at) == 0);
	int64_t box = a.mbox_open("/secret");
	REQUIRE(box > 0);
	REQUIRE(a.mbox_send(box, "pin 1234").res() == 0);
	CHECK(drain_events(mallory).empty());
	CHECK(kinds(drain_events(root)) ==
	      "SYSCALL SYSARG CREATE SYSRET SYSCALL SEND ENQUEUE SYSRET");
}

TEST_CASE("trace: with nobody listening no record is built")
{
	World w;
	Proc &a = w.spawn(100);
	Proc &b = w.spawn(101);
	int64_t box = a.mbox_open("/q");
	REQUIRE(a.mbox_send(box, "1").res() == 0);
	Op r = a.mbox_receive(box);
	CHECK(r.res() == 1);
	Op r2 = a.mbox_receive(box, 64, 0, 0, ms(1));
	w.advance_ms(1);
	CHECK(r2.res() == -ETIMEDOUT);
	REQUIRE(b.send(100, "x", KIPC_F_NONBLOCK).res() == 0);
	w.exit(b);
	CHECK(w.impl().tracer.built() == 0);
	Proc &t = w.spawn(50);
	kipc_trace_attr at = calls_attr();
	REQUIRE(trace_open(t, &at) == 0);
	REQUIRE(a.mbox_send(box, "2").res() == 0);
	uint64_t built = w.impl().tracer.built();
	CHECK(built == 4); /* SYSCALL SEND ENQUEUE SYSRET */
	REQUIRE(trace_close(t) == 0);
	REQUIRE(a.mbox_send(box, "3").res() == 0);
	CHECK(w.impl().tracer.built() == built);
}

TEST_CASE("trace: SYSARG carries an open's name from the caller's memory")
{
	World w;
	Proc &t = w.spawn(50);
	Proc &a = w.spawn(100);
	kipc_trace_attr at = calls_attr(0);
	REQUIRE(trace_open(t, &at) == 0);
	CHECK(a.mbox_open("/absent", 0) == -ENOENT);
	kipc_sqe s{};
	s.opcode = KIPC_SYS_mbox_open;
	s.addr = a.mem.arena.size() - 2; /* runs off the arena: EFAULT, no name read */
	s.len = 64;
	CHECK(a.now(s) == -EFAULT);
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "SYSCALL SYSARG SYSRET SYSCALL SYSARG SYSRET");
	auto n = as<kipc_trace_obj>(v[1]);
	CHECK(std::string(n.name) == "/absent");
	CHECK(n.pid == 100);
	CHECK(as<kipc_trace_ret>(v[2]).res == -ENOENT);
	CHECK(std::string(as<kipc_trace_obj>(v[4]).name).empty());
	CHECK((as<kipc_trace_obj>(v[4]).flags & KIPC_TRACE_F_TRUNC) != 0);
}

TEST_CASE("trace: attach carries the parent pid the host read")
{
	World w;
	Proc &t = w.spawn(50);
	REQUIRE(trace_open(t) == 0);
	Proc &c = w.fork(200);
	Creds cc{200, 1000, 1000};
	cc.ppid = 100;
	REQUIRE(w.k->attach(cc, &c.mem.user, "child", &c, &c.task) == 0);
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "ATTACH");
	CHECK(v[0].pid == 200);
	CHECK(v[0].peer == 100);
	CHECK(std::string(v[0].comm) == "child");
}

static int64_t trace_mq_open(Proc &p, const std::string &name, uint32_t oflag)
{
	kipc_mq_open o{};
	o.oflag = oflag;
	o.mode = 0600;
	kipc_sqe s{};
	s.opcode = KIPC_SYS_mq_open;
	s.addr = p.put(name);
	s.len = name.size();
	s.addr2 = p.mem.alloc(sizeof o);
	std::memcpy(p.mem.arena.data() + s.addr2, &o, sizeof o);
	s.len2 = sizeof o;
	return p.submit(s).res();
}

TEST_CASE("trace: a POSIX queue's create, open and its destroy at the last close")
{
	World w;
	Proc &t = w.spawn(50);
	Proc &other = w.spawn(51, 2000);
	Proc &a = w.spawn(100);
	REQUIRE(trace_open(t) == 0);
	REQUIRE(trace_open(other) == 0);
	int64_t h = trace_mq_open(a, "/q", KIPC_MQ_RDWR | KIPC_O_CREAT);
	REQUIRE(h > 0);
	int64_t id = w.impl().mq.handles().find(h)->mb->id; /* the queue; h is a's handle */
	int64_t h2 = trace_mq_open(a, "/q", KIPC_MQ_RDONLY);
	CHECK(h2 > 0);
	CHECK(h2 != h); /* one handle per open */
	kipc_sqe u{};
	u.opcode = KIPC_SYS_mq_close; /* the second open ends: not the queue */
	u.target = h2;
	REQUIRE(a.now(u) == 0);
	w.host.mq_held.insert({a.pid, 5, h}); /* a holds h as fd 5 ... */
	u = kipc_sqe{};
	u.opcode = KIPC_SYS_mq_getattr;
	u.target = h;
	u.type = 5;
	u.addr2 = a.put(std::string(sizeof(kipc_mq_attr), '\0'));
	u.len2 = sizeof(kipc_mq_attr);
	REQUIRE(a.now(u) == 0); /* ... and has said so: the open is claimed */
	w.host.mq_fds[h] = 1;
	u = kipc_sqe{};
	u.opcode = KIPC_SYS_mq_unlink;
	u.addr = a.put("/q");
	u.len = 2;
	REQUIRE(a.now(u) == 0);
	w.host.mq_fds[h] = 0;
	w.host.mq_held.clear();
	w.k->mq_released(h); /* the kernel destroys it, in no task's call */
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "CREATE OPEN DESTROY");
	auto c = as<kipc_trace_obj>(v[0]);
	CHECK(std::string(c.name) == "/q");
	CHECK((c.flags & KIPC_TRACE_F_POSIX) != 0);
	CHECK(v[2].mbox == id);
	CHECK((v[2].flags & KIPC_TRACE_F_POSIX) != 0);
	CHECK(drain_events(other).empty()); /* uid 2000 sees none of uid 1000's */
}

TEST_CASE("trace: the host's records (kipcd's network bridge): its user's listeners, pid filter")
{
	World w;
	Proc &mine = w.spawn(50, 1000);
	Proc &other = w.spawn(51, 2000);
	Proc &bypid = w.spawn(52, 0);
	Proc &a = w.spawn(100, 1000);
	REQUIRE(trace_open(mine, nullptr) == 0);
	REQUIRE(trace_open(other, nullptr) == 0);
	kipc_trace_attr f{};
	f.pid = 7;
	REQUIRE(trace_open(bypid, &f) == 0);
	CHECK(w.k->tracing());
	kipc_trace_net n{};
	n.event = KIPC_TRACE_NETSEND;
	n.op = KIPC_SYS_mbox_send;
	n.res = 7; /* where peer is: never taken for a pid */
	n.seq = 42;
	snprintf(n.name, sizeof n.name, "b:/jobs");
	kipc_trace_event e;
	memcpy(&e, &n, sizeof e);
	w.advance_ms(3);
	w.k->trace_record(a.task, e);
	auto v = drain_events(mine);
	REQUIRE(kinds(v) == "NETSEND");
	kipc_trace_net got;
	memcpy(&got, &v[0], sizeof got);
	CHECK(got.pid == 100); /* the kernel's, of the task */
	CHECK(got.ts == uint64_t(w.clock.monotonic_ns()));
	CHECK(got.seq == 42);
	CHECK(std::string(got.name) == "b:/jobs");
	CHECK(drain_events(other).empty()); /* another user's */
	CHECK(drain_events(bypid).empty()); /* res 7 is not pid 7 */
	/* a call the host runs: SYSCALL and SYSRET, as the core traces them */
	kipc_trace_attr calls{};
	calls.events = KIPC_TRACE_CALLS;
	REQUIRE(trace_close(mine) == 0);
	REQUIRE(trace_open(mine, &calls) == 0);
	kipc_sqe sqe{};
	sqe.opcode = KIPC_SYS_mbox_send;
	sqe.user_data = 9;
	w.k->trace_call(a.task, sqe);
	kipc_cqe cqe{};
	cqe.user_data = 9;
	w.k->trace_ret(a.task, cqe, KIPC_SYS_mbox_send);
	v = drain_events(mine);
	REQUIRE(kinds(v) == "SYSCALL SYSRET");
	CHECK(v[0].pid == 100);
	CHECK(v[1].op == KIPC_SYS_mbox_send);
}
