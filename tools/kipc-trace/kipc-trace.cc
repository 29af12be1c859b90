// SPDX-License-Identifier: MIT
/*
 * kipc-trace: stream the kipc kernel's tracepoints (see <kipc/trace.h>)
 * as text in the spirit of ftrace's trace_pipe, as Chrome/Perfetto trace
 * JSON, or as a Mermaid sequence diagram of who sent what to whom. See
 * Documentation/man/kipc-trace.1.
 */
#include <csignal>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <ctime>
#include <getopt.h>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
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

/* The fields after "event:" in the text format. */
std::string details(const kipc_trace_event &e)
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
				   e.peer ? fmt::format("by={}", e.peer) : "");
	case KIPC_TRACE_DELIVER:
		return fmt::format("{}{}seq={} len={} from={}{}", l, l.empty() ? "" : " ", e.seq,
				   e.len, e.peer, flag_string(e.flags));
	case KIPC_TRACE_TIMEOUT:
	case KIPC_TRACE_CANCEL:
		return fmt::format("{} res={}", l, errno_name(e.res));
	case KIPC_TRACE_DESTROY:
		return l;
	}
	return "";
}


/*
 * A remote caller's proxy task (pid >= 2^22: Documentation/network.md)
 * as "NODE:PID", its node and pid there; "" for anyone else. Asked of
 * the kernel (net_peer) when first seen; a proxy already gone is known
 * by the command the kernel gave it, "net:NODE:PID" (comm, which may
 * be cut at 15 characters).
 */
const std::string &remote_label(int32_t pid, const std::string &comm = "")
{
	static std::map<int32_t, std::string> cache;
	static const std::string unknown;
	auto it = cache.find(pid);
	if (it != cache.end())
		return it->second;
	std::string r;
	struct kipc_net_peer np;
	if (pid < (1 << KIPC_NET_PID_BITS))
		return cache[pid] = r;
	if (kipc_net_peer(pid, &np) == 0)
		r = fmt::format("{}:{}", np.node, np.pid);
	else if (comm.rfind("net:", 0) == 0)
		r = comm.substr(4);
	else
		return unknown; /* not known yet: ask again later */
	return cache[pid] = r;
}

struct Tracer {
	Format format = Format::Text;
	FILE *out = stdout;
	int64_t boot_mono = 0;        /* kernel boot on CLOCK_MONOTONIC */
	std::map<int32_t, std::string> comm;
	std::map<int64_t, std::string> names;  /* mailbox id -> label */
	bool all = false;                      /* --all: the tools' own tasks too */
	std::map<int32_t, kipc_trace_event> attached; /* ATTACH held until it does something */
	uint64_t lost = 0, nevents = 0;
	/* chrome */
	bool first = true;
	std::map<int32_t, int> blocked;  /* pid -> open "blocked" slices */
	std::set<int32_t> named;
	/* mermaid */
	std::vector<kipc_trace_event> kept;
	size_t limit = 200;

	double secs(uint64_t ts) const { return double(int64_t(ts) - boot_mono) / 1e9; }

	std::string comm_of(const kipc_trace_event &e) const
	{
		if (e.event != KIPC_TRACE_CREATE && e.event != KIPC_TRACE_OPEN)
			return std::string(e.comm, strnlen(e.comm, sizeof e.comm));
		auto it = comm.find(e.pid);
		return it != comm.end() ? it->second : "";
	}

	std::string mbox_label(int64_t id) const
	{
		auto it = names.find(id);
		if (it == names.end() || it->second.empty())
			return fmt::format("mailbox {}", id);
		return it->second[0] == '/' ? "mailbox " + it->second : it->second;
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

	void chrome_name(int32_t pid)
	{
		if (!pid || named.count(pid))
			return;
		named.insert(pid);
		auto it = comm.find(pid);
		std::string n = !remote_label(pid).empty() ? fmt::format("{} (remote, proxy {})", remote_label(pid), pid)
				: it != comm.end() && !it->second.empty()
					? fmt::format("{} {}", it->second, pid)
					: fmt::format("pid {}", pid);
		chrome({{"ph", "M"}, {"name", "process_name"}, {"pid", pid}, {"tid", pid},
			{"args", {{"name", n}}}});
	}

	void event(const kipc_trace_event &e)
	{
		nevents++;
		if (e.event == KIPC_TRACE_LOST) {
			lost += uint64_t(e.res);
			if (format == Format::Text)
				fmt::print(out, "# {} events lost (the kernel's ring was full)\n", e.res);
			return;
		}
		if (e.event == KIPC_TRACE_CREATE || e.event == KIPC_TRACE_OPEN) {
			names[e.mbox] = obj_label(as<kipc_trace_obj>(e));
		} else if (e.comm[0]) {
			comm[e.pid] = std::string(e.comm, strnlen(e.comm, sizeof e.comm));
		}
		remote_label(e.pid, comm.count(e.pid) ? comm[e.pid] : ""); /* while it lives */
		/*
		 * A task that only attaches, looks and exits (kipcs, kipc-trace)
		 * is hidden unless --all: its ATTACH is held back until it does
		 * something, and dropped with its EXIT if it never does.
		 */
		if (!all) {
			if (e.event == KIPC_TRACE_ATTACH) {
				attached[e.pid] = e;
				return;
			}
			auto it = attached.find(e.pid);
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

	void emit(const kipc_trace_event &e)
	{
		switch (format) {
		case Format::Text:
		{
			std::string d = details(e);
			fmt::print(out, "{:>16}-{:<7} {:>13.6f}: {}:{}{}\n",
				   comm_of(e), e.pid, secs(e.ts), ev_name(e.event), d.empty() ? "" : " ", d);
		}
			break;
		case Format::Chrome:
			chrome_event(e);
			break;
		case Format::Mermaid:
			kept.push_back(e);
			break;
		}
	}

	void chrome_event(const kipc_trace_event &e)
	{
		chrome_name(e.pid);
		double us = double(int64_t(e.ts) - boot_mono) / 1e3;
		json args = {{"link", link_string(e)}, {"seq", e.seq}, {"len", e.len},
			     {"peer", e.peer}, {"syscall", op_name(e.op)}, {"res", e.res}};
		if (e.mbox)
			args["mailbox"] = mbox_label(e.mbox);
		if (e.event == KIPC_TRACE_CREATE || e.event == KIPC_TRACE_OPEN) {
			kipc_trace_obj o = as<kipc_trace_obj>(e);
			chrome({{"ph", "i"}, {"s", "t"},
				{"name", fmt::format("{} {}", ev_name(e.event), obj_label(o))},
				{"cat", "kipc"}, {"ts", us}, {"pid", e.pid}, {"tid", e.pid},
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
				{"pid", e.pid}, {"tid", e.pid}, {"args", args}});
			return; /* a timed-out wait's slice ends at the WAKE that follows */
		}
		if (e.event == KIPC_TRACE_BLOCK && !(e.flags & KIPC_TRACE_F_CACHED)) {
			blocked[e.pid]++;
			chrome({{"ph", "B"}, {"name", "blocked in " + op_name(e.op)}, {"cat", "kipc"},
				{"ts", us}, {"pid", e.pid}, {"tid", e.pid}, {"args", args}});
			return;
		}
		if (e.event == KIPC_TRACE_WAKE && blocked[e.pid] > 0) {
			blocked[e.pid]--;
			chrome({{"ph", "E"}, {"ts", us}, {"pid", e.pid}, {"tid", e.pid}});
			return;
		}
		std::string name = ev_name(e.event);
		if (e.event == KIPC_TRACE_SEND || e.event == KIPC_TRACE_DELIVER)
			name += fmt::format(" #{}", e.seq);
		chrome({{"ph", "i"}, {"s", "t"}, {"name", name}, {"cat", "kipc"}, {"ts", us},
			{"pid", e.pid}, {"tid", e.pid}, {"args", args}});
		/* a flow arrow from the send to the delivery of the same message */
		if (e.event == KIPC_TRACE_SEND && !(e.flags & KIPC_TRACE_F_REPLY))
			chrome({{"ph", "s"}, {"id", e.seq}, {"name", "message"}, {"cat", "msg"},
				{"ts", us}, {"pid", e.pid}, {"tid", e.pid}});
		if (e.event == KIPC_TRACE_DELIVER && !(e.flags & KIPC_TRACE_F_REPLY))
			chrome({{"ph", "f"}, {"bp", "e"}, {"id", e.seq}, {"name", "message"},
				{"cat", "msg"}, {"ts", us}, {"pid", e.pid}, {"tid", e.pid}});
	}

	std::string who(int32_t pid)
	{
		return fmt::format("T{}", pid);
	}

	/*
	 * Arrows are messages that reached a link or a receiver (a solid
	 * arrow to a mailbox: it was queued or handed over; a dashed one
	 * from it: a receiver got it). A send that failed is a cross (-x)
	 * with its errno; a blocked sender is a note, and its arrow is drawn
	 * when its message gets in, or a cross when it timed out or was
	 * cancelled.
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
		auto task = [&](int32_t pid) {
			auto it = comm.find(pid);
			participant(who(pid), !remote_label(pid).empty()
					? fmt::format("{} (remote)", remote_label(pid))
					: it != comm.end() ? fmt::format("{} {}", it->second, pid)
							   : fmt::format("pid {}", pid));
			return who(pid);
		};
		auto mbox = [&](int64_t id) {
			participant(fmt::format("M{}", id), mbox_label(id));
			return fmt::format("M{}", id);
		};
		auto target = [&](const kipc_trace_event &e) {
			return e.mbox ? mbox(e.mbox) : task(e.qpid ? e.qpid : e.peer);
		};
		auto send_arrow = [&](const kipc_trace_event &s) {
			std::string from = task(s.pid), to = target(s);
			return fmt::format("    {}->>{}: {} #{} ({} B)", from, to,
					   s.flags & KIPC_TRACE_F_CALL ? "call" : "send", s.seq, s.len);
		};
		std::map<uint64_t, kipc_trace_event> blocked_sends; /* seq -> its SEND */
		std::vector<std::string> lines;
		size_t arrows = 0, dropped = 0;
		for (const auto &e : kept) {
			std::vector<std::string> step;
			switch (e.event) {
			case KIPC_TRACE_SEND:
				if (e.res < 0) {
					std::string from = task(e.pid), to = target(e);
					step.push_back(fmt::format("    {}-x{}: {} failed: {}", from, to,
								   e.flags & KIPC_TRACE_F_CALL ? "call" : "send",
								   err_name(e.res)));
				} else if (e.flags & KIPC_TRACE_F_BLOCKED) {
					blocked_sends[e.seq] = e;
				} else if (e.mbox) {
					step.push_back(send_arrow(e));
				}
				break;
			case KIPC_TRACE_ENQUEUE:
				if (auto it = blocked_sends.find(e.seq); it != blocked_sends.end()) {
					if (e.mbox)
						step.push_back(send_arrow(it->second));
					else
						it->second.flags &= ~KIPC_TRACE_F_BLOCKED; /* DELIVER draws it */
					blocked_sends.erase(it);
				}
				break;
			case KIPC_TRACE_DELIVER:
				if (auto it = blocked_sends.find(e.seq); it != blocked_sends.end()) {
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
				if (auto it = blocked_sends.find(e.seq); e.seq && it != blocked_sends.end()) {
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
	};
	std::string s;
	for (auto [bit, n] : names)
		if (f & bit)
			s += (s.empty() ? "" : "|") + std::string(n);
	uint32_t known = KIPC_F_NONBLOCK | KIPC_F_CACHE | KIPC_F_TRUNC | KIPC_F_TYPE |
			 KIPC_F_EXCEPT | KIPC_O_CREAT | KIPC_O_EXCL | KIPC_F_INTR | KIPC_F_TIMEOUT |
			 KIPC_F_ABSTIME | KIPC_F_REALTIME;
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
	const Tracer *names = nullptr;    /* mailbox names, comms */
	struct Pending {
		kipc_trace_call c;
		std::string name;         /* SYSARG */
		bool have_name = false, name_trunc = false;
		int32_t oflag = 0;
		bool shown = false;       /* printed as <unfinished ...> */
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
		auto it = names->names.find(id);
		if (it == names->names.end() || it->second.empty())
			return std::to_string(id);
		const std::string &l = it->second;
		if (l.rfind("msq", 0) == 0)
			return std::to_string(id);
		return fmt::format("\"{}\"", l.rfind("mq ", 0) == 0 ? l.substr(3) : l);
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
			return fmt::format("pid {}, {} bytes{}{}{}{}", c.target, c.len, pr, ty, f, to);
		case KIPC_SYS_receive:
			return fmt::format("{}, {} bytes{}{}{}",
					   c.target ? fmt::format("pid {}", c.target) : "any", c.len, ty, f, to);
		case KIPC_SYS_mbox_send:
			return fmt::format("{}, {} bytes{}{}{}{}", mb(c.target), c.len, pr, ty, f, to);
		case KIPC_SYS_mbox_receive:
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
		case KIPC_SYS_call:
			return fmt::format("pid {}, {} bytes, reply {} bytes{}{}{}", c.target, c.len, c.len2,
					   pr, f, to);
		case KIPC_SYS_mbox_call:
			return fmt::format("{}, {} bytes, reply {} bytes{}{}{}", mb(c.target), c.len,
					   c.len2, pr, f, to);
		case KIPC_SYS_reply:
			return fmt::format("token {}, {} bytes", c.target, c.len);
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
		if (!summary && !remote_label(pid).empty())
			fmt::print(out, "[{}] {}\n", remote_label(pid), text); /* a remote caller */
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
		for (unsigned ev = 1; ev < KIPC_TRACE_LOST; ev++) {
			if (name == ev_name(ev)) {
				mask |= KIPC_TRACE_MASK(ev);
				found = true;
			}
		}
		if (!found)
			usage_error(fmt::format("unknown event '{}' (attach, exit, send, enqueue, block, "
						"wake, deliver, timeout, cancel, destroy, create, open)",
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
		   "  -p, --pid PID        this task (and its children that attach later)\n"
		   "  -c, --summary        calls: a table of calls, errors and time at the end\n"
		   "  -m, --mbox ID|NAME   only events on this mailbox\n"
		   "  -e, --event LIST     only these events, comma-separated: attach, exit,\n"
		   "                       send, enqueue, block, wake, deliver, timeout,\n"
		   "                       cancel, destroy, create, open\n"
		   "  -f, --format FMT     text (default, like trace_pipe), chrome (Chrome/\n"
		   "                       Perfetto trace JSON), mermaid (sequence diagram)\n"
		   "  -a, --all            also the tools' own tasks (attach, look, exit)\n"
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
	static const option longopts[] = {
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
	for (int c; (c = getopt_long(argc, argv, "+:p:cm:e:f:ad:o:b:l:qhV", longopts, nullptr)) != -1;) {
		int64_t v;
		switch (c) {
		case 'p':
			if (!parse_id(optarg, &v) || v > INT32_MAX)
				usage_error(fmt::format("invalid pid '{}'", optarg));
			pid_arg = int32_t(v);
			break;
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
	if (program && pid_arg)
		usage_error("-p and -- PROGRAM exclude each other");
	if (calls.summary && (events_mode || (!program && !pid_arg)))
		usage_error("-c counts the calls of -- PROGRAM or -p PID (not with -f or -e)");
	bool calls_mode = (program || pid_arg) && !events_mode;

	attach();
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
	t.boot_mono = mono_ns() - si.uptime;
	for (const auto &ti : fetch_all<TaskInfo>(kipc_task_list, "task list"))
		t.comm[ti.pid] = ti.comm;
	for (const auto &mi : fetch_all<MboxInfo>(kipc_mbox_list, "mailbox list")) {
		uint32_t f = mi.st.attr.flags;
		t.names[mi.st.id] = f & KIPC_MBOX_SYSV ? fmt::format("msq {}", mi.st.id)
				    : f & KIPC_MBOX_POSIX ? fmt::format("mq {}", mi.st.name)
							  : mi.st.name;
	}

	if (calls_mode) {
		attr.events = KIPC_TRACE_CALLS | KIPC_TRACE_MASK(KIPC_TRACE_BLOCK) |
			      KIPC_TRACE_MASK(KIPC_TRACE_ATTACH) | KIPC_TRACE_MASK(KIPC_TRACE_CREATE) |
			      KIPC_TRACE_MASK(KIPC_TRACE_OPEN);
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
			   pid_arg ? fmt::format("pid {}", pid_arg) : "the kernel", socket_path(),
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
			t.names[e.mbox] = obj_label(as<kipc_trace_obj>(e));
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
			handle(buf[i]);
		if (ferror(t.out))
			break; /* a closed pipe: stop quietly */
	}
	/* what is still in the kernel's ring */
	for (ssize_t n; !err && (n = kipc_trace_read(buf.data(), buf.size(), KIPC_F_NONBLOCK)) > 0;)
		for (ssize_t i = 0; i < n; i++)
			handle(buf[i]);
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
