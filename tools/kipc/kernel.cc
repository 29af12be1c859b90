// SPDX-License-Identifier: MIT
/*
 * kipc kernel start|stop|status|restart: the kernel (kipcd) at the
 * socket kipc uses. start runs kipcd, which returns once it accepts
 * attaches; stop and status are kipcd's --stop and --status (status:
 * "key: value" lines, exit 0 with a kernel, 3 without; stop: waits until
 * the kernel exited, exit 3 when none ran).
 *
 * kipcd is $KIPC_KIPCD, else the kipcd next to kipc, else kipcd in $PATH.
 */
#include "kipc.h"

#include <climits>
#include <fcntl.h>
#include <getopt.h>
#include <sys/wait.h>
#include <unistd.h>

namespace kipc_cli {

namespace {

std::string kipcd_path()
{
	if (const char *k = getenv("KIPC_KIPCD"); k && *k)
		return k;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		std::string dir(exe);
		dir.resize(dir.rfind('/') + 1);
		if (access((dir + "kipcd").c_str(), X_OK) == 0)
			return dir + "kipcd";
	}
	return "kipcd";
}

struct Result {
	int status;         /* exit status; 127: could not run it */
	std::string out;    /* its standard output, when captured */
	std::string err;    /* its standard error, when captured */
};

std::string drain(int fd)
{
	std::string s;
	char b[4096];
	ssize_t n;
	while ((n = read(fd, b, sizeof b)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			s.append(b, size_t(n));
	close(fd);
	return s;
}

/* Run kipcd with args; capture: its stdout and stderr (a few lines). */
Result kipcd(std::vector<std::string> args, bool capture)
{
	std::string path = kipcd_path();
	args.insert(args.begin(), path);
	int p[2] = {-1, -1}, e[2] = {-1, -1};
	if (capture && (pipe2(p, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0))
		fail("kernel: pipe", errno);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		fail("kernel: fork", errno);
	if (pid == 0) {
		if (capture) {
			dup2(p[1], 1);
			dup2(e[1], 2);
		}
		std::vector<char *> av;
		for (auto &a : args)
			av.push_back(a.data());
		av.push_back(nullptr);
		execvp(av[0], av.data());
		fmt::print(stderr, "kipc: kernel: running {}: {} ({})\n", path, strerror(errno),
			   errno_name(errno));
		_exit(127);
	}
	Result r{0, {}, {}};
	if (capture) {
		close(p[1]);
		close(e[1]);
		r.out = drain(p[0]);
		r.err = drain(e[0]);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return r;
}

struct Opts {
	bool json = false;
	std::vector<std::string> params;
};

void kernel_usage(FILE *f)
{
	fmt::print(f,
		   "usage: kipc kernel start|stop|status|restart [--json] [PARAM=VALUE...]\n"
		   "  start    boot a kernel (kipcd) at the socket, with boot parameters\n"
		   "           (msg_max=64 ...; see kipcd(8)); returns once it accepts attaches\n"
		   "  stop     shut the kernel down and wait until it exited\n"
		   "  status   the kernel's status (exit 0: running, 3: none)\n"
		   "  restart  stop (if one runs), then start with the parameters\n"
		   "The socket is $KIPC_SOCKET or kipc --socket (now {}).\n",
		   tool::socket_path());
}

Opts parse(int argc, char **argv, bool params_ok)
{
	static const option longopts[] = {
		{"json", no_argument, nullptr, 'j'},
		{"help", no_argument, nullptr, 'h'},
		{nullptr, 0, nullptr, 0},
	};
	Opts o;
	optind = 0;
	for (int c; (c = getopt_long(argc, argv, "jh", longopts, nullptr)) != -1;) {
		switch (c) {
		case 'j': o.json = true; break;
		case 'h': kernel_usage(stdout); exit(0);
		default: kernel_usage(stderr); exit(EXIT_USAGE);
		}
	}
	for (int i = optind; i < argc; i++) {
		std::string a = argv[i];
		if (!params_ok)
			usage_error(fmt::format("kernel {}: unexpected argument '{}'", argv[0], a));
		if (a.find('=') == std::string::npos || a[0] == '=')
			usage_error(fmt::format("kernel {}: '{}' is not a boot parameter (name=value)",
						argv[0], a));
		o.params.push_back(a);
	}
	return o;
}

/* "key: value" lines as a JSON object (numbers as numbers). */
json kv_json(const std::string &text)
{
	json j = json::object();
	size_t pos = 0;
	while (pos < text.size()) {
		size_t nl = text.find('\n', pos);
		std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
		pos = nl == std::string::npos ? text.size() : nl + 1;
		size_t colon = line.find(": ");
		if (colon == std::string::npos)
			continue;
		std::string k = line.substr(0, colon), v = line.substr(colon + 2);
		int64_t n;
		if (parse_int(v, INT64_MIN, INT64_MAX, &n) && v.find_first_not_of("-0123456789") == std::string::npos)
			j[k] = n;
		else
			j[k] = v;
	}
	return j;
}

/* kipcd without --status (older than this kipc): what sysinfo tells. */
int status_from_sysinfo(const Opts &o)
{
	setenv("KIPC_AUTOSTART", "0", 1);
	tool::SysInfo si;
	if (kipc_attach() < 0 || kipc_sysinfo(&si) < 0) {
		if (errno != ECONNREFUSED)
			fail("kernel status", errno);
		if (o.json)
			fmt::print("{}\n", json_dump(json{{"socket", tool::socket_path()}, {"running", false}}, 2));
		else
			fmt::print("no kernel running at {}\n", tool::socket_path());
		return EXIT_NOKERNEL;
	}
	std::string text = fmt::format("socket: {}\nuptime: {}\ntasks: {}\nmailboxes: {}\nmessages: {}\n",
				       tool::socket_path(), tool::duration(si.uptime), si.ntasks - 1,
				       si.nmboxes, si.nmsg);
	if (o.json) {
		json j = kv_json(text);
		j["running"] = true;
		fmt::print("{}\n", json_dump(j, 2));
	} else {
		fmt::print("{}", text);
	}
	return 0;
}

int status(const Opts &o)
{
	Result r = kipcd({"--status", "--socket", tool::socket_path()}, true);
	if (r.status == EXIT_USAGE)
		return status_from_sysinfo(o);
	if (r.status != 0 && r.status != EXIT_NOKERNEL) {
		fmt::print(stderr, "{}", r.err);
		fmt::print(stderr, "kipc: kernel status: kipcd --status exited with status {}\n", r.status);
		return EXIT_FAIL;
	}
	if (o.json) {
		json j = kv_json(r.out);
		if (!j.contains("socket"))
			j["socket"] = tool::socket_path();
		j["running"] = r.status == 0;
		fmt::print("{}\n", json_dump(j, 2));
	} else if (r.status == 0) {
		fmt::print("{}", r.out);
	} else {
		fmt::print("no kernel running at {}\n", tool::socket_path());
	}
	return r.status;
}

int stop(const Opts &o, bool quiet_none)
{
	Result r = kipcd({"--stop", "--socket", tool::socket_path()}, true);
	if (r.status == EXIT_USAGE) {
		fmt::print(stderr, "kipc: kernel stop: {} has no --stop (older than this kipc)\n",
			   kipcd_path());
		return EXIT_FAIL;
	}
	if (r.status == EXIT_NOKERNEL) {
		if (!quiet_none)
			fmt::print(stderr, "kipc: kernel stop: no kernel running at {}\n",
				   tool::socket_path());
		return EXIT_NOKERNEL;
	}
	if (r.status != 0) {
		fmt::print(stderr, "{}", r.err);
		fmt::print(stderr, "kipc: kernel stop: kipcd --stop exited with status {}\n", r.status);
		return EXIT_FAIL;
	}
	if (o.json)
		fmt::print("{}\n", json_dump(json{{"socket", tool::socket_path()}, {"stopped", true}}, 2));
	return 0;
}

int start(const Opts &o)
{
	Result s = kipcd({"--status", "--socket", tool::socket_path()}, true);
	if (s.status == EXIT_USAGE) { /* a kipcd without --status: ask the kernel itself */
		setenv("KIPC_AUTOSTART", "0", 1);
		s.status = kipc_attach() == 0 ? 0 : EXIT_NOKERNEL;
		kipc_detach();
	}
	if (s.status == 0) {
		fmt::print(stderr, "kipc: kernel start: a kernel is already running at {}\n",
			   tool::socket_path());
		return EXIT_FAIL;
	}
	std::vector<std::string> args = {"--socket", tool::socket_path(), "--quiet"};
	args.insert(args.end(), o.params.begin(), o.params.end());
	Result r = kipcd(args, false);
	if (r.status != 0) {
		if (r.status != 1 && r.status != 2) /* else kipcd said why, in one line */
			fmt::print(stderr, "kipc: kernel start: kipcd exited with status {}\n", r.status);
		return r.status == EXIT_USAGE ? EXIT_USAGE : EXIT_FAIL;
	}
	if (o.json)
		fmt::print("{}\n", json_dump(json{{"socket", tool::socket_path()}, {"started", true}}, 2));
	else
		fmt::print("kernel running at {}\n", tool::socket_path());
	return 0;
}

} // namespace

int cmd_kernel(int argc, char **argv)
{
	if (argc < 2) {
		kernel_usage(stderr);
		return EXIT_USAGE;
	}
	std::string verb = argv[1];
	if (verb == "-h" || verb == "--help") {
		kernel_usage(stdout);
		return 0;
	}
	if (verb == "status")
		return status(parse(argc - 1, argv + 1, false));
	if (verb == "stop")
		return stop(parse(argc - 1, argv + 1, false), false);
	if (verb == "start")
		return start(parse(argc - 1, argv + 1, true));
	if (verb == "restart") {
		Opts o = parse(argc - 1, argv + 1, true);
		Opts quiet = o;
		quiet.json = false;
		int r = stop(quiet, true);
		if (r != 0 && r != EXIT_NOKERNEL)
			return r;
		return start(o);
	}
	usage_error(fmt::format("kernel: unknown command '{}' (start, stop, status, restart)", verb));
}

} // namespace kipc_cli
