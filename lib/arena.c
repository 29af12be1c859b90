/* SPDX-License-Identifier: MIT */
/*
 * libkipc: the data arena allocator. The arena is the part of the shared
 * region that sqe.addr/addr2 point into. Its bookkeeping lives in private
 * memory (the kernel only ever writes the bytes a request names), as a
 * bitmap of 64-byte units with next-fit search. Caller holds lib.lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int __kipc_arena_init(struct kipc_att *a)
{
	a->nunits = (uint32_t)(a->arena_size / KIPC_ARENA_UNIT);
	a->bitmap = calloc((a->nunits + 63) / 64, sizeof(uint64_t));
	a->alloc_units = calloc(a->nunits ? a->nunits : 1, sizeof(uint32_t));
	a->hint = 0;
	if (!a->bitmap || !a->alloc_units) {
		free(a->bitmap);
		free(a->alloc_units);
		return -ENOMEM;
	}
	return 0;
}

void __kipc_arena_fini(struct kipc_att *a)
{
	free(a->bitmap);
	free(a->alloc_units);
	a->bitmap = NULL;
	a->alloc_units = NULL;
}

static bool used(const struct kipc_att *a, uint32_t u)
{
	return a->bitmap[u / 64] & (1ull << (u % 64));
}

static void mark(struct kipc_att *a, uint32_t u, uint32_t n, bool set)
{
	for (uint32_t i = u; i < u + n; i++) {
		if (set)
			a->bitmap[i / 64] |= 1ull << (i % 64);
		else
			a->bitmap[i / 64] &= ~(1ull << (i % 64));
	}
}

/* First run of n free units at or after start, below end; or UINT32_MAX. */
static uint32_t find_run(const struct kipc_att *a, uint32_t start,
			 uint32_t end, uint32_t n)
{
	uint32_t run = 0;
	for (uint32_t u = start; u < end; u++) {
		if (!(u % 64) && a->bitmap[u / 64] == ~0ull) {
			run = 0;
			u += 63;
			continue;
		}
		if (used(a, u)) {
			run = 0;
			continue;
		}
		if (++run == n)
			return u + 1 - n;
	}
	return UINT32_MAX;
}

uint64_t __kipc_arena_alloc(struct kipc_att *a, size_t len)
{
	/* Zero-length requests still get a unit: offsets stay distinct. */
	uint64_t n64 = len ? (len + KIPC_ARENA_UNIT - 1) / KIPC_ARENA_UNIT : 1;
	if (n64 > a->nunits)
		return UINT64_MAX;
	uint32_t n = (uint32_t)n64;
	uint32_t u = find_run(a, a->hint, a->nunits, n);
	if (u == UINT32_MAX)
		u = find_run(a, 0, a->hint + n < a->nunits ? a->hint + n : a->nunits, n);
	if (u == UINT32_MAX)
		return UINT64_MAX;
	mark(a, u, n, true);
	a->alloc_units[u] = n;
	a->hint = u + n < a->nunits ? u + n : 0;
	return (uint64_t)u * KIPC_ARENA_UNIT;
}

void __kipc_arena_free(struct kipc_att *a, uint64_t off)
{
	if (off % KIPC_ARENA_UNIT || off >= a->arena_size)
		return;
	uint32_t u = (uint32_t)(off / KIPC_ARENA_UNIT);
	uint32_t n = a->alloc_units[u];
	if (!n)
		return;
	a->alloc_units[u] = 0;
	mark(a, u, n, false);
}

/* ---------------------------------------------------------------- */
/* Public: async buffers. Each holds a reference on its attachment.   */

static struct kipc_att *owner_of(const void *p)
{
	for (struct kipc_att *a = __kipc_lib.atts; a; a = a->next) {
		const uint8_t *b = p;
		if (b >= a->arena && b < a->arena + a->arena_size)
			return a;
	}
	return NULL;
}

void *kipc_buf_alloc(size_t len)
{
	pthread_mutex_lock(&__kipc_lib.lock);
	void *p = NULL;
	int err = __kipc_ensure_attached();
	if (!err) {
		struct kipc_att *a = __kipc_lib.cur;
		uint64_t off = __kipc_arena_alloc(a, len);
		if (off == UINT64_MAX) {
			err = -ENOMEM;
		} else {
			a->refs++;
			p = a->arena + off;
		}
	}
	pthread_mutex_unlock(&__kipc_lib.lock);
	if (!p)
		__kipc_ret(err);
	return p;
}

void kipc_buf_free(void *buf)
{
	if (!buf)
		return;
	pthread_mutex_lock(&__kipc_lib.lock);
	struct kipc_att *a = owner_of(buf);
	if (a) {
		uint64_t off = (uint64_t)((uint8_t *)buf - a->arena);
		if (a->alloc_units[off / KIPC_ARENA_UNIT]) {
			__kipc_arena_free(a, off);
			__kipc_att_put(a);
		}
	}
	pthread_mutex_unlock(&__kipc_lib.lock);
}

uint64_t kipc_buf_offset(const void *buf)
{
	pthread_mutex_lock(&__kipc_lib.lock);
	struct kipc_att *a = __kipc_lib.cur;
	uint64_t off = UINT64_MAX; /* outside: the kernel answers EFAULT */
	if (a && (const uint8_t *)buf >= a->arena &&
	    (const uint8_t *)buf <= a->arena + a->arena_size)
		off = (uint64_t)((const uint8_t *)buf - a->arena);
	pthread_mutex_unlock(&__kipc_lib.lock);
	return off;
}
