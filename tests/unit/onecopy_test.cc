// SPDX-License-Identifier: MIT
/*
 * One copy (kernel/ipc/msg.cc, rpc.cc): a send handed to a waiting
 * receiver is copied once, from the sender's arena into the receiver's
 * buffer, and a reply likewise; a message nobody takes keeps the
 * kernel's own copy. The core's counter (sysinfo nonecopy) says which.
 */
#include "harness.h"

using namespace kt;

static uint64_t onecopies(World &w)
{
	return w.k->impl().counters().onecopy;
}

/* Room for 8 KiB messages in task queues too (tiny_defconfig's default is 64 bytes). */
static Limits big_limits()
{
	Limits l = roomy_limits();
	l.msgsize_default = std::max<uint32_t>(l.msgsize_default, 8192);
	return l;
}

static std::string pattern(size_t n, unsigned seed)
{
	std::string s(n, '\0');
	for (size_t i = 0; i < n; i++)
		s[i] = char(seed * 131u + i * 7u + (i >> 8));
	return s;
}

TEST_CASE("one copy: a send to a waiting receiver goes arena to arena, counted")
{
	World w(big_limits());
	Proc &a = w.spawn(100), &b = w.spawn(200);
	std::string big = pattern(8192, 1);
	int64_t id = b.mbox_create(8, 0, 0, 0666, 8192);

	Op r = b.receive(KIPC_ANY, 8192);
	CHECK(!r.done());
	CHECK(a.send(200, big).res() == 0);
	CHECK(r.text() == big);
	CHECK(onecopies(w) == 1);

	Op m = b.mbox_receive(id, 8192);
	CHECK(a.mbox_send(id, big).res() == 0);
	CHECK(m.text() == big);
	CHECK(onecopies(w) == 2);

	/* nobody waits: queued, the kernel's copy */
	CHECK(a.send(200, big).res() == 0);
	CHECK(onecopies(w) == 2);
	CHECK(b.receive(KIPC_ANY, 8192).text() == big);
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("one copy: a call and its reply, one copy each")
{
	World w(big_limits());
	Proc &c = w.spawn(100), &s = w.spawn(200);
	Op r = s.receive(KIPC_ANY, 4096);
	Op call = c.call(200, pattern(4096, 2), 4096);
	REQUIRE(r.done());
	CHECK(r.text() == pattern(4096, 2));
	CHECK((r.cqe().flags & KIPC_CQE_F_CALL));
	CHECK(onecopies(w) == 1);
	CHECK(s.reply(r.cqe().token, pattern(4096, 3)) == 0);
	CHECK(call.text() == pattern(4096, 3));
	CHECK(onecopies(w) == 2);
	/* a reply whose caller's buffer is smaller is truncated, still one copy */
	Op r2 = s.receive(KIPC_ANY, 4096);
	Op call2 = c.call(200, "q", 100, KIPC_F_TRUNC);
	REQUIRE(r2.done());
	CHECK(s.reply(r2.cqe().token, pattern(4096, 4)) == 0);
	CHECK(call2.text() == pattern(4096, 4).substr(0, 100));
	CHECK(onecopies(w) == 4);
}

/* A send of 8192 bytes of pattern seed from a's arena: where they are. */
static uint64_t send_from_arena(Proc &a, pid_t to, unsigned seed, Op *out)
{
	uint64_t at = a.put(pattern(8192, seed));
	kipc_sqe snd{};
	__kipc_enc_send(&snd, KIPC_SYS_send, to, at, 8192, 0, 0);
	*out = a.submit(snd);
	return at;
}

TEST_CASE("one copy: a message no waiting receiver takes is queued with the kernel's copy")
{
	World w(big_limits());
	Proc &a = w.spawn(100), &b = w.spawn(200);
	/* a forged buffer is refused at once: nothing parks */
	kipc_sqe s{};
	__kipc_enc_receive(&s, KIPC_SYS_receive, KIPC_ANY, (1 << 20) - 100, 8192, 0);
	CHECK(b.submit(s).res() == -EFAULT);
	/* too small: refused when offered; a typed receive: not offered */
	Op small = b.receive(KIPC_ANY, 16);
	Op sent;
	uint64_t at = send_from_arena(a, 200, 5, &sent);
	CHECK(sent.res() == 0); /* queued: exact */
	CHECK(small.res() == -EMSGSIZE);
	Op typed = b.receive(KIPC_ANY, 8192, KIPC_F_TYPE, 7);
	Op sent2;
	uint64_t at2 = send_from_arena(a, 200, 6, &sent2);
	CHECK(sent2.res() == 0);
	CHECK(!typed.done());
	/* the sender's arena changes: the queued messages are the kernel's */
	std::memset(a.mem.arena.data() + at, 0xee, 8192);
	std::memset(a.mem.arena.data() + at2, 0xee, 8192);
	CHECK(onecopies(w) == 0);
	CHECK(b.cancel(typed) == 0);
	CHECK(b.receive(KIPC_ANY, 8192).text() == pattern(8192, 5));
	CHECK(b.receive(KIPC_ANY, 8192).text() == pattern(8192, 6));
	CHECK(w.charged(1000) == 0);
}

TEST_CASE("one copy: a receiver too small is refused, the next waiting one gets it in one copy")
{
	World w(big_limits());
	Proc &a = w.spawn(100), &b = w.spawn(200), &c = w.spawn(300);
	int64_t id = b.mbox_create(8, 0, KIPC_MBOX_KERNEL_OWNED, 0666, 8192);
	Op small = b.mbox_receive(id, 16);
	Op fits = c.mbox_receive(id, 8192);
	CHECK(a.mbox_send(id, pattern(8192, 6)).res() == 0);
	CHECK(small.res() == -EMSGSIZE);
	CHECK(fits.text() == pattern(8192, 6));
	CHECK(onecopies(w) == 1);
}

TEST_CASE("one copy: a forged send offset fails EFAULT; the receiver keeps waiting")
{
	World w(big_limits());
	Proc &a = w.spawn(100), &b = w.spawn(200);
	Op r = b.receive(KIPC_ANY, 8192);
	for (uint64_t addr : {uint64_t(1 << 20) - 10, uint64_t(1) << 40, UINT64_MAX - 4}) {
		kipc_sqe snd{};
		__kipc_enc_send(&snd, KIPC_SYS_send, 200, addr, 8192, 0, 0);
		CHECK(a.submit(snd).res() == -EFAULT);
	}
	CHECK(!r.done());
	CHECK(onecopies(w) == 0);
	CHECK(w.charged(1000) == 0);
	CHECK(a.send(200, pattern(8192, 7)).res() == 0);
	CHECK(r.text() == pattern(8192, 7));
	CHECK(onecopies(w) == 1);
}

TEST_CASE("one copy: a task receiving its own send (one arena) goes through the kernel")
{
	World w(big_limits());
	Proc &a = w.spawn(100);
	/* the receive buffer is the send's payload itself: it may overlap */
	uint64_t at = a.put(pattern(8192, 8));
	kipc_sqe rcv{};
	__kipc_enc_receive(&rcv, KIPC_SYS_receive, KIPC_ANY, at + 4096, 8192, 0);
	a.mem.alloc(4096);
	Op r = a.submit(rcv, at + 4096, 8192);
	kipc_sqe snd{};
	__kipc_enc_send(&snd, KIPC_SYS_send, 100, at, 8192, 0, 0);
	CHECK(a.submit(snd).res() == 0);
	CHECK(r.text() == pattern(8192, 8));
	CHECK(onecopies(w) == 0);
}
