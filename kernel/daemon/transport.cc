// SPDX-License-Identifier: MIT
/*
 * kipcd transport: attach handshake, per-process shared rings, completion
 * delivery, wakeups and death. The protocol is in <kipc/ring.h> and
 * Documentation/transport.md; this file is its kernel side.
 *
 * Rules for shared memory (everything behind Proc::ctl, sq, cq, arena):
 * the process may write any byte at any time. So:
 *  - every P-owned word is read once per use with an atomic load and
 *    range-checked before use (sq_tail, cq_head, waiters, cq_flags);
 *  - the kernel's own indices (sq_head, cq_tail) live in Proc, and the
 *    shared copies are only ever stored, never read back;
 *  - an SQE is copied to the stack before anything looks at it;
 *  - arena offsets go through ArenaMemory's overflow-safe checks;
 *  - no lock lives in shared memory, and the kernel never waits on the
 *    process: a full CQ parks completions in Proc::overflow instead.
 * The memfd is sealed against shrinking so the process cannot make our
 * mapping raise SIGBUS.
 *
 * Everything runs on the loop's one thread. Completions are written to
 * the CQ at once but published (cq_tail store, futex wake, eventfd) once
 * per loop iteration in flush(), so a batch costs one wakeup.
 */
#include "kipcd.h"
#include "mqfs.h"
#include "wire.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <ctime>
#include <deque>
#include <fcntl.h>
#include <fstream>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>

#include <fmt/core.h>
#include <kipc/ring.h>

namespace kipcd {

namespace {

constexpr uint32_t kSqEntries = CONFIG_RING_ENTRIES;
constexpr uint32_t kCqEntries = 2 * CONFIG_RING_ENTRIES;
constexpr uint64_t kArenaSize = CONFIG_ARENA_SIZE;
/* Requests a process may have consumed but not completed. */
constexpr uint32_t kMaxInflight = kSqEntries + kCqEntries;

static_assert((kSqEntries & (kSqEntries - 1)) == 0, "RING_ENTRIES: power of 2");
static_assert(kSqEntries >= 8 && kSqEntries <= 32768, "RING_ENTRIES range");
static_assert(kArenaSize >= 4096 && kArenaSize % 4096 == 0, "ARENA_SIZE");

constexpr uint64_t kSqOff = KIPC_RING_CTL_SIZE;
constexpr uint64_t kCqOff = kSqOff + uint64_t(kSqEntries) * sizeof(kipc_sqe);
constexpr uint64_t kArenaOff = (kCqOff + uint64_t(kCqEntries) * sizeof(kipc_cqe) + 4095) & ~uint64_t(4095);
constexpr uint64_t kMapSize = kArenaOff + kArenaSize;

/* Shared words: atomic access through atomic_ref (C++20). */
inline uint32_t load_acquire(uint32_t *p)
{
	return std::atomic_ref<uint32_t>(*p).load(std::memory_order_acquire);
}
inline uint32_t load_relaxed(uint32_t *p)
{
	return std::atomic_ref<uint32_t>(*p).load(std::memory_order_relaxed);
}
inline void store_release(uint32_t *p, uint32_t v)
{
	std::atomic_ref<uint32_t>(*p).store(v, std::memory_order_release);
}

int futex_wake(uint32_t *uaddr)
{
	/* Shared futex: no FUTEX_PRIVATE_FLAG, the waiter is another process. */
	return static_cast<int>(syscall(SYS_futex, uaddr, FUTEX_WAKE, INT_MAX,
					nullptr, nullptr, 0));
}

int pidfd_open(pid_t pid)
{
	return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

class RealClock final : public kipc::Clock {
public:
	int64_t monotonic_ns() const override { return now(CLOCK_MONOTONIC); }
	int64_t realtime_ns() const override { return now(CLOCK_REALTIME); }

private:
	static int64_t now(clockid_t c)
	{
		timespec ts;
		clock_gettime(c, &ts);
		return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
	}
};

class Server;

/* One attached process. */
struct Proc {
	Server &srv;
	kipc::Creds creds;
	std::string comm;
	int conn = -1;          /* the attach connection: its hang-up is death */
	int doorbell = -1;      /* eventfd the process writes */
	int notify = -1;        /* eventfd we write when it armed KIPC_CQ_EVENTFD */
	int64_t conn_watch = 0, bell_watch = 0;
	void *map = MAP_FAILED;
	kipc_ring_ctl *ctl = nullptr;
	kipc_sqe *sq = nullptr;
	kipc_cqe *cq = nullptr;
	std::unique_ptr<ArenaMemory> mm;
	kipc::Task *task = nullptr;

	uint32_t sq_head = 0;       /* ours; the shared copy is write-only */
	uint32_t cq_tail = 0;       /* written up to here */
	uint32_t cq_published = 0;  /* ... and published up to here */
	uint32_t sq_flags = 0;      /* ours; mirrored to ctl->sq_flags */
	uint32_t inflight = 0;      /* consumed SQEs without a final CQE */
	std::deque<kipc_cqe> overflow;
	bool dead = false;
	bool dirty = false;         /* on Server::dirty_ */
	bool runnable = false;      /* SQ not drained (budget): drain next round */
	bool stalled = false;       /* stopped reading the SQ: too much in flight */
	bool consumed = false;      /* took SQEs since the last flush */
	bool active = false;        /* on Server::active_: polled while we spin */

	explicit Proc(Server &s) : srv(s) {}
	~Proc()
	{
		if (map != MAP_FAILED)
			munmap(map, kMapSize);
		if (conn >= 0)
			close(conn);
		if (doorbell >= 0)
			close(doorbell);
		if (notify >= 0)
			close(notify);
	}

	void set_sq_flags(uint32_t f)
	{
		if (f != sq_flags) {
			sq_flags = f;
			std::atomic_ref<uint32_t>(ctl->sq_flags)
				.store(f, std::memory_order_seq_cst);
		}
	}
};

class Server final : public kipc::Host, public kipc::CompletionSink {
public:
	Server(int lfd, Loop &loop, const kipc::Limits &lim, bool verbose)
		: lfd_(lfd), loop_(loop), verbose_(verbose),
		  kernel_(clock_, *this, *this, lim)
	{
	}
	~Server() override;

	int run();

	/* kipc::Host */
	bool process_alive(pid_t pid, kipc::Creds *creds) override;
	void watch_process(pid_t pid) override;
	void unwatch_process(pid_t pid) override;
	int mq_created(int64_t id) override { return mqfs_.created(id); }
	void mq_readiness(int64_t id, bool r, bool w) override { mqfs_.readiness(id, r, w); }
	void mq_unlinked(int64_t id) override { mqfs_.unlinked(id); }
	bool mq_in_use(int64_t id) override { return mqfs_.in_use(id); }
	void mq_destroyed(int64_t id) override { mqfs_.destroyed(id); }
	bool capable(pid_t pid, int cap) override { return MqFs::capable(pid, cap); }
	void mq_signal(pid_t pid, int signo, int64_t value, pid_t from, uid_t uid) override
	{
		MqFs::signal(pid, signo, value, from, uid);
	}
	/* kipc::CompletionSink */
	void complete(void *priv, const kipc_cqe &cqe) override;

private:
	void on_accept();
	void on_hello(int fd);
	int attach(int fd, uint32_t features, kipc_attach_resp *resp,
		   int *memfd);
	void reply(int fd, const kipc_attach_resp &resp, const int *fds,
		   int nfds);
	void detach(Proc *p, const char *why);
	void drain(Proc *p, bool polling = false);
	void note_active(Proc *p)
	{
		if (!p->active) {
			p->active = true;
			active_.push_back(p);
		}
	}
	void poll_active(bool stop);
	void post(Proc *p, const kipc_cqe &cqe);
	void flush(Proc *p);
	void mark_dirty(Proc *p)
	{
		if (!p->dirty) {
			p->dirty = true;
			dirty_.push_back(p);
		}
	}
	void end_of_round();
	void arm_timer();
	void shutdown();

	int lfd_;
	Loop &loop_;
	bool verbose_;
	RealClock clock_;
	MqFs mqfs_{loop_, [this](int64_t id) { kernel_.mq_released(id); }};
	kipc::Kernel kernel_;
	int sigfd_ = -1, timerfd_ = -1;
	int64_t timer_armed_ = INT64_MAX;
	bool stop_ = false;
	std::unordered_map<int, int64_t> hello_;          /* fd -> watch */
	std::unordered_map<pid_t, std::unique_ptr<Proc>> procs_;
	std::vector<std::unique_ptr<Proc>> graveyard_;    /* freed after the round */
	std::vector<Proc *> dirty_;
	std::vector<Proc *> runnable_;
	std::vector<Proc *> active_;                      /* polled while spinning */
	uint64_t nconsumed_ = 0;                          /* SQEs taken, ever */
	struct PidWatch {
		int fd;
		int64_t watch;
	};
	std::unordered_map<pid_t, PidWatch> pidwatch_;
	std::vector<pid_t> exited_;                       /* process_exited() later */
};

Server::~Server()
{
	for (auto &[pid, w] : pidwatch_) {
		loop_.del(w.watch);
		close(w.fd);
	}
	for (auto &[fd, w] : hello_) {
		loop_.del(w);
		close(fd);
	}
	if (sigfd_ >= 0)
		close(sigfd_);
	if (timerfd_ >= 0)
		close(timerfd_);
}

/* ---------------------------------------------------------------- */
/* Host                                                               */

bool Server::process_alive(pid_t pid, kipc::Creds *creds)
{
	if (pid <= 0)
		return false;
	if (kill(pid, 0) < 0 && errno != EPERM)
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
	int fd = pidfd_open(pid);
	if (fd < 0) {
		/* Gone already (or no pidfd): tell the core after this call. */
		exited_.push_back(pid);
		return;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	int64_t w = loop_.add(fd, POLLIN, [this, pid](uint32_t) {
		auto it = pidwatch_.find(pid);
		if (it == pidwatch_.end())
			return;
		loop_.del(it->second.watch);
		close(it->second.fd);
		pidwatch_.erase(it);
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
	auto it = pidwatch_.find(pid);
	if (it == pidwatch_.end())
		return;
	loop_.del(it->second.watch);
	close(it->second.fd);
	pidwatch_.erase(it);
}

/* ---------------------------------------------------------------- */
/* Completions                                                        */

void Server::complete(void *priv, const kipc_cqe &cqe)
{
	Proc *p = static_cast<Proc *>(priv);
	if (!p || p->dead)
		return;
	if (!(cqe.flags & KIPC_CQE_F_MORE) && p->inflight)
		p->inflight--;
	post(p, cqe);
	mark_dirty(p);
}

/*
 * Write one CQE, or keep it in the overflow list: never drop, never
 * block. cq_head is the process's and untrusted: a value that claims
 * more than cq_entries are in use counts as "full", which only stalls
 * the process that wrote it.
 */
void Server::post(Proc *p, const kipc_cqe &cqe)
{
	if (p->overflow.empty()) {
		uint32_t head = load_acquire(&p->ctl->cq_head);
		uint32_t used = p->cq_tail - head;
		if (used < kCqEntries) {
			p->cq[p->cq_tail & (kCqEntries - 1)] = cqe;
			p->cq_tail++;
			return;
		}
	}
	p->overflow.push_back(cqe);
}

/* ---------------------------------------------------------------- */
/* Submissions                                                        */

/*
 * Consume the SQ: at most kSqEntries entries per round (fairness), and
 * nothing while kMaxInflight requests are in flight or waiting in the
 * overflow list (bounded memory: the SQ itself is the backlog).
 *
 * Sleep/wake handshake (the process does the mirror image):
 *   kernel: set NEED_WAKEUP; full fence; load sq_tail; empty -> sleep
 *   process: store sq_tail (release); full fence; load sq_flags;
 *            NEED_WAKEUP -> write the doorbell
 * One of the two always sees the other's store.
 */
void Server::drain(Proc *p, bool polling)
{
	p->runnable = false;
	if (polling)
		note_active(p); /* NEED_WAKEUP stays clear until the spin ends */
	uint32_t budget = kSqEntries;
	for (;;) {
		p->set_sq_flags(p->sq_flags & ~KIPC_SQ_NEED_WAKEUP);
		uint32_t tail;
		if (!sq_read_tail(p->ctl, p->sq_head, kSqEntries, &tail)) {
			detach(p, "SQ tail out of range");
			return;
		}
		while (p->sq_head != tail) {
			if (p->inflight + p->overflow.size() >= kMaxInflight) {
				p->stalled = true;
				mark_dirty(p);
				return;
			}
			if (budget == 0) {
				if (!p->runnable) {
					p->runnable = true;
					runnable_.push_back(p);
				}
				mark_dirty(p);
				return;
			}
			budget--;
			kipc_sqe sqe = sq_fetch(p->sq, p->sq_head, kSqEntries);
			/* The entry is ours now: the slot may be reused. */
			p->sq_head++;
			store_release(&p->ctl->sq_head, p->sq_head);
			p->consumed = true;
			nconsumed_++;
			note_active(p);
			p->inflight++;
			kernel_.submit(p->task, sqe);
			if (p->dead)
				return;
		}
		p->stalled = false;
		if (polling)
			break; /* we come back without a doorbell */
		p->set_sq_flags(p->sq_flags | KIPC_SQ_NEED_WAKEUP);
		std::atomic_thread_fence(std::memory_order_seq_cst);
		if (load_relaxed(&p->ctl->sq_tail) == p->sq_head)
			break;
	}
	if (p->consumed)
		mark_dirty(p);
}

/*
 * Publish what this round produced: overflow into free CQ slots, the CQ
 * tail, flags, then one futex wake and one eventfd write at most.
 */
void Server::flush(Proc *p)
{
	p->dirty = false;
	if (p->dead)
		return;
	for (int round = 0; round < 4; round++) {
		if (!p->overflow.empty()) {
			uint32_t head = load_acquire(&p->ctl->cq_head);
			uint32_t used = p->cq_tail - head;
			while (!p->overflow.empty() && used < kCqEntries) {
				p->cq[p->cq_tail & (kCqEntries - 1)] =
					p->overflow.front();
				p->overflow.pop_front();
				p->cq_tail++;
				used++;
			}
		}
		if (p->stalled && p->inflight + p->overflow.size() < kMaxInflight)
			drain(p);
		else
			break;
		if (p->dead)
			return;
	}
	uint32_t f = p->sq_flags;
	f = p->overflow.empty() ? f & ~KIPC_SQ_CQ_OVERFLOW
				: f | KIPC_SQ_CQ_OVERFLOW;
	p->set_sq_flags(f);

	bool posted = p->cq_tail != p->cq_published;
	if (posted) {
		store_release(&p->ctl->cq_tail, p->cq_tail);
		p->cq_published = p->cq_tail;
	}
	if (posted || p->consumed) {
		p->consumed = false;
		std::atomic_ref<uint32_t>(p->ctl->wake_seq)
			.fetch_add(1, std::memory_order_seq_cst);
		std::atomic_thread_fence(std::memory_order_seq_cst);
		if (load_relaxed(&p->ctl->waiters) != 0)
			futex_wake(&p->ctl->wake_seq);
	}
	if (posted && p->notify >= 0 &&
	    (load_relaxed(&p->ctl->cq_flags) & KIPC_CQ_EVENTFD)) {
		uint64_t one = 1;
		if (write(p->notify, &one, sizeof one) < 0) {
			/* EAGAIN: counter saturated, it is readable anyway */
		}
	}
}

/*
 * While spinning: take whatever the active processes published. At the
 * end (stop): drain once more the normal way, which sets NEED_WAKEUP and
 * re-checks the tail, and forget them.
 */
void Server::poll_active(bool stop)
{
	std::vector<Proc *> v = active_;
	if (stop) {
		for (Proc *p : active_)
			p->active = false;
		active_.clear();
	}
	for (Proc *p : v) {
		if (p->dead)
			continue;
		if (stop || load_acquire(&p->ctl->sq_tail) != p->sq_head)
			drain(p, !stop);
	}
}

void Server::end_of_round()
{
	/* process_exited() calls deferred from inside the core. */
	while (!exited_.empty()) {
		std::vector<pid_t> v;
		v.swap(exited_);
		for (pid_t pid : v)
			kernel_.process_exited(pid);
	}
	/* Flushing may drain stalled SQs, which may dirty others. */
	for (size_t i = 0; i < dirty_.size(); i++)
		flush(dirty_[i]);
	dirty_.clear();
	graveyard_.clear();
	arm_timer();
}

void Server::arm_timer()
{
	int64_t d = kernel_.next_deadline();
	if (d == timer_armed_)
		return;
	itimerspec its{};
	if (d != INT64_MAX) {
		if (d <= 0)
			d = 1;
		its.it_value.tv_sec = d / 1000000000;
		its.it_value.tv_nsec = d % 1000000000;
	}
	timerfd_settime(timerfd_, TFD_TIMER_ABSTIME, &its, nullptr);
	timer_armed_ = d;
}

/* ---------------------------------------------------------------- */
/* Attach                                                             */

void Server::on_accept()
{
	for (;;) {
		int fd = accept4(lfd_, nullptr, nullptr,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				klog(fmt::format("kipc: accept: {}", strerror(errno)));
			return;
		}
		int64_t w = loop_.add(fd, POLLIN | POLLRDHUP,
				      [this, fd](uint32_t) { on_hello(fd); });
		if (w < 0) {
			close(fd);
			continue;
		}
		hello_[fd] = w;
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
	loop_.del(it->second);
	hello_.erase(it);

	alignas(kipc_attach_req) char buf[sizeof(kipc_attach_req)];
	ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		/* Spurious: watch again. */
		int64_t w = loop_.add(fd, POLLIN | POLLRDHUP,
				      [this, fd](uint32_t) { on_hello(fd); });
		if (w > 0) {
			hello_[fd] = w;
			return;
		}
	}
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
		err = attach(fd, feat, &resp, &memfd);
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
int Server::attach(int fd, uint32_t feat, kipc_attach_resp *resp,
		   int *memfd_out)
{
	ucred uc{};
	socklen_t ul = sizeof uc;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0)
		return -errno;
	if (uc.pid <= 0)
		return -ESRCH;
	if (auto it = procs_.find(uc.pid); it != procs_.end()) {
		/* The same process re-attaching (after kipc_detach, or after
		 * we flagged it DEAD) may beat the old connection's hang-up
		 * in this batch of events: look at the old connection now. */
		pollfd pfd{it->second->conn, POLLRDHUP, 0};
		if (poll(&pfd, 1, 0) <= 0 ||
		    !(pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			return -EEXIST;
		detach(it->second.get(), "connection closed");
	}

	auto p = std::make_unique<Proc>(*this);
	p->creds.pid = uc.pid;
	p->creds.uid = uc.uid;
	p->creds.gid = uc.gid;
	{
		std::ifstream f(fmt::format("/proc/{}/comm", uc.pid));
		std::getline(f, p->comm);
	}

	int memfd = memfd_create(fmt::format("kipc:{}", uc.pid).c_str(),
				 MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (memfd < 0)
		return -errno;
	if (ftruncate(memfd, static_cast<off_t>(kMapSize)) < 0 ||
	    fcntl(memfd, F_ADD_SEALS,
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		int err = -errno;
		close(memfd);
		return err;
	}
	p->map = mmap(nullptr, kMapSize, PROT_READ | PROT_WRITE, MAP_SHARED,
		      memfd, 0);
	if (p->map == MAP_FAILED) {
		int err = -errno;
		close(memfd);
		return err;
	}
	auto *base = static_cast<uint8_t *>(p->map);
	p->ctl = reinterpret_cast<kipc_ring_ctl *>(base);
	p->sq = reinterpret_cast<kipc_sqe *>(base + kSqOff);
	p->cq = reinterpret_cast<kipc_cqe *>(base + kCqOff);
	p->mm = std::make_unique<ArenaMemory>(base + kArenaOff, kArenaSize);

	kipc_ring_ctl *c = p->ctl;
	c->magic = KIPC_MAGIC;
	c->version = KIPC_PROTO_VERSION;
	c->sq_entries = kSqEntries;
	c->cq_entries = kCqEntries;
	c->sq_off = kSqOff;
	c->cq_off = kCqOff;
	c->arena_off = kArenaOff;
	c->arena_size = kArenaSize;
	p->set_sq_flags(KIPC_SQ_NEED_WAKEUP);

	p->doorbell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (feat & KIPC_FEAT_NOTIFY_FD)
		p->notify = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->doorbell < 0 || ((feat & KIPC_FEAT_NOTIFY_FD) && p->notify < 0)) {
		int err = -errno;
		close(memfd);
		return err;
	}

	kipc::Task *task = nullptr;
	int err = kernel_.attach(p->creds, p->mm.get(), p->comm, p.get(), &task);
	if (err) {
		close(memfd);
		return err;
	}
	p->task = task;

	Proc *raw = p.get();
	p->bell_watch = loop_.add(p->doorbell, POLLIN, [this, raw](uint32_t) {
		uint64_t v;
		if (read(raw->doorbell, &v, sizeof v) < 0) { /* EAGAIN */ }
		drain(raw, true);
		/* The ring may also mean "I reaped, refill my CQ". */
		if (!raw->dead)
			mark_dirty(raw);
	});
	p->conn_watch = loop_.add(fd, POLLIN | POLLRDHUP, [this, raw](uint32_t ev) {
		char buf[64];
		if (!(ev & (POLLRDHUP | POLLHUP | POLLERR))) {
			/* Nothing is expected after attach: eat it. */
			ssize_t n = recv(raw->conn, buf, sizeof buf, MSG_DONTWAIT);
			if (n > 0 || (n < 0 && errno == EAGAIN))
				return;
		}
		detach(raw, "connection closed");
	});
	p->conn = fd;
	if (p->bell_watch < 0 || p->conn_watch < 0) {
		p->conn = -1; /* stays the caller's */
		p->dead = true;
		kernel_.exit(task);
		if (p->bell_watch > 0)
			loop_.del(p->bell_watch);
		if (p->conn_watch > 0)
			loop_.del(p->conn_watch);
		close(memfd);
		return -ENOMEM;
	}

	resp->version = KIPC_PROTO_VERSION;
	resp->features = feat | KIPC_FEAT_CQ_NODROP;
	resp->sq_entries = kSqEntries;
	resp->cq_entries = kCqEntries;
	resp->map_size = kMapSize;
	resp->sq_off = kSqOff;
	resp->cq_off = kCqOff;
	resp->arena_off = kArenaOff;
	resp->arena_size = kArenaSize;
	resp->pid = uc.pid;
	resp->uid = uc.uid;
	resp->gid = uc.gid;
	resp->max_inflight = kMaxInflight;
	*memfd_out = memfd;
	if (verbose_)
		klog(fmt::format("kipc: attach pid {} ({}) uid {} gid {}",
				 uc.pid, p->comm, uc.uid, uc.gid));
	procs_[uc.pid] = std::move(p);
	return 0;
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
	p->dead = true;
	if (verbose_)
		klog(fmt::format("kipc: exit pid {} ({}): {}", p->creds.pid,
				 p->comm, why));
	/* Tell a process that is still there (garbage writer). */
	std::atomic_ref<uint32_t>(p->ctl->sq_flags)
		.fetch_or(KIPC_SQ_DEAD, std::memory_order_seq_cst);
	std::atomic_ref<uint32_t>(p->ctl->wake_seq)
		.fetch_add(1, std::memory_order_seq_cst);
	futex_wake(&p->ctl->wake_seq);
	std::erase(runnable_, p);
	std::erase(active_, p);
	kernel_.exit(p->task);
	loop_.del(p->bell_watch);
	loop_.del(p->conn_watch);
	auto it = procs_.find(p->creds.pid);
	if (it != procs_.end()) {
		graveyard_.push_back(std::move(it->second));
		procs_.erase(it);
	}
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

int Server::run()
{
	/* POSIX queue descriptors live next to the socket: <socket>.mq/ */
	sockaddr_un sa{};
	socklen_t salen = sizeof sa;
	if (getsockname(lfd_, reinterpret_cast<sockaddr *>(&sa), &salen) == 0 && sa.sun_path[0])
		mqfs_.init(std::string(sa.sun_path) + ".mq");
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, nullptr);
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
		timer_armed_ = INT64_MIN; /* re-arm whatever comes next */
		kernel_.run_timers();
	});
	int64_t w_lst = loop_.add(lfd_, POLLIN, [this](uint32_t) { on_accept(); });
	if (w_sig < 0 || w_tmr < 0 || w_lst < 0) {
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
		/* Deadlines can pass between timerfd reads. */
		if (kernel_.next_deadline() <= clock_.monotonic_ns())
			kernel_.run_timers();
		std::vector<Proc *> again;
		again.swap(runnable_);
		for (Proc *p : again)
			if (!p->dead && p->runnable)
				drain(p, true);
		if (spinning)
			poll_active(false);
		end_of_round();
		if (spinning && nconsumed_ == before)
			sched_yield(); /* idle round: let the processes we poll run */
		int64_t now = clock_.monotonic_ns();
		if (nconsumed_ != before || (!spinning && !active_.empty()))
			spin_until = now + kIdleSpinNs;
		else if (spinning && now >= spin_until) {
			spin_until = 0;
			poll_active(true);
			end_of_round();
		}
	}
	shutdown();
	loop_.del(w_lst);
	loop_.del(w_tmr);
	loop_.del(w_sig);
	return 0;
}

} // namespace

int serve(int listen_fd, Loop &loop, const kipc::Limits &limits, bool verbose)
{
	auto srv = std::make_unique<Server>(listen_fd, loop, limits, verbose);
	return srv->run();
}

} // namespace kipcd
