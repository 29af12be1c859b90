// SPDX-License-Identifier: MIT
/*
 * Smoke test of kipc-bench: `kipc-bench --quick --json` on a subset of
 * scenarios runs, exits 0 and prints well-formed JSON with the records
 * and ratios the table promises. No timing is asserted (benchmarks are
 * not tests). kipc-bench boots its own kipcd (next to it in bin/) on
 * $KIPC_LOOP; it is run with --no-raise so that the machine's
 * /proc/sys/fs/mqueue/msg_max is left alone.
 *
 * TAP 13 output with a kselftest "# Totals:" line, as scripts/check.sh
 * expects; exit 4 (skip) when kipc-bench is not built.
 */
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace {

int npass, nfail, ntest;

void ok(bool cond, const std::string &what)
{
	ntest++;
	if (cond)
		npass++;
	else
		nfail++;
	printf("%s %d %s\n", cond ? "ok" : "not ok", ntest, what.c_str());
}

std::string bench_path()
{
	if (const char *e = getenv("KIPC_BENCH"); e && *e)
		return e;
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	if (n <= 0)
		return "";
	buf[n] = 0;
	std::string s(buf);
	return s.substr(0, s.rfind('/')) + "/../../bin/kipc-bench";
}

/* Run argv, capture stdout; returns the exit status or -1. */
int run(const std::string &path, const std::vector<std::string> &args, std::string *out)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		close(p[1]);
		std::vector<char *> av{const_cast<char *>(path.c_str())};
		for (const std::string &a : args)
			av.push_back(const_cast<char *>(a.c_str()));
		av.push_back(nullptr);
		execv(path.c_str(), av.data());
		_exit(127);
	}
	close(p[1]);
	char buf[65536];
	ssize_t n;
	while ((n = read(p[0], buf, sizeof buf)) > 0)
		out->append(buf, n);
	close(p[0]);
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

} // namespace

int main()
{
	printf("TAP version 13\n");
	std::string bench = bench_path();
	if (bench.empty() || access(bench.c_str(), X_OK) < 0) {
		printf("1..0 # SKIP no kipc-bench at %s\n", bench.c_str());
		printf("# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:1 error:0\n");
		return 4;
	}
	printf("1..11\n");
	const char *loop = getenv("KIPC_LOOP");
	std::string out;
	int rc = run(bench, {"--quick", "--json", "--no-raise", "--loop", loop && *loop ? loop : "auto",
			     "--only", "pingpong,rendezvous,stream,fanin,memory"},
		     &out);
	ok(rc == 0, "kipc-bench --quick --json exits 0 (status " + std::to_string(rc) + ")");

	nlohmann::json j;
	bool parsed = true;
	try {
		j = nlohmann::json::parse(out);
	} catch (const std::exception &e) {
		parsed = false;
		printf("# parse error: %s\n", e.what());
	}
	ok(parsed && j.is_object() && j.contains("meta") && j.contains("results"),
	   "output is one JSON object with meta and results");
	const nlohmann::json &rs = parsed && j.contains("results") ? j["results"] : nlohmann::json::array();
	bool fields = rs.is_array() && !rs.empty();
	std::set<std::string> impls, scenarios;
	for (const auto &r : rs) {
		fields = fields && r.contains("scenario") && r.contains("impl") && r.contains("size") &&
			 r.contains("metric") && r["value"].is_number();
		if (fields) {
			impls.insert(r["impl"].get<std::string>());
			scenarios.insert(r["scenario"].get<std::string>());
		}
	}
	ok(fields, "every record has scenario, impl, size, metric and a numeric value");
	bool natives = impls.count("posix-mq") && impls.count("sysv-msg") && impls.count("pipe") &&
		       impls.count("seqpacket");
	ok(natives, "native POSIX mq, System V msg, pipe and seqpacket rows are present");
	bool ratios = true;
	int nkipc = 0;
	for (const auto &r : rs) {
		std::string impl = r["impl"].get<std::string>();
		if (impl.rfind("kipc-", 0) != 0 || r["scenario"] == "memory")
			continue;
		nkipc++;
		if (r.contains("note"))
			continue; /* a failed measurement says why instead */
		ratios = ratios && r.contains("ratio") && r["ratio"].is_number() &&
			 r["ratio_to"] == "posix-mq";
	}
	ok(nkipc > 0 && ratios, "every kipc row has a ratio to posix-mq");
	bool errors = true;
	for (const auto &r : rs)
		if (r.contains("note") && r["impl"].get<std::string>().rfind("kipc-", 0) == 0 &&
		    r["scenario"] != "memory") {
			printf("# %s/%s: %s\n", r["scenario"].get<std::string>().c_str(),
			       r["impl"].get<std::string>().c_str(), r["note"].get<std::string>().c_str());
			errors = false;
		}
	ok(errors, "no kipc measurement failed");
	/* Ping-pongs and streams: the distribution and the CPU per operation
	 * on every row; kipc rows compare with the better POSIX mq. */
	bool dist = true, base = true;
	std::set<std::string> pp_impls, st_impls;
	for (const auto &r : rs) {
		if (r["scenario"] != "pingpong" && r["scenario"] != "stream" &&
		    r["scenario"] != "stream-behind")
			continue;
		std::string impl = r["impl"].get<std::string>();
		if (r["scenario"] != "stream-behind")
			(r["scenario"] == "pingpong" ? pp_impls : st_impls).insert(impl);
		if (r.contains("note"))
			continue;
		dist = dist && r["mean"].is_number() && r["p50"].is_number() &&
		       r["p99"].is_number() && r["cpu_ns_per_op"].is_number();
		if (impl.rfind("kipc-", 0) == 0)
			base = base && (r["baseline"] == "posix-mq" || r["baseline"] == "posix-mq-pinned") &&
			       r["cpu_ratio"].is_number();
	}
	ok(dist, "every ping-pong and stream row has mean, p50, p99 and CPU per operation");
	ok(pp_impls.count("posix-mq-pinned") && st_impls.count("posix-mq-pinned") &&
		   pp_impls.count("pipe-pinned") && st_impls.count("seqpacket-pinned"),
	   "the natives also run pinned to one CPU");
	/* kipc-bench runs the kipc-run-mq rows with the kipc-run next to it;
	 * a build of the selftests alone (the sanitizer pass) has none. */
	bool have_run = access((bench.substr(0, bench.rfind('/')) + "/kipc-run").c_str(), X_OK) == 0;
	ok(base && (!have_run || (pp_impls.count("kipc-run-mq") && st_impls.count("kipc-run-mq"))),
	   have_run ? "kipc rows compare with the better POSIX mq, kipc-run-mq rows are there"
		    : "kipc rows compare with the better POSIX mq (no kipc-run built: no kipc-run-mq rows)");
	ok(pp_impls.count("kipc-callrr") && pp_impls.count("kipc-callskip") &&
		   st_impls.count("kipc-async-skip") && st_impls.count("kipc-async-bundle"),
	   "the fused reply-and-receive, skipped-completion and bundle rows are there");
	ok(scenarios.count("pingpong") && scenarios.count("stream") &&
		   scenarios.count("stream-behind") && scenarios.count("fanin") &&
		   scenarios.count("rendezvous") && scenarios.count("memory"),
	   "the selected scenarios are all there");
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:0 error:0\n", npass, nfail);
	return nfail ? 1 : 0;
}
