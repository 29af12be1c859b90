// SPDX-License-Identifier: MIT
/*
 * fuzz_submit: the syscall surface a process controls. The input becomes
 * a script for four fake processes (two users and root) and one pid that
 * never attaches: submission entries with fuzzed fields and arena bytes,
 * time passing, exits and re-attaches. After every step the kernel's
 * invariants must hold (KernelImpl::check_invariants); the sink checks
 * that completions go to attached tasks and that no request completes
 * twice; the host keeps POSIX queues' descriptor files as kipcd does and
 * checks every hook against them. At the end every task exits and no byte stays charged to a user
 * unless a kernel-owned mailbox holds it.
 */
#include "fuzz.h"

#include <kipc/mqueue.h>
#include <kipc/ring.h>

using namespace kfuzz;

namespace {

constexpr size_t kArena = 8192;
constexpr int kProcs = 4;
constexpr pid_t kUnattached = 200; /* alive, never attaches */

struct World {
	kfuzz::Clock clock;
	kfuzz::Host host;
	Sink sink;
	std::vector<std::unique_ptr<Proc>> procs; /* outlive the kernel */
	std::unique_ptr<Kernel> k;
	uint64_t next_ud = 1;
	int64_t armed = 0;     /* the link of the last multishot receive (bundle_shapes) */
	pid_t armed_pid = 0; /* the process of the last one on its own task queue */

	World()
	{
		k = std::make_unique<Kernel>(clock, host, sink, small_limits(), &host);
		static const uid_t uids[kProcs] = {1000, 1000, 1001, 0};
		for (int i = 0; i < kProcs; i++) {
			auto p = std::make_unique<Proc>(kArena);
			p->creds = Creds{pid_t(100 + i), uids[i], uids[i]};
			host.alive[p->creds.pid] = p->creds;
			procs.push_back(std::move(p));
		}
		host.alive[kUnattached] = Creds{kUnattached, 1002, 1002};
		host.capable_pids.insert(100 + kProcs - 1); /* root */
	}
	void attach(Proc &p)
	{
		if (p.task)
			return;
		host.alive[p.creds.pid] = p.creds;
		int r = k->attach(p.creds, &p.mem.user, "fuzz", &p, &p.task);
		FUZZ_ASSERT(r == 0);
		FUZZ_ASSERT(p.task != nullptr);
		p.gen++;
		p.finals.clear();
	}
	void exit(Proc &p)
	{
		if (!p.task)
			return;
		Task *t = p.task;
		host.alive.erase(p.creds.pid);
		k->exit(t);
		p.task = nullptr;
	}
};

int64_t pick_target(FuzzedDataProvider &in, World &w, Proc &p)
{
	switch (in.ConsumeIntegralInRange<int>(0, 7)) {
	case 0:
	case 1:
		return 100 + in.ConsumeIntegralInRange<int>(0, kProcs - 1);
	case 2:
		return kUnattached;
	case 3:
	case 4: {
		/* an id or token some process got back */
		Proc &q = *w.procs[in.ConsumeIntegralInRange<int>(0, kProcs - 1)];
		if (q.results.empty())
			return 1;
		return q.results[in.ConsumeIntegralInRange<size_t>(0, q.results.size() - 1)];
	}
	case 5:
		/* a recent user_data (cancel) */
		return int64_t(w.next_ud - in.ConsumeIntegralInRange<uint64_t>(1, 8));
	case 6:
		return in.ConsumeIntegral<int64_t>();
	default:
		(void)p;
		return in.ConsumeIntegralInRange<int64_t>(-2, 300);
	}
}

uint64_t pick_addr(FuzzedDataProvider &in)
{
	if (in.ConsumeIntegralInRange<int>(0, 15) == 0)
		return in.ConsumeIntegral<uint64_t>();
	return in.ConsumeIntegralInRange<uint64_t>(0, kArena);
}

uint32_t pick_len(FuzzedDataProvider &in)
{
	switch (in.ConsumeIntegralInRange<int>(0, 7)) {
	case 0:
		return in.ConsumeIntegral<uint32_t>();
	case 1:
		return 0;
	case 2:
		return 8 * in.ConsumeIntegralInRange<uint32_t>(1, 8);
	default:
		return in.ConsumeIntegralInRange<uint32_t>(1, 1100);
	}
}

/*
 * Random entries rarely name a POSIX queue: sometimes make s an
 * mq_open or mq_unlink of one of four names, with a well-formed
 * kipc_mq_open (fuzzed fields), so queues are created, opened and
 * unlinked and the host's descriptor files are exercised.
 */
void posix_names(FuzzedDataProvider &in, Proc &p, kipc_sqe &s)
{
	constexpr uint64_t kName = kArena - 256, kOpen = kArena - 192;
	char name[4] = {'/', 'q', char('0' + in.ConsumeIntegralInRange<int>(0, 3)), 0};
	memcpy(p.mem.arena.data() + kName, name, 3);
	s.addr = kName;
	s.len = 3;
	if (in.ConsumeIntegralInRange<int>(0, 7))
		s.flags = 0; /* mostly valid: no flags */
	if (in.ConsumeBool()) {
		s.opcode = KIPC_SYS_mq_unlink;
		return;
	}
	kipc_mq_open o{};
	o.oflag = in.ConsumeIntegralInRange<uint32_t>(0, 3) |
		  (in.ConsumeIntegralInRange<int>(0, 3) ? KIPC_O_CREAT : 0) |
		  (in.ConsumeBool() ? KIPC_O_EXCL : 0);
	o.mode = in.ConsumeBool() ? 0600 : 0666;
	if (in.ConsumeBool()) {
		o.flags |= KIPC_MQ_ATTR;
		o.maxmsg = in.ConsumeIntegralInRange<int64_t>(-1, 12);
		o.msgsize = in.ConsumeIntegralInRange<int64_t>(-1, 300);
	}
	if (in.ConsumeIntegralInRange<int>(0, 3) == 0) {
		o.flags |= KIPC_MQ_RLIMIT;
		o.rlimit = in.ConsumeIntegralInRange<uint64_t>(0, 20000);
	}
	memcpy(p.mem.arena.data() + kOpen, &o, sizeof o);
	s.opcode = KIPC_SYS_mq_open;
	s.addr2 = kOpen;
	s.len2 = sizeof o;
}

/* One time in n + 1 (never once the input is used up: then 0, the usual case). */
bool rare(FuzzedDataProvider &in, int n)
{
	return in.ConsumeIntegralInRange<int>(0, n) == n;
}

/*
 * Random entries are rarely well-formed bundles or multishot receives:
 * sometimes make s one, with a descriptor array or a provided-buffer
 * ring in the arena (fuzzed counts, payloads, buffer sizes and
 * addresses, sometimes a reserved word set, a tail run past the head),
 * so the paths past their checks run: partial bundles, buffers running
 * out, too small or outside the arena, armed receives that later
 * messages, cancels, exits and destroys end; an anonymous mailbox to
 * send them to, and bundles (to mailboxes and task queues) sent where
 * the last multishot waits.
 * poke() may rewrite the ring or the array meanwhile.
 */
void bundle_shapes(FuzzedDataProvider &in, World &w, Proc &p, kipc_sqe &s)
{
	constexpr uint64_t kDescs = kArena - 1024, kRing = kArena - 768, kAttr = kArena - 512;
	uint8_t *arena = p.mem.arena.data();
	/* random entries rarely open a mailbox: an anonymous one */
	if (rare(in, 3)) {
		kipc_mbox_attr a{};
		a.capacity = in.ConsumeIntegralInRange<uint32_t>(0, 6);
		a.msgsize = in.ConsumeIntegralInRange<uint32_t>(0, 64);
		a.mode = rare(in, 1) ? 0600 : 0666;
		a.flags = rare(in, 3) ? in.ConsumeIntegral<uint32_t>() : 0;
		a.policy = rare(in, 3) ? in.ConsumeIntegralInRange<uint32_t>(0, 3) : 0;
		memcpy(arena + kAttr, &a, sizeof a);
		s.opcode = KIPC_SYS_mbox_open;
		s.addr = 0;
		s.len = 0;
		s.flags = 0;
		s.addr2 = kAttr;
		s.len2 = rare(in, 1) ? 0 : uint32_t(sizeof a);
		return;
	}
	/* mostly a mailbox some process opened (ids are above INT32_MAX:
	 * results that are not pids, lengths or counts), or the own task
	 * queue; a bundle often goes where the last multishot waits */
	std::vector<int64_t> ids;
	for (auto &q : w.procs)
		for (int64_t r : q->results)
			if (r > INT32_MAX)
				ids.push_back(r);
	if (!ids.empty() && !rare(in, 3))
		s.target = ids[in.ConsumeIntegralInRange<size_t>(0, ids.size() - 1)];
	else if (rare(in, 3))
		s.target = KIPC_ANY;
	auto payload = [&] {
		return rare(in, 15) ? pick_addr(in) : in.ConsumeIntegralInRange<uint64_t>(0, 4096);
	};
	auto length = [&] {
		return rare(in, 7) ? pick_len(in) : in.ConsumeIntegralInRange<uint32_t>(0, 64);
	};
	s.addr2 = 0;
	s.len2 = 0;
	s.timeout = 0;
	if (!rare(in, 3))
		s.flags &= KIPC_F_NONBLOCK | KIPC_F_SKIP_SUCCESS | KIPC_F_TRUNC;
	if (rare(in, 1)) {
		unsigned n = in.ConsumeIntegralInRange<unsigned>(1, 8);
		if (w.armed && !rare(in, 1))
			s.target = w.armed;
		for (unsigned i = 0; i < n; i++) {
			kipc_bundle_desc d{};
			d.addr = payload();
			d.len = length();
			d.rsvd = rare(in, 15);
			memcpy(arena + kDescs + i * sizeof d, &d, sizeof d);
		}
		s.opcode = KIPC_SYS_mbox_send_bundle;
		if (rare(in, 2)) { /* to a task queue: mostly a process's, often an armed one */
			s.opcode = KIPC_SYS_send_bundle;
			if (w.armed_pid && !rare(in, 1))
				s.target = w.armed_pid;
			else if (!rare(in, 3))
				s.target = w.procs[in.ConsumeIntegralInRange<size_t>(0, kProcs - 1)]->creds.pid;
		}
		s.addr = kDescs;
		s.len = n * uint32_t(sizeof(kipc_bundle_desc));
		if (!rare(in, 2)) /* mostly nonblocking; now and then one that waits for room */
			s.flags |= KIPC_F_NONBLOCK;
		return;
	}
	uint32_t entries = 1u << in.ConsumeIntegralInRange<int>(0, 3);
	uint32_t head = rare(in, 7) ? in.ConsumeIntegral<uint32_t>() : in.ConsumeIntegralInRange<uint32_t>(0, 4);
	kipc_buf_ring br{};
	br.tail = rare(in, 7) ? in.ConsumeIntegral<uint32_t>()
			      : head + entries - in.ConsumeIntegralInRange<uint32_t>(0, entries);
	memcpy(arena + kRing, &br, sizeof br);
	for (uint32_t i = 0; i < entries; i++) {
		kipc_buf b{};
		b.addr = payload();
		b.len = 64 - length() % 65;
		b.bid = uint16_t(i);
		memcpy(arena + kRing + sizeof br + i * sizeof b, &b, sizeof b);
	}
	s.opcode = KIPC_SYS_mbox_receive_multi;
	if (s.target != KIPC_ANY)
		w.armed = s.target;
	else
		w.armed_pid = p.creds.pid;
	s.addr = kRing;
	s.len = rare(in, 15) ? pick_len(in) : entries;
	s.len2 = head;
	s.type = 0;
	s.prio = 0;
	s.flags &= rare(in, 7) ? ~0u : KIPC_F_TRUNC;
}

kipc_sqe make_sqe(FuzzedDataProvider &in, World &w, Proc &p)
{
	kipc_sqe s{};
	s.opcode = in.ConsumeIntegralInRange<uint8_t>(0, KIPC_NR_SYSCALLS + 1);
	if (in.ConsumeIntegralInRange<int>(0, 31) == 0)
		s.rsvd0 = in.ConsumeIntegral<uint8_t>();
	s.prio = in.ConsumeIntegralInRange<int>(0, 7) == 0 ? in.ConsumeIntegral<uint16_t>()
							  : in.ConsumeIntegralInRange<uint16_t>(0, 3);
	/* mostly known flags, sometimes anything */
	s.flags = in.ConsumeIntegral<uint16_t>() & 0x7ff;
	if (in.ConsumeIntegralInRange<int>(0, 31) == 0)
		s.flags = in.ConsumeIntegral<uint32_t>();
	s.target = pick_target(in, w, p);
	s.addr = pick_addr(in);
	s.len = pick_len(in);
	s.addr2 = pick_addr(in);
	s.len2 = pick_len(in);
	s.type = in.ConsumeIntegralInRange<int>(0, 3) == 0 ? pick_target(in, w, p)
							  : in.ConsumeIntegralInRange<int64_t>(-3, 3);
	switch (in.ConsumeIntegralInRange<int>(0, 3)) {
	case 0:
		s.timeout = in.ConsumeIntegral<int64_t>();
		break;
	case 1:
		s.timeout = w.clock.mono + in.ConsumeIntegralInRange<int64_t>(-5, 50) * 1'000'000;
		break;
	default:
		s.timeout = in.ConsumeIntegralInRange<int64_t>(-1, 50) * 1'000'000;
	}
	s.user_data = w.next_ud++;
	if (in.ConsumeIntegralInRange<int>(0, 7) == 0)
		posix_names(in, p, s);
	else if (in.ConsumeIntegralInRange<int>(0, 3) == 0)
		bundle_shapes(in, w, p, s);
	return s;
}

/* Arena bytes: a small write of fuzz data (names, attrs, id arrays). */
void poke(FuzzedDataProvider &in, Proc &p)
{
	size_t off = in.ConsumeIntegralInRange<size_t>(0, kArena - 1);
	size_t n = in.ConsumeIntegralInRange<size_t>(0, 64);
	std::vector<uint8_t> b = in.ConsumeBytes<uint8_t>(n);
	n = std::min(b.size(), kArena - off);
	if (n)
		memcpy(p.mem.arena.data() + off, b.data(), n);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzedDataProvider in(data, size);
	World w;
	for (auto &p : w.procs) {
		/* the arena starts with fuzz bytes too: names, attrs, ids */
		std::vector<uint8_t> b = in.ConsumeBytes<uint8_t>(
			in.ConsumeIntegralInRange<size_t>(0, 256));
		if (!b.empty())
			memcpy(p->mem.arena.data(), b.data(), b.size());
		w.attach(*p);
	}
	KernelImpl &ki = w.k->impl();
	int steps = 0;
	while (in.remaining_bytes() > 0 && steps++ < 256) {
		Proc &p = *w.procs[in.ConsumeIntegralInRange<int>(0, kProcs - 1)];
		int what = in.ConsumeIntegralInRange<int>(0, 23);
		if (what < 14) {
			if (!p.task)
				w.attach(p);
			w.k->submit(p.task, make_sqe(in, w, p));
		} else if (what < 16) {
			poke(in, p);
		} else if (what == 16) {
			w.clock.mono += in.ConsumeIntegralInRange<int64_t>(0, 20) * 1'000'000;
			w.clock.real += 1'000'000;
			w.k->run_timers();
		} else if (what == 17) {
			w.exit(p);
		} else if (what == 18) {
			w.attach(p);
		} else if (what == 19 && w.host.alive.count(kUnattached)) {
			w.host.alive.erase(kUnattached);
			w.k->process_exited(kUnattached);
		} else if (what == 20) {
			/* a descriptor of some queue opened or closed */
			w.host.mq_descriptor(pick_target(in, w, p), in.ConsumeBool() ? 1 : -1);
		} else if (what == 21) {
			w.host.mq_fail_create = in.ConsumeBool();
		} else if (what == 22) {
			if (!w.host.capable_pids.erase(p.creds.pid))
				w.host.capable_pids.insert(p.creds.pid);
		} else if (what == 23) {
			/* the process's RLIMIT_MSGQUEUE as the OS has it (0: unknown) */
			if (uint64_t b = in.ConsumeIntegralInRange<uint64_t>(0, 1 << 16))
				w.host.mq_rlimits[p.creds.pid] = b;
			else
				w.host.mq_rlimits.erase(p.creds.pid);
		}
		w.host.release(*w.k);
		ki.check_invariants();
		w.host.check(ki);
	}
	/* Everything times out or goes away; nothing may be left charged. */
	w.clock.mono += 3600'000'000'000LL;
	w.k->run_timers();
	ki.check_invariants();
	for (auto &p : w.procs)
		w.exit(*p);
	/* every descriptor closes: every open ends (named queues stay) */
	for (auto &[h, n] : std::map<int64_t, int>(w.host.mq_fds))
		w.host.mq_descriptor(h, -n);
	w.host.release(*w.k);
	FUZZ_ASSERT(w.host.mq_fds.empty());
	w.host.check(ki);
	if (w.host.alive.count(kUnattached)) {
		w.host.alive.erase(kUnattached);
		w.k->process_exited(kUnattached);
	}
	ki.check_invariants();
	bool kernel_owned = false;
	ki.mbox.for_each([&](const kipc::Mailbox *) { kernel_owned = true; });
	if (!kernel_owned) {
		for (uid_t u : {0u, 1000u, 1001u, 1002u}) {
			FUZZ_ASSERT(ki.user(u).bytes == 0);
			FUZZ_ASSERT(ki.user(u).mailboxes == 0);
		}
	}
	return 0;
}
