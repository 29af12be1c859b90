// SPDX-License-Identifier: MIT
/*
 * detach_wait_test: a thread's kipc_detach() while another thread of the
 * process waits in a fast path (transport.md sections 12 and 13). A
 * blocking receive of a mailbox whose push we hold, its next slot empty,
 * polls that slot for a while with the library's lock dropped; the
 * detach takes the lock as soon as it is dropped and lets go of the
 * attachment. The waiting thread holds a reference, so its poll never
 * reads an unmapped region: every round ends with the receive returning
 * (a message, or an error of the dead attachment or mailbox), never
 * with SIGSEGV (before the reference, a run of 200 rounds died so about
 * every other time). Rounds detach at delays from 0 to 40 us after the
 * receive starts, so that many of them land inside the wait.
 */
/* a push here goes back only when a test takes it back (push_idle_ms) */
#define KT_BOOT_PARAMS "push_idle_ms=600000"
#include "kipc_test.h"

#include <pthread.h>

#define ROUNDS 1000
#define ROUNDS_MS 15000 /* fewer rounds on a loaded machine, within the harness's 30 s */

struct race {
	int64_t id;
	int go;     /* atomic: start the receive */
	int done;   /* atomic: it returned */
	ssize_t got;
};

static void *receiver(void *arg)
{
	struct race *r = arg;
	uint32_t v;
	while (!__atomic_load_n(&r->go, __ATOMIC_ACQUIRE))
		;
	r->got = kipc_mbox_receive(r->id, &v, sizeof v, NULL, 0);
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Hold the push of the empty mailbox id: a receive that completes at
 * once with a message earns it. 0 or -1. */
static int earn_push(int64_t id)
{
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (__ksft_now_ms() < deadline) {
		char *reg = kt_region();
		if (!reg)
			return -1;
		const struct kipc_push *w = (const struct kipc_push *)(reg + KIPC_PUSH_OFF);
		if ((__atomic_load_n(&w->claim, __ATOMIC_ACQUIRE) >> 32) &&
		    __atomic_load_n(&w->link, __ATOMIC_ACQUIRE) == id)
			return 0;
		uint32_t v = 1000;
		if (kipc_mbox_send(id, &v, sizeof v, 0, 0) < 0 ||
		    kipc_mbox_receive(id, &v, sizeof v, NULL, 0) != sizeof v || v != 1000)
			return -1;
		sched_yield();
	}
	return -1;
}

static void spin_ns(int64_t ns)
{
	int64_t end = kt_now_ns() + ns;
	while (kt_now_ns() < end)
		;
}

TEST(detach_while_a_pushed_receive_waits_for_its_slot)
{
	int earned = 0, i;
	int64_t end = __ksft_now_ms() + ROUNDS_MS;
	for (i = 0; i < ROUNDS && __ksft_now_ms() < end; i++) {
		ASSERT_EQ(0, kipc_attach());
		struct kipc_mbox_attr a = kt_attr(8);
		struct race r = {.id = kipc_mbox_open(NULL, 0, &a)};
		ASSERT_LT(0, r.id);
		if (earn_push(r.id) < 0) {
			kipc_mbox_destroy(r.id);
			continue; /* no grant this round (kipcd may refuse one) */
		}
		earned++;
		pthread_t t;
		ASSERT_EQ(0, pthread_create(&t, NULL, receiver, &r));
		__atomic_store_n(&r.go, 1, __ATOMIC_RELEASE);
		spin_ns((i % 9) * 5000);
		kipc_detach();
		int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
		while (!__atomic_load_n(&r.done, __ATOMIC_ACQUIRE) && __ksft_now_ms() < deadline)
			sched_yield();
		ASSERT_TRUE(__atomic_load_n(&r.done, __ATOMIC_ACQUIRE)) TH_LOG("round %d", i);
		pthread_join(t, NULL);
		EXPECT_GT(0, r.got) TH_LOG("round %d: the mailbox was empty", i);
		kipc_detach();
	}
	EXPECT_LT(i / 2, earned) TH_LOG("%d rounds", i);
}

KIPC_TEST_MAIN
