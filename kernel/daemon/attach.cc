// SPDX-License-Identifier: MIT
/*
 * kipcd: accepting connections, the attach handshake, building a
 * process's region and task, and detaching it (transport.md sections 2
 * and 8; the shared-memory rules are in server.h).
 */
#include "delegate.h"
#include "server.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <fmt/core.h>

namespace kipcd {

namespace {

/* Connections of one uid that have not sent their hello (each may take
 * hello_timeout_ms to send it). */
constexpr uint32_t kHellosPerUid = 64;

/* The peer's supplementary groups as of its connect() (SO_PEERGROUPS). */
std::vector<gid_t> peer_groups(int fd)
{
	std::vector<gid_t> g(64);
	for (;;) {
		socklen_t len = socklen_t(g.size() * sizeof(gid_t));
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g.data(), &len) == 0) {
			g.resize(len / sizeof(gid_t));
			return g;
		}
		if (errno != ERANGE || len / sizeof(gid_t) <= g.size())
			return {};
		g.resize(len / sizeof(gid_t));
	}
}

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

int64_t boottime_ns()
{
	timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

/* Start time of pid (/proc/pid/stat field 22) in CLOCK_BOOTTIME ns, or -1. */
int64_t start_time_ns(pid_t pid)
{
	unsigned long long ticks;
	if (!proc_stat_field(pid, 22, &ticks))
		return -1;
	return int64_t(ticks) * (1000000000 / sysconf(_SC_CLK_TCK));
}

/*
 * A pidfd for the process at the other end of an attach connection, or
 * -errno. SO_PEERPIDFD (Linux 6.5) names the very process that connected,
 * whatever became of its pid number since; a process that exited or was
 * reaped is refused (-ESRCH). Without it: pidfd_open() of the
 * SO_PEERCRED pid, which may by now name another process that got the
 * recycled number, so that process must have started no later than the
 * connection was accepted (accepted_boot_ns) and still be alive after we
 * read its start time (then the start time was its own). A number is
 * only recycled after the connecting process is reaped, so a process
 * that was already alive when it connected and is alive now is it,
 * except in the window between connect and accept; transport.md says so.
 */
int peer_pidfd(int conn, pid_t pid, int64_t accepted_boot_ns)
{
	int fd = -1;
	socklen_t len = sizeof fd;
	if (getsockopt(conn, SOL_SOCKET, SO_PEERPIDFD, &fd, &len) < 0) {
		if (errno != ENOPROTOOPT && errno != EOPNOTSUPP)
			return errno == EINVAL ? -ESRCH : -errno; /* reaped (6.5-6.15) */
		fd = pidfd_open(pid);
		if (fd < 0)
			return errno == ESRCH ? -ESRCH : -errno;
		int64_t start = start_time_ns(pid);
		if (start < 0 || start > accepted_boot_ns) {
			close(fd);
			return -ESRCH;
		}
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (pidfd_exited(fd)) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}

/*
 * The process's region: a memfd sealed against resizing, mapped here,
 * with the read-only header filled in from kLayout. *memfd is set as
 * soon as it exists, so the caller closes it on any failure.
 */
int map_region(Proc &p, int *memfd)
{
	int fd = memfd_create(fmt::format("kipc:{}", p.creds.pid).c_str(),
			      MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	*memfd = fd;
	if (ftruncate(fd, static_cast<off_t>(kLayout.map_size)) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return -errno;
	p.map = mmap(nullptr, kLayout.map_size, PROT_READ | PROT_WRITE,
		     MAP_SHARED, fd, 0);
	if (p.map == MAP_FAILED)
		return -errno;
	auto *base = static_cast<uint8_t *>(p.map);
	p.ctl = reinterpret_cast<kipc_ring_ctl *>(base);
	p.sq = reinterpret_cast<kipc_sqe *>(base + kLayout.sq_off);
	p.cq = reinterpret_cast<kipc_cqe *>(base + kLayout.cq_off);
	p.mm = std::make_unique<ArenaMemory>(base + kLayout.arena_off,
					     kLayout.arena_size);

	kipc_ring_ctl *c = p.ctl;
	c->magic = KIPC_MAGIC;
	c->version = KIPC_PROTO_VERSION;
	kLayout.publish(*c);
	p.set_sq_flags(KIPC_SQ_NEED_WAKEUP);
	return 0;
}

/* The doorbell, and the completion eventfd when the process asked for it. */
int make_eventfds(Proc &p, uint32_t feat)
{
	p.doorbell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p.doorbell < 0)
		return -errno;
	if (feat & KIPC_FEAT_NOTIFY_FD) {
		p.notify = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (p.notify < 0)
			return -errno;
	}
	return 0;
}

/*
 * Does pid read the CLOCK_MONOTONIC we read (the same time namespace)?
 * Several credit holders' sends are ordered by the times they read
 * (credit.cc). Not known: no.
 */
bool same_clock(pid_t pid)
{
	struct stat self, peer;
	if (stat("/proc/self/ns/time", &self) < 0 ||
	    stat(fmt::format("/proc/{}/ns/time", pid).c_str(), &peer) < 0)
		return false;
	return self.st_dev == peer.st_dev && self.st_ino == peer.st_ino;
}

} // namespace

/* ---------------------------------------------------------------- */
/* Attach                                                             */

/*
 * Accept what the backlog holds. Out of descriptors (EMFILE, ENFILE),
 * the connection at the head of the backlog is accepted on the reserve
 * descriptor and refused with -EMFILE, so that client learns at once,
 * and the listener rests (10 ms, doubling up to 1 s, until an accept
 * succeeds again): no spinning on a level-triggered listener, no
 * multishot poll that never fires again once the backlog is full.
 */
void Server::on_accept()
{
	for (;;) {
		int fd = accept4(lfd_, nullptr, nullptr,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				int err = errno;
				shed_one();
				accept_backoff_ns_ = std::clamp<int64_t>(accept_backoff_ns_ * 2,
									 10000000, 1000000000);
				accept_retry_ns_ = clock_.monotonic_ns() + accept_backoff_ns_;
				if (w_lst_ > 0) {
					loop_.del(w_lst_);
					w_lst_ = 0;
					klog(fmt::format("kipc: accept: {}: not accepting for {} ms",
							 strerror(err), accept_backoff_ns_ / 1000000));
				}
				return;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				klog(fmt::format("kipc: accept: {}", strerror(errno)));
			return;
		}
		accept_backoff_ns_ = 0;
		ucred uc{};
		socklen_t ul = sizeof uc;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0) {
			close(fd);
			continue;
		}
		uint32_t &n = hellos_per_uid_[uc.uid];
		if (n >= kHellosPerUid) {
			/* Too many of this user's connections are silent. */
			kipc_attach_resp resp{};
			resp.magic = KIPC_MAGIC;
			resp.error = -EAGAIN;
			reply(fd, resp, nullptr, 0);
			close(fd);
			continue;
		}
		n++;
		uint64_t serial = ++hello_serial_;
		hello_[fd] = Hello{0, uc.uid, serial, boottime_ns()};
		on_hello(fd); /* usually the hello is there already */
	}
}

/* Accept one connection on the reserve descriptor and refuse it. */
void Server::shed_one()
{
	if (reserve_fd_ < 0)
		return;
	close(reserve_fd_);
	reserve_fd_ = -1;
	int fd = accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		kipc_attach_resp resp{};
		resp.magic = KIPC_MAGIC;
		resp.error = -EMFILE;
		reply(fd, resp, nullptr, 0);
		close(fd);
	}
	reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* The hello's connection is done with, one way or the other. */
void Server::forget_hello(int fd)
{
	auto it = hello_.find(fd);
	if (it == hello_.end())
		return;
	if (it->second.watch > 0)
		loop_.del(it->second.watch);
	auto n = hellos_per_uid_.find(it->second.uid);
	if (n != hellos_per_uid_.end() && --n->second == 0)
		hellos_per_uid_.erase(n);
	hello_.erase(it);
}

void Server::watch_hello(int fd)
{
	auto it = hello_.find(fd);
	int64_t w = loop_.add(fd, POLLIN | POLLRDHUP,
			      [this, fd](uint32_t) { on_hello(fd); });
	if (w < 0) {
		forget_hello(fd);
		close(fd);
		return;
	}
	it->second.watch = w;
	/* Only silent connections get a deadline: at most kHellosPerUid
	 * per uid are on the list. */
	hello_deadlines_.push_back({clock_.monotonic_ns() + hello_timeout_ns_, fd,
				    it->second.serial});
}

/* Deadlines of unfinished hellos and the listener's rest. */
int64_t Server::daemon_deadline() const
{
	int64_t d = INT64_MAX;
	if (!hello_deadlines_.empty())
		d = hello_deadlines_.front().at;
	if (accept_retry_ns_)
		d = std::min(d, accept_retry_ns_);
	return std::min({d, credit_deadline(), push_deadline()});
}

void Server::run_daemon_timers()
{
	int64_t now = clock_.monotonic_ns();
	credit_timers();
	push_timers();
	while (!hello_deadlines_.empty() && hello_deadlines_.front().at <= now) {
		HelloDeadline h = hello_deadlines_.front();
		hello_deadlines_.pop_front();
		auto it = hello_.find(h.fd);
		if (it == hello_.end() || it->second.serial != h.serial)
			continue; /* answered long ago; the fd may be another's now */
		kipc_attach_resp resp{};
		resp.magic = KIPC_MAGIC;
		resp.error = -ETIMEDOUT;
		reply(h.fd, resp, nullptr, 0);
		forget_hello(h.fd);
		close(h.fd);
	}
	/* Drop the front entries of hellos answered already. */
	while (!hello_deadlines_.empty()) {
		auto it = hello_.find(hello_deadlines_.front().fd);
		if (it != hello_.end() && it->second.serial == hello_deadlines_.front().serial)
			break;
		hello_deadlines_.pop_front();
	}
	if (accept_retry_ns_ && accept_retry_ns_ <= now) {
		accept_retry_ns_ = 0;
		if (!w_lst_) {
			int64_t w = loop_.add(lfd_, POLLIN, [this](uint32_t) { on_accept(); });
			if (w > 0)
				w_lst_ = w;
			else
				accept_retry_ns_ = now + 1000000000;
		}
		if (w_lst_)
			on_accept();
	}
}

void Server::reply(int fd, const kipc_attach_resp &resp, const int *fds,
		   int nfds)
{
	iovec iov{const_cast<kipc_attach_resp *>(&resp), sizeof resp};
	msghdr mh{};
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	alignas(cmsghdr) char cbuf[CMSG_SPACE(3 * sizeof(int))];
	if (nfds) {
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	if (sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && verbose_)
		klog(fmt::format("kipc: attach reply: {}", strerror(errno)));
}

void Server::on_hello(int fd)
{
	auto it = hello_.find(fd);
	if (it == hello_.end())
		return;
	int64_t accepted_boot_ns = it->second.accepted_boot_ns;

	/* MSG_TRUNC: n is the datagram's real length, so a hello that is
	 * longer than the request (33 bytes, 200,000 bytes) is refused. */
	alignas(kipc_attach_req) char buf[sizeof(kipc_attach_req)];
	HelloFds hfds; /* a supervisor's proof (delegate.cc) */
	ssize_t n = recv_hello(fd, buf, sizeof buf, &hfds);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		/* Not there yet: wait for it (or its deadline). */
		if (!it->second.watch)
			watch_hello(fd);
		return;
	}
	forget_hello(fd);
	kipc_attach_resp resp{};
	resp.magic = KIPC_MAGIC;
	kipc_attach_req req{};
	uint32_t feat = 0;
	int err = parse_hello(buf, n, &req, &feat);
	if (err == -EPROTO) {
		if (n > 0) {
			resp.error = -EPROTO;
			reply(fd, resp, nullptr, 0);
		}
		close(fd);
		return;
	}
	int memfd = -1;
	if (!err)
		err = attach(fd, accepted_boot_ns, feat, &hfds, &resp, &memfd);
	resp.error = err;
	if (err) {
		reply(fd, resp, nullptr, 0);
		close(fd);
		return;
	}
	/* attach() made fd the connection of a Proc; send its descriptors. */
	Proc *p = procs_.at(resp.pid).get();
	int fds[3] = {memfd, p->doorbell, p->notify};
	reply(fd, resp, fds, p->notify >= 0 ? 3 : 2);
	close(memfd); /* our mapping keeps the memory */
}

/*
 * Build a process's region and task. On success fd belongs to the new
 * Proc, *memfd is the region to pass on, and resp is filled; on failure
 * returns -errno and fd is still the caller's.
 */
int Server::attach(int fd, int64_t accepted_boot_ns, uint32_t feat, HelloFds *hfds,
		   kipc_attach_resp *resp, int *memfd_out)
{
	ucred uc{};
	socklen_t ul = sizeof uc;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0)
		return -errno;
	if (uc.pid <= 0)
		return -ESRCH;
	int pidfd;
	kipc::Creds dc; /* a delegated task's credentials: its process's own */
	if (feat & KIPC_FEAT_DELEGATE) {
		/* A supervisor attaches for a process it proves it may act
		 * for (delegate.cc): the task is that process's. */
		int err = delegated_process(hfds, &uc.pid, &pidfd);
		if (err)
			return err;
		fcntl(pidfd, F_SETFD, FD_CLOEXEC);
		if (!read_status(uc.pid, &dc) || pidfd_exited(pidfd)) {
			close(pidfd);
			return -ESRCH;
		}
		uc.uid = dc.uid;
		uc.gid = dc.gid;
	} else {
		/* The task is bound to the process that connected, not to its
		 * number: a process that is gone (it may have handed the
		 * socket on) does not attach. */
		pidfd = peer_pidfd(fd, uc.pid, accepted_boot_ns);
	}
	if (pidfd < 0)
		return pidfd;
	if (auto it = procs_.find(uc.pid); it != procs_.end()) {
		/* The same process re-attaching (after kipc_detach, or after
		 * we flagged it DEAD) may beat the old connection's hang-up
		 * in this batch of events, and the process that had this pid
		 * may have exited a moment ago: look at both now. */
		pollfd pfd{it->second->conn, POLLRDHUP, 0};
		bool hung_up = poll(&pfd, 1, 0) > 0 &&
			       (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
		bool exited = pidfd_exited(it->second->pidfd);
		if (!hung_up && !exited) {
			close(pidfd);
			return -EEXIST;
		}
		detach(it->second.get(), exited ? "process exited" : "connection closed");
	}
	if (auto w = pidwatch_.find(uc.pid); w != pidwatch_.end() && pidfd_exited(w->second.fd)) {
		/* Messages waiting for the pid's previous process are not ours. */
		loop_.del(w->second.watch);
		close(w->second.fd);
		pidwatch_.erase(w);
		credit_exit(nullptr);
		kernel_.process_exited(uc.pid);
	}

	auto p = std::make_unique<Proc>(*this);
	p->pidfd = pidfd;
	p->creds.pid = uc.pid;
	p->creds.uid = uc.uid;
	p->creds.gid = uc.gid;
	p->creds.groups = feat & KIPC_FEAT_DELEGATE ? dc.groups : peer_groups(fd);
	{
		std::ifstream f(fmt::format("/proc/{}/comm", uc.pid));
		std::getline(f, p->comm);
	}
	/* the parent, for tracers that follow children */
	if (unsigned long long ppid; proc_stat_field(uc.pid, 4, &ppid))
		p->creds.ppid = pid_t(ppid);

	/* One exit for every failure below: ~Proc releases what p holds
	 * (mapping, eventfds, pidfd); the memfd is ours until it is sent. */
	int memfd = -1;
	int err = map_region(*p, &memfd);
	if (!err)
		err = make_eventfds(*p, feat);
	kipc::Task *task = nullptr;
	if (!err)
		err = kernel_.attach(p->creds, p->mm.get(), p->comm, p.get(), &task);
	if (!err) {
		p->task = task;
		err = watch(p.get(), fd);
	}
	/* send credits: not for a delegated task (its region is not its own memory) */
	p->credit_ok = (feat & KIPC_FEAT_CREDIT) && !(feat & KIPC_FEAT_DELEGATE);
	p->credit = reinterpret_cast<kipc_credit *>(static_cast<char *>(p->map) + KIPC_CREDIT_OFF);
	p->credit_clock = p->credit_ok && same_clock(p->creds.pid);
	p->cq_lap = feat & KIPC_FEAT_CQ_LAP;
	p->push_ok = (feat & KIPC_FEAT_PUSH) && !(feat & KIPC_FEAT_DELEGATE);
	p->push = reinterpret_cast<kipc_push *>(static_cast<char *>(p->map) + KIPC_PUSH_OFF);
	p->push_slots = reinterpret_cast<kipc_push_slot *>(static_cast<char *>(p->map) +
							   KIPC_PUSH_SLOT_OFF);
	if (err) {
		if (memfd >= 0)
			close(memfd);
		return err;
	}

	resp->version = KIPC_PROTO_VERSION;
	resp->features = feat | KIPC_FEAT_CQ_NODROP;
	kLayout.publish(*resp);
	resp->map_size = kLayout.map_size;
	resp->pid = uc.pid;
	resp->uid = uc.uid;
	resp->gid = uc.gid;
	resp->max_inflight = kMaxInflight;
	resp->build_id = boot_info.build_id;
	*memfd_out = memfd;
	if (verbose_)
		klog(fmt::format("kipc: attach pid {} ({}) uid {} gid {}",
				 uc.pid, p->comm, uc.uid, uc.gid));
	procs_[uc.pid] = std::move(p);
	return 0;
}

/*
 * Watch the new process's doorbell, connection and pidfd; fd becomes
 * its connection. On failure its task is gone again, nothing is
 * watched, and fd is still the caller's.
 */
int Server::watch(Proc *p, int fd)
{
	p->bell_watch = loop_.add(p->doorbell, POLLIN, [this, p](uint32_t) {
		uint64_t v;
		if (read(p->doorbell, &v, sizeof v) < 0) { /* EAGAIN */ }
		p->st.bell++;
		drain(p, true);
		/* The ring may also mean "I reaped, refill my CQ". */
		if (!p->dead)
			mark_dirty(p);
	});
	p->conn_watch = loop_.add(fd, POLLIN | POLLRDHUP, [this, p](uint32_t ev) {
		char buf[64];
		if (!(ev & (POLLRDHUP | POLLHUP | POLLERR))) {
			/* Nothing is expected after attach: eat it. */
			ssize_t n = recv(p->conn, buf, sizeof buf, MSG_DONTWAIT);
			if (n > 0 || (n < 0 && errno == EAGAIN))
				return;
		}
		detach(p, "connection closed");
	});
	/* Its exit ends the task, whoever holds the connection now. */
	p->pid_watch = loop_.add(p->pidfd, POLLIN, [this, p](uint32_t) {
		detach(p, "process exited");
	});
	if (p->bell_watch > 0 && p->conn_watch > 0 && p->pid_watch > 0) {
		p->conn = fd;
		return 0;
	}
	p->dead = true;
	kernel_.exit(p->task);
	for (int64_t w : {p->bell_watch, p->conn_watch, p->pid_watch})
		if (w > 0)
			loop_.del(w);
	return -ENOMEM;
}

/*
 * The process is gone (or misbehaved): destroy its task. Its parked
 * requests, mailboxes and messages go with it; the core wakes whoever
 * waited on it. Completions the core still sends to this task are
 * dropped (dead). The Proc is freed at the end of the round.
 */
void Server::detach(Proc *p, const char *why)
{
	if (p->dead)
		return;
	credit_exit(p); /* its published credit sends first (credit.cc) */
	p->dead = true;
	if (verbose_) {
		klog(fmt::format("kipc: exit pid {} ({}): {}", p->creds.pid,
				 p->comm, why));
		fast_stats(p);
	}
	/* Tell a process that is still there (garbage writer). */
	std::atomic_ref<uint32_t>(p->ctl->sq_flags)
		.fetch_or(KIPC_SQ_DEAD, std::memory_order_seq_cst);
	std::atomic_ref<uint32_t>(p->ctl->wake_seq)
		.fetch_add(1, std::memory_order_seq_cst);
	futex_wake(&p->ctl->wake_seq);
	std::erase(runnable_, p);
	std::erase(active_, p);
	if (net_)
		net_->task_exit(p);
	kernel_.exit(p->task);
	loop_.del(p->bell_watch);
	loop_.del(p->conn_watch);
	loop_.del(p->pid_watch);
	auto it = procs_.find(p->creds.pid);
	if (it != procs_.end()) {
		graveyard_.push_back(std::move(it->second));
		procs_.erase(it);
	}
}

} // namespace kipcd
