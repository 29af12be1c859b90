// SPDX-License-Identifier: MIT
/*
 * Slabs (slab.h): chunks, per-chunk free lists, the shared chunk table.
 *
 * A chunk starts with its header (SlabChunk); objects follow at a 16-byte
 * aligned offset, each objsize bytes (a multiple of 4). A free object holds the slot of the next free object of
 * its chunk in its first four bytes (slot + 1, 0: end). Slots past `fresh`
 * were never handed out: a new chunk costs no page touches beyond the
 * ones its objects use. Chunks with free objects are on their slab's
 * partial list (list.h).
 */
#include "slab.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

namespace kipc {

namespace {

constexpr uint32_t kSlotMask = (1u << kSlabSlotBits) - 1;
constexpr uint32_t kMaxChunkIds = 1u << kSlabChunkIdBits;

/* Chunk ids -> chunks, shared by every slab. Id 0 is never used (handle 0). */
struct ChunkTable {
	std::vector<SlabChunk *> chunks{nullptr};
	std::vector<uint32_t> free_ids;
	Slab *slabs = nullptr; /* every slab, for shrink_all */
	uint64_t bytes = 0;

	bool get_id(uint32_t *id)
	{
		if (!free_ids.empty()) {
			*id = free_ids.back();
			free_ids.pop_back();
			return true;
		}
		if (chunks.size() >= kMaxChunkIds)
			return false;
		*id = uint32_t(chunks.size());
		chunks.push_back(nullptr);
		return true;
	}
	void put_id(uint32_t id)
	{
		chunks[id] = nullptr;
		free_ids.push_back(id);
	}
};

ChunkTable &table()
{
	static ChunkTable *t = new ChunkTable; /* never destroyed: slabs outlive statics */
	return *t;
}

uint32_t round4(uint32_t n)
{
	return (n + 3) & ~3u;
}

} // namespace

static SlabChunk *slab_chunk(uint32_t h)
{
	uint32_t id = h >> kSlabSlotBits;
	ChunkTable &t = table();
	return id < t.chunks.size() ? t.chunks[id] : nullptr;
}

Slab::Slab(const char *name, uint32_t objsize, bool large, uint32_t max_chunks)
	: name_(name), large_(large), max_chunks_(max_chunks)
{
	objsize_ = large ? objsize : round4(objsize < kSlabMinObject ? kSlabMinObject : objsize);
	per_ = large ? 1 : (kSlabChunkBytes - SlabChunk::kHeader) / objsize_;
	if (!large && (per_ == 0 || per_ > kSlotMask))
		kipc_bug(__FILE__, __LINE__, "slab object size out of range");
	ChunkTable &t = table();
	next_ = t.slabs;
	t.slabs = this;
}

Slab::~Slab()
{
	/* Objects still out are the owner's leak; free the chunks anyway. */
	ChunkTable &t = table();
	for (Slab **p = &t.slabs; *p; p = &(*p)->next_)
		if (*p == this) {
			*p = next_;
			break;
		}
	for (uint32_t id = 1; id < t.chunks.size(); id++)
		if (SlabChunk *c = t.chunks[id]; c && c->owner == this) {
			if (c->node.linked())
				partial_.remove(c);
			t.bytes -= c->size;
			t.put_id(id);
			c->~SlabChunk();
			std::free(c);
		}
}

static void *chunk_memory(size_t size)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		void *p = std::malloc(size);
		if (p)
			return p;
		slab_shrink_all(); /* under pressure: give back the spares, retry once */
	}
	return nullptr;
}

/* A chunk of bytes (header included) for this slab, counted; nullptr when
 * this slab's chunks, the chunk ids or memory ran out. */
SlabChunk *Slab::new_chunk(size_t bytes)
{
	if (max_chunks_ && nchunks_ >= max_chunks_)
		return nullptr;
	uint32_t id;
	ChunkTable &t = table();
	if (!t.get_id(&id))
		return nullptr;
	void *p = chunk_memory(bytes);
	if (!p) {
		t.put_id(id);
		return nullptr;
	}
	auto *c = new (p) SlabChunk{};
	c->owner = this;
	c->id = id;
	c->size = bytes;
	t.chunks[id] = c;
	t.bytes += bytes;
	bytes_ += bytes;
	nchunks_++;
	return c;
}

SlabChunk *Slab::grow()
{
	SlabChunk *c = new_chunk(kSlabChunkBytes);
	if (!c)
		return nullptr;
	c->nfree = per_;
	nempty_++;
	partial_.insert_after(nullptr, c);
	return c;
}

void Slab::release(SlabChunk *c)
{
	ChunkTable &t = table();
	if (!large_) {
		partial_.remove(c);
		nempty_--;
	}
	t.bytes -= c->size;
	bytes_ -= c->size;
	nchunks_--;
	t.put_id(c->id);
	c->~SlabChunk();
	std::free(c);
}

void *Slab::alloc(uint32_t *handle)
{
	if (large_)
		return alloc_large(objsize_, handle);
	SlabChunk *c = partial_.front();
	if (!c && !(c = grow()))
		return nullptr;
	if (c->nfree == per_)
		nempty_--;
	uint32_t slot;
	if (c->free) {
		slot = c->free - 1;
		memcpy(&c->free, c->mem() + size_t(slot) * objsize_, sizeof c->free);
	} else {
		slot = c->fresh++;
	}
	if (--c->nfree == 0)
		partial_.remove(c);
	live_++;
	*handle = c->id << kSlabSlotBits | slot;
	return c->mem() + size_t(slot) * objsize_;
}

void *Slab::alloc_large(size_t size, uint32_t *handle)
{
	SlabChunk *c = new_chunk(SlabChunk::kHeader + size);
	if (!c)
		return nullptr;
	c->fresh = 1;
	live_++;
	*handle = c->id << kSlabSlotBits;
	return c->mem();
}

void Slab::free(uint32_t h)
{
	SlabChunk *c = slab_chunk(h);
	if (!c || c->owner != this)
		kipc_bug(__FILE__, __LINE__, "slab free of a foreign or stale handle");
	live_--;
	if (large_) {
		release(c);
		return;
	}
	uint32_t slot = h & kSlotMask;
	memcpy(c->mem() + size_t(slot) * objsize_, &c->free, sizeof c->free);
	c->free = slot + 1;
	if (c->nfree++ == 0)
		partial_.insert_after(nullptr, c); /* was full: fill it again first */
	if (c->nfree < per_)
		return;
	/* empty: keep one spare, give the rest back */
	if (nempty_ >= 1) {
		nempty_++;
		release(c);
		return;
	}
	nempty_++;
	partial_.remove(c);
	partial_.push_back(c); /* allocate from the others first */
}

void *Slab::alloc_ptr()
{
	if (objsize_ % 8)
		kipc_bug(__FILE__, __LINE__, "pointer objects of a slab not 8-byte aligned");
	uint32_t h;
	auto *p = static_cast<uint8_t *>(alloc(&h));
	if (!p)
		return nullptr;
	memcpy(p, &h, sizeof h);
	return p + kSlabPtrPrefix;
}

uint32_t Slab::ptr_handle(const void *p)
{
	uint32_t h;
	memcpy(&h, static_cast<const uint8_t *>(p) - kSlabPtrPrefix, sizeof h);
	return h;
}

void Slab::free_ptr(void *p)
{
	free(ptr_handle(p));
}

size_t Slab::shrink()
{
	size_t freed = 0;
	while (nempty_ && partial_.back() && partial_.back()->nfree == per_) {
		freed += partial_.back()->size;
		release(partial_.back());
	}
	return freed;
}

void *slab_at(uint32_t h)
{
	if (!h)
		return nullptr;
	SlabChunk *c = slab_chunk(h);
	return c->mem() + size_t(h & kSlotMask) * c->owner->objsize();
}

uint32_t slab_handle(uint32_t chunk_id, const void *p)
{
	SlabChunk *c = table().chunks[chunk_id];
	size_t off = size_t(static_cast<const uint8_t *>(p) - c->mem());
	/* a large object is its chunk's only one: slot 0 (and objsize 0) */
	return chunk_id << kSlabSlotBits | (off ? uint32_t(off / c->owner->objsize()) : 0);
}

void slab_free(uint32_t h)
{
	SlabChunk *c = slab_chunk(h);
	if (!c)
		kipc_bug(__FILE__, __LINE__, "slab free of a stale handle");
	c->owner->free(h);
}

size_t slab_shrink_all()
{
	size_t freed = 0;
	for (Slab *s = table().slabs; s; s = s->next_)
		freed += s->shrink();
	return freed;
}

uint64_t slab_total_bytes()
{
	return table().bytes;
}

Slab &node_slab(size_t size)
{
	static auto *slabs = new std::map<size_t, std::unique_ptr<Slab>>;
	auto &s = (*slabs)[size];
	if (!s)
		s = std::make_unique<Slab>("node", uint32_t(size + kSlabPtrPrefix));
	return *s;
}

} // namespace kipc
