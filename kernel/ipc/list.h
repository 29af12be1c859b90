// SPDX-License-Identifier: MIT
/*
 * Intrusive doubly linked lists, in the spirit of <linux/list.h>.
 *
 * An object that lives on a list embeds a ListHook per list it can be on;
 * insertion and removal are O(1) and never allocate, so the send and
 * receive paths can move messages and wait entries between lists without
 * touching the heap. A hook knows whether it is linked, which lets
 * destructors assert that an object is on no list any more.
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace kipc {

/* Report a broken invariant (kernel.cc; ipc.h's KIPC_BUG_ON). */
void kipc_bug(const char *file, int line, const char *what);

struct ListHook {
	ListHook *prev = nullptr;
	ListHook *next = nullptr;

	ListHook() = default;
	/* Only an unlinked hook may be copied (into a vector, say); the
	 * copy is unlinked too. */
	ListHook(const ListHook &o) { check_unlinked(o); }
	ListHook &operator=(const ListHook &o)
	{
		check_unlinked(o);
		check_unlinked(*this);
		return *this;
	}
	/* An object is off every list before it goes. */
	~ListHook()
	{
		if (linked())
			kipc_bug(__FILE__, __LINE__, "destroyed while on a list");
	}

	bool linked() const { return next != nullptr; }
	static void check_unlinked(const ListHook &h)
	{
		if (h.linked())
			kipc_bug(__FILE__, __LINE__, "copy of a linked hook");
	}
	void unlink()
	{
		prev->next = next;
		next->prev = prev;
		prev = next = nullptr;
	}
};

/*
 * List of T linked through the member T::*Hook. T must be standard layout
 * so that the hook's offset is fixed (container_of).
 */
template <class T, ListHook T::*Hook>
class List {
public:
	List() { head_.prev = head_.next = &head_; }
	/* A list goes empty: its elements would point into it. */
	~List()
	{
		if (!empty())
			kipc_bug(__FILE__, __LINE__, "list destroyed with elements on it");
		head_.prev = head_.next = nullptr; /* the head is on no list */
	}
	List(const List &) = delete;
	List &operator=(const List &) = delete;

	bool empty() const { return head_.next == &head_; }
	size_t size() const { return size_; }

	T *front() const { return empty() ? nullptr : owner(head_.next); }
	T *back() const { return empty() ? nullptr : owner(head_.prev); }
	/* The element after t, or nullptr at the end. */
	T *next(const T *t) const
	{
		const ListHook *h = &(t->*Hook);
		return h->next == &head_ ? nullptr : owner(h->next);
	}

	/* The element before t, or nullptr at the start. */
	T *prev(const T *t) const
	{
		const ListHook *h = &(t->*Hook);
		return h->prev == &head_ ? nullptr : owner(h->prev);
	}

	void push_back(T *t) { insert_before(&head_, t); }
	/* Insert t right after pos (pos == nullptr: at the front). */
	void insert_after(T *pos, T *t)
	{
		insert_before(pos ? (pos->*Hook).next : head_.next, t);
	}
	void remove(T *t)
	{
		(t->*Hook).unlink();
		size_--;
	}
	T *pop_front()
	{
		T *t = front();
		if (t)
			remove(t);
		return t;
	}

	template <class F> void for_each(F &&f) const
	{
		for (ListHook *h = head_.next, *n; h != &head_; h = n) {
			n = h->next; /* f may unlink the element */
			f(owner(h));
		}
	}

private:
	void insert_before(ListHook *pos, T *t)
	{
		ListHook *h = &(t->*Hook);
		h->prev = pos->prev;
		h->next = pos;
		pos->prev->next = h;
		pos->prev = h;
		size_++;
	}
	static T *owner(const ListHook *h)
	{
		return reinterpret_cast<T *>(reinterpret_cast<uintptr_t>(h) - offset());
	}
	static uintptr_t offset()
	{
		alignas(T) static char probe[sizeof(T)];
		T *t = reinterpret_cast<T *>(probe);
		return reinterpret_cast<uintptr_t>(&(t->*Hook)) - reinterpret_cast<uintptr_t>(t);
	}

	ListHook head_;
	size_t size_ = 0;
};

} // namespace kipc
