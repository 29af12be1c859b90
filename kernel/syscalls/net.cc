// SPDX-License-Identifier: MIT
/*
 * net_node, net_stat, net_peer: the network's calls (Documentation/network.md).
 * kipcd's network bridge (kernel/net/) answers them before they reach the
 * core; they get here only on a kernel without a network: ENONET.
 */
#include "syscalls.h"

namespace kipc {

long sys_net_node(KernelImpl &, Task &, const kipc_sqe &, kipc_cqe &)
{
	return -ENONET;
}

long sys_net_stat(KernelImpl &, Task &, const kipc_sqe &, kipc_cqe &)
{
	return -ENONET;
}

long sys_net_peer(KernelImpl &, Task &, const kipc_sqe &, kipc_cqe &)
{
	return -ENONET;
}

} // namespace kipc
