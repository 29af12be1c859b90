// SPDX-License-Identifier: MIT
/*
 * The handle table of POSIX queue opens (see mqhandle.h). Plain
 * bookkeeping: which opens exist, which tasks may use each, which opens
 * each queue has. The rules (who gets an open, when it dies) are
 * mqueue.cc's.
 */
#include "mqhandle.h"

namespace kipc {

MqOpen *MqHandles::add(Task &t, Mailbox *mb, uint32_t acc, uid_t uid, bool created)
{
	int64_t h = next_++;
	Entry &e = opens_[h];
	e.open = std::make_unique<MqOpen>(MqOpen{h, mb, acc, uid, created});
	by_queue_[mb].insert(h);
	adopt(t, *e.open);
	return e.open.get();
}

MqOpen *MqHandles::find(int64_t h) const
{
	auto it = opens_.find(h);
	return it == opens_.end() ? nullptr : it->second.open.get();
}

bool MqHandles::holds(const Task &t, const MqOpen &o) const
{
	auto it = opens_.find(o.id);
	return it != opens_.end() && it->second.tasks.count(&t);
}

void MqHandles::adopt(Task &t, MqOpen &o)
{
	opens_.at(o.id).tasks.insert(&t);
	by_task_[&t].insert(o.id);
}

bool MqHandles::drop(Task &t, MqOpen &o)
{
	Entry &e = opens_.at(o.id);
	e.tasks.erase(&t);
	if (auto it = by_task_.find(&t); it != by_task_.end()) {
		it->second.erase(o.id);
		if (it->second.empty())
			by_task_.erase(it);
	}
	return e.tasks.empty();
}

template <class Map>
std::vector<MqOpen *> MqHandles::opens(const Map &m, typename Map::key_type key) const
{
	std::vector<MqOpen *> v;
	if (auto it = m.find(key); it != m.end())
		for (int64_t h : it->second)
			v.push_back(find(h));
	return v;
}

std::vector<MqOpen *> MqHandles::of_task(const Task &t) const
{
	return opens(by_task_, &t);
}

std::vector<const Task *> MqHandles::tasks_of(const MqOpen &o) const
{
	auto it = opens_.find(o.id);
	if (it == opens_.end())
		return {};
	return {it->second.tasks.begin(), it->second.tasks.end()};
}

std::vector<MqOpen *> MqHandles::of_queue(const Mailbox &mb) const
{
	return opens(by_queue_, &mb);
}

size_t MqHandles::count(const Mailbox &mb) const
{
	auto it = by_queue_.find(&mb);
	return it == by_queue_.end() ? 0 : it->second.size();
}

void MqHandles::remove(MqOpen *o)
{
	auto it = opens_.find(o->id);
	if (it == opens_.end())
		return;
	for (const Task *t : it->second.tasks) {
		auto bt = by_task_.find(t);
		bt->second.erase(o->id);
		if (bt->second.empty())
			by_task_.erase(bt);
	}
	auto bq = by_queue_.find(o->mb);
	bq->second.erase(o->id);
	if (bq->second.empty())
		by_queue_.erase(bq);
	opens_.erase(it);
}

} // namespace kipc
