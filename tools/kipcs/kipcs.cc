// SPDX-License-Identifier: MIT
/*
 * kipcs: show the kipc kernel's mailboxes, task queues, tasks, limits and
 * usage, in the spirit of ipcs(1) and lsipc(1). See
 * Documentation/man/kipcs.1 and Documentation/kipcs-json.md (--json).
 *
 * kipcs never starts a kernel: with none running it says so and exits 1.
 */
#include <csignal>
#include <ctime>
#include <getopt.h>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../include/tool.h"

using json = nlohmann::ordered_json;
using namespace tool;

namespace {

enum class View { Default, Tasks, Mbox, Limits, Usage };

struct Options {
	View view = View::Default;
	std::string mbox;        /* -m ID|NAME */
	bool json = false;
	bool all = false;        /* -a: show kipcs's own task too */
	double watch = 0;        /* seconds; 0: once */
};

volatile sig_atomic_t stop;

void on_signal(int) { stop = 1; }

int64_t realtime_ns()
{
	return kipc_clock_ns(CLOCK_REALTIME);
}

std::vector<TaskInfo> tasks(const Options &o)
{
	auto v = fetch_all<TaskInfo>(kipc_task_list, "task list");
	if (!o.all)
		std::erase_if(v, [](const auto &t) { return t.flags & KIPC_INFO_SELF; });
	return v;
}

std::vector<MboxInfo> mboxes()
{
	return fetch_all<MboxInfo>(kipc_mbox_list, "mailbox list");
}

SysInfo sysinfo()
{
	SysInfo si;
	if (kipc_sysinfo(&si) < 0)
		die_errno("sysinfo", errno);
	return si;
}

const char *kind_name(const MboxStat &st)
{
	if (st.attr.flags & KIPC_MBOX_POSIX)
		return "posix"; /* a POSIX message queue (kipc-run, mq_open) */
	if (st.attr.flags & KIPC_MBOX_SYSV)
		return "sysv";  /* a System V message queue (msgget) */
	return st.attr.flags & KIPC_MBOX_KERNEL_OWNED ? "kernel" : "process";
}

std::string name_or_dash(const char *s)
{
	return *s ? s : "-";
}

/* "mbox_receive 32768", "receive from 1234", "call 1234" */
std::string wait_string(const TaskInfo &t)
{
	if (t.state != KIPC_TASK_BLOCKED)
		return t.flags & KIPC_INFO_HIDDEN && t.state == KIPC_TASK_BLOCKED ? "?" : "-";
	std::string s = syscall_name(t.wait_op);
	if (t.wait_mbox)
		s += fmt::format(" {}", t.wait_mbox);
	else if (t.wait_pid)
		s += fmt::format(" {}", t.wait_pid);
	s += fmt::format(" ({})", duration(t.now - t.wait_since));
	return s;
}

/* ---- JSON ----------------------------------------------------------- */

json j_mbox(const MboxInfo &m)
{
	const MboxStat &st = m.st;
	json j;
	j["id"] = st.id;
	j["name"] = st.name;
	j["uid"] = st.attr.uid;
	j["user"] = user_name(st.attr.uid);
	j["gid"] = st.attr.gid;
	j["cuid"] = st.cuid;
	j["cgid"] = st.cgid;
	j["mode"] = fmt::format("{:04o}", st.attr.mode);
	j["kind"] = kind_name(st);
	j["owner_pid"] = st.owner;
	j["policy"] = policy_name(st.attr.policy);
	j["fixed"] = bool(st.attr.flags & KIPC_MBOX_FIXED);
	if (st.attr.capacity == KIPC_UNBOUNDED)
		j["capacity"] = nullptr;
	else
		j["capacity"] = st.attr.capacity;
	j["msgsize"] = st.attr.msgsize;
	j["qbytes"] = st.attr.qbytes;
	j["messages"] = st.nmsg;
	j["bytes"] = st.nbytes;
	j["senders_waiting"] = st.nsenders - m.ncached;
	j["cached"] = m.ncached;
	j["receivers_waiting"] = st.nreceivers;
	j["holders"] = st.nholders;
	j["pair_sender"] = m.pair_sender;
	j["pair_receiver"] = m.pair_receiver;
	j["exclusive_pid"] = m.excl;
	j["rr_next"] = m.rr_next;
	j["last_sender"] = st.lspid;
	j["last_receiver"] = st.lrpid;
	j["stime_ns"] = st.stime;
	j["rtime_ns"] = st.rtime;
	j["ctime_ns"] = st.ctime;
	j["sent"] = st.nsent;
	j["received"] = st.nreceived;
	return j;
}


json j_task(const TaskInfo &t)
{
	json j;
	j["pid"] = t.pid;
	if (KIPC_NET_IS_PID(t.pid))
		j["remote"] = pid_label(t.pid); /* "NODE:PID" of a remote caller */
	j["comm"] = t.comm;
	j["uid"] = t.uid;
	j["user"] = user_name(t.uid);
	j["gid"] = t.gid;
	j["state"] = state_name(t.state);
	j["hidden"] = bool(t.flags & KIPC_INFO_HIDDEN);
	j["attach_time_ns"] = t.atime;
	if (t.flags & KIPC_INFO_HIDDEN)
		return j;
	if (t.state == KIPC_TASK_BLOCKED) {
		json w;
		w["syscall"] = syscall_name(t.wait_op);
		w["pid"] = t.wait_pid;
		w["mbox"] = t.wait_mbox;
		w["waited_ns"] = t.now - t.wait_since;
		w["timeout_ns"] = t.wait_deadline ? t.wait_deadline - t.now : -1;
		j["waiting"] = w;
	} else {
		j["waiting"] = nullptr;
	}
	j["parked"] = t.nparked;
	json q;
	q["capacity"] = t.capacity;
	q["msgsize"] = t.msgsize;
	q["qbytes"] = t.qbytes;
	q["messages"] = t.nmsg;
	q["bytes"] = t.nbytes;
	q["senders_waiting"] = t.nsenders;
	q["receivers_waiting"] = t.nreceivers;
	j["queue"] = q;
	j["rights_held"] = t.nheld;
	j["sent"] = t.nsent;
	j["received"] = t.nreceived;
	return j;
}

const char *waiter_kind(uint32_t k)
{
	switch (k) {
	case KIPC_WAITER_RECEIVER: return "receiver";
	case KIPC_WAITER_SENDER: return "sender";
	case KIPC_WAITER_CACHED: return "cached";
	case KIPC_WAITER_HOLDER: return "holder";
	}
	return "?";
}

json j_limits(const SysInfo &si)
{
	json j;
	j["msg_default"] = si.msg_default;
	j["msg_max"] = si.msg_max;
	j["msgsize_default"] = si.msgsize_default;
	j["msgsize_max"] = si.msgsize_max;
	j["mbox_per_user"] = si.mbox_per_user;
	j["bytes_per_user"] = si.bytes_per_user;
	j["taskq_capacity"] = si.taskq_capacity;
	j["root_bypass"] = bool(si.root_bypass);
	j["msg_overhead"] = si.msg_overhead;
	j["tasks_per_user"] = si.tasks_per_user;
	j["mq_msg_default"] = si.mq_msg_default;
	j["mq_msg_max"] = si.mq_msg_max;
	j["mq_msgsize_default"] = si.mq_msgsize_default;
	j["mq_msgsize_max"] = si.mq_msgsize_max;
	j["mq_queues_max"] = si.mq_queues_max;
	j["mq_bytes_per_user"] = si.mq_bytes_per_user;
	j["msgmax"] = si.msgmax;
	j["msgmnb"] = si.msgmnb;
	j["msgmni"] = si.msgmni;
	return j;
}

KernelInfo kernel_info()
{
	KernelInfo ki;
	if (kipc_kernel_info(&ki) < 0)
		die_errno("kernel_info", errno);
	return ki;
}

/* This kernel's node (Documentation/network.md), "" without a network. */
std::string node_name(struct kipc_net_stat *ns = nullptr)
{
	struct kipc_net_stat st{};
	if (kipc_net_stat(&st) < 0)
		return "";
	if (ns)
		*ns = st;
	return st.node;
}

json j_kernel(const KernelInfo &ki)
{
	json j;
	std::string node = node_name();
	j["node"] = node.empty() ? json(nullptr) : json(node);
	j["version"] = ki.version;
	j["build_id"] = fmt::format("{:016x}", ki.build_id);
	j["pid"] = ki.pid;
	j["loop"] = ki.loop;
	j["socket"] = ki.socket;
	j["command_line"] = ki.cmdline;
	return j;
}

json j_usage(const SysInfo &si)
{
	json j;
	j["tasks"] = si.ntasks;
	j["mailboxes"] = si.nmboxes;
	j["messages"] = si.nmsg;
	j["pending"] = si.npending;
	j["bytes"] = si.nbytes;
	j["parked"] = si.nparked;
	j["tracers"] = si.ntracers;
	j["uptime_ns"] = si.uptime;
	j["sent"] = si.nsent;
	j["delivered"] = si.ndelivered;
	j["timeouts"] = si.ntimeouts;
	j["cancels"] = si.ncancels;
	j["attaches"] = si.nattach;
	j["exits"] = si.nexit;
	j["destroyed"] = si.ndestroyed;
	json u;
	u["uid"] = si.uid;
	u["mailboxes"] = si.user_mboxes;
	u["bytes"] = si.user_bytes;
	j["user"] = u;
	return j;
}

/* ---- resolving -m ----------------------------------------------------- */

int64_t resolve_mbox(const std::string &arg)
{
	int64_t id;
	if (parse_id(arg.c_str(), &id))
		return id;
	if (arg.empty() || arg[0] != '/')
		tool_usage_error("kipcs", "invalid mailbox '%s': give an id or a /name",
				 arg.c_str());
	id = kipc_mbox_open(arg.c_str(), 0, nullptr); /* look up only */
	if (id < 0) {
		if (errno == ENOENT || errno == EINVAL)
			die(mbox_error(errno, arg));
		die_errno(arg, errno);
	}
	return id;
}

MboxInfo mbox_info(const std::string &arg, int64_t id)
{
	MboxInfo mi;
	if (kipc_mbox_info(id, &mi) == 0)
		return mi;
	switch (errno) {
	case EINVAL:
	case EIDRM:
	case EACCES:
	case EPERM:
		die(mbox_error(errno, arg));
	}
	die_errno(fmt::format("mailbox {}", arg), errno);
}

/* ---- views ------------------------------------------------------------ */

using Out = fmt::memory_buffer;

template <class... A>
void out(Out &o, fmt::format_string<A...> f, A &&...a)
{
	fmt::format_to(std::back_inserter(o), f, std::forward<A>(a)...);
}

void text_mboxes(Out &o, const std::vector<MboxInfo> &v)
{
	out(o, "------ Mailboxes ({}) ------\n", v.size());
	out(o, "{:<10} {:<16} {:<10} {:<10} {:<8} {:<11} {:>9} {:>11} {:>5} {:>5}\n", "ID", "NAME",
	    "OWNER", "PERMS", "KIND", "POLICY", "MSGS", "BYTES", "SEND", "RECV");
	for (const auto &m : v) {
		const auto &st = m.st;
		std::string msgs = fmt::format("{}/{}", st.nmsg, capacity_string(st.attr.capacity));
		std::string bytes = st.attr.capacity == KIPC_UNBOUNDED
					    ? human(st.nbytes)
					    : fmt::format("{}/{}", human(st.nbytes), human(st.attr.qbytes));
		out(o, "{:<10} {:<16} {:<10} {:<10} {:<8} {:<11} {:>9} {:>11} {:>5} {:>5}\n", st.id,
		    name_or_dash(st.name), user_name(st.attr.uid), mode_string(st.attr.mode),
		    kind_name(st), policy_name(st.attr.policy), msgs, bytes, st.nsenders,
		    st.nreceivers);
	}
}

void text_taskqs(Out &o, const std::vector<TaskInfo> &v)
{
	out(o, "------ Task queues ({}) ------\n", v.size());
	out(o, "{:<8} {:<16} {:<10} {:<10} {:>9} {:>11} {:>5} {:>5}\n", "PID", "COMM", "USER",
	    "STATE", "MSGS", "BYTES", "SEND", "RECV");
	for (const auto &t : v) {
		if (t.flags & KIPC_INFO_HIDDEN) {
			out(o, "{:<8} {:<16} {:<10} {:<10} {:>9} {:>11} {:>5} {:>5}\n", pid_label(t.pid),
			    t.comm, user_name(t.uid), state_name(t.state), "-", "-", "-", "-");
			continue;
		}
		out(o, "{:<8} {:<16} {:<10} {:<10} {:>9} {:>11} {:>5} {:>5}\n", pid_label(t.pid),
		    t.comm, user_name(t.uid), state_name(t.state),
		    fmt::format("{}/{}", t.nmsg, capacity_string(t.capacity)),
		    t.capacity == KIPC_UNBOUNDED
			    ? human(t.nbytes)
			    : fmt::format("{}/{}", human(t.nbytes), human(t.qbytes)),
		    t.nsenders, t.nreceivers);
	}
}

void text_tasks(Out &o, const std::vector<TaskInfo> &v)
{
	out(o, "------ Tasks ({}) ------\n", v.size());
	out(o, "{:<8} {:<16} {:<10} {:<10} {:<28} {:>5} {:>8} {:>8}\n", "PID", "COMM", "USER",
	    "STATE", "WAITING IN", "QUEUE", "SENT", "RECEIVED");
	for (const auto &t : v) {
		bool hidden = t.flags & KIPC_INFO_HIDDEN;
		out(o, "{:<8} {:<16} {:<10} {:<10} {:<28} {:>5} {:>8} {:>8}\n", pid_label(t.pid),
		    t.comm, user_name(t.uid), state_name(t.state), hidden ? "?" : wait_string(t),
		    hidden ? "-" : std::to_string(t.nmsg), hidden ? "-" : std::to_string(t.nsent),
		    hidden ? "-" : std::to_string(t.nreceived));
	}
}

void text_limits(Out &o, const SysInfo &si)
{
	out(o, "------ Limits ------\n");
	out(o, "max messages per bounded link (msg_max)      : {}\n", si.msg_max);
	out(o, "default mailbox capacity (msg_default)       : {}\n", si.msg_default);
	out(o, "max message size (msgsize_max)               : {}\n", human(si.msgsize_max));
	out(o, "default message size (msgsize_default)       : {}\n", human(si.msgsize_default));
	out(o, "mailboxes per user (mbox_per_user)           : {}\n", si.mbox_per_user);
	out(o, "bytes queued per user (bytes_per_user)       : {}\n", human(si.bytes_per_user));
	out(o, "default task queue capacity (taskq_capacity) : {}\n", si.taskq_capacity);
	out(o, "root bypasses permissions (root_bypass)      : {}\n", si.root_bypass ? "yes" : "no");
	out(o, "overhead charged per message                 : {} bytes\n", si.msg_overhead);
	out(o, "attached tasks per user (tasks_per_user)     : {}\n", si.tasks_per_user);
	out(o, "\n------ POSIX message queue limits ------\n");
	out(o, "default maxmsg (mq_msg_default)              : {}\n", si.mq_msg_default);
	out(o, "max maxmsg (mq_msg_max)                      : {}\n", si.mq_msg_max);
	out(o, "default msgsize (mq_msgsize_default)         : {}\n", human(si.mq_msgsize_default));
	out(o, "max msgsize (mq_msgsize_max)                 : {}\n", human(si.mq_msgsize_max));
	out(o, "queues in the system (mq_queues_max)         : {}\n", si.mq_queues_max);
	out(o, "bytes per user (mq_bytes_per_user)           : {}\n", human(si.mq_bytes_per_user));
	out(o, "\n------ System V message queue limits ------\n");
	out(o, "max message size (msgmax)                    : {}\n", human(si.msgmax));
	out(o, "default queue bytes (msgmnb)                 : {}\n", human(si.msgmnb));
	out(o, "queues in the system (msgmni)                : {}\n", si.msgmni);
}

void text_usage(Out &o, const SysInfo &si)
{
	KernelInfo ki = kernel_info();
	out(o, "------ Usage ------\n");
	out(o, "kernel      : kipcd {} (build {:016x}), pid {}, {} loop\n", ki.version,
	    ki.build_id, ki.pid, ki.loop);
	struct kipc_net_stat ns{};
	if (std::string node = node_name(&ns); !node.empty())
		out(o, "node        : {} ({}NATS), {} remote callers here, {} requests "
		       "waiting on other nodes\n", node, ns.connected ? "" : "not connected to ",
		    ns.nproxies, ns.noutstanding);
	out(o, "uptime      : {}\n", duration(si.uptime));
	out(o, "tasks       : {} ({} parked requests)\n", si.ntasks, si.nparked);
	out(o, "mailboxes   : {}\n", si.nmboxes);
	out(o, "messages    : {} queued, {} waiting to enter, {} bytes\n", si.nmsg, si.npending,
	    human(si.nbytes));
	out(o, "since boot  : {} sent, {} delivered, {} timeouts, {} cancels\n", si.nsent,
	    si.ndelivered, si.ntimeouts, si.ncancels);
	out(o, "            : {} attaches, {} exits, {} mailboxes destroyed\n", si.nattach,
	    si.nexit, si.ndestroyed);
	out(o, "tracers     : {}\n", si.ntracers);
	out(o, "you ({})  : {} of {} mailboxes, {} of {} bytes\n", user_name(si.uid),
	    si.user_mboxes, si.mbox_per_user, human(si.user_bytes), human(si.bytes_per_user));
}

void mbox_detail(Out &o, json *j, const std::string &arg)
{
	int64_t id = resolve_mbox(arg);
	MboxInfo m = mbox_info(arg, id);
	auto waiters = fetch_all<kipc_waiter_info>(
		[id](kipc_waiter_info *b, size_t n) { return kipc_waiter_list(id, 0, b, n); },
		"waiters");
	auto msgs = fetch_all<kipc_msg_info>(
		[id](kipc_msg_info *b, size_t n) { return kipc_msg_list(id, 0, b, n); },
		"messages");
	TaskInfo me;
	int64_t mono = kipc_task_info(kipc_task_pid(), &me) == 0 ? me.now : 0;
	int64_t real = realtime_ns();
	if (j) {
		json jm = j_mbox(m);
		json jw = json::array();
		for (const auto &w : waiters) {
			json x;
			x["pid"] = w.pid;
			if (std::string l = pid_label(w.pid); l != std::to_string(w.pid))
				x["remote"] = l; /* "NODE:PID" of a remote caller */
			x["kind"] = waiter_kind(w.kind);
			x["owner"] = bool(w.flags & KIPC_WAITER_F_OWNER);
			if (w.kind != KIPC_WAITER_HOLDER) {
				x["syscall"] = w.op ? syscall_name(w.op) : "";
				x["waited_ns"] = w.since ? mono - w.since : 0;
				x["timeout_ns"] = w.deadline ? w.deadline - mono : -1;
				x["seq"] = w.seq;
				x["len"] = w.len;
			}
			jw.push_back(x);
		}
		json jq = json::array();
		for (const auto &q : msgs) {
			json x;
			x["seq"] = q.seq;
			x["sender"] = q.sender;
			if (KIPC_NET_IS_PID(q.sender))
				x["remote"] = pid_label(q.sender);
			x["len"] = q.len;
			x["prio"] = q.prio;
			x["type"] = q.type;
			x["age_ns"] = real - q.stime;
			x["pending"] = bool(q.flags & KIPC_MSG_PENDING);
			x["call"] = bool(q.flags & KIPC_MSG_CALL);
			jq.push_back(x);
		}
		jm["waiters"] = jw;
		jm["queued"] = jq;
		(*j)["mailbox"] = jm;
		return;
	}
	const auto &st = m.st;
	out(o, "------ Mailbox {} ------\n", st.id);
	out(o, "name        : {}\n", name_or_dash(st.name));
	out(o, "owner       : {} (uid {}, gid {}), created by uid {}\n", user_name(st.attr.uid),
	    st.attr.uid, st.attr.gid, st.cuid);
	out(o, "owning task : {}\n", st.owner ? std::to_string(st.owner) : "none (orphaned)");
	if (st.attr.flags & (KIPC_MBOX_POSIX | KIPC_MBOX_SYSV))
		out(o, "ownership   : kernel-owned ({} message queue)\n",
		    st.attr.flags & KIPC_MBOX_POSIX ? "POSIX" : "System V");
	else
		out(o, "ownership   : {}-owned\n", kind_name(st));
	out(o, "mode        : {} ({:04o})\n", mode_string(st.attr.mode), st.attr.mode);
	out(o, "policy      : {}", policy_name(st.attr.policy));
	if (st.attr.policy == KIPC_POLICY_PAIR)
		out(o, " (sender {}, receiver {})", m.pair_sender, m.pair_receiver);
	if (st.attr.policy == KIPC_POLICY_EXCLUSIVE && m.excl)
		out(o, " (inside: {})", m.excl);
	if (st.attr.policy == KIPC_POLICY_ROUND_ROBIN)
		out(o, " (next: {})", m.rr_next);
	out(o, "\n");
	out(o, "capacity    : {} messages, {} bytes, {} per message{}\n",
	    capacity_string(st.attr.capacity),
	    st.attr.capacity == KIPC_UNBOUNDED ? "inf" : human(st.attr.qbytes),
	    human(st.attr.msgsize), st.attr.flags & KIPC_MBOX_FIXED ? " (fixed)" : "");
	out(o, "queued      : {} messages, {} bytes\n", st.nmsg, human(st.nbytes));
	out(o, "waiting     : {} senders ({} cached), {} receivers, {} holders\n", st.nsenders,
	    m.ncached, st.nreceivers, st.nholders);
	out(o, "counters    : {} sent, {} received; last sender {}, last receiver {}\n",
	    st.nsent, st.nreceived, pid_label(st.lspid), pid_label(st.lrpid));
	out(o, "\n{:<8} {:<9} {:<16} {:>9} {:>9} {:>8}\n", "PID", "WAITER", "SYSCALL", "WAITED",
	    "TIMEOUT", "LEN");
	for (const auto &w : waiters) {
		if (w.kind == KIPC_WAITER_HOLDER) {
			out(o, "{:<8} {:<9} {:<16}\n", pid_label(w.pid),
			    w.flags & KIPC_WAITER_F_OWNER ? "owner" : "holder", "-");
			continue;
		}
		out(o, "{:<8} {:<9} {:<16} {:>9} {:>9} {:>8}\n", pid_label(w.pid), waiter_kind(w.kind),
		    w.op ? syscall_name(w.op) : "-", w.since ? duration(mono - w.since) : "-",
		    w.deadline ? duration(w.deadline - mono) : "-", human(w.len));
	}
	out(o, "\n{:<8} {:<8} {:>8} {:>6} {:>6} {:>9} {}\n", "SEQ", "SENDER", "LEN", "PRIO", "TYPE",
	    "AGE", "");
	if (msgs.empty())
		out(o, "(no messages queued)\n");
	for (const auto &q : msgs)
		out(o, "{:<8} {:<8} {:>8} {:>6} {:>6} {:>9} {}\n", q.seq, pid_label(q.sender), human(q.len),
		    q.prio, q.type, duration(real - q.stime),
		    q.flags & KIPC_MSG_PENDING ? "(sender waiting)" : "");
}

/* One snapshot of the selected view, as text or JSON. */
std::string render(const Options &o)
{
	Out b;
	json j;
	if (o.json) {
		j["schema"] = "kipcs/1";
		j["socket"] = socket_path();
	}
	switch (o.view) {
	case View::Default: {
		auto mv = mboxes();
		auto tv = tasks(o);
		if (o.json) {
			j["mailboxes"] = json::array();
			for (const auto &m : mv)
				j["mailboxes"].push_back(j_mbox(m));
			j["tasks"] = json::array();
			for (const auto &t : tv)
				j["tasks"].push_back(j_task(t));
		} else {
			text_mboxes(b, mv);
			out(b, "\n");
			text_taskqs(b, tv);
		}
		break;
	}
	case View::Tasks: {
		auto tv = tasks(o);
		if (o.json) {
			j["tasks"] = json::array();
			for (const auto &t : tv)
				j["tasks"].push_back(j_task(t));
		} else {
			text_tasks(b, tv);
		}
		break;
	}
	case View::Mbox:
		mbox_detail(b, o.json ? &j : nullptr, o.mbox);
		break;
	case View::Limits:
		if (o.json)
			j["limits"] = j_limits(sysinfo());
		else
			text_limits(b, sysinfo());
		break;
	case View::Usage:
		if (o.json)
			j["usage"] = j_usage(sysinfo()), j["kernel"] = j_kernel(kernel_info());
		else
			text_usage(b, sysinfo());
		break;
	}
	if (o.json)
		return (o.watch ? j.dump() : j.dump(2)) + "\n";
	return fmt::to_string(b);
}

void usage(FILE *f)
{
	fmt::print(f,
		   "usage: kipcs [-t | -m ID|NAME | -l | -u] [--json] [--watch[=SECONDS]] [-a]\n"
		   "Show the kipc kernel's mailboxes and task queues (default), or:\n"
		   "  -t, --tasks          tasks: state, what they wait in, counters\n"
		   "  -m, --mbox ID|NAME   one mailbox: attributes, waiters, queued messages\n"
		   "  -l, --limits         the kernel's limits\n"
		   "  -u, --usage          usage summary and counters since boot\n"
		   "  -j, --json           JSON (schema: Documentation/kipcs-json.md)\n"
		   "  -w, --watch[=SEC]    redraw every SEC seconds (default 1) until Ctrl-C\n"
		   "  -a, --all            include kipcs's own task\n"
		   "  -h, --help           this help\n"
		   "      --version        print the version\n"
		   "The kernel is the one at {}; kipcs never starts one.\n",
		   socket_note());
}

} // namespace

int main(int argc, char **argv)
{
	prog = "kipcs";
	Options o;
	static const option longopts[] = {
		{"tasks", no_argument, nullptr, 't'},  {"mbox", required_argument, nullptr, 'm'},
		{"limits", no_argument, nullptr, 'l'}, {"usage", no_argument, nullptr, 'u'},
		{"json", no_argument, nullptr, 'j'},   {"watch", optional_argument, nullptr, 'w'},
		{"all", no_argument, nullptr, 'a'},    {"help", no_argument, nullptr, 'h'},
		{"version", no_argument, nullptr, 'V'}, {nullptr, 0, nullptr, 0},
	};
	int views = 0;
	opterr = 0;
	for (int c; (c = getopt_long(argc, argv, ":tm:lujw::ah", longopts, nullptr)) != -1;) {
		switch (c) {
		case 't': o.view = View::Tasks; views++; break;
		case 'm': o.view = View::Mbox; o.mbox = optarg; views++; break;
		case 'l': o.view = View::Limits; views++; break;
		case 'u': o.view = View::Usage; views++; break;
		case 'j': o.json = true; break;
		case 'a': o.all = true; break;
		case 'w': {
			o.watch = 1;
			/* --watch=2, -w2, and also --watch 2, -w 2 (kipcs takes no
			 * other operand, so a number after it is the interval). */
			const char *arg = optarg;
			if (!arg && optind < argc && argv[optind][0] &&
			    strspn(argv[optind], "0123456789.") == strlen(argv[optind]))
				arg = argv[optind++];
			if (arg) {
				char *end;
				o.watch = strtod(arg, &end);
				if (*end || !(o.watch >= 0.1 && o.watch <= 86400))
					tool_usage_error("kipcs", "invalid --watch interval '%s' "
							 "(0.1 to 86400 seconds)", arg);
			}
			break;
		}
		case 'h': usage(stdout); return 0;
		case 'V': tool_print_version("kipcs"); return 0;
		default: tool_bad_option("kipcs", argv, c);
		}
	}
	if (optind < argc)
		tool_usage_error("kipcs", "unexpected argument '%s'", argv[optind]);
	if (views > 1)
		tool_usage_error("kipcs", "choose one of -t, -m, -l, -u");

	attach();
	if (!o.watch) {
		fmt::print("{}", render(o));
		return 0;
	}
	struct sigaction sa {};
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, nullptr);
	sigaction(SIGTERM, &sa, nullptr);
	bool tty = isatty(STDOUT_FILENO);
	while (!stop) {
		std::string s = render(o);
		if (o.json) {
			fmt::print("{}", s);
		} else {
			time_t now = time(nullptr);
			char hms[16];
			strftime(hms, sizeof hms, "%H:%M:%S", localtime(&now));
			fmt::print("{}Every {:.1f}s: kipcs   {}   {}\n\n{}", tty ? "\x1b[H\x1b[2J" : "",
				   o.watch, socket_path(), hms, s);
			if (!tty)
				fmt::print("\n");
		}
		fflush(stdout);
		timespec ts{time_t(o.watch), long((o.watch - time_t(o.watch)) * 1e9)};
		while (!stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return 0;
}
