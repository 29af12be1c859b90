// SPDX-License-Identifier: MIT
/*
 * kipc-trace: stream the kipc kernel's tracepoints (see <kipc/trace.h>)
 * as text in the spirit of ftrace's trace_pipe, as Chrome/Perfetto trace
 * JSON, or as a Mermaid sequence diagram of who sent what to whom. See
 * Documentation/man/kipc-trace.1.
 */
#include <csignal>
#include <ctime>
#include <getopt.h>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "../include/tool.h"

using json = nlohmann::ordered_json;
using namespace tool;

namespace {

enum class Format { Text, Chrome, Mermaid };

volatile sig_atomic_t stop;
void on_signal(int) { stop = 1; }

int64_t mono_ns()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
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

std::string errno_name(int64_t res)
{
	switch (-res) {
	case ETIMEDOUT: return "-ETIMEDOUT";
	case ECANCELED: return "-ECANCELED";
	case EINTR: return "-EINTR";
	}
	return std::to_string(res);
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
		return fmt::format("{} seq={} len={} prio={}{}", l, e.seq, e.len, e.prio,
				   flag_string(e.flags));
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

struct Tracer {
	Format format = Format::Text;
	FILE *out = stdout;
	int64_t boot_mono = 0;        /* kernel boot on CLOCK_MONOTONIC */
	std::map<int32_t, std::string> comm;
	uint64_t lost = 0, nevents = 0;
	/* chrome */
	bool first = true;
	std::map<int32_t, int> blocked;  /* pid -> open "blocked" slices */
	std::set<int32_t> named;
	/* mermaid */
	std::vector<kipc_trace_event> kept;
	size_t limit = 200;

	double secs(uint64_t ts) const { return double(int64_t(ts) - boot_mono) / 1e9; }

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
		std::string n = it != comm.end() && !it->second.empty()
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
		if (e.comm[0])
			comm[e.pid] = std::string(e.comm, strnlen(e.comm, sizeof e.comm));
		switch (format) {
		case Format::Text:
		{
			std::string d = details(e);
			fmt::print(out, "{:>16}-{:<7} {:>13.6f}: {}:{}{}\n",
				   std::string(e.comm, strnlen(e.comm, sizeof e.comm)), e.pid, secs(e.ts),
				   event_name(e.event), d.empty() ? "" : " ", d);
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
		std::string name = event_name(e.event);
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
			participant(who(pid), it != comm.end() ? fmt::format("{} {}", it->second, pid)
								 : fmt::format("pid {}", pid));
			return who(pid);
		};
		auto mbox = [&](int64_t id) {
			participant(fmt::format("M{}", id), fmt::format("mailbox {}", id));
			return fmt::format("M{}", id);
		};
		std::vector<std::string> lines;
		size_t arrows = 0, dropped = 0;
		for (const auto &e : kept) {
			std::string line;
			switch (e.event) {
			case KIPC_TRACE_SEND:
				if (e.mbox) {
					std::string from = task(e.pid), to = mbox(e.mbox);
					line = fmt::format("    {}->>{}: {} #{} ({} B)", from, to,
							   e.flags & KIPC_TRACE_F_CALL ? "call" : "send",
							   e.seq, e.len);
				}
				break;
			case KIPC_TRACE_DELIVER:
				if (e.flags & KIPC_TRACE_F_REPLY) {
					std::string from = task(e.peer), to = task(e.pid);
					line = fmt::format("    {}-->>{}: reply ({} B)", from, to, e.len);
				} else if (e.mbox) {
					std::string from = mbox(e.mbox), to = task(e.pid);
					line = fmt::format("    {}-->>{}: #{}", from, to, e.seq);
				} else {
					std::string from = task(e.peer), to = task(e.pid);
					line = fmt::format("    {}->>{}: #{} ({} B)", from, to, e.seq, e.len);
				}
				break;
			case KIPC_TRACE_BLOCK:
				if (!(e.flags & KIPC_TRACE_F_CACHED))
					line = fmt::format("    Note over {}: blocked in {}", task(e.pid),
							   op_name(e.op));
				break;
			case KIPC_TRACE_TIMEOUT:
			case KIPC_TRACE_CANCEL:
				line = fmt::format("    Note over {}: {} ({})", task(e.pid),
						   event_name(e.event), errno_name(e.res));
				break;
			case KIPC_TRACE_DESTROY:
				if (e.mbox)
					line = fmt::format("    Note over {}: destroyed", mbox(e.mbox));
				break;
			}
			if (line.empty())
				continue;
			if (arrows >= limit) {
				dropped++;
				continue;
			}
			arrows++;
			lines.push_back(line);
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
			if (name == event_name(ev)) {
				mask |= KIPC_TRACE_MASK(ev);
				found = true;
			}
		}
		if (!found)
			die(fmt::format("unknown event '{}' (attach, exit, send, enqueue, block, "
					"wake, deliver, timeout, cancel, destroy)",
					name),
			    2);
		if (comma == std::string::npos)
			break;
		pos = comma + 1;
	}
	return mask;
}

void usage(FILE *f)
{
	fmt::print(f,
		   "usage: kipc-trace [--pid PID] [--mbox ID|NAME] [--event LIST]\n"
		   "                  [--format=text|chrome|mermaid] [--duration SEC] [-o FILE]\n"
		   "Stream the kipc kernel's tracepoints until Ctrl-C (or --duration).\n"
		   "  -p, --pid PID        only events of (or with) this task\n"
		   "  -m, --mbox ID|NAME   only events on this mailbox\n"
		   "  -e, --event LIST     only these events, comma-separated: attach, exit,\n"
		   "                       send, enqueue, block, wake, deliver, timeout,\n"
		   "                       cancel, destroy\n"
		   "  -f, --format FMT     text (default, like trace_pipe), chrome (Chrome/\n"
		   "                       Perfetto trace JSON), mermaid (sequence diagram)\n"
		   "  -d, --duration SEC   stop after SEC seconds\n"
		   "  -o, --output FILE    write to FILE instead of standard output\n"
		   "  -b, --buffer N       kernel ring size in events (default {})\n"
		   "  -l, --limit N        mermaid: at most N steps (default 200)\n"
		   "  -q, --quiet          no 'tracing ...' note on standard error\n"
		   "  -h, --help           this help\n",
		   KIPC_TRACE_BUF_DEFAULT);
}

} // namespace

int main(int argc, char **argv)
{
	prog = "kipc-trace";
	Tracer t;
	kipc_trace_attr attr{};
	const char *mbox_arg = nullptr, *outfile = nullptr;
	double dur = 0;
	bool quiet = false;
	static const option longopts[] = {
		{"pid", required_argument, nullptr, 'p'},
		{"mbox", required_argument, nullptr, 'm'},
		{"event", required_argument, nullptr, 'e'},
		{"format", required_argument, nullptr, 'f'},
		{"duration", required_argument, nullptr, 'd'},
		{"output", required_argument, nullptr, 'o'},
		{"buffer", required_argument, nullptr, 'b'},
		{"limit", required_argument, nullptr, 'l'},
		{"quiet", no_argument, nullptr, 'q'},
		{"help", no_argument, nullptr, 'h'},
		{nullptr, 0, nullptr, 0},
	};
	for (int c; (c = getopt_long(argc, argv, "p:m:e:f:d:o:b:l:qh", longopts, nullptr)) != -1;) {
		int64_t v;
		switch (c) {
		case 'p':
			if (!parse_id(optarg, &v) || v > INT32_MAX)
				die(fmt::format("invalid pid '{}'", optarg), 2);
			attr.pid = int32_t(v);
			break;
		case 'm': mbox_arg = optarg; break;
		case 'e': attr.events = parse_events(optarg); break;
		case 'f':
			if (!strcmp(optarg, "text"))
				t.format = Format::Text;
			else if (!strcmp(optarg, "chrome") || !strcmp(optarg, "perfetto"))
				t.format = Format::Chrome;
			else if (!strcmp(optarg, "mermaid"))
				t.format = Format::Mermaid;
			else
				die(fmt::format("unknown format '{}' (text, chrome, mermaid)", optarg), 2);
			break;
		case 'd': {
			char *end;
			dur = strtod(optarg, &end);
			if (*end || !(dur > 0))
				die(fmt::format("invalid duration '{}' (seconds > 0)", optarg), 2);
			break;
		}
		case 'o': outfile = optarg; break;
		case 'b':
			if (!parse_id(optarg, &v) || v > KIPC_TRACE_BUF_MAX)
				die(fmt::format("invalid buffer size '{}' (1 to {} events)", optarg,
						KIPC_TRACE_BUF_MAX), 2);
			attr.bufsize = uint32_t(v);
			break;
		case 'l':
			if (!parse_id(optarg, &v))
				die(fmt::format("invalid limit '{}'", optarg), 2);
			t.limit = size_t(v);
			break;
		case 'q': quiet = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		die(fmt::format("unexpected argument '{}' (see kipc-trace --help)", argv[optind]), 2);

	attach();
	if (mbox_arg) {
		int64_t id;
		if (!parse_id(mbox_arg, &id)) {
			if (mbox_arg[0] != '/')
				die(fmt::format("invalid mailbox '{}': give an id or a /name", mbox_arg), 2);
			id = kipc_mbox_open(mbox_arg, 0, nullptr);
			if (id < 0) {
				if (errno == ENOENT || errno == EINVAL)
					die(fmt::format("no such mailbox: {}", mbox_arg));
				die_errno(mbox_arg, errno);
			}
		}
		attr.mbox = id;
	}
	if (outfile) {
		t.out = fopen(outfile, "w");
		if (!t.out)
			die(fmt::format("{}: {}", outfile, strerror(errno)));
	}
	if (t.format == Format::Text)
		setvbuf(t.out, nullptr, _IOLBF, 0); /* live, line by line */

	SysInfo si;
	if (kipc_sysinfo(&si) < 0)
		die_errno("sysinfo", errno);
	t.boot_mono = mono_ns() - si.uptime;
	for (const auto &ti : fetch_all<TaskInfo>(kipc_task_list, "task list"))
		t.comm[ti.pid] = ti.comm;

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
	if (!quiet)
		fmt::print(stderr, "kipc-trace: tracing the kernel at {}{}\n", socket_path(),
			   dur ? fmt::format(" for {}s", dur) : "; Ctrl-C to stop");

	t.begin();
	int64_t deadline = dur ? mono_ns() + int64_t(dur * 1e9) : 0;
	std::vector<kipc_trace_event> buf(512);
	int err = 0;
	/*
	 * A signal that lands between the test of stop and the read (or
	 * while libkipc spins before it sleeps) does not interrupt the read:
	 * read with a timeout so that stop is seen within kStopPollNs anyway.
	 */
	constexpr int64_t kStopPollNs = 100'000'000;
	while (!stop) {
		ssize_t n;
		if (deadline) {
			int64_t left = deadline - mono_ns();
			if (left <= 0)
				break;
			n = kipc_trace_read_timed(buf.data(), buf.size(), 0,
						  std::min(left, kStopPollNs));
		} else {
			n = kipc_trace_read_timed(buf.data(), buf.size(), 0, kStopPollNs);
		}
		if (n < 0) {
			if (errno == EINTR || errno == ETIMEDOUT)
				continue;
			err = errno;
			break;
		}
		for (ssize_t i = 0; i < n; i++)
			t.event(buf[i]);
		if (ferror(t.out))
			break; /* a closed pipe: stop quietly */
	}
	/* what is still in the kernel's ring */
	for (ssize_t n; !err && (n = kipc_trace_read(buf.data(), buf.size(), KIPC_F_NONBLOCK)) > 0;)
		for (ssize_t i = 0; i < n; i++)
			t.event(buf[i]);
	if (!err)
		kipc_trace_close();
	t.end();
	if (outfile && fclose(t.out) != 0)
		die(fmt::format("{}: {}", outfile, strerror(errno)));
	if (t.lost && !quiet)
		fmt::print(stderr, "kipc-trace: {} events lost (try a larger --buffer)\n", t.lost);
	if (err)
		die(kernel_error(err));
	return 0;
}
