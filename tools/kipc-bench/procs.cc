// SPDX-License-Identifier: MIT
/*
 * kipc-bench: multi-process scenarios.
 *
 * Every measurement forks its processes fresh ("roles"), lets each one set
 * up (attach to kipcd, open its descriptors), waits until all are ready
 * (a pipe barrier: nobody spins), notes t0 and releases them at once.
 * Results come back through a MAP_SHARED board. Every process records its
 * own CPU time (CLOCK_PROCESS_CPUTIME_ID) over its part; kipcd's is read
 * from /proc/PID/task/ * /schedstat around the run.
 *
 * The natives' ping-pongs and streams also run with both processes
 * pinned to one CPU ("-pinned"): on a VM an idle vCPU's wakeup costs tens
 * of microseconds, and the baseline of every ratio is the better of the
 * pinned and the unpinned POSIX mq.
 *
 * A one-way queue (struct Chan) is created in the parent and inherited:
 *   kipc-mbox    a kernel-owned kipc mailbox, mode 0666, synchronous calls
 *   kipc-direct  the receiving role's task queue (send to its pid)
 *   kipc-call    ping-pong as a remote procedure call: kipc_call() to the
 *                server's pid, which receives and kipc_reply()s
 *   kipc-callrr  kipc-call with a server that answers and receives the next
 *                call in one request (kipc_reply_receive, seL4 ReplyRecv)
 *   kipc-callskip kipc-call with a server that submits its reply with
 *                KIPC_F_SKIP_SUCCESS and its next receive together (async API)
 *   kipc-async   a mailbox driven through the asynchronous ring API, a
 *                window of kWindow operations in flight on each side
 *   kipc-async-skip  kipc-async whose sends skip their success completions
 *                but the last of each batch of kSkipBatch (KIPC_F_SKIP_SUCCESS)
 *   kipc-async-bundle  a mailbox stream of bundles (kBundle messages per
 *                entry, mbox_send_bundle) into a multishot receive with a
 *                ring of kBufRing provided buffers (mbox_receive_multi)
 *   kipc-rdv     a zero-capacity mailbox (rendezvous)
 *   kipc-run-mq  the posix-mq scenario's code unmodified, re-executed under
 *                kipc-run (libkipc-posix.so preloaded): POSIX mq on kipc
 *   posix-mq     mq_open(3), System V msg, pipe(2), AF_UNIX SOCK_SEQPACKET
 *
 * The implementations of one scenario run interleaved: repetition r runs
 * every implementation once, in an order rotated by r.
 */
#include "bench.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <mqueue.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/core.h>
#include <kipc/libkipc.h>

namespace bench {
namespace {

enum class Impl {
	KipcMbox, KipcDirect, KipcCall, KipcCallRR, KipcCallSkip, KipcAsync, KipcAsyncSkip,
	KipcAsyncBundle, KipcRdv, KipcRunMq,
	PosixMq, SysV, Pipe, SeqPacket
};

const char *impl_name(Impl i)
{
	switch (i) {
	case Impl::KipcMbox: return "kipc-mbox";
	case Impl::KipcDirect: return "kipc-direct";
	case Impl::KipcCall: return "kipc-call";
	case Impl::KipcCallRR: return "kipc-callrr";
	case Impl::KipcCallSkip: return "kipc-callskip";
	case Impl::KipcAsync: return "kipc-async";
	case Impl::KipcAsyncSkip: return "kipc-async-skip";
	case Impl::KipcAsyncBundle: return "kipc-async-bundle";
	case Impl::KipcRdv: return "kipc-rdv";
	case Impl::KipcRunMq: return "kipc-run-mq";
	case Impl::PosixMq: return "posix-mq";
	case Impl::SysV: return "sysv-msg";
	case Impl::Pipe: return "pipe";
	case Impl::SeqPacket: return "seqpacket";
	}
	return "?";
}

bool is_kipc(Impl i)
{
	return i == Impl::KipcMbox || i == Impl::KipcDirect || i == Impl::KipcCall ||
	       i == Impl::KipcCallRR || i == Impl::KipcCallSkip || i == Impl::KipcAsync ||
	       i == Impl::KipcAsyncSkip || i == Impl::KipcAsyncBundle || i == Impl::KipcRdv ||
	       i == Impl::KipcRunMq;
}

/* One implementation as run: natives also pinned to one CPU. */
struct Run {
	Impl impl;
	bool pinned = false;
	std::string name() const
	{
		return std::string(impl_name(impl)) + (pinned ? "-pinned" : "");
	}
};

constexpr int kMaxRoles = 72;
constexpr uint32_t kMaxSamples = 1 << 16;
constexpr uint32_t kWindow = 64;   /* async operations in flight per side */
constexpr uint32_t kSkipBatch = 16; /* kipc-async-skip: sends per completion */
constexpr uint32_t kBundle = 64;    /* kipc-async-bundle: messages per entry */
constexpr uint32_t kBufRing = 256;  /* ... and buffers provided to its receiver */
constexpr uint32_t kStreamCap = 256; /* queue capacity for streams and fans */
constexpr uint32_t kMaxSize = 8192;

/* A scenario's parameters, on the board for roles that re-execute. */
struct Job {
	enum Kind : int { PingPong, Stream } kind;
	Impl impl;
	uint32_t size, warm, iters, nsend, nrecv, cap;
	uint64_t msgs;
	uint32_t work_ns; /* a stream receiver's work per message (stream-behind) */
	char mq[2][64]; /* kipc-run-mq: the queues, opened by the roles */
};

struct Board {
	int64_t t0;
	pid_t pid[kMaxRoles];
	int64_t t_end[kMaxRoles];
	int64_t cpu[kMaxRoles]; /* CPU ns of each role over its part */
	int err[kMaxRoles];
	char what[kMaxRoles][96];
	uint64_t done[kMaxRoles], total[kMaxRoles]; /* progress of a long loop (progress()) */
	Job job;
	uint32_t nsamples;
	int64_t samples[kMaxSamples];
};

Board *board;
int board_fd = -1;
std::string self_exe, kipc_run; /* for kipc-run-mq */
pid_t kipcd_pid;
int pin_cpu = -1;               /* the CPU pinned runs share */
int64_t last_cpu_ns;            /* run_roles(): every process's CPU time */

/* One sample; several processes may add at once. */
void add_sample(int64_t v)
{
	uint32_t i = std::atomic_ref<uint32_t>(board->nsamples).fetch_add(1);
	if (i < kMaxSamples)
		board->samples[i] = v;
}

uint32_t nsamples()
{
	return std::min(board->nsamples, kMaxSamples);
}

/* A receiver's ns per message, one sample per kWindowMsgs messages. */
struct Windows {
	int64_t last = now_ns();
	uint32_t n = 0;
	void tick()
	{
		if (++n < kWindowMsgs)
			return;
		int64_t t = now_ns();
		add_sample((t - last) / kWindowMsgs);
		last = t;
		n = 0;
	}
};

int64_t cpu_now()
{
	return kipc_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

/* CPU time of every thread of pid (schedstat: ns on a CPU), or 0. */
int64_t proc_cpu_ns(pid_t pid)
{
	int64_t sum = 0;
	std::string dir = fmt::format("/proc/{}/task", pid);
	DIR *d = opendir(dir.c_str());
	if (!d)
		return 0;
	while (dirent *e = readdir(d)) {
		if (e->d_name[0] == '.')
			continue;
		std::ifstream f(dir + "/" + e->d_name + "/schedstat");
		long long ns = 0;
		if (f >> ns)
			sum += ns;
	}
	closedir(d);
	return sum;
}
uint32_t stream_cap = kStreamCap; /* lowered when mq msg_max cannot be raised */

/*
 * The watchdog of a role: it dies of SIGALRM after kStallSeconds without
 * progress (at fork, and again at each progress() of a long loop), so a
 * wedged role cannot hang the run while a slow machine only makes it
 * slower; run_roles() reports a role that died so as an error of its
 * row, with how far it got.
 */
constexpr unsigned kStallSeconds = 120;

/* role has done done of total operations of a long loop. */
void progress(int role, uint64_t done, uint64_t total)
{
	if (done % 1024)
		return;
	board->done[role] = done;
	board->total[role] = total;
	alarm(kStallSeconds);
}

[[noreturn]] void child_fail(int role, const char *what, int err)
{
	board->err[role] = err ? err : EIO;
	snprintf(board->what[role], sizeof board->what[role], "%s: %s", what, strerror(err));
	_exit(1);
}

/* A one-way queue. */
struct Chan {
	Impl impl;
	uint32_t msgsize = 0;
	int64_t mbox = 0;    /* kipc mailboxes */
	int owner = -1;      /* kipc-direct: the receiving role */
	mqd_t mq = (mqd_t)-1;
	int sysv = -1;
	int fd[2] = {-1, -1};
};

int mq_seq;

/* Create a queue in the parent; "" or an error message. */
std::string chan_open(Chan &c, Impl impl, uint32_t msgsize, uint32_t cap, int owner)
{
	c.impl = impl;
	c.msgsize = msgsize;
	c.owner = owner;
	switch (impl) {
	case Impl::KipcMbox:
	case Impl::KipcAsync:
	case Impl::KipcAsyncSkip:
	case Impl::KipcAsyncBundle:
	case Impl::KipcRdv: {
		kipc_mbox_attr a{};
		a.capacity = impl == Impl::KipcRdv ? 0 : cap;
		a.msgsize = msgsize;
		a.mode = 0666;
		a.flags = KIPC_MBOX_KERNEL_OWNED;
		a.policy = KIPC_POLICY_ANY;
		c.mbox = kipc_mbox_open(nullptr, 0, &a);
		if (c.mbox < 0)
			return fmt::format("kipc_mbox_open: {}", strerror(errno));
		return "";
	}
	case Impl::KipcDirect:
	case Impl::KipcCall:
	case Impl::KipcCallRR:
	case Impl::KipcCallSkip:
	case Impl::KipcRunMq: /* the re-executed roles open it (open_named) */
		return "";
	case Impl::PosixMq: {
		std::string name = fmt::format("/kipc-bench-{}-{}", getpid(), mq_seq++);
		mq_attr a{};
		a.mq_maxmsg = cap;
		a.mq_msgsize = msgsize;
		c.mq = mq_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600, &a);
		if (c.mq == (mqd_t)-1)
			return fmt::format("mq_open(maxmsg={}, msgsize={}): {}", cap, msgsize,
					   strerror(errno));
		mq_unlink(name.c_str());
		return "";
	}
	case Impl::SysV: {
		c.sysv = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
		if (c.sysv < 0)
			return fmt::format("msgget: {}", strerror(errno));
		msqid_ds ds{};
		if (msgctl(c.sysv, IPC_STAT, &ds) == 0) {
			/* room for cap messages (root may exceed msgmnb) */
			ds.msg_qbytes = std::max<unsigned long>(ds.msg_qbytes,
								uint64_t(cap) * msgsize);
			msgctl(c.sysv, IPC_SET, &ds);
		}
		return "";
	}
	case Impl::Pipe:
		if (pipe2(c.fd, O_CLOEXEC) < 0)
			return fmt::format("pipe2: {}", strerror(errno));
		return "";
	case Impl::SeqPacket:
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c.fd) < 0)
			return fmt::format("socketpair: {}", strerror(errno));
		return "";
	}
	return "bad impl";
}

void chan_close(Chan &c)
{
	if (c.mbox > 0)
		kipc_mbox_destroy(c.mbox);
	if (c.mq != (mqd_t)-1)
		mq_close(c.mq);
	if (c.sysv >= 0)
		msgctl(c.sysv, IPC_RMID, nullptr);
	for (int &fd : c.fd)
		if (fd >= 0)
			close(fd);
	c = Chan{};
}

struct SysvMsg {
	long mtype;
	char data[kMaxSize];
};

void csend(int role, Chan &c, const void *buf, size_t len)
{
	int r = 0;
	switch (c.impl) {
	case Impl::KipcMbox:
	case Impl::KipcAsync:
	case Impl::KipcAsyncSkip:
	case Impl::KipcAsyncBundle:
	case Impl::KipcRdv:
		r = kipc_mbox_send(c.mbox, buf, len, 0, 0);
		break;
	case Impl::KipcDirect:
	case Impl::KipcCall: /* not used: pingpong() calls */
	case Impl::KipcCallRR:
	case Impl::KipcCallSkip:
		r = kipc_send(board->pid[c.owner], buf, len, 0, 0);
		break;
	case Impl::KipcRunMq: /* not used: its roles run posix-mq */
	case Impl::PosixMq:
		r = mq_send(c.mq, static_cast<const char *>(buf), len, 0);
		break;
	case Impl::SysV: {
		static SysvMsg m;
		m.mtype = 1;
		memcpy(m.data, buf, len);
		r = msgsnd(c.sysv, &m, len, 0);
		break;
	}
	case Impl::Pipe: {
		const char *p = static_cast<const char *>(buf);
		size_t done = 0;
		while (done < len) {
			ssize_t n = write(c.fd[1], p + done, len - done);
			if (n < 0) {
				r = -1;
				break;
			}
			done += n;
		}
		break;
	}
	case Impl::SeqPacket:
		r = send(c.fd[0], buf, len, 0) < 0 ? -1 : 0;
		break;
	}
	if (r < 0)
		child_fail(role, "send", errno);
}

size_t crecv(int role, Chan &c, void *buf, size_t len)
{
	ssize_t n = 0;
	switch (c.impl) {
	case Impl::KipcMbox:
	case Impl::KipcAsync:
	case Impl::KipcAsyncSkip:
	case Impl::KipcAsyncBundle:
	case Impl::KipcRdv:
		n = kipc_mbox_receive(c.mbox, buf, len, nullptr, 0);
		break;
	case Impl::KipcDirect:
	case Impl::KipcCall:
	case Impl::KipcCallRR:
	case Impl::KipcCallSkip:
		n = kipc_receive(KIPC_ANY, buf, len, nullptr, 0);
		break;
	case Impl::KipcRunMq:
	case Impl::PosixMq:
		n = mq_receive(c.mq, static_cast<char *>(buf), std::max<size_t>(len, c.msgsize),
			       nullptr);
		break;
	case Impl::SysV: {
		static SysvMsg m;
		n = msgrcv(c.sysv, &m, len, 0, 0);
		if (n > 0)
			memcpy(buf, m.data, n);
		break;
	}
	case Impl::Pipe: {
		char *p = static_cast<char *>(buf);
		size_t done = 0;
		while (done < len) {
			ssize_t k = read(c.fd[0], p + done, len - done);
			if (k <= 0) {
				n = -1;
				if (k == 0)
					errno = EPIPE;
				break;
			}
			done += k;
			n = done;
		}
		break;
	}
	case Impl::SeqPacket:
		n = recv(c.fd[1], buf, len, 0);
		break;
	}
	if (n < 0)
		child_fail(role, "receive", errno);
	return n;
}

void job_role(int role, const Job &j, Chan *c);

/*
 * Run one measurement: fork nroles processes running fn(role), barrier,
 * t0, go. Pinned: every role on pin_cpu. A kipc-run-mq job's roles
 * re-execute kipc-bench under kipc-run (run_exec_role) and run the job
 * on the board instead of fn. Sets last_cpu_ns to the CPU time of every
 * role over its part, plus kipcd's over the run for kipc. Returns "" or
 * what failed.
 */
std::string run_roles(int nroles, const std::function<void(int)> &fn, Impl impl, bool pinned)
{
	bool kipc = is_kipc(impl), exec = impl == Impl::KipcRunMq;
	int ready[2], go[2];
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)
		return fmt::format("pipe2: {}", strerror(errno));
	board->nsamples = 0;
	for (int i = 0; i < nroles; i++) {
		board->err[i] = 0;
		board->what[i][0] = 0;
		board->done[i] = board->total[i] = 0;
		board->t_end[i] = 0;
		board->cpu[i] = 0;
	}
	std::vector<pid_t> kids;
	fflush(nullptr);
	for (int role = 0; role < nroles; role++) {
		pid_t pid = fork();
		if (pid < 0)
			break;
		if (pid == 0) {
			alarm(kStallSeconds); /* a wedged scenario must not hang the suite */
			board->pid[role] = getpid();
			if (pinned) {
				cpu_set_t set;
				CPU_ZERO(&set);
				CPU_SET(pin_cpu, &set);
				if (sched_setaffinity(0, sizeof set, &set) < 0)
					child_fail(role, "sched_setaffinity", errno);
			}
			if (exec) {
				for (int fd : {board_fd, ready[1], go[0]})
					fcntl(fd, F_SETFD, 0);
				std::string spec = fmt::format("{} {} {} {}", role, board_fd,
							       ready[1], go[0]);
				setenv("KIPC_BENCH_ROLE", spec.c_str(), 1);
				execl(kipc_run.c_str(), kipc_run.c_str(), self_exe.c_str(), "--role",
				      (char *)nullptr);
				child_fail(role, "exec kipc-run", errno);
			}
			if (kipc && kipc_attach() < 0)
				child_fail(role, "kipc_attach", errno);
			char b = 0;
			if (write(ready[1], &b, 1) != 1 || read(go[0], &b, 1) != 1)
				_exit(2);
			int64_t c0 = cpu_now();
			fn(role);
			board->cpu[role] = cpu_now() - c0;
			_exit(0);
		}
		kids.push_back(pid);
	}
	close(ready[1]);
	close(go[0]);
	char b;
	int nready = 0;
	while (nready < int(kids.size()) && read(ready[0], &b, 1) == 1)
		nready++;
	int64_t kcpu = kipc ? proc_cpu_ns(kipcd_pid) : 0;
	board->t0 = now_ns();
	std::string buf(kids.size(), 'g');
	if (write(go[1], buf.data(), buf.size()) < 0) { /* children see EOF */ }
	close(go[1]);
	close(ready[0]);
	std::string err;
	for (size_t i = 0; i < kids.size(); i++) {
		int st;
		waitpid(kids[i], &st, 0);
		if (err.empty() && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			if (board->what[i][0])
				err = board->what[i];
			else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
				err = fmt::format("role {} made no progress for {} s (at {} of {})", i,
						  kStallSeconds, board->done[i], board->total[i]);
			else if (WIFSIGNALED(st))
				err = fmt::format("role {} killed by signal {}", i, WTERMSIG(st));
			else
				err = fmt::format("role {} exited {}", i, WEXITSTATUS(st));
		}
	}
	last_cpu_ns = kipc ? proc_cpu_ns(kipcd_pid) - kcpu : 0;
	for (int i = 0; i < nroles; i++)
		last_cpu_ns += board->cpu[i];
	if (int(kids.size()) < nroles && err.empty())
		err = fmt::format("fork: {}", strerror(errno));
	return err;
}

struct Sizes {
	uint32_t pp_iters, pp_warm, stream_msgs;
};

/* What one run of a scenario gave. */
struct Sample {
	std::vector<int64_t> lat; /* round trips, or ns per message in windows */
	std::vector<double> rates;
	int64_t cpu_ns = 0;       /* over every repetition ... */
	uint64_t ops = 0;         /* ... and its round trips or messages */
	std::string err;
};

/* Run job over run.impl (channels: 2 for a ping-pong, 1 for a stream). */
std::string run_job(const Run &run, Job j, Sample &out)
{
	Chan c[2];
	int nchan = j.kind == Job::PingPong ? 2 : 1;
	std::string err;
	for (int i = 0; i < nchan && err.empty(); i++)
		err = chan_open(c[i], run.impl, j.size, j.cap, j.kind == Job::PingPong ? 1 - i : 0);
	if (run.impl == Impl::KipcRunMq)
		for (int i = 0; i < nchan; i++)
			snprintf(j.mq[i], sizeof j.mq[i], "/kipc-bench-%d-%d", getpid(), mq_seq++);
	j.impl = run.impl;
	board->job = j;
	int nroles = j.kind == Job::PingPong ? 2 : int(j.nsend + j.nrecv);
	if (err.empty())
		err = run_roles(nroles, [&](int role) { job_role(role, j, c); }, run.impl, run.pinned);
	for (int i = 0; i < nchan; i++)
		chan_close(c[i]);
	if (!err.empty())
		return err;
	for (uint32_t i = 0; i < nsamples(); i++)
		out.lat.push_back(board->samples[i]);
	out.cpu_ns += last_cpu_ns;
	if (j.kind == Job::PingPong) {
		out.ops += j.warm + j.iters;
	} else {
		out.ops += j.msgs;
		int64_t end = 0;
		for (uint32_t r = 0; r < j.nrecv; r++)
			end = std::max(end, board->t_end[r]);
		if (end > board->t0)
			out.rates.push_back(double(j.msgs) * 1e9 / double(end - board->t0));
	}
	return "";
}

/* ---- ping-pong ---------------------------------------------------- */

void callskip_server(uint32_t size, uint32_t n);

void pingpong_role(int role, const Job &j, Chan *c)
{
	static char buf[kMaxSize];
	uint32_t size = j.size, n = j.warm + j.iters;
	memset(buf, role + 1, size);
	bool call = j.impl == Impl::KipcCall || j.impl == Impl::KipcCallRR ||
		    j.impl == Impl::KipcCallSkip;
	if (j.impl == Impl::KipcCall && role == 1) { /* server: receive, reply */
		kipc_msginfo info;
		for (uint32_t i = 0; i < n; i++) {
			if (kipc_receive(KIPC_ANY, buf, size, &info, 0) < 0)
				child_fail(1, "kipc_receive", errno);
			if (kipc_reply(info.token, buf, size, 0) < 0)
				child_fail(1, "kipc_reply", errno);
		}
		return;
	}
	if (j.impl == Impl::KipcCallRR && role == 1) { /* server: reply and receive at once */
		kipc_msginfo info;
		if (kipc_receive(KIPC_ANY, buf, size, &info, 0) < 0)
			child_fail(1, "kipc_receive", errno);
		for (uint32_t i = 1; i < n; i++)
			if (kipc_reply_receive(info.token, buf, size, KIPC_ANY, buf, size, &info, 0) < 0)
				child_fail(1, "kipc_reply_receive", errno);
		if (kipc_reply(info.token, buf, size, 0) < 0)
			child_fail(1, "kipc_reply", errno);
		return;
	}
	if (j.impl == Impl::KipcCallSkip && role == 1) {
		callskip_server(size, n);
		return;
	}
	if (call) { /* client: one call per round trip */
		for (uint32_t i = 0; i < n; i++) {
			int64_t t = now_ns();
			if (kipc_call(board->pid[1], buf, size, buf, size, nullptr, 0) < 0)
				child_fail(0, "kipc_call", errno);
			if (i >= j.warm)
				add_sample(now_ns() - t);
		}
		return;
	}
	if (role == 1) { /* server: echo */
		for (uint32_t i = 0; i < n; i++) {
			crecv(1, c[0], buf, size);
			csend(1, c[1], buf, size);
		}
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		int64_t t = now_ns();
		csend(0, c[0], buf, size);
		crecv(0, c[1], buf, size);
		if (i >= j.warm)
			add_sample(now_ns() - t);
	}
}

/* ---- the asynchronous ring: window of sends or receives ---------- */

/* One async entry, or the role fails. */
kipc_sqe *get_sqe(int role)
{
	kipc_sqe *sqe = kipc_get_sqe();
	if (!sqe)
		child_fail(role, "kipc_get_sqe", errno);
	return sqe;
}

/*
 * kipc-callskip's server: each round submits the reply (KIPC_F_SKIP_SUCCESS:
 * no completion when it is delivered) and the next receive together and
 * waits for the receive's completion alone; a failed reply would complete
 * (user_data 2) before it.
 */
void callskip_server(uint32_t size, uint32_t n)
{
	void *req = kipc_buf_alloc(size), *rep = kipc_buf_alloc(size);
	if (!req || !rep)
		child_fail(1, "kipc_buf_alloc", errno);
	uint64_t token = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (i) {
			memcpy(rep, req, size); /* echo */
			kipc_sqe *a = get_sqe(1);
			kipc_prep_reply(a, token, rep, size, KIPC_F_SKIP_SUCCESS);
			kipc_sqe_set_data(a, 2);
		}
		kipc_sqe *r = get_sqe(1);
		kipc_prep_receive(r, KIPC_ANY, req, size, 0);
		kipc_sqe_set_data(r, 1);
		if (kipc_submit() < 0)
			child_fail(1, "kipc_submit", errno);
		kipc_cqe *cqe;
		if (kipc_wait_cqe(&cqe) < 0)
			child_fail(1, "kipc_wait_cqe", errno);
		if (cqe->res < 0)
			child_fail(1, cqe->user_data == 1 ? "async receive" : "async reply",
				   int(-cqe->res));
		token = cqe->token;
		kipc_cqe_seen(cqe);
	}
	memcpy(rep, req, size);
	if (kipc_reply(token, rep, size, 0) < 0)
		child_fail(1, "kipc_reply", errno);
}

/* Wait for a completion, then take every one there is: each must have
 * succeeded (else the role fails with what), and done() gets its slot
 * (its user_data). */
template <typename Done> void reap(int role, const char *what, Done done)
{
	kipc_cqe *cqe;
	if (kipc_wait_cqe(&cqe) < 0)
		child_fail(role, "kipc_wait_cqe", errno);
	do {
		if (cqe->res < 0)
			child_fail(role, what, int(-cqe->res));
		uint32_t slot = uint32_t(cqe->user_data);
		kipc_cqe_seen(cqe);
		done(slot);
	} while (kipc_peek_cqe(&cqe) == 0);
}

/*
 * Sends with a window of kWindow buffers. skip: every send but the last
 * of each batch (at most kSkipBatch) has KIPC_F_SKIP_SUCCESS; the last
 * one's completion frees the whole batch (the kernel takes a process's
 * entries in order and copies each payload when it takes it).
 */
void async_send_loop(int role, int64_t mbox, uint32_t size, uint64_t total, bool skip)
{
	void *bufs[kWindow];
	for (uint32_t i = 0; i < kWindow; i++) {
		bufs[i] = kipc_buf_alloc(size);
		if (!bufs[i])
			child_fail(role, "kipc_buf_alloc", errno);
		memset(bufs[i], 0, size);
	}
	uint32_t freelist[kWindow], nfree = kWindow;
	for (uint32_t i = 0; i < kWindow; i++)
		freelist[i] = i;
	/* skip: the slots of the batch whose last entry has slot s */
	uint32_t batch[kWindow][kSkipBatch], nbatch[kWindow] = {};
	uint64_t posted = 0, done = 0;
	while (done < total) {
		uint32_t n = 0;
		bool full = false; /* the staging area (an SQ's worth) is full */
		while (nfree && posted < total && !full) {
			/* one batch: its last entry alone completes on success */
			uint64_t want = std::min<uint64_t>({skip ? kSkipBatch : 1u, nfree, total - posted});
			uint32_t k = 0, slots[kSkipBatch];
			kipc_sqe *last = nullptr;
			for (; k < want; k++) {
				kipc_sqe *sqe = kipc_get_sqe();
				if (!sqe) {
					full = true;
					break;
				}
				slots[k] = freelist[--nfree];
				kipc_prep_mbox_send(sqe, mbox, bufs[slots[k]], size, 0,
						    k + 1 < want ? KIPC_F_SKIP_SUCCESS : 0);
				kipc_sqe_set_data(sqe, slots[k]);
				last = sqe;
			}
			if (!k)
				break;
			last->flags &= ~KIPC_F_SKIP_SUCCESS; /* (the batch ended early) */
			uint32_t s = slots[k - 1];
			nbatch[s] = k;
			std::copy(slots, slots + k, batch[s]);
			posted += k;
			n += k;
		}
		if (n && kipc_submit() < 0)
			child_fail(role, "kipc_submit", errno);
		reap(role, "async send", [&](uint32_t slot) {
			for (uint32_t i = 0; i < nbatch[slot]; i++) {
				freelist[nfree++] = batch[slot][i];
				progress(role, ++done, total);
			}
		});
	}
}

/* Receive total messages with a window of receives; returns when done. */
void async_recv_loop(int role, int64_t mbox, uint32_t size, uint64_t total, Windows *w)
{
	void *bufs[kWindow];
	uint64_t posted = 0, done = 0;
	for (uint32_t i = 0; i < kWindow; i++) {
		bufs[i] = kipc_buf_alloc(size);
		if (!bufs[i])
			child_fail(role, "kipc_buf_alloc", errno);
	}
	auto post = [&](uint32_t slot) {
		kipc_sqe *sqe = kipc_get_sqe();
		if (!sqe) {
			kipc_submit();
			sqe = kipc_get_sqe();
		}
		if (!sqe)
			child_fail(role, "kipc_get_sqe", errno);
		kipc_prep_mbox_receive(sqe, mbox, bufs[slot], size, 0);
		kipc_sqe_set_data(sqe, slot);
		posted++;
	};
	for (uint32_t i = 0; i < kWindow && posted < total; i++)
		post(i);
	while (done < total) {
		if (kipc_submit() < 0 && errno != EBUSY)
			child_fail(role, "kipc_submit", errno);
		reap(role, "async receive", [&](uint32_t slot) {
			done++;
			if (w)
				w->tick();
			if (posted < total)
				post(slot);
		});
	}
}

/*
 * kipc-async-bundle's sender: one bundle of up to kBundle messages in
 * flight. It waits for room (no KIPC_F_NONBLOCK): when the mailbox is
 * full its next message waits as a blocking send's would and the rest
 * goes on as the receiver makes room, so every bundle completes whole.
 */
void bundle_send_loop(int role, int64_t mbox, uint32_t size, uint64_t total)
{
	auto *d = static_cast<kipc_bundle_desc *>(kipc_buf_alloc(kBundle * sizeof(kipc_bundle_desc)));
	auto *data = static_cast<char *>(kipc_buf_alloc(size_t(kBundle) * size));
	if (!d || !data)
		child_fail(role, "kipc_buf_alloc", errno);
	memset(data, 0, size_t(kBundle) * size);
	for (uint32_t i = 0; i < kBundle; i++)
		d[i] = {kipc_buf_offset(data + size_t(i) * size), size, 0};
	uint64_t done = 0;
	while (done < total) {
		uint32_t n = uint32_t(std::min<uint64_t>(kBundle, total - done));
		kipc_sqe *sqe = get_sqe(role);
		kipc_prep_mbox_send_bundle(sqe, mbox, d, n, 0, 0);
		kipc_sqe_set_data(sqe, 1);
		if (kipc_submit() < 0)
			child_fail(role, "kipc_submit", errno);
		kipc_cqe *cqe;
		if (kipc_wait_cqe(&cqe) < 0)
			child_fail(role, "kipc_wait_cqe", errno);
		int64_t res = cqe->res;
		int64_t why = cqe->type;
		kipc_cqe_seen(cqe);
		if (res != n)
			child_fail(role, "bundle send", int(res < 0 ? -res : -why));
		done += uint64_t(res);
		progress(role, done, total);
	}
}

/*
 * kipc-async-bundle's receiver: one multishot receive into kBufRing
 * provided buffers, each given back once its completion was seen; armed
 * again (from our head) when it ends for want of buffers or CQ room.
 */
void multi_recv_loop(int role, int64_t mbox, uint32_t size, uint64_t total, Windows *w)
{
	kipc_buf_ring *br = kipc_buf_ring_alloc(kBufRing);
	auto *bufs = static_cast<char *>(kipc_buf_alloc(size_t(kBufRing) * size));
	if (!br || !bufs)
		child_fail(role, "kipc_buf_alloc", errno);
	for (uint32_t i = 0; i < kBufRing; i++)
		kipc_buf_ring_add(br, kBufRing, bufs + size_t(i) * size, size, uint16_t(i), i);
	kipc_buf_ring_advance(br, kBufRing);
	uint32_t head = 0;
	uint64_t done = 0;
	bool armed = false;
	while (done < total) {
		if (!armed) {
			kipc_sqe *sqe = get_sqe(role);
			kipc_prep_mbox_receive_multi(sqe, mbox, br, kBufRing, head, 0);
			kipc_sqe_set_data(sqe, 1);
			if (kipc_submit() < 0)
				child_fail(role, "kipc_submit", errno);
			armed = true;
		}
		kipc_cqe *cqe;
		if (kipc_wait_cqe(&cqe) < 0)
			child_fail(role, "kipc_wait_cqe", errno);
		uint32_t given = 0;
		do {
			if (cqe->flags & KIPC_CQE_F_BUFFER) {
				unsigned bid = kipc_cqe_buffer_id(cqe);
				head++;
				done++;
				w->tick();
				kipc_buf_ring_add(br, kBufRing, bufs + size_t(bid) * size, size,
						  uint16_t(bid), given++);
			}
			if (!(cqe->flags & KIPC_CQE_F_MORE)) {
				armed = false;
				if (cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -EOVERFLOW)
					child_fail(role, "multishot receive", int(-cqe->res));
			}
			kipc_cqe_seen(cqe);
		} while (kipc_peek_cqe(&cqe) == 0);
		kipc_buf_ring_advance(br, given);
	}
}

/* ---- streams and fans --------------------------------------------- */

/*
 * nsend senders share msgs messages, nrecv receivers take them; with
 * several receivers the sender appends one stop message per receiver.
 * Receivers note their end (the rate) and their ns per message.
 */
void stream_role(int role, const Job &j, Chan &c)
{
	static char buf[kMaxSize];
	uint32_t size = j.size, nsend = j.nsend, nrecv = j.nrecv;
	uint64_t msgs = j.msgs;
	memset(buf, 0, size);
	bool receiver = uint32_t(role) < nrecv;
	if (!receiver) {
		uint32_t s = role - nrecv;
		uint64_t mine = msgs / nsend + (s < msgs % nsend ? 1 : 0);
		if (j.impl == Impl::KipcAsync || j.impl == Impl::KipcAsyncSkip)
			async_send_loop(role, c.mbox, size, mine, j.impl == Impl::KipcAsyncSkip);
		else if (j.impl == Impl::KipcAsyncBundle)
			bundle_send_loop(role, c.mbox, size, mine);
		else
			for (uint64_t i = 0; i < mine; i++)
				csend(role, c, buf, size);
		if (nrecv > 1) {
			buf[0] = 1; /* stop */
			for (uint32_t r = 0; r < nrecv; r++)
				csend(role, c, buf, size);
		}
		return;
	}
	Windows w;
	if (nrecv == 1) {
		if (j.impl == Impl::KipcAsync || j.impl == Impl::KipcAsyncSkip)
			async_recv_loop(role, c.mbox, size, msgs, &w);
		else if (j.impl == Impl::KipcAsyncBundle)
			multi_recv_loop(role, c.mbox, size, msgs, &w);
		else
			for (uint64_t i = 0; i < msgs; i++) {
				crecv(role, c, buf, size);
				/* its own work: it falls behind, the queue stays near full */
				for (int64_t t = j.work_ns ? now_ns() + j.work_ns : 0; now_ns() < t;)
					;
				w.tick();
			}
	} else {
		for (;;) {
			crecv(role, c, buf, size);
			if (buf[0] == 1)
				break;
			w.tick();
		}
	}
	board->t_end[role] = now_ns();
}

void job_role(int role, const Job &j, Chan *c)
{
	if (j.kind == Job::PingPong)
		pingpong_role(role, j, c);
	else
		stream_role(role, j, c[0]);
}

/* kipc-run-mq: the job's queues by name (both roles create, as mq_open allows). */
void open_named(int role, const Job &j, Chan *c)
{
	int nchan = j.kind == Job::PingPong ? 2 : 1;
	for (int i = 0; i < nchan; i++) {
		mq_attr a{};
		a.mq_maxmsg = j.cap;
		a.mq_msgsize = j.size;
		c[i].impl = Impl::PosixMq;
		c[i].msgsize = j.size;
		c[i].mq = mq_open(j.mq[i], O_CREAT | O_RDWR, 0600, &a);
		if (c[i].mq == (mqd_t)-1)
			child_fail(role, "mq_open under kipc-run", errno);
	}
}

/* ---- scaling through kipcd --------------------------------------- */

long rss_kib(pid_t pid, const char *field)
{
	std::ifstream f(fmt::format("/proc/{}/status", pid));
	std::string line;
	size_t n = strlen(field);
	while (std::getline(f, line))
		if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':')
			return std::stol(line.substr(n + 1));
	return -1;
}

/* Own mailbox, depth kept constant: ns per operation (send or receive). */
int64_t op_loop(int role, int64_t mbox, uint32_t iters)
{
	char buf[64] = {};
	int64_t t = now_ns();
	for (uint32_t i = 0; i < iters; i++) {
		if (kipc_mbox_send(mbox, buf, sizeof buf, 0, 0) < 0)
			child_fail(role, "kipc_mbox_send", errno);
		if (kipc_mbox_receive(mbox, buf, sizeof buf, nullptr, 0) < 0)
			child_fail(role, "kipc_mbox_receive", errno);
	}
	return (now_ns() - t) / (2 * int64_t(iters));
}

int64_t open_own(int role, uint32_t cap)
{
	kipc_mbox_attr a{};
	a.capacity = cap;
	a.msgsize = 64;
	a.mode = 0600;
	int64_t id = kipc_mbox_open(nullptr, 0, &a);
	if (id < 0)
		child_fail(role, "kipc_mbox_open", errno);
	return id;
}

/* Fill mbox with n messages of 64 bytes through the async ring. */
void prefill(int role, int64_t mbox, uint64_t n)
{
	async_send_loop(role, mbox, 64, n, false);
}

struct ScaleOut {
	int64_t ns_per_op;
	long rss_before, rss_after; /* kipcd RssAnon, KiB */
	long shm_before, shm_after; /* kipcd RssShmem, KiB */
};

/* A number from a /proc file, or dflt. */
long read_proc_long(const char *path, long dflt)
{
	long v = dflt;
	std::ifstream f(path);
	if (!(f >> v))
		v = dflt;
	return v;
}

} // namespace

/* ------------------------------------------------------------------ */

int run_exec_role(const char *spec)
{
	int role, ready, go;
	if (!spec || sscanf(spec, "%d %d %d %d", &role, &board_fd, &ready, &go) != 4 ||
	    role < 0 || role >= kMaxRoles)
		return 2;
	void *p = mmap(nullptr, sizeof(Board), PROT_READ | PROT_WRITE, MAP_SHARED, board_fd, 0);
	if (p == MAP_FAILED)
		return 2;
	board = static_cast<Board *>(p);
	Job j = board->job;
	j.impl = Impl::PosixMq; /* the native code; the preloaded library runs it on kipc */
	Chan c[2];
	open_named(role, j, c);
	char b = 0;
	if (write(ready, &b, 1) != 1 || read(go, &b, 1) != 1)
		return 2;
	int64_t c0 = cpu_now();
	job_role(role, j, c);
	board->cpu[role] = cpu_now() - c0;
	for (Chan &ch : c)
		if (ch.mq != (mqd_t)-1)
			mq_close(ch.mq);
	if (role == 0)
		for (const char *name : board->job.mq)
			if (name[0])
				mq_unlink(name);
	return 0;
}

void run_process_scenarios(const Options &o, Meta &meta, std::vector<Record> &out)
{
	board_fd = memfd_create("kipc-bench-board", MFD_CLOEXEC);
	void *p = MAP_FAILED;
	if (board_fd >= 0 && ftruncate(board_fd, sizeof(Board)) == 0)
		p = mmap(nullptr, sizeof(Board), PROT_READ | PROT_WRITE, MAP_SHARED, board_fd, 0);
	if (p == MAP_FAILED) {
		meta.notes.push_back(fmt::format("board: {}", strerror(errno)));
		return;
	}
	board = static_cast<Board *>(p);
	signal(SIGPIPE, SIG_IGN);
	kipcd_pid = meta.kipcd_pid;
	{
		cpu_set_t set;
		if (sched_getaffinity(0, sizeof set, &set) == 0)
			for (int i = 0; i < CPU_SETSIZE && pin_cpu < 0; i++)
				if (CPU_ISSET(i, &set))
					pin_cpu = i;
		char buf[4096];
		ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
		if (n > 0) {
			self_exe.assign(buf, size_t(n));
			kipc_run = self_exe.substr(0, self_exe.rfind('/')) + "/kipc-run";
		}
	}
	bool have_run = !kipc_run.empty() && access(kipc_run.c_str(), X_OK) == 0;
	if (!have_run)
		meta.notes.push_back(fmt::format("no kipc-run at {}: no kipc-run-mq rows", kipc_run));
	if (pin_cpu >= 0)
		meta.notes.push_back(fmt::format(
			"-pinned: both processes of a native ping-pong or stream on CPU {}; ratios "
			"compare with the better of posix-mq and posix-mq-pinned", pin_cpu));
	meta.notes.push_back("cpu/op: user + system time per round trip or message of every "
			     "process of the scenario, kipcd included; ratio to the same baseline");
	meta.notes.push_back(fmt::format("throughput rows: mean, p50, p99 of ns per message over "
					 "windows of {} messages at the receiver", kWindowMsgs));

	/*
	 * POSIX mq: streams need stream_cap slots, and fs.mqueue.msg_max
	 * (10 by default) limits mq_maxmsg. The machine's limit is never
	 * changed: the bench moves into an IPC namespace of its own (its
	 * children follow), whose mqueue sysctls are its own, and raises
	 * msg_max there. Without the privilege (or with --no-raise) every
	 * implementation uses queues as deep as msg_max allows.
	 */
	long mq_max = read_proc_long("/proc/sys/fs/mqueue/msg_max", 10);
	if (mq_max < long(kStreamCap) && !o.no_raise) {
		long machine = mq_max;
		if (unshare(CLONE_NEWIPC) < 0) {
			meta.notes.push_back(fmt::format(
				"no private IPC namespace ({}): fs.mqueue.msg_max stays {}",
				strerror(errno), mq_max));
		} else {
			FILE *f = fopen("/proc/sys/fs/mqueue/msg_max", "w");
			bool ok = f && fprintf(f, "%u\n", kStreamCap) > 0;
			if (f && fclose(f) != 0)
				ok = false;
			mq_max = read_proc_long("/proc/sys/fs/mqueue/msg_max", mq_max);
			if (ok && mq_max == long(kStreamCap))
				meta.notes.push_back(fmt::format(
					"ran in a private IPC namespace with fs.mqueue.msg_max {} "
					"(the machine's stays {})", kStreamCap, machine));
		}
	}
	if (mq_max < long(kStreamCap)) {
		stream_cap = uint32_t(mq_max);
		meta.notes.push_back(fmt::format(
			"/proc/sys/fs/mqueue/msg_max is {}: streams and fans use {}-message queues everywhere",
			mq_max, stream_cap));
	}
	{
		long mnb = read_proc_long("/proc/sys/kernel/msgmnb", 0);
		meta.notes.push_back(fmt::format(
			"System V msgmnb is {}; queues get msg_qbytes = capacity * size where allowed (root)",
			mnb));
	}
	meta.notes.push_back(fmt::format(
		"queues: ping-pong capacity 8; streams and fans capacity {} (kipc mailbox, mq maxmsg, "
		"System V qbytes); pipe and seqpacket use their default buffers; kipc-async keeps {} "
		"operations in flight per process", stream_cap, kWindow));

	Sizes sz = o.quick ? Sizes{300, 50, 2000} : Sizes{20000, 2000, 100000};
	int reps = o.quick ? 1 : o.reps;
	auto want = [&](const char *s) { return wanted(o, s); };

	/*
	 * Every kipc row against POSIX mq, each statistic against the better
	 * of posix-mq and posix-mq-pinned for that statistic (an unlucky
	 * native run must not flatter kipc): p50 / p50 for round trips (on a
	 * shared machine the mean carries other people's time slices; mean
	 * and p99 get their own ratios in the JSON), rate / rate for
	 * throughput, CPU per operation / CPU per operation. baseline names
	 * the row of the main ratio (p50 or rate).
	 */
	auto ratio_rows = [&](size_t first) {
		const Record *r = nullptr;
		double mean = 0, p99 = 0, cpu = 0;
		auto lower = [](double best, double v) { return v > 0 && (best == 0 || v < best) ? v : best; };
		for (size_t i = first; i < out.size(); i++) {
			const Record &q = out[i];
			if ((q.impl != "posix-mq" && q.impl != "posix-mq-pinned") || q.value <= 0)
				continue;
			bool lat = q.metric == "rtt_ns";
			if (!r || (lat ? q.p50 < r->p50 : q.value > r->value))
				r = &q;
			mean = lower(mean, q.mean);
			p99 = lower(p99, q.p99);
			cpu = lower(cpu, q.cpu_ns);
		}
		for (size_t i = first; i < out.size(); i++) {
			Record &k = out[i];
			if (!r || k.value <= 0 || k.impl.compare(0, 5, "kipc-") != 0)
				continue;
			bool lat = k.metric == "rtt_ns";
			k.ratio = lat ? k.p50 / r->p50 : k.value / r->value;
			if (lat && mean > 0)
				k.mean_ratio = k.mean / mean;
			if (lat && p99 > 0)
				k.p99_ratio = k.p99 / p99;
			k.ratio_to = "posix-mq";
			k.baseline = r->impl;
			if (k.cpu_ns > 0 && cpu > 0)
				k.cpu_ratio = k.cpu_ns / cpu;
		}
	};

	std::vector<Run> natives, pinned;
	for (Impl i : {Impl::PosixMq, Impl::SysV, Impl::Pipe, Impl::SeqPacket}) {
		natives.push_back({i});
		pinned.push_back({i, pin_cpu >= 0});
	}
	auto with = [&](std::vector<Run> v, bool pin, bool shim) {
		if (shim && have_run)
			v.push_back({Impl::KipcRunMq});
		std::erase_if(v, [&](const Run &r) { return !wanted_impl(o, r.name()); });
		v.insert(v.end(), natives.begin(), natives.end());
		if (pin && pin_cpu >= 0)
			v.insert(v.end(), pinned.begin(), pinned.end());
		return v;
	};

	/*
	 * One scenario over runs, interleaved (repetition r starts at run
	 * r), one row per run.
	 */
	auto measure = [&](const char *scen, const std::vector<Run> &runs, const Job &j,
			   uint32_t n, const char *note) {
		size_t first = out.size();
		std::vector<Sample> got(runs.size());
		for (int r = 0; r < reps; r++)
			for (size_t k = 0; k < runs.size(); k++) {
				size_t i = (k + r) % runs.size();
				std::string e = run_job(runs[i], j, got[i]);
				if (!e.empty())
					got[i].err = e;
			}
		bool lat = j.kind == Job::PingPong;
		for (size_t i = 0; i < runs.size(); i++) {
			Record rec;
			rec.scenario = scen;
			rec.impl = runs[i].name();
			rec.size = j.size;
			rec.n = n;
			rec.metric = lat ? "rtt_ns" : "msgs_per_s";
			rec.lower_is_better = lat;
			Lat l = summarize(got[i].lat);
			rec.mean = l.mean;
			rec.p50 = l.p50;
			rec.p99 = l.p99;
			rec.value = lat ? l.mean : median(got[i].rates);
			if (got[i].ops)
				rec.cpu_ns = double(got[i].cpu_ns) / double(got[i].ops);
			rec.note = !got[i].err.empty() ? got[i].err
				   : is_kipc(runs[i].impl) ? "" : note;
			out.push_back(rec);
		}
		ratio_rows(first);
	};

	/* ping-pong and rendezvous: latency */
	auto latency = [&](const char *scen, std::vector<Run> runs, uint32_t size, const char *note) {
		Job j{};
		j.kind = Job::PingPong;
		j.size = size;
		j.warm = sz.pp_warm;
		j.iters = std::min(sz.pp_iters, kMaxSamples);
		j.cap = 8; /* within the default mq msg_max of 10 */
		measure(scen, runs, j, 1, note);
	};
	std::vector<uint32_t> sizes = o.sizes;
	if (sizes.empty())
		sizes = {16u, 64u, 1024u, 8192u};
	if (want("pingpong"))
		for (uint32_t size : sizes)
			latency("pingpong", with({{Impl::KipcMbox}, {Impl::KipcDirect}, {Impl::KipcCall},
						  {Impl::KipcCallRR}, {Impl::KipcCallSkip}},
						 true, true), size, "");
	if (want("rendezvous"))
		latency("rendezvous", with({{Impl::KipcRdv}}, false, false), 64,
			"no zero-capacity mode: buffered ping-pong");

	/* throughput */
	auto throughput = [&](const char *scen, std::vector<Run> runs, uint32_t nsend,
			      uint32_t nrecv, uint32_t n, uint32_t work_ns = 0) {
		Job j{};
		j.kind = Job::Stream;
		j.size = 64;
		j.nsend = nsend;
		j.nrecv = nrecv;
		j.cap = stream_cap;
		j.msgs = sz.stream_msgs;
		j.work_ns = work_ns;
		measure(scen, runs, j, n, "");
	};
	if (want("stream"))
		throughput("stream", with({{Impl::KipcMbox}, {Impl::KipcDirect}, {Impl::KipcAsync},
					   {Impl::KipcAsyncSkip}, {Impl::KipcAsyncBundle}},
					  true, true), 1, 1, 1);
	/* the receiver behind: 2 us of its own work per message, the queue
	 * near full (the regime of Linux's pipelined_receive) */
	if (want("stream-behind"))
		throughput("stream-behind", with({{Impl::KipcMbox}, {Impl::KipcDirect}}, true, true), 1,
			   1, 1, 2000);
	for (uint32_t n : {2u, 4u, 8u}) {
		std::vector<Run> runs = with({{Impl::KipcMbox}}, false, false);
		if (want("fanin"))
			throughput("fanin", runs, n, 1, n);
		if (want("fanout"))
			throughput("fanout", runs, 1, n, n);
	}
	/* kipc-direct streams go to the receiver's task queue */

	/* scaling through kipcd: cost per operation as things grow */
	if (want("scale")) {
		uint32_t iters = o.quick ? 1000 : 20000;
		uint32_t big_q = o.quick ? 10000 : 1000000;
		uint32_t big_mb = o.quick ? 2000 : 1000000;
		ScaleOut *so = reinterpret_cast<ScaleOut *>(board->samples);
		auto rec = [&](const char *scen, const char *impl, uint32_t size, uint32_t n,
			       double v, const std::string &note) {
			Record r;
			r.scenario = scen;
			r.impl = impl;
			r.size = size;
			r.n = n;
			r.metric = "ns_per_op";
			r.value = v;
			r.note = note;
			out.push_back(r);
		};
		/* native reference: mq_send + mq_receive at depth 9 in one process */
		{
			Chan c;
			std::string e = chan_open(c, Impl::PosixMq, 64, 10, 0);
			int64_t ns = 0;
			if (e.empty()) {
				char buf[64] = {};
				for (int i = 0; i < 9; i++)
					mq_send(c.mq, buf, 64, 0);
				int64_t t = now_ns();
				for (uint32_t i = 0; i < iters; i++) {
					mq_send(c.mq, buf, 64, 0);
					mq_receive(c.mq, buf, 64, nullptr);
				}
				ns = (now_ns() - t) / (2 * int64_t(iters));
			}
			chan_close(c);
			rec("scale-queued", "posix-mq", 9, 1, double(ns), e.empty() ? "depth 9 (msg_max)" : e);
		}
		size_t first = out.size();
		/*
		 * One case: a fresh process with its own mailbox, the quantity
		 * set up (queued messages, mailboxes, or idle attached processes
		 * each parked in a receive), then send + receive at constant
		 * depth. The small and the large case of each kind alternate,
		 * reps times; the median counts.
		 */
		enum Kind { Queued, Mailboxes, Procs };
		struct Case {
			Kind kind;
			uint32_t qty;
			std::vector<double> ns;
			double mem = 0, shm = 0; /* kipcd RssAnon / RssShmem growth, bytes per unit */
			std::string err;
		};
		std::vector<Case> cases;
		for (auto [k, q] : {std::pair{Queued, 10u}, {Queued, big_q}, {Mailboxes, 10u},
				    {Mailboxes, big_mb}, {Procs, 1u}, {Procs, 64u}}) {
			cases.emplace_back();
			cases.back().kind = k;
			cases.back().qty = q;
		}
		auto run_case = [&](Case &c) {
			std::vector<pid_t> idle;
			long a0 = rss_kib(meta.kipcd_pid, "RssAnon"), s0 = rss_kib(meta.kipcd_pid, "RssShmem");
			if (c.kind == Procs) {
				int sync[2];
				if (pipe2(sync, O_CLOEXEC) < 0)
					return;
				for (uint32_t i = 1; i < c.qty; i++) {
					pid_t pid = fork();
					if (pid == 0) {
						close(sync[0]);
						alarm(120);
						char b = 0, buf[64];
						if (kipc_attach() < 0 || write(sync[1], &b, 1) != 1)
							_exit(1);
						kipc_receive(KIPC_ANY, buf, sizeof buf, nullptr, 0);
						_exit(0);
					}
					if (pid > 0)
						idle.push_back(pid);
				}
				close(sync[1]);
				char b;
				for (size_t i = 0; i < idle.size(); i++)
					if (read(sync[0], &b, 1) != 1)
						break;
				close(sync[0]);
				usleep(100000); /* let the idle ones park their receives */
				long a1 = rss_kib(meta.kipcd_pid, "RssAnon");
				long s1 = rss_kib(meta.kipcd_pid, "RssShmem");
				if (c.qty > 1 && c.ns.empty()) { /* first round: later ones reuse the heap */
					c.mem = double(a1 - a0) * 1024.0 / (c.qty - 1);
					c.shm = double(s1 - s0) * 1024.0 / (c.qty - 1);
				}
			}
			std::string e = run_roles(1, [&](int role) {
				int64_t mb = open_own(role, c.kind == Queued ? KIPC_UNBOUNDED : 64);
				so->rss_before = rss_kib(meta.kipcd_pid, "RssAnon");
				if (c.kind == Queued)
					prefill(role, mb, c.qty);
				if (c.kind == Mailboxes)
					for (uint32_t i = 1; i < c.qty; i++) {
						open_own(role, 16);
						progress(role, i, c.qty);
					}
				so->rss_after = rss_kib(meta.kipcd_pid, "RssAnon");
				char buf[64] = {};
				if (c.kind != Queued)
					for (int i = 0; i < 10; i++)
						kipc_mbox_send(mb, buf, 64, 0, 0);
				op_loop(role, mb, iters / 10); /* warm */
				so->ns_per_op = op_loop(role, mb, iters);
			}, Impl::KipcMbox, false);
			for (pid_t pid : idle)
				kill(pid, SIGKILL);
			for (pid_t pid : idle)
				waitpid(pid, nullptr, 0);
			if (!e.empty()) {
				c.err = e;
				return;
			}
			bool first_round = c.ns.empty(); /* later rounds reuse kipcd's heap */
			c.ns.push_back(double(so->ns_per_op));
			if (first_round && c.kind == Queued && c.qty > 10)
				c.mem = double(so->rss_after - so->rss_before) * 1024.0 / c.qty;
			if (first_round && c.kind == Mailboxes && c.qty > 10)
				c.mem = double(so->rss_after - so->rss_before) * 1024.0 / (c.qty - 1);
		};
		for (int r = 0; r < reps; r++)
			for (Case &c : cases)
				run_case(c);
		for (Case &c : cases) {
			static const char *const scen[] = {"scale-queued", "scale-mailboxes", "scale-procs"};
			bool procs = c.kind == Procs;
			rec(scen[c.kind], "kipc-mbox", procs ? 64 : c.qty, procs ? c.qty : 1,
			    c.err.empty() ? median(c.ns) : 0, c.err);
			if (c.qty <= 10 || !c.err.empty())
				continue;
			Record m;
			m.scenario = "memory";
			m.impl = "kipcd-rss";
			m.size = c.kind == Queued ? 64 : 0;
			m.n = procs ? c.qty - 1 : c.qty;
			m.metric = c.kind == Queued ? "bytes_per_msg" : procs ? "bytes_per_task" : "bytes_per_mailbox";
			m.value = c.mem;
			m.note = c.kind == Queued ? "kipcd RssAnon growth per queued 64-byte message (payload included)"
				 : !procs ? "kipcd RssAnon growth per mailbox"
				 : fmt::format("kipcd RssAnon growth per attached process (0: within heap "
					       "already mapped); plus {:.0f} KiB of its shared ring and arena "
					       "touched (RssShmem)", c.shm / 1024.0);
			out.push_back(m);
		}
		/* ratios: each large case against its small case */
		for (size_t i = first; i < out.size(); i++) {
			Record &r = out[i];
			if (r.metric != "ns_per_op")
				continue;
			for (size_t j = first; j < i; j++)
				if (out[j].scenario == r.scenario && out[j].value > 0 && r.value > 0) {
					r.ratio = r.value / out[j].value;
					r.ratio_to = fmt::format("{} at {}", r.scenario == "scale-procs"
						? "procs" : "size", r.scenario == "scale-procs" ? out[j].n : out[j].size);
					break;
				}
			/* and the small case against the native reference */
			if (r.ratio == 0) {
				for (const Record &q : out)
					if (q.scenario == "scale-queued" && q.impl == "posix-mq" && q.value > 0) {
						r.ratio = r.value / q.value;
						r.ratio_to = "posix-mq";
					}
			}
		}
	}

	munmap(board, sizeof(Board));
	board = nullptr;
	close(board_fd);
	board_fd = -1;
}

} // namespace bench
