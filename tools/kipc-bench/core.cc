// SPDX-License-Identifier: MIT
/*
 * kipc-bench: the kernel core in process (no daemon, no rings), behind
 * the same facade kipcd uses (kernel/include/kernel/kernel.h), with a
 * fixed clock. Two things are measured here because only here they are
 * exact:
 *  - memory: heap bytes (mallinfo2 uordblks + hblkhd) per queued message, per
 *    task and per mailbox;
 *  - the core's own cost per operation (send + receive on one mailbox)
 *    with 10 vs 1,000,000 messages queued, and 10 vs 1,000,000 mailboxes.
 */
#include "bench.h"

#include <cerrno>
#include <cstring>
#include <malloc.h>
#include <memory>
#include <vector>

#include <fmt/core.h>
#include <kernel/kernel.h>
#include <kipc/kipc.h>

#include "../../lib/sqe.h" /* the entries, encoded as libkipc does */

namespace bench {
namespace {

struct FixedClock : kipc::Clock {
	int64_t monotonic_ns() const override { return 1'000'000'000; }
	int64_t realtime_ns() const override { return 1'700'000'000'000'000'000; }
};

struct NoHost : kipc::Host {
	bool process_alive(pid_t, kipc::Creds *) override { return false; }
	void watch_process(pid_t) override {}
	void unwatch_process(pid_t) override {}
};

struct Mem : kipc::UserMemory {
	std::vector<uint8_t> arena = std::vector<uint8_t>(1 << 16);
	bool access_ok(uint64_t addr, uint64_t len) const override
	{
		return addr <= arena.size() && len <= arena.size() - addr;
	}
	int copy_from_user(void *dst, uint64_t addr, uint64_t len) override
	{
		if (!access_ok(addr, len))
			return -EFAULT;
		memcpy(dst, arena.data() + addr, len);
		return 0;
	}
	int copy_to_user(uint64_t addr, const void *src, uint64_t len) override
	{
		if (!access_ok(addr, len))
			return -EFAULT;
		memcpy(arena.data() + addr, src, len);
		return 0;
	}
};

struct Sink : kipc::CompletionSink {
	kipc_cqe last{};
	uint64_t n = 0;
	void complete(void *, const kipc_cqe &cqe) override
	{
		last = cqe;
		n++;
	}
};

constexpr uint64_t kPayload = 1024; /* arena offsets */
constexpr uint64_t kAttr = 8192;

struct World {
	FixedClock clock;
	NoHost host;
	Sink sink;
	Mem mem;
	std::unique_ptr<kipc::Kernel> k;
	kipc::Task *task = nullptr;

	World()
	{
		kipc::Limits l = kipc::Limits::from_config();
		l.set("tasks_per_user", "1048576"); /* -ENOENT where there is no such limit */
		l.bytes_per_user = 1ull << 30;
		l.mbox_per_user = 1u << 21;
		l.msg_max = 65536;
		k = std::make_unique<kipc::Kernel>(clock, host, sink, l);
		kipc::Creds c{100, 1000, 1000};
		k->attach(c, &mem, "bench", nullptr, &task);
	}
	long submit(const kipc_sqe &sqe)
	{
		uint64_t before = sink.n;
		k->submit(task, sqe);
		return sink.n == before ? -EINPROGRESS : long(sink.last.res);
	}
	int64_t open(uint32_t cap)
	{
		kipc_mbox_attr a{};
		a.capacity = cap;
		a.msgsize = 64;
		a.mode = 0600;
		memcpy(mem.arena.data() + kAttr, &a, sizeof a);
		kipc_sqe s{};
		__kipc_enc_mbox_open(&s, 0, 0, 0, kAttr, sizeof a);
		return submit(s);
	}
	long send(int64_t id)
	{
		kipc_sqe s{};
		__kipc_enc_send(&s, KIPC_SYS_mbox_send, id, kPayload, 64, 0, 0);
		return submit(s);
	}
	long receive(int64_t id)
	{
		kipc_sqe s{};
		__kipc_enc_receive(&s, KIPC_SYS_mbox_receive, id, kPayload, 64, KIPC_F_NONBLOCK);
		return submit(s);
	}
	/* ns per operation, depth constant */
	double op_cost(int64_t id, uint32_t iters)
	{
		for (uint32_t i = 0; i < iters / 10; i++) {
			send(id);
			receive(id);
		}
		int64_t t = now_ns();
		for (uint32_t i = 0; i < iters; i++) {
			send(id);
			receive(id);
		}
		return double(now_ns() - t) / (2.0 * iters);
	}
};

/* Bytes malloc has handed out: from its arenas and mmap'd (big tables). */
size_t heap()
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

Record row(const char *scen, uint32_t size, uint32_t n, const char *metric, double v,
	   const std::string &note)
{
	Record r;
	r.scenario = scen;
	r.impl = "kipc-core";
	r.size = size;
	r.n = n;
	r.metric = metric;
	r.value = v;
	r.note = note;
	return r;
}

} // namespace

void run_core_scenarios(const Options &o, Meta &, std::vector<Record> &out)
{
	auto want = [&](const char *s) { return wanted(o, s); };
	uint32_t big_q = o.quick ? 10000 : 1000000;
	uint32_t big_mb = o.quick ? 2000 : 1000000;
	uint32_t ntasks = o.quick ? 1000 : 10000;
	uint32_t iters = o.quick ? 20000 : 200000;

	if (want("memory") || want("core")) {
		/* per queued message: 64-byte payloads into an unbounded mailbox */
		World w;
		int64_t id = w.open(KIPC_UNBOUNDED);
		size_t h0 = heap();
		for (uint32_t i = 0; i < big_q; i++)
			w.send(id);
		size_t h1 = heap();
		out.push_back(row("memory", 64, big_q, "overhead_per_msg",
				  double(h1 - h0) / big_q - 64.0,
				  fmt::format("core heap per queued 64-byte message minus the payload "
					      "(quota charges kMessageOverhead = {})",
					      kipc::kMessageOverhead)));
		/* per mailbox */
		size_t h2 = heap();
		for (uint32_t i = 0; i < big_mb; i++)
			if (w.open(16) < 0)
				break;
		size_t h3 = heap();
		out.push_back(row("memory", 0, big_mb, "bytes_per_mailbox", double(h3 - h2) / big_mb,
				  "core heap per anonymous mailbox"));
	}
	if (want("memory") || want("core")) {
		World w;
		Mem shared;
		size_t h0 = heap();
		uint32_t nok = 0;
		for (uint32_t i = 0; i < ntasks; i++) {
			kipc::Task *t;
			kipc::Creds c{pid_t(1000 + i), 1000, 1000};
			nok += w.k->attach(c, &shared, "t", nullptr, &t) == 0;
		}
		size_t h1 = heap();
		out.push_back(row("memory", 0, nok, "bytes_per_task", nok ? double(h1 - h0) / nok : 0,
				  "core heap per attached task (kipcd adds its ring bookkeeping)"));
	}
	if (want("core") || want("scale")) {
		size_t first = out.size();
		for (uint32_t depth : {10u, big_q}) {
			World w;
			int64_t id = w.open(KIPC_UNBOUNDED);
			for (uint32_t i = 0; i < depth; i++)
				w.send(id);
			out.push_back(row("core-queued", depth, 1, "ns_per_op", w.op_cost(id, iters),
					  "send + receive in process, depth constant"));
		}
		for (uint32_t nmb : {10u, big_mb}) {
			World w;
			int64_t id = w.open(64);
			for (uint32_t i = 1; i < nmb; i++)
				w.open(16);
			for (int i = 0; i < 10; i++)
				w.send(id);
			out.push_back(row("core-mailboxes", nmb, 1, "ns_per_op", w.op_cost(id, iters),
					  "send + receive in process"));
		}
		for (size_t i = first; i < out.size(); i++)
			for (size_t j = first; j < i; j++)
				if (out[j].scenario == out[i].scenario && out[j].value > 0) {
					out[i].ratio = out[i].value / out[j].value;
					out[i].ratio_to = fmt::format("size {}", out[j].size);
					break;
				}
	}
}

} // namespace bench
