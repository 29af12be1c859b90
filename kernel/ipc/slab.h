// SPDX-License-Identifier: MIT
/*
 * Slabs: the core's allocator for objects made and freed on the hot path
 * (messages, their index extensions, requests, the nodes of the maps that
 * index queues), in the spirit of Linux's kmem_cache.
 *
 * A Slab hands out objects of one size, carved from 64 KiB chunks (from
 * malloc, below its mmap threshold: the heap counts them). Every object has a 32-bit handle, (chunk id << 11 | slot),
 * never 0, that stays valid until the object is freed: the lists of the
 * message store link handles, not pointers (4 bytes instead of 8). Chunk
 * ids come from one table shared by all slabs, so a handle names its
 * object whatever slab it came from (slab_at). Objects too large for a
 * chunk (large slabs: messages with big payloads) get a chunk of their
 * own, malloc'd at their exact size.
 *
 * Free objects are kept on per-chunk free lists; a chunk with free objects
 * is on its slab's partial list (fuller chunks first, so empty ones stay
 * empty). Memory goes back to malloc:
 *  - at once, when a chunk becomes empty and its slab already keeps one
 *    empty chunk (one spare per slab absorbs a queue that fills and
 *    drains around a chunk boundary);
 *  - under pressure: when malloc fails, every slab's spare is released
 *    (slab_shrink_all) and the allocation retried.
 * Exhaustion (malloc fails even then, the slab's own chunk limit, or the
 * 2^21 chunk ids) makes alloc() return nullptr: the caller fails ENOMEM
 * and nothing already allocated is touched.
 *
 * The core runs on one thread (ipc.h): no locking.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "list.h"

namespace kipc {

constexpr uint32_t kSlabChunkBytes = 64 * 1024;
constexpr uint32_t kSlabSlotBits = 11;  /* at most 2047 objects per chunk */
constexpr uint32_t kSlabChunkIdBits = 32 - kSlabSlotBits;
constexpr uint32_t kSlabMinObject = 32; /* bytes; smaller objects are rounded up */
constexpr uint32_t kSlabPtrPrefix = 8;   /* alloc_ptr: the handle (objects are 8-byte aligned) */

class Slab;

/*
 * A chunk starts with this header; objects follow at kHeader. A free
 * object holds the slot of the next free object of its chunk in its first
 * four bytes (slot + 1, 0: end). Slots past `fresh` were never handed out.
 */
struct SlabChunk {
	Slab *owner;
	uint32_t id;
	uint32_t nfree;       /* free objects (ordinary chunks) */
	uint32_t free;        /* first free slot + 1, 0: none below fresh */
	uint32_t fresh;       /* slots from here on never used */
	ListHook node;        /* on owner's partial list */
	size_t size;          /* bytes of this chunk */
	uint8_t *mem() { return reinterpret_cast<uint8_t *>(this) + kHeader; }
	static constexpr size_t kHeader = 64;
};
static_assert(sizeof(SlabChunk) <= SlabChunk::kHeader);

class Slab {
public:
	/*
	 * objsize bytes per object (rounded up to 4, at least kSlabMinObject;
	 * objects are 4-byte aligned, 8 when objsize is a multiple of 8);
	 * large: every object its own chunk of objsize bytes or more (the size
	 * is given at each alloc). max_chunks bounds the chunks this slab may
	 * hold at once (0: only the shared id space bounds it).
	 */
	explicit Slab(const char *name, uint32_t objsize, bool large = false,
		      uint32_t max_chunks = 0);
	~Slab();
	Slab(const Slab &) = delete;
	Slab &operator=(const Slab &) = delete;

	/* A new object (uninitialised) and its handle, or nullptr (ENOMEM). */
	void *alloc(uint32_t *handle);
	/* Large slabs: an object of size bytes. */
	void *alloc_large(size_t size, uint32_t *handle);
	/* Free the object of handle h (it came from this slab). */
	void free(uint32_t h);
	/*
	 * Pointer-only use (requests, pool allocators): objects of objsize -
	 * kSlabPtrPrefix bytes, preceded by their handle (objsize a multiple
	 * of 8: 8-byte aligned objects).
	 */
	void *alloc_ptr();
	void free_ptr(void *p);
	static uint32_t ptr_handle(const void *p);

	/* Release the empty chunks kept as spares; bytes given back. */
	size_t shrink();

	const char *name() const { return name_; }
	uint32_t objsize() const { return objsize_; }
	uint32_t per_chunk() const { return per_; }
	uint64_t live() const { return live_; }        /* objects handed out */
	uint32_t chunks() const { return nchunks_; }    /* chunks held */
	uint64_t bytes() const { return bytes_; }       /* bytes held in chunks */

private:
	friend size_t slab_shrink_all();
	SlabChunk *grow();
	SlabChunk *new_chunk(size_t bytes); /* grow, alloc_large */
	void release(SlabChunk *c);

	const char *name_;
	uint32_t objsize_;
	uint32_t per_;
	bool large_;
	uint32_t max_chunks_;
	List<SlabChunk, &SlabChunk::node> partial_; /* chunks with free objects, fullest first */
	uint32_t nempty_ = 0;  /* empty chunks kept (at most 1) */
	uint32_t nchunks_ = 0;
	uint64_t live_ = 0;
	uint64_t bytes_ = 0;
	Slab *next_ = nullptr; /* in the list slab_shrink_all walks */
};

/* The object a handle names (any slab), or nullptr for handle 0. */
void *slab_at(uint32_t h);
/*
 * The handle of object p, which lies in chunk chunk_id (h >> kSlabSlotBits
 * of its handle h): what slab_at(h) returns gives h back, so an object
 * may keep its chunk id (21 bits) instead of its whole handle.
 */
uint32_t slab_handle(uint32_t chunk_id, const void *p);
/* Free the object of handle h, whatever slab it came from. */
void slab_free(uint32_t h);
/* Release every slab's spare chunks; bytes given back. */
size_t slab_shrink_all();
/* Chunks held by all slabs, and the bytes they take (introspection, tests). */
uint64_t slab_total_bytes();

/*
 * A std allocator drawing single nodes from a slab of their size plus the
 * handle prefix (maps
 * and lists of the core: no malloc per insertion); arrays (hash buckets)
 * come from operator new.
 */
Slab &node_slab(size_t size);

template <class T> struct PoolAlloc {
	using value_type = T;
	PoolAlloc() = default;
	template <class U> PoolAlloc(const PoolAlloc<U> &) {}
	T *allocate(size_t n)
	{
		static_assert(alignof(T) <= 8);
		if (n != 1)
			return std::allocator<T>().allocate(n);
		static Slab &s = node_slab(sizeof(T));
		void *p = s.alloc_ptr();
		if (!p)
			throw std::bad_alloc();
		return static_cast<T *>(p);
	}
	void deallocate(T *p, size_t n)
	{
		if (n != 1)
			return std::allocator<T>().deallocate(p, n);
		static Slab &s = node_slab(sizeof(T));
		s.free_ptr(p);
	}
	template <class U> bool operator==(const PoolAlloc<U> &) const { return true; }
	template <class U> bool operator!=(const PoolAlloc<U> &) const { return false; }
};

} // namespace kipc
