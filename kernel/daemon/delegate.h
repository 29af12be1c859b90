// SPDX-License-Identifier: MIT
/*
 * kipcd: a delegated attach (delegate.cc). Private to kernel/daemon/.
 */
#pragma once

#include <sys/types.h>

namespace kipcd {

/* Descriptors that came with a hello (SCM_RIGHTS); closed when dropped. */
struct HelloFds {
	int fd[2] = {-1, -1};
	int n = 0;
	HelloFds() = default;
	HelloFds(const HelloFds &) = delete;
	HelloFds &operator=(const HelloFds &) = delete;
	~HelloFds();
};

/*
 * recv(2) of the hello datagram (MSG_DONTWAIT | MSG_TRUNC: the result is
 * its real length) with up to two descriptors into *fds, the others
 * closed.
 */
ssize_t recv_hello(int conn, void *buf, size_t len, HelloFds *fds);

/*
 * The process a supervisor attaches for (KIPC_FEAT_DELEGATE): fds->fd[0]
 * is a pidfd of it, fds->fd[1] its /proc/<pid>/mem, opened by the
 * supervisor. 0 with *pid and *pidfd (taken out of fds), or -errno:
 * -EPERM when the descriptors do not prove that the supervisor may act
 * for the process, -ESRCH when it is gone.
 */
int delegated_process(HelloFds *fds, pid_t *pid, int *pidfd);

} // namespace kipcd
