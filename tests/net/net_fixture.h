/* SPDX-License-Identifier: MIT */
/*
 * net_fixture.h - a NATS server and three kipcd nodes on this machine for
 * the cross-node tests (Documentation/network.md).
 *
 * The runner's setup writes a nats-server configuration with one user per
 * node (a, b, c, d) whose permissions let node X publish only
 * kipc.*.req.X and kipc.*.rsp.X and subscribe only kipc.X.>, boots
 * nats-server on a free loopback port, then kipcd nodes a, b and c, each
 * on its own socket, with credentials files (mode 0600); node c declares
 * uid 0 shared (net_shared_uids=0), a and b do not; all three declare
 * uids 2000-2999 shared (NF_SHARED_UID: the direct sends back). Tests run in the
 * harness's forked children; a test may boot node d of its own
 * (nf_boot_node) to kill it.
 *
 * Nothing is left behind: the teardown stops every node and the server;
 * and a watchdog process, which holds the read end of a pipe whose write
 * end only the runner has, kills every pid the fixture recorded when the
 * runner dies (EOF on the pipe), however it dies.
 */
#ifndef _KIPC_NET_FIXTURE_H
#define _KIPC_NET_FIXTURE_H

#include <nats/nats.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

/* GCC 12 inlines kt_kernel_boot() into nf_boot_node_on() and takes
 * k->dir and k->sock (two fields of *nf) to overlap: a false -Wrestrict. */
#pragma GCC diagnostic ignored "-Wrestrict"
#include "../selftests/kipc_test.h"

#define NF_TIMEOUT_MS 1500 /* the nodes' net_timeout_ms */
#define NF_RETRY_MS   100  /* the nodes' net_retry_ms */
#define NF_MAX_PIDS   32
#define NF_SHARED_UID 2000 /* declared shared on a, b, c (of 2000-2999) */

struct nf_shared {
	pid_t pids[NF_MAX_PIDS]; /* what the watchdog kills, 0: free */
	int nats_port;
	char dir[256];
	char url[128];
	struct kt_kernel node[6]; /* a b c d on the server; c d on the cluster */
	pid_t nats;
	int cport[3];             /* the cluster's client ports */
	pid_t cnats[3];
	char netns[2][32];        /* network namespaces a test made, "": none */
	pid_t ns_nats;            /* the nats-server in netns[0] */
	pid_t small_nats;         /* a server with a small max_payload (a test's) */
};
static struct nf_shared *nf;

static inline void nf_track(pid_t pid)
{
	for (int i = 0; i < NF_MAX_PIDS; i++)
		if (__sync_bool_compare_and_swap(&nf->pids[i], 0, pid))
			return;
}

static inline void nf_untrack(pid_t pid)
{
	for (int i = 0; i < NF_MAX_PIDS; i++)
		__sync_bool_compare_and_swap(&nf->pids[i], pid, 0);
}

static inline int nf_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof sa;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &l) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return ntohs(sa.sin_port);
}

static inline bool nf_port_accepts(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static inline int nf_write(const char *path, int mode, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/*
 * Wait at most ms until pid has exited, its files (its sockets) closed,
 * whoever's child it is: a test's process cannot waitpid() a server the
 * runner or an earlier test started (ECHILD at once, the server still
 * listening), so it polls a pidfd, readable once the process is gone.
 * Reaps it if it is ours. 0 when gone, -1 when it still runs.
 */
static inline int nf_wait_gone(pid_t pid, int ms)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0)
		return errno == ESRCH ? 0 : -1; /* reaped already: gone */
	struct pollfd p = {.fd = pfd, .events = POLLIN};
	int64_t deadline = __ksft_now_ms() + ms, left;
	int r;
	do {
		left = deadline - __ksft_now_ms();
		r = poll(&p, 1, left > 0 ? (int)left : 0);
	} while (r < 0 && errno == EINTR && left > 0);
	close(pfd);
	if (r <= 0)
		return -1;
	waitpid(pid, NULL, WNOHANG); /* ours: reaped; else its parent's business */
	return 0;
}

/* Start nats-server with dir/<name>.conf on port, record its pid in *out.
 * Ready when the port accepts and it still runs. That the port accepts
 * says it is ours only once the port's previous server is gone
 * (nf_kill_server): else the old one accepts while ours fails to bind. */
static inline int nf_start_server(const char *name, int port, pid_t *out, char *why, size_t len)
{
	char conf[PATH_MAX], log[PATH_MAX];
	snprintf(conf, sizeof conf, "%s/%s.conf", nf->dir, name);
	snprintf(log, sizeof log, "%s/%s.log", nf->dir, name);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(why, len, "fork: %s", strerror(errno));
		return KSFT_FAIL;
	}
	if (pid == 0) {
		setpgid(0, 0);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("nats-server", "nats-server", "-c", conf, (char *)NULL);
		_exit(127);
	}
	*out = pid;
	nf_track(pid);
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	for (;;) {
		bool up = nf_port_accepts(port);
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			nf_untrack(pid);
			*out = 0;
			snprintf(why, len, "nats-server exited (status 0x%x; see %s)", st, log);
			return st == 127 << 8 ? KSFT_SKIP : KSFT_FAIL;
		}
		if (up)
			break;
		if (__ksft_now_ms() > deadline) {
			snprintf(why, len, "nats-server did not listen within %d ms", KT_BOUND_MS);
			return KSFT_FAIL;
		}
		kt_sleep_ms(5);
	}
	return KSFT_PASS;
}

/* (Re)start the fixture's one server. */
static inline int nf_start_nats(char *why, size_t len)
{
	return nf_start_server("nats", nf->nats_port, &nf->nats, why, len);
}

/* Kill the server *pid with SIGKILL and wait until it is gone (its port
 * free for the next one), whoever started it; *pid becomes 0. */
static inline int nf_kill_server(pid_t *pid)
{
	pid_t p = *pid;
	if (p <= 0)
		return 0;
	kill(p, SIGKILL);
	int r = nf_wait_gone(p, KT_BOUND_MS);
	nf_untrack(p);
	*pid = 0;
	return r;
}

/* Run a command line (sh -c), its output to dir/netns.log; its status. */
static inline int nf_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int nf_sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof cmd - 64)
		return -1;
	snprintf(cmd + n, sizeof cmd - n, " >>%s/netns.log 2>&1", nf->dir);
	int st = system(cmd);
	return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/*
 * Remove the network namespaces a test made (their veth pair goes with
 * them), after killing what runs in them (what the test started there:
 * the namespaces are its own). Every path calls it: the test's end, the
 * runner after each test (a failed or timed out test), the teardown,
 * and the watchdog when the runner itself died.
 */
static inline void nf_netns_cleanup(void)
{
	if (nf->ns_nats > 0) {
		kill(nf->ns_nats, SIGKILL);
		waitpid(nf->ns_nats, NULL, WNOHANG);
		nf->ns_nats = 0;
	}
	for (int i = 0; i < 2; i++) {
		if (!nf->netns[i][0])
			continue;
		nf_sh("for p in $(ip netns pids %s); do kill -9 $p; done; ip netns del %s",
		      nf->netns[i], nf->netns[i]);
		nf->netns[i][0] = '\0';
	}
}

static inline void nf_stop_pid(pid_t pid, int sig)
{
	if (pid <= 0)
		return;
	kill(pid, sig);
	if (nf_wait_gone(pid, KT_BOUND_MS) < 0) {
		kill(pid, SIGKILL);
		nf_wait_gone(pid, KT_BOUND_MS);
	}
	nf_untrack(pid);
}

static inline const char *nf_name(int i)
{
	return (const char *[]){"a", "b", "c", "d", "c", "d"}[i];
}

/* Boot node slot i with its credentials on url (NULL: the one server),
 * plus extra: boot parameters separated by spaces, NULL: none. */
static inline int nf_boot_node_on(int i, const char *url, const char *extra, char *why,
				  size_t len)
{
	char node[16], nats[256], creds[PATH_MAX + 16], to[48], re[48], ex[256] = "";
	snprintf(node, sizeof node, "--node=%s", nf_name(i));
	snprintf(nats, sizeof nats, "--nats=%s", url ? url : nf->url);
	snprintf(creds, sizeof creds, "--nats-creds=%s/%s.creds", nf->dir, nf_name(i));
	snprintf(to, sizeof to, "net_timeout_ms=%d", NF_TIMEOUT_MS);
	snprintf(re, sizeof re, "net_retry_ms=%d", NF_RETRY_MS);
	const char *params[12] = {node, nats, creds, to, re};
	snprintf(ex, sizeof ex, "%s", extra ? extra : "");
	int np = 5;
	for (char *save = NULL, *t = strtok_r(ex, " ", &save); t && np < 11;
	     t = strtok_r(NULL, " ", &save))
		params[np++] = t;
	struct kt_reg *saved = kt_reg;
	kt_reg = NULL; /* ours: the runner must not reap it after a test */
	int r = kt_kernel_boot(&nf->node[i], params, why, len);
	kt_reg = saved;
	if (nf->node[i].pid > 0)
		nf_track(nf->node[i].pid);
	return r;
}

/* Boot node i (0..3) with its credentials, plus extra params. */
static inline int nf_boot_node(int i, const char *extra, char *why, size_t len)
{
	return nf_boot_node_on(i, NULL, extra, why, len);
}

static inline void nf_stop_node(int i, int sig)
{
	struct kt_kernel *k = &nf->node[i];
	if (k->pid > 0) {
		pid_t pid = k->pid;
		kt_kernel_stop(k, sig);
		nf_untrack(pid);
	}
	if (k->dir[0])
		kt_rm_dir(k->dir);
	k->dir[0] = 0;
}

/* In a test's child: use node i's kernel (attach happens on first use). */
static inline int nf_use(int i)
{
	kt_kernel_use(&nf->node[i]);
	return kipc_attach();
}

static inline int __nf_setup(char *why, size_t len)
{
	nf = mmap(NULL, sizeof *nf, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (nf == MAP_FAILED)
		return KSFT_FAIL;
	memset(nf, 0, sizeof *nf);
	/* What a test's process started (node d, a cluster's servers) and
	 * left running when it failed early becomes the runner's: the
	 * teardown reaps it and says how it exited (orphaned to init, its
	 * waitpid() failed at once, which read as "did not exit cleanly"). */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* The watchdog: kills what we recorded once the runner is gone. */
	int wp[2];
	if (pipe2(wp, O_CLOEXEC) < 0)
		return KSFT_FAIL;
	pid_t w = fork();
	if (w == 0) {
		close(wp[1]);
		char c;
		while (read(wp[0], &c, 1) < 0 && errno == EINTR)
			;
		for (int i = 0; i < NF_MAX_PIDS; i++)
			if (nf->pids[i] > 0)
				kill(nf->pids[i], SIGKILL);
		nf_netns_cleanup();
		_exit(0);
	}
	close(wp[0]); /* wp[1] stays open in the runner (close-on-exec) */

	const char *tmp = getenv("TMPDIR");
	snprintf(nf->dir, sizeof nf->dir, "%s/kipc-selftest.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(nf->dir)) {
		snprintf(why, len, "mkdtemp: %s", strerror(errno));
		return KSFT_FAIL;
	}
	chmod(nf->dir, 0755);
	nf->nats_port = nf_free_port();
	snprintf(nf->url, sizeof nf->url, "nats://127.0.0.1:%d", nf->nats_port);
	char conf[8192], path[PATH_MAX];
	int n = snprintf(conf, sizeof conf, "authorization {\n  users = [\n");
	for (int i = 0; i < 4; i++) {
		const char *x = nf_name(i);
		n += snprintf(conf + n, sizeof conf - n,
			      "    {user: %s, password: pw-%s-%d, permissions: {\n"
			      "      publish: {allow: [\"kipc.*.req.%s\", \"kipc.*.rsp.%s\"]}\n"
			      "      subscribe: {allow: [\"kipc.%s.>\"]}}}\n",
			      x, x, nf->nats_port, x, x, x);
		char creds[128];
		snprintf(creds, sizeof creds, "%s pw-%s-%d\n", x, x, nf->nats_port);
		snprintf(path, sizeof path, "%s/%s.creds", nf->dir, x);
		if (nf_write(path, 0600, creds) < 0)
			return KSFT_FAIL;
	}
	/* For net_bench's plain NATS rows: subjects of its own. */
	n += snprintf(conf + n, sizeof conf - n,
		      "    {user: bench, password: pw-bench-%d, permissions: {\n"
		      "      publish: {allow: [\"bench.>\", \"_INBOX.>\"]}\n"
		      "      subscribe: {allow: [\"bench.>\", \"_INBOX.>\"]}}}\n",
		      nf->nats_port);
	snprintf(conf + n, sizeof conf - n, "  ]\n}\n");
	snprintf(path, sizeof path, "%s/auth.conf", nf->dir);
	if (nf_write(path, 0644, conf) < 0)
		return KSFT_FAIL;
	snprintf(conf, sizeof conf, "listen: 127.0.0.1:%d\ninclude auth.conf\n", nf->nats_port);
	snprintf(path, sizeof path, "%s/nats.conf", nf->dir);
	if (nf_write(path, 0644, conf) < 0)
		return KSFT_FAIL;
	/* The three-server cluster's configurations (started by a test). */
	int route[3];
	for (int i = 0; i < 3; i++) {
		nf->cport[i] = nf_free_port();
		route[i] = nf_free_port();
	}
	for (int i = 0; i < 3; i++) {
		snprintf(conf, sizeof conf,
			 "listen: 127.0.0.1:%d\nserver_name: s%d\ninclude auth.conf\n"
			 "cluster {\n  name: kipc\n  listen: 127.0.0.1:%d\n"
			 "  routes: [nats-route://127.0.0.1:%d, nats-route://127.0.0.1:%d]\n}\n",
			 nf->cport[i], i, route[i], route[(i + 1) % 3], route[(i + 2) % 3]);
		snprintf(path, sizeof path, "%s/s%d.conf", nf->dir, i);
		if (nf_write(path, 0644, conf) < 0)
			return KSFT_FAIL;
	}
	int r = nf_start_nats(why, len);
	if (r != KSFT_PASS)
		return r;
	/* Node c declares uid 0 shared (remote root is root there); a and b
	 * keep the default: remote callers are uid 65534. All three share
	 * uids 2000-2999, the cluster's users in the tests of direct sends
	 * back (a direct send needs the target's uid). */
	for (int i = 0; i < 3; i++)
		if ((r = nf_boot_node(i, i == 2 ? "net_shared_uids=0,2000-2999"
						: "net_shared_uids=2000-2999", why, len)) != KSFT_PASS)
			return r;
	/* kt_reg for the tests' own kernels (runner cleanup after each). */
	void *reg = mmap(NULL, sizeof *kt_reg, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (reg != MAP_FAILED)
		kt_reg = (struct kt_reg *)reg;
	kt_kernel_use(&nf->node[0]);
	return KSFT_PASS;
}

static inline int __nf_teardown(char *why, size_t len)
{
	int r = KSFT_PASS;
	for (int i = 0; i < 6; i++) {
		struct kt_kernel *k = &nf->node[i];
		if (k->pid <= 0)
			continue;
		if (kill(k->pid, 0) < 0 && r == KSFT_PASS) {
			snprintf(why, len, "node %s had died", nf_name(i));
			r = KSFT_FAIL;
		}
		pid_t pid = k->pid;
		int st = kt_kernel_stop(k, SIGTERM);
		nf_untrack(pid);
		if ((st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) && r == KSFT_PASS) {
			snprintf(why, len, "node %s did not exit cleanly (status 0x%x)",
				 nf_name(i), st);
			r = KSFT_FAIL;
		}
		if (r != KSFT_PASS || getenv("KIPC_TEST_SHOW_LOG"))
			kt_kernel_dump_log(k);
		kt_rm_dir(k->dir);
	}
	nf_stop_pid(nf->nats, SIGTERM);
	nf_stop_pid(nf->small_nats, SIGTERM);
	for (int i = 0; i < 3; i++)
		nf_stop_pid(nf->cnats[i], SIGTERM);
	nf_netns_cleanup();
	kt_rm_dir(nf->dir);
	return r;
}

/* After each test, in the runner: its kernels, its namespaces. */
static inline void __nf_after_each(void)
{
	__kt_after_each();
	nf_netns_cleanup();
}

#define NET_TEST_MAIN                                                          \
	TEST_HARNESS_MAIN_HOOKS(__nf_setup, __nf_teardown, "nodes_exit_clean", \
				.after_each = __nf_after_each)

/* ---- what the tests' processes share and do ---------------------- */

/* A zeroed mapping a test shares with its children, NULL if none. */
static inline void *nf_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p; /* anonymous: zeroed */
}

/* Create the mailbox name here (exclusive), capacity cap, mode. */
static inline int64_t nf_mbox_create(const char *name, uint32_t cap, uint32_t mode)
{
	struct kipc_mbox_attr a = kt_attr(cap);
	a.mode = mode;
	return kipc_mbox_open(name, KIPC_O_CREAT | KIPC_O_EXCL, &a);
}

/* Open node's mailbox name from here ("/net/NODE/name"), or say why not. */
static inline int64_t nf_remote(const char *node, const char *name)
{
	char n[128];
	snprintf(n, sizeof n, "/net/%s%s", node, name);
	int64_t id = kipc_mbox_open(n, 0, NULL);
	if (id < 0)
		ksft_print("# open %s: %s\n", n, strerror(errno));
	return id;
}

/* A NATS connection to url (NULL: the fixture's server) as the
 * fixture's user (its password: pw-USER-PORT), without reconnects. */
static inline natsConnection *nf_nats_as(const char *url, const char *user)
{
	char pw[64];
	snprintf(pw, sizeof pw, "pw-%s-%d", user, nf->nats_port);
	natsOptions *o;
	natsConnection *nc = NULL;
	if (natsOptions_Create(&o) != NATS_OK)
		return NULL;
	natsOptions_SetURL(o, url ? url : nf->url);
	natsOptions_SetUserInfo(o, user, pw);
	natsOptions_SetAllowReconnect(o, false);
	if (natsConnection_Connect(&nc, o) != NATS_OK)
		nc = NULL;
	natsOptions_Destroy(o);
	return nc;
}

/* The path of a program of this build, rel to the build directory
 * ("bin/kipcs", "samples/net_chat"): the tests run from build/tests/net. */
static inline void nf_built(const char *rel, char *path, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(path, len, "%s/../../%s", exe, rel);
}

/*
 * Run program rel (nf_built) with args in a child on node i's kernel, as
 * uid (0: as we are), with pipes for what is asked: *in its stdin (the
 * write end), *out its stdout, *err its stderr (read ends; err == out:
 * both on one pipe). Its pid, or -1.
 */
static inline pid_t nf_spawn(int i, const char *rel, const char *const args[], uid_t uid,
			     int *in, int *out, int *err)
{
	char path[PATH_MAX + 32];
	nf_built(rel, path, sizeof path);
	int pi[2] = {-1, -1}, po[2] = {-1, -1}, pe[2] = {-1, -1};
	if ((in && pipe2(pi, O_CLOEXEC) < 0) || (out && pipe2(po, O_CLOEXEC) < 0) ||
	    (err && err != out && pipe2(pe, O_CLOEXEC) < 0))
		return -1;
	pid_t p = fork();
	if (p == 0) {
		if (uid && (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0))
			_exit(126);
		kt_kernel_use(&nf->node[i]);
		if (in)
			dup2(pi[0], 0);
		if (out)
			dup2(po[1], 1);
		if (err)
			dup2(err == out ? po[1] : pe[1], 2);
		execv(path, (char *const *)args);
		_exit(127);
	}
	int ends[] = {pi[0], po[1], pe[1]};
	for (int k = 0; k < 3; k++)
		if (ends[k] >= 0)
			close(ends[k]);
	if (in)
		*in = pi[1];
	if (err && err != out)
		*err = pe[0];
	if (out)
		*out = po[0]; /* (and *err, when it is out) */
	return p;
}

/* Read fd to its end into out (NUL-terminated), then close it. */
static inline size_t nf_read_all(int fd, char *out, size_t len)
{
	size_t got = 0;
	ssize_t n;
	while (got + 1 < len && (n = read(fd, out + got, len - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(fd);
	return got;
}

/* Full netcheck only (make check runs the quick ones). */
#define NF_SLOW()                                                              \
	do {                                                                   \
		if (getenv("KIPC_NET_QUICK"))                                  \
			SKIP(return, "slow: make netcheck runs it");           \
	} while (0)

#endif /* _KIPC_NET_FIXTURE_H */
