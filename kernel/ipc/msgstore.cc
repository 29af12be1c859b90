// SPDX-License-Identifier: MIT
/*
 * Messages and requests in memory, and MsgStore: the messages of one link
 * (or its pending senders) with the indexes receive needs.
 *
 * Memory (slab.h). A message is one slab object: its 44-byte header and
 * the payload, from the slab of the smallest size class that holds the
 * payload (0, 16, ... 128 bytes by 16, then four classes per doubling up
 * to 8192), or, larger, an object of its own. Its extension (MsgExt, 40 bytes) comes
 * from a slab of its own, requests from another. A message is charged to
 * its sender's bytes_per_user exactly what it occupies: its object and its
 * extension (message_charge).
 *
 * Indexes. Every operation is O(log n) at worst:
 *  push/remove: one map lookup per index plus O(1) list splices;
 *  find: the head of one or two lists, chosen by the selector:
 *    any           -> the better of plain.front() and extd.front()
 *    from Q        -> by_key[Q].front()
 *    round-robin   -> better of by_key[me].front() and by_key[0].front()
 *                     (no keyed message in the store: as any)
 *    type T > 0    -> by_type[T].front()
 *    type T < 0    -> the lowest type queued (plain messages are type 0),
 *                     if it is <= |T|
 *    except T      -> best head over by_type except T and plain.front()
 *                     (one per distinct type)
 * Only messages with an extension are in extd, by_type and (keyed ones)
 * by_key: a mailbox of untyped messages keeps one list and no map.
 */
#include <algorithm>
#include <unordered_map>

#include "ipc.h"

namespace kipc {

const uint32_t kMessageOverhead = sizeof(Message);

namespace {

/* Payload capacities of the message slabs (objects: 44 bytes more). */
constexpr uint32_t kMsgClasses[] = {0,    16,   32,   48,   64,   80,   96,   112,  128,
				    160,  192,  224,  256,  320,  384,  448,  512,  640,
				    768,  896,  1024, 1280, 1536, 1792, 2048, 2560, 3072,
				    3584, 4096, 5120, 6144, 7168, 8192};
constexpr size_t kNClasses = sizeof kMsgClasses / sizeof kMsgClasses[0];
constexpr uint32_t kLargePayload = 8192;
constexpr uint32_t kLargeHeader = 64; /* a large object's chunk header (slab.cc) */

struct MsgSlabs {
	std::unique_ptr<Slab> cls[kNClasses];
	Slab large{"msg-large", 0, true};
	Slab ext{"msg-ext", sizeof(MsgExt)};
	Slab req{"request", kSlabPtrPrefix + sizeof(Request)};
	MsgSlabs()
	{
		for (size_t i = 0; i < kNClasses; i++)
			cls[i] = std::make_unique<Slab>("msg", sizeof(Message) + kMsgClasses[i]);
	}
};

MsgSlabs &slabs()
{
	static MsgSlabs *s = new MsgSlabs; /* never destroyed: kernels may outlive statics */
	return *s;
}

/* The class of a message of len payload bytes, kNClasses: large. */
size_t msg_class(uint32_t len)
{
	if (len > kLargePayload)
		return kNClasses;
	return size_t(std::lower_bound(kMsgClasses, kMsgClasses + kNClasses, len) - kMsgClasses);
}

} // namespace

uint64_t message_charge(uint32_t len, bool ext)
{
	size_t c = msg_class(len);
	uint64_t obj = c < kNClasses ? sizeof(Message) + kMsgClasses[c]
				     /* malloc's chunk: 8 bytes of size, 16-byte multiples */
				     : (kLargeHeader + sizeof(Message) + uint64_t(len) + 8 + 15) & ~15ull;
	return obj + (ext ? sizeof(MsgExt) : 0);
}

Message *new_message(uint32_t len, bool ext)
{
	MsgSlabs &s = slabs();
	uint32_t h, eh = 0;
	size_t c = msg_class(len);
	void *p = c < kNClasses ? s.cls[c]->alloc(&h)
				: s.large.alloc_large(sizeof(Message) + size_t(len), &h);
	if (!p)
		return nullptr;
	auto *m = static_cast<Message *>(p);
	memset(m, 0, sizeof *m);
	m->chunk = h >> kSlabSlotBits;
	m->len = len;
	if (ext) {
		auto *e = static_cast<MsgExt *>(s.ext.alloc(&eh));
		if (!e) {
			slab_free(h);
			return nullptr;
		}
		*e = MsgExt{};
		m->ref = eh;
		m->flags = kMsgExt;
	}
	return m;
}

void delete_message(Message *m)
{
	if (m->flags & kMsgExt)
		slab_free(m->ref);
	slab_free(m->handle());
}

/* A request is preceded by its handle in its slab object (alloc_ptr). */
void *Request::operator new(size_t size)
{
	void *p = size + kSlabPtrPrefix <= slabs().req.objsize() ? slabs().req.alloc_ptr() : nullptr;
	if (!p)
		throw std::bad_alloc();
	return p;
}

void Request::operator delete(void *p)
{
	if (p)
		slabs().req.free_ptr(p);
}

uint32_t Request::handle() const
{
	return Slab::ptr_handle(this);
}

static Request *request_at(uint32_t h)
{
	return h ? reinterpret_cast<Request *>(static_cast<uint8_t *>(slab_at(h)) + kSlabPtrPrefix)
		 : nullptr;
}

Request *Message::req() const
{
	if (flags & kMsgExt)
		return request_at(ext()->req);
	return flags & kMsgReq ? request_at(ref) : nullptr;
}

void Message::set_req(Request *r)
{
	uint32_t h = r ? r->handle() : 0;
	if (flags & kMsgExt) {
		ext()->req = h;
		return;
	}
	ref = h;
	flags = r ? flags | kMsgReq : flags & ~kMsgReq;
}

bool Selector::matches(const Message *m) const
{
	if (rr) {
		pid_t route = m->route();
		if (route != key && route != 0)
			return false;
	} else if (key && m->route() != key) {
		return false;
	}
	if (!by_type || type == 0)
		return true;
	int64_t t = m->type();
	if (type > 0)
		return except ? t != type : t == type;
	return t <= -type;
}

struct MsgStore::Index {
	PrioList<HdrHook> extd; /* messages with an extension */
	std::unordered_map<pid_t, PrioList<KeyHook>, std::hash<pid_t>, std::equal_to<pid_t>,
			   PoolAlloc<std::pair<const pid_t, PrioList<KeyHook>>>>
		by_key;
	std::map<int64_t, PrioList<TypeHook>, std::less<int64_t>,
		 PoolAlloc<std::pair<const int64_t, PrioList<TypeHook>>>>
		by_type;
	uint32_t n = 0; /* messages in extd */
};

void MsgStore::IndexDelete::operator()(Index *i) const
{
	i->~Index();
	PoolAlloc<Index>().deallocate(i, 1);
}

static Message *better(Message *a, Message *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	return delivered_before(a, b) ? a : b;
}

void MsgStore::push(Message *m)
{
	uint32_t h = m->handle();
	m->where = where;
	if (m->flags & kMsgExt) {
		if (!idx)
			idx.reset(new (PoolAlloc<Index>().allocate(1)) Index);
		idx->extd.push(m, h);
		if (m->flags & kMsgKeyed)
			idx->by_key[m->route()].push(m, h);
		idx->by_type[m->type()].push(m, h);
		idx->n++;
	} else {
		plain.push(m, h);
	}
	nmsg++;
	nbytes += m->len;
}

void MsgStore::remove(Message *m)
{
	if (m->flags & kMsgExt) {
		idx->extd.remove(m);
		if (m->flags & kMsgKeyed) {
			auto k = idx->by_key.find(m->route());
			k->second.remove(m);
			if (k->second.empty())
				idx->by_key.erase(k);
		}
		auto t = idx->by_type.find(m->type());
		t->second.remove(m);
		if (t->second.empty())
			idx->by_type.erase(t);
		if (--idx->n == 0)
			idx.reset();
	} else {
		plain.remove(m);
	}
	nmsg--;
	nbytes -= m->len;
	m->where = MsgWhere::None;
}

Message *MsgStore::front() const
{
	return better(plain.front(), idx ? idx->extd.front() : nullptr);
}

Message *MsgStore::oldest() const
{
	Message *a = plain.oldest(), *b = idx ? idx->extd.oldest() : nullptr;
	if (!a || !b)
		return a ? a : b;
	return a->seq < b->seq ? a : b;
}

void MsgStore::rekey(pid_t from, pid_t to)
{
	if (!idx || from == to)
		return;
	auto it = idx->by_key.find(from);
	if (it == idx->by_key.end())
		return;
	PrioList<KeyHook> moving = std::move(it->second);
	idx->by_key.erase(it);
	PrioList<KeyHook> &dst = idx->by_key[to];
	while (Message *m = moving.front()) {
		moving.remove(m);
		m->ext()->route = to;
		dst.insert_ordered(m, m->handle());
	}
}

Message *MsgStore::key_front(pid_t key) const
{
	if (!idx)
		return nullptr;
	auto it = idx->by_key.find(key);
	return it == idx->by_key.end() ? nullptr : it->second.front();
}

Message *MsgStore::type0_front() const
{
	Message *m = plain.front();
	if (idx)
		if (auto it = idx->by_type.find(0); it != idx->by_type.end())
			m = better(m, it->second.front());
	return m;
}

Message *MsgStore::find(const Selector &sel) const
{
	if (nmsg == 0)
		return nullptr;
	if (sel.rr) {
		/* round-robin mailboxes take no type selector (EINVAL earlier); on
		 * another link (receive_set) no message is keyed: all are route 0 */
		if (!idx || idx->by_key.empty())
			return front();
		return better(key_front(sel.key), key_front(0));
	}
	if (sel.key)
		return key_front(sel.key); /* from Q: no type selector (EINVAL earlier) */
	if (!sel.by_type || sel.type == 0)
		return front();
	if (sel.type < 0) {
		/* the lowest type queued: plain messages are of type 0 */
		auto it = idx ? idx->by_type.begin() : decltype(idx->by_type.begin()){};
		bool typed = idx && it != idx->by_type.end();
		if (!plain.empty() && (!typed || it->first >= 0))
			return type0_front(); /* 0 <= |T| */
		return typed && it->first <= -sel.type ? it->second.front() : nullptr;
	}
	if (!sel.except) {
		if (!idx)
			return nullptr;
		auto it = idx->by_type.find(sel.type);
		return it == idx->by_type.end() ? nullptr : it->second.front();
	}
	Message *best = plain.front(); /* type 0, and T > 0 */
	if (idx)
		for (const auto &[type, list] : idx->by_type)
			if (type != sel.type)
				best = better(best, list.front());
	return best;
}

void MsgStore::for_each_unordered(const std::function<void(Message *)> &f) const
{
	plain.for_each(f);
	if (idx)
		idx->extd.for_each(f);
}

void MsgStore::for_each(const std::function<void(Message *)> &f) const
{
	std::vector<Message *> all;
	all.reserve(nmsg);
	for_each_unordered([&](Message *m) { all.push_back(m); });
	std::sort(all.begin(), all.end(), delivered_before);
	for (Message *m : all)
		f(m);
}

} // namespace kipc
