// SPDX-License-Identifier: MIT
/*
 * kipc-stress - chaos test: many processes exchange sequence-numbered
 * messages over direct links (task queues) and mailboxes of every
 * buffering kind while the driver kills random ones with SIGKILL and
 * starts new ones. A ledger in shared memory, owned by the driver, records
 * every send and receive; at the end:
 *  - no message was received twice, or received when its send failed;
 *  - every message whose send completed was received by a live receiver,
 *    or its link was destroyed (the task queue or mailbox of a killed
 *    process), or a receiver of that link was killed inside a receive
 *    (at most one message per such kill);
 *  - every message arrived on the link it was sent to;
 *  - nothing of a dead process is left: its mailboxes are gone, sends to
 *    it fail ESRCH, and the driver's mailboxes are empty, with no waiter
 *    and only the driver holding the receive right;
 *  - kipcd's resident memory is back near its baseline.
 *
 * usage: kipc-stress [--seconds N] [--workers N] [--kill-ms N] [--seed N]
 * Prints "kipc-stress: ..." figures; exits 0 when every check holds.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kipc/libkipc.h>

#include "../include/tool.h"

#define MAX_MSGS   (1u << 21)
#define MAX_LINKS  8192
#define MAX_SLOTS  64
#define NDRIVER    4          /* driver-owned mailboxes, one per kind */
#define MAGIC      0x5354524bu /* "KRTS" */
#define OP_TIMEOUT (20 * 1000 * 1000LL)

enum { S_FREE, S_SENDING, S_SENT, S_FAILED };
enum { L_TASKQ, L_MBOX };

struct msgrec {
	_Atomic uint8_t state;
	_Atomic uint8_t nrecv;
	_Atomic uint8_t misrouted;
	uint8_t pad;
	_Atomic int32_t link;
};

struct link {
	int64_t id;                 /* mailbox id, or pid of a task queue */
	int kind;
	int owner_slot;             /* -1: the driver */
	_Atomic int published;
	_Atomic int destroyed;      /* its owner was killed */
	_Atomic uint32_t allow;     /* receivers killed inside a receive */
};

struct slot {
	_Atomic pid_t pid;
	_Atomic int ready;          /* granted the driver's mailboxes */
	_Atomic int quiet;          /* stopped sending */
	_Atomic int busy;           /* link index it receives from, or -1 */
	int taskq, mbox;            /* its link indices */
};

struct ledger {
	_Atomic uint32_t next_msg;
	_Atomic uint32_t nlinks;
	_Atomic int stop_send, done;
	_Atomic uint64_t nsend_ok, nsend_fail, nrecv;
	struct slot slots[MAX_SLOTS];
	struct link links[MAX_LINKS];
	struct msgrec msgs[MAX_MSGS];
};

struct payload {
	uint32_t magic, msg, link, check;
};

static struct ledger *L;
static int nworkers = 12, kill_ms = 40, seconds = 20;
static unsigned seed;

static int64_t now_ns(void)
{
	return kipc_clock_ns(CLOCK_MONOTONIC);
}

static int new_link(int64_t id, int kind, int owner)
{
	uint32_t i = atomic_fetch_add(&L->nlinks, 1);
	if (i >= MAX_LINKS)
		return -1;
	L->links[i].id = id;
	L->links[i].kind = kind;
	L->links[i].owner_slot = owner;
	atomic_store(&L->links[i].published, 1);
	return (int)i;
}

static void record(const struct payload *p, ssize_t n, int link)
{
	atomic_fetch_add(&L->nrecv, 1);
	if (n != sizeof *p || p->magic != MAGIC || p->msg >= MAX_MSGS ||
	    p->check != (p->msg ^ p->link ^ MAGIC)) {
		fprintf(stderr, "kipc-stress: corrupt payload on link %d\n", link);
		atomic_store(&L->msgs[0].misrouted, 1); /* msg 0 is never sent */
		return;
	}
	struct msgrec *m = &L->msgs[p->msg];
	atomic_fetch_add(&m->nrecv, 1);
	if ((int)p->link != link)
		atomic_store(&m->misrouted, 1);
}

static ssize_t receive_from(int li, struct payload *p, unsigned flags, int64_t t)
{
	struct link *l = &L->links[li];
	if (l->kind == L_TASKQ)
		return kipc_receive_timed(KIPC_ANY, p, sizeof *p, NULL, flags, t);
	return kipc_mbox_receive_timed(l->id, p, sizeof *p, NULL, flags, t);
}

/* One receive from link li, recorded; the slot is busy meanwhile. */
static int do_receive(struct slot *s, int li, int64_t t)
{
	struct payload p;
	atomic_store(&s->busy, li);
	ssize_t n = receive_from(li, &p, KIPC_F_TRUNC, t);
	if (n >= 0)
		record(&p, n, li);
	atomic_store(&s->busy, -1);
	return n >= 0;
}

/*
 * plain: a mailbox send without options or timeout (KIPC_F_NONBLOCK), the
 * kind that may complete in the caller with a send credit (transport.md
 * section 12): it must be as exact as the others.
 */
static void do_send(int li, bool plain)
{
	struct link *l = &L->links[li];
	uint32_t mi = atomic_fetch_add(&L->next_msg, 1);
	if (mi == 0 || mi >= MAX_MSGS)
		return;
	struct msgrec *m = &L->msgs[mi];
	struct payload p = {MAGIC, mi, (uint32_t)li, mi ^ (uint32_t)li ^ MAGIC};
	atomic_store(&m->link, li);
	atomic_store(&m->state, S_SENDING);
	int r = l->kind == L_TASKQ ? kipc_send_timed((pid_t)l->id, &p, sizeof p, 0, 0, OP_TIMEOUT)
		: plain            ? kipc_mbox_send(l->id, &p, sizeof p, 0, KIPC_F_NONBLOCK)
				   : kipc_mbox_send_timed(l->id, &p, sizeof p, 0, 0, OP_TIMEOUT);
	atomic_store(&m->state, r == 0 ? S_SENT : S_FAILED);
	atomic_fetch_add(r == 0 ? &L->nsend_ok : &L->nsend_fail, 1);
}

static int live_link(unsigned *rs)
{
	uint32_t n = atomic_load(&L->nlinks);
	for (int tries = 0; tries < 8; tries++) {
		uint32_t i = rand_r(rs) % n;
		if (atomic_load(&L->links[i].published) && !atomic_load(&L->links[i].destroyed))
			return (int)i;
	}
	return rand_r(rs) % NDRIVER;
}

static void worker(int si, unsigned rs)
{
	struct slot *s = &L->slots[si];
	if (kipc_attach() < 0) {
		perror("kipc-stress: worker attach");
		_exit(2);
	}
	/* Its own mailbox, of a random kind. */
	static const uint32_t caps[] = {0, 4, KIPC_UNBOUNDED, KIPC_CAP_DEFAULT};
	struct kipc_mbox_attr a = {0};
	a.capacity = caps[rand_r(&rs) % 4];
	a.mode = 0666;
	int64_t id = kipc_mbox_open(NULL, KIPC_O_CREAT, &a);
	if (id < 0) {
		perror("kipc-stress: mbox_open");
		_exit(2);
	}
	s->mbox = new_link(id, L_MBOX, si);
	while (!atomic_load(&s->ready))
		usleep(1000);
	while (!atomic_load(&L->stop_send)) {
		int r = rand_r(&rs) % 8;
		if (r < 3)
			do_send(live_link(&rs), r == 0);
		else if (r < 5)
			do_receive(s, s->taskq, OP_TIMEOUT);
		else if (r < 6)
			do_receive(s, s->mbox, OP_TIMEOUT);
		else
			do_receive(s, rand_r(&rs) % NDRIVER, OP_TIMEOUT);
	}
	atomic_store(&s->quiet, 1);
	/* Drain what is left for us until the driver says done. */
	while (!atomic_load(&L->done)) {
		int got = do_receive(s, s->taskq, 0) + do_receive(s, s->mbox, 0);
		for (int i = 0; i < NDRIVER; i++)
			got += do_receive(s, i, 0);
		if (!got)
			usleep(2000);
	}
	_exit(0);
}

static void spawn(int si)
{
	struct slot *s = &L->slots[si];
	atomic_store(&s->ready, 0);
	atomic_store(&s->quiet, 0);
	atomic_store(&s->busy, -1);
	s->mbox = -1;
	unsigned rs = seed * 7919u + si * 104729u + (unsigned)now_ns();
	pid_t pid = fork();
	if (pid < 0) {
		perror("kipc-stress: fork");
		exit(2);
	}
	if (pid == 0)
		worker(si, rs);
	atomic_store(&s->pid, pid);
	s->taskq = new_link(pid, L_TASKQ, si);
	/* The receive right on the driver's mailboxes. */
	for (int i = 0; i < NDRIVER; i++)
		if (kipc_mbox_grant(L->links[i].id, pid) < 0 && errno != ESRCH)
			fprintf(stderr, "kipc-stress: grant: %s\n", strerror(errno));
	atomic_store(&s->ready, 1);
}

static void kill_slot(int si)
{
	struct slot *s = &L->slots[si];
	pid_t pid = atomic_load(&s->pid);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	int busy = atomic_load(&s->busy);
	if (busy >= 0)
		atomic_fetch_add(&L->links[busy].allow, 1);
	atomic_store(&L->links[s->taskq].destroyed, 1);
	if (s->mbox >= 0)
		atomic_store(&L->links[s->mbox].destroyed, 1);
}

static int pid_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/*
 * Through the introspection interface: no task of the kernel and no
 * mailbox owner or receive-right holder is a process that has exited.
 * (Our own workers are reaped by now, so their pids are not reused yet.)
 */
static long dead_objects(void)
{
	static struct kipc_task_info tasks[1024];
	static struct kipc_mbox_info mboxes[1024];
	long bad = 0;
	ssize_t nt = kipc_task_list(tasks, 1024);
	ssize_t nm = kipc_mbox_list(mboxes, 1024);
	if (nt < 0 || nm < 0 || nt > 1024 || nm > 1024) {
		fprintf(stderr, "kipc-stress: introspection failed: %s\n",
			nt < 0 || nm < 0 ? strerror(errno) : "too many objects");
		return 1;
	}
	for (ssize_t i = 0; i < nt; i++) {
		if (!pid_alive(tasks[i].pid)) {
			fprintf(stderr, "kipc-stress: task %d of a dead process\n", tasks[i].pid);
			bad++;
		}
	}
	for (ssize_t i = 0; i < nm; i++) {
		const struct kipc_mbox_stat *st = &mboxes[i].st;
		if (st->owner && !pid_alive(st->owner)) {
			fprintf(stderr, "kipc-stress: mailbox %lld owned by dead pid %d\n",
				(long long)st->id, st->owner);
			bad++;
		}
		static struct kipc_waiter_info w[256];
		ssize_t nw = kipc_waiter_list(st->id, 0, w, 256);
		for (ssize_t j = 0; j < nw && j < 256; j++) {
			/* a cached message outlives its sender by design */
			if (w[j].kind != KIPC_WAITER_CACHED && !pid_alive(w[j].pid)) {
				fprintf(stderr, "kipc-stress: mailbox %lld: waiter or holder %d "
					"is dead\n", (long long)st->id, w[j].pid);
				bad++;
			}
		}
	}
	return bad;
}

/*
 * What the kernel holds, by its own counters: tasks, mailboxes, messages
 * (queued and pending), payload bytes, parked requests, and our user's
 * charge. At the end of a run it must be back where it started.
 */
static int same_holdings(const struct kipc_sysinfo *a, const struct kipc_sysinfo *b)
{
	return a->ntasks == b->ntasks && a->nmboxes == b->nmboxes && a->nmsg == b->nmsg &&
	       a->npending == b->npending && a->nbytes == b->nbytes &&
	       a->nparked == b->nparked && a->user_bytes == b->user_bytes &&
	       a->user_mboxes == b->user_mboxes;
}

/* The kernel forgets a killed worker once it notices: wait for that
 * state (bounded), then measure. -1: it cannot be measured. */
static int settle(const struct kipc_sysinfo *before, struct kipc_sysinfo *after)
{
	for (int i = 0; i < 500; i++) {
		if (kipc_sysinfo(after) < 0)
			return -1;
		if (same_holdings(before, after))
			return 0;
		usleep(10000);
	}
	return 0;
}

static void usage(void)
{
	printf("usage: kipc-stress [--seconds N] [--workers N] [--kill-ms N] [--seed N]\n"
	       "Chaos test of the kernel at $KIPC_SOCKET: workers exchange numbered\n"
	       "messages while random ones are killed; every message is accounted for.\n"
	       "  -s, --seconds N   how long to run (default %d)\n"
	       "  -w, --workers N   worker processes, 2..%d (default %d)\n"
	       "  -k, --kill-ms N   milliseconds between two kills (default %d)\n"
	       "  -r, --seed N      seed of the random choices (default: the time)\n"
	       "  -h, --help        this help\n"
	       "      --version     print the version\n"
	       "Exit status: 0 when every check holds, 1 when one fails, 2 for a usage\n"
	       "error or when it cannot start. See kipc-stress(1).\n",
	       seconds, MAX_SLOTS, nworkers, kill_ms);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"seconds", required_argument, 0, 's'},
		{"workers", required_argument, 0, 'w'},
		{"kill-ms", required_argument, 0, 'k'},
		{"seed", required_argument, 0, 'r'},
		{"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},
		{0, 0, 0, 0},
	};
	seed = (unsigned)time(NULL);
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:w:k:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': seconds = atoi(optarg); break;
		case 'w': nworkers = atoi(optarg); break;
		case 'k': kill_ms = atoi(optarg); break;
		case 'r': seed = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'h': usage(); return 0;
		case 'V': tool_print_version("kipc-stress"); return 0;
		default: tool_bad_option("kipc-stress", argv, c);
		}
	}
	if (optind < argc)
		tool_usage_error("kipc-stress", "unexpected argument '%s'", argv[optind]);
	if (nworkers < 2 || nworkers > MAX_SLOTS || seconds < 1 || kill_ms < 1)
		tool_usage_error("kipc-stress", "workers 2..%d, seconds and kill-ms > 0", MAX_SLOTS);
	L = mmap(NULL, sizeof *L, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (L == MAP_FAILED) {
		perror("kipc-stress: mmap");
		return 2;
	}
	atomic_store(&L->next_msg, 1);
	if (kipc_attach() < 0) {
		perror("kipc-stress: attach");
		return 2;
	}
	struct kipc_sysinfo si0, si1;
	if (kipc_sysinfo(&si0) < 0) {
		perror("kipc-stress: kipc_sysinfo (cannot measure the kernel)");
		return 2;
	}
	static const uint32_t caps[NDRIVER] = {0, 4, KIPC_UNBOUNDED, KIPC_CAP_DEFAULT};
	for (int i = 0; i < NDRIVER; i++) {
		struct kipc_mbox_attr a = {0};
		a.capacity = caps[i];
		a.mode = 0666;
		int64_t id = kipc_mbox_open(NULL, KIPC_O_CREAT, &a);
		if (id < 0 || new_link(id, L_MBOX, -1) != i) {
			perror("kipc-stress: driver mailbox");
			return 2;
		}
	}
	for (int i = 0; i < nworkers; i++)
		spawn(i);

	unsigned rs = seed;
	long kills = 0;
	int64_t end = now_ns() + seconds * 1000000000LL;
	while (now_ns() < end) {
		usleep(kill_ms * 1000);
		int si = rand_r(&rs) % nworkers;
		kill_slot(si);
		kills++;
		spawn(si);
	}

	/* Quiesce: no more sends; let the receivers drain. */
	atomic_store(&L->stop_send, 1);
	for (int i = 0; i < nworkers; i++)
		while (!atomic_load(&L->slots[i].quiet))
			usleep(1000);
	int64_t last_change = now_ns();
	uint64_t last = atomic_load(&L->nrecv);
	while (now_ns() - last_change < 1000000000LL) {
		/* The driver holds the right on its own mailboxes too. */
		for (int i = 0; i < NDRIVER; i++) {
			struct payload p;
			ssize_t n;
			while ((n = kipc_mbox_receive(L->links[i].id, &p, sizeof p, NULL,
						      KIPC_F_NONBLOCK | KIPC_F_TRUNC)) >= 0)
				record(&p, n, i);
		}
		usleep(20000);
		uint64_t r = atomic_load(&L->nrecv);
		if (r != last) {
			last = r;
			last_change = now_ns();
		}
	}
	atomic_store(&L->done, 1);
	pid_t pids[MAX_SLOTS];
	for (int i = 0; i < nworkers; i++) {
		pids[i] = L->slots[i].pid;
		waitpid(pids[i], NULL, 0);
	}

	/* The ledger. */
	long dup = 0, phantom = 0, misrouted = 0, lost = 0, destroyed = 0, allowed = 0;
	long verified = 0, in_doubt = 0;
	uint32_t nmsg = atomic_load(&L->next_msg);
	if (nmsg > MAX_MSGS)
		nmsg = MAX_MSGS;
	static uint32_t lost_on[MAX_LINKS];
	misrouted += L->msgs[0].misrouted;
	for (uint32_t i = 1; i < nmsg; i++) {
		struct msgrec *m = &L->msgs[i];
		int st = m->state, nr = m->nrecv;
		if (nr > 1)
			dup++;
		if (m->misrouted)
			misrouted++;
		if (nr && (st == S_FAILED || st == S_FREE))
			phantom++;
		if (st == S_SENDING)
			in_doubt++; /* its sender was killed inside the send */
		if (st == S_SENT && nr == 1)
			verified++;
		if (st == S_SENT && nr == 0) {
			if (L->links[m->link].destroyed)
				destroyed++;
			else
				lost_on[m->link]++;
		}
	}
	uint32_t nl = atomic_load(&L->nlinks);
	for (uint32_t i = 0; i < nl && i < MAX_LINKS; i++) {
		uint32_t a = L->links[i].allow;
		if (lost_on[i] > a)
			lost += lost_on[i] - a;
		allowed += lost_on[i] < a ? lost_on[i] : a;
	}

	/* Nothing of the dead is left. */
	long leftovers = 0;
	for (uint32_t i = NDRIVER; i < nl && i < MAX_LINKS; i++) {
		struct link *l = &L->links[i];
		if (!l->published)
			continue;
		if (l->kind == L_MBOX) {
			struct kipc_mbox_stat st;
			if (kipc_mbox_stat(l->id, &st) == 0) {
				fprintf(stderr, "kipc-stress: mailbox %lld of a dead process is alive\n",
					(long long)l->id);
				leftovers++;
			}
		} else {
			struct payload p = {0};
			if (kipc_send((pid_t)l->id, &p, sizeof p, 0, KIPC_F_NONBLOCK) == 0 ||
			    errno != ESRCH) {
				fprintf(stderr, "kipc-stress: send to dead pid %lld: %s\n",
					(long long)l->id, strerror(errno));
				leftovers++;
			}
		}
	}
	for (int i = 0; i < NDRIVER; i++) {
		struct kipc_mbox_stat st;
		if (kipc_mbox_stat(L->links[i].id, &st) < 0 || st.nmsg || st.nsenders ||
		    st.nreceivers || st.nholders != 1) {
			fprintf(stderr, "kipc-stress: driver mailbox %d: nmsg %u nsenders %u "
				"nreceivers %u nholders %u\n", i, st.nmsg, st.nsenders,
				st.nreceivers, st.nholders);
			leftovers++;
		}
		kipc_mbox_destroy(L->links[i].id);
	}
	leftovers += dead_objects();
	int measured = settle(&si0, &si1) == 0;
	if (!measured)
		perror("kipc-stress: kipc_sysinfo (cannot measure the kernel)");
	int kernel_ok = measured && same_holdings(&si0, &si1);

	int ok = !dup && !phantom && !misrouted && !lost && !leftovers && kernel_ok;
	printf("kipc-stress: %s: %d s, %d workers, %ld kills, %lu sends ok, %lu failed, "
	       "%ld verified exactly once, %ld on destroyed links, %ld with a killed receiver, "
	       "%ld in doubt (sender killed), %ld lost, %ld duplicated, %ld phantom, "
	       "%ld misrouted, %ld leftovers, kernel tasks %u -> %u, mailboxes %u -> %u, "
	       "messages %u+%u -> %u+%u, bytes %llu -> %llu, parked %u -> %u, "
	       "charged %llu -> %llu, seed %u\n",
	       ok ? "ok" : "FAILED", seconds, nworkers, kills,
	       (unsigned long)L->nsend_ok, (unsigned long)L->nsend_fail, verified,
	       destroyed, allowed, in_doubt, lost, dup, phantom, misrouted, leftovers,
	       si0.ntasks, measured ? si1.ntasks : 0, si0.nmboxes, measured ? si1.nmboxes : 0,
	       si0.nmsg, si0.npending, measured ? si1.nmsg : 0, measured ? si1.npending : 0,
	       (unsigned long long)si0.nbytes, measured ? (unsigned long long)si1.nbytes : 0,
	       si0.nparked, measured ? si1.nparked : 0,
	       (unsigned long long)si0.user_bytes,
	       measured ? (unsigned long long)si1.user_bytes : 0, seed);
	return ok ? 0 : 1;
}
