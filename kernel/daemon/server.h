// SPDX-License-Identifier: MIT
/*
 * kipcd's server: the attached processes (Proc) and the one object that
 * serves them (Server). Private to kernel/daemon/, shared by its three
 * parts:
 *  - attach.cc:    accepting connections, the hello, building a process's
 *                  region and task, detaching it;
 *  - ring.cc:      the rings: drain the SQ, post and flush completions;
 *  - transport.cc: the host interface the core calls, the loop round,
 *                  shutdown.
 *  - credit.cc:    send credits (a synchronous send with room completes
 *                  in the caller; transport.md section 12).
 *  - push.cc:      receive push (queued messages copied ahead into their
 *                  one receiver's region; transport.md section 13).
 * The protocol is in <kipc/ring.h> and Documentation/transport.md.
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
#pragma once

#include "kipcd.h"
#include "mqfs.h"
#include "wire.h"
#include "../net/net.h"

#include <atomic>
#include <climits>
#include <ctime>
#include <deque>
#include <linux/futex.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <initializer_list>
#include <unordered_map>
#include <vector>

#include <kipc/ring.h>

namespace kipcd {

/*
 * The shared region's layout (transport.md section 3), computed once
 * from the configuration: the region header, the attach response and
 * every index mask come from this one value.
 */
struct RingLayout {
	uint32_t sq_entries;
	uint32_t cq_entries;
	uint64_t sq_off;
	uint64_t cq_off;
	uint64_t arena_off;
	uint64_t arena_size;
	uint64_t map_size;

	/* Fill the layout fields of a record that publishes it (the region
	 * header, the attach response: the same names in both). */
	template <class T> void publish(T &dst) const
	{
		dst.sq_entries = sq_entries;
		dst.cq_entries = cq_entries;
		dst.sq_off = sq_off;
		dst.cq_off = cq_off;
		dst.arena_off = arena_off;
		dst.arena_size = arena_size;
	}
};

constexpr RingLayout ring_layout(uint32_t entries, uint64_t arena_size)
{
	RingLayout l{};
	l.sq_entries = entries;
	l.cq_entries = 2 * entries;
	l.sq_off = KIPC_RING_CTL_SIZE;
	l.cq_off = l.sq_off + uint64_t(l.sq_entries) * sizeof(kipc_sqe);
	l.arena_off = (l.cq_off + uint64_t(l.cq_entries) * sizeof(kipc_cqe) + 4095) &
		      ~uint64_t(4095);
	l.arena_size = arena_size;
	l.map_size = l.arena_off + l.arena_size;
	return l;
}

inline constexpr RingLayout kLayout = ring_layout(CONFIG_RING_ENTRIES, CONFIG_ARENA_SIZE);
inline constexpr uint32_t kSqEntries = kLayout.sq_entries;
inline constexpr uint32_t kCqEntries = kLayout.cq_entries;
/* Requests a process may have consumed but not completed. */
inline constexpr uint32_t kMaxInflight = kSqEntries + kCqEntries;

static_assert((kSqEntries & (kSqEntries - 1)) == 0, "RING_ENTRIES: power of 2");
static_assert(kSqEntries >= 8 && kSqEntries <= 32768, "RING_ENTRIES range");
static_assert(kCqEntries <= 65536, "a CQ's lap tags (16 bits) tell two laps apart");
static_assert(sizeof(kipc_ring_ctl) <= KIPC_CREDIT_OFF && KIPC_CREDIT_OFF + sizeof(kipc_credit) <= KIPC_RING_CTL_SIZE, "credit words in the ctl page");
static_assert(kLayout.arena_size >= 4096 && kLayout.arena_size % 4096 == 0, "ARENA_SIZE");

/* Close each descriptor that is open (>= 0). */
inline void close_fds(std::initializer_list<int> fds)
{
	for (int fd : fds)
		if (fd >= 0)
			close(fd);
}

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

inline int futex_wake(uint32_t *uaddr)
{
	/* Shared futex: no FUTEX_PRIVATE_FLAG, the waiter is another process. */
	return static_cast<int>(syscall(SYS_futex, uaddr, FUTEX_WAKE, INT_MAX,
					nullptr, nullptr, 0));
}

inline int pidfd_open(pid_t pid)
{
	return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

bool proc_stat_field(pid_t pid, int n, unsigned long long *v); /* transport.cc */

/* Has the process behind a pidfd exited (zombie or reaped)? */
inline bool pidfd_exited(int pidfd)
{
	pollfd p{pidfd, POLLIN, 0};
	return poll(&p, 1, 0) != 0;
}

/*
 * The host's clocks. While one request runs (hold_real(): Server::submit)
 * CLOCK_REALTIME is read once, at its first use: the wall-clock stamps
 * of what one request does (a bundle's n send times, the receive times
 * of the messages a multishot takes) are that request's time, as a
 * syscall's are. CLOCK_MONOTONIC (deadlines, the trace) is always read.
 */
class RealClock final : public kipc::Clock {
public:
	int64_t monotonic_ns() const override { return now(CLOCK_MONOTONIC); }
	/* CLOCK_MONOTONIC_COARSE (a tick behind at most, a quarter of the
	 * cost): for idle times, which only say when to take a grant back */
	int64_t coarse_ns() const { return now(CLOCK_MONOTONIC_COARSE); }
	int64_t realtime_ns() const override
	{
		if (!held_)
			return now(CLOCK_REALTIME);
		if (!real_)
			real_ = now(CLOCK_REALTIME);
		return real_;
	}
	void hold_real(bool on)
	{
		held_ = on;
		real_ = 0;
	}
	bool holding_real() const { return held_; }

private:
	bool held_ = false;
	mutable int64_t real_ = 0;

	static int64_t now(clockid_t c)
	{
		timespec ts;
		clock_gettime(c, &ts);
		return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
	}
};

class Server;

/* Calls that change no object (nop, cancel, the stats, introspection,
 * trace reads): neither send credits nor a receive push are taken back
 * for them (credit.cc). */
bool changes_nothing(uint8_t opcode);

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
	bool taking = false;        /* an entry consumed and not yet submitted */
	bool active = false;        /* on Server::active_: polled while we spin */
	bool credit_ok = false;     /* negotiated KIPC_FEAT_CREDIT (not delegated) */
	bool credit_clock = false;  /* reads our CLOCK_MONOTONIC (same time namespace) */
	bool handoff = false;       /* its last entry: a credit send a parked receiver took */
	bool lockstep = false;      /* ... and a receive came next: credits buy it nothing */
	kipc_credit *credit = nullptr; /* its credit words in the region (K) */
	bool cq_lap = false;        /* negotiated KIPC_FEAT_CQ_LAP: lap tags in the CQ */
	bool push_ok = false;       /* negotiated KIPC_FEAT_PUSH (not delegated) */
	kipc_push *push = nullptr;  /* its push words and slots in the region */
	kipc_push_slot *push_slots = nullptr;
	/* what its requests took (logged at its exit with --verbose: fast_stats()) */
	struct {
		uint64_t credit;        /* credit sends taken */
		uint64_t send;          /* sends submitted as ordinary entries */
		uint64_t recv;          /* receives submitted to the core */
		uint64_t parked;        /* ... of which that did not complete at once */
		uint64_t pushed;        /* pushed receives claimed and taken */
		uint64_t bell;          /* doorbells rung */
		uint64_t woken;         /* futex wakes (it slept) */
	} st{};

	explicit Proc(Server &s) : srv(s) {}
	~Proc()
	{
		if (map != MAP_FAILED)
			munmap(map, kLayout.map_size);
		close_fds({conn, pidfd, doorbell, notify});
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

class Server final : public kipc::Host, public kipc::MqHost, public kipc::CompletionSink {
public:
	Server(int lfd, Loop &loop, const kipc::Limits &lim, bool verbose)
		: lfd_(lfd), loop_(loop), verbose_(verbose),
		  kernel_(clock_, *this, *this, lim, this),
		  hello_timeout_ns_(int64_t(lim.hello_timeout_ms) * 1000000),
		  push_idle_ns_(int64_t(lim.push_idle_ms) * 1000000),
		  credit_idle_ns_(int64_t(lim.credit_idle_ms) * 1000000)
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
	bool capable(pid_t pid, int cap) override;
	/* kipc::MqHost: the descriptor files (mqfs.cc) */
	int mq_opened(int64_t h, uid_t u, gid_t g, uint32_t acc) override
	{
		return mqfs_.opened(h, u, g, acc);
	}
	void mq_readiness(int64_t h, bool r, bool w) override { mqfs_.readiness(h, r, w); }
	bool mq_holds(pid_t pid, int fd, int64_t h) override { return mqfs_.holds(pid, fd, h); }
	bool mq_exited(pid_t pid) override
	{
		auto it = procs_.find(pid);
		return it != procs_.end() && !it->second->dead && pidfd_exited(it->second->pidfd);
	}
	bool mq_in_use(int64_t h) override { return mqfs_.in_use(h); }
	void mq_closed(int64_t h) override { mqfs_.closed(h); }
	bool mq_rlimit(pid_t pid, uint64_t *b) override;
	void mq_signal(pid_t pid, int signo, int64_t value, pid_t from, uid_t uid) override;
	/* kipc::CompletionSink */
	void complete(void *priv, const kipc_cqe &cqe) override;
	void skipped(void *priv, const kipc_cqe &cqe) override;
	bool can_post(void *priv) override;

private:
	void on_accept();
	void shed_one();
	void on_hello(int fd);
	void watch_hello(int fd);
	void forget_hello(int fd);
	void run_daemon_timers();
	int64_t daemon_deadline() const;
	int attach(int fd, int64_t accepted_boot_ns, uint32_t features, struct HelloFds *hfds,
		   kipc_attach_resp *resp, int *memfd);
	void reply(int fd, const kipc_attach_resp &resp, const int *fds,
		   int nfds);
	int watch(Proc *p, int fd);
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
	/* send credits (credit.cc, transport.md section 12) */
	struct Credit;
	Credit *credit_of(const Proc *p);
	bool credit_fits(const Proc *p, const kipc_sqe &sqe, uint32_t ahead = 0) const;
	void credit_apply(Proc *p, const kipc_sqe &sqe);
	void credit_run();
	bool credit_collect();
	void credit_before(Proc *p, const kipc_sqe &sqe);
	void credit_before(Proc *p, kipc::Task *task, const kipc_sqe &sqe);
	void credit_before_net(kipc::Task *task, const kipc_sqe *sqe);
	uint32_t credit_held(uint8_t op, int64_t queue) const;
	bool credit_room(kipc::Task *task, uint8_t op, int64_t link, int64_t queue,
			 uint32_t n = 1);
	void credit_after(Proc *p, const kipc_sqe &sqe);
	void credit_grant(Proc *p, uint8_t op, int64_t link, uint16_t prio = KIPC_PRIO_MAX);
	int credit_prio_max(uint8_t op, int64_t queue) const;
	void credit_topup(Proc *p);
	void credit_lockstep(Proc *p, const kipc_sqe &sqe);
	bool credit_still_lockstep(Proc *p, uint32_t nmsg);
	void credit_revoke(const Proc *only, bool contended, uint8_t op = 0, int64_t queue = 0);
	void credit_exit(Proc *p);
	void credit_timers();
	int64_t credit_deadline() const;
	/* receive push (push.cc, transport.md section 13) */
	void push_before(Proc *p, const kipc_sqe &sqe);
	void push_before_net(const kipc_sqe *sqe);
	void push_after(Proc *p, const kipc_sqe &sqe);
	void push_grant(Proc *p, int64_t link);
	struct Push;
	Push *push_of(const Proc *p);
	bool push_claimed(const Push &g, uint64_t claim, uint32_t *idx) const;
	bool push_moves_head(const Push &g, const Proc *p, const kipc_sqe &sqe);
	bool push_moves_mq(const Push &g, const kipc_sqe &sqe);
	void push_take(Push &g, uint32_t idx);
	void push_sync();
	bool push_fill(Push &g);
	void push_fill_or_recall(size_t i);
	void push_recall_one(size_t i, bool contended);
	void push_steal(size_t i);
	void push_settle(bool ran);
	void push_recall(bool contended);
	void push_exit(Proc *p);
	void push_round();
	void push_timers();
	int64_t push_deadline() const;
	int push_floor(uint8_t op, int64_t queue) const;
	bool push_on(uint8_t op, int64_t queue) const;
	std::pair<uint8_t, int64_t> push_credit_link(const Proc *p, int64_t link, int64_t queue) const;
	void push_uncap(size_t i);
	void submit(Proc *p, const kipc_sqe &sqe);
	void post(Proc *p, const kipc_cqe &cqe);
	void post_held();
	void cq_write(Proc *p, const kipc_cqe &cqe);
	uint32_t refill(Proc *p);
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
	void fast_stats(const Proc *p);
	void fast_count(Proc *p, const kipc_sqe &sqe);

	int lfd_;
	Loop &loop_;
	bool verbose_;
	RealClock clock_;
	/* a release may end an open or a queue: no credit lives past it (credit.cc) */
	MqFs mqfs_{loop_, [this](int64_t id) {
		credit_revoke(nullptr, false);
		push_recall(false); /* ... nor a push of a POSIX queue's open (push.cc) */
		kernel_.mq_released(id);
	}};
	kipc::Kernel kernel_;
	std::unique_ptr<Net> net_; /* --node: the network (kernel/net) */
	int sigfd_ = -1, timerfd_ = -1;
	int64_t timer_armed_ = INT64_MAX;
	bool stop_ = false;
	/*
	 * Connections that have not sent their hello yet: at most
	 * kHellosPerUid per uid, each for hello_timeout_ns_ at most (the
	 * boot parameter hello_timeout_ms).
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
	const int64_t hello_timeout_ns_;
	const int64_t push_idle_ns_; /* boot parameter push_idle_ms */
	const int64_t credit_idle_ns_; /* boot parameter credit_idle_ms */
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
	/*
	 * Send credits: at most kCreditHolders (process, link) pairs hold
	 * them at a time, one link per process (transport.md section 12
	 * says how their sends are ordered). Our own count: the process's
	 * words are only ever stored.
	 */
	struct Credit {
		Proc *p = nullptr;      /* the holder */
		uint8_t op = 0;         /* KIPC_SYS_mbox_send, send or mq_timedsend */
		int64_t link = 0;       /* the mailbox, the task queue's pid, or the open */
		int64_t queue = 0;      /* where the room is: link, or the open's queue */
		uint32_t gen = 0;       /* the grant, as in kipc_credit.gen */
		uint32_t limit = 0;     /* credit sends allowed in this grant */
		uint32_t applied = 0;   /* ... and taken */
		uint32_t msgsize = 0;
		uint16_t prio = KIPC_PRIO_MAX; /* highest priority of a credit send */
		uint64_t charge = 0;    /* bytes each unused credit holds */
		uid_t uid = 0;          /* the user they are charged to */
		int64_t used_ns = 0;    /* last grant or credit send */
		int64_t last_ts = 0;    /* order stamp of its last credit send taken */
		bool deferred = false;  /* its head entry was put off (stamp not before the cut) */
		uint32_t defer_idx = 0; /* ... that entry's SQ index */
		int64_t defer_ns = 0;   /* ... and when we first saw it: its stamp at most */
		bool revoking = false;  /* in credit_revoke() */
	};
	std::vector<Credit> credits_;
	uint32_t credit_gen_ = 0;
	int64_t credit_cooldown_ = 0;                     /* no grant before */
	uint64_t credit_failed_ = 0;                      /* credit sends that failed: a bug */
	/*
	 * Receive push: up to 8 grants, one per process and one per
	 * mailbox (push.cc). Message k of a grant is in slot k %
	 * KIPC_PUSH_SLOTS of its process; [synced, pushed) are pushed and
	 * still queued (seq: which).
	 */
	struct Push {
		Proc *p = nullptr;      /* the receiver */
		int64_t link = 0;       /* a mailbox, KIPC_PUSH_TASKQ: p's task queue, or KIPC_PUSH_MQ(h) */
		int64_t queue = 0;      /* KIPC_PUSH_MQ(h): the queue of open h */
		uint32_t gen = 0;       /* as in kipc_push.claim >> 32 */
		uint32_t pushed = 0;    /* messages copied into slots */
		uint32_t synced = 0;    /* ... of which claimed and taken from the queue */
		uint16_t prio = 0;      /* the priority of the pushed ones (one level) */
		bool capped = false;    /* stopped below a credit's prio: push_uncap() */
		int64_t used_ns = 0;    /* grant or last claim taken */
		uint64_t seq[KIPC_PUSH_SLOTS] = {};
		/* The head a push holds, one holder each: a POSIX queue's opens share
		 * their queue's, every other link is its own. */
		static int64_t head_of(int64_t link, int64_t queue) { return queue ? queue : link; }
		int64_t head() const { return head_of(link, queue); }
	};
	std::vector<Push> pushes_;
	struct Steal {              /* a holder's next message, kept for another receiver */
		Proc *p = nullptr;      /* the holder, nullptr: none */
		uint32_t gen = 0, idx = 0;
		uint64_t seq = 0;
	};
	Steal steal_;
	uint32_t push_gen_ = 0;
	std::vector<std::pair<int64_t, int64_t>> push_cool_; /* (mailbox, until): no grant of it before */
	/* The result of the request submit() runs, when it completes at once. */
	Proc *sync_p_ = nullptr;
	uint64_t sync_ud_ = 0;
	int64_t sync_res_ = 1;
	bool sync_done_ = false;                          /* sync_res_ is its result */
	bool sync_held_ = false;                          /* sync_cqe_ not posted yet */
	kipc_cqe sync_cqe_{};
	struct PidWatch {
		int fd;
		int64_t watch;
	};
	std::unordered_map<pid_t, PidWatch> pidwatch_;
	bool drop_watch(pid_t pid); /* stop watching pid; false: it was not watched */
	std::vector<pid_t> exited_;                       /* process_exited() later */
	/* the fast paths since boot (fast_stats(), performance.md "fast-sync") */
	struct {
		uint64_t rounds, idle;  /* loop rounds; spinning ones that took nothing */
		uint64_t grants, topups, revokes, revoke_exit, revoke_room, revoke_idle;
		uint64_t push_grants, push_fills, push_recalls, recall_exit, recall_head,
			recall_idle, push_steals;
		uint64_t timer_arms; /* timerfd_settime() calls */
	} st_{};
};

} // namespace kipcd
