/* SPDX-License-Identifier: MIT */
/*
 * kipc across machines: the address types of the network
 * (Documentation/network.md). Plain C11, usable from C++20.
 *
 * A node-qualified pid is a pid_t with bit 31 set: the node index (given
 * by KIPC_SYS_net_node, local to the kernel that gave it) in bits 22-30,
 * the pid on that node in bits 0-21 (Linux pids are < 2^22). A remote
 * mailbox id is an int64 with bit 62 set, given by mbox_open of a
 * "/net/NODE/name".
 */
#ifndef _UAPI_KIPC_NET_H
#define _UAPI_KIPC_NET_H

#include <stdint.h>

#define KIPC_NET_NODE_MAX   31          /* node name length: [a-z0-9_-]{1,31} */
#define KIPC_NET_PREFIX     "/net/"     /* "/net/NODE/name" */
#define KIPC_NET_PID_BITS   22
#define KIPC_NET_PID_MASK   ((1u << KIPC_NET_PID_BITS) - 1)
#define KIPC_NET_INDEX_MAX  510         /* node indexes are 1..510 */
#define KIPC_NET_MBOX_BIT   (1ll << 62)

#define KIPC_NET_PID(index, pid) \
	((int32_t)(0x80000000u | ((uint32_t)(index) << KIPC_NET_PID_BITS) | \
		   ((uint32_t)(pid) & KIPC_NET_PID_MASK)))
#define KIPC_NET_IS_PID(p)    __kipc_net_is_pid((int64_t)(p))
#define KIPC_NET_PID_INDEX(p) ((((uint32_t)(p)) >> KIPC_NET_PID_BITS) & 0x1ff)
#define KIPC_NET_PID_PID(p)   ((int32_t)((uint32_t)(p) & KIPC_NET_PID_MASK))
#define KIPC_NET_IS_MBOX(id)  ((int64_t)(id) > 0 && ((int64_t)(id) & KIPC_NET_MBOX_BIT))

static inline int __kipc_net_is_pid(int64_t p)
{
	if (p >= 0 || p < -2147483647 - 1)
		return 0;
	return ((((uint32_t)p) >> KIPC_NET_PID_BITS) & 0x1ff) - 1u < KIPC_NET_INDEX_MAX;
}

/* KIPC_SYS_net_stat's record (sqe addr2/len2). */
struct kipc_net_stat {
	char     node[KIPC_NET_NODE_MAX + 1]; /* this kernel's node name */
	uint32_t connected;    /* 1: the NATS connection is up */
	uint32_t nproxies;     /* proxy tasks of remote callers here */
	uint32_t noutstanding; /* requests of local tasks waiting on other nodes */
	uint32_t rsvd0;
	uint64_t nsent;        /* requests sent (first transmissions) */
	uint64_t nretrans;     /* retransmissions and probes */
	uint64_t nserved;      /* remote requests run here */
	uint64_t ndups;        /* duplicates answered from the dedup table */
	uint64_t nunreach;     /* requests failed EHOSTUNREACH */
	uint64_t nunknown;     /* requests failed ENOLINK (outcome unknown) */
	uint64_t nsplit;       /* frames sent in parts (larger than one NATS message) */
	uint64_t partial_bytes; /* bytes of remote requests here still coming in parts */
	uint64_t nparts;       /* parts sent (of nsplit frames, and again on retransmissions) */
	uint64_t rsvd[1];
};

/* KIPC_SYS_net_peer's record: who a proxy task (pid >= 2^22) stands for. */
struct kipc_net_peer {
	char     node[KIPC_NET_NODE_MAX + 1]; /* the caller's node */
	int32_t  pid;          /* its pid there */
	uint32_t uid;          /* its uid there */
	uint32_t mapped_uid;   /* the uid it runs as here */
	uint32_t rsvd0;
	uint64_t rsvd[2];
};

#endif /* _UAPI_KIPC_NET_H */
