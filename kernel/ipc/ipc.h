// SPDX-License-Identifier: MIT
/*
 * kipc kernel core: private objects shared by kernel/ipc/ and
 * kernel/syscalls/. Nothing here is visible to hosts (see kernel.h).
 *
 * Concurrency. The core runs on one thread and never blocks, so there are
 * no locks: every function below runs to completion on behalf of one task
 * ("current", passed explicitly). What the kernel must get right instead
 * is *ordering*, and the rule is the one Linux ipc/mqueue.c follows:
 *
 *  1. A request that cannot complete is parked: it is linked on the wait
 *     lists of what it waits for, on its task's parked list, and (with a
 *     timeout) on the timer map. Parked requests are owned by the kernel.
 *  2. Whoever completes a parked request (a delivery, a timer, a cancel,
 *     an exit or a destroy) calls finish(), the one function that ends a
 *     request: it unparks it (unlinks it from *every* list), lets the
 *     caller write the completion, posts it and frees the request. A
 *     request is thus completed exactly once: anything that can still
 *     find it on a list has not completed it yet.
 *  3. Expired timers run before every submit(), so "timeout and delivery at
 *     the same instant" has one answer: a wait whose deadline is <= now is
 *     over, and the message goes elsewhere or stays queued.
 *
 * Lookups that must stay cheap as queues grow (no scan of a whole queue):
 *  - queued messages live in per-priority FIFO lists in an ordered map
 *    (O(log P), P = distinct priorities queued, usually 1);
 *  - each message is also on a per-key list (key = sender pid on a task
 *    queue, assigned receiver on a round-robin mailbox) and a per-type list,
 *    both in maps, so receive(from Q) and type selection are O(log) too;
 *  - tasks, mailboxes (id -> slot), names, calls and users are hash maps;
 *  - timeouts are an ordered multimap keyed by deadline.
 * Scans that remain are over *waiters* (tasks inside receive on one link),
 * never over queued messages, except KIPC_F_EXCEPT which visits one list
 * head per distinct type queued.
 */
#pragma once

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <type_traits>
#include <string>
#include <unordered_map>
#include <vector>

#include <generated/autoconf.h>
#include <kernel/kernel.h>
#include <kipc/introspect.h>
#include <kipc/kipc.h>
#include <kipc/mqueue.h>

#include "ids.h"
#include "introspect.h"
#include "list.h"
#include "mailbox.h"
#include "slab.h"
#include "mechanism.h"
#include "mqhandle.h"
#include "mqueue.h"
#include "msg_sysv.h"
#include "rpc.h"
#include "trace.h"

namespace kipc {

/* A handler returns this when it parked the request (Linux's -EIOCBQUEUED). */
constexpr long EQUEUED = 529;

constexpr int64_t kForever = INT64_MAX;

constexpr size_t kRecvSetMax = 64; /* mailboxes in one receive_set */

/* What ipcperms() is asked for: mode bits, as Linux's MAY_READ, MAY_WRITE. */
constexpr uint32_t kMayWrite = 2;
constexpr uint32_t kMayRead = 4;

/* Capabilities the host is asked about (Linux's numbers, capability.h). */
constexpr int kCapSysAdmin = 21;
constexpr int kCapSysResource = 24;

/* System V ids (ids.h): seq * kIdxMax + idx, or with ipcmni_extend
 * seq << 24 | idx, as Linux's IPCMNI and IPCMNI_EXTEND. */
constexpr int32_t kIdxMax = 32768;
constexpr int32_t kSeqMax = 65535;
constexpr unsigned kIdxBitsExtend = 24;
constexpr int32_t kSeqMaxExtend = INT32_MAX >> kIdxBitsExtend; /* 127 */

struct Task;
struct Mailbox;
struct Request;
struct BundleWait; /* a blocking bundle's rest (bundle.cc) */
struct MsgStore;

/*
 * A message: a 44-byte header (Linux's msg_msg is 48 bytes) and its
 * payload, one slab object (msgstore.cc: size classes). The header holds
 * what every queued message needs, packed to 4-byte alignment so that an
 * object is 44 bytes plus its payload class. A message that is typed, a
 * call, or on a link indexed by key (task queues, round-robin mailboxes)
 * also has an extension, MsgExt: its type, call token, route and the
 * hooks of the key and type indexes. Lists link 32-bit slab handles, not
 * pointers; a message's own handle is not stored but derived (handle():
 * its slab chunk's id, kept in `chunk`, and its slot, its place in that
 * chunk). It is in at most one MsgStore at a time (a link's queue, or the
 * pending set of blocked and cached senders), and in that store's indexes.
 */
enum class MsgWhere : uint8_t { None, Queued, Pending };

constexpr uint8_t kMsgExt = 1;   /* ref is a MsgExt handle */
constexpr uint8_t kMsgReq = 2;   /* ref is the sender's Request (no MsgExt) */
constexpr uint8_t kMsgKeyed = 4; /* indexed by route (MsgExt::route) */

struct MsgExt {
	int64_t type;        /* message type (0 when untyped) */
	uint64_t token;      /* call token, 0 when not a call */
	uint32_t key_next, key_prev;   /* in store->by_key[route] (message handles) */
	uint32_t type_next, type_prev; /* in store->by_type[type] */
	pid_t route;         /* index key: sender, or round-robin assignee */
	uint32_t req;        /* sender's Request handle while it waits on it, 0 */
};

#pragma pack(push, 4)
struct Message {
	uint32_t next, prev; /* in its level of store->plain or ->extd (handles) */
	uint64_t seq : 62;   /* kernel-wide sequence number (2^62: never wraps) */
	MsgWhere where : 2;  /* the store of its link it is in */
	int64_t stime;       /* send time, CLOCK_REALTIME ns */
	pid_t sender;        /* sending task */
	uid_t quota_uid;     /* user charged for it */
	uint32_t ref;        /* MsgExt (kMsgExt) or Request (kMsgReq) handle, 0 */
	uint64_t len : 25;   /* payload length (at most 16 MiB: msgsize_max) */
	uint64_t prio : 15;  /* 0..KIPC_PRIO_MAX */
	uint64_t flags : 3;  /* kMsg* */
	uint64_t chunk : 21; /* its slab chunk's id (slab.h: kSlabChunkIdBits) */
	uint8_t data[];      /* payload */

	/* Its slab handle (chunk id and slot): what lists link. */
	uint32_t handle() const { return slab_handle(chunk, this); }
	MsgExt *ext() const { return flags & kMsgExt ? static_cast<MsgExt *>(slab_at(ref)) : nullptr; }
	int64_t type() const { return flags & kMsgExt ? ext()->type : 0; }
	uint64_t token() const { return flags & kMsgExt ? ext()->token : 0; }
	pid_t route() const { return flags & kMsgKeyed ? ext()->route : 0; }
	Request *req() const;
	/* r: its sender waits on it; nullptr: no more (r's handle stored) */
	void set_req(Request *r);
};
#pragma pack(pop)
static_assert(sizeof(Message) == 44 && alignof(Message) == 4);
static_assert(kSlabChunkIdBits == 21 && KIPC_PRIO_MAX < (1 << 15));

/* The message of a handle (0: nullptr). */
inline Message *msg_at(uint32_t h)
{
	return static_cast<Message *>(slab_at(h));
}

/*
 * A message of len payload bytes, with an extension when ext, zeroed but
 * for chunk, len and flags; nullptr when memory or handles ran out.
 * delete_message() gives it back. Neither charges anyone (alloc_message).
 */
Message *new_message(uint32_t len, bool ext);
void delete_message(Message *m);

/* Order of delivery: higher priority first, FIFO within a priority. */
inline bool delivered_before(const Message *a, const Message *b)
{
	return a->prio != b->prio ? a->prio > b->prio : a->seq < b->seq;
}

/*
 * What a receive of m reports besides its result: sender, length,
 * priority, type, sequence number and source; TRUNC when only copied of
 * its bytes were copied out.
 */
inline void describe_received(kipc_cqe &cqe, const Message &m, uint32_t copied, int64_t source)
{
	cqe.flags = copied < m.len ? KIPC_CQE_F_TRUNC : 0;
	cqe.pid = m.sender;
	cqe.len = m.len;
	cqe.prio = m.prio;
	cqe.type = m.type();
	cqe.seq = m.seq;
	cqe.source = source;
}

/* How a list reaches the (next, prev) handles of a message. */
struct HdrHook {
	static uint32_t *links(Message *m) { return &m->next; }
};
struct KeyHook {
	static uint32_t *links(Message *m) { return &m->ext()->key_next; }
};
struct TypeHook {
	static uint32_t *links(Message *m) { return &m->ext()->type_next; }
};

/* A FIFO of messages linked by handle through Hook. */
template <class Hook> struct MsgList {
	uint32_t head = 0, tail = 0;

	bool empty() const { return head == 0; }
	Message *front() const { return msg_at(head); }
	Message *back() const { return msg_at(tail); }
	static Message *next(Message *m) { return msg_at(Hook::links(m)[0]); }
	static Message *prev(Message *m) { return msg_at(Hook::links(m)[1]); }
	/* Insert m, of handle h, after the message of handle pos (0: at the front). */
	void insert_after(uint32_t pos, Message *m, uint32_t h)
	{
		uint32_t *l = Hook::links(m);
		uint32_t &before = pos ? Hook::links(msg_at(pos))[0] : head;
		uint32_t after = before;
		l[0] = after;
		l[1] = pos;
		before = h;
		(after ? Hook::links(msg_at(after))[1] : tail) = h;
	}
	void push_back(Message *m, uint32_t h) { insert_after(tail, m, h); }
	void remove(Message *m)
	{
		uint32_t *l = Hook::links(m);
		(l[1] ? Hook::links(msg_at(l[1]))[0] : head) = l[0];
		(l[0] ? Hook::links(msg_at(l[0]))[1] : tail) = l[1];
		l[0] = l[1] = 0;
	}
	template <class F> void for_each(F &&f) const
	{
		for (Message *m = front(), *n; m; m = n) {
			n = next(m); /* f may unlink m */
			f(m);
		}
	}
};

/*
 * FIFO lists per priority, highest priority first. The first priority
 * used lives inline (queues of one priority allocate nothing; its
 * priority is its messages'); others are in a map from the node slab,
 * made when a second priority appears.
 */
template <class Hook> class PrioList {
public:
	using Level = MsgList<Hook>;
	PrioList() = default;
	PrioList(PrioList &&o) noexcept : l0_(o.l0_), rest_(std::move(o.rest_))
	{
		o.l0_ = Level{};
	}
	PrioList(const PrioList &) = delete;
	PrioList &operator=(const PrioList &) = delete;

	bool empty() const { return l0_.empty() && !rest_; }
	Message *front() const
	{
		if (!rest_)
			return l0_.front();
		Message *r = rest_->begin()->second.front();
		if (l0_.empty())
			return r;
		return p0() > rest_->begin()->first ? l0_.front() : r;
	}
	/* m, of handle h (Message::handle), last of its priority */
	void push(Message *m, uint32_t h) { level_for(m->prio).push_back(m, h); }
	/* The message with the lowest sequence number: O(levels). */
	Message *oldest() const
	{
		Message *best = l0_.front();
		if (rest_)
			for (const auto &[prio, level] : *rest_)
				if (!best || level.front()->seq < best->seq)
					best = level.front();
		return best;
	}
	/* Insert m (handle h) in sequence order: O(messages of its level newer than m). */
	void insert_ordered(Message *m, uint32_t h)
	{
		Level &l = level_for(m->prio);
		uint32_t pos = l.tail;
		while (pos && msg_at(pos)->seq > m->seq)
			pos = Hook::links(msg_at(pos))[1];
		l.insert_after(pos, m, h);
	}
	/* In delivery order. */
	template <class F> void for_each(F &&f) const
	{
		bool done0 = l0_.empty();
		if (rest_)
			for (const auto &[prio, level] : *rest_) {
				if (!done0 && p0() > prio) {
					l0_.for_each(f);
					done0 = true;
				}
				level.for_each(f);
			}
		if (!done0)
			l0_.for_each(f);
	}
	void remove(Message *m)
	{
		if (!l0_.empty() && p0() == m->prio) {
			l0_.remove(m);
			return;
		}
		auto it = rest_->find(m->prio);
		it->second.remove(m);
		if (it->second.empty()) {
			rest_->erase(it);
			if (rest_->empty())
				rest_.reset();
		}
	}

private:
	using Map = std::map<uint16_t, Level, std::greater<uint16_t>,
			     PoolAlloc<std::pair<const uint16_t, Level>>>;
	struct MapDelete {
		void operator()(Map *m) const
		{
			m->~Map();
			PoolAlloc<Map>().deallocate(m, 1);
		}
	};
	Level &level_for(uint16_t prio)
	{
		if (!l0_.empty() && p0() == prio)
			return l0_;
		if (rest_) {
			if (auto it = rest_->find(prio); it != rest_->end())
				return it->second;
		}
		if (l0_.empty())
			return l0_;
		if (!rest_)
			rest_.reset(new (PoolAlloc<Map>().allocate(1)) Map);
		return (*rest_)[prio];
	}

	/* the priority of l0_ (not empty): its messages' */
	uint16_t p0() const { return l0_.front()->prio; }
	Level l0_;
	std::unique_ptr<Map, MapDelete> rest_;
};

/* What a receiver will accept. */
struct Selector {
	pid_t key = 0;        /* 0: any; else only messages with this route */
	bool rr = false;      /* round-robin: route == key or route == 0 */
	bool by_type = false; /* KIPC_F_TYPE */
	bool except = false;  /* KIPC_F_EXCEPT */
	int64_t type = 0;

	bool matches(const Message *m) const;
};

/*
 * A set of messages with the indexes receive needs (msgstore.cc). Messages
 * without an extension are only in `plain`; the others are in `extd`, in
 * by_type and, keyed ones, in by_key. The indexes exist while the store
 * holds a message with an extension (from the node slab).
 */
struct MsgStore {
	explicit MsgStore(MsgWhere w) : where(w) {}
	MsgStore(const MsgStore &) = delete;
	MsgStore &operator=(const MsgStore &) = delete;

	struct Index;
	struct IndexDelete {
		void operator()(Index *i) const;
	};
	PrioList<HdrHook> plain;      /* messages without an extension */
	std::unique_ptr<Index, IndexDelete> idx;
	uint64_t nbytes = 0;          /* payload bytes */
	uint32_t nmsg = 0;            /* messages */
	const MsgWhere where;         /* what its messages' where says */

	void push(Message *m);
	void remove(Message *m);
	Message *front() const;
	/* The message with the lowest sequence number. */
	Message *oldest() const;
	/* Give every message routed to from the route to, keeping order. */
	void rekey(pid_t from, pid_t to);
	/* The first message sel accepts, in delivery order, or nullptr. */
	Message *find(const Selector &sel) const;
	/* Every message in delivery order (introspection; O(n log n)). */
	void for_each(const std::function<void(Message *)> &f) const;
	/* Every message, in no particular order (f must not remove it). */
	void for_each_unordered(const std::function<void(Message *)> &f) const;
	/* Every message (for destruction), in no particular order. */
	template <class F> void drain(F &&f)
	{
		while (Message *m = front()) {
			remove(m);
			f(m);
		}
	}

private:
	Message *key_front(pid_t key) const;
	Message *type0_front() const;
};

/* A parked receive waits on one wait entry per link (several: a port set). */
struct WaitEntry {
	ListHook node; /* on link->receivers, longest-waiting first */
	Request *req;
	struct Link *link;
};

/*
 * The wait entries of a parked receive: one inline (a receive on one
 * link), or for a receive_set an array from a slab of wait arrays
 * (wait.cc): no malloc per receive.
 */
class Waits {
public:
	Waits() = default;
	Waits(const Waits &) = delete;
	Waits &operator=(const Waits &) = delete;
	~Waits() { clear(); }

	bool empty() const { return n_ == 0; }
	size_t size() const { return n_; }
	WaitEntry *begin() { return n_ > 1 ? v_ : &one_; }
	WaitEntry *end() { return begin() + n_; }
	const WaitEntry *begin() const { return n_ > 1 ? v_ : &one_; }
	const WaitEntry &front() const { return *begin(); }
	WaitEntry &operator[](size_t i) { return begin()[i]; }
	/* n entries (at most kRecvSetMax), unlinked; false: out of memory. */
	bool resize(size_t n);
	void clear();

private:
	WaitEntry one_{};
	WaitEntry *v_ = nullptr;
	uint32_t n_ = 0;
};

/*
 * What a link needs once it is used: made by the first send or receive on
 * it (Link::use(), from the node slab), so a link nobody used yet (most of
 * a million mailboxes) stays small. Until then everything here reads as
 * zero and empty (Link::used()).
 */
struct LinkSide {
	MsgStore pending{MsgWhere::Pending}; /* blocked senders' and cached messages */
	List<WaitEntry, &WaitEntry::node> receivers; /* parked receivers */
	/* counters for stat */
	uint64_t nsent = 0, nreceived = 0;
	pid_t lspid = 0, lrpid = 0;
	int64_t stime = 0, rtime = 0;
};

/* Buffering and the queues common to task queues and mailboxes. */
struct Link {
	Task *task = nullptr;       /* owner of a task queue, or nullptr */
	Mailbox *mbox = nullptr;    /* or the mailbox */
	uint64_t qbytes = 0;        /* byte bound of a bounded link */
	uint32_t capacity = 0;      /* messages; KIPC_UNBOUNDED */
	uint32_t msgsize = 0;       /* maximum (or fixed) message size */
	MsgStore msgs{MsgWhere::Queued};   /* messages in the link */
	struct SideDelete {
		void operator()(LinkSide *s) const;
	};
	std::unique_ptr<LinkSide, SideDelete> side; /* once used (nullptr: idle) */
	bool fixed = false;         /* every message exactly msgsize */
	bool fifo_senders = false;  /* blocked senders enter in arrival order
				       (POSIX, System V), not by priority */
	bool quota = true;          /* messages count against bytes_per_user */
	bool keyed = false;         /* messages indexed by route (MsgExt::route):
				       a task queue's by sender, a round-robin
				       mailbox's by assignee (Mechanism::route) */

	/* Make side (every send and receive first): false, out of memory. */
	bool use();
	/* side, or an idle link's (empty, zero) when there is none */
	const LinkSide &used() const { return side ? *side : idle_; }
	const MsgStore &pending() const { return used().pending; }
	const List<WaitEntry, &WaitEntry::node> &receivers() const { return used().receivers; }

	bool unbounded() const { return capacity == KIPC_UNBOUNDED; }
	/*
	 * What every stat record shows of a link: its bounds into attr (a
	 * kipc_mbox_attr, or any record with capacity, msgsize, qbytes) and
	 * its queues into st (nmsg, nbytes, nsenders, nreceivers).
	 */
	template <class Attr, class Stat> void stat(Attr &attr, Stat &st) const
	{
		attr.capacity = capacity;
		attr.msgsize = msgsize;
		attr.qbytes = unbounded() ? 0 : qbytes;
		st.nmsg = msgs.nmsg;
		st.nbytes = msgs.nbytes;
		st.nsenders = pending().nmsg;
		st.nreceivers = receivers().size();
	}
	/* Is there room for one more message of len bytes? */
	bool has_room(uint32_t len) const
	{
		if (unbounded())
			return true;
		return msgs.nmsg < capacity && msgs.nbytes + len <= qbytes;
	}
	int64_t id() const;
	/* The store of this link m is in (nullptr: none). */
	MsgStore *store_of(const Message &m)
	{
		return m.where == MsgWhere::Queued ? &msgs : m.where == MsgWhere::Pending ? &side->pending : nullptr;
	}

private:
	static const LinkSide idle_;
};

/* Deadline -> parked request, nodes from a slab (calls: rpc.h). */
using TimerMap = std::multimap<int64_t, Request *, std::less<int64_t>,
			       PoolAlloc<std::pair<const int64_t, Request *>>>;

enum class ReqKind : uint8_t { Receive, Send, Call, TraceRead, MqNotify };
enum class CallPhase : uint8_t { None, Sending, AwaitReply };

/*
 * A parked syscall. Exactly one owner completes it (see the top of this
 * file); until then it is on its task's parked list, which owns it. A
 * request on no list is owned by a ReqPtr: made and not parked yet
 * (new_request, park), or unparked by finish().
 */
struct Request {
	Request() = default;
	Request(const Request &) = delete;
	Request &operator=(const Request &) = delete;
	~Request(); /* asserts it is on no list and holds nothing (wait.cc) */

	ListHook task_node;  /* on task->parked */
	ListHook await_node; /* on awaited->awaited_by */
	Task *task;          /* who asked */
	Task *awaited = nullptr; /* receive(Q): Q; call: the server */
	uint64_t user_data;
	uint32_t flags;
	ReqKind op;
	CallPhase phase = CallPhase::None;
	bool cached = false;     /* cached send: already answered with MORE */
	int64_t deadline = kForever;
	int64_t since = 0;       /* CLOCK_MONOTONIC ns it was made (introspection) */
	uint16_t opcode = 0;     /* KIPC_SYS_* that made it */
	TimerMap::iterator timer;
	bool has_timer = false;
	/* receive (and a call's reply) */
	uint64_t buf = 0;
	uint32_t buflen = 0;
	Selector sel;
	Waits waits;
	/* send / call: the message while it is the sender's */
	Message *msg = nullptr;
	Link *link = nullptr;
	uint64_t token = 0;
	Request **slot = nullptr; /* MqNotify: the pointer to clear at unpark */
	/* mbox_receive_multi (bundle.cc): buf is its buffer ring, buflen its
	 * entries, ring_head the next buffer it takes (ours, never read back) */
	bool multishot = false;
	uint32_t ring_head = 0;
	/* a blocking (mbox_)send_bundle (bundle.cc): the messages not sent yet,
	 * owned by the request; msg/link are the one it waits with */
	BundleWait *bundle = nullptr;

	/* From the request slab (msgstore.cc): no malloc per request. */
	static void *operator new(size_t size);
	static void operator delete(void *p);
	uint32_t handle() const; /* its slab handle (Message::set_req) */
};

using ReqPtr = std::unique_ptr<Request>;

/*
 * A borrowed callable, as an argument: the callee calls it and keeps no
 * copy, so nothing is allocated (std::function may).
 */
template <class Sig> class FnRef;
template <class R, class... A> class FnRef<R(A...)> {
public:
	template <class F>
		requires(!std::is_same_v<std::remove_cvref_t<F>, FnRef>)
	FnRef(F &&f) /* NOLINT: implicit, like a function pointer */
		: obj_(const_cast<void *>(static_cast<const void *>(&f))),
		  call_([](void *o, A... a) -> R {
			  return (*static_cast<std::remove_reference_t<F> *>(o))(a...);
		  })
	{
	}
	R operator()(A... a) const { return call_(obj_, a...); }

private:
	void *obj_;
	R (*call_)(void *, A...);
};

/*
 * One task's receive right on one mailbox: in the mailbox's holders (grant
 * order) and on the task's held list, so either side drops it in O(1).
 */
struct Holder {
	ListHook node;       /* on task->held, in grant order */
	Task *task = nullptr;
	Mailbox *mb = nullptr;
};

/*
 * A mailbox's holders in grant order (mailbox.cc). The first is inline:
 * most mailboxes have one holder, their owner; the others are in an
 * array made when a second one comes. Reads as a sequence of Task *.
 */
class Holders {
public:
	Holders() = default;
	Holders(const Holders &) = delete;
	Holders &operator=(const Holders &) = delete;
	~Holders()
	{
		if (!empty())
			kipc_bug(__FILE__, __LINE__, "mailbox freed with holders");
	}

	size_t size() const { return first_.task ? 1 + (rest_ ? rest_->size() : 0) : 0; }
	bool empty() const { return !first_.task; }
	const Holder *holder(size_t i) const { return i ? (*rest_)[i - 1].get() : &first_; }
	Task *operator[](size_t i) const { return holder(i)->task; }
	struct Iter {
		const Holders *h;
		size_t i;
		Task *operator*() const { return (*h)[i]; }
		Iter &operator++() { i++; return *this; }
		bool operator!=(const Iter &o) const { return i != o.i; }
	};
	Iter begin() const { return {this, 0}; }
	Iter end() const { return {this, size()}; }
	/* Position of t, or size() when it holds no right. */
	size_t find(const Task *t) const;
	/* t gets the right, last in grant order, on mb (this mailbox). */
	void add(Mailbox *mb, Task *t);
	/* The holder at position i loses the right. */
	void remove(size_t i);

private:
	Holder first_;
	std::unique_ptr<std::vector<std::unique_ptr<Holder>>> rest_;
};

struct Task {
	Link queue;          /* the task queue direct sends land in */
	pid_t pid;
	uid_t uid;                  /* effective ids, as of attach or cred_refresh */
	gid_t gid;
	std::vector<gid_t> groups;  /* supplementary groups, ditto */
	std::string comm;
	pid_t ppid = 0;             /* parent at attach (tracing), 0: unknown */
	bool attached = false;      /* false: created by a send, not attached */
	UserMemory *mm = nullptr;
	void *priv = nullptr;       /* the host's handle for completions */
	List<Request, &Request::task_node> parked;     /* its parked requests */
	List<Request, &Request::await_node> awaited_by; /* waiting on it */
	Request *cached = nullptr;  /* its outstanding cached send */
	uint32_t nrecv_parked = 0;  /* parked receives (deadlock detection) */
	List<Holder, &Holder::node> held; /* its receive rights (Mailbox::holders) */
	uint64_t nsent = 0, nreceived = 0;
	int64_t atime = 0;          /* attach time, realtime ns */
};

/*
 * The common object of every kind of mailbox (mechanism.h): a native kipc
 * mailbox is a Mailbox, a POSIX or System V queue a type derived from it
 * in mqueue.cc or msg_sysv.cc. mech is the kind's hooks.
 */

/* A mailbox's name, out of line: an anonymous one (most) keeps 8 bytes. */
class MboxName {
public:
	bool empty() const { return !s_; }
	size_t size() const { return s_ ? s_->size() : 0; }
	operator const std::string &() const { return s_ ? *s_ : empty_; }
	MboxName &operator=(const std::string &n)
	{
		s_ = n.empty() ? nullptr : std::make_unique<std::string>(n);
		return *this;
	}
	size_t copy(char *dst, size_t n) const { return static_cast<const std::string &>(*this).copy(dst, n); }

private:
	std::unique_ptr<std::string> s_;
	static inline const std::string empty_;
};

struct Mailbox {
	explicit Mailbox(Mechanism &m) : mech(&m) {}
	virtual ~Mailbox() = default;
	Mailbox(const Mailbox &) = delete;
	Mailbox &operator=(const Mailbox &) = delete;

	Mechanism *mech;
	Link link;
	int64_t id;
	MboxName name;           /* empty when anonymous */
	uid_t uid, gid;          /* owner credentials (permissions) */
	uid_t cuid, cgid;        /* creator */
	uint32_t mode;
	uint32_t flags;          /* KIPC_MBOX_* */
	uint32_t policy;         /* KIPC_POLICY_* (its state: Mailboxes) */
	Task *owner = nullptr;   /* owning task; nullptr: kernel-owned, orphaned */
	Holders holders;         /* receive right, in grant order */
	int64_t ctime = 0;       /* last change, CLOCK_REALTIME ns */

	bool kernel_owned() const { return flags & KIPC_MBOX_KERNEL_OWNED; }
	bool holds(const Task *t) const;

	/* From the mailbox slab (mailbox.cc): no malloc header per mailbox. */
	static void *operator new(size_t size);
	static void operator delete(void *p);
};

struct UserAcct {
	uint64_t mq_bytes = 0;  /* POSIX queues: RLIMIT_MSGQUEUE charge */
	uint64_t bytes = 0;     /* queued: payload plus overhead; System V queue
				   headers; SIGEV_THREAD notifications; POSIX opens */
	uint64_t trace_bytes = 0; /* trace listeners' rings */
	uint64_t credit_bytes = 0; /* send credits reserved (in bytes too, credit.cc) */
	uint64_t host_bytes = 0; /* held by the host (in bytes too, Kernel::charge_host) */
	uint32_t mailboxes = 0; /* mailboxes and System V queues created, not destroyed */
	uint32_t tasks = 0;     /* attached tasks (tasks_per_user) */
};

/* How long a call may wait: decoded from the sqe by the syscall layer. */
struct Wait {
	bool nonblock = false;
	int64_t deadline = kForever; /* CLOCK_MONOTONIC ns */
};

/* One send or receive, decoded and validated by kernel/syscalls/. */
struct MsgArgs {
	uint64_t user_data = 0;
	uint32_t flags = 0;
	Wait wait;
	uint64_t addr = 0;   /* payload or receive buffer */
	uint32_t len = 0;
	uint16_t prio = 0;
	int64_t type = 0;
	uint64_t addr2 = 0;  /* call: reply buffer */
	uint32_t len2 = 0;
};

/* The selection KIPC_F_TYPE and KIPC_F_EXCEPT ask for (msg.cc): 0 or -EINVAL. */
long type_selector(const MsgArgs &a, Selector *sel);

/* Attributes of a new link, resolved against the limits. */
struct LinkAttr {
	uint32_t capacity;
	uint64_t qbytes;
	uint32_t msgsize;
	bool fixed;
};

/*
 * The core and the mechanisms around it. The core's own state (tasks,
 * users, timers, the entry's current task, counters) is private: the
 * mechanisms (members below, each a class with private state in its own
 * header) reach it through the public functions, and the core reaches
 * them through their hooks (Documentation/internals.md, "The map").
 */
class KernelImpl {
public:
	KernelImpl(Clock &c, Host &h, MqHost &mqh, CompletionSink &s, const Limits &l)
		: clock(c), host(h), sink(s), mbox(*this, l), mq(*this, mqh), msq(*this), lim(l),
		  boot_real(c.realtime_ns()), boot_mono(c.monotonic_ns())
	{
	}
	~KernelImpl();

	/* The host's interfaces (kernel.h). */
	Clock &clock;
	Host &host;
	CompletionSink &sink;

	/* The mechanisms around the core. */
	Tracer tracer{*this};    /* trace listeners (trace.h) */
	Calls rpc{*this};        /* calls in flight (rpc.h) */
	Mailboxes mbox;          /* the mailbox namespace (mailbox.h), and the
				    mechanism of native mailboxes */
	/* the other mechanisms (mechanism.h): kinds of mailbox, their hooks */
	PosixQueues mq;          /* mqueue.h */
	SysvQueues msq;          /* msg_sysv.h */
	Mechanism *const mechs[2] = {&mq, &msq}; /* all but mbox */
	Introspect intro{*this}; /* the introspection calls (introspect.h) */

	/* --- entries: the facade (syscalls/entry.cc) brackets each one --- */
	/* Who runs and which syscall (KIPC_SYS_NONE: a timer, an exit...). */
	void enter(Task *t, uint16_t op)
	{
		current = t;
		cur_op = op;
	}
	/* The entry is over: complete the trace reads its events woke. */
	void leave()
	{
		if (__builtin_expect(!bundles_ready.empty(), 0))
			resume_bundles();
		if (__builtin_expect(tracer.woken(), 0))
			tracer.flush();
		current = nullptr;
		cur_op = KIPC_SYS_NONE;
	}
	Task *current_task() const { return current; }
	uint16_t current_op() const { return cur_op; }
	/* The earliest deadline parked (INT64_MAX: none). */
	int64_t next_deadline() const { return timers.empty() ? INT64_MAX : timers.begin()->first; }

	/* --- what every mechanism may read --- */
	int64_t now() const { return clock.monotonic_ns(); }
	int64_t now_real() const { return clock.realtime_ns(); }
	const Limits &limits() const { return lim; }
	int64_t boot_time() const { return boot_real; }     /* CLOCK_REALTIME ns */
	int64_t boot_mono_time() const { return boot_mono; } /* CLOCK_MONOTONIC ns */
	/* counters since boot, for introspection (sysinfo) */
	struct Stats {
		uint64_t delivered = 0, timeouts = 0, cancels = 0;
		uint64_t attach = 0, exit = 0, destroyed = 0;
		uint64_t sent = 0; /* messages that reached a link or a receiver */
		uint64_t skipped = 0; /* successes not posted (KIPC_F_SKIP_SUCCESS) */
		uint64_t onecopy = 0; /* payloads copied sender's memory to receiver's */
	};
	const Stats &counters() const { return stats; }
	void count_destroyed() { stats.destroyed++; } /* a mailbox went */
	void count_onecopy() { stats.onecopy++; }     /* a reply went in one copy */
	/* Every task, by reference; how many. */
	template <class F> void for_each_task(F &&f) const
	{
		for (const auto &[pid, t] : tasks)
			f(*t);
	}
	size_t ntasks() const { return tasks.size(); }
	/* uid's accounts, if it has any (user() makes them). */
	const UserAcct *find_user(uid_t uid) const
	{
		auto it = users.find(uid);
		return it == users.end() ? nullptr : &it->second;
	}

	/* --- tasks (task.cc) --- */
	int attach(const Creds &c, UserMemory *mm, std::string_view comm,
		   void *priv, Task **out);
	void exit_task(Task *t);
	/* The caller's credentials as the host says they are now. */
	long do_cred_refresh(Task &cur);
	void set_creds(Task &t, Creds c); /* ... or as the host gives them */
	void process_exited(pid_t pid);
	/* Find pid's task, creating an unattached one for a live process. */
	Task *get_task(pid_t pid, int *err);
	Task *find_task(pid_t pid) const;
	void init_link(Link &l, const LinkAttr &a);
	LinkAttr taskq_defaults() const;
	void do_taskq_stat(Task &cur, kipc_taskq_stat &st) const;
	/* New bounds for cur's task queue: queued messages stay, a larger
	 * capacity admits waiting senders. */
	long do_taskq_setattr(Task &cur, const kipc_mbox_attr &attr);

	/* --- messages (msg.cc) --- */
	/* Where do_send() put the message: what its caller may react to. */
	enum class Sent : uint8_t { Not, Handed, Queued, Pending };
	/* call: Calls::call's request (its caller parks it), a parked bundle's
	 * (bundle.cc: it waits with its next message), or nullptr; how: where
	 * the message went (Not when the send failed) */
	long do_send(Task &cur, Link &link, MsgArgs &a, kipc_cqe &cqe,
		     uint64_t token = 0, Request *call = nullptr, Sent *how = nullptr);
	/* awaited: receive(Q)'s Q, fails ESRCH when it exits (or is gone). */
	long do_receive(Task &cur, Link *const *links, size_t n, const Selector &sel,
			MsgArgs &a, kipc_cqe &cqe, Task *awaited = nullptr,
			bool awaited_gone = false);
	/* Take m out of its store into the receiver's buffer; cqe filled. */
	int deliver(Task &rcv, Link &link, Message *m, uint64_t buf, uint32_t buflen,
		    uint32_t flags, kipc_cqe &cqe, bool copy = true);
	void free_message(Message *m);
	void keep_lent(); /* msg.cc: the lent payload (below) into its message */
	/* A message reached link's queue or a receiver (sender: nullptr when gone). */
	void count_sent(Link &link, Task *sender, pid_t pid, int64_t stime);
	/* A reply from cur reached caller: counted as a message; its seq. */
	uint64_t count_reply(Task &cur, Task &caller);
	/* Move pending messages into link while it has room. */
	void refill(Link &link);
	/* Destroy a link: free messages, fail senders, receivers, callers. */
	void drain_link(Link &link, int err);
	/* flags: kMsgExt, kMsgKeyed (the message needs an extension) */
	Message *alloc_message(Task &cur, uint32_t len, uint8_t flags, int *err, bool quota = true);
	/* send credits (credit.cc) */
	const Link *credit_link(Task &t, uint8_t op, int64_t id);
	int64_t credit_queue(uint8_t op, int64_t id, uint32_t *nmsg, uint32_t *cap = nullptr,
			     uint32_t *msgsize = nullptr);
	uint32_t reserve_sends(Task &t, uint8_t op, int64_t id, uint32_t held, uint32_t want,
			       uint32_t *msgsize, uint64_t *charge);
	void release_sends(uid_t uid, uint64_t bytes);
	/* receive push (push.cc): id a native mailbox or KIPC_PUSH_TASKQ */
	Link *push_link(Task &t, int64_t id, int *err);
	int push_next(Task &t, int64_t id, uint64_t after_seq, uint32_t maxlen, PushMsg *out);
	bool take_pushed(Task &t, int64_t id, uint64_t seq);
	bool would_deadlock(const Task &cur, const Link &link) const;
	/* By name, what the syscalls ask for: a pid's task queue, a mailbox id
	 * (a set of them), checked for cur. */
	long find_peer(Task &cur, int64_t pid, Task **out); /* where kill(2) may */
	long do_task_send(Task &cur, int64_t pid, MsgArgs &a, kipc_cqe &cqe);
	long do_task_receive(Task &cur, int64_t from, MsgArgs &a, kipc_cqe &cqe);
	/* The link cur may send to: pid's task queue (find_peer). */
	Link *task_to_send(Task &cur, int64_t pid, int *err);

	/* --- waiting, completion, cancellation (wait.cc) --- */
	ReqPtr new_request(Task &cur, ReqKind op, const MsgArgs &a);
	/* The kernel takes r: on its task's parked list until finish(). */
	Request *park(ReqPtr r);
	/* What finish() posts: fill writes the completion of the unparked
	 * request (user_data is added); false: post none (its task is gone). */
	using FinishFill = FnRef<bool(Request &, kipc_cqe &)>;
	/*
	 * End parked request r, the only way a request ends: unpark it (off
	 * every list), let fill write its completion, post it, free r.
	 */
	void finish(Request *r, FinishFill fill);
	void finish(Request *r, const kipc_cqe &cqe, bool notify = true);
	/* Post t's completion of a call op (KIPC_SYS_*; traced as SYSRET);
	 * flags are the request's: with KIPC_F_SKIP_SUCCESS a success is
	 * traced and counted but not posted (the sink's skipped()). */
	void complete(Task &t, const kipc_cqe &cqe, uint16_t op = KIPC_SYS_NONE,
		      uint32_t flags = 0);
	/* Fail request r (parked) with err, whatever it waits on. */
	void abort_request(Request *r, int err, bool notify);
	/* What became of a message offered to a parked receive. */
	enum class Offer : uint8_t { Refused, Failed, Delivered };
	/*
	 * Offer m (on link, queued, pending or still its sender's) to the
	 * parked receive r, which accepts it: Delivered, r completed with it;
	 * Refused, r's buffer is too small (r fails EMSGSIZE, not unparked by
	 * a delivery: nothing traced); Failed, r's buffer went bad (r fails,
	 * the message stays). announce (may be nullptr) is traced before r
	 * wakes, unless Refused.
	 */
	Offer offer(Request *r, Link &link, Message *m, const TraceEv *announce = nullptr);
	/* Bundles and multishot receives (bundle.cc): offer() of a multishot
	 * r; mbox_receive_multi on link once its rights were checked. */
	Offer offer_multi(Request *r, Link &link, Message *m, const TraceEv *announce);
	long do_receive_multi(Task &cur, Link &link, const Selector &sel, const MsgArgs &a,
			      uint32_t entries, uint32_t head);
	/* Bundle op of the n descriptors d (copied in): mbox_send_bundle to
	 * mailbox id, send_bundle to pid id's task queue */
	long do_send_bundle(Task &cur, uint16_t op, int64_t id, const kipc_bundle_desc *d,
			    size_t n, MsgArgs &a, kipc_cqe &cqe);
	/* The bytes parked bundle r holds, charged to *uid (0: r is none). */
	static uint64_t bundle_charge(const Request &r, uid_t *uid);
	/* Offer each receiver parked on link the first message it accepts
	 * (after the messages' routes changed). */
	void serve_waiters(Link &link);
	void run_timers();
	long do_cancel(Task &cur, uint64_t user_data, int err);


	/* Read (write false) or set an IPC limit: 0 or -errno (sysctl.cc). */
	long do_sysctl(Task &cur, uint32_t key, bool write, int64_t *val);

	/* --- accounting --- */
	UserAcct &user(uid_t uid) { return users[uid]; }
	void check_invariants() const;
	/* The facade's check after an entry (CONFIG_DEBUG_CHECKS): every
	 * check_every-th one, 0 none (a test's end still checks). */
	void debug_check();

private:
	friend struct CoreTestAccess; /* tests/unit/harness.h: the limits a test sets, the checks' pace */

	Task *new_task(const Creds &c);                 /* task.cc */
	ReqPtr unpark(Request *r, bool wake = true);    /* wait.cc: finish() only */
	void trace_wake(const Request *r);              /* wait.cc: r's WAKE */
	/* bundle.cc: finish() of a parked bundle; its end; leave(): the
	 * bundles whose message went in this entry send on */
	void finish_bundle(Request *r, FinishFill fill);
	void end_bundle(Request *r, long err, bool post, bool waiting = true);
	void resume_bundles();

	Limits lim;
	std::unordered_map<pid_t, std::unique_ptr<Task>> tasks;
	std::unordered_map<uid_t, UserAcct> users;
	TimerMap timers;
	uint64_t next_msg_seq = 1;
	/* Set by enter() for the duration of each entry: who and what. */
	Task *current = nullptr;       /* task on whose behalf we run, or nullptr */
	uint16_t cur_op = KIPC_SYS_NONE; /* KIPC_SYS_* being executed, or none */
	int64_t boot_real, boot_mono;
	Stats stats;
	/*
	 * The message do_send() is handing to a waiting receiver, whose
	 * payload is still only in its sender's memory (msg.cc: deliver()
	 * copies it from there, once); {} outside that hand-over.
	 */
	struct Lent {
		Message *m = nullptr;
		const uint8_t *src = nullptr;
		const UserMemory *mm = nullptr;
	} lent;
	bool dying = false; /* ~KernelImpl: completions go nowhere */
	/* debug_check()'s pace: 1 but in a test that makes tens of
	 * thousands of tasks, where a walk per entry is quadratic. */
	uint32_t check_every = 1;
	uint32_t check_skipped = 0;
	std::vector<Request *> bundles_ready; /* parked bundles to go on (bundle.cc) */
};

/* What the kernel charges besides messages (security.md). */
extern const uint64_t kSysvQueueCost;  /* a System V queue's header */
extern const uint64_t kMqNotifyCost;   /* a SIGEV_THREAD registration or pending one */
extern const uint64_t kMqOpenCost;     /* a POSIX queue open (its handle and file) */

/* Debug checks (CONFIG_DEBUG_CHECKS): report a broken invariant. */
using BugHandler = void (*)(const char *file, int line, const char *what);
extern BugHandler kipc_bug_handler;
void kipc_bug(const char *file, int line, const char *what);
#define KIPC_BUG_ON(cond)                                          \
	do {                                                       \
		if (cond)                                          \
			::kipc::kipc_bug(__FILE__, __LINE__, #cond); \
	} while (0)

} // namespace kipc
