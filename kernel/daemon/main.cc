// SPDX-License-Identifier: MIT
/*
 * kipcd: boot the kipc kernel and serve attach connections.
 *
 *   kipcd [--socket PATH] [--foreground] [--loop=auto|io_uring|epoll]
 *         [--quiet] [name=value ...]
 *   kipcd --status | --stop [--socket PATH]
 *
 * name=value are boot parameters (kernel command line style) handed to
 * kipc::Limits::set(). Without --foreground kipcd daemonizes once the
 * socket listens and the loop runs: when the parent exits 0, the socket
 * accepts attaches.
 */
#include "kipcd.h"
#include "../net/net.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <string>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <fmt/core.h>
#include <generated/build_id.h>
#include <kipc/libkipc.h>
#include <kipc/ring.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>

namespace kipcd {

struct kipc_kernel_info boot_info;

namespace {

timespec boot_ts;
bool quiet; /* --quiet: no boot log, no notes (errors still go out) */

void usage(FILE *f)
{
	fmt::print(f,
		   "usage: kipcd [--socket PATH] [--foreground] "
		   "[--loop=auto|io_uring|epoll] [--quiet]\n"
		   "             [--node NAME --nats URL[,URL...] [--nats-creds FILE]] [name=value ...]\n"
		   "       kipcd --status | --stop [--socket PATH]\n"
		   "  --status   describe the kernel serving the socket (exit 3: none)\n"
		   "  --stop     stop it and wait until it has exited (exit 3: none)\n"
		   "  --version  print the version and build id\n"
		   "boot parameters:");
	for (const char *const *n = kipc::Limits::param_names; n && *n; n++)
		fmt::print(f, " {}", *n);
	fmt::print(f, " net_timeout_ms net_retry_ms net_uid net_gid net_origin_share net_shared_uids"
		      " net_origin_uids");
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

/* The tools' convention (tools/include/tool.h): one line, a hint, exit 2. */
[[noreturn]] void usage_error(const std::string &msg)
{
	fmt::print(stderr, "kipcd: {}\nTry 'kipcd --help' for more information.\n", msg);
	exit(2);
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
	std::string path;   /* as given: what clients connect to */
	dev_t dev = 0;      /* the socket file we bound */
	ino_t ino = 0;
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
/* Check and open the socket's directory, once (sockdir). */
void open_sockdir(const std::string &path)
{
	if (sockdir.dirfd >= 0)
		return;
	size_t slash = path.rfind('/');
	std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
	sockdir.name = slash == std::string::npos ? path : path.substr(slash + 1);
	sockdir.lock = sockdir.name + ".lock";
	if (sockdir.name.empty())
		die(2, fmt::format("socket path ends in '/': {}", path));
	sockdir.dirfd = open_socket_dir(dir);
}

/*
 * Refuse to boot on a socket because of the boot line, and say so next
 * to the socket in PATH.refused: libkipc's autostart then refuses to put
 * a kernel with other (default) limits there, until a kernel boots on
 * the socket (which removes the file) or the user removes it. Only a
 * regular file of our own is written, in the checked socket directory
 * (openat, O_NOFOLLOW, checked after open).
 */
[[noreturn]] void refuse(const std::string &socket, const std::string &msg)
{
	open_sockdir(socket);
	std::string rp = sockdir.name + ".refused";
	int fd = openat(sockdir.dirfd, rp.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW |
			O_NONBLOCK | O_CLOEXEC, 0600);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_uid == geteuid() && ftruncate(fd, 0) == 0) {
		std::string line = msg + "\n";
		if (write(fd, line.data(), line.size()) < 0) { /* best effort */ }
	}
	if (fd >= 0)
		close(fd);
	die(2, msg);
}

int take_socket(const std::string &path)
{
	open_sockdir(path);
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
	struct stat st;
	if (fstatat(sockdir.dirfd, sockdir.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
		sockdir.path = path, sockdir.dev = st.st_dev, sockdir.ino = st.st_ino;
	if (listen(fd, 128) < 0)
		die(1, fmt::format("listen {}: {}", path, strerror(errno)));
	return fd;
}

/* Does the socket's path (as clients resolve it) still name our socket? */
bool socket_still_ours()
{
	struct stat st;
	return sockdir.ino && lstat(sockdir.path.c_str(), &st) == 0 &&
	       st.st_dev == sockdir.dev && st.st_ino == sockdir.ino;
}

/*
 * inotify on the socket's directory: when the socket is removed or
 * replaced, or the directory removed or renamed, and the path no longer
 * names our socket, no process can attach again: shut down as on SIGTERM.
 * Returns the inotify descriptor (the loop watches it), or -1.
 */
int watch_socket(Loop &loop)
{
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	std::string dir = fmt::format("/proc/self/fd/{}", sockdir.dirfd);
	if (in < 0 || inotify_add_watch(in, dir.c_str(), IN_DELETE | IN_MOVED_FROM |
					IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF) < 0 ||
	    loop.add(in, POLLIN, [in](uint32_t) {
		    alignas(inotify_event) char buf[4096];
		    while (read(in, buf, sizeof buf) > 0) { }
		    if (!socket_still_ours()) {
			    klog(fmt::format("kipc: {} no longer names this kernel's socket",
					     sockdir.path));
			    raise(SIGTERM); /* to the signalfd: a clean shutdown */
		    }
	    }) < 0) {
		klog(fmt::format("kipc: cannot watch {}: {}", dir, strerror(errno)));
		if (in >= 0)
			close(in);
		return -1;
	}
	/* A change between listen() and the watch sent no event: look once. */
	if (!socket_still_ours())
		raise(SIGTERM);
	return in;
}

/* Clean shutdown: the socket (if still ours), then the lock file while we still hold it. */
void release_socket()
{
	if (socket_still_ours())
		unlinkat(sockdir.dirfd, sockdir.name.c_str(), 0);
	unlinkat(sockdir.dirfd, sockdir.lock.c_str(), 0);
	close(sockdir.lockfd);
	close(sockdir.dirfd);
}

constexpr int kNoKernel = 3; /* --status, --stop: no kernel serves the socket */

/*
 * kipcd --status: attach to the kernel on the socket (never start one)
 * and print "key: value" lines. Exits 0, kNoKernel, or 1 on other errors.
 */
int status(const std::string &sock)
{
	setenv("KIPC_SOCKET", sock.c_str(), 1);
	setenv("KIPC_AUTOSTART", "0", 1);
	struct kipc_kernel_info ki;
	struct kipc_sysinfo si;
	if (kipc_attach() < 0 || kipc_kernel_info(&ki) < 0 || kipc_sysinfo(&si) < 0) {
		int err = errno;
		if (err == ECONNREFUSED || err == ENOENT) {
			fmt::print(stderr, "kipcd: no kernel running at {}\n", sock);
			return kNoKernel;
		}
		fmt::print(stderr, "kipcd: {}: {}\n", sock, strerror(err));
		return 1;
	}
	kipc::Limits l = kipc::Limits::from_config();
	l.msg_default = si.msg_default, l.msg_max = si.msg_max;
	l.msgsize_default = si.msgsize_default, l.msgsize_max = si.msgsize_max;
	l.mbox_per_user = si.mbox_per_user, l.bytes_per_user = si.bytes_per_user;
	l.taskq_capacity = si.taskq_capacity, l.tasks_per_user = si.tasks_per_user;
	l.root_bypass = si.root_bypass;
	l.mq_msg_default = si.mq_msg_default, l.mq_msg_max = si.mq_msg_max;
	l.mq_msgsize_default = si.mq_msgsize_default;
	l.mq_msgsize_max = si.mq_msgsize_max, l.mq_queues_max = si.mq_queues_max;
	l.mq_bytes_per_user = si.mq_bytes_per_user;
	l.msgmax = si.msgmax, l.msgmnb = si.msgmnb, l.msgmni = si.msgmni;
	fmt::print("pid: {}\n", ki.pid);
	fmt::print("socket: {}\n", ki.socket);
	fmt::print("version: {}\n", ki.version);
	fmt::print("protocol: {}\n", ki.proto);
	fmt::print("abi: {}\n", ki.abi);
	fmt::print("build_id: {:016x}{}\n", ki.build_id,
		   ki.build_id == KIPC_BUILD_ID ? "" : " (not this kipcd's build)");
	fmt::print("uptime: {:.3f}s\n", double(si.uptime) / 1e9);
	fmt::print("loop: {}\n", ki.loop);
	fmt::print("ring: {} sq / {} cq entries, arena {} KiB\n", ki.sq_entries,
		   ki.cq_entries, ki.arena_size / 1024);
	fmt::print("command_line: {}\n", ki.cmdline);
	fmt::print("limits: {}\n", l.describe());
	fmt::print("tasks: {}\n", si.ntasks);
	fmt::print("mailboxes: {}\n", si.nmboxes);
	fmt::print("messages: {}\n", si.nmsg + si.npending);
	fmt::print("bytes: {}\n", si.nbytes);
	fmt::print("sent: {}\n", si.nsent);
	fmt::print("delivered: {}\n", si.ndelivered);
	fmt::print("attaches: {}\n", si.nattach);
	fmt::print("exits: {}\n", si.nexit);
	return 0;
}

/*
 * kipcd --stop: SIGTERM to the kernel serving the socket, then wait until
 * it has exited. Its pid comes from the OS (SO_PEERCRED of a connection:
 * the process that listens), its pidfd is taken while that connection is
 * still up (so the pid is the kernel's, not a reused one), and the wait
 * is on the pidfd (the kernel is not our child).
 */
int stop(const std::string &sock)
{
	sockaddr_un sa{};
	sa.sun_family = AF_UNIX;
	if (sock.size() >= sizeof sa.sun_path)
		die(2, fmt::format("socket path too long: {}", sock));
	memcpy(sa.sun_path, sock.c_str(), sock.size() + 1);
	int c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c < 0)
		die(1, fmt::format("socket: {}", strerror(errno)));
	if (connect(c, reinterpret_cast<sockaddr *>(&sa), sizeof sa) < 0) {
		int err = errno;
		if (err == ECONNREFUSED || err == ENOENT) {
			fmt::print(stderr, "kipcd: no kernel running at {}\n", sock);
			return kNoKernel;
		}
		die(1, fmt::format("{}: {}", sock, strerror(err)));
	}
	ucred uc{};
	socklen_t ul = sizeof uc;
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0 || uc.pid <= 0)
		die(1, fmt::format("{}: cannot tell the kernel's pid", sock));
	int pidfd = int(syscall(SYS_pidfd_open, uc.pid, 0));
	pollfd up = {c, POLLRDHUP, 0};
	if (pidfd < 0 || (poll(&up, 1, 0) > 0 && (up.revents & (POLLRDHUP | POLLHUP)))) {
		/* It exited under us: nothing to stop. */
		fmt::print(stderr, "kipcd: no kernel running at {}\n", sock);
		return kNoKernel;
	}
	close(c);
	if (syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, nullptr, 0) < 0)
		die(1, fmt::format("cannot stop the kernel at {} (pid {}): {}", sock,
				   uc.pid, strerror(errno)));
	pollfd pf = {pidfd, POLLIN, 0};
	for (int waited = 0;; waited++) {
		int r = poll(&pf, 1, 1000);
		if (r > 0)
			break;
		if (r < 0 && errno != EINTR)
			die(1, fmt::format("poll: {}", strerror(errno)));
		if (waited == 30)
			die(1, fmt::format("the kernel at {} (pid {}) is still running "
					   "30 s after SIGTERM", sock, uc.pid));
	}
	close(pidfd);
	return 0;
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
	std::vector<std::string> params, given;
	std::string bad_param; /* refused after parsing: --socket may follow */
	enum { Boot, Status, Stop } mode = Boot;

	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto value = [&](const char *name) -> std::string {
			std::string pre = std::string(name) + "=";
			if (a.rfind(pre, 0) == 0)
				return a.substr(pre.size());
			if (i + 1 >= argc)
				usage_error(fmt::format("option '{}' needs an argument", name));
			return argv[++i];
		};
		if (a == "--socket" || a.rfind("--socket=", 0) == 0) {
			opt.socket_path = value("--socket");
		} else if (a == "--loop" || a.rfind("--loop=", 0) == 0) {
			opt.loop = value("--loop");
		} else if (a == "--node" || a.rfind("--node=", 0) == 0) {
			net_config.node = value("--node");
		} else if (a == "--nats" || a.rfind("--nats=", 0) == 0) {
			net_config.url = value("--nats");
		} else if (a == "--nats-creds" || a.rfind("--nats-creds=", 0) == 0) {
			net_config.creds = value("--nats-creds");
		} else if (a == "--foreground" || a == "-f") {
			opt.foreground = true;
		} else if (a == "--quiet" || a == "-q") {
			quiet = true;
		} else if (a == "--help" || a == "-h") {
			usage(stdout);
			return 0;
		} else if (a == "--status") {
			mode = Status;
		} else if (a == "--stop") {
			mode = Stop;
		} else if (a == "--version") {
			fmt::print("kipcd {} (protocol {}, abi {}, build {:016x})\n",
				   KIPC_VERSION, KIPC_PROTO_VERSION, KIPC_ABI_VERSION,
				   KIPC_BUILD_ID);
			return 0;
		} else if (a.find('=') != std::string::npos && a[0] != '-') {
			size_t eq = a.find('=');
			int nerr = net_config.set(a.substr(0, eq), a.substr(eq + 1));
			if (nerr != -ENOENT) {
				if (nerr && bad_param.empty())
					bad_param = fmt::format("bad value in '{}': {}", a,
								strerror(-nerr));
				params.push_back(a);
				continue;
			}
			int err = limits.set(std::string_view(a).substr(0, eq),
					     std::string_view(a).substr(eq + 1));
			if (err == -ENOENT && bad_param.empty())
				bad_param = fmt::format("unknown boot parameter '{}'",
							a.substr(0, eq));
			else if (err && bad_param.empty())
				bad_param = fmt::format("bad value in '{}': {}", a,
							strerror(-err));
			params.push_back(a);
			given.push_back(a.substr(0, eq));
		} else if (a[0] == '-') {
			usage_error(fmt::format("unrecognized option '{}'", a));
		} else {
			usage_error(fmt::format("unexpected argument '{}' (boot parameters "
						"are name=value)", a));
		}
	}
	if (mode != Boot && !params.empty())
		usage_error("--status and --stop take no boot parameters");
	if (mode == Status)
		return status(opt.socket_path);
	if (mode == Stop)
		return stop(opt.socket_path);
	if (!bad_param.empty())
		refuse(opt.socket_path, bad_param);
	/* A default not given follows its hard limit down (msg_max=4). */
	std::string lowered = limits.fit_defaults(given);
	if (std::string c = limits.conflict(); !c.empty())
		refuse(opt.socket_path,
		       fmt::format("inconsistent boot parameters: {} (msg_default and "
				   "taskq_capacity must not exceed msg_max, "
				   "msgsize_default not msgsize_max)", c));
#ifndef CONFIG_NET
	if (!net_config.node.empty())
		refuse(opt.socket_path, "--node: kipcd was built without CONFIG_NET");
#endif
	if (std::string why = net_config.check(); !why.empty())
		refuse(opt.socket_path, "net: " + why);
	if (opt.loop != "auto" && opt.loop != "io_uring" && opt.loop != "epoll")
		refuse(opt.socket_path,
		       fmt::format("unknown loop '{}' (auto, io_uring, epoll)", opt.loop));

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
	/* booting: no refusal */
	unlinkat(sockdir.dirfd, (sockdir.name + ".refused").c_str(), 0);
	/* Three descriptors per attached process: take what we may. */
	if (rlimit rl; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	std::string why;
	std::unique_ptr<Loop> loop = make_loop(opt.loop, &why);
	if (!loop)
		die(1, fmt::format("event loop {}: {}", opt.loop, why));

	boot_info = {};
	snprintf(boot_info.version, sizeof boot_info.version, "%s", KIPC_VERSION);
	boot_info.build_id = KIPC_BUILD_ID;
	boot_info.pid = getpid();
	boot_info.proto = KIPC_PROTO_VERSION;
	boot_info.abi = KIPC_ABI_VERSION;
	boot_info.sq_entries = CONFIG_RING_ENTRIES;
	boot_info.cq_entries = 2 * CONFIG_RING_ENTRIES;
	boot_info.arena_size = CONFIG_ARENA_SIZE;
	snprintf(boot_info.loop, sizeof boot_info.loop, "%s", loop->name());
	snprintf(boot_info.socket, sizeof boot_info.socket, "%s", opt.socket_path.c_str());
	for (auto &p : params)
		if (strlen(boot_info.cmdline) + p.size() + 2 < sizeof boot_info.cmdline)
			snprintf(boot_info.cmdline + strlen(boot_info.cmdline),
				 sizeof boot_info.cmdline - strlen(boot_info.cmdline),
				 "%s%s", boot_info.cmdline[0] ? " " : "", p.c_str());

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
		if (!lowered.empty())
			klog("kipc: defaults lowered to their hard limits: " + lowered);
		klog("kipc: limits: " + limits.describe());
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

	block_shutdown_signals(); /* watch_socket may raise SIGTERM */
	watch_socket(*loop); /* open until we exit; before anyone is told we are ready */

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
