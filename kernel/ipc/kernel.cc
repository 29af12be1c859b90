// SPDX-License-Identifier: MIT
/*
 * The boot limits, the debug-time invariant checks and the kernel's
 * teardown. What hosts call (the Kernel facade, kernel.h) is the syscall
 * layer's: kernel/syscalls/entry.cc.
 */
#include <charconv>
#include <cstdio>
#include <cstdlib>

#include "ipc.h"

namespace kipc {

/* ---- limits ------------------------------------------------------- */

#define KIPC_LIMIT_PARAMS(X)                                  \
	X(msg_default, CONFIG_MSG_DEFAULT, 1, 65536)           \
	X(msg_max, CONFIG_MSG_MAX, 1, 65536)                   \
	X(msgsize_default, CONFIG_MSGSIZE_DEFAULT, 0, 16777216) \
	X(msgsize_max, CONFIG_MSGSIZE_MAX, 128, 16777216)      \
	X(mbox_per_user, CONFIG_MBOX_PER_USER, 1, 1u << 24)    \
	X(bytes_per_user, CONFIG_BYTES_PER_USER, 1024, 1ull << 30) \
	X(taskq_capacity, CONFIG_TASKQ_CAPACITY, 0, 65536)     \
	X(tasks_per_user, CONFIG_TASKS_PER_USER, 1, 1048576)    \
	X(mq_msg_default, 10, 1, 65536)                        \
	X(mq_msg_max, 10, 1, 65536)                            \
	X(mq_msgsize_default, 8192, 128, 16777216)             \
	X(mq_msgsize_max, 8192, 128, 16777216)                 \
	X(mq_queues_max, 256, 0, 1u << 30)                     \
	X(mq_bytes_per_user, 819200, 0, 1ull << 40)            \
	X(msgmax, 8192, 0, 65536)                              \
	X(msgmnb, 16384, 0, 1u << 30)                          \
	X(msgmni, 32000, 0, 1u << 24)                          \
	X(ipcmni_extend, 0, 0, 1)                              \
	X(trace_bytes_per_user, 8388608, 0, 1ull << 34)        \
	X(hello_timeout_ms, 5000, 1, 600000)                   \
	X(push_idle_ms, 1000, 1, 600000)                       \
	X(credit_idle_ms, 1000, 1, 600000)

Limits Limits::from_config()
{
	Limits l;
#define KIPC_LIMIT_INIT_(name, def, lo, hi) l.name = def;
	KIPC_LIMIT_PARAMS(KIPC_LIMIT_INIT_)
#undef KIPC_LIMIT_INIT_
#ifdef CONFIG_ROOT_BYPASS
	l.root_bypass = true;
#else
	l.root_bypass = false;
#endif
	return l;
}

const char *const Limits::param_names[] = {
#define KIPC_LIMIT_NAME_(name, def, lo, hi) #name,
	KIPC_LIMIT_PARAMS(KIPC_LIMIT_NAME_)
#undef KIPC_LIMIT_NAME_
	"root_bypass",
	nullptr,
};

int Limits::set(std::string_view name, std::string_view value)
{
	bool known = false; /* an unknown name is ENOENT whatever its value */
	for (const char *const *n = param_names; *n && !known; n++)
		known = name == *n;
	if (!known)
		return -ENOENT;
	uint64_t v;
	auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
	if (ec != std::errc() || end != value.data() + value.size())
		return -EINVAL;
#define KIPC_LIMIT_SET_(n, def, lo, hi)                         \
	if (name == #n) {                                      \
		if (v + 1 < uint64_t(lo) + 1 || v > uint64_t(hi)) \
			return -EINVAL;                        \
		n = decltype(n)(v);                            \
		return 0;                                      \
	}
	KIPC_LIMIT_PARAMS(KIPC_LIMIT_SET_)
#undef KIPC_LIMIT_SET_
	if (name == "root_bypass") {
		if (v > 1)
			return -EINVAL;
		root_bypass = v;
		return 0;
	}
	return -ENOENT;
}

namespace {

/* Each default and the hard limit it must not exceed. */
struct LimitPair {
	const char *def, *max;
	uint32_t Limits::*d, Limits::*m;
};
const LimitPair limit_pairs[] = {
	{"msg_default", "msg_max", &Limits::msg_default, &Limits::msg_max},
	{"taskq_capacity", "msg_max", &Limits::taskq_capacity, &Limits::msg_max},
	{"msgsize_default", "msgsize_max", &Limits::msgsize_default, &Limits::msgsize_max},
};

} // namespace

int Limits::validate() const
{
	return conflict().empty() ? 0 : -EINVAL;
}

std::string Limits::conflict() const
{
	for (const LimitPair &p : limit_pairs)
		if (this->*p.d > this->*p.m)
			return std::string(p.def) + "=" + std::to_string(this->*p.d) +
			       " exceeds " + p.max + "=" + std::to_string(this->*p.m);
	if (!ipcmni_extend && msgmni > uint32_t(kIdxMax)) /* Linux's IPCMNI */
		return "msgmni=" + std::to_string(msgmni) + " exceeds 32768 (ipcmni_extend=0)";
	return {};
}

std::string Limits::describe() const
{
	std::string s;
#define KIPC_LIMIT_DESCRIBE_(n, def, lo, hi) \
	s += std::string(#n "=") + std::to_string(n) + " ";
	KIPC_LIMIT_PARAMS(KIPC_LIMIT_DESCRIBE_)
#undef KIPC_LIMIT_DESCRIBE_
	return s + "root_bypass=" + (root_bypass ? "1" : "0");
}

std::string Limits::fit_defaults(const std::vector<std::string> &given)
{
	auto was_given = [&](const char *name) {
		for (const std::string &g : given)
			if (g == name)
				return true;
		return false;
	};
	std::string lowered;
	for (const LimitPair &p : limit_pairs) {
		if (this->*p.d <= this->*p.m || was_given(p.def))
			continue;
		this->*p.d = this->*p.m;
		lowered += (lowered.empty() ? "" : " ") + std::string(p.def) + "=" +
			   std::to_string(this->*p.d);
	}
	return lowered;
}

/* ---- debug checks ------------------------------------------------- */

static void default_bug_handler(const char *file, int line, const char *what)
{
	std::fprintf(stderr, "kipc: BUG at %s:%d: %s\n", file, line, what);
	std::abort();
}

BugHandler kipc_bug_handler = default_bug_handler;

void kipc_bug(const char *file, int line, const char *what)
{
	kipc_bug_handler(file, line, what);
}

/*
 * Walk every object and check what the fast paths keep incrementally:
 * queue counters, per-user byte charges, mailbox counts, rights in both
 * directions, parked requests. O(everything): CONFIG_DEBUG_CHECKS only.
 */
void KernelImpl::check_invariants() const
{
	Charges c; /* the mechanisms add theirs */
	auto &bytes = c.bytes;
	auto check_store = [&](const MsgStore &s) {
		uint32_t n = 0;
		uint64_t b = 0;
		s.for_each_unordered([&](Message *m) {
			KIPC_BUG_ON(m->where != s.where);
			n++;
			b += m->len;
			bytes[m->quota_uid] += message_charge(m->len, m->flags & kMsgExt);
		});
		KIPC_BUG_ON(n != s.nmsg);
		KIPC_BUG_ON(b != s.nbytes);
	};
	auto check_link = [&](const Link &l) {
		check_store(l.msgs);
		check_store(l.pending());
		KIPC_BUG_ON(!l.unbounded() && l.pending().nmsg && l.msgs.nmsg < l.capacity &&
			    l.pending().front() && l.msgs.nbytes + l.pending().front()->len <= l.qbytes);
		/* a waiting multishot receive never sits next to a message it takes (bundle.cc) */
		l.receivers().for_each([&](WaitEntry *w) {
			KIPC_BUG_ON(w->req->multishot &&
				    (l.msgs.find(w->req->sel) || l.pending().find(w->req->sel)));
		});
	};
	std::unordered_map<uid_t, uint32_t> ntasks;
	int dummy;
	for (const auto &[pid, t] : tasks) {
		check_link(t->queue);
		if (t->attached)
			ntasks[t->uid]++;
		const Task *tp = t.get(); /* clang 14: no lambda capture of a binding */
		t->held.for_each([&](Holder *h) {
			KIPC_BUG_ON(h->task != tp || !h->mb->holds(tp));
		});
		t->parked.for_each([&](Request *r) {
			KIPC_BUG_ON(r->task != tp);
			uid_t uid;
			if (uint64_t b = bundle_charge(*r, &uid)) /* a parked bundle's rest */
				bytes[uid] += b;
		});
	}
	mbox.for_each([&](const Mailbox *mbp) {
		const Mailbox &mb = *mbp;
		KIPC_BUG_ON(mbox.find(mb.id, &dummy) != &mb);
		check_link(mb.link);
		for (size_t i = 0; i < mb.holders.size(); i++) /* on its task's list */
			KIPC_BUG_ON(mb.holders.holder(i)->mb != &mb || !mb.holders.holder(i)->node.linked());
		KIPC_BUG_ON(mb.owner && !mb.holds(mb.owner));
	});
	mbox.charges(c);
	for (const Mechanism *m : mechs)
		m->charges(c);
	for (const auto &[uid, acct] : users) {
		KIPC_BUG_ON(acct.bytes != bytes[uid] + acct.credit_bytes + acct.host_bytes);
		KIPC_BUG_ON(acct.mailboxes != c.mailboxes[uid]);
		KIPC_BUG_ON(acct.tasks != ntasks[uid]);
	}
	for (const auto &[deadline, r] : timers)
		KIPC_BUG_ON(!r->task_node.linked() || r->deadline != deadline);
}

void KernelImpl::debug_check()
{
	if (!check_every || ++check_skipped < check_every)
		return;
	check_skipped = 0;
	check_invariants();
}

KernelImpl::~KernelImpl()
{
	dying = true;
	while (!tasks.empty())
		exit_task(tasks.begin()->second.get());
	mbox.for_each([&](Mailbox *mb) { mbox.destroy_mbox(mb); });
}

} // namespace kipc
