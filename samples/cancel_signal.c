// SPDX-License-Identifier: MIT
/*
 * cancel_signal: getting out of a blocked call. An asynchronous request
 * can be cancelled (ECANCELED); a signal handler installed without
 * SA_RESTART interrupts a blocked synchronous call (EINTR, the request
 * leaves the kernel); with SA_RESTART the call goes on waiting, as
 * read(2) on a pipe is restarted, and its timeout keeps counting from
 * the start.
 *
 * Notice: the three results, and the restarted receive ending at its
 * original 300 ms deadline, not 300 ms after the signal.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <kipc/libkipc.h>

static volatile sig_atomic_t signals;
static void on_alarm(int sig) { (void)sig; signals++; }

static double now_ms(void)
{
	return kipc_clock_ns(CLOCK_MONOTONIC) / 1e6;
}

static void alarm_in_ms(int ms, int flags)
{
	struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = flags};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {.it_value = {0, ms * 1000}};
	setitimer(ITIMER_REAL, &it, NULL);
}

int main(void)
{
	struct kipc_mbox_attr attr = {.capacity = 4, .mode = 0600};
	int64_t box = kipc_mbox_open(NULL, 0, &attr);
	if (box < 0) {
		perror("kipc_mbox_open");
		return 1;
	}

	/* 1. An asynchronous receive, parked in the kernel, then cancelled. */
	void *buf = kipc_buf_alloc(64);
	struct kipc_sqe *sqe = kipc_get_sqe();
	kipc_prep_mbox_receive(sqe, box, buf, 64, 0);
	kipc_sqe_set_data(sqe, 42);
	kipc_submit();
	struct kipc_cqe *cqe;
	printf("async receive parked; a peek finds nothing: %s\n",
	       kipc_peek_cqe(&cqe) < 0 ? strerrorname_np(errno) : "a completion?");
	printf("kipc_cancel(42): %s\n", kipc_cancel(42, 0) < 0 ? strerrorname_np(errno) : "ok");
	kipc_wait_cqe(&cqe);
	printf("its completion: res = -%s\n", strerrorname_np((int)-cqe->res));
	kipc_cqe_seen(cqe);
	kipc_buf_free(buf);

	/* 2. A signal without SA_RESTART interrupts a blocked receive. */
	char msg[64];
	double t0 = now_ms();
	alarm_in_ms(100, 0);
	ssize_t n = kipc_mbox_receive(box, msg, sizeof msg, NULL, 0);
	printf("blocked receive, SIGALRM at 100 ms, no SA_RESTART: %s after %.0f ms\n",
	       n < 0 ? strerrorname_np(errno) : "a message?", now_ms() - t0);

	/* 3. With SA_RESTART the handler runs and the receive waits on. */
	signals = 0;
	t0 = now_ms();
	alarm_in_ms(100, SA_RESTART);
	n = kipc_mbox_receive_timed(box, msg, sizeof msg, NULL, 0, 300000000);
	printf("timed receive (300 ms), SIGALRM at 100 ms, SA_RESTART: %s after %.0f ms, %d signal(s)\n",
	       n < 0 ? strerrorname_np(errno) : "a message?", now_ms() - t0, (int)signals);
	kipc_mbox_destroy(box);
	return 0;
}
