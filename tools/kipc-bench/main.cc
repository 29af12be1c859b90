// SPDX-License-Identifier: MIT
/*
 * kipc-bench: measure kipc against the native kernel's IPC.
 *
 *   kipc-bench [--quick] [--json] [--reps N] [--only WORD] [--loop=L]
 *              [--size N,..] [--kipcd PATH] [--no-raise]
 *
 * Boots a private kipcd (its own socket in a temporary directory, with
 * limits large enough for the scaling runs), runs the suite and prints a
 * table, or with --json one record per scenario, implementation and size.
 * Every kipc row carries its ratio to native POSIX mq in the same run
 * (scaling rows: to their small case). See Documentation/performance.md.
 */
#include "bench.h"
#include "../include/tool.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/core.h>
#include <generated/autoconf.h>
#include <nlohmann/json.hpp>

namespace bench {

int64_t now_ns()
{
	return kipc_clock_ns(CLOCK_MONOTONIC);
}

Lat summarize(std::vector<int64_t> &s)
{
	Lat l;
	if (s.empty())
		return l;
	std::sort(s.begin(), s.end());
	double sum = 0;
	for (int64_t v : s)
		sum += double(v);
	l.mean = sum / double(s.size());
	l.p50 = double(s[s.size() / 2]);
	l.p99 = double(s[std::min(s.size() - 1, s.size() * 99 / 100)]);
	return l;
}

double median(std::vector<double> v)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	return v[v.size() / 2];
}

/* Does name contain one of the comma-separated words (all: none given)? */
static bool matches(const std::string &words, const std::string &name)
{
	if (words.empty())
		return true;
	size_t pos = 0;
	while (pos <= words.size()) {
		size_t comma = words.find(',', pos);
		std::string w = words.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
		if (!w.empty() && name.find(w) != std::string::npos)
			return true;
		if (comma == std::string::npos)
			break;
		pos = comma + 1;
	}
	return false;
}

bool wanted(const Options &o, const std::string &scenario)
{
	return matches(o.only, scenario);
}

bool wanted_impl(const Options &o, const std::string &impl)
{
	return matches(o.impl, impl);
}

namespace {

[[noreturn]] void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: kipc-bench [--quick] [--json] [--reps N] [--only WORD] [--loop=auto|io_uring|epoll]\n"
		"                  [--impl WORD] [--size N,..] [--kipcd PATH] [--no-raise]\n"
		"  --quick     a few seconds, small counts (a smoke run, not a measurement)\n"
		"  --json      JSON instead of the table\n"
		"  --reps N    repetitions of every measurement, interleaved (default 3)\n"
		"  --only W,.. only scenarios whose name contains one of the words (pingpong,\n"
		"              stream, stream-behind, fanin, fanout, rendezvous, scale, memory,\n"
		"              core)\n"
		"  --impl W,.. only the kipc implementations whose name contains one of the\n"
		"              words (kipc-mbox, kipc-run-mq, ...); the natives always run\n"
		"  --size N,.. ping-pong payload sizes in bytes (default 16,64,1024,8192)\n"
		"  --loop L    event loop of the private kipcd\n"
		"  --kipcd P   kipcd binary (default: $KIPC_KIPCD, else next to kipc-bench)\n"
		"  --no-raise  no private IPC namespace with a raised fs.mqueue.msg_max: queues\n"
		"              are as deep as the machine's msg_max allows\n"
		"  --version   print the version\n");
	exit(code);
}

std::string exe_dir()
{
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	if (n <= 0)
		return ".";
	buf[n] = 0;
	std::string s(buf);
	return s.substr(0, s.rfind('/'));
}

struct Kipcd {
	pid_t pid = 0;
	std::string dir, sock, log;
};

/*
 * Boot a private kipcd; "" or why not. mq_msg_max=256: kipc-run-mq's
 * streams open 256-message POSIX queues, as the natives may in the
 * bench's IPC namespace (procs.cc).
 */
std::string boot(const Options &o, Kipcd &k)
{
	char tmpl[] = "/tmp/kipc-bench.XXXXXX";
	if (!mkdtemp(tmpl))
		return fmt::format("mkdtemp: {}", strerror(errno));
	k.dir = tmpl;
	k.sock = k.dir + "/kipcd.sock";
	k.log = k.dir + "/kipcd.log";
	if (access(o.kipcd.c_str(), X_OK) < 0)
		return fmt::format("{}: {}", o.kipcd, strerror(errno));
	std::string loop = "--loop=" + o.loop;
	pid_t pid = fork();
	if (pid < 0)
		return fmt::format("fork: {}", strerror(errno));
	if (pid == 0) {
		int fd = open(k.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			dup2(fd, STDOUT_FILENO);
		}
		execl(o.kipcd.c_str(), o.kipcd.c_str(), "--foreground", "--socket", k.sock.c_str(),
		      loop.c_str(), "bytes_per_user=1073741824", "mbox_per_user=1048576",
		      "msg_max=65536", "mq_msg_max=256", (char *)nullptr);
		_exit(127);
	}
	k.pid = pid;
	for (int i = 0; i < 500; i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			k.pid = 0;
			std::ifstream f(k.log);
			std::string all((std::istreambuf_iterator<char>(f)), {});
			return fmt::format("kipcd exited before it listened: {}", all);
		}
		int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		sockaddr_un a{};
		a.sun_family = AF_UNIX;
		snprintf(a.sun_path, sizeof a.sun_path, "%s", k.sock.c_str());
		bool ok = connect(s, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
		close(s);
		if (ok) {
			setenv("KIPC_SOCKET", k.sock.c_str(), 1);
			setenv("KIPC_AUTOSTART", "0", 1);
			return "";
		}
		usleep(10000);
	}
	return "kipcd did not listen within 5 s";
}

void shut(Kipcd &k)
{
	if (k.pid > 0) {
		kill(k.pid, SIGTERM);
		waitpid(k.pid, nullptr, 0);
	}
	if (!k.dir.empty()) {
		unlink(k.sock.c_str());
		unlink((k.sock + ".lock").c_str());
		unlink(k.log.c_str());
		rmdir(k.dir.c_str());
	}
}

std::string loop_of(const std::string &log)
{
	std::ifstream f(log);
	std::string line;
	while (std::getline(f, line)) {
		size_t p = line.find("event loop: ");
		if (p != std::string::npos)
			return line.substr(p + 12);
	}
	return "?";
}

std::string cpu_model()
{
	std::ifstream f("/proc/cpuinfo");
	std::string line;
	while (std::getline(f, line))
		if (line.compare(0, 10, "model name") == 0) {
			size_t p = line.find(':');
			return p == std::string::npos ? line : line.substr(p + 2);
		}
	return "?";
}

std::string loadavg()
{
	std::ifstream f("/proc/loadavg");
	std::string a, b, c;
	f >> a >> b >> c;
	return a + " " + b + " " + c;
}

std::string fmt_value(const Record &r, double v)
{
	if (v <= 0)
		return "-";
	if (r.metric == "rtt_ns")
		return fmt::format("{:.2f} us", v / 1000.0);
	if (r.metric == "msgs_per_s")
		return fmt::format("{:.0f} k/s", v / 1000.0);
	if (r.metric == "ns_per_op")
		return fmt::format("{:.0f} ns", v);
	return fmt::format("{:.0f} B", v);
}

void print_table(const Meta &m, const std::vector<Record> &rs)
{
	fmt::print("kipc-bench: {} ({} cpus), Linux {}, kipcd loop: {}\n", m.machine, m.cpus,
		   m.kernel, m.loop);
	fmt::print("load average before: {}, after: {} (other work on the machine skews every figure)\n",
		   m.load_before, m.load_after);
	if (m.debug_checks)
		fmt::print("WARNING: built with CONFIG_DEBUG_CHECKS=y: the kernel walks every object "
			   "after each syscall; use `make bench` for a release build\n");
	for (const std::string &n : m.notes)
		fmt::print("note: {}\n", n);
	fmt::print("ratios: p50 / posix-mq p50 for round trips, time / posix-mq time for costs "
		   "(< 1: kipc faster); rate / posix-mq rate for throughput (> 1: kipc faster)\n");
	auto ns = [](double v) {
		return v <= 0 ? std::string() : v < 10000 ? fmt::format("{:.0f} ns", v)
							 : fmt::format("{:.2f} us", v / 1000.0);
	};
	auto x = [](double v) { return v > 0 ? fmt::format("{:.2f}x", v) : std::string(); };
	std::string last;
	for (const Record &r : rs) {
		std::string group = r.scenario + "/" + r.metric;
		bool rate = r.metric == "msgs_per_s";
		if (group != last) {
			fmt::print("\n{:<16} {:<17} {:>6} {:>3} {:>12} {:>10} {:>10} {:>10} {:>7} {:>9} "
				   "{:>6}  {}\n",
				   r.scenario, "impl", "size", "n", r.metric, rate ? "mean/msg" : "mean",
				   rate ? "p50/msg" : "p50", rate ? "p99/msg" : "p99", "ratio", "cpu/op",
				   "cpu x", "");
			last = group;
		}
		bool lat = r.metric == "rtt_ns" || rate;
		fmt::print("{:<16} {:<17} {:>6} {:>3} {:>12} {:>10} {:>10} {:>10} {:>7} {:>9} {:>6}  "
			   "{}{}{}\n",
			   "", r.impl, r.size, r.n, fmt_value(r, r.value), lat ? ns(r.mean) : "",
			   lat ? ns(r.p50) : "", lat ? ns(r.p99) : "", x(r.ratio), ns(r.cpu_ns),
			   x(r.cpu_ratio),
			   r.ratio > 0 && r.ratio_to != "posix-mq" ? "vs " + r.ratio_to + " " : "",
			   r.baseline == "posix-mq-pinned" ? "vs pinned " : "", r.note);
	}
}

void print_json(const Meta &m, const std::vector<Record> &rs)
{
	nlohmann::json j;
	j["meta"] = {{"machine", m.machine}, {"cpus", m.cpus},  {"kernel", m.kernel},
		     {"loop", m.loop},       {"notes", m.notes}, {"debug_checks", m.debug_checks},
		     {"load_before", m.load_before}, {"load_after", m.load_after}};
	nlohmann::json arr = nlohmann::json::array();
	for (const Record &r : rs) {
		nlohmann::json x = {{"scenario", r.scenario},
				    {"impl", r.impl},
				    {"size", r.size},
				    {"n", r.n},
				    {"metric", r.metric},
				    {"value", std::isfinite(r.value) ? r.value : 0.0},
				    {"lower_is_better", r.lower_is_better}};
		if (r.p50 > 0) {
			x["mean"] = r.mean;
			x["p50"] = r.p50;
			x["p99"] = r.p99;
			x["dist_unit"] = r.metric == "msgs_per_s" ? "ns_per_msg" : "ns";
		}
		if (r.cpu_ns > 0)
			x["cpu_ns_per_op"] = r.cpu_ns;
		if (r.ratio > 0) {
			x["ratio"] = r.ratio;
			x["ratio_to"] = r.ratio_to;
		}
		if (!r.baseline.empty())
			x["baseline"] = r.baseline;
		if (r.mean_ratio > 0)
			x["mean_ratio"] = r.mean_ratio;
		if (r.p99_ratio > 0)
			x["p99_ratio"] = r.p99_ratio;
		if (r.cpu_ratio > 0)
			x["cpu_ratio"] = r.cpu_ratio;
		if (!r.note.empty())
			x["note"] = r.note;
		arr.push_back(x);
	}
	j["results"] = arr;
	std::cout << j.dump(1) << "\n";
}

} // namespace
} // namespace bench

int main(int argc, char **argv)
{
	using namespace bench;
	if (argc == 2 && strcmp(argv[1], "--role") == 0) /* under kipc-run: procs.cc */
		return run_exec_role(getenv("KIPC_BENCH_ROLE"));
	Options o;
	if (const char *e = getenv("KIPC_KIPCD"); e && *e)
		o.kipcd = e;
	else
		o.kipcd = exe_dir() + "/kipcd";
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto val = [&]() -> std::string {
			size_t eq = a.find('=');
			if (eq != std::string::npos)
				return a.substr(eq + 1);
			if (i + 1 >= argc)
				tool_usage_error("kipc-bench", "option '%s' needs an argument", a.c_str());
			return argv[++i];
		};
		if (a == "--quick")
			o.quick = true;
		else if (a == "--json")
			o.json = true;
		else if (a == "--no-raise")
			o.no_raise = true;
		else if (a.rfind("--reps", 0) == 0) {
			o.reps = atoi(val().c_str());
			if (o.reps < 1 || o.reps > 100)
				tool_usage_error("kipc-bench", "--reps: 1..100");
		} else if (a.rfind("--only", 0) == 0)
			o.only = val();
		else if (a.rfind("--impl", 0) == 0)
			o.impl = val();
		else if (a.rfind("--size", 0) == 0) {
			std::string v = val();
			for (size_t pos = 0; pos <= v.size();) {
				size_t comma = std::min(v.find(',', pos), v.size());
				long n = atol(v.substr(pos, comma - pos).c_str());
				if (n < 1 || n > 8192) /* procs.cc: kMaxSize */
					tool_usage_error("kipc-bench", "--size: 1..8192, comma-separated");
				o.sizes.push_back(uint32_t(n));
				pos = comma + 1;
			}
		} else if (a.rfind("--loop", 0) == 0)
			o.loop = val();
		else if (a.rfind("--kipcd", 0) == 0)
			o.kipcd = val();
		else if (a == "-h" || a == "--help")
			usage(0);
		else if (a == "--version") {
			tool_print_version("kipc-bench");
			return 0;
		} else if (a[0] == '-')
			tool_usage_error("kipc-bench", "unrecognized option '%s'", a.c_str());
		else
			tool_usage_error("kipc-bench", "unexpected argument '%s'", a.c_str());
	}

	Meta meta;
	utsname u;
	uname(&u);
	meta.kernel = u.release;
	meta.machine = cpu_model();
	meta.cpus = int(sysconf(_SC_NPROCESSORS_ONLN));
#ifdef CONFIG_DEBUG_CHECKS
	meta.debug_checks = true;
	meta.notes.push_back("CONFIG_DEBUG_CHECKS=y: not a release build, figures are not meaningful");
#endif
	if (o.quick)
		meta.notes.push_back("--quick: smoke run with small counts; not a measurement");

	Kipcd k;
	std::string err = boot(o, k);
	if (!err.empty()) {
		fprintf(stderr, "kipc-bench: cannot boot kipcd: %s\n", err.c_str());
		shut(k);
		return 1;
	}
	meta.kipcd_pid = k.pid;
	meta.loop = loop_of(k.log);
	meta.kipcd = o.kipcd;

	std::vector<Record> rs;
	meta.load_before = loadavg();
	run_process_scenarios(o, meta, rs);
	run_core_scenarios(o, meta, rs);
	shut(k);
	meta.load_after = loadavg();

	if (o.json)
		print_json(meta, rs);
	else
		print_table(meta, rs);
	return 0;
}
