// SPDX-License-Identifier: MIT
/*
 * kipcd event loops. Both loops offer the same thing: persistent
 * readiness watches on file descriptors. Timers (timerfd) and signals
 * (signalfd) are file descriptors too, so the transport code is the same
 * on both.
 *
 * io_uring: one IORING_OP_POLL_ADD with IORING_POLL_ADD_MULTI per watch;
 * a completion without IORING_CQE_F_MORE means the kernel dropped the
 * multishot poll (CQ overflow, for instance) and we arm it again.
 * Removal submits IORING_OP_POLL_REMOVE; completions that still arrive
 * for a removed watch are ignored because watch ids are never reused.
 *
 * epoll: level-triggered epoll_ctl(EPOLL_CTL_ADD) per watch.
 */
#include "kipcd.h"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>

#include <fmt/core.h>
#include <liburing.h>

namespace kipcd {
namespace {

/* Registry shared by both loops: id -> callback, deferred erase. */
class Registry {
public:
	struct Entry {
		int fd;
		uint32_t events;
		Loop::Fn fn;
	};

	int64_t insert(int fd, uint32_t events, Loop::Fn fn)
	{
		int64_t id = ++last_;
		map_.emplace(id, Entry{fd, events, std::move(fn)});
		return id;
	}
	Entry *find(int64_t id)
	{
		auto it = map_.find(id);
		return it == map_.end() ? nullptr : &it->second;
	}
	/* Forget id now; its callback is destroyed after the batch. */
	bool erase(int64_t id)
	{
		auto it = map_.find(id);
		if (it == map_.end())
			return false;
		graveyard_.push_back(std::move(it->second.fn));
		map_.erase(it);
		return true;
	}
	void end_batch() { graveyard_.clear(); }

private:
	int64_t last_ = 0;
	std::unordered_map<int64_t, Entry> map_;
	std::vector<Loop::Fn> graveyard_;
};

/* Run a copy: the callback may delete its own watch. */
inline void call_copy(Registry &r, int64_t id, uint32_t revents)
{
	Registry::Entry *e = r.find(id);
	if (!e)
		return;
	Loop::Fn fn = e->fn;
	fn(revents);
}

class EpollLoop final : public Loop {
public:
	explicit EpollLoop(int epfd) : epfd_(epfd) {}
	~EpollLoop() override { close(epfd_); }
	const char *name() const override { return "epoll"; }

	int64_t add(int fd, uint32_t events, Fn fn) override
	{
		int64_t id = reg_.insert(fd, events, std::move(fn));
		epoll_event ev{};
		ev.events = events; /* POLL* and EPOLL* bits agree */
		ev.data.u64 = static_cast<uint64_t>(id);
		if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) {
			int err = errno;
			reg_.erase(id);
			return -err;
		}
		return id;
	}

	void del(int64_t id) override
	{
		Registry::Entry *e = reg_.find(id);
		if (!e)
			return;
		epoll_ctl(epfd_, EPOLL_CTL_DEL, e->fd, nullptr);
		reg_.erase(id);
	}

	int wait(int timeout_ms) override
	{
		epoll_event evs[64];
		int n = epoll_wait(epfd_, evs, 64, timeout_ms);
		if (n < 0)
			return errno == EINTR ? 0 : -errno;
		for (int i = 0; i < n; i++)
			call_copy(reg_, static_cast<int64_t>(evs[i].data.u64),
				  evs[i].events);
		reg_.end_batch();
		return n;
	}

private:
	int epfd_;
	Registry reg_;
};

class UringLoop final : public Loop {
public:
	UringLoop() = default;
	~UringLoop() override { io_uring_queue_exit(&ring_); }
	const char *name() const override { return "io_uring"; }

	/* 0, or -errno with *why filled. */
	int init(std::string *why)
	{
		/*
		 * One thread submits and reaps (SINGLE_ISSUER); task work
		 * (poll completions) runs when we next enter the kernel
		 * instead of interrupting us (COOP_TASKRUN), and TASKRUN_FLAG
		 * tells a polling round that some is pending. Kernels before
		 * 6.0 reject the flags: fall back to none.
		 */
		unsigned flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
				 IORING_SETUP_TASKRUN_FLAG;
		int ret = io_uring_queue_init(256, &ring_, flags);
		if (ret == -EINVAL)
			ret = io_uring_queue_init(256, &ring_, 0);
		if (ret < 0) {
			*why = fmt::format("io_uring_setup: {}", strerror(-ret));
			return ret;
		}
		io_uring_probe *probe = io_uring_get_probe_ring(&ring_);
		if (!probe) {
			*why = "io_uring probe failed";
			io_uring_queue_exit(&ring_);
			return -ENOSYS;
		}
		bool ok = io_uring_opcode_supported(probe, IORING_OP_POLL_ADD) &&
			  io_uring_opcode_supported(probe, IORING_OP_POLL_REMOVE);
		io_uring_free_probe(probe);
		if (!ok) {
			*why = "io_uring lacks POLL_ADD/POLL_REMOVE";
			io_uring_queue_exit(&ring_);
			return -ENOSYS;
		}
		ret = selftest_multishot();
		if (ret < 0) {
			*why = fmt::format("io_uring multishot poll: {}",
					   strerror(-ret));
			io_uring_queue_exit(&ring_);
			return ret;
		}
		return 0;
	}

	int64_t add(int fd, uint32_t events, Fn fn) override
	{
		int64_t id = reg_.insert(fd, events, std::move(fn));
		arm(id, fd, events);
		return id;
	}

	void del(int64_t id) override
	{
		if (!reg_.erase(id))
			return;
		io_uring_sqe *sqe = get_sqe();
		io_uring_prep_poll_remove(sqe, static_cast<uint64_t>(id));
		io_uring_sqe_set_data64(sqe, 0);
	}

	int wait(int timeout_ms) override
	{
		io_uring_cqe *cqe = nullptr;
		int ret;
		if (timeout_ms == 0) {
			/* Polling: the CQ is in our memory, no syscall needed
			 * unless there is something to submit. */
			bool taskrun = IO_URING_READ_ONCE(*ring_.sq.kflags) &
				       IORING_SQ_TASKRUN;
			if (io_uring_sq_ready(&ring_))
				ret = io_uring_submit(&ring_);
			else
				ret = taskrun ? io_uring_get_events(&ring_) : 0;
		} else if (timeout_ms < 0) {
			ret = io_uring_submit_and_wait(&ring_, 1);
		} else {
			__kernel_timespec ts{};
			ts.tv_sec = timeout_ms / 1000;
			ts.tv_nsec = (timeout_ms % 1000) * 1000000LL;
			ret = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1,
							       &ts, nullptr);
		}
		if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY)
			return ret;

		/* Reap first, dispatch after: callbacks queue new SQEs. */
		batch_.clear();
		unsigned head, n = 0;
		io_uring_for_each_cqe(&ring_, head, cqe) {
			batch_.push_back({cqe->user_data, cqe->res, cqe->flags});
			n++;
		}
		io_uring_cq_advance(&ring_, n);

		for (const Done &d : batch_) {
			int64_t id = static_cast<int64_t>(d.user_data);
			if (id == 0)
				continue; /* poll_remove completions */
			Registry::Entry *e = reg_.find(id);
			if (!e)
				continue;
			bool more = d.flags & IORING_CQE_F_MORE;
			if (d.res < 0) {
				if (d.res == -ECANCELED || d.res == -EAGAIN ||
				    d.res == -ENOMEM) {
					if (!more)
						arm(id, e->fd, e->events);
					continue;
				}
				/* The fd is unusable: report an error. */
				call_copy(reg_, id, POLLERR | POLLHUP);
				continue;
			}
			if (!more)
				arm(id, e->fd, e->events);
			call_copy(reg_, id, static_cast<uint32_t>(d.res));
		}
		reg_.end_batch();
		return static_cast<int>(batch_.size());
	}

private:
	struct Done {
		uint64_t user_data;
		int32_t res;
		uint32_t flags;
	};

	io_uring_sqe *get_sqe()
	{
		io_uring_sqe *sqe = io_uring_get_sqe(&ring_);
		while (!sqe) {
			io_uring_submit(&ring_);
			sqe = io_uring_get_sqe(&ring_);
		}
		return sqe;
	}

	void arm(int64_t id, int fd, uint32_t events)
	{
		io_uring_sqe *sqe = get_sqe();
		io_uring_prep_poll_multishot(sqe, fd, events);
		io_uring_sqe_set_data64(sqe, static_cast<uint64_t>(id));
	}

	/* Two writes to an eventfd must give two CQEs with F_MORE. */
	int selftest_multishot()
	{
		int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (efd < 0)
			return -errno;
		io_uring_sqe *sqe = io_uring_get_sqe(&ring_);
		io_uring_prep_poll_multishot(sqe, efd, POLLIN);
		io_uring_sqe_set_data64(sqe, 1);
		int ret = io_uring_submit(&ring_);
		uint64_t one = 1, v;
		int seen = 0;
		for (int i = 0; ret >= 0 && i < 2; i++) {
			if (write(efd, &one, sizeof one) < 0) {
				ret = -errno;
				break;
			}
			io_uring_cqe *cqe;
			ret = io_uring_wait_cqe(&ring_, &cqe);
			if (ret < 0)
				break;
			if (cqe->res < 0)
				ret = cqe->res;
			else if (cqe->flags & IORING_CQE_F_MORE)
				seen++;
			io_uring_cqe_seen(&ring_, cqe);
			if (read(efd, &v, sizeof v) < 0) { /* reset */ }
		}
		sqe = io_uring_get_sqe(&ring_);
		io_uring_prep_poll_remove(sqe, 1);
		io_uring_sqe_set_data64(sqe, 2);
		io_uring_submit(&ring_);
		/* Drain the remove and the final poll completion. */
		for (int i = 0; i < 2; i++) {
			io_uring_cqe *cqe;
			__kernel_timespec ts{0, 100000000};
			if (io_uring_wait_cqe_timeout(&ring_, &cqe, &ts) < 0)
				break;
			io_uring_cqe_seen(&ring_, cqe);
		}
		close(efd);
		if (ret < 0)
			return ret;
		return seen == 2 ? 0 : -EOPNOTSUPP;
	}

	io_uring ring_{};
	Registry reg_;
	std::vector<Done> batch_;
};

} // namespace

std::unique_ptr<Loop> make_loop(const std::string &which, std::string *why)
{
	if (which == "auto" || which == "io_uring") {
		auto u = std::make_unique<UringLoop>();
		if (u->init(why) == 0)
			return u;
		if (which == "io_uring")
			return nullptr;
	} else if (which != "epoll") {
		*why = fmt::format("unknown loop '{}'", which);
		return nullptr;
	}
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		*why = fmt::format("epoll_create1: {}", strerror(errno));
		return nullptr;
	}
	return std::make_unique<EpollLoop>(epfd);
}

} // namespace kipcd
