/* SPDX-License-Identifier: MIT */
/*
 * net_test - kipc across machines: three kipcd nodes (a, b, c) on one
 * NATS server, all on this machine (net_fixture.h). The test process is
 * on node a; servers run in children attached to b or c.
 * Documentation/network.md is the contract tested here.
 */
#include "net_fixture.h"

#include <ctype.h>
#include <pwd.h>
#include <kipc/ring.h>
#include <sched.h>

#include <nats/nats.h>

/* What a test's processes share. */
struct share {
	struct kt_barrier ready, go, done;
	char name[64];        /* the mailbox, "/kt-..." */
	pid_t pid;            /* the server's pid on its node */
	int64_t id;           /* the server's mailbox id on its node */
	int result[8];
	char text[8][64];
	int64_t t[4];         /* times (kt_now_ns) a child saw something */
};

static struct share *share_new(void)
{
	struct share *s = nf_shared(sizeof *s);
	if (!s)
		return NULL;
	kt_barrier_init(&s->ready);
	kt_barrier_init(&s->go);
	kt_barrier_init(&s->done);
	snprintf(s->name, sizeof s->name, "/kt-%d-net", (int)getpid());
	return s;
}

/* Run fn(s) in a child attached to node i as uid (0: as we are). */
static pid_t on_node_as(int i, uid_t uid, int (*fn)(struct share *), struct share *s)
{
	pid_t p = fork();
	if (p == 0) {
		if (uid && (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0))
			_exit(79);
		if (nf_use(i) < 0)
			_exit(80);
		_exit(fn(s));
	}
	return p;
}

static pid_t on_node(int i, int (*fn)(struct share *), struct share *s)
{
	return on_node_as(i, 0, fn, s);
}

static int64_t open_mbox(struct share *s, uint32_t cap, uint32_t mode)
{
	s->id = nf_mbox_create(s->name, cap, mode);
	s->pid = kipc_task_pid();
	return s->id;
}

/* In a server: its mailbox s->name (cap, mode), then it says ready. */
static int mbox_ready(struct share *s, uint32_t cap, uint32_t mode)
{
	if (open_mbox(s, cap, mode) < 0)
		return -1;
	kt_post(&s->ready, 1);
	return 0;
}

/* Start server fn on node i; its pid once it is ready, else -1. */
static pid_t serve(int i, int (*fn)(struct share *), struct share *s)
{
	pid_t p = on_node(i, fn, s);
	if (p > 0 && kt_wait_post(&s->ready, 1)) {
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
		return -1;
	}
	return p;
}

static int64_t remote(const char *node, struct share *s)
{
	return nf_remote(node, s->name);
}

/* serve() fn on node i, then open its mailbox s->name from here: the id
 * (its pid in *srv), or -1. */
static int64_t serve_remote(int i, int (*fn)(struct share *), struct share *s, pid_t *srv)
{
	*srv = serve(i, fn, s);
	return *srv > 0 ? remote(nf_name(i), s) : -1;
}

/* ---------------------------------------------------------------- */

/* Server: three messages, highest priority first, types kept. */
static int srv_three(struct share *s)
{
	if (mbox_ready(s, 16, 0666))
		return 10;
	if (kt_wait_post(&s->go, 1))
		return 11;
	for (int i = 0; i < 3; i++) {
		struct kipc_msginfo mi;
		char buf[64] = "";
		ssize_t n = kipc_mbox_receive(s->id, buf, sizeof buf - 1, &mi, KIPC_F_NONBLOCK);
		if (n < 0)
			return 20 + i;
		snprintf(s->text[i], sizeof s->text[i], "%.32s/%u/%lld", buf, mi.prio,
			 (long long)mi.type); /* (the test's messages are short) */
		s->result[i] = mi.pid;
	}
	s->result[3] = kipc_node_pid("a", getppid()); /* the sender: the test */
	return 0;
}

TEST(mbox_send_across_nodes)
{
	struct share *s = share_new();
	pid_t srv;
	int64_t id = serve_remote(1, srv_three, s, &srv);
	ASSERT_GT(id, 0);
	ASSERT_TRUE(KIPC_NET_IS_MBOX(id));
	struct kipc_opts o = {.type = 7};
	ASSERT_EQ(0, kipc_mbox_send_x(id, "low1", 5, 1, 0, &o));
	ASSERT_EQ(0, kipc_mbox_send(id, "high", 5, 5, 0));
	ASSERT_EQ(0, kipc_mbox_send(id, "low2", 5, 1, 0));
	/* The same name opens the same remote id again. */
	EXPECT_EQ(id, remote("b", s));
	kt_post(&s->go, 1);
	ASSERT_EQ(0, kt_wait(srv));
	EXPECT_STREQ("high/5/0", s->text[0]);
	EXPECT_STREQ("low1/1/7", s->text[1]);
	EXPECT_STREQ("low2/1/0", s->text[2]);
	/* The sender is the test's task, node-qualified (b's numbering). */
	EXPECT_TRUE(KIPC_NET_IS_PID(s->result[0]));
	EXPECT_EQ(s->result[3], s->result[0]);
}

/*
 * Server on b: receives with push (transport.md section 13) while remote
 * sends arrive. text[i]: what receive i returned; result[0]: receive 2
 * completed while the test held b's kipcd stopped (it was pushed).
 */
static int srv_pushed(struct share *s)
{
	if (mbox_ready(s, 16, 0666))
		return 10;
	char buf[16];
	for (int i = 0; i < 5; i++) {
		if (kt_wait_post(&s->go, 1))
			return 11;
		memset(buf, 0, sizeof buf);
		struct kipc_msginfo mi;
		if (kipc_mbox_receive(s->id, buf, sizeof buf - 1, &mi, 0) < 0)
			return 20 + i;
		snprintf(s->text[i], sizeof s->text[i], "%s/%u", buf, mi.prio);
		kt_post(&s->done, 1);
	}
	return 0;
}

/* A remote send that would go ahead of the messages pushed to a receiver
 * on its home node takes the push back first, as a local one does: the
 * receiver's next receive is the remote message, not a pushed one. */
TEST(a_remote_send_goes_ahead_of_pushed_receives)
{
	struct share *s = share_new();
	pid_t srv, kipcd_b = nf->node[1].pid;
	int64_t id = serve_remote(1, srv_pushed, s, &srv);
	ASSERT_GT(id, 0);
	const char *low[] = {"low1", "low2", "low3", "low4"};
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(0, kipc_mbox_send(id, low[i], 5, 1, 0));
	/* Receive 1 completes at once: the receiver earns a push of the rest. */
	kt_post(&s->go, 1);
	ASSERT_EQ(0, kt_wait_post(&s->done, 1));
	/* Receive 2 with b's kipcd stopped: only a pushed message completes it. */
	ASSERT_EQ(0, kill(kipcd_b, SIGSTOP));
	int64_t until = __ksft_now_ms() + KT_BOUND_MS;
	while (kt_proc_state(kipcd_b) != 'T' && __ksft_now_ms() < until)
		usleep(100);
	kt_post(&s->go, 1);
	int pushed = kt_wait_post_ms(&s->done, 1, 1000) == 0;
	kill(kipcd_b, SIGCONT);
	ASSERT_TRUE(pushed || kt_wait_post(&s->done, 1) == 0);
	EXPECT_TRUE(pushed) TH_LOG("receive 2 was not pushed: the test did not test");
	/* Returns once the message is queued at b, ahead of low3 and low4. */
	ASSERT_EQ(0, kipc_mbox_send(id, "high", 5, 5, 0));
	kt_post(&s->go, 3);
	ASSERT_EQ(0, kt_wait(srv));
	EXPECT_STREQ("low1/1", s->text[0]);
	EXPECT_STREQ("low2/1", s->text[1]);
	EXPECT_STREQ("high/5", s->text[2]);
	EXPECT_STREQ("low3/1", s->text[3]);
	EXPECT_STREQ("low4/1", s->text[4]);
}

/* Server on b: one message; the sender's address; send(sender) back. */
static int srv_send_back(struct share *s)
{
	if (mbox_ready(s, 4, 0666))
		return 10;
	char buf[64] = "";
	struct kipc_msginfo mi;
	if (kipc_mbox_receive_timed(s->id, buf, sizeof buf - 1, &mi, 0,
				    (int64_t)KT_BOUND_MS * 1000000) < 0)
		return 11;
	snprintf(s->text[0], sizeof s->text[0], "%s", buf);
	s->result[0] = mi.pid;
	s->result[1] = kipc_node_pid("a", KIPC_NET_PID_PID(mi.pid));
	struct kipc_net_peer np;
	if (kipc_net_peer(mi.pid, &np) == 0)
		snprintf(s->text[1], sizeof s->text[1], "%s:%d", np.node, (int)np.pid);
	s->result[2] = kipc_send(mi.pid, "back", 5, 0, 0) == 0 ? 0 : errno;
	kt_post(&s->done, 1); /* sent (or refused): the client looks */
	return 0;
}

/* Client on a: send to b's mailbox, then look for the answer on our
 * own task queue. */
static int client_send_back(struct share *s)
{
	int64_t id = remote("b", s);
	if (id < 0)
		return 10;
	s->result[3] = (int)getpid();
	if (kipc_mbox_send(id, "hello", 6, 0, 0) < 0)
		return 11;
	if (kt_wait_post(&s->done, 1))
		return 12;
	char buf[64] = "";
	struct kipc_msginfo mi;
	if (kipc_receive(KIPC_ANY, buf, sizeof buf - 1, &mi, KIPC_F_NONBLOCK) < 0)
		return errno == EAGAIN ? 0 : 13;
	snprintf(s->text[2], sizeof s->text[2], "%s", buf);
	s->result[4] = mi.pid;
	s->result[5] = kipc_node_pid("b", s->pid); /* the server, as a numbers it */
	return 0;
}

TEST(direct_send_back_to_a_remote_sender)
{
	/* Both run as a uid the cluster declares shared. */
	struct share *s = share_new();
	pid_t srv = on_node_as(1, NF_SHARED_UID, srv_send_back, s);
	ASSERT_EQ(0, kt_wait_post(&s->ready, 1));
	pid_t cli = on_node_as(0, NF_SHARED_UID, client_send_back, s);
	ASSERT_EQ(0, kt_wait(cli));
	ASSERT_EQ(0, kt_wait(srv));
	EXPECT_STREQ("hello", s->text[0]);
	/* b sees a:PID, the client itself, as an address it can send to. */
	EXPECT_TRUE(KIPC_NET_IS_PID(s->result[0]));
	EXPECT_EQ(s->result[1], s->result[0]);
	char want[32];
	snprintf(want, sizeof want, "a:%d", s->result[3]);
	EXPECT_STREQ(want, s->text[1]);
	EXPECT_EQ(0, s->result[2]);
	/* ... and the answer reached that task, from b:PID. */
	EXPECT_STREQ("back", s->text[2]);
	EXPECT_EQ(s->result[5], s->result[4]);

	/* Root is not shared between a and b: remote root is 65534 at a,
	 * and a direct send needs the target's uid, as kill(2) does. */
	struct share *t = share_new();
	srv = serve(1, srv_send_back, t);
	ASSERT_GT(srv, 0);
	cli = on_node(0, client_send_back, t);
	ASSERT_EQ(0, kt_wait(cli));
	ASSERT_EQ(0, kt_wait(srv));
	EXPECT_STREQ("hello", t->text[0]);
	EXPECT_EQ(EPERM, t->result[2]);
	EXPECT_STREQ("", t->text[2]); /* nothing arrived */
}

/* Server: receive one message on its task queue. */
static int srv_taskq(struct share *s)
{
	s->pid = kipc_task_pid();
	kt_post(&s->ready, 1);
	char buf[64] = "";
	struct kipc_msginfo mi;
	ssize_t n = kipc_receive_timed(KIPC_ANY, buf, sizeof buf - 1, &mi, 0,
				       (int64_t)KT_BOUND_MS * 1000000);
	if (n < 0)
		return 10;
	snprintf(s->text[0], sizeof s->text[0], "%s", buf);
	return 0;
}

TEST(direct_send_to_node_pid)
{
	/* Node c shares uid 0: root here is root there. */
	struct share *s = share_new();
	pid_t srv = serve(2, srv_taskq, s);
	ASSERT_GT(srv, 0);
	pid_t p = kipc_node_pid("c", s->pid);
	ASSERT_NE(-1, p);
	ASSERT_TRUE(KIPC_NET_IS_PID(p));
	EXPECT_EQ(s->pid, KIPC_NET_PID_PID(p));
	int r = kipc_send(p, "hello c", 8, 0, 0);
	if (r < 0)
		TH_LOG("send: %s", strerror(errno));
	ASSERT_EQ(0, r);
	ASSERT_EQ(0, kt_wait(srv));
	EXPECT_STREQ("hello c", s->text[0]);
	/* Bad names and pids. */
	EXPECT_EQ(-1, kipc_node_pid("B!", 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kipc_node_pid("b", 0));
	EXPECT_EQ(EINVAL, errno);
}

/* Server: answer two calls with "re:" + request. */
static int srv_calls(struct share *s)
{
	if (mbox_ready(s, 4, 0666))
		return 10;
	for (int i = 0; i < 2; i++) {
		char buf[64] = "", out[80];
		struct kipc_msginfo mi;
		ssize_t n = kipc_mbox_receive_timed(s->id, buf, sizeof buf - 1, &mi, 0,
						    (int64_t)KT_BOUND_MS * 1000000);
		if (n < 0 || !(mi.flags & KIPC_CQE_F_CALL))
			return 20 + i;
		int len = snprintf(out, sizeof out, "re:%s", buf);
		if (kipc_reply(mi.token, out, (size_t)len + 1, 0) < 0)
			return 30 + i;
	}
	return 0;
}

TEST(call_reply_across_nodes)
{
	struct share *s = share_new();
	pid_t srv;
	int64_t id = serve_remote(1, srv_calls, s, &srv);
	ASSERT_GT(id, 0);
	char reply[64] = "";
	ssize_t n = kipc_mbox_call(id, "ping", 5, reply, sizeof reply, NULL, 0);
	ASSERT_EQ(8, n);
	EXPECT_STREQ("re:ping", reply);
	/* A short reply buffer: EMSGSIZE unless TRUNC, as locally. */
	char small[4] = "";
	struct kipc_msginfo mi;
	n = kipc_mbox_call(id, "trunc", 6, small, sizeof small, &mi, KIPC_F_TRUNC);
	ASSERT_EQ(4, n);
	EXPECT_EQ(0, memcmp(small, "re:t", 4));
	EXPECT_TRUE(mi.flags & KIPC_CQE_F_TRUNC);
	ASSERT_EQ(0, kt_wait(srv));
}

/* Server: a mailbox of capacity 1; receives when told, reports. */
static int srv_cap1(struct share *s)
{
	if (mbox_ready(s, 1, 0666))
		return 10;
	if (kt_wait_post(&s->go, 1))
		return 11;
	/* The blocked remote sender is parked here, as a local one. */
	if (kt_wait_mbox(s->id, KT_SENDERS, 1, KT_BOUND_MS))
		return 12;
	for (int i = 0; i < 2; i++) {
		char buf[64] = "";
		if (kipc_mbox_receive(s->id, buf, sizeof buf - 1, NULL, 0) < 0)
			return 20 + i;
		snprintf(s->text[i], sizeof s->text[i], "%s", buf);
	}
	return 0;
}

static int64_t g_remote;
static int blocked_send(struct share *s)
{
	(void)s;
	return kipc_mbox_send(g_remote, "third", 6, 0, 0) == 0 ? 0 : errno;
}

TEST(capacity_at_home_node)
{
	struct share *s = share_new();
	pid_t srv;
	int64_t id = serve_remote(1, srv_cap1, s, &srv);
	ASSERT_GT(id, 0);
	ASSERT_EQ(0, kipc_mbox_send(id, "first", 6, 0, 0));
	EXPECT_EQ(-1, kipc_mbox_send(id, "second", 7, 0, KIPC_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	int64_t t0 = kt_now_ns();
	EXPECT_EQ(-1, kipc_mbox_send_timed(id, "second", 7, 0, 0, 100 * 1000000));
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_GE(kt_now_ns() - t0, 100 * 1000000);
	g_remote = id;
	pid_t snd = on_node(0, blocked_send, s);
	kt_post(&s->go, 1);
	ASSERT_EQ(0, kt_wait(srv));
	ASSERT_EQ(0, kt_wait(snd));
	EXPECT_STREQ("first", s->text[0]);
	EXPECT_STREQ("third", s->text[1]);
}

/* Server: destroys (result[0] = 0) or dies owning (1) its full mailbox
 * once the remote sender is parked on it. */
static int srv_end(struct share *s)
{
	if (mbox_ready(s, 1, 0666))
		return 10;
	if (kt_wait_mbox(s->id, KT_SENDERS, 1, KT_BOUND_MS))
		return 12;
	if (s->result[0] == 0 && kipc_mbox_destroy(s->id) < 0)
		return 13;
	return 0; /* exit: a process-owned mailbox goes with its owner */
}

static void end_reaches_remote_sender(struct __test_metadata *_metadata, int how)
{
	struct share *s = share_new();
	s->result[0] = how;
	pid_t srv;
	int64_t id = serve_remote(1, srv_end, s, &srv);
	ASSERT_GT(id, 0);
	ASSERT_EQ(0, kipc_mbox_send(id, "fill", 5, 0, 0));
	EXPECT_EQ(-1, kipc_mbox_send(id, "parked", 7, 0, 0));
	EXPECT_EQ(EIDRM, errno);
	ASSERT_EQ(0, kt_wait(srv));
}

TEST(destroy_is_eidrm_for_remote_sender) { end_reaches_remote_sender(_metadata, 0); }
TEST(owner_death_is_eidrm_for_remote_sender) { end_reaches_remote_sender(_metadata, 1); }

/* Server: a mailbox of the given mode; waits for the end. */
static int srv_mode(struct share *s)
{
	if (mbox_ready(s, 4, (uint32_t)s->result[0]))
		return 10;
	return kt_wait_post(&s->done, 1) ? 11 : 0;
}

TEST(remote_callers_are_unprivileged)
{
	/* Root here is uid 65534 there (no net_shared_uids): mode bits apply. */
	struct share *s = share_new();
	s->result[0] = 0600;
	pid_t srv;
	int64_t id = serve_remote(1, srv_mode, s, &srv);
	ASSERT_GT(id, 0);
	EXPECT_EQ(-1, kipc_mbox_send(id, "x", 2, 0, 0));
	EXPECT_EQ(EACCES, errno);
	/* A direct send needs the same uid (or root): 65534 is neither. */
	EXPECT_EQ(-1, kipc_send(kipc_node_pid("b", s->pid), "x", 2, 0, 0));
	EXPECT_EQ(EPERM, errno);
	kt_post(&s->done, 1);
	ASSERT_EQ(0, kt_wait(srv));

	struct share *t = share_new();
	t->result[0] = 0602; /* writable by others */
	srv = serve(1, srv_mode, t);
	ASSERT_GT(srv, 0);
	id = remote("b", t);
	ASSERT_GT(id, 0);
	EXPECT_EQ(0, kipc_mbox_send(id, "x", 2, 0, 0));
	kt_post(&t->done, 1);
	ASSERT_EQ(0, kt_wait(srv));
}

/* On node a as root, then uid 1000: sends to s's 0600 root mailbox on c. */
static int cred_sender(struct share *s)
{
	int64_t id = remote("c", s);
	if (id < 0)
		return 10;
	/* Root is shared on c: root's mailbox takes it. */
	if (kipc_mbox_send(id, "root", 5, 0, 0) < 0)
		return 11;
	if (setresgid(1000, 1000, 1000) < 0 || setresuid(1000, 1000, 1000) < 0)
		return 12;
	/* Until cred_refresh the kernel knows it as root, here and there. */
	if (kipc_mbox_send(id, "stale", 6, 0, 0) < 0)
		return 13;
	if (kipc_cred_refresh() < 0)
		return 14;
	/* Now uid 1000, not shared on c: 65534 there, and the mode says no. */
	if (kipc_mbox_send(id, "user", 5, 0, 0) == 0)
		return 15;
	int r = errno == EACCES ? 0 : 16;
	/* Stay until the server has looked at this task's proxy on c: the
	 * proxy ends when this task does. */
	kt_post(&s->done, 1);
	if (kt_wait_post(&s->go, 1))
		return 17;
	return r;
}

/* Server on c: its 0600 mailbox; what it received, and as whom. */
static int srv_cred(struct share *s)
{
	if (mbox_ready(s, 4, 0600))
		return 10;
	if (kt_wait_post(&s->done, 1))
		return 11;
	pid_t proxy = 0;
	struct kipc_net_peer np;
	for (int i = 0; i < 3; i++) {
		char buf[16] = "";
		struct kipc_msginfo mi;
		if (kipc_mbox_receive(s->id, buf, sizeof buf - 1, &mi, KIPC_F_NONBLOCK) < 0)
			break;
		proxy = mi.pid;
		snprintf(s->text[i], sizeof s->text[i], "%s", buf);
	}
	/* The proxy runs as the mapped uid its caller has now. */
	int r = kipc_net_peer(proxy, &np);
	kt_post(&s->go, 1); /* the sender may go */
	if (r < 0)
		return 20;
	snprintf(s->text[3], sizeof s->text[3], "%u->%u", np.uid, np.mapped_uid);
	return 0;
}

TEST(cred_refresh_reaches_the_home_node)
{
	struct share *s = share_new();
	pid_t srv = serve(2, srv_cred, s);
	ASSERT_GT(srv, 0);
	pid_t snd = on_node(0, cred_sender, s);
	EXPECT_EQ(0, kt_wait(snd));
	ASSERT_EQ(0, kt_wait(srv));
	EXPECT_STREQ("root", s->text[0]);
	EXPECT_STREQ("stale", s->text[1]);
	EXPECT_STREQ("", s->text[2]); /* the refused one is not there */
	EXPECT_STREQ("1000->65534", s->text[3]);
}

TEST(what_does_not_cross_nodes_is_exdev)
{
	struct share *s = share_new();
	s->result[0] = 0666;
	pid_t srv;
	int64_t id = serve_remote(1, srv_mode, s, &srv);
	ASSERT_GT(id, 0);
	char buf[8];
	struct kipc_mbox_stat st;
	EXPECT_EQ(-1, kipc_mbox_receive(id, buf, sizeof buf, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EXDEV, errno);
	struct kipc_mbox_attr a = kt_attr(4);
	int64_t local = kipc_mbox_open(NULL, KIPC_O_CREAT, &a);
	ASSERT_GT(local, 0);
	int64_t set[2] = {local, id};
	EXPECT_EQ(-1, kipc_mbox_receive_set(set, 2, buf, sizeof buf, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EXDEV, errno);
	EXPECT_EQ(-1, kipc_mbox_stat(id, &st));
	EXPECT_EQ(EXDEV, errno);
	EXPECT_EQ(-1, kipc_mbox_destroy(id));
	EXPECT_EQ(EXDEV, errno);
	/* Introspection of a remote object: at its home node (kipcs there). */
	struct kipc_mbox_info mi;
	struct kipc_waiter_info wi[4];
	struct kipc_msg_info msi[4];
	struct kipc_task_info ti;
	EXPECT_EQ(-1, kipc_mbox_info(id, &mi));
	EXPECT_EQ(EXDEV, errno);
	EXPECT_EQ(-1, kipc_waiter_list(id, 0, wi, 4));
	EXPECT_EQ(EXDEV, errno);
	EXPECT_EQ(-1, kipc_msg_list(id, 0, msi, 4));
	EXPECT_EQ(EXDEV, errno);
	pid_t rp = kipc_node_pid("b", s->pid);
	EXPECT_EQ(-1, kipc_waiter_list(rp, KIPC_INTRO_TASKQ, wi, 4));
	EXPECT_EQ(EXDEV, errno);
	EXPECT_EQ(-1, kipc_msg_list(rp, KIPC_INTRO_TASKQ, msi, 4));
	EXPECT_EQ(EXDEV, errno);
	EXPECT_EQ(-1, kipc_task_info(rp, &ti));
	EXPECT_EQ(EXDEV, errno);
	/* ... the same calls on a local mailbox still answer here. */
	EXPECT_EQ(0, kipc_mbox_info(local, &mi));
	EXPECT_EQ(0, kipc_msg_list(local, 0, msi, 4));
	char n[128];
	snprintf(n, sizeof n, "/net/b%s-new", s->name);
	EXPECT_EQ(-1, kipc_mbox_open(n, KIPC_O_CREAT, &a));
	EXPECT_EQ(EXDEV, errno);
	EXPECT_EQ(-1, kipc_mbox_send(id, "c", 2, 0, KIPC_F_CACHE));
	EXPECT_EQ(EXDEV, errno);
	pid_t p = kipc_node_pid("b", s->pid);
	EXPECT_EQ(-1, kipc_receive(p, buf, sizeof buf, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EXDEV, errno);
	/* A node index this kernel never gave, a remote id it never gave. */
	EXPECT_EQ(-1, kipc_send(KIPC_NET_PID(KIPC_NET_INDEX_MAX, 1), "x", 2, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kipc_mbox_send(KIPC_NET_MBOX_BIT | 123456, "x", 2, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	/* A missing name at the home node. */
	snprintf(n, sizeof n, "/net/b%s-none", s->name);
	EXPECT_EQ(-1, kipc_mbox_open(n, 0, NULL));
	EXPECT_EQ(ENOENT, errno);
	kt_post(&s->done, 1);
	ASSERT_EQ(0, kt_wait(srv));
}

TEST(cancel_a_remote_send)
{
	struct share *s = share_new();
	s->result[0] = 0666;
	pid_t srv;
	int64_t id = serve_remote(1, srv_cap1, s, &srv);
	ASSERT_GT(id, 0);
	ASSERT_EQ(0, kipc_mbox_send(id, "first", 6, 0, 0));
	/* The second send parks at b; cancel it from here. */
	struct kipc_sqe *sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	static char msg[] = "cancelled";
	void *buf = kipc_buf_alloc(sizeof msg);
	ASSERT_NE(NULL, buf);
	memcpy(buf, msg, sizeof msg);
	kipc_prep_mbox_send(sqe, id, buf, sizeof msg, 0, 0);
	kipc_sqe_set_data(sqe, 77);
	ASSERT_EQ(1, kipc_submit());
	struct kipc_net_stat ns;
	ASSERT_EQ(0, kipc_net_stat(&ns));
	EXPECT_STREQ("a", ns.node);
	EXPECT_EQ(1, ns.noutstanding);
	EXPECT_EQ(0, kipc_cancel(77, 0));
	struct kipc_cqe *c;
	ASSERT_EQ(0, kipc_wait_cqe(&c));
	EXPECT_EQ(77, c->user_data);
	EXPECT_EQ(-ECANCELED, c->res);
	kipc_cqe_seen(c);
	kipc_buf_free(buf);
	EXPECT_EQ(-1, kipc_cancel(77, 0));
	EXPECT_EQ(ENOENT, errno);
	/* What b sees: "first", then the one sent after the cancel. */
	g_remote = id;
	pid_t snd = on_node(0, blocked_send, s);
	kt_post(&s->go, 1);
	ASSERT_EQ(0, kt_wait(srv));
	ASSERT_EQ(0, kt_wait(snd));
	EXPECT_STREQ("first", s->text[0]);
	EXPECT_STREQ("third", s->text[1]);
}

/* Run kipcs on node i with args; its output (NUL-terminated) in out. */
static int kipcs_on(int i, const char *const args[], char *out, size_t len)
{
	int fd;
	pid_t p = nf_spawn(i, "bin/kipcs", args, 0, NULL, &fd, NULL);
	if (p < 0)
		return -1;
	nf_read_all(fd, out, len);
	return kt_wait(p);
}

/* On b (3002 at d) or c (unmapped there: 65534): d's 0600 mailbox of
 * 3001 refuses its send. */
static int send_refused(struct share *s)
{
	int64_t id = remote("d", s);
	if (id < 0)
		return 10;
	if (kipc_mbox_send(id, "x", 2, 0, 0) == 0)
		return 11;
	return errno == EACCES ? 0 : 12;
}

/*
 * Node d maps origin a to uid 3001 and b to 3002 (net_origin_uids): the
 * callers of a (root here, not shared there) are 3001 at d, so a 0600
 * mailbox of 3001's takes them and kipcs there shows them as 3001; b's
 * (3002) and c's (unmapped: 65534) are refused.
 */
TEST(origin_uids_give_each_node_its_uid)
{
	char why[256];
	ASSERT_EQ(KSFT_PASS, nf_boot_node(3, "net_shared_uids=2000-2999 net_origin_uids=a:3001,b:3002",
					  why, sizeof why)) TH_LOG("%s", why);
	struct share *s = share_new();
	s->result[0] = 0600;
	pid_t srv = on_node_as(3, 3001, srv_mode, s);
	ASSERT_GT(srv, 0);
	ASSERT_EQ(0, kt_wait_post(&s->ready, 1));
	int64_t id = remote("d", s);
	ASSERT_GT(id, 0);
	EXPECT_EQ(0, kipc_mbox_send(id, "from a", 7, 0, 0));
	static char out[16384];
	char want[64];
	snprintf(want, sizeof want, "\na:%d ", (int)getpid());
	ASSERT_EQ(0, kipcs_on(3, (const char *const[]){"kipcs", "-t", NULL}, out, sizeof out));
	char *line = strstr(out, want);
	ASSERT_NE(NULL, line) TH_LOG("kipcs -t on d:\n%s", out);
	char *end = strchr(line + 1, '\n');
	if (end)
		*end = 0;
	struct passwd *pw = getpwuid(3001);
	snprintf(want, sizeof want, " %s ", pw ? pw->pw_name : "3001");
	EXPECT_NE(NULL, strstr(line, want));
	TH_LOG("kipcs -t on d: %s", line + 1);
	EXPECT_EQ(0, kt_wait(on_node(1, send_refused, s)));
	EXPECT_EQ(0, kt_wait(on_node(2, send_refused, s)));
	kt_post(&s->done, 1);
	ASSERT_EQ(0, kt_wait(srv));
	nf_stop_node(3, SIGTERM);
	/* A map that would make a remote node root: the node refuses to boot. */
	EXPECT_NE(KSFT_PASS, nf_boot_node(3, "net_origin_uids=a:0", why, sizeof why));
	int fd = open(nf->node[3].log, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	nf_read_all(fd, out, sizeof out);
	EXPECT_NE(NULL, strstr(out, "kipcd: bad value in 'net_origin_uids=a:0'"))
		TH_LOG("its log: %s", out);
	nf_stop_node(3, 0);
}

TEST(kipcs_shows_nodes_and_remote_waiters)
{
	struct share *s = share_new();
	pid_t srv;
	int64_t id = serve_remote(1, srv_cap1, s, &srv);
	ASSERT_GT(id, 0);
	ASSERT_EQ(0, kipc_mbox_send(id, "first", 6, 0, 0));
	g_remote = id;
	pid_t snd = on_node(0, blocked_send, s);
	/* Parked at b as a proxy: its pid there is not snd. */
	struct kipc_net_stat ns;
	ASSERT_EQ(0, kipc_net_stat(&ns));
	static char out[16384];
	char want[64];
	snprintf(want, sizeof want, "a:%d ", (int)snd);
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	do {
		ASSERT_EQ(0, kipcs_on(1, (const char *const[]){"kipcs", "-m", s->name, NULL},
				      out, sizeof out));
	} while (!strstr(out, want) && __ksft_now_ms() < deadline);
	if (!strstr(out, want))
		TH_LOG("kipcs -m on b:\n%s", out);
	EXPECT_NE(NULL, strstr(out, want));
	/* The queued message's sender: this task, a:PID. */
	snprintf(want, sizeof want, " a:%d ", (int)getpid());
	EXPECT_NE(NULL, strstr(out, want));
	snprintf(want, sizeof want, "last sender a:%d,", (int)getpid());
	EXPECT_NE(NULL, strstr(out, want));
	ASSERT_EQ(0, kipcs_on(1, (const char *const[]){"kipcs", "-m", s->name, "--json", NULL},
			      out, sizeof out));
	snprintf(want, sizeof want, "\"remote\": \"a:%d\"", (int)snd);
	EXPECT_NE(NULL, strstr(out, want));
	snprintf(want, sizeof want, "\"remote\": \"a:%d\"", (int)getpid());
	EXPECT_NE(NULL, strstr(out, want));
	/* The proxies in the task list, by their address. */
	ASSERT_EQ(0, kipcs_on(1, (const char *const[]){"kipcs", "-t", NULL}, out, sizeof out));
	snprintf(want, sizeof want, "\na:%d ", (int)snd);
	EXPECT_NE(NULL, strstr(out, want)) TH_LOG("kipcs -t on b:\n%s", out);
	ASSERT_EQ(0, kipcs_on(1, (const char *const[]){"kipcs", "-t", "--json", NULL}, out,
			      sizeof out));
	snprintf(want, sizeof want, "\"remote\": \"a:%d\"", (int)snd);
	EXPECT_NE(NULL, strstr(out, want));
	ASSERT_EQ(0, kipcs_on(1, (const char *const[]){"kipcs", "-u", "--json", NULL},
			      out, sizeof out));
	EXPECT_NE(NULL, strstr(out, "\"node\": \"b\""));
	ASSERT_EQ(0, kipcs_on(2, (const char *const[]){"kipcs", "-u", NULL}, out, sizeof out));
	EXPECT_NE(NULL, strstr(out, "node        : c (NATS)"));
	/* net_peer: not a proxy. */
	struct kipc_net_peer np;
	EXPECT_EQ(-1, kipc_net_peer(getpid(), &np));
	EXPECT_EQ(ESRCH, errno);
	kt_post(&s->go, 1);
	ASSERT_EQ(0, kt_wait(srv));
	ASSERT_EQ(0, kt_wait(snd));
}

/* Run tool rel on node i with args: its exit status, its stdout and
 * stderr (NUL-terminated) in out. */
static int tool_on(int i, const char *rel, const char *const args[], char *out, size_t len)
{
	int fd;
	pid_t p = nf_spawn(i, rel, args, 0, NULL, &fd, &fd);
	if (p < 0)
		return -1;
	nf_read_all(fd, out, len);
	return kt_wait(p);
}

TEST(kipc_trace_and_kipc_top_take_a_remote_caller_as_node_pid)
{
	NF_SLOW(); /* it traces for a fixed three seconds */
	struct share *s = share_new();
	pid_t srv;
	int64_t id = serve_remote(1, srv_cap1, s, &srv);
	ASSERT_GT(id, 0);
	ASSERT_EQ(0, kipc_mbox_send(id, "first", 6, 0, 0));
	g_remote = id;
	pid_t snd = on_node(0, blocked_send, s);
	/* Parked at b as its proxy task, which kipcs -t shows as a:SND. */
	static char out[16384];
	char who[32], want[64];
	snprintf(who, sizeof who, "a:%d", (int)snd);
	snprintf(want, sizeof want, "\n%s ", who);
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	do {
		ASSERT_EQ(0, kipcs_on(1, (const char *const[]){"kipcs", "-t", NULL}, out, sizeof out));
	} while (!strstr(out, want) && __ksft_now_ms() < deadline);
	ASSERT_NE(NULL, strstr(out, want)) TH_LOG("kipcs -t on b:\n%s", out);
	/* kipc-top -p NODE:PID finds it (then wants a terminal); a pid of
	 * no remote caller and a malformed one say so, without a terminal. */
	EXPECT_EQ(2, tool_on(1, "bin/kipc-top", (const char *const[]){"kipc-top", "-p", who, NULL},
			     out, sizeof out));
	EXPECT_NE(NULL, strstr(out, "needs a terminal")) TH_LOG("%s", out);
	EXPECT_EQ(1, tool_on(1, "bin/kipc-top",
			     (const char *const[]){"kipc-top", "-p", "a:4194303", NULL}, out,
			     sizeof out));
	EXPECT_NE(NULL, strstr(out, "task a:4194303:")) TH_LOG("%s", out);
	EXPECT_EQ(2, tool_on(1, "bin/kipc-top", (const char *const[]){"kipc-top", "-p", "a:", NULL},
			     out, sizeof out));
	EXPECT_NE(NULL, strstr(out, "invalid pid 'a:'")) TH_LOG("%s", out);
	EXPECT_EQ(1, tool_on(1, "bin/kipc-trace",
			     (const char *const[]){"kipc-trace", "-p", "a:4194303", NULL}, out,
			     sizeof out));
	EXPECT_NE(NULL, strstr(out, "no remote caller a:4194303 here")) TH_LOG("%s", out);
	/* kipc-trace -p NODE:PID follows the proxy: its send delivered. */
	int o, e;
	const char *targs[] = {"kipc-trace", "-p", who, "-e", "send,block,exit", "-d", "3", NULL};
	pid_t tr = nf_spawn(1, "bin/kipc-trace", targs, 0, NULL, &o, &e);
	ASSERT_GT(tr, 0);
	char note[1024] = "";
	size_t got = 0;
	for (ssize_t n = 1; n > 0 && !strstr(note, "tracing") && got < sizeof note - 1; got += (size_t)n)
		n = read(e, note + got, sizeof note - 1 - got); /* "tracing pid a:SND": it listens */
	snprintf(want, sizeof want, "tracing pid %s ", who);
	EXPECT_NE(NULL, strstr(note, want)) TH_LOG("%s", note);
	kt_post(&s->go, 1);
	ASSERT_EQ(0, kt_wait(srv));
	ASSERT_EQ(0, kt_wait(snd));
	nf_read_all(o, out, sizeof out);
	ASSERT_EQ(0, kt_wait_ms(tr, 3 * KT_BOUND_MS));
	close(e);
	/* Its own events (the tool shows the followed task's): its exit when
	 * its task at a has exited, under its address. */
	snprintf(want, sizeof want, "-%s ", who);
	char *line = strstr(out, want);
	EXPECT_TRUE(line && strstr(line, "exit")) TH_LOG("kipc-trace -p %s on b:\n%s", who, out);
}


TEST(kipc_trace_shows_a_long_remote_name_whole)
{
	NF_SLOW(); /* it traces for a fixed two seconds */
	char name[160], path[192];
	int n = snprintf(name, sizeof name, "/kt-%d-", (int)getpid());
	memset(name + n, 'L', 120);
	name[n + 120] = '\0';
	int o, e;
	const char *args[] = {"kipc-trace", "-e", "netsend", "-d", "2", NULL};
	pid_t tr = nf_spawn(0, "bin/kipc-trace", args, 0, NULL, &o, &e);
	ASSERT_GT(tr, 0);
	char note[1024] = "";
	size_t got = 0;
	for (ssize_t r = 1; r > 0 && !strstr(note, "tracing") && got < sizeof note - 1; got += (size_t)r)
		r = read(e, note + got, sizeof note - 1 - got);
	ASSERT_NE(NULL, strstr(note, "tracing"));
	/* No such mailbox at b: the request goes, named, and fails ENOENT. */
	snprintf(path, sizeof path, "/net/b%s", name);
	EXPECT_EQ(-1, kipc_mbox_open(path, 0, NULL));
	EXPECT_EQ(ENOENT, errno);
	static char out[65536];
	nf_read_all(o, out, sizeof out);
	ASSERT_EQ(0, kt_wait_ms(tr, 3 * KT_BOUND_MS));
	close(e);
	char want[200];
	snprintf(want, sizeof want, "to=b:%s seq=", name); /* 2 + 130 bytes, whole */
	EXPECT_NE(NULL, strstr(out, want)) TH_LOG("kipc-trace on a:\n%s", out);
	EXPECT_EQ(NULL, strstr(out, "..."));
}

static int two_sends(struct share *s)
{
	(void)s;
	return kipc_mbox_send(g_remote, "one", 4, 0, 0) || kipc_mbox_send(g_remote, "two", 4, 0, 0);
}

TEST(kipc_trace_draws_the_remote_sender)
{
	NF_SLOW(); /* it traces for a fixed two seconds */
	struct share *s = share_new();
	s->result[0] = 0666;
	pid_t srv = serve(1, srv_mode, s);
	ASSERT_GT(srv, 0);
	int o, e;
	const char *args[] = {"kipc-trace", "-m", s->name, "-f", "mermaid", "-d", "2", NULL};
	pid_t tr = nf_spawn(1, "bin/kipc-trace", args, 0, NULL, &o, &e);
	ASSERT_GT(tr, 0);
	char note[256] = "";
	ASSERT_GT(read(e, note, sizeof note - 1), 0); /* "tracing ...": it listens */
	int64_t id = remote("b", s);
	ASSERT_GT(id, 0);
	g_remote = id;
	pid_t snd = on_node(0, two_sends, s);
	ASSERT_EQ(0, kt_wait(snd));
	static char out[65536];
	nf_read_all(o, out, sizeof out);
	ASSERT_EQ(0, kt_wait(tr));
	close(e);
	char want[64];
	snprintf(want, sizeof want, "a:%d (remote)", (int)snd);
	if (!strstr(out, want))
		TH_LOG("kipc-trace on b:\n%s", out);
	EXPECT_NE(NULL, strstr(out, want));
	kt_post(&s->done, 1);
	ASSERT_EQ(0, kt_wait(srv));
}

/* ---------------------------------------------------------------- */
/* kipc-trace at the origin, and across both nodes (-S, -S).         */

/*
 * The tracee (this binary under kipc-trace -- on node a, NT_TRACEE=
 * "NAME PID"): open /net/c/NAME, send to it, send to c:PID directly.
 */
__attribute__((constructor)) static void nt_tracee(void)
{
	const char *t = getenv("NT_TRACEE");
	char name[64], path[128];
	int pid;
	if (!t)
		return;
	if (sscanf(t, "%63s %d", name, &pid) != 2)
		_exit(90);
	snprintf(path, sizeof path, "/net/c%s", name);
	int64_t id = kipc_mbox_open(path, 0, NULL);
	if (id < 0)
		_exit(91);
	if (kipc_mbox_send(id, "one", 4, 0, 0) < 0)
		_exit(92);
	pid_t p = kipc_node_pid("c", pid);
	if (p == -1 || kipc_send(p, "two", 4, 0, 0) < 0)
		_exit(93);
	_exit(0);
}

/* Start kipc-trace with args on node i; *err: its stderr (the note). */
static pid_t start_tracer(int i, const char *const args[], int *err)
{
	return nf_spawn(i, "bin/kipc-trace", args, 0, NULL, NULL, err);
}

/* Digits -> N, runs of blanks -> one: pids, ids, seqs, times, columns. */
static char *mask_numbers(const char *in)
{
	char *out = malloc(strlen(in) + 1), *o = out;
	for (const char *p = in; *p;) {
		if (isdigit((unsigned char)*p)) {
			*o++ = 'N';
			while (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1])))
				p++;
		} else if (*p == ' ') {
			*o++ = ' ';
			while (*p == ' ')
				p++;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}

static char *slurp_file(const char *path)
{
	static char buf[8][65536];
	static int k;
	char *b = buf[k++ % 8];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? 0 : read(fd, b, sizeof buf[0] - 1);
	if (fd >= 0)
		close(fd);
	b[n > 0 ? n : 0] = '\0';
	return b;
}

/* Server on c: the two messages, taken after the proxy is gone. */
static int srv_two(struct share *s)
{
	if (mbox_ready(s, 16, 0666))
		return 10;
	if (kt_wait_post(&s->go, 1))
		return 11;
	char buf[16];
	if (kipc_mbox_receive(s->id, buf, sizeof buf, NULL, KIPC_F_NONBLOCK) != 4)
		return 12;
	if (kipc_receive(0, buf, sizeof buf, NULL, KIPC_F_NONBLOCK) != 4)
		return 13;
	return 0;
}

/* On c: until no remote caller has a proxy there. */
static int wait_no_proxies(struct share *s)
{
	(void)s;
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	struct kipc_net_stat ns;
	while (kipc_net_stat(&ns) == 0 && ns.nproxies && __ksft_now_ms() < deadline)
		kt_sleep_ms(2);
	return kipc_net_stat(&ns) == 0 && ns.nproxies == 0 ? 0 : 1;
}

/* On c: until the server's task (and with it its mailbox) is gone. */
static int wait_server_gone(struct share *s)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	struct kipc_task_info ti;
	while (kipc_task_info(s->pid, &ti) == 0 && __ksft_now_ms() < deadline)
		kt_sleep_ms(2);
	return kipc_task_info(s->pid, &ti) < 0 && errno == ESRCH ? 0 : 1;
}

TEST_TIMEOUT(kipc_trace_at_the_origin_and_across_both_nodes, 60)
{
	struct share *s = share_new();
	pid_t srv = serve(2, srv_two, s);
	ASSERT_GT(srv, 0);
	char dir[PATH_MAX], txt[PATH_MAX + 16], mmd[PATH_MAX + 16], json[PATH_MAX + 16],
		calls[PATH_MAX + 16], one[PATH_MAX + 16];
	snprintf(dir, sizeof dir, "%s", nf->dir);
	snprintf(txt, sizeof txt, "%s/both.txt", dir);
	snprintf(mmd, sizeof mmd, "%s/both.mmd", dir);
	snprintf(json, sizeof json, "%s/both.json", dir);
	snprintf(calls, sizeof calls, "%s/calls.txt", dir);
	snprintf(one, sizeof one, "%s/origin.mmd", dir);
	/* Three tracers of both kernels (a, c), merged. */
	const char *fmts[4] = {"text", "mermaid", "chrome", "mermaid"};
	const char *outs[4] = {txt, mmd, json, one};
	pid_t tr[4];
	for (int i = 0; i < 4; i++) {
		const char *args[] = {"kipc-trace", "-S", nf->node[0].sock, "-S", nf->node[2].sock,
				      "-f", fmts[i], "-o", outs[i], NULL};
		if (i == 3) /* a alone (-S once: the same as KIPC_SOCKET) */
			args[3] = NULL, args[1] = "-f", args[2] = fmts[i], args[3] = "-o",
			args[4] = outs[i], args[5] = "-S", args[6] = nf->node[0].sock, args[7] = NULL;
		int err;
		tr[i] = start_tracer(0, args, &err);
		ASSERT_GT(tr[i], 0);
		char note[512] = "";
		ASSERT_GT(read(err, note, sizeof note - 1), 0);
		close(err);
		if (i == 3)
			continue;
		EXPECT_NE(NULL, strstr(note, "tracing the kernels at ")) TH_LOG("%s", note);
		EXPECT_NE(NULL, strstr(note, "(node a)"));
		EXPECT_NE(NULL, strstr(note, "(node c)"));
	}
	/* The calls at the origin: kipc-trace -- this binary, on a. */
	char self[PATH_MAX], env[128];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	ASSERT_GT(n, 0);
	self[n] = '\0';
	snprintf(env, sizeof env, "NT_TRACEE=%s %d", s->name, (int)s->pid);
	{
		const char *args[] = {"kipc-trace", "-o", calls, "--", self, NULL};
		int err;
		putenv(env);
		pid_t c = start_tracer(0, args, &err);
		unsetenv("NT_TRACEE");
		ASSERT_GT(c, 0);
		char msg[1024];
		ssize_t m;
		while ((m = read(err, msg, sizeof msg - 1)) > 0) {
			msg[m] = '\0';
			TH_LOG("kipc-trace --: %s", msg);
		}
		close(err);
		ASSERT_EQ(0, kt_wait(c));
	}
	/* The proxy ended (the tracee exited), then the server takes both. */
	ASSERT_EQ(0, kt_wait(on_node(2, wait_no_proxies, s)));
	kt_post(&s->go, 1);
	ASSERT_EQ(0, kt_wait(srv));
	/* Its exit destroyed its mailbox: then everything is stamped. */
	ASSERT_EQ(0, kt_wait(on_node(2, wait_server_gone, s)));
	for (int i = 0; i < 4; i++) {
		kill(tr[i], SIGINT);
		ASSERT_EQ(0, kt_wait(tr[i]));
	}
	pid_t q = kipc_node_pid("c", 1);
	ASSERT_NE(-1, q);
	int ix = (int)KIPC_NET_PID_INDEX(q);

	char want[4096];
	char *got = mask_numbers(slurp_file(calls));
	snprintf(want, sizeof want,
		 "[pid N] mbox_open(\"/net/c%s\", N) = N <N>\n"
		 "[pid N] mbox_send(\"/net/c%s\", N bytes) = N <N>\n"
		 "[pid N] net_node(\"c\") = N <N>\n"
		 "[pid N] send(pid c:N, N bytes) = N <N>\n",
		 s->name, s->name);
	char *w = mask_numbers(want);
	EXPECT_STREQ(w, got);
	free(got);
	free(w);
	/* the real numbers: the server's pid, the node index */
	char line[128];
	snprintf(line, sizeof line, "] send(pid c:%d, 4 bytes) = 0 <", (int)s->pid);
	EXPECT_NE(NULL, strstr(slurp_file(calls), line)) TH_LOG("%s", slurp_file(calls));
	snprintf(line, sizeof line, "] net_node(\"c\") = %d <", ix);
	EXPECT_NE(NULL, strstr(slurp_file(calls), line));

	/* Both kernels, merged in time order; the proxy (c's) names its caller. */
	char srvpid[16];
	snprintf(srvpid, sizeof srvpid, "%d", (int)s->pid);
	const char *nm = s->name, *sp = srvpid;
	snprintf(want, sizeof want,
		 "a net_test-N N: attach:\n"
		 "a net_test-N N: netsend: to=c:%s seq=N epoch=N mbox_open\n"
		 "c net:a:N-a:N N: attach:\n"
		 "c net:a:N-a:N N: netrecv: from=a:N seq=N epoch=N mbox_open\n"
		 "c net:a:N-a:N N: open: mbox=N name=%s\n"
		 "a net_test-N N: netsend: to=c:%s seq=N epoch=N mbox_open done=N\n"
		 "a net_test-N N: netsend: to=c:%s seq=N epoch=N mbox_send\n"
		 "c net:a:N-a:N N: netrecv: from=a:N seq=N epoch=N mbox_send mbox=N\n"
		 "c net:a:N-a:N N: send: mbox=N seq=N len=N prio=N\n"
		 "c net:a:N-a:N N: enqueue: mbox=N seq=N len=N\n"
		 "a net_test-N N: netsend: to=c:%s seq=N epoch=N mbox_send done=N\n"
		 "a net_test-N N: netsend: to=c:%s seq=N epoch=N send\n"
		 "c net:a:N-a:N N: netrecv: from=a:N seq=N epoch=N send\n"
		 "c net:a:N-a:N N: send: taskq=N seq=N len=N prio=N\n"
		 "c net:a:N-a:N N: enqueue: taskq=N seq=N len=N\n"
		 "a net_test-N N: netsend: to=c:%s seq=N epoch=N send done=N\n"
		 "a net_test-N N: exit:\n"
		 "c net:a:N-a:N N: netend: from=a:N epoch=N why=exited\n"
		 "c net:a:N-a:N N: exit:\n"
		 "c net_test-N N: deliver: mbox=N seq=N len=N from=a:N\n"
		 "c net_test-N N: deliver: taskq=N seq=N len=N from=a:N\n"
		 "c net_test-N N: exit:\n"
		 "c net_test-N N: destroy: mbox=N\n",
		 nm, nm, nm, nm, nm, sp, sp);
	w = mask_numbers(want);
	got = mask_numbers(slurp_file(txt));
	EXPECT_STREQ(w, got) fprintf(stderr, "%s", slurp_file(txt));
	free(got);
	free(w);
	const char *t = slurp_file(txt);
	snprintf(line, sizeof line, "netsend: to=c:%s seq=", s->name);
	EXPECT_NE(NULL, strstr(t, line)) TH_LOG("%s", t);
	snprintf(line, sizeof line, "netsend: to=c:%d seq=", (int)s->pid);
	EXPECT_NE(NULL, strstr(t, line));
	/* the caller's pid at a is the one the proxy at c names */
	const char *a = strstr(t, "net_test-");
	ASSERT_NE(NULL, a);
	snprintf(line, sizeof line, "from=a:%d seq=", atoi(a + 9));
	EXPECT_NE(NULL, strstr(t, line));

	/* The cross-node send: one arrow from the caller at a to the mailbox at c. */
	snprintf(want, sizeof want,
		 "sequenceDiagram\n"
		 "    participant T0_N as a: net_test N\n"
		 "    participant M1_N as c: mailbox %s\n"
		 "    participant T1_N as c: net_test %d\n"
		 "    T0_N->>M1_N: send #N (N B)\n"
		 "    Note over T0_N: proxy ended: exited\n"
		 "    M1_N-->>T1_N: #N\n"
		 "    T0_N->>T1_N: #N (N B)\n"
		 "    Note over M1_N: destroyed\n",
		 s->name, (int)s->pid);
	w = mask_numbers(want);
	got = mask_numbers(slurp_file(mmd));
	EXPECT_STREQ(w, got);
	free(got);
	free(w);

	/* Chrome: a process per node; each request one flow from a to c. */
	const char *j = slurp_file(json);
	EXPECT_NE(NULL, strstr(j, "\"args\":{\"name\":\"node a\"}"));
	EXPECT_NE(NULL, strstr(j, "\"args\":{\"name\":\"node c\"}"));
	int flows = 0;
	for (const char *f = j; (f = strstr(f, "{\"ph\":\"s\",\"id\":")); f++) {
		unsigned long long id = strtoull(f + 15, NULL, 10);
		char fin[128];
		snprintf(fin, sizeof fin,
			 "{\"ph\":\"f\",\"id\":%llu,\"name\":\"request\",\"cat\":\"net\",", id);
		if (strstr(f, "\"name\":\"request\"") && strstr(j, fin) &&
		    strstr(f, "\"pid\":1,") < strstr(f, "}") && strstr(strstr(j, fin), "\"pid\":2,"))
			flows++;
	}
	EXPECT_EQ(3, flows) TH_LOG("%s", j);

	/* The origin alone: the requests go to remote participants. */
	snprintf(want, sizeof want,
		 "sequenceDiagram\n"
		 "    participant TN as net_test N\n"
		 "    participant Rc__kt_N_net as c:%s (remote)\n"
		 "    participant Rc_N as c:%d (remote)\n"
		 "    TN->>Rc__kt_N_net: send (request N)\n"
		 "    TN->>Rc_N: send (request N)\n",
		 s->name, (int)s->pid);
	w = mask_numbers(want);
	got = mask_numbers(slurp_file(one));
	EXPECT_STREQ(w, got);
	free(got);
	free(w);
}

/* ---------------------------------------------------------------- */
/* A node cannot claim to be another (the NATS server's permissions). */

static bool g_seen_forged, g_seen_legit;
static int g_spied;
static void on_spy(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *c)
{
	(void)nc, (void)sub, (void)c;
	__atomic_fetch_add(&g_spied, 1, __ATOMIC_SEQ_CST);
	natsMsg_Destroy(m);
}
static void on_b(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *c)
{
	(void)nc, (void)sub, (void)c;
	if (strcmp(natsMsg_GetSubject(m), "kipc.b.req.c") == 0)
		__atomic_store_n(&g_seen_forged, true, __ATOMIC_SEQ_CST);
	if (strcmp(natsMsg_GetSubject(m), "kipc.b.req.a") == 0 &&
	    natsMsg_GetDataLength(m) == 6 && memcmp(natsMsg_GetData(m), "legit", 6) == 0)
		__atomic_store_n(&g_seen_legit, true, __ATOMIC_SEQ_CST);
	natsMsg_Destroy(m);
}

static natsConnection *connect_as(const char *user)
{
	return nf_nats_as(NULL, user);
}

TEST(a_node_cannot_claim_to_be_another)
{
	/* Listen as b (what node b's kipcd sees), talk as a. */
	natsConnection *b = connect_as("b"), *a = connect_as("a");
	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, a);
	natsSubscription *sub;
	ASSERT_EQ(NATS_OK, natsConnection_Subscribe(&sub, b, "kipc.b.>", on_b, NULL));
	ASSERT_EQ(NATS_OK, natsConnection_Flush(b));
	/* Nor can a listen to b's traffic: the server refuses the subscription. */
	natsSubscription *spy = NULL;
	natsConnection_Subscribe(&spy, a, "kipc.b.>", on_spy, NULL);
	/* a forges a request from c, then sends one as itself; the server
	 * keeps a connection's order, so the forged one would come first. */
	natsConnection_Publish(a, "kipc.b.req.c", "forged", 7);
	ASSERT_EQ(NATS_OK, natsConnection_Publish(a, "kipc.b.req.a", "legit", 6));
	natsConnection_Flush(a);
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (!__atomic_load_n(&g_seen_legit, __ATOMIC_SEQ_CST) && __ksft_now_ms() < deadline)
		kt_sleep_ms(2);
	EXPECT_TRUE(g_seen_legit);
	EXPECT_FALSE(g_seen_forged);
	/* What the server routed to a's spy went out before this PONG. */
	natsConnection_Flush(a);
	EXPECT_EQ(0, __atomic_load_n(&g_spied, __ATOMIC_SEQ_CST));
	natsSubscription_Destroy(sub);
	if (spy)
		natsSubscription_Destroy(spy);
	natsConnection_Destroy(a);
	natsConnection_Destroy(b);
}

/* ---------------------------------------------------------------- */
/* A hostile (authenticated) node: whatever it sends, the home node
 * answers by the rules or drops it, and goes on serving. */

/* kernel/net/net.cc's wire header, as a peer sees it. */
struct wire {
	uint32_t magic;
	uint16_t version, kind;
	uint64_t epoch, peer_epoch, seq, low;
	uint8_t op, retry;
	uint16_t prio;
	uint32_t flags;
	int32_t pid;
	uint32_t uid, gid, len2;
	int64_t target, type, timeout;
	struct kipc_cqe cqe;
	uint32_t datalen, order;
	uint64_t inc;
	uint32_t order_low, rsvd;
};
_Static_assert(sizeof(struct wire) == 176, "wire layout");

static struct wire g_ans[64];
static int g_nans;
static void on_answer_d(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *c)
{
	(void)nc, (void)sub, (void)c;
	/* one NATS message may carry several frames (nats.cc coalesces) */
	const uint8_t *p = (const uint8_t *)natsMsg_GetData(m);
	size_t left = (size_t)natsMsg_GetDataLength(m);
	while (left >= sizeof(struct wire)) {
		int i = __atomic_load_n(&g_nans, __ATOMIC_SEQ_CST);
		struct wire w;
		memcpy(&w, p, sizeof w);
		if (i >= 64 || w.datalen > left - sizeof w)
			break;
		g_ans[i] = w;
		__atomic_store_n(&g_nans, i + 1, __ATOMIC_SEQ_CST);
		p += sizeof w + w.datalen;
		left -= sizeof w + w.datalen;
	}
	natsMsg_Destroy(m);
}

/* Publish w (+ data) as node d on subject; wait for the answer to seq. */
static struct wire *ask_on(natsConnection *d, const char *subject, struct wire w,
			   const void *data, uint32_t len)
{
	static uint8_t buf[4096];
	w.magic = 0x54454e4b;
	w.version = 1;
	if (!w.datalen)
		w.datalen = len;
	memcpy(buf, &w, sizeof w);
	if (len)
		memcpy(buf + sizeof w, data, len);
	int before = __atomic_load_n(&g_nans, __ATOMIC_SEQ_CST);
	natsConnection_Publish(d, subject, buf, (int)(sizeof w + len));
	natsConnection_Flush(d);
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (__ksft_now_ms() < deadline) {
		for (int i = before; i < __atomic_load_n(&g_nans, __ATOMIC_SEQ_CST); i++)
			if (g_ans[i].seq == w.seq && g_ans[i].kind != 8) /* a PONG answers no ask */
				return &g_ans[i];
		kt_sleep_ms(1);
	}
	return NULL;
}

/* Publish w (+ data) as node d to b; wait for the answer to seq. */
static struct wire *ask_b(natsConnection *d, struct wire w, const void *data, uint32_t len)
{
	return ask_on(d, "kipc.b.req.d", w, data, len);
}

/* Publish frame w (no data) on subject, as whoever c is. */
static void forge(natsConnection *c, const char *subject, struct wire w)
{
	w.magic = 0x54454e4b;
	w.version = 1;
	natsConnection_Publish(c, subject, &w, sizeof w);
}

TEST(a_hostile_node_gets_errors_and_the_home_goes_on)
{
	natsConnection *d = connect_as("d");
	ASSERT_NE(NULL, d);
	natsSubscription *sub;
	ASSERT_EQ(NATS_OK, natsConnection_Subscribe(&sub, d, "kipc.d.>", on_answer_d, NULL));
	natsConnection_Flush(d);
	/* Garbage of every size up to a header and beyond: dropped. */
	uint8_t junk[512];
	for (unsigned i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	for (int n = 0; n <= 200; n += 8)
		natsConnection_Publish(d, "kipc.b.req.d", junk, n);
	struct wire w = {.kind = 2}; /* hello */
	uint64_t epoch = (uint64_t)kt_realtime_ns();
	w.epoch = epoch;
	struct wire *a = ask_b(d, w, NULL, 0);
	ASSERT_NE(NULL, a);
	EXPECT_EQ(3, a->kind); /* ACK */
	uint64_t home = a->epoch;
	/* No epoch of b named: stale, not run. */
	w = (struct wire){.kind = 1, .epoch = epoch, .seq = 1, .low = 1,
			  .op = KIPC_SYS_mbox_send, .pid = 4242, .target = 1};
	a = ask_b(d, w, "x", 1);
	ASSERT_NE(NULL, a);
	EXPECT_EQ(5, a->kind);
	/* With b's epoch: every bad request gets its errno. */
	struct { uint8_t op; int32_t pid; int64_t target; uint32_t flags; int64_t err; } bad[] = {
		{KIPC_SYS_mbox_send, 4242, 123456789, 0, -EINVAL},   /* no such mailbox */
		{KIPC_SYS_send, 4242, 1, 0, -EPERM},                 /* init: another uid */
		{KIPC_SYS_send, 4242, 1 << 22, 0, -ESRCH},           /* not a pid */
		{KIPC_SYS_send, 4242, KIPC_NET_PID(1, 5), 0, -ESRCH}, /* a proxy's address */
		{KIPC_SYS_send, 4242, -5, 0, -ESRCH},
		{KIPC_SYS_mbox_destroy, 4242, 1, 0, -ENOSYS},        /* not across nodes */
		{99, 4242, 1, 0, -ENOSYS},
		{KIPC_SYS_send, 4242, 1, KIPC_F_CACHE, -EINVAL},
		{KIPC_SYS_send, 0, 1, 0, -EINVAL},                   /* pid out of range */
		{KIPC_SYS_send, 1 << 22, 1, 0, -EINVAL},
		{KIPC_SYS_mbox_open, 4242, 0, 0, -EINVAL},          /* empty name */
		{KIPC_SYS_send, 4242, 1, 0, -ESRCH},                /* an older task of 4242 */
	};
	uint32_t order = 0; /* task 4242's requests, in its order */
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		w = (struct wire){.kind = 1, .epoch = epoch, .peer_epoch = home, .seq = 10 + i,
				  .low = 1, .op = bad[i].op, .pid = bad[i].pid,
				  .uid = 0, .target = bad[i].target, .flags = bad[i].flags,
				  .inc = 10, .order = bad[i].pid == 4242 ? ++order : 1};
		w.order_low = w.order;
		if (i == sizeof bad / sizeof bad[0] - 1)
			w.inc = 5;
		a = ask_b(d, w, bad[i].op == KIPC_SYS_mbox_open ? "" : "x",
			  bad[i].op == KIPC_SYS_mbox_open ? 0 : 1);
		ASSERT_NE(NULL, a);
		EXPECT_EQ(4, a->kind);
		if (a->cqe.res != bad[i].err)
			TH_LOG("request %u: res %lld, want %lld", i, (long long)a->cqe.res,
			       (long long)bad[i].err);
		EXPECT_EQ(bad[i].err, a->cqe.res);
	}
	/* A new task with pid 4242 (a later incarnation) ends the old
	 * proxy; the old one's requests are then ESRCH. Orders run in turn:
	 * order 2 waits (acknowledged) until order 1 came. */
	w = (struct wire){.kind = 1, .epoch = epoch, .peer_epoch = home, .seq = 30, .low = 1,
			  .op = KIPC_SYS_send, .pid = 4242, .target = 1, .inc = 20, .order = 2,
			  .order_low = 1};
	a = ask_b(d, w, "x", 1);
	ASSERT_NE(NULL, a);
	EXPECT_EQ(3, a->kind); /* held: its turn has not come */
	w.seq = 29, w.order = 1;
	a = ask_b(d, w, "x", 1);
	ASSERT_NE(NULL, a);
	EXPECT_EQ(-EPERM, a->cqe.res);
	w.seq = 30, w.order = 2, w.kind = 2; /* probe: it ran after 29 */
	a = ask_b(d, w, NULL, 0);
	ASSERT_NE(NULL, a);
	EXPECT_EQ(4, a->kind);
	EXPECT_EQ(-EPERM, a->cqe.res);
	w = (struct wire){.kind = 1, .epoch = epoch, .peer_epoch = home, .seq = 31, .low = 1,
			  .op = KIPC_SYS_send, .pid = 4242, .target = 1, .inc = 10, .order = 99,
			  .order_low = 99};
	a = ask_b(d, w, "x", 1);
	ASSERT_NE(NULL, a);
	EXPECT_EQ(-ESRCH, a->cqe.res);
	/* A header that lies about its length, a huge reply buffer: dropped
	 * or bounded; then a probe of an id never seen: ENOLINK. */
	w = (struct wire){.kind = 1, .epoch = epoch, .peer_epoch = home, .seq = 40,
			  .low = 1, .op = KIPC_SYS_send, .pid = 4242, .target = 1, .datalen = 4000};
	natsConnection_Publish(d, "kipc.b.req.d", &w, sizeof w);
	w = (struct wire){.kind = 2, .epoch = epoch, .peer_epoch = home, .seq = 41, .low = 1};
	a = ask_b(d, w, NULL, 0);
	ASSERT_NE(NULL, a);
	EXPECT_EQ(-ENOLINK, a->cqe.res);
	/* The same id again: answered from the table, not run twice. */
	w = (struct wire){.kind = 1, .epoch = epoch, .peer_epoch = home, .seq = 11,
			  .low = 1, .op = KIPC_SYS_send, .pid = 4242, .target = 1, .retry = 1,
			  .inc = 10, .order = 2};
	a = ask_b(d, w, "x", 1);
	ASSERT_NE(NULL, a);
	EXPECT_EQ(-EPERM, a->cqe.res);
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(d);
	/* b is alive and serves a: a call across still works. */
	ASSERT_EQ(0, kill(nf->node[1].pid, 0));
	struct share *s = share_new();
	pid_t srv = serve(1, srv_calls, s);
	ASSERT_GT(srv, 0);
	int64_t id = remote("b", s);
	char reply[64];
	ASSERT_EQ(8, kipc_mbox_call(id, "ping", 5, reply, sizeof reply, NULL, 0));
	ASSERT_EQ(8, kipc_mbox_call(id, "pong", 5, reply, sizeof reply, NULL, 0));
	ASSERT_EQ(0, kt_wait(srv));
}

/* On b: wait until b's mailbox s->name has n parked senders (result[1]). */
static int wait_senders(struct share *s)
{
	int64_t id = kipc_mbox_open(s->name, 0, NULL);
	return id < 0 ? 10 : kt_wait_mbox(id, KT_SENDERS, (uint32_t)s->result[1], KT_BOUND_MS) ? 11 : 0;
}

TEST(forged_ping_pong_bye_leave_other_sessions)
{
	/* A request of a parked at b: a session of a's at b (its proxy there)
	 * and of b's at a (the request waiting for b). */
	struct share *s = share_new();
	pid_t srv;
	int64_t id = serve_remote(1, srv_cap1, s, &srv);
	ASSERT_GT(id, 0);
	ASSERT_EQ(0, kipc_mbox_send(id, "first", 6, 0, 0));
	static char msg[] = "third";
	void *buf = kipc_buf_alloc(sizeof msg);
	ASSERT_NE(NULL, buf);
	memcpy(buf, msg, sizeof msg);
	struct kipc_sqe *sqe = kipc_get_sqe();
	ASSERT_NE(NULL, sqe);
	kipc_prep_mbox_send(sqe, id, buf, sizeof msg, 0, 0);
	kipc_sqe_set_data(sqe, 5);
	ASSERT_EQ(1, kipc_submit());
	s->result[1] = 1;
	ASSERT_EQ(0, kt_wait(on_node(1, wait_senders, s)));

	/* Node d (authenticated as d) learns both epochs by saying hello. */
	natsConnection *d = connect_as("d");
	ASSERT_NE(NULL, d);
	natsSubscription *sub;
	ASSERT_EQ(NATS_OK, natsConnection_Subscribe(&sub, d, "kipc.d.>", on_answer_d, NULL));
	natsConnection_Flush(d);
	uint64_t mine = (uint64_t)kt_realtime_ns();
	struct wire hello = {.kind = 2, .epoch = mine};
	struct wire *ans = ask_on(d, "kipc.b.req.d", hello, NULL, 0);
	ASSERT_NE(NULL, ans);
	uint64_t b_epoch = ans->epoch;
	ans = ask_on(d, "kipc.a.req.d", hello, NULL, 0);
	ASSERT_NE(NULL, ans);
	uint64_t a_epoch = ans->epoch;
	/* ... and gets a proxy at a (a send there a refuses): a then takes
	 * d's answers, for d's own requests only. */
	struct wire req = {.kind = 1, .epoch = mine, .peer_epoch = a_epoch, .seq = 1, .low = 1,
			   .op = KIPC_SYS_send, .pid = 4242, .target = 1, .inc = 1, .order = 1,
			   .order_low = 1};
	ans = ask_on(d, "kipc.a.req.d", req, "x", 1);
	ASSERT_NE(NULL, ans);
	EXPECT_EQ(-EPERM, ans->cqe.res);

	/* 1. Claiming to be a to b, and b to a: the server refuses them. A
	 * newer epoch of a (PONG), a's BYE, b's BYE saying it ran nothing
	 * of a's, b's PING with a newer epoch. */
	forge(d, "kipc.b.req.a", (struct wire){.kind = 8, .epoch = a_epoch + 1});
	forge(d, "kipc.b.req.a", (struct wire){.kind = 6, .epoch = a_epoch});
	forge(d, "kipc.a.rsp.b", (struct wire){.kind = 6, .epoch = b_epoch, .peer_epoch = a_epoch});
	forge(d, "kipc.a.rsp.b", (struct wire){.kind = 7, .epoch = b_epoch + 1, .peer_epoch = a_epoch});
	/* 2. As itself, naming a's and b's sessions (their epochs; every seq
	 * a might have used): each frame touches d's own sessions only. */
	forge(d, "kipc.b.req.d", (struct wire){.kind = 8, .epoch = a_epoch + 1});
	forge(d, "kipc.b.req.d", (struct wire){.kind = 6, .epoch = a_epoch + 1});
	forge(d, "kipc.a.rsp.d", (struct wire){.kind = 7, .epoch = b_epoch + 1, .peer_epoch = a_epoch});
	forge(d, "kipc.a.rsp.d", (struct wire){.kind = 6, .epoch = b_epoch + 1, .peer_epoch = a_epoch});
	static struct wire many[4096];
	for (unsigned i = 0; i < 4096; i++)
		many[i] = (struct wire){.magic = 0x54454e4b, .version = 1, .kind = 4,
					.epoch = b_epoch + 1, .peer_epoch = a_epoch, .seq = i + 1,
					.cqe = {.res = -EIDRM}};
	natsConnection_Publish(d, "kipc.a.rsp.d", many, sizeof many); /* a RES for every seq */
	/* What went before a round trip has been taken by both nodes. */
	hello.epoch = mine + 2;
	ASSERT_NE(NULL, ask_on(d, "kipc.b.req.d", hello, NULL, 0));
	ASSERT_NE(NULL, ask_on(d, "kipc.a.req.d", hello, NULL, 0));
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(d);

	/* The request is still parked at b, on the same proxy, and a still
	 * waits for it: none of it ended or answered a's session. */
	ASSERT_EQ(0, kt_wait(on_node(1, wait_senders, s)));
	struct kipc_cqe *c;
	EXPECT_EQ(-1, kipc_peek_cqe(&c));
	EXPECT_EQ(EAGAIN, errno);
	/* b takes both: the parked one is delivered and a hears so. */
	kt_post(&s->go, 1);
	ASSERT_EQ(0, kipc_wait_cqe(&c));
	EXPECT_EQ(5, c->user_data);
	EXPECT_EQ(0, c->res);
	kipc_cqe_seen(c);
	kipc_buf_free(buf);
	ASSERT_EQ(0, kt_wait(srv));
	EXPECT_STREQ("first", s->text[0]);
	EXPECT_STREQ("third", s->text[1]);
}

/* Wait for kipc-trace's note on err (it listens), then close err. */
static bool tracer_listens(int err)
{
	char note[512] = "";
	bool ok = read(err, note, sizeof note - 1) > 0 && strstr(note, "tracing");
	close(err);
	return ok;
}

TEST(kipc_trace_shows_refusals_and_proxy_ends)
{
	/* Tracers of b: text, mermaid, chrome. */
	char txt[PATH_MAX + 16], mmd[PATH_MAX + 16], json[PATH_MAX + 16];
	snprintf(txt, sizeof txt, "%s/refuse.txt", nf->dir);
	snprintf(mmd, sizeof mmd, "%s/refuse.mmd", nf->dir);
	snprintf(json, sizeof json, "%s/refuse.json", nf->dir);
	const char *fmts[3] = {"text", "mermaid", "chrome"}, *outs[3] = {txt, mmd, json};
	pid_t tr[3];
	for (int i = 0; i < 3; i++) {
		const char *args[] = {"kipc-trace", "-f", fmts[i], "-o", outs[i], NULL};
		int err;
		tr[i] = start_tracer(1, args, &err);
		ASSERT_GT(tr[i], 0);
		ASSERT_TRUE(tracer_listens(err));
	}
	/* Node d's requests that b answers without running them. */
	natsConnection *d = connect_as("d");
	ASSERT_NE(NULL, d);
	natsSubscription *sub;
	ASSERT_EQ(NATS_OK, natsConnection_Subscribe(&sub, d, "kipc.d.>", on_answer_d, NULL));
	natsConnection_Flush(d);
	uint64_t mine = (uint64_t)kt_realtime_ns();
	struct wire *a = ask_b(d, (struct wire){.kind = 2, .epoch = mine}, NULL, 0);
	ASSERT_NE(NULL, a);
	uint64_t home = a->epoch;
	struct wire w = {.kind = 1, .epoch = mine, .peer_epoch = home - 1, .seq = 1, .low = 1,
			 .op = KIPC_SYS_send, .pid = 4242, .target = 1, .inc = 1, .order = 1,
			 .order_low = 1};
	ASSERT_NE(NULL, a = ask_b(d, w, "x", 1)); /* another instance of b: STALE */
	EXPECT_EQ(5, a->kind);
	w.peer_epoch = home, w.seq = 2, w.pid = 0; /* no such pid: EINVAL, no proxy */
	ASSERT_NE(NULL, a = ask_b(d, w, "x", 1));
	EXPECT_EQ(-EINVAL, a->cqe.res);
	w.seq = 3, w.pid = 4242, w.op = KIPC_SYS_mbox_destroy; /* not across: ENOSYS */
	ASSERT_NE(NULL, a = ask_b(d, w, "x", 1));
	EXPECT_EQ(-ENOSYS, a->cqe.res);
	w.kind = 2, w.seq = 4, w.op = KIPC_SYS_send, w.order = 2; /* a probe of nothing */
	ASSERT_NE(NULL, a = ask_b(d, w, NULL, 0));
	EXPECT_EQ(-ENOLINK, a->cqe.res);
	w.kind = 1, w.seq = 5, w.op = 0xfe, w.order = w.order_low = 2; /* task 4242 exited */
	ASSERT_NE(NULL, a = ask_b(d, w, NULL, 0));
	EXPECT_EQ(0, a->cqe.res);
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(d);
	for (int i = 0; i < 3; i++) {
		kill(tr[i], SIGINT);
		ASSERT_EQ(0, kt_wait(tr[i]));
	}
	/* Refusals with no proxy are the kernel's (pid 0); the others and
	 * the proxy's end are d:4242's proxy's, by its address. */
	char *got = mask_numbers(slurp_file(txt));
	char *want = mask_numbers(
		" -N N: netrefuse: from=d:N seq=N epoch=N send refused=ESTALE\n"
		" -N N: netrefuse: from=d:N seq=N epoch=N send refused=EINVAL\n"
		" net:d:N-d:N N: attach:\n"
		" net:d:N-d:N N: netrefuse: from=d:N seq=N epoch=N mbox_destroy refused=ENOSYS\n"
		" net:d:N-d:N N: netrefuse: from=d:N seq=N epoch=N send refused=ENOLINK\n"
		" net:d:N-d:N N: netend: from=d:N epoch=N why=exited\n"
		" net:d:N-d:N N: exit:\n");
	EXPECT_STREQ(want, got) fprintf(stderr, "%s", slurp_file(txt));
	free(got);
	free(want);
	char line[128];
	snprintf(line, sizeof line, "from=d:4242 seq=1 epoch=%llu send refused=ESTALE",
		 (unsigned long long)mine);
	EXPECT_NE(NULL, strstr(slurp_file(txt), line));
	snprintf(line, sizeof line, "d:4242-d:4242 ");
	EXPECT_NE(NULL, strstr(slurp_file(txt), line));
	got = mask_numbers(slurp_file(mmd));
	want = mask_numbers("sequenceDiagram\n"
			    "    participant Rd_N as d:N (remote)\n"
			    "    participant Rd_N as d:N (remote)\n"
			    "    participant TN as d:N (remote)\n"
			    "    Note over Rd_N: send (request N) refused: ESTALE\n"
			    "    Note over Rd_N: send (request N) refused: EINVAL\n"
			    "    Note over TN: mbox_destroy (request N) refused: ENOSYS\n"
			    "    Note over TN: send (request N) refused: ENOLINK\n"
			    "    Note over TN: proxy ended: exited\n");
	EXPECT_STREQ(want, got) fprintf(stderr, "%s", slurp_file(mmd));
	free(got);
	free(want);
	const char *j = slurp_file(json);
	EXPECT_NE(NULL, strstr(j, "\"name\":\"send from d:4242 refused: ESTALE\""))
		TH_LOG("%s", j);
	EXPECT_NE(NULL, strstr(j, "\"name\":\"proxy of d:4242 ended: exited\""));
	EXPECT_NE(NULL, strstr(j, "\"cat\":\"kipc,net,error\""));
}

/* ---------------------------------------------------------------- */
/* A node that stops or dies: nothing of it is held on the others      */

/* On node d: a kernel-owned mailbox of capacity 1 (it outlives us), and
 * a server that takes one call on a second one and never answers. */
static int srv_stopping(struct share *s)
{
	struct kipc_mbox_attr a = kt_attr(1);
	a.mode = 0666;
	a.flags = KIPC_MBOX_KERNEL_OWNED;
	if (kipc_mbox_open(s->name, KIPC_O_CREAT | KIPC_O_EXCL, &a) < 0)
		return 10;
	char svc[80];
	snprintf(svc, sizeof svc, "%s-svc", s->name);
	a = kt_attr(1);
	a.mode = 0666;
	int64_t id = kipc_mbox_open(svc, KIPC_O_CREAT | KIPC_O_EXCL, &a);
	if (id < 0)
		return 11;
	kt_post(&s->ready, 1);
	char buf[16];
	struct kipc_msginfo mi;
	if (kipc_mbox_receive(id, buf, sizeof buf, &mi, 0) < 0 || !(mi.flags & KIPC_CQE_F_CALL))
		return 12;
	kt_post(&s->go, 1);
	kt_wait_post(&s->done, 1); /* holds the call until its kernel stops */
	return 0;
}

/* On node d: wait until the kernel-owned mailbox has n parked senders. */
static int wait_parked(struct share *s)
{
	int64_t id = kipc_mbox_open(s->name, 0, NULL);
	return id < 0 ? 10 : kt_wait_mbox(id, KT_SENDERS, (uint32_t)s->result[0], KT_BOUND_MS) ? 11 : 0;
}

TEST(clean_stop_answers_parked_remote_callers_at_once)
{
	char why[256], n[128];
	ASSERT_EQ(KSFT_PASS, nf_boot_node(3, NULL, why, sizeof why));
	struct share *s = share_new();
	pid_t srv;
	int64_t id = serve_remote(3, srv_stopping, s, &srv);
	ASSERT_GT(id, 0);
	snprintf(n, sizeof n, "/net/d%s-svc", s->name);
	int64_t svc = kipc_mbox_open(n, 0, NULL);
	ASSERT_GT(svc, 0);
	ASSERT_EQ(0, kipc_mbox_send(id, "fill", 5, 0, 0));
	/* Parked at d: a send and a call on the full mailbox, and a call
	 * its server has taken. */
	static char msg[] = "parked";
	char *buf = kipc_buf_alloc(64 + sizeof msg);
	ASSERT_NE(NULL, buf);
	memcpy(buf, msg, sizeof msg);
	struct kipc_sqe *sqe = kipc_get_sqe();
	kipc_prep_mbox_send(sqe, id, buf, sizeof msg, 0, 0);
	kipc_sqe_set_data(sqe, 1);
	sqe = kipc_get_sqe();
	kipc_prep_mbox_call(sqe, id, buf, sizeof msg, buf + 16, 16, 0, 0);
	kipc_sqe_set_data(sqe, 2);
	sqe = kipc_get_sqe();
	kipc_prep_mbox_call(sqe, svc, buf, sizeof msg, buf + 32, 16, 0, 0);
	kipc_sqe_set_data(sqe, 3);
	ASSERT_EQ(3, kipc_submit());
	ASSERT_EQ(0, kt_wait_post(&s->go, 1));
	s->result[0] = 2;
	ASSERT_EQ(0, kt_wait(on_node(3, wait_parked, s)));
	/* kipcd --stop: it answers them as it goes, not the timeout here. */
	int64_t t0 = kt_now_ns();
	nf_stop_node(3, SIGTERM);
	int64_t res[4] = {0};
	for (int i = 0; i < 3; i++) {
		struct kipc_cqe *c;
		ASSERT_EQ(0, kipc_wait_cqe(&c));
		if (c->user_data >= 1 && c->user_data <= 3)
			res[c->user_data] = c->res;
		kipc_cqe_seen(c);
	}
	int64_t ms = (kt_now_ns() - t0) / 1000000;
	TH_LOG("answered %lld ms after the stop began", (long long)ms);
	EXPECT_EQ(-EIDRM, res[1]); /* withdrawn: the mailbox went with its kernel */
	EXPECT_EQ(-EIDRM, res[2]);
	EXPECT_EQ(-ESRCH, res[3]); /* its server was detached, as locally */
	EXPECT_LT(ms, NF_TIMEOUT_MS); /* not ENOLINK at the timeout */
	kipc_buf_free(buf);
	kt_post(&s->done, 1);
	kt_wait(srv); /* its kernel is gone: whatever it says */
}

/* On node b: a full mailbox; when the sender of d is parked on it, and
 * when it is not any more (its proxy ended). */
static int srv_orphan(struct share *s)
{
	if (mbox_ready(s, 1, 0666))
		return 10;
	if (kt_wait_mbox(s->id, KT_SENDERS, 1, KT_BOUND_MS))
		return 11;
	s->t[0] = kt_now_ns();
	kt_post(&s->go, 1);
	/* (kt_wait_mbox waits for at least n) */
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	uint32_t n = 1;
	while (n && __ksft_now_ms() < deadline)
		if (kt_stat_count(false, s->id, KT_SENDERS, &n) < 0)
			return 12;
		else if (n)
			kt_sleep_ms(1);
	if (n)
		return 15;
	s->t[1] = kt_now_ns();
	/* "fill" is there; the parked one was withdrawn, not delivered. */
	char buf[16] = "";
	if (kipc_mbox_receive(s->id, buf, sizeof buf - 1, NULL, KIPC_F_NONBLOCK) < 0)
		return 13;
	snprintf(s->text[0], sizeof s->text[0], "%s", buf);
	if (kipc_mbox_receive(s->id, buf, sizeof buf - 1, NULL, KIPC_F_NONBLOCK) >= 0) {
		snprintf(s->text[1], sizeof s->text[1], "%s", buf);
		return 14;
	}
	return 0;
}

static int orphan_sender(struct share *s)
{
	int64_t id = remote("b", s);
	if (id < 0 || kipc_mbox_send(id, "fill", 5, 0, 0) < 0)
		return 10;
	kipc_mbox_send(id, "parked", 7, 0, 0); /* until its kernel dies */
	return 0;
}

TEST(home_ends_the_proxies_of_a_dead_origin)
{
	NF_SLOW();
	char why[256];
	ASSERT_EQ(KSFT_PASS, nf_boot_node(3, NULL, why, sizeof why));
	struct share *s = share_new();
	pid_t srv = serve(1, srv_orphan, s);
	ASSERT_GT(srv, 0);
	pid_t snd = on_node(3, orphan_sender, s);
	ASSERT_EQ(0, kt_wait_post(&s->go, 1));
	/* d dies without a word: no EXIT, no BYE. b notices by itself. */
	int64_t killed = kt_now_ns();
	nf_stop_node(3, SIGKILL);
	kt_wait(snd);
	EXPECT_EQ(0, kt_wait(srv));
	EXPECT_STREQ("", s->text[1]);
	int64_t ms = (s->t[1] - killed) / 1000000;
	TH_LOG("b ended d's proxy %lld ms after the kill", (long long)ms);
	EXPECT_STREQ("fill", s->text[0]);
	/* Silent for net_timeout_ms (d probed every net_retry_ms until it died). */
	EXPECT_GE(ms, NF_TIMEOUT_MS - NF_RETRY_MS);
	EXPECT_LE(ms, NF_TIMEOUT_MS + NF_RETRY_MS + 1000); /* + a loaded machine */
}

/* ---------------------------------------------------------------- */
/* The chat sample on three nodes                                     */

struct proc {
	pid_t pid;
	int in, out;   /* its stdin (write end), its stdout (read end) */
	char buf[4096];
	size_t len;
};

static int spawn_chat(struct proc *p, int node, const char *const argv[])
{
	/* As a uid the cluster shares: the room answers each member directly. */
	p->pid = nf_spawn(node, "samples/net_chat", argv, NF_SHARED_UID, &p->in, &p->out, &p->out);
	if (p->pid < 0)
		return -1;
	p->len = 0;
	return 0;
}

/* Read p's output until the lines want and also (NULL: none) have
 * appeared, in either order (bounded). */
static bool saw_lines(struct proc *p, const char *want, const char *also)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	bool hit = false, hit2 = !also;
	for (;;) {
		char *nl;
		while ((nl = memchr(p->buf, '\n', p->len))) {
			*nl = '\0';
			hit |= strcmp(p->buf, want) == 0;
			hit2 |= also && strcmp(p->buf, also) == 0;
			size_t used = (size_t)(nl - p->buf) + 1;
			memmove(p->buf, nl + 1, p->len - used);
			p->len -= used;
			if (hit && hit2)
				return true;
		}
		int left = (int)(deadline - __ksft_now_ms());
		struct pollfd pf = {.fd = p->out, .events = POLLIN};
		if (left <= 0 || poll(&pf, 1, left) <= 0)
			return false;
		ssize_t n = read(p->out, p->buf + p->len, sizeof p->buf - 1 - p->len);
		if (n <= 0)
			return false;
		p->len += (size_t)n;
	}
}

/* Read p's output until the line want appears (bounded). */
static bool saw_line(struct proc *p, const char *want)
{
	return saw_lines(p, want, NULL);
}

TEST(chat_sample_across_three_nodes)
{
	struct proc room, alice, bob;
	ASSERT_EQ(0, spawn_chat(&room, 0, (const char *const[]){"net_chat", "room", "2", NULL}));
	ASSERT_TRUE(saw_line(&room, "room open"));
	ASSERT_EQ(0, spawn_chat(&alice, 1,
				(const char *const[]){"net_chat", "member", "alice", "a", NULL}));
	/* The room's welcome comes straight back to the member's task (a
	 * direct send to its node-qualified pid); its node is the one NATS
	 * authenticated, as the room's line says. */
	ASSERT_TRUE(saw_lines(&alice, "* alice joined from b", "welcome alice (1 here)"));
	ASSERT_EQ(0, spawn_chat(&bob, 2,
				(const char *const[]){"net_chat", "member", "bob", "a", NULL}));
	ASSERT_TRUE(saw_lines(&bob, "* bob joined from c", "welcome bob (2 here)"));
	ASSERT_TRUE(saw_line(&alice, "* bob joined from c"));
	ASSERT_EQ(13, write(alice.in, "hello from b\n", 13));
	ASSERT_TRUE(saw_line(&bob, "<alice> hello from b"));
	ASSERT_TRUE(saw_line(&alice, "<alice> hello from b"));
	ASSERT_EQ(9, write(bob.in, "hi alice\n", 9));
	ASSERT_TRUE(saw_line(&alice, "<bob> hi alice"));
	close(alice.in);
	ASSERT_TRUE(saw_line(&alice, "* alice left"));
	ASSERT_TRUE(saw_line(&bob, "* alice left"));
	ASSERT_EQ(0, kt_wait(alice.pid));
	close(bob.in);
	ASSERT_TRUE(saw_line(&bob, "* bob left"));
	ASSERT_EQ(0, kt_wait(bob.pid));
	ASSERT_TRUE(saw_line(&room, "<bob> hi alice"));
	ASSERT_EQ(0, kt_wait(room.pid));
}

/* ---------------------------------------------------------------- */
/* Failures                                                           */

TEST(unknown_node_is_ehostunreach_within_the_bound)
{
	NF_SLOW();
	int64_t t0 = kt_now_ns();
	EXPECT_EQ(-1, kipc_mbox_open("/net/nosuchnode/x", 0, NULL));
	EXPECT_EQ(EHOSTUNREACH, errno);
	int64_t ms = (kt_now_ns() - t0) / 1000000;
	EXPECT_GE(ms, NF_TIMEOUT_MS);
	EXPECT_LE(ms, NF_TIMEOUT_MS + NF_RETRY_MS + 1000); /* + a loaded machine */
	pid_t p = kipc_node_pid("nosuchnode", 1);
	t0 = kt_now_ns();
	EXPECT_EQ(-1, kipc_send(p, "x", 2, 0, 0));
	EXPECT_EQ(EHOSTUNREACH, errno);
	EXPECT_LE((kt_now_ns() - t0) / 1000000, NF_TIMEOUT_MS + NF_RETRY_MS + 1000);
}

#define LEDGER_N 4000

struct kill_share {
	struct kt_barrier ready, go;
	char name[64];
	unsigned received[LEDGER_N];
	int result[LEDGER_N];    /* 0 sent ok, errno, -1 not tried */
	int64_t when[LEDGER_N];  /* completion time, ns */
	unsigned nrecv;
};

static int ledger_server(struct kill_share *k)
{
	int64_t id = nf_mbox_create(k->name, 0, 0666); /* rendezvous: ok = received */
	if (id < 0)
		return 10;
	kt_post(&k->ready, 1);
	for (;;) {
		unsigned v;
		if (kipc_mbox_receive(id, &v, sizeof v, NULL, 0) != sizeof v)
			return 0; /* the kernel died: ECONNRESET */
		if (v < LEDGER_N)
			__atomic_fetch_add(&k->received[v], 1, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&k->nrecv, 1, __ATOMIC_SEQ_CST);
	}
}

TEST_TIMEOUT(home_node_killed_nothing_lost_nothing_duplicated, 60)
{
	NF_SLOW();
	char why[256];
	struct kill_share *k = nf_shared(sizeof *k);
	ASSERT_NE(NULL, k);
	for (int i = 0; i < LEDGER_N; i++)
		k->result[i] = -1;
	kt_barrier_init(&k->ready);
	snprintf(k->name, sizeof k->name, "/kt-%d-ledger", (int)getpid());
	ASSERT_EQ(KSFT_PASS, nf_boot_node(3, NULL, why, sizeof why));
	pid_t srv = fork();
	if (srv == 0)
		_exit(nf_use(3) < 0 ? 80 : ledger_server(k));
	ASSERT_EQ(0, kt_wait_post(&k->ready, 1));
	char n[128];
	snprintf(n, sizeof n, "/net/d%s", k->name);
	int64_t id = kipc_mbox_open(n, 0, NULL);
	ASSERT_GT(id, 0);
	/* Two senders on a and c, interleaved ids; d dies under them. */
	pid_t snd[2];
	for (int s = 0; s < 2; s++) {
		snd[s] = fork();
		if (snd[s] == 0) {
			if (nf_use(s == 0 ? 0 : 2) < 0)
				_exit(80);
			char nn[128];
			snprintf(nn, sizeof nn, "/net/d%s", k->name);
			int64_t rid = kipc_mbox_open(nn, 0, NULL);
			if (rid < 0)
				_exit(81);
			int errors = 0;
			for (unsigned v = (unsigned)s; v < LEDGER_N && errors < 3; v += 2) {
				int r = kipc_mbox_send(rid, &v, sizeof v, 0, 0);
				k->result[v] = r == 0 ? 0 : errno;
				k->when[v] = kt_now_ns();
				errors += r != 0;
			}
			_exit(0);
		}
	}
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (__atomic_load_n(&k->nrecv, __ATOMIC_SEQ_CST) < 300 && __ksft_now_ms() < deadline)
		kt_sleep_ms(1);
	ASSERT_GE(k->nrecv, 300);
	int64_t killed = kt_now_ns();
	nf_stop_node(3, SIGKILL);
	ASSERT_EQ(0, kt_wait(snd[0]));
	ASSERT_EQ(0, kt_wait(snd[1]));
	kt_wait(srv);
	unsigned ok = 0, unknown = 0, unreach = 0, bad = 0;
	int64_t first_err = INT64_MAX;
	for (unsigned v = 0; v < LEDGER_N; v++) {
		int r = k->result[v];
		unsigned got = k->received[v];
		if (r == 0) {
			ok++;
			if (got != 1) {
				if (bad++ < 5)
					TH_LOG("id %u: sent ok, received %u times", v, got);
			}
		} else if (r == ENOLINK) {
			unknown++;
			if (got > 1 && bad++ < 5)
				TH_LOG("id %u: ENOLINK, received %u times", v, got);
		} else if (r == EHOSTUNREACH) {
			unreach++;
			if (got != 0 && bad++ < 5)
				TH_LOG("id %u: EHOSTUNREACH, but received", v);
		} else if (r != -1) {
			if (bad++ < 5)
				TH_LOG("id %u: unexpected errno %d", v, r);
		} else if (got) {
			if (bad++ < 5)
				TH_LOG("id %u: never sent, received", v);
		}
		if (r > 0 && k->when[v] < first_err)
			first_err = k->when[v];
	}
	TH_LOG("%u ok, %u ENOLINK, %u EHOSTUNREACH; first error %lld ms after the kill",
	       ok, unknown, unreach, (long long)((first_err - killed) / 1000000));
	EXPECT_EQ(0, bad);
	/* Received before the kill: sent ok, or (its answer died with d) ENOLINK. */
	EXPECT_GE(ok + unknown, 300);
	EXPECT_GE(unreach, 1); /* once d is known gone, nothing is sent */
	EXPECT_LE((first_err - killed) / 1000000, NF_TIMEOUT_MS + NF_RETRY_MS + 1000);
}

struct flap_share {
	struct kt_barrier ready;
	char name[64];
	unsigned received[LEDGER_N];
	int result[LEDGER_N];
	unsigned nrecv, nsent;
	unsigned out_of_order;  /* receptions not in the order they were sent */
	int last;
};

static int flap_server(struct flap_share *f)
{
	int64_t id = nf_mbox_create(f->name, 64, 0666);
	if (id < 0)
		return 10;
	kt_post(&f->ready, 1);
	while (__atomic_load_n(&f->nrecv, __ATOMIC_SEQ_CST) < 1000) {
		unsigned v;
		if (kipc_mbox_receive_timed(id, &v, sizeof v, NULL, 0,
					    (int64_t)KT_BOUND_MS * 1000000) != sizeof v)
			return 11;
		if (v < LEDGER_N)
			__atomic_fetch_add(&f->received[v], 1, __ATOMIC_SEQ_CST);
		if ((int)v != f->last + 1)
			f->out_of_order++;
		f->last = (int)v;
		__atomic_fetch_add(&f->nrecv, 1, __ATOMIC_SEQ_CST);
	}
	/* Anything more would be a duplicate: look once more. */
	unsigned v;
	if (kipc_mbox_receive(id, &v, sizeof v, NULL, KIPC_F_NONBLOCK) >= 0)
		return 12;
	return 0;
}

static struct flap_share *g_flap;
static int flap_entry(struct share *s)
{
	(void)s;
	return flap_server(g_flap);
}

TEST_TIMEOUT(nats_server_restart_exactly_once, 60)
{
	NF_SLOW();
	char why[256];
	struct flap_share *f = nf_shared(sizeof *f);
	ASSERT_NE(NULL, f);
	kt_barrier_init(&f->ready);
	snprintf(f->name, sizeof f->name, "/kt-%d-flap", (int)getpid());
	/* The sender's node waits long enough for the server to come back. */
	ASSERT_EQ(KSFT_PASS, nf_boot_node(3, "net_timeout_ms=15000", why, sizeof why));
	g_flap = f;
	pid_t srv = on_node(1, flap_entry, NULL);
	ASSERT_EQ(0, kt_wait_post(&f->ready, 1));
	/* 16 sends in flight at a time (the asynchronous API): a
	 * retransmitted one must not be overtaken by a later one. */
	f->last = -1;
	pid_t snd = fork();
	if (snd == 0) {
		if (nf_use(3) < 0)
			_exit(80);
		char nn[128];
		snprintf(nn, sizeof nn, "/net/b%s", f->name);
		int64_t rid = kipc_mbox_open(nn, 0, NULL);
		if (rid < 0)
			_exit(81);
		unsigned *buf = kipc_buf_alloc(1000 * sizeof(unsigned));
		if (!buf)
			_exit(82);
		unsigned next = 0, inflight = 0;
		while (next < 1000 || inflight) {
			while (next < 1000 && inflight < 16) {
				struct kipc_sqe *sqe = kipc_get_sqe();
				if (!sqe)
					break;
				buf[next] = next;
				kipc_prep_mbox_send(sqe, rid, &buf[next], sizeof(unsigned), 0, 0);
				kipc_sqe_set_data(sqe, next);
				next++, inflight++;
			}
			if (kipc_submit() < 0)
				_exit(83);
			struct kipc_cqe *c;
			if (kipc_wait_cqe(&c) < 0)
				_exit(84);
			f->result[c->user_data] = (int)-c->res;
			__atomic_fetch_add(&f->nsent, 1, __ATOMIC_SEQ_CST);
			kipc_cqe_seen(c);
			inflight--;
		}
		_exit(0);
	}
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (__atomic_load_n(&f->nsent, __ATOMIC_SEQ_CST) < 200 && __ksft_now_ms() < deadline)
		kt_sleep_ms(1);
	ASSERT_GE(f->nsent, 200);
	ASSERT_EQ(0, nf_kill_server(&nf->nats));
	ASSERT_EQ(KSFT_PASS, nf_start_nats(why, sizeof why));
	ASSERT_EQ(0, kt_wait(snd));
	ASSERT_EQ(0, kt_wait(srv));
	unsigned bad = 0;
	for (unsigned v = 0; v < 1000; v++)
		if (f->result[v] != 0 || f->received[v] != 1)
			if (bad++ < 5)
				TH_LOG("id %u: send %d, received %u times", v, f->result[v],
				       f->received[v]);
	EXPECT_EQ(0, bad);
	EXPECT_EQ(0, f->out_of_order);
	nf_stop_node(3, SIGTERM);
}

/* Server on b: one message, within 30 s. */
static int srv_one_late(struct share *s)
{
	if (mbox_ready(s, 4, 0666))
		return 10;
	char buf[64] = "";
	if (kipc_mbox_receive_timed(s->id, buf, sizeof buf - 1, NULL, 0, 30000000000LL) < 0)
		return 11;
	snprintf(s->text[0], sizeof s->text[0], "%s", buf);
	return 0;
}

static int send_joined(struct share *s)
{
	int64_t id = remote("b", s);
	if (id < 0)
		return 10;
	return kipc_mbox_send(id, "joined", 7, 0, 0) == 0 ? 0 : 11;
}

/* A node booted while its NATS server is down joins when the server
 * comes up (libnats retries the connect; the fabric's I/O thread polls
 * the socket libnats attaches then): its send to b is delivered. */
TEST_TIMEOUT(node_booted_before_its_nats_server_joins, 60)
{
	NF_SLOW();
	char why[256], why2[256] = "";
	struct share *s = share_new();
	pid_t srv = serve(1, srv_one_late, s);
	ASSERT_GT(srv, 0);
	ASSERT_EQ(0, nf_kill_server(&nf->nats));
	int booted = nf_boot_node(3, "net_timeout_ms=15000", why, sizeof why);
	int up = nf_start_nats(why2, sizeof why2);
	ASSERT_EQ(KSFT_PASS, up) TH_LOG("%s", why2);
	ASSERT_EQ(KSFT_PASS, booted) TH_LOG("%s", why);
	pid_t c = on_node(3, send_joined, s);
	ASSERT_GT(c, 0);
	EXPECT_EQ(0, kt_wait(c));
	EXPECT_EQ(0, kt_wait(srv));
	EXPECT_STREQ("joined", s->text[0]);
	nf_stop_node(3, SIGTERM);
}

/*
 * SIGTERM ends a node promptly while it tries servers that do not
 * answer: six listeners that never speak (the kernel takes the TCP
 * connection, no INFO comes, libnats waits its connect timeout, 1 s).
 * Given all six at once, libnats tried one after the other and the stop
 * waited for the whole round (about 6 s); the fabric gives it one server
 * a try, so the stop waits for one timeout at most.
 */
TEST_TIMEOUT(sigterm_ends_a_node_trying_silent_servers, 60)
{
	NF_SLOW();
	enum { N = 6 };
	char why[256], url[N * 32] = "", extra[sizeof url + 16];
	struct pollfd p[N];
	for (int i = 0; i < N; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t l = sizeof sa;
		p[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		p[i].events = POLLIN;
		ASSERT_LE(0, p[i].fd);
		ASSERT_EQ(0, bind(p[i].fd, (struct sockaddr *)&sa, sizeof sa));
		ASSERT_EQ(0, listen(p[i].fd, 64));
		ASSERT_EQ(0, getsockname(p[i].fd, (struct sockaddr *)&sa, &l));
		size_t n = strlen(url);
		snprintf(url + n, sizeof url - n, "%snats://127.0.0.1:%d", n ? "," : "",
			 ntohs(sa.sin_port));
	}
	snprintf(extra, sizeof extra, "--nats=%s", url);
	/* (the fixture's --nats first; the last one given counts) */
	ASSERT_EQ(KSFT_PASS, nf_boot_node(3, extra, why, sizeof why)) TH_LOG("%s", why);
	/* It is in an attempt: a connection waits in a listener's queue. */
	ASSERT_LT(0, poll(p, N, KT_BOUND_MS));
	pid_t pid = nf->node[3].pid;
	int64_t t0 = __ksft_now_ms();
	int st = -1;
	ASSERT_EQ(0, kill(pid, SIGTERM));
	ASSERT_EQ(0, ksft_waitpid_timeout(pid, &st, KT_BOUND_MS));
	int64_t ms = __ksft_now_ms() - t0;
	nf_untrack(pid);
	nf->node[3].pid = 0;
	nf_stop_node(3, 0);
	TH_LOG("SIGTERM to exit: %lld ms", (long long)ms);
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	EXPECT_GT(2500, ms); /* one connect timeout (1 s) and the shutdown */
	for (int i = 0; i < N; i++)
		close(p[i].fd);
}

/* ---------------------------------------------------------------- */
/* Two nodes in two network namespaces, the veth between them cut     */

/* Boot slot i (node c or d) inside network namespace ns. */
static int boot_in_netns(int i, const char *ns, const char *url, char *why, size_t len)
{
	char kipcd[PATH_MAX], wrap[PATH_MAX], text[PATH_MAX + 128];
	kt_find_kipcd(kipcd, sizeof kipcd);
	snprintf(wrap, sizeof wrap, "%s/kipcd-%s", nf->dir, ns);
	/* ip netns exec execs it: the pid we wait for is kipcd's. */
	snprintf(text, sizeof text, "#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", ns, kipcd);
	if (!kipcd[0] || nf_write(wrap, 0755, text) < 0) {
		snprintf(why, len, "cannot write %.200s", wrap);
		return KSFT_FAIL;
	}
	char *saved = getenv("KIPC_KIPCD") ? strdup(getenv("KIPC_KIPCD")) : NULL;
	setenv("KIPC_KIPCD", wrap, 1);
	int r = nf_boot_node_on(i, url, NULL, why, len);
	if (saved)
		setenv("KIPC_KIPCD", saved, 1);
	else
		unsetenv("KIPC_KIPCD");
	free(saved);
	return r;
}

/* In a child on node i: wait until it is connected to NATS. */
static int wait_connected(int i)
{
	pid_t p = fork();
	if (p == 0) {
		if (nf_use(i) < 0)
			_exit(80);
		int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
		struct kipc_net_stat ns = {0};
		while (__ksft_now_ms() < deadline && kipc_net_stat(&ns) == 0 && !ns.connected)
			kt_sleep_ms(5);
		_exit(ns.connected ? 0 : 81);
	}
	return kt_wait(p);
}

struct cut_share {
	struct kt_barrier ready;
	char name[64];
	unsigned received[LEDGER_N];
	int result[LEDGER_N];    /* 0 sent ok, errno, -1 not tried */
	int64_t when[LEDGER_N];
	unsigned nrecv, nerr;
	int restored;            /* the link is back: stop after 200 more */
	unsigned ok_after;
};

static int cut_sender(struct cut_share *k)
{
	char nn[128];
	snprintf(nn, sizeof nn, "/net/d%s", k->name);
	int64_t rid = kipc_mbox_open(nn, 0, NULL);
	if (rid < 0)
		return 81;
	for (unsigned v = 0; v < LEDGER_N && k->ok_after < 200; v++) {
		int r = kipc_mbox_send(rid, &v, sizeof v, 0, 0);
		k->result[v] = r == 0 ? 0 : errno;
		k->when[v] = kt_now_ns();
		if (r)
			__atomic_fetch_add(&k->nerr, 1, __ATOMIC_SEQ_CST);
		else if (__atomic_load_n(&k->restored, __ATOMIC_SEQ_CST))
			k->ok_after++;
	}
	return k->ok_after >= 200 ? 0 : 82;
}

static int cut_server(struct cut_share *k)
{
	int64_t id = nf_mbox_create(k->name, 0, 0666); /* rendezvous: ok = received */
	if (id < 0)
		return 10;
	kt_post(&k->ready, 1);
	for (;;) {
		unsigned v;
		if (kipc_mbox_receive(id, &v, sizeof v, NULL, 0) != sizeof v)
			return 0; /* its kernel stopped */
		if (v < LEDGER_N)
			__atomic_fetch_add(&k->received[v], 1, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&k->nrecv, 1, __ATOMIC_SEQ_CST);
	}
}

/* Wait (bounded) until *v reaches want; the time it took, or -1. */
static int64_t wait_count(unsigned *v, unsigned want, int ms)
{
	int64_t t0 = kt_now_ns(), deadline = __ksft_now_ms() + ms;
	while (__atomic_load_n(v, __ATOMIC_SEQ_CST) < want)
		if (__ksft_now_ms() > deadline)
			return -1;
		else
			kt_sleep_ms(1);
	return (kt_now_ns() - t0) / 1000000;
}

TEST_TIMEOUT(netns_veth_cut_mid_stream_exactly_once, 90)
{
	NF_SLOW();
	if (geteuid() != 0)
		SKIP(return, "not root: no network namespaces");
	char why[256], ns[2][32], veth[2][16], url[64];
	int x = (int)getpid() % 250 + 1;
	for (int i = 0; i < 2; i++) {
		snprintf(ns[i], sizeof ns[i], "kipc-%c-%d", 'a' + i, (int)getpid());
		snprintf(veth[i], sizeof veth[i], "kv%c%d", 'a' + i, (int)getpid() % 100000);
	}
	if (nf_sh("ip netns add %s", ns[0]) != 0)
		SKIP(return, "ip netns add failed (as root: no netns support?)");
	snprintf(nf->netns[0], sizeof nf->netns[0], "%s", ns[0]);
	ASSERT_EQ(0, nf_sh("ip netns add %s", ns[1]));
	snprintf(nf->netns[1], sizeof nf->netns[1], "%s", ns[1]);
	ASSERT_EQ(0, nf_sh("ip link add %s type veth peer name %s", veth[0], veth[1]));
	for (int i = 0; i < 2; i++) {
		/* If the move fails, the pair is still here: delete it. */
		if (nf_sh("ip link set %s netns %s", veth[i], ns[i]) != 0)
			nf_sh("ip link del %s", veth[i]);
		ASSERT_EQ(0, nf_sh("ip -n %s addr add 10.199.%d.%d/24 dev %s && "
				   "ip -n %s link set %s up && ip -n %s link set lo up",
				   ns[i], x, i + 1, veth[i], ns[i], veth[i], ns[i]));
	}
	/* NATS in the first namespace; node c there, node d across the veth. */
	char conf[PATH_MAX], text[256], log[PATH_MAX];
	snprintf(conf, sizeof conf, "%s/netns.conf", nf->dir);
	snprintf(log, sizeof log, "%s/netns-nats.log", nf->dir);
	snprintf(text, sizeof text, "listen: 10.199.%d.1:4222\ninclude auth.conf\n", x);
	ASSERT_EQ(0, nf_write(conf, 0644, text));
	pid_t nats = fork();
	if (nats == 0) {
		setpgid(0, 0);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("ip", "ip", "netns", "exec", ns[0], "nats-server", "-c", conf, (char *)NULL);
		_exit(127);
	}
	ASSERT_GT(nats, 0);
	nf->ns_nats = nats;
	snprintf(url, sizeof url, "nats://10.199.%d.1:4222", x);
	ASSERT_EQ(KSFT_PASS, boot_in_netns(4, ns[0], url, why, sizeof why));
	ASSERT_EQ(KSFT_PASS, boot_in_netns(5, ns[1], url, why, sizeof why));
	ASSERT_EQ(0, wait_connected(4));
	ASSERT_EQ(0, wait_connected(5));

	struct cut_share *k = nf_shared(sizeof *k);
	ASSERT_NE(NULL, k);
	for (int i = 0; i < LEDGER_N; i++)
		k->result[i] = -1;
	kt_barrier_init(&k->ready);
	snprintf(k->name, sizeof k->name, "/kt-%d-cut", (int)getpid());
	pid_t srv = fork();
	if (srv == 0)
		_exit(nf_use(5) < 0 ? 80 : cut_server(k));
	ASSERT_EQ(0, kt_wait_post(&k->ready, 1));
	pid_t snd = fork();
	if (snd == 0)
		_exit(nf_use(4) < 0 ? 80 : cut_sender(k));
	/* Mid-stream: the link goes down under d. */
	ASSERT_LE(0, wait_count(&k->nrecv, 300, KT_BOUND_MS));
	int64_t cut = kt_now_ns();
	ASSERT_EQ(0, nf_sh("ip -n %s link set %s down", ns[1], veth[1]));
	int64_t ms = wait_count(&k->nerr, 1, KT_BOUND_MS);
	ASSERT_LE(0, ms);
	ASSERT_LE(0, wait_count(&k->nerr, 3, KT_BOUND_MS)); /* it stays down a while */
	unsigned at_restore = k->nrecv;
	ASSERT_EQ(0, nf_sh("ip -n %s link set %s up", ns[1], veth[1]));
	int64_t restored = kt_now_ns();
	__atomic_store_n(&k->restored, 1, __ATOMIC_SEQ_CST);
	/* Traffic resumes: 200 more sends succeed. */
	ASSERT_EQ(0, kt_wait(snd));
	int64_t resumed = kt_now_ns();
	nf_stop_node(5, SIGTERM);
	kt_wait(srv);
	nf_stop_node(4, SIGTERM);

	unsigned ok = 0, unknown = 0, unreach = 0, bad = 0;
	int64_t first_err = INT64_MAX;
	for (unsigned v = 0; v < LEDGER_N; v++) {
		int r = k->result[v];
		unsigned got = k->received[v];
		if (r == 0)
			ok++;
		else if (r == ENOLINK)
			unknown++;
		else if (r == EHOSTUNREACH)
			unreach++;
		if ((r == 0 && got != 1) || (r == ENOLINK && got > 1) ||
		    (r == EHOSTUNREACH && got) || (r == -1 && got) ||
		    (r > 0 && r != ENOLINK && r != EHOSTUNREACH)) {
			if (bad++ < 5)
				TH_LOG("id %u: send %d, received %u times", v, r, got);
		}
		if (r > 0 && k->when[v] < first_err)
			first_err = k->when[v];
	}
	TH_LOG("%u ok, %u ENOLINK, %u EHOSTUNREACH; first error %lld ms after the cut; "
	       "%u received at the restore; 200 ok %lld ms after it",
	       ok, unknown, unreach, (long long)((first_err - cut) / 1000000), at_restore,
	       (long long)((resumed - restored) / 1000000));
	EXPECT_EQ(0, bad);
	EXPECT_GE(ok, 500u);
	EXPECT_LE((first_err - cut) / 1000000, NF_TIMEOUT_MS + NF_RETRY_MS + 1000);
	nf_netns_cleanup();
}

/* Is the cluster routing: does what c publishes on s0 reach d on s2? */
static int g_routed;
static void on_routed(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *c)
{
	(void)nc, (void)sub, (void)c;
	__atomic_store_n(&g_routed, 1, __ATOMIC_SEQ_CST);
	natsMsg_Destroy(m);
}

static bool routes_between(const char *u0, const char *u2)
{
	natsConnection *c = nf_nats_as(u0, "c"), *d = nf_nats_as(u2, "d");
	natsSubscription *sub = NULL;
	bool ok = false;
	if (c && d && natsConnection_Subscribe(&sub, d, "kipc.d.req.c", on_routed, NULL) == NATS_OK &&
	    natsConnection_Flush(d) == NATS_OK) {
		int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
		while (!__atomic_load_n(&g_routed, __ATOMIC_SEQ_CST) && __ksft_now_ms() < deadline) {
			natsConnection_Publish(c, "kipc.d.req.c", "route?", 7);
			natsConnection_Flush(c);
			kt_sleep_ms(20);
		}
		ok = g_routed;
	}
	if (sub)
		natsSubscription_Destroy(sub);
	if (c)
		natsConnection_Destroy(c);
	if (d)
		natsConnection_Destroy(d);
	return ok;
}

static bool cluster_routes(void)
{
	char u0[64], u2[64];
	snprintf(u0, sizeof u0, "nats://127.0.0.1:%d", nf->cport[0]);
	snprintf(u2, sizeof u2, "nats://127.0.0.1:%d", nf->cport[2]);
	return routes_between(u0, u2);
}

TEST_TIMEOUT(nats_cluster_server_killed_mid_load_exactly_once, 90)
{
	NF_SLOW();
	char why[256], name[16], u0[64], u2[64];
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof name, "s%d", i);
		ASSERT_EQ(KSFT_PASS, nf_start_server(name, nf->cport[i], &nf->cnats[i], why,
						     sizeof why));
	}
	ASSERT_TRUE(cluster_routes());
	/* The sender's node knows only s0: it fails over to what the
	 * cluster tells it. The receiver's node is on s2. */
	snprintf(u0, sizeof u0, "nats://127.0.0.1:%d", nf->cport[0]);
	snprintf(u2, sizeof u2, "nats://127.0.0.1:%d", nf->cport[2]);
	ASSERT_EQ(KSFT_PASS, nf_boot_node_on(4, u0, "net_timeout_ms=20000", why, sizeof why));
	ASSERT_EQ(KSFT_PASS, nf_boot_node_on(5, u2, NULL, why, sizeof why));
	struct flap_share *f = nf_shared(sizeof *f);
	ASSERT_NE(NULL, f);
	kt_barrier_init(&f->ready);
	snprintf(f->name, sizeof f->name, "/kt-%d-cluster", (int)getpid());
	g_flap = f;
	f->last = -1;
	pid_t srv = on_node(5, flap_entry, NULL);
	ASSERT_EQ(0, kt_wait_post(&f->ready, 1));
	pid_t snd = fork();
	if (snd == 0) {
		if (nf_use(4) < 0)
			_exit(80);
		char nn[128];
		snprintf(nn, sizeof nn, "/net/d%s", f->name);
		int64_t rid = kipc_mbox_open(nn, 0, NULL);
		if (rid < 0)
			_exit(81);
		for (unsigned v = 0; v < 1000; v++) {
			int r = kipc_mbox_send(rid, &v, sizeof v, 0, 0);
			f->result[v] = r == 0 ? 0 : errno;
			__atomic_fetch_add(&f->nsent, 1, __ATOMIC_SEQ_CST);
		}
		_exit(0);
	}
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (__atomic_load_n(&f->nsent, __ATOMIC_SEQ_CST) < 200 && __ksft_now_ms() < deadline)
		kt_sleep_ms(1);
	ASSERT_GE(f->nsent, 200);
	/* s0 dies under the sender's node, and comes back. */
	ASSERT_EQ(0, nf_kill_server(&nf->cnats[0]));
	unsigned at_kill = f->nsent;
	ASSERT_EQ(KSFT_PASS, nf_start_server("s0", nf->cport[0], &nf->cnats[0], why, sizeof why));
	ASSERT_EQ(0, kt_wait(snd));
	ASSERT_EQ(0, kt_wait(srv));
	unsigned bad = 0;
	for (unsigned v = 0; v < 1000; v++)
		if (f->result[v] != 0 || f->received[v] != 1)
			if (bad++ < 5)
				TH_LOG("id %u: send %d, received %u times", v, f->result[v],
				       f->received[v]);
	TH_LOG("s0 killed after %u sends; 1000 sends, %u bad", at_kill, bad);
	EXPECT_EQ(0, bad);
	EXPECT_EQ(0, f->out_of_order);
	nf_stop_node(4, SIGTERM);
	nf_stop_node(5, SIGTERM);
	for (int i = 0; i < 3; i++) {
		nf_stop_pid(nf->cnats[i], SIGTERM);
		nf->cnats[i] = 0;
	}
}

/* ---- send credits on a node (network.md, Speed) ---------------- */

/* This process's credit words (transport.md section 12). */
static const struct kipc_credit *own_credit(void)
{
	char want[64], line[512];
	snprintf(want, sizeof want, "/memfd:kipc:%d ", getpid());
	FILE *f = fopen("/proc/self/maps", "r");
	const struct kipc_credit *c = NULL;
	while (f && !c && fgets(line, sizeof line, f)) {
		unsigned long start, off;
		if (strstr(line, want) && sscanf(line, "%lx-%*x %*s %lx", &start, &off) == 2 &&
		    off == 0)
			c = (const struct kipc_credit *)(start + KIPC_CREDIT_OFF);
	}
	if (f)
		fclose(f);
	return c;
}

/*
 * On node b: a mailbox of 8, one message in it and credits for the
 * room (sent until granted); after the remote send, 7 more, nonblocking.
 */
static int credit_holder(struct share *s)
{
	int64_t id = nf_mbox_create(s->name, 8, 0666);
	const struct kipc_credit *c = own_credit();
	if (id < 0 || !c)
		return 10;
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	int v = 0;
	for (;;) {
		if (kipc_mbox_send(id, &v, sizeof v, 0, 0) < 0)
			return 11;
		if (__atomic_load_n(&c->gen, __ATOMIC_ACQUIRE) && c->link == id)
			break;
		if (kipc_mbox_receive(id, &v, sizeof v, NULL, KIPC_F_NONBLOCK) != sizeof v)
			return 12;
		if (__ksft_now_ms() > deadline)
			return 13;
		sched_yield();
	}
	s->result[0] = (int)c->limit;
	kt_post(&s->ready, 1);
	if (kt_wait_post(&s->go, 1))
		return 14;
	for (v = 1; v <= 7; v++) {
		if (kipc_mbox_send(id, &v, sizeof v, 0, KIPC_F_NONBLOCK) == 0)
			s->result[1]++;
		else if (errno == EAGAIN)
			s->result[2]++;
	}
	struct kipc_mbox_stat st;
	s->result[3] = kipc_mbox_stat(id, &st) == 0 ? (int)st.nmsg : -1;
	int got[9], n = 0;
	while (n < 9 && kipc_mbox_receive(id, &got[n], sizeof got[n], NULL, KIPC_F_NONBLOCK) > 0)
		n++;
	s->result[4] = n == 8 && got[0] == 0 && got[1] == 99; /* FIFO: the remote one second */
	return 0;
}

/* A remote send at the home node comes after the local credit sends that
 * returned and never takes the room a local holder's credits hold: the
 * holder's sends stay exact (the mailbox holds 8, not 9). */
TEST(a_remote_send_takes_no_room_a_local_credit_holds)
{
	struct share *s = share_new();
	ASSERT_NE(NULL, s);
	pid_t h = on_node(1, credit_holder, s);
	ASSERT_EQ(0, kt_wait_post(&s->ready, 1));
	ASSERT_EQ(7, s->result[0]); /* credits for all the room */
	char n[128];
	snprintf(n, sizeof n, "/net/b%s", s->name);
	int64_t id = kipc_mbox_open(n, 0, NULL);
	ASSERT_GT(id, 0);
	int v = 99;
	ASSERT_EQ(0, kipc_mbox_send(id, &v, sizeof v, 0, KIPC_F_NONBLOCK));
	kt_post(&s->go, 1);
	ASSERT_EQ(0, kt_wait(h));
	EXPECT_EQ(6, s->result[1]); /* 1 + the remote one + 6 = 8 */
	EXPECT_EQ(1, s->result[2]);
	EXPECT_EQ(8, s->result[3]);
	EXPECT_EQ(1, s->result[4]);
}

/* ---- messages larger than one NATS message (network.md) ---------- */

#define BIG_SEND  (1u << 20)          /* the whole 1 MiB data arena of a process */
#define BIG_REPLY ((1u << 20) - 65536) /* a call: a small request and this reply */

static void big_fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 131 + i / 4093 + seed);
}

static bool big_ok(const uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != (uint8_t)(i * 131 + i / 4093 + seed))
			return false;
	return true;
}

/* Home: receives the 1 MiB message whole, answers a call with
 * BIG_REPLY bytes, and nothing else was queued; reports net_stat. */
static int srv_big(struct share *s)
{
	struct kipc_mbox_attr a = kt_attr(2);
	a.msgsize = BIG_SEND;
	a.mode = 0666;
	s->id = kipc_mbox_open(s->name, KIPC_O_CREAT | KIPC_O_EXCL, &a);
	if (s->id < 0)
		return 10;
	kt_post(&s->ready, 1);
	uint8_t *buf = malloc(BIG_SEND);
	if (!buf)
		return 11;
	struct kipc_msginfo mi;
	int64_t bound = (int64_t)KT_BOUND_MS * 1000000 * 4;
	ssize_t n = kipc_mbox_receive_timed(s->id, buf, BIG_SEND, &mi, 0, bound);
	if (n != (ssize_t)BIG_SEND)
		return 20;
	if (!big_ok(buf, BIG_SEND, 1))
		return 21;
	n = kipc_mbox_receive_timed(s->id, buf, 64, &mi, 0, bound);
	if (n != 5 || memcmp(buf, "big?", 5) || !(mi.flags & KIPC_CQE_F_CALL))
		return 22;
	big_fill(buf, BIG_REPLY, 2);
	if (kipc_reply(mi.token, buf, BIG_REPLY, 0) < 0)
		return 23;
	/* Exactly once: nothing more came (the parts, retransmitted or
	 * not, made one message). */
	if (kt_wait_post(&s->go, 1))
		return 24;
	if (kipc_mbox_receive(s->id, buf, BIG_SEND, &mi, KIPC_F_NONBLOCK) != -1 || errno != EAGAIN)
		return 25;
	struct kipc_net_stat st;
	if (kipc_net_stat(&st) < 0)
		return 26;
	s->t[0] = (int64_t)st.partial_bytes;
	s->t[1] = (int64_t)st.nsplit;
	free(buf);
	return 0;
}

/* The origin on node slot o, the home on slot h ("d"): a 1 MiB send and
 * a call with a BIG_REPLY reply, byte for byte, once. */
static void big_across(struct __test_metadata *_metadata, int o, int h, int64_t *parts,
		       int64_t *held)
{
	struct share *s = share_new();
	ASSERT_NE(NULL, s);
	pid_t srv = serve(h, srv_big, s);
	ASSERT_GT(srv, 0);
	pid_t cli = fork();
	if (cli == 0) {
		if (nf_use(o) < 0)
			_exit(80);
		int64_t id = nf_remote(nf_name(h), s->name);
		uint8_t *buf = malloc(BIG_SEND);
		if (id < 0 || !buf)
			_exit(81);
		big_fill(buf, BIG_SEND, 1);
		if (kipc_mbox_send(id, buf, BIG_SEND, 0, 0) < 0)
			_exit(82);
		free(buf);
		uint8_t *reply = malloc(BIG_REPLY);
		struct kipc_msginfo mi;
		ssize_t n = kipc_mbox_call(id, "big?", 5, reply, BIG_REPLY, &mi, 0);
		if (n != (ssize_t)(BIG_REPLY))
			_exit(83);
		if (!big_ok(reply, BIG_REPLY, 2))
			_exit(84);
		struct kipc_net_stat st;
		if (kipc_net_stat(&st) < 0)
			_exit(85);
		s->t[2] = (int64_t)st.nsplit;
		s->t[3] = (int64_t)st.nparts;
		_exit(0);
	}
	ASSERT_EQ(0, kt_wait(cli));
	kt_post(&s->go, 1);
	ASSERT_EQ(0, kt_wait(srv));
	TH_LOG("frames sent in parts: origin %lld, home %lld; home holds %lld partial bytes",
	       (long long)s->t[2], (long long)s->t[1], (long long)s->t[0]);
	if (held)
		*held = s->t[0];
	else
		EXPECT_EQ(0, s->t[0]); /* nothing held at the home once whole */
	EXPECT_GE(s->t[2], 1);  /* the 1 MiB REQ did not fit one NATS message */
	if (parts)
		*parts = s->t[3];
}

/* A node that sends or takes 1 MiB messages: its bytes_per_user holds
 * them (an origin's copy of a request is charged to its caller, as its
 * message would be; network.md). */
#define BIG_HOME "msgsize_max=2097152 bytes_per_user=8388608"

/* A server of the fixture's users on a port of its own (conf NAME.conf,
 * with extra lines), its URL in url; slot *pid. */
static int big_server(const char *name, const char *extra, pid_t *pid, char *url, size_t len)
{
	char why[256], conf[1024], path[PATH_MAX];
	int port = nf_free_port();
	if (port <= 0)
		return KSFT_FAIL;
	snprintf(conf, sizeof conf, "listen: 127.0.0.1:%d\n%sinclude auth.conf\n", port, extra);
	snprintf(path, sizeof path, "%s/%s.conf", nf->dir, name);
	if (nf_write(path, 0644, conf))
		return KSFT_FAIL;
	snprintf(url, len, "nats://127.0.0.1:%d", port);
	int r = nf_start_server(name, port, pid, why, sizeof why);
	if (r != KSFT_PASS)
		ksft_print("# %s\n", why);
	return r;
}

/* c and d (slots 4, 5) on a server of their own with max_line, both
 * taking 1 MiB messages: the send and the call across. */
static void big_on_server(struct __test_metadata *_metadata, const char *max_line)
{
	char why[256], url[64];
	ASSERT_EQ(KSFT_PASS, big_server("small", max_line, &nf->small_nats, url, sizeof url));
	ASSERT_EQ(KSFT_PASS, nf_boot_node_on(4, url, BIG_HOME, why, sizeof why));
	ASSERT_EQ(KSFT_PASS, nf_boot_node_on(5, url, BIG_HOME, why, sizeof why));
	big_across(_metadata, 4, 5, NULL, NULL);
	nf_stop_node(4, SIGTERM);
	nf_stop_node(5, SIGTERM);
	nf_stop_pid(nf->small_nats, SIGTERM);
	nf->small_nats = 0;
}

TEST_TIMEOUT(one_mib_message_in_parts_default_max_payload, 60)
{
	NF_SLOW();
	/* NATS's default max_payload, 1 MiB: a 1 MiB message and its
	 * 176-byte header are two parts. */
	big_on_server(_metadata, "");
}

TEST_TIMEOUT(one_mib_message_in_parts_64k_max_payload, 60)
{
	NF_SLOW();
	/* 17 parts of 64 KiB each way. */
	big_on_server(_metadata, "max_payload: 65536\n");
}

/* ---- the boot check of the NATS permissions (network.md, Security) - */

static bool log_has(const struct kt_kernel *k, const char *text)
{
	FILE *f = fopen(k->log, "r");
	char line[1024];
	bool yes = false;
	while (f && !yes && fgets(line, sizeof line, f))
		yes = strstr(line, text) != NULL;
	if (f)
		fclose(f);
	return yes;
}

static bool wait_log(const struct kt_kernel *k, const char *text)
{
	for (int64_t end = __ksft_now_ms() + KT_BOUND_MS; __ksft_now_ms() < end; kt_sleep_ms(10))
		if (log_has(k, text))
			return true;
	return log_has(k, text);
}

static int refused_node(struct share *s)
{
	struct kipc_net_stat st;
	if (kipc_net_stat(&st) < 0)
		return 10;
	s->result[0] = (int)st.connected;
	int64_t t0 = kt_now_ns();
	int64_t id = kipc_mbox_open("/net/a/anything", 0, NULL);
	s->result[1] = id < 0 ? errno : 0;
	s->t[0] = kt_now_ns() - t0;
	return 0;
}

/* perm: the permissions of node d's user on that server ("" none: all). */
static void misconfigured(struct __test_metadata *_metadata, const char *perm,
			  const char *says)
{
	char why[256], conf[1024], path[PATH_MAX], url[64];
	int port = nf_free_port();
	ASSERT_GT(port, 0);
	snprintf(conf, sizeof conf,
		 "listen: 127.0.0.1:%d\nauthorization {\n  users = [\n"
		 "    {user: d, password: pw-d-%d%s}\n  ]\n}\n", port, nf->nats_port, perm);
	snprintf(path, sizeof path, "%s/loose.conf", nf->dir);
	ASSERT_EQ(0, nf_write(path, 0644, conf));
	ASSERT_EQ(KSFT_PASS, nf_start_server("loose", port, &nf->small_nats, why, sizeof why));
	snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
	ASSERT_EQ(KSFT_PASS, nf_boot_node_on(3, url, NULL, why, sizeof why));
	EXPECT_TRUE(wait_log(&nf->node[3], "REFUSING THE NETWORK"));
	EXPECT_TRUE(log_has(&nf->node[3], says));
	EXPECT_FALSE(log_has(&nf->node[3], "enforces the per-node permissions (checked)"));
	struct share *s = share_new();
	ASSERT_NE(NULL, s);
	pid_t p = on_node(3, refused_node, s);
	ASSERT_EQ(0, kt_wait(p));
	EXPECT_EQ(0, s->result[0]);            /* kipcs -u: not connected */
	EXPECT_EQ(EHOSTUNREACH, s->result[1]); /* nothing sent */
	TH_LOG("a node on a server that lets it be another: refused; a request fails "
	       "%s after %.2f s", strerror(s->result[1]), (double)s->t[0] / 1e9);
	nf_stop_node(3, SIGTERM);
	nf_stop_pid(nf->small_nats, SIGTERM);
	nf->small_nats = 0;
}

TEST_TIMEOUT(a_server_that_lets_a_node_be_another_is_refused, 60)
{
	NF_SLOW();
	/* The fixture's server enforces them: its nodes said so. */
	EXPECT_TRUE(log_has(&nf->node[0], "enforces the per-node permissions (checked)"));
	EXPECT_FALSE(log_has(&nf->node[0], "REFUSING"));
	/* No permissions at all: d may publish and subscribe as anyone. */
	misconfigured(_metadata, "", "publish as node PROBE (kipc.d.req.PROBE)");
	/* Only the publish is open: d may send as any node. */
	misconfigured(_metadata,
		      ", permissions: {publish: {allow: [\"kipc.>\"]}, "
		      "subscribe: {allow: [\"kipc.d.>\"]}}",
		      "publish as node PROBE (kipc.d.req.PROBE)");
	/* Only the subscription: d may read another node's requests. */
	misconfigured(_metadata,
		      ", permissions: {publish: {allow: [\"kipc.*.req.d\", \"kipc.*.rsp.d\"]}, "
		      "subscribe: {allow: [\"kipc.>\"]}}",
		      "subscribe to node PROBE's subjects (kipc.PROBE.>)");
}

static int names_b_then_refused(struct share *s)
{
	struct kipc_net_stat st;
	if (kipc_net_stat(&st) < 0)
		return 10;
	s->result[0] = (int)st.connected; /* checked with PROBE: on */
	if (kipc_node_pid("b", 1) == -1)  /* d talks with b: its check runs */
		return 11;
	int64_t end = kt_now_ns() + (int64_t)KT_BOUND_MS * 1000000;
	while (kipc_net_stat(&st) == 0 && st.connected && kt_now_ns() < end)
		kt_sleep_ms(5);
	s->result[1] = (int)st.connected;
	int64_t id = kipc_mbox_open("/net/b/anything", 0, NULL);
	s->result[2] = id < 0 ? errno : 0;
	return 0;
}

/* perm: node d's permissions, which grant it something of node b's. */
static void misgranted(struct __test_metadata *_metadata, const char *perm, const char *says)
{
	char why[256], conf[1024], path[PATH_MAX], url[64];
	int port = nf_free_port();
	ASSERT_GT(port, 0);
	snprintf(conf, sizeof conf,
		 "listen: 127.0.0.1:%d\nauthorization {\n  users = [\n"
		 "    {user: d, password: pw-d-%d, permissions: %s}\n  ]\n}\n", port,
		 nf->nats_port, perm);
	snprintf(path, sizeof path, "%s/loose.conf", nf->dir);
	ASSERT_EQ(0, nf_write(path, 0644, conf));
	ASSERT_EQ(KSFT_PASS, nf_start_server("loose", port, &nf->small_nats, why, sizeof why));
	snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
	ASSERT_EQ(KSFT_PASS, nf_boot_node_on(3, url, NULL, why, sizeof why));
	/* The first check (PROBE) cannot see a grant of b's subjects. */
	EXPECT_TRUE(wait_log(&nf->node[3], "enforces the per-node permissions (checked)"));
	struct share *s = share_new();
	ASSERT_NE(NULL, s);
	pid_t p = on_node(3, names_b_then_refused, s);
	ASSERT_EQ(0, kt_wait(p));
	EXPECT_EQ(1, s->result[0]);
	EXPECT_TRUE(wait_log(&nf->node[3], "REFUSING THE NETWORK"));
	EXPECT_TRUE(log_has(&nf->node[3], says));
	EXPECT_EQ(0, s->result[1]);            /* kipcs -u: not connected */
	EXPECT_EQ(EHOSTUNREACH, s->result[2]); /* nothing sent */
	nf_stop_node(3, SIGTERM);
	nf_stop_pid(nf->small_nats, SIGTERM);
	nf->small_nats = 0;
}

#define D_OWN_PUB "\"kipc.*.req.d\", \"kipc.*.rsp.d\""

TEST_TIMEOUT(a_server_that_grants_a_node_another_nodes_subjects_is_refused, 90)
{
	NF_SLOW();
	/* The fixture's nodes talk with each other all the time: their
	 * servers keep them apart, no refusal; and each refusal a check
	 * asked for was taken as such, also when it came after the check
	 * passed and another check had begun (none logged). */
	for (int i = 0; i < 3; i++) {
		EXPECT_FALSE(log_has(&nf->node[i], "REFUSING"));
		EXPECT_FALSE(log_has(&nf->node[i], "Not Permitted"));
	}
	/* d may read everything of b's. */
	misgranted(_metadata,
		   "{publish: {allow: [" D_OWN_PUB "]}, subscribe: {allow: [\"kipc.d.>\", \"kipc.b.>\"]}}",
		   "subscribe to node b's subjects (kipc.b.>)");
	/* d may publish as b. */
	misgranted(_metadata,
		   "{publish: {allow: [" D_OWN_PUB ", \"kipc.*.req.b\"]}, "
		   "subscribe: {allow: [\"kipc.d.>\"]}}",
		   "publish as node b (kipc.d.req.b)");
	/* One subject of b's: its answers to d. */
	misgranted(_metadata,
		   "{publish: {allow: [" D_OWN_PUB "]}, "
		   "subscribe: {allow: [\"kipc.d.>\", \"kipc.b.rsp.d\"]}}",
		   "subscribe to node b's answers (kipc.b.rsp.d)");
}

/*
 * A permission check whose answer is late is no refusal (nats.cc
 * probed()): a relay between node d and the fixture's server holds back
 * what the server sends d from the check's mark on (the MSG on
 * kipc.d.rsp.d), on d's first two connections: each check has no
 * answer within 2 s, the connection is dropped and a new one checked.
 */
#define RELAY_PAIRS 8

struct relay {
	int port;
	int conns; /* connections the relay took */
	int held;  /* of them, those whose mark it held back */
};

/* Copy what fd has to to: false at its end (or an error). */
static bool relay_copy(int fd, int to, const char *hold, int *holding, char *tail,
		       size_t *ntail)
{
	char buf[65536 + 64];
	size_t off = hold ? *ntail : 0; /* room for the tail before it */
	ssize_t n = read(fd, buf + off, sizeof buf - 64);
	if (n <= 0)
		return false;
	if (!hold || *holding < 0)
		return write(to, buf + off, (size_t)n) == n;
	if (*holding > 0)
		return true; /* held back: the mark and all after it */
	/* (the mark's line may begin in what the last read forwarded) */
	memcpy(buf, tail, *ntail);
	size_t all = *ntail + (size_t)n, lh = strlen(hold), out = (size_t)n;
	char *at = memmem(buf, all, hold, lh);
	if (at) {
		out = (size_t)(at - buf) > *ntail ? (size_t)(at - buf) - *ntail : 0;
		*holding = 1;
	}
	if (out && write(to, buf + *ntail, out) != (ssize_t)out)
		return false;
	size_t keep = all < lh ? all : lh - 1;
	memmove(tail, buf + all - keep, keep);
	*ntail = keep;
	return true;
}

/* The relay to port: on its first nhold connections it holds back what
 * the server sends from the text hold on. Its pid (it dies with us). */
static pid_t relay_start(struct relay *r, int port, const char *hold, int nhold)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof sa;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 8) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &l) < 0)
		return -1;
	r->port = ntohs(sa.sin_port);
	pid_t p = fork();
	if (p != 0) {
		close(lfd);
		if (p > 0)
			nf_track(p);
		return p;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct {
		int c, s, holding; /* holding: 0 watching, 1 holding, -1 neither */
		char tail[64];
		size_t ntail;
	} pr[RELAY_PAIRS];
	int np = 0;
	for (;;) {
		struct pollfd pf[1 + 2 * RELAY_PAIRS] = {{.fd = lfd, .events = POLLIN}};
		for (int i = 0; i < np; i++) {
			pf[1 + 2 * i] = (struct pollfd){.fd = pr[i].c, .events = POLLIN};
			pf[2 + 2 * i] = (struct pollfd){.fd = pr[i].s, .events = POLLIN};
		}
		if (poll(pf, (nfds_t)(1 + 2 * np), -1) < 0)
			continue;
		for (int i = np - 1; i >= 0; i--) {
			bool ok = true;
			if (pf[1 + 2 * i].revents)
				ok = relay_copy(pr[i].c, pr[i].s, NULL, NULL, NULL, NULL);
			if (ok && pf[2 + 2 * i].revents) {
				int was = pr[i].holding;
				ok = relay_copy(pr[i].s, pr[i].c, hold, &pr[i].holding, pr[i].tail,
						&pr[i].ntail);
				if (was == 0 && pr[i].holding == 1)
					__atomic_add_fetch(&r->held, 1, __ATOMIC_SEQ_CST);
			}
			if (!ok) {
				close(pr[i].c);
				close(pr[i].s);
				pr[i] = pr[--np];
			}
		}
		if (pf[0].revents && np < RELAY_PAIRS) {
			int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			struct sockaddr_in to = {.sin_family = AF_INET,
						 .sin_port = htons((uint16_t)port),
						 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
			int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (c >= 0 && s >= 0 && connect(s, (struct sockaddr *)&to, sizeof to) == 0) {
				int n = __atomic_add_fetch(&r->conns, 1, __ATOMIC_SEQ_CST);
				pr[np].c = c;
				pr[np].s = s;
				pr[np].holding = n <= nhold ? 0 : -1;
				pr[np].ntail = 0;
				np++;
			} else {
				if (c >= 0)
					close(c);
				if (s >= 0)
					close(s);
			}
		}
	}
}

static int log_count(const struct kt_kernel *k, const char *text)
{
	FILE *f = fopen(k->log, "r");
	char line[1024];
	int n = 0;
	while (f && fgets(line, sizeof line, f))
		n += strstr(line, text) != NULL;
	if (f)
		fclose(f);
	return n;
}

/* On node d while its check waits for its answer: not connected, and
 * a request is held, then fails EHOSTUNREACH (nothing sent). */
static int while_unchecked(struct share *s)
{
	struct kipc_net_stat st;
	if (kipc_net_stat(&st) < 0)
		return 10;
	s->result[0] = (int)st.connected;
	int64_t t0 = kt_now_ns();
	int64_t id = kipc_mbox_open("/net/b/anything", 0, NULL);
	s->result[1] = id < 0 ? errno : 0;
	s->t[0] = kt_now_ns() - t0;
	return 0;
}

#define LATE_LINE "did not come within 2 s: checking again on a new connection"

TEST_TIMEOUT(a_permission_check_answered_late_is_checked_again, 60)
{
	NF_SLOW();
	char why[256], url[64];
	struct relay *r = nf_shared(sizeof *r);
	ASSERT_NE(NULL, r);
	pid_t rp = relay_start(r, nf->nats_port, "MSG kipc.d.rsp.d ", 2);
	ASSERT_GT(rp, 0);
	struct share *s = share_new();
	ASSERT_NE(NULL, s);
	pid_t srv = serve(1, srv_one_late, s);
	ASSERT_GT(srv, 0);
	snprintf(url, sizeof url, "nats://127.0.0.1:%d", r->port);
	ASSERT_EQ(KSFT_PASS, nf_boot_node_on(3, url, NULL, why, sizeof why)) TH_LOG("%s", why);
	/* Its first check waits for the mark the relay holds. */
	int64_t end = __ksft_now_ms() + KT_BOUND_MS;
	while (!__atomic_load_n(&r->held, __ATOMIC_SEQ_CST) && __ksft_now_ms() < end)
		kt_sleep_ms(5);
	ASSERT_EQ(1, __atomic_load_n(&r->held, __ATOMIC_SEQ_CST));
	pid_t p = on_node(3, while_unchecked, s);
	ASSERT_EQ(0, kt_wait(p));
	EXPECT_EQ(0, s->result[0]);            /* kipcs -u: not connected */
	EXPECT_EQ(EHOSTUNREACH, s->result[1]); /* nothing sent */
	/* Two late checks, two new connections; the third passes. */
	EXPECT_TRUE(wait_log(&nf->node[3], "enforces the per-node permissions (checked)"));
	EXPECT_EQ(0, wait_connected(3));
	EXPECT_EQ(2, log_count(&nf->node[3], LATE_LINE));
	EXPECT_EQ(2, __atomic_load_n(&r->held, __ATOMIC_SEQ_CST));
	EXPECT_LE(3, __atomic_load_n(&r->conns, __ATOMIC_SEQ_CST));
	EXPECT_FALSE(log_has(&nf->node[3], "REFUSING"));
	/* No refusal stood: its send crosses. */
	p = on_node(3, send_joined, s);
	EXPECT_EQ(0, kt_wait(p));
	EXPECT_EQ(0, kt_wait(srv));
	EXPECT_STREQ("joined", s->text[0]);
	TH_LOG("late checks: %d, connections: %d; a request while unchecked: %s after %.2f s",
	       log_count(&nf->node[3], LATE_LINE), r->conns, strerror(s->result[1]),
	       (double)s->t[0] / 1e9);
	nf_stop_node(3, SIGTERM);
	kill(rp, SIGKILL);
	waitpid(rp, NULL, 0);
	nf_untrack(rp);
}

/* ---- servers of one cluster with different max_payload ----------- */

TEST_TIMEOUT(servers_with_different_max_payload_in_one_cluster, 120)
{
	NF_SLOW();
	char why[256], u0[64], u1[64], extra[2][256];
	int r0 = nf_free_port(), r1 = nf_free_port();
	ASSERT_GT(r0, 0);
	ASSERT_GT(r1, 0);
	/* mp0: NATS's default max_payload (1 MiB); mp1: 64 KiB. */
	snprintf(extra[0], sizeof extra[0],
		 "server_name: mp0\ncluster {\n  name: mp\n  listen: 127.0.0.1:%d\n"
		 "  routes: [nats-route://127.0.0.1:%d]\n}\n", r0, r1);
	snprintf(extra[1], sizeof extra[1],
		 "server_name: mp1\nmax_payload: 65536\ncluster {\n  name: mp\n"
		 "  listen: 127.0.0.1:%d\n  routes: [nats-route://127.0.0.1:%d]\n}\n", r1, r0);
	ASSERT_EQ(KSFT_PASS, big_server("mp0", extra[0], &nf->cnats[0], u0, sizeof u0));
	ASSERT_EQ(KSFT_PASS, big_server("mp1", extra[1], &nf->cnats[1], u1, sizeof u1));
	ASSERT_TRUE(routes_between(u0, u1));
	ASSERT_EQ(KSFT_PASS, nf_boot_node_on(4, u0, BIG_HOME, why, sizeof why));
	ASSERT_EQ(KSFT_PASS, nf_boot_node_on(5, u1, BIG_HOME, why, sizeof why));
	/* c (on the 1 MiB server) to d (on the 64 KiB one): c sends what
	 * d's server carries, which d said in its answers: its 1 MiB REQ
	 * in 17 parts or more, not the 2 its own server would take. */
	int64_t parts = 0;
	big_across(_metadata, 4, 5, &parts, NULL);
	TH_LOG("c -> d: the origin on the 1 MiB server sent %lld parts", (long long)parts);
	EXPECT_GE(parts, 17);
	/* d to c: d's own server bounds what it sends. */
	big_across(_metadata, 5, 4, &parts, NULL);
	TH_LOG("d -> c: the origin on the 64 KiB server sent %lld parts", (long long)parts);
	EXPECT_GE(parts, 17);
	nf_stop_node(4, SIGTERM);
	nf_stop_node(5, SIGTERM);
	for (int i = 0; i < 2; i++) {
		nf_stop_pid(nf->cnats[i], SIGTERM);
		nf->cnats[i] = 0;
	}
}

/* ---- the 4 MiB a node may have coming in parts at one home -------- */

static int stat_partial(struct share *s)
{
	struct kipc_net_stat st;
	if (kipc_net_stat(&st) < 0)
		return 10;
	s->t[0] = (int64_t)st.partial_bytes;
	return 0;
}

static int64_t home_partial(struct __test_metadata *_metadata, int i)
{
	struct share *s = share_new();
	if (!s)
		return -1;
	pid_t p = on_node(i, stat_partial, s);
	EXPECT_EQ(0, kt_wait(p));
	return s->t[0];
}

/* The largest frame a request makes (net.cc): header, 1 MiB, a name. */
#define BIG_FRAME (176 + (1 << 20) + 5 + 31 + 1 + 255)

/* A part of request seq as the hostile node: bytes [off, off + len) of a
 * frame of total bytes. */
static struct wire hostile_part(uint64_t epoch, uint64_t home, uint64_t seq, uint32_t total,
				int64_t off)
{
	return (struct wire){.kind = 9, .prio = 1, .epoch = epoch, .peer_epoch = home, .seq = seq,
			     .op = KIPC_SYS_mbox_send, .pid = 4242, .uid = 0, .len2 = total,
			     .target = off};
}

/* The first parts of requests first..last as the hostile node, 3000
 * bytes each of the largest frames: published, not waited for. */
static void hostile_first_parts(natsConnection *z, uint64_t epoch, uint64_t home, uint64_t first,
				uint64_t last)
{
	static uint8_t junk[3000];
	memset(junk, 'z', sizeof junk);
	for (uint64_t seq = first; seq <= last; seq++) {
		struct wire w = hostile_part(epoch, home, seq, BIG_FRAME, 0);
		w.magic = 0x54454e4b;
		w.version = 1;
		w.datalen = sizeof junk;
		uint8_t buf[sizeof w + sizeof junk];
		memcpy(buf, &w, sizeof w);
		memcpy(buf + sizeof w, junk, sizeof junk);
		natsConnection_Publish(z, "kipc.d.req.a", buf, sizeof buf);
	}
}

TEST_TIMEOUT(the_4_mib_per_origin_bound_holds_against_a_hostile_node, 120)
{
	NF_SLOW();
	char why[256], url[64];
	ASSERT_EQ(KSFT_PASS, big_server("bound", "", &nf->small_nats, url, sizeof url));
	/* d the home, c an honest origin; the hostile node is "a" (no kipcd
	 * a on this server: the test speaks for it). The 4 MiB bound is what
	 * is tested: an origin's share of 65534's 8 MiB there (its default,
	 * half, is net_unit's) is raised to 75% so that it is not reached
	 * first. */
	ASSERT_EQ(KSFT_PASS, nf_boot_node_on(5, url, BIG_HOME " net_origin_share=75", why, sizeof why));
	ASSERT_EQ(KSFT_PASS, nf_boot_node_on(4, url, BIG_HOME, why, sizeof why));
	natsConnection *z = nf_nats_as(url, "a");
	ASSERT_NE(NULL, z);
	natsSubscription *sub;
	ASSERT_EQ(NATS_OK, natsConnection_Subscribe(&sub, z, "kipc.a.>", on_answer_d, NULL));
	natsConnection_Flush(z);
	uint64_t epoch = (uint64_t)kt_realtime_ns();
	struct wire *a = ask_on(z, "kipc.d.req.a", (struct wire){.kind = 2, .epoch = epoch}, NULL, 0);
	ASSERT_NE(NULL, a);
	ASSERT_EQ(3, a->kind);
	uint64_t home = a->epoch;
	static uint8_t junk[3000];
	memset(junk, 'z', sizeof junk);
	/* Four of the largest requests, their first parts only: held,
	 * 4 MiB and change. */
	hostile_first_parts(z, epoch, home, 1, 4);
	/* A fifth: refused EAGAIN, not held. */
	a = ask_on(z, "kipc.d.req.a", hostile_part(epoch, home, 5, BIG_FRAME, 0), junk, sizeof junk);
	ASSERT_NE(NULL, a);
	EXPECT_EQ(4, a->kind);
	EXPECT_EQ(-EAGAIN, a->cqe.res);
	EXPECT_EQ(4LL * BIG_FRAME, home_partial(_metadata, 5));
	/* Parts no request makes are dropped, nothing held, no answer: a
	 * total beyond the largest frame, a part past its frame's end, a
	 * part of an answer on the request subject. */
	struct wire bad[3] = {hostile_part(epoch, home, 6, BIG_FRAME + 1, 0),
			      hostile_part(epoch, home, 7, 100000, 100000 - 100),
			      hostile_part(epoch, home, 8, 100000, 0)};
	bad[2].prio = 4;
	int before = __atomic_load_n(&g_nans, __ATOMIC_SEQ_CST);
	for (int i = 0; i < 3; i++) {
		bad[i].magic = 0x54454e4b;
		bad[i].version = 1;
		bad[i].datalen = sizeof junk;
		uint8_t buf[sizeof bad[i] + sizeof junk];
		memcpy(buf, &bad[i], sizeof bad[i]);
		memcpy(buf + sizeof bad[i], junk, sizeof junk);
		natsConnection_Publish(z, "kipc.d.req.a", buf, sizeof buf);
	}
	a = ask_on(z, "kipc.d.req.a", (struct wire){.kind = 2, .epoch = epoch, .seq = 0}, NULL, 0);
	ASSERT_NE(NULL, a);
	/* None of them is answered (the held ones, 1-4, may have had a
	 * HAVE meanwhile: their parts paused for a tick). */
	int answered = 0;
	for (int i = before; i < __atomic_load_n(&g_nans, __ATOMIC_SEQ_CST); i++)
		answered += g_ans[i].seq >= 6 && g_ans[i].seq <= 8;
	EXPECT_EQ(0, answered);
	EXPECT_EQ(4LL * BIG_FRAME, home_partial(_metadata, 5));
	/* Another origin's bound is its own: c's 1 MiB send and its call
	 * with a 960 KiB reply cross whole, once, meanwhile (what the home
	 * holds at the end depends on whether a's parts timed out yet). */
	int64_t held = 0;
	big_across(_metadata, 4, 5, NULL, &held);
	/* a's parts stop coming: dropped net_timeout_ms after the last. */
	int64_t t0 = __ksft_now_ms(), left = -1;
	while (__ksft_now_ms() - t0 < 2 * NF_TIMEOUT_MS + KT_BOUND_MS &&
	       (left = home_partial(_metadata, 5)) != 0)
		kt_sleep_ms(50);
	EXPECT_EQ(0, left);
	/* The refused one's retransmission gets its kept answer: not run. */
	a = ask_on(z, "kipc.d.req.a", hostile_part(epoch, home, 5, BIG_FRAME, 0), junk, sizeof junk);
	ASSERT_NE(NULL, a);
	EXPECT_EQ(4, a->kind);
	EXPECT_EQ(-EAGAIN, a->cqe.res);
	TH_LOG("a hostile node's 4 parts held %lld bytes, the fifth EAGAIN; dropped %.1f s later",
	       4LL * BIG_FRAME, (double)(__ksft_now_ms() - t0) / 1000);
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(z);
	nf_stop_node(4, SIGTERM);
	nf_stop_node(5, SIGTERM);
	nf_stop_pid(nf->small_nats, SIGTERM);
	nf->small_nats = 0;
}

/*
 * One origin cannot use up what the callers of the others may hold at a
 * home: what the home holds for one origin's callers mapped to 65534 is
 * at most net_origin_share (half, by default) of that uid's
 * bytes_per_user (8 MiB at d): the hostile node's fourth large request
 * is refused ENOSPC (its 4 MiB bound would have taken it), and the
 * honest node's 1 MiB send and call, also 65534's there, cross.
 */
TEST_TIMEOUT(an_origin_at_its_share_leaves_the_rest_to_the_others, 120)
{
	NF_SLOW();
	char why[256], url[64];
	ASSERT_EQ(KSFT_PASS, big_server("share", "", &nf->small_nats, url, sizeof url));
	ASSERT_EQ(KSFT_PASS, nf_boot_node_on(5, url, BIG_HOME, why, sizeof why));
	ASSERT_EQ(KSFT_PASS, nf_boot_node_on(4, url, BIG_HOME, why, sizeof why));
	natsConnection *z = nf_nats_as(url, "a");
	ASSERT_NE(NULL, z);
	natsSubscription *sub;
	ASSERT_EQ(NATS_OK, natsConnection_Subscribe(&sub, z, "kipc.a.>", on_answer_d, NULL));
	natsConnection_Flush(z);
	uint64_t epoch = (uint64_t)kt_realtime_ns();
	struct wire *a = ask_on(z, "kipc.d.req.a", (struct wire){.kind = 2, .epoch = epoch}, NULL, 0);
	ASSERT_NE(NULL, a);
	uint64_t home = a->epoch;
	hostile_first_parts(z, epoch, home, 1, 3);
	static uint8_t junk[3000];
	a = ask_on(z, "kipc.d.req.a", hostile_part(epoch, home, 4, BIG_FRAME, 0), junk, sizeof junk);
	ASSERT_NE(NULL, a);
	EXPECT_EQ(4, a->kind);
	EXPECT_EQ(-ENOSPC, a->cqe.res);
	EXPECT_EQ(3LL * BIG_FRAME, home_partial(_metadata, 5));
	int64_t held = 0;
	big_across(_metadata, 4, 5, NULL, &held);
	TH_LOG("a hostile node at its share held %lld bytes, its fourth ENOSPC; the honest "
	       "node's 1 MiB send and call crossed", 3LL * BIG_FRAME);
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(z);
	nf_stop_node(4, SIGTERM);
	nf_stop_node(5, SIGTERM);
	nf_stop_pid(nf->small_nats, SIGTERM);
	nf->small_nats = 0;
}

NET_TEST_MAIN
