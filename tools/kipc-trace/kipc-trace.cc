// SPDX-License-Identifier: MIT
/*
 * kipc-trace: stream the kipc kernel's tracepoints (see <kipc/trace.h>)
 * as text in the spirit of ftrace's trace_pipe, as Chrome/Perfetto trace
 * JSON, or as a Mermaid sequence diagram of who sent what to whom. See
 * Documentation/man/kipc-trace.1.
 */
#include <csignal>
#include <deque>
#include <fcntl.h>
#include <functional>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <ctime>
#include <getopt.h>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <string>
#include <vector>

#include "../include/tool.h"
#include <kipc/mqueue.h>
#if __has_include(<generated/version.h>)
#include <generated/version.h>
#endif
#ifndef KIPC_VERSION
#define KIPC_VERSION "0.1"
#endif

using json = nlohmann::ordered_json;
using namespace tool;

namespace {

enum class Format { Text, Chrome, Mermaid };

volatile sig_atomic_t stop;
void on_signal(int) { stop = 1; }

int64_t mono_ns()
{
	return kipc_clock_ns(CLOCK_MONOTONIC);
}

std::string link_string(const kipc_trace_event &e)
{
	if (e.mbox)
		return fmt::format("mbox={}", e.mbox);
	if (e.qpid)
		return fmt::format("taskq={}", e.qpid);
	return "";
}

std::string op_name(uint16_t op)
{
	return op == KIPC_SYS_NONE ? "-" : syscall_name(op);
}

std::string flag_string(uint32_t f)
{
	std::string s;
	if (f & KIPC_TRACE_F_CALL) s += " call";
	if (f & KIPC_TRACE_F_REPLY) s += " reply";
	if (f & KIPC_TRACE_F_CACHED) s += " cached";
	if (f & KIPC_TRACE_F_HANDOFF) s += " handoff";
	if (f & KIPC_TRACE_F_PENDING) s += " from-blocked-sender";
	return s;
}

/* EAGAIN for -EAGAIN */
std::string err_name(int64_t res)
{
	const char *n = res < 0 && res > -4096 ? strerrorname_np(int(-res)) : nullptr;
	return n ? n : std::to_string(res);
}

std::string errno_name(int64_t res)
{
	return res < 0 ? "-" + err_name(res) : std::to_string(res);
}

/* The event names of the text format and --event (tool.h's, and ours). */
std::string ev_name(unsigned ev)
{
	switch (ev) {
	case KIPC_TRACE_CREATE: return "create";
	case KIPC_TRACE_OPEN: return "open";
	case KIPC_TRACE_SYSCALL: return "syscall";
	case KIPC_TRACE_SYSRET: return "sysret";
	case KIPC_TRACE_NETSEND: return "netsend";
	case KIPC_TRACE_NETRECV: return "netrecv";
	case KIPC_TRACE_NETREFUSE: return "netrefuse";
	case KIPC_TRACE_NETEND: return "netend";
	}
	return event_name(ev);
}

template <class R> R as(const kipc_trace_event &e)
{
	static_assert(sizeof(R) == sizeof e);
	R r;
	memcpy(&r, &e, sizeof r);
	return r;
}

/* "/jobs", "mq /q", "msq key 0x2a": what CREATE/OPEN name */
std::string obj_label(const kipc_trace_obj &o)
{
	std::string name(o.name, strnlen(o.name, sizeof o.name));
	if (o.flags & KIPC_TRACE_F_TRUNC)
		name += "...";
	if (o.flags & KIPC_TRACE_F_SYSV)
		return o.key ? fmt::format("msq key {:#x}", uint32_t(o.key)) : "msq private";
	if (o.flags & KIPC_TRACE_F_POSIX)
		return "mq " + name;
	return name;
}

bool is_net(const kipc_trace_event &e);
std::string net_name(const kipc_trace_net &n);
std::string end_why(int64_t res);

/* The fields after "event:" in the text format; who(pid) names a task. */
std::string details(const kipc_trace_event &e, const std::function<std::string(int32_t)> &who)
{
	std::string l = link_string(e);
	switch (e.event) {
	case KIPC_TRACE_ATTACH:
	case KIPC_TRACE_EXIT:
		return "";
	case KIPC_TRACE_SEND:
		return fmt::format("{} seq={} len={} prio={}{}{}", l, e.seq, e.len, e.prio,
				   flag_string(e.flags),
				   e.res < 0 ? " failed=" + err_name(e.res)
				   : e.flags & KIPC_TRACE_F_BLOCKED ? " blocked" : "");
	case KIPC_TRACE_CREATE:
	case KIPC_TRACE_OPEN: {
		kipc_trace_obj o = as<kipc_trace_obj>(e);
		return fmt::format("mbox={} name={}", o.mbox, obj_label(o));
	}
	case KIPC_TRACE_ENQUEUE:
		return fmt::format("{} seq={} len={}", l, e.seq, e.len);
	case KIPC_TRACE_BLOCK:
		return fmt::format("{} in {}{}{}", l, op_name(e.op),
				   e.seq ? fmt::format(" seq={}", e.seq) : "", flag_string(e.flags));
	case KIPC_TRACE_WAKE:
		return fmt::format("{}{}{}", l, e.peer && !l.empty() ? " " : "",
				   e.peer ? "by=" + who(e.peer) : "");
	case KIPC_TRACE_DELIVER:
		return fmt::format("{}{}seq={} len={} from={}{}", l, l.empty() ? "" : " ", e.seq,
				   e.len, who(e.peer), flag_string(e.flags));
	case KIPC_TRACE_TIMEOUT:
	case KIPC_TRACE_CANCEL:
		return fmt::format("{} res={}", l, errno_name(e.res));
	case KIPC_TRACE_DESTROY:
		return l;
	case KIPC_TRACE_NETSEND: {
		kipc_trace_net n = as<kipc_trace_net>(e);
		return fmt::format("to={} seq={} epoch={} {}{}", net_name(n), n.seq, n.epoch,
				   op_name(n.op),
				   !(n.flags & KIPC_TRACE_F_DONE) ? ""
				   : n.res < 0 ? " failed=" + err_name(n.res)
					       : fmt::format(" done={}", n.res));
	}
	case KIPC_TRACE_NETRECV: {
		kipc_trace_net n = as<kipc_trace_net>(e);
		return fmt::format("from={} seq={} epoch={} {}{}", net_name(n), n.seq, n.epoch,
				   op_name(n.op), n.mbox ? fmt::format(" mbox={}", n.mbox) : "");
	}
	case KIPC_TRACE_NETREFUSE: {
		kipc_trace_net n = as<kipc_trace_net>(e);
		return fmt::format("from={} seq={} epoch={} {}{} refused={}", net_name(n), n.seq,
				   n.epoch, op_name(n.op),
				   n.mbox ? fmt::format(" mbox={}", n.mbox) : "", err_name(n.res));
	}
	case KIPC_TRACE_NETEND: {
		kipc_trace_net n = as<kipc_trace_net>(e);
		return fmt::format("from={} epoch={} why={}", net_name(n), n.epoch, end_why(n.res));
	}
	}
	return "";
}

/* Why a proxy ended (NETEND's res, uapi/kipc/trace.h). */
std::string end_why(int64_t res)
{
	switch (-res) {
	case 0: return "exited";
	case ESRCH: return "pid-reused";
	case ENOLINK: return "silent";
	case ECONNRESET: return "restarted";
	case ESHUTDOWN: return "stopped";
	case EIDRM: return "here-stopping";
	}
	return err_name(res);
}


bool is_net(const kipc_trace_event &e)
{
	return e.event == KIPC_TRACE_NETSEND || e.event == KIPC_TRACE_NETRECV ||
	       e.event == KIPC_TRACE_NETREFUSE || e.event == KIPC_TRACE_NETEND;
}

/*
 * A net record's name longer than its 31 bytes comes in the NETNAME
 * records right after it (uapi/kipc/trace.h). A Joiner (one per kernel)
 * holds such a record until its last NETNAME and files the whole name,
 * which net_name() finds; one whose NETNAMEs were lost (a full ring)
 * keeps what came, shown with "...". The last 4096 are kept.
 */
using NetKey = std::tuple<uint64_t, int32_t, uint16_t, uint64_t>; /* ts, pid, event, seq */
std::map<NetKey, std::string> full_names;
std::deque<NetKey> full_order;

NetKey net_key(const kipc_trace_net &n) { return {n.ts, n.pid, n.event, n.seq}; }

struct Joiner {
	bool held = false;
	kipc_trace_event head{};
	std::string name;

	template <class F> void feed(const kipc_trace_event &e, F &&emit)
	{
		if (e.event == KIPC_TRACE_NETNAME) {
			if (!held)
				return; /* its record was lost */
			auto x = as<kipc_trace_name>(e);
			name.append(x.text, strnlen(x.text, sizeof x.text));
			if (!(x.flags & KIPC_TRACE_F_MORE))
				done(emit, false);
			return;
		}
		if (held)
			done(emit, true);
		if (is_net(e) && (e.flags & KIPC_TRACE_F_MORE)) {
			auto n = as<kipc_trace_net>(e);
			held = true;
			head = e;
			name.assign(n.name, strnlen(n.name, sizeof n.name));
			return;
		}
		emit(e);
	}
	template <class F> void flush(F &&emit)
	{
		if (held)
			done(emit, true);
	}
	template <class F> void done(F &&emit, bool cut)
	{
		held = false;
		NetKey k = net_key(as<kipc_trace_net>(head));
		full_names[k] = cut ? name + "..." : name;
		full_order.push_back(k);
		if (full_order.size() > 4096) {
			full_names.erase(full_order.front());
			full_order.pop_front();
		}
		emit(head);
	}
};

/* A NETSEND's target or a NETRECV's caller: "NODE:/name", "NODE:PID". */
std::string net_name(const kipc_trace_net &n)
{
	if (n.flags & KIPC_TRACE_F_MORE)
		if (auto it = full_names.find(net_key(n)); it != full_names.end())
			return it->second;
	std::string s(n.name, strnlen(n.name, sizeof n.name));
	return n.flags & KIPC_TRACE_F_TRUNC ? s + "..." : s;
}

/* "b:/jobs" -> {"b", "/jobs"} */
std::pair<std::string, std::string> split_net(const std::string &name)
{
	size_t c = name.find(':');
	if (c == std::string::npos)
		return {"", name};
	return {name.substr(0, c), name.substr(c + 1)};
}

/*
 * One kernel being traced (one per -S, else the one at $KIPC_SOCKET):
 * what is known of its tasks and mailboxes.
 */
struct Source {
	std::string node;              /* its node name, "" without a network */
	std::string sock;              /* its socket */
	int64_t boot_mono = 0;         /* its boot on CLOCK_MONOTONIC */
	bool ask = false;              /* we are attached to it: net_peer works */
	std::map<int32_t, std::string> comm;
	std::map<int64_t, std::string> names;  /* mailbox id -> label */
	std::map<int32_t, std::string> remote; /* proxy pid -> "NODE:PID" */

	/*
	 * A remote caller's proxy task (its pid is node-qualified,
	 * KIPC_NET_IS_PID: Documentation/network.md)
	 * as "NODE:PID", its node and pid there; "" for anyone else. Asked of
	 * the kernel (net_peer) when first seen, or told by the reader of
	 * this source (several -S); a proxy already gone is known by the
	 * command the kernel gave it, "net:NODE:PID" (comm, which may be cut
	 * at 15 characters).
	 */
	const std::string &remote_of(int32_t pid)
	{
		static const std::string none;
		if (!KIPC_NET_IS_PID(pid))
			return none;
		auto it = remote.find(pid);
		if (it != remote.end())
			return it->second;
		std::string r;
		struct kipc_net_peer np;
		auto c = comm.find(pid);
		if (ask && kipc_net_peer(pid, &np) == 0)
			r = fmt::format("{}:{}", np.node, np.pid);
		else if (c != comm.end() && c->second.rfind("net:", 0) == 0)
			r = c->second.substr(4);
		else
			return none; /* not known yet: ask again later */
		return remote[pid] = r;
	}
};

/*
 * Events of several kernels (several -S) are merged in the order of
 * their timestamps: every kernel on a machine stamps its events with the
 * one CLOCK_MONOTONIC of that machine (and a socket is on this machine),
 * so the order is the order in which they happened; equal stamps keep
 * the order of the -S options. A participant is then "NODE: ...", and a
 * proxy task (a remote caller at its home node) is, in the mermaid
 * drawing, the caller itself when its node is traced too: a cross-node
 * send is one arrow from the caller on its node to the mailbox or task
 * on the other.
 */
struct Tracer {
	Format format = Format::Text;
	FILE *out = stdout;
	std::vector<Source> src;               /* the kernels traced */
	size_t cur = 0;                        /* the source of the event at hand */
	bool all = false;                      /* --all: the tools' own tasks too */
	using Key = std::pair<size_t, int32_t>; /* (source, pid) */
	std::map<Key, kipc_trace_event> attached; /* ATTACH held until it does something */
	uint64_t lost = 0, nevents = 0;
	/* chrome */
	bool first = true;
	std::map<Key, int> blocked;  /* open "blocked" slices */
	std::set<Key> named;
	/* mermaid */
	std::vector<std::pair<size_t, kipc_trace_event>> kept;
	size_t limit = 200;

	bool multi() const { return src.size() > 1; }
	Source &S() { return src[cur]; }

	/* seconds since the (first) kernel booted */
	double secs(uint64_t ts) const { return double(int64_t(ts) - src[0].boot_mono) / 1e9; }

	int source_of(const std::string &node) const
	{
		for (size_t i = 0; !node.empty() && i < src.size(); i++)
			if (src[i].node == node)
				return int(i);
		return -1;
	}

	std::string comm_of(const kipc_trace_event &e)
	{
		if (e.event != KIPC_TRACE_CREATE && e.event != KIPC_TRACE_OPEN && !is_net(e))
			return std::string(e.comm, strnlen(e.comm, sizeof e.comm));
		auto it = S().comm.find(e.pid);
		return it != S().comm.end() ? it->second : "";
	}

	std::string mbox_label(int64_t id)
	{
		auto it = S().names.find(id);
		if (it == S().names.end() || it->second.empty())
			return fmt::format("mailbox {}", id);
		return it->second[0] == '/' ? "mailbox " + it->second : it->second;
	}

	/* What an event tells of names: comms, mailboxes, remote mailboxes. */
	void learn(const kipc_trace_event &e)
	{
		if (e.event == KIPC_TRACE_CREATE || e.event == KIPC_TRACE_OPEN) {
			S().names[e.mbox] = obj_label(as<kipc_trace_obj>(e));
		} else if (is_net(e)) {
			/* a remote mailbox by the name it was opened by: /net/NODE/name */
			kipc_trace_net n = as<kipc_trace_net>(e);
			if (n.event == KIPC_TRACE_NETSEND && (n.flags & KIPC_TRACE_F_DONE) &&
			    n.op == KIPC_SYS_mbox_open && n.res >= 0 && n.mbox) {
				auto [node, name] = split_net(net_name(n));
				S().names[n.mbox] = "/net/" + node + name;
			}
		} else if (e.comm[0]) {
			S().comm[e.pid] = std::string(e.comm, strnlen(e.comm, sizeof e.comm));
		}
	}

	void begin()
	{
		if (format == Format::Chrome)
			fmt::print(out, "{{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n");
	}

	void chrome(const json &j)
	{
		fmt::print(out, "{}{}", first ? "" : ",\n", j.dump());
		first = false;
	}

	/* Chrome's process and thread: one per task; with several kernels a
	 * process per node and a thread per task. */
	json cpid(int32_t pid) const { return multi() ? int(cur + 1) : pid; }

	void chrome_name(int32_t pid)
	{
		if (!pid || named.count({cur, pid}))
			return;
		if (multi() && named.insert({cur, 0}).second)
			chrome({{"ph", "M"}, {"name", "process_name"}, {"pid", cpid(pid)},
				{"args", {{"name", fmt::format("node {}", S().node)}}}});
		named.insert({cur, pid});
		auto it = S().comm.find(pid);
		const std::string &r = S().remote_of(pid);
		std::string n = !r.empty() ? fmt::format("{} (remote, proxy {})", r, pid)
				: it != S().comm.end() && !it->second.empty()
					? fmt::format("{} {}", it->second, pid)
					: fmt::format("pid {}", pid);
		chrome({{"ph", "M"}, {"name", multi() ? "thread_name" : "process_name"},
			{"pid", cpid(pid)}, {"tid", pid}, {"args", {{"name", n}}}});
	}

	void event(const kipc_trace_event &e)
	{
		nevents++;
		if (e.event == KIPC_TRACE_LOST) {
			lost += uint64_t(e.res);
			if (format == Format::Text)
				fmt::print(out, "{}# {} events lost (the kernel's ring was full)\n",
					   node_col(), e.res);
			return;
		}
		learn(e);
		S().remote_of(e.pid); /* while it lives */
		/*
		 * A task that only attaches, looks and exits (kipcs, kipc-trace)
		 * is hidden unless --all: its ATTACH is held back until it does
		 * something, and dropped with its EXIT if it never does.
		 */
		if (!all) {
			if (e.event == KIPC_TRACE_ATTACH) {
				attached[{cur, e.pid}] = e;
				return;
			}
			auto it = attached.find({cur, e.pid});
			if (it != attached.end()) {
				kipc_trace_event a = it->second;
				attached.erase(it);
				if (e.event == KIPC_TRACE_EXIT)
					return;
				emit(a);
			}
		}
		emit(e);
	}

	/* A pid in the text format: a remote caller's proxy as NODE:PID
	 * ("#INDEX:PID" once it is gone and was never seen by name). */
	std::string who(int32_t pid)
	{
		if (!KIPC_NET_IS_PID(pid))
			return std::to_string(pid);
		const std::string &r = S().remote_of(pid);
		return !r.empty() ? r
				  : fmt::format("#{}:{}", KIPC_NET_PID_INDEX(pid), KIPC_NET_PID_PID(pid));
	}

	/* The text format's node column (several kernels only). */
	std::string node_col()
	{
		if (!multi())
			return "";
		size_t w = 1;
		for (const auto &s : src)
			w = std::max(w, s.node.size());
		return fmt::format("{:<{}} ", S().node.empty() ? "-" : S().node, w);
	}

	void emit(const kipc_trace_event &e)
	{
		switch (format) {
		case Format::Text:
		{
			std::string d = details(e, [this](int32_t p) { return who(p); });
			fmt::print(out, "{}{:>16}-{:<7} {:>13.6f}: {}:{}{}\n", node_col(),
				   comm_of(e), who(e.pid), secs(e.ts), ev_name(e.event), d.empty() ? "" : " ", d);
		}
			break;
		case Format::Chrome:
			chrome_event(e);
			break;
		case Format::Mermaid:
			kept.emplace_back(cur, e);
			break;
		}
	}

	/* flow ids: per kernel with several */
	uint64_t flow_id(size_t s, uint64_t seq) const
	{
		return multi() ? (uint64_t(s + 1) << 40) + seq : seq;
	}

	/* A request's flow: per origin kernel and boot epoch (its kipcd may
	 * have restarted and counted from 1 again): 1, 2, ... by first sight. */
	std::map<std::pair<int, uint64_t>, uint64_t> epochs;
	uint64_t flow_id(size_t s, uint64_t inc, uint64_t seq) const
	{
		return (uint64_t(s + 1) << 40) + (inc << 32) + seq;
	}
	uint64_t incarnation(int origin, uint64_t epoch)
	{
		auto [it, fresh] = epochs.try_emplace({origin, epoch}, 0);
		if (fresh) {
			uint64_t n = 0;
			for (const auto &[k, v] : epochs)
				n += k.first == origin;
			it->second = n - 1;
		}
		return it->second;
	}

	void chrome_net(const kipc_trace_event &e, double us)
	{
		kipc_trace_net n = as<kipc_trace_net>(e);
		std::string name = net_name(n);
		bool done = n.flags & KIPC_TRACE_F_DONE;
		if (n.event == KIPC_TRACE_NETREFUSE || n.event == KIPC_TRACE_NETEND) {
			bool refused = n.event == KIPC_TRACE_NETREFUSE;
			chrome({{"ph", "i"}, {"s", "t"},
				{"name", refused ? fmt::format("{} from {} refused: {}", op_name(n.op),
							       name, err_name(n.res))
						 : fmt::format("proxy of {} ended: {}", name,
							       end_why(n.res))},
				{"cat", refused ? "kipc,net,error" : "kipc,net"},
				{"cname", refused ? "terrible" : "grey"}, {"ts", us},
				{"pid", cpid(e.pid)}, {"tid", e.pid},
				{"args", {{"from", name}, {"seq", n.seq}, {"epoch", n.epoch},
					  {"res", n.res}}}});
			return;
		}
		json args = {{n.event == KIPC_TRACE_NETSEND ? "to" : "from", name}, {"seq", n.seq},
			     {"epoch", n.epoch}, {"syscall", op_name(n.op)}, {"res", n.res}};
		if (done && n.res < 0) {
			args["error"] = err_name(n.res);
			chrome({{"ph", "i"}, {"s", "t"},
				{"name", fmt::format("{} to {} failed: {}", op_name(n.op), name,
						     err_name(n.res))},
				{"cat", "kipc,net,error"}, {"cname", "terrible"}, {"ts", us},
				{"pid", cpid(e.pid)}, {"tid", e.pid}, {"args", args}});
			return;
		}
		std::string what = n.event == KIPC_TRACE_NETRECV ? "netrecv from " + name
				   : done ? "netsend done " + name : "netsend " + name;
		chrome({{"ph", "i"}, {"s", "t"}, {"name", what}, {"cat", "kipc,net"}, {"ts", us},
			{"pid", cpid(e.pid)}, {"tid", e.pid}, {"args", args}});
		/* one arrow from the request at its origin to its arrival at home */
		int origin = n.event == KIPC_TRACE_NETRECV ? source_of(split_net(name).first) : int(cur);
		int home = n.event == KIPC_TRACE_NETSEND ? source_of(split_net(name).first) : int(cur);
		if (!multi() || done || origin < 0 || home < 0)
			return;
		uint64_t id = (uint64_t(1) << 52) + flow_id(size_t(origin), incarnation(origin, n.epoch), n.seq);
		chrome({{"ph", n.event == KIPC_TRACE_NETSEND ? "s" : "f"}, {"id", id},
			{"name", "request"}, {"cat", "net"}, {"ts", us}, {"pid", cpid(e.pid)},
			{"tid", e.pid}});
	}

	void chrome_event(const kipc_trace_event &e)
	{
		chrome_name(e.pid);
		double us = double(int64_t(e.ts) - src[0].boot_mono) / 1e3;
		if (is_net(e)) {
			chrome_net(e, us);
			return;
		}
		json args = {{"link", link_string(e)}, {"seq", e.seq}, {"len", e.len},
			     {"peer", e.peer}, {"syscall", op_name(e.op)}, {"res", e.res}};
		if (e.mbox)
			args["mailbox"] = mbox_label(e.mbox);
		if (multi())
			args["node"] = S().node;
		if (e.event == KIPC_TRACE_CREATE || e.event == KIPC_TRACE_OPEN) {
			kipc_trace_obj o = as<kipc_trace_obj>(e);
			chrome({{"ph", "i"}, {"s", "t"},
				{"name", fmt::format("{} {}", ev_name(e.event), obj_label(o))},
				{"cat", "kipc"}, {"ts", us}, {"pid", cpid(e.pid)}, {"tid", e.pid},
				{"args", {{"mailbox", o.mbox}}}});
			return;
		}
		bool failed = (e.event == KIPC_TRACE_SEND && e.res < 0) ||
			      e.event == KIPC_TRACE_TIMEOUT || e.event == KIPC_TRACE_CANCEL;
		if (failed) {
			/* a failure is a red instant named for what failed, no flow */
			args["error"] = err_name(e.res);
			std::string what = e.event == KIPC_TRACE_SEND ? "send"
					   : e.seq ? fmt::format("send #{}", e.seq) : "wait";
			chrome({{"ph", "i"}, {"s", "t"},
				{"name", fmt::format("{} failed: {}", what, err_name(e.res))},
				{"cat", "kipc,error"}, {"cname", "terrible"}, {"ts", us},
				{"pid", cpid(e.pid)}, {"tid", e.pid}, {"args", args}});
			return; /* a timed-out wait's slice ends at the WAKE that follows */
		}
		if (e.event == KIPC_TRACE_BLOCK && !(e.flags & KIPC_TRACE_F_CACHED)) {
			blocked[{cur, e.pid}]++;
			chrome({{"ph", "B"}, {"name", "blocked in " + op_name(e.op)}, {"cat", "kipc"},
				{"ts", us}, {"pid", cpid(e.pid)}, {"tid", e.pid}, {"args", args}});
			return;
		}
		if (e.event == KIPC_TRACE_WAKE && blocked[{cur, e.pid}] > 0) {
			blocked[{cur, e.pid}]--;
			chrome({{"ph", "E"}, {"ts", us}, {"pid", cpid(e.pid)}, {"tid", e.pid}});
			return;
		}
		std::string name = ev_name(e.event);
		if (e.event == KIPC_TRACE_SEND || e.event == KIPC_TRACE_DELIVER)
			name += fmt::format(" #{}", e.seq);
		chrome({{"ph", "i"}, {"s", "t"}, {"name", name}, {"cat", "kipc"}, {"ts", us},
			{"pid", cpid(e.pid)}, {"tid", e.pid}, {"args", args}});
		/* a flow arrow from the send to the delivery of the same message */
		if (e.event == KIPC_TRACE_SEND && !(e.flags & KIPC_TRACE_F_REPLY))
			chrome({{"ph", "s"}, {"id", flow_id(cur, e.seq)}, {"name", "message"},
				{"cat", "msg"}, {"ts", us}, {"pid", cpid(e.pid)}, {"tid", e.pid}});
		if (e.event == KIPC_TRACE_DELIVER && !(e.flags & KIPC_TRACE_F_REPLY))
			chrome({{"ph", "f"}, {"bp", "e"}, {"id", flow_id(cur, e.seq)}, {"name", "message"},
				{"cat", "msg"}, {"ts", us}, {"pid", cpid(e.pid)}, {"tid", e.pid}});
	}

	/*
	 * The participant a task is drawn as: (source, pid), or, for a
	 * proxy whose caller's node is traced too, the caller there.
	 */
	Key canon(size_t s, int32_t pid)
	{
		const std::string &r = src[s].remote_of(pid);
		if (r.empty() || !multi())
			return {s, pid};
		auto [node, p] = split_net(r);
		int o = source_of(node);
		int64_t rp;
		if (o < 0 || !parse_id(p.c_str(), &rp))
			return {s, pid};
		return {size_t(o), int32_t(rp)};
	}

	/*
	 * Arrows are messages that reached a link or a receiver (a solid
	 * arrow to a mailbox: it was queued or handed over; a dashed one
	 * from it: a receiver got it). A send that failed is a cross (-x)
	 * with its errno; a blocked sender is a note, and its arrow is drawn
	 * when its message gets in, or a cross when it timed out or was
	 * cancelled. A request for another node whose kernel is not traced
	 * is an arrow to the participant "NODE:target (remote)".
	 */
	void mermaid()
	{
		std::vector<std::string> order, ids;
		std::set<std::string> seen;
		auto participant = [&](const std::string &id, const std::string &label) {
			if (!seen.insert(id).second)
				return;
			ids.push_back(id);
			order.push_back(fmt::format("    participant {} as {}", id, label));
		};
		auto prefix = [&](size_t s) { return multi() ? src[s].node + ": " : std::string(); };
		auto task = [&](int32_t pid) {
			auto [s, p] = canon(cur, pid);
			/* (a proxy's node-qualified pid is negative: no '-' in an id) */
			std::string id = multi() ? fmt::format("T{}_{}", s, uint32_t(p))
						 : fmt::format("T{}", uint32_t(p));
			auto it = src[s].comm.find(p);
			const std::string &r = src[s].remote_of(p);
			participant(id, !r.empty() ? fmt::format("{} (remote)", r)
					: it != src[s].comm.end()
						? fmt::format("{}{} {}", prefix(s), it->second, p)
						: fmt::format("{}pid {}", prefix(s), p));
			return id;
		};
		auto mbox = [&](int64_t id) {
			std::string m = multi() ? fmt::format("M{}_{}", cur, id) : fmt::format("M{}", id);
			participant(m, prefix(cur) + mbox_label(id));
			return m;
		};
		auto remote = [&](const std::string &name) {
			std::string r = "R";
			for (char ch : name)
				r += isalnum((unsigned char)ch) ? ch : '_';
			participant(r, name + " (remote)");
			return r;
		};
		/* a request's target: on its home node when traced, else remote */
		auto net_target = [&](const std::string &name) {
			auto [node, what] = split_net(name);
			int h = source_of(node);
			if (h < 0)
				return remote(name);
			size_t saved = cur;
			cur = size_t(h);
			std::string r;
			int64_t pid;
			if (parse_id(what.c_str(), &pid)) {
				r = task(int32_t(pid));
			} else {
				for (const auto &[id, label] : S().names)
					if (label == what)
						r = mbox(id);
			}
			cur = saved;
			return r.empty() ? remote(name) : r;
		};
		auto target = [&](const kipc_trace_event &e) {
			return e.mbox ? mbox(e.mbox) : task(e.qpid ? e.qpid : e.peer);
		};
		auto send_arrow = [&](const kipc_trace_event &s) {
			std::string from = task(s.pid), to = target(s);
			return fmt::format("    {}->>{}: {} #{} ({} B)", from, to,
					   s.flags & KIPC_TRACE_F_CALL ? "call" : "send", s.seq, s.len);
		};
		std::map<std::pair<size_t, uint64_t>, kipc_trace_event> blocked_sends; /* seq -> its SEND */
		std::vector<std::string> lines;
		size_t arrows = 0, dropped = 0;
		for (const auto &[s, e] : kept) {
			cur = s;
			std::vector<std::string> step;
			switch (e.event) {
			case KIPC_TRACE_SEND:
				if (e.res < 0) {
					std::string from = task(e.pid), to = target(e);
					step.push_back(fmt::format("    {}-x{}: {} failed: {}", from, to,
								   e.flags & KIPC_TRACE_F_CALL ? "call" : "send",
								   err_name(e.res)));
				} else if (e.flags & KIPC_TRACE_F_BLOCKED) {
					blocked_sends[{s, e.seq}] = e;
				} else if (e.mbox) {
					step.push_back(send_arrow(e));
				}
				break;
			case KIPC_TRACE_ENQUEUE:
				if (auto it = blocked_sends.find({s, e.seq}); it != blocked_sends.end()) {
					if (e.mbox)
						step.push_back(send_arrow(it->second));
					else
						it->second.flags &= ~KIPC_TRACE_F_BLOCKED; /* DELIVER draws it */
					blocked_sends.erase(it);
				}
				break;
			case KIPC_TRACE_DELIVER:
				if (auto it = blocked_sends.find({s, e.seq}); it != blocked_sends.end()) {
					if (e.mbox) /* taken from its blocked sender */
						step.push_back(send_arrow(it->second));
					blocked_sends.erase(it);
				}
				if (e.flags & KIPC_TRACE_F_REPLY) {
					std::string from = task(e.peer), to = task(e.pid);
					step.push_back(fmt::format("    {}-->>{}: reply ({} B)", from, to, e.len));
				} else if (e.mbox) {
					std::string from = mbox(e.mbox), to = task(e.pid);
					step.push_back(fmt::format("    {}-->>{}: #{}", from, to, e.seq));
				} else {
					std::string from = task(e.peer), to = task(e.pid);
					step.push_back(fmt::format("    {}->>{}: #{} ({} B)", from, to, e.seq, e.len));
				}
				break;
			case KIPC_TRACE_BLOCK:
				if (!(e.flags & KIPC_TRACE_F_CACHED))
					step.push_back(fmt::format("    Note over {}: blocked in {}", task(e.pid),
								   op_name(e.op)));
				break;
			case KIPC_TRACE_TIMEOUT:
			case KIPC_TRACE_CANCEL:
				if (auto it = blocked_sends.find({s, e.seq}); e.seq && it != blocked_sends.end()) {
					const kipc_trace_event &sv = it->second;
					std::string from = task(sv.pid), to = target(sv);
					step.push_back(fmt::format("    {}-x{}: {} #{} failed: {}", from, to,
								   sv.flags & KIPC_TRACE_F_CALL ? "call" : "send",
								   sv.seq, err_name(e.res)));
					blocked_sends.erase(it);
				} else {
					step.push_back(fmt::format("    Note over {}: wait ended: {}",
								   task(e.pid), err_name(e.res)));
				}
				break;
			case KIPC_TRACE_CREATE:
			{
				std::string from = task(e.pid), to = mbox(e.mbox); /* in this order */
				step.push_back(fmt::format("    {}->>{}: create", from, to));
			}
				break;
			case KIPC_TRACE_DESTROY:
				if (e.mbox)
					step.push_back(fmt::format("    Note over {}: destroyed", mbox(e.mbox)));
				break;
			case KIPC_TRACE_NETSEND:
			{
				/* with its home traced, the home's events draw the message */
				kipc_trace_net n = as<kipc_trace_net>(e);
				std::string name = net_name(n);
				bool home = source_of(split_net(name).first) >= 0;
				bool call = n.op == KIPC_SYS_call || n.op == KIPC_SYS_mbox_call;
				if (n.op == KIPC_SYS_mbox_open || n.op == KIPC_SYS_cancel)
					break;
				if (!(n.flags & KIPC_TRACE_F_DONE)) {
					if (!home) {
						std::string from = task(n.pid), to = remote(name);
						step.push_back(fmt::format("    {}->>{}: {} (request {})", from, to,
									   call ? "call" : "send", n.seq));
					}
				} else if (n.res < 0) {
					std::string from = task(n.pid), to = net_target(name);
					step.push_back(fmt::format("    {}-x{}: {} (request {}) failed: {}", from,
								   to, call ? "call" : "send", n.seq,
								   err_name(n.res)));
				} else if (call && !home) {
					std::string from = remote(name), to = task(n.pid);
					step.push_back(fmt::format("    {}-->>{}: reply ({} B)", from, to, n.res));
				}
			}
				break;
			case KIPC_TRACE_NETREFUSE:
			{
				/* from the caller (its proxy, or the remote one) to what it named */
				kipc_trace_net n = as<kipc_trace_net>(e);
				std::string from = n.pid ? task(n.pid) : remote(net_name(n));
				std::string what = fmt::format("{} (request {}) refused: {}", op_name(n.op),
							       n.seq, err_name(n.res));
				if (n.mbox) {
					std::string to = mbox(n.mbox);
					step.push_back(fmt::format("    {}-x{}: {}", from, to, what));
				} else {
					step.push_back(fmt::format("    Note over {}: {}", from, what));
				}
			}
				break;
			case KIPC_TRACE_NETEND:
			{
				kipc_trace_net n = as<kipc_trace_net>(e);
				step.push_back(fmt::format("    Note over {}: proxy ended: {}", task(n.pid),
							   end_why(n.res)));
			}
				break;
			}
			for (auto &line : step) {
				if (arrows >= limit) {
					dropped++;
					continue;
				}
				arrows++;
				lines.push_back(line);
			}
		}
		fmt::print(out, "sequenceDiagram\n");
		for (const auto &p : order)
			fmt::print(out, "{}\n", p);
		for (const auto &l : lines)
			fmt::print(out, "{}\n", l);
		if (dropped)
			fmt::print(out, "    Note over {}: ... {} more steps (see --limit)\n",
				   ids.empty() ? "T0" : ids.front(), dropped);
		if (lost)
			fmt::print(out, "    %% {} events were lost: the diagram is incomplete\n", lost);
	}

	void end()
	{
		if (format == Format::Chrome) {
			/* open "blocked" slices stay open: viewers draw them to the end */
			fmt::print(out, "\n]}}\n");
		} else if (format == Format::Mermaid) {
			mermaid();
		}
		fflush(out);
	}
};


/* ---- strace-style: one line per call ---------------------------------- */

/* The name a call is shown by: mq_send for an mq_timedsend without timeout. */
std::string call_name(uint16_t op, uint32_t flags)
{
	bool timed = flags & KIPC_F_TIMEOUT;
	if (op == KIPC_SYS_mq_timedsend)
		return timed ? "mq_timedsend" : "mq_send";
	if (op == KIPC_SYS_mq_timedreceive)
		return timed ? "mq_timedreceive" : "mq_receive";
	return op_name(op);
}

std::string flag_names(uint32_t f)
{
	static const std::pair<uint32_t, const char *> names[] = {
		{KIPC_F_NONBLOCK, "NONBLOCK"}, {KIPC_F_CACHE, "CACHE"}, {KIPC_F_TRUNC, "TRUNC"},
		{KIPC_F_TYPE, "TYPE"},         {KIPC_F_EXCEPT, "EXCEPT"}, {KIPC_O_CREAT, "O_CREAT"},
		{KIPC_O_EXCL, "O_EXCL"},       {KIPC_F_INTR, "INTR"},
		{KIPC_F_SKIP_SUCCESS, "SKIP_SUCCESS"},
	};
	std::string s;
	for (auto [bit, n] : names)
		if (f & bit)
			s += (s.empty() ? "" : "|") + std::string(n);
	uint32_t known = KIPC_F_NONBLOCK | KIPC_F_CACHE | KIPC_F_TRUNC | KIPC_F_TYPE |
			 KIPC_F_EXCEPT | KIPC_O_CREAT | KIPC_O_EXCL | KIPC_F_INTR | KIPC_F_TIMEOUT |
			 KIPC_F_ABSTIME | KIPC_F_REALTIME | KIPC_F_SKIP_SUCCESS;
	if (f & ~known)
		s += fmt::format("{}{:#x}", s.empty() ? "" : "|", f & ~known);
	return s;
}

std::string timeout_arg(const kipc_trace_call &c)
{
	if (!(c.flags & KIPC_F_TIMEOUT))
		return "";
	if (c.flags & (KIPC_F_ABSTIME | KIPC_F_REALTIME))
		return fmt::format(", deadline={}.{:09}{}", c.timeout / 1'000'000'000,
				   c.timeout % 1'000'000'000,
				   c.flags & KIPC_F_REALTIME ? " (realtime)" : "");
	return ", timeout=" + duration(c.timeout);
}

struct Calls {
	FILE *out = stdout;
	bool summary = false;             /* -c */
	Tracer *names = nullptr;          /* mailbox names, comms */
	struct Pending {
		kipc_trace_call c;
		std::string name;         /* SYSARG */
		bool have_name = false, name_trunc = false;
		int32_t oflag = 0;
		bool shown = false;       /* printed as <unfinished ...> */
		std::string remote;       /* NETSEND: its target, "NODE:PID" ... */
	};
	std::map<std::pair<int32_t, uint64_t>, Pending> pending;
	std::pair<int32_t, uint64_t> last{}; /* the latest SYSCALL (for SYSARG) */
	struct Stat {
		uint64_t calls = 0, errors = 0;
		int64_t ns = 0;
	};
	std::map<std::string, Stat> stats;
	/* POSIX queue handles are per task (mq_open's result): their names */
	std::map<std::pair<int32_t, int64_t>, std::string> mq_handles;

	/* A POSIX queue by the name its task opened the handle by. */
	std::string mqh(int32_t pid, int64_t h) const
	{
		auto it = mq_handles.find({pid, h});
		return it == mq_handles.end() ? std::to_string(h) : fmt::format("\"{}\"", it->second);
	}

	std::string mb(int64_t id) const
	{
		auto it = names->src[0].names.find(id);
		if (it == names->src[0].names.end() || it->second.empty())
			return std::to_string(id);
		const std::string &l = it->second;
		if (l.rfind("msq", 0) == 0)
			return std::to_string(id);
		return fmt::format("\"{}\"", l.rfind("mq ", 0) == 0 ? l.substr(3) : l);
	}

	/* a pid, or a node-qualified one as NODE:PID (its NETSEND says) */
	static std::string pid_arg(const Pending &p)
	{
		return p.remote.empty() ? std::to_string(p.c.target) : p.remote;
	}

	std::string args(const Pending &p) const
	{
		const kipc_trace_call &c = p.c;
		std::string fl = flag_names(c.flags & ~(KIPC_O_CREAT | KIPC_O_EXCL));
		std::string f = fl.empty() ? "" : ", " + fl;
		std::string to = timeout_arg(c);
		std::string pr = c.prio ? fmt::format(", prio={}", c.prio) : "";
		std::string ty = c.type ? fmt::format(", type={}", c.type) : "";
		std::string name = p.have_name ? fmt::format("\"{}{}\"", p.name, p.name_trunc ? "..." : "")
					       : fmt::format("{} bytes", c.len);
		switch (c.op) {
		case KIPC_SYS_send:
			return fmt::format("pid {}, {} bytes{}{}{}{}", pid_arg(p), c.len, pr, ty, f, to);
		case KIPC_SYS_receive:
			return fmt::format("{}, {} bytes{}{}{}",
					   c.target ? fmt::format("pid {}", c.target) : "any", c.len, ty, f, to);
		case KIPC_SYS_mbox_send:
			return fmt::format("{}, {} bytes{}{}{}{}", mb(c.target), c.len, pr, ty, f, to);
		case KIPC_SYS_mbox_receive:
		case KIPC_SYS_mbox_peek:
			return fmt::format("{}, {} bytes{}{}{}", mb(c.target), c.len, ty, f, to);
		/* POSIX queue calls: target is the task's handle, type the descriptor */
		case KIPC_SYS_mq_timedsend:
			return fmt::format("{}, {} bytes{}{}{}", mqh(c.pid, c.target), c.len, pr, f, to);
		case KIPC_SYS_mq_timedreceive:
			return fmt::format("{}, {} bytes{}{}", mqh(c.pid, c.target), c.len, f, to);
		case KIPC_SYS_mq_getattr:
		case KIPC_SYS_mq_close:
		case KIPC_SYS_mq_notify:
			return mqh(c.pid, c.target);
		case KIPC_SYS_mbox_receive_set:
			return fmt::format("{} mailboxes, {} bytes{}{}{}", c.len2 / 8, c.len, ty, f, to);
		case KIPC_SYS_mbox_send_bundle:
			return fmt::format("{}, {} messages{}{}{}{}", mb(c.target),
					   c.len / sizeof(kipc_bundle_desc), pr, ty, f, to);
		case KIPC_SYS_send_bundle:
			return fmt::format("pid {}, {} messages{}{}{}{}", pid_arg(p),
					   c.len / sizeof(kipc_bundle_desc), pr, ty, f, to);
		case KIPC_SYS_mbox_receive_multi:
			return fmt::format("{}, {} buffers from {}{}", mb(c.target), c.len, c.len2, f);
		case KIPC_SYS_call:
			return fmt::format("pid {}, {} bytes, reply {} bytes{}{}{}", pid_arg(p), c.len,
					   c.len2, pr, f, to);
		case KIPC_SYS_mbox_call:
			return fmt::format("{}, {} bytes, reply {} bytes{}{}{}", mb(c.target), c.len,
					   c.len2, pr, f, to);
		case KIPC_SYS_reply:
			return fmt::format("token {}, {} bytes", c.target, c.len);
		case KIPC_SYS_reply_receive:
			return fmt::format("token {}, {} bytes; {}, {} bytes{}{}", c.type, c.len2,
					   c.target ? fmt::format("pid {}", c.target) : "any", c.len, f,
					   to);
		case KIPC_SYS_mbox_reply_receive:
			return fmt::format("token {}, {} bytes; {}, {} bytes{}{}", c.type, c.len2,
					   mb(c.target), c.len, f, to);
		case KIPC_SYS_mbox_open: {
			std::string o = flag_names(c.flags & (KIPC_O_CREAT | KIPC_O_EXCL));
			return fmt::format("{}, {}{}", c.len ? name : "NULL", o.empty() ? "0" : o,
					   c.len2 ? ", {attr}" : "");
		}
		case KIPC_SYS_mq_open: {
			uint32_t acc = uint32_t(p.oflag) & KIPC_MQ_ACCMODE;
			std::string o = acc == KIPC_MQ_RDONLY ? "O_RDONLY" : acc == KIPC_MQ_WRONLY ? "O_WRONLY"
					: acc == KIPC_MQ_RDWR ? "O_RDWR" : "O_ACCMODE";
			std::string x = flag_names(uint32_t(p.oflag) & (KIPC_O_CREAT | KIPC_O_EXCL));
			return fmt::format("{}, {}{}", name, o, x.empty() ? "" : "|" + x);
		}
		case KIPC_SYS_mq_unlink:
		case KIPC_SYS_net_node:
			return name;
		case KIPC_SYS_msgget:
			return fmt::format("{}, {}{:#o}",
					   c.target ? fmt::format("{:#x}", uint32_t(c.target)) : "IPC_PRIVATE",
					   std::string(c.len & KIPC_IPC_CREAT ? "IPC_CREAT|" : "") +
						   (c.len & KIPC_IPC_EXCL ? "IPC_EXCL|" : ""),
					   c.len & 0777);
		case KIPC_SYS_msgsnd:
			return fmt::format("{}, {} bytes, type={}{}", c.target, c.len, c.type, f);
		case KIPC_SYS_msgrcv:
			return fmt::format("{}, {} bytes, type={}{}{}", c.target, c.len, c.type,
					   c.len2 & KIPC_IPC_NOWAIT ? ", IPC_NOWAIT" : "", f);
		case KIPC_SYS_msgctl:
			return fmt::format("{}, {}", c.target,
					   c.len == KIPC_IPC_RMID ? "IPC_RMID" : c.len == KIPC_IPC_SET ? "IPC_SET"
					   : c.len == KIPC_IPC_STAT ? "IPC_STAT" : c.len == KIPC_IPC_INFO ? "IPC_INFO"
					   : std::to_string(c.len));
		case KIPC_SYS_mbox_destroy:
		case KIPC_SYS_mbox_stat:
		case KIPC_SYS_mbox_setattr:
		case KIPC_SYS_mbox_info:
		case KIPC_SYS_waiter_list:
		case KIPC_SYS_msg_list:
			return mb(c.target);
		case KIPC_SYS_mbox_set_owner:
		case KIPC_SYS_mbox_grant:
		case KIPC_SYS_mbox_revoke:
			return fmt::format("{}, pid {}", mb(c.target), c.type);
		case KIPC_SYS_cancel:
			return fmt::format("{}{}", c.target, f);
		case KIPC_SYS_task_info:
			return fmt::format("pid {}", c.target);
		}
		return "";
	}

	static std::string result(const kipc_trace_ret &r)
	{
		if (r.res < 0)
			return fmt::format("-1 {} ({})", err_name(r.res), strerror(int(-r.res)));
		return std::to_string(r.res);
	}

	void line(int32_t pid, const std::string &text)
	{
		const std::string &r = names->src[0].remote_of(pid);
		if (!summary && !r.empty())
			fmt::print(out, "[{}] {}\n", r, text); /* a remote caller */
		else if (!summary)
			fmt::print(out, "[pid {:>5}] {}\n", pid, text);
	}

	/* Another line is about to be printed: calls still open say so. */
	void interrupt(std::pair<int32_t, uint64_t> except = {-1, 0})
	{
		for (auto &[k, p] : pending)
			if (!p.shown && k != except)
				unfinished(p);
	}

	void unfinished(Pending &p)
	{
		p.shown = true;
		line(p.c.pid, fmt::format("{}({} <unfinished ...>", call_name(p.c.op, p.c.flags), args(p)));
	}

	void syscall(const kipc_trace_event &e)
	{
		auto c = as<kipc_trace_call>(e);
		last = {c.pid, c.user_data};
		Pending p;
		p.c = c;
		pending[last] = p;
	}

	/* A call for another node: the target it went to. */
	void netsend(const kipc_trace_event &e)
	{
		auto n = as<kipc_trace_net>(e);
		auto it = pending.find(last);
		if (n.flags & KIPC_TRACE_F_DONE || it == pending.end() || it->second.c.pid != n.pid)
			return;
		it->second.remote = net_name(n);
	}

	void sysarg(const kipc_trace_event &e)
	{
		auto o = as<kipc_trace_obj>(e);
		auto it = pending.find(last);
		if (it == pending.end() || it->second.c.pid != o.pid)
			return;
		it->second.name = std::string(o.name, strnlen(o.name, sizeof o.name));
		it->second.name_trunc = o.flags & KIPC_TRACE_F_TRUNC;
		it->second.have_name = true;
		it->second.oflag = o.key;
	}

	/* The call pid parked: show it now, as strace does with a blocked call. */
	void block(const kipc_trace_event &e)
	{
		if (e.flags & KIPC_TRACE_F_CACHED)
			return;
		for (auto &[k, p] : pending)
			if (k.first == e.pid && !p.shown && p.c.op == e.op) {
				interrupt(k);
				unfinished(p);
			}
	}

	void sysret(const kipc_trace_event &e)
	{
		auto r = as<kipc_trace_ret>(e);
		auto it = pending.find({r.pid, r.user_data});
		if (it == pending.end()) {
			if (r.flags & KIPC_CQE_F_NOTIF) { /* a cached send's message got in */
				interrupt();
				line(r.pid, fmt::format("--- cached message #{} {} ---", r.seq,
							r.res < 0 ? "dropped: " + err_name(r.res) : "queued"));
			}
			return; /* its SYSCALL came before we listened (or was lost) */
		}
		Pending p = it->second;
		pending.erase(it);
		if (p.c.op == KIPC_SYS_mq_open && r.res > 0 && p.have_name)
			mq_handles[{r.pid, r.res}] = p.name;
		int64_t ns = int64_t(r.ts) - int64_t(p.c.ts);
		std::string name = call_name(p.c.op, p.c.flags);
		Stat &st = stats[name];
		st.calls++;
		st.errors += r.res < 0;
		st.ns += ns;
		interrupt();
		std::string res = fmt::format("= {} <{}.{:06}>", result(r), ns / 1'000'000'000,
					      ns / 1000 % 1'000'000);
		if (p.shown)
			line(r.pid, fmt::format("<... {} resumed>) {}", name, res));
		else
			line(r.pid, fmt::format("{}({}) {}", name, args(p), res));
	}

	/* Calls still open when tracing stops, and -c's table. */
	void end()
	{
		for (auto &[k, p] : pending)
			if (!p.shown)
				unfinished(p);
		if (!summary)
			return;
		std::vector<std::pair<std::string, Stat>> v(stats.begin(), stats.end());
		std::stable_sort(v.begin(), v.end(),
				 [](const auto &a, const auto &b) { return a.second.ns > b.second.ns; });
		Stat total;
		for (const auto &[n, st] : v) {
			total.calls += st.calls;
			total.errors += st.errors;
			total.ns += st.ns;
		}
		const char *rule = "------ ----------- ----------- --------- --------- ----------------\n";
		fmt::print(out, "% time     seconds  usecs/call     calls    errors syscall\n{}", rule);
		for (const auto &[n, st] : v)
			fmt::print(out, "{:6.2f} {:11.6f} {:11} {:9} {:>9} {}\n",
				   total.ns ? 100.0 * double(st.ns) / double(total.ns) : 0.0,
				   double(st.ns) / 1e9, st.ns / 1000 / int64_t(st.calls), st.calls,
				   st.errors ? std::to_string(st.errors) : "", n);
		fmt::print(out, "{}{:6.2f} {:11.6f} {:11} {:9} {:>9} total\n", rule, 100.0,
			   double(total.ns) / 1e9, "", total.calls,
			   total.errors ? std::to_string(total.errors) : "");
	}
};

/*
 * Which tasks are the program's: its pid (PROGRAM, or -p PID) and every
 * process that attaches with one of them as its parent (ATTACH carries
 * the parent pid the kernel read when it attached). A child whose parent
 * never used kipc (a shell between them) is found by walking /proc from
 * its parent up, while that parent lives; with -- PROGRAM, kipc-trace is
 * the child subreaper, so an orphan's parent is kipc-trace itself.
 */
struct Follow {
	std::set<int32_t> pids;
	int32_t self = 0; /* -- PROGRAM: orphans are reparented to us */

	bool has(int32_t pid) const { return pids.count(pid) != 0; }

	static int32_t parent_of(int32_t pid)
	{
		FILE *f = fopen(fmt::format("/proc/{}/stat", pid).c_str(), "r");
		if (!f)
			return 0;
		char buf[512];
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = '\0';
		const char *rp = strrchr(buf, ')');
		int ppid = 0;
		if (!rp || sscanf(rp + 1, " %*c %d", &ppid) != 1)
			return 0;
		return ppid;
	}

	void attach(int32_t pid, int32_t ppid)
	{
		for (int hops = 0; ppid > 1 && hops < 64; hops++) {
			if (has(ppid) || (self && ppid == self)) {
				pids.insert(pid);
				return;
			}
			ppid = parent_of(ppid);
		}
	}
};

/* A usage error: one line, a hint, exit 2. */
[[noreturn]] void usage_error(const std::string &msg)
{
	fmt::print(stderr, "kipc-trace: {}\nTry 'kipc-trace --help' for more information.\n", msg);
	exit(2);
}

uint32_t parse_events(const char *arg)
{
	uint32_t mask = 0;
	std::string s = arg;
	size_t pos = 0;
	while (pos <= s.size()) {
		size_t comma = s.find(',', pos);
		std::string name = s.substr(pos, comma == std::string::npos ? std::string::npos
									     : comma - pos);
		bool found = false;
		for (unsigned ev = 1; ev <= KIPC_TRACE_NETREFUSE; ev++) {
			if ((ev < KIPC_TRACE_LOST || ev >= KIPC_TRACE_NETEND) && name == ev_name(ev)) {
				mask |= KIPC_TRACE_MASK(ev);
				found = true;
			}
		}
		if (!found)
			usage_error(fmt::format("unknown event '{}' (attach, exit, send, enqueue, block, "
						"wake, deliver, timeout, cancel, destroy, create, open, "
						"netsend, netrecv, netrefuse, netend)",
						name));
		if (comma == std::string::npos)
			break;
		pos = comma + 1;
	}
	return mask;
}

void usage(FILE *f)
{
	fmt::print(f,
		   "usage: kipc-trace [OPTIONS] [-c] -- PROGRAM [ARGS...]   its kipc calls, strace-style\n"
		   "       kipc-trace [OPTIONS] [-c] -p PID                 a running task's calls\n"
		   "       kipc-trace [OPTIONS] [-f FMT | -e LIST]          the kernel's tracepoints\n"
		   "With -- PROGRAM or -p PID: one line per kipc call of that program and of\n"
		   "its children (native, or POSIX/System V under kipc-run); with -f or -e the\n"
		   "tracepoints of those tasks. Otherwise every tracepoint until Ctrl-C.\n"
		   "  -p, --pid PID        this task (and its children that attach later); a\n"
		   "                       remote caller as NODE:PID (as kipcs shows it)\n"
		   "  -c, --summary        calls: a table of calls, errors and time at the end\n"
		   "  -m, --mbox ID|NAME   only events on this mailbox\n"
		   "  -e, --event LIST     only these events, comma-separated: attach, exit,\n"
		   "                       send, enqueue, block, wake, deliver, timeout,\n"
		   "                       cancel, destroy, create, open, netsend, netrecv\n"
		   "  -f, --format FMT     text (default, like trace_pipe), chrome (Chrome/\n"
		   "                       Perfetto trace JSON), mermaid (sequence diagram)\n"
		   "  -a, --all            also the tools' own tasks (attach, look, exit)\n"
		   "  -S, --socket PATH    the kernel at PATH (default $KIPC_SOCKET); given\n"
		   "                       more than once: every one, merged in time order\n"
		   "  -d, --duration SEC   stop after SEC seconds\n"
		   "  -o, --output FILE    write to FILE instead of standard output\n"
		   "  -b, --buffer N       kernel ring size in events (default {})\n"
		   "  -l, --limit N        mermaid: at most N steps (default 200)\n"
		   "  -q, --quiet          no 'tracing ...' note on standard error\n"
		   "  -h, --help           this help\n"
		   "  -V, --version        the version\n",
		   KIPC_TRACE_BUF_DEFAULT);
}

/* Fork PROGRAM stopped until go() (the listener is open), then exec it. */
struct Child {
	pid_t pid = 0;
	int gate[2] = {-1, -1}, err[2] = {-1, -1};

	void start(char **argv)
	{
		if (pipe2(gate, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
			die(fmt::format("pipe: {}", strerror(errno)));
		pid = fork();
		if (pid < 0)
			die(fmt::format("fork: {}", strerror(errno)));
		if (pid == 0) {
			close(gate[1]);
			close(err[0]);
			char c;
			if (read(gate[0], &c, 1) != 1)
				_exit(127); /* the tracer went away */
			execvp(argv[0], argv);
			int e = errno;
			if (write(err[1], &e, sizeof e) < 0)
				_exit(127);
			_exit(127);
		}
		close(gate[0]);
		close(err[1]);
	}

	/* Let it run; false (with errno) when it could not be executed. */
	bool go()
	{
		char c = 1;
		if (write(gate[1], &c, 1) < 0)
			return false;
		close(gate[1]);
		int e = 0;
		ssize_t n = read(err[0], &e, sizeof e);
		close(err[0]);
		errno = e;
		return n != sizeof e;
	}
};

/* ---- several kernels (-S PATH, more than once) ------------------------- */

/*
 * One reader process per kernel (a process attaches to one kernel): it
 * opens the listener there and passes what it reads to us through a
 * pipe as Recs. MARK t says: every event of that kernel stamped before
 * t has been passed (a trace_read that returned less than it could, or
 * timed out, emptied the ring; the kernel is one thread, so what it
 * stamped before the read began was in the ring when the read ran).
 */
enum : uint32_t { R_HELLO = 1, R_COMM, R_MBOX, R_LABEL, R_EVENT, R_MARK };
struct Rec {
	uint32_t kind;
	int32_t pid;
	int64_t a;     /* HELLO: boot on CLOCK_MONOTONIC; MBOX: id; MARK: t */
	union {
		kipc_trace_event e;
		char text[sizeof(kipc_trace_event)]; /* node, comm, label */
	};
};

void put(int fd, uint32_t kind, int32_t pid, int64_t a, const std::string &text = "")
{
	Rec r{};
	r.kind = kind;
	r.pid = pid;
	r.a = a;
	snprintf(r.text, sizeof r.text, "%s", text.c_str());
	if (write(fd, &r, sizeof r) != sizeof r)
		_exit(0); /* our parent is gone */
}

[[noreturn]] void reader(const std::string &sock, int fd, kipc_trace_attr attr)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	setenv("KIPC_SOCKET", sock.c_str(), 1);
	attach();
	SysInfo si;
	if (kipc_sysinfo(&si) < 0)
		die_errno("sysinfo", errno);
	int64_t boot = mono_ns() - si.uptime;
	struct kipc_net_stat ns {};
	std::string node = kipc_net_stat(&ns) == 0 ? ns.node : "";
	Source me;
	me.ask = true;
	for (const auto &ti : fetch_all<TaskInfo>(kipc_task_list, "task list")) {
		me.comm[ti.pid] = ti.comm;
		put(fd, R_COMM, ti.pid, 0, ti.comm);
	}
	for (const auto &mi : fetch_all<MboxInfo>(kipc_mbox_list, "mailbox list")) {
		uint32_t f = mi.st.attr.flags;
		put(fd, R_MBOX, 0, mi.st.id,
		    f & KIPC_MBOX_SYSV ? fmt::format("msq {}", mi.st.id)
		    : f & KIPC_MBOX_POSIX ? fmt::format("mq {}", mi.st.name) : std::string(mi.st.name));
	}
	if (kipc_trace_open(&attr) < 0)
		die_errno("trace_open", errno);
	put(fd, R_HELLO, 0, boot, node);
	std::set<int32_t> told;
	auto tell = [&](int32_t pid) { /* whom a proxy stands for, before its events */
		if (!KIPC_NET_IS_PID(pid) || told.count(pid))
			return;
		const std::string &r = me.remote_of(pid);
		if (!r.empty()) {
			told.insert(pid);
			put(fd, R_LABEL, pid, 0, r);
		}
	};
	std::vector<kipc_trace_event> buf(512);
	auto forward = [&](ssize_t n) {
		for (ssize_t i = 0; i < n; i++) {
			const kipc_trace_event &e = buf[size_t(i)];
			bool named = e.event != KIPC_TRACE_CREATE && e.event != KIPC_TRACE_OPEN &&
				     !is_net(e) && e.event != KIPC_TRACE_LOST &&
				     e.event != KIPC_TRACE_NETNAME;
			if (named && e.comm[0])
				me.comm[e.pid] = std::string(e.comm, strnlen(e.comm, sizeof e.comm));
			tell(e.pid);
			if (named) {
				tell(e.peer);
				tell(e.qpid);
			}
			Rec r{};
			r.kind = R_EVENT;
			r.e = e;
			if (write(fd, &r, sizeof r) != sizeof r)
				_exit(0);
		}
	};
	while (!stop) {
		int64_t t0 = mono_ns();
		ssize_t n = kipc_trace_read_timed(buf.data(), buf.size(), 0, 100'000'000);
		if (n < 0 && errno == ETIMEDOUT) {
			put(fd, R_MARK, 0, t0);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(kernel_error(errno));
		forward(n);
		if (size_t(n) < buf.size())
			put(fd, R_MARK, 0, t0);
	}
	for (ssize_t n; (n = kipc_trace_read(buf.data(), buf.size(), KIPC_F_NONBLOCK)) > 0;)
		forward(n);
	kipc_trace_close();
	_exit(0);
}

/*
 * Trace every kernel of socks at once: the events merged in timestamp
 * order (see Tracer), each handed to handle with t.cur set to its
 * kernel. Returns the exit status.
 */
int trace_kernels(Tracer &t, const std::vector<std::string> &socks, const kipc_trace_attr &attr,
		  double dur, bool quiet, const std::function<void(const kipc_trace_event &)> &handle)
{
	struct In {
		pid_t pid = 0;
		int fd = -1;
		std::string buf;
		std::deque<kipc_trace_event> q;
		Joiner join;
		int64_t mark = INT64_MIN;
		bool hello = false, eof = false;
	};
	std::vector<In> in(socks.size());
	t.src.assign(socks.size(), Source{});
	fflush(nullptr);
	for (size_t i = 0; i < socks.size(); i++) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			die(fmt::format("pipe: {}", strerror(errno)));
		pid_t pid = fork();
		if (pid < 0)
			die(fmt::format("fork: {}", strerror(errno)));
		if (pid == 0) {
			for (size_t j = 0; j < i; j++)
				close(in[j].fd);
			close(p[0]);
			reader(socks[i], p[1], attr);
		}
		close(p[1]);
		in[i].pid = pid;
		in[i].fd = p[0];
		t.src[i].sock = socks[i];
	}
	auto input = [&](size_t i) {
		char b[64 * sizeof(Rec)];
		ssize_t n = read(in[i].fd, b, sizeof b);
		if (n < 0 && errno == EINTR)
			return;
		if (n <= 0) {
			in[i].eof = true;
			in[i].join.flush([&](const kipc_trace_event &x) { in[i].q.push_back(x); });
			return;
		}
		in[i].buf.append(b, size_t(n));
		size_t off = 0;
		Source &s = t.src[i];
		for (; in[i].buf.size() - off >= sizeof(Rec); off += sizeof(Rec)) {
			Rec r;
			memcpy(&r, in[i].buf.data() + off, sizeof r);
			std::string text(r.text, strnlen(r.text, sizeof r.text));
			switch (r.kind) {
			case R_HELLO: s.node = text; s.boot_mono = r.a; in[i].hello = true; break;
			case R_COMM: s.comm[r.pid] = text; break;
			case R_MBOX: s.names[r.a] = text; break;
			case R_LABEL: s.remote[r.pid] = text; break;
			case R_EVENT: /* a net record waits for its NETNAMEs */
				in[i].join.feed(r.e, [&](const kipc_trace_event &x) {
					in[i].q.push_back(x);
				});
				break;
			case R_MARK: in[i].mark = r.a; break;
			}
		}
		in[i].buf.erase(0, off);
	};
	auto poll_all = [&](int ms) {
		std::vector<pollfd> fds;
		std::vector<size_t> ix;
		for (size_t i = 0; i < in.size(); i++)
			if (!in[i].eof) {
				fds.push_back({in[i].fd, POLLIN, 0});
				ix.push_back(i);
			}
		if (fds.empty() || poll(fds.data(), fds.size(), ms) <= 0)
			return;
		for (size_t k = 0; k < fds.size(); k++)
			if (fds[k].revents)
				input(ix[k]);
	};
	auto stop_readers = [&] {
		for (auto &r : in)
			if (!r.eof)
				kill(r.pid, SIGTERM);
	};
	/* every listener open before anything is traced */
	for (bool ready = false; !ready;) {
		ready = true;
		for (auto &r : in) {
			if (r.eof && !r.hello) { /* it said why on stderr */
				stop_readers();
				for (auto &x : in)
					waitpid(x.pid, nullptr, 0);
				return 1;
			}
			ready &= r.hello;
		}
		if (!ready)
			poll_all(100);
	}
	if (!quiet) {
		std::string all;
		for (size_t i = 0; i < socks.size(); i++)
			all += fmt::format("{}{} ({})", i ? ", " : "", socks[i],
					   t.src[i].node.empty() ? "no node" : "node " + t.src[i].node);
		fmt::print(stderr, "kipc-trace: tracing the kernels at {}{}\n", all,
			   dur ? fmt::format(" for {}s", dur) : "; Ctrl-C to stop");
	}
	t.begin();
	/* Hand on, oldest first, what no kernel can still precede. */
	auto merge = [&](bool final) {
		for (;;) {
			int best = -1;
			for (size_t i = 0; i < in.size(); i++)
				if (!in[i].q.empty() &&
				    (best < 0 || in[i].q.front().ts < in[size_t(best)].q.front().ts))
					best = int(i);
			if (best < 0)
				return;
			const kipc_trace_event e = in[size_t(best)].q.front();
			for (size_t j = 0; !final && j < in.size(); j++)
				if (!in[j].eof && in[j].q.empty() && int64_t(e.ts) >= in[j].mark)
					return; /* kernel j may still have an earlier one */
			in[size_t(best)].q.pop_front();
			t.cur = size_t(best);
			handle(e);
		}
	};
	int64_t deadline = dur ? mono_ns() + int64_t(dur * 1e9) : 0;
	bool stopping = false;
	int status = 0;
	for (;;) {
		if (!stopping && (stop || (deadline && mono_ns() >= deadline) || ferror(t.out))) {
			stopping = true;
			stop_readers();
		}
		bool open = false;
		for (size_t i = 0; i < in.size(); i++) {
			if (in[i].eof && in[i].pid) {
				int st = 0;
				waitpid(in[i].pid, &st, 0);
				in[i].pid = 0;
				if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
					status = 1; /* its kernel went away: it said so */
					if (!stopping) {
						stopping = true;
						stop_readers();
					}
				}
			}
			open |= !in[i].eof;
		}
		if (!open)
			break;
		poll_all(100);
		merge(false);
	}
	merge(true);
	return status;
}

} // namespace

int main(int argc, char **argv)
{
	prog = "kipc-trace";
	Tracer t;
	Calls calls;
	Follow follow;
	Child child;
	kipc_trace_attr attr{};
	const char *mbox_arg = nullptr, *outfile = nullptr;
	double dur = 0;
	bool quiet = false, events_mode = false;
	int32_t pid_arg = 0;
	const char *pid_str = nullptr; /* -p: N or NODE:PID */
	std::vector<std::string> socks;
	static const option longopts[] = {
		{"socket", required_argument, nullptr, 'S'},
		{"pid", required_argument, nullptr, 'p'},
		{"summary", no_argument, nullptr, 'c'},
		{"mbox", required_argument, nullptr, 'm'},
		{"event", required_argument, nullptr, 'e'},
		{"format", required_argument, nullptr, 'f'},
		{"all", no_argument, nullptr, 'a'},
		{"duration", required_argument, nullptr, 'd'},
		{"output", required_argument, nullptr, 'o'},
		{"buffer", required_argument, nullptr, 'b'},
		{"limit", required_argument, nullptr, 'l'},
		{"quiet", no_argument, nullptr, 'q'},
		{"help", no_argument, nullptr, 'h'},
		{"version", no_argument, nullptr, 'V'},
		{nullptr, 0, nullptr, 0},
	};
	opterr = 0; /* our own one-line messages */
	for (int c; (c = getopt_long(argc, argv, "+:p:cm:e:f:ad:o:b:l:qhVS:", longopts, nullptr)) != -1;) {
		int64_t v;
		switch (c) {
		case 'p': pid_str = optarg; break; /* parse_pid() once attached */
		case 'c': calls.summary = true; break;
		case 'm': mbox_arg = optarg; break;
		case 'e': attr.events = parse_events(optarg); events_mode = true; break;
		case 'f':
			if (!strcmp(optarg, "text"))
				t.format = Format::Text;
			else if (!strcmp(optarg, "chrome") || !strcmp(optarg, "perfetto"))
				t.format = Format::Chrome;
			else if (!strcmp(optarg, "mermaid"))
				t.format = Format::Mermaid;
			else
				usage_error(fmt::format("unknown format '{}' (text, chrome, mermaid)", optarg));
			events_mode = true;
			break;
		case 'a': t.all = true; break;
		case 'd': {
			char *end;
			dur = strtod(optarg, &end);
			if (*end || !(dur > 0))
				usage_error(fmt::format("invalid duration '{}' (seconds > 0)", optarg));
			break;
		}
		case 'o': outfile = optarg; break;
		case 'b':
			if (!parse_id(optarg, &v) || v > KIPC_TRACE_BUF_MAX)
				usage_error(fmt::format("invalid buffer size '{}' (1 to {} events)", optarg,
							KIPC_TRACE_BUF_MAX));
			attr.bufsize = uint32_t(v);
			break;
		case 'l':
			if (!parse_id(optarg, &v))
				usage_error(fmt::format("invalid limit '{}'", optarg));
			t.limit = size_t(v);
			break;
		case 'q': quiet = true; break;
		case 'S': socks.push_back(optarg); break;
		case 'h': usage(stdout); return 0;
		case 'V': fmt::print("kipc-trace {}\n", KIPC_VERSION); return 0;
		case ':':
			usage_error(fmt::format("option '{}' needs an argument", argv[optind - 1]));
		default:
			if (optopt)
				usage_error(fmt::format("unknown option '-{}'", char(optopt)));
			usage_error(fmt::format("unknown option '{}'", argv[optind - 1]));
		}
	}
	bool program = optind < argc;
	if (program && strcmp(argv[optind - 1], "--") != 0)
		usage_error(fmt::format("unexpected argument '{}' (a program goes after --)",
					argv[optind]));
	if (program && pid_str)
		usage_error("-p and -- PROGRAM exclude each other");
	if (calls.summary && (events_mode || (!program && !pid_str)))
		usage_error("-c counts the calls of -- PROGRAM or -p PID (not with -f or -e)");
	bool calls_mode = (program || pid_str) && !events_mode;
	if (socks.size() > 1 && (program || pid_str || mbox_arg))
		usage_error("several --socket trace every kernel's tracepoints "
			    "(not with -p, -m or -- PROGRAM)");
	if (socks.size() == 1)
		setenv("KIPC_SOCKET", socks[0].c_str(), 1);

	if (socks.size() > 1) {
		if (outfile && !(t.out = fopen(outfile, "w")))
			die(fmt::format("{}: {}", outfile, strerror(errno)));
		if (t.format == Format::Text)
			setvbuf(t.out, nullptr, _IOLBF, 0);
		struct sigaction sa {};
		sa.sa_handler = on_signal;
		sigaction(SIGINT, &sa, nullptr);
		sigaction(SIGTERM, &sa, nullptr);
		signal(SIGPIPE, SIG_IGN);
		bool asked_attach = !attr.events || (attr.events & KIPC_TRACE_MASK(KIPC_TRACE_ATTACH));
		int st = trace_kernels(t, socks, attr, dur, quiet, [&](const kipc_trace_event &e) {
			if (e.event != KIPC_TRACE_ATTACH || asked_attach || t.all)
				t.event(e);
		});
		t.end();
		if (outfile && fclose(t.out) != 0)
			die(fmt::format("{}: {}", outfile, strerror(errno)));
		if (t.lost && !quiet)
			fmt::print(stderr, "kipc-trace: {} events lost (try a larger --buffer)\n", t.lost);
		return st;
	}

	attach();
	t.src.resize(1);
	t.src[0].ask = true;
	if (std::string why; pid_str && !parse_pid(pid_str, &pid_arg, &why))
		usage_error(why);
	if (mbox_arg) {
		/* by the introspection list: looking it up opens nothing */
		int64_t id = 0;
		bool by_id = parse_id(mbox_arg, &id);
		if (!by_id && mbox_arg[0] != '/')
			usage_error(fmt::format("invalid mailbox '{}': give an id or a /name", mbox_arg));
		bool found = false;
		for (const auto &mi : fetch_all<MboxInfo>(kipc_mbox_list, "mailbox list")) {
			if (by_id ? mi.st.id == id
				  : !(mi.st.attr.flags & (KIPC_MBOX_POSIX | KIPC_MBOX_SYSV)) &&
					    !strcmp(mi.st.name, mbox_arg)) {
				id = mi.st.id;
				found = true;
				break;
			}
		}
		if (!found)
			die(fmt::format("no such mailbox: {}", mbox_arg));
		attr.mbox = id;
	}
	if (pid_arg) {
		/* A live process that has not attached yet may still: wait for it. */
		TaskInfo ti;
		if (kipc_task_info(pid_arg, &ti) < 0) {
			/* a remote caller is here only as its proxy task */
			if (KIPC_NET_IS_PID(pid_arg))
				die(fmt::format("no remote caller {} here (pid {})", pid_str, pid_arg));
			if (kill(pid_arg, 0) < 0 && errno == ESRCH)
				die(fmt::format("no such process: {}", pid_arg));
			if (!quiet)
				fmt::print(stderr, "kipc-trace: pid {} has not attached to kipc yet; "
						   "waiting for it\n", pid_arg);
		}
		follow.pids.insert(pid_arg);
	}
	if (outfile) {
		t.out = fopen(outfile, "w");
		if (!t.out)
			die(fmt::format("{}: {}", outfile, strerror(errno)));
	}
	calls.out = t.out;
	calls.names = &t;
	if (t.format == Format::Text)
		setvbuf(t.out, nullptr, _IOLBF, 0); /* live, line by line */

	SysInfo si;
	if (kipc_sysinfo(&si) < 0)
		die_errno("sysinfo", errno);
	t.src[0].boot_mono = mono_ns() - si.uptime;
	for (const auto &ti : fetch_all<TaskInfo>(kipc_task_list, "task list"))
		t.src[0].comm[ti.pid] = ti.comm;
	for (const auto &mi : fetch_all<MboxInfo>(kipc_mbox_list, "mailbox list")) {
		uint32_t f = mi.st.attr.flags;
		t.src[0].names[mi.st.id] = f & KIPC_MBOX_SYSV ? fmt::format("msq {}", mi.st.id)
				    : f & KIPC_MBOX_POSIX ? fmt::format("mq {}", mi.st.name)
							  : mi.st.name;
	}

	if (calls_mode) {
		attr.events = KIPC_TRACE_CALLS | KIPC_TRACE_MASK(KIPC_TRACE_BLOCK) |
			      KIPC_TRACE_MASK(KIPC_TRACE_ATTACH) | KIPC_TRACE_MASK(KIPC_TRACE_CREATE) |
			      KIPC_TRACE_MASK(KIPC_TRACE_OPEN) | KIPC_TRACE_MASK(KIPC_TRACE_NETSEND);
	} else if (program || pid_arg) {
		/* the tracepoints of the program's tasks: ATTACH to follow children */
		if (attr.events)
			attr.events |= KIPC_TRACE_MASK(KIPC_TRACE_ATTACH);
	}
	if (program) {
		prctl(PR_SET_CHILD_SUBREAPER, 1);
		follow.self = getpid();
		child.start(argv + optind);
		follow.pids.insert(child.pid);
	}
	if (kipc_trace_open(&attr) < 0) {
		if (errno == EBUSY)
			die("this task already has a trace listener");
		die_errno("trace_open", errno);
	}
	struct sigaction sa {};
	sa.sa_handler = on_signal; /* no SA_RESTART: a blocked read fails EINTR */
	sigaction(SIGINT, &sa, nullptr);
	sigaction(SIGTERM, &sa, nullptr);
	signal(SIGPIPE, SIG_IGN);
	if (program && !child.go())
		die(fmt::format("cannot run {}: {}", argv[optind], strerror(errno)), 127);
	if (!quiet && !program)
		fmt::print(stderr, "kipc-trace: tracing {} at {}{}\n",
			   pid_arg ? fmt::format("pid {}", pid_str) : "the kernel", socket_path(),
			   dur ? fmt::format(" for {}s", dur) : "; Ctrl-C to stop");

	bool filter = program || pid_arg;
	bool user_asked_attach = !attr.events || (attr.events & KIPC_TRACE_MASK(KIPC_TRACE_ATTACH));
	auto handle = [&](const kipc_trace_event &e) {
		if (e.event == KIPC_TRACE_LOST) {
			if (calls_mode)
				t.lost += uint64_t(e.res);
			else
				t.event(e);
			return;
		}
		if (filter) {
			if (e.event == KIPC_TRACE_ATTACH)
				follow.attach(e.pid, e.peer);
			if (!follow.has(e.pid))
				return;
		}
		if (!calls_mode) {
			if (e.event != KIPC_TRACE_ATTACH || user_asked_attach || t.all)
				t.event(e);
			return;
		}
		switch (e.event) {
		case KIPC_TRACE_CREATE:
		case KIPC_TRACE_OPEN:
			t.learn(e);
			break;
		case KIPC_TRACE_NETSEND:
			t.learn(e); /* a remote mailbox's name */
			calls.netsend(e);
			break;
		case KIPC_TRACE_SYSCALL: calls.syscall(e); break;
		case KIPC_TRACE_SYSARG: calls.sysarg(e); break;
		case KIPC_TRACE_SYSRET: calls.sysret(e); break;
		case KIPC_TRACE_BLOCK: calls.block(e); break;
		}
	};

	if (!calls_mode)
		t.begin();
	int64_t deadline = dur ? mono_ns() + int64_t(dur * 1e9) : 0;
	std::vector<kipc_trace_event> buf(512);
	Joiner join; /* NETNAMEs into their records */
	int err = 0, status = 0;
	bool children_left = program;
	/*
	 * A signal that lands between the test of stop and the read (or
	 * while libkipc spins before it sleeps) does not interrupt the read:
	 * read with a timeout so that stop is seen within kStopPollNs anyway.
	 */
	constexpr int64_t kStopPollNs = 100'000'000;
	while (!stop) {
		if (program) { /* until PROGRAM and every process it left behind are gone */
			for (int st; children_left;) {
				pid_t w = waitpid(-1, &st, WNOHANG);
				if (w == child.pid)
					status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
				if (w < 0 && errno == ECHILD)
					children_left = false;
				if (w <= 0)
					break;
			}
			if (!children_left)
				break;
		}
		ssize_t n;
		int64_t wait = kStopPollNs;
		if (deadline) {
			int64_t left = deadline - mono_ns();
			if (left <= 0)
				break;
			wait = std::min(left, wait);
		}
		n = kipc_trace_read_timed(buf.data(), buf.size(), 0, program ? wait / 10 : wait);
		if (n < 0) {
			if (errno == EINTR || errno == ETIMEDOUT)
				continue;
			err = errno;
			break;
		}
		for (ssize_t i = 0; i < n; i++)
			join.feed(buf[i], handle);
		if (ferror(t.out))
			break; /* a closed pipe: stop quietly */
	}
	/* what is still in the kernel's ring */
	for (ssize_t n; !err && (n = kipc_trace_read(buf.data(), buf.size(), KIPC_F_NONBLOCK)) > 0;)
		for (ssize_t i = 0; i < n; i++)
			join.feed(buf[i], handle);
	join.flush(handle);
	if (!err)
		kipc_trace_close();
	if (calls_mode)
		calls.end();
	else
		t.end();
	fflush(t.out);
	if (outfile && fclose(t.out) != 0)
		die(fmt::format("{}: {}", outfile, strerror(errno)));
	if (t.lost && !quiet)
		fmt::print(stderr, "kipc-trace: {} events lost (try a larger --buffer)\n", t.lost);
	if (err)
		die(kernel_error(err));
	return status;
}
