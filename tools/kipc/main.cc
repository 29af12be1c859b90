// SPDX-License-Identifier: MIT
/*
 * kipc: one command for message passing from the shell, in the style of
 * ip(8) and git(1):
 *
 *   kipc [--socket PATH] mbox create|destroy|grant|revoke|list|show ...
 *   kipc [--socket PATH] send|recv|call|serve ...
 *   kipc [--socket PATH] kernel start|stop|status|restart ...
 *
 * The helpers every subcommand uses are here: errors, exit codes,
 * durations, sizes, targets. See Documentation/man/kipc.1.
 */
#include "kipc.h"

#include <cmath>
#include <cstring>
#include <getopt.h>

#if __has_include(<generated/version.h>)
#include <generated/version.h>
#endif
#ifndef KIPC_VERSION
#define KIPC_VERSION "unknown"
#endif

namespace kipc_cli {

std::string command = "kipc";

std::string errno_name(int err)
{
	const char *n = strerrorname_np(err);
	return n ? n : fmt::format("errno {}", err);
}

int exit_code(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return EXIT_NOKERNEL;
	case EAGAIN:
	case ETIMEDOUT:
		return EXIT_AGAIN;
	}
	return EXIT_FAIL;
}

void fail(const std::string &what, int err, const std::string &why)
{
	if (err == ECONNREFUSED || err == ECONNRESET || err == EPIPE)
		fmt::print(stderr, "kipc: {} ({})\n", tool::kernel_error(err), errno_name(err));
	else
		fmt::print(stderr, "kipc: {}: {} ({})\n", what, why.empty() ? strerror(err) : why,
			   errno_name(err));
	fflush(stdout);
	exit(exit_code(err));
}

void usage_error(const std::string &msg)
{
	fmt::print(stderr, "kipc: {}\n", msg);
	exit(EXIT_USAGE);
}

void attach()
{
	setenv("KIPC_AUTOSTART", "0", 1);
	if (kipc_attach() < 0)
		fail("attach", errno);
}

bool parse_int(const std::string &s, int64_t min, int64_t max, int64_t *out)
{
	if (s.empty())
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(s.c_str(), &end, 0);
	if (*end || errno || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool parse_duration(const std::string &s, int64_t *ns)
{
	if (s.empty() || !(isdigit((unsigned char)s[0]) || s[0] == '.'))
		return false;
	char *end;
	errno = 0;
	double v = strtod(s.c_str(), &end);
	if (errno || !std::isfinite(v) || v < 0)
		return false;
	std::string unit = end;
	double mult;
	if (unit.empty() || unit == "s")
		mult = 1e9;
	else if (unit == "ms")
		mult = 1e6;
	else if (unit == "us")
		mult = 1e3;
	else if (unit == "ns")
		mult = 1;
	else if (unit == "m" || unit == "min")
		mult = 60e9;
	else if (unit == "h")
		mult = 3600e9;
	else
		return false;
	double r = v * mult;
	if (r > 9.2e18)
		return false;
	*ns = int64_t(std::llround(r));
	return true;
}

bool parse_size(const std::string &s, uint64_t *out)
{
	if (s.empty() || !isdigit((unsigned char)s[0]))
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s.c_str(), &end, 10);
	if (errno)
		return false;
	std::string unit = end;
	int shift;
	if (unit.empty() || unit == "B")
		shift = 0;
	else if (unit == "K" || unit == "k" || unit == "KiB" || unit == "KB")
		shift = 10;
	else if (unit == "M" || unit == "MiB" || unit == "MB")
		shift = 20;
	else if (unit == "G" || unit == "GiB" || unit == "GB")
		shift = 30;
	else
		return false;
	if (shift && v > (~0ull >> shift))
		return false;
	*out = uint64_t(v) << shift;
	return true;
}

int64_t duration_arg(const char *opt, const std::string &s)
{
	int64_t ns;
	if (!parse_duration(s, &ns))
		usage_error(fmt::format("{}: invalid duration '{}' (examples: 250ms, 1.5s, 2m, 0)",
					opt, s));
	return ns;
}

uint64_t size_arg(const char *opt, const std::string &s, uint64_t max)
{
	uint64_t v;
	if (!parse_size(s, &v) || v > max)
		usage_error(fmt::format("{}: invalid size '{}' (examples: 512, 4K, 1M)", opt, s));
	return v;
}

int64_t int_arg(const char *opt, const std::string &s, int64_t min, int64_t max)
{
	int64_t v;
	if (!parse_int(s, min, max, &v))
		usage_error(fmt::format("{}: invalid number '{}' ({} to {})", opt, s, min, max));
	return v;
}

Target resolve(const std::string &s, bool taskq_ok, bool any_ok)
{
	Target t;
	t.text = s;
	if (any_ok && s == "any") {
		t.taskq = true;
		return t;
	}
	if (s.rfind("pid:", 0) == 0) {
		if (!taskq_ok)
			usage_error(fmt::format("'{}': a mailbox is needed here (a /name or an id)", s));
		t.taskq = true;
		t.pid = pid_t(int_arg("pid", s.substr(4), 1, INT32_MAX));
		return t;
	}
	int64_t id;
	if (tool::parse_id(s.c_str(), &id)) {
		t.mbox = id;
		return t;
	}
	if (s.empty() || s[0] != '/')
		usage_error(fmt::format("'{}': not a mailbox (a /name or an id){}", s,
					taskq_ok ? any_ok ? ", pid:N or any" : " or pid:N" : ""));
	attach();
	id = kipc_mbox_open(s.c_str(), 0, nullptr); /* look up only */
	if (id < 0) {
		int err = errno;
		std::string what = fmt::format("{} {}", command, s);
		if (err == ENOENT)
			fail(what, err, "no such mailbox");
		if (err == EINVAL)
			fail(what, err, "invalid mailbox name");
		fail(what, err);
	}
	t.mbox = id;
	return t;
}

size_t msgsize_max()
{
	static size_t max;
	if (!max) {
		tool::SysInfo si;
		attach();
		if (kipc_sysinfo(&si) < 0)
			fail("sysinfo", errno);
		max = si.msgsize_max;
	}
	return max;
}

std::string json_dump(const json &j, int indent)
{
	return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

} // namespace kipc_cli

using namespace kipc_cli;

namespace {

void usage(FILE *f)
{
	fmt::print(f,
		   "usage: kipc [--socket PATH] COMMAND [ARGS]\n"
		   "Message passing from the shell, on the kipc kernel at $KIPC_SOCKET (now {}).\n"
		   "\n"
		   "  mbox create [NAME] [--capacity N|0|unbounded] [--msgsize SIZE] [--mode 0600]\n"
		   "              [--policy any|pair|exclusive|round-robin] [--fixed] ...\n"
		   "  mbox destroy TARGET...      mbox grant|revoke TARGET PID\n"
		   "  mbox list [kipcs options]   mbox show TARGET\n"
		   "  send TARGET [MESSAGE|-]     [--nonblock] [--timeout T] [--prio P] [--type T] [--count N]\n"
		   "  recv TARGET|any             [--nonblock] [--timeout T] [--from PID] [--type T]\n"
		   "                              [--count N] [--follow]\n"
		   "  call TARGET [MESSAGE|-]     send a request and print the reply\n"
		   "  serve TARGET|any [-- COMMAND ARGS]   answer each call with COMMAND's output\n"
		   "  kernel start|stop|status|restart [PARAM=VALUE...]\n"
		   "\n"
		   "TARGET: a mailbox /name or id, or pid:N (a task queue). Durations: 250ms, 1.5s, 2m.\n"
		   "Sizes: 512, 4K, 1M. --json on every command that prints. `kipc COMMAND --help`.\n"
		   "Exit: 0 ok, 1 a call failed, 2 usage, 3 no kernel, 4 EAGAIN or ETIMEDOUT.\n",
		   tool::socket_path());
}

} // namespace

int main(int argc, char **argv)
{
	tool::prog = "kipc";
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		std::string a = argv[i];
		if (a == "-h" || a == "--help") {
			usage(stdout);
			return 0;
		} else if (a == "--version") {
			fmt::print("kipc {}\n", KIPC_VERSION);
			return 0;
		} else if (a == "--socket" || a == "-S") {
			if (++i >= argc)
				usage_error("--socket needs a path");
			setenv("KIPC_SOCKET", argv[i], 1);
		} else if (a.rfind("--socket=", 0) == 0) {
			setenv("KIPC_SOCKET", a.c_str() + 9, 1);
		} else {
			usage_error(fmt::format("unknown option '{}' (see kipc --help)", a));
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	std::string cmd = argv[i];
	command = cmd;
	if (cmd == "mbox" && i + 1 < argc)
		command += std::string(" ") + argv[i + 1];
	int sub_argc = argc - i;
	char **sub_argv = argv + i;
	if (cmd == "mbox")
		return cmd_mbox(sub_argc, sub_argv);
	if (cmd == "send")
		return cmd_send(sub_argc, sub_argv);
	if (cmd == "recv" || cmd == "receive")
		return cmd_recv(sub_argc, sub_argv);
	if (cmd == "call")
		return cmd_call(sub_argc, sub_argv);
	if (cmd == "serve")
		return cmd_serve(sub_argc, sub_argv);
	if (cmd == "kernel")
		return cmd_kernel(sub_argc, sub_argv);
	if (cmd == "help") {
		usage(stdout);
		return 0;
	}
	usage_error(fmt::format("unknown command '{}' (see kipc --help)", cmd));
}
