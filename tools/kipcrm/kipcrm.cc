// SPDX-License-Identifier: MIT
/*
 * kipcrm: remove kipc mailboxes, with ipcrm(1)'s conventions: -q ID and
 * -Q NAME (or IDs and /NAMEs as arguments), -a for every mailbox the
 * caller may remove; one line per failure on standard error; exit 1 if
 * anything failed. See Documentation/man/kipcrm.1.
 */
#include <getopt.h>
#include <string>
#include <unistd.h>
#include <vector>

#include <kipc/mqueue.h>

#include "../include/tool.h"

using namespace tool;

namespace {

bool verbose;

/*
 * Remove what id names with its own call: a POSIX queue loses its name
 * (mq_unlink: it goes when its last descriptor closes), a System V queue
 * is IPC_RMID'd, a kipc mailbox destroyed. 0 or -1 with errno.
 */
int destroy(int64_t id)
{
	struct kipc_mbox_stat st;
	if (kipc_mbox_stat(id, &st) == 0) {
		if (st.attr.flags & KIPC_MBOX_POSIX) {
			if (!st.name[0]) { /* unlinked already: it goes with its last descriptor */
				errno = EIDRM;
				return -1;
			}
			return kipc_mq_unlink(st.name);
		}
		if (st.attr.flags & KIPC_MBOX_SYSV)
			return kipc_msgctl(int(id), KIPC_IPC_RMID, nullptr, 0);
	}
	return kipc_mbox_destroy(id);
}

/* Destroy one mailbox; false (and a message) on failure. what: how the user named it. */
bool remove_id(int64_t id, const std::string &what)
{
	if (destroy(id) == 0) {
		if (verbose)
			fmt::print("removed mailbox {}\n", id);
		return true;
	}
	if (errno == ECONNREFUSED || errno == ECONNRESET)
		die(kernel_error(errno));
	fmt::print(stderr, "kipcrm: {}\n", mbox_error(errno, what));
	return false;
}

bool remove_name(const std::string &name)
{
	if (name.empty() || name[0] != '/') {
		fmt::print(stderr, "kipcrm: invalid name ({}): a mailbox name is /name\n", name);
		return false;
	}
	int64_t id = kipc_mbox_open(name.c_str(), 0, nullptr); /* look up only */
	if (id < 0 && errno == ENOENT) {
		/* not a mailbox: a POSIX queue of that name? */
		if (kipc_mq_unlink(name.c_str()) == 0) {
			if (verbose)
				fmt::print("removed POSIX queue {}\n", name);
			return true;
		}
		if (errno == EACCES || errno == EPERM) {
			fmt::print(stderr, "kipcrm: permission denied for name ({})\n", name);
			return false;
		}
		if (errno != ENOENT && errno != EINVAL) {
			if (errno == ECONNREFUSED || errno == ECONNRESET)
				die(kernel_error(errno));
			fmt::print(stderr, "kipcrm: {}: {}\n", name, strerror(errno));
			return false;
		}
		errno = ENOENT;
	}
	if (id < 0) {
		if (errno == ENOENT || errno == EINVAL)
			fmt::print(stderr, "kipcrm: {}\n", mbox_error(errno, name));
		else if (errno == ECONNREFUSED || errno == ECONNRESET)
			die(kernel_error(errno));
		else
			fmt::print(stderr, "kipcrm: {}: {}\n", name, strerror(errno));
		return false;
	}
	if (kipc_mbox_destroy(id) == 0) {
		if (verbose)
			fmt::print("removed mailbox {} ({})\n", id, name);
		return true;
	}
	if (errno == EPERM || errno == EACCES) {
		fmt::print(stderr, "kipcrm: {}\n", mbox_error(errno, name));
		return false;
	}
	return remove_id(id, name);
}

/* Every mailbox the caller may remove: its uid owns or created it (root: all). */
bool remove_all()
{
	bool ok = true;
	uid_t uid = getuid();
	for (const auto &m : fetch_all<MboxInfo>(kipc_mbox_list, "mailbox list")) {
		if (uid != 0 && m.st.attr.uid != uid && m.st.cuid != uid)
			continue;
		if (destroy(m.st.id) == 0) {
			if (verbose)
				fmt::print("removed mailbox {}\n", m.st.id);
		} else if (errno != EIDRM && errno != EINVAL) { /* gone meanwhile: fine */
			ok = remove_id(m.st.id, std::to_string(m.st.id)) && ok;
		}
	}
	return ok;
}

void usage(FILE *f)
{
	fmt::print(f, "usage: kipcrm [-v] [-q ID]... [-Q NAME]... [-a] [ID|/NAME]...\n"
		      "Remove kipc mailboxes (their waiters fail EIDRM).\n"
		      "  -q, --id ID        remove the mailbox with this id\n"
		      "  -Q, --name NAME    remove the mailbox with this name (/name)\n"
		      "  -a, --all          remove every mailbox your user owns or created\n"
		      "                     (root: every mailbox)\n"
		      "  -v, --verbose      say what was removed\n"
		      "  -h, --help         this help\n"
		      "      --version      print the version\n"
		      "Exit status: 0 if everything was removed, 1 otherwise, 2 for a\n"
		      "usage error.\n");
}

} // namespace

int main(int argc, char **argv)
{
	prog = "kipcrm";
	static const option longopts[] = {
		{"id", required_argument, nullptr, 'q'}, {"name", required_argument, nullptr, 'Q'},
		{"all", no_argument, nullptr, 'a'},      {"verbose", no_argument, nullptr, 'v'},
		{"help", no_argument, nullptr, 'h'},     {"version", no_argument, nullptr, 'V'},
		{nullptr, 0, nullptr, 0},
	};
	struct Item {
		bool name;
		std::string arg;
	};
	std::vector<Item> items;
	bool all = false;
	opterr = 0;
	for (int c; (c = getopt_long(argc, argv, ":q:Q:avh", longopts, nullptr)) != -1;) {
		switch (c) {
		case 'q': items.push_back({false, optarg}); break;
		case 'Q': items.push_back({true, optarg}); break;
		case 'a': all = true; break;
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': tool_print_version("kipcrm"); return 0;
		default: tool_bad_option("kipcrm", argv, c);
		}
	}
	for (int i = optind; i < argc; i++)
		items.push_back({argv[i][0] == '/', argv[i]});
	if (items.empty() && !all)
		tool_usage_error("kipcrm", "nothing to remove: give -q ID, -Q NAME, -a or ID|/NAME");
	attach();
	bool ok = true;
	for (const auto &it : items) {
		int64_t id;
		if (it.name)
			ok = remove_name(it.arg) && ok;
		else if (!parse_id(it.arg.c_str(), &id)) {
			fmt::print(stderr, "kipcrm: invalid id ({})\n", it.arg);
			ok = false;
		} else {
			ok = remove_id(id, it.arg) && ok;
		}
	}
	if (all)
		ok = remove_all() && ok;
	return ok ? 0 : 1;
}
