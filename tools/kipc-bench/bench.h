// SPDX-License-Identifier: MIT
/*
 * kipc-bench: shared declarations of the benchmark tool.
 *
 *  main.cc   options, the private kipcd, the suite, table and JSON output
 *  procs.cc  multi-process scenarios over kipc and the native mechanisms
 *            (fork, barrier, timed loops, results back through shared memory)
 *  core.cc   the kernel core in process: memory per object (mallinfo2)
 *            and per-operation cost as queues and tables grow
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sys/types.h>

namespace bench {

/* One row of output: a scenario run over one implementation at one size. */
struct Record {
	std::string scenario; /* pingpong, stream, fanin, ... */
	std::string impl;     /* kipc-mbox, posix-mq, ... */
	uint32_t size = 0;    /* payload bytes (or the scaled quantity) */
	uint32_t n = 1;       /* fan-in/fan-out width, processes, ... */
	std::string metric;   /* rtt_ns, msgs_per_s, ns_per_op, bytes */
	double value = 0;     /* mean (latency) or median of repetitions */
	/*
	 * The distribution: round-trip ns for rtt_ns rows; for msgs_per_s
	 * rows the ns per message over windows of kWindowMsgs messages at
	 * the receiver (pooled over repetitions).
	 */
	double mean = 0, p50 = 0, p99 = 0;
	/* CPU time (user + system) per round trip or message of every
	 * process of the scenario, kipcd included; 0: not measured. */
	double cpu_ns = 0;
	double cpu_ratio = 0; /* cpu_ns / the reference's cpu_ns */
	double mean_ratio = 0, p99_ratio = 0; /* round trips: mean and p99 vs the reference */
	std::string baseline; /* the reference row (posix-mq or posix-mq-pinned) */
	bool lower_is_better = true;
	double ratio = 0;     /* value / the reference's value; 0: none */
	std::string ratio_to; /* what ratio compares with */
	std::string note;
};

struct Options {
	bool quick = false;
	bool json = false;
	int reps = 3;
	std::string only;      /* run scenarios whose name contains this */
	std::string impl;      /* run kipc implementations whose name contains this */
	std::string loop = "auto";
	std::string kipcd;     /* path of kipcd */
	bool no_raise = false; /* no private IPC namespace with a raised msg_max */
	std::vector<uint32_t> sizes; /* ping-pong sizes (empty: 16, 64, 1024, 8192) */
};

/* Facts about the run, printed in the header and the JSON "meta". */
struct Meta {
	std::string machine, kernel, loop, kipcd;
	int cpus = 0;
	std::vector<std::string> notes;
	bool debug_checks = false;
	pid_t kipcd_pid = 0;
	std::string load_before, load_after; /* /proc/loadavg: others' work skews it all */
};

/* Messages per window of the throughput rows' distribution. */
constexpr uint32_t kWindowMsgs = 64;

/* Is scenario selected by --only (a comma-separated list of substrings)? */
bool wanted(const Options &o, const std::string &scenario);
/* Is the kipc implementation selected by --impl (the same form)? */
bool wanted_impl(const Options &o, const std::string &impl);

/* Scenario runners append records; each is independent. */
void run_process_scenarios(const Options &o, Meta &meta, std::vector<Record> &out);
void run_core_scenarios(const Options &o, Meta &meta, std::vector<Record> &out);

/*
 * kipc-bench --role: one role of a scenario re-executed under kipc-run
 * (libkipc-posix.so preloaded); its job is on the board behind the
 * descriptors in $KIPC_BENCH_ROLE. Returns the exit status.
 */
int run_exec_role(const char *spec);

/* Monotonic nanoseconds. */
int64_t now_ns();

/* Summary of latency samples (ns). */
struct Lat {
	double mean = 0, p50 = 0, p99 = 0;
};
Lat summarize(std::vector<int64_t> &samples);
double median(std::vector<double> v);

} // namespace bench
