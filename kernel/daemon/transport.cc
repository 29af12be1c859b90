// SPDX-License-Identifier: MIT
/*
 * kipcd transport: the server's host interface to the core (process
 * lookups, pid watches, POSIX queue hooks), its loop round and shutdown.
 * Attach and detach are in attach.cc, the rings in ring.cc; server.h has
 * the shared state and the rules for shared memory.
 */
#include "server.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sched.h>
#include <sstream>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>

#include <fmt/core.h>

namespace kipcd {

Server::~Server()
{
	for (auto &[pid, w] : pidwatch_) {
		loop_.del(w.watch);
		close(w.fd);
	}
	for (auto &[fd, h] : hello_) {
		loop_.del(h.watch);
		close(fd);
	}
	close_fds({reserve_fd_, alive_pidfd_, sigfd_, timerfd_});
}

/* ---------------------------------------------------------------- */
/* Host                                                               */

/*
 * The pidfd is opened first and checked after /proc was read: the
 * process it names held the pid the whole time, so what we read was its
 * own. watch_process(pid), which the core calls next, keeps that pidfd.
 */
bool Server::process_alive(pid_t pid, kipc::Creds *creds)
{
	if (pid <= 0)
		return false;
	int pidfd = pidfd_open(pid);
	if (pidfd < 0)
		return false;
	fcntl(pidfd, F_SETFD, FD_CLOEXEC);
	bool ok = read_status(pid, creds) && !pidfd_exited(pidfd);
	if (alive_pidfd_ >= 0)
		close(alive_pidfd_);
	alive_pid_ = ok ? pid : 0;
	alive_pidfd_ = ok ? pidfd : -1;
	if (!ok)
		close(pidfd);
	return ok;
}

/*
 * Numeric field n (from 4: after the state) of /proc/pid/stat. The
 * comm before them may hold spaces and parentheses: count from the last
 * ')'.
 */
bool proc_stat_field(pid_t pid, int n, unsigned long long *v)
{
	std::ifstream f(fmt::format("/proc/{}/stat", pid));
	std::string line;
	if (n < 4 || !std::getline(f, line))
		return false;
	size_t rp = line.rfind(')');
	if (rp == std::string::npos)
		return false;
	const char *q = line.c_str() + rp + 1;
	for (int field = 3; field < n; field++) {
		q = strchr(q + 1, ' ');
		if (!q)
			return false;
	}
	return sscanf(q, " %llu", v) == 1;
}

/*
 * Alive: its credentials, and neither a zombie nor on its way out. A
 * process sets PF_EXITING (its stat flags, field 9) before it closes its
 * files, so once its connection's close has made its sends fail ESRCH
 * (its detach), a later send cannot find it alive again and queue for
 * it in the moment before its pidfd says it exited.
 */
bool Server::read_status(pid_t pid, kipc::Creds *creds)
{
	constexpr unsigned long long kPfExiting = 0x4; /* include/linux/sched.h */
	if (unsigned long long flags; !proc_stat_field(pid, 9, &flags) || (flags & kPfExiting))
		return false;
	std::ifstream f(fmt::format("/proc/{}/status", pid));
	if (!f)
		return false;
	std::string line;
	bool have_uid = false, have_gid = false;
	kipc::Creds c;
	c.pid = pid;
	while (std::getline(f, line)) {
		unsigned long r, e;
		if (line.rfind("State:", 0) == 0) {
			if (line.find('Z') != std::string::npos ||
			    line.find("X (dead)") != std::string::npos)
				return false; /* a zombie is not alive */
		} else if (sscanf(line.c_str(), "Uid: %lu %lu", &r, &e) == 2) {
			c.uid = static_cast<uid_t>(e);
			have_uid = true;
		} else if (sscanf(line.c_str(), "Gid: %lu %lu", &r, &e) == 2) {
			c.gid = static_cast<gid_t>(e);
			have_gid = true;
		} else if (line.rfind("Groups:", 0) == 0) {
			std::istringstream in(line.substr(7));
			unsigned long g;
			while (in >> g)
				c.groups.push_back(static_cast<gid_t>(g));
		}
	}
	if (!have_uid || !have_gid)
		return false;
	if (creds)
		*creds = c;
	return true;
}

void Server::watch_process(pid_t pid)
{
	if (pidwatch_.count(pid))
		return;
	int fd;
	if (pid == alive_pid_ && alive_pidfd_ >= 0) {
		fd = alive_pidfd_; /* the process process_alive() looked at */
		alive_pidfd_ = -1;
		alive_pid_ = 0;
	} else {
		fd = pidfd_open(pid);
	}
	if (fd < 0) {
		/* Gone already (or no pidfd): tell the core after this call. */
		exited_.push_back(pid);
		return;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	int64_t w = loop_.add(fd, POLLIN, [this, pid](uint32_t) {
		if (!drop_watch(pid))
			return;
		credit_exit(nullptr);
		kernel_.process_exited(pid);
	});
	if (w < 0) {
		close(fd);
		exited_.push_back(pid);
		return;
	}
	pidwatch_[pid] = PidWatch{fd, w};
}

void Server::unwatch_process(pid_t pid)
{
	drop_watch(pid);
}

bool Server::drop_watch(pid_t pid)
{
	auto it = pidwatch_.find(pid);
	if (it == pidwatch_.end())
		return false;
	loop_.del(it->second.watch);
	close(it->second.fd);
	pidwatch_.erase(it);
	return true;
}

/*
 * Capabilities and rlimits are read from /proc by pid: only for an attached task
 * whose process is alive before and after the read, so the pid was its
 * own while we read.
 */
template <typename Read> bool Server::read_proc(pid_t pid, Read read)
{
	auto it = procs_.find(pid);
	if (it == procs_.end() || it->second->dead || pidfd_exited(it->second->pidfd))
		return false;
	bool ok = read();
	return ok && !pidfd_exited(it->second->pidfd);
}

bool Server::capable(pid_t pid, int cap)
{
	return read_proc(pid, [&] { return MqFs::capable(pid, cap); });
}

bool Server::mq_rlimit(pid_t pid, uint64_t *bytes)
{
	return read_proc(pid, [&] { return MqFs::rlimit(pid, bytes); });
}

/*
 * SIGEV_SIGNAL, as __do_notify(): si_code SI_MESGQ, the sender's pid
 * and uid, sent through the task's pidfd, never kill(pid): once its
 * process has exited the signal goes nowhere (ESRCH), even if the pid
 * number already names another process. pidfd_send_signal() applies
 * kill(2)'s permission rules, which kipcd meets for its own user's
 * processes, and like rt_sigqueueinfo() takes a negative si_code.
 */
void Server::mq_signal(pid_t pid, int signo, int64_t value, pid_t from, uid_t uid)
{
	auto it = procs_.find(pid);
	if (it == procs_.end() || it->second->dead)
		return;
	siginfo_t si;
	std::memset(&si, 0, sizeof si);
	si.si_signo = signo;
	si.si_code = SI_MESGQ;
	si.si_value.sival_ptr = reinterpret_cast<void *>(value);
	si.si_pid = from;
	si.si_uid = uid;
	if (syscall(SYS_pidfd_send_signal, it->second->pidfd, signo, &si, 0) < 0 &&
	    errno != ESRCH)
		klog(fmt::format("kipc: mqueue: signal {} to {}: {}", signo, pid,
				 strerror(errno)));
}

void Server::end_of_round()
{
	/* process_exited() calls deferred from inside the core. */
	while (!exited_.empty()) {
		std::vector<pid_t> v;
		v.swap(exited_);
		for (pid_t pid : v) {
			credit_exit(nullptr);
			kernel_.process_exited(pid);
		}
	}
	push_round(); /* push.cc */
	/* Flushing may drain stalled SQs, which may dirty others. */
	for (size_t i = 0; i < dirty_.size(); i++)
		flush(dirty_[i]);
	dirty_.clear();
	if (net_)
		net_->flush(); /* what this round sent to other nodes: one hand-off */
	graveyard_.clear();
	arm_timer();
}

/*
 * What the fast paths did (--verbose): for p at its exit, since boot
 * for nullptr (at shutdown). Documentation/performance.md, "fast-sync".
 */
void Server::fast_stats(const Proc *p)
{
	if (p) {
		klog(fmt::format("kipc: pid {} took {} credit sends, {} sends and {} receives "
				 "({} parked) through kipcd, {} pushed receives; {} doorbells, {} wakes",
				 p->creds.pid, p->st.credit, p->st.send, p->st.recv, p->st.parked,
				 p->st.pushed, p->st.bell, p->st.woken));
		return;
	}
	klog(fmt::format("kipc: {} rounds ({} idle), {} timer arms; credits: {} grants, {} top-ups, "
			 "{} revocations ({} exits, {} for room, {} idle); push: {} grants, "
			 "{} messages pushed, {} recalls ({} exits, {} moved heads, {} idle), "
			 "{} steals",
			 st_.rounds, st_.idle, st_.timer_arms, st_.grants, st_.topups, st_.revokes,
			 st_.revoke_exit, st_.revoke_room, st_.revoke_idle, st_.push_grants,
			 st_.push_fills, st_.push_recalls, st_.recall_exit, st_.recall_head,
			 st_.recall_idle, st_.push_steals));
}

/*
 * The timer is armed for the earliest deadline, and only moved earlier:
 * a deadline that moves later (an idle return put off by every credit
 * send or claim, a timed wait that completed) leaves it, to fire early
 * once, find nothing due and be armed again. So a busy link costs no
 * timerfd_settime() per round.
 */
void Server::arm_timer()
{
	int64_t d = std::min(kernel_.next_deadline(), daemon_deadline());
	if (d >= timer_armed_)
		return;
	if (d <= 0)
		d = 1;
	itimerspec its{};
	its.it_value.tv_sec = d / 1000000000;
	its.it_value.tv_nsec = d % 1000000000;
	timerfd_settime(timerfd_, TFD_TIMER_ABSTIME, &its, nullptr);
	timer_armed_ = d;
	st_.timer_arms++;
}

/*
 * Clean shutdown: publish what completed, then flag every process DEAD
 * and wake it, so its blocked calls return ECONNRESET; then destroy the
 * tasks.
 */
void Server::shutdown()
{
	end_of_round();
	std::vector<Proc *> all;
	for (auto &[pid, p] : procs_)
		all.push_back(p.get());
	for (Proc *p : all) {
		if (p->notify >= 0) {
			uint64_t one = 1;
			if (write(p->notify, &one, sizeof one) < 0) { }
		}
		detach(p, "kernel shutdown");
	}
	end_of_round();
}

sigset_t block_shutdown_signals()
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, nullptr);
	return set;
}

int Server::run()
{
	/* POSIX queue descriptors live next to the socket: <socket>.mq/ */
	sockaddr_un sa{};
	socklen_t salen = sizeof sa;
	if (getsockname(lfd_, reinterpret_cast<sockaddr *>(&sa), &salen) == 0 && sa.sun_path[0])
		mqfs_.init(std::string(sa.sun_path) + ".mq");
	sigset_t set = block_shutdown_signals();
	signal(SIGPIPE, SIG_IGN);
	sigfd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	timerfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (sigfd_ < 0 || timerfd_ < 0) {
		klog(fmt::format("kipc: signalfd/timerfd: {}", strerror(errno)));
		return 1;
	}
	int64_t w_sig = loop_.add(sigfd_, POLLIN, [this](uint32_t) {
		signalfd_siginfo si;
		while (read(sigfd_, &si, sizeof si) == sizeof si) {
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
				klog(fmt::format("kipc: {}: shutting down",
						 strsignal(si.ssi_signo)));
				stop_ = true;
			}
		}
	});
	int64_t w_tmr = loop_.add(timerfd_, POLLIN, [this](uint32_t) {
		uint64_t v;
		if (read(timerfd_, &v, sizeof v) < 0) { }
		timer_armed_ = INT64_MAX; /* fired: nothing armed */
		credit_run(); /* timeouts see the credit sends that returned */
		push_sync();           /* ... and the pushed receives */
		kernel_.run_timers();
		run_daemon_timers();
	});
	if (!net_config.node.empty()) {
		std::string err;
		net_ = Net::create(net_config, loop_, kernel_, *this, &err);
		if (!net_) {
			klog(fmt::format("kipc: net: {}", err));
			return 1;
		}
		/* Its remote callers' requests see the pushed receives as any
		 * other request does (push.cc). */
		net_->set_before_core([this](kipc::Task *task, const kipc_sqe *sqe) {
			credit_before_net(task, sqe); /* credit.cc */
			push_before_net(sqe);
		});
		klog(fmt::format("kipc: net: node {} on {}", net_config.node, net_config.url));
	}
	reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
	w_lst_ = loop_.add(lfd_, POLLIN, [this](uint32_t) { on_accept(); });
	if (w_sig < 0 || w_tmr < 0 || w_lst_ < 0 || reserve_fd_ < 0) {
		klog("kipc: cannot watch the listening socket");
		return 1;
	}

	/*
	 * After a round that consumed SQEs the kernel stays awake for
	 * kIdleSpinNs, polling the active processes' SQ tails with
	 * NEED_WAKEUP clear (io_uring's SQPOLL idle time): a busy process
	 * then submits without a system call, and its answer comes back
	 * while it still spins in the library. When the spin ends every
	 * active process gets NEED_WAKEUP back with the usual re-check.
	 */
	constexpr int64_t kIdleSpinNs = 50000;
	int64_t spin_until = 0;
	while (!stop_) {
		bool spinning = spin_until != 0;
		int ret = loop_.wait(runnable_.empty() && !spinning ? -1 : 0);
		if (ret < 0) {
			klog(fmt::format("kipc: event loop: {}", strerror(-ret)));
			break;
		}
		uint64_t before = nconsumed_;
		/*
		 * The round's one clock read: deadlines can pass between
		 * timerfd reads, and the spin below is timed from here.
		 */
		int64_t now = clock_.monotonic_ns();
		if (kernel_.next_deadline() <= now) {
			credit_run();
			push_sync();
			kernel_.run_timers();
		}
		if (daemon_deadline() <= now)
			run_daemon_timers();
		std::vector<Proc *> again;
		again.swap(runnable_);
		for (Proc *p : again)
			if (!p->dead && p->runnable)
				drain(p, true);
		if (spinning)
			poll_active(false);
		end_of_round();
		st_.rounds++;
		if (spinning && nconsumed_ == before) {
			st_.idle++;
			sched_yield(); /* idle round: let the processes we poll run */
		}
		if (nconsumed_ != before || (!spinning && !active_.empty()))
			spin_until = now + kIdleSpinNs;
		else if (spinning && now >= spin_until) {
			spin_until = 0;
			poll_active(true);
			end_of_round();
		}
		mqfs_.sweep(now, spin_until == 0);
	}
	shutdown();
	if (verbose_)
		fast_stats(nullptr);
	net_.reset();
	if (w_lst_ > 0)
		loop_.del(w_lst_);
	loop_.del(w_tmr);
	loop_.del(w_sig);
	return 0;
}

int serve(int listen_fd, Loop &loop, const kipc::Limits &limits, bool verbose)
{
	auto srv = std::make_unique<Server>(listen_fd, loop, limits, verbose);
	return srv->run();
}

} // namespace kipcd
