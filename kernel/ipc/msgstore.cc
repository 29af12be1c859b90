// SPDX-License-Identifier: MIT
/*
 * MsgStore: the messages of one link (or its pending senders) with the
 * indexes receive needs. Every operation is O(log n) at worst:
 *  push/remove: one map lookup per index plus O(1) list splices;
 *  find: the head of one list, chosen by the selector:
 *    any           -> levels.front()
 *    from Q        -> by_key[Q].front()
 *    round-robin   -> better of by_key[me].front() and by_key[0].front()
 *    type T > 0    -> by_type[T].front()
 *    type T < 0    -> by_type.begin() if its type <= |T| (lowest type first)
 *    except T      -> best head over by_type except T (one per distinct type)
 */
#include "ipc.h"

namespace kipc {

bool Selector::matches(const Message *m) const
{
	if (rr) {
		if (m->route != key && m->route != 0)
			return false;
	} else if (key && m->route != key) {
		return false;
	}
	if (!by_type || type == 0)
		return true;
	if (type > 0)
		return except ? m->type != type : m->type == type;
	return m->type <= -type;
}

void MsgStore::push(Message *m)
{
	m->store = this;
	levels.push(m);
	by_key[m->route].push(m);
	by_type[m->type].push(m);
	nmsg++;
	nbytes += m->len;
}

void MsgStore::remove(Message *m)
{
	levels.remove(m);
	auto k = by_key.find(m->route);
	k->second.remove(m);
	if (k->second.empty())
		by_key.erase(k);
	auto t = by_type.find(m->type);
	t->second.remove(m);
	if (t->second.empty())
		by_type.erase(t);
	nmsg--;
	nbytes -= m->len;
	m->store = nullptr;
}

void MsgStore::rekey(pid_t from, pid_t to)
{
	auto it = by_key.find(from);
	if (it == by_key.end() || from == to)
		return;
	PrioList<&Message::key_hook> moving = std::move(it->second);
	by_key.erase(it);
	PrioList<&Message::key_hook> &dst = by_key[to];
	while (Message *m = moving.front()) {
		moving.remove(m);
		m->route = to;
		dst.insert_ordered(m);
	}
}

Message *MsgStore::key_front(pid_t key) const
{
	auto it = by_key.find(key);
	return it == by_key.end() ? nullptr : it->second.front();
}

Message *MsgStore::find(const Selector &sel) const
{
	if (nmsg == 0)
		return nullptr;
	if (sel.rr) {
		/* round-robin mailboxes take no type selector (EINVAL earlier) */
		Message *mine = key_front(sel.key), *any = key_front(0);
		if (!mine)
			return any;
		if (!any)
			return mine;
		return delivered_before(mine, any) ? mine : any;
	}
	if (sel.key)
		return key_front(sel.key); /* from Q: no type selector (EINVAL earlier) */
	if (!sel.by_type || sel.type == 0)
		return front();
	if (sel.type < 0) {
		auto it = by_type.begin();
		return it->first <= -sel.type ? it->second.front() : nullptr;
	}
	if (!sel.except) {
		auto it = by_type.find(sel.type);
		return it == by_type.end() ? nullptr : it->second.front();
	}
	Message *best = nullptr;
	for (const auto &[type, list] : by_type) {
		if (type == sel.type)
			continue;
		Message *m = list.front();
		if (!best || delivered_before(m, best))
			best = m;
	}
	return best;
}

} // namespace kipc
