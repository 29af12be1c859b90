// SPDX-License-Identifier: MIT
/*
 * credit_test: send credits (transport.md section 12). A synchronous
 * mbox_send with a credit returns without waiting for kipcd; every
 * hazard of that is tested with kipcd stopped (SIGSTOP), so the sends
 * that returned are only published, and the other side's request is
 * published after them (its process sleeps in the call) before kipcd
 * continues:
 *  - a stat, a receive and a nonblocking receive see every credit send
 *    that returned before they were made;
 *  - a setattr (capacity), a destroy, the owner's death and a
 *    cred_refresh take the credits back: the next send has the exact
 *    result (EAGAIN at the new capacity, EIDRM), never a false success;
 *  - the sender's death: what it sent with credits is delivered;
 *  - a bad payload fails EFAULT in the caller, nothing sent;
 *  - priorities and FIFO across credit and ordinary sends, of the holder
 *    and of another process;
 *  - credits never take room from another sender, and go back unused;
 *  - forged credit entries are ordinary sends, never past the room;
 *  - the exact-once ledger over credit sends racing revocations (a
 *    second thread's cred_refresh), so that some sends see their grant
 *    revoked after they published and wait for kipcd's answer.
 * The test reads its own credit words (struct kipc_credit in its region)
 * to know that the credit path was taken.
 */
/* credits here go back only when a test takes them back (credit_idle_ms) */
#define KT_BOOT_PARAMS "credit_idle_ms=600000"
#include "kt_helper.h"

#include <kipc/ring.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

/* ---- the credit words of this process ---------------------------- */

static const struct kipc_credit *credit_words(void)
{
	char want[64], line[512];
	snprintf(want, sizeof want, "/memfd:kipc:%d ", getpid());
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return NULL;
	const struct kipc_credit *c = NULL;
	while (fgets(line, sizeof line, f)) {
		unsigned long start, off;
		if (strstr(line, want) && sscanf(line, "%lx-%*x %*s %lx", &start, &off) == 2 &&
		    off == 0) {
			c = (const struct kipc_credit *)(start + KIPC_CREDIT_OFF);
			break;
		}
	}
	fclose(f);
	return c;
}

static uint32_t cgen(const struct kipc_credit *c)
{
	return __atomic_load_n(&c->gen, __ATOMIC_ACQUIRE);
}

/*
 * Send a primer message (value 1000) until the kernel grants credits for
 * id (a competitor's cooldown may delay the grant; each primer sent
 * without a grant is taken back): the one that earned them stays queued.
 * Returns 1, 0 (granted already), or -1.
 */
static int get_credits(int64_t id, const struct kipc_credit *c)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	int n = 0;
	if (cgen(c) && c->link == id && c->limit >= 8)
		return 0; /* still granted */
	while (__ksft_now_ms() < deadline) {
		uint32_t v = 1000;
		if (kipc_mbox_send(id, &v, sizeof v, 0, 0) < 0)
			return -1;
		if (cgen(c) && c->link == id && c->limit >= 8)
			return n + 1;
		/* timed: a plain receive may earn a push, which caps the next
		 * grant's priority at the earning send's (transport.md 13) */
		if (kipc_mbox_receive_timed(id, &v, sizeof v, NULL, 0, 1000000000) != sizeof v)
			return -1;
		sched_yield();
	}
	return -1;
}

/* ---- kipcd stopped ------------------------------------------------ */

/*
 * Stop kipcd holding credits for id (a competitor's cooldown may take
 * them between the grant and the stop: then again).
 * Returns the primers get_credits() left queued, or -1.
 */
static int stop_with_credits(int64_t id, const struct kipc_credit *c)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	int primers = 0;
	while (__ksft_now_ms() < deadline) {
		int n = get_credits(id, c);
		if (n < 0)
			return -1;
		primers += n;
		if (stop_kipcd() < 0)
			return -1;
		if (cgen(c) && c->link == id)
			return primers; /* stopped: nobody takes them now */
		cont_kipcd();
	}
	return -1;
}

/* ---- the helper's own commands (kt_helper.h has the shared ones) -- */

enum {
	C_GETCRED = C_OWN, /* the primers left queued, or -1 */
	C_CGEN,            /* our grant for the mailbox, 0: none */
	C_FILL,            /* nonblocking sends of arg bytes until one fails: how many */
	C_PEEK,            /* mbox_peek of one value: it, or -errno */
};

static int64_t credit_cmd(const struct cmd *c)
{
	const struct kipc_credit *w = credit_words();
	switch (c->op) {
	case C_GETCRED:
		return w ? get_credits(c->id, w) : -1;
	case C_CGEN:
		return w && w->link == c->id ? cgen(w) : 0;
	case C_FILL: {
		char *big = calloc(1, (size_t)c->arg);
		int64_t n = 0;
		while (big && kipc_mbox_send(c->id, big, (size_t)c->arg, 0, KIPC_F_NONBLOCK) == 0)
			n++;
		free(big);
		return n;
	}
	case C_PEEK: {
		uint32_t v;
		ssize_t n = kipc_mbox_peek(c->id, &v, sizeof v, NULL, 0);
		return n < 0 ? -errno : n == sizeof v ? (int64_t)v : -EBADMSG;
	}
	default:
		return -EINVAL;
	}
}

static int credit_loop(int in, int out)
{
	return helper_serve(in, out, credit_cmd);
}

/* What most tests start from: attached, this process's credit words, a
 * kernel-owned mailbox of capacity cap, and (with_helper) a helper. */
struct box {
	const struct kipc_credit *c;
	int64_t id;
	struct helper h;
	bool with_helper;
};

static struct box box_setup(struct __test_metadata *_metadata, uint32_t cap, bool with_helper)
{
	struct box b = {.with_helper = with_helper};
	ASSERT_EQ(0, kipc_attach());
	b.c = credit_words();
	ASSERT_NE(NULL, b.c);
	b.id = open_box(cap, true);
	ASSERT_LT(0, b.id);
	if (with_helper)
		ASSERT_EQ(0, helper_start(&b.h, credit_loop));
	return b;
}

/* The end of such a test: the helper (if any) stops, the mailbox goes. */
static void box_done(struct __test_metadata *_metadata, struct box *b)
{
	if (b->with_helper)
		helper_stop(&b->h);
	EXPECT_EQ(0, kipc_mbox_destroy(b->id));
}

/* Receive, without blocking, the n primers that get_credits() left. */
static void expect_primers(struct __test_metadata *_metadata, int64_t id, int n)
{
	for (int i = 0; i < n; i++) {
		uint32_t v;
		ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive(id, &v, sizeof v, NULL, KIPC_F_NONBLOCK));
		EXPECT_EQ(1000u, v);
	}
}

/* In a child: attach and find the credit words. 0, or an exit code. */
static int child_start(const struct kipc_credit **c)
{
	if (kipc_attach() < 0)
		return 1;
	*c = credit_words();
	return *c ? 0 : 2;
}

/* ---- the tests ---------------------------------------------------- */

/* A stat, a receive and a nonblocking receive made after credit sends
 * returned see them, in order. */
TEST(credit_sends_return_without_kipcd_and_are_seen)
{
	struct box b = box_setup(_metadata, 64, true);
	int primers = stop_with_credits(b.id, b.c);
	ASSERT_LT(0, primers);
	int sent = 0;
	for (uint32_t v = 0; v < 6; v++)
		sent += kipc_mbox_send(b.id, &v, sizeof v, 0, 0) == 0;
	char st = kt_proc_state(kt_main_kernel.pid);
	if (st != 'T')
		cont_kipcd();
	ASSERT_EQ('T', st); /* they returned while kipcd was stopped */
	ASSERT_EQ(6, sent);
	/* the stat is made after they returned: it sees all of them */
	EXPECT_EQ(primers + 6, helper_do_stopped(&b.h, (struct cmd){C_STAT, b.id, 0, 0}));
	for (int i = 0; i < primers; i++)
		EXPECT_EQ(1000, helper_do(&b.h, (struct cmd){C_RECV_NB, b.id, 0, 0}));
	for (int64_t v = 0; v < 6; v++)
		EXPECT_EQ(v, helper_do(&b.h, (struct cmd){C_RECV_NB, b.id, 0, 0}));
	EXPECT_EQ(-EAGAIN, helper_do(&b.h, (struct cmd){C_RECV_NB, b.id, 0, 0}));

	/* A nonblocking receive, then a blocking one, made after a credit
	 * send returned: never EAGAIN, never a wait. */
	for (uint32_t v = 7; v <= 8; v++) {
		int more = stop_with_credits(b.id, b.c); /* 0 unless they were taken back */
		ASSERT_LE(0, more);
		ASSERT_EQ(0, kipc_mbox_send(b.id, &v, sizeof v, 0, 0));
		int64_t first = helper_do_stopped(&b.h, (struct cmd){v == 7 ? C_RECV_NB : C_RECV, b.id, 0, 0});
		EXPECT_EQ(more ? 1000 : (int64_t)v, first);
		for (int i = 1; i < more; i++)
			EXPECT_EQ(1000, helper_do(&b.h, (struct cmd){C_RECV_NB, b.id, 0, 0}));
		if (more)
			EXPECT_EQ(v, helper_do(&b.h, (struct cmd){C_RECV_NB, b.id, 0, 0}));
	}
	box_done(_metadata, &b);
}

/* A capacity change takes the credits back: the holder's sends then
 * stop exactly at the new capacity. */
TEST(setattr_takes_credits_back)
{
	struct box b = box_setup(_metadata, 64, true);
	int primers = stop_with_credits(b.id, b.c);
	ASSERT_LT(0, primers);
	for (uint32_t v = 0; v < 4; v++)
		ASSERT_EQ(0, kipc_mbox_send(b.id, &v, sizeof v, 0, 0));
	/* room for one more after what was sent */
	int cap = primers + 5;
	EXPECT_EQ(0, helper_do_stopped(&b.h, (struct cmd){C_SETCAP, b.id, cap, 0}));
	EXPECT_EQ(0u, cgen(b.c));
	uint32_t v = 4;
	EXPECT_EQ(0, kipc_mbox_send(b.id, &v, sizeof v, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(-1, kipc_mbox_send(b.id, &v, sizeof v, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(cap, nmsg(b.id));
	box_done(_metadata, &b);
}

/* Another process's peek changes nothing (changes_nothing()): it sees
 * the credit sends before it, and the holder keeps its credits. */
TEST(peek_leaves_credits)
{
	struct box b = box_setup(_metadata, 64, true);
	int primers = stop_with_credits(b.id, b.c);
	ASSERT_LT(0, primers);
	uint32_t gen = cgen(b.c), v = 7;
	ASSERT_EQ(0, kipc_mbox_send(b.id, &v, sizeof v, 0, 0));
	EXPECT_EQ(1000, helper_do_stopped(&b.h, (struct cmd){C_PEEK, b.id, 0, 0}));
	EXPECT_EQ(gen, cgen(b.c));
	expect_primers(_metadata, b.id, primers);
	EXPECT_EQ(7, recv1(b.id, KIPC_F_NONBLOCK));
	box_done(_metadata, &b);
}

/* A destroy takes the credits back: the next send fails EIDRM. */
TEST(destroy_takes_credits_back)
{
	struct box b = box_setup(_metadata, 64, true);
	ASSERT_LT(0, stop_with_credits(b.id, b.c));
	for (uint32_t v = 0; v < 4; v++)
		ASSERT_EQ(0, kipc_mbox_send(b.id, &v, sizeof v, 0, 0));
	EXPECT_EQ(0, helper_do_stopped(&b.h, (struct cmd){C_DESTROY, b.id, 0, 0}));
	EXPECT_EQ(0u, cgen(b.c));
	uint32_t v = 4;
	EXPECT_EQ(-1, kipc_mbox_send(b.id, &v, sizeof v, 0, 0));
	EXPECT_EQ(EIDRM, errno);
	helper_stop(&b.h);
}

static int own_and_wait(void *arg)
{
	int *fds = arg;
	if (kipc_attach() < 0)
		return 1;
	int64_t id = open_box(64, false); /* dies with us */
	/* the parent may receive (get_credits() takes primers back) */
	if (id < 0 || kipc_mbox_grant(id, getppid()) < 0 ||
	    write(fds[1], &id, sizeof id) != sizeof id)
		return 2;
	for (;;)
		pause();
}

/* The owner dies: once kipcd has seen it, sends fail EIDRM (the credits
 * went back before the mailbox went away). */
TEST(owner_death_takes_credits_back)
{
	ASSERT_EQ(0, kipc_attach());
	const struct kipc_credit *c = credit_words();
	ASSERT_NE(NULL, c);
	int fds[2];
	ASSERT_EQ(0, pipe(fds));
	pid_t o = kt_fork(own_and_wait, fds);
	ASSERT_LT(0, o);
	int64_t id = 0;
	struct pollfd p = {.fd = fds[0], .events = POLLIN};
	ASSERT_EQ(1, poll(&p, 1, KT_BOUND_MS));
	ASSERT_EQ((ssize_t)sizeof id, read(fds[0], &id, sizeof id));
	ASSERT_LT(0, stop_with_credits(id, c));
	for (uint32_t v = 0; v < 4; v++)
		ASSERT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, 0));
	kill(o, SIGKILL);
	waitpid(o, NULL, 0);
	cont_kipcd();
	/* wait until kipcd has seen the death (a stat fails EIDRM) */
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (nmsg(id) >= 0 && __ksft_now_ms() < deadline)
		sched_yield();
	EXPECT_EQ(-EIDRM, nmsg(id));
	EXPECT_EQ(0u, cgen(c));
	uint32_t v = 4;
	EXPECT_EQ(-1, kipc_mbox_send(id, &v, sizeof v, 0, 0));
	EXPECT_EQ(EIDRM, errno);
	close(fds[0]);
	close(fds[1]);
}

struct death_arg {
	int64_t id;
	int fds[2];
};

static int send_and_die(void *arg)
{
	struct death_arg *d = arg;
	const struct kipc_credit *c;
	int e = child_start(&c);
	if (e)
		return e;
	int primers = get_credits(d->id, c);
	if (primers < 0)
		return 3;
	char go;
	if (write(d->fds[1], &primers, sizeof primers) != sizeof primers ||
	    read(d->fds[0], &go, 1) != 1) /* the parent stopped kipcd */
		return 4;
	if (!cgen(c) || c->link != d->id)
		return 6; /* taken back before kipcd stopped: again */
	for (uint32_t v = 0; v < 8; v++)
		if (kipc_mbox_send(d->id, &v, sizeof v, 0, 0) < 0)
			return 5;
	return 0; /* exits with its credit sends only published */
}

/* The sender exits right after its credit sends returned: they are
 * delivered, each once. */
TEST(sender_death_delivers_credit_sends)
{
	ASSERT_EQ(0, kipc_attach());
	struct death_arg d;
	d.id = open_box(64, true);
	ASSERT_LT(0, d.id);
	int up[2], down[2];
	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(down));
	int cfds[2] = {down[0], up[1]};
	memcpy(d.fds, cfds, sizeof cfds);
	int primers = 0, st = 6;
	for (int tries = 0; st == 6 && tries < 5; tries++) {
		pid_t s = kt_fork(send_and_die, &d);
		ASSERT_LT(0, s);
		int n = -1;
		struct pollfd p = {.fd = up[0], .events = POLLIN};
		ASSERT_EQ(1, poll(&p, 1, KT_BOUND_MS));
		ASSERT_EQ((ssize_t)sizeof n, read(up[0], &n, sizeof n));
		ASSERT_LT(0, n);
		primers += n;
		ASSERT_EQ(0, stop_kipcd());
		ASSERT_EQ(1, write(down[1], "g", 1));
		st = kt_wait(s); /* exited while kipcd was stopped */
		cont_kipcd();
	}
	ASSERT_EQ(0, st);
	expect_primers(_metadata, d.id, primers);
	for (uint32_t i = 0; i < 8; i++) {
		uint32_t v = 99;
		EXPECT_EQ((ssize_t)sizeof v, kipc_mbox_receive(d.id, &v, sizeof v, NULL, KIPC_F_NONBLOCK));
		EXPECT_EQ(i, v);
	}
	uint32_t v;
	EXPECT_EQ(-1, kipc_mbox_receive(d.id, &v, sizeof v, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(0, kipc_mbox_destroy(d.id));
}

/* A bad buffer fails EFAULT in the caller (kipcd stopped: it never saw
 * the call), nothing is sent, and the credit is still there. */
TEST(bad_payload_fails_efault_in_the_caller)
{
	struct box b = box_setup(_metadata, 64, false);
	void *bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, bad);
	int primers = stop_with_credits(b.id, b.c);
	ASSERT_LT(0, primers);
	int r = kipc_mbox_send(b.id, bad, 16, 0, 0);
	int err = errno;
	uint32_t v = 5;
	int r2 = kipc_mbox_send(b.id, &v, sizeof v, 0, 0); /* the credit path still */
	char st = kt_proc_state(kt_main_kernel.pid);
	cont_kipcd();
	EXPECT_EQ(-1, r);
	EXPECT_EQ(EFAULT, err);
	EXPECT_EQ(0, r2);
	EXPECT_EQ('T', st);
	EXPECT_EQ(primers + 1, nmsg(b.id));
	munmap(bad, 4096);
	box_done(_metadata, &b);
}

/* Priorities and FIFO across credit sends, the holder's ordinary sends
 * and another process's send made after the credit sends returned. */
TEST(priority_and_order_across_credit_and_ordinary_sends)
{
	struct box b = box_setup(_metadata, 64, true);
	int primers = get_credits(b.id, b.c);
	ASSERT_LT(0, primers);
	for (int i = 0; i < primers; i++) {
		uint32_t v;
		/* timed: it earns no push, which would cap the credits' priority at 0 */
		ASSERT_EQ((ssize_t)sizeof v,
			  kipc_mbox_receive_timed(b.id, &v, sizeof v, NULL, 0, 1000000000));
	}
	/* the holder: credit, ordinary (a timed send never uses one), credit */
	uint32_t v = 10;
	ASSERT_EQ(0, kipc_mbox_send(b.id, &v, sizeof v, 0, 0));
	v = 11;
	ASSERT_EQ(0, kipc_mbox_send_timed(b.id, &v, sizeof v, 0, 0, 1000000000));
	v = 12;
	ASSERT_EQ(0, kipc_mbox_send(b.id, &v, sizeof v, 0, 0));
	int more = stop_with_credits(b.id, b.c); /* primers, if the grant had gone */
	ASSERT_LE(0, more);
	if (b.c->prio < 2) /* the prio-2 send would wait for kipcd, stopped */
		cont_kipcd();
	ASSERT_LE(2u, b.c->prio);
	v = 20;
	ASSERT_EQ(0, kipc_mbox_send(b.id, &v, sizeof v, 1, 0));
	v = 21;
	ASSERT_EQ(0, kipc_mbox_send(b.id, &v, sizeof v, 2, 0));
	/* another process's prio-2 send after them comes after 21 */
	EXPECT_EQ(0, helper_do_stopped(&b.h, (struct cmd){C_SEND, b.id, 22, 2}));
	uint32_t want[] = {21, 22, 20, 10, 11, 12};
	for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++) {
		ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive(b.id, &v, sizeof v, NULL, KIPC_F_NONBLOCK));
		EXPECT_EQ(want[i], v);
	}
	expect_primers(_metadata, b.id, more);
	box_done(_metadata, &b);
}

/* Credits never take room from another sender: it fills the mailbox. */
TEST(credits_leave_room_to_other_senders)
{
	struct box b = box_setup(_metadata, 20, true);
	int primers = get_credits(b.id, b.c);
	ASSERT_LT(0, primers);
	int ok = 0;
	for (int i = 0; i < 40; i++)
		if (helper_do(&b.h, (struct cmd){C_SEND, b.id, i, 0}) == 0)
			ok++;
	EXPECT_EQ(20 - primers, ok);
	EXPECT_EQ(20, nmsg(b.id));
	EXPECT_EQ(0u, cgen(b.c)); /* taken back for the other sender */
	box_done(_metadata, &b);
}

/* Unused credits go back by themselves; a cred_refresh takes them back. */
TEST(unused_credits_go_back)
{
	static const char *const params[] = {"credit_idle_ms=50", NULL};
	struct kt_kernel k;
	char why[256] = "";
	ASSERT_EQ(KSFT_PASS, kt_kernel_boot(&k, params, why, sizeof why)) TH_LOG("%s", why);
	kt_kernel_use(&k);
	struct box b = box_setup(_metadata, 64, false);
	ASSERT_LT(0, get_credits(b.id, b.c));
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (cgen(b.c) && __ksft_now_ms() < deadline)
		sched_yield();
	EXPECT_EQ(0u, cgen(b.c));
	ASSERT_LT(0, get_credits(b.id, b.c));
	EXPECT_EQ(0, kipc_cred_refresh());
	EXPECT_EQ(0u, cgen(b.c));
	box_done(_metadata, &b);
	kipc_detach();
	int st = kt_kernel_stop(&k, SIGTERM);
	EXPECT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	kt_kernel_cleanup_dir(&k);
}

/* Reap n completions: how many succeeded, failed EAGAIN, failed otherwise. 0 or -1. */
static int reap_counts(int n, int *ok, int *eagain, int *other)
{
	*ok = *eagain = *other = 0;
	for (int i = 0; i < n; i++) {
		struct kipc_cqe *cqe;
		if (kipc_wait_cqe(&cqe) != 0)
			return -1;
		if (cqe->res == 0)
			(*ok)++;
		else if (cqe->res == -EAGAIN)
			(*eagain)++;
		else
			(*other)++;
		kipc_cqe_seen(cqe);
	}
	return 0;
}

/* Entries forged with KIPC_F_CREDIT (the async API passes flags through)
 * are ordinary sends beyond the kernel's own count: never past the room. */
TEST(forged_credit_entries_are_ordinary_sends)
{
	struct box b = box_setup(_metadata, 20, false);
	int primers = get_credits(b.id, b.c);
	ASSERT_LT(0, primers);
	uint32_t gen = cgen(b.c);
	void *buf = kipc_buf_alloc(4);
	ASSERT_NE(NULL, buf);
	memset(buf, 0, 4);
	int n = 0;
	for (int i = 0; i < 30; i++) {
		struct kipc_sqe *sqe = kipc_get_sqe();
		ASSERT_NE(NULL, sqe);
		kipc_prep_mbox_send(sqe, b.id, buf, 4, 0, KIPC_F_NONBLOCK);
		sqe->flags |= KIPC_F_CREDIT;
		sqe->timeout = gen;
		kipc_sqe_set_data(sqe, 1);
		n++;
	}
	ASSERT_LE(0, kipc_submit());
	int ok, eagain, other;
	ASSERT_EQ(0, reap_counts(n, &ok, &eagain, &other));
	EXPECT_EQ(20 - primers, ok);
	EXPECT_EQ(n - (20 - primers), eagain);
	EXPECT_EQ(0, other);
	EXPECT_EQ(20, nmsg(b.id));
	kipc_buf_free(buf);
	box_done(_metadata, &b);
}

/* A child that receives one message of the mailbox *arg (it parks first). */
static int receive_one(void *arg)
{
	uint32_t v;
	if (kipc_attach() < 0)
		return 1;
	return kipc_mbox_receive(*(int64_t *)arg, &v, sizeof v, NULL, 0) == sizeof v ? 0 : 2;
}

/*
 * A lock step (transport.md section 12): a credit send that a parked
 * receiver takes at once, followed by a receive of the sender (a
 * ping-pong, a call made of a send and a receive), takes the sender's
 * credits back; its sends taken at once earn none; a send that stays
 * queued (the receiver is behind) earns them again.
 */
TEST(a_lock_step_gives_its_credits_back)
{
	struct box b = box_setup(_metadata, 64, false);
	int64_t other = open_box(4, true);
	ASSERT_LT(0, other);
	ASSERT_LE(0, get_credits(b.id, b.c));
	uint32_t v;
	/* timed: a plain receive may earn a push, which takes back credits of
	 * any priority (transport.md 13) */
	while (nmsg(b.id) > 0)
		ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive_timed(b.id, &v, sizeof v, NULL, 0,
								     1000000000));
	for (int round = 0; round < 2; round++) {
		pid_t r = kt_fork(receive_one, &b.id);
		ASSERT_LT(0, r);
		ASSERT_EQ(0, kt_wait_blocked(r, KIPC_SYS_mbox_receive));
		if (round == 0)
			ASSERT_NE(0u, cgen(b.c)); /* this send is a credit send */
		v = 7;
		ASSERT_EQ(0, kipc_mbox_send(b.id, &v, sizeof v, 0, 0));
		if (round == 1)
			EXPECT_EQ(0u, cgen(b.c)); /* none earned */
		EXPECT_EQ(-1, kipc_mbox_receive(other, &v, sizeof v, NULL, KIPC_F_NONBLOCK));
		EXPECT_EQ(EAGAIN, errno);
		EXPECT_EQ(0u, cgen(b.c)); /* taken back (round 0), none since (round 1) */
		EXPECT_EQ(0, kt_wait(r));
	}
	EXPECT_EQ(0, nmsg(b.id));
	/* nobody receives: the send stays queued and earns credits again */
	EXPECT_EQ(1, get_credits(b.id, b.c));
	expect_primers(_metadata, b.id, 1);
	EXPECT_EQ(0, kipc_mbox_destroy(other));
	box_done(_metadata, &b);
}

#define NLEDGER 5000
#define LSTOP 0xffffffffu

struct race {
	int64_t id;
	struct kt_ledger *led;
	volatile int stop;
	unsigned refreshes;
	uint32_t sent; /* the sender's sends so far */
};

/*
 * A revocation (cred_refresh) every 4 sends of the sender, paced by its
 * progress, not by time: unpaced, on an idle machine this thread took
 * every grant back before the sender's next send could use it, and the
 * credit path was never raced at all.
 */
static void *refresher(void *arg)
{
	struct race *r = arg;
	uint32_t last = 0;
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		uint32_t now = __atomic_load_n(&r->sent, __ATOMIC_ACQUIRE);
		if (now - last < 4) {
			sched_yield();
			continue;
		}
		last = now;
		if (kipc_cred_refresh() == 0)
			r->refreshes++;
	}
	return NULL;
}

static int ledger_sender(void *arg)
{
	struct race *r = arg;
	const struct kipc_credit *c;
	int e = child_start(&c);
	if (e)
		return e;
	pthread_t t;
	if (pthread_create(&t, NULL, refresher, r))
		return 3;
	unsigned granted = 0;
	for (uint32_t i = 0; i < NLEDGER; i++) {
		granted += cgen(c) != 0;
		if (kipc_mbox_send(r->id, &i, sizeof i, 0, 0) == 0)
			kt_ledger_sent(r->led, i);
		__atomic_store_n(&r->sent, i + 1, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	uint32_t v = LSTOP;
	if (kipc_mbox_send(r->id, &v, sizeof v, 0, 0) < 0)
		return 4;
	ksft_print("# sender: %u of %u sends found a grant, %u cred_refresh\n", granted,
		   NLEDGER, r->refreshes);
	return granted ? 0 : 5; /* the credit path was taken */
}

/* Exact-once: every send that returned success is received once, with
 * revocations racing the credit sends' publication. About 15,000 calls
 * among three threads and kipcd: 1 s on an idle machine, over 30 s
 * measured at load 19 (make check's epoll pass): the bound for a hang is
 * 120 s. */
TEST_TIMEOUT(ledger_credit_sends_racing_revocations, 120)
{
	ASSERT_EQ(0, kipc_attach());
	struct kt_ledger led;
	ASSERT_EQ(0, kt_ledger_init(&led, NLEDGER));
	struct race *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r);
	memset(r, 0, sizeof *r);
	r->id = open_box(64, true);
	ASSERT_LT(0, r->id);
	r->led = &led;
	pid_t s = kt_fork(ledger_sender, r);
	ASSERT_LT(0, s);
	unsigned bogus = 0;
	for (;;) {
		uint32_t v;
		ssize_t n = kipc_mbox_receive_timed(r->id, &v, sizeof v, NULL, 0,
						    (int64_t)KT_BOUND_MS * 1000000);
		ASSERT_EQ((ssize_t)sizeof v, n);
		if (v == LSTOP)
			break;
		if (!kt_ledger_received(&led, v))
			bogus++;
	}
	EXPECT_EQ(0, kt_wait(s));
	unsigned nsent = 0;
	EXPECT_EQ(0u, kt_ledger_check(&led, &nsent));
	EXPECT_EQ(0u, bogus);
	EXPECT_EQ(NLEDGER, nsent);
	EXPECT_EQ(0, kipc_mbox_destroy(r->id));
	munmap(r, sizeof *r);
	kt_ledger_destroy(&led);
}

/* Bytes the user's credits hold are given back to another send of the
 * same user that needs them: a second process fills the user's quota
 * on another mailbox exactly as far as it could with no credits held. */
TEST(credits_leave_the_quota_to_other_sends)
{
	struct box b = box_setup(_metadata, 64, true);
	struct kipc_mbox_attr a = kt_attr(64);
	a.msgsize = 32768;
	a.mode = 0666;
	a.flags = KIPC_MBOX_KERNEL_OWNED;
	int64_t big = kipc_mbox_open(NULL, 0, &a);
	ASSERT_LT(0, big);
	a.capacity = KIPC_UNBOUNDED;
	int64_t fill = kipc_mbox_open(NULL, 0, &a);
	ASSERT_LT(0, fill);
	/* credits for 32 KiB messages: about half of bytes_per_user */
	ASSERT_LT(0, get_credits(big, b.c));
	int64_t with = helper_do(&b.h, (struct cmd){C_FILL, fill, 30000, 0});
	EXPECT_EQ(0u, cgen(b.c)); /* taken back for the bytes */
	ASSERT_LT(0, with);
	static char buf[30000];
	for (int64_t i = 0; i < with; i++)
		ASSERT_EQ((ssize_t)sizeof buf, kipc_mbox_receive(fill, buf, sizeof buf, NULL, KIPC_F_NONBLOCK));
	/* the same fill with none of this process's credits held */
	EXPECT_EQ(0, kipc_cred_refresh()); /* takes back our own, if any were left */
	EXPECT_EQ(0u, cgen(b.c));
	int64_t without = helper_do(&b.h, (struct cmd){C_FILL, fill, 30000, 0});
	EXPECT_EQ(without, with);
	ksft_print("# %lld sends of 30000 bytes fit the quota with credits held, %lld without\n",
		   (long long)with, (long long)without);
	EXPECT_EQ(0, kipc_mbox_destroy(fill));
	EXPECT_EQ(0, kipc_mbox_destroy(big));
	box_done(_metadata, &b);
}

/* ---- several holders (fan-in) ------------------------------------ */

/*
 * This process and the helper both hold credits for id, with kipcd
 * stopped (each holder's credits still granted). Returns the primers
 * left queued, or -1.
 */
static int stop_with_two_holders(struct box *b)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	int primers = 0;
	while (__ksft_now_ms() < deadline) {
		int n = get_credits(b->id, b->c);
		int64_t m = helper_do(&b->h, (struct cmd){C_GETCRED, b->id, 0, 0});
		if (n < 0 || m < 0)
			return -1;
		primers += n + (int)m;
		if (stop_kipcd() < 0)
			return -1;
		if (cgen(b->c) && b->c->link == b->id &&
		    helper_do(&b->h, (struct cmd){C_CGEN, b->id, 0, 0}) > 0)
			return primers; /* both hold, nobody takes them now */
		cont_kipcd();
	}
	return -1;
}

/* Receive the primers, in whatever order the two holders' came. */
static void skip_primers(struct __test_metadata *_metadata, int64_t id, int n)
{
	for (int i = 0; i < n; i++) {
		uint32_t v;
		ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive(id, &v, sizeof v, NULL, KIPC_F_NONBLOCK));
		EXPECT_EQ(1000u, v);
	}
}

/* Two holders' credit sends, each made after the other's returned, all
 * only published (kipcd stopped): received in the order they were made,
 * not one holder's after the other's. */
TEST(two_holders_credit_sends_keep_their_order)
{
	struct box b = box_setup(_metadata, 64, true);
	for (int round = 0; round < 3; round++) {
		int primers = stop_with_two_holders(&b);
		ASSERT_LE(0, primers);
		int ok = 0;
		for (uint32_t v = 0; v < 8; v++) {
			if (v % 2 == (uint32_t)round % 2)
				ok += kipc_mbox_send(b.id, &v, sizeof v, 0, 0) == 0;
			else
				ok += helper_do(&b.h, (struct cmd){C_SEND, b.id, v, 0}) == 0;
		}
		char st = kt_proc_state(kt_main_kernel.pid);
		cont_kipcd();
		ASSERT_EQ('T', st); /* all returned while kipcd was stopped */
		ASSERT_EQ(8, ok);
		skip_primers(_metadata, b.id, primers);
		for (uint32_t want = 0; want < 8; want++) {
			uint32_t v = 99;
			ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive(b.id, &v, sizeof v, NULL, KIPC_F_NONBLOCK));
			EXPECT_EQ(want, v);
		}
		uint32_t v;
		EXPECT_EQ(-1, kipc_mbox_receive(b.id, &v, sizeof v, NULL, KIPC_F_NONBLOCK));
		EXPECT_EQ(EAGAIN, errno);
	}
	box_done(_metadata, &b);
}

/* Forged order stamps (far future, zero) on credit entries of one
 * holder: every entry is still taken once, in its own SQ order, the
 * other holder's honest sends first (a future stamp only delays the
 * forger's own), and nothing hangs. */
TEST(forged_credit_stamps_delay_only_the_forger)
{
	struct box b = box_setup(_metadata, 64, true);
	int primers = stop_with_two_holders(&b);
	ASSERT_LE(0, primers);
	uint32_t gen = cgen(b.c);
	uint32_t *buf = kipc_buf_alloc(2 * sizeof(uint32_t));
	ASSERT_NE(NULL, buf);
	uint64_t stamps[] = {UINT64_MAX, 0};
	for (int i = 0; i < 2; i++) {
		buf[i] = 100 + i;
		struct kipc_sqe *sqe = kipc_get_sqe();
		ASSERT_NE(NULL, sqe);
		kipc_prep_mbox_send(sqe, b.id, &buf[i], sizeof buf[i], 0, KIPC_F_NONBLOCK);
		sqe->flags |= KIPC_F_CREDIT;
		sqe->timeout = gen;
		sqe->addr2 = stamps[i];
		kipc_sqe_set_data(sqe, 7);
		ASSERT_LE(0, kipc_submit());
		/* the other holder's honest credit send after it */
		EXPECT_EQ(0, helper_do(&b.h, (struct cmd){C_SEND, b.id, 200 + i, 0}));
	}
	char st = kt_proc_state(kt_main_kernel.pid);
	cont_kipcd();
	ASSERT_EQ('T', st);
	for (int i = 0; i < 2; i++) {
		struct kipc_cqe *cqe;
		ASSERT_EQ(0, kipc_wait_cqe(&cqe));
		EXPECT_EQ(0, cqe->res);
		kipc_cqe_seen(cqe);
	}
	skip_primers(_metadata, b.id, primers);
	uint32_t want[] = {200, 201, 100, 101};
	for (unsigned i = 0; i < 4; i++) {
		uint32_t v = 99;
		ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive(b.id, &v, sizeof v, NULL, KIPC_F_NONBLOCK));
		EXPECT_EQ(want[i], v);
	}
	uint32_t v;
	EXPECT_EQ(-1, kipc_mbox_receive(b.id, &v, sizeof v, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	kipc_buf_free(buf);
	box_done(_metadata, &b);
}

#define NFAN 3
#define NFANMSG 1000
#define NFANCAP 256 /* room for every sender's credits */

enum { FAN_REFRESH, FAN_DESTROY, FAN_OWNER_EXIT };

struct fan {
	int64_t id;
	int mode;
	struct kt_ledger *led;
	unsigned granted[NFAN];
	unsigned ok[NFAN];    /* sends that returned success, a prefix of each sender's */
	int bad[NFAN];        /* a success after a failure, or a failure other than EIDRM */
	volatile int stop[NFAN];
	unsigned refreshes;
};

struct fan_arg { /* a child's own copy (fork) */
	struct fan *f;
	int s;
};

static void *fan_refresher(void *arg)
{
	struct fan *f = ((struct fan_arg *)arg)->f;
	int s = ((struct fan_arg *)arg)->s;
	while (!__atomic_load_n(&f->stop[s], __ATOMIC_ACQUIRE)) {
		if (kipc_cred_refresh() == 0)
			__atomic_fetch_add(&f->refreshes, 1, __ATOMIC_RELAXED);
		sched_yield(); /* three of these must not starve the senders */
	}
	return NULL;
}

/* Sender s: NFANMSG sends of s * NFANMSG + i, then LSTOP; a refresher
 * thread revokes everyone's credits meanwhile (FAN_REFRESH), or the
 * mailbox goes away under the sends (they stop at the first EIDRM,
 * and every later one must fail EIDRM too). */
static int fan_sender(void *arg)
{
	struct fan *f = ((struct fan_arg *)arg)->f;
	int s = ((struct fan_arg *)arg)->s;
	const struct kipc_credit *c;
	int e = child_start(&c);
	if (e)
		return e;
	pthread_t t;
	if (f->mode == FAN_REFRESH && pthread_create(&t, NULL, fan_refresher, arg))
		return 3;
	bool failed = false;
	for (uint32_t i = 0; i < NFANMSG; i++) {
		/* keep room, so that credits can be granted (a full mailbox has none) */
		int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
		while (i % 32 == 0 && !failed && nmsg(f->id) > NFANCAP / 2 &&
		       __ksft_now_ms() < deadline)
			sched_yield();
		f->granted[s] += cgen(c) != 0 && c->link == f->id;
		uint32_t v = s * NFANMSG + i;
		int r = kipc_mbox_send(f->id, &v, sizeof v, 0, 0);
		if (r == 0 && failed)
			f->bad[s]++; /* a success after the mailbox went */
		if (r == 0) {
			kt_ledger_sent(f->led, v);
			f->ok[s]++;
		} else {
			if (errno != EIDRM || f->mode == FAN_REFRESH)
				f->bad[s]++;
			if (failed && i > f->ok[s] + 8)
				break; /* a few more after the first failure */
			failed = true;
		}
	}
	if (f->mode == FAN_REFRESH) {
		__atomic_store_n(&f->stop[s], 1, __ATOMIC_RELEASE);
		pthread_join(t, NULL);
		uint32_t v = LSTOP;
		if (kipc_mbox_send(f->id, &v, sizeof v, 0, 0) < 0)
			return 4;
	}
	return 0;
}

static int fan_owner(void *arg)
{
	int *fds = arg;
	if (kipc_attach() < 0)
		return 1;
	int64_t id = open_box(NFANCAP, false); /* dies with us */
	if (id < 0 || kipc_mbox_grant(id, getppid()) < 0 ||
	    write(fds[1], &id, sizeof id) != sizeof id)
		return 2;
	for (;;)
		pause();
}

/*
 * NFAN senders with credits at once against one receiver: every send
 * that returned success is received exactly once, each sender's in the
 * order sent; with the mailbox destroyed, or its owner killed, under
 * the sends, each sender's successes are a prefix of its sends, what was
 * received of them is a prefix of that, and nothing succeeds after.
 */
static void fan_ledger(struct __test_metadata *_metadata, int mode)
{
	ASSERT_EQ(0, kipc_attach());
	struct kt_ledger led;
	ASSERT_EQ(0, kt_ledger_init(&led, NFAN * NFANMSG));
	struct fan *f = mmap(NULL, sizeof *f, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, f);
	memset(f, 0, sizeof *f);
	f->mode = mode;
	f->led = &led;
	int fds[2] = {-1, -1};
	pid_t owner = -1;
	if (mode == FAN_OWNER_EXIT) {
		ASSERT_EQ(0, pipe(fds));
		owner = kt_fork(fan_owner, fds);
		ASSERT_LT(0, owner);
		struct pollfd p = {.fd = fds[0], .events = POLLIN};
		ASSERT_EQ(1, poll(&p, 1, KT_BOUND_MS));
		ASSERT_EQ((ssize_t)sizeof f->id, read(fds[0], &f->id, sizeof f->id));
	} else {
		f->id = open_box(NFANCAP, true);
		ASSERT_LT(0, f->id);
	}
	/* Credits are grantable on the box (the cooldown of a revocation
	 * the test before made, kernel-wide, is over): a primer earns
	 * ours, and is received back before the senders start. */
	const struct kipc_credit *mine = credit_words();
	ASSERT_NE(NULL, mine);
	ASSERT_LE(0, get_credits(f->id, mine));
	uint32_t primer;
	ASSERT_EQ((ssize_t)sizeof primer,
		  kipc_mbox_receive_timed(f->id, &primer, sizeof primer, NULL, KIPC_F_NONBLOCK, 0));
	ASSERT_EQ(0, nmsg(f->id));
	pid_t s[NFAN];
	for (int i = 0; i < NFAN; i++) {
		struct fan_arg a = {f, i};
		s[i] = kt_fork(fan_sender, &a);
		ASSERT_LT(0, s[i]);
	}
	uint32_t next[NFAN] = {0};
	unsigned bogus = 0, disorder = 0, stops = 0, got = 0;
	for (;;) {
		if (mode != FAN_REFRESH && got == NFAN * NFANMSG / 2) {
			if (mode == FAN_DESTROY)
				EXPECT_EQ(0, kipc_mbox_destroy(f->id));
			else
				kill(owner, SIGKILL);
			break;
		}
		uint32_t v;
		ssize_t n = kipc_mbox_receive_timed(f->id, &v, sizeof v, NULL, 0,
						    (int64_t)KT_BOUND_MS * 1000000);
		ASSERT_EQ((ssize_t)sizeof v, n);
		if (v == LSTOP) {
			if (++stops == NFAN)
				break;
			continue;
		}
		got++;
		if (!kt_ledger_received(&led, v)) {
			bogus++;
			continue;
		}
		uint32_t who = v / NFANMSG;
		if (v % NFANMSG != next[who])
			disorder++;
		next[who] = v % NFANMSG + 1;
	}
	for (int i = 0; i < NFAN; i++)
		EXPECT_EQ(0, kt_wait(s[i]));
	if (owner > 0) {
		kt_wait(owner);
		close(fds[0]);
		close(fds[1]);
	}
	EXPECT_EQ(0u, bogus);
	EXPECT_EQ(0u, disorder);
	unsigned granted = 0;
	for (int i = 0; i < NFAN; i++) {
		EXPECT_EQ(0, f->bad[i]);
		granted += f->granted[i] != 0;
		if (mode == FAN_REFRESH)
			EXPECT_EQ(NFANMSG, f->ok[i]);
		else
			EXPECT_LE(next[i], f->ok[i]); /* received: a prefix of the successes */
		ksft_print("# sender %d: %u sends found a grant, %u succeeded\n", i, f->granted[i],
			   f->ok[i]);
	}
	EXPECT_LT(1u, granted); /* several senders took the credit path */
	if (mode == FAN_REFRESH) {
		unsigned nsent = 0;
		EXPECT_EQ(0u, kt_ledger_check(&led, &nsent));
		EXPECT_EQ(NFAN * NFANMSG, nsent);
		EXPECT_EQ(0, kipc_mbox_destroy(f->id));
	} else {
		/* each id received at most once, and only if its send succeeded */
		unsigned dup = 0;
		for (unsigned i = 0; i < led.n; i++)
			dup += led.received[i] > led.sent[i];
		EXPECT_EQ(0u, dup);
		/* gone (once kipcd has seen the owner's death) */
		int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
		while (nmsg(f->id) >= 0 && __ksft_now_ms() < deadline)
			sched_yield();
		uint32_t v;
		EXPECT_EQ(-1, kipc_mbox_receive(f->id, &v, sizeof v, NULL, KIPC_F_NONBLOCK));
		EXPECT_EQ(EIDRM, errno);
	}
	munmap(f, sizeof *f);
	kt_ledger_destroy(&led);
}

TEST(ledger_several_holders_racing_revocations)
{
	fan_ledger(_metadata, FAN_REFRESH);
}

TEST(ledger_several_holders_racing_destroy)
{
	fan_ledger(_metadata, FAN_DESTROY);
}

TEST(ledger_several_holders_racing_owner_exit)
{
	fan_ledger(_metadata, FAN_OWNER_EXIT);
}

/* ---- task queues: credits for kipc_send() to a pid ---------------- */

/* The helper's task queue commands (its own queue; values as recv1). */
enum {
	C_TQ_RECV_NB = C_OWN + 8, /* kipc_receive(KIPC_ANY), nonblocking */
	C_TQ_STAT,                /* its queue's nmsg */
	C_TQ_SETCAP,              /* its queue's capacity arg (64-byte messages) */
	C_TQ_REFRESH,             /* kipc_cred_refresh */
};

static int64_t tq_cmd(const struct cmd *c)
{
	uint32_t v;
	struct kipc_taskq_stat st;
	struct kipc_mbox_attr a;
	ssize_t n;
	switch (c->op) {
	case C_TQ_RECV_NB:
		n = kipc_receive(KIPC_ANY, &v, sizeof v, NULL, KIPC_F_NONBLOCK);
		return n < 0 ? -errno : n == sizeof v ? (int64_t)v : -EBADMSG;
	case C_TQ_STAT:
		return kipc_taskq_stat(&st) < 0 ? -errno : (int64_t)st.nmsg;
	case C_TQ_SETCAP:
		a = kt_attr((uint32_t)c->arg);
		a.msgsize = 64;
		return kipc_taskq_setattr(&a) < 0 ? -errno : 0;
	case C_TQ_REFRESH:
		return kipc_cred_refresh() < 0 ? -errno : 0;
	default:
		return credit_cmd(c);
	}
}

static int tq_loop(int in, int out)
{
	return helper_serve(in, out, tq_cmd);
}

/* Our grant is for pid's task queue. */
static bool tq_granted(const struct kipc_credit *c, pid_t pid)
{
	return cgen(c) && c->op == KIPC_SYS_send && c->link == pid;
}

/*
 * As get_credits(), to the helper's task queue: primers (1000) until a
 * grant of 8 or more; the helper takes back each one that earned none.
 */
static int tq_get_credits(struct helper *h, const struct kipc_credit *c)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	int n = 0;
	if (tq_granted(c, h->pid) && c->limit >= 8)
		return 0;
	while (__ksft_now_ms() < deadline) {
		uint32_t v = 1000;
		if (kipc_send(h->pid, &v, sizeof v, 0, 0) < 0)
			return -1;
		if (tq_granted(c, h->pid) && c->limit >= 8)
			return n + 1;
		if (helper_do(h, (struct cmd){C_TQ_RECV_NB, 0, 0, 0}) != 1000)
			return -1;
		sched_yield();
	}
	return -1;
}

/* As stop_with_credits(): kipcd stopped while we hold credits for h. */
static int tq_stop_with_credits(struct helper *h, const struct kipc_credit *c)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	int primers = 0;
	while (__ksft_now_ms() < deadline) {
		int n = tq_get_credits(h, c);
		if (n < 0)
			return -1;
		primers += n;
		if (stop_kipcd() < 0)
			return -1;
		if (tq_granted(c, h->pid))
			return primers;
		cont_kipcd();
	}
	return -1;
}

/* Attached, our credit words, a helper whose queue holds cap messages. */
static const struct kipc_credit *tq_setup(struct __test_metadata *_metadata, struct helper *h,
					  uint32_t cap)
{
	if (kipc_attach() < 0)
		return NULL;
	const struct kipc_credit *c = credit_words();
	if (!c || helper_start(h, tq_loop) < 0 ||
	    helper_do(h, (struct cmd){C_TQ_SETCAP, 0, cap, 0}) != 0)
		return NULL;
	(void)_metadata;
	return c;
}

/* Sends to a task queue return without kipcd; the receiver's stat,
 * nonblocking and blocking receives made after them see them, in order. */
TEST(task_queue_credit_sends_return_without_kipcd_and_are_seen)
{
	struct helper h;
	const struct kipc_credit *c = tq_setup(_metadata, &h, 64);
	ASSERT_NE(NULL, c);
	int primers = tq_stop_with_credits(&h, c);
	ASSERT_LT(0, primers);
	int sent = 0;
	for (uint32_t v = 0; v < 6; v++)
		sent += kipc_send(h.pid, &v, sizeof v, 0, 0) == 0;
	char st = kt_proc_state(kt_main_kernel.pid);
	if (st != 'T')
		cont_kipcd();
	ASSERT_EQ('T', st);
	ASSERT_EQ(6, sent);
	EXPECT_EQ(primers + 6, helper_do_stopped(&h, (struct cmd){C_TQ_STAT, 0, 0, 0}));
	for (int i = 0; i < primers; i++)
		EXPECT_EQ(1000, helper_do(&h, (struct cmd){C_TQ_RECV_NB, 0, 0, 0}));
	for (int64_t v = 0; v < 6; v++)
		EXPECT_EQ(v, helper_do(&h, (struct cmd){C_TQ_RECV_NB, 0, 0, 0}));
	EXPECT_EQ(-EAGAIN, helper_do(&h, (struct cmd){C_TQ_RECV_NB, 0, 0, 0}));
	/* a nonblocking receive made right after one credit send: never EAGAIN */
	int more = tq_stop_with_credits(&h, c);
	ASSERT_LE(0, more);
	uint32_t v = 7;
	ASSERT_EQ(0, kipc_send(h.pid, &v, sizeof v, 0, 0));
	EXPECT_EQ(more ? 1000 : 7, helper_do_stopped(&h, (struct cmd){C_TQ_RECV_NB, 0, 0, 0}));
	helper_stop(&h);
}

/* The receiver shrinks its queue: the sends before it are queued, the
 * next ones stop exactly at the new capacity (EAGAIN). */
TEST(task_queue_setattr_takes_credits_back)
{
	struct helper h;
	const struct kipc_credit *c = tq_setup(_metadata, &h, 64);
	ASSERT_NE(NULL, c);
	int primers = tq_stop_with_credits(&h, c);
	ASSERT_LT(0, primers);
	for (uint32_t v = 0; v < 4; v++)
		ASSERT_EQ(0, kipc_send(h.pid, &v, sizeof v, 0, 0));
	int cap = primers + 5;
	EXPECT_EQ(0, helper_do_stopped(&h, (struct cmd){C_TQ_SETCAP, 0, cap, 0}));
	EXPECT_EQ(0u, cgen(c));
	uint32_t v = 4;
	EXPECT_EQ(0, kipc_send(h.pid, &v, sizeof v, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(-1, kipc_send(h.pid, &v, sizeof v, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(cap, helper_do(&h, (struct cmd){C_TQ_STAT, 0, 0, 0}));
	helper_stop(&h);
}

/* Who may send to a task queue depends on its task's user too: the
 * receiver's cred_refresh takes the senders' credits back. */
TEST(receiver_refresh_takes_task_queue_credits_back)
{
	struct helper h;
	const struct kipc_credit *c = tq_setup(_metadata, &h, 64);
	ASSERT_NE(NULL, c);
	ASSERT_LE(0, tq_get_credits(&h, c));
	ASSERT_TRUE(tq_granted(c, h.pid));
	EXPECT_EQ(0, helper_do(&h, (struct cmd){C_TQ_REFRESH, 0, 0, 0}));
	EXPECT_EQ(0u, cgen(c));
	helper_stop(&h);
}

/* The receiver dies: once kipcd has seen it, sends fail ESRCH (the
 * credits went back before its task queue went away). */
TEST(receiver_death_takes_task_queue_credits_back)
{
	struct helper h;
	const struct kipc_credit *c = tq_setup(_metadata, &h, 64);
	ASSERT_NE(NULL, c);
	ASSERT_LT(0, tq_stop_with_credits(&h, c));
	for (uint32_t v = 0; v < 4; v++)
		ASSERT_EQ(0, kipc_send(h.pid, &v, sizeof v, 0, 0));
	kill(h.pid, SIGKILL);
	helper_stop(&h);
	cont_kipcd();
	struct kipc_task_info ti;
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (kipc_task_info(h.pid, &ti) == 0 && __ksft_now_ms() < deadline)
		sched_yield();
	EXPECT_EQ(-1, kipc_task_info(h.pid, &ti));
	EXPECT_EQ(0u, cgen(c));
	uint32_t v = 4;
	EXPECT_EQ(-1, kipc_send(h.pid, &v, sizeof v, 0, 0));
	EXPECT_EQ(ESRCH, errno);
}

/* Forged task-queue credit entries are ordinary sends, never past the
 * room; a forged mailbox entry under a task-queue grant too. */
TEST(forged_task_queue_credit_entries_are_ordinary_sends)
{
	struct helper h;
	const struct kipc_credit *c = tq_setup(_metadata, &h, 20);
	ASSERT_NE(NULL, c);
	int primers = tq_get_credits(&h, c);
	ASSERT_LT(0, primers);
	uint32_t gen = cgen(c);
	void *buf = kipc_buf_alloc(4);
	ASSERT_NE(NULL, buf);
	memset(buf, 0, 4);
	int n = 0;
	for (int i = 0; i < 30; i++) {
		struct kipc_sqe *sqe = kipc_get_sqe();
		ASSERT_NE(NULL, sqe);
		if (i == 0) /* the grant's link number, as a mailbox id */
			kipc_prep_mbox_send(sqe, h.pid, buf, 4, 0, KIPC_F_NONBLOCK);
		else
			kipc_prep_send(sqe, h.pid, buf, 4, 0, KIPC_F_NONBLOCK);
		sqe->flags |= KIPC_F_CREDIT;
		sqe->timeout = gen;
		sqe->addr2 = UINT64_MAX; /* a stamp from the far future */
		kipc_sqe_set_data(sqe, 1);
		n++;
	}
	ASSERT_LE(0, kipc_submit());
	int ok, eagain, other;
	ASSERT_EQ(0, reap_counts(n, &ok, &eagain, &other));
	EXPECT_EQ(20 - primers, ok);
	EXPECT_EQ(n - 1 - (20 - primers), eagain);
	EXPECT_EQ(1, other); /* the mailbox send: no such mailbox */
	EXPECT_EQ(20, helper_do(&h, (struct cmd){C_TQ_STAT, 0, 0, 0}));
	kipc_buf_free(buf);
	helper_stop(&h);
}

/*
 * Forged credit words (the process writes its own region's kernel-only
 * words: a grant it was never given, a huge limit): the library believes
 * them and reports its sends successful, but kipcd never reads the words
 * back: the entries are ordinary sends, never past the room, and
 * nothing of the kernel's count, nor another process, is touched.
 */
TEST(forged_credit_words_only_fool_their_own_library)
{
	struct helper h;
	const struct kipc_credit *c = tq_setup(_metadata, &h, 20);
	ASSERT_NE(NULL, c);
	EXPECT_EQ(0, kipc_cred_refresh()); /* no grant now */
	ASSERT_EQ(0u, cgen(c));
	struct kipc_credit *w = (struct kipc_credit *)c;
	w->link = h.pid;
	w->op = KIPC_SYS_send;
	w->msgsize = 64;
	w->limit = 1000;
	__atomic_store_n(&w->gen, 0x7fff1234u, __ATOMIC_RELEASE);
	int claimed = 0;
	for (uint32_t v = 0; v < 40; v++)
		claimed += kipc_send(h.pid, &v, sizeof v, 0, KIPC_F_NONBLOCK) == 0;
	EXPECT_LE(20, claimed); /* what the library believed */
	/*
	 * The kernel's count: exactly the room, in order. Not a holder, so
	 * its entries are not taken ahead of others' requests (rule 1 is
	 * for granted credits): wait until kipcd has taken them all.
	 */
	kipc_nop(); /* after our 40 entries in our SQ: all taken */
	EXPECT_EQ(20, helper_do(&h, (struct cmd){C_TQ_STAT, 0, 0, 0}));
	for (int64_t v = 0; v < 20; v++)
		EXPECT_EQ(v, helper_do(&h, (struct cmd){C_TQ_RECV_NB, 0, 0, 0}));
	EXPECT_EQ(-EAGAIN, helper_do(&h, (struct cmd){C_TQ_RECV_NB, 0, 0, 0}));
	/* the forged words are ours to keep lying with; put them right */
	__atomic_store_n(&w->gen, 0, __ATOMIC_RELEASE);
	uint32_t v = 7;
	EXPECT_EQ(0, kipc_send(h.pid, &v, sizeof v, 0, 0));
	EXPECT_EQ(7, helper_do(&h, (struct cmd){C_TQ_RECV_NB, 0, 0, 0}));
	helper_stop(&h);
}

#define NTQ 4000
#define NTQCAP 64

struct tq_race {
	pid_t rcv;
	int mode; /* 0: revocations; 1: the receiver dies under the sends */
	struct kt_ledger *led;
	volatile int stop;
	unsigned granted, ok, refreshes;
	unsigned after_failure; /* successes after a failure */
	int bad_errno;          /* the last failure other than ESRCH (mode 1) */
	unsigned rcv_bad;       /* received twice, invented or out of order */
};

static void *tq_refresher(void *arg)
{
	struct tq_race *r = arg;
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		if (kipc_cred_refresh() == 0)
			__atomic_fetch_add(&r->refreshes, 1, __ATOMIC_RELAXED);
		sched_yield();
	}
	return NULL;
}

/* The sender: NTQ sends to r->rcv's queue (i, in order), a thread of
 * ours revoking meanwhile (mode 0), then LSTOP; or until the receiver's
 * death makes them fail ESRCH (mode 1: each one after the first too). */
static int tq_sender(void *arg)
{
	struct tq_race *r = arg;
	const struct kipc_credit *c;
	int e = child_start(&c);
	if (e)
		return e;
	pthread_t t;
	if (!r->mode && pthread_create(&t, NULL, tq_refresher, r))
		return 3;
	bool failed = false;
	for (uint32_t i = 0; i < NTQ; i++) {
		r->granted += tq_granted(c, r->rcv);
		int res = kipc_send(r->rcv, &i, sizeof i, 0, 0);
		if (res == 0) {
			r->after_failure += failed;
			kt_ledger_sent(r->led, i);
			r->ok++;
		} else {
			if (errno != ESRCH || !r->mode)
				r->bad_errno = errno;
			if (failed && i > r->ok + 8)
				break;
			failed = true;
		}
	}
	if (!r->mode) {
		__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
		pthread_join(t, NULL);
		uint32_t v = LSTOP;
		if (kipc_send(r->rcv, &v, sizeof v, 0, 0) < 0)
			return 4;
	}
	return 0;
}

/* The receiver of mode 1: its queue, then half the sends, then death. */
struct tq_rcv_arg {
	struct tq_race *r;
	int fds[2];
};

static int tq_dying_receiver(void *arg)
{
	struct tq_rcv_arg *a = arg;
	struct kipc_mbox_attr at = kt_attr(NTQCAP);
	at.msgsize = 64;
	if (kipc_attach() < 0 || kipc_taskq_setattr(&at) < 0 ||
	    write(a->fds[1], "r", 1) != 1)
		return 1;
	uint32_t next = 0;
	for (unsigned got = 0; got < NTQ / 2; got++) {
		uint32_t v;
		if (kipc_receive_timed(KIPC_ANY, &v, sizeof v, NULL, 0,
				       (int64_t)KT_BOUND_MS * 1000000) != sizeof v)
			return 2;
		if (!kt_ledger_received(a->r->led, v) || v != next)
			a->r->rcv_bad++;
		next = v + 1;
	}
	kill(getpid(), SIGKILL); /* with its queue full of credit sends, maybe */
	return 3;
}

/*
 * Exact-once through a task queue: with revocations racing the credit
 * sends (the sender's own cred_refresh thread and the receiver's, which
 * takes back the credits on its queue), every send that succeeded is
 * received once, in order; with the receiver dying under the sends, the
 * sender's successes are a prefix of its sends, ESRCH only after, and
 * what was received a prefix of the successes, each once.
 */
static void tq_ledger(struct __test_metadata *_metadata, int mode)
{
	ASSERT_EQ(0, kipc_attach());
	struct kt_ledger led;
	ASSERT_EQ(0, kt_ledger_init(&led, NTQ));
	struct tq_race *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r);
	memset(r, 0, sizeof *r);
	r->mode = mode;
	r->led = &led;
	struct tq_rcv_arg ra = {r, {-1, -1}};
	pid_t rcv = -1;
	pthread_t t;
	if (mode) {
		ASSERT_EQ(0, pipe(ra.fds));
		rcv = kt_fork(tq_dying_receiver, &ra);
		ASSERT_LT(0, rcv);
		char ready;
		struct pollfd p = {.fd = ra.fds[0], .events = POLLIN};
		ASSERT_EQ(1, poll(&p, 1, KT_BOUND_MS));
		ASSERT_EQ(1, read(ra.fds[0], &ready, 1));
		r->rcv = rcv;
	} else {
		struct kipc_mbox_attr at = kt_attr(NTQCAP);
		at.msgsize = 64;
		ASSERT_EQ(0, kipc_taskq_setattr(&at));
		r->rcv = getpid();
	}
	/* the sender before our refresher thread: a fork of a threaded
	 * process may not start threads under ThreadSanitizer */
	pid_t s = kt_fork(tq_sender, r);
	ASSERT_LT(0, s);
	if (!mode)
		ASSERT_EQ(0, pthread_create(&t, NULL, tq_refresher, r));
	unsigned bogus = 0, disorder = 0;
	if (!mode) {
		uint32_t next = 0;
		for (;;) {
			uint32_t v;
			ASSERT_EQ((ssize_t)sizeof v,
				  kipc_receive_timed(KIPC_ANY, &v, sizeof v, NULL, 0,
						     (int64_t)KT_BOUND_MS * 1000000));
			if (v == LSTOP)
				break;
			bogus += !kt_ledger_received(&led, v);
			disorder += v != next;
			next = v + 1;
		}
		__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
		pthread_join(t, NULL);
	}
	EXPECT_EQ(0, kt_wait(s));
	if (mode) {
		EXPECT_NE(0, kt_wait(rcv)); /* killed */
		close(ra.fds[0]);
		close(ra.fds[1]);
	}
	EXPECT_EQ(0u, bogus);
	EXPECT_EQ(0u, disorder);
	EXPECT_EQ(0u, r->after_failure);
	EXPECT_EQ(0, r->bad_errno);
	EXPECT_EQ(0u, r->rcv_bad);
	EXPECT_LT(0u, r->granted); /* the credit path was taken */
	ksft_print("# sender: %u of %u sends found a grant, %u succeeded, %u cred_refresh\n",
		   r->granted, NTQ, r->ok, r->refreshes);
	unsigned dup = 0, nsent = 0;
	for (unsigned i = 0; i < led.n; i++)
		dup += led.received[i] > led.sent[i];
	EXPECT_EQ(0u, dup);
	if (!mode) {
		EXPECT_EQ(0u, kt_ledger_check(&led, &nsent));
		EXPECT_EQ(NTQ, nsent);
		EXPECT_EQ((unsigned)NTQ, r->ok);
	} else {
		EXPECT_LE(NTQ / 2, r->ok); /* what was received had succeeded */
		EXPECT_GT((unsigned)NTQ, r->ok); /* the death stopped them */
	}
	munmap(r, sizeof *r);
	kt_ledger_destroy(&led);
}

TEST_TIMEOUT(ledger_task_queue_racing_revocations, 120)
{
	tq_ledger(_metadata, 0);
}

TEST_TIMEOUT(ledger_task_queue_racing_receiver_exit, 120)
{
	tq_ledger(_metadata, 1);
}

KIPC_TEST_MAIN
