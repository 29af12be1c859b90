// SPDX-License-Identifier: MIT
/* Signals and blocked mq calls: EINTR without SA_RESTART, restart with it. */
#include "conform.h"
#include <sys/time.h>

static volatile sig_atomic_t got;
static void on_alarm(int sig)
{
	(void)sig;
	got++;
}

int main(void)
{
	const char *a = qname("sig");
	struct mq_attr at = {.mq_maxmsg = 1, .mq_msgsize = 8};
	char buf[8];
	mqd_t q = res("create", mq_open(a, O_RDWR | O_CREAT | O_EXCL, 0600, &at));

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 0}, {0, 100000}};
	setitimer(ITIMER_REAL, &it, NULL);
	res("receive interrupted", mq_receive(q, buf, sizeof buf, NULL));
	val("handler ran", got);

	mq_send(q, "full", 4, 0);
	setitimer(ITIMER_REAL, &it, NULL);
	res("send interrupted", mq_send(q, "more", 4, 0));

	/* SA_RESTART: the call goes on and the deadline still counts */
	mq_receive(q, buf, sizeof buf, NULL);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	struct timespec dl = abs_ms(300);
	res("timedreceive with SA_RESTART", mq_timedreceive(q, buf, sizeof buf, NULL, &dl));
	val("handler ran again", got);

	pid_t kid = fork();
	if (kid == 0) {
		msleep(200);
		mqd_t c = mq_open(a, O_WRONLY);
		_exit(mq_send(c, "kid", 3, 0) < 0);
	}
	setitimer(ITIMER_REAL, &it, NULL);
	ssize_t n = mq_receive(q, buf, sizeof buf, NULL);
	say("receive with SA_RESTART across a signal: %zd \"%.*s\"", n, (int)(n > 0 ? n : 0), buf);
	reap("sender", kid);
	mq_close(q);
	mq_unlink(a);
	return 0;
}
