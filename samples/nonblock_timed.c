// SPDX-License-Identifier: MIT
/*
 * nonblock_timed: the three ways to wait. A blocking call waits as long
 * as it takes; KIPC_F_NONBLOCK never waits (EAGAIN); a timed call waits
 * at most its timeout (ETIMEDOUT), relative or as an absolute deadline.
 *
 * Notice: EAGAIN comes back at once, ETIMEDOUT after the timeout, and a
 * failed send leaves the mailbox as it was.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <kipc/libkipc.h>

static double now_ms(void)
{
	return kipc_clock_ns(CLOCK_MONOTONIC) / 1e6;
}

static int failed;

/* Print the outcome; a timed call must have waited at least min_ms. */
static void report(const char *what, int r, double t0, double min_ms)
{
	double waited = now_ms() - t0;
	printf("%-44s -> %s after %.0f ms\n", what, r < 0 ? strerrorname_np(errno) : "ok", waited);
	if (r == 0 || waited < min_ms) {
		printf("  (unexpected: it should fail, after at least %.0f ms)\n", min_ms);
		failed = 1;
	}
}

int main(void)
{
	struct kipc_mbox_attr attr = {.capacity = 2, .mode = 0600};
	int64_t box = kipc_mbox_open(NULL, 0, &attr);
	if (box < 0) {
		perror("kipc_mbox_open");
		return 1;
	}
	char buf[16];
	double t0;

	kipc_mbox_send(box, "one", 3, 0, 0);
	kipc_mbox_send(box, "two", 3, 0, 0);
	printf("the mailbox holds 2 messages: it is full\n");

	t0 = now_ms();
	report("send, KIPC_F_NONBLOCK", kipc_mbox_send(box, "three", 5, 0, KIPC_F_NONBLOCK), t0, 0);
	t0 = now_ms();
	report("send, timeout 200 ms", kipc_mbox_send_timed(box, "three", 5, 0, 0, 200000000), t0, 200);

	/* An absolute deadline (CLOCK_MONOTONIC): the same wait, without drift
	 * when a loop retries. */
	int64_t deadline = kipc_clock_ns(CLOCK_MONOTONIC) + 100000000;
	t0 = now_ms();
	report("send, deadline now + 100 ms (KIPC_F_ABSTIME)",
	       kipc_mbox_send_timed(box, "three", 5, 0, KIPC_F_ABSTIME, deadline), t0,
	       99); /* the deadline was taken just before t0 */

	struct kipc_mbox_stat st;
	kipc_mbox_stat(box, &st);
	printf("still %u messages queued: a failed send changes nothing\n", st.nmsg);

	kipc_mbox_receive(box, buf, sizeof buf, NULL, 0);
	kipc_mbox_receive(box, buf, sizeof buf, NULL, 0);
	printf("took both; the mailbox is empty\n");
	t0 = now_ms();
	report("receive, KIPC_F_NONBLOCK",
	       (int)kipc_mbox_receive(box, buf, sizeof buf, NULL, KIPC_F_NONBLOCK), t0, 0);
	t0 = now_ms();
	report("receive, timeout 150 ms",
	       (int)kipc_mbox_receive_timed(box, buf, sizeof buf, NULL, 0, 150000000), t0, 150);
	t0 = now_ms();
	report("receive, timeout 0 (poll)",
	       (int)kipc_mbox_receive_timed(box, buf, sizeof buf, NULL, 0, 0), t0, 0);
	kipc_mbox_destroy(box);
	return failed;
}
