// SPDX-License-Identifier: MIT
/*
 * Unit-test harness: the kernel core in process, with a fake clock, fake
 * processes and a recording completion sink. Nothing here sleeps or
 * threads: a test drives every event itself, so races are replayed in an
 * exact order.
 *
 *   World w;                      // kernel + clock + host
 *   Proc &a = w.spawn(100);       // attached task, pid 100, uid 1000
 *   Op s = a.send(200, "hi");     // submit; s.done() once completed
 *   Op r = b.receive(KIPC_ANY);   // r.res(), r.text(), r.cqe()
 *   w.advance_ms(5);              // time passes, timers fire
 */
#pragma once

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <generated/autoconf.h>
#include <kernel/kernel.h>
#include <kipc/kipc.h>

#include "../../kernel/daemon/wire.h"
#include "../../lib/sqe.h"
#include "../../kernel/ipc/ipc.h"
#include "fake_os.h"

namespace kipc {
/*
 * The one way a test reaches the core's private state: what no call can
 * set (a limit lowered between two calls). Everything else a test looks
 * at goes through the core's public functions.
 */
struct CoreTestAccess {
	static Limits &limits(KernelImpl &k) { return k.lim; }
	/* The facade checks the invariants after every n-th entry (0: none;
	 * ~World still checks): for a test of a bound of 65536 tasks. */
	static void check_every(KernelImpl &k, uint32_t n)
	{
		k.check_every = n;
		k.check_skipped = 0;
	}
};
} // namespace kipc

namespace kt {

using kipc::CoreTestAccess;

using namespace kipc;

using FakeClock = fakeos::Clock;

/* The processes (fake_os.h) and the POSIX queues' host. */
struct FakeHost : fakeos::Processes, MqHost {
	/* MqHost: descriptors a test holds open, poll states, signals. */
	struct MqSignal {
		pid_t pid;
		int signo;
		int64_t value;
		pid_t from;
	};
	std::map<int64_t, int> mq_fds;        /* open (handle) -> descriptors held */
	std::map<int64_t, uint8_t> mq_ready;  /* open -> bit 0 readable, bit 1 writable */
	std::set<std::tuple<pid_t, int, int64_t>> mq_held; /* pid holds open as fd */
	std::vector<MqSignal> mq_signals;
	bool cap_sys_resource = false;
	int mq_open_err = 0;                  /* what mq_opened() fails with */
	int mq_opened(int64_t h, uid_t, gid_t, uint32_t) override
	{
		if (mq_open_err)
			return mq_open_err;
		mq_ready[h] = 0;
		return 0;
	}
	void mq_readiness(int64_t h, bool r, bool w) override { mq_ready[h] = r | w << 1; }
	bool mq_holds(pid_t pid, int fd, int64_t h) override
	{
		return mq_held.count({pid, fd, h});
	}
	bool mq_in_use(int64_t h) override { return mq_fds[h] > 0; }
	void mq_closed(int64_t h) override { mq_ready.erase(h); }
	std::map<pid_t, uint64_t> mq_rlimits;  /* RLIMIT_MSGQUEUE the OS has */
	bool mq_rlimit(pid_t pid, uint64_t *b) override
	{
		auto it = mq_rlimits.find(pid);
		if (it == mq_rlimits.end())
			return false;
		*b = it->second;
		return true;
	}
	bool capable(pid_t, int) override { return cap_sys_resource; }
	void mq_signal(pid_t pid, int signo, int64_t value, pid_t from, uid_t) override
	{
		mq_signals.push_back({pid, signo, value, from});
	}
	std::set<pid_t> mq_dead; /* exited, the kernel not told yet */
	bool mq_exited(pid_t pid) override { return mq_dead.count(pid); }
};

/* A process's arena, checked by kipcd's own ArenaMemory (the kernel gets
 * &mem.user); alloc() hands out its bytes. */
struct FakeMem {
	std::vector<uint8_t> arena = std::vector<uint8_t>(1 << 20);
	kipcd::ArenaMemory user{arena.data(), arena.size()};
	uint64_t top = 64; /* bump allocator; 0..63 unused */
	FakeMem() = default;
	FakeMem(const FakeMem &) = delete; /* user points into arena */
	FakeMem &operator=(const FakeMem &) = delete;
	uint64_t alloc(uint64_t len)
	{
		uint64_t a = top;
		top += (len + 63) & ~uint64_t(63);
		REQUIRE(top <= arena.size());
		return a;
	}
};

struct Proc;

struct Sink : CompletionSink {
	void complete(void *priv, const kipc_cqe &cqe) override;
	void skipped(void *priv, const kipc_cqe &cqe) override;
	bool can_post(void *priv) override;
};

/* One submitted request and, once it completed, its completion(s). */
struct Op {
	Proc *p = nullptr;
	uint64_t ud = 0;
	uint64_t buf = 0;   /* receive buffer (or reply buffer of a call) */
	uint32_t buflen = 0;

	/* Completions for this request so far (a cached send gets two). */
	std::vector<kipc_cqe> cqes() const;
	bool done() const { return !cqes().empty(); }
	/* The (first) completion; fails the test if there is none. */
	kipc_cqe cqe() const;
	int64_t res() const { return cqe().res; }
	/* Received payload as text. */
	std::string text() const;
};

struct World;

/*
 * The built config's limits, raised to at least the default config's room
 * (tiny_defconfig has 4 messages, 256-byte messages, 4 mailboxes and 4 KiB
 * per user): for tests of mechanisms, not of the limits.
 */
inline Limits roomy_limits(Limits l = Limits::from_config())
{
	l.msg_max = std::max<uint32_t>(l.msg_max, 1024);
	l.msgsize_max = std::max<uint32_t>(l.msgsize_max, 65536);
	l.mbox_per_user = std::max<uint32_t>(l.mbox_per_user, 256);
	l.bytes_per_user = std::max<uint64_t>(l.bytes_per_user, 8 << 20);
	if (l.taskq_capacity) /* (0: rendezvous task queues, kept) */
		l.taskq_capacity = std::max<uint32_t>(l.taskq_capacity, 64);
	return l;
}

struct Proc {
	World *w;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	FakeMem mem;
	Task *task = nullptr;
	std::vector<kipc_cqe> cq; /* every completion, in order */
	std::vector<kipc_cqe> skipped; /* successes not posted (KIPC_F_SKIP_SUCCESS) */
	bool cq_full = false; /* can_post() says no (a multishot receive ends EOVERFLOW) */
	uint64_t next_ud = 1;

	uint64_t put(const std::string &s)
	{
		uint64_t a = mem.alloc(s.size());
		std::memcpy(mem.arena.data() + a, s.data(), s.size());
		return a;
	}
	Op submit(kipc_sqe sqe, uint64_t buf = 0, uint32_t buflen = 0);

	/* Messages: flags may carry KIPC_F_* and timeouts via t (ns). */
	Op send(pid_t to, const std::string &data, uint32_t flags = 0, uint16_t prio = 0,
		int64_t type = 0, int64_t timeout = 0)
	{
		return send_to(KIPC_SYS_send, to, data, flags, prio, type, timeout);
	}
	Op mbox_send(int64_t id, const std::string &data, uint32_t flags = 0, uint16_t prio = 0,
		     int64_t type = 0, int64_t timeout = 0)
	{
		return send_to(KIPC_SYS_mbox_send, id, data, flags, prio, type, timeout);
	}
	Op receive(pid_t from = KIPC_ANY, uint32_t buflen = 256, uint32_t flags = 0,
		   int64_t type = 0, int64_t timeout = 0)
	{
		return receive_from(KIPC_SYS_receive, from, buflen, flags, type, timeout);
	}
	Op mbox_receive(int64_t id, uint32_t buflen = 256, uint32_t flags = 0, int64_t type = 0,
			int64_t timeout = 0)
	{
		return receive_from(KIPC_SYS_mbox_receive, id, buflen, flags, type, timeout);
	}
	Op receive_set(const std::vector<int64_t> &ids, uint32_t buflen = 256,
		       uint32_t flags = 0, int64_t timeout = 0);
	Op call(pid_t to, const std::string &data, uint32_t replylen = 256, uint32_t flags = 0,
		int64_t timeout = 0)
	{
		return call_to(KIPC_SYS_call, to, data, replylen, flags, timeout);
	}
	Op mbox_call(int64_t id, const std::string &data, uint32_t replylen = 256,
		     uint32_t flags = 0, int64_t timeout = 0)
	{
		return call_to(KIPC_SYS_mbox_call, id, data, replylen, flags, timeout);
	}
	int64_t reply(uint64_t token, const std::string &data);
	/* Mailbox management: results at once. */
	int64_t mbox_open(const std::string &name, uint32_t oflag = KIPC_O_CREAT,
			  const kipc_mbox_attr *attr = nullptr);
	int64_t mbox_create(uint32_t capacity = KIPC_CAP_DEFAULT, uint32_t policy = 0,
			    uint32_t flags = 0, uint32_t mode = 0600, uint32_t msgsize = 0);
	int64_t mbox_destroy(int64_t id);
	int64_t mbox_stat(int64_t id, kipc_mbox_stat *st);
	int64_t mbox_setattr(int64_t id, uint32_t mask, const kipc_mbox_attr &a);
	int64_t set_owner(int64_t id, pid_t pid);
	int64_t grant(int64_t id, pid_t pid);
	int64_t revoke(int64_t id, pid_t pid);
	int64_t taskq_stat(kipc_taskq_stat *st);
	int64_t taskq_setattr(uint32_t capacity, uint32_t msgsize = 0, uint32_t flags = 0);
	int64_t cancel(const Op &op, bool intr = false);
	/* Run an sqe that completes at once; its result. */
	int64_t now(kipc_sqe sqe);

private:
	Op send_to(uint8_t op, int64_t target, const std::string &data, uint32_t flags,
		   uint16_t prio, int64_t type, int64_t timeout);
	Op receive_from(uint8_t op, int64_t target, uint32_t buflen, uint32_t flags, int64_t type,
			int64_t timeout);
	Op call_to(uint8_t op, int64_t target, const std::string &data, uint32_t replylen,
		   uint32_t flags, int64_t timeout);
};

struct World {
	FakeClock clock;
	FakeHost host;
	Sink sink;
	Limits limits;
	std::unique_ptr<Kernel> k;
	std::map<pid_t, std::unique_ptr<Proc>> procs;

	explicit World(Limits l = Limits::from_config()) : limits(l)
	{
		k = std::make_unique<Kernel>(clock, host, sink, limits, &host);
	}
	~World()
	{
		k->impl().check_invariants();
	}

	/* A live process that has not attached yet. */
	Proc &fork(pid_t pid, uid_t uid = 1000, gid_t gid = 1000)
	{
		auto p = std::make_unique<Proc>();
		p->w = this;
		p->pid = pid;
		p->uid = uid;
		p->gid = gid;
		host.alive[pid] = Creds{pid, uid, gid};
		Proc &ref = *p;
		procs[pid] = std::move(p);
		return ref;
	}
	void attach(Proc &p)
	{
		REQUIRE(k->attach(Creds{p.pid, p.uid, p.gid}, &p.mem.user, "test", &p, &p.task) == 0);
	}
	Proc &spawn(pid_t pid, uid_t uid = 1000, gid_t gid = 1000)
	{
		Proc &p = fork(pid, uid, gid);
		attach(p);
		return p;
	}
	/* The process exits: its connection closes (or it never attached). */
	void exit(Proc &p)
	{
		host.alive.erase(p.pid);
		if (p.task)
			k->exit(p.task);
		else if (host.watched.count(p.pid))
			k->process_exited(p.pid);
		p.task = nullptr;
	}
	void advance_ns(int64_t ns)
	{
		clock.mono += ns;
		clock.real += ns;
		k->run_timers();
	}
	void advance_ms(int64_t ms) { advance_ns(ms * 1'000'000); }
	KernelImpl &impl() { return k->impl(); }
	/* Bytes charged to uid: payload plus overhead of every held message. */
	uint64_t charged(uid_t uid) { return impl().user(uid).bytes; }
};

inline void Sink::complete(void *priv, const kipc_cqe &cqe)
{
	REQUIRE(priv != nullptr);
	static_cast<Proc *>(priv)->cq.push_back(cqe);
}

inline void Sink::skipped(void *priv, const kipc_cqe &cqe)
{
	REQUIRE(priv != nullptr);
	static_cast<Proc *>(priv)->skipped.push_back(cqe);
}

inline bool Sink::can_post(void *priv)
{
	return !static_cast<Proc *>(priv)->cq_full;
}

inline std::vector<kipc_cqe> Op::cqes() const
{
	std::vector<kipc_cqe> v;
	for (const kipc_cqe &c : p->cq)
		if (c.user_data == ud)
			v.push_back(c);
	return v;
}

inline kipc_cqe Op::cqe() const
{
	auto v = cqes();
	REQUIRE_MESSAGE(!v.empty(), "request ", ud, " of pid ", p->pid, " has not completed");
	return v.front();
}

inline std::string Op::text() const
{
	kipc_cqe c = cqe();
	REQUIRE(c.res >= 0);
	return std::string(reinterpret_cast<const char *>(p->mem.arena.data() + buf), c.res);
}

inline Op Proc::submit(kipc_sqe sqe, uint64_t buf, uint32_t buflen)
{
	REQUIRE_MESSAGE(task != nullptr, "pid ", pid, " is not attached");
	sqe.user_data = next_ud++;
	w->k->submit(task, sqe);
	return Op{this, sqe.user_data, buf, buflen};
}

/* A timeout (0: none) on top of an entry of lib/sqe.h. */
inline kipc_sqe timed(kipc_sqe s, int64_t timeout)
{
	if (timeout)
		s.flags |= KIPC_F_TIMEOUT;
	s.timeout = timeout;
	return s;
}

/* send (to a pid) and mbox_send (to a mailbox id): one encoding. */
inline Op Proc::send_to(uint8_t op, int64_t target, const std::string &data, uint32_t flags,
			uint16_t prio, int64_t type, int64_t timeout)
{
	kipc_sqe s{};
	__kipc_enc_send(&s, op, target, put(data), data.size(), prio, flags);
	s.type = type;
	return submit(timed(s, timeout));
}

/* receive (from a pid or KIPC_ANY) and mbox_receive (from a mailbox id). */
inline Op Proc::receive_from(uint8_t op, int64_t target, uint32_t buflen, uint32_t flags,
			     int64_t type, int64_t timeout)
{
	kipc_sqe s{};
	__kipc_enc_receive(&s, op, target, mem.alloc(buflen), buflen, flags);
	s.type = type;
	return submit(timed(s, timeout), s.addr, buflen);
}

inline Op Proc::receive_set(const std::vector<int64_t> &ids, uint32_t buflen, uint32_t flags,
			    int64_t timeout)
{
	uint64_t buf = mem.alloc(buflen), idaddr = mem.alloc(ids.size() * 8);
	std::memcpy(mem.arena.data() + idaddr, ids.data(), ids.size() * 8);
	kipc_sqe s{};
	__kipc_enc_receive_set(&s, buf, buflen, idaddr, ids.size(), flags);
	return submit(timed(s, timeout), s.addr, buflen);
}

/* call (a pid) and mbox_call (a mailbox id): the reply lands in a buffer
 * of replylen. */
inline Op Proc::call_to(uint8_t op, int64_t target, const std::string &data, uint32_t replylen,
			uint32_t flags, int64_t timeout)
{
	kipc_sqe s{};
	__kipc_enc_call(&s, op, target, put(data), data.size(), mem.alloc(replylen), replylen, 0,
			flags);
	return submit(timed(s, timeout), s.addr2, replylen);
}

inline int64_t Proc::now(kipc_sqe sqe)
{
	Op op = submit(sqe);
	auto v = op.cqes();
	REQUIRE_MESSAGE(v.size() == 1, "syscall ", int(sqe.opcode), " did not complete at once");
	return v[0].res;
}

inline int64_t Proc::reply(uint64_t token, const std::string &data)
{
	kipc_sqe s{};
	__kipc_enc_reply(&s, token, put(data), data.size(), 0);
	return now(s);
}

/* A copy of *rec in the arena, for an entry's addr2. */
template <typename T> inline uint64_t put_rec(FakeMem &mem, const T &rec)
{
	uint64_t a = mem.alloc(sizeof rec);
	std::memcpy(mem.arena.data() + a, &rec, sizeof rec);
	return a;
}

/* Runs s, whose addr2 is a record of sizeof *out, and copies it out. */
template <typename T> inline int64_t get_rec(Proc &p, kipc_sqe s, T *out)
{
	int64_t r = p.now(s);
	std::memcpy(out, p.mem.arena.data() + s.addr2, sizeof *out);
	return r;
}

inline int64_t Proc::mbox_open(const std::string &name, uint32_t oflag,
			       const kipc_mbox_attr *attr)
{
	kipc_sqe s{};
	__kipc_enc_mbox_open(&s, oflag, put(name), name.size(), attr ? put_rec(mem, *attr) : 0,
			     attr ? sizeof(*attr) : 0);
	return now(s);
}

inline int64_t Proc::mbox_create(uint32_t capacity, uint32_t policy, uint32_t flags,
				 uint32_t mode, uint32_t msgsize)
{
	kipc_mbox_attr a{};
	a.capacity = capacity;
	a.policy = policy;
	a.flags = flags;
	a.mode = mode;
	a.msgsize = msgsize;
	return mbox_open("", 0, &a);
}

inline int64_t Proc::mbox_destroy(int64_t id)
{
	kipc_sqe s{};
	__kipc_enc_simple(&s, KIPC_SYS_mbox_destroy, id, 0);
	return now(s);
}

inline int64_t Proc::mbox_stat(int64_t id, kipc_mbox_stat *st)
{
	kipc_sqe s{};
	__kipc_enc_rec(&s, KIPC_SYS_mbox_stat, id, 0, 0, mem.alloc(sizeof(*st)), sizeof(*st));
	return get_rec(*this, s, st);
}

inline int64_t Proc::mbox_setattr(int64_t id, uint32_t mask, const kipc_mbox_attr &a)
{
	kipc_sqe s{};
	__kipc_enc_rec(&s, KIPC_SYS_mbox_setattr, id, 0, mask, put_rec(mem, a), sizeof(a));
	return now(s);
}

inline int64_t pid_op(Proc &p, uint8_t op, int64_t id, pid_t pid)
{
	kipc_sqe s{};
	__kipc_enc_pid(&s, op, id, pid);
	return p.now(s);
}
inline int64_t Proc::set_owner(int64_t id, pid_t p) { return pid_op(*this, KIPC_SYS_mbox_set_owner, id, p); }
inline int64_t Proc::grant(int64_t id, pid_t p) { return pid_op(*this, KIPC_SYS_mbox_grant, id, p); }
inline int64_t Proc::revoke(int64_t id, pid_t p) { return pid_op(*this, KIPC_SYS_mbox_revoke, id, p); }

inline int64_t Proc::taskq_stat(kipc_taskq_stat *st)
{
	kipc_sqe s{};
	__kipc_enc_rec(&s, KIPC_SYS_taskq_stat, 0, 0, 0, mem.alloc(sizeof(*st)), sizeof(*st));
	return get_rec(*this, s, st);
}

inline int64_t Proc::taskq_setattr(uint32_t capacity, uint32_t msgsize, uint32_t flags)
{
	kipc_mbox_attr a{};
	a.capacity = capacity;
	a.msgsize = msgsize;
	a.flags = flags;
	kipc_sqe s{};
	__kipc_enc_rec(&s, KIPC_SYS_taskq_setattr, 0, 0, 0, put_rec(mem, a), sizeof(a));
	return now(s);
}

inline int64_t Proc::cancel(const Op &op, bool intr)
{
	kipc_sqe s{};
	__kipc_enc_simple(&s, KIPC_SYS_cancel, int64_t(op.ud), intr ? KIPC_F_INTR : 0);
	return now(s);
}

constexpr int64_t ms(int64_t n) { return n * 1'000'000; }

/* ---- nothing lost, nothing duplicated ------------------------------ */

/*
 * Every payload whose send succeeded and every payload received. A test
 * records both sides as they happen; balanced() holds when each message
 * sent was received exactly once (payloads must be unique per test).
 */
struct Ledger {
	std::multiset<std::string> sent, received;

	/* s completed successfully: data is in the kernel's hands. */
	void sent_ok(const Op &s, const std::string &data)
	{
		REQUIRE(s.done());
		if (s.res() >= 0)
			sent.insert(data);
	}
	void sent_ok(const std::string &data) { sent.insert(data); }
	/* r completed: a successful receive adds its payload. */
	void got(const Op &r)
	{
		if (r.done() && r.res() >= 0)
			received.insert(r.text());
	}
	void got(const std::vector<std::string> &v) { received.insert(v.begin(), v.end()); }
	bool balanced() const { return sent == received; }
	/* No payload was received twice, and none that was not sent. */
	bool no_dups() const
	{
		for (const std::string &s : received)
			if (received.count(s) > sent.count(s))
				return false;
		return true;
	}
};

/* A unique payload of exactly len bytes (len >= tag.size() + 1 pads). */
inline std::string payload(const std::string &tag, size_t len)
{
	std::string s = tag;
	s.resize(len, '.');
	return s;
}

/* Run receive (a nonblocking one) until it fails EAGAIN; the payloads,
 * in order. */
template <typename Receive> inline std::vector<std::string> drain_by(Receive receive)
{
	std::vector<std::string> v;
	for (;;) {
		Op r = receive();
		if (r.res() < 0) {
			CHECK(r.res() == -EAGAIN);
			return v;
		}
		v.push_back(r.text());
	}
}

/* Receive (nonblocking) until EAGAIN; the payloads, in order. */
inline std::vector<std::string> drain(Proc &p, pid_t from = KIPC_ANY, uint32_t buflen = 256)
{
	return drain_by([&] { return p.receive(from, buflen, KIPC_F_NONBLOCK); });
}

inline std::vector<std::string> mbox_drain(Proc &p, int64_t id, uint32_t buflen = 256)
{
	return drain_by([&] { return p.mbox_receive(id, buflen, KIPC_F_NONBLOCK); });
}

/* One task, a (pid 100), and an entry s to fill by hand: for entries the
 * library would never build. */
struct OneTask {
	World w;
	Proc &a = w.spawn(100);
	kipc_sqe s{};
};

/* A mailbox of o's (mode 0666) that holds one message, filled by a with
 * text: a's next send blocks, or with KIPC_F_CACHE is cached. */
inline int64_t full_mbox(Proc &o, Proc &a, const std::string &text)
{
	int64_t id = o.mbox_create(1, 0, 0, 0666);
	REQUIRE(id > 0);
	CHECK(a.mbox_send(id, text).res() == 0);
	return id;
}

/* a's send with KIPC_F_CACHE to a full mailbox: cached, its first
 * completion (KIPC_CQE_F_MORE) there at once. */
inline Op cached_send(Proc &a, int64_t id, const std::string &text = "cached")
{
	Op c = a.mbox_send(id, text, KIPC_F_CACHE);
	REQUIRE(c.cqes().size() == 1);
	return c;
}

/* o's full mailbox id (pid 100), and a's (101) cached send c to it. */
struct CachedSend {
	World w;
	Proc &o = w.spawn(100), &a = w.spawn(101);
	int64_t id = full_mbox(o, a, "fill");
	Op c = cached_send(a, id);
};

/* A client c (pid 100) and a server s (200) with a mailbox id anyone may
 * call: c's call "q1" on it (call), received by s (r). */
struct ServedCall {
	World w;
	Proc &c = w.spawn(100), &s = w.spawn(200);
	int64_t id = s.mbox_create(KIPC_CAP_DEFAULT, 0, 0, 0666);
	Op call = c.mbox_call(id, "q1");
	Op r = s.mbox_receive(id);
};

/* The cached send c has ended: its second completion is the
 * notification (KIPC_CQE_F_NOTIF), with result res. */
inline void check_notified(const Op &c, int64_t res)
{
	REQUIRE(c.cqes().size() == 2);
	CHECK(c.cqes()[1].res == res);
	CHECK((c.cqes()[1].flags & KIPC_CQE_F_NOTIF));
}

/* A mailbox's state as stat reports it to p. */
inline kipc_mbox_stat mstat(Proc &p, int64_t id)
{
	kipc_mbox_stat st{};
	REQUIRE(p.mbox_stat(id, &st) == 0);
	return st;
}

} // namespace kt
