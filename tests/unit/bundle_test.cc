// SPDX-License-Identifier: MIT
/*
 * Bundles (mbox_send_bundle, send_bundle) and multishot receives into
 * provided buffers (mbox_receive_multi): transport.md section 14,
 * kernel/ipc/bundle.cc.
 */
#include <random>

#include <kipc/net.h>
#include <kipc/ring.h>

#include "harness.h"
#include "intro_helpers.h"

using namespace kt;

namespace {

/* A bundle of p's messages: the payloads and the descriptor array in its arena. */
struct Bundle {
	std::vector<kipc_bundle_desc> d;
	void add(Proc &p, const std::string &s) { d.push_back({p.put(s), uint32_t(s.size()), 0}); }
	kipc_sqe sqe(Proc &p, int64_t id, uint32_t flags = 0, uint16_t prio = 0,
		     uint8_t op = KIPC_SYS_mbox_send_bundle)
	{
		uint64_t at = p.mem.alloc(d.size() * sizeof d[0]);
		std::memcpy(p.mem.arena.data() + at, d.data(), d.size() * sizeof d[0]);
		kipc_sqe s{};
		__kipc_enc_send(&s, op, id, at, uint32_t(d.size() * sizeof d[0]), prio, flags);
		return s;
	}
	/* send_bundle to the task queue of pid */
	kipc_sqe to_pid(Proc &p, pid_t pid, uint32_t flags = 0, uint16_t prio = 0)
	{
		return sqe(p, pid, flags, prio, KIPC_SYS_send_bundle);
	}
};

Op send_bundle(Proc &p, int64_t id, const std::vector<std::string> &msgs, uint32_t flags = 0)
{
	Bundle b;
	for (const std::string &m : msgs)
		b.add(p, m);
	return p.submit(b.sqe(p, id, flags));
}

Op send_bundle_to(Proc &p, pid_t pid, const std::vector<std::string> &msgs, uint32_t flags = 0)
{
	Bundle b;
	for (const std::string &m : msgs)
		b.add(p, m);
	return p.submit(b.to_pid(p, pid, flags));
}

/* A provided-buffer ring in p's arena and what its owner keeps of it. */
struct Ring {
	Proc &p;
	uint32_t entries;
	uint64_t at;                 /* the kipc_buf_ring */
	uint32_t tail = 0, head = 0; /* ours: provided, and used (completions with F_BUFFER) */
	std::vector<uint64_t> buf;   /* bid -> its buffer */
	uint32_t buflen;

	Ring(Proc &p_, uint32_t n, uint32_t len = 64) : p(p_), entries(n), buflen(len)
	{
		at = p.mem.alloc(KIPC_BUF_RING_SIZE(n));
		std::memset(p.mem.arena.data() + at, 0, KIPC_BUF_RING_SIZE(n));
		for (uint32_t i = 0; i < n; i++)
			buf.push_back(p.mem.alloc(len));
	}
	kipc_buf_ring *ring() { return reinterpret_cast<kipc_buf_ring *>(p.mem.arena.data() + at); }
	/* provide buffer bid (or a raw descriptor) at the tail */
	void provide(uint16_t bid) { provide_raw({buf[bid], buflen, bid, 0}); }
	void provide_raw(kipc_buf b)
	{
		*KIPC_BUF_RING_BUF(ring(), tail & (entries - 1)) = b;
		ring()->tail = ++tail;
	}
	void provide_all()
	{
		for (uint32_t i = 0; i < entries; i++)
			provide(uint16_t(i));
	}
	Op arm(int64_t id, uint32_t flags = 0)
	{
		kipc_sqe s{};
		__kipc_enc_receive(&s, KIPC_SYS_mbox_receive_multi, id, at, entries, flags);
		s.len2 = head;
		return p.submit(s);
	}
	/* The payload a completion names, and our head past its buffer. */
	std::string take(const kipc_cqe &c)
	{
		REQUIRE((c.flags & KIPC_CQE_F_BUFFER));
		head++;
		uint32_t bid = c.flags >> KIPC_CQE_BUFFER_SHIFT;
		return std::string(reinterpret_cast<const char *>(p.mem.arena.data() + buf.at(bid)),
				   size_t(c.res));
	}
};

/* The payloads of op's completions from the n-th on (each used a buffer). */
std::vector<std::string> taken(Ring &r, const Op &op, size_t from = 0)
{
	std::vector<std::string> v;
	auto c = op.cqes();
	for (size_t i = from; i < c.size(); i++)
		if (c[i].flags & KIPC_CQE_F_BUFFER)
			v.push_back(r.take(c[i]));
	return v;
}

bool more(const kipc_cqe &c)
{
	return c.flags & KIPC_CQE_F_MORE;
}

} // namespace

TEST_CASE("a bundle queues each message as its own send would, in order, charged alike")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(64, 0, 0, 0622);
	uint64_t before = w.charged(1000);
	CHECK(a.mbox_send(id, "one").res() == 0);
	CHECK(a.mbox_send(id, "two!").res() == 0);
	uint64_t c1 = w.charged(1000);
	Op b = send_bundle(a, id, {"one", "two!", "three"});
	REQUIRE(b.cqes().size() == 1);
	CHECK(b.res() == 3);
	CHECK(b.cqe().flags == 0);
	uint64_t c2 = w.charged(1000);
	kipc_mbox_stat st = mstat(o, id);
	CHECK(st.nmsg == 5);
	CHECK(st.nsent == 5);
	CHECK(st.lspid == 101);
	CHECK(o.mbox_receive(id).text() == "one");
	uint64_t c3 = w.charged(1000);
	CHECK(a.mbox_send(id, "three").res() == 0);
	/* the bundle charged what its three sends alone would */
	CHECK(c2 - c1 == (c1 - before) + (w.charged(1000) - c3));
	std::vector<std::string> got;
	uint64_t seq = 0;
	for (int i = 0; i < 5; i++) {
		Op r = o.mbox_receive(id);
		got.push_back(r.text());
		CHECK(r.cqe().pid == 101);
		CHECK(r.cqe().seq > seq);
		seq = r.cqe().seq;
		if (i == 3)
			CHECK(b.cqe().seq == seq); /* the bundle's last */
	}
	CHECK(got == std::vector<std::string>{"two!", "one", "two!", "three", "three"});
	CHECK(w.charged(1000) == before);
}

TEST_CASE("a bundle charges every message to its user and stops where a send would fail")
{
	World w(roomy_limits());
	Limits &l = CoreTestAccess::limits(w.impl());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(KIPC_UNBOUNDED, 0, 0, 0622, 256);
	CHECK(a.mbox_send(id, std::string(100, 'x')).res() == 0);
	uint64_t one = w.charged(1000);
	l.bytes_per_user = 3 * one; /* room for two more */
	Op b = send_bundle(a, id, {std::string(100, 'a'), std::string(100, 'b'), std::string(100, 'c')});
	CHECK(b.res() == 2);
	CHECK((b.cqe().flags & KIPC_CQE_F_PARTIAL));
	CHECK(b.cqe().type == -ENOSPC);
	CHECK(mstat(o, id).nmsg == 3);
	CHECK(w.charged(1000) == 3 * one);
	/* nothing fits: an error, nothing queued */
	Op c = send_bundle(a, id, {"d"});
	CHECK(c.res() == -ENOSPC);
	CHECK(c.cqe().flags == 0);
	CHECK(mstat(o, id).nmsg == 3);
}

TEST_CASE("a nonblocking bundle to a full mailbox: the first k go, message k fails, none after")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(3, 0, 0, 0622);
	Op b = send_bundle(a, id, {"1", "2", "3", "4", "5"}, KIPC_F_NONBLOCK);
	CHECK(b.res() == 3);
	CHECK((b.cqe().flags & KIPC_CQE_F_PARTIAL));
	CHECK(b.cqe().type == -EAGAIN);
	CHECK(mstat(o, id).nmsg == 3);
	CHECK(mstat(o, id).nsenders == 0); /* it did not wait */
	/* full: an error, nothing queued */
	Op c = send_bundle(a, id, {"6"}, KIPC_F_NONBLOCK);
	CHECK(c.res() == -EAGAIN);
	CHECK(o.mbox_receive(id).text() == "1");
	/* a waiting receiver takes the first at once */
	o.mbox_receive(id);
	o.mbox_receive(id);
	Op r = o.mbox_receive(id);
	CHECK_FALSE(r.done());
	Op d = send_bundle(a, id, {"x", "y"});
	CHECK(d.res() == 2);
	CHECK(r.text() == "x");
	CHECK(d.cqe().seq == o.mbox_receive(id).cqe().seq);
}

TEST_CASE("bad bundles: the array checked whole, each payload as its send would")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(64, 0, 0, 0622, 64);
	Bundle b;
	b.add(a, "ok");
	b.d.push_back({uint64_t(1) << 40, 4, 0}); /* outside the arena */
	b.add(a, "never");
	Op r = a.submit(b.sqe(a, id));
	CHECK(r.res() == 1);
	CHECK(r.cqe().type == -EFAULT);
	b.d[1] = {a.put("abc"), 3, 7}; /* rsvd set */
	r = a.submit(b.sqe(a, id));
	CHECK(r.res() == 1);
	CHECK(r.cqe().type == -EINVAL);
	b.d[1] = {a.put("x"), 65, 0}; /* larger than msgsize (and past "x": in the arena) */
	r = a.submit(b.sqe(a, id));
	CHECK(r.res() == 1);
	CHECK(r.cqe().type == -EMSGSIZE);
	b.d[0] = {~uint64_t(0) - 2, 8, 0}; /* wraps */
	r = a.submit(b.sqe(a, id));
	CHECK(r.res() == -EFAULT);
	CHECK(mstat(o, id).nmsg == 3);

	kipc_sqe s = b.sqe(a, id);
	s.len = 24; /* not a whole number of descriptors */
	CHECK(a.now(s) == -EINVAL);
	s.len = 0;
	CHECK(a.now(s) == -EINVAL);
	s.len = (KIPC_BUNDLE_MAX + 1) * 16;
	CHECK(a.now(s) == -EINVAL);
	s = b.sqe(a, id);
	s.addr = (1 << 20) - 16; /* the array runs out of the arena */
	CHECK(a.now(s) == -EFAULT);
	s = b.sqe(a, id, KIPC_F_CACHE);
	CHECK(a.now(s) == -EINVAL);
	s = b.sqe(a, id, KIPC_F_TRUNC); /* a receive's flag */
	CHECK(a.now(s) == -EINVAL);
	s = b.sqe(a, id, KIPC_F_TIMEOUT);
	s.timeout = -1; /* a bad timeout, as for mbox_send */
	CHECK(a.now(s) == -EINVAL);
	s = b.sqe(a, id);
	s.len2 = 1;
	CHECK(a.now(s) == -EINVAL);
	CHECK(mstat(o, id).nmsg == 3);
	/* rights: as a send */
	Proc &c = w.spawn(102, 2000);
	Bundle cb;
	cb.add(c, "no");
	int64_t closed = o.mbox_create(64, 0, 0, 0600);
	CHECK(c.now(cb.sqe(c, closed)) == -EACCES);
	CHECK(c.now(cb.sqe(c, id + (int64_t(1) << 30))) == -EINVAL); /* never issued */
	CHECK(mstat(o, closed).nmsg == 0);
	CHECK(mstat(o, id).nmsg == 3);
}

TEST_CASE("a bundle with KIPC_F_SKIP_SUCCESS completes only when not all went")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(3, 0, 0, 0622);
	Op b = send_bundle(a, id, {"1", "2"}, KIPC_F_SKIP_SUCCESS);
	CHECK_FALSE(b.done());
	CHECK(a.skipped.size() == 1);
	Op c = send_bundle(a, id, {"3", "4"}, KIPC_F_SKIP_SUCCESS | KIPC_F_NONBLOCK);
	CHECK(c.res() == 1);
	CHECK(c.cqe().type == -EAGAIN);
	Op d = send_bundle(a, id, {"5"}, KIPC_F_SKIP_SUCCESS | KIPC_F_NONBLOCK);
	CHECK(d.res() == -EAGAIN);
	CHECK(mstat(o, id).nmsg == 3);
}

TEST_CASE("a bundle's messages keep priority order with other sends")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(64, 0, 0, 0622);
	CHECK(a.mbox_send(id, "low", 0, 1).res() == 0);
	Bundle b;
	b.add(a, "h1");
	b.add(a, "h2");
	CHECK(a.submit(b.sqe(a, id, 0, 9)).res() == 2);
	CHECK(a.mbox_send(id, "mid", 0, 5).res() == 0);
	std::vector<std::string> got;
	for (int i = 0; i < 4; i++) {
		Op r = o.mbox_receive(id);
		got.push_back(r.text());
	}
	CHECK(got == std::vector<std::string>{"h1", "h2", "mid", "low"});
}

TEST_CASE("a multishot receive takes what is queued, then each new message, one buffer each")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(64, 0, 0, 0622);
	CHECK(a.mbox_send(id, "q1").res() == 0);
	CHECK(a.mbox_send(id, "q2", 0, 3).res() == 0);
	Ring r(o, 8);
	r.provide_all();
	Op m = r.arm(id);
	auto c = m.cqes();
	REQUIRE(c.size() == 2);
	CHECK(taken(r, m) == std::vector<std::string>{"q2", "q1"});
	CHECK(more(c[0]));
	CHECK(more(c[1]));
	CHECK((c[0].flags >> KIPC_CQE_BUFFER_SHIFT) == 0u);
	CHECK((c[1].flags >> KIPC_CQE_BUFFER_SHIFT) == 1u);
	CHECK(c[0].pid == 101);
	CHECK(c[0].prio == 3);
	CHECK(c[0].source == id);
	CHECK(c[0].len == 2);
	CHECK(mstat(o, id).nmsg == 0);
	CHECK(mstat(o, id).nreceivers == 1);
	/* each later send goes straight into the next buffer */
	Op s = a.mbox_send(id, "n1");
	CHECK(s.res() == 0);
	CHECK(s.cqe().pid == 100);
	Op b = send_bundle(a, id, {"n2", "n3"});
	CHECK(b.res() == 2);
	CHECK(taken(r, m, 2) == std::vector<std::string>{"n1", "n2", "n3"});
	CHECK(mstat(o, id).nreceived == 5);
	CHECK(mstat(o, id).nmsg == 0);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("a multishot receive ends ENOBUFS when a message finds no buffer; it stays queued")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(64, 0, 0, 0622);
	Ring r(o, 2);
	r.provide(0);
	Op m = r.arm(id);
	CHECK_FALSE(m.done());
	CHECK(a.mbox_send(id, "a").res() == 0);
	CHECK(a.mbox_send(id, "b").res() == 0); /* no buffer: it ends, b stays */
	auto c = m.cqes();
	REQUIRE(c.size() == 2);
	CHECK(taken(r, m) == std::vector<std::string>{"a"});
	CHECK(c[1].res == -ENOBUFS);
	CHECK_FALSE(more(c[1]));
	CHECK((c[1].flags & KIPC_CQE_F_BUFFER) == 0);
	CHECK(mstat(o, id).nmsg == 1);
	CHECK(mstat(o, id).nreceivers == 0);
	/* re-armed with buffers: b first, nothing lost or twice */
	r.provide(0);
	r.provide(1);
	Op m2 = r.arm(id);
	CHECK(taken(r, m2) == std::vector<std::string>{"b"});
	CHECK(a.mbox_send(id, "c").res() == 0);
	CHECK(taken(r, m2, 1) == std::vector<std::string>{"c"});
	/* armed with queued messages and no buffer: it ends at once */
	CHECK(a.mbox_send(id, "d").res() == 0);
	CHECK(m2.cqes().back().res == -ENOBUFS);
	Op m3 = r.arm(id);
	REQUIRE(m3.cqes().size() == 1);
	CHECK(m3.res() == -ENOBUFS);
	CHECK(o.mbox_receive(id).text() == "d");
	/* armed with nothing queued and no buffer: it waits for one */
	Op m4 = r.arm(id);
	CHECK_FALSE(m4.done());
	r.provide(0);
	CHECK(a.mbox_send(id, "e").res() == 0);
	CHECK(taken(r, m4) == std::vector<std::string>{"e"});
}

TEST_CASE("a multishot receive: a buffer too small ends it EMSGSIZE, unless KIPC_F_TRUNC")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(64, 0, 0, 0622);
	Ring r(o, 4, 4);
	r.provide_all();
	Op m = r.arm(id);
	CHECK(a.mbox_send(id, "abcdef").res() == 0);
	REQUIRE(m.cqes().size() == 1);
	CHECK(m.res() == -EMSGSIZE);
	CHECK(mstat(o, id).nmsg == 1);
	Op t = r.arm(id, KIPC_F_TRUNC);
	REQUIRE(t.cqes().size() == 1);
	CHECK(t.res() == 4);
	CHECK((t.cqe().flags & KIPC_CQE_F_TRUNC));
	CHECK(t.cqe().len == 6);
	CHECK(r.take(t.cqe()) == "abcd");
	CHECK(mstat(o, id).nmsg == 0);
}

TEST_CASE("hostile buffer rings: checked at every use, the message stays queued")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(64, 0, 0, 0622);
	Ring r(o, 4);
	/* the ring itself: in the arena, aligned, a power of two, no stray fields */
	kipc_sqe s{};
	__kipc_enc_receive(&s, KIPC_SYS_mbox_receive_multi, id, (1 << 20) - 64, 4, 0);
	CHECK(o.now(s) == -EFAULT);
	s.addr = r.at + 4;
	CHECK(o.now(s) == -EINVAL);
	s.addr = r.at;
	s.len = 3;
	CHECK(o.now(s) == -EINVAL);
	s.len = 0;
	CHECK(o.now(s) == -EINVAL);
	s.len = KIPC_BUF_RING_MAX * 2;
	CHECK(o.now(s) == -EINVAL);
	s.len = 4;
	s.flags = KIPC_F_NONBLOCK;
	CHECK(o.now(s) == -EINVAL);
	s.flags = 0;
	s.timeout = 5;
	CHECK(o.now(s) == -EINVAL);
	s.timeout = 0;
	s.type = 1;
	CHECK(o.now(s) == -EINVAL);
	s.type = 0;
	s.addr2 = 8;
	CHECK(o.now(s) == -EINVAL);

	/* a buffer outside the arena */
	CHECK(a.mbox_send(id, "m1").res() == 0);
	r.provide_raw({uint64_t(1) << 40, 64, 9, 0});
	Op m = r.arm(id);
	CHECK(m.res() == -EFAULT);
	CHECK(mstat(o, id).nmsg == 1);
	/* a buffer that runs past the end */
	r.head = r.tail;
	r.provide_raw({(1 << 20) - 8, 64, 9, 0});
	m = r.arm(id);
	CHECK(m.res() == -EFAULT);
	/* a tail far ahead of the head (ring overrun) */
	r.head = r.tail;
	r.ring()->tail = r.tail + 5;
	m = r.arm(id);
	CHECK(m.res() == -EINVAL);
	/* ... and one that moves while the receive waits */
	CHECK(o.mbox_receive(id).text() == "m1");
	r.ring()->tail = r.tail;
	r.provide(0);
	m = r.arm(id);
	CHECK_FALSE(m.done());
	r.ring()->tail = r.tail - 100;
	CHECK(a.mbox_send(id, "m2").res() == 0);
	CHECK(m.res() == -EINVAL);
	CHECK(mstat(o, id).nmsg == 1);
	/* a head the process gave that is not where its tail is: the same rule */
	r.ring()->tail = r.tail;
	kipc_sqe h{};
	__kipc_enc_receive(&h, KIPC_SYS_mbox_receive_multi, id, r.at, 4, 0);
	h.len2 = r.tail + 1; /* past the tail: tail - head wraps */
	CHECK(o.now(h) == -EINVAL);
	CHECK(mstat(o, id).nmsg == 1);
	CHECK(o.mbox_receive(id).text() == "m2");
	/* rights: as a receive */
	Proc &c = w.spawn(102, 2000);
	Ring rc(c, 4);
	rc.provide_all();
	CHECK(rc.arm(id).res() == -EPERM);
}

TEST_CASE("a multishot receive ends on cancel, destroy, a full CQ; the receiver's exit loses nothing")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(64, 0, KIPC_MBOX_KERNEL_OWNED, 0666);
	Ring r(o, 8);
	r.provide_all();
	Op m = r.arm(id);
	CHECK(o.cancel(m) == 0);
	REQUIRE(m.cqes().size() == 1);
	CHECK(m.res() == -ECANCELED);
	CHECK(mstat(o, id).nreceivers == 0);

	/* CQ full: the message stays */
	Op m2 = r.arm(id);
	o.cq_full = true;
	CHECK(a.mbox_send(id, "x").res() == 0);
	CHECK(m2.res() == -EOVERFLOW);
	CHECK(mstat(o, id).nmsg == 1);
	o.cq_full = false;
	Op m3 = r.arm(id);
	CHECK(taken(r, m3) == std::vector<std::string>{"x"});

	/* another receiver's multishot, then it exits: what it did not take stays */
	Proc &b = w.spawn(102);
	Ring rb(b, 2);
	rb.provide_all();
	CHECK(o.cancel(m3) == 0);
	Op mb = rb.arm(id);
	CHECK(a.mbox_send(id, "1").res() == 0);
	REQUIRE(mb.cqes().size() == 1);
	CHECK(more(mb.cqe()));
	w.exit(b);
	CHECK(a.mbox_send(id, "2").res() == 0);
	CHECK(mstat(o, id).nmsg == 1);
	CHECK(mstat(o, id).nreceived == 2);
	CHECK(o.mbox_receive(id).text() == "2");

	/* destroy */
	Op m4 = r.arm(id);
	CHECK(o.mbox_destroy(id) == 0);
	CHECK(m4.res() == -EIDRM);
	CHECK_FALSE(more(m4.cqe()));
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("a multishot receive takes its turn among receivers and the blocked senders' order")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(1, 0, 0, 0622);
	/* one queued, two blocked senders: all taken, in order, senders done */
	CHECK(a.mbox_send(id, "s1").res() == 0);
	Op s2 = a.mbox_send(id, "s2");
	Op s3 = a.mbox_send(id, "s3");
	CHECK_FALSE(s2.done());
	Ring r(o, 8);
	r.provide_all();
	Op m = r.arm(id);
	CHECK(taken(r, m) == std::vector<std::string>{"s1", "s2", "s3"});
	CHECK(s2.res() == 0);
	CHECK(s3.res() == 0);
	CHECK(mstat(o, id).nmsg == 0);
	CHECK(mstat(o, id).nsenders == 0);
	/* an ordinary receive waiting too: they alternate, longest-waiting first */
	Op r1 = o.mbox_receive(id);
	CHECK(a.mbox_send(id, "t1").res() == 0); /* the multishot waited first */
	CHECK_FALSE(r1.done());
	CHECK(a.mbox_send(id, "t2").res() == 0);
	CHECK(r1.text() == "t2");
	CHECK(a.mbox_send(id, "t3").res() == 0);
	CHECK(taken(r, m, 3) == std::vector<std::string>{"t1", "t3"});
}

TEST_CASE("ledger: bundles and multishot receives, buffers running out, each message once, in order")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(16, 0, 0, 0622);
	std::mt19937 rng(13);
	Ring r(o, 8, 16);
	uint32_t next = 0, sent = 0; /* messages numbered 0.. in the order sent */
	std::vector<uint32_t> got;
	std::vector<uint16_t> free_bids;
	for (uint16_t i = 0; i < 8; i++)
		free_bids.push_back(i);
	Op m{};
	bool armed = false;
	size_t seen = 0;
	auto reap = [&] {
		if (!armed)
			return;
		auto c = m.cqes();
		for (; seen < c.size(); seen++) {
			if (c[seen].flags & KIPC_CQE_F_BUFFER) {
				std::string s = r.take(c[seen]);
				REQUIRE(s.size() == 4);
				uint32_t v;
				std::memcpy(&v, s.data(), 4);
				got.push_back(v);
				free_bids.push_back(uint16_t(c[seen].flags >> KIPC_CQE_BUFFER_SHIFT));
			}
			if (!more(c[seen])) {
				CHECK((c[seen].res == -ENOBUFS || c[seen].res == -ECANCELED ||
				       c[seen].res == -EOVERFLOW));
				armed = false;
			}
		}
	};
	for (int step = 0; step < 4000; step++) {
		switch (rng() % 6) {
		case 0:
		case 1: { /* a bundle of 1..8 */
			uint32_t n = 1 + rng() % 8;
			Bundle b;
			for (uint32_t i = 0; i < n; i++) {
				uint32_t v = next + i;
				b.add(a, std::string(reinterpret_cast<const char *>(&v), 4));
			}
			Op op = a.submit(b.sqe(a, id, KIPC_F_NONBLOCK));
			int64_t res = op.res();
			if (res > 0)
				next += uint32_t(res);
			else
				CHECK(res == -EAGAIN);
			if (res > 0 && uint32_t(res) < n)
				CHECK(op.cqe().type == -EAGAIN);
			sent = next;
			break;
		}
		case 2: /* provide some buffers back */
			while (!free_bids.empty() && rng() % 3) {
				r.provide(free_bids.back());
				free_bids.pop_back();
			}
			break;
		case 3:
			if (!armed) {
				m = r.arm(id);
				armed = true;
				seen = 0;
			}
			break;
		case 4:
			if (armed && rng() % 4 == 0)
				o.cancel(m);
			else
				o.cq_full = rng() % 8 == 0;
			break;
		case 5:
			if (!armed && rng() % 2) { /* an ordinary receive now and then */
				kipc_sqe s{};
				uint64_t buf = o.mem.alloc(16);
				__kipc_enc_receive(&s, KIPC_SYS_mbox_receive, id, buf, 16, KIPC_F_NONBLOCK);
				Op op = o.submit(s, buf, 16);
				if (op.res() == 4) {
					uint32_t v;
					std::memcpy(&v, o.mem.arena.data() + buf, 4);
					got.push_back(v);
				} else {
					CHECK(op.res() == -EAGAIN);
				}
			}
			break;
		}
		reap();
		if (o.mem.top > (1 << 20) - 65536 || a.mem.top > (1 << 20) - 65536)
			break; /* the fake arenas are bump-allocated */
	}
	/* the rest: buffers back, armed again, until every message is in */
	o.cq_full = false;
	for (int round = 0; round < 100 && got.size() < sent; round++) {
		for (uint16_t b : free_bids)
			r.provide(b);
		free_bids.clear();
		if (!armed) {
			m = r.arm(id);
			armed = true;
			seen = 0;
		}
		reap();
	}
	REQUIRE(got.size() == sent);
	for (uint32_t i = 0; i < sent; i++)
		REQUIRE(got[i] == i);
	CHECK(sent > 200);
	CHECK(mstat(o, id).nmsg == 0);
}

/* ---- a bundle that waits for room (without KIPC_F_NONBLOCK) --------- */

namespace {

std::vector<std::string> drain(Proc &o, int64_t id, size_t n)
{
	std::vector<std::string> v;
	for (size_t i = 0; i < n; i++) {
		Op r = o.mbox_receive(id, 256, KIPC_F_NONBLOCK);
		REQUIRE(r.res() >= 0);
		v.push_back(r.text());
	}
	return v;
}

} // namespace

TEST_CASE("a blocking bundle waits for room, goes on as room comes, in order, charged alike")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(2, 0, 0, 0622);
	uint64_t before = w.charged(1000);
	Op b = send_bundle(a, id, {"1", "2", "3", "4", "5"});
	CHECK_FALSE(b.done());
	kipc_mbox_stat st = mstat(o, id);
	CHECK(st.nmsg == 2);
	CHECK(st.nsenders == 1); /* message 3 waits, as a blocking send's */
	CHECK(st.nsent == 2);    /* a waiting message is not sent yet */
	uint64_t held = w.charged(1000) - before; /* 3 messages and the rest's descriptors */
	CHECK(drain(o, id, 1) == std::vector<std::string>{"1"});
	/* 3 went in with the room; 4 waits now */
	CHECK_FALSE(b.done());
	st = mstat(o, id);
	CHECK(st.nmsg == 2);
	CHECK(st.nsenders == 1);
	CHECK(st.nsent == 3);
	CHECK(w.charged(1000) - before == held);
	/* a receiver waiting takes the next at once: the bundle goes on after it */
	CHECK(drain(o, id, 2) == std::vector<std::string>{"2", "3"});
	st = mstat(o, id);
	CHECK(st.nmsg == 2); /* 4 and 5: all went */
	CHECK(st.nsenders == 0);
	REQUIRE(b.cqes().size() == 1);
	CHECK(b.res() == 5);
	CHECK(b.cqe().flags == 0);
	std::vector<std::string> rest;
	uint64_t seq = 0;
	for (int i = 0; i < 2; i++) {
		Op r = o.mbox_receive(id);
		rest.push_back(r.text());
		seq = r.cqe().seq;
	}
	CHECK(rest == std::vector<std::string>{"4", "5"});
	CHECK(b.cqe().seq == seq);
	CHECK(mstat(o, id).nsent == 5);
	CHECK(w.charged(1000) == before);
}

TEST_CASE("a blocking bundle's waiting message is handed to a receiver that comes")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(0, 0, 0, 0622); /* rendezvous: every message waits */
	Op b = send_bundle(a, id, {"r1", "r2", "r3"});
	CHECK_FALSE(b.done());
	CHECK(mstat(o, id).nsenders == 1);
	CHECK(o.mbox_receive(id).text() == "r1");
	CHECK_FALSE(b.done());
	CHECK(mstat(o, id).nsenders == 1); /* r2 waits */
	Op r = o.mbox_receive(id);
	CHECK(r.text() == "r2");
	CHECK(o.mbox_receive(id).text() == "r3");
	CHECK(b.res() == 3);
	CHECK(mstat(o, id).nsenders == 0);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("a timed blocking bundle ends at its deadline with the exact count")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(2, 0, 0, 0622);
	Bundle bb;
	for (const char *m : {"1", "2", "3", "4"})
		bb.add(a, m);
	kipc_sqe s = bb.sqe(a, id, KIPC_F_TIMEOUT);
	s.timeout = ms(10);
	Op b = a.submit(s);
	CHECK_FALSE(b.done());
	w.advance_ms(5);
	CHECK(drain(o, id, 1) == std::vector<std::string>{"1"}); /* 3 went */
	CHECK_FALSE(b.done());
	w.advance_ms(5); /* the deadline of the whole bundle */
	REQUIRE(b.done());
	CHECK(b.res() == 3);
	CHECK((b.cqe().flags & KIPC_CQE_F_PARTIAL));
	CHECK(b.cqe().type == -ETIMEDOUT);
	kipc_mbox_stat st = mstat(o, id);
	CHECK(st.nmsg == 2);
	CHECK(st.nsenders == 0); /* 4 withdrawn: it never went */
	CHECK(drain(o, id, 2) == std::vector<std::string>{"2", "3"});
	CHECK(w.charged(1000) == 0);
	/* none went: the error alone */
	CHECK(a.mbox_send(id, "f1").res() == 0);
	CHECK(a.mbox_send(id, "f2").res() == 0);
	s = bb.sqe(a, id, KIPC_F_TIMEOUT);
	s.timeout = ms(1);
	Op c = a.submit(s);
	CHECK_FALSE(c.done());
	w.advance_ms(1);
	CHECK(c.res() == -ETIMEDOUT);
	CHECK(c.cqe().flags == 0);
	/* an expired deadline with no room: at once */
	s.timeout = 0;
	CHECK(a.submit(s).res() == -ETIMEDOUT);
	CHECK(mstat(o, id).nmsg == 2);
}

TEST_CASE("a blocking bundle parked: destroy, cancel and exit lose, duplicate and invent nothing")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	SUBCASE("destroy") {
		int64_t id = o.mbox_create(1, 0, 0, 0622);
		Op b = send_bundle(a, id, {"1", "2", "3"});
		CHECK_FALSE(b.done());
		CHECK(o.mbox_destroy(id) == 0);
		CHECK(b.res() == 1);
		CHECK((b.cqe().flags & KIPC_CQE_F_PARTIAL));
		CHECK(b.cqe().type == -EIDRM);
		CHECK(w.charged(1000) == 0);
	}
	SUBCASE("cancel") {
		int64_t id = o.mbox_create(1, 0, 0, 0622);
		Op b = send_bundle(a, id, {"1", "2", "3"});
		CHECK(drain(o, id, 1) == std::vector<std::string>{"1"});
		CHECK(a.cancel(b) == 0);
		CHECK(b.res() == 2);
		CHECK(b.cqe().type == -ECANCELED);
		CHECK(mstat(o, id).nsenders == 0);
		CHECK(drain(o, id, 1) == std::vector<std::string>{"2"});
		CHECK(o.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
		CHECK(a.cancel(b) == -ENOENT); /* one completion */
		CHECK(b.cqes().size() == 1);
		/* a second message waiting: the count, EINTR */
		Op c = send_bundle(a, id, {"x", "y", "v"});
		CHECK(a.mbox_send(id, "z", KIPC_F_NONBLOCK).res() == -EAGAIN);
		CHECK(drain(o, id, 1) == std::vector<std::string>{"x"}); /* y in, v waits */
		CHECK_FALSE(c.done());
		CHECK(a.cancel(c, true) == 0);
		CHECK(c.res() == 2);
		CHECK(c.cqe().type == -EINTR);
		/* none went: the error alone */
		Op d = send_bundle(a, id, {"p", "q"});
		CHECK(w.charged(1000) > 0);
		CHECK(a.cancel(d) == 0);
		CHECK(d.res() == -ECANCELED);
		CHECK(d.cqe().flags == 0);
		CHECK(drain(o, id, 1) == std::vector<std::string>{"y"});
		CHECK(o.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
		CHECK(w.charged(1000) == 0);
	}
	SUBCASE("exit") {
		int64_t id = o.mbox_create(1, 0, 0, 0622);
		Op b = send_bundle(a, id, {"1", "2", "3"});
		w.exit(a);
		CHECK_FALSE(b.done());
		CHECK(mstat(o, id).nsenders == 0);
		CHECK(drain(o, id, 1) == std::vector<std::string>{"1"}); /* what went stays */
		CHECK(o.mbox_receive(id, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
		CHECK(w.charged(1000) == 0);
	}
}

TEST_CASE("a blocking bundle keeps its place among blocked senders, each message as a blocking send")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101), &b = w.spawn(102), &c = w.spawn(103);
	int64_t id = o.mbox_create(1, 0, 0, 0622);
	CHECK(a.mbox_send(id, "a0").res() == 0);
	Op b1 = b.mbox_send(id, "b1"); /* waits before the bundle */
	Op x = send_bundle(a, id, {"x1", "x2"});
	Op c1 = c.mbox_send(id, "c1"); /* waits after its first message */
	CHECK(mstat(o, id).nsenders == 3);
	std::vector<std::string> got;
	for (int i = 0; i < 5; i++)
		got.push_back(o.mbox_receive(id).text());
	/* x2 is sent when x1 went (as the caller would send it on seeing x1's
	 * completion): behind c1, which was waiting then */
	CHECK(got == std::vector<std::string>{"a0", "b1", "x1", "c1", "x2"});
	CHECK(b1.res() == 0);
	CHECK(c1.res() == 0);
	CHECK(x.res() == 2);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("a blocking bundle ends with the exact count when a later message fails")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101, 1001);
	int64_t id = o.mbox_create(1, 0, 0, 0622, 8);
	Op b = send_bundle(a, id, {"1", "2", "too long a message", "4"});
	CHECK_FALSE(b.done());
	CHECK(drain(o, id, 1) == std::vector<std::string>{"1"});
	REQUIRE(b.done());
	CHECK(b.res() == 2);
	CHECK(b.cqe().type == -EMSGSIZE);
	CHECK(drain(o, id, 1) == std::vector<std::string>{"2"});
	/* the right lost while waiting: the next message fails, EACCES */
	CHECK(a.mbox_send(id, "f").res() == 0);
	Op c = send_bundle(a, id, {"5", "6"});
	kipc_mbox_attr at{};
	at.mode = 0600;
	CHECK(o.mbox_setattr(id, KIPC_SET_MODE, at) == 0);
	CHECK(drain(o, id, 1) == std::vector<std::string>{"f"});
	CHECK(c.res() == 1);
	CHECK(c.cqe().type == -EACCES);
	CHECK(drain(o, id, 1) == std::vector<std::string>{"5"});
	CHECK(w.charged(1001) == 0);
}

TEST_CASE("a blocking bundle's rest is charged: no room for it, nothing more goes")
{
	World w(roomy_limits());
	Limits &l = CoreTestAccess::limits(w.impl());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(1, 0, 0, 0622);
	CHECK(a.mbox_send(id, "q").res() == 0);
	uint64_t one = w.charged(1000);
	l.bytes_per_user = 2 * one + 64; /* the next message, not the bundle's rest */
	Op b = send_bundle(a, id, {"1", "2", "3"});
	CHECK(b.res() == -ENOSPC);
	CHECK(mstat(o, id).nsenders == 0);
	CHECK(w.charged(1000) == one);
}

TEST_CASE("ledger: blocking bundles into a multishot receive whose buffers run out")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(2, 0, 0, 0622);
	Ring r(o, 4, 16);
	r.provide_all();
	std::vector<uint16_t> free_bids;
	std::vector<uint32_t> got;
	Op m = r.arm(id);
	size_t seen = 0;
	uint32_t next = 0;
	std::vector<Op> bundles;
	std::mt19937 rng(7);
	auto reap = [&](bool give_back) {
		for (;;) {
			auto c = m.cqes();
			for (; seen < c.size(); seen++)
				if (c[seen].flags & KIPC_CQE_F_BUFFER) {
					std::string s = r.take(c[seen]);
					uint32_t v;
					std::memcpy(&v, s.data(), 4);
					got.push_back(v);
					free_bids.push_back(uint16_t(c[seen].flags >> KIPC_CQE_BUFFER_SHIFT));
				}
			if (give_back) {
				for (uint16_t f : free_bids)
					r.provide(f);
				free_bids.clear();
			}
			if (c.empty() || more(c.back()))
				return;
			CHECK(c.back().res == -ENOBUFS);
			for (uint16_t f : free_bids) /* every buffer back, armed again */
				r.provide(f);
			free_bids.clear();
			m = r.arm(id);
			seen = 0;
		}
	};
	for (int step = 0; step < 300; step++) {
		if (rng() % 2) {
			uint32_t n = 1 + rng() % 6;
			Bundle b;
			for (uint32_t i = 0; i < n; i++, next++)
				b.add(a, std::string(reinterpret_cast<const char *>(&next), 4));
			bundles.push_back(a.submit(b.sqe(a, id)));
		}
		reap(rng() % 3 == 0);
	}
	for (int round = 0; round < 1000 && got.size() < next; round++)
		reap(true);
	REQUIRE(got.size() == next);
	for (uint32_t i = 0; i < next; i++)
		REQUIRE(got[i] == i);
	for (const Op &b : bundles) {
		REQUIRE(b.cqes().size() == 1);
		CHECK(b.cqe().flags == 0);
		CHECK(b.res() > 0);
	}
	CHECK(mstat(o, id).nsenders == 0);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("a blocking bundle is traced as its blocking sends: one WAKE per message that waited")
{
	World w(roomy_limits());
	Proc &t = w.spawn(50), &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = o.mbox_create(1, 0, 0, 0622);
	REQUIRE(trace_open(t) == 0);
	Op b = send_bundle(a, id, {"x1", "x2", "x3"});
	CHECK(o.mbox_receive(id).text() == "x1");
	CHECK_FALSE(b.done());
	CHECK(o.mbox_receive(id).text() == "x2");
	CHECK(b.res() == 3);
	CHECK(o.mbox_receive(id).text() == "x3");
	auto v = drain_events(t);
	REQUIRE(kinds(v) == "SEND ENQUEUE SEND BLOCK DELIVER ENQUEUE WAKE SEND BLOCK "
			    "DELIVER ENQUEUE WAKE DELIVER");
	CHECK((v[2].flags & KIPC_TRACE_F_BLOCKED) != 0);
	CHECK(v[6].pid == 101);
	CHECK(v[6].peer == 100); /* woken by the receive */
	CHECK(v[7].pid == 101);  /* x3 sent on its behalf */
	CHECK(v[12].seq == b.cqe().seq);
}

/* ---- bundles to a task queue (send_bundle) ---------------------------- */

namespace {

kipc_taskq_stat qstat(Proc &o)
{
	kipc_taskq_stat st{};
	REQUIRE(o.taskq_stat(&st) == 0);
	return st;
}

std::vector<std::string> drain_q(Proc &o, size_t n)
{
	std::vector<std::string> v;
	for (size_t i = 0; i < n; i++) {
		Op r = o.receive(KIPC_ANY, 256, KIPC_F_NONBLOCK);
		REQUIRE(r.res() >= 0);
		v.push_back(r.text());
	}
	return v;
}

} // namespace

TEST_CASE("a bundle to a task queue is its sends to that pid: in order, from its pid, charged alike")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	REQUIRE(o.taskq_setattr(64) == 0);
	uint64_t before = w.charged(1000);
	CHECK(a.send(100, "aaa").res() == 0);
	uint64_t one = w.charged(1000) - before;
	Op b = send_bundle_to(a, 100, {"bbb", "ccc", "ddd"});
	REQUIRE(b.cqes().size() == 1);
	CHECK(b.res() == 3);
	CHECK(b.cqe().flags == 0);
	CHECK(w.charged(1000) - before == 4 * one); /* what its three sends would charge */
	kipc_taskq_stat st = qstat(o);
	CHECK(st.nmsg == 4);
	CHECK(qstat(a).nsent == 4); /* counted as its sender's sends */
	std::vector<std::string> got;
	uint64_t seq = 0;
	for (int i = 0; i < 4; i++) {
		Op r = o.receive(101); /* by sender, as a send's messages are keyed */
		got.push_back(r.text());
		CHECK(r.cqe().pid == 101);
		CHECK(r.cqe().seq > seq);
		seq = r.cqe().seq;
	}
	CHECK(b.cqe().seq == seq); /* the bundle's last */
	CHECK(got == std::vector<std::string>{"aaa", "bbb", "ccc", "ddd"});
	CHECK(w.charged(1000) == before);
	/* priority and type: each message has the bundle's, as a send's */
	CHECK(a.send(100, "low", 0, 1).res() == 0);
	Bundle h;
	h.add(a, "h1");
	h.add(a, "h2");
	kipc_sqe s = h.to_pid(a, 100, 0, 9);
	s.type = 7;
	CHECK(a.submit(s).res() == 2);
	CHECK(a.send(100, "mid", 0, 5, 7).res() == 0);
	CHECK(o.receive(KIPC_ANY, 256, KIPC_F_TYPE, 7).text() == "h1");
	CHECK(drain_q(o, 3) == std::vector<std::string>{"h2", "mid", "low"});
}

TEST_CASE("a nonblocking bundle to a full task queue: the first k go, message k fails, none after")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	REQUIRE(o.taskq_setattr(3) == 0);
	Op b = send_bundle_to(a, 100, {"1", "2", "3", "4", "5"}, KIPC_F_NONBLOCK);
	CHECK(b.res() == 3);
	CHECK((b.cqe().flags & KIPC_CQE_F_PARTIAL));
	CHECK(b.cqe().type == -EAGAIN);
	CHECK(qstat(o).nmsg == 3);
	CHECK(qstat(o).nsenders == 0); /* it did not wait */
	CHECK(send_bundle_to(a, 100, {"6"}, KIPC_F_NONBLOCK).res() == -EAGAIN);
	CHECK(a.send(100, "7", KIPC_F_NONBLOCK).res() == -EAGAIN); /* as a send */
	CHECK(drain_q(o, 3) == std::vector<std::string>{"1", "2", "3"});
	/* a waiting receiver takes the first at once */
	Op r = o.receive();
	CHECK_FALSE(r.done());
	Op d = send_bundle_to(a, 100, {"x", "y"}, KIPC_F_SKIP_SUCCESS);
	CHECK_FALSE(d.done()); /* all went: no completion */
	CHECK(r.text() == "x");
	CHECK(drain_q(o, 1) == std::vector<std::string>{"y"});
}

TEST_CASE("bad bundles to a task queue: the pid as a send's, the array whole, each payload")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	Proc &other = w.spawn(102, 2000), &root = w.spawn(103, 0);
	REQUIRE(o.taskq_setattr(64) == 0);
	Bundle ob;
	ob.add(other, "no");
	/* another user's task: EPERM, as send says (find_peer: kill(2)'s rule) */
	CHECK(other.send(100, "no").res() == -EPERM);
	CHECK(other.now(ob.to_pid(other, 100)) == -EPERM);
	Bundle rb;
	rb.add(root, "root");
	CHECK(root.submit(rb.to_pid(root, 100)).res() == 1); /* root may */
	/* a dead pid, no pid, a pid out of range: as send */
	Bundle b;
	b.add(a, "ok");
	b.d.push_back({uint64_t(1) << 40, 4, 0}); /* outside the arena */
	b.add(a, "never");
	CHECK(a.send(4242, "x").res() == -ESRCH);
	CHECK(a.now(b.to_pid(a, 4242)) == -ESRCH);
	CHECK(a.now(b.to_pid(a, 0)) == -EINVAL);
	CHECK(a.now(b.sqe(a, int64_t(1) << 32, 0, 0, KIPC_SYS_send_bundle)) == -EINVAL);
	/* a node-qualified pid: bundles do not cross nodes */
	CHECK(a.now(b.to_pid(a, KIPC_NET_PID(1, 100))) == -EXDEV);
	/* each payload as its send: the first went */
	Op r = a.submit(b.to_pid(a, 100));
	CHECK(r.res() == 1);
	CHECK((r.cqe().flags & KIPC_CQE_F_PARTIAL));
	CHECK(r.cqe().type == -EFAULT);
	b.d[1] = {a.put("abc"), 3, 7}; /* rsvd set */
	r = a.submit(b.to_pid(a, 100));
	CHECK(r.res() == 1);
	CHECK(r.cqe().type == -EINVAL);
	/* the array: ragged, empty, too long, outside, a stray word, bad flags */
	kipc_sqe s = b.to_pid(a, 100);
	s.len = 24;
	CHECK(a.now(s) == -EINVAL);
	s.len = 0;
	CHECK(a.now(s) == -EINVAL);
	s.len = (KIPC_BUNDLE_MAX + 1) * 16;
	CHECK(a.now(s) == -EINVAL);
	s = b.to_pid(a, 100);
	s.addr = (1 << 20) - 16;
	CHECK(a.now(s) == -EFAULT);
	s = b.to_pid(a, 100);
	s.addr2 = 8;
	CHECK(a.now(s) == -EINVAL);
	CHECK(a.now(b.to_pid(a, 100, KIPC_F_CACHE)) == -EINVAL);
	CHECK(a.now(b.to_pid(a, 100, KIPC_F_TRUNC)) == -EINVAL);
	CHECK(drain_q(o, 3) == std::vector<std::string>{"root", "ok", "ok"});
	CHECK(o.receive(KIPC_ANY, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
}

TEST_CASE("a blocking bundle to a task queue waits for room, goes on as the receiver drains")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	REQUIRE(o.taskq_setattr(2) == 0);
	uint64_t before = w.charged(1000);
	Op b = send_bundle_to(a, 100, {"1", "2", "3", "4", "5"});
	CHECK_FALSE(b.done());
	kipc_taskq_stat st = qstat(o);
	CHECK(st.nmsg == 2);
	CHECK(st.nsenders == 1); /* message 3 waits, as a blocking send's */
	CHECK(drain_q(o, 1) == std::vector<std::string>{"1"});
	CHECK_FALSE(b.done());
	CHECK(qstat(o).nsenders == 1); /* 3 went in, 4 waits */
	/* a receiver waiting takes the next at once, from the sender */
	CHECK(drain_q(o, 2) == std::vector<std::string>{"2", "3"});
	Op r = o.receive(101);
	CHECK(r.text() == "4");
	CHECK(o.receive(101).text() == "5");
	REQUIRE(b.cqes().size() == 1);
	CHECK(b.res() == 5);
	CHECK(b.cqe().flags == 0);
	CHECK(qstat(o).nsenders == 0);
	CHECK(w.charged(1000) == before);
}

TEST_CASE("a timed bundle to a task queue ends at its deadline with the exact count")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	REQUIRE(o.taskq_setattr(2) == 0);
	Bundle bb;
	for (const char *m : {"1", "2", "3", "4"})
		bb.add(a, m);
	kipc_sqe s = bb.to_pid(a, 100, KIPC_F_TIMEOUT);
	s.timeout = ms(10);
	Op b = a.submit(s);
	CHECK_FALSE(b.done());
	w.advance_ms(5);
	CHECK(drain_q(o, 1) == std::vector<std::string>{"1"}); /* 3 went */
	CHECK_FALSE(b.done());
	w.advance_ms(5);
	REQUIRE(b.done());
	CHECK(b.res() == 3);
	CHECK((b.cqe().flags & KIPC_CQE_F_PARTIAL));
	CHECK(b.cqe().type == -ETIMEDOUT);
	CHECK(qstat(o).nsenders == 0); /* 4 withdrawn */
	CHECK(drain_q(o, 2) == std::vector<std::string>{"2", "3"});
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("a blocking bundle to a task queue: the receiver's exit, the sender's exit, cancel")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101);
	REQUIRE(o.taskq_setattr(1) == 0);
	SUBCASE("the receiver exits: ESRCH after the count") {
		Op b = send_bundle_to(a, 100, {"1", "2", "3"});
		CHECK_FALSE(b.done());
		w.exit(o);
		REQUIRE(b.done());
		CHECK(b.res() == 1);
		CHECK((b.cqe().flags & KIPC_CQE_F_PARTIAL));
		CHECK(b.cqe().type == -ESRCH);
		CHECK(w.charged(1000) == 0);
		CHECK(send_bundle_to(a, 100, {"4"}).res() == -ESRCH);
	}
	SUBCASE("the receiver exits between two messages: the next finds it gone") {
		Op b = send_bundle_to(a, 100, {"1", "2", "3"});
		Op r = o.receive(KIPC_ANY, 256, 0);
		CHECK(r.text() == "1");
		CHECK(qstat(o).nsenders == 1); /* 2 in, 3 waits */
		w.exit(o);
		CHECK(b.res() == 2);
		CHECK(b.cqe().type == -ESRCH);
		CHECK(w.charged(1000) == 0);
	}
	SUBCASE("the sender exits: what went stays, nothing more") {
		Op b = send_bundle_to(a, 100, {"1", "2", "3"});
		w.exit(a);
		CHECK_FALSE(b.done());
		CHECK(qstat(o).nsenders == 0);
		CHECK(drain_q(o, 1) == std::vector<std::string>{"1"});
		CHECK(o.receive(KIPC_ANY, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
		CHECK(w.charged(1000) == 0);
	}
	SUBCASE("cancel") {
		Op b = send_bundle_to(a, 100, {"1", "2", "3"});
		CHECK(drain_q(o, 1) == std::vector<std::string>{"1"});
		CHECK(a.cancel(b) == 0); /* 2 went in with the room, 3 waited */
		CHECK(b.res() == 2);
		CHECK(b.cqe().type == -ECANCELED);
		CHECK(qstat(o).nsenders == 0);
		CHECK(drain_q(o, 1) == std::vector<std::string>{"2"});
		CHECK(o.receive(KIPC_ANY, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
		CHECK(w.charged(1000) == 0);
	}
}

TEST_CASE("a blocking bundle to a task queue keeps its place among blocked senders")
{
	World w(roomy_limits());
	Proc &o = w.spawn(100), &a = w.spawn(101), &b = w.spawn(102), &c = w.spawn(103);
	REQUIRE(o.taskq_setattr(1) == 0);
	CHECK(a.send(100, "a0").res() == 0);
	Op b1 = b.send(100, "b1");
	Op x = send_bundle_to(a, 100, {"x1", "x2"});
	Op c1 = c.send(100, "c1");
	CHECK(qstat(o).nsenders == 3);
	std::vector<std::string> got;
	for (int i = 0; i < 5; i++)
		got.push_back(o.receive().text());
	CHECK(got == std::vector<std::string>{"a0", "b1", "x1", "c1", "x2"});
	CHECK(x.res() == 2);
	CHECK(b1.res() == 0);
	CHECK(c1.res() == 0);
	CHECK(w.charged(1000) == 0);
}
