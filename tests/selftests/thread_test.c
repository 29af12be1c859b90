// SPDX-License-Identifier: MIT
/*
 * thread_test: many threads of one process calling the library at once.
 * Each waits for its own completion; a thread blocked in receive does
 * not hold up the others; kipc_detach() fails blocked calls ECONNRESET.
 */
#include "kipc_test.h"

#include <pthread.h>

#define THREADS 8
#define PER_THREAD 300

struct tctx {
	int64_t id;
	int idx;
	int errors;
	int *received; /* [THREADS * PER_THREAD] */
};

static void *sender_thread(void *p)
{
	struct tctx *t = p;
	for (int i = 0; i < PER_THREAD; i++) {
		int v = t->idx * PER_THREAD + i;
		if (kipc_mbox_send(t->id, &v, sizeof v, 0, 0) < 0)
			t->errors++;
		if (kipc_nop() < 0)
			t->errors++;
	}
	return NULL;
}

static void *receiver_thread(void *p)
{
	struct tctx *t = p;
	for (int i = 0; i < PER_THREAD; i++) {
		int v;
		if (kipc_mbox_receive(t->id, &v, sizeof v, NULL, 0) != sizeof v) {
			t->errors++;
			continue;
		}
		if (v < 0 || v >= THREADS * PER_THREAD)
			t->errors++;
		else
			__atomic_fetch_add(&t->received[v], 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

TEST(many_threads_send_and_receive)
{
	int64_t id = kipc_mbox_open(NULL, 0, &(struct kipc_mbox_attr){.capacity = 8, .mode = 0600});
	ASSERT_LT(0, id);
	static int received[THREADS * PER_THREAD];
	struct tctx s[THREADS], r[THREADS];
	pthread_t ts[THREADS], tr[THREADS];
	for (int i = 0; i < THREADS; i++) {
		r[i] = (struct tctx){id, i, 0, received};
		s[i] = (struct tctx){id, i, 0, received};
		ASSERT_EQ(0, pthread_create(&tr[i], NULL, receiver_thread, &r[i]));
	}
	for (int i = 0; i < THREADS; i++)
		ASSERT_EQ(0, pthread_create(&ts[i], NULL, sender_thread, &s[i]));
	for (int i = 0; i < THREADS; i++) {
		pthread_join(ts[i], NULL);
		pthread_join(tr[i], NULL);
		EXPECT_EQ(0, s[i].errors);
		EXPECT_EQ(0, r[i].errors);
	}
	int bad = 0;
	for (int i = 0; i < THREADS * PER_THREAD; i++)
		bad += received[i] != 1;
	EXPECT_EQ(0, bad);
}

static void *block_forever(void *p)
{
	int *res = p;
	char b[4];
	ssize_t n = kipc_receive(KIPC_ANY, b, sizeof b, NULL, 0);
	*res = n >= 0 ? 0 : errno;
	return NULL;
}

TEST(blocked_thread_does_not_block_others)
{
	ASSERT_EQ(0, kipc_attach());
	int res = -1;
	pthread_t t;
	/* the blocked receiver takes from the own queue; use a mailbox for
	 * the other traffic so it cannot steal it */
	ASSERT_EQ(0, pthread_create(&t, NULL, block_forever, &res));
	ASSERT_EQ(0, kt_wait_taskq(KT_RECEIVERS, 1, KT_BOUND_MS));
	int64_t id = kipc_mbox_open(NULL, 0, NULL);
	ASSERT_LT(0, id);
	for (int i = 0; i < 100; i++) {
		ASSERT_EQ(0, kipc_mbox_send(id, &i, sizeof i, 0, 0));
		int v;
		ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive(id, &v, sizeof v, NULL, 0));
		EXPECT_EQ(i, v);
	}
	/* wake it the ordinary way */
	ASSERT_EQ(0, kipc_send(getpid(), "w", 1, 0, 0));
	pthread_join(t, NULL);
	EXPECT_EQ(0, res);
}

TEST(detach_fails_blocked_threads_econnreset)
{
	ASSERT_EQ(0, kipc_attach());
	int res[3] = {-1, -1, -1};
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, block_forever, &res[i]));
	ASSERT_EQ(0, kt_wait_taskq(KT_RECEIVERS, 3, KT_BOUND_MS));
	ASSERT_EQ(0, kipc_detach());
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(ECONNRESET, res[i]);
	}
	/* the next call attaches again */
	EXPECT_EQ(0, kipc_nop());
	EXPECT_EQ(getpid(), kipc_task_pid());
}

static void *nop_storm(void *p)
{
	int *errs = p;
	for (int i = 0; i < 2000; i++)
		if (kipc_nop() < 0)
			(*errs)++;
	return NULL;
}

TEST(nop_storm_from_many_threads)
{
	pthread_t t[16];
	int errs[16] = {0};
	for (int i = 0; i < 16; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, nop_storm, &errs[i]));
	for (int i = 0; i < 16; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(0, errs[i]);
	}
}

KIPC_TEST_MAIN
