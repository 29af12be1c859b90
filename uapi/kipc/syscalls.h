/* SPDX-License-Identifier: MIT */
/*
 * kipc syscall table: the one list every other table is generated from.
 *
 * Each row is X(number, name, family), in ascending order of number.
 * Numbers may leave gaps (a family reserves a range; a gap is ENOSYS);
 * KIPC_NR_SYSCALLS is the highest number + 1. The number is the ABI and
 * never changes once released; the name is what tools print (kipc-trace, kipcs);
 * the family names the file in kernel/syscalls/ that holds its entry point.
 * The kernel's dispatch table, the KIPC_SYS_* numbers below and the name
 * table used by the tools all expand this macro, so adding a syscall is one
 * row here, one entry function, one core function and one libkipc wrapper.
 *
 * Plain C: usable from C11 and C++20.
 */
#ifndef _UAPI_KIPC_SYSCALLS_H
#define _UAPI_KIPC_SYSCALLS_H

#define KIPC_ENUMERATE_SYSCALLS(X)                                            \
	X(0, nop, misc)               /* completes at once; ring round trips */  \
	X(1, send, msg)               /* send to a task queue (pid)          */  \
	X(2, receive, msg)            /* receive from own task queue         */  \
	X(3, mbox_send, msg)          /* send to a mailbox                   */  \
	X(4, mbox_receive, msg)       /* receive from a mailbox              */  \
	X(5, mbox_receive_set, msg)   /* receive from any of several (port set) */ \
	X(6, call, rpc)               /* send to a pid and wait for the reply */ \
	X(7, mbox_call, rpc)          /* send to a mailbox, wait for the reply */ \
	X(8, reply, rpc)              /* answer a call by its reply token    */  \
	X(9, mbox_open, mbox)         /* create or look up a mailbox         */  \
	X(10, mbox_destroy, mbox)     /* destroy a mailbox (EIDRM to waiters) */ \
	X(11, mbox_stat, mbox)        /* read a mailbox's attributes/state   */  \
	X(12, mbox_setattr, mbox)     /* mode, uid, gid, capacity, policy    */  \
	X(13, mbox_set_owner, mbox)   /* transfer ownership to another task  */  \
	X(14, mbox_grant, mbox)       /* grant the receive right             */  \
	X(15, mbox_revoke, mbox)      /* revoke the receive right            */  \
	X(16, taskq_stat, task)       /* read own task queue's attributes    */  \
	X(17, taskq_setattr, task)    /* capacity and message size of own queue */ \
	X(18, cancel, cancel)         /* cancel a parked request by user_data */ \
	X(19, sysinfo, introspect)    /* limits and global counters          */  \
	X(20, task_list, introspect)  /* every task (kipc_task_info[])       */  \
	X(21, task_info, introspect)  /* one task by pid                     */  \
	X(22, mbox_list, introspect)  /* every visible mailbox               */  \
	X(23, mbox_info, introspect)  /* one mailbox by id                   */  \
	X(24, waiter_list, introspect) /* waiters and holders of a link      */  \
	X(25, msg_list, introspect)   /* headers of a link's queued messages */  \
	X(26, trace_open, trace)      /* open this task's trace listener     */  \
	X(27, trace_read, trace)      /* read trace events (parks while none) */ \
	X(28, trace_close, trace)     /* close the trace listener            */  \
	X(32, mq_open, mqueue)        /* POSIX mq_open: create or look up    */  \
	X(33, mq_unlink, mqueue)      /* POSIX mq_unlink: remove the name    */  \
	X(34, mq_timedsend, mqueue)   /* POSIX mq_send / mq_timedsend        */  \
	X(35, mq_timedreceive, mqueue) /* POSIX mq_receive / mq_timedreceive */ \
	X(36, mq_notify, mqueue)      /* POSIX mq_notify: (de)register       */  \
	X(37, mq_getattr, mqueue)     /* maxmsg, msgsize, curmsgs            */  \
	X(38, mq_close, mqueue)       /* a descriptor closed (flush)         */  \
	X(39, mq_notify_wait, mqueue) /* wait for a SIGEV_THREAD notification */ \
	X(48, msgget, sysvmsg)        /* System V msgget                     */  \
	X(49, msgsnd, sysvmsg)        /* System V msgsnd                     */  \
	X(50, msgrcv, sysvmsg)        /* System V msgrcv                     */  \
	X(51, msgctl, sysvmsg)        /* System V msgctl                     */  \
	X(56, kernel_info, introspect) /* version, build, pid, loop, socket  */ \
	X(57, mbox_peek, msg)         /* copy a mailbox's next message, leave it queued */ \
	X(64, cred_refresh, task)     /* re-read own credentials from the OS */ \
	X(65, sysctl, sysctl)         /* read or set an IPC limit (/proc/sys) */ \
	X(66, mq_setfl, mqueue)       /* a descriptor's O_NONBLOCK changed: new flags generation */ \
	X(67, reply_receive, rpc)     /* reply to a call, then receive from own task queue */ \
	X(68, mbox_reply_receive, rpc) /* reply to a call, then receive from a mailbox */ \
	X(69, mbox_send_bundle, msg)  /* many sends to a mailbox in one entry (transport.md 14) */ \
	X(70, mbox_receive_multi, msg) /* multishot receive into a provided-buffer ring */ \
	X(71, send_bundle, msg)       /* many sends to a task queue in one entry (transport.md 14) */ \
	X(80, net_node, net)          /* index of a node name (network.md)   */  \
	X(81, net_stat, net)          /* this node and its network counters  */  \
	X(82, net_peer, net)          /* the remote caller behind a proxy pid */

enum kipc_syscall_nr {
#define KIPC_SYSCALL_ENUM_(nr, name, family) KIPC_SYS_##name = nr,
	KIPC_ENUMERATE_SYSCALLS(KIPC_SYSCALL_ENUM_)
#undef KIPC_SYSCALL_ENUM_
	KIPC_NR_SYSCALLS
};

/* Not a syscall: the op of what a timer, an exit or the host runs
 * (kipc_trace_event.op). */
#define KIPC_SYS_NONE 0xffff

#endif /* _UAPI_KIPC_SYSCALLS_H */
