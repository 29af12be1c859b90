// SPDX-License-Identifier: MIT
/*
 * POSIX message queue descriptors, host side.
 *
 * Linux's queue descriptor is a file on the mqueue filesystem: it polls
 * readable while a message is queued and writable while the queue is not
 * full, its O_NONBLOCK flag belongs to the open file description (shared
 * by dup() and fork()), and the open lives until its last descriptor
 * closes. kipcd gives each open (each successful mq_open: a handle of
 * the core, kernel/ipc/mqhandle.h) a FIFO of its own that behaves the
 * same:
 *
 *   <socket>.mq/o<handle>.{r,w,rw,x}   the FIFO, named with its access mode
 *
 * The directory is kipcd's, mode 0711 (others may reach a file whose name
 * they are told, not list or change the directory); it is opened once
 * with O_NOFOLLOW and refused unless it is kipcd's own and writable by no
 * one else, and every file is made, opened and removed through that
 * descriptor (mkfifoat, openat with O_NOFOLLOW, unlinkat), so nothing
 * follows a path another user controls. The FIFO is 0600 and belongs to
 * the opener (kipcd run by root chowns it; a kipcd of another user refuses
 * the open with EACCES): only the opener's user can open it. The library
 * opens it O_RDWR and names it in its first call; once the core has seen
 * the opener's process hold it (holds(): /proc/<pid>/fd/<fd> is this
 * FIFO) the name is unlinked, so from then on the descriptor exists only
 * as the processes holding it pass it on (dup, fork, SCM_RIGHTS), as on
 * Linux. readlink of /proc/self/fd/N still tells the handle and mode.
 *
 * Poll state: we hold a writer and keep the pipe at 2 pages
 * (F_SETPIPE_SZ), holding 0 bytes (empty: POLLOUT only), 1 byte (one page
 * buffer used: POLLIN | POLLOUT) or 4097 bytes (both page buffers used,
 * the pipe is "full": POLLIN only). Every readiness change is made
 * synchronously inside the syscall that caused it, before its completion
 * is posted, so a process that sees its mq_send complete sees POLLIN too.
 * A process that read(2)s or write(2)s its own descriptor changes only
 * what its own open polls (no other opener shares the FIFO). The common
 * changes cost one system call: an emptied queue's pipe is read until it
 * holds nothing, and a queue that stops being empty gets one byte into
 * the empty pipe we left; the changes to and from full measure what the
 * pipe holds (FIONREAD) and add or take the difference. So the queue's
 * next emptying, or its next change to or from full, puts even a
 * descriptor that was read or written right.
 *
 * Lifetime: until claimed we also hold a reader. Then we drop it and
 * watch our writer: once the last descriptor of the open is closed
 * (close, exit, exec; dup and fork counted by the OS, as for any file)
 * the pipe has no reader and the writer polls POLLERR; we then tell the
 * kernel (released), which ends the open (and an unlinked queue with its
 * last open).
 *
 * Draining a claimed open's pipe (its queue became empty, or not full)
 * needs a reader, which only /proc/self/fd/<wfd> gives us: an open(2) of
 * procfs costs several times the read itself, and a busy queue drains
 * once per message. So the reader of a drain is kept as the open's spare
 * for the next ones. A reader hides the POLLERR of a release, so no
 * spare outlives what needs the truth: in_use() closes the open's spare
 * before it looks (the library's close, a task's exit, a release), and
 * sweep() closes them all when the loop may block (it never waits with
 * a spare open: an idle kipcd sees a release as before) and at the
 * latest kSpareNs after the first was opened (a busy one: then).
 */
#include "mqfs.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>

#include <fmt/format.h>

namespace kipcd {

static const char *const kSuffixes[] = {".r", ".w", ".rw", ".x"};
constexpr uint32_t kFullBytes = 4097; /* one byte + one page: two pipe buffers */
constexpr int64_t kSpareNs = 10'000'000; /* a spare reader's longest life */

MqFs::~MqFs()
{
	for (auto &[h, o] : os_)
		drop(o);
	if (dfd_ >= 0)
		close(dfd_);
	if (!dir_.empty())
		rmdir(dir_.c_str());
}

void MqFs::drop(Open &o)
{
	if (o.watch)
		loop_.del(o.watch);
	close_spare(o);
	if (o.rfd >= 0)
		close(o.rfd);
	if (o.wfd >= 0)
		close(o.wfd);
	if (!o.claimed && dfd_ >= 0)
		unlinkat(dfd_, o.name.c_str(), 0);
}

void MqFs::init(const std::string &dir)
{
	if (mkdir(dir.c_str(), 0711) < 0 && errno != EEXIST)
		klog(fmt::format("kipc: mqueue: mkdir {}: {}", dir, strerror(errno)));
	int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		klog(fmt::format("kipc: mqueue: {}: {}: POSIX queues disabled", dir,
				 strerror(errno)));
		if (fd >= 0)
			close(fd);
		return;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 022)) {
		klog(fmt::format("kipc: mqueue: {} refused: {}: POSIX queues disabled", dir,
				 st.st_uid != geteuid() ? "not owned by kipcd's user"
							: "writable by group or others"));
		close(fd);
		return;
	}
	if ((st.st_mode & 07777) != 0711)
		fchmod(fd, 0711);
	dir_ = dir;
	dfd_ = fd;
	/* A dead kernel's files: entries of this checked directory only. */
	int dd = dup(dfd_);
	if (DIR *d = dd >= 0 ? fdopendir(dd) : nullptr) {
		while (dirent *e = readdir(d))
			if (e->d_name[0] == 'q' || e->d_name[0] == 'o')
				unlinkat(dfd_, e->d_name, 0);
		closedir(d);
	} else if (dd >= 0) {
		close(dd);
	}
}

int MqFs::opened(int64_t h, uid_t uid, gid_t gid, uint32_t acc)
{
	if (dfd_ < 0)
		return -ENOENT; /* no directory: no descriptors */
	bool root = geteuid() == 0;
	if (!root && uid != geteuid())
		return -EACCES; /* we could not give them a file only they can open */
	Open o;
	o.name = fmt::format("o{}{}", h, kSuffixes[acc & 3]);
	unlinkat(dfd_, o.name.c_str(), 0);
	if (mkfifoat(dfd_, o.name.c_str(), 0600) < 0)
		return errno == EMFILE ? -ENFILE : -errno;
	int err = 0;
	struct stat st;
	if (root && fchownat(dfd_, o.name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		err = -errno;
	if (!err && (o.rfd = openat(dfd_, o.name.c_str(),
				    O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)) < 0)
		err = -errno;
	if (!err && (o.wfd = openat(dfd_, o.name.c_str(),
				    O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)) < 0)
		err = -errno;
	if (!err && fcntl(o.wfd, F_SETPIPE_SZ, 8192) < 0)
		err = -errno;
	if (!err && (fstat(o.wfd, &st) < 0 || !S_ISFIFO(st.st_mode)))
		err = -EIO;
	if (err) {
		drop(o);
		return err == -EMFILE ? -ENFILE : err;
	}
	o.dev = st.st_dev;
	o.ino = st.st_ino;
	os_[h] = std::move(o);
	return 0;
}

void MqFs::readiness(int64_t h, bool readable, bool writable)
{
	auto it = os_.find(h);
	if (it == os_.end())
		return;
	Open &o = it->second;
	uint32_t want = !readable ? 0 : writable ? 1 : kFullBytes;
	uint32_t left = o.left;
	o.left = want;
	char buf[8192];
	if (want == 0) {
		/* Empty: read whatever it holds (no need to measure). */
		int rfd = reader(h, o);
		ssize_t n = rfd < 0 ? -1 : read(rfd, buf, sizeof buf);
		while (n == ssize_t(sizeof buf))
			n = read(rfd, buf, sizeof buf);
		if (n < 0 && errno != EAGAIN)
			klog(fmt::format("kipc: mqueue: open {}: {}", h, strerror(errno)));
		return;
	}
	static const char zeros[kFullBytes] = {};
	if (want == 1 && left == 0) {
		/* Not empty, from the empty pipe we left: one byte. */
		if (write(o.wfd, zeros, 1) < 0)
			klog(fmt::format("kipc: mqueue: open {}: {}", h, strerror(errno)));
		return;
	}
	int have = 0;
	if (ioctl(o.wfd, FIONREAD, &have) < 0)
		return;
	if (want > uint32_t(have)) {
		if (write(o.wfd, zeros, want - uint32_t(have)) < 0)
			klog(fmt::format("kipc: mqueue: open {}: {}", h, strerror(errno)));
	} else if (want < uint32_t(have)) {
		int rfd = reader(h, o);
		if (rfd < 0 || read(rfd, buf, std::min<size_t>(sizeof buf, uint32_t(have) - want)) < 0)
			klog(fmt::format("kipc: mqueue: open {}: {}", h, strerror(errno)));
	}
}

/* A reader of o's pipe: ours until claimed, else its spare (opened now if
 * need be, and kept until sweep()); -1 with errno. */
int MqFs::reader(int64_t h, Open &o)
{
	if (o.rfd >= 0)
		return o.rfd;
	if (o.spare >= 0)
		return o.spare;
	std::string self = fmt::format("/proc/self/fd/{}", o.wfd);
	o.spare = open(self.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (o.spare < 0 && (errno == EMFILE || errno == ENFILE) && !spared_.empty()) {
		sweep_all(); /* our spares hold the descriptors: give them back */
		o.spare = open(self.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	}
	if (o.spare < 0)
		return -1;
	spared_.push_back(h);
	return o.spare;
}

void MqFs::close_spare(Open &o)
{
	if (o.spare >= 0)
		close(o.spare);
	o.spare = -1;
}

void MqFs::sweep_all()
{
	for (int64_t h : spared_)
		if (auto it = os_.find(h); it != os_.end())
			close_spare(it->second);
	spared_.clear();
	sweep_at_ = 0;
}

void MqFs::sweep(int64_t now, bool idle)
{
	if (spared_.empty())
		return;
	if (!sweep_at_)
		sweep_at_ = now + kSpareNs;
	if (idle || now >= sweep_at_)
		sweep_all();
}

bool MqFs::holds(pid_t pid, int fd, int64_t h)
{
	auto it = os_.find(h);
	if (it == os_.end() || pid <= 0 || fd < 0)
		return false;
	Open &o = it->second;
	struct stat st;
	if (stat(fmt::format("/proc/{}/fd/{}", pid, fd).c_str(), &st) < 0 ||
	    st.st_dev != o.dev || st.st_ino != o.ino)
		return false;
	if (o.claimed)
		return true;
	/* Claimed: the name goes, our reader too; its last close is POLLERR. */
	o.claimed = true;
	unlinkat(dfd_, o.name.c_str(), 0);
	close(o.rfd);
	o.rfd = -1;
	o.watch = loop_.add(o.wfd, POLLERR, [this, h](uint32_t) {
		released_(h);
		/* Still here (cannot happen without readers): stop the level event. */
		auto it2 = os_.find(h);
		if (it2 != os_.end() && it2->second.watch && !in_use(h)) {
			loop_.del(it2->second.watch);
			it2->second.watch = 0;
		}
	});
	if (o.watch < 0)
		o.watch = 0;
	return true;
}

bool MqFs::in_use(int64_t h)
{
	auto it = os_.find(h);
	if (it == os_.end() || !it->second.claimed)
		return false;
	close_spare(it->second); /* it would hide the POLLERR */
	pollfd p = {it->second.wfd, POLLOUT, 0};
	return !(poll(&p, 1, 0) == 1 && (p.revents & POLLERR));
}

void MqFs::closed(int64_t h)
{
	auto it = os_.find(h);
	if (it == os_.end())
		return;
	drop(it->second);
	os_.erase(it);
}

/* "Max msgqueue size" of /proc/<pid>/limits: the soft limit, in bytes. */
bool MqFs::rlimit(pid_t pid, uint64_t *bytes)
{
	std::ifstream f(fmt::format("/proc/{}/limits", pid));
	std::string line;
	static const char key[] = "Max msgqueue size";
	while (std::getline(f, line)) {
		if (line.compare(0, sizeof key - 1, key) != 0)
			continue;
		const char *v = line.c_str() + sizeof key - 1;
		while (*v == ' ')
			v++;
		if (strncmp(v, "unlimited", 9) == 0) {
			*bytes = UINT64_MAX;
			return true;
		}
		char *end;
		errno = 0;
		unsigned long long n = strtoull(v, &end, 10);
		if (end == v || errno)
			return false;
		*bytes = n;
		return true;
	}
	return false;
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
