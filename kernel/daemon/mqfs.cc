// SPDX-License-Identifier: MIT
/*
 * POSIX message queue descriptors, host side.
 *
 * Linux's queue descriptor is a file on the mqueue filesystem: it polls
 * readable while a message is queued and writable while the queue is not
 * full, its O_NONBLOCK flag belongs to the open file description (shared
 * by dup() and fork()), and an unlinked queue lives until its last
 * descriptor closes. kipcd gives each queue a FIFO that behaves the same:
 *
 *   <socket>.mq/q<id>           the FIFO
 *   <socket>.mq/q<id>.{r,w,rw,x} hard links: the library opens the one
 *                                 naming its access mode, so readlink of
 *                                 /proc/self/fd/N tells the mode of any
 *                                 descriptor, however it was obtained
 *
 * Processes open it O_RDWR. Poll state: we hold a writer and keep the
 * pipe at 2 pages (F_SETPIPE_SZ), holding 0 bytes (empty: POLLOUT only),
 * 1 byte (one page buffer used: POLLIN | POLLOUT) or 4097 bytes (both
 * page buffers used, the pipe is "full": POLLIN only). Every readiness
 * change is made synchronously inside the syscall that caused it, before
 * its completion is posted, so a process that sees its mq_send complete
 * sees POLLIN too.
 *
 * Lifetime: while the queue has a name we also hold a reader. At unlink
 * we drop it and watch our writer: once the last process's descriptor is
 * closed (close, exit, exec; dup and fork counted by the OS, as for any
 * file) the pipe has no reader and the writer polls POLLERR; we then tell
 * the kernel (released), which frees the queue.
 */
#include "mqfs.h"

#include <cerrno>
#include <cstdio>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>

#include <fmt/format.h>

namespace kipcd {

static const char *const kSuffixes[] = {".r", ".w", ".rw", ".x"};
constexpr uint32_t kFullBytes = 4097; /* one byte + one page: two pipe buffers */

MqFs::~MqFs()
{
	for (auto &[id, q] : qs_) {
		if (q.watch)
			loop_.del(q.watch);
		if (q.rfd >= 0)
			close(q.rfd);
		if (q.wfd >= 0)
			close(q.wfd);
		remove_files(id);
	}
	if (!dir_.empty())
		rmdir(dir_.c_str());
}

std::string MqFs::path(int64_t id, const char *suffix) const
{
	return fmt::format("{}/q{}{}", dir_, id, suffix);
}

void MqFs::remove_files(int64_t id) const
{
	unlink(path(id).c_str());
	for (const char *s : kSuffixes)
		unlink(path(id, s).c_str());
}

void MqFs::init(const std::string &dir)
{
	dir_ = dir;
	if (mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST)
		klog(fmt::format("kipc: mqueue: mkdir {}: {}", dir, strerror(errno)));
	if (DIR *d = opendir(dir.c_str())) {
		while (dirent *e = readdir(d))
			if (e->d_name[0] == 'q')
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
}

int MqFs::created(int64_t id)
{
	std::string p = path(id);
	unlink(p.c_str());
	if (mkfifo(p.c_str(), 0600) < 0)
		return -errno;
	Queue q;
	int err = 0;
	for (const char *s : kSuffixes) {
		std::string l = path(id, s);
		unlink(l.c_str());
		if (link(p.c_str(), l.c_str()) < 0 && !err)
			err = -errno;
	}
	if (!err && (q.rfd = open(p.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
		err = -errno;
	if (!err && (q.wfd = open(p.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
		err = -errno;
	if (!err && fcntl(q.wfd, F_SETPIPE_SZ, 8192) < 0)
		err = -errno;
	if (err) {
		if (q.rfd >= 0)
			close(q.rfd);
		if (q.wfd >= 0)
			close(q.wfd);
		remove_files(id);
		return err == -EMFILE ? -ENFILE : err;
	}
	qs_[id] = q;
	return 0;
}

void MqFs::readiness(int64_t id, bool readable, bool writable)
{
	auto it = qs_.find(id);
	if (it == qs_.end())
		return;
	Queue &q = it->second;
	uint32_t want = !readable ? 0 : writable ? 1 : kFullBytes;
	static const char zeros[kFullBytes] = {};
	if (want > q.bytes) {
		ssize_t n = write(q.wfd, zeros, want - q.bytes);
		if (n > 0)
			q.bytes += uint32_t(n);
	} else if (want < q.bytes) {
		int rfd = q.rfd >= 0 ? q.rfd : open(path(id).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		char buf[kFullBytes];
		ssize_t n = rfd >= 0 ? read(rfd, buf, q.bytes - want) : -1;
		if (n > 0)
			q.bytes -= uint32_t(n);
		if (rfd >= 0 && rfd != q.rfd)
			close(rfd);
	}
}

void MqFs::unlinked(int64_t id)
{
	auto it = qs_.find(id);
	if (it == qs_.end())
		return;
	Queue &q = it->second;
	if (q.rfd >= 0) {
		close(q.rfd);
		q.rfd = -1;
	}
	q.watch = loop_.add(q.wfd, POLLERR, [this, id](uint32_t) {
		released_(id);
		/* Still here (cannot happen without readers): stop the level event. */
		auto it2 = qs_.find(id);
		if (it2 != qs_.end() && it2->second.watch && !in_use(id)) {
			loop_.del(it2->second.watch);
			it2->second.watch = 0;
		}
	});
	if (q.watch < 0)
		q.watch = 0;
}

bool MqFs::in_use(int64_t id)
{
	auto it = qs_.find(id);
	if (it == qs_.end())
		return false;
	if (it->second.rfd >= 0)
		return true;
	pollfd p = {it->second.wfd, POLLOUT, 0};
	return !(poll(&p, 1, 0) == 1 && (p.revents & POLLERR));
}

void MqFs::destroyed(int64_t id)
{
	auto it = qs_.find(id);
	if (it == qs_.end())
		return;
	Queue &q = it->second;
	if (q.watch)
		loop_.del(q.watch);
	if (q.rfd >= 0)
		close(q.rfd);
	if (q.wfd >= 0)
		close(q.wfd);
	qs_.erase(it);
	remove_files(id);
}

/*
 * As __do_notify(): si_code SI_MESGQ, the sender's pid and uid. A
 * negative si_code may be queued to another process (rt_sigqueueinfo(2)
 * refuses only si_code >= 0 and SI_TKILL); kill(2)'s permission rules
 * apply, which kipcd meets for its own user's processes.
 */
void MqFs::signal(pid_t pid, int signo, int64_t value, pid_t from, uid_t uid)
{
	siginfo_t si;
	std::memset(&si, 0, sizeof si);
	si.si_signo = signo;
	si.si_code = SI_MESGQ;
	si.si_value.sival_ptr = reinterpret_cast<void *>(value);
	si.si_pid = from;
	si.si_uid = uid;
	if (syscall(SYS_rt_sigqueueinfo, pid, signo, &si) < 0)
		klog(fmt::format("kipc: mqueue: signal {} to {}: {}", signo, pid,
				 strerror(errno)));
}

bool MqFs::capable(pid_t pid, int cap)
{
	std::ifstream f(fmt::format("/proc/{}/status", pid));
	std::string line;
	while (std::getline(f, line)) {
		unsigned long long caps;
		if (sscanf(line.c_str(), "CapEff: %llx", &caps) == 1)
			return cap >= 0 && cap < 64 && (caps >> cap & 1);
	}
	return false;
}

} // namespace kipcd
