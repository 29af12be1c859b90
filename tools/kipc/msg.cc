// SPDX-License-Identifier: MIT
/*
 * kipc send|recv|call|serve: messages from the shell.
 *
 * A message on the command line is one message; "-" (or none) reads
 * standard input, one message per line (the newline is not sent).
 * recv prints each message followed by a newline (--json: one JSON
 * object per line). serve answers each call with the output of a
 * command run per request (the request on its standard input).
 */
#include "kipc.h"

#include <csignal>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace kipc_cli {

namespace {

struct MsgOpts {
	bool nonblock = false;
	int64_t timeout = -1;       /* ns; -1: none */
	std::string timeout_text;
	unsigned prio = 0;
	bool has_type = false;
	int64_t type = 0;
	int64_t count = -1;         /* -1: the default of the command */
	bool follow = false;
	pid_t from = 0;
	bool json = false;

	unsigned flags() const
	{
		return (nonblock ? KIPC_F_NONBLOCK : 0) | (timeout >= 0 ? KIPC_F_TIMEOUT : 0);
	}
	kipc_opts opts() const
	{
		kipc_opts o{};
		o.timeout = timeout >= 0 ? timeout : 0;
		o.type = type;
		return o;
	}
};

enum class Op { Send, Recv, Call, Serve };

const char *op_name(Op op)
{
	switch (op) {
	case Op::Send: return "send";
	case Op::Recv: return "recv";
	case Op::Call: return "call";
	case Op::Serve: return "serve";
	}
	return "?";
}

/* What an errno means for this command, in words a student can act on. */
std::string explain(Op op, const Target &t, const MsgOpts &o, int err)
{
	switch (err) {
	case EAGAIN:
		if (op == Op::Recv || op == Op::Serve)
			return "no message waiting";
		return t.taskq ? "the task queue is full"
			       : "would block: the mailbox is full (at a rendezvous: no receiver waits)";
	case ETIMEDOUT:
		return fmt::format("timed out after {}", o.timeout_text);
	case EACCES:
		return "permission denied by the mailbox's mode bits";
	case EPERM:
		if (op == Op::Recv || op == Op::Serve)
			return "operation not permitted (no receive right, or a pair/exclusive binding)";
		return t.taskq ? "operation not permitted (a task of another user)"
			       : "operation not permitted (a pair binding)";
	case EIDRM:
		return "the mailbox was destroyed";
	case ESRCH:
		return t.taskq ? "no such process" : "the receiver went away";
	case EDEADLK:
		return "deadlock: this send would close a cycle of tasks blocked on each other";
	case ENOSPC:
		return "your user's byte quota is used up (bytes_per_user, see kipcs -l)";
	case EMSGSIZE:
		return op == Op::Recv ? "message too long for the buffer"
				      : "message too long for the link (msgsize or qbytes)";
	case EBUSY:
		return "another task is receiving (exclusive mailbox)";
	case EINVAL:
		if (!t.taskq) {
			tool::MboxStat st;
			int r = kipc_mbox_stat(t.mbox, &st);
			if (r < 0 && errno == EINVAL)
				return "no such mailbox";
			if (r == 0 && !(op == Op::Recv || op == Op::Serve) && st.attr.flags & KIPC_MBOX_FIXED)
				return fmt::format("invalid: a fixed-size mailbox takes messages of exactly {} bytes",
						   st.attr.msgsize);
		}
		return "invalid argument";
	}
	return strerror(err);
}

[[noreturn]] void msg_fail(Op op, const Target &t, const MsgOpts &o, int err, int64_t nth = 0)
{
	std::string what = fmt::format("{} {}", op_name(op), t.text);
	if (nth)
		what += fmt::format(": message {}", nth);
	fail(what, err, explain(op, t, o, err));
}

/* The options of send, recv, call and serve (which take which: `allowed`). */
int parse(int argc, char **argv, MsgOpts &o, const char *allowed, void (*help)(FILE *))
{
	static const option longopts[] = {
		{"nonblock", no_argument, nullptr, 'n'},
		{"timeout", required_argument, nullptr, 't'},
		{"prio", required_argument, nullptr, 'p'},
		{"type", required_argument, nullptr, 'T'},
		{"count", required_argument, nullptr, 'c'},
		{"follow", no_argument, nullptr, 'f'},
		{"from", required_argument, nullptr, 'F'},
		{"json", no_argument, nullptr, 'j'},
		{"help", no_argument, nullptr, 'h'},
		{nullptr, 0, nullptr, 0},
	};
	optind = 0;
	for (int c; (c = getopt_long(argc, argv, "nt:p:T:c:fF:jh", longopts, nullptr)) != -1;) {
		if (c != 'h' && c != '?' && !strchr(allowed, c)) {
			const char *name = "?";
			for (const option *l = longopts; l->name; l++)
				if (l->val == c)
					name = l->name;
			fmt::print(stderr, "kipc {}: --{} does not apply to {}\n", argv[0], name, argv[0]);
			help(stderr);
			exit(EXIT_USAGE);
		}
		switch (c) {
		case 'n': o.nonblock = true; break;
		case 't': o.timeout = duration_arg("--timeout", optarg); o.timeout_text = optarg; break;
		case 'p': o.prio = unsigned(int_arg("--prio", optarg, 0, KIPC_PRIO_MAX)); break;
		case 'T': o.has_type = true; o.type = int_arg("--type", optarg, INT64_MIN, INT64_MAX); break;
		case 'c': o.count = int_arg("--count", optarg, 1, INT64_MAX); break;
		case 'f': o.follow = true; break;
		case 'F': o.from = pid_t(int_arg("--from", optarg, 1, INT32_MAX)); break;
		case 'j': o.json = true; break;
		case 'h': help(stdout); exit(0);
		default: help(stderr); exit(EXIT_USAGE);
		}
	}
	return optind;
}

/*
 * Operands and options in any order (GNU getopt permutes); everything
 * after "--" is operands (serve: the command).
 */
std::vector<std::string> operands(int argc, char **argv, MsgOpts &o, const char *allowed,
				  void (*help)(FILE *), std::vector<std::string> *command = nullptr)
{
	int dashes = 1;
	while (dashes < argc && strcmp(argv[dashes], "--"))
		dashes++;
	int first = parse(dashes, argv, o, allowed, help);
	std::vector<std::string> ops(argv + first, argv + dashes);
	for (int i = dashes + 1; i < argc; i++)
		(command ? *command : ops).push_back(argv[i]);
	return ops;
}

/* Read one line of stdin (without its newline); false at the end. */
bool read_line(std::string &line)
{
	line.clear();
	int c;
	while ((c = getchar()) != EOF) {
		if (c == '\n')
			return true;
		line += char(c);
	}
	return !line.empty();
}

/* The messages of send and call: the operand repeated, or stdin's lines. */
struct Source {
	std::optional<std::string> arg;
	int64_t limit;
	int64_t n = 0;
	bool next(std::string &m)
	{
		if (limit >= 0 && n >= limit)
			return false;
		if (arg) {
			m = *arg;
		} else if (!read_line(m)) {
			return false;
		}
		n++;
		return true;
	}
};

json j_info(const kipc_msginfo &info, const char *buf, size_t n)
{
	json j;
	j["data"] = std::string(buf, n);
	j["len"] = info.len;
	j["from"] = info.pid;
	j["prio"] = info.prio;
	j["type"] = info.type;
	j["seq"] = info.seq;
	j["source"] = info.source;
	if (info.flags & KIPC_CQE_F_CALL)
		j["call"] = true;
	return j;
}

void print_msg(const MsgOpts &o, const kipc_msginfo &info, const char *buf, size_t n)
{
	if (o.json) {
		fmt::print("{}\n", json_dump(j_info(info, buf, n)));
	} else {
		fwrite(buf, 1, n, stdout);
		fputc('\n', stdout);
	}
	fflush(stdout);
}

ssize_t receive(const Target &t, const MsgOpts &o, std::vector<char> &buf, kipc_msginfo *info)
{
	kipc_opts ko = o.opts();
	unsigned flags = o.flags() | (o.has_type ? KIPC_F_TYPE : 0);
	if (t.taskq)
		return kipc_receive_x(o.from ? o.from : t.pid, buf.data(), buf.size(), info, flags, &ko);
	return kipc_mbox_receive_x(t.mbox, buf.data(), buf.size(), info, flags, &ko);
}

void check_recv_target(Target &t, const MsgOpts &o, const char *cmd)
{
	if (o.from && !t.taskq)
		usage_error(fmt::format("{}: --from selects a sender on the own task queue (use 'any')", cmd));
	if (o.from && t.pid && o.from != t.pid)
		usage_error(fmt::format("{}: both pid:{} and --from {}", cmd, t.pid, o.from));
}

/* ---- send ------------------------------------------------------------ */

void send_help(FILE *f)
{
	fmt::print(f,
		   "usage: kipc send TARGET [MESSAGE|-] [options]\n"
		   "Send MESSAGE (or each line of standard input) to a mailbox or pid:N's task queue.\n"
		   "  -n, --nonblock     fail EAGAIN (exit 4) instead of waiting for room\n"
		   "  -t, --timeout T    wait at most T (250ms, 2s) for room: ETIMEDOUT (exit 4)\n"
		   "  -p, --prio P       priority 0..{} (higher first where the link orders by it)\n"
		   "  -T, --type T       message type (receivers may select by it)\n"
		   "  -c, --count N      send MESSAGE N times (stdin: at most N lines)\n",
		   KIPC_PRIO_MAX);
}

/* ---- recv ------------------------------------------------------------ */

void recv_help(FILE *f)
{
	fmt::print(f,
		   "usage: kipc recv TARGET|any [options]\n"
		   "Receive from a mailbox, or from the own task queue (any, pid:N); print each message\n"
		   "and a newline.\n"
		   "  -n, --nonblock     fail EAGAIN (exit 4) when no message waits\n"
		   "  -t, --timeout T    wait at most T per message: ETIMEDOUT (exit 4)\n"
		   "  -F, --from PID     task queue: only messages from PID\n"
		   "  -T, --type T       select by type (System V msgtyp rules: >0 that type,\n"
		   "                     <0 the lowest type <= |T|)\n"
		   "  -c, --count N      receive N messages (default 1)\n"
		   "  -f, --follow       receive until interrupted\n"
		   "  -j, --json         one JSON object per message (data, len, from, prio, type, seq)\n");
}

/* ---- call ------------------------------------------------------------ */

void call_help(FILE *f)
{
	fmt::print(f,
		   "usage: kipc call TARGET [MESSAGE|-] [options]\n"
		   "Send MESSAGE (or each line of standard input) as a call and print each reply.\n"
		   "  -n, --nonblock     fail EAGAIN (exit 4) when the request cannot go in at once\n"
		   "  -t, --timeout T    wait at most T for the reply: ETIMEDOUT (exit 4)\n"
		   "  -p, --prio P       priority of the request\n"
		   "  -T, --type T       type of the request\n"
		   "  -c, --count N      call N times (stdin: at most N lines)\n"
		   "  -j, --json         each reply as a JSON object\n");
}

/* ---- serve ----------------------------------------------------------- */

void serve_help(FILE *f)
{
	fmt::print(f,
		   "usage: kipc serve TARGET|any [options] [-- COMMAND [ARGS]]\n"
		   "Answer each call received on TARGET (any: the own task queue, pid = kipc's) with\n"
		   "the standard output of COMMAND, run once per request with the request on its\n"
		   "standard input and KIPC_FROM, KIPC_SEQ, KIPC_TYPE, KIPC_PRIO in its environment.\n"
		   "Without COMMAND, each call is answered with its own request (an echo server).\n"
		   "A plain message (not a call) is handed to COMMAND likewise, its output printed.\n"
		   "  -c, --count N      stop after N messages (default: until interrupted)\n"
		   "  -t, --timeout T    stop (exit 4) when no message came for T\n"
		   "  -T, --type T       only requests of this type\n"
		   "  -j, --json         one JSON line per message handled\n");
}

struct Ran {
	std::string out;
	int status = 0;
};

/* Run command with input on its stdin; collect up to max bytes of stdout. */
Ran run_command(const std::vector<std::string> &cmd, const std::string &input,
		const kipc_msginfo &info, size_t max, bool capture)
{
	int in[2], out[2] = {-1, -1};
	if (pipe2(in, O_CLOEXEC) < 0 || (capture && pipe2(out, O_CLOEXEC) < 0))
		fail("serve: pipe", errno);
	pid_t pid = fork();
	if (pid < 0)
		fail("serve: fork", errno);
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		dup2(in[0], 0);
		if (capture)
			dup2(out[1], 1);
		setenv("KIPC_FROM", std::to_string(info.pid).c_str(), 1);
		setenv("KIPC_SEQ", std::to_string(info.seq).c_str(), 1);
		setenv("KIPC_TYPE", std::to_string(info.type).c_str(), 1);
		setenv("KIPC_PRIO", std::to_string(info.prio).c_str(), 1);
		std::vector<char *> av;
		for (auto &a : cmd)
			av.push_back(const_cast<char *>(a.c_str()));
		av.push_back(nullptr);
		execvp(av[0], av.data());
		fmt::print(stderr, "kipc: serve: {}: {} ({})\n", cmd[0], strerror(errno),
			   errno_name(errno));
		_exit(127);
	}
	close(in[0]);
	if (capture)
		close(out[1]);
	Ran r;
	size_t off = 0;
	bool in_open = true;
	if (input.empty()) {
		close(in[1]);
		in_open = false;
	}
	while (in_open || capture) {
		pollfd p[2];
		int np = 0;
		if (in_open)
			p[np++] = {in[1], POLLOUT, 0};
		if (capture)
			p[np++] = {out[0], POLLIN, 0};
		if (poll(p, np, -1) < 0) {
			if (errno == EINTR)
				continue;
			fail("serve: poll", errno);
		}
		for (int k = 0; k < np; k++) {
			if (in_open && p[k].fd == in[1] && p[k].revents) {
				ssize_t w = write(in[1], input.data() + off, input.size() - off);
				if (w > 0)
					off += size_t(w);
				if (w < 0 || off == input.size()) {
					close(in[1]); /* EPIPE: it did not read it all */
					in_open = false;
				}
			} else if (capture && p[k].fd == out[0] && p[k].revents) {
				char b[4096];
				ssize_t n = read(out[0], b, sizeof b);
				if (n <= 0) {
					close(out[0]);
					capture = false;
				} else if (r.out.size() < max) {
					r.out.append(b, std::min(size_t(n), max - r.out.size()));
				}
			}
		}
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return r;
}

/*
 * send and call take TARGET [MESSAGE]: the message, or with none or "-"
 * stdin's lines. Checks the operands (ask: what the error asks for when
 * there is no target), resolves the target into t and attaches.
 */
Source outgoing(const char *verb, const char *ask, const std::vector<std::string> &ops,
		const MsgOpts &o, Target &t)
{
	if (ops.empty())
		usage_error(fmt::format("{}: {} (a mailbox /name or id, or pid:N)", verb, ask));
	if (ops.size() > 2)
		usage_error(fmt::format("{}: unexpected argument '{}' (quote a message with spaces)",
					verb, ops[2]));
	if (o.nonblock && o.timeout >= 0)
		usage_error(fmt::format("{}: --nonblock and --timeout exclude each other", verb));
	t = resolve(ops[0], true, false);
	attach();
	bool given = ops.size() == 2 && ops[1] != "-";
	return Source{given ? std::optional(ops[1]) : std::nullopt,
		      o.count >= 0 ? o.count : given ? 1 : -1};
}

} // namespace

int cmd_send(int argc, char **argv)
{
	MsgOpts o;
	auto ops = operands(argc, argv, o, "ntpTc", send_help);
	Target t;
	Source src = outgoing("send", "where to?", ops, o, t);
	kipc_opts ko = o.opts();
	std::string m;
	while (src.next(m)) {
		int r = t.taskq ? kipc_send_x(t.pid, m.data(), m.size(), o.prio, o.flags(), &ko)
				: kipc_mbox_send_x(t.mbox, m.data(), m.size(), o.prio, o.flags(), &ko);
		if (r < 0)
			msg_fail(Op::Send, t, o, errno, src.limit == 1 ? 0 : src.n);
	}
	return 0;
}

int cmd_recv(int argc, char **argv)
{
	MsgOpts o;
	auto ops = operands(argc, argv, o, "ntFTcfj", recv_help);
	if (ops.size() != 1)
		usage_error(ops.empty() ? "recv: from where? (a mailbox /name or id, any, or pid:N)"
					: fmt::format("recv: unexpected argument '{}'", ops[1]));
	if (o.nonblock && o.timeout >= 0)
		usage_error("recv: --nonblock and --timeout exclude each other");
	if (o.follow && o.count >= 0)
		usage_error("recv: --follow and --count exclude each other");
	Target t = resolve(ops[0], true, true);
	check_recv_target(t, o, "recv");
	attach();
	std::vector<char> buf(msgsize_max());
	int64_t want = o.follow ? -1 : o.count >= 0 ? o.count : 1;
	for (int64_t n = 0; want < 0 || n < want; n++) {
		/* Nobody reads our output any more (a pipe's reader left):
		 * stop before taking a message that could not be printed. */
		pollfd out = {STDOUT_FILENO, 0, 0};
		if (poll(&out, 1, 0) == 1 && out.revents & (POLLERR | POLLHUP))
			return EXIT_FAIL;
		kipc_msginfo info;
		ssize_t len = receive(t, o, buf, &info);
		if (len < 0)
			msg_fail(Op::Recv, t, o, errno, want == 1 ? 0 : n + 1);
		print_msg(o, info, buf.data(), size_t(len));
	}
	return 0;
}

int cmd_call(int argc, char **argv)
{
	MsgOpts o;
	auto ops = operands(argc, argv, o, "ntpTcj", call_help);
	Target t;
	Source src = outgoing("call", "whom?", ops, o, t);
	std::vector<char> buf(msgsize_max());
	kipc_opts ko = o.opts();
	std::string m;
	while (src.next(m)) {
		kipc_msginfo info;
		ssize_t n;
		if (t.taskq)
			n = kipc_call_x(t.pid, m.data(), m.size(), buf.data(), buf.size(), &info,
					o.flags(), &ko);
		else
			n = kipc_mbox_call_x(t.mbox, m.data(), m.size(), buf.data(), buf.size(), &info,
					     o.flags(), &ko);
		if (n < 0)
			msg_fail(Op::Call, t, o, errno, src.limit == 1 ? 0 : src.n);
		print_msg(o, info, buf.data(), size_t(n));
	}
	return 0;
}

int cmd_serve(int argc, char **argv)
{
	MsgOpts o;
	std::vector<std::string> command;
	auto ops = operands(argc, argv, o, "tTcj", serve_help, &command);
	if (ops.size() != 1)
		usage_error(ops.empty() ? "serve: where? (a mailbox /name or id, or any)"
					: fmt::format("serve: unexpected argument '{}' (a command goes after --)",
						      ops[1]));
	Target t = resolve(ops[0], false, true);
	attach();
	signal(SIGPIPE, SIG_IGN); /* a command that does not read its input */
	size_t max = msgsize_max();
	std::vector<char> buf(max);
	for (int64_t n = 0; o.count < 0 || n < o.count; n++) {
		kipc_msginfo info;
		ssize_t len = receive(t, o, buf, &info);
		if (len < 0)
			msg_fail(Op::Serve, t, o, errno);
		std::string req(buf.data(), size_t(len));
		bool call = info.flags & KIPC_CQE_F_CALL;
		Ran r;
		if (!command.empty()) {
			if (!call)
				fflush(stdout);
			r = run_command(command, req, info, max, call);
			if (r.status)
				fmt::print(stderr, "kipc: serve: {} exited with status {} (message {})\n",
					   command[0], r.status, info.seq);
		} else {
			r.out = req;
		}
		if (!call) {
			if (command.empty() && !o.json)
				print_msg(o, info, buf.data(), size_t(len));
		} else {
			/* One trailing newline of the command's output is not part of the reply. */
			if (!command.empty() && !r.out.empty() && r.out.back() == '\n')
				r.out.pop_back();
			if (kipc_reply(info.token, r.out.data(), r.out.size(), 0) < 0) {
				int err = errno;
				if (err == EMSGSIZE && kipc_reply(info.token, "", 0, 0) == 0)
					fmt::print(stderr,
						   "kipc: serve: reply of {} bytes is larger than the caller's "
						   "buffer (EMSGSIZE); answered with an empty reply\n",
						   r.out.size());
				else
					/* the caller gave up (timeout, signal, exit): not fatal */
					fmt::print(stderr, "kipc: serve: reply to {}: {} ({})\n", info.pid,
						   err == ESRCH ? "the caller is gone" : strerror(err),
						   errno_name(err));
			}
		}
		if (o.json) {
			json j = j_info(info, buf.data(), size_t(len));
			if (call)
				j["reply"] = r.out;
			if (!command.empty())
				j["status"] = r.status;
			fmt::print("{}\n", json_dump(j));
			fflush(stdout);
		}
	}
	return 0;
}

} // namespace kipc_cli
