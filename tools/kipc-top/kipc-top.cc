// SPDX-License-Identifier: MIT
/*
 * kipc-top: a live, full-screen picture of the kipc kernel (ncurses),
 * refreshed in place: every mailbox and task queue as a bar of its
 * slots, who is blocked on it and for how long, send and receive rates,
 * your usage against the quotas, a pane with the live trace; sort and
 * filter keys; drill-down into one mailbox or task. See
 * Documentation/man/kipc-top.1.
 *
 * Like the other tools it never starts a kernel.
 */
#include <algorithm>
#include <csignal>
#include <ctime>
#include <deque>
#include <getopt.h>
#include <map>
#include <optional>
#include <ncurses.h>
#include <string>
#include <vector>

#include "../include/tool.h"

using namespace tool;

namespace {

int64_t mono_ns()
{
	return kipc_clock_ns(CLOCK_MONOTONIC);
}

int64_t real_ns()
{
	return kipc_clock_ns(CLOCK_REALTIME);
}

/* One row of the main table: a mailbox or a task queue. */
struct Row {
	bool taskq = false;
	int64_t key = 0;          /* mailbox id, or pid */
	std::string name;         /* mailbox name, or "pid:N comm" */
	std::string user;
	std::string kind;         /* kernel, process, posix, sysv, taskq */
	std::string policy;
	uint32_t nmsg = 0, capacity = 0;
	uint64_t nbytes = 0, qbytes = 0;
	uint64_t nsent = 0, nreceived = 0;
	double send_rate = 0, recv_rate = 0;
	std::vector<kipc_waiter_info> waiters;
	bool hidden = false;
};

enum class Sort { Id, Name, Queued, Rate, Waiters };
const char *sort_name(Sort s)
{
	switch (s) {
	case Sort::Id: return "id";
	case Sort::Name: return "name";
	case Sort::Queued: return "queued";
	case Sort::Rate: return "rate";
	case Sort::Waiters: return "waiters";
	}
	return "?";
}

struct State {
	double interval = 1.0;
	bool trace = true;
	bool trace_ok = false;
	Sort sort = Sort::Id;
	std::string filter;
	bool paused = false;
	int selected = 0;
	/* drill-down: 0 none, else the row's key (mailbox id / pid) */
	bool detail = false;
	bool detail_taskq = false;
	int64_t detail_key = 0;
	/* rates: previous counters per row */
	std::map<std::pair<bool, int64_t>, std::pair<uint64_t, uint64_t>> prev;
	int64_t prev_ns = 0;
	uint64_t prev_sent = 0, prev_delivered = 0;
	double sys_send_rate = 0, sys_deliver_rate = 0;
	std::deque<std::string> trace_lines;
	std::string message; /* a one-line note at the bottom */
};

volatile sig_atomic_t stop;
void on_signal(int) { stop = 1; }

const char *kind_name(const MboxStat &st)
{
	if (st.attr.flags & KIPC_MBOX_POSIX)
		return "posix";
	if (st.attr.flags & KIPC_MBOX_SYSV)
		return "sysv";
	return st.attr.flags & KIPC_MBOX_KERNEL_OWNED ? "kernel" : "process";
}

/* [####....] 4/8: one character per slot up to 16 slots, else scaled. */
std::string bar(uint32_t n, uint32_t cap)
{
	if (cap == KIPC_UNBOUNDED)
		return fmt::format("[{:<16}] {}/inf", std::string(std::min<uint32_t>(n, 16), '#'), n);
	if (cap == 0)
		return fmt::format("[{:<16}] 0/0", "rendezvous");
	uint32_t width = std::min<uint32_t>(cap, 16);
	uint32_t full = uint32_t((uint64_t(std::min(n, cap)) * width + cap - 1) / cap);
	std::string b = std::string(full, '#') + std::string(width - full, '.');
	return fmt::format("[{:<16}] {}/{}", b, n, cap);
}

const char *waiter_letter(uint32_t kind)
{
	switch (kind) {
	case KIPC_WAITER_RECEIVER: return "R";
	case KIPC_WAITER_SENDER: return "S";
	case KIPC_WAITER_CACHED: return "C";
	}
	return "?";
}

/* "S:1234 2.1s R:5678 300ms" */
std::string blocked_string(const Row &r, int64_t mono)
{
	std::string s;
	for (const auto &w : r.waiters) {
		if (w.kind == KIPC_WAITER_HOLDER)
			continue;
		s += fmt::format("{}{}:{} {}", s.empty() ? "" : " ", waiter_letter(w.kind), pid_label(w.pid),
				 w.since ? duration(mono - w.since) : "-");
	}
	return s.empty() ? "-" : s;
}

size_t nwaiting(const Row &r)
{
	return size_t(std::count_if(r.waiters.begin(), r.waiters.end(),
				    [](auto &w) { return w.kind != KIPC_WAITER_HOLDER; }));
}

/* A list call that may fail for one object (it went away): empty then. */
template <class T, class F>
std::vector<T> try_list(F fn)
{
	size_t cap = 64;
	for (;;) {
		std::vector<T> v(cap);
		ssize_t n = fn(v.data(), cap);
		if (n < 0) {
			if (errno == ECONNREFUSED || errno == ECONNRESET)
				die(kernel_error(errno));
			return {};
		}
		if (size_t(n) <= cap || cap >= 4096) {
			v.resize(std::min(size_t(n), cap));
			return v;
		}
		cap = std::min<size_t>(std::max(size_t(n), cap * 2), 4096);
	}
}

std::vector<Row> collect(State &s, SysInfo &si, int64_t *mono)
{
	if (kipc_sysinfo(&si) < 0)
		die_errno("sysinfo", errno);
	auto mv = fetch_all<MboxInfo>(kipc_mbox_list, "mailbox list");
	auto tv = fetch_all<TaskInfo>(kipc_task_list, "task list");
	int64_t now = mono_ns();
	*mono = now;
	for (const auto &t : tv)
		if (t.now)
			*mono = t.now;
	std::vector<Row> rows;
	for (const auto &m : mv) {
		Row r;
		r.key = m.st.id;
		r.name = m.st.name[0] ? m.st.name : "(anonymous)";
		r.user = user_name(m.st.attr.uid);
		r.kind = kind_name(m.st);
		r.policy = policy_name(m.st.attr.policy);
		r.nmsg = m.st.nmsg;
		r.capacity = m.st.attr.capacity;
		r.nbytes = m.st.nbytes;
		r.qbytes = m.st.attr.qbytes;
		r.nsent = m.st.nsent;
		r.nreceived = m.st.nreceived;
		int64_t id = m.st.id;
		r.waiters = try_list<kipc_waiter_info>(
			[id](kipc_waiter_info *b, size_t n) { return kipc_waiter_list(id, 0, b, n); });
		rows.push_back(std::move(r));
	}
	for (const auto &t : tv) {
		if (t.flags & KIPC_INFO_SELF)
			continue;
		Row r;
		r.taskq = true;
		r.key = t.pid;
		r.name = fmt::format("pid:{} {}", pid_label(t.pid), t.comm); /* a remote caller: NODE:PID */
		r.user = user_name(t.uid);
		r.kind = "taskq";
		r.policy = state_name(t.state);
		r.hidden = t.flags & KIPC_INFO_HIDDEN;
		r.nmsg = t.nmsg;
		r.capacity = t.capacity;
		r.nbytes = t.nbytes;
		r.qbytes = t.qbytes;
		r.nsent = t.nsent;
		r.nreceived = t.nreceived;
		if (!r.hidden) {
			pid_t pid = t.pid;
			r.waiters = try_list<kipc_waiter_info>([pid](kipc_waiter_info *b, size_t n) {
				return kipc_waiter_list(pid, KIPC_INTRO_TASKQ, b, n);
			});
		}
		rows.push_back(std::move(r));
	}
	/* rates since the previous snapshot */
	double dt = s.prev_ns ? double(now - s.prev_ns) / 1e9 : 0;
	decltype(s.prev) next;
	for (auto &r : rows) {
		auto k = std::make_pair(r.taskq, r.key);
		auto it = s.prev.find(k);
		if (dt > 0 && it != s.prev.end()) {
			r.send_rate = double(r.nsent - it->second.first) / dt;
			r.recv_rate = double(r.nreceived - it->second.second) / dt;
		}
		next[k] = {r.nsent, r.nreceived};
	}
	if (dt > 0) {
		s.sys_send_rate = double(si.nsent - s.prev_sent) / dt;
		s.sys_deliver_rate = double(si.ndelivered - s.prev_delivered) / dt;
	}
	s.prev = std::move(next);
	s.prev_ns = now;
	s.prev_sent = si.nsent;
	s.prev_delivered = si.ndelivered;

	if (!s.filter.empty())
		std::erase_if(rows, [&](const Row &r) {
			return r.name.find(s.filter) == std::string::npos &&
			       r.user.find(s.filter) == std::string::npos;
		});
	std::stable_sort(rows.begin(), rows.end(), [&](const Row &a, const Row &b) {
		switch (s.sort) {
		case Sort::Id: return std::make_pair(a.taskq, a.key) < std::make_pair(b.taskq, b.key);
		case Sort::Name: return a.name < b.name;
		case Sort::Queued: return a.nmsg > b.nmsg;
		case Sort::Rate: return a.send_rate + a.recv_rate > b.send_rate + b.recv_rate;
		case Sort::Waiters: return nwaiting(a) > nwaiting(b);
		}
		return false;
	});
	return rows;
}

std::string trace_line(const kipc_trace_event &e)
{
	std::string link = e.mbox ? fmt::format("mbox={}", e.mbox)
				  : e.qpid ? fmt::format("taskq={}", e.qpid) : "";
	std::string s = fmt::format("{:>10.6f} {:>15.15s}-{:<7} {:<8} {}", double(e.ts) / 1e9,
				    e.comm, pid_label(e.pid), event_name(e.event), link);
	if (e.seq)
		s += fmt::format(" seq={}", e.seq);
	if (e.event == KIPC_TRACE_SEND || e.event == KIPC_TRACE_ENQUEUE ||
	    e.event == KIPC_TRACE_DELIVER)
		s += fmt::format(" len={}", e.len);
	if (e.event == KIPC_TRACE_BLOCK && e.op != KIPC_SYS_NONE)
		s += fmt::format(" in {}", syscall_name(e.op));
	if (e.event == KIPC_TRACE_DELIVER && e.peer)
		s += fmt::format(" from={}", e.peer);
	if (e.event == KIPC_TRACE_WAKE && e.peer)
		s += fmt::format(" by={}", e.peer);
	if (e.event == KIPC_TRACE_LOST)
		s += fmt::format(" lost={}", e.res);
	return s;
}

void read_trace(State &s)
{
	if (!s.trace_ok)
		return;
	kipc_trace_event ev[256];
	for (int round = 0; round < 16; round++) {
		ssize_t n = kipc_trace_read(ev, 256, KIPC_F_NONBLOCK);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			/* our own introspection calls are not what the user watches */
			if (ev[i].pid == kipc_task_pid() && ev[i].event != KIPC_TRACE_LOST)
				continue;
			if (ev[i].event == KIPC_TRACE_NETNAME)
				continue; /* the rest of a net record's name: the pane has none */
			s.trace_lines.push_back(trace_line(ev[i]));
			if (s.trace_lines.size() > 500)
				s.trace_lines.pop_front();
		}
	}
}

void put(int y, int x, const std::string &str, int maxw)
{
	if (y < 0 || y >= LINES || maxw <= 0)
		return;
	mvaddnstr(y, x, str.c_str(), maxw);
}

void draw_header(const State &s, const SysInfo &si, int *y)
{
	attron(A_BOLD);
	put((*y)++, 0, fmt::format("kipc-top  {}  up {}  tasks {}  mailboxes {}  queued {} ({})  "
				   "sent {:.0f}/s  delivered {:.0f}/s{}",
				   socket_path(), duration(si.uptime), si.ntasks - 1, si.nmboxes, si.nmsg,
				   human(si.nbytes), s.sys_send_rate, s.sys_deliver_rate,
				   s.paused ? "  [paused]" : ""),
	    COLS);
	attroff(A_BOLD);
	/* the caller's user against its quotas (the kernel tells each user its own) */
	auto quota = [](uint64_t used, uint64_t max) {
		uint32_t w = 10, f = max ? uint32_t(std::min<uint64_t>(used * w / max, w)) : 0;
		if (max && used && !f)
			f = 1;
		return "[" + std::string(f, '#') + std::string(w - f, '.') + "]";
	};
	put((*y)++, 0, fmt::format("user {}: mailboxes {} {}/{}  bytes {} {}/{}  timeouts {}  cancels {}",
				   user_name(si.uid), quota(si.user_mboxes, si.mbox_per_user),
				   si.user_mboxes, si.mbox_per_user, quota(si.user_bytes, si.bytes_per_user),
				   human(si.user_bytes), human(si.bytes_per_user), si.ntimeouts,
				   si.ncancels),
	    COLS);
}

void draw_table(State &s, const std::vector<Row> &rows, int64_t mono, int y, int bottom)
{
	attron(A_REVERSE);
	put(y++, 0, fmt::format("{:<8} {:<22} {:<8} {:<8} {:<11} {:<28} {:>7} {:>6} {:>6}  {}", "ID",
				"NAME", "USER", "KIND", "POLICY", "SLOTS", "BYTES", "SND/s", "RCV/s",
				"BLOCKED (S sender, R receiver, C cached: pid waited)") +
			    std::string(size_t(std::max(0, COLS)), ' '),
	    COLS);
	attroff(A_REVERSE);
	if (s.selected >= int(rows.size()))
		s.selected = std::max(0, int(rows.size()) - 1);
	int room = bottom - y;
	int first = std::max(0, s.selected - room + 1);
	for (int i = first; i < int(rows.size()) && y < bottom; i++, y++) {
		const Row &r = rows[size_t(i)];
		std::string line;
		if (r.hidden)
			line = fmt::format("{:<8} {:<22.22} {:<8.8} {:<8} {:<11} {:<28}", r.key, r.name,
					   r.user, r.kind, r.policy, "(not yours)");
		else
			line = fmt::format("{:<8} {:<22.22} {:<8.8} {:<8} {:<11} {:<28} {:>7} {:>6.0f} "
					   "{:>6.0f}  {}",
					   r.taskq ? "taskq" : std::to_string(r.key), r.name, r.user,
					   r.kind, r.policy, bar(r.nmsg, r.capacity), human(r.nbytes),
					   r.send_rate, r.recv_rate, blocked_string(r, mono));
		if (i == s.selected)
			attron(A_BOLD | A_UNDERLINE);
		put(y, 0, line, COLS);
		if (i == s.selected)
			attroff(A_BOLD | A_UNDERLINE);
	}
	if (rows.empty())
		put(y, 0, s.filter.empty() ? "(no mailboxes or task queues)"
					   : fmt::format("(nothing matches the filter '{}')", s.filter),
		    COLS);
}

void draw_trace(const State &s, int y, int bottom)
{
	attron(A_REVERSE);
	put(y++, 0, std::string(s.trace_ok ? "live trace (t: hide)" : "live trace: unavailable "
				"(another listener of this task?)") + std::string(size_t(std::max(0, COLS)), ' '),
	    COLS);
	attroff(A_REVERSE);
	int n = bottom - y;
	int start = std::max(0, int(s.trace_lines.size()) - n);
	for (int i = start; i < int(s.trace_lines.size()) && y < bottom; i++)
		put(y++, 0, s.trace_lines[size_t(i)], COLS);
}

/* A detail view's queued messages from row y, as many as fit above bottom;
 * with real (the realtime clock now), each message's age. */
void draw_msgs(const std::vector<kipc_msg_info> &msgs, int y, int bottom,
	       std::optional<int64_t> real)
{
	attron(A_REVERSE);
	put(y++, 0, fmt::format("{:<8} {:<8} {:>8} {:>6} {:>6}{}", "SEQ", "SENDER", "LEN", "PRIO",
				"TYPE", real ? fmt::format(" {:>9}", "AGE") : ""),
	    COLS);
	attroff(A_REVERSE);
	if (msgs.empty() && y < bottom)
		put(y++, 0, "(no messages queued)", COLS);
	for (const auto &q : msgs) {
		if (y >= bottom)
			return;
		std::string age = real ? fmt::format(" {:>9}", duration(*real - q.stime)) : "";
		put(y++, 0, fmt::format("{:<8} {:<8} {:>8} {:>6} {:>6}{} {}", q.seq, q.sender,
					human(q.len), q.prio, q.type, age,
					q.flags & KIPC_MSG_PENDING ? "(sender waiting)" : ""),
		    COLS);
	}
}

void draw_mbox_detail(const State &s, int y, int bottom)
{
	MboxInfo m;
	if (kipc_mbox_info(s.detail_key, &m) < 0) {
		put(y, 0, fmt::format("mailbox {}: {} (Esc: back)", s.detail_key, strerror(errno)), COLS);
		return;
	}
	int64_t id = s.detail_key;
	auto waiters = try_list<kipc_waiter_info>(
		[id](kipc_waiter_info *b, size_t n) { return kipc_waiter_list(id, 0, b, n); });
	auto msgs = try_list<kipc_msg_info>(
		[id](kipc_msg_info *b, size_t n) { return kipc_msg_list(id, 0, b, n); });
	TaskInfo me;
	int64_t mono = kipc_task_info(kipc_task_pid(), &me) == 0 ? me.now : mono_ns();
	int64_t real = real_ns();
	const MboxStat &st = m.st;
	attron(A_BOLD);
	put(y++, 0, fmt::format("Mailbox {} {}  (Esc: back)", st.id, st.name[0] ? st.name : "(anonymous)"),
	    COLS);
	attroff(A_BOLD);
	put(y++, 0, fmt::format("owner {} (uid {}), owning task {}, {}-owned, mode {:04o}, policy {}",
				user_name(st.attr.uid), st.attr.uid, st.owner ? std::to_string(st.owner) : "none",
				kind_name(st), st.attr.mode, policy_name(st.attr.policy)),
	    COLS);
	put(y++, 0, fmt::format("slots {}  bytes {}/{}  msgsize {}{}  sent {}  received {}",
				bar(st.nmsg, st.attr.capacity), human(st.nbytes),
				st.attr.capacity == KIPC_UNBOUNDED ? "inf" : human(st.attr.qbytes),
				human(st.attr.msgsize), st.attr.flags & KIPC_MBOX_FIXED ? " (fixed)" : "",
				st.nsent, st.nreceived),
	    COLS);
	y++;
	attron(A_REVERSE);
	put(y++, 0, fmt::format("{:<8} {:<9} {:<18} {:>9} {:>9} {:>8}", "PID", "WAITER", "SYSCALL",
				"WAITED", "TIMEOUT", "LEN"),
	    COLS);
	attroff(A_REVERSE);
	static const char *kinds[] = {"?", "receiver", "sender", "cached", "holder"};
	for (const auto &w : waiters) {
		if (y >= bottom)
			return;
		put(y++, 0, fmt::format("{:<8} {:<9} {:<18} {:>9} {:>9} {:>8}", pid_label(w.pid),
					w.kind <= 4 ? (w.kind == KIPC_WAITER_HOLDER && w.flags & KIPC_WAITER_F_OWNER
							       ? "owner" : kinds[w.kind]) : "?",
					w.kind == KIPC_WAITER_HOLDER || !w.op ? "-" : syscall_name(w.op),
					w.since ? duration(mono - w.since) : "-",
					w.deadline ? duration(w.deadline - mono) : "-",
					w.kind == KIPC_WAITER_HOLDER ? "-" : human(w.len)),
		    COLS);
	}
	y++;
	draw_msgs(msgs, y, bottom, real);
}

void draw_task_detail(const State &s, int y, int bottom)
{
	TaskInfo t;
	pid_t pid = pid_t(s.detail_key);
	if (kipc_task_info(pid, &t) < 0) {
		put(y, 0, fmt::format("task {}: {} (Esc: back)", pid_label(pid), strerror(errno)), COLS);
		return;
	}
	attron(A_BOLD);
	put(y++, 0, fmt::format("Task {} {}  (Esc: back)", pid_label(t.pid), t.comm), COLS);
	attroff(A_BOLD);
	put(y++, 0, fmt::format("user {}  state {}  parked requests {}  rights held {}  sent {}  received {}",
				user_name(t.uid), state_name(t.state), t.nparked, t.nheld, t.nsent,
				t.nreceived),
	    COLS);
	if (t.flags & KIPC_INFO_HIDDEN) {
		put(y++, 0, "(another user's task: what it waits in is not shown)", COLS);
		return;
	}
	if (t.state == KIPC_TASK_BLOCKED) {
		std::string on = t.wait_mbox ? fmt::format("mailbox {}", t.wait_mbox)
			       : t.wait_pid ? fmt::format("pid {}", pid_label(t.wait_pid)) : "-";
		put(y++, 0, fmt::format("blocked in {} on {} for {}{}", syscall_name(t.wait_op), on,
					duration(t.now - t.wait_since),
					t.wait_deadline ? ", times out in " + duration(t.wait_deadline - t.now)
							: ", no timeout"),
		    COLS);
	} else {
		put(y++, 0, "not blocked", COLS);
	}
	put(y++, 0, fmt::format("task queue {}  bytes {}", bar(t.nmsg, t.capacity), human(t.nbytes)),
	    COLS);
	y++;
	auto msgs = try_list<kipc_msg_info>([pid](kipc_msg_info *b, size_t n) {
		return kipc_msg_list(pid, KIPC_INTRO_TASKQ, b, n);
	});
	draw_msgs(msgs, y, bottom, std::nullopt);
}

void draw(State &s, const std::vector<Row> &rows, const SysInfo &si, int64_t mono)
{
	erase();
	int y = 0;
	draw_header(s, si, &y);
	int bottom = LINES - 1;
	int trace_h = s.trace ? std::max(4, (LINES - y) / 3) : 0;
	int table_bottom = bottom - trace_h;
	if (s.detail) {
		if (s.detail_taskq)
			draw_task_detail(s, y, table_bottom);
		else
			draw_mbox_detail(s, y, table_bottom);
	} else {
		draw_table(s, rows, mono, y, table_bottom);
	}
	if (s.trace)
		draw_trace(s, table_bottom, bottom);
	std::string help = s.message.empty()
				   ? fmt::format("q quit  s sort ({})  / filter{}  Enter details  t trace  "
						 "p pause  +/- interval ({:.1f}s)",
						 sort_name(s.sort),
						 s.filter.empty() ? "" : " ('" + s.filter + "')", s.interval)
				   : s.message;
	attron(A_REVERSE);
	put(bottom, 0, help + std::string(size_t(std::max(0, COLS)), ' '), COLS);
	attroff(A_REVERSE);
	refresh();
}

/* Read a filter string on the bottom line. */
std::string prompt(const std::string &what, const std::string &initial)
{
	std::string text = initial;
	timeout(-1);
	for (;;) {
		attron(A_REVERSE);
		put(LINES - 1, 0, what + text + std::string(size_t(std::max(0, COLS)), ' '), COLS);
		attroff(A_REVERSE);
		move(LINES - 1, int(what.size() + text.size()));
		refresh();
		int c = getch();
		if (c == '\n' || c == KEY_ENTER)
			break;
		if (c == 27)
			return initial;
		if ((c == KEY_BACKSPACE || c == 127 || c == 8) && !text.empty())
			text.pop_back();
		else if (c >= 32 && c < 127)
			text += char(c);
	}
	return text;
}

void usage(FILE *f)
{
	fmt::print(f,
		   "usage: kipc-top [-d SECONDS] [--no-trace] [--filter TEXT] [--sort KEY] [-p PID]\n"
		   "A live picture of the kipc kernel at $KIPC_SOCKET (now {}).\n"
		   "  -d, --delay SEC    refresh every SEC seconds (default 1; 0.1 to 3600)\n"
		   "  -T, --no-trace     no live-trace pane\n"
		   "  -f, --filter TEXT  only rows whose name or user contains TEXT\n"
		   "  -s, --sort KEY     id, name, queued, rate, waiters\n"
		   "  -p, --pid PID      start in the details of task PID (N, or NODE:PID of a\n"
		   "                     remote caller, as kipcs shows it)\n"
		   "Keys: q quit, s sort, / filter, Up/Down select, Enter details, Esc back,\n"
		   "t trace pane, p pause, +/- refresh interval.\n",
		   socket_path());
}

} // namespace

int main(int argc, char **argv)
{
	prog = "kipc-top";
	State s;
	static const option longopts[] = {
		{"delay", required_argument, nullptr, 'd'}, {"no-trace", no_argument, nullptr, 'T'},
		{"filter", required_argument, nullptr, 'f'}, {"sort", required_argument, nullptr, 's'},
		{"pid", required_argument, nullptr, 'p'},
		{"help", no_argument, nullptr, 'h'},         {nullptr, 0, nullptr, 0},
	};
	const char *pid_str = nullptr; /* -p: parse_pid() once attached */
	for (int c; (c = getopt_long(argc, argv, "d:Tf:s:p:h", longopts, nullptr)) != -1;) {
		switch (c) {
		case 'd': {
			char *end;
			s.interval = strtod(optarg, &end);
			if (*end || !(s.interval >= 0.1 && s.interval <= 3600))
				die(fmt::format("invalid delay '{}' (0.1 to 3600 seconds)", optarg), 2);
			break;
		}
		case 'T': s.trace = false; break;
		case 'f': s.filter = optarg; break;
		case 'p': pid_str = optarg; break;
		case 's': {
			std::string k = optarg;
			bool found = false;
			for (Sort v : {Sort::Id, Sort::Name, Sort::Queued, Sort::Rate, Sort::Waiters})
				if (k == sort_name(v)) {
					s.sort = v;
					found = true;
				}
			if (!found)
				die(fmt::format("unknown sort key '{}' (id, name, queued, rate, waiters)", k), 2);
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		die(fmt::format("unexpected argument '{}' (see kipc-top --help)", argv[optind]), 2);
	bool tty = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
	if (!tty && !pid_str)
		die("needs a terminal (for a snapshot use kipcs)", 2);
	attach();
	if (pid_str) {
		int32_t pid;
		TaskInfo ti;
		if (std::string why; !parse_pid(pid_str, &pid, &why))
			die(why, 2);
		if (kipc_task_info(pid, &ti) < 0)
			die(fmt::format("task {}: {}", pid_str, strerror(errno)), 1);
		s.detail = s.detail_taskq = true;
		s.detail_key = pid;
	}
	if (!tty) /* (-p was checked first: a bad PID says so without a terminal) */
		die("needs a terminal (for a snapshot use kipcs)", 2);
	kipc_trace_attr ta{};
	s.trace_ok = kipc_trace_open(&ta) == 0;

	struct sigaction sa {};
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, nullptr);
	sigaction(SIGTERM, &sa, nullptr);

	initscr();
	set_escdelay(25);
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);

	std::vector<Row> rows;
	SysInfo si{};
	int64_t mono = 0;
	int64_t next = 0;
	while (!stop) {
		int64_t now = mono_ns();
		if (now >= next) {
			if (!s.paused) {
				rows = collect(s, si, &mono);
				read_trace(s);
			}
			next = now + int64_t(s.interval * 1e9);
			draw(s, rows, si, mono);
		}
		timeout(int(std::max<int64_t>(1, (next - mono_ns()) / 1'000'000)));
		int c = getch();
		if (c == ERR)
			continue;
		s.message.clear();
		bool redraw = true;
		switch (c) {
		case 'q':
		case 'Q': stop = 1; break;
		case 's': s.sort = Sort((int(s.sort) + 1) % 5); next = 0; break;
		case '/': s.filter = prompt("filter (name or user, empty: all): ", s.filter); next = 0; break;
		case 't': s.trace = !s.trace; break;
		case 'p': s.paused = !s.paused; break;
		case '+': s.interval = std::min(3600.0, s.interval * 2); break;
		case '-': s.interval = std::max(0.1, s.interval / 2); break;
		case KEY_UP: s.selected = std::max(0, s.selected - 1); break;
		case KEY_DOWN: s.selected++; break;
		case '\n':
		case KEY_ENTER:
		case KEY_RIGHT:
			if (!s.detail && s.selected < int(rows.size())) {
				s.detail = true;
				s.detail_taskq = rows[size_t(s.selected)].taskq;
				s.detail_key = rows[size_t(s.selected)].key;
			}
			break;
		case 27:
		case KEY_LEFT:
		case KEY_BACKSPACE:
			s.detail = false;
			break;
		default: redraw = false;
		}
		if (redraw && !stop)
			draw(s, rows, si, mono);
	}
	endwin();
	return 0;
}
