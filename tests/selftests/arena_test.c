// SPDX-License-Identifier: MIT
/*
 * arena_test: libkipc's data arena allocator (lib/arena.c) on its own,
 * on an attachment of its own that no kernel sees: 64-byte units,
 * allocations that never overlap and stay inside the arena, frees of
 * anything but an allocation's start ignored, and (checked against a
 * model over many random operations) an allocation succeeds exactly when
 * a run of free units long enough exists.
 */
#include "kipc_test.h"

#include "../../lib/internal.h"

#define NUNITS 200 /* not a multiple of 64: the bitmap's last word is partial */

struct model {
	int owner[NUNITS];   /* allocation index + 1 owning each unit, 0: free */
};

static uint32_t units_of(size_t len)
{
	return len ? (uint32_t)((len + KIPC_ARENA_UNIT - 1) / KIPC_ARENA_UNIT) : 1;
}

static bool has_run(const struct model *m, uint32_t n)
{
	uint32_t run = 0;
	for (uint32_t u = 0; u < NUNITS; u++) {
		run = m->owner[u] ? 0 : run + 1;
		if (run >= n)
			return true;
	}
	return false;
}

static void att_init(struct __test_metadata *_metadata, struct kipc_att *a)
{
	memset(a, 0, sizeof *a);
	a->arena_size = (uint64_t)NUNITS * KIPC_ARENA_UNIT;
	ASSERT_EQ(0, __kipc_arena_init(a));
	ASSERT_EQ(NUNITS, a->nunits);
}

TEST(units_alignment_and_exhaustion)
{
	struct kipc_att a;
	att_init(_metadata, &a);
	uint64_t z1 = __kipc_arena_alloc(&a, 0), z2 = __kipc_arena_alloc(&a, 0);
	EXPECT_NE(z1, z2); /* zero-length allocations stay distinct */
	uint64_t one = __kipc_arena_alloc(&a, 64), two = __kipc_arena_alloc(&a, 65);
	EXPECT_EQ(0, one % KIPC_ARENA_UNIT);
	EXPECT_EQ(0, two % KIPC_ARENA_UNIT);
	EXPECT_EQ(one + 64, two);          /* next fit, one unit for 64 bytes */
	uint64_t rest = __kipc_arena_alloc(&a, (NUNITS - 5) * 64);
	EXPECT_EQ(two + 128, rest);        /* 65 bytes took two units */
	EXPECT_EQ(UINT64_MAX, __kipc_arena_alloc(&a, 1)); /* full */
	EXPECT_EQ(UINT64_MAX, __kipc_arena_alloc(&a, (size_t)(NUNITS + 1) * 64));
	/* frees that are not an allocation's start change nothing */
	__kipc_arena_free(&a, two + 64);
	__kipc_arena_free(&a, one + 1);
	__kipc_arena_free(&a, a.arena_size);
	__kipc_arena_free(&a, UINT64_MAX - 63);
	EXPECT_EQ(UINT64_MAX, __kipc_arena_alloc(&a, 1));
	__kipc_arena_free(&a, two);
	__kipc_arena_free(&a, two); /* twice: the second is ignored */
	EXPECT_EQ(UINT64_MAX, __kipc_arena_alloc(&a, 3 * 64));
	EXPECT_EQ(two, __kipc_arena_alloc(&a, 2 * 64));
	__kipc_arena_fini(&a);
}

TEST(fragmentation_and_wrap_around)
{
	struct kipc_att a;
	att_init(_metadata, &a);
	uint64_t off[NUNITS];
	for (int i = 0; i < NUNITS; i++) {
		off[i] = __kipc_arena_alloc(&a, 1);
		ASSERT_EQ((uint64_t)i * 64, off[i]);
	}
	for (int i = 0; i < NUNITS; i += 2)
		__kipc_arena_free(&a, off[i]);
	/* half the arena is free, but no two free units touch */
	EXPECT_EQ(UINT64_MAX, __kipc_arena_alloc(&a, 2 * 64));
	/* the search wraps: single units from the start are found */
	EXPECT_EQ(0, __kipc_arena_alloc(&a, 1));
	__kipc_arena_free(&a, off[1]);
	EXPECT_EQ(UINT64_MAX, __kipc_arena_alloc(&a, 3 * 64));
	EXPECT_EQ(64, __kipc_arena_alloc(&a, 2 * 64)); /* units 1 and 2 touch now */
	__kipc_arena_fini(&a);
}

/* Random allocations and frees against the model. */
TEST(random_against_a_model)
{
	struct kipc_att a;
	att_init(_metadata, &a);
	struct model m;
	memset(&m, 0, sizeof m);
	uint64_t live_off[NUNITS];
	uint32_t live_n[NUNITS];
	int nlive = 0, next_id = 1, ids[NUNITS];
	uint64_t x = 0x243f6a8885a308d3ull;
	for (int step = 0; step < 20000; step++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (nlive && (x % 3 == 0 || nlive == NUNITS)) {
			int k = (int)((x >> 8) % (uint64_t)nlive);
			__kipc_arena_free(&a, live_off[k]);
			for (uint32_t u = 0; u < live_n[k]; u++)
				m.owner[live_off[k] / 64 + u] = 0;
			live_off[k] = live_off[nlive - 1];
			live_n[k] = live_n[nlive - 1];
			ids[k] = ids[nlive - 1];
			nlive--;
			continue;
		}
		size_t len = (size_t)((x >> 16) % (x % 7 == 0 ? 40 * 64 : 4 * 64));
		uint32_t n = units_of(len);
		bool room = has_run(&m, n);
		uint64_t off = __kipc_arena_alloc(&a, len);
		if (!room) {
			ASSERT_EQ(UINT64_MAX, off) TH_LOG("step %d: %zu bytes without room", step, len);
			continue;
		}
		ASSERT_NE(UINT64_MAX, off) TH_LOG("step %d: %zu bytes with room", step, len);
		ASSERT_EQ(0, off % 64);
		ASSERT_LE(off + (uint64_t)n * 64, a.arena_size);
		for (uint32_t u = 0; u < n; u++) {
			ASSERT_EQ(0, m.owner[off / 64 + u]) TH_LOG("step %d: overlap", step);
			m.owner[off / 64 + u] = next_id;
		}
		live_off[nlive] = off;
		live_n[nlive] = n;
		ids[nlive++] = next_id++;
	}
	(void)ids;
	__kipc_arena_fini(&a);
}

KIPC_TEST_MAIN
