// SPDX-License-Identifier: MIT
/*
 * net_unit - the network protocol (kernel/net/net.cc) in process, without
 * NATS: two nodes, a (origin) and b (home), each a kernel core of the
 * unit tests (tests/unit/harness.h: fake clock, fake processes) with its
 * Net on a fake fabric. A test moves the frames one publishes to the
 * other by hand (pump), so it can drop, repeat, garble or forge any of
 * them, and moves the clock. Documentation/network.md is the contract.
 */
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "../unit/harness.h"
#include "../unit/intro_helpers.h"

/* The protocol itself: its wire format and NetImpl are private to it. */
#include "../../kernel/net/net.cc"

namespace kipcd {

void klog(const std::string &) {}

std::unique_ptr<Fabric> make_nats_fabric(const NetConfig &, std::string *err)
{
	*err = "no NATS in the unit tests";
	return nullptr;
}

namespace {

using kt::Op;
using kt::Proc;
using kt::World;

struct FakeLoop final : Loop {
	std::map<int64_t, Fn> watches; /* by id: the fabric's, then the timer's */
	int64_t next = 1;
	const char *name() const override { return "fake"; }
	int64_t add(int, uint32_t, Fn fn) override
	{
		watches[next] = std::move(fn);
		return next++;
	}
	void del(int64_t id) override { watches.erase(id); }
	int wait(int) override { return 0; }
};

struct FakeFabric final : Fabric {
	std::vector<FabricMsg> &out, &in; /* published by us, for us (the Side's) */
	bool up = true;
	size_t max = 1 << 20; /* NATS's max_payload: a larger message is refused */
	size_t refused = 0;
	size_t *refused_out = nullptr; /* where refused goes when it is destroyed */
	FakeFabric(std::vector<FabricMsg> &o, std::vector<FabricMsg> &i) : out(o), in(i) {}
	~FakeFabric() override
	{
		if (refused_out)
			*refused_out = refused;
	}
	int eventfd() const override { return -1; }
	size_t max_payload() const override { return max; }
	size_t most_seen = 0; /* the largest 'most' a publish named */
	std::vector<std::string> checks; /* check_node()s, in order */
	void check_node(const std::string &node) override { checks.push_back(node); }
	void publish(std::string subject, std::vector<uint8_t> data, size_t most) override
	{
		most_seen = std::max(most_seen, most);
		if (data.size() > max || data.size() > most) {
			refused++;
			return;
		}
		out.push_back({std::move(subject), std::move(data)});
	}
	std::vector<FabricMsg> take(bool *connected) override
	{
		*connected = up;
		std::vector<FabricMsg> v;
		v.swap(in);
		return v;
	}
};

/* Completions: a proxy's go to its Net, a process's to its Proc. */
struct RouteSink final : kipc::CompletionSink {
	Net *net = nullptr;
	void complete(void *priv, const kipc_cqe &cqe) override
	{
		if (Net::is_proxy(priv)) {
			if (net) /* (null while it stops, as the daemon's net_) */
				net->proxy_complete(priv, cqe);
		}
		else
			static_cast<Proc *>(priv)->cq.push_back(cqe);
	}
};

struct Side {
	World w;
	RouteSink sink;
	FakeLoop loop;
	std::vector<FabricMsg> out, in; /* what its fabric published, and will take */
	std::unique_ptr<NetImpl> net;
	FakeFabric *fab = nullptr;     /* nullptr once stopped */
	size_t refused_at_stop = 0;    /* its fabric's refused, then */

	/* params: its net_* boot parameters, "name=value" (kipcd's argv). */
	explicit Side(const char *name, const std::vector<std::string> &params = {})
	{
		w.k = std::make_unique<kipc::Kernel>(w.clock, w.host, sink, w.limits);
		NetConfig c;
		c.node = name;
		c.url = "nats://fake";
		c.timeout_ms = 1000;
		c.retry_ms = 100;
		for (auto &pv : params)
			REQUIRE(c.set(pv.substr(0, pv.find('=')), pv.substr(pv.find('=') + 1)) == 0);
		REQUIRE(c.check() == "");
		auto f = std::make_unique<FakeFabric>(out, in);
		fab = f.get();
		fab->refused_out = &refused_at_stop;
		net = std::make_unique<NetImpl>(c, loop, *w.k, sink, std::move(f), w.clock);
		std::string err;
		REQUIRE(net->start(&err) == 0);
		sink.net = net.get();
	}
	~Side() { stop(); }
	/* kipcd --stop: the Net goes before the kernel, as in the daemon. */
	void stop()
	{
		sink.net = nullptr;
		net.reset();
		fab = nullptr;
	}
	/* (a stopped node takes nothing: what comes for it is lost) */
	void deliver()
	{
		if (!net) {
			in.clear();
			return;
		}
		loop.watches.begin()->second(POLLIN);
	}
	void tick()
	{
		if (net)
			std::next(loop.watches.begin())->second(POLLIN);
	}
};

/* Decode what n published, for a look. */
Wire frame(const FabricMsg &m)
{
	Wire w;
	REQUIRE(m.data.size() >= sizeof w);
	memcpy(&w, m.data.data(), sizeof w);
	return w;
}

struct Net2 {
	Side a, b;
	/* bparams: the home b's net_* boot parameters. */
	explicit Net2(const std::vector<std::string> &bparams = {}) : a("a"), b("b", bparams) {}
	/* Move what each published to the other; keep: which frames go. */
	int pump(const std::function<bool(const FabricMsg &)> &keep = nullptr)
	{
		int moved = 0;
		for (int round = 0; round < 64; round++) {
			bool any = false;
			for (Side *from : {&a, &b}) {
				Side *to = from == &a ? &b : &a;
				std::vector<FabricMsg> v;
				v.swap(from->out);
				for (auto &m : v) {
					REQUIRE(m.subject.rfind(fmt::format("kipc.{}.", to == &a ? "a" : "b"), 0) == 0);
					if (!keep || keep(m))
						to->in.push_back(std::move(m));
					moved++;
				}
				if (!to->in.empty()) {
					to->deliver();
					any = true;
				}
			}
			if (!any)
				break;
		}
		return moved;
	}
	void advance_ms(int64_t ms)
	{
		a.w.advance_ms(ms);
		b.w.advance_ms(ms);
		a.tick();
		b.tick();
	}
};

/* The index node n gives the node name (net_node). */
int64_t node_ix(Side &n, Proc &p, const std::string &name);

/* Run sqe of p (on node n) through n's Net, as the daemon's ring does. */
Op via(Side &n, Proc &p, kipc_sqe s, uint64_t buf = 0, uint32_t buflen = 0)
{
	s.user_data = p.next_ud++;
	REQUIRE(n.net->wants(&p, s, p.mem.user));
	n.net->submit({&p, p.pid, p.uid, p.gid, &p.mem.user, p.task}, s);
	return Op{&p, s.user_data, buf, buflen};
}

int64_t node_ix(Side &n, Proc &p, const std::string &name)
{
	kipc_sqe s{};
	s.opcode = KIPC_SYS_net_node;
	s.addr = p.put(name);
	s.len = uint32_t(name.size());
	Op o = via(n, p, s);
	REQUIRE(o.done());
	return o.res();
}

/* A direct send of p (on node n) to a node-qualified pid. */
Op send_pid(Side &n, Proc &p, pid_t to, const std::string &data)
{
	kipc_sqe s{};
	__kipc_enc_send(&s, KIPC_SYS_send, to, p.put(data), uint32_t(data.size()), 0, 0);
	return via(n, p, s);
}

Op open_remote(Side &n, Proc &p, const std::string &name)
{
	kipc_sqe s{};
	__kipc_enc_mbox_open(&s, 0, p.put(name), uint32_t(name.size()), 0, 0);
	return via(n, p, s);
}

Op send_remote(Side &n, Proc &p, int64_t id, const std::string &data, uint32_t flags = 0)
{
	kipc_sqe s{};
	__kipc_enc_send(&s, KIPC_SYS_mbox_send, id, p.put(data), uint32_t(data.size()), 0, flags);
	return via(n, p, s);
}

/* b has a server (pid 100) with mailbox "/box" of capacity cap; a has
 * a process (pid 200) that opened it. */
struct Setup : Net2 {
	Proc &srv = b.w.spawn(100, 0, 0);
	Proc &cli = a.w.spawn(200, 0, 0);
	int64_t box = 0, rid = 0;
	uint64_t a_epoch = 0, b_epoch = 0;
	explicit Setup(uint32_t cap = 4, const std::vector<std::string> &bparams = {})
		: Net2(bparams)
	{
		kipc_mbox_attr at{};
		at.capacity = cap;
		at.mode = 0666;
		box = srv.mbox_open("/box", KIPC_O_CREAT, &at);
		REQUIRE(box > 0);
		Op o = open_remote(a, cli, "/net/b/box");
		pump([&](const FabricMsg &m) {
			(m.subject[5] == 'b' ? a_epoch : b_epoch) = frame(m).epoch;
			return true;
		});
		REQUIRE(o.done());
		rid = o.res();
		REQUIRE(KIPC_NET_IS_MBOX(rid));
	}
	/* Capacity 1: fill the mailbox, then park a send on it (acknowledged). */
	Op fill_and_park()
	{
		Op fill = send_remote(a, cli, rid, "fill");
		pump();
		REQUIRE(fill.done());
		REQUIRE(fill.res() == 0);
		Op parked = send_remote(a, cli, rid, "parked");
		pump();
		REQUIRE(!parked.done());
		REQUIRE(nsenders() == 1);
		return parked;
	}
	uint32_t nmsg()
	{
		kipc_mbox_stat st{};
		REQUIRE(srv.mbox_stat(box, &st) == 0);
		return st.nmsg;
	}
	uint32_t nsenders()
	{
		kipc_mbox_stat st{};
		REQUIRE(srv.mbox_stat(box, &st) == 0);
		return st.nsenders;
	}
};

bool is(const FabricMsg &m, uint16_t kind) { return frame(m).kind == kind; }

/* A REQ a peer might send: origin epoch, the home epoch it names, seq
 * (also its order, task incarnation 1), op from pid to target. */
Wire req_frame(uint64_t epoch, uint64_t home, uint64_t seq, uint8_t op, int32_t pid,
	       int64_t target)
{
	Wire w{};
	w.kind = W_REQ;
	w.epoch = epoch;
	w.peer_epoch = home;
	w.seq = seq;
	w.low = 1;
	w.op = op;
	w.pid = pid;
	w.target = target;
	w.inc = 1;
	w.order = w.order_low = uint32_t(seq);
	return w;
}

} // namespace
} // namespace kipcd

using namespace kipcd;

TEST_CASE("net: every frame encodes and decodes")
{
	for (uint16_t kind : {W_REQ, W_PROBE, W_ACK, W_RES, W_STALE, W_BYE, W_PING, W_PONG}) {
		Wire w{};
		w.kind = kind;
		w.epoch = 11;
		w.peer_epoch = 12;
		w.seq = 13;
		w.low = 14;
		w.op = KIPC_SYS_mbox_call;
		w.pid = 4242;
		w.uid = 1000;
		w.len2 = 64;
		w.target = -5;
		w.cqe.res = -EIDRM;
		w.order = 3;
		w.inc = 9;
		const char data[] = "payload";
		std::vector<uint8_t> b = encode(w, data, sizeof data);
		REQUIRE(b.size() == sizeof(Wire) + sizeof data);
		Wire d;
		memcpy(&d, b.data(), sizeof d);
		CHECK(d.magic == kWireMagic);
		CHECK(d.version == kWireVersion);
		CHECK(d.datalen == sizeof data);
		CHECK(d.kind == kind);
		CHECK(d.epoch == 11);
		CHECK(d.peer_epoch == 12);
		CHECK(d.seq == 13);
		CHECK(d.low == 14);
		CHECK(d.pid == 4242);
		CHECK(d.target == -5);
		CHECK(d.cqe.res == -EIDRM);
		CHECK(d.inc == 9);
		CHECK(memcmp(b.data() + sizeof d, data, sizeof data) == 0);
	}
}

TEST_CASE("net: a send and a call cross, each frame kind on its subject")
{
	Setup s;
	std::vector<std::pair<std::string, uint16_t>> seen;
	auto spy = [&](const FabricMsg &m) {
		seen.emplace_back(m.subject, frame(m).kind);
		return true;
	};
	Op o = send_remote(s.a, s.cli, s.rid, "hi");
	s.pump(spy);
	REQUIRE(o.done());
	CHECK(o.res() == 0);
	CHECK(s.nmsg() == 1);
	/* REQ on b's request subject, RES on a's answer subject. */
	REQUIRE(seen.size() == 2);
	CHECK(seen[0] == std::make_pair(std::string("kipc.b.req.a"), uint16_t(W_REQ)));
	CHECK(seen[1] == std::make_pair(std::string("kipc.a.rsp.b"), uint16_t(W_RES)));
	/* A call parks: acknowledged at b's next tick (not at once: one
	 * that completes sooner has its RES alone), probed, and its reply
	 * travels back. */
	kipc_sqe c{};
	uint64_t rbuf = s.cli.mem.alloc(16);
	__kipc_enc_call(&c, KIPC_SYS_mbox_call, s.rid, s.cli.put("ping"), 4, rbuf, 16, 0, 0);
	Op call = via(s.a, s.cli, c, rbuf, 16);
	seen.clear();
	s.pump(spy);
	CHECK(!call.done());
	REQUIRE(seen.size() == 1);
	CHECK(seen.back().second == W_REQ);
	s.advance_ms(25); /* net_retry_ms / 4 */
	s.pump(spy);
	REQUIRE(seen.size() == 2);
	CHECK(seen.back().second == W_ACK);
	s.advance_ms(100);
	s.pump(spy);
	REQUIRE(seen.size() == 4);
	CHECK(seen[2].second == W_PROBE); /* acknowledged: not the full REQ again */
	CHECK(seen.back().second == W_ACK); /* the probe, acknowledged */
	Op r = s.srv.mbox_receive(s.box);
	REQUIRE(r.done());
	CHECK(r.text() == "hi");
	Op r2 = s.srv.mbox_receive(s.box);
	REQUIRE(r2.done());
	CHECK(r2.text() == "ping");
	CHECK(s.srv.reply(r2.cqe().token, "pong") == 0);
	s.pump();
	REQUIRE(call.done());
	CHECK(call.res() == 4);
	CHECK(std::string(reinterpret_cast<char *>(s.cli.mem.arena.data() + rbuf), 4) == "pong");
}

TEST_CASE("net: truncated, oversized and garbage frames are dropped; bad requests get errnos")
{
	Setup s;
	Wire ok{};
	ok.kind = W_PROBE; /* a hello: answered ACK when it gets through */
	ok.epoch = 1;
	std::vector<uint8_t> hello = encode(ok, nullptr, 0);
	auto inject = [&](std::string subject, std::vector<uint8_t> data) {
		s.b.in.push_back({std::move(subject), std::move(data)});
		s.b.deliver();
		size_t n = s.b.out.size();
		s.b.out.clear();
		return n;
	};
	/* Every length short of a header, and a header cut anywhere. */
	for (size_t n = 0; n < sizeof(Wire); n += 7)
		CHECK(inject("kipc.b.req.z", std::vector<uint8_t>(hello.begin(), hello.begin() + long(n))) == 0);
	/* Magic, version, a length that lies (short, long, beyond the bound). */
	auto bad = hello;
	bad[0] ^= 1;
	CHECK(inject("kipc.b.req.z", bad) == 0);
	bad = hello;
	bad[4] = 9;
	CHECK(inject("kipc.b.req.z", bad) == 0);
	for (uint32_t dl : {1u, 100u, kMaxData + kMaxName + 1, 0xffffffffu}) {
		bad = hello;
		Wire w = frame({"", bad});
		w.datalen = dl;
		memcpy(bad.data(), &w, sizeof w);
		CHECK(inject("kipc.b.req.z", bad) == 0);
	}
	bad = hello;
	bad.push_back(0); /* a byte more than the header says */
	CHECK(inject("kipc.b.req.z", bad) == 0);
	/* Coalesced frames (nats.cc) all run; a message that does not split
	 * exactly into good frames runs none of them. */
	std::vector<uint8_t> two = hello;
	two.insert(two.end(), hello.begin(), hello.end());
	CHECK(inject("kipc.b.req.z", two) == 2);
	bad = two;
	bad[sizeof(Wire)] ^= 1; /* the second frame's magic */
	CHECK(inject("kipc.b.req.z", bad) == 0);
	/* Oversized: more data than a request may carry. */
	Wire big = ok;
	big.kind = W_REQ;
	std::vector<uint8_t> huge(kMaxData + kMaxName + 1);
	CHECK(inject("kipc.b.req.z", encode(big, huge.data(), uint32_t(huge.size()))) == 0);
	/* Unknown kinds, an answer kind on the request subject, a bad name. */
	for (uint16_t k : {uint16_t(0), uint16_t(W_ACK), uint16_t(W_RES), uint16_t(99)}) {
		Wire w = ok;
		w.kind = k;
		CHECK(inject("kipc.b.req.z", encode(w, nullptr, 0)) == 0);
	}
	CHECK(inject("kipc.b.req.Z!", hello) == 0);
	CHECK(inject("kipc.b.req.", hello) == 0);
	CHECK(inject("kipc.c.req.z", hello) == 0);
	/* Random bytes of every size. */
	uint32_t x = 12345;
	for (size_t n = 0; n < 600; n += 13) {
		std::vector<uint8_t> g(n);
		for (auto &c : g)
			c = uint8_t((x = x * 1103515245 + 12345) >> 16);
		CHECK(inject("kipc.b.req.z", g) == 0);
	}
	/* b took none of it and still answers. */
	CHECK(inject("kipc.b.req.z", hello) == 1);
	/* Well-formed requests that are bad get their errno, not a crash. */
	uint64_t home = 0;
	s.b.in.push_back({"kipc.b.req.z", hello});
	s.b.deliver();
	home = frame(s.b.out.at(0)).epoch;
	s.b.out.clear();
	struct { uint8_t op; int32_t pid; uint32_t flags; long err; } cases[] = {
		{KIPC_SYS_mbox_receive, 7, 0, -ENOSYS},
		{KIPC_SYS_mbox_send, 0, 0, -EINVAL},
		{KIPC_SYS_mbox_send, 1 << 22, 0, -EINVAL},
		{KIPC_SYS_mbox_send, 7, KIPC_F_CACHE, -EINVAL},
	};
	uint64_t seq = 1;
	for (auto &c : cases) {
		Wire w = req_frame(1, home, seq++, c.op, c.pid, s.box);
		w.flags = c.flags;
		s.b.in.push_back({"kipc.b.req.z", encode(w, "x", 1)});
		s.b.deliver();
		REQUIRE(!s.b.out.empty());
		Wire ans = frame(s.b.out.back());
		s.b.out.clear();
		CHECK(ans.kind == W_RES);
		CHECK(ans.seq == w.seq);
		CHECK(ans.cqe.res == c.err);
	}
	CHECK(s.nmsg() == 0);
}

TEST_CASE("net: a retransmission never runs twice; the low-water mark forgets")
{
	Setup s;
	/* The RES is lost: a retransmits the REQ; b answers from its table. */
	Op o = send_remote(s.a, s.cli, s.rid, "once");
	s.pump([](const FabricMsg &m) { return !is(m, W_RES); });
	CHECK(!o.done());
	CHECK(s.nmsg() == 1);
	s.advance_ms(100);
	int reqs = 0;
	s.pump([&](const FabricMsg &m) {
		reqs += is(m, W_REQ) && frame(m).retry;
		return true;
	});
	CHECK(reqs == 1);
	REQUIRE(o.done());
	CHECK(o.res() == 0);
	CHECK(s.nmsg() == 1); /* not twice */
	/* A copy of an old REQ below the origin's low-water mark: ENOLINK,
	 * not run (its result was forgotten once a moved past it). */
	Op o2 = send_remote(s.a, s.cli, s.rid, "two");
	std::vector<uint8_t> first_req;
	s.pump([&](const FabricMsg &m) {
		if (is(m, W_REQ))
			first_req = m.data;
		return true;
	});
	REQUIRE(o2.done());
	Op o3 = send_remote(s.a, s.cli, s.rid, "three"); /* low is past o2 now */
	s.pump();
	REQUIRE(o3.done());
	CHECK(s.nmsg() == 3);
	REQUIRE(!first_req.empty());
	s.b.in.push_back({"kipc.b.req.a", first_req});
	s.b.deliver();
	REQUIRE(s.b.out.size() == 1);
	Wire ans = frame(s.b.out[0]);
	s.b.out.clear();
	/* o2's result is still there (o3's REQ said low = o3) or forgotten:
	 * either its stored result or ENOLINK, never a second run. */
	CHECK(ans.kind == W_RES);
	CHECK((ans.cqe.res == 0 || ans.cqe.res == -ENOLINK));
	CHECK(s.nmsg() == 3);
}

TEST_CASE("net: restarts are detected by epoch")
{
	Setup s(1);
	/* A parked send: acknowledged by b (at its tick), then b restarts
	 * (a new epoch). */
	Op o = s.fill_and_park();
	s.advance_ms(25);
	s.pump();
	CHECK(!o.done());
	CHECK(s.nsenders() == 1);
	Wire w{};
	w.kind = W_ACK;
	w.epoch = s.b_epoch + 1;
	s.a.in.push_back({"kipc.a.rsp.b", encode(w, nullptr, 0)});
	s.a.deliver();
	REQUIRE(o.done());
	CHECK(o.res() == -ENOLINK); /* acknowledged by the old instance: unknown */
	/* The origin restarts: a PONG with a newer epoch ends its proxies. */
	s.a.out.clear();
	Wire pong{};
	pong.kind = W_PONG;
	pong.epoch = s.a_epoch + 1;
	s.b.in.push_back({"kipc.b.req.a", encode(pong, nullptr, 0)});
	s.b.deliver();
	CHECK(s.nsenders() == 0); /* withdrawn */
	CHECK(s.nmsg() == 1);
	/* ... and what the old instance sends now is ignored. */
	Op late = send_remote(s.a, s.cli, s.rid, "late");
	s.pump();
	CHECK(!late.done());
	CHECK(s.nmsg() == 1);
	/* A request naming another home epoch is answered STALE, not run. */
	Side &b = s.b;
	Wire req = req_frame(s.a_epoch + 5, s.b_epoch - 1, 1, KIPC_SYS_mbox_send, 7, s.box);
	b.in.push_back({"kipc.b.req.a", encode(req, "x", 1)});
	b.deliver();
	REQUIRE(b.out.size() == 1);
	CHECK(frame(b.out[0]).kind == W_STALE);
	CHECK(s.nmsg() == 1);
}

TEST_CASE("net: a clean stop answers parked requests and says which ran")
{
	Setup s(1);
	Op parked = s.fill_and_park();
	Op lost = send_remote(s.a, s.cli, s.rid, "lost-answer");
	s.pump();
	CHECK(!lost.done());
	CHECK(s.nsenders() == 2);
	/* One more b never sees (its REQ is lost). */
	Op unseen = send_remote(s.a, s.cli, s.rid, "unseen");
	s.a.out.clear();
	s.b.stop(); /* kipcd --stop */
	std::vector<Wire> f;
	for (auto &m : s.b.out)
		f.push_back(frame(m));
	/* The parked ones answered EIDRM, then a BYE to a, listing them. */
	REQUIRE(f.size() == 3);
	CHECK(f[0].kind == W_RES);
	CHECK(f[0].cqe.res == -EIDRM);
	CHECK(f[1].cqe.res == -EIDRM);
	CHECK(f[2].kind == W_BYE);
	CHECK(f[2].peer_epoch == s.a_epoch);
	CHECK(f[2].datalen % 8 == 0);
	/* lost-answer's RES is lost on the way. */
	uint64_t lost_seq = f[1].seq;
	s.b.out.erase(s.b.out.begin() + 1);
	s.pump();
	REQUIRE(parked.done());
	CHECK(parked.res() == -EIDRM);   /* withdrawn: not delivered */
	REQUIRE(lost.done());
	CHECK(lost.res() == -ENOLINK);   /* on the list, no answer: unknown */
	REQUIRE(unseen.done());
	CHECK(unseen.res() == -EHOSTUNREACH); /* never run: not delivered, at once */
	(void)lost_seq;
}

TEST_CASE("net: a home node ends the proxies of a silent origin")
{
	Setup s(1);
	Op parked = s.fill_and_park();
	/* a goes silent (died, or cut off): everything it sends is lost. */
	int pings = 0;
	auto cut = [&](const FabricMsg &m) {
		pings += is(m, W_PING);
		return false;
	};
	for (int ms = 0; ms < 900; ms += 25) {
		s.advance_ms(25);
		s.pump(cut);
	}
	CHECK(s.nsenders() == 1); /* not yet: 900 ms < net_timeout_ms */
	CHECK(pings >= 1);        /* asked after half of it */
	s.advance_ms(100);
	s.b.tick();
	CHECK(s.nsenders() == 0); /* withdrawn */
	CHECK(s.nmsg() == 1);
	/* Its answer, if a hears: ENOLINK; a retransmission is answered
	 * from the table, not run. */
	REQUIRE(!s.b.out.empty());
	Wire last = frame(s.b.out.back());
	CHECK(last.kind == W_RES);
	CHECK(last.cqe.res == -ENOLINK);
	s.pump();
	REQUIRE(parked.done());
	CHECK(parked.res() == -ENOLINK);
	CHECK(s.nmsg() == 1);
}

TEST_CASE("net: a PONG keeps an idle origin's proxies")
{
	Setup s;
	Op o = send_remote(s.a, s.cli, s.rid, "x");
	s.pump();
	REQUIRE(o.done());
	kipc_net_stat st{};
	for (int ms = 0; ms < 3000; ms += 25) {
		s.advance_ms(25);
		s.pump(); /* a answers b's pings */
	}
	/* The proxy is still there: a message from it is from a proxy. */
	Op r = s.srv.mbox_receive(s.box);
	REQUIRE(r.done());
	pid_t proxy = r.cqe().pid;
	CHECK(KIPC_NET_IS_PID(proxy)); /* a:200, as b numbers its nodes */
	CHECK(KIPC_NET_PID_PID(proxy) == 200);
	Op o2 = send_remote(s.a, s.cli, s.rid, "y");
	s.pump();
	REQUIRE(o2.done());
	Op r2 = s.srv.mbox_receive(s.box);
	REQUIRE(r2.done());
	CHECK(r2.cqe().pid == proxy); /* the same proxy */
	(void)st;
}

TEST_CASE("net: the receiver sees the sender's node-qualified pid and sends back to it")
{
	Setup s;
	/* Remote callers run as net_uid (65534) at their home: a direct send
	 * needs the target's uid, so these two run as 65534 too. */
	Proc &srv = s.b.w.spawn(101, 65534, 65534);
	Proc &cli = s.a.w.spawn(201, 65534, 65534);
	int64_t b_at_a = node_ix(s.a, cli, "b");
	Op o = send_pid(s.a, cli, KIPC_NET_PID(b_at_a, 101), "ping");
	s.pump();
	REQUIRE(o.done());
	CHECK(o.res() == 0);
	/* At b the sender is a:201, numbered by b (net_node("a") there). */
	Op r = srv.receive();
	REQUIRE(r.done());
	CHECK(r.text() == "ping");
	pid_t from = r.cqe().pid;
	CHECK(from == KIPC_NET_PID(node_ix(s.b, srv, "a"), 201));
	kipc_net_peer np{};
	kipc_sqe q{};
	uint64_t rec = srv.mem.alloc(sizeof np);
	q.opcode = KIPC_SYS_net_peer;
	q.target = from;
	q.addr2 = rec;
	q.len2 = sizeof np;
	Op peer = via(s.b, srv, q);
	REQUIRE(peer.done());
	CHECK(peer.res() == 0);
	memcpy(&np, srv.mem.arena.data() + rec, sizeof np);
	CHECK(std::string(np.node) == "a");
	CHECK(np.pid == 201);
	/* send(sender): back across the network to the task itself. */
	Op back = send_pid(s.b, srv, from, "pong");
	s.pump();
	REQUIRE(back.done());
	CHECK(back.res() == 0);
	Op got = cli.receive();
	REQUIRE(got.done());
	CHECK(got.text() == "pong");
	CHECK(got.cqe().pid == KIPC_NET_PID(b_at_a, 101)); /* = kipc_node_pid("b", 101) */
	/* The address names the authenticated node: the same pid of another
	 * node is another proxy, another address. */
	Wire req = req_frame(77, s.b_epoch, 1, KIPC_SYS_send, 201, 101);
	req.uid = req.gid = 65534;
	s.b.in.push_back({"kipc.b.req.z", encode(req, "forged", 6)});
	s.b.deliver();
	s.b.out.clear();
	Op f = srv.receive();
	REQUIRE(f.done());
	CHECK(f.text() == "forged");
	CHECK(f.cqe().pid == KIPC_NET_PID(node_ix(s.b, srv, "z"), 201));
	CHECK(f.cqe().pid != from);
	/* z only sent here: answers from z (a hello's ACK b never asked for)
	 * teach b nothing of z as a home; b's first send there says hello. */
	Wire ack{};
	ack.kind = W_ACK;
	ack.epoch = 5;
	s.b.in.push_back({"kipc.b.rsp.z", encode(ack, nullptr, 0)});
	s.b.deliver();
	Op to_z = send_pid(s.b, srv, f.cqe().pid, "to z");
	REQUIRE(!s.b.out.empty());
	Wire first = frame(s.b.out.back());
	CHECK(first.kind == W_PROBE);
	CHECK(first.seq == 0);
	CHECK(!to_z.done());
}

TEST_CASE("net: a BYE longer than max_payload goes in parts, each settling its own range")
{
	Setup s(1);
	s.b.fab->max = 4096; /* NATS's max_payload of the home's server */
	/* A parked send holds a's low-water mark: b remembers every id after. */
	Op parked = s.fill_and_park();
	std::vector<Op> full;
	for (int i = 0; i < 1000; i++)
		full.push_back(send_remote(s.a, s.cli, s.rid, "x", KIPC_F_NONBLOCK));
	s.pump();
	for (auto &o : full) {
		REQUIRE(o.done());
		CHECK(o.res() == -EAGAIN);
	}
	/* Its EIDRM answer is lost: the BYE's list says it ran (ENOLINK). */
	Op lost = send_remote(s.a, s.cli, s.rid, "lost-answer");
	s.pump();
	REQUIRE(!lost.done());
	/* Two more b never sees (their REQs are lost): not on the list. */
	Op unseen1 = send_remote(s.a, s.cli, s.rid, "unseen");
	Op unseen2 = send_remote(s.a, s.cli, s.rid, "unseen");
	s.a.out.clear();
	s.b.stop();
	/* 1003 ids of 8 bytes: 8 KiB, twice the bound; in parts, none refused. */
	CHECK(s.b.refused_at_stop == 0);
	std::vector<Wire> byes;
	uint64_t lost_seq = 0;
	for (auto &m : s.b.out) {
		CHECK(m.data.size() <= 4096);
		Wire w = frame(m);
		if (w.kind == W_BYE)
			byes.push_back(w);
		else if (w.kind == W_RES && w.cqe.res == -EIDRM)
			lost_seq = w.seq; /* the last parked one's */
	}
	REQUIRE(byes.size() >= 3);
	/* The parts cover every seq: [0, s1), [s1, s2), ... [sn, no end). */
	CHECK(byes.front().low == 0);
	CHECK(byes.back().seq == 0);
	for (size_t i = 1; i < byes.size(); i++)
		CHECK(byes[i].low == byes[i - 1].seq);
	s.b.out.erase(std::remove_if(s.b.out.begin(), s.b.out.end(),
				     [&](const FabricMsg &m) {
					     return frame(m).kind == W_RES && frame(m).seq == lost_seq;
				     }),
		      s.b.out.end());
	s.pump();
	REQUIRE(parked.done());
	CHECK(parked.res() == -EIDRM);
	REQUIRE(lost.done());
	CHECK(lost.res() == -ENOLINK);      /* ran, answer lost: unknown */
	REQUIRE(unseen1.done());
	CHECK(unseen1.res() == -EHOSTUNREACH); /* never ran: not delivered */
	REQUIRE(unseen2.done());
	CHECK(unseen2.res() == -EHOSTUNREACH);
}

TEST_CASE("net: a lost BYE part leaves its requests to the timeout, the others settle at once")
{
	Setup s(1);
	s.b.fab->max = 4096;
	Op parked = s.fill_and_park();
	for (int i = 0; i < 1000; i++)
		send_remote(s.a, s.cli, s.rid, "x", KIPC_F_NONBLOCK);
	s.pump();
	Op unseen = send_remote(s.a, s.cli, s.rid, "unseen"); /* in the last part's range */
	s.a.out.clear();
	s.b.stop();
	/* The last part is lost on the way. */
	size_t last = 0;
	for (size_t i = 0; i < s.b.out.size(); i++)
		if (frame(s.b.out[i]).kind == W_BYE)
			last = i;
	REQUIRE(frame(s.b.out[last]).seq == 0);
	s.b.out.erase(s.b.out.begin() + long(last));
	s.pump();
	REQUIRE(parked.done()); /* its EIDRM answer came */
	CHECK(parked.res() == -EIDRM);
	CHECK(!unseen.done()); /* its part was lost: not settled by a guess */
	for (int ms = 0; ms <= 1100; ms += 50)
		s.a.w.advance_ms(50), s.a.tick();
	REQUIRE(unseen.done());
	CHECK(unseen.res() == -ENOLINK); /* sent, no answer: the usual timeout */
}

/* Setup with b's mailbox "/big" (messages up to 64 KiB) opened at a, and
 * both servers' max_payload 4096 (the origin's, home's). */
struct BigSetup : Setup {
	int64_t big = 0, rbig = 0;
	explicit BigSetup(size_t amax = 4096, size_t bmax = 4096)
	{
		a.fab->max = amax;
		b.fab->max = bmax;
		kipc_mbox_attr at{};
		at.capacity = 4;
		at.msgsize = 65536;
		at.mode = 0666;
		big = srv.mbox_open("/big", KIPC_O_CREAT, &at);
		REQUIRE(big > 0);
		Op o = open_remote(a, cli, "/net/b/big");
		pump();
		REQUIRE(o.done());
		rbig = o.res();
		REQUIRE(KIPC_NET_IS_MBOX(rbig));
	}
	uint32_t nbig()
	{
		kipc_mbox_stat st{};
		REQUIRE(srv.mbox_stat(big, &st) == 0);
		return st.nmsg;
	}
	uint64_t held(uid_t uid = 65534) { return b.w.k->impl().user(uid).host_bytes; }
	/* The answer b keeps of a's last request there (a header), until a
	 * later request's low-water mark passes it: charged too. */
	static constexpr uint64_t kept = 176;
	/* What a's proxy there holds while it lives: room for its entry
	 * once it ends (Peer::exited). */
	static constexpr uint64_t proxy = kEndedBytes;
};

std::string pattern(size_t n)
{
	std::string d(n, '\0');
	for (size_t i = 0; i < n; i++)
		d[i] = char('a' + (i * 7 + i / 251) % 26);
	return d;
}

TEST_CASE("net: a message larger than max_payload goes in parts, queued whole and once")
{
	BigSetup s;
	std::string data = pattern(60000);
	std::vector<FabricMsg> parts;
	Op o = send_remote(s.a, s.cli, s.rbig, data);
	/* Every NATS message fits the server: the REQ went in W_PARTs. */
	CHECK(s.a.fab->refused == 0);
	for (auto &m : s.a.out) {
		CHECK(m.data.size() <= 4096);
		CHECK(frame(m).kind == W_PART);
		parts.push_back(m);
	}
	REQUIRE(parts.size() == (60000 + 176 + 3919) / 3920);
	/* All but the last: nothing queued, its bytes held and charged. */
	s.pump([&](const FabricMsg &m) {
		return !(is(m, W_PART) && frame(m).target == frame(parts.back()).target);
	});
	CHECK(!o.done());
	CHECK(s.nbig() == 0);
	CHECK(s.held() == 60000 + 176 + s.kept + s.proxy); /* (the open's answer) */
	/* The last, then every part again and out of order (a retransmission
	 * after a reconnect): queued once, whole; nothing held but its kept
	 * answer. */
	s.b.in.push_back(parts.back());
	s.b.deliver();
	CHECK(s.nbig() == 1);
	CHECK(s.held() == s.kept + s.proxy);
	for (auto it = parts.rbegin(); it != parts.rend(); ++it)
		s.b.in.push_back(*it);
	s.b.deliver();
	s.pump();
	REQUIRE(o.done());
	CHECK(o.res() == 0);
	CHECK(s.nbig() == 1);
	CHECK(s.held() == s.kept + s.proxy);
	Op r = s.srv.mbox_receive(s.big, 65536);
	REQUIRE(r.done());
	CHECK(r.text() == data);
}

TEST_CASE("net: a reply larger than max_payload comes back in parts, into the caller's buffer")
{
	BigSetup s;
	std::string reply = pattern(50000);
	kipc_sqe c{};
	uint64_t rbuf = s.cli.mem.alloc(65536);
	__kipc_enc_call(&c, KIPC_SYS_mbox_call, s.rbig, s.cli.put("q"), 1, rbuf, 65536, 0, 0);
	Op call = via(s.a, s.cli, c, rbuf, 65536);
	s.pump();
	Op q = s.srv.mbox_receive(s.big);
	REQUIRE(q.done());
	CHECK(s.srv.reply(q.cqe().token, reply) == 0);
	std::vector<FabricMsg> parts = s.b.out;
	REQUIRE(parts.size() > 1);
	for (auto &m : parts) {
		CHECK(m.data.size() <= 4096);
		CHECK(frame(m).kind == W_PART);
	}
	/* Half of it: the call still waits. */
	s.b.out.clear();
	for (size_t i = 0; i < parts.size() / 2; i++)
		s.a.in.push_back(parts[i]);
	s.a.deliver();
	CHECK(!call.done());
	for (size_t i = parts.size() / 2; i < parts.size(); i++)
		s.a.in.push_back(parts[i]);
	s.a.deliver();
	REQUIRE(call.done());
	CHECK(call.res() == int64_t(reply.size()));
	CHECK(std::string(reinterpret_cast<char *>(s.cli.mem.arena.data() + rbuf), reply.size()) ==
	      reply);
	/* Late parts of it (a duplicate RES) change nothing. */
	size_t ncq = s.cli.cq.size();
	for (auto &m : parts)
		s.a.in.push_back(m);
	s.a.deliver();
	CHECK(s.cli.cq.size() == ncq);
}

TEST_CASE("net: servers with different max_payload: each node sends what both carry")
{
	BigSetup s(1 << 20, 8192); /* the home's server carries 8 KiB */
	std::string data = pattern(30000);
	Op o = send_remote(s.a, s.cli, s.rbig, data);
	for (auto &m : s.a.out)
		CHECK(m.data.size() <= 8192); /* b's, which a learnt from its answers */
	s.pump();
	CHECK(s.b.fab->refused == 0);
	REQUIRE(o.done());
	CHECK(o.res() == 0);
	Op r = s.srv.mbox_receive(s.big, 65536);
	REQUIRE(r.done());
	CHECK(r.text() == data);
}

TEST_CASE("net: parts that stop coming are dropped after net_timeout_ms: nothing queued, uncharged")
{
	BigSetup s;
	std::string data = pattern(40000);
	Op o = send_remote(s.a, s.cli, s.rbig, data);
	uint64_t last = 0;
	for (auto &m : s.a.out)
		last = std::max<uint64_t>(last, uint64_t(frame(m).target));
	/* The origin's retransmissions lose the last part too (its kipcd
	 * died mid-message, the link is cut ...). */
	auto lose_last = [&](const FabricMsg &m) {
		return !(is(m, W_PART) && uint64_t(frame(m).target) == last);
	};
	s.pump(lose_last);
	CHECK(s.held() == 40000 + 176 + s.kept + s.proxy);
	for (int ms = 0; ms < 1100 && !o.done(); ms += 50) {
		s.advance_ms(50);
		s.pump(lose_last);
	}
	/* Sent, never answered: ENOLINK, outcome unknown (it was not run). */
	REQUIRE(o.done());
	CHECK(o.res() == -ENOLINK);
	s.advance_ms(1000);
	CHECK(s.held() == s.kept); /* the parts went; the open's answer stays */
	kipc_net_stat st{};
	uint64_t sb = s.srv.mem.alloc(sizeof st);
	kipc_sqe q{};
	q.opcode = KIPC_SYS_net_stat;
	q.addr2 = sb;
	q.len2 = sizeof st;
	Op so = via(s.b, s.srv, q);
	REQUIRE(so.done());
	memcpy(&st, s.srv.mem.arena.data() + sb, sizeof st);
	CHECK(st.partial_bytes == 0);
	CHECK(s.nbig() == 0);
}

TEST_CASE("net: a hostile node's parts are charged to the mapped uid and bounded")
{
	BigSetup s;
	/* net_origin_share 50: z may hold 350000 bytes of 65534's 700000. */
	kipc::CoreTestAccess::limits(s.b.w.k->impl()).bytes_per_user = 700000;
	/* Node z streams parts of requests that never finish: the first part
	 * of each, 100000 bytes announced. */
	auto part = [&](uint64_t seq, uint32_t total) {
		Wire w{};
		w.kind = W_PART;
		w.prio = W_REQ;
		w.epoch = 9;
		w.peer_epoch = s.b_epoch;
		w.seq = seq;
		w.op = KIPC_SYS_mbox_send;
		w.pid = 300;
		w.uid = 0; /* claims root: not shared at b, runs as 65534 */
		w.len2 = total;
		std::string d(3000, 'z');
		s.b.in.push_back({"kipc.b.req.z", encode(w, d.data(), uint32_t(d.size()))});
		s.b.deliver();
	};
	part(1, 100000);
	part(2, 100000);
	part(3, 100000);
	CHECK(s.held() == 300000 + s.kept + s.proxy);
	CHECK(s.b.w.k->impl().user(0).host_bytes == 0);
	s.b.out.clear();
	part(4, 100000); /* over its share of the mapped uid's bytes_per_user: ENOSPC, kept */
	REQUIRE(s.b.out.size() == 1);
	Wire r = frame(s.b.out[0]);
	CHECK(r.kind == W_RES);
	CHECK(r.seq == 4);
	CHECK(r.cqe.res == -ENOSPC);
	CHECK(s.held() == 300000 + 176 + s.kept + s.proxy);
	/* They time out, uncharged; the answer kept for 4's retransmissions
	 * stays until z has been silent for twice net_timeout_ms. */
	for (int i = 0; i < 25; i++)
		s.advance_ms(50);
	CHECK(s.held() == 176 + s.kept);
	for (int i = 0; i < 20; i++)
		s.advance_ms(50);
	CHECK(s.held() == 0);
	/* Malformed parts are dropped: a total below the split size, one
	 * past its end, a kind that is not REQ. */
	s.b.out.clear();
	part(5, 1000);
	CHECK(s.held() == 0);
	CHECK(s.b.out.empty());
	CHECK(s.nbig() == 0);
}


/* The name of a net record: its own 31 bytes, then its NETNAMEs' (trace.h). */
static std::string joined(const std::vector<kipc_trace_event> &v, size_t i, size_t *next)
{
	kipc_trace_net n;
	memcpy(&n, &v[i], sizeof n);
	std::string name(n.name, strnlen(n.name, sizeof n.name));
	bool more = n.flags & KIPC_TRACE_F_MORE;
	for (i++; more && i < v.size() && v[i].event == KIPC_TRACE_NETNAME; i++) {
		kipc_trace_name x;
		memcpy(&x, &v[i], sizeof x);
		CHECK(x.pid == n.pid);
		CHECK(x.mbox == n.mbox);
		name.append(x.text, strnlen(x.text, sizeof x.text));
		more = x.flags & KIPC_TRACE_F_MORE;
	}
	CHECK(!more); /* the last NETNAME said so */
	*next = i;
	return name;
}

TEST_CASE("net: trace names longer than 31 bytes come whole, in NETNAMEs after their record")
{
	/* A longest node name and a mailbox name of 200 bytes. */
	std::string node(KIPC_NET_NODE_MAX, 'n');
	std::string mbox = "/" + std::string(199, 'm');
	Side a("a");
	Proc &cli = a.w.spawn(200, 0, 0);
	Proc &tr = a.w.spawn(201, 0, 0);
	REQUIRE(kt::trace_open(tr) == 0);
	Op o = open_remote(a, cli, "/net/" + node + mbox);
	CHECK(!o.done()); /* held: it says hello first */
	auto v = kt::drain_events(tr);
	std::string want = node + ":" + mbox; /* 232 bytes */
	size_t i = 0;
	while (i < v.size() && v[i].event != KIPC_TRACE_NETSEND)
		i++;
	REQUIRE(i < v.size());
	kipc_trace_net n;
	memcpy(&n, &v[i], sizeof n);
	CHECK((n.flags & KIPC_TRACE_F_TRUNC)); /* cut here (old readers: "...") */
	size_t next = 0;
	CHECK(joined(v, i, &next) == want);
	CHECK(next - i == 1 + (want.size() - 31 + 47) / 48); /* 5 NETNAMEs */
	/* A listener that does not take NETSEND gets none of its NETNAMEs;
	 * one filtered by pid gets them with the record. */
	REQUIRE(kt::trace_close(tr) == 0);
	kipc_trace_attr only{};
	only.events = KIPC_TRACE_MASK(KIPC_TRACE_ATTACH);
	REQUIRE(kt::trace_open(tr, &only) == 0);
	Proc &tr2 = a.w.spawn(202, 0, 0);
	kipc_trace_attr mine{};
	mine.pid = 200;
	REQUIRE(kt::trace_open(tr2, &mine) == 0);
	Op o2 = open_remote(a, cli, "/net/" + node + mbox);
	(void)o2;
	for (auto &e : kt::drain_events(tr))
		CHECK((e.event != KIPC_TRACE_NETNAME && e.event != KIPC_TRACE_NETSEND));
	v = kt::drain_events(tr2);
	i = 0;
	while (i < v.size() && v[i].event != KIPC_TRACE_NETSEND)
		i++;
	REQUIRE(i < v.size());
	CHECK(joined(v, i, &next) == want);
	/* A name that fits has no NETNAME. */
	Op o3 = open_remote(a, cli, "/net/b/short");
	(void)o3;
	v = kt::drain_events(tr2);
	for (auto &e : v)
		CHECK(e.event != KIPC_TRACE_NETNAME);
}

/* ---- what the kernel holds for a user across nodes is charged to it ---- */

TEST_CASE("net: an origin's copy of a request is charged to its caller, released on every path")
{
	Setup s;
	auto host = [&](uid_t uid = 0) { return s.a.w.k->impl().user(uid).host_bytes; };
	CHECK(host() == 0);
	/* Held for retransmission until answered: its header and data. */
	Op o = send_remote(s.a, s.cli, s.rid, "twelve bytes");
	CHECK(host() == 176 + 12);
	s.pump();
	REQUIRE(o.done());
	CHECK(o.res() == 0);
	CHECK(host() == 0);
	/* A call whose reply may come in parts: room for that RES too. */
	kipc_sqe c{};
	uint64_t rbuf = s.cli.mem.alloc(65536);
	__kipc_enc_call(&c, KIPC_SYS_mbox_call, s.rid, s.cli.put("q"), 1, rbuf, 65536, 0, 0);
	Op call = via(s.a, s.cli, c, rbuf, 65536);
	CHECK(host() == 176 + 1 + 176 + 65536);
	/* ... a small reply buffer always fits one NATS message: none. */
	__kipc_enc_call(&c, KIPC_SYS_mbox_call, s.rid, s.cli.put("q"), 1, rbuf, 256, 0, 0);
	Op small = via(s.a, s.cli, c, rbuf, 256);
	CHECK(host() == 176 + 1 + 176 + 65536 + 176 + 1);
	/* The answer never comes: released at the timeout (ENOLINK). */
	s.a.out.clear();
	for (int ms = 0; ms < 1200 && !(call.done() && small.done()); ms += 50) {
		s.a.w.advance_ms(50);
		s.a.tick();
		s.a.out.clear();
	}
	REQUIRE(call.done());
	CHECK(call.res() == -ENOLINK);
	CHECK(host() == 0);
	/* Its caller exits: released with its requests. */
	Op gone = send_remote(s.a, s.cli, s.rid, "bye");
	CHECK(host() == 176 + 3);
	s.a.net->task_exit(&s.cli);
	CHECK(!gone.done()); /* nobody to complete it for */
	CHECK(host() == 0);
	s.pump();
	/* Beyond its bytes_per_user: ENOSPC at once, nothing published. */
	Proc &u = s.a.w.spawn(201, 1500, 1500);
	Op op = open_remote(s.a, u, "/net/b/box");
	s.pump();
	REQUIRE(op.done());
	int64_t rid = op.res();
	for (;;) { /* room at the home for what follows */
		Op r = s.srv.mbox_receive(s.box, 65536, KIPC_F_NONBLOCK);
		REQUIRE(r.done());
		if (r.res() < 0)
			break;
	}
	kipc::CoreTestAccess::limits(s.a.w.k->impl()).bytes_per_user = 2000;
	Op fits = send_remote(s.a, u, rid, std::string(1000, 'x'));
	CHECK(host(1500) == 1176);
	std::vector<FabricMsg> sent;
	sent.swap(s.a.out);
	Op over = send_remote(s.a, u, rid, std::string(1000, 'y'));
	REQUIRE(over.done());
	CHECK(over.res() == -ENOSPC);
	CHECK(s.a.out.empty());
	CHECK(host(1500) == 1176);
	s.a.out.swap(sent);
	s.pump();
	REQUIRE(fits.done());
	CHECK(fits.res() == 0);
	CHECK(host(1500) == 0);
	/* A clean stop gives back what is still held. */
	Op last = send_remote(s.a, u, rid, "x");
	CHECK(host(1500) == 177);
	CHECK(!last.done());
	s.a.stop();
	CHECK(host(1500) == 0);
}

TEST_CASE("net: held requests and reply buffers at the home are charged to the mapped uid")
{
	Setup s(1);
	auto held = [&](uid_t uid = 65534) { return s.b.w.k->impl().user(uid).host_bytes; };
	/* What b holds for z: each request's answer, kept for its
	 * retransmissions (a header, K), and what is listed; a's (the answer
	 * to its open, K) is held for 65534 too; so is each proxy's room for
	 * its entry once it ends (E: a's, z's 300, later 301). */
	constexpr uint64_t K = 176, E = kEndedBytes;
	auto inject = [&](Wire w, const std::string &d) {
		if (w.order_low == w.seq)
			w.order_low = 1; /* (req_frame's) it waits for all of them */
		s.b.in.push_back({"kipc.b.req.z", encode(w, d.data(), uint32_t(d.size()))});
		s.b.deliver();
	};
	Wire hi{};
	hi.kind = W_PROBE;
	hi.epoch = 9;
	inject(hi, "");
	uint64_t home = frame(s.b.out.at(0)).epoch;
	s.b.out.clear();
	/* Node z's task 300 sends orders 2 and 3 before 1: held for their
	 * turn, copies charged to the uid it runs as here (65534). */
	Wire w2 = req_frame(9, home, 2, KIPC_SYS_mbox_send, 300, s.box);
	inject(w2, std::string(500, '2'));
	CHECK(held() == 2 * E + K + K + 176 + 500);
	/* A forger's second request of order 2: EINVAL, nothing held but
	 * its answer. */
	Wire dup = req_frame(9, home, 7, KIPC_SYS_mbox_send, 300, s.box);
	dup.order = 2;
	inject(dup, std::string(800, 'd'));
	REQUIRE(!s.b.out.empty());
	CHECK(frame(s.b.out.back()).seq == 7);
	CHECK(frame(s.b.out.back()).cqe.res == -EINVAL);
	CHECK(held() == 2 * E + K + 2 * K + 176 + 500);
	/* Beyond what z may hold (its share, half of bytes_per_user: 1500),
	 * order 3's copy is refused ENOSPC at once (its answer fits). */
	kipc::CoreTestAccess::limits(s.b.w.k->impl()).bytes_per_user = 3000;
	s.b.out.clear();
	Wire w3 = req_frame(9, home, 3, KIPC_SYS_mbox_send, 300, s.box);
	inject(w3, std::string(600, '3'));
	REQUIRE(!s.b.out.empty());
	CHECK(frame(s.b.out.back()).seq == 3);
	CHECK(frame(s.b.out.back()).cqe.res == -ENOSPC);
	CHECK(held() == 2 * E + K + 3 * K + 176 + 500);
	/* Order 1 comes: 1 and 2 run (2 waits for room), 3's turn is
	 * skipped, 4 runs after them; nothing held but what the core keeps
	 * and the answers (1, 3, 7 kept, 2's to come). */
	kipc::CoreTestAccess::limits(s.b.w.k->impl()).bytes_per_user = 819200;
	Wire w1 = req_frame(9, home, 1, KIPC_SYS_mbox_send, 300, s.box);
	inject(w1, "1");
	CHECK(held() == 2 * E + K + 4 * K);
	CHECK(s.nmsg() == 1);
	CHECK(s.nsenders() == 1);
	Wire w4 = req_frame(9, home, 4, KIPC_SYS_mbox_call, 300, s.box);
	w4.len2 = 60000;
	inject(w4, "4");
	/* 4 runs (parks behind 2): its reply buffer here is charged until
	 * its RES, then what the kept RES takes. */
	CHECK(held() == 2 * E + K + 4 * K + 176 + 60000);
	Op r1 = s.srv.mbox_receive(s.box, 1024);
	REQUIRE(r1.done());
	CHECK(r1.text() == "1");
	Op r2 = s.srv.mbox_receive(s.box, 1024);
	REQUIRE(r2.done());
	CHECK(r2.text() == std::string(500, '2'));
	Op r4 = s.srv.mbox_receive(s.box, 1024);
	REQUIRE(r4.done());
	CHECK(r4.text() == "4");
	CHECK(s.srv.reply(r4.cqe().token, "answer") == 0);
	CHECK(held() == 2 * E + K + 4 * K + 176 + 6);
	/* The origin's low-water mark passes them: forgotten, uncharged
	 * (7's and 5's answers stay). */
	Wire w5 = req_frame(9, home, 5, KIPC_SYS_mbox_send, 300, s.box);
	w5.low = 5;
	inject(w5, "5");
	CHECK(held() == 2 * E + K + 2 * K);
	/* Held copies and a parked call's buffer go with the node: z's
	 * task parks a call and holds a request, then z falls silent. */
	Wire w7 = req_frame(9, home, 8, KIPC_SYS_mbox_send, 300, s.box);
	w7.order = 7;
	w7.low = 5;
	inject(w7, std::string(100, '7'));
	Wire w6 = req_frame(9, home, 6, KIPC_SYS_mbox_call, 301, s.box);
	w6.low = 5;
	w6.order = w6.order_low = 1;
	w6.len2 = 30000;
	inject(w6, "6");
	CHECK(held() == 3 * E + K + 2 * K + K + 176 + 100 + K + 30000);
	for (int i = 0; i < 25; i++) {
		s.b.w.advance_ms(50);
		s.b.tick();
	}
	/* The proxies ended (silent): the answers (8's and the call's
	 * ENOLINK, for a late retransmission) are all that stays, until they
	 * are forgotten. */
	CHECK(held() == K + 4 * K);
	for (int i = 0; i < 25; i++) {
		s.b.w.advance_ms(50);
		s.b.tick();
	}
	CHECK(held() == 0);
}

TEST_CASE("net: the fabric checks each node once, when it is first named or heard from")
{
	Setup s; /* a opened /net/b/box: it named b, and b heard from a */
	CHECK(s.a.fab->checks == std::vector<std::string>{"b"});
	CHECK(s.b.fab->checks == std::vector<std::string>{"a"});
	/* More traffic, another name for the same node: no new check. */
	Op o = send_remote(s.a, s.cli, s.rid, "x");
	s.pump();
	REQUIRE(o.done());
	CHECK(node_ix(s.a, s.cli, "b") > 0);
	CHECK(s.a.fab->checks.size() == 1);
	/* A node named here (net_node), one heard from (a hello of z): both
	 * checked, once; a subject with a bad name is dropped before. */
	CHECK(node_ix(s.a, s.cli, "c") > 0);
	CHECK(node_ix(s.a, s.cli, "c") > 0);
	Wire hi{};
	hi.kind = W_PROBE;
	hi.epoch = 9;
	for (const char *subj : {"kipc.b.req.z", "kipc.b.req.z", "kipc.b.req.Z!"})
		s.b.in.push_back({subj, encode(hi, nullptr, 0)});
	s.b.deliver();
	CHECK(s.a.fab->checks == std::vector<std::string>{"b", "c"});
	CHECK(s.b.fab->checks == std::vector<std::string>{"a", "z"});
}

TEST_CASE("net: a request in parts is retransmitted without the parts its home said it has")
{
	BigSetup s;
	std::string data = pattern(60000);
	Op o = send_remote(s.a, s.cli, s.rbig, data);
	auto at = [](const FabricMsg &m) { return uint64_t(frame(m).target); };
	REQUIRE(s.a.out.size() == 16);
	uint64_t lost[2] = {at(s.a.out[3]), at(s.a.out[9])};
	auto lose = [&](const FabricMsg &m) {
		return !(is(m, W_PART) && (at(m) == lost[0] || at(m) == lost[1]));
	};
	s.pump(lose);
	CHECK(s.nbig() == 0);
	CHECK(s.held() == 60000 + 176 + s.kept + s.proxy);
	/* A tick after its parts paused, the home says what it has. */
	s.advance_ms(30);
	REQUIRE(s.b.out.size() == 1);
	Wire h = frame(s.b.out[0]);
	CHECK(h.kind == W_HAVE);
	CHECK(h.datalen == 3 * 8); /* three runs around the two holes */
	s.pump();
	/* The retransmission: the first part (answered as one) and the two
	 * missing; once, whole. */
	s.advance_ms(80);
	std::vector<uint64_t> sent;
	for (auto &m : s.a.out)
		if (is(m, W_PART))
			sent.push_back(at(m));
	CHECK(sent == std::vector<uint64_t>{0, lost[0], lost[1]});
	kipc_net_stat st{};
	uint64_t sb = s.cli.mem.alloc(sizeof st);
	kipc_sqe q{};
	q.opcode = KIPC_SYS_net_stat;
	q.addr2 = sb;
	q.len2 = sizeof st;
	REQUIRE(via(s.a, s.cli, q).done());
	memcpy(&st, s.cli.mem.arena.data() + sb, sizeof st);
	CHECK(st.nparts == 16 + 3);
	s.pump();
	REQUIRE(o.done());
	CHECK(o.res() == 0);
	CHECK(s.nbig() == 1);
	CHECK(s.held() == s.kept + s.proxy);
	Op r = s.srv.mbox_receive(s.big, 65536);
	REQUIRE(r.done());
	CHECK(r.text() == data);
}

TEST_CASE("net: a HAVE that does not describe the request is dropped: every part goes again")
{
	BigSetup s;
	std::string data = pattern(60000);
	Op o = send_remote(s.a, s.cli, s.rbig, data);
	uint64_t seq = frame(s.a.out[0]).seq;
	uint32_t size = 60000 + 176;
	s.a.out.clear(); /* all lost */
	auto have = [&](const char *subject, uint32_t len2, std::vector<uint32_t> r) {
		Wire w{};
		w.kind = W_HAVE;
		w.epoch = s.b_epoch;
		w.peer_epoch = s.a_epoch;
		w.seq = seq;
		w.len2 = len2;
		s.a.in.push_back({subject, encode(w, r.data(), uint32_t(r.size() * 4))});
		s.a.deliver();
	};
	have("kipc.a.rsp.b", size + 1, {0, 100});          /* another frame's size */
	have("kipc.a.rsp.b", size, {0, size + 1});         /* beyond it */
	have("kipc.a.rsp.b", size, {500, 100});            /* backwards */
	have("kipc.a.rsp.b", size, {0, 100, 100, 200});    /* not apart */
	have("kipc.a.rsp.b", size, {0, 100, 300});         /* half a range */
	have("kipc.a.rsp.c", size, {0, size});             /* a node a never asked */
	CHECK(s.a.out.empty());
	s.advance_ms(110);
	size_t parts = 0;
	for (auto &m : s.a.out)
		parts += is(m, W_PART);
	CHECK(parts == 16);
	s.pump();
	REQUIRE(o.done());
	CHECK(o.res() == 0);
	CHECK(s.nbig() == 1);
}

TEST_CASE("net: the answers a home keeps for retransmissions are charged; a hostile node holds no more")
{
	Setup s(64);
	auto held = [&](uid_t uid = 65534) { return s.b.w.k->impl().user(uid).host_bytes; };
	constexpr uint64_t K = 176; /* one kept answer: a header */
	constexpr uint64_t E = kEndedBytes; /* a proxy's room for its entry once it ends */
	uint64_t a_kept = held();   /* a's (the answer to its open, its proxy's E) */
	CHECK(a_kept == K + E);
	Wire hi{};
	hi.kind = W_PROBE;
	hi.epoch = 9;
	s.b.in.push_back({"kipc.b.req.z", encode(hi, nullptr, 0)});
	s.b.deliver();
	uint64_t home = frame(s.b.out.at(0)).epoch;
	/* Node z never lets its low-water mark move: every plain send's
	 * answer is kept, charged to the uid its caller runs as (65534),
	 * up to z's share of its bytes_per_user (50%: 2000 bytes). */
	kipc::CoreTestAccess::limits(s.b.w.k->impl()).bytes_per_user = 4000;
	auto send = [&](uint64_t seq, uint64_t low) {
		Wire w = req_frame(9, home, seq, KIPC_SYS_mbox_send, 300, s.box);
		w.low = low;
		std::string d = std::to_string(seq);
		s.b.out.clear();
		s.b.in.push_back({"kipc.b.req.z", encode(w, d.data(), uint32_t(d.size()))});
		s.b.deliver();
		REQUIRE(s.b.out.size() == 1);
		return frame(s.b.out[0]);
	};
	for (uint64_t seq = 1; seq <= 11; seq++) {
		Wire r = send(seq, 1);
		CHECK(r.kind == W_RES);
		CHECK(r.cqe.res == 0);
		Op m = s.srv.mbox_receive(s.box, 64);
		REQUIRE(m.done());
		CHECK(m.text() == std::to_string(seq));
		CHECK(held() == a_kept + E + seq * K);
	}
	/* The 12th's answer does not fit: ENOSPC, not run, not kept. */
	for (int again = 0; again < 2; again++) {
		Wire r = send(12, 1);
		CHECK(r.kind == W_RES);
		CHECK(r.seq == 12);
		CHECK(r.cqe.res == -ENOSPC);
		CHECK(s.nmsg() == 0);
		CHECK(held() == a_kept + E + 11 * K);
	}
	/* Meanwhile an honest node's callers still have room: a's send
	 * crosses (its answer is a's share). */
	s.b.out.clear(); /* (z's) */
	Op o = send_remote(s.a, s.cli, s.rid, "honest");
	s.pump();
	REQUIRE(o.done());
	CHECK(o.res() == 0);
	Op m = s.srv.mbox_receive(s.box, 64);
	REQUIRE(m.done());
	CHECK(m.text() == "honest");
	/* z's low-water mark moves past 1-11: they are forgotten,
	 * uncharged, and 12 runs, once. */
	uint64_t before = held();
	Wire r = send(12, 12);
	CHECK(r.cqe.res == 0);
	CHECK(held() == before - 11 * K + K);
	CHECK(s.nmsg() == 1);
	r = send(12, 12); /* its retransmission: the kept answer, not run again */
	CHECK(r.cqe.res == 0);
	CHECK(s.nmsg() == 1);
	Op m12 = s.srv.mbox_receive(s.box, 64);
	REQUIRE(m12.done());
	CHECK(m12.text() == "12");
	/* z falls silent: after twice net_timeout_ms what is kept for it goes. */
	for (int i = 0; i < 45; i++) {
		s.b.w.advance_ms(50);
		s.b.tick();
	}
	CHECK(held() == 0);
}

/*
 * Node `node` starts requests of 50000 bytes in parts (its caller of
 * uid uid) and never ends them, until b refuses one ENOSPC: how many b
 * took (at most 16).
 */
template <typename S> int hostile_parts(S &s, const std::string &node, uint32_t uid)
{
	int taken = 0;
	for (uint64_t seq = 1; seq <= 16; seq++) {
		Wire w{};
		w.kind = W_PART;
		w.prio = W_REQ;
		w.epoch = 9;
		w.peer_epoch = s.b_epoch;
		w.seq = seq;
		w.op = KIPC_SYS_mbox_send;
		w.pid = 300;
		w.uid = uid;
		w.len2 = 50000;
		std::string d(3000, 'z');
		s.b.out.clear();
		s.b.in.push_back({"kipc.b.req." + node, encode(w, d.data(), uint32_t(d.size()))});
		s.b.deliver();
		if (!s.b.out.empty()) {
			CHECK(frame(s.b.out[0]).cqe.res == -ENOSPC);
			break;
		}
		taken++;
	}
	return taken;
}

TEST_CASE("net: one origin cannot use up what the other origins' callers may hold at a home")
{
	BigSetup s;
	/* 65534's bytes_per_user at b is 400000; an origin may hold half. */
	kipc::CoreTestAccess::limits(s.b.w.k->impl()).bytes_per_user = 400000;
	/* Hostile node z starts requests of 50000 bytes in parts and never
	 * ends them, as many as b takes (without a share: all of it). */
	int taken = hostile_parts(s, "z", 0);
	CHECK(taken == 4);
	CHECK(s.held() == 200000 + s.kept + s.proxy);
	/* Honest node a's callers (also 65534 at b) still send and call,
	 * in parts, whole and once. */
	s.b.out.clear(); /* (z's) */
	std::string data = pattern(60000);
	Op o = send_remote(s.a, s.cli, s.rbig, data);
	s.pump();
	REQUIRE(o.done());
	CHECK(o.res() == 0);
	Op r = s.srv.mbox_receive(s.big, 65536);
	REQUIRE(r.done());
	CHECK(r.text() == data);
	kipc_sqe c{};
	uint64_t rbuf = s.cli.mem.alloc(65536);
	__kipc_enc_call(&c, KIPC_SYS_mbox_call, s.rbig, s.cli.put("q"), 1, rbuf, 65536, 0, 0);
	Op call = via(s.a, s.cli, c, rbuf, 65536);
	s.pump();
	Op q = s.srv.mbox_receive(s.big);
	REQUIRE(q.done());
	std::string reply = pattern(50000);
	CHECK(s.srv.reply(q.cqe().token, reply) == 0);
	s.pump();
	REQUIRE(call.done());
	CHECK(call.res() == int64_t(reply.size()));
	CHECK(std::string(reinterpret_cast<char *>(s.cli.mem.arena.data() + rbuf), reply.size()) ==
	      reply);
	CHECK(s.held() == 200000 + 176 + reply.size() + s.proxy); /* z's, and the call's kept answer */
}

TEST_CASE("net: a reply in parts that lost a part has only that part sent again, exactly")
{
	BigSetup s;
	std::string reply = pattern(50000);
	kipc_sqe c{};
	uint64_t rbuf = s.cli.mem.alloc(65536);
	__kipc_enc_call(&c, KIPC_SYS_mbox_call, s.rbig, s.cli.put("q"), 1, rbuf, 65536, 0, 0);
	Op call = via(s.a, s.cli, c, rbuf, 65536);
	s.pump();
	Op q = s.srv.mbox_receive(s.big);
	REQUIRE(q.done());
	CHECK(s.srv.reply(q.cqe().token, reply) == 0);
	std::vector<FabricMsg> parts;
	parts.swap(s.b.out);
	REQUIRE(parts.size() == (50000 + 176 + 3919) / 3920);
	uint64_t lost = uint64_t(frame(parts[5]).target);
	for (size_t i = 0; i < parts.size(); i++)
		if (i != 5)
			s.a.in.push_back(parts[i]);
	s.a.deliver();
	CHECK(!call.done());
	/* A HAVE that does not describe the kept RES is dropped by b:
	 * another size, a seq b never ran, ranges past its end. */
	uint32_t size = uint32_t(50000 + 176);
	auto have = [&](uint64_t seq, uint32_t len2, std::vector<uint32_t> r) {
		Wire w{};
		w.kind = W_HAVE;
		w.epoch = s.a_epoch;
		w.peer_epoch = s.b_epoch;
		w.seq = seq;
		w.len2 = len2;
		s.b.in.push_back({"kipc.b.req.a", encode(w, r.data(), uint32_t(r.size() * 4))});
		s.b.deliver();
	};
	uint64_t seq = frame(parts[0]).seq;
	have(seq, size + 1, {0, 100});
	have(seq + 100, size, {0, 100});
	have(seq, size, {0, size + 1});
	CHECK(s.b.out.empty());
	/* A tick after its parts paused, a says what it has: b sends the lost
	 * part, and only it. */
	s.a.w.advance_ms(30);
	s.a.tick();
	REQUIRE(s.a.out.size() == 1);
	Wire h = frame(s.a.out[0]);
	CHECK(h.kind == W_HAVE);
	CHECK(h.seq == seq);
	CHECK(h.datalen == 2 * 8); /* two runs around the hole */
	s.b.in.swap(s.a.out);
	s.b.deliver();
	REQUIRE(s.b.out.size() == 1);
	Wire p = frame(s.b.out[0]);
	CHECK(p.kind == W_PART);
	CHECK(uint64_t(p.target) == lost);
	s.a.in.swap(s.b.out);
	s.a.deliver();
	REQUIRE(call.done());
	CHECK(call.res() == int64_t(reply.size()));
	CHECK(std::string(reinterpret_cast<char *>(s.cli.mem.arena.data() + rbuf), reply.size()) ==
	      reply);
	CHECK(s.a.w.k->impl().user(0).host_bytes == 0); /* the room for it went with the call */
}

TEST_CASE("net: a request waiting on another node keeps no answers at this one")
{
	Setup s(64);
	auto held = [&]() { return s.b.w.k->impl().user(65534).host_bytes; };
	/* a's caller waits on node c, which never answers (its open is
	 * held for a hello): older than what follows, it is no request of b's. */
	Op wait = open_remote(s.a, s.cli, "/net/c/box");
	s.a.out.clear();
	for (int i = 0; i < 4; i++) {
		Op o = send_remote(s.a, s.cli, s.rid, "x");
		s.pump();
		REQUIRE(o.done());
		CHECK(o.res() == 0);
		/* b keeps the answer of a's last request only. */
		CHECK(held() == 176 + kEndedBytes);
	}
	CHECK(!wait.done());
}

TEST_CASE("net: a hostile node cycling pids makes a home hold a bounded, charged amount for its ended tasks")
{
	Setup s(64);
	auto held = [&](uid_t uid = 65534) { return s.b.w.k->impl().user(uid).host_bytes; };
	constexpr uint64_t K = 176, E = kEndedBytes; /* a kept answer, an ended task */
	uint64_t a_held = held(); /* a's: its open's answer, its proxy's entry */
	CHECK(a_held == K + E);
	Wire hi{};
	hi.kind = W_PROBE;
	hi.epoch = 9;
	s.b.in.push_back({"kipc.b.req.z", encode(hi, nullptr, 0)});
	s.b.deliver();
	uint64_t home = frame(s.b.out.at(0)).epoch;
	/* z's share of net_uid: 50% of 4000 bytes. */
	kipc::CoreTestAccess::limits(s.b.w.k->impl()).bytes_per_user = 4000;
	auto send = [&](uint64_t seq, uint64_t low, int32_t pid, uint64_t inc, uint32_t order,
			uint8_t op = KIPC_SYS_mbox_send) {
		Wire w = req_frame(9, home, seq, op, pid, s.box);
		w.low = low;
		w.inc = inc;
		w.order = order;
		w.order_low = op == OP_EXIT ? order : 1;
		std::string d = op == OP_EXIT ? "" : std::to_string(seq);
		s.b.out.clear();
		s.b.in.push_back({"kipc.b.req.z", encode(w, d.data(), uint32_t(d.size()))});
		s.b.deliver();
		REQUIRE(s.b.out.size() == 1);
		Wire r = frame(s.b.out[0]);
		CHECK(r.kind == W_RES);
		CHECK(r.seq == seq);
		return r;
	};
	/* z never lets its low-water mark move and runs each task once: a
	 * send (order 1), its exit (order 3, order 2 given up), then order 2
	 * comes late. Each ended task is charged, with its answers. */
	uint32_t n = 0, sent = 0;
	for (;; n++) {
		uint64_t seq = 3 * n + 1;
		int32_t pid = int32_t(300 + n);
		Wire r = send(seq, 1, pid, seq, 1);
		if (r.cqe.res)
			break;
		sent++;
		CHECK(send(seq + 2, 1, pid, seq, 3, OP_EXIT).cqe.res == 0);
		/* The late one of that task: ESRCH, not run, though its
		 * proxy is gone (its entry says so). */
		CHECK(send(seq + 1, 1, pid, seq, 2).cqe.res == -ESRCH);
		CHECK(s.nmsg() == sent);
		CHECK(held() == a_held + (n + 1) * (3 * K + E));
		REQUIRE(n < 100);
	}
	/* Bounded: what it holds stays within its share; the refused task
	 * did not run. */
	CHECK(n == 3);
	CHECK(s.nmsg() == sent);
	uint64_t z_held = held() - a_held;
	CHECK(z_held <= 2000);
	CHECK(z_held == n * (3 * K + E) + E); /* (the refused one's proxy lives) */
	/* z's low-water mark moves past them all: the ended tasks and their
	 * answers are forgotten, uncharged; a new task runs. */
	uint64_t next = 3 * n + 10;
	CHECK(send(next, next, 900, next, 1).cqe.res == 0);
	CHECK(s.nmsg() == sent + 1);
	CHECK(held() == a_held + K + 2 * E);
	/* A late copy of an old frame of an ended task, with the low-water
	 * mark it was first sent with: below the highest one z sent, so
	 * ENOLINK, not run (its origin waits for nothing of it). */
	CHECK(send(2, 1, 300, 1, 2).cqe.res == -ENOLINK);
	CHECK(s.nmsg() == sent + 1);
	CHECK(held() == a_held + K + 2 * E);
	/* A new task with pid 900 ends the old one without an exit: its
	 * entry takes the old proxy's room; a late one of the old: ESRCH. */
	CHECK(send(next + 1, next, 900, next + 1, 1).cqe.res == 0);
	CHECK(send(next + 2, next, 900, next, 2).cqe.res == -ESRCH);
	CHECK(s.nmsg() == sent + 2);
	CHECK(held() == a_held + 3 * K + 3 * E);
	/* Both fall silent: after twice net_timeout_ms nothing is held. */
	for (int i = 0; i < 45; i++) {
		s.b.w.advance_ms(50);
		s.b.tick();
	}
	CHECK(held() == 0);
}

/*
 * The bounds of 65536 per origin. These make tens of thousands of
 * tasks or requests at the home: its core checks its invariants every
 * 4096th entry here (a walk of every task per entry is quadratic), and
 * once at the end (~World).
 */
struct BoundSetup : Setup {
	uint64_t home = 0;
	BoundSetup() : Setup(64)
	{
		kipc::KernelImpl &k = b.w.k->impl();
		kipc::CoreTestAccess::check_every(k, 4096);
		kipc::CoreTestAccess::limits(k).tasks_per_user = 2 * kMaxSeen;
		kipc::CoreTestAccess::limits(k).bytes_per_user = 64 << 20;
		Wire hi{};
		hi.kind = W_PROBE;
		hi.epoch = 9;
		b.in.push_back({"kipc.b.req.z", encode(hi, nullptr, 0)});
		b.deliver();
		home = frame(b.out.at(0)).epoch;
	}
	uint64_t held() { return b.w.k->impl().user(65534).host_bytes; }
	/* A request of node z's task pid (incarnation 1), of order order:
	 * its answer (one RES). A send to /box carries its seq. */
	Wire req(uint64_t seq, uint64_t low, int32_t pid, uint32_t order,
		 uint8_t op = KIPC_SYS_mbox_send)
	{
		Wire w = req_frame(9, home, seq, op, pid, box);
		w.low = low;
		w.order = w.order_low = order;
		std::string d = op == OP_EXIT ? "" : std::to_string(seq);
		b.out.clear();
		b.in.push_back({"kipc.b.req.z", encode(w, d.data(), uint32_t(d.size()))});
		b.deliver();
		/* (one assertion, not three: it runs 65536 times) */
		Wire r{};
		if (b.out.size() == 1)
			memcpy(&r, b.out[0].data.data(), std::min(sizeof r, b.out[0].data.size()));
		REQUIRE_MESSAGE((b.out.size() == 1 && r.kind == W_RES && r.seq == seq),
				"not one RES of seq ", seq);
		return r;
	}
	/* The one message in /box: seq's. (What this takes of the server's
	 * arena, a bump allocator, and its list of completions, searched
	 * whole by each look, is given back: 65536 of them would be
	 * quadratic.) */
	bool received(uint64_t seq)
	{
		uint64_t top = srv.mem.top;
		size_t ncq = srv.cq.size();
		Op m = srv.mbox_receive(box, 64, KIPC_F_NONBLOCK);
		bool ok = m.done() && m.res() >= 0 && m.text() == std::to_string(seq) && nmsg() == 0;
		srv.mem.top = top;
		srv.cq.resize(ncq);
		return ok;
	}
	/* Whether the home has a task for z's pid (its proxy). */
	bool has_proxy(int32_t pid)
	{
		kipc_task_info ti{};
		int64_t ix = node_ix(b, srv, "z");
		return kt::one(srv, KIPC_SYS_task_info, KIPC_NET_PID(ix, pid), &ti) == 0;
	}
	/* z falls silent: after twice net_timeout_ms nothing is held. */
	void silence()
	{
		for (int i = 0; i < 45; i++) {
			b.w.advance_ms(50);
			b.tick();
		}
	}
};

TEST_CASE("net: a home holds at most 65536 proxies and ended tasks per origin")
{
	BoundSetup s;
	constexpr uint64_t K = 176, E = kEndedBytes; /* a kept answer, an ended task */
	uint64_t a_held = s.held(); /* a's: its open's answer, its proxy's entry */
	/* 65536 tasks of z, one send each, its mark past the earlier ones:
	 * each holds its proxy's room for its entry, only the last answer
	 * is kept. */
	uint64_t seq = 0;
	uint32_t bad = 0;
	for (int32_t pid = 1000; pid < 1000 + int32_t(kMaxSeen); pid++) {
		seq++;
		Wire r = s.req(seq, seq, pid, 1);
		bad += r.cqe.res != 0 || !s.received(seq);
	}
	CHECK(bad == 0);
	CHECK(s.has_proxy(1000 + int32_t(kMaxSeen) - 1));
	CHECK(s.held() == a_held + kMaxSeen * E + K);
	/* The next new task: EAGAIN, not run, no proxy; what it holds is
	 * its refusal's answer, kept for its retransmissions. */
	int32_t late = 1000 + int32_t(kMaxSeen);
	seq++;
	CHECK(s.req(seq, seq, late, 1).cqe.res == -EAGAIN);
	CHECK(s.nmsg() == 0);
	CHECK(!s.has_proxy(late));
	CHECK(s.held() == a_held + kMaxSeen * E + K);
	CHECK(s.req(seq, seq, late, 1).cqe.res == -EAGAIN); /* its retransmission */
	CHECK(s.nmsg() == 0);
	/* The proxies that are there still run. */
	seq++;
	CHECK(s.req(seq, seq, 1000, 2).cqe.res == 0);
	CHECK(s.received(seq));
	/* Task 1000 exits: its entry takes its proxy's room, so the origin
	 * still has 65536 proxies and ended tasks: a new task is refused
	 * until z's mark passes the exit. */
	uint64_t exit_seq = ++seq;
	CHECK(s.req(exit_seq, exit_seq, 1000, 3, OP_EXIT).cqe.res == 0);
	CHECK(!s.has_proxy(1000));
	CHECK(s.held() == a_held + kMaxSeen * E + K);
	seq++;
	CHECK(s.req(seq, exit_seq, late, 1).cqe.res == -EAGAIN);
	CHECK(s.nmsg() == 0);
	CHECK(!s.has_proxy(late));
	CHECK(s.held() == a_held + kMaxSeen * E + 2 * K);
	/* The mark passes the exit: the entry is forgotten, uncharged, and
	 * the new task runs, its proxy taking the room again. */
	seq++;
	CHECK(s.req(seq, exit_seq + 1, late, 1).cqe.res == 0);
	CHECK(s.received(seq));
	CHECK(s.has_proxy(late));
	CHECK(s.held() == a_held + kMaxSeen * E + 2 * K);
	seq++;
	CHECK(s.req(seq, seq, late + 1, 1).cqe.res == -EAGAIN); /* full again */
	CHECK(s.nmsg() == 0);
	/* z falls silent: its proxies end, everything is uncharged. */
	s.silence();
	CHECK(s.held() == 0);
	CHECK(!s.has_proxy(late));
}

TEST_CASE("net: a home remembers at most 65536 ids per origin")
{
	BoundSetup s;
	constexpr uint64_t K = 176, E = kEndedBytes;
	uint64_t a_held = s.held();
	/* z never lets its mark move: every answer is kept (charged), up
	 * to 65536 of them. */
	uint32_t bad = 0;
	for (uint64_t seq = 1; seq <= kMaxSeen; seq++) {
		Wire r = s.req(seq, 1, 300, uint32_t(seq));
		bad += r.cqe.res != 0 || !s.received(seq);
	}
	CHECK(bad == 0);
	CHECK(s.held() == a_held + E + kMaxSeen * K);
	/* The next: EAGAIN, not run, not remembered (nothing more held);
	 * its retransmission is taken as new and refused again. */
	uint64_t next = kMaxSeen + 1;
	for (int again = 0; again < 2; again++) {
		CHECK(s.req(next, 1, 300, uint32_t(next)).cqe.res == -EAGAIN);
		CHECK(s.nmsg() == 0);
		CHECK(s.held() == a_held + E + kMaxSeen * K);
	}
	/* A retransmission of a remembered one still has its answer. */
	CHECK(s.req(kMaxSeen, 1, 300, uint32_t(kMaxSeen)).cqe.res == 0);
	CHECK(s.nmsg() == 0);
	/* z's mark moves past them: forgotten, uncharged; its next runs. */
	CHECK(s.req(next, next, 300, uint32_t(next)).cqe.res == 0);
	CHECK(s.received(next));
	CHECK(s.held() == a_held + E + K);
	s.silence();
	CHECK(s.held() == 0);
}

/*
 * A task's requests at the home run in the order it made them: one that
 * comes before its turn is held (a copy) until the earlier ones came.
 * What one task can make the home hold that way is bounded like a local
 * task's in-flight requests: 768 running (held or parked) per proxy.
 */
TEST_CASE("net: a home runs at most 768 requests per proxy")
{
	BoundSetup s;
	uint64_t a_held = s.held();
	/* A frame of z's task 300 (seq = order), order_low the lowest
	 * order it still waits for: the RESes it brings. */
	auto send = [&](uint32_t order, uint32_t order_low) {
		Wire w = req_frame(9, s.home, order, KIPC_SYS_mbox_send, 300, s.box);
		w.low = order_low;
		w.order = order;
		w.order_low = order_low;
		std::string d = std::to_string(order);
		s.b.out.clear();
		s.b.in.push_back({"kipc.b.req.z", encode(w, d.data(), uint32_t(d.size()))});
		s.b.deliver();
		std::vector<Wire> res;
		for (auto &m : s.b.out)
			if (is(m, W_RES))
				res.push_back(frame(m));
		return res;
	};
	auto held = [&](uint32_t from, uint32_t to, uint32_t order_low) {
		uint32_t answered = 0;
		for (uint32_t o = from; o <= to; o++)
			answered += uint32_t(send(o, order_low).size());
		return answered;
	};
	/* As many in flight as a local task may have, order 1's frame last
	 * (lost, retransmitted): 767 held, then all 768 run, in order; the
	 * mailbox (capacity 64) takes 64, the others park as its senders. */
	CHECK(held(2, kMaxRunning, 1) == 0);
	CHECK(s.nmsg() == 0);
	std::vector<Wire> r = send(1, 1);
	uint32_t ok = 0;
	for (const Wire &w : r)
		ok += w.cqe.res == 0;
	CHECK(ok == 64);
	CHECK(s.nmsg() == 64);
	CHECK(s.nsenders() == kMaxRunning - 64);
	uint32_t bad = 0;
	for (uint32_t o = 1; o <= kMaxRunning; o++) {
		Op m = s.srv.mbox_receive(s.box, 64, KIPC_F_NONBLOCK);
		bad += !(m.done() && m.res() >= 0 && m.text() == std::to_string(o));
	}
	CHECK(bad == 0);
	CHECK(s.nmsg() == 0);
	CHECK(s.nsenders() == 0);
	/* A forger goes past it: 768 held ahead of a turn it never sends;
	 * the next is refused EAGAIN at once (not run, not held), and so
	 * is the turn itself: what z holds here stays bounded. */
	uint32_t next = kMaxRunning + 1;
	CHECK(held(next + 1, next + kMaxRunning, next) == 0);
	uint64_t full = s.held();
	CHECK(full > a_held);
	for (uint32_t o : {next + kMaxRunning + 1, next}) {
		r = send(o, next);
		REQUIRE(r.size() == 1);
		CHECK(r[0].seq == o);
		CHECK(r[0].cqe.res == -EAGAIN);
		CHECK(s.held() == full);
	}
	CHECK(s.nmsg() == 0);
	/* z falls silent: its proxy ends, everything is uncharged. */
	s.silence();
	CHECK(s.held() == 0);
}

/* Forged requests of the nodes a test plays (not a: it is real). */
struct MapSetup : Setup {
	/* a and c have a uid each at b, z and y (unmapped) net_uid's */
	explicit MapSetup(const std::vector<std::string> &more = {}) : Setup(4, params(more)) {}
	static std::vector<std::string> params(std::vector<std::string> more)
	{
		more.push_back("net_origin_uids=a:3001,c:3002");
		return more;
	}
	std::map<std::string, uint64_t> seqs;
	/* A send of caller pid 300 (uid 1000 there) of node to the mailbox
	 * id at b: its answer's res. */
	int64_t forged_send(const std::string &node, int64_t id, const std::string &data,
			    uint32_t uid = 1000)
	{
		uint64_t seq = ++seqs[node];
		Wire w = req_frame(9, b_epoch, seq, KIPC_SYS_mbox_send, 300, id);
		w.low = seq; /* the earlier ones are done: b keeps no answers */
		w.uid = w.gid = uid;
		b.out.clear();
		b.in.push_back({"kipc.b.req." + node, encode(w, data.data(), uint32_t(data.size()))});
		b.deliver();
		int64_t res = 1;
		for (auto &m : b.out)
			if (is(m, W_RES) && frame(m).seq == seq)
				res = frame(m).cqe.res;
		b.out.clear(); /* (for node: pump() moves a's and b's only) */
		REQUIRE(res != 1);
		return res;
	}
	/* The uid and gid b's kernel (kipcs -t there) shows task pid with. */
	std::pair<uint32_t, uint32_t> creds_of(pid_t pid)
	{
		kipc_task_info ti{};
		REQUIRE(kt::one(srv, KIPC_SYS_task_info, pid, &ti) == 0);
		return {ti.uid, ti.gid};
	}
	uint32_t mapped_of(pid_t pid)
	{
		kipc_net_peer np{};
		kipc_sqe q{};
		uint64_t rec = srv.mem.alloc(sizeof np);
		q.opcode = KIPC_SYS_net_peer;
		q.target = pid;
		q.addr2 = rec;
		q.len2 = sizeof np;
		Op o = via(b, srv, q);
		REQUIRE(o.done());
		REQUIRE(o.res() == 0);
		memcpy(&np, srv.mem.arena.data() + rec, sizeof np);
		return np.mapped_uid;
	}
	/* A mailbox of owner uid's at b, of mode, capacity cap. */
	int64_t box_of(Proc &owner, const std::string &name, uint32_t mode, uint32_t cap = 4)
	{
		kipc_mbox_attr at{};
		at.capacity = cap;
		at.mode = mode;
		int64_t id = owner.mbox_open(name, KIPC_O_CREAT, &at);
		REQUIRE(id > 0);
		return id;
	}
	int64_t open_at_b(const std::string &name)
	{
		Op o = open_remote(a, cli, "/net/b" + name);
		pump();
		REQUIRE(o.done());
		return o.res();
	}
	int64_t send_from_a(int64_t rid, const std::string &data)
	{
		Op o = send_remote(a, cli, rid, data);
		pump();
		REQUIRE(o.done());
		return o.res();
	}
};

TEST_CASE("net: net_origin_uids: a mapped origin's callers run as its uid, for permissions too")
{
	MapSetup s;
	Proc &own = s.b.w.spawn(101, 3001, 3001);
	Proc &nobody = s.b.w.spawn(102, 65534, 65534);
	int64_t mine = s.box_of(own, "/mine", 0600);
	int64_t theirs = s.box_of(nobody, "/theirs", 0600);
	/* a's caller (root at a, not shared) is 3001 at b: 3001's 0600
	 * mailbox takes it ... */
	int64_t rmine = s.open_at_b("/mine");
	REQUIRE(KIPC_NET_IS_MBOX(rmine));
	CHECK(s.send_from_a(rmine, "from a") == 0);
	Op r = own.mbox_receive(mine);
	REQUIRE(r.done());
	CHECK(r.text() == "from a");
	pid_t pa = r.cqe().pid;
	CHECK(pa == KIPC_NET_PID(node_ix(s.b, s.srv, "a"), 200));
	/* ... as kipcs there shows it: uid and gid 3001, net_peer's too. */
	CHECK(s.creds_of(pa) == std::make_pair(3001u, 3001u));
	CHECK(s.mapped_of(pa) == 3001);
	/* ... and a mailbox of net_uid's no longer covers it. */
	CHECK(s.send_from_a(s.open_at_b("/theirs"), "from a") == -EACCES);
	/* c's callers are 3002 (not 3001), z's (unmapped) net_uid. */
	CHECK(s.forged_send("c", mine, "from c") == -EACCES);
	CHECK(s.forged_send("c", mine, "root at c", 0) == -EACCES);
	CHECK(s.forged_send("z", mine, "from z") == -EACCES);
	CHECK(s.forged_send("z", theirs, "from z") == 0);
	CHECK(s.forged_send("c", theirs, "from c") == -EACCES);
	Op rz = nobody.mbox_receive(theirs);
	REQUIRE(rz.done());
	CHECK(rz.text() == "from z");
	CHECK(s.creds_of(rz.cqe().pid) == std::make_pair(65534u, 65534u));
	CHECK(s.mapped_of(rz.cqe().pid) == 65534);
	/* A 0660 mailbox of group 3002 takes c's callers: their gid is 3002. */
	Proc &grp = s.b.w.spawn(103, 4000, 3002);
	int64_t g = s.box_of(grp, "/group", 0660);
	CHECK(s.forged_send("c", g, "from c") == 0);
	CHECK(s.forged_send("z", g, "from z") == -EACCES);
	CHECK(s.send_from_a(s.open_at_b("/group"), "from a") == -EACCES);
	CHECK(own.mbox_receive(mine, 256, KIPC_F_NONBLOCK).res() == -EAGAIN);
}

TEST_CASE("net: net_origin_uids: a mapped node filling its uid's bytes_per_user leaves the others' room")
{
	MapSetup s;
	kipc::CoreTestAccess::limits(s.b.w.k->impl()).bytes_per_user = 16384;
	Proc &own = s.b.w.spawn(101, 4000, 4000);
	int64_t flood = s.box_of(own, "/flood", 0666, 256);
	std::string data(1000, 'x');
	/* Hostile c sends until its uid (3002) holds all it may: ENOSPC. */
	int sent = 0;
	int64_t res = 0;
	while (sent < 256 && (res = s.forged_send("c", flood, data)) == 0)
		sent++;
	CHECK(res == -ENOSPC);
	CHECK(sent >= 10);
	CHECK(s.b.w.charged(3002) <= 16384);
	CHECK(s.b.w.charged(3002) + 2000 > 16384);
	CHECK(s.forged_send("c", flood, data) == -ENOSPC);
	/* a's callers (3001) and z's (net_uid) still send, all they may. */
	int64_t rflood = s.open_at_b("/flood");
	for (int i = 0; i < 5; i++)
		CHECK(s.send_from_a(rflood, data) == 0);
	for (int i = 0; i < 5; i++)
		CHECK(s.forged_send("z", flood, data) == 0);
	CHECK(s.b.w.charged(3001) > 5000);
	CHECK(s.b.w.charged(65534) > 5000);
	/* Unmapped origins still share net_uid's room: z filling it takes
	 * y's (the limit the map lifts, network.md), not a's nor c's. */
	while (s.forged_send("z", flood, data) == 0)
		;
	CHECK(s.forged_send("y", flood, data) == -ENOSPC);
	CHECK(s.send_from_a(rflood, data) == 0);
	/* c's room comes back as its messages are taken. */
	for (int i = 0; i < 3; i++)
		REQUIRE(own.mbox_receive(flood, 2048).done());
	CHECK(s.forged_send("c", flood, data) == 0);
}

TEST_CASE("net: net_origin_uids: net_origin_share bounds only what is charged to net_uid")
{
	MapSetup s;
	kipc::CoreTestAccess::limits(s.b.w.k->impl()).bytes_per_user = 400000;
	/* Requests in parts that never end: an unmapped origin (z) may hold
	 * half of net_uid's 400000 bytes; a mapped one (c) all of its own
	 * uid's, that no other node shares. */
	CHECK(hostile_parts(s, "z", 1000) == 4);
	CHECK(hostile_parts(s, "c", 1000) == 8);
	CHECK(s.b.w.k->impl().user(3002).host_bytes == 400000);
}

TEST_CASE("net: net_origin_uids: shared uids keep their uid whatever their node")
{
	MapSetup s({"net_shared_uids=2000-2999"});
	Proc &own = s.b.w.spawn(101, 2000, 2000);
	int64_t mine = s.box_of(own, "/mine", 0600);
	/* c's caller of shared uid 2000 is 2000 at b, not 3002. */
	CHECK(s.forged_send("c", mine, "2000 at c", 2000) == 0);
	Op r = own.mbox_receive(mine);
	REQUIRE(r.done());
	CHECK(s.creds_of(r.cqe().pid) == std::make_pair(2000u, 2000u));
	CHECK(s.mapped_of(r.cqe().pid) == 2000);
	/* a's, as well; a's unshared caller (root) is 3001, refused. */
	Proc &u = s.a.w.spawn(201, 2000, 2000);
	Op o = open_remote(s.a, u, "/net/b/mine");
	s.pump();
	REQUIRE(o.done());
	REQUIRE(o.res() > 0);
	Op snd = send_remote(s.a, u, o.res(), "2000 at a");
	s.pump();
	REQUIRE(snd.done());
	CHECK(snd.res() == 0);
	r = own.mbox_receive(mine);
	REQUIRE(r.done());
	CHECK(r.text() == "2000 at a");
	CHECK(s.creds_of(r.cqe().pid) == std::make_pair(2000u, 2000u));
	CHECK(s.send_from_a(s.open_at_b("/mine"), "root at a") == -EACCES);
}

TEST_CASE("net: net_origin_uids: bad values are refused")
{
	NetConfig c;
	CHECK(c.set("net_origin_uids", "b:3001,c:3002") == 0);
	CHECK(c.origin_uids.size() == 2);
	uint32_t gid = 0;
	CHECK(c.origin_uid("c", &gid) == 3002);
	CHECK(gid == 3002);
	CHECK(c.origin_uid("d", &gid) == c.uid);
	CHECK(gid == c.gid);
	CHECK(c.check() == "");
	for (const char *bad : {"b", "b:", ":3001", "b:3001,", ",b:3001", "b:3001,,c:3002",
				"b:0", "b:-1", "b:4294967295", "b:99999999999999999999", "b:30x1",
				"b:3001:3001", "b:3001,b:3002", "b:3001,c:3001", "B:3001",
				"b.c:3001", "b c:3001", "b:+3001", std::string(KIPC_NET_NODE_MAX + 1, 'b').c_str()}) {
		CAPTURE(bad);
		NetConfig d;
		CHECK(d.set("net_origin_uids", "b:7") == 0);
		CHECK(d.set("net_origin_uids", bad) == -EINVAL);
		CHECK(d.origin_uid("b") == 7); /* nothing taken of a bad value */
	}
	/* Empty: no map (over a configured one). */
	CHECK(c.set("net_origin_uids", "") == 0);
	CHECK(c.origin_uids.empty());
	/* Who else is here: net_uid, net_gid, a shared uid. */
	auto why = [](std::vector<std::pair<std::string, std::string>> v) {
		NetConfig d;
		for (auto &[n, x] : v)
			REQUIRE(d.set(n, x) == 0);
		return d.check();
	};
	CHECK(why({{"net_origin_uids", "b:65534"}}) != "");
	CHECK(why({{"net_gid", "3001"}, {"net_origin_uids", "b:3001"}}) != "");
	CHECK(why({{"net_origin_uids", "b:3001"}, {"net_uid", "3001"}}) != "");
	CHECK(why({{"net_shared_uids", "3000-3999"}, {"net_origin_uids", "b:3001"}}) ==
	      "net_origin_uids: b's uid 3001 is in net_shared_uids");
	CHECK(why({{"net_shared_uids", "3000-3999"}, {"net_origin_uids", "b:4001"}}) == "");
	/* A bad CONFIG_NET_ORIGIN_UIDS refuses the boot unless replaced. */
	NetConfig d;
	d.bad_default = "bad CONFIG_NET_ORIGIN_UIDS \"x\"";
	CHECK(d.check() == d.bad_default);
	CHECK(d.set("net_origin_uids", "x") == -EINVAL);
	CHECK(d.check() != "");
	CHECK(d.set("net_origin_uids", "b:3001") == 0);
	CHECK(d.check() == "");
}
