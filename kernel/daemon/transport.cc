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
#include "delegate.h"
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
#include <sstream>
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
/* Connections of one uid that have not sent their hello; and how long
 * one may take to send it. */
constexpr uint32_t kHellosPerUid = 64;
constexpr int64_t kHelloTimeoutNs = 5000000000; /* 5 s */

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

/* Has the process behind a pidfd exited (zombie or reaped)? */
bool pidfd_exited(int pidfd)
{
	pollfd p{pidfd, POLLIN, 0};
	return poll(&p, 1, 0) != 0;
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
	std::ifstream f(fmt::format("/proc/{}/stat", pid));
	std::string line;
	if (!std::getline(f, line))
		return -1;
	size_t rp = line.rfind(')'); /* comm may hold spaces and parentheses */
	if (rp == std::string::npos)
		return -1;
	const char *q = line.c_str() + rp + 2;
	for (int field = 3; field < 22 && *q; field++) {
		q = strchr(q, ' ');
		if (!q)
			return -1;
		q++;
	}
	unsigned long long ticks;
	if (sscanf(q, "%llu", &ticks) != 1)
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

/* Calls that destroy or change an object: others' published requests go first. */
bool orders_others(uint8_t opcode)
{
	switch (opcode) {
	case KIPC_SYS_mbox_destroy:
	case KIPC_SYS_mbox_setattr:
	case KIPC_SYS_mbox_set_owner:
	case KIPC_SYS_mbox_revoke:
	case KIPC_SYS_taskq_setattr:
	case KIPC_SYS_mq_unlink:
	case KIPC_SYS_mq_close:
	case KIPC_SYS_msgctl:
		return true;
	default:
		return false;
	}
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
	int pidfd = -1;         /* the process itself: its exit is death too */
	int doorbell = -1;      /* eventfd the process writes */
	int notify = -1;        /* eventfd we write when it armed KIPC_CQ_EVENTFD */
	int64_t conn_watch = 0, bell_watch = 0, pid_watch = 0;
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
		if (pidfd >= 0)
			close(pidfd);
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
		kernel_.set_kernel_info(boot_info);
	}
	~Server() override;

	int run();

	/* kipc::Host */
	bool process_alive(pid_t pid, kipc::Creds *creds) override;
	static bool read_status(pid_t pid, kipc::Creds *creds);
	template <typename Read> bool read_proc(pid_t pid, Read read);
	void watch_process(pid_t pid) override;
	void unwatch_process(pid_t pid) override;
	int mq_opened(int64_t h, uid_t u, gid_t g, uint32_t acc) override
	{
		return mqfs_.opened(h, u, g, acc);
	}
	void mq_readiness(int64_t h, bool r, bool w) override { mqfs_.readiness(h, r, w); }
	bool mq_holds(pid_t pid, int fd, int64_t h) override { return mqfs_.holds(pid, fd, h); }
	bool mq_in_use(int64_t h) override { return mqfs_.in_use(h); }
	void mq_closed(int64_t h) override { mqfs_.closed(h); }
	bool mq_rlimit(pid_t pid, uint64_t *b) override;
	bool capable(pid_t pid, int cap) override;
	void mq_signal(pid_t pid, int signo, int64_t value, pid_t from, uid_t uid) override;
	/* kipc::CompletionSink */
	void complete(void *priv, const kipc_cqe &cqe) override;

private:
	void on_accept();
	void shed_one();
	void on_hello(int fd);
	void watch_hello(int fd);
	void forget_hello(int fd);
	void run_daemon_timers();
	int64_t daemon_deadline() const;
	int attach(int fd, int64_t accepted_boot_ns, uint32_t features, HelloFds *hfds,
		   kipc_attach_resp *resp, int *memfd);
	void reply(int fd, const kipc_attach_resp &resp, const int *fds,
		   int nfds);
	void detach(Proc *p, const char *why);
	void drain(Proc *p, bool polling = false);
	void drain_others(Proc *p);
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
	/*
	 * Connections that have not sent their hello yet: at most
	 * kHellosPerUid per uid, each for kHelloTimeoutNs at most.
	 */
	struct Hello {
		int64_t watch;
		uid_t uid;
		uint64_t serial;
		int64_t accepted_boot_ns;
	};
	std::unordered_map<int, Hello> hello_;            /* fd -> hello */
	std::unordered_map<uid_t, uint32_t> hellos_per_uid_;
	struct HelloDeadline {
		int64_t at;
		int fd;
		uint64_t serial;
	};
	std::deque<HelloDeadline> hello_deadlines_;       /* in accept order */
	uint64_t hello_serial_ = 0;
	/* Out of descriptors: the listener rests until accept_retry_ns_. */
	int reserve_fd_ = -1;                             /* for accept-and-close */
	int64_t w_lst_ = 0;
	int64_t accept_retry_ns_ = 0;
	int64_t accept_backoff_ns_ = 0;
	/* process_alive()'s pidfd, for the watch_process() that follows. */
	pid_t alive_pid_ = 0;
	int alive_pidfd_ = -1;
	std::unordered_map<pid_t, std::unique_ptr<Proc>> procs_;
	std::vector<std::unique_ptr<Proc>> graveyard_;    /* freed after the round */
	std::vector<Proc *> dirty_;
	std::vector<Proc *> runnable_;
	std::vector<Proc *> active_;                      /* polled while spinning */
	uint64_t nconsumed_ = 0;                          /* SQEs taken, ever */
	bool ordering_ = false;                           /* in drain_others() */
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
	for (auto &[fd, h] : hello_) {
		loop_.del(h.watch);
		close(fd);
	}
	if (reserve_fd_ >= 0)
		close(reserve_fd_);
	if (alive_pidfd_ >= 0)
		close(alive_pidfd_);
	if (sigfd_ >= 0)
		close(sigfd_);
	if (timerfd_ >= 0)
		close(timerfd_);
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

bool Server::read_status(pid_t pid, kipc::Creds *creds)
{
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
			if (orders_others(sqe.opcode) && !ordering_) {
				drain_others(p);
				if (p->dead)
					return;
			}
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
 * Before a call that destroys or changes an object runs, every request
 * other processes have already published takes effect: a process
 * blocked in msgrcv (its request is in its SQ, whether or not we have
 * read its doorbell yet) sees the IPC_RMID that its parent issued after
 * it, as EIDRM, never the EINVAL of a queue that was already gone. Only
 * what fits the usual per-round budget and in-flight bound is taken
 * (transport.md, "Ordering between processes").
 */
void Server::drain_others(Proc *p)
{
	ordering_ = true;
	std::vector<Proc *> others;
	others.reserve(procs_.size());
	for (auto &[pid, q] : procs_)
		if (q.get() != p && !q->dead)
			others.push_back(q.get());
	for (Proc *q : others)
		if (!q->dead && load_acquire(&q->ctl->sq_tail) != q->sq_head)
			drain(q, q->active);
	ordering_ = false;
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
	int64_t d = std::min(kernel_.next_deadline(), daemon_deadline());
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
	hello_deadlines_.push_back({clock_.monotonic_ns() + kHelloTimeoutNs, fd,
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
	return d;
}

void Server::run_daemon_timers()
{
	int64_t now = clock_.monotonic_ns();
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
	{	/* the parent, for tracers that follow children: "pid (comm) S ppid" */
		std::ifstream f(fmt::format("/proc/{}/stat", uc.pid));
		std::string stat;
		std::getline(f, stat);
		if (size_t rp = stat.rfind(')'); rp != std::string::npos)
			sscanf(stat.c_str() + rp + 1, " %*c %d", &p->creds.ppid);
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
	/* Its exit ends the task, whoever holds the connection now. */
	p->pid_watch = loop_.add(p->pidfd, POLLIN, [this, raw](uint32_t) {
		detach(raw, "process exited");
	});
	p->conn = fd;
	if (p->bell_watch < 0 || p->conn_watch < 0 || p->pid_watch < 0) {
		p->conn = -1; /* stays the caller's */
		p->dead = true;
		kernel_.exit(task);
		if (p->bell_watch > 0)
			loop_.del(p->bell_watch);
		if (p->conn_watch > 0)
			loop_.del(p->conn_watch);
		if (p->pid_watch > 0)
			loop_.del(p->pid_watch);
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
	resp->build_id = boot_info.build_id;
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
	loop_.del(p->pid_watch);
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
		run_daemon_timers();
	});
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
		/* Deadlines can pass between timerfd reads. */
		if (kernel_.next_deadline() <= clock_.monotonic_ns())
			kernel_.run_timers();
		if (daemon_deadline() <= clock_.monotonic_ns())
			run_daemon_timers();
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
	if (w_lst_ > 0)
		loop_.del(w_lst_);
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
