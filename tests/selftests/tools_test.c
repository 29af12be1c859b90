// SPDX-License-Identifier: MIT
/*
 * tools_test: the inspection tools against a real kernel. Runs
 * build/bin/kipcs, kipcrm and kipc-trace and build/samples/producer_consumer
 * as separate processes and checks what they print: the JSON of kipcs
 * (parsed by python3's json module when python3 is installed), a trace of
 * the producer-consumer sample (its sends, blocks and deliveries, in
 * order), the Chrome and Mermaid formats, and each tool's one-line errors;
 * and kipc-trace -- PROGRAM on this binary run as a tracee (KT_TRACEE):
 * its exact call lines, <unfinished ...>/<... resumed> for a blocked
 * receive, the -c table, failures drawn as failures, and POSIX and
 * System V programs under kipc-run shown as mq_send, msgsnd, ...
 */
#include <ctype.h>
#include <mqueue.h>
#include <signal.h>
#include <sys/msg.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "kipc_test.h"
#include <generated/version.h>

#include <kipc/mqueue.h>

/* ---- tracees: this binary, run under kipc-trace with KT_TRACEE set --- */

/* Native: one of each outcome, in a fixed order (the exact lines are checked). */
static int tracee_native(void)
{
	struct kipc_mbox_attr a = {.capacity = 1};
	char buf[64];
	int64_t box = kipc_mbox_open("/kt-trace", KIPC_O_CREAT, &a);
	if (box < 0)
		return 10;
	if (kipc_mbox_send(box, "hi", 2, 0, 0) != 0)
		return 11;
	if (kipc_mbox_send(box, "no", 2, 0, KIPC_F_NONBLOCK) != -1 || errno != EAGAIN)
		return 12;
	if (kipc_mbox_peek(box, buf, sizeof buf, NULL, 0) != 2)
		return 16;
	if (kipc_mbox_receive(box, buf, sizeof buf, NULL, 0) != 2)
		return 13;
	/* nothing comes: it blocks, then times out */
	if (kipc_mbox_receive_timed(box, buf, sizeof buf, NULL, 0, 50000000) != -1 ||
	    errno != ETIMEDOUT)
		return 14;
	/* a timed bundle of two: the first fits, the second waits, 20 ms */
	struct kipc_bundle_desc *d = kipc_buf_alloc(2 * sizeof *d);
	char *data = kipc_buf_alloc(4);
	struct kipc_sqe *sqe = d && data ? kipc_get_sqe() : NULL;
	if (!sqe)
		return 17;
	memcpy(data, "b1b2", 4);
	d[0] = (struct kipc_bundle_desc){kipc_buf_offset(data), 2, 0};
	d[1] = (struct kipc_bundle_desc){kipc_buf_offset(data + 2), 2, 0};
	kipc_prep_mbox_send_bundle(sqe, box, d, 2, 0, 0);
	kipc_sqe_set_timeout(sqe, 20000000, 0);
	struct kipc_cqe *cqe;
	if (kipc_submit() != 1 || kipc_wait_cqe(&cqe) < 0 || cqe->res != 1)
		return 18;
	kipc_cqe_seen(cqe);
	/* the same two to its own task queue, both go (left there at exit) */
	if (!(sqe = kipc_get_sqe()))
		return 19;
	kipc_prep_send_bundle(sqe, getpid(), d, 2, 0, KIPC_F_NONBLOCK);
	if (kipc_submit() != 1 || kipc_wait_cqe(&cqe) < 0 || cqe->res != 2)
		return 19;
	kipc_cqe_seen(cqe);
	if (kipc_mbox_destroy(box) != 0)
		return 15;
	return 0;
}

/* POSIX, under kipc-run: its calls are mq_open, mq_send, ... */
static int tracee_posix(void)
{
	struct mq_attr a = {.mq_maxmsg = 2, .mq_msgsize = 16};
	char buf[16];
	unsigned prio;
	mqd_t q = mq_open("/kt-trace-mq", O_RDWR | O_CREAT, 0600, &a);
	if (q == (mqd_t)-1)
		return 20;
	if (mq_send(q, "hi", 2, 1) != 0)
		return 21;
	if (mq_receive(q, buf, sizeof buf, &prio) != 2)
		return 22;
	mq_close(q);
	if (mq_unlink("/kt-trace-mq") != 0)
		return 23;
	return 0;
}

/* System V, under kipc-run: msgget, msgsnd, msgrcv, msgctl */
static int tracee_sysv(void)
{
	struct {
		long mtype;
		char mtext[8];
	} m = {3, "hi"}, r;
	int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (id < 0)
		return 30;
	if (msgsnd(id, &m, 2, 0) != 0)
		return 31;
	if (msgrcv(id, &r, sizeof r.mtext, 3, 0) != 2)
		return 32;
	if (msgrcv(id, &r, sizeof r.mtext, 0, IPC_NOWAIT) != -1 || errno != ENOMSG)
		return 33;
	if (msgctl(id, IPC_RMID, NULL) != 0)
		return 34;
	return 0;
}

/* Before the harness (and before make_tmpdir): a tracee runs and exits. */
__attribute__((constructor(101))) static void run_tracee(void)
{
	const char *t = getenv("KT_TRACEE");
	if (!t)
		return;
	_exit(!strcmp(t, "native")  ? tracee_native()
	      : !strcmp(t, "posix") ? tracee_posix()
	      : !strcmp(t, "sysv")  ? tracee_sysv()
				    : 99);
}

/* ---- running programs ---------------------------------------------- */

#define KT_PATH 1024
static char bindir[KT_PATH + 32], sampledir[KT_PATH + 32], tmpdir[KT_PATH];

static void find_dirs(void)
{
	char exe[KT_PATH];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(bindir, sizeof bindir, "%s/../../bin", exe);
	snprintf(sampledir, sizeof sampledir, "%s/../../samples", exe);
}

/* Every tool and the sample, built (`make all`; `make check` does)? */
static bool tools_built(void)
{
	const char *tools[] = {"kipcs", "kipcrm", "kipc-trace"};
	char p[2 * KT_PATH];
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s/%s", bindir, tools[i]);
		if (access(p, X_OK))
			return false;
	}
	snprintf(p, sizeof p, "%s/producer_consumer", sampledir);
	return access(p, X_OK) == 0;
}

#define NEED_TOOLS()                                                             \
	do {                                                                     \
		find_dirs();                                                     \
		if (!tools_built())                                              \
			SKIP(return, "tools or samples not built (make all)");   \
	} while (0)

/* One scratch directory for the whole run, made before the tests fork. */
static pid_t tmp_owner;

__attribute__((constructor)) static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "%s/kt-tools.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir))
		snprintf(tmpdir, sizeof tmpdir, "/tmp");
	tmp_owner = getpid();
}

__attribute__((destructor)) static void remove_tmpdir(void)
{
	char cmd[KT_PATH + 16];
	if (getpid() != tmp_owner || !strcmp(tmpdir, "/tmp"))
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		return;
}

/* fork and exec argv (relative to bindir unless it has a '/'), stdout and
 * stderr to files (NULL: /dev/null); sock: a KIPC_SOCKET override. */
static pid_t spawn(const char *const argv[], const char *out, const char *err,
		   const char *sock)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int o = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int e = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(o, 1);
	dup2(e, 2);
	if (sock)
		setenv("KIPC_SOCKET", sock, 1);
	char path[2 * KT_PATH];
	if (strchr(argv[0], '/'))
		snprintf(path, sizeof path, "%s", argv[0]);
	else
		snprintf(path, sizeof path, "%s/%s", bindir, argv[0]);
	execv(path, (char *const *)argv);
	_exit(127);
}

static int run(const char *const argv[], const char *out, const char *err, const char *sock)
{
	pid_t pid = spawn(argv, out, err, sock);
	int status;
	for (int i = 0; i < KT_BOUND_MS / 5; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		kt_sleep_ms(5);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static int wait_status(pid_t pid)
{
	int status;
	for (int i = 0; i < KT_BOUND_MS / 5; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		kt_sleep_ms(5);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* The whole file, NUL-terminated (static buffer: one at a time). */
static char *slurp(const char *path)
{
	static char buf[1 << 20];
	buf[0] = '\0';
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return buf;
	ssize_t n, len = 0;
	while ((n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
		len += n;
	buf[len] = '\0';
	close(fd);
	return buf;
}

static const char *tmp(const char *name)
{
	static char paths[8][2 * KT_PATH];
	static int next;
	char *p = paths[next++ % 8];
	snprintf(p, 2 * KT_PATH, "%s/%s", tmpdir, name);
	return p;
}

static bool have_python(void)
{
	return system("python3 -c 'import json' >/dev/null 2>&1") == 0;
}

/* python3 -c SCRIPT FILE ARG: 0 when the script's assertions hold. */
static int py_check(const char *script, const char *file, const char *arg)
{
	const char *argv[] = {"/usr/bin/env", "python3", "-c", script, file, arg, NULL};
	return run(argv, NULL, tmp("py.err"), NULL);
}

/* Wait (bounded) until file contains s. */
static bool wait_for_text(const char *file, const char *s)
{
	for (int i = 0; i < KT_BOUND_MS / 10; i++) {
		if (strstr(slurp(file), s))
			return true;
		kt_sleep_ms(10);
	}
	return false;
}

/* ---- errors ---------------------------------------------------------- */

TEST(no_kernel_one_line_errors)
{
	NEED_TOOLS();
	char sock[2 * KT_PATH], want[3 * KT_PATH];
	snprintf(sock, sizeof sock, "%s/nobody-here/kipcd.sock", tmpdir);
	const char *kipcs[] = {"kipcs", NULL};
	const char *kipcrm[] = {"kipcrm", "-a", NULL};
	const char *trace[] = {"kipc-trace", NULL};
	const char *const *cmds[] = {kipcs, kipcrm, trace};
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(1, run(cmds[i], tmp("out"), tmp("err"), sock));
		snprintf(want, sizeof want, "%s: no kernel running at %s\n", cmds[i][0], sock);
		EXPECT_STREQ(want, slurp(tmp("err")));
	}
	/* and none was started */
	EXPECT_FALSE(kt_socket_accepts(sock));
}

TEST(kipcs_errors)
{
	NEED_TOOLS();
	const char *nope[] = {"kipcs", "-m", "/kt-no-such-mailbox", NULL};
	EXPECT_EQ(1, run(nope, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipcs: no such mailbox: /kt-no-such-mailbox\n", slurp(tmp("err")));
	const char *noid[] = {"kipcs", "-m", "999999", NULL};
	EXPECT_EQ(1, run(noid, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipcs: no such mailbox: 999999\n", slurp(tmp("err")));
	const char *bad[] = {"kipcs", "-m", "abc", NULL};
	EXPECT_EQ(2, run(bad, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipcs: invalid mailbox 'abc': give an id or a /name\n"
		     "Try 'kipcs --help' for more information.\n", slurp(tmp("err")));
	const char *two[] = {"kipcs", "-t", "-l", NULL};
	EXPECT_EQ(2, run(two, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipcs: choose one of -t, -m, -l, -u\n"
		     "Try 'kipcs --help' for more information.\n", slurp(tmp("err")));
	/* -w 1 and --watch 1 take the interval (then the two views clash) */
	const char *w1[] = {"kipcs", "-w", "1", "-t", "-l", NULL};
	EXPECT_EQ(2, run(w1, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipcs: choose one of -t, -m, -l, -u\n"
		     "Try 'kipcs --help' for more information.\n", slurp(tmp("err")));
	const char *w2[] = {"kipcs", "--watch", "0.5", "-t", "-u", NULL};
	EXPECT_EQ(2, run(w2, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipcs: choose one of -t, -m, -l, -u\n"
		     "Try 'kipcs --help' for more information.\n", slurp(tmp("err")));
	const char *w0[] = {"kipcs", "-w", "0", NULL};
	EXPECT_EQ(2, run(w0, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipcs: invalid --watch interval '0' (0.1 to 86400 seconds)\n"
		     "Try 'kipcs --help' for more information.\n", slurp(tmp("err")));
	/* a removed mailbox: the same words as kipcrm */
	int64_t gone = kipc_mbox_open(NULL, 0, NULL);
	ASSERT_GT(gone, 0);
	ASSERT_EQ(0, kipc_mbox_destroy(gone));
	char id[32], want[128];
	snprintf(id, sizeof id, "%lld", (long long)gone);
	const char *rm[] = {"kipcs", "-m", id, NULL};
	EXPECT_EQ(1, run(rm, tmp("out"), tmp("err"), NULL));
	snprintf(want, sizeof want, "kipcs: mailbox %s: already removed\n", id);
	EXPECT_STREQ(want, slurp(tmp("err")));
}

/* Every tool but kipc-trace: --help (stdout, 0), --version, and a usage
 * error is one line plus a hint, exit 2. */
TEST(tools_command_line_conventions)
{
	NEED_TOOLS();
	static const char *const tools[] = {"kipcs", "kipcrm", "kipc-run", "kipc-stress",
					    "kipc-bench", "kipcd"};
	char want[128];
	for (unsigned i = 0; i < sizeof tools / sizeof tools[0]; i++) {
		const char *help[] = {tools[i], "--help", NULL};
		EXPECT_EQ(0, run(help, tmp("out"), tmp("err"), NULL)) TH_LOG("%s", tools[i]);
		EXPECT_NE(NULL, strstr(slurp(tmp("out")), "usage: ")) TH_LOG("%s", tools[i]);
		const char *ver[] = {tools[i], "--version", NULL};
		EXPECT_EQ(0, run(ver, tmp("out"), tmp("err"), NULL)) TH_LOG("%s", tools[i]);
		EXPECT_NE(NULL, strstr(slurp(tmp("out")), KIPC_VERSION)) TH_LOG("%s", tools[i]);
		const char *bad[] = {tools[i], "--no-such-option", NULL};
		EXPECT_EQ(2, run(bad, tmp("out"), tmp("err"), NULL)) TH_LOG("%s", tools[i]);
		snprintf(want, sizeof want,
			 "%s: unrecognized option '--no-such-option'\n"
			 "Try '%s --help' for more information.\n", tools[i], tools[i]);
		EXPECT_STREQ(want, slurp(tmp("err"))) TH_LOG("%s", tools[i]);
	}
	const char *none[] = {"kipcrm", NULL};
	EXPECT_EQ(2, run(none, tmp("out"), tmp("err"), NULL));
	const char *norun[] = {"kipc-run", NULL};
	EXPECT_EQ(2, run(norun, tmp("out"), tmp("err"), NULL));
}

#define TRACE_HINT "Try 'kipc-trace --help' for more information.\n"

TEST(kipc_trace_errors)
{
	NEED_TOOLS();
	const char *fmt_[] = {"kipc-trace", "--format=svg", NULL};
	EXPECT_EQ(2, run(fmt_, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipc-trace: unknown format 'svg' (text, chrome, mermaid)\n" TRACE_HINT,
		     slurp(tmp("err")));
	const char *ev[] = {"kipc-trace", "--event", "send,bogus", NULL};
	EXPECT_EQ(2, run(ev, tmp("out"), tmp("err"), NULL));
	EXPECT_NE(NULL, strstr(slurp(tmp("err")), "kipc-trace: unknown event 'bogus'"));
	const char *opt[] = {"kipc-trace", "--bogus", NULL};
	EXPECT_EQ(2, run(opt, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipc-trace: unknown option '--bogus'\n" TRACE_HINT, slurp(tmp("err")));
	const char *noarg[] = {"kipc-trace", "-p", NULL};
	EXPECT_EQ(2, run(noarg, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipc-trace: option '-p' needs an argument\n" TRACE_HINT, slurp(tmp("err")));
	const char *stray[] = {"kipc-trace", "ls", NULL};
	EXPECT_EQ(2, run(stray, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipc-trace: unexpected argument 'ls' (a program goes after --)\n" TRACE_HINT,
		     slurp(tmp("err")));
	const char *multi[] = {"kipc-trace", "-S", "/x", "-S", "/y", "-p", "1", NULL};
	EXPECT_EQ(2, run(multi, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipc-trace: several --socket trace every kernel's tracepoints "
		     "(not with -p, -m or -- PROGRAM)\n" TRACE_HINT, slurp(tmp("err")));
	/* one of several kernels missing: its reader says so, exit 1 */
	const char *gone[] = {"kipc-trace", "-S", "/nonexistent/kt-a", "-S", "/nonexistent/kt-b",
			      "-d", "5", NULL};
	EXPECT_EQ(1, run(gone, tmp("out"), tmp("err"), NULL));
	EXPECT_NE(NULL, strstr(slurp(tmp("err")), "kipc-trace: no kernel running at /nonexistent/kt-"));
	const char *help[] = {"kipc-trace", "--help", NULL};
	EXPECT_EQ(0, run(help, tmp("out"), tmp("err"), NULL));
	EXPECT_EQ(0, strncmp(slurp(tmp("out")), "usage: kipc-trace", 17));
	const char *ver[] = {"kipc-trace", "--version", NULL};
	EXPECT_EQ(0, run(ver, tmp("out"), tmp("err"), NULL));
	EXPECT_EQ(0, strncmp(slurp(tmp("out")), "kipc-trace ", 11));
	const char *mb[] = {"kipc-trace", "--mbox", "/kt-no-such-mailbox", NULL};
	EXPECT_EQ(1, run(mb, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipc-trace: no such mailbox: /kt-no-such-mailbox\n", slurp(tmp("err")));
	const char *mbid[] = {"kipc-trace", "-m", "12345", NULL};
	EXPECT_EQ(1, run(mbid, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipc-trace: no such mailbox: 12345\n", slurp(tmp("err")));
	const char *nopid[] = {"kipc-trace", "-p", "999999", NULL};
	EXPECT_EQ(1, run(nopid, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipc-trace: no such process: 999999\n", slurp(tmp("err")));
	const char *noexe[] = {"kipc-trace", "--", "/kt-no-such-program", NULL};
	EXPECT_EQ(127, run(noexe, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipc-trace: cannot run /kt-no-such-program: No such file or directory\n",
		     slurp(tmp("err")));
}

/* ---- kipcs ----------------------------------------------------------- */

static const char *py_json_mbox =
	"import json,sys\n"
	"d=json.load(open(sys.argv[1]))\n"
	"assert d['schema']=='kipcs/1', d\n"
	"m=[m for m in d['mailboxes'] if m['name']==sys.argv[2]]\n"
	"assert len(m)==1, d\n"
	"m=m[0]\n"
	"assert m['messages']==2 and m['bytes']==11 and m['capacity']==4, m\n"
	"assert m['kind']=='process' and m['policy']=='any' and m['mode']=='0640', m\n"
	"assert isinstance(d['tasks'], list) and all('pid' in t for t in d['tasks'])\n";

static const char *py_json_detail =
	"import json,sys\n"
	"d=json.load(open(sys.argv[1]))['mailbox']\n"
	"assert d['name']==sys.argv[2], d\n"
	"assert [q['len'] for q in d['queued']]==[5,6], d\n"
	"assert d['waiters'][0]['kind']=='holder' and d['waiters'][0]['owner'], d\n";

static const char *py_json_any =
	"import json,sys\n"
	"d=json.load(open(sys.argv[1]))\n"
	"assert sys.argv[2] in d, d\n";

TEST(kipcs_json_and_text)
{
	NEED_TOOLS();
	char name[64];
	kt_name(name, sizeof name, "json");
	struct kipc_mbox_attr a = kt_attr(4);
	a.mode = 0640;
	int64_t id = kipc_mbox_open(name, KIPC_O_CREAT, &a);
	ASSERT_GT(id, 0);
	ASSERT_EQ(0, kipc_mbox_send(id, "hello", 5, 0, 0));
	ASSERT_EQ(0, kipc_mbox_send(id, "world!", 6, 0, 0));

	const char *table[] = {"kipcs", NULL};
	ASSERT_EQ(0, run(table, tmp("out"), tmp("err"), NULL));
	EXPECT_NE(NULL, strstr(slurp(tmp("out")), name));
	EXPECT_NE(NULL, strstr(slurp(tmp("out")), "------ Mailboxes"));
	const char *detail[] = {"kipcs", "-m", name, NULL};
	ASSERT_EQ(0, run(detail, tmp("out"), tmp("err"), NULL));
	EXPECT_NE(NULL, strstr(slurp(tmp("out")), "queued      : 2 messages, 11 bytes"));
	for (const char *v = "tlu"; *v; v++) {
		char opt[3] = {'-', *v, 0};
		const char *argv[] = {"kipcs", opt, NULL};
		EXPECT_EQ(0, run(argv, tmp("out"), tmp("err"), NULL));
		EXPECT_STREQ("", slurp(tmp("err")));
	}

	if (!have_python()) {
		printf("# python3 missing: JSON not parsed\n");
		return;
	}
	const char *js[] = {"kipcs", "--json", NULL};
	ASSERT_EQ(0, run(js, tmp("json"), tmp("err"), NULL));
	EXPECT_EQ(0, py_check(py_json_mbox, tmp("json"), name)) {
		fprintf(stderr, "%s", slurp(tmp("py.err")));
	}
	const char *jd[] = {"kipcs", "--json", "-m", name, NULL};
	ASSERT_EQ(0, run(jd, tmp("json"), tmp("err"), NULL));
	EXPECT_EQ(0, py_check(py_json_detail, tmp("json"), name)) {
		fprintf(stderr, "%s", slurp(tmp("py.err")));
	}
	const char *views[][2] = {{"-t", "tasks"}, {"-l", "limits"}, {"-u", "usage"}};
	for (int i = 0; i < 3; i++) {
		const char *argv[] = {"kipcs", "-j", views[i][0], NULL};
		ASSERT_EQ(0, run(argv, tmp("json"), tmp("err"), NULL));
		EXPECT_EQ(0, py_check(py_json_any, tmp("json"), views[i][1]));
	}
	kipc_mbox_destroy(id);
}

TEST(kipcs_watch_redraws_until_sigint)
{
	NEED_TOOLS();
	const char *argv[] = {"kipcs", "--watch=0.1", NULL};
	pid_t pid = spawn(argv, tmp("watch"), tmp("err"), NULL);
	ASSERT_TRUE(wait_for_text(tmp("watch"), "------ Task queues"));
	/* a second screen (the first redraw), however slow the machine */
	int n = 0;
	for (int i = 0; i < KT_BOUND_MS / 10 && n < 2; i++) {
		n = 0;
		for (const char *p = slurp(tmp("watch")); (p = strstr(p, "Every 0.1s")); p++)
			n++;
		if (n < 2)
			kt_sleep_ms(10);
	}
	kill(pid, SIGINT);
	EXPECT_EQ(0, wait_status(pid));
	EXPECT_GE(n, 2);
}

/* ---- kipcrm ---------------------------------------------------------- */

TEST(kipcrm_by_name_id_and_all)
{
	NEED_TOOLS();
	char name[64], idstr[32];
	kt_name(name, sizeof name, "rm");
	int64_t id = kipc_mbox_open(name, KIPC_O_CREAT, NULL);
	ASSERT_GT(id, 0);
	const char *byname[] = {"kipcrm", "-Q", name, NULL};
	EXPECT_EQ(0, run(byname, tmp("out"), tmp("err"), NULL));
	struct kipc_mbox_stat st;
	EXPECT_EQ(-1, kipc_mbox_stat(id, &st));
	EXPECT_EQ(EIDRM, errno);
	char want[128];
	EXPECT_EQ(1, run(byname, tmp("out"), tmp("err"), NULL));
	snprintf(want, sizeof want, "kipcrm: no such mailbox: %s\n", name);
	EXPECT_STREQ(want, slurp(tmp("err")));
	snprintf(idstr, sizeof idstr, "%lld", (long long)id);
	const char *byid[] = {"kipcrm", "-q", idstr, NULL};
	EXPECT_EQ(1, run(byid, tmp("out"), tmp("err"), NULL));
	snprintf(want, sizeof want, "kipcrm: mailbox %s: already removed\n", idstr);
	EXPECT_STREQ(want, slurp(tmp("err")));
	const char *bad[] = {"kipcrm", "-q", "999999", NULL};
	EXPECT_EQ(1, run(bad, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("kipcrm: no such mailbox: 999999\n", slurp(tmp("err")));

	int64_t a = kipc_mbox_open(NULL, 0, NULL), b = kipc_mbox_open(NULL, 0, NULL);
	ASSERT_GT(a, 0);
	ASSERT_GT(b, 0);
	const char *all[] = {"kipcrm", "-a", NULL};
	EXPECT_EQ(0, run(all, tmp("out"), tmp("err"), NULL));
	EXPECT_EQ(-1, kipc_mbox_stat(a, &st));
	EXPECT_EQ(-1, kipc_mbox_stat(b, &st));
}

/* kipcrm removes POSIX queues (by name, -Q, and -a) and System V queues
 * (by id and -a) with their own calls (mq_unlink, IPC_RMID). */
TEST(kipcrm_posix_and_sysv_queues)
{
	NEED_TOOLS();
	char n1[64], n2[64], idstr[32];
	struct kipc_mq_open o = {.oflag = KIPC_MQ_RDWR | KIPC_O_CREAT, .mode = 0600};
	struct kipc_mq_open look = {.oflag = KIPC_MQ_RDWR};
	struct kipc_msqid_ds ds;
	kt_name(n1, sizeof n1, "rmq1");
	kt_name(n2, sizeof n2, "rmq2");
	ASSERT_LT(0, kipc_mq_open(n1, &o));
	ASSERT_LT(0, kipc_mq_open(n2, &o));
	int s1 = kipc_msgget(0, 0600), s2 = kipc_msgget(0, 0600);
	ASSERT_LT(0, s1);
	ASSERT_LT(0, s2);

	const char *byname[] = {"kipcrm", "-Q", n1, NULL};
	EXPECT_EQ(0, run(byname, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("", slurp(tmp("err")));
	EXPECT_EQ(-1, kipc_mq_open(n1, &look));
	EXPECT_EQ(ENOENT, errno);
	snprintf(idstr, sizeof idstr, "%d", s1);
	const char *byid[] = {"kipcrm", "-q", idstr, NULL};
	EXPECT_EQ(0, run(byid, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("", slurp(tmp("err")));
	EXPECT_EQ(-1, kipc_msgctl(s1, KIPC_IPC_STAT, &ds, sizeof ds));
	EXPECT_EQ(EINVAL, errno);

	const char *all[] = {"kipcrm", "-a", NULL};
	EXPECT_EQ(0, run(all, tmp("out"), tmp("err"), NULL));
	EXPECT_STREQ("", slurp(tmp("err")));
	EXPECT_EQ(-1, kipc_mq_open(n2, &look));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, kipc_msgctl(s2, KIPC_IPC_STAT, &ds, sizeof ds));
	EXPECT_EQ(EINVAL, errno);
}

/* ---- kipc-trace ------------------------------------------------------ */

/* Start kipc-trace with extra arguments; wait until it listens. */
static pid_t start_trace(const char *format, const char *out)
{
	const char *argv[] = {"kipc-trace", "-f", format, "-o", out, NULL};
	unlink(tmp("trace.err")); /* not an earlier run's "tracing" line */
	pid_t pid = spawn(argv, NULL, tmp("trace.err"), NULL);
	if (!wait_for_text(tmp("trace.err"), "kipc-trace: tracing")) {
		kill(pid, SIGKILL);
		wait_status(pid);
		return -1;
	}
	return pid;
}

/* Run the producer-consumer sample (its consumer slowed by delay ms); its mailbox id. */
static long run_sample(const char *delay)
{
	char path[2 * KT_PATH];
	snprintf(path, sizeof path, "%s/producer_consumer", sampledir);
	const char *argv[] = {path, delay, NULL};
	if (run(argv, tmp("sample.out"), tmp("sample.err"), NULL) != 0)
		return -1;
	const char *p = strstr(slurp(tmp("sample.out")), "mailbox ");
	return p ? strtol(p + 8, NULL, 10) : -1;
}

TEST(trace_of_producer_consumer)
{
	NEED_TOOLS();
	pid_t tr = start_trace("text", tmp("trace.txt"));
	ASSERT_GT(tr, 0);
	long box = run_sample("20");
	ASSERT_GT(box, 0);
	kill(tr, SIGINT);
	ASSERT_EQ(0, wait_status(tr));

	/* the sample sends 13 messages (12 items and "done") through box */
	char link[32];
	snprintf(link, sizeof link, "mbox=%ld ", box);
	unsigned long sends[64], delivers[64];
	int nsend = 0, ndeliver = 0, nblock = 0, line = 0;
	int send_line[64], deliver_line[64];
	char *text = strdup(slurp(tmp("trace.txt")));
	for (char *save, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		line++;
		char *ev = strstr(l, ": ");
		const char *seq = strstr(l, "seq=");
		if (!ev || !strstr(l, link))
			continue;
		ev += 2;
		if (!strncmp(ev, "send:", 5) && seq && nsend < 64) {
			send_line[nsend] = line;
			sends[nsend++] = strtoul(seq + 4, NULL, 10);
		} else if (!strncmp(ev, "deliver:", 8) && seq && ndeliver < 64) {
			deliver_line[ndeliver] = line;
			delivers[ndeliver++] = strtoul(seq + 4, NULL, 10);
		} else if (!strncmp(ev, "block:", 6) && strstr(l, "in mbox_send")) {
			nblock++;
		}
	}
	free(text);
	EXPECT_EQ(13, nsend);
	EXPECT_EQ(13, ndeliver);
	EXPECT_GE(nblock, 1); /* the slow consumer fills the 4 slots */
	for (int i = 0; i < nsend && i < ndeliver; i++) {
		EXPECT_EQ(sends[i], delivers[i]); /* FIFO: delivered in the order sent */
		EXPECT_LT(send_line[i], deliver_line[i]);
		if (i)
			EXPECT_LT(sends[i - 1], sends[i]);
	}
	EXPECT_NE(NULL, strstr(slurp(tmp("trace.txt")), "attach:"));
	EXPECT_NE(NULL, strstr(slurp(tmp("trace.txt")), "destroy: mbox="));
}

/* kipcs attaches, looks and exits: hidden unless --all */
TEST(trace_hides_the_tools_own_tasks)
{
	NEED_TOOLS();
	for (int all = 0; all < 2; all++) {
		const char *argv[] = {"kipc-trace", "-o", tmp("tools.txt"), all ? "--all" : NULL, NULL};
		unlink(tmp("tools.err")); /* not the last run's "tracing" line */
		pid_t tr = spawn(argv, NULL, tmp("tools.err"), NULL);
		ASSERT_TRUE(wait_for_text(tmp("tools.err"), "kipc-trace: tracing"));
		const char *kipcs[] = {"kipcs", NULL};
		EXPECT_EQ(0, run(kipcs, tmp("out"), tmp("err"), NULL));
		ASSERT_GT(run_sample("0"), 0);
		kill(tr, SIGINT);
		ASSERT_EQ(0, wait_status(tr));
		const char *t = slurp(tmp("tools.txt"));
		EXPECT_NE(NULL, strstr(t, "producer_consum-")); /* the sample is there */
		if (all)
			EXPECT_NE(NULL, strstr(t, "kipcs-")) {
				fprintf(stderr, "%s", t);
			}
		else
			EXPECT_EQ(NULL, strstr(t, "kipcs-")) {
				fprintf(stderr, "%s", t);
			}
	}
}

static const char *py_chrome =
	"import json,sys\n"
	"d=json.load(open(sys.argv[1]))\n"
	"ev=d['traceEvents']\n"
	"ph=set(e['ph'] for e in ev)\n"
	"assert {'M','i','s','f','B','E'} <= ph, ph\n"
	"assert all(isinstance(e['pid'], int) for e in ev)\n";

TEST(trace_chrome_and_mermaid)
{
	NEED_TOOLS();
	pid_t c = start_trace("chrome", tmp("trace.json"));
	ASSERT_GT(c, 0);
	pid_t m = start_trace("mermaid", tmp("trace.mmd"));
	ASSERT_GT(m, 0);
	long box = run_sample("5");
	ASSERT_GT(box, 0);
	kill(c, SIGINT);
	kill(m, SIGINT);
	ASSERT_EQ(0, wait_status(c));
	ASSERT_EQ(0, wait_status(m));
	const char *mmd = slurp(tmp("trace.mmd"));
	EXPECT_EQ(0, strncmp(mmd, "sequenceDiagram\n", 16));
	char want[64];
	snprintf(want, sizeof want, "participant M%ld as mailbox %ld", box, box);
	EXPECT_NE(NULL, strstr(mmd, want));
	snprintf(want, sizeof want, "->>M%ld: send #", box);
	EXPECT_NE(NULL, strstr(mmd, want));
	snprintf(want, sizeof want, "M%ld-->>T", box);
	EXPECT_NE(NULL, strstr(mmd, want));
	if (have_python())
		EXPECT_EQ(0, py_check(py_chrome, tmp("trace.json"), "")) {
			fprintf(stderr, "%s", slurp(tmp("py.err")));
		}
}

/* ---- kipc-trace -- PROGRAM: strace-style ----------------------------- */

/* "[pid 123] x = 98304 <0.000019>" -> "[pid N] x = ID <T>" (ID: opens only) */
static char *mask_calls(const char *in)
{
	char *out = malloc(strlen(in) + 1), *o = out;
	for (const char *p = in; *p;) {
		if (!strncmp(p, "[pid ", 5)) {
			o += sprintf(o, "[pid N]");
			p = strchr(p, ']') + 1;
		} else if (*p == '<' && isdigit((unsigned char)p[1]) && strchr(p, '>')) {
			o += sprintf(o, "<T>");
			p = strchr(p, '>') + 1;
		} else if (!strncmp(p, ") = ", 4) && isdigit((unsigned char)p[4]) &&
			   strstr(o - (o - out > 40 ? 40 : o - out), "_open(")) {
			o += sprintf(o, ") = ID");
			for (p += 4; isdigit((unsigned char)*p); p++)
				;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}

/* kipc-trace ARGS... -- this binary as a tracee (KT_TRACEE=kind). */
static int trace_tracee(const char *kind, const char *const *args, int nargs, bool kipc_run)
{
	char self[KT_PATH], runner[2 * KT_PATH];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	self[n > 0 ? n : 0] = '\0';
	snprintf(runner, sizeof runner, "%s/kipc-run", bindir);
	const char *argv[16];
	int i = 0;
	argv[i++] = "kipc-trace";
	for (int j = 0; j < nargs; j++)
		argv[i++] = args[j];
	argv[i++] = "--";
	if (kipc_run)
		argv[i++] = runner;
	argv[i++] = self;
	argv[i] = NULL;
	setenv("KT_TRACEE", kind, 1);
	int rc = run(argv, tmp("calls.out"), tmp("calls.err"), NULL);
	unsetenv("KT_TRACEE");
	return rc;
}

TEST(trace_calls_of_a_program)
{
	NEED_TOOLS();
	const char *o[] = {"-o", tmp("calls.txt")};
	ASSERT_EQ(0, trace_tracee("native", o, 2, false)) {
		fprintf(stderr, "%s", slurp(tmp("calls.err")));
	}
	const char *raw = slurp(tmp("calls.txt"));
	int pid = 0;
	ASSERT_EQ(1, sscanf(raw, "[pid %d]", &pid));
	char bundle[96]; /* its send_bundle names its own pid */
	snprintf(bundle, sizeof bundle,
		 "[pid N] send_bundle(pid %d, 2 messages, NONBLOCK) = 2 <T>\n", pid);
	char *got = mask_calls(raw);
	char want[1024];
	snprintf(want, sizeof want, "%s%s%s",
		"[pid N] mbox_open(\"/kt-trace\", O_CREAT, {attr}) = ID <T>\n"
		"[pid N] mbox_send(\"/kt-trace\", 2 bytes) = 0 <T>\n"
		"[pid N] mbox_send(\"/kt-trace\", 2 bytes, NONBLOCK) = -1 EAGAIN "
		"(Resource temporarily unavailable) <T>\n"
		"[pid N] mbox_peek(\"/kt-trace\", 64 bytes) = 2 <T>\n"
		"[pid N] mbox_receive(\"/kt-trace\", 64 bytes) = 2 <T>\n"
		"[pid N] mbox_receive(\"/kt-trace\", 64 bytes, timeout=50ms <unfinished ...>\n"
		"[pid N] <... mbox_receive resumed>) = -1 ETIMEDOUT (Connection timed out) <T>\n"
		"[pid N] mbox_send_bundle(\"/kt-trace\", 2 messages, timeout=20ms <unfinished ...>\n"
		"[pid N] <... mbox_send_bundle resumed>) = 1 <T>\n",
		bundle, "[pid N] mbox_destroy(\"/kt-trace\") = 0 <T>\n");
	EXPECT_STREQ(want, got);
	free(got);
	/* the blocked receive took its 50 ms */
	const char *r = strstr(slurp(tmp("calls.txt")), "resumed>) = -1 ETIMEDOUT");
	ASSERT_NE(NULL, r);
	EXPECT_GE(strtod(strchr(r, '<') + 1, NULL), 0.050);
}

TEST(trace_calls_summary)
{
	NEED_TOOLS();
	const char *o[] = {"-c", "-o", tmp("summary.txt")};
	ASSERT_EQ(0, trace_tracee("native", o, 3, false));
	const char *t = slurp(tmp("summary.txt"));
	const char *head = "% time     seconds  usecs/call     calls    errors syscall\n"
			   "------ ----------- ----------- --------- --------- ----------------\n";
	EXPECT_EQ(0, strncmp(t, head, strlen(head)));
	/* calls and errors per syscall (the time columns vary) */
	const char *want[][3] = {{"2", "1", "mbox_receive"}, {"2", "1", "mbox_send"},
				 {"1", "", "mbox_open"},     {"1", "", "mbox_destroy"},
				 {"1", "", "mbox_peek"},     {"1", "", "mbox_send_bundle"},
				 {"1", "", "send_bundle"},   {"9", "2", "total"}};
	for (int i = 0; i < 8; i++) {
		char line[128];
		snprintf(line, sizeof line, " %9s %9s %s\n", want[i][0], want[i][1], want[i][2]);
		EXPECT_NE(NULL, strstr(t, line)) {
			fprintf(stderr, "no '%s' in\n%s", line, t);
		}
	}
	/* the blocked receive dominates the time */
	const char *first = strchr(strchr(t, '\n') + 1, '\n') + 1;
	EXPECT_NE(NULL, strstr(first, "mbox_receive\n"));
	EXPECT_LT(strstr(first, "mbox_receive\n"), strstr(first, "mbox_send\n"));
}

TEST(trace_calls_of_a_posix_program_under_kipc_run)
{
	NEED_TOOLS();
	const char *o[] = {"-o", tmp("posix.txt")};
	ASSERT_EQ(0, trace_tracee("posix", o, 2, true)) {
		fprintf(stderr, "%s", slurp(tmp("calls.err")));
	}
	char *got = mask_calls(slurp(tmp("posix.txt")));
	/* The library tells the kernel of a close after the real close, and
	 * kipcd may see the open's last descriptor go first and end the open
	 * itself (Documentation/posix.md, "Flush"): then the kernel's
	 * mq_close finds no handle. Both are what happened, and shown so. */
	const char *closed = "[pid N] mq_close(\"/kt-trace-mq\") = 0 <T>\n";
	if (strstr(got, "mq_close(\"/kt-trace-mq\") = -1 EBADF"))
		closed = "[pid N] mq_close(\"/kt-trace-mq\") = -1 EBADF (Bad file descriptor) <T>\n";
	char want[1024];
	snprintf(want, sizeof want,
		 "[pid N] mq_open(\"/kt-trace-mq\", O_RDWR|O_CREAT) = ID <T>\n"
		 "[pid N] mq_getattr(\"/kt-trace-mq\") = 0 <T>\n"
		 "[pid N] mq_send(\"/kt-trace-mq\", 2 bytes, prio=1) = 0 <T>\n"
		 "[pid N] mq_receive(\"/kt-trace-mq\", 16 bytes) = 2 <T>\n"
		 "%s"
		 "[pid N] mq_unlink(\"/kt-trace-mq\") = 0 <T>\n", closed);
	EXPECT_STREQ(want, got);
	free(got);
}

TEST(trace_calls_of_a_sysv_program_under_kipc_run)
{
	NEED_TOOLS();
	const char *o[] = {"-o", tmp("sysv.txt")};
	ASSERT_EQ(0, trace_tracee("sysv", o, 2, true)) {
		fprintf(stderr, "%s", slurp(tmp("calls.err")));
	}
	char *got = mask_calls(slurp(tmp("sysv.txt")));
	/* the kernel's errno: libkipc-posix turns msgrcv's EAGAIN into ENOMSG */
	EXPECT_NE(NULL, strstr(got, "[pid N] msgget(IPC_PRIVATE, IPC_CREAT|0600) = "));
	EXPECT_NE(NULL, strstr(got, " 2 bytes, type=3) = 0 <T>\n"));
	EXPECT_NE(NULL, strstr(got, " 8 bytes, type=3) = 2 <T>\n"));
	EXPECT_NE(NULL, strstr(got, " 8 bytes, type=0, IPC_NOWAIT) = -1 EAGAIN "));
	EXPECT_NE(NULL, strstr(got, ", IPC_RMID) = 0 <T>\n"));
	EXPECT_NE(NULL, strstr(got, "[pid N] msgsnd(")) {
		fprintf(stderr, "%s", got);
	}
	free(got);
}

/* -p PID: a process that attaches after kipc-trace started is traced */
TEST(trace_calls_of_a_pid)
{
	NEED_TOOLS();
	struct kt_barrier go;
	ASSERT_EQ(0, kt_barrier_init(&go));
	pid_t child = fork();
	if (child == 0) {
		if (kt_wait_post(&go, 1) != 0)
			_exit(1);
		_exit(tracee_native());
	}
	char pid[16];
	snprintf(pid, sizeof pid, "%d", child);
	const char *argv[] = {"kipc-trace", "-p", pid, "-o", tmp("pid.txt"), NULL};
	unlink(tmp("pid.err"));
	pid_t tr = spawn(argv, NULL, tmp("pid.err"), NULL);
	ASSERT_TRUE(wait_for_text(tmp("pid.err"), "kipc-trace: tracing pid "));
	/* the child has not attached yet: kipc-trace said it waits for it */
	EXPECT_NE(NULL, strstr(slurp(tmp("pid.err")), "has not attached to kipc yet"));
	kt_post(&go, 1);
	EXPECT_EQ(0, kt_wait(child));
	kill(tr, SIGINT);
	ASSERT_EQ(0, wait_status(tr));
	char *got = mask_calls(slurp(tmp("pid.txt")));
	EXPECT_NE(NULL, strstr(got, "[pid N] mbox_open(\"/kt-trace\", O_CREAT, {attr}) = ID <T>\n"
				    "[pid N] mbox_send(\"/kt-trace\", 2 bytes) = 0 <T>\n")) {
		fprintf(stderr, "%s", got);
	}
	EXPECT_NE(NULL, strstr(got, "[pid N] mbox_destroy(\"/kt-trace\") = 0 <T>\n"));
	free(got);
	kt_barrier_destroy(&go);
}

/* the sample forks its producer: its calls are followed too */
TEST(trace_calls_follow_children)
{
	NEED_TOOLS();
	char path[2 * KT_PATH];
	snprintf(path, sizeof path, "%s/producer_consumer", sampledir);
	const char *argv[] = {"kipc-trace", "-o", tmp("kids.txt"), "--", path, "0", NULL};
	ASSERT_EQ(0, run(argv, tmp("kids.out"), tmp("kids.err"), NULL));
	const char *t = slurp(tmp("kids.txt"));
	const char *recv = strstr(t, "] mbox_receive("), *send = strstr(t, "] mbox_send(");
	ASSERT_NE(NULL, recv);
	ASSERT_NE(NULL, send);
	/* 12 items and "done": 13 sends by one pid, 13 receives by another */
	int rpid = atoi(strrchr(strndup(t, recv - t), '[') + 5);
	int spid = atoi(strrchr(strndup(t, send - t), '[') + 5);
	EXPECT_NE(rpid, spid);
	/* a completed call: one whole line, or the <... resumed> line */
	int nsend = 0, nrecv = 0;
	char *text = strdup(t);
	for (char *save, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		bool done = strstr(l, ") = ") != NULL;
		if (done && (strstr(l, "] mbox_send(") || strstr(l, "<... mbox_send resumed>"))) {
			nsend++;
			EXPECT_EQ(spid, atoi(l + 5));
		}
		if (done && (strstr(l, "] mbox_receive(") || strstr(l, "<... mbox_receive resumed>"))) {
			nrecv++;
			EXPECT_EQ(rpid, atoi(l + 5));
		}
	}
	free(text);
	EXPECT_EQ(13, nsend);
	EXPECT_EQ(13, nrecv);
	EXPECT_NE(NULL, strstr(t, "= 0 <")); /* sends succeeded */
}

static const char *py_chrome_failure =
	"import json,sys\n"
	"ev=json.load(open(sys.argv[1]))['traceEvents']\n"
	"f=[e for e in ev if e.get('name')=='send failed: EAGAIN']\n"
	"assert len(f)==1 and 'error' in f[0]['cat'] and f[0]['args']['error']=='EAGAIN', f\n"
	"assert any(e.get('name','').startswith('create /kt-trace') for e in ev)\n"
	"assert not any(e.get('ph')=='s' and e['id']==f[0]['args']['seq'] for e in ev)\n";

TEST(trace_mermaid_draws_failures)
{
	NEED_TOOLS();
	const char *o[] = {"-f", "mermaid", "-o", tmp("fail.mmd")};
	ASSERT_EQ(0, trace_tracee("native", o, 4, false));
	const char *m = slurp(tmp("fail.mmd"));
	const char *p = strstr(m, " as mailbox /kt-trace\n");
	ASSERT_NE(NULL, p) {
		fprintf(stderr, "%s", m);
	}
	/* "participant M98304 as mailbox /kt-trace": its diagram id */
	const char *id = p;
	while (id > m && id[-1] != ' ')
		id--;
	char mid[32], want[96];
	snprintf(mid, sizeof mid, "%.*s", (int)(p - id), id);
	snprintf(want, sizeof want, "->>%s: send #", mid);
	EXPECT_NE(NULL, strstr(m, want)); /* the send that got in */
	snprintf(want, sizeof want, "-x%s: send failed: EAGAIN\n", mid);
	EXPECT_NE(NULL, strstr(m, want)) {
		fprintf(stderr, "%s", m);
	}
	EXPECT_NE(NULL, strstr(m, ": wait ended: ETIMEDOUT\n"));
	/* two sends got in (the first, the bundle's first): two send arrows */
	snprintf(want, sizeof want, "->>%s: send #", mid);
	const char *second = strstr(strstr(m, want) + 1, want);
	ASSERT_NE(NULL, second);
	EXPECT_EQ(NULL, strstr(second + 1, want));
	/* the bundle's second timed out waiting for room */
	snprintf(want, sizeof want, "-x%s: send #", mid);
	const char *late = strstr(m, want);
	ASSERT_NE(NULL, late) {
		fprintf(stderr, "%s", m);
	}
	EXPECT_EQ(0, strncmp(strchr(late + strlen(want), ' '), " failed: ETIMEDOUT\n", 19));

	const char *c[] = {"-f", "chrome", "-o", tmp("fail.json")};
	ASSERT_EQ(0, trace_tracee("native", c, 4, false));
	if (have_python())
		EXPECT_EQ(0, py_check(py_chrome_failure, tmp("fail.json"), "")) {
			fprintf(stderr, "%s", slurp(tmp("py.err")));
		}
}

KIPC_TEST_MAIN
