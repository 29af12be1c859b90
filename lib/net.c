/* SPDX-License-Identifier: MIT */
/*
 * libkipc: the network's calls (Documentation/network.md). A remote
 * mailbox is opened by kipc_mbox_open("/net/NODE/name"); a remote task is
 * a node-qualified pid, which the ordinary send and call take.
 */
#include <string.h>

#include "internal.h"

pid_t kipc_node_pid(const char *node, pid_t pid)
{
	size_t n = node ? strlen(node) : 0;
	if (n == 0 || n > KIPC_NET_NODE_MAX || pid <= 0 || (uint32_t)pid > KIPC_NET_PID_MASK)
		return (pid_t)__kipc_ret(-EINVAL);
	struct kipc_sqe sqe = {0};
	__kipc_enc_name(&sqe, KIPC_SYS_net_node, 0, (uint32_t)n, 0, 0);
	struct kipc_slot s0 = {.in = node, .len = n};
	struct kipc_cqe cqe;
	long r = __kipc_sync(&sqe, &s0, NULL, &cqe);
	return r < 0 ? (pid_t)__kipc_ret(r) : KIPC_NET_PID(r, pid);
}

int kipc_net_stat(struct kipc_net_stat *st)
{
	return __kipc_ret0(__kipc_sync_out(KIPC_SYS_net_stat, 0, 0, st, sizeof *st));
}

int kipc_net_peer(pid_t pid, struct kipc_net_peer *peer)
{
	return __kipc_ret0(__kipc_sync_out(KIPC_SYS_net_peer, pid, 0, peer, sizeof *peer));
}
