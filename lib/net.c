/* SPDX-License-Identifier: MIT */
/*
 * libkipc: the network's calls (Documentation/network.md). A remote
 * mailbox is opened by kipc_mbox_open("/net/NODE/name"); a remote task is
 * a node-qualified pid, which the ordinary send and call take.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

pid_t kipc_node_pid(const char *node, pid_t pid)
{
	size_t n = node ? strlen(node) : 0;
	if (n == 0 || n > KIPC_NET_NODE_MAX || pid <= 0 || (uint32_t)pid > KIPC_NET_PID_MASK) {
		errno = EINVAL;
		return -1;
	}
	struct kipc_sqe sqe = {.opcode = KIPC_SYS_net_node, .len = (uint32_t)n};
	struct kipc_slot s0 = {.in = node, .len = n};
	struct kipc_cqe cqe;
	long r = __kipc_sync(&sqe, &s0, NULL, &cqe);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return KIPC_NET_PID(r, pid);
}

int kipc_net_stat(struct kipc_net_stat *st)
{
	long r = __kipc_sync_out(KIPC_SYS_net_stat, 0, 0, st, sizeof *st);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return 0;
}

int kipc_net_peer(pid_t pid, struct kipc_net_peer *peer)
{
	long r = __kipc_sync_out(KIPC_SYS_net_peer, pid, 0, peer, sizeof *peer);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return 0;
}
