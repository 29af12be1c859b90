// SPDX-License-Identifier: MIT
/*
 * kipcd: a delegated attach. A supervisor (kipc-run serving a statically
 * linked program, Documentation/posix.md "Static programs") attaches on
 * behalf of another process, and the task it gets is that process's: its
 * pid, pidfd and credentials, read from the OS, never the supervisor's.
 *
 * Proof. The hello carries KIPC_FEAT_DELEGATE and two descriptors: a
 * pidfd of the process and its /proc/<pid>/mem, opened by the supervisor.
 * The OS lets a process open another's mem file only if it may
 * ptrace-attach it (proc_mem_open(): PTRACE_MODE_ATTACH, i.e. the same
 * real, effective and saved uids and gids and a dumpable process, or
 * CAP_SYS_PTRACE, and whatever the LSMs such as Yama add), which already
 * lets it do anything as that process: acting for it on kipc adds
 * nothing. kipcd checks that the file is that process's (same device and
 * inode as /proc/<pid>/mem looked up now: a procfs inode belongs to one
 * process, and the open file pins it) and that the pidfd's process is
 * still alive afterwards (the pid was its own while we looked). The
 * credentials are then read from /proc/<pid>/status by the caller
 * (Server::attach, as for a credential refresh).
 */
#include "delegate.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace kipcd {

HelloFds::~HelloFds()
{
	for (int i = 0; i < n; i++)
		if (fd[i] >= 0)
			close(fd[i]);
}

ssize_t recv_hello(int conn, void *buf, size_t len, HelloFds *fds)
{
	iovec iov{buf, len};
	alignas(cmsghdr) char cbuf[CMSG_SPACE(8 * sizeof(int))];
	msghdr mh{};
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof cbuf;
	ssize_t n = recvmsg(conn, &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return n;
	for (cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;
			std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
			if (fds->n < 2)
				fds->fd[fds->n++] = f;
			else
				close(f);
		}
	}
	return n;
}

namespace {

/* The pid a pidfd names (its fdinfo's "Pid:"), 0 if none, -1 if exited. */
pid_t pidfd_pid(int pidfd)
{
	char path[64], line[128];
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	long pid = 0;
	bool found = false;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Pid: %ld", &pid) == 1) {
			found = true;
			break;
		}
	fclose(f);
	return found ? static_cast<pid_t>(pid) : 0;
}

bool exited(int pidfd)
{
	pollfd p{pidfd, POLLIN, 0};
	return poll(&p, 1, 0) != 0;
}

} // namespace

int delegated_process(HelloFds *fds, pid_t *pid_out, int *pidfd_out)
{
	if (fds->n != 2)
		return -EPERM;
	int pidfd = fds->fd[0], mem = fds->fd[1];
	/* A pidfd, and one we may signal (signal 0 sends nothing). */
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) < 0)
		return errno == ESRCH ? -ESRCH : -EPERM;
	pid_t pid = pidfd_pid(pidfd);
	if (pid < 0)
		return -ESRCH;
	if (pid == 0) /* not a pidfd, or a process outside our pid namespace */
		return -EPERM;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mem", static_cast<int>(pid));
	struct stat want, have;
	if (stat(path, &want) < 0)
		return errno == ENOENT ? -ESRCH : -EPERM;
	if (fstat(mem, &have) < 0 || !S_ISREG(have.st_mode) ||
	    have.st_dev != want.st_dev || have.st_ino != want.st_ino)
		return -EPERM;
	if (exited(pidfd))
		return -ESRCH;
	*pid_out = pid;
	*pidfd_out = pidfd;
	fds->fd[0] = -1; /* the caller's now */
	return 0;
}

} // namespace kipcd
