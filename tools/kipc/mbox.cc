// SPDX-License-Identifier: MIT
/*
 * kipc mbox create|destroy|grant|revoke|list|show: mailboxes from the
 * shell, as ipcmk(1), ipcrm(1) and ipcs(1) are for System V queues.
 *
 * A mailbox made by `kipc mbox create` is kernel-owned: it outlives the
 * command and lives until destroyed (a process-owned one would die with
 * kipc itself), unless --owner hands it to a live process, which then
 * owns it (and, with --process-owned, takes it along when it exits).
 */
#include "kipc.h"

#include <climits>
#include <getopt.h>
#include <unistd.h>

namespace kipc_cli {

namespace {

const char *kind_of(const tool::MboxStat &st)
{
	return st.attr.flags & KIPC_MBOX_KERNEL_OWNED ? "kernel" : "process";
}

json j_created(const tool::MboxStat &st, pid_t owner)
{
	json j;
	j["id"] = st.id;
	j["name"] = st.name;
	if (st.attr.capacity == KIPC_UNBOUNDED)
		j["capacity"] = nullptr;
	else
		j["capacity"] = st.attr.capacity;
	j["msgsize"] = st.attr.msgsize;
	j["qbytes"] = st.attr.qbytes;
	j["fixed"] = bool(st.attr.flags & KIPC_MBOX_FIXED);
	j["policy"] = tool::policy_name(st.attr.policy);
	j["mode"] = fmt::format("{:04o}", st.attr.mode);
	j["kind"] = kind_of(st);
	if (owner)
		j["owner_pid"] = owner;
	else
		j["owner_pid"] = nullptr; /* kipc itself, exiting now */
	return j;
}

uint32_t policy_arg(const std::string &s)
{
	for (uint32_t p = 0; p <= KIPC_POLICY_MAX; p++)
		if (s == tool::policy_name(p))
			return p;
	if (s == "rr")
		return KIPC_POLICY_ROUND_ROBIN;
	usage_error(fmt::format("--policy: unknown policy '{}' (any, pair, exclusive, round-robin)", s));
}

uint32_t capacity_arg(const std::string &s)
{
	if (s == "unbounded" || s == "inf")
		return KIPC_UNBOUNDED;
	if (s == "default")
		return KIPC_CAP_DEFAULT;
	return uint32_t(int_arg("--capacity", s, 0, KIPC_CAP_DEFAULT - 1));
}

void create_usage(FILE *f)
{
	fmt::print(f,
		   "usage: kipc mbox create [NAME] [options]\n"
		   "Create a kernel-owned mailbox (it lives until destroyed); print its id.\n"
		   "  -c, --capacity N|0|unbounded  messages it holds (0: rendezvous; default: the kernel's)\n"
		   "  -s, --msgsize SIZE   largest message (4K, 512...; default: the kernel's)\n"
		   "  -b, --qbytes SIZE    byte bound of a bounded mailbox (default capacity * msgsize)\n"
		   "  -m, --mode MODE      permission bits, octal (default 0600; r = receive, w = send)\n"
		   "  -p, --policy P       any, pair, exclusive, round-robin (default any)\n"
		   "  -f, --fixed          every message exactly msgsize bytes\n"
		   "  -o, --owner PID      hand ownership (and the receive right) to process PID\n"
		   "      --process-owned  with --owner: the mailbox dies with that process\n"
		   "  -e, --exist-ok       a mailbox of that NAME already there is not an error\n"
		   "  -j, --json           print the created mailbox as JSON\n");
}

int mbox_create(int argc, char **argv)
{
	static const option longopts[] = {
		{"capacity", required_argument, nullptr, 'c'},
		{"msgsize", required_argument, nullptr, 's'},
		{"qbytes", required_argument, nullptr, 'b'},
		{"mode", required_argument, nullptr, 'm'},
		{"policy", required_argument, nullptr, 'p'},
		{"fixed", no_argument, nullptr, 'f'},
		{"owner", required_argument, nullptr, 'o'},
		{"process-owned", no_argument, nullptr, 'P'},
		{"exist-ok", no_argument, nullptr, 'e'},
		{"json", no_argument, nullptr, 'j'},
		{"help", no_argument, nullptr, 'h'},
		{nullptr, 0, nullptr, 0},
	};
	kipc_mbox_attr attr{};
	attr.capacity = KIPC_CAP_DEFAULT;
	attr.mode = 0600;
	attr.flags = KIPC_MBOX_KERNEL_OWNED;
	pid_t owner = 0;
	bool process_owned = false, exist_ok = false, as_json = false;
	optind = 0;
	for (int c; (c = getopt_long(argc, argv, "c:s:b:m:p:fo:ejh", longopts, nullptr)) != -1;) {
		switch (c) {
		case 'c': attr.capacity = capacity_arg(optarg); break;
		case 's': attr.msgsize = uint32_t(size_arg("--msgsize", optarg, UINT32_MAX)); break;
		case 'b': attr.qbytes = size_arg("--qbytes", optarg, UINT64_MAX); break;
		case 'm': {
			char *end;
			long m = strtol(optarg, &end, 8);
			if (!*optarg || *end || m < 0 || m > 0777)
				usage_error(fmt::format("--mode: invalid mode '{}' (octal, 0 to 0777)", optarg));
			attr.mode = uint32_t(m);
			break;
		}
		case 'p': attr.policy = policy_arg(optarg); break;
		case 'f': attr.flags |= KIPC_MBOX_FIXED; break;
		case 'o': owner = pid_t(int_arg("--owner", optarg, 1, INT32_MAX)); break;
		case 'P': process_owned = true; break;
		case 'e': exist_ok = true; break;
		case 'j': as_json = true; break;
		case 'h': create_usage(stdout); return 0;
		default: create_usage(stderr); return EXIT_USAGE;
		}
	}
	const char *name = nullptr;
	if (optind < argc)
		name = argv[optind++];
	if (optind < argc)
		usage_error(fmt::format("mbox create: unexpected argument '{}'", argv[optind]));
	if (name && name[0] != '/')
		usage_error(fmt::format("mbox create: invalid name '{}': a mailbox name is /name", name));
	if (process_owned && !owner)
		usage_error("mbox create: --process-owned needs --owner PID "
			    "(a mailbox owned by kipc would die when kipc exits)");
	if (process_owned)
		attr.flags &= ~KIPC_MBOX_KERNEL_OWNED;
	if (exist_ok && !name)
		usage_error("mbox create: --exist-ok needs a NAME");

	attach();
	std::string what = fmt::format("mbox create {}", name ? name : "(anonymous)");
	int64_t id = kipc_mbox_open(name, KIPC_O_CREAT | (exist_ok ? 0 : KIPC_O_EXCL), &attr);
	if (id < 0) {
		int err = errno;
		switch (err) {
		case EEXIST: fail(what, err, "a mailbox of that name exists");
		case ENOSPC: fail(what, err, "too many mailboxes (mbox_per_user, see kipcs -l)");
		case EINVAL: fail(what, err, "invalid attributes or name (limits: kipcs -l)");
		}
		fail(what, err);
	}
	if (owner && kipc_mbox_set_owner(id, owner) < 0) {
		int err = errno;
		kipc_mbox_destroy(id); /* leave nothing half made */
		fail(fmt::format("{}: --owner {}", what, owner), err,
		     err == ESRCH ? "no such process" : "");
	}
	tool::MboxStat st;
	if (as_json) {
		if (kipc_mbox_stat(id, &st) < 0)
			fail(fmt::format("mbox stat {}", id), errno);
		fmt::print("{}\n", json_dump(j_created(st, owner), 2));
	} else {
		fmt::print("{}\n", id);
	}
	return 0;
}

/* destroy, grant, revoke: the plain ones. */
void simple_usage(FILE *f, const std::string &verb)
{
	if (verb == "destroy")
		fmt::print(f, "usage: kipc mbox destroy TARGET...\n"
			      "Destroy mailboxes (/name or id): queued messages are dropped, waiters fail EIDRM.\n");
	else
		fmt::print(f, "usage: kipc mbox {} TARGET PID\n"
			      "{} process PID the right to receive from the mailbox (the owner's call;\n"
			      "on an owner-less kernel-owned mailbox: its owner or creator uid, or root).\n",
			   verb, verb == "grant" ? "Give" : "Take from");
}

int no_options(int argc, char **argv, const std::string &verb)
{
	static const option longopts[] = {
		{"help", no_argument, nullptr, 'h'},
		{nullptr, 0, nullptr, 0},
	};
	optind = 0;
	for (int c; (c = getopt_long(argc, argv, "h", longopts, nullptr)) != -1;) {
		if (c == 'h') {
			simple_usage(stdout, verb);
			exit(0);
		}
		simple_usage(stderr, verb);
		exit(EXIT_USAGE);
	}
	return optind;
}

const char *manage_why(int err)
{
	switch (err) {
	case EPERM: return "operation not permitted (not the owner)";
	case EIDRM: return "the mailbox was destroyed";
	case EINVAL: return "no such mailbox";
	}
	return "";
}

int mbox_destroy(int argc, char **argv)
{
	int first = no_options(argc, argv, "destroy");
	if (first >= argc)
		usage_error("mbox destroy: which mailbox? (a /name or an id)");
	std::vector<Target> targets; /* every name looked up before anything is destroyed */
	for (int i = first; i < argc; i++)
		targets.push_back(resolve(argv[i], false, false));
	int rc = 0;
	for (const Target &t : targets) {
		if (kipc_mbox_destroy(t.mbox) == 0)
			continue;
		int err = errno;
		if (err == ECONNREFUSED || err == ECONNRESET)
			fail("mbox destroy", err);
		fmt::print(stderr, "kipc: mbox destroy {}: {} ({})\n", t.text,
			   *manage_why(err) ? manage_why(err) : strerror(err), errno_name(err));
		rc = exit_code(err);
	}
	return rc;
}

int mbox_right(int argc, char **argv, bool grant)
{
	const char *verb = grant ? "grant" : "revoke";
	int first = no_options(argc, argv, verb);
	if (argc - first != 2)
		usage_error(fmt::format("mbox {}: give a mailbox and a pid (kipc mbox {} /q 1234)", verb,
					verb));
	pid_t pid = pid_t(int_arg("pid", argv[first + 1], 1, INT32_MAX));
	Target t = resolve(argv[first], false, false);
	int r = grant ? kipc_mbox_grant(t.mbox, pid) : kipc_mbox_revoke(t.mbox, pid);
	if (r < 0) {
		int err = errno;
		std::string why = manage_why(err);
		if (err == ESRCH)
			why = grant ? "no such process" : "no such task";
		if (err == EPERM && !grant)
			why = "operation not permitted (not the owner, or the owner's own right)";
		fail(fmt::format("mbox {} {} {}", verb, t.text, pid), err, why);
	}
	return 0;
}

/* Run a sibling tool (kipcs) from kipc's own directory, else $PATH. */
[[noreturn]] void exec_tool(const char *name, std::vector<std::string> args)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	std::string path = name;
	if (n > 0) {
		exe[n] = '\0';
		std::string dir(exe);
		dir.resize(dir.rfind('/') + 1);
		if (access((dir + name).c_str(), X_OK) == 0)
			path = dir + name;
	}
	args.insert(args.begin(), name);
	std::vector<char *> av;
	for (auto &a : args)
		av.push_back(a.data());
	av.push_back(nullptr);
	execvp(path.c_str(), av.data());
	fail(fmt::format("mbox list: running {}", name), errno);
}

int mbox_names()
{
	attach();
	auto v = tool::fetch_all<tool::MboxInfo>(kipc_mbox_list, "mailbox list");
	for (const auto &m : v)
		if (m.st.name[0])
			fmt::print("{}\n", m.st.name);
	return 0;
}

int mbox_list(int argc, char **argv, bool show)
{
	std::vector<std::string> args;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if (a == "--names" && !show)
			return mbox_names();
		if ((a == "-h" || a == "--help") && !show) {
			fmt::print("usage: kipc mbox list [--names] [kipcs options]\n"
				   "The mailboxes and task queues, as kipcs(1) shows them (--json too);\n"
				   "--names: only the mailbox names, one per line.\n");
			return 0;
		}
		if ((a == "-h" || a == "--help") && show) {
			fmt::print("usage: kipc mbox show TARGET [--json]\n"
				   "One mailbox: attributes, waiters, queued message headers (kipcs -m).\n");
			return 0;
		}
		args.push_back(a);
	}
	attach(); /* exit 3 if no kernel runs */
	if (show) {
		std::vector<std::string> rest;
		std::string target;
		for (auto &a : args) {
			if (a[0] == '-' && a != "-")
				rest.push_back(a);
			else if (target.empty())
				target = a;
			else
				usage_error(fmt::format("mbox show: unexpected argument '{}'", a));
		}
		if (target.empty())
			usage_error("mbox show: which mailbox? (a /name or an id)");
		Target t = resolve(target, false, false);
		tool::MboxInfo mi;
		if (kipc_mbox_info(t.mbox, &mi) < 0) {
			int err = errno;
			fail(fmt::format("mbox show {}", target), err,
			     err == EINVAL ? "no such mailbox" : err == EIDRM ? "the mailbox was destroyed" : "");
		}
		rest.insert(rest.begin(), {"-m", std::to_string(t.mbox)});
		exec_tool("kipcs", rest);
	}
	exec_tool("kipcs", args);
}

void mbox_usage(FILE *f)
{
	fmt::print(f, "usage: kipc mbox create|destroy|grant|revoke|list|show ... (--help on each)\n");
}

} // namespace

int cmd_mbox(int argc, char **argv)
{
	if (argc < 2) {
		mbox_usage(stderr);
		return EXIT_USAGE;
	}
	std::string verb = argv[1];
	if (verb == "create")
		return mbox_create(argc - 1, argv + 1);
	if (verb == "destroy" || verb == "rm")
		return mbox_destroy(argc - 1, argv + 1);
	if (verb == "grant")
		return mbox_right(argc - 1, argv + 1, true);
	if (verb == "revoke")
		return mbox_right(argc - 1, argv + 1, false);
	if (verb == "list" || verb == "ls")
		return mbox_list(argc - 1, argv + 1, false);
	if (verb == "show")
		return mbox_list(argc - 1, argv + 1, true);
	if (verb == "-h" || verb == "--help") {
		mbox_usage(stdout);
		return 0;
	}
	usage_error(fmt::format("mbox: unknown command '{}' (create, destroy, grant, revoke, list, show)",
				verb));
}

} // namespace kipc_cli
