// SPDX-License-Identifier: MIT
/*
 * kernel/ipc/list.h on its own: order, removal during a walk, and what
 * its destructors promise (an object is on no list when it goes, a list
 * is empty when it goes), reported through kipc_bug.
 */
#include <new>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "../../kernel/ipc/ipc.h"

using namespace kipc;

namespace {

struct Item {
	ListHook hook;
	int v = 0;
};
using Items = List<Item, &Item::hook>;

struct Bugs {
	static inline std::vector<std::string> seen;
	static void handler(const char *, int, const char *what) { seen.push_back(what); }
	BugHandler saved = kipc_bug_handler;
	Bugs()
	{
		seen.clear();
		kipc_bug_handler = handler;
	}
	~Bugs() { kipc_bug_handler = saved; }
};

std::vector<int> values(const Items &l)
{
	std::vector<int> v;
	l.for_each([&](Item *i) { v.push_back(i->v); });
	return v;
}

} // namespace

TEST_CASE("list: push_back, insert_after, pop_front keep the order and the size")
{
	Item a, b, c, d;
	a.v = 1, b.v = 2, c.v = 3, d.v = 4;
	Items l;
	CHECK(l.empty());
	CHECK(l.front() == nullptr);
	l.push_back(&b);
	l.push_back(&d);
	l.insert_after(nullptr, &a); /* at the front */
	l.insert_after(&b, &c);
	CHECK(values(l) == std::vector<int>{1, 2, 3, 4});
	CHECK(l.size() == 4);
	CHECK(l.front() == &a);
	CHECK(l.back() == &d);
	CHECK(l.next(&b) == &c);
	CHECK(l.prev(&b) == &a);
	CHECK(l.next(&d) == nullptr);
	CHECK(l.prev(&a) == nullptr);
	/* removing the element being visited is allowed */
	l.for_each([&](Item *i) {
		if (i->v % 2 == 0)
			l.remove(i);
	});
	CHECK(values(l) == std::vector<int>{1, 3});
	CHECK(!b.hook.linked());
	CHECK(l.pop_front() == &a);
	CHECK(l.pop_front() == &c);
	CHECK(l.pop_front() == nullptr);
	CHECK(l.size() == 0);
	CHECK(!a.hook.linked());
}

TEST_CASE("list: an empty list and unlinked hooks go without a report")
{
	Bugs bugs;
	{
		Items l;
		Item a;
		l.push_back(&a);
		l.remove(&a);
		std::vector<Item> v(3); /* unlinked hooks may be copied */
		v.resize(40);
	}
	CHECK(Bugs::seen.empty());
}

TEST_CASE("list: destroying a list that still holds an element is reported")
{
	Bugs bugs;
	Item a;
	{
		Items l;
		l.push_back(&a);
	} /* the list goes, a still points into it */
	CHECK(Bugs::seen == std::vector<std::string>{"list destroyed with elements on it"});
	a.hook.prev = a.hook.next = nullptr; /* its list is gone */
}

TEST_CASE("list: destroying an object that is still on a list is reported")
{
	Bugs bugs;
	Items l;
	{
		Item a;
		l.push_back(&a);
		l.remove(&a);
	}
	CHECK(Bugs::seen.empty());
	alignas(Item) unsigned char buf[sizeof(Item)];
	Item *b = new (buf) Item;
	l.push_back(b);
	ListHook *p = b->hook.prev, *n = b->hook.next;
	b->~Item(); /* still on l */
	CHECK(Bugs::seen == std::vector<std::string>{"destroyed while on a list"});
	p->next = n; /* take what is left of it off l before l goes */
	n->prev = p;
	CHECK(l.empty());
}

TEST_CASE("list: copying a linked hook is reported")
{
	Bugs bugs;
	Items l;
	Item a;
	l.push_back(&a);
	Item copy = a;
	CHECK(!copy.hook.linked());
	CHECK(Bugs::seen == std::vector<std::string>{"copy of a linked hook"});
	l.remove(&a);
}
