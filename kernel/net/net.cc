// SPDX-License-Identifier: MIT
/*
 * kipc across machines: the protocol between kernels (network.md).
 *
 * Two roles, both in every kernel, both on the loop thread:
 *
 *  - origin: a local process's request for another node becomes an
 *    Out, keyed by a sequence number of this boot (epoch_). It is
 *    transmitted on kipc.<home>.req.<me>, retransmitted every retry_ms
 *    until the home node acknowledged it (then probed), and completed
 *    by the home's RES. Failures, exact:
 *      1. An Out is *held* (never transmitted) while its node has not
 *         been heard from for timeout_ms/2; we say HELLO instead. A
 *         held Out that times out fails EHOSTUNREACH: nothing was sent.
 *      2. A transmitted Out whose node is silent for timeout_ms, or
 *         whose node answers with another epoch (it restarted) after a
 *         retransmission or an acknowledgement, fails ENOLINK: outcome
 *         unknown, delivered at most once.
 *      3. A STALE answer to a first transmission (the home restarted
 *         before it; the one NATS message reached the new instance,
 *         which did not run it) resends it as a first transmission.
 *
 *  - home: a REQ runs on a proxy task (one per remote node and pid)
 *    with mapped credentials; its id (origin epoch, seq) is remembered
 *    in Peer::seen as running or done (with the RES to send again), so
 *    a retransmission never runs twice. A REQ that names another home
 *    epoch than ours is answered STALE and not run.
 *
 * The origin node of a message is the last token of its subject, which
 * the NATS server's permissions tie to the connection's credentials;
 * nothing in the payload is trusted for identity, and every field is
 * checked before use.
 */
#include "net.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <set>
#include <poll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>

#include <fmt/core.h>
#include <kipc/net.h>
#include <kipc/trace.h>

#include "../daemon/kipcd.h"

#ifndef CONFIG_NET_TIMEOUT_MS
#define CONFIG_NET_TIMEOUT_MS 2000
#endif
#ifndef CONFIG_NET_RETRY_MS
#define CONFIG_NET_RETRY_MS 200
#endif
#ifndef CONFIG_NET_UID
#define CONFIG_NET_UID 65534
#endif
#ifndef CONFIG_NET_ORIGIN_SHARE
#define CONFIG_NET_ORIGIN_SHARE 50
#endif
#ifndef CONFIG_NET_ORIGIN_UIDS
#define CONFIG_NET_ORIGIN_UIDS ""
#endif

namespace kipcd {

NetConfig net_config = NetConfig::from_config();

/* ---------------------------------------------------------------- */
/* Configuration                                                      */

NetConfig NetConfig::from_config()
{
	NetConfig c;
#ifdef CONFIG_NET_NODE
	c.node = CONFIG_NET_NODE;
#endif
#ifdef CONFIG_NET_URL
	c.url = CONFIG_NET_URL;
#endif
#ifdef CONFIG_NET_CREDS
	c.creds = CONFIG_NET_CREDS;
#endif
	c.timeout_ms = CONFIG_NET_TIMEOUT_MS;
	c.retry_ms = CONFIG_NET_RETRY_MS;
	c.uid = c.gid = CONFIG_NET_UID;
	c.origin_share = CONFIG_NET_ORIGIN_SHARE;
	/* Parsed as the boot parameter is; a bad one refuses the boot
	 * (check()) unless the parameter replaces it. */
	if (c.set("net_origin_uids", CONFIG_NET_ORIGIN_UIDS))
		c.bad_default = fmt::format("bad CONFIG_NET_ORIGIN_UIDS \"{}\"",
					    CONFIG_NET_ORIGIN_UIDS);
	return c;
}

bool NetConfig::valid_node(const std::string &n)
{
	if (n.empty() || n.size() > KIPC_NET_NODE_MAX)
		return false;
	for (char ch : n)
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return false;
	return true;
}

static bool parse_u64(const std::string &v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (v.empty() || v.size() > 19)
		return false;
	uint64_t x = 0;
	for (char ch : v) {
		if (ch < '0' || ch > '9')
			return false;
		x = x * 10 + uint64_t(ch - '0');
	}
	if (x < lo || x > hi)
		return false;
	*out = x;
	return true;
}

int NetConfig::set(const std::string &name, const std::string &v)
{
	uint64_t x;
	if (name == "net_timeout_ms") {
		if (!parse_u64(v, 100, 600000, &x))
			return -EINVAL;
		timeout_ms = int64_t(x);
	} else if (name == "net_retry_ms") {
		if (!parse_u64(v, 10, 60000, &x))
			return -EINVAL;
		retry_ms = int64_t(x);
	} else if (name == "net_uid") {
		if (!parse_u64(v, 1, 4294967294u, &x))
			return -EINVAL;
		uid = uint32_t(x);
	} else if (name == "net_gid") {
		if (!parse_u64(v, 1, 4294967294u, &x))
			return -EINVAL;
		gid = uint32_t(x);
	} else if (name == "net_origin_share") {
		if (!parse_u64(v, 1, 100, &x))
			return -EINVAL;
		origin_share = uint32_t(x);
	} else if (name == "net_shared_uids") {
		/* "1000-1999,2500": explicit uids remote callers keep */
		std::vector<std::pair<uint32_t, uint32_t>> r;
		for (size_t i = 0; i < v.size();) {
			size_t j = v.find(',', i);
			if (j == std::string::npos)
				j = v.size();
			std::string item = v.substr(i, j - i);
			size_t d = item.find('-');
			uint64_t a, b;
			if (d == std::string::npos) {
				if (!parse_u64(item, 0, 4294967294u, &a))
					return -EINVAL;
				b = a;
			} else if (!parse_u64(item.substr(0, d), 0, 4294967294u, &a) ||
				   !parse_u64(item.substr(d + 1), 0, 4294967294u, &b) || b < a) {
				return -EINVAL;
			}
			r.emplace_back(uint32_t(a), uint32_t(b));
			i = j + 1;
		}
		shared = std::move(r);
	} else if (name == "net_origin_uids") {
		/* "b:3001,c:3002": node names (stable across restarts, unlike
		 * node indices), each its own uid, never root */
		std::vector<std::pair<std::string, uint32_t>> m;
		for (size_t i = 0; i < v.size();) {
			size_t j = v.find(',', i);
			if (j == std::string::npos)
				j = v.size();
			std::string item = v.substr(i, j - i);
			size_t c = item.find(':');
			if (c == std::string::npos || !valid_node(item.substr(0, c)) ||
			    !parse_u64(item.substr(c + 1), 1, 4294967294u, &x))
				return -EINVAL;
			for (auto &[n, u] : m)
				if (n == item.substr(0, c) || u == x)
					return -EINVAL;
			m.emplace_back(item.substr(0, c), uint32_t(x));
			i = j + 1;
			if (i == v.size())
				return -EINVAL; /* a trailing comma */
		}
		origin_uids = std::move(m);
		bad_default.clear();
	} else {
		return -ENOENT;
	}
	return 0;
}

uint32_t NetConfig::origin_uid(const std::string &origin, uint32_t *g) const
{
	for (auto &[n, u] : origin_uids)
		if (n == origin) {
			if (g)
				*g = u; /* its own group too: net_gid's do not cover it */
			return u;
		}
	if (g)
		*g = gid;
	return uid;
}

std::string NetConfig::check() const
{
	if (!bad_default.empty())
		return bad_default;
	/* A mapped origin's callers must not be anyone else here: not the
	 * unmapped origins' (net_uid, net_gid: its gid is its uid), not a
	 * shared uid (another node's caller of that uid keeps it). */
	for (auto &[n, u] : origin_uids) {
		if (u == uid || u == gid)
			return fmt::format("net_origin_uids: {}'s uid {} is net_uid or net_gid", n, u);
		for (auto &[a, b] : shared)
			if (u >= a && u <= b)
				return fmt::format("net_origin_uids: {}'s uid {} is in net_shared_uids",
						   n, u);
	}
	if (node.empty())
		return "";
	if (!valid_node(node))
		return fmt::format("bad node name '{}' (1-{} of [a-z0-9_-])", node, KIPC_NET_NODE_MAX);
	if (url.empty())
		return "--node needs --nats URL";
	if (retry_ms * 2 > timeout_ms)
		return fmt::format("net_retry_ms={} must be at most half of net_timeout_ms={}",
				   retry_ms, timeout_ms);
	if (!creds.empty()) {
		struct stat st;
		if (stat(creds.c_str(), &st) < 0)
			return fmt::format("--nats-creds {}: {}", creds, strerror(errno));
		if (!S_ISREG(st.st_mode))
			return fmt::format("--nats-creds {}: not a regular file", creds);
		if (st.st_mode & 077)
			return fmt::format("--nats-creds {}: readable by others (chmod 600 it)", creds);
		if (access(creds.c_str(), R_OK) < 0)
			return fmt::format("--nats-creds {}: {}", creds, strerror(errno));
	}
	return "";
}

#ifdef CONFIG_NET /* without it: NetConfig only, no NATS, Net::create() refuses */
namespace {

int64_t mono_ns()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t real_ns()
{
	timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

/* The protocol's clock (the unit tests give a fake one). */
struct RealClock final : kipc::Clock {
	int64_t monotonic_ns() const override { return mono_ns(); }
	int64_t realtime_ns() const override { return real_ns(); }
};
RealClock real_clock;

/* ---------------------------------------------------------------- */
/* Wire format: one fixed header, then datalen bytes.                 */

constexpr uint32_t kWireMagic = 0x54454e4b; /* "KNET" */
constexpr uint16_t kWireVersion = 1;
enum : uint16_t {
	W_REQ = 1,   /* origin -> home: run this (seq) */
	W_PROBE = 2, /* origin -> home: what became of seq? (seq 0: hello) */
	W_ACK = 3,   /* home -> origin: seq runs (parked) / hello */
	W_RES = 4,   /* home -> origin: seq's result */
	W_STALE = 5, /* home -> origin: your peer_epoch is not mine; not run */
	W_BYE = 6,   /* either way: I stop. home -> origin: data = the seqs in
			[low, seq) it ran (seq 0: no end), in parts (bye_parts) */
	W_PING = 7,  /* home -> origin: are you there (silent, with proxies here) */
	W_PONG = 8,  /* origin -> home: I am (its epoch) */
	W_PART = 9,  /* either way: a part of a REQ or RES larger than one NATS
			message (send_frame(), on_part()) */
	W_HAVE = 10, /* of a frame seq (len2 bytes) still coming in parts, these
			ranges are here (data: uint32 first, end pairs): home ->
			origin of a REQ, its retransmission sends the rest only;
			origin -> home of a RES, sent again at once, the rest only */
};
constexpr long kQueued = 1L << 40; /* start_out(): completes later */
constexpr uint8_t OP_EXIT = 0xfe; /* origin task pid is gone: end its proxy */
constexpr uint32_t kMaxData = 1u << 20;
constexpr uint32_t kMaxName = 5 + KIPC_NET_NODE_MAX + 1 + KIPC_NAME_MAX;
/* The smallest max_payload a node may announce (a smaller one is taken
 * as this: a part must hold a header and some bytes). */
constexpr size_t kMinRoom = 4096;
constexpr pid_t kPidLimit = pid_t(1) << KIPC_NET_PID_BITS; /* a node's pids are below */
/*
 * What one peer can make us hold: ids remembered (running or done, until
 * its low-water mark passes them) and requests running on one proxy (a
 * local process has its transport's in-flight bound instead). Beyond:
 * EAGAIN, not run, not remembered.
 */
constexpr size_t kMaxSeen = 65536;
/*
 * An ended task of a peer (Peer::exited) is remembered while its
 * origin may still have a request of it coming: until the origin's
 * low-water mark passes the request that ended it (its EXIT, or the
 * first request of the next task with its pid). Its entry is charged
 * this much to the uid the task ran as here, from the proxy's start
 * (so that ending never fails), and a peer has at most kMaxSeen proxies
 * and ended tasks together (beyond: a new task is refused EAGAIN).
 */
constexpr uint64_t kEndedBytes = 64;
/* Running (held or parked) per proxy: a local process's in-flight bound
 * (kMaxInflight, its SQ and CQ entries: 768 at RING_ENTRIES=256). */
#ifndef CONFIG_RING_ENTRIES
#define CONFIG_RING_ENTRIES 256
#endif
constexpr uint32_t kMaxRunning = 3 * CONFIG_RING_ENTRIES;
/* Bytes of frames still coming in parts one origin may make a home hold
 * (each one is charged to its caller's mapped uid too): four of the
 * largest requests. Beyond: EAGAIN, not run. */
constexpr size_t kMaxPartial = 4 * (176 + kMaxData + kMaxName);

struct Wire {
	uint32_t magic;
	uint16_t version;
	uint16_t kind;
	uint64_t epoch;      /* the sender's boot epoch */
	uint64_t peer_epoch; /* REQ/PROBE: the home epoch we expect; ACK/RES: origin epoch answered */
	uint64_t seq;
	uint64_t low;        /* REQ/PROBE: lowest seq the origin still waits for */
	uint8_t op;          /* KIPC_SYS_* or OP_EXIT */
	uint8_t retry;       /* REQ: 1 on a retransmission */
	uint16_t prio;
	uint32_t flags;
	int32_t pid;         /* origin caller */
	uint32_t uid;
	uint32_t gid;
	uint32_t len2;       /* call: reply buffer size */
	int64_t target;      /* pid, home mailbox id, or the seq a cancel names */
	int64_t type;
	int64_t timeout;     /* relative ns, with KIPC_F_TIMEOUT */
	kipc_cqe cqe;        /* RES */
	uint32_t datalen;
	uint32_t order;      /* REQ: 1, 2, ... per (caller, home node) incarnation */
	uint64_t inc;        /* REQ: the caller's incarnation: seq of its first request there */
	uint32_t order_low;  /* REQ/PROBE: the caller's lowest order still waited for */
	uint32_t room;       /* every frame: the sender's server's max_payload */
};
/*
 * A W_PART carries bytes [target, target + datalen) of a REQ or RES frame
 * of len2 bytes (header included) whose kind is prio; its seq, epoch,
 * peer_epoch, op, pid, uid and gid are the frame's.
 */
static_assert(sizeof(Wire) == 176, "wire header layout");

std::vector<uint8_t> encode(const Wire &w, const void *data, uint32_t len)
{
	std::vector<uint8_t> b(sizeof w + len);
	Wire h = w;
	h.magic = kWireMagic;
	h.version = kWireVersion;
	h.datalen = len;
	memcpy(b.data(), &h, sizeof h);
	if (len)
		memcpy(b.data() + sizeof h, data, len);
	return b;
}

/*
 * The BYE of a home to one origin, in frames that each fit a NATS
 * message (max: the server's max_payload, with room for a second
 * header): the sorted seqs ran, cut into parts, each covering its own
 * range of seqs [low, seq) so that the origin settles the requests of a
 * part alone, whichever parts arrive (a lost part's requests time out
 * as usual).
 */
std::vector<std::vector<uint8_t>> bye_parts(const std::vector<uint64_t> &ran, uint64_t peer_epoch,
					    uint64_t epoch, size_t max)
{
	size_t per = std::max<size_t>((max - std::min(max, 2 * sizeof(Wire))) / sizeof(uint64_t), 1);
	std::vector<std::vector<uint8_t>> out;
	size_t i = 0;
	do {
		size_t n = std::min(per, ran.size() - i);
		Wire w{};
		w.kind = W_BYE;
		w.epoch = epoch;
		w.peer_epoch = peer_epoch;
		w.low = i ? ran[i] : 0;
		w.seq = i + n < ran.size() ? ran[i + n] : 0;
		out.push_back(encode(w, ran.data() + i, uint32_t(n * sizeof(uint64_t))));
		i += n;
	} while (i < ran.size());
	return out;
}

/* The bytes of a call's RES that may come in parts (origin_part() keeps
 * at most this much of it), 0: it always fits one NATS message. */
uint64_t rx_room(uint32_t len2)
{
	uint64_t f = sizeof(Wire) + std::min(len2, kMaxData);
	return f > kMinRoom ? f : 0;
}

/* The user memory of a proxy task: regions we allocate per request. */
class ProxyMem final : public kipc::UserMemory {
public:
	uint64_t alloc(const void *src, uint32_t len, uint32_t size)
	{
		uint64_t base = next_;
		next_ += (uint64_t(size) + 4096) & ~uint64_t(4095);
		auto &r = regions_[base].own;
		r.assign(size, 0);
		if (len)
			memcpy(r.data(), src, len);
		return base;
	}
	/* A request's data where it is (its frame, alive until the request
	 * was submitted and freed: the core copies what it keeps), read only:
	 * no copy between the NATS message and the core's. */
	uint64_t borrow(const uint8_t *src, uint32_t len)
	{
		uint64_t base = next_;
		next_ += (uint64_t(len) + 4096) & ~uint64_t(4095);
		auto &r = regions_[base];
		r.ext = src;
		r.extlen = len;
		return base;
	}
	void free(uint64_t base) { regions_.erase(base); }
	const std::vector<uint8_t> *region(uint64_t base) const
	{
		auto it = regions_.find(base);
		return it == regions_.end() || it->second.ext ? nullptr : &it->second.own;
	}
	bool access_ok(uint64_t addr, uint64_t len) const override
	{
		return find(addr, len) != nullptr;
	}
	int copy_from_user(void *dst, uint64_t addr, uint64_t len) override
	{
		const uint8_t *p = find(addr, len);
		if (!p)
			return -EFAULT;
		if (len)
			memcpy(dst, p, len);
		return 0;
	}
	int copy_to_user(uint64_t addr, const void *src, uint64_t len) override
	{
		uint8_t *p = const_cast<uint8_t *>(find(addr, len, true));
		if (!p)
			return -EFAULT;
		if (len)
			memcpy(p, src, len);
		return 0;
	}

private:
	struct Region {
		std::vector<uint8_t> own;
		const uint8_t *ext = nullptr; /* borrowed (read only), else own */
		size_t extlen = 0;
	};
	const uint8_t *find(uint64_t addr, uint64_t len, bool write = false) const
	{
		auto it = regions_.upper_bound(addr);
		if (it == regions_.begin())
			return nullptr;
		--it;
		const Region &r = it->second;
		if (r.ext && write)
			return nullptr;
		size_t size = r.ext ? r.extlen : r.own.size();
		const uint8_t *base = r.ext ? r.ext : r.own.data();
		uint64_t off = addr - it->first;
		if (off > size || len > size - off)
			return nullptr;
		static const uint8_t empty = 0;
		return size == 0 ? &empty : base + off;
	}
	std::map<uint64_t, Region> regions_;
	uint64_t next_ = 4096;
};

/*
 * A frame coming in parts: the bytes received so far, at their place.
 * Parts may come twice (a retransmission), in any order, overlapping;
 * the frame is whole when [0, size) is covered.
 */
struct Partial {
	std::vector<uint8_t> buf;          /* the whole frame */
	std::map<uint32_t, uint32_t> have; /* received ranges [first, second) */
	int64_t last = 0;                  /* monotonic ns of its last part */
	pid_t pid = 0;                     /* home: its caller on its node */
	uid_t uid = 0;                     /* home: charged to (the mapped uid) */
	uint64_t epoch = 0;                /* origin: the home epoch it comes from */
	bool told = false;                 /* home: a HAVE said what came, none since */
	bool add(uint32_t off, const uint8_t *d, uint32_t n)
	{
		memcpy(buf.data() + off, d, n);
		uint32_t lo = off, hi = off + n;
		auto it = have.upper_bound(lo);
		if (it != have.begin() && std::prev(it)->second >= lo) {
			--it;
			lo = it->first;
			hi = std::max(hi, it->second);
			it = have.erase(it);
		}
		while (it != have.end() && it->first <= hi) {
			hi = std::max(hi, it->second);
			it = have.erase(it);
		}
		have[lo] = hi;
		return have.size() == 1 && lo == 0 && hi == buf.size();
	}
};

/* The HAVE that says what of pa (frame seq) came (W_HAVE). */
std::vector<uint8_t> have_frame(uint64_t epoch, uint64_t peer_epoch, uint64_t seq,
				const Partial &pa)
{
	std::vector<uint32_t> r;
	for (auto &[a, b] : pa.have)
		r.insert(r.end(), {a, b});
	Wire w{};
	w.kind = W_HAVE;
	w.epoch = epoch;
	w.peer_epoch = peer_epoch;
	w.seq = seq;
	w.len2 = uint32_t(pa.buf.size());
	return encode(w, r.data(), uint32_t(r.size() * sizeof(uint32_t)));
}

/*
 * The ranges a HAVE w says of a frame of size bytes, if it describes one
 * (its size, ranges sorted, apart, within it, at most kMaxRanges: a
 * frame has at most 268 parts, so half as many holes): else false.
 */
constexpr uint32_t kMaxRanges = 512;
bool parse_have(const Wire &w, const uint8_t *data, uint64_t size,
		std::map<uint32_t, uint32_t> *out)
{
	if (w.len2 != size || w.datalen % (2 * sizeof(uint32_t)) || w.datalen == 0 ||
	    w.datalen > kMaxRanges * 2 * sizeof(uint32_t))
		return false;
	std::map<uint32_t, uint32_t> have;
	uint64_t end = 0;
	for (uint32_t i = 0; i < w.datalen; i += 2 * sizeof(uint32_t)) {
		uint32_t r[2];
		memcpy(r, data + i, sizeof r);
		if (r[0] < end || r[1] <= r[0] || r[1] > size)
			return false;
		have[r[0]] = r[1];
		end = uint64_t(r[1]) + 1; /* apart: add() joins touching ones */
	}
	*out = std::move(have);
	return true;
}

struct Peer;

/* A remote caller (node, pid) at its home node. */
struct Proxy {
	Peer *peer;
	pid_t rpid;          /* its pid on its node */
	uint64_t inc = 0;    /* which task of that pid (Wire::inc) */
	uint32_t next = 1;   /* the order it runs next: no overtaking */
	uint32_t running = 0; /* its requests not done yet (held ones too) */
	struct Held {
		Wire w;
		std::vector<uint8_t> data;
		uid_t uid = 0;        /* its frame's bytes are charged to (hold()) */
		bool refused = false; /* answered ENOSPC: its turn is skipped */
	};
	std::map<uint32_t, Held> held; /* arrived before their turn, by order */
	pid_t pid;           /* the proxy task's pid here: KIPC_NET_PID(node, rpid) */
	uint32_t ruid, rgid; /* its uid and gid on its node, as of its last request */
	uint32_t uid;        /* the uid it runs as here */
	uid_t ended_uid = 0; /* its entry in Peer::exited is charged to (kEndedBytes) */
	kipc::Task *task = nullptr;
	ProxyMem mm;
	void *tag() { return reinterpret_cast<void *>(reinterpret_cast<uintptr_t>(this) | 1); }
};

/* A request id seen from a peer. */
struct Seen {
	Proxy *proxy = nullptr;
	bool done = false;
	uint8_t op = 0;
	uint64_t reply = 0;  /* proxy region of the reply buffer (call), 0: none */
	uint32_t len2 = 0;
	std::vector<uint8_t> res; /* the encoded RES, once done */
	uid_t uid = 0;       /* a call's reply buffer and then its RES are charged to */
	uint64_t charged = 0; /* ... this many bytes (run(), settle()) */
};

/* Another node, as the home of requests it sent us. */
struct Peer {
	std::string name;
	uint64_t epoch = 0;
	std::map<uint64_t, Seen> seen;  /* by seq */
	std::unordered_map<pid_t, std::unique_ptr<Proxy>> proxies; /* by rpid */
	struct Ended {
		uint64_t inc;  /* its last incarnation ended */
		uint64_t seq;  /* the request that ended it */
		uid_t uid;     /* charged kEndedBytes */
	};
	std::unordered_map<pid_t, Ended> exited; /* by rpid */
	std::map<uint64_t, pid_t> exited_by_seq; /* the same, by Ended::seq */
	uint64_t low = 0;    /* its highest low-water mark (this epoch) */
	int64_t heard = 0;   /* monotonic ns of its last message */
	int64_t pinged = 0;  /* our last PING */
	bool silent = false; /* its proxies were ended for silence */
	/* Requests still running when they arrived, by arrival: acknowledged
	 * at a tick if still running then (ack_parked()). */
	std::deque<std::pair<int64_t, uint64_t>> unacked;
	std::map<uint64_t, Partial> partial; /* REQs still coming in parts, by seq */
	size_t partial_bytes = 0;
	uint64_t net_bytes = 0; /* what we hold for it charged to net_uid (hold()) */
	size_t room = 0;     /* its server's max_payload, 0: not known */
};

/* Another node, as the home of our requests. */
struct Node {
	std::string name;
	uint64_t epoch = 0;      /* its epoch as last heard, 0: never */
	int64_t heard = 0;       /* monotonic ns of the last message from it, 0: never */
	int64_t hello = 0;       /* last HELLO sent, 0: never */
	bool asked = false;      /* we sent it a hello or a request (else it is only
				    the node of remote callers here: its answers are
				    none of ours) */
	size_t room = 0;         /* its server's max_payload, 0: not known */
	std::set<uint64_t> open; /* seqs of our requests there not done yet: the
				    lowest is the low-water mark it is sent */
};

/* A request of a local process waiting on another node. */
struct Out {
	uint64_t seq;
	uint16_t node;
	void *priv;              /* nullptr: ours (OP_EXIT) */
	kipc::UserMemory *mm;
	uint64_t user_data;
	uint8_t op;
	uint64_t addr2 = 0;
	uint32_t len2 = 0;
	int64_t source = 0;      /* the remote mailbox id the caller named */
	kipc::Task *task = nullptr; /* the caller's task (tracing), nullptr: ours */
	std::string label;       /* its target, "NODE:/name" or "NODE:PID" (tracing) */
	Wire w{};
	std::vector<uint8_t> data;
	uint32_t ntx = 0;        /* transmissions */
	uint64_t acked = 0;      /* home epoch that acknowledged it, 0: none */
	int64_t last_tx = 0, news = 0;
	Partial rx;              /* its RES, while it comes in parts (a call's reply) */
	std::map<uint32_t, uint32_t> have; /* of its frame, what the home said it has (HAVE) */
	uid_t uid = 0;           /* its caller's: data, header and rx are charged to */
	uint64_t charged = 0;    /* ... this many bytes (hold_out()) */
};

struct Handle {
	uint16_t node;
	int64_t home_id;
	std::string label;       /* "NODE:/name" */
};

class NetImpl final : public Net {
public:
	NetImpl(const NetConfig &cfg, Loop &loop, kipc::Kernel &k, kipc::CompletionSink &s,
		std::unique_ptr<Fabric> f, kipc::Clock &clock = real_clock)
		: cfg_(cfg), loop_(loop), kernel_(k), sink_(s), fab_(std::move(f)), clock_(clock)
	{
		epoch_ = uint64_t(clock_.realtime_ns());
		nodes_.emplace_back(); /* index 0: none */
	}
	~NetImpl() override;
	int start(std::string *err);

	bool wants(void *priv, const kipc_sqe &sqe, kipc::UserMemory &mm) override;
	void submit(const NetCaller &c, const kipc_sqe &sqe) override;
	void proxy_complete(void *priv, const kipc_cqe &cqe) override;
	void task_exit(void *priv) override;
	void flush() override { fab_->flush(); }
	void set_before_core(std::function<void(kipc::Task *, const kipc_sqe *)> fn) override
	{
		before_core_ = std::move(fn);
	}

private:
	/* origin */
	long start_out(const NetCaller &c, const kipc_sqe &sqe);
	long send_op(const NetCaller &c, const kipc_sqe &sqe, uint16_t node, int64_t target,
		     const std::string &label);
	int node_index(const std::string &name);
	Out &new_out(const NetCaller *c, uint64_t user_data, uint16_t node, uint8_t op);
	void transmit(Out &o, int64_t now);
	void hello(Node &n, int64_t now);
	void finish(Out &o, long res, const kipc_cqe *rc, const uint8_t *data, uint32_t len);
	std::map<uint64_t, Out>::iterator forget_out(std::map<uint64_t, Out>::iterator it);
	void on_answer(const std::string &from, const Wire &w, const uint8_t *data);
	void tick();
	void arm();
	/* home */
	void on_request(const std::string &from, const Wire &w, const uint8_t *data);
	long admit(Peer &p, const Wire &w, Proxy **out);
	void advance(Peer &p, Proxy *px, uint32_t order_low);
	bool run(Peer &p, Proxy *px, const Wire &w, const uint8_t *data);
	void done(Peer &p, Proxy *px, uint64_t seq, long res);
	void ack_parked(Peer &p, int64_t now);
	void answer(Peer &p, uint64_t seq, uint16_t kind, long res, const kipc_cqe *cqe,
		    const void *data, uint32_t len, std::vector<uint8_t> *keep = nullptr);
	Proxy *proxy_of(Peer &p, const Wire &w, int *err);
	kipc::Creds map_creds(Proxy *px, const Wire &w);
	void end_proxy(Peer &p, pid_t rpid, long res, long why, uint64_t seq = 0);
	void forget_exited(Peer &p, uint64_t below);
	void end_proxies(Peer &p, long res, long why);
	void reset_peer(Peer &p, long why);
	void refused(Peer &p, Proxy *px, const Wire &w, long res);
	void watch_peers(int64_t now);
	void on_bye(Node &n, uint16_t ix, const Wire &w, const uint8_t *data);
	bool peer_heard(Peer &p, const Wire &w);
	void home_part(const std::string &from, const Wire &w, const uint8_t *data);
	void drop_partial(Peer &p, std::map<uint64_t, Partial>::iterator it);
	bool shared_uid(uint32_t uid) const;
	uid_t mapped_uid(const Peer &p, uint32_t uid) const;
	std::map<uint64_t, Seen>::iterator forget_seen(Peer &p, std::map<uint64_t, Seen>::iterator it);
	void clear_seen(Peer &p);
	void settle(Peer &p, Seen &s);
	void release_held(Peer &p, Proxy::Held &h);
	int hold(Peer &p, uid_t uid, uint64_t bytes);
	void unhold(Peer &p, uid_t uid, uint64_t bytes);
	Seen *remember(Peer &p, const Wire &w);
	/* both */
	void on_fabric();
	void on_part(const std::string &from, bool is_req, const Wire &w, const uint8_t *data);
	void origin_part(const std::string &from, const Wire &w, const uint8_t *data);
	size_t room_to(const std::string &to, bool req) const;
	/* A node we talk with: the fabric checks the server keeps us from
	 * being it (Fabric::check_node), once. */
	void heard_of(const std::string &name)
	{
		if (told_.insert(name).second)
			fab_->check_node(name);
	}
	std::unordered_set<std::string> told_;
	void trace_net(kipc::Task *t, uint16_t event, uint16_t op, uint32_t flags, int64_t res,
		       int64_t mbox, uint64_t seq, uint64_t epoch, const std::string &name);
	void publish(const std::string &to, bool req, std::vector<uint8_t> b,
		     const std::map<uint32_t, uint32_t> *have = nullptr);
	void on_have(Out &o, const Wire &w, const uint8_t *data);
	void res_have(Peer &p, const Wire &w, const uint8_t *data);

	NetConfig cfg_;
	Loop &loop_;
	kipc::Kernel &kernel_;
	kipc::CompletionSink &sink_;
	std::unique_ptr<Fabric> fab_;
	kipc::Clock &clock_;
	int64_t now_ns() const { return clock_.monotonic_ns(); }
	uint64_t epoch_;
	int tfd_ = -1;
	int64_t w_fab_ = 0, w_tmr_ = 0;
	bool armed_ = false;
	bool connected_ = false;
	bool debug_ = getenv("KIPC_NET_DEBUG") != nullptr; /* log every message */

	std::vector<Node> nodes_;                          /* by index */
	std::unordered_map<std::string, uint16_t> node_ix_;
	std::vector<Handle> handles_;
	std::map<std::pair<uint16_t, int64_t>, size_t> handle_ix_;
	std::map<uint64_t, Out> out_;                      /* by seq */
	uint64_t next_seq_ = 1;
	struct Chan {              /* one local task's requests to one node */
		uint64_t inc = 0;      /* seq of its first request there */
		uint32_t next = 0;     /* last order given */
		std::set<uint32_t> open; /* orders still waited for */
	};
	struct Contact {
		pid_t pid;
		std::unordered_map<uint16_t, Chan> nodes;
	};
	std::unordered_map<void *, Contact> contacted_; /* priv -> the nodes it used */

	std::unordered_map<std::string, Peer> peers_;
	std::unordered_map<pid_t, Proxy *> by_pid_; /* proxy pid -> proxy */
	kipc_net_stat st_{};
	std::function<void(kipc::Task *, const kipc_sqe *)> before_core_; /* set_before_core() */
	void before_core(kipc::Task *task, const kipc_sqe *sqe)
	{
		if (before_core_)
			before_core_(task, sqe);
	}
};

int NetImpl::start(std::string *err)
{
	tfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd_ < 0) {
		*err = fmt::format("timerfd: {}", strerror(errno));
		return -1;
	}
	fab_->attach_loop(loop_, [this] { on_fabric(); });
	w_fab_ = loop_.add(fab_->eventfd(), POLLIN, [this](uint32_t) { on_fabric(); });
	w_tmr_ = loop_.add(tfd_, POLLIN, [this](uint32_t) {
		uint64_t v;
		if (read(tfd_, &v, sizeof v) < 0) { /* EAGAIN */ }
		tick();
	});
	if (w_fab_ < 0 || w_tmr_ < 0) {
		*err = "cannot watch the fabric";
		return -1;
	}
	snprintf(st_.node, sizeof st_.node, "%s", cfg_.node.c_str());
	return 0;
}

/*
 * A clean stop: the daemon detached every local process first (calls
 * their servers had taken failed ESRCH, their mailboxes EIDRM, as
 * locally). What remote callers still have parked here is withdrawn
 * and answered EIDRM (not delivered: the mailbox went with its kernel);
 * each origin is told what this instance ran (BYE, on_bye()), each node
 * we sent requests to that our tasks are gone. The fabric sends all of
 * it before it closes. Proxies' tasks belong to the kernel, which
 * outlives us (the daemon destroys Net first).
 */
NetImpl::~NetImpl()
{
	if (w_fab_ > 0)
		loop_.del(w_fab_);
	if (w_tmr_ > 0)
		loop_.del(w_tmr_);
	if (tfd_ >= 0)
		close(tfd_);
	for (auto &[name, p] : peers_) {
		end_proxies(p, -EIDRM, -EIDRM);
		std::vector<uint64_t> ran;
		for (auto &[seq, s] : p.seen)
			ran.push_back(seq);
		for (auto &b : bye_parts(ran, p.epoch, epoch_, room_to(name, false)))
			publish(name, false, std::move(b));
		clear_seen(p); /* what we held goes back to its uids */
		forget_exited(p, UINT64_MAX);
		while (!p.partial.empty())
			drop_partial(p, p.partial.begin());
	}
	for (auto it = out_.begin(); it != out_.end();)
		it = forget_out(it);
	for (size_t i = 1; i < nodes_.size(); i++) {
		if (!nodes_[i].epoch)
			continue;
		Wire w{};
		w.kind = W_BYE;
		w.epoch = epoch_;
		w.peer_epoch = nodes_[i].epoch;
		publish(nodes_[i].name, true, encode(w, nullptr, 0));
	}
}

/* ---------------------------------------------------------------- */
/* Frames larger than one NATS message                                */

/* The largest NATS message for to: the smaller max_payload of our server
 * and of its (as it last said; our own until it did). */
size_t NetImpl::room_to(const std::string &to, bool req) const
{
	size_t most = fab_->max_payload(), theirs = 0;
	if (req) {
		if (auto it = node_ix_.find(to); it != node_ix_.end())
			theirs = nodes_[it->second].room;
	} else if (auto it = peers_.find(to); it != peers_.end()) {
		theirs = it->second.room;
	}
	if (theirs)
		most = std::min(most, theirs);
	return std::max(most, kMinRoom);
}

/*
 * Every frame goes out here. One that does not fit one NATS message of
 * both ends (room_to) goes in W_PARTs, each a header and a slice of it;
 * the receiver puts them together (on_part) and takes the frame as if it
 * had come whole: deduplicated by its seq as any, run or answered once.
 */
void NetImpl::publish(const std::string &to, bool req, std::vector<uint8_t> b,
		      const std::map<uint32_t, uint32_t> *have)
{
	std::string subject = fmt::format("kipc.{}.{}.{}", to, req ? "req" : "rsp", cfg_.node);
	size_t most = room_to(to, req);
	uint32_t room = uint32_t(std::min<size_t>(fab_->max_payload(), UINT32_MAX));
	Wire in;
	memcpy(&in, b.data(), sizeof in);
	in.room = room;
	memcpy(b.data(), &in, sizeof in);
	if (b.size() <= most) {
		fab_->publish(std::move(subject), std::move(b), most);
		return;
	}
	size_t chunk = most - sizeof(Wire);
	for (size_t off = 0; off < b.size(); off += chunk) {
		size_t n = std::min(chunk, b.size() - off);
		/* Sent again: only what the other end has not (HAVE); a REQ's
		 * first part always (its home answers it as a retransmission). */
		if (have && (off || !req)) {
			auto h = have->upper_bound(uint32_t(off));
			if (h != have->begin() && std::prev(h)->second >= off + n)
				continue;
		}
		Wire w{};
		w.kind = W_PART;
		w.prio = in.kind;
		w.epoch = in.epoch;
		w.peer_epoch = in.peer_epoch;
		w.seq = in.seq;
		w.op = in.op;
		w.pid = in.pid;
		w.uid = in.uid;
		w.gid = in.gid;
		w.target = int64_t(off);
		w.len2 = uint32_t(b.size());
		w.room = room;
		fab_->publish(subject, encode(w, b.data() + off, uint32_t(n)), most);
		st_.nparts++;
	}
	st_.nsplit++;
}

/* A part came: checked, then put where it belongs. */
void NetImpl::on_part(const std::string &from, bool is_req, const Wire &w, const uint8_t *data)
{
	uint64_t total = w.len2;
	/* A frame is sent in parts only if larger than kMinRoom. */
	if (w.prio != (is_req ? W_REQ : W_RES) || total <= kMinRoom ||
	    total > sizeof(Wire) + kMaxData + kMaxName || w.target < 0 || w.datalen == 0 ||
	    uint64_t(w.target) >= total || w.datalen > total - uint64_t(w.target))
		return; /* malformed: nothing of it is kept */
	if (is_req)
		home_part(from, w, data);
	else
		origin_part(from, w, data);
}

/* The frame its parts make, if it is the one they said (else false). */
static bool whole_frame(const Partial &pa, const Wire &part, Wire *w)
{
	memcpy(w, pa.buf.data(), sizeof *w);
	return w->magic == kWireMagic && w->version == kWireVersion && w->kind == part.prio &&
	       w->seq == part.seq && w->epoch == part.epoch &&
	       w->datalen == pa.buf.size() - sizeof *w;
}

void NetImpl::drop_partial(Peer &p, std::map<uint64_t, Partial>::iterator it)
{
	unhold(p, it->second.uid, it->second.buf.size());
	p.partial_bytes -= it->second.buf.size();
	p.partial.erase(it);
}

/*
 * Home: a part of a REQ. The request runs only when all of it is here
 * (nothing is half delivered), as a REQ that came whole: once, by its
 * seq. Until then its bytes are charged to its caller's mapped uid
 * (ENOSPC beyond its bytes_per_user) and to the origin's kMaxPartial
 * (EAGAIN beyond): both answers are kept, the request never runs. One
 * whose parts stop coming goes after net_timeout_ms (watch_peers), not
 * run and not answered: its origin fails it as any request it has no
 * answer for. A part of one already seen is a retransmission: its
 * first part is answered as one (ACK, or the kept RES), the rest is
 * dropped.
 */
void NetImpl::home_part(const std::string &from, const Wire &w, const uint8_t *data)
{
	Peer &p = peers_[from];
	p.name = from;
	if (!peer_heard(p, w))
		return;
	Wire h = w; /* the request, as far as the part says */
	h.kind = W_REQ;
	h.target = 0;
	h.datalen = 0;
	if (w.peer_epoch != epoch_) {
		if (w.target == 0)
			on_request(from, h, nullptr); /* STALE: it did not run */
		return;
	}
	if (auto s = p.seen.find(w.seq); s != p.seen.end()) {
		if (w.target == 0) {
			st_.ndups++;
			if (s->second.done)
				publish(p.name, false, s->second.res);
			else
				answer(p, w.seq, W_ACK, 0, nullptr, nullptr, 0);
		}
		return;
	}
	auto it = p.partial.find(w.seq);
	if (it == p.partial.end()) {
		uid_t uid = mapped_uid(p, w.uid);
		long err = 0;
		if (p.partial_bytes + w.len2 > kMaxPartial)
			err = -EAGAIN;
		else if (hold(p, uid, w.len2))
			err = -ENOSPC;
		if (err) {
			refused(p, nullptr, h, err);
			Seen *s = p.seen.size() < kMaxSeen ? remember(p, h) : nullptr;
			if (s)
				s->done = true;
			answer(p, w.seq, W_RES, err, nullptr, nullptr, 0, s ? &s->res : nullptr);
			return;
		}
		it = p.partial.emplace(w.seq, Partial{}).first;
		it->second.buf.assign(w.len2, 0);
		it->second.uid = uid;
		it->second.pid = w.pid;
		p.partial_bytes += w.len2;
		arm(); /* watch_peers() ends it if it stops coming */
	}
	Partial &pa = it->second;
	if (pa.buf.size() != w.len2)
		return; /* parts that disagree: the first ones stand */
	pa.last = p.heard;
	pa.told = false;
	if (!pa.add(uint32_t(w.target), data, w.datalen))
		return;
	Partial whole = std::move(pa);
	p.partial.erase(it);
	p.partial_bytes -= whole.buf.size();
	unhold(p, whole.uid, whole.buf.size());
	Wire in;
	if (whole_frame(whole, w, &in))
		on_request(from, in, whole.buf.data() + sizeof in);
}

/*
 * Origin: a part of a RES (a call's reply longer than one NATS message),
 * kept in its request until the rest comes: at most the header and the
 * caller's reply buffer, gone with the request.
 */
void NetImpl::origin_part(const std::string &from, const Wire &w, const uint8_t *data)
{
	auto ni = node_ix_.find(from);
	if (ni == node_ix_.end() || !nodes_[ni->second].asked)
		return;
	Node &n = nodes_[ni->second];
	auto it = out_.find(w.seq);
	if (w.epoch < n.epoch || it == out_.end() || it->second.node != ni->second ||
	    w.peer_epoch != epoch_)
		return;
	Out &o = it->second;
	if (o.len2 == 0 || w.len2 > sizeof(Wire) + std::min(o.len2, kMaxData))
		return;
	int64_t now = now_ns();
	if (o.rx.buf.size() != w.len2 || o.rx.epoch != w.epoch) {
		o.rx = Partial{};
		o.rx.buf.assign(w.len2, 0);
		o.rx.epoch = w.epoch;
	}
	if (w.epoch == n.epoch)
		n.heard = now;
	o.news = now; /* its answer is coming */
	o.rx.last = now;
	o.rx.told = false;
	if (!o.rx.add(uint32_t(w.target), data, w.datalen))
		return;
	Partial whole = std::move(o.rx);
	o.rx = Partial{};
	Wire in;
	if (whole_frame(whole, w, &in))
		on_answer(from, in, whole.buf.data() + sizeof in);
}

/* ---------------------------------------------------------------- */
/* Origin: which requests are ours                                    */

bool NetImpl::wants(void *priv, const kipc_sqe &sqe, kipc::UserMemory &mm)
{
	switch (sqe.opcode) {
	case KIPC_SYS_net_node:
	case KIPC_SYS_net_stat:
	case KIPC_SYS_net_peer:
		return true;
	case KIPC_SYS_send:
	case KIPC_SYS_call:
	case KIPC_SYS_receive:
		return KIPC_NET_IS_PID(sqe.target);
	case KIPC_SYS_mbox_send:
	case KIPC_SYS_mbox_call:
	case KIPC_SYS_mbox_receive:
	case KIPC_SYS_mbox_destroy:
	case KIPC_SYS_mbox_stat:
	case KIPC_SYS_mbox_setattr:
	case KIPC_SYS_mbox_set_owner:
	case KIPC_SYS_mbox_grant:
	case KIPC_SYS_mbox_revoke:
	case KIPC_SYS_mbox_info:
		return KIPC_NET_IS_MBOX(sqe.target);
	case KIPC_SYS_task_info: /* a remote caller's proxy here is a task here */
		return KIPC_NET_IS_PID(sqe.target) && !by_pid_.count(pid_t(sqe.target));
	case KIPC_SYS_waiter_list:
	case KIPC_SYS_msg_list: /* a task queue (by pid) or a mailbox */
		return (sqe.flags & KIPC_INTRO_TASKQ)
			       ? KIPC_NET_IS_PID(sqe.target) && !by_pid_.count(pid_t(sqe.target))
			       : KIPC_NET_IS_MBOX(sqe.target);
	case KIPC_SYS_mbox_open: {
		char pre[5];
		return sqe.len > 5 && mm.copy_from_user(pre, sqe.addr, 5) == 0 &&
		       memcmp(pre, KIPC_NET_PREFIX, 5) == 0;
	}
	case KIPC_SYS_mbox_receive_set: {
		/* A set with a remote member: EXDEV (the core would say EINVAL). */
		uint32_t n = sqe.len2 / sizeof(int64_t);
		if (n == 0 || n > 1024)
			return false;
		std::vector<int64_t> ids(n);
		if (mm.copy_from_user(ids.data(), sqe.addr2, n * sizeof(int64_t)))
			return false;
		for (int64_t id : ids)
			if (KIPC_NET_IS_MBOX(id))
				return true;
		return false;
	}
	case KIPC_SYS_cancel:
		for (auto &[seq, o] : out_)
			if (o.priv == priv && o.user_data == uint64_t(sqe.target) &&
			    o.op != KIPC_SYS_cancel)
				return true;
		return false;
	default:
		return false;
	}
}

/*
 * Traced as the core traces a call (SYSCALL now, SYSRET at its
 * completion, trace.h), with a NETSEND when it goes to another node.
 */
void NetImpl::submit(const NetCaller &c, const kipc_sqe &sqe)
{
	kernel_.trace_call(c.task, sqe);
	long r = start_out(c, sqe);
	if (r == kQueued) {
		if (kernel_.tracing()) {
			const Out &o = out_.rbegin()->second; /* start_out's (new_out) */
			trace_net(c.task, KIPC_TRACE_NETSEND, o.op, 0, 0,
				  o.op == KIPC_SYS_mbox_send || o.op == KIPC_SYS_mbox_call
					  ? o.source : 0, o.seq, epoch_, o.label);
		}
		return;
	}
	kipc_cqe cqe{};
	cqe.user_data = sqe.user_data;
	cqe.res = r;
	kernel_.trace_ret(c.task, cqe, sqe.opcode);
	sink_.complete(c.priv, cqe);
}

void NetImpl::trace_net(kipc::Task *t, uint16_t event, uint16_t op, uint32_t flags, int64_t res,
			int64_t mbox, uint64_t seq, uint64_t epoch, const std::string &name)
{
	kipc_trace_net n{};
	n.event = event;
	n.op = op;
	n.flags = flags;
	n.res = int32_t(std::clamp<int64_t>(res, INT32_MIN, INT32_MAX));
	n.mbox = mbox;
	n.seq = seq;
	n.epoch = epoch;
	size_t first = sizeof n.name - 1;
	if (name.size() > first) /* cut here, the rest in NETNAMEs (trace.h) */
		n.flags |= KIPC_TRACE_F_TRUNC | KIPC_TRACE_F_MORE;
	name.copy(n.name, first);
	kipc_trace_event e;
	static_assert(sizeof n == sizeof e);
	memcpy(&e, &n, sizeof e);
	kernel_.trace_record(t, e);
	for (size_t off = first; off < name.size();) {
		kipc_trace_name x{};
		x.event = KIPC_TRACE_NETNAME;
		x.op = op;
		x.mbox = mbox;
		size_t k = name.copy(x.text, sizeof x.text, off);
		off += k;
		if (off < name.size())
			x.flags = KIPC_TRACE_F_MORE;
		static_assert(sizeof x == sizeof e);
		memcpy(&e, &x, sizeof e);
		kernel_.trace_record(t, e);
	}
}

int NetImpl::node_index(const std::string &name)
{
	auto it = node_ix_.find(name);
	if (it != node_ix_.end())
		return it->second;
	if (nodes_.size() > KIPC_NET_INDEX_MAX)
		return -ENOSPC;
	Node n;
	n.name = name;
	heard_of(name);
	nodes_.push_back(n);
	node_ix_[name] = uint16_t(nodes_.size() - 1);
	return int(nodes_.size() - 1);
}

Out &NetImpl::new_out(const NetCaller *c, uint64_t user_data, uint16_t node, uint8_t op)
{
	uint64_t seq = next_seq_++;
	Out &o = out_[seq];
	o.seq = seq;
	o.node = node;
	nodes_[node].open.insert(seq);
	o.priv = c ? c->priv : nullptr;
	o.mm = c ? c->mm : nullptr;
	o.task = c ? c->task : nullptr;
	o.user_data = user_data;
	o.op = op;
	o.news = now_ns();
	o.w.kind = W_REQ;
	o.w.epoch = epoch_;
	o.w.seq = seq;
	o.w.op = op;
	if (c) {
		o.w.pid = c->pid;
		o.w.uid = c->uid;
		o.w.gid = c->gid;
		Contact &ct = contacted_[c->priv];
		ct.pid = c->pid;
		Chan &ch = ct.nodes[node];
		if (!ch.inc)
			ch.inc = seq;
		o.w.inc = ch.inc;
		o.w.order = ++ch.next;
		ch.open.insert(o.w.order);
	}
	return o;
}

long NetImpl::start_out(const NetCaller &c, const kipc_sqe &sqe)
{
	switch (sqe.opcode) {
	case KIPC_SYS_net_node: {
		if (sqe.flags || sqe.len == 0 || sqe.len > KIPC_NET_NODE_MAX)
			return -EINVAL;
		std::string name(sqe.len, '\0');
		if (c.mm->copy_from_user(name.data(), sqe.addr, sqe.len))
			return -EFAULT;
		if (!NetConfig::valid_node(name))
			return -EINVAL;
		return node_index(name);
	}
	case KIPC_SYS_net_stat: {
		if (sqe.flags)
			return -EINVAL;
		if (sqe.len2 < sizeof(kipc_net_stat))
			return -EINVAL;
		kipc_net_stat s = st_;
		s.connected = connected_;
		s.noutstanding = uint32_t(out_.size());
		uint32_t np = 0;
		for (auto &[n, p] : peers_)
			np += uint32_t(p.proxies.size());
		s.nproxies = np;
		for (auto &[n, p] : peers_)
			s.partial_bytes += p.partial_bytes;
		return c.mm->copy_to_user(sqe.addr2, &s, sizeof s) ? -EFAULT : 0;
	}
	case KIPC_SYS_net_peer: {
		if (sqe.flags)
			return -EINVAL;
		if (sqe.len2 < sizeof(kipc_net_peer))
			return -EINVAL;
		auto it = by_pid_.find(pid_t(sqe.target));
		if (sqe.target != pid_t(sqe.target) || it == by_pid_.end())
			return -ESRCH;
		kipc_net_peer np{};
		snprintf(np.node, sizeof np.node, "%s", it->second->peer->name.c_str());
		np.pid = it->second->rpid;
		np.uid = it->second->ruid;
		np.mapped_uid = it->second->uid;
		return c.mm->copy_to_user(sqe.addr2, &np, sizeof np) ? -EFAULT : 0;
	}
	case KIPC_SYS_mbox_open: {
		if (sqe.flags & KIPC_O_CREAT)
			return -EXDEV; /* mailboxes are created on their home node */
		if (sqe.flags & ~uint32_t(KIPC_O_EXCL))
			return -EINVAL;
		if (sqe.len > kMaxName)
			return -ENAMETOOLONG;
		std::string name(sqe.len, '\0');
		if (c.mm->copy_from_user(name.data(), sqe.addr, sqe.len))
			return -EFAULT;
		size_t slash = name.find('/', 5);
		if (slash == std::string::npos || slash == name.size() - 1)
			return -EINVAL;
		std::string node = name.substr(5, slash - 5);
		if (!NetConfig::valid_node(node))
			return -EINVAL;
		int ix = node_index(node);
		if (ix < 0)
			return ix;
		uint64_t hold = sizeof(Wire) + (name.size() - slash); /* as a send's (send_op) */
		if (kernel_.charge_host(c.uid, hold))
			return -ENOSPC;
		Out &o = new_out(&c, sqe.user_data, uint16_t(ix), KIPC_SYS_mbox_open);
		o.uid = c.uid;
		o.charged = hold;
		o.data.assign(name.begin() + long(slash), name.end());
		o.label = node + ":" + name.substr(slash);
		transmit(o, now_ns());
		return kQueued;
	}
	case KIPC_SYS_send:
	case KIPC_SYS_call: {
		uint32_t ix = KIPC_NET_PID_INDEX(sqe.target);
		if (ix >= nodes_.size())
			return -EINVAL;
		return send_op(c, sqe, uint16_t(ix), KIPC_NET_PID_PID(sqe.target),
			       fmt::format("{}:{}", nodes_[ix].name, KIPC_NET_PID_PID(sqe.target)));
	}
	case KIPC_SYS_mbox_send:
	case KIPC_SYS_mbox_call: {
		uint64_t h = uint64_t(sqe.target) & ~uint64_t(KIPC_NET_MBOX_BIT);
		if (h >= handles_.size())
			return -EINVAL;
		return send_op(c, sqe, handles_[h].node, handles_[h].home_id, handles_[h].label);
	}
	case KIPC_SYS_cancel: {
		for (auto &[seq, o] : out_) {
			if (o.priv != c.priv || o.user_data != uint64_t(sqe.target) ||
			    o.op == KIPC_SYS_cancel)
				continue;
			if (sqe.flags & ~uint32_t(KIPC_F_INTR))
				return -EINVAL;
			if (o.ntx == 0) {
				/* Never sent: cancel it here. */
				finish(o, (sqe.flags & KIPC_F_INTR) ? -EINTR : -ECANCELED,
				       nullptr, nullptr, 0);
				return 0;
			}
			uint16_t node = o.node;
			uint64_t target = seq;
			std::string label = o.label;
			Out &x = new_out(&c, sqe.user_data, node, KIPC_SYS_cancel);
			x.w.target = int64_t(target);
			x.label = std::move(label);
			x.w.flags = sqe.flags;
			transmit(x, now_ns());
			return kQueued;
		}
		return -ENOENT;
	}
	default:
		/* receive, receive_set, stat, setattr, grant, info, the
		 * waiter and message lists ... of a remote object */
		return -EXDEV;
	}
}

long NetImpl::send_op(const NetCaller &c, const kipc_sqe &sqe, uint16_t node, int64_t target,
		      const std::string &label)
{
	bool call = sqe.opcode == KIPC_SYS_call || sqe.opcode == KIPC_SYS_mbox_call;
	if (sqe.flags & KIPC_F_CACHE)
		return -EXDEV;
	uint32_t allowed = KIPC_F_WAIT_MASK | KIPC_F_TYPE | (call ? KIPC_F_TRUNC | KIPC_F_EXCEPT : 0);
	if (sqe.flags & ~allowed)
		return -EINVAL;
	if (sqe.prio > KIPC_PRIO_MAX)
		return -EINVAL;
	/* Its REQ goes in parts if it does not fit one NATS message
	 * (publish()); the home's msgsize_max decides the rest there. */
	if (sqe.len > kMaxData)
		return -EMSGSIZE;
	if (node == 0 || node >= nodes_.size())
		return -EINVAL;
	if (call && !c.mm->access_ok(sqe.addr2, sqe.len2))
		return -EFAULT;
	std::vector<uint8_t> payload(sqe.len);
	if (sqe.len && c.mm->copy_from_user(payload.data(), sqe.addr, sqe.len))
		return -EFAULT;
	/* The origin's copy (kept for retransmissions until the answer) and
	 * room for a reply that may come in parts: held for the caller, so
	 * charged to its uid, as its message would be; ENOSPC, nothing sent. */
	uint64_t hold = sizeof(Wire) + payload.size() + (call ? rx_room(sqe.len2) : 0);
	if (kernel_.charge_host(c.uid, hold))
		return -ENOSPC;
	/* Deadlines become relative: clocks are per machine. */
	uint32_t flags = sqe.flags & ~uint32_t(KIPC_F_ABSTIME | KIPC_F_REALTIME | KIPC_F_TIMEOUT);
	int64_t timeout = 0;
	if (sqe.flags & (KIPC_F_TIMEOUT | KIPC_F_ABSTIME | KIPC_F_REALTIME)) {
		if (sqe.timeout < 0)
			return -EINVAL;
		timeout = sqe.timeout;
		if (sqe.flags & KIPC_F_REALTIME)
			timeout = sqe.timeout - real_ns();
		else if (sqe.flags & KIPC_F_ABSTIME)
			timeout = sqe.timeout - mono_ns();
		if (timeout < 0)
			timeout = 0;
		flags |= KIPC_F_TIMEOUT;
	}
	Out &o = new_out(&c, sqe.user_data, node, sqe.opcode);
	o.uid = c.uid;
	o.charged = hold;
	o.w.flags = flags;
	o.w.prio = sqe.prio;
	o.w.type = sqe.type;
	o.w.timeout = timeout;
	o.w.target = target;
	o.w.len2 = call ? sqe.len2 : 0;
	o.addr2 = sqe.addr2;
	o.len2 = call ? sqe.len2 : 0;
	if (sqe.opcode == KIPC_SYS_mbox_send || sqe.opcode == KIPC_SYS_mbox_call)
		o.source = sqe.target;
	o.data = std::move(payload);
	o.label = label;
	transmit(o, now_ns());
	return kQueued;
}

/* ---------------------------------------------------------------- */
/* Origin: transmission, answers, timeouts                           */

void NetImpl::hello(Node &n, int64_t now)
{
	if (n.hello && now - n.hello < cfg_.retry_ms * 1000000)
		return;
	n.hello = now;
	n.asked = true;
	Wire w{};
	w.kind = W_PROBE;
	w.epoch = epoch_;
	publish(n.name, true, encode(w, nullptr, 0));
}

/* Send o (again), or say HELLO while its node is not known to be up. */
void NetImpl::transmit(Out &o, int64_t now)
{
	Node &n = nodes_[o.node];
	if (o.ntx == 0 && (n.epoch == 0 || !n.heard || now - n.heard > cfg_.timeout_ms * 1000000 / 2)) {
		hello(n, now); /* held: rule 1 */
		arm();
		return;
	}
	Wire w = o.w;
	w.peer_epoch = o.acked ? o.acked : n.epoch;
	/* What that node may forget: the results below our lowest request
	 * there (one parked at another node keeps nothing here). */
	w.low = n.open.empty() ? next_seq_ : *n.open.begin();
	if (o.priv) {
		Chan &ch = contacted_[o.priv].nodes[o.node];
		w.order_low = ch.open.empty() ? o.w.order : *ch.open.begin();
	}
	o.last_tx = now;
	if (o.ntx == 0)
		st_.nsent++;
	else
		st_.nretrans++;
	if (o.acked) {
		w.kind = W_PROBE;
		publish(n.name, true, encode(w, nullptr, 0));
	} else {
		w.retry = o.ntx > 0;
		publish(n.name, true, encode(w, o.data.data(), uint32_t(o.data.size())),
			o.ntx > 0 && !o.have.empty() ? &o.have : nullptr);
	}
	o.ntx++;
	arm();
}

/* Complete o for its caller and forget it. */
void NetImpl::finish(Out &o, long res, const kipc_cqe *rc, const uint8_t *data, uint32_t len)
{
	kipc_cqe cqe{};
	if (rc) {
		cqe = *rc;
		cqe.token = 0;
		cqe.seq = 0;
		if (cqe.pid > 0 && cqe.pid < kPidLimit)
			cqe.pid = KIPC_NET_PID(o.node, cqe.pid);
		else
			cqe.pid = 0;
		cqe.source = o.source;
		cqe.flags &= KIPC_CQE_F_TRUNC | KIPC_CQE_F_DELIVERED;
	}
	cqe.user_data = o.user_data;
	cqe.res = res;
	if (res >= 0 && o.op == KIPC_SYS_mbox_open) {
		auto key = std::make_pair(o.node, int64_t(res));
		auto it = handle_ix_.find(key);
		size_t h;
		if (it != handle_ix_.end()) {
			h = it->second;
		} else {
			h = handles_.size();
			handles_.push_back({o.node, res, o.label});
			handle_ix_[key] = h;
		}
		cqe.res = int64_t(KIPC_NET_MBOX_BIT | int64_t(h));
	}
	if (res >= 0 && o.len2 && len) {
		uint32_t n = std::min(len, o.len2);
		if (o.mm->copy_to_user(o.addr2, data, n))
			cqe.res = -EFAULT;
	}
	if (cqe.res == -EHOSTUNREACH)
		st_.nunreach++;
	else if (cqe.res == -ENOLINK)
		st_.nunknown++;
	void *priv = o.priv;
	if (priv) {
		auto ct = contacted_.find(priv);
		if (ct != contacted_.end())
			ct->second.nodes[o.node].open.erase(o.w.order);
	}
	if (o.task && kernel_.tracing()) {
		bool opened = o.op == KIPC_SYS_mbox_open && cqe.res >= 0;
		trace_net(o.task, KIPC_TRACE_NETSEND, o.op, KIPC_TRACE_F_DONE, opened ? 0 : cqe.res,
			  opened ? cqe.res
			  : o.op == KIPC_SYS_mbox_send || o.op == KIPC_SYS_mbox_call ? o.source : 0,
			  o.seq, epoch_, o.label);
		kernel_.trace_ret(o.task, cqe, o.op);
	}
	forget_out(out_.find(o.seq));
	if (priv)
		sink_.complete(priv, cqe);
}

/* An Out is done with: what it held goes back to its caller's uid. */
std::map<uint64_t, Out>::iterator NetImpl::forget_out(std::map<uint64_t, Out>::iterator it)
{
	if (it->second.charged)
		kernel_.uncharge_host(it->second.uid, it->second.charged);
	nodes_[it->second.node].open.erase(it->first);
	return out_.erase(it);
}

void NetImpl::on_answer(const std::string &from, const Wire &w, const uint8_t *data)
{
	if (w.kind == W_PING) {
		/* A home holding proxies of ours asks whether we live. */
		Wire r{};
		r.kind = W_PONG;
		r.epoch = epoch_;
		r.peer_epoch = w.epoch;
		publish(from, true, encode(r, nullptr, 0));
	}
	auto ni = node_ix_.find(from);
	if (ni == node_ix_.end() || !nodes_[ni->second].asked)
		return; /* we never asked it anything */
	Node &n = nodes_[ni->second];
	int64_t now = now_ns();
	if (w.epoch < n.epoch)
		return; /* an older instance: too late */
	if (w.epoch != n.epoch) {
		/* It restarted: what the old one accepted is unknown (rule 2). */
		bool had = n.epoch != 0;
		n.epoch = w.epoch;
		if (had) {
			std::vector<uint64_t> lost;
			for (auto &[seq, o] : out_)
				if (o.node == ni->second && o.acked && o.acked != w.epoch)
					lost.push_back(seq);
			for (uint64_t s : lost)
				finish(out_.at(s), -ENOLINK, nullptr, nullptr, 0);
		}
	}
	n.heard = now;
	if (w.kind == W_PING)
		return;
	if (w.kind == W_BYE) {
		on_bye(n, ni->second, w, data);
		return;
	}
	if (w.seq == 0) {
		/* HELLO answered: send what was held (rule 1). */
		std::vector<uint64_t> held;
		for (auto &[seq, o] : out_)
			if (o.node == ni->second && o.ntx == 0)
				held.push_back(seq);
		for (uint64_t s : held)
			transmit(out_.at(s), now);
		return;
	}
	auto it = out_.find(w.seq);
	if (it == out_.end() || it->second.node != ni->second || w.peer_epoch != epoch_)
		return; /* done already, or not for us */
	Out &o = it->second;
	switch (w.kind) {
	case W_ACK:
		o.acked = w.epoch;
		o.news = now;
		break;
	case W_RES:
		finish(o, w.cqe.res, &w.cqe, data, w.datalen);
		break;
	case W_HAVE:
		if (!o.acked)
			on_have(o, w, data);
		break;
	case W_STALE:
		o.have.clear(); /* another instance: it has nothing of it */
		if (o.acked || o.ntx > 1) {
			finish(o, -ENOLINK, nullptr, nullptr, 0);
		} else {
			o.ntx = 0; /* rule 3: only the new instance saw it */
			o.news = now;
			transmit(o, now);
		}
		break;
	}
}

/*
 * The home has these ranges of o's frame, which comes in parts: its
 * retransmission sends only the parts not wholly among them (and the
 * first, which the home answers as a retransmission). A HAVE that does
 * not describe o's frame (its size, ranges sorted, apart, within it) is
 * dropped: the retransmission then sends every part, as without one.
 */
void NetImpl::on_have(Out &o, const Wire &w, const uint8_t *data)
{
	/* (no news: its bound runs from its last ACK) */
	parse_have(w, data, sizeof(Wire) + o.data.size(), &o.have);
}

/*
 * The home node stopped cleanly (kipcd --stop, SIGTERM). It answered
 * every request of ours it had running (EIDRM for what was parked) and
 * lists every one it ran (ours: it names our epoch). One on the list
 * still waiting here lost its answer: ENOLINK. One not on it was never
 * run by that instance and never will be (a new one answers it STALE):
 * EHOSTUNREACH, not delivered. At once, not at the timeout. The list
 * comes in parts (bye_parts), each for the seqs in [w.low, w.seq).
 */
void NetImpl::on_bye(Node &n, uint16_t ix, const Wire &w, const uint8_t *data)
{
	bool ours = w.peer_epoch == epoch_;
	uint32_t len = w.datalen;
	if (len % sizeof(uint64_t) || (w.seq && w.seq <= w.low))
		return; /* malformed: the requests time out as usual */
	std::vector<uint64_t> ran(ours ? len / sizeof(uint64_t) : 0);
	if (!ran.empty())
		memcpy(ran.data(), data, ran.size() * sizeof(uint64_t));
	std::sort(ran.begin(), ran.end());
	std::vector<std::pair<uint64_t, long>> end;
	for (auto it = out_.lower_bound(w.low); it != out_.end() && (!w.seq || it->first < w.seq);
	     ++it)
		if (it->second.node == ix)
			end.emplace_back(it->first, std::binary_search(ran.begin(), ran.end(), it->first)
							    ? -ENOLINK : -EHOSTUNREACH);
	for (auto &[seq, res] : end)
		finish(out_.at(seq), res, nullptr, nullptr, 0);
	n.heard = 0; /* gone: the next request says hello first */
	n.hello = 0;
}

void NetImpl::tick()
{
	int64_t now = now_ns();
	int64_t bound = cfg_.timeout_ms * 1000000, retry = cfg_.retry_ms * 1000000;
	int64_t pause = std::max<int64_t>(cfg_.retry_ms / 4, 5) * 1000000;
	std::vector<uint64_t> fail, again;
	for (auto &[seq, o] : out_) {
		Node &n = nodes_[o.node];
		if (!o.rx.buf.empty() && !o.rx.told && now - o.rx.last >= pause) {
			/* Its RES's parts paused: say what came, so that the home
			 * sends the rest only (res_have()). */
			o.rx.told = true;
			o.last_tx = now; /* it stands for a retransmission: no probe
					    brings the whole RES meanwhile */
			publish(n.name, true, have_frame(epoch_, o.rx.epoch, seq, o.rx));
		}
		if (now - o.news >= bound)
			fail.push_back(seq);
		else if (now - (o.ntx ? o.last_tx : n.hello) >= retry)
			again.push_back(seq);
	}
	for (uint64_t s : fail) {
		Out &o = out_.at(s);
		finish(o, o.ntx == 0 ? -EHOSTUNREACH : -ENOLINK, nullptr, nullptr, 0);
	}
	for (uint64_t s : again) {
		auto it = out_.find(s);
		if (it != out_.end())
			transmit(it->second, now);
	}
	watch_peers(now);
	bool watching = false;
	for (auto &[name, p] : peers_)
		watching |= !p.proxies.empty() || p.silent || !p.partial.empty() ||
			    !p.seen.empty();
	if (out_.empty() && !watching && armed_) {
		itimerspec its{};
		timerfd_settime(tfd_, 0, &its, nullptr);
		armed_ = false;
	}
}

void NetImpl::arm()
{
	if (armed_)
		return;
	int64_t p = std::max<int64_t>(cfg_.retry_ms / 4, 5) * 1000000;
	itimerspec its{};
	its.it_interval.tv_sec = p / 1000000000;
	its.it_interval.tv_nsec = p % 1000000000;
	its.it_value = its.it_interval;
	timerfd_settime(tfd_, 0, &its, nullptr);
	armed_ = true;
}

void NetImpl::task_exit(void *priv)
{
	for (auto it = out_.begin(); it != out_.end();)
		it = it->second.priv == priv ? forget_out(it) : std::next(it);
	auto c = contacted_.find(priv);
	if (c == contacted_.end())
		return;
	/* Its proxies go: an EXIT of our own, to each node it used. */
	Contact ct = std::move(c->second);
	contacted_.erase(c);
	int64_t now = now_ns();
	for (auto &[node, ch] : ct.nodes) {
		/* After everything it sent there; it waits for none of it. */
		Out &o = new_out(nullptr, 0, node, OP_EXIT);
		o.w.pid = ct.pid;
		o.w.inc = ch.inc;
		o.w.order = ++ch.next;
		o.w.order_low = o.w.order;
		transmit(o, now);
	}
}

/* ---------------------------------------------------------------- */
/* Home: running remote requests on proxies                          */

void NetImpl::answer(Peer &p, uint64_t seq, uint16_t kind, long res, const kipc_cqe *cqe,
		     const void *data, uint32_t len, std::vector<uint8_t> *keep)
{
	Wire w{};
	w.kind = kind;
	w.epoch = epoch_;
	w.peer_epoch = p.epoch;
	w.seq = seq;
	if (cqe)
		w.cqe = *cqe;
	w.cqe.res = res;
	std::vector<uint8_t> b = encode(w, data, len);
	if (keep)
		*keep = b;
	publish(p.name, false, std::move(b));
}

/*
 * End rpid's proxy: its task exits, which withdraws what it has parked
 * (nothing of it was delivered). res 0: nobody waits for its running
 * requests (its task is gone), they are forgotten; else they are
 * answered res and remembered as done, for a late retransmission. The
 * results of done ones stay either way.
 */
void NetImpl::end_proxy(Peer &p, pid_t rpid, long res, long why, uint64_t seq)
{
	auto it = p.proxies.find(rpid);
	if (it == p.proxies.end())
		return;
	Proxy *px = it->second.get();
	if (seq) {
		/* Ended by request seq (its EXIT, a new task with its pid):
		 * its requests still coming are refused until the origin's
		 * low-water mark passes seq (forget_exited()). */
		if (auto e = p.exited.find(rpid); e != p.exited.end()) {
			p.exited_by_seq.erase(e->second.seq);
			unhold(p, e->second.uid, kEndedBytes);
		}
		p.exited[rpid] = {px->inc, seq, px->ended_uid};
		p.exited_by_seq[seq] = rpid;
	} else {
		unhold(p, px->ended_uid, kEndedBytes); /* its peer's tasks are all gone */
	}
	if (kernel_.tracing()) /* why: uapi/kipc/trace.h, NETEND */
		trace_net(px->task, KIPC_TRACE_NETEND, KIPC_SYS_NONE, 0, why, 0, 0, p.epoch,
			  fmt::format("{}:{}", p.name, rpid));
	for (auto s = p.seen.begin(); s != p.seen.end();) {
		if (s->second.proxy != px) {
			++s;
		} else if (s->second.done || res) {
			if (!s->second.done) {
				s->second.done = true;
				answer(p, s->first, W_RES, res, nullptr, nullptr, 0, &s->second.res);
			}
			s->second.proxy = nullptr;
			s->second.reply = 0; /* (its region goes with the proxy) */
			settle(p, s->second);
			++s;
		} else {
			s = forget_seen(p, s);
		}
	}
	for (auto &[order, h] : px->held)
		release_held(p, h);
	for (auto pa = p.partial.begin(); pa != p.partial.end();) {
		auto next = std::next(pa);
		if (pa->second.pid == rpid)
			drop_partial(p, pa); /* its task is gone: it never runs */
		pa = next;
	}
	if (px->task) {
		before_core(px->task, nullptr);
		kernel_.exit(px->task);
	}
	by_pid_.erase(px->pid);
	p.proxies.erase(it);
}

void NetImpl::end_proxies(Peer &p, long res, long why)
{
	std::vector<pid_t> all;
	for (auto &[rpid, px] : p.proxies)
		all.push_back(rpid);
	for (pid_t r : all)
		end_proxy(p, r, res, why);
}

void NetImpl::reset_peer(Peer &p, long why)
{
	end_proxies(p, 0, why);
	while (!p.partial.empty())
		drop_partial(p, p.partial.begin());
	p.unacked.clear();
	clear_seen(p);
	forget_exited(p, UINT64_MAX);
	p.low = 0;
	p.silent = false;
}

/* The ended tasks whose ending request is below the origin's low-water
 * mark are forgotten: any request of theirs still coming is below it too
 * (refused ENOLINK, on_request()), since a task's requests come before
 * its end and the mark never goes back within an epoch. */
void NetImpl::forget_exited(Peer &p, uint64_t below)
{
	while (!p.exited_by_seq.empty() && p.exited_by_seq.begin()->first < below) {
		auto e = p.exited.find(p.exited_by_seq.begin()->second);
		unhold(p, e->second.uid, kEndedBytes);
		p.exited.erase(e);
		p.exited_by_seq.erase(p.exited_by_seq.begin());
	}
}

/*
 * The home's watch on its origins: a peer with proxies here that has
 * been silent for net_timeout_ms/2 is pinged every net_retry_ms (a live
 * origin answers PONG; one with a request parked here probes it anyway);
 * silent for net_timeout_ms, its node is taken for dead (or cut off):
 * its proxies end, their parked requests are withdrawn and answered
 * ENOLINK (in case it hears). Silent for twice that, its remembered
 * results go too: by then it has given up every request it made
 * (each fails ENOLINK net_timeout_ms after its last news from us).
 */
void NetImpl::watch_peers(int64_t now)
{
	int64_t bound = cfg_.timeout_ms * 1000000, retry = cfg_.retry_ms * 1000000;
	int64_t tick = std::max<int64_t>(cfg_.retry_ms / 4, 5) * 1000000;
	for (auto &[name, p] : peers_) {
		int64_t quiet = now - p.heard;
		ack_parked(p, now);
		for (auto pa = p.partial.begin(); pa != p.partial.end();) {
			auto next = std::next(pa);
			if (now - pa->second.last >= bound) {
				klog(fmt::format("kipc: net: node {}: request {} ({} bytes) incomplete "
						 "for {} ms: dropped, not run", name, pa->first,
						 pa->second.buf.size(), (now - pa->second.last) / 1000000));
				drop_partial(p, pa);
			} else if (!pa->second.told && now - pa->second.last >= tick) {
				/* Its parts paused: say what came (W_HAVE), so that its
				 * retransmission carries the rest only. */
				pa->second.told = true;
				publish(p.name, false, have_frame(epoch_, p.epoch, pa->first, pa->second));
			}
			pa = next;
		}
		if (!p.proxies.empty()) {
			if (quiet >= bound) {
				klog(fmt::format("kipc: net: node {} silent for {} ms: ending its {} "
						 "proxies", name, quiet / 1000000, p.proxies.size()));
				end_proxies(p, -ENOLINK, -ENOLINK);
				p.silent = true;
			} else if (quiet >= bound / 2 && now - p.pinged >= retry) {
				p.pinged = now;
				Wire w{};
				w.kind = W_PING;
				w.epoch = epoch_;
				w.peer_epoch = p.epoch;
				publish(p.name, false, encode(w, nullptr, 0));
			}
		}
		if ((p.silent || !p.seen.empty()) && quiet >= 2 * bound && p.proxies.empty()) {
			/* Its answers kept for retransmissions go too (also
			 * those of a node that never had a proxy here, its
			 * refusals): it gave up every request by now. */
			clear_seen(p);
			forget_exited(p, UINT64_MAX);
			p.silent = false;
		}
	}
}

bool NetImpl::shared_uid(uint32_t uid) const
{
	for (auto &[a, b] : cfg_.shared)
		if (uid >= a && uid <= b)
			return true;
	return false;
}

/* The uid a remote caller of p of uid runs as here (map_creds()): the
 * bytes we hold for its requests are charged to it. */
uid_t NetImpl::mapped_uid(const Peer &p, uint32_t uid) const
{
	return shared_uid(uid) ? uid : cfg_.origin_uid(p.name);
}

/* A remembered request is forgotten: what it held goes back to its uid. */
std::map<uint64_t, Seen>::iterator NetImpl::forget_seen(Peer &p,
							 std::map<uint64_t, Seen>::iterator it)
{
	unhold(p, it->second.uid, it->second.charged);
	return p.seen.erase(it);
}

void NetImpl::clear_seen(Peer &p)
{
	for (auto it = p.seen.begin(); it != p.seen.end();)
		it = forget_seen(p, it);
}

/* s is answered: of what its call held (the reply buffer, run()), what its
 * kept RES takes stays charged until it is forgotten. */
void NetImpl::settle(Peer &p, Seen &s)
{
	if (s.charged > s.res.size()) {
		unhold(p, s.uid, s.charged - s.res.size());
		s.charged = s.res.size();
	}
}

/* A held request leaves the held map (its turn, given up, its proxy ends). */
void NetImpl::release_held(Peer &p, Proxy::Held &h)
{
	if (!h.refused)
		unhold(p, h.uid, sizeof(Wire) + h.data.size());
}

/*
 * Every byte a home holds for an origin's callers is charged to the uid
 * they run as here, in its bytes_per_user; what is charged to net_uid,
 * which the callers of every origin share, is also bounded per origin
 * (net_origin_share percent of it), so that one node cannot use up
 * what the others' callers may hold. 0 or -ENOSPC (nothing charged).
 */
int NetImpl::hold(Peer &p, uid_t uid, uint64_t bytes)
{
	if (uid == cfg_.uid &&
	    p.net_bytes + bytes > kernel_.limits().bytes_per_user * cfg_.origin_share / 100)
		return -ENOSPC;
	if (kernel_.charge_host(uid, bytes))
		return -ENOSPC;
	if (uid == cfg_.uid)
		p.net_bytes += bytes;
	return 0;
}

void NetImpl::unhold(Peer &p, uid_t uid, uint64_t bytes)
{
	if (!bytes)
		return;
	kernel_.uncharge_host(uid, bytes);
	if (uid == cfg_.uid)
		p.net_bytes -= bytes;
}

/*
 * Remember w's id (running, or refused: done, with its answer kept for
 * its retransmissions), charged what its kept answer takes (a header:
 * a call's reply buffer is charged when it runs). nullptr when that does
 * not fit: it is then answered without being remembered (a
 * retransmission is taken as new: it did not run).
 */
Seen *NetImpl::remember(Peer &p, const Wire &w)
{
	uid_t uid = mapped_uid(p, w.uid);
	if (hold(p, uid, sizeof(Wire)))
		return nullptr;
	Seen &s = p.seen[w.seq];
	s.op = w.op;
	s.uid = uid;
	s.charged = sizeof(Wire);
	arm(); /* watch_peers() forgets it if its origin falls silent */
	return &s;
}

/* The mapping policy: shared uids keep their uid and gid, others run as
 * their origin's net_origin_uids uid (its gid the same number), or
 * net_uid/net_gid. */
kipc::Creds NetImpl::map_creds(Proxy *px, const Wire &w)
{
	gid_t gid;
	uid_t uid = cfg_.origin_uid(px->peer->name, &gid);
	bool shared = shared_uid(w.uid);
	kipc::Creds cr(px->pid, shared ? w.uid : uid, shared ? w.gid : gid);
	px->ruid = w.uid;
	px->rgid = w.gid;
	px->uid = cr.uid;
	return cr;
}

Proxy *NetImpl::proxy_of(Peer &p, const Wire &w, int *err)
{
	auto it = p.proxies.find(w.pid);
	if (it != p.proxies.end())
		return it->second.get();
	if (w.pid <= 0 || w.pid >= kPidLimit) {
		*err = -EINVAL;
		return nullptr;
	}
	/* Its pid here is its address, node-qualified: a receiver of its
	 * message sends back to the sender itself (network.md). The node is
	 * the one NATS authenticated (the subject), never the payload's. */
	int ix = node_index(p.name);
	if (ix < 0) {
		*err = ix;
		return nullptr;
	}
	/* Room for its entry once it ends (kEndedBytes), taken now. */
	uid_t euid = mapped_uid(p, w.uid);
	if (p.proxies.size() + p.exited.size() >= kMaxSeen) {
		*err = -EAGAIN;
		return nullptr;
	}
	if (hold(p, euid, kEndedBytes)) {
		*err = -ENOSPC;
		return nullptr;
	}
	auto px = std::make_unique<Proxy>();
	px->ended_uid = euid;
	px->peer = &p;
	px->rpid = w.pid;
	px->pid = KIPC_NET_PID(ix, w.pid);
	px->inc = w.inc;
	kipc::Creds cr = map_creds(px.get(), w);
	std::string comm = fmt::format("net:{}:{}", p.name, w.pid);
	int r = kernel_.attach(cr, &px->mm, comm, px->tag(), &px->task);
	if (r < 0) {
		unhold(p, euid, kEndedBytes);
		*err = r;
		return nullptr;
	}
	Proxy *raw = px.get();
	by_pid_[raw->pid] = raw;
	p.proxies[w.pid] = std::move(px);
	arm(); /* watch_peers() watches its node */
	return raw;
}

/* A message of p's: false if of an old instance of it. */
bool NetImpl::peer_heard(Peer &p, const Wire &w)
{
	if (w.epoch < p.epoch)
		return false; /* an old instance of the origin */
	if (w.epoch > p.epoch) {
		reset_peer(p, -ECONNRESET); /* it restarted: its old tasks are gone */
		p.epoch = w.epoch;
	}
	p.heard = now_ns();
	p.silent = false;
	return true;
}

void NetImpl::on_request(const std::string &from, const Wire &w, const uint8_t *data)
{
	Peer &p = peers_[from];
	p.name = from;
	if (!peer_heard(p, w))
		return;
	if (w.kind == W_PONG)
		return; /* it lives (watch_peers) */
	if (w.kind == W_HAVE) {
		res_have(p, w, data);
		return;
	}
	if (w.kind == W_BYE) {
		reset_peer(p, -ESHUTDOWN); /* its kipcd stopped: its tasks are gone */
		return;
	}
	if (w.kind == W_PROBE && w.seq == 0) {
		answer(p, 0, W_ACK, 0, nullptr, nullptr, 0); /* HELLO */
		return;
	}
	if (w.peer_epoch != epoch_) {
		refused(p, nullptr, w, -ESTALE);
		answer(p, w.seq, W_STALE, -ENOLINK, nullptr, nullptr, 0);
		return;
	}
	/* Forget what the origin no longer waits for (the highest mark it
	 * sent: a late copy of an old frame carries an older one). */
	p.low = std::max(p.low, w.low);
	while (!p.seen.empty() && p.seen.begin()->first < p.low && p.seen.begin()->second.done)
		forget_seen(p, p.seen.begin());
	forget_exited(p, p.low);

	auto it = p.seen.find(w.seq);
	if (it != p.seen.end()) {
		st_.ndups++;
		if (it->second.done) {
			publish(p.name, false, it->second.res);
			return;
		}
		answer(p, w.seq, W_ACK, 0, nullptr, nullptr, 0);
		if (it->second.proxy)
			advance(p, it->second.proxy, w.order_low);
		return;
	}
	if (w.kind == W_PROBE || w.seq < p.low) {
		refused(p, nullptr, w, -ENOLINK);
		answer(p, w.seq, W_RES, -ENOLINK, nullptr, nullptr, 0);
		return;
	}
	if (p.seen.size() >= kMaxSeen) {
		refused(p, nullptr, w, -EAGAIN);
		answer(p, w.seq, W_RES, -EAGAIN, nullptr, nullptr, 0);
		return;
	}
	Proxy *px = nullptr;
	if (long err = admit(p, w, &px)) {
		refused(p, nullptr, w, err);
		Seen *s = remember(p, w);
		if (s)
			s->done = true;
		answer(p, w.seq, W_RES, err, nullptr, nullptr, 0, s ? &s->res : nullptr);
		return;
	}
	/* Its answer is kept for its retransmissions until the origin's
	 * low-water mark passes it: charged, ENOSPC (not run, not kept). */
	long full = px->running >= kMaxRunning ? -EAGAIN : 0;
	Seen *s = full ? nullptr : remember(p, w);
	if (!s) {
		full = full ? full : -ENOSPC;
		refused(p, px, w, full);
		answer(p, w.seq, W_RES, full, nullptr, nullptr, 0); /* not run, not kept */
		return;
	}
	s->proxy = px;
	px->running++;
	if (w.order < px->next) {
		done(p, px, w.seq, -ENOLINK); /* its caller gave it up (order_low) */
		return;
	}
	/* Requests of one task run in the order it made them (rule 5 of
	 * internals.md across nodes): a retransmitted one is not overtaken. */
	if (w.order == px->next && px->held.empty() && w.order_low <= px->next) {
		px->next++; /* its turn, nothing to skip: run from the frame */
		run(p, px, w, data);
	} else if (px->held.count(w.order)) {
		done(p, px, w.seq, -EINVAL); /* two requests of one order: a forger's */
	} else {
		/* Held for its turn: a copy, charged to the uid its caller runs
		 * as here; beyond its bytes_per_user it is refused ENOSPC at
		 * once (not run), and its turn is skipped. */
		Proxy::Held &h = px->held[w.order];
		h.w = w;
		h.uid = mapped_uid(p, w.uid);
		if (hold(p, h.uid, sizeof(Wire) + w.datalen)) {
			h.refused = true;
			done(p, px, w.seq, -ENOSPC);
		} else {
			h.data.assign(data, data + w.datalen);
		}
		advance(p, px, w.order_low);
	}
	auto again = p.seen.find(w.seq);
	if (again != p.seen.end() && !again->second.done)
		p.unacked.emplace_back(p.heard, w.seq); /* parked or held: ACK at a tick */
}

/*
 * Acknowledge the requests that arrived at least a tick ago and still
 * run (parked, held for their turn): the origin then probes instead of
 * retransmitting them. One that completed by then had its RES alone,
 * so a call or a send that waits a little costs no ACK. The origin
 * retransmits after net_retry_ms; the ACK goes between net_retry_ms/4
 * and net_retry_ms/2 after arrival (a late one: the retransmission is
 * answered ACK as a duplicate).
 */
void NetImpl::ack_parked(Peer &p, int64_t now)
{
	int64_t tick = std::max<int64_t>(cfg_.retry_ms / 4, 5) * 1000000;
	while (!p.unacked.empty() && now - p.unacked.front().first >= tick) {
		uint64_t seq = p.unacked.front().second;
		p.unacked.pop_front();
		auto it = p.seen.find(seq);
		if (it != p.seen.end() && !it->second.done)
			answer(p, seq, W_ACK, 0, nullptr, nullptr, 0);
	}
}

/*
 * The origin of a call says what of its RES, which came in parts, it
 * has (its parts paused: one was lost): the RES goes again at once, but
 * only the parts not wholly among those ranges. Nothing of it is kept
 * (a probe has the whole RES again). One that does not describe a kept
 * RES (another epoch, seq or size, bad ranges) is dropped: the origin's
 * probe then has the whole RES again, as without a HAVE.
 */
void NetImpl::res_have(Peer &p, const Wire &w, const uint8_t *data)
{
	auto it = p.seen.find(w.seq);
	std::map<uint32_t, uint32_t> have;
	if (w.peer_epoch != epoch_ || it == p.seen.end() || !it->second.done ||
	    !parse_have(w, data, it->second.res.size(), &have))
		return;
	publish(p.name, false, it->second.res, &have);
}

/* Which proxy runs w: its pid's, of its incarnation (a pid is reused). */
long NetImpl::admit(Peer &p, const Wire &w, Proxy **out)
{
	if (w.pid <= 0 || w.pid >= kPidLimit || w.inc == 0 || w.order == 0)
		return -EINVAL;
	if (auto e = p.exited.find(w.pid); e != p.exited.end() && w.inc <= e->second.inc)
		return -ESRCH; /* that task is gone; its origin waits for nothing */
	auto it = p.proxies.find(w.pid);
	if (it != p.proxies.end()) {
		if (it->second->inc == w.inc) {
			*out = it->second.get();
			return 0;
		}
		if (it->second->inc > w.inc)
			return -ESRCH;
		end_proxy(p, w.pid, 0, -ESRCH, w.seq); /* a new task with the pid: the old is gone */
	}
	int err = 0;
	*out = proxy_of(p, w, &err);
	return *out ? 0 : err;
}

/* Run px's held requests whose turn it is; order_low skips given-up ones. */
void NetImpl::advance(Peer &p, Proxy *px, uint32_t order_low)
{
	if (order_low > px->next) {
		px->next = order_low;
		std::vector<uint64_t> gone;
		for (auto h = px->held.begin(); h != px->held.end() && h->first < order_low;) {
			gone.push_back(h->second.w.seq);
			release_held(p, h->second);
			h = px->held.erase(h);
		}
		for (uint64_t seq : gone)
			done(p, px, seq, -ENOLINK);
	}
	while (!px->held.empty() && px->held.begin()->first == px->next) {
		Proxy::Held h = std::move(px->held.begin()->second);
		px->held.erase(px->held.begin());
		px->next++;
		release_held(p, h); /* the core charges what it keeps of it */
		if (h.refused)
			continue;
		if (!run(p, px, h.w, h.data.data()))
			return; /* the proxy is gone (EXIT) */
	}
}

/* A request answered without running (traced, uapi/kipc/trace.h NETREFUSE). */
void NetImpl::refused(Peer &p, Proxy *px, const Wire &w, long res)
{
	if (!kernel_.tracing())
		return;
	if (auto it = p.proxies.find(w.pid); !px && it != p.proxies.end())
		px = it->second.get(); /* its caller's proxy, when there is one */
	trace_net(px ? px->task : nullptr, KIPC_TRACE_NETREFUSE, w.op, 0, res,
		  w.op == KIPC_SYS_mbox_send || w.op == KIPC_SYS_mbox_call ? w.target : 0, w.seq,
		  w.epoch, fmt::format("{}:{}", p.name, w.pid));
}

/* seq is answered res without having run (a refusal), or ran (OP_EXIT: 0). */
void NetImpl::done(Peer &p, Proxy *px, uint64_t seq, long res)
{
	auto it = p.seen.find(seq);
	if (it == p.seen.end() || it->second.done)
		return;
	if (res < 0 && kernel_.tracing()) {
		Wire w{};
		w.op = it->second.op;
		w.seq = seq;
		w.epoch = p.epoch;
		w.pid = px ? px->rpid : 0;
		refused(p, px, w, res);
	}
	it->second.done = true;
	if (px && it->second.proxy == px)
		px->running--;
	answer(p, seq, W_RES, res, nullptr, nullptr, 0, &it->second.res);
	settle(p, it->second);
}

/* Run w on px now. False when px is gone (an EXIT ended it). */
bool NetImpl::run(Peer &p, Proxy *px, const Wire &w, const uint8_t *data)
{
	if (w.op == OP_EXIT) {
		pid_t rpid = px->rpid;
		p.seen[w.seq].proxy = nullptr;
		end_proxy(p, rpid, 0, 0, w.seq);
		done(p, nullptr, w.seq, 0);
		return false;
	}
	kipc_sqe sqe{};
	sqe.opcode = w.op;
	sqe.user_data = w.seq;
	switch (w.op) {
	case KIPC_SYS_mbox_open:
		if (w.datalen == 0 || w.datalen > KIPC_NAME_MAX + 1) {
			done(p, px, w.seq, -EINVAL);
			return true;
		}
		break;
	case KIPC_SYS_send:
	case KIPC_SYS_call:
		if (w.target <= 0 || w.target >= kPidLimit) {
			done(p, px, w.seq, -ESRCH);
			return true;
		}
		break;
	case KIPC_SYS_mbox_send:
	case KIPC_SYS_mbox_call:
	case KIPC_SYS_cancel:
		break;
	default:
		done(p, px, w.seq, -ENOSYS);
		return true;
	}
	uint32_t wflags = KIPC_F_NONBLOCK | KIPC_F_TIMEOUT | KIPC_F_TYPE | KIPC_F_TRUNC |
			  KIPC_F_EXCEPT | KIPC_F_INTR;
	if (w.flags & ~wflags) {
		done(p, px, w.seq, -EINVAL);
		return true;
	}
	/* The caller's credentials as its node knows them now (cred_refresh
	 * there), in the order of its requests: this one runs with them. */
	if (w.uid != px->ruid || w.gid != px->rgid) {
		before_core(px->task, nullptr);
		kernel_.set_creds(px->task, map_creds(px, w));
	}
	Seen &s = p.seen[w.seq];
	uint64_t payload = 0;
	if (w.op == KIPC_SYS_cancel) {
		sqe.target = w.target;
		sqe.flags = w.flags & KIPC_F_INTR;
	} else {
		if (w.op == KIPC_SYS_call || w.op == KIPC_SYS_mbox_call) {
			/* A reply never exceeds the home's largest message nor
			 * kMaxData (its RES goes in parts if it must): a
			 * longer one fails EMSGSIZE for the replier (or is
			 * cut, with KIPC_F_TRUNC), as for a short buffer. Its
			 * buffer here, then its RES kept for retransmissions,
			 * are held for the caller: charged to the uid it runs
			 * as (ENOSPC beyond, not run). */
			uint32_t len2 = std::min({w.len2, kernel_.limits().msgsize_max, kMaxData});
			if (hold(p, s.uid, len2)) {
				done(p, px, w.seq, -ENOSPC);
				return true;
			}
			s.charged += len2;
			s.len2 = len2;
			s.reply = px->mm.alloc(nullptr, 0, s.len2);
			sqe.addr2 = s.reply;
			sqe.len2 = s.len2;
		}
		sqe.flags = w.flags;
		sqe.prio = w.prio;
		sqe.type = w.type;
		sqe.timeout = w.timeout;
		sqe.target = w.target;
		payload = px->mm.borrow(data, w.datalen);
		sqe.addr = payload;
		sqe.len = w.datalen;
	}
	st_.nserved++;
	if (kernel_.tracing())
		trace_net(px->task, KIPC_TRACE_NETRECV, w.op, 0, 0,
			  w.op == KIPC_SYS_mbox_send || w.op == KIPC_SYS_mbox_call ? w.target : 0,
			  w.seq, p.epoch, fmt::format("{}:{}", p.name, px->rpid));
	before_core(px->task, &sqe);
	kernel_.submit(px->task, sqe); /* may complete at once: proxy_complete */
	if (payload)
		px->mm.free(payload);      /* the core copied what it keeps */
	return true;
}

void NetImpl::proxy_complete(void *priv, const kipc_cqe &cqe)
{
	Proxy *px = reinterpret_cast<Proxy *>(reinterpret_cast<uintptr_t>(priv) & ~uintptr_t(1));
	if (cqe.flags & KIPC_CQE_F_MORE)
		return; /* cached sends are refused; nothing else sends MORE */
	Peer &p = *px->peer;
	auto it = p.seen.find(cqe.user_data);
	if (it == p.seen.end() || it->second.done || it->second.proxy != px)
		return;
	Seen &s = it->second;
	px->running--;
	const uint8_t *data = nullptr;
	uint32_t len = 0;
	if (s.reply) {
		const std::vector<uint8_t> *r = px->mm.region(s.reply);
		if (r && cqe.res > 0) {
			data = r->data();
			len = uint32_t(std::min<int64_t>(cqe.res, int64_t(r->size())));
		}
	}
	s.done = true;
	answer(p, cqe.user_data, W_RES, cqe.res, &cqe, data, len, &s.res);
	if (s.reply)
		px->mm.free(s.reply);
	s.reply = 0;
	settle(p, s);
}

/* ---------------------------------------------------------------- */
/* The fabric's messages                                              */

/* Does data split exactly into frames with good headers and lengths? */
static bool whole_frames(const std::vector<uint8_t> &data)
{
	size_t off = 0;
	while (off < data.size()) {
		Wire w;
		if (data.size() - off < sizeof w)
			return false;
		memcpy(&w, data.data() + off, sizeof w);
		size_t left = data.size() - off - sizeof w;
		if (w.magic != kWireMagic || w.version != kWireVersion || w.datalen > left ||
		    w.datalen > kMaxData + kMaxName)
			return false;
		off += sizeof w + w.datalen;
	}
	return off != 0;
}

void NetImpl::on_fabric()
{
	bool up = false;
	std::vector<FabricMsg> msgs = fab_->take(&up);
	if (up != connected_) {
		connected_ = up;
		klog(fmt::format("kipc: net: node {} {} NATS", cfg_.node,
				 up ? "connected to" : "lost"));
	}
	std::string req = fmt::format("kipc.{}.req.", cfg_.node);
	std::string rsp = fmt::format("kipc.{}.rsp.", cfg_.node);
	for (auto &m : msgs) {
		bool is_req = m.subject.rfind(req, 0) == 0;
		bool is_rsp = m.subject.rfind(rsp, 0) == 0;
		if (!is_req && !is_rsp)
			continue;
		std::string from = m.subject.substr(req.size()); /* same length */
		if (!NetConfig::valid_node(from))
			continue;
		heard_of(from);
		/* Frames, one after another (the sender coalesces, nats.cc). A
		 * NATS message arrives whole, so one that does not split exactly
		 * into good frames is a hostile or broken sender's: none runs. */
		if (!whole_frames(m.data))
			continue;
		for (size_t off = 0; off < m.data.size();) {
			Wire w;
			memcpy(&w, m.data.data() + off, sizeof w);
			const uint8_t *data = m.data.data() + off + sizeof w;
			off += sizeof w + w.datalen;
			if (debug_)
				klog(fmt::format("kipc: net: {} kind {} seq {} op {} res {}", m.subject,
						 w.kind, w.seq, w.op, w.cqe.res));
			if (w.room) { /* its server's max_payload: what we send it (room_to) */
				if (is_req)
					peers_[from].room = std::max<size_t>(w.room, kMinRoom);
				else if (auto ni = node_ix_.find(from); ni != node_ix_.end())
					nodes_[ni->second].room = std::max<size_t>(w.room, kMinRoom);
			}
			if (w.kind == W_PART)
				on_part(from, is_req, w, data);
			else if (is_req && (w.kind == W_REQ || w.kind == W_PROBE || w.kind == W_PONG ||
				       w.kind == W_BYE || w.kind == W_HAVE))
				on_request(from, w, data);
			else if (is_rsp && (w.kind == W_ACK || w.kind == W_RES || w.kind == W_STALE ||
					    w.kind == W_PING || w.kind == W_BYE || w.kind == W_HAVE))
				on_answer(from, w, data);
		}
	}
}

} // namespace
#endif /* CONFIG_NET */

std::unique_ptr<Net> Net::create(const NetConfig &cfg, Loop &loop, kipc::Kernel &kernel,
				 kipc::CompletionSink &sink, std::string *err)
{
#ifdef CONFIG_NET
	if (std::string why = cfg.check(); !why.empty()) {
		*err = why;
		return nullptr;
	}
	std::unique_ptr<Fabric> f = make_nats_fabric(cfg, err);
	if (!f)
		return nullptr;
	auto n = std::make_unique<NetImpl>(cfg, loop, kernel, sink, std::move(f));
	if (n->start(err))
		return nullptr;
	return n;
#else
	(void)cfg, (void)loop, (void)kernel, (void)sink;
	*err = "kipcd was built without CONFIG_NET";
	return nullptr;
#endif
}

} // namespace kipcd
