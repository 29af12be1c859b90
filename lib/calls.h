/* SPDX-License-Identifier: MIT */
/*
 * The library's column of the syscall table (<kipc/syscalls.h>). Not
 * installed.
 *
 * Each row X(shape, name, T) says that syscall KIPC_SYS_<name> has the C
 * API of its shape; T is the type of its target (pid_t: a task, int64_t:
 * a mailbox id). From the row, lib/syscalls.c generates the synchronous
 * wrappers (SYNC_<shape>) and lib/async.c the kipc_prep_<name>() helper
 * (PREP_<shape>); both encode the sqe with the shape's encoder of
 * lib/sqe.h and opcode KIPC_SYS_<name>, so a call of an ordinary shape is
 * this row, with no code of its own in the library. The prototypes stay
 * written out, with their contracts, in <kipc/libkipc.h>: that is what a
 * user (and the man pages) read, and the compiler holds each generated
 * definition to its prototype (a different signature does not build).
 *
 *  shape          sync wrappers (and their arguments after the target)   prep
 *  SEND           int kipc_N(T, buf, len, prio, flags), _timed, _x        yes
 *  READ           ssize_t kipc_N(T, buf, len, info, flags): never waits   yes
 *  RECEIVE        READ's, and _timed, _x                                  yes
 *  CALL           ssize_t kipc_N(T, req, reqlen, reply, replylen, info,
 *                 flags), _x                                              yes
 *  REPLY_RECEIVE  ssize_t kipc_N(token, reply, replylen, T, buf, len,
 *                 info, flags), _x (T after the reply, as its prototype)  yes
 *  PID            int kipc_N(T, pid_t pid)                                no
 *
 * The variants: _x takes struct kipc_opts (NULL: none), the plain one is
 * _x with NULL, _timed is _x with KIPC_F_TIMEOUT and the timeout. Each
 * shape has one helper in lib/syscalls.c (do_send, do_receive, do_call,
 * do_reply_receive, do_pid), which keeps what is particular to a call
 * by its opcode: the credit send of mbox_send and send, mbox_receive's pushed
 * message (transport.md sections 12 and 13), tried first without opts.
 *
 * Written by hand, because their shape is theirs alone: nop and cancel
 * (no buffer; cancel's target is a user_data), reply (a token, no info),
 * mbox_receive_set (an array of ids in), mbox_open (a name and an
 * optional record, checked before), the record calls (mbox_stat,
 * mbox_setattr, taskq_stat, taskq_setattr: the record's type), mbox_destroy,
 * cred_refresh (nothing to do before the first attach), and the calls of
 * lib/introspect.c, lib/mqueue.c and lib/net.c.
 */
#ifndef _LIBKIPC_CALLS_H
#define _LIBKIPC_CALLS_H

#define KIPC_LIB_CALLS(X)                                     \
	X(SEND, send, pid_t)                                  \
	X(RECEIVE, receive, pid_t)                            \
	X(SEND, mbox_send, int64_t)                           \
	X(RECEIVE, mbox_receive, int64_t)                     \
	X(CALL, call, pid_t)                                  \
	X(CALL, mbox_call, int64_t)                           \
	X(PID, mbox_set_owner, int64_t)                       \
	X(PID, mbox_grant, int64_t)                           \
	X(PID, mbox_revoke, int64_t)                          \
	X(READ, mbox_peek, int64_t)                           \
	X(REPLY_RECEIVE, reply_receive, pid_t)                \
	X(REPLY_RECEIVE, mbox_reply_receive, int64_t)

#endif /* _LIBKIPC_CALLS_H */
