// SPDX-License-Identifier: MIT
/* mq_notify(3): SIGEV_SIGNAL (si_code, si_value, si_pid, si_uid),
 * SIGEV_NONE, SIGEV_THREAD; one registrant, one shot, EBUSY, removal;
 * only the owner's close removes it (not a vfork child's). */
#include "conform.h"
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>

static volatile sig_atomic_t nsig, code, value, sender, uid_ok;
static pid_t kid_pid;

static void on_sig(int sig, siginfo_t *si, void *ctx)
{
	(void)sig, (void)ctx;
	nsig++;
	code = si->si_code;
	value = si->si_value.sival_int;
	sender = si->si_pid; /* compared once fork() has told us kid_pid */
	uid_ok = si->si_uid == getuid();
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int thread_calls, thread_value;

static void on_thread(union sigval v)
{
	pthread_mutex_lock(&lock);
	thread_calls++;
	thread_value = v.sival_int;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}

static void wait_thread(int want)
{
	struct timespec dl = abs_ms(3000);
	pthread_mutex_lock(&lock);
	while (thread_calls < want && pthread_cond_timedwait(&cond, &lock, &dl) == 0)
		;
	pthread_mutex_unlock(&lock);
}

/* A child that sends one message to the queue. */
static void kid_send(const char *name)
{
	fflush(stdout);
	kid_pid = fork();
	if (kid_pid == 0) {
		mqd_t c = mq_open(name, O_WRONLY);
		_exit(mq_send(c, "k", 1, 0) < 0);
	}
	int st;
	waitpid(kid_pid, &st, 0);
}

static pid_t receiver_tid; /* blocked_receiver's, once it is about to receive */

static void *blocked_receiver(void *arg)
{
	char buf[64];
	__atomic_store_n(&receiver_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	ssize_t n = mq_receive(*(mqd_t *)arg, buf, sizeof buf, NULL);
	return (void *)(long)n;
}

/* The state letter of thread tid of this process (R, S, ...), or 0. */
static char thread_state(pid_t tid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	char *p = fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
	fclose(f);
	return p && p[1] == ' ' ? p[2] : 0;
}

/* 1 once blocked_receiver sleeps in mq_receive (the only call it makes
 * after its tid is set that can sleep), 0 if not within 3 s. */
static int receiver_blocked(void)
{
	struct timespec now, end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += 3;
	do {
		pid_t tid = __atomic_load_n(&receiver_tid, __ATOMIC_ACQUIRE);
		if (tid && thread_state(tid) == 'S')
			return 1;
		sched_yield();
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
	return 0;
}

int main(void)
{
	const char *a = qname("nt");
	struct mq_attr at = {.mq_maxmsg = 4, .mq_msgsize = 64};
	char buf[64];
	mqd_t q = res("create", mq_open(a, O_RDWR | O_CREAT | O_EXCL, 0600, &at));

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sig;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);

	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = 12345;
	res("notify bad sigev_notify", mq_notify(q, &sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = 65;
	res("notify signo 65", mq_notify(q, &sev));
	res("notify signo 65, bad fd", mq_notify(-1, &sev));
	sev.sigev_signo = SIGUSR1;
	res("notify bad fd", mq_notify(-1, &sev));
	res("remove when not registered", mq_notify(q, NULL));

	sev.sigev_value.sival_int = 42;
	res("register SIGEV_SIGNAL", mq_notify(q, &sev));
	res("register again (same process)", mq_notify(q, &sev));
	/* another process cannot register, nor remove ours */
	fflush(stdout);
	pid_t k = fork();
	if (k == 0) {
		mqd_t c = mq_open(a, O_RDWR);
		res("child: register", mq_notify(c, &sev));
		res("child: remove (not the owner)", mq_notify(c, NULL));
		_exit(0);
	}
	reap("child", k);
	kid_send(a);
	for (int i = 0; i < 100 && !nsig; i++)
		msleep(10);
	val("signals", nsig);
	val("si_code is SI_MESGQ", code == SI_MESGQ);
	val("si_value", value);
	val("si_pid is the sender", sender == kid_pid);
	val("si_uid is the sender's", uid_ok);
	/* one shot: the next message to the (non-empty) queue signals nothing */
	res("send to non-empty", mq_send(q, "x", 1, 0));
	res("register again after it fired", mq_notify(q, &sev));
	res("send to non-empty, registered", mq_send(q, "y", 1, 0));
	msleep(50);
	val("signals", nsig);
	while (mq_receive(q, buf, sizeof buf, NULL) >= 0 && (mq_getattr(q, &at), at.mq_curmsgs))
		;
	res("send to empty", mq_send(q, "z", 1, 0));
	for (int i = 0; i < 100 && nsig < 2; i++)
		msleep(10);
	val("signals", nsig);
	mq_receive(q, buf, sizeof buf, NULL);

	/* no notification while a receiver is blocked: it gets the message */
	res("register", mq_notify(q, &sev));
	pthread_t th;
	pthread_create(&th, NULL, blocked_receiver, &q);
	/* Asleep is blocked: natively in the kernel's wait queue; under
	 * kipc-run its receive is in kipcd's ring ahead of our send
	 * (libkipc sleeps only after submitting, and the static supervisor
	 * serves calls in the order they trapped, each until it sleeps). */
	val("receiver blocked", receiver_blocked());
	res("send with a blocked receiver", mq_send(q, "r", 1, 0));
	void *rv;
	pthread_join(th, &rv);
	val("receiver got", (long)rv);
	msleep(50);
	val("signals", nsig);
	res("still registered", mq_notify(q, &sev));
	res("remove", mq_notify(q, NULL));
	res("send", mq_send(q, "s", 1, 0));
	msleep(50);
	val("signals after removal", nsig);
	mq_receive(q, buf, sizeof buf, NULL);

	/* closing any descriptor of the queue removes the registration */
	mqd_t q2 = mq_open(a, O_RDWR);
	res("register", mq_notify(q, &sev));
	res("close another descriptor", mq_close(q2));
	res("registered again: removed by the close", mq_notify(q, &sev));
	mq_notify(q, NULL);

	/* a vfork child's close is another process's: the registration stays
	 * (Linux removes it only for the owner's close, by tgid) */
	q2 = mq_open(a, O_RDWR);
	res("register", mq_notify(q, &sev));
	fflush(stdout);
	pid_t v = vfork();
	if (v == 0) {
		close(q2);
		_exit(0);
	}
	reap("vfork child: close", v);
	res("registered still after a vfork child's close", mq_notify(q, &sev));
	v = vfork();
	if (v == 0) {
		closefrom(3);
		_exit(0);
	}
	reap("vfork child: closefrom", v);
	res("registered still after a vfork child's closefrom", mq_notify(q, &sev));
	struct mq_attr a2;
	res("the descriptor the children closed is still ours", mq_getattr(q2, &a2));
	res("close it here", mq_close(q2));
	res("registered again: removed by the owner's close", mq_notify(q, &sev));
	mq_notify(q, NULL);

	/* signo 0: registers, sends nothing */
	sev.sigev_signo = 0;
	res("register signo 0", mq_notify(q, &sev));
	res("send", mq_send(q, "0", 1, 0));
	msleep(50);
	val("signals", nsig);
	res("register after signo 0 fired", mq_notify(q, NULL));
	mq_receive(q, buf, sizeof buf, NULL);

	/* SIGEV_NONE */
	struct sigevent none = {.sigev_notify = SIGEV_NONE};
	res("register SIGEV_NONE", mq_notify(q, &none));
	res("register SIGEV_SIGNAL over it", mq_notify(q, &sev));
	res("send", mq_send(q, "n", 1, 0));
	res("register after SIGEV_NONE fired", mq_notify(q, &none));
	res("remove", mq_notify(q, NULL));
	mq_receive(q, buf, sizeof buf, NULL);

	/* SIGEV_THREAD */
	struct sigevent thr;
	memset(&thr, 0, sizeof thr);
	thr.sigev_notify = SIGEV_THREAD;
	thr.sigev_notify_function = on_thread;
	thr.sigev_value.sival_int = 7;
	res("register SIGEV_THREAD", mq_notify(q, &thr));
	res("register again", mq_notify(q, &thr));
	kid_send(a);
	wait_thread(1);
	val("thread calls", thread_calls);
	val("thread value", thread_value);
	mq_receive(q, buf, sizeof buf, NULL);
	res("register SIGEV_THREAD again", mq_notify(q, &thr));
	res("remove", mq_notify(q, NULL));
	res("send", mq_send(q, "t", 1, 0));
	msleep(100);
	val("thread calls after removal", thread_calls);
	mq_receive(q, buf, sizeof buf, NULL);
	res("register SIGEV_THREAD", mq_notify(q, &thr));
	res("send", mq_send(q, "u", 1, 0));
	wait_thread(2);
	val("thread calls", thread_calls);

	mq_close(q);
	mq_unlink(a);
	return 0;
}
