// SPDX-License-Identifier: MIT
/*
 * kipcd: boot the kipc kernel and serve attach connections.
 *
 *   kipcd [--socket PATH] [--foreground] [--loop=auto|io_uring|epoll]
 *         [--quiet] [name=value ...]
 *
 * name=value are boot parameters (kernel command line style) handed to
 * kipc::Limits::set(). Without --foreground kipcd daemonizes once the
 * socket listens and the loop runs: when the parent exits 0, the socket
 * accepts attaches.
 */
#include "kipcd.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <string>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <fmt/core.h>
#include <kipc/ring.h>

namespace kipcd {

namespace {

timespec boot_ts;
bool quiet; /* --quiet: no boot log, no notes (errors still go out) */

void usage(FILE *f)
{
	fmt::print(f,
		   "usage: kipcd [--socket PATH] [--foreground] "
		   "[--loop=auto|io_uring|epoll] [--quiet] [name=value ...]\n"
		   "boot parameters:");
	for (const char *const *n = kipc::Limits::param_names; n && *n; n++)
		fmt::print(f, " {}", *n);
	fmt::print(f, "\n");
}

std::string default_socket()
{
	if (const char *s = getenv("KIPC_SOCKET"); s && *s)
		return s;
	if (const char *x = getenv("XDG_RUNTIME_DIR"); x && *x)
		return fmt::format("{}/kipc/kipcd.sock", x);
	return fmt::format("/tmp/kipc-{}/kipcd.sock", getuid());
}

[[noreturn]] void die(int code, const std::string &msg)
{
	fmt::print(stderr, "kipcd: {}\n", msg);
	exit(code);
}

/*
 * Open the socket's directory, as ssh-agent and tmux do: the parts that
 * are missing are created 0700; the directory itself must be a real
 * directory (not a symlink: O_NOFOLLOW), owned by our euid and writable
 * by nobody else, or we refuse it with one line saying why. Everything
 * kipcd makes in it goes through the returned descriptor (openat,
 * unlinkat, and bind through /proc/self/fd/N), so a name swapped in the
 * path after the check is never followed.
 */
int open_socket_dir(const std::string &dir)
{
	for (size_t i = 1; i <= dir.size(); i++) {
		if (i < dir.size() && dir[i] != '/')
			continue;
		std::string d = dir.substr(0, i);
		if (mkdir(d.c_str(), 0700) < 0 && errno != EEXIST)
			die(1, fmt::format("{}: {}", d, strerror(errno)));
	}
	int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
		die(1, fmt::format("{}: refusing the socket directory: it is a symlink "
				   "or not a directory", dir));
	if (fd < 0)
		die(1, fmt::format("{}: {}", dir, strerror(errno)));
	struct stat st;
	if (fstat(fd, &st) < 0)
		die(1, fmt::format("{}: {}", dir, strerror(errno)));
	if (st.st_uid != geteuid())
		die(1, fmt::format("{}: refusing the socket directory: owned by uid {}, "
				   "not by uid {}", dir, st.st_uid, geteuid()));
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		die(1, fmt::format("{}: refusing the socket directory: mode {:04o} lets "
				   "others write in it", dir, st.st_mode & 07777));
	return fd;
}

/* Where the socket lives: its checked directory and its name in it. */
struct SocketDir {
	int dirfd = -1;
	std::string name;   /* kipcd.sock */
	std::string lock;   /* kipcd.sock.lock */
	int lockfd = -1;
};
SocketDir sockdir;

/*
 * Lock <socket>.lock for our lifetime: two kernels starting at once
 * cannot both unlink and bind. The lock file is removed at a clean
 * shutdown while we hold it, so a starter that opened the old file and
 * wins its lock after us would lock a file nobody else sees: after
 * flock we check that the name still is the file we locked, else retry.
 */
void lock_socket(const std::string &path)
{
	for (;;) {
		int fd = openat(sockdir.dirfd, sockdir.lock.c_str(),
				O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			die(1, fmt::format("{}.lock: {}", path, strerror(errno)));
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			/* Autostart races end here for the loser: stay silent. */
			if (quiet)
				exit(1);
			die(1, fmt::format("another kernel is running on {}", path));
		}
		struct stat a, b;
		if (fstat(fd, &a) == 0 &&
		    fstatat(sockdir.dirfd, sockdir.lock.c_str(), &b, AT_SYMLINK_NOFOLLOW) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			sockdir.lockfd = fd; /* stays open (and locked) until we exit */
			return;
		}
		close(fd); /* removed by the kernel that just shut down: again */
	}
}

/*
 * Take the socket: check its directory, lock, refuse a live kernel,
 * remove a stale socket file, bind and listen.
 */
int take_socket(const std::string &path)
{
	size_t slash = path.rfind('/');
	std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
	sockdir.name = slash == std::string::npos ? path : path.substr(slash + 1);
	sockdir.lock = sockdir.name + ".lock";
	if (sockdir.name.empty())
		die(2, fmt::format("socket path ends in '/': {}", path));
	sockdir.dirfd = open_socket_dir(dir);
	/* bind and connect by a path that resolves through our checked
	 * descriptor of the directory. */
	std::string via = fmt::format("/proc/self/fd/{}/{}", sockdir.dirfd, sockdir.name);
	sockaddr_un sa{};
	sa.sun_family = AF_UNIX;
	if (path.size() >= sizeof sa.sun_path || via.size() >= sizeof sa.sun_path)
		die(2, fmt::format("socket path too long: {}", path));
	memcpy(sa.sun_path, via.c_str(), via.size() + 1);

	lock_socket(path);

	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die(1, fmt::format("socket: {}", strerror(errno)));
	int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, reinterpret_cast<sockaddr *>(&sa),
				  sizeof sa) == 0) {
		if (quiet)
			exit(1);
		die(1, fmt::format("another kernel already serves {}", path));
	}
	if (probe >= 0)
		close(probe);
	if (unlinkat(sockdir.dirfd, sockdir.name.c_str(), 0) == 0 && !quiet)
		fmt::print(stderr, "kipcd: removed stale socket {}\n", path);
	if (bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) < 0)
		die(1, fmt::format("bind {}: {}", path, strerror(errno)));
	/* Who may attach is decided by the directory (0700 per-user
	 * default); with an explicit shared path every user may. */
	fchmodat(sockdir.dirfd, sockdir.name.c_str(), 0666, 0);
	if (listen(fd, 128) < 0)
		die(1, fmt::format("listen {}: {}", path, strerror(errno)));
	return fd;
}

/* Clean shutdown: the socket, then the lock file while we still hold it. */
void release_socket()
{
	unlinkat(sockdir.dirfd, sockdir.name.c_str(), 0);
	unlinkat(sockdir.dirfd, sockdir.lock.c_str(), 0);
	close(sockdir.lockfd);
	close(sockdir.dirfd);
}

} // namespace

void klog(const std::string &msg)
{
	timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double t = double(now.tv_sec - boot_ts.tv_sec) +
		   double(now.tv_nsec - boot_ts.tv_nsec) / 1e9;
	fmt::print(stderr, "[{:12.6f}] {}\n", t, msg);
}

} // namespace kipcd

using namespace kipcd;

int main(int argc, char **argv)
{
	clock_gettime(CLOCK_MONOTONIC, &boot_ts);
	Options opt;
	opt.socket_path = default_socket();
#if !defined(CONFIG_LOOP_IO_URING)
	opt.loop = "epoll"; /* configured without the io_uring loop */
#endif
	if (const char *l = getenv("KIPC_LOOP"); l && *l)
		opt.loop = l;
	kipc::Limits limits = kipc::Limits::from_config();
	std::vector<std::string> params;

	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto value = [&](const char *name) -> std::string {
			std::string pre = std::string(name) + "=";
			if (a.rfind(pre, 0) == 0)
				return a.substr(pre.size());
			if (i + 1 >= argc)
				die(2, fmt::format("{} needs an argument", name));
			return argv[++i];
		};
		if (a == "--socket" || a.rfind("--socket=", 0) == 0) {
			opt.socket_path = value("--socket");
		} else if (a == "--loop" || a.rfind("--loop=", 0) == 0) {
			opt.loop = value("--loop");
		} else if (a == "--foreground" || a == "-f") {
			opt.foreground = true;
		} else if (a == "--quiet" || a == "-q") {
			quiet = true;
		} else if (a == "--help" || a == "-h") {
			usage(stdout);
			return 0;
		} else if (a == "--version") {
			fmt::print("kipcd {} (protocol {}, abi {})\n", KIPC_VERSION,
				   KIPC_PROTO_VERSION, KIPC_ABI_VERSION);
			return 0;
		} else if (a.find('=') != std::string::npos && a[0] != '-') {
			size_t eq = a.find('=');
			int err = limits.set(std::string_view(a).substr(0, eq),
					     std::string_view(a).substr(eq + 1));
			if (err == -ENOENT)
				die(2, fmt::format("unknown boot parameter '{}'",
						   a.substr(0, eq)));
			if (err)
				die(2, fmt::format("bad value in '{}': {}", a,
						   strerror(-err)));
			params.push_back(a);
		} else {
			fmt::print(stderr, "kipcd: unknown argument '{}'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (limits.validate())
		die(2, "inconsistent boot parameters: a default exceeds its hard limit "
		       "(msg_default/taskq_capacity <= msg_max, msgsize_default <= msgsize_max)");
	if (opt.loop != "auto" && opt.loop != "io_uring" && opt.loop != "epoll")
		die(2, fmt::format("unknown loop '{}' (auto, io_uring, epoll)",
				   opt.loop));

	/*
	 * Daemonize first, report readiness through a pipe: the parent
	 * exits 0 only once the child listens with its loop running, and
	 * with the child's status if it failed (another kernel: 1).
	 */
	int ready[2] = {-1, -1};
	if (!opt.foreground) {
		if (pipe2(ready, O_CLOEXEC) < 0)
			die(1, fmt::format("pipe: {}", strerror(errno)));
		pid_t pid = fork();
		if (pid < 0)
			die(1, fmt::format("fork: {}", strerror(errno)));
		if (pid > 0) {
			close(ready[1]);
			char c;
			ssize_t n;
			do
				n = read(ready[0], &c, 1);
			while (n < 0 && errno == EINTR);
			if (n == 1)
				_exit(0);
			int st = 0;
			waitpid(pid, &st, 0);
			_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
		}
		close(ready[0]);
		setsid();
	}

	int lfd = take_socket(opt.socket_path);
	/* Three descriptors per attached process: take what we may. */
	if (rlimit rl; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	std::string why;
	std::unique_ptr<Loop> loop = make_loop(opt.loop, &why);
	if (!loop)
		die(1, fmt::format("event loop {}: {}", opt.loop, why));

	if (!quiet) {
		klog(fmt::format("kipc: kipcd {} (protocol {}, abi {}) pid {}",
				 KIPC_VERSION, KIPC_PROTO_VERSION,
				 KIPC_ABI_VERSION, getpid()));
		if (!params.empty()) {
			std::string cl;
			for (auto &p : params)
				cl += (cl.empty() ? "" : " ") + p;
			klog("kipc: command line: " + cl);
		}
		const kipc::Limits &l = limits;
		klog(fmt::format("kipc: limits: msg_default={} msg_max={} "
				 "msgsize_default={} msgsize_max={} "
				 "mbox_per_user={} bytes_per_user={} "
				 "taskq_capacity={} root_bypass={}",
				 l.msg_default, l.msg_max, l.msgsize_default,
				 l.msgsize_max, l.mbox_per_user,
				 l.bytes_per_user, l.taskq_capacity,
				 l.root_bypass ? 1 : 0));
		klog(fmt::format("kipc: ring: {} sq / {} cq entries, arena {} KiB",
				 CONFIG_RING_ENTRIES, 2 * CONFIG_RING_ENTRIES,
				 CONFIG_ARENA_SIZE / 1024));
		if (std::string(loop->name()) == "io_uring")
			klog("kipc: event loop: io_uring (multishot poll)");
		else if (!why.empty())
			klog(fmt::format("kipc: event loop: epoll (io_uring unavailable: {})",
					 why));
		else
			klog("kipc: event loop: epoll");
		klog(fmt::format("kipc: listening on {}", opt.socket_path));
	}

	if (!opt.foreground) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			close(null);
		}
		if (write(ready[1], "r", 1) < 0) { /* parent died: go on */ }
		close(ready[1]);
	}

	int ret = serve(lfd, *loop, limits, !quiet);
	release_socket();
	if (!quiet)
		klog("kipc: halted");
	close(lfd);
	return ret;
}
