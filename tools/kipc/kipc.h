// SPDX-License-Identifier: MIT
/*
 * kipc(1): the shell's message passing. Shared by the subcommands:
 * exit codes, one-line errors with the errno name, durations, sizes,
 * targets. See Documentation/man/kipc.1.
 */
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../include/tool.h"

namespace kipc_cli {

using json = nlohmann::ordered_json;

/* Exit codes (kipc.1, EXIT STATUS). */
enum Exit {
	EXIT_OK = 0,
	EXIT_FAIL = 1,     /* a call failed: the error line names the errno */
	EXIT_USAGE = 2,    /* bad command line */
	EXIT_NOKERNEL = 3, /* no kernel running at the socket */
	EXIT_AGAIN = 4,    /* nothing happened in time: EAGAIN or ETIMEDOUT */
};

/* "EAGAIN" */
std::string errno_name(int err);

/* The exit code of a failed call with errno err. */
int exit_code(int err);

/* "kipc: <what>: <why> (<ERRNO>)" on stderr and exit. why: "" for strerror. */
[[noreturn]] void fail(const std::string &what, int err, const std::string &why = "");

/* "kipc: <msg>" and exit 2. */
[[noreturn]] void usage_error(const std::string &msg);

/* Attach (never start a kernel); exit 3 if none runs. */
void attach();

/*
 * Durations: "250ms", "1.5s", "2m", "100us", "3h", "0"; a bare number
 * is seconds. Sizes: "4096", "4K", "1M", "2G" (powers of 1024, "KiB" and
 * "k" spellings too). Both return false on anything else.
 */
bool parse_duration(const std::string &s, int64_t *ns);
bool parse_size(const std::string &s, uint64_t *out);
bool parse_int(const std::string &s, int64_t min, int64_t max, int64_t *out);

/* The same, or a usage error naming the option. */
int64_t duration_arg(const char *opt, const std::string &s);
uint64_t size_arg(const char *opt, const std::string &s, uint64_t max);
int64_t int_arg(const char *opt, const std::string &s, int64_t min, int64_t max);

/* What a message goes to or comes from. */
struct Target {
	std::string text;   /* as the user wrote it */
	int64_t mbox = 0;   /* a mailbox id, or */
	pid_t pid = 0;      /* a task queue (pid:N; for recv "any": 0) */
	bool taskq = false;
};

/*
 * A mailbox by /name or id, "pid:N" (taskq_ok), or "any" (any_ok: the
 * own task queue). Looks names up in the kernel; exits on failure.
 */
Target resolve(const std::string &s, bool taskq_ok, bool any_ok);

/* The command running ("send", "mbox destroy"), for error lines. */
extern std::string command;

/* The largest message the kernel allows (sysinfo). */
size_t msgsize_max();

/* A payload as JSON text (invalid UTF-8 replaced). */
std::string json_dump(const json &j, int indent = -1);

int cmd_mbox(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_recv(int argc, char **argv);
int cmd_call(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_kernel(int argc, char **argv);

} // namespace kipc_cli
