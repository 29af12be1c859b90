// SPDX-License-Identifier: MIT
/*
 * Shared helpers of the kipc tools. Header-only: tools/include/ is not a
 * tool.
 *
 * The first part is C and C++: the command-line conventions every tool
 * follows (--help on stdout, exit 0; --version; a usage error is one line
 * on stderr plus a hint, exit 2). The rest is C++ (kipcs, kipcrm,
 * kipc-trace): attaching without starting a kernel, one-line errors,
 * names and human-readable numbers.
 */
#pragma once

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if __has_include(<generated/version.h>)
#include <generated/version.h>
#endif
#ifndef KIPC_VERSION
#define KIPC_VERSION "0.1"
#endif

/* --version: "NAME (kipc) VERSION" on stdout. */
static inline void tool_print_version(const char *name)
{
	printf("%s (kipc) %s\n", name, KIPC_VERSION);
}

/* A usage error: "NAME: what" and "Try 'NAME --help'." on stderr, exit 2. */
__attribute__((noreturn, format(printf, 2, 3))) static inline void
tool_usage_error(const char *name, const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "%s: ", name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", name);
	exit(2);
}

/*
 * What getopt_long() returned '?' or ':' for, as a usage error. Call
 * getopt_long with opterr = 0 and an optstring starting with ':'.
 */
__attribute__((noreturn)) static inline void tool_bad_option(const char *name, char **argv,
							     int c)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	if (c == ':')
		tool_usage_error(name, "option '%s' needs an argument", arg);
	if (optopt && !(arg[0] == '-' && arg[1] == '-'))
		tool_usage_error(name, "invalid option '-%c'", optopt);
	tool_usage_error(name, "unrecognized option '%s'", arg);
}

/*
 * The socket libkipc connects to, and how it was chosen, for help texts:
 * "$KIPC_SOCKET (now /x)" only when it is set.
 */
static inline void tool_socket_note(char *buf, size_t size)
{
	const char *s = getenv("KIPC_SOCKET");
	const char *x = getenv("XDG_RUNTIME_DIR");
	if (s && *s)
		snprintf(buf, size, "$KIPC_SOCKET (now %s)", s);
	else if (x && *x)
		snprintf(buf, size, "%s/kipc/kipcd.sock ($KIPC_SOCKET is unset)", x);
	else
		snprintf(buf, size, "/tmp/kipc-%u/kipcd.sock ($KIPC_SOCKET and "
			 "$XDG_RUNTIME_DIR are unset)", (unsigned)getuid());
}

#ifdef __cplusplus
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <pwd.h>
#include <string>
#include <unistd.h>
#include <vector>

#include <fmt/core.h>
#include <fmt/format.h>
#include <kipc/libkipc.h>

namespace tool {

/* C names a struct and a function alike (kipc_mbox_stat); C++ needs these. */
using SysInfo = struct ::kipc_sysinfo;
using TaskInfo = struct ::kipc_task_info;
using MboxInfo = struct ::kipc_mbox_info;
using MboxStat = struct ::kipc_mbox_stat;
using KernelInfo = struct ::kipc_kernel_info;

inline const char *prog = "kipc";

/* The socket libkipc connects to (same rule as libkipc and kipcd). */
inline std::string socket_path()
{
	if (const char *s = getenv("KIPC_SOCKET"); s && *s)
		return s;
	if (const char *x = getenv("XDG_RUNTIME_DIR"); x && *x)
		return fmt::format("{}/kipc/kipcd.sock", x);
	return fmt::format("/tmp/kipc-{}/kipcd.sock", getuid());
}

[[noreturn]] inline void die(const std::string &msg, int code = 1)
{
	fmt::print(stderr, "{}: {}\n", prog, msg);
	fflush(stdout);
	exit(code);
}

/* What a failed library call means, in one line. */
inline std::string kernel_error(int err)
{
	if (err == ECONNREFUSED || err == ENOENT)
		return fmt::format("no kernel running at {}", socket_path());
	if (err == ECONNRESET || err == EPIPE)
		return fmt::format("the kernel at {} went away", socket_path());
	return strerror(err);
}

/* A call failed with errno: die unless the caller handles err itself. */
[[noreturn]] inline void die_errno(const std::string &what, int err)
{
	if (err == ECONNREFUSED || err == ECONNRESET || err == EPIPE)
		die(kernel_error(err));
	die(fmt::format("{}: {}", what, strerror(err)));
}

/* Attach to a running kernel; never start one (tools only look). */
inline void attach()
{
	setenv("KIPC_AUTOSTART", "0", 1);
	if (kipc_attach() < 0)
		die(kernel_error(errno));
}

/*
 * What a failed call on mailbox `what` means, worded the same in every
 * tool: EIDRM "already removed", EINVAL/ENOENT "no such mailbox".
 */
inline std::string mbox_error(int err, const std::string &what)
{
	switch (err) {
	case EIDRM: return fmt::format("mailbox {}: already removed", what);
	case EINVAL:
	case ENOENT: return fmt::format("no such mailbox: {}", what);
	case EPERM:
	case EACCES: return fmt::format("mailbox {}: permission denied", what);
	}
	return fmt::format("mailbox {}: {}", what, strerror(err));
}

inline std::string socket_note()
{
	char buf[4200];
	tool_socket_note(buf, sizeof buf);
	return buf;
}

inline std::string user_name(uint32_t uid)
{
	if (struct passwd *pw = getpwuid(uid))
		return pw->pw_name;
	return std::to_string(uid);
}

/* 0, 512, 1.5K, 12K, 3.4M, 2.0G: like ls -h. */
inline std::string human(uint64_t n)
{
	static const char units[] = "KMGTPE";
	if (n < 1024)
		return std::to_string(n);
	double v = double(n);
	int u = -1;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	return v < 10 ? fmt::format("{:.1f}{}", v, units[u]) : fmt::format("{:.0f}{}", v, units[u]);
}

/* 350ms, 4.2s, 5m03s, 2h10m */
inline std::string duration(int64_t ns)
{
	if (ns < 0)
		ns = 0;
	if (ns < 1000000)
		return fmt::format("{}us", ns / 1000);
	if (ns < 1000000000)
		return fmt::format("{}ms", ns / 1000000);
	int64_t s = ns / 1000000000;
	if (s < 60)
		return fmt::format("{:.1f}s", double(ns) / 1e9);
	if (s < 3600)
		return fmt::format("{}m{:02}s", s / 60, s % 60);
	return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
}

inline const char *syscall_name(unsigned nr)
{
	switch (nr) {
#define TOOL_SYSCALL_NAME_(nr, name, family) \
	case nr:                             \
		return #name;
		KIPC_ENUMERATE_SYSCALLS(TOOL_SYSCALL_NAME_)
#undef TOOL_SYSCALL_NAME_
	}
	return "?";
}

inline const char *policy_name(uint32_t p)
{
	switch (p) {
	case KIPC_POLICY_ANY: return "any";
	case KIPC_POLICY_PAIR: return "pair";
	case KIPC_POLICY_EXCLUSIVE: return "exclusive";
	case KIPC_POLICY_ROUND_ROBIN: return "round-robin";
	}
	return "?";
}

inline const char *state_name(uint32_t s)
{
	switch (s) {
	case KIPC_TASK_RUNNING: return "running";
	case KIPC_TASK_BLOCKED: return "blocked";
	case KIPC_TASK_UNATTACHED: return "unattached";
	}
	return "?";
}

inline const char *event_name(unsigned ev)
{
	switch (ev) {
	case KIPC_TRACE_ATTACH: return "attach";
	case KIPC_TRACE_EXIT: return "exit";
	case KIPC_TRACE_SEND: return "send";
	case KIPC_TRACE_ENQUEUE: return "enqueue";
	case KIPC_TRACE_BLOCK: return "block";
	case KIPC_TRACE_WAKE: return "wake";
	case KIPC_TRACE_DELIVER: return "deliver";
	case KIPC_TRACE_TIMEOUT: return "timeout";
	case KIPC_TRACE_CANCEL: return "cancel";
	case KIPC_TRACE_DESTROY: return "destroy";
	case KIPC_TRACE_LOST: return "lost";
	}
	return "?";
}

/* rw-r----- */
inline std::string mode_string(uint32_t mode)
{
	std::string s;
	for (int shift = 6; shift >= 0; shift -= 3) {
		s += mode >> shift & 4 ? 'r' : '-';
		s += mode >> shift & 2 ? 'w' : '-';
		s += mode >> shift & 1 ? 'x' : '-';
	}
	return s;
}

inline std::string capacity_string(uint32_t cap)
{
	return cap == KIPC_UNBOUNDED ? "inf" : std::to_string(cap);
}

/* Parse a whole decimal integer > 0; false if s is not one. */
inline bool parse_id(const char *s, int64_t *out)
{
	if (!s || !*s)
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (*end || errno || v <= 0)
		return false;
	*out = v;
	return true;
}

/*
 * A task as the tools show it: a remote caller's proxy task has its
 * node-qualified pid (KIPC_NET_IS_PID, never a real pid; net_peer says
 * which node) and is NODE:PID; one that has gone since is "#INDEX:PID"
 * (the node index, which only a live proxy names); anyone else is its pid.
 */
inline std::string pid_label(int32_t pid)
{
	if (!KIPC_NET_IS_PID(pid))
		return std::to_string(pid);
	struct kipc_net_peer np;
	if (kipc_net_peer(pid, &np) == 0)
		return fmt::format("{}:{}", np.node, np.pid);
	return fmt::format("#{}:{}", KIPC_NET_PID_INDEX(pid), KIPC_NET_PID_PID(pid));
}

/*
 * A pid as a user gives it: N, a remote caller as pid_label() shows it
 * ("NODE:PID": the node-qualified pid this kernel gives it, which is its
 * proxy task's here), or that node-qualified pid as a (negative) number.
 * False, with *why, if s is none of them.
 */
inline bool parse_pid(const char *s, int32_t *out, std::string *why)
{
	int64_t v;
	const char *colon = s ? strchr(s, ':') : nullptr;
	if (colon) {
		std::string node(s, size_t(colon - s));
		if (!parse_id(colon + 1, &v) || v > KIPC_NET_PID_MASK) {
			*why = fmt::format("invalid pid '{}' (N, or NODE:PID with PID 1-{})", s,
					   KIPC_NET_PID_MASK);
			return false;
		}
		pid_t p = kipc_node_pid(node.c_str(), pid_t(v));
		if (p == -1 || !KIPC_NET_IS_PID(p)) {
			*why = fmt::format("invalid pid '{}': node '{}': {}", s, node,
					   strerror(errno));
			return false;
		}
		*out = p;
		return true;
	}
	char *end;
	errno = 0;
	long long n = s && *s ? strtoll(s, &end, 10) : 0;
	if (!s || !*s || *end || errno || n == 0 || n < INT32_MIN || n > INT32_MAX ||
	    (n < 0 && !KIPC_NET_IS_PID(n))) {
		*why = fmt::format("invalid pid '{}' (N, or NODE:PID of a remote caller)", s ? s : "");
		return false;
	}
	*out = int32_t(n);
	return true;
}

/*
 * Call a list syscall with a growing buffer until every record fits (or
 * the arena's limit is reached). fn(buf, n) returns the total or -1.
 */
template <class T, class F>
inline std::vector<T> fetch_all(F fn, const char *what)
{
	size_t cap = 64;
	for (;;) {
		std::vector<T> v(cap);
		ssize_t n = fn(v.data(), cap);
		if (n < 0)
			die_errno(what, errno);
		if (size_t(n) <= cap || cap * sizeof(T) >= 512 * 1024) {
			v.resize(std::min(size_t(n), cap));
			return v;
		}
		cap = std::max(size_t(n), cap * 2);
		if (cap * sizeof(T) > 512 * 1024)
			cap = 512 * 1024 / sizeof(T);
	}
}

} // namespace tool

#endif /* __cplusplus */
