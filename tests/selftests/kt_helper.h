/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kipcd stopped, and a helper process that makes one call per command:
 * for the selftests of what completes in the caller without kipcd (send
 * credits, receive push), which must see a second process's request
 * published while kipcd cannot answer it; and the mailbox and the
 * 4-byte messages they use. helper_loop() runs the commands (C_*), one
 * answer per command read.
 */
#ifndef _KIPC_KT_HELPER_H
#define _KIPC_KT_HELPER_H

#include "kipc_test.h"

#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>

/* Wait until pid is in /proc state want (R, S, T...); -1 if gone or late. */
static int wait_state(pid_t pid, char want)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (__ksft_now_ms() < deadline) {
		char st = kt_proc_state(pid);
		if (st == want)
			return 0;
		if (st == 0)
			return -1;
		sched_yield();
	}
	return -1;
}

static int stop_kipcd(void)
{
	if (kill(kt_main_kernel.pid, SIGSTOP) < 0)
		return -1;
	return wait_state(kt_main_kernel.pid, 'T');
}

static void cont_kipcd(void)
{
	kill(kt_main_kernel.pid, SIGCONT);
}

/* A mailbox of 64-byte messages anyone may send to and receive from
 * (kernel_owned; else only its owner receives and it dies with it). */
static int64_t open_box(uint32_t capacity, bool kernel_owned)
{
	struct kipc_mbox_attr a = kt_attr(capacity);
	a.msgsize = 64;
	a.mode = 0666;
	a.flags = kernel_owned ? KIPC_MBOX_KERNEL_OWNED : 0;
	return kipc_mbox_open(NULL, 0, &a);
}

/* Messages queued in id, or -errno. */
static int64_t nmsg(int64_t id)
{
	struct kipc_mbox_stat st;
	return kipc_mbox_stat(id, &st) < 0 ? (int64_t)-errno : (int64_t)st.nmsg;
}

/* One value (its length must be 4), or -errno. */
static int64_t recv1(int64_t id, unsigned flags)
{
	uint32_t v;
	ssize_t n = kipc_mbox_receive(id, &v, sizeof v, NULL, flags);
	if (n < 0)
		return -errno;
	return n == sizeof v ? (int64_t)v : -EBADMSG;
}

/* The helper's commands: on mailbox id, value arg (4 bytes), priority prio. */
enum {
	C_STAT,    /* nmsg() */
	C_RECV_NB, /* recv1(), KIPC_F_NONBLOCK */
	C_SEND,    /* send arg at prio, KIPC_F_NONBLOCK (0 or -errno) */
	C_DESTROY, /* mbox_destroy (0 or -errno) */
	C_SETCAP,  /* mbox_setattr of capacity arg (0 or -errno) */
	C_RECV,    /* recv1(), blocking */
	C_OWN,     /* a test's own commands from here on (helper_serve) */
};

struct cmd {
	int op;
	int64_t id;
	int64_t arg;
	unsigned prio;
};

struct helper {
	pid_t pid;
	int down, up; /* our ends */
};

/* In the helper, first: attach and say so (0 or -errno). 0 to go on. */
static int helper_ready(int out)
{
	int64_t ready = kipc_attach() < 0 ? -errno : 0;
	return write(out, &ready, sizeof ready) != sizeof ready || ready ? -1 : 0;
}

static int64_t helper_call(const struct cmd *c)
{
	uint32_t v = (uint32_t)c->arg;
	struct kipc_mbox_attr a;
	switch (c->op) {
	case C_STAT:
		return nmsg(c->id);
	case C_RECV:
	case C_RECV_NB:
		return recv1(c->id, c->op == C_RECV_NB ? KIPC_F_NONBLOCK : 0);
	case C_SEND:
		return kipc_mbox_send(c->id, &v, sizeof v, c->prio, KIPC_F_NONBLOCK) < 0 ? -errno : 0;
	case C_DESTROY:
		return kipc_mbox_destroy(c->id) < 0 ? -errno : 0;
	case C_SETCAP:
		memset(&a, 0, sizeof a);
		a.capacity = v;
		return kipc_mbox_setattr(c->id, KIPC_SET_CAPACITY, &a) < 0 ? -errno : 0;
	default:
		return -EINVAL;
	}
}

/* The helper: attach, say so (0 or -errno), then one answer per
 * command (own: the commands from C_OWN on, or NULL). */
static int helper_serve(int in, int out, int64_t (*own)(const struct cmd *c))
{
	if (helper_ready(out) < 0)
		return 1;
	struct cmd c;
	while (read(in, &c, sizeof c) == sizeof c) {
		int64_t res = c.op >= C_OWN && own ? own(&c) : helper_call(&c);
		if (write(out, &res, sizeof res) != sizeof res)
			return 2;
	}
	return 0;
}

static inline int helper_loop(int in, int out)
{
	return helper_serve(in, out, NULL);
}

static int helper_start(struct helper *h, int (*loop)(int in, int out))
{
	int down[2], up[2];
	if (pipe(down) < 0 || pipe(up) < 0)
		return -1;
	h->pid = fork();
	if (h->pid < 0)
		return -1;
	if (h->pid == 0) {
		close(down[1]);
		close(up[0]);
		_exit(loop(down[0], up[1]));
	}
	close(down[0]);
	close(up[1]);
	h->down = down[1];
	h->up = up[0];
	int64_t ready = -1;
	struct pollfd p = {.fd = h->up, .events = POLLIN};
	if (poll(&p, 1, KT_BOUND_MS) != 1 || read(h->up, &ready, sizeof ready) != sizeof ready)
		return -1;
	return ready == 0 ? 0 : -1;
}

static void helper_stop(struct helper *h)
{
	close(h->down);
	close(h->up);
	kt_wait(h->pid);
}

/* The answer to the last command, or INT64_MIN. */
static int64_t helper_answer(struct helper *h)
{
	int64_t res = INT64_MIN;
	struct pollfd p = {.fd = h->up, .events = POLLIN};
	if (poll(&p, 1, KT_BOUND_MS) != 1 || read(h->up, &res, sizeof res) != sizeof res)
		return INT64_MIN;
	return res;
}

static int64_t helper_do(struct helper *h, struct cmd c)
{
	if (write(h->down, &c, sizeof c) != sizeof c)
		return INT64_MIN;
	return helper_answer(h);
}

/*
 * With kipcd stopped: give the helper a command and wait until it has
 * read it and sleeps, in its call (its request is published, kipcd
 * cannot answer it) or back in its read (it answered without kipcd).
 * 0, or -1 (not within the bound).
 */
static int helper_give_asleep(struct helper *h, struct cmd c)
{
	if (write(h->down, &c, sizeof c) != sizeof c)
		return -1;
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	int n = 1;
	while (__ksft_now_ms() < deadline && ioctl(h->down, FIONREAD, &n) == 0 && n)
		sched_yield();
	return n || wait_state(h->pid, 'S') < 0 ? -1 : 0;
}

/* The same, the helper in its call; then continue kipcd and return the answer. */
static int64_t helper_do_stopped(struct helper *h, struct cmd c)
{
	int r = helper_give_asleep(h, c);
	cont_kipcd();
	return r < 0 ? INT64_MIN : helper_answer(h);
}

#endif /* _KIPC_KT_HELPER_H */
