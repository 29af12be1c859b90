/* SPDX-License-Identifier: MIT */
/*
 * libkipc-posix.so: kipc-run's supervisor of statically linked programs
 * (Documentation/posix.md, "Static programs"). A static program cannot
 * load this library, so its message queue calls, libc's and raw alike,
 * are trapped by a seccomp filter with SECCOMP_RET_USER_NOTIF and served
 * from outside, by the same functions that serve a dynamic program's
 * (serve.c), as gVisor's seccomp-unotify platform does.
 *
 * Processes:
 *  - the dispatcher (kipc-run, re-executed with this library preloaded)
 *    forks the program, which installs the filter (the listener comes
 *    back over a socket pair) and execs it; it then receives every
 *    notification, finds the trapped thread's process (its Tgid, checked
 *    with SECCOMP_IOCTL_NOTIF_ID_VALID after the pidfd is taken, so a
 *    recycled pid is never served) and hands the notification to that
 *    process's helper, forking one for a process it has not seen;
 *  - a helper serves one process: it attaches to kipcd *as that process*
 *    (kipc_attach_delegate: its pidfd and its /proc/<pid>/mem, which
 *    proves to kipcd that we may ptrace it; kernel/daemon/delegate.cc),
 *    so the kernel checks and charges the process's own credentials, and
 *    serves each call in a thread of its own (a blocked receive holds no
 *    other call up), answering with SECCOMP_IOCTL_NOTIF_SEND. It takes
 *    the next notification only once the last one's thread has ended or
 *    sleeps for kipcd (libkipc's __kipc_on_sleep): the calls reach
 *    kipcd's ring in the order the program's threads trapped, so that a
 *    thread asleep in mq_receive has its receive in kipcd before any
 *    call the program makes after seeing it asleep, as natively.
 *
 * Memory. A pointer argument is mirrored into the helper: a mapping with
 * the same offset in its page, filled from the program with
 * process_vm_readv(2) page by page, with PROT_NONE from the first page
 * the program does not have; the served function copies from it with
 * libkipc's checked copies (lib/uaccess.c), so EFAULT comes exactly where
 * Linux gives it. Outputs are written back with process_vm_writev(2)
 * after the call, EFAULT if that fails (the call happened: msgrcv's and
 * mq_timedreceive's message is consumed, as on Linux).
 *
 * Descriptors. A queue descriptor is the program's: the FIFO kipcd made
 * is installed with SECCOMP_IOCTL_NOTIF_ADDFD (O_CLOEXEC, as mq_open's),
 * and mqueue.c reaches the program's table through /proc/<pid>/fd,
 * /proc/<pid>/fdinfo and pidfd_getfd(2) (the mqd_space below).
 *
 * Signals. The filter has SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: once we
 * have a notification only a fatal signal ends the program's wait, so an
 * answer is never lost (a message taken for a thread that went away).
 * Instead a watcher looks at the blocked threads' pending signals
 * (/proc/<pid>/task/<tid>/status) every 10 ms; for one that is not
 * blocked or ignored it cancels the call (libkipc's cancel: either the
 * call completed first, and is answered, or it did not happen) and
 * answers -ERESTARTSYS (-ERESTARTNOHAND for msgsnd/msgrcv), so that the
 * program's kernel restarts the call or fails it EINTR by the handler's
 * SA_RESTART, exactly as for a native call.
 *
 * Credentials. set*id calls are trapped too and let through
 * (SECCOMP_USER_NOTIF_FLAG_CONTINUE); from the first one on, every call
 * first has kipcd read the process's credentials again
 * (kipc_cred_refresh).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kipc/libkipc.h>

#include "posix.h"

#if defined(__x86_64__)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#define EXPORT __attribute__((visibility("default")))

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef ERESTARTSYS
#define ERESTARTSYS 512
#define ERESTARTNOHAND 514
#endif

/* ---------------------------------------------------------------- */
/* The filter (installed by the program's process before its exec)     */

static const int creds_calls[] = {
	__NR_setuid,    __NR_setgid,    __NR_setreuid, __NR_setregid,
	__NR_setresuid, __NR_setresgid, __NR_setgroups,
};
#define NCREDS (sizeof creds_calls / sizeof creds_calls[0])

static bool is_creds_call(long nr)
{
	for (unsigned i = 0; i < NCREDS; i++)
		if (nr == creds_calls[i])
			return true;
	return false;
}

/* The listener, or -1 with errno. */
static int install_filter(void)
{
	struct sock_filter f[KIPC_FILTER_MAX];
	struct sock_fprog prog = {
		.len = (unsigned short)__kipc_filter(f, creds_calls, NCREDS, SECCOMP_RET_USER_NOTIF, 0),
		.filter = f,
	};
	unsigned long flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	/* Without CAP_SYS_ADMIN a filter needs no_new_privs (posix.md). */
	if (r < 0 && errno == EACCES && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
		r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	return (int)r;
}

/* ---------------------------------------------------------------- */
/* The served process: its descriptor table (mqueue.c's mqd_space)     */

static pid_t tpid;        /* the process a helper serves */
static int tpidfd = -1;
static int listener = -1;
static __thread uint64_t cur_notif; /* the notification being served */
static int creds_changed;           /* a set*id call was seen */

static void fd_path(char *buf, size_t size, const char *what, int fd)
{
	snprintf(buf, size, "/proc/%d/%s/%d", (int)tpid, what, fd);
}

static int r_stat(int fd, struct stat *st)
{
	char p[64];
	fd_path(p, sizeof p, "fd", fd);
	return stat(p, st);
}

static ssize_t r_link(int fd, char *buf, size_t size)
{
	char p[64];
	fd_path(p, sizeof p, "fd", fd);
	return readlink(p, buf, size);
}

static int r_getfl(int fd)
{
	char p[64], line[128];
	fd_path(p, sizeof p, "fdinfo", fd);
	FILE *f = fopen(p, "re");
	if (!f) {
		errno = EBADF;
		return -1;
	}
	unsigned fl = 0;
	bool found = false;
	while (!found && fgets(line, sizeof line, f))
		found = sscanf(line, "flags: %o", &fl) == 1;
	fclose(f);
	if (!found) {
		errno = EBADF;
		return -1;
	}
	return (int)fl;
}

/* The status flags belong to the open file description: change them
 * through a copy of the program's descriptor. */
static int r_setfl(int fd, int fl)
{
	int l = (int)syscall(SYS_pidfd_getfd, tpidfd, fd, 0);
	if (l < 0) {
		errno = EBADF;
		return -1;
	}
	int r = fcntl(l, F_SETFL, fl);
	int err = errno;
	__kipc_real_close(l);
	errno = err;
	return r;
}

static int r_install(int fd)
{
	struct seccomp_notif_addfd a = {
		.id = cur_notif,
		.srcfd = (uint32_t)fd,
		.newfd_flags = O_CLOEXEC, /* as mq_open(2)'s */
	};
	int n = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
	if (n < 0)
		return -1;
	__kipc_real_close(fd);
	return n;
}

static int r_dup(int fd)
{
	int l = (int)syscall(SYS_pidfd_getfd, tpidfd, fd, 0);
	if (l < 0)
		errno = EBADF;
	return l; /* pidfd_getfd's are close-on-exec */
}

static const struct mqd_space served_space = {
	.stat = r_stat,
	.link = r_link,
	.getfl = r_getfl,
	.setfl = r_setfl,
	.install = r_install,
	.dup = r_dup,
	.own = 0,
};

/* ---------------------------------------------------------------- */
/* Mirrors of the program's buffers                                    */

#define PAGE 4096ul
/* No call reads or writes more: messages travel through the arena. */
#define MIRROR_MAX ((16ul << 20) + PAGE)

struct mirror {
	uintptr_t remote; /* 0: none (NULL stays NULL) */
	char *base, *local;
	size_t size, len;
	bool whole;       /* an input read completely */
};

static bool exited(int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	return poll(&p, 1, 0) != 0;
}

/* Copy len bytes between us and the program, page by page: the bytes
 * moved before the first page that failed. By pid, as the page
 * protections count (a write to /proc/<pid>/mem would ignore them): only
 * while the pidfd shows the process alive, so the number is its own (a
 * pid is reused only after its process is reaped). */
static size_t vm(char *local, uintptr_t remote, size_t len, bool write)
{
	size_t done = 0;
	if (exited(tpidfd))
		return 0;
	while (done < len) {
		struct iovec l[64], r[64];
		int k = 0;
		size_t chunk = 0;
		while (k < 64 && done + chunk < len) {
			uintptr_t at = remote + done + chunk;
			size_t n = PAGE - (at & (PAGE - 1));
			if (n > len - done - chunk)
				n = len - done - chunk;
			l[k] = (struct iovec){local + done + chunk, n};
			r[k] = (struct iovec){(void *)at, n};
			chunk += n;
			k++;
		}
		ssize_t got = write ? process_vm_writev(tpid, l, (unsigned long)k, r, (unsigned long)k, 0)
				    : process_vm_readv(tpid, l, (unsigned long)k, r, (unsigned long)k, 0);
		if (got <= 0)
			break;
		done += (size_t)got;
		if ((size_t)got < chunk)
			break;
	}
	return done;
}

/* A NUL-terminated string of at most len bytes: the bytes read. */
static size_t vm_str(char *local, uintptr_t remote, size_t len)
{
	size_t done = 0;
	while (done < len) {
		size_t n = PAGE - ((remote + done) & (PAGE - 1));
		if (n > len - done)
			n = len - done;
		size_t got = vm(local + done, remote + done, n, false);
		if (memchr(local + done, '\0', got))
			return len; /* all we need is there */
		done += got;
		if (got < n)
			break;
	}
	return done;
}

enum { IN, OUT, STR };

/* Map a mirror of [remote, remote + len); 0, or -ENOMEM. */
static int mirror(struct mirror *m, uintptr_t remote, size_t len, int kind)
{
	memset(m, 0, sizeof *m);
	if (!remote)
		return 0;
	m->remote = remote;
	m->len = len > MIRROR_MAX ? MIRROR_MAX : len;
	size_t off = remote & (PAGE - 1);
	m->size = (off + m->len + PAGE - 1) & ~(PAGE - 1);
	if (!m->size)
		m->size = PAGE;
	m->base = mmap(NULL, m->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m->base == MAP_FAILED) {
		m->base = NULL;
		return -ENOMEM;
	}
	m->local = m->base + off;
	if (kind == OUT)
		return 0;
	size_t got = kind == STR ? vm_str(m->local, remote, m->len)
				 : vm(m->local, remote, m->len, false);
	m->whole = got >= m->len;
	if (got < m->len) {
		/* What the program does not have, we do not have either. */
		size_t bad = (off + got) & ~(PAGE - 1);
		mprotect(m->base + bad, m->size - bad, PROT_NONE);
	}
	return 0;
}

/* Write n bytes of an output mirror back: 0, or -EFAULT. */
static int copy_out(const struct mirror *m, size_t n)
{
	if (!m->remote || !n)
		return 0;
	if (n > m->len)
		n = m->len;
	return vm(m->local, m->remote, n, true) == n ? 0 : -EFAULT;
}

static void unmirror(struct mirror *m)
{
	if (m->base)
		munmap(m->base, m->size);
}

/* ---------------------------------------------------------------- */
/* Blocked calls and the program's signals                             */

struct pending {
	struct pending *next;
	pid_t tid;
	pthread_t thread;
	bool interrupted;
};

static pthread_mutex_t plock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pcond = PTHREAD_COND_INITIALIZER;
static struct pending *plist;

static uint64_t status_mask(const char *line, const char *key)
{
	size_t k = strlen(key);
	if (strncmp(line, key, k) != 0)
		return 0;
	return strtoull(line + k, NULL, 16);
}

/*
 * Would a signal interrupt thread tid's system call now? One pending for
 * the thread (or for the process, when it has one thread), not blocked,
 * not ignored, and not one whose default is to be ignored.
 */
static bool signal_pending(pid_t tid)
{
	char p[96], line[256];
	snprintf(p, sizeof p, "/proc/%d/task/%d/status", (int)tpid, (int)tid);
	FILE *f = fopen(p, "re");
	if (!f)
		return false;
	uint64_t pnd = 0, shd = 0, blk = 0, ign = 0, cgt = 0;
	long threads = 0;
	while (fgets(line, sizeof line, f)) {
		pnd |= status_mask(line, "SigPnd:");
		shd |= status_mask(line, "ShdPnd:");
		blk |= status_mask(line, "SigBlk:");
		ign |= status_mask(line, "SigIgn:");
		cgt |= status_mask(line, "SigCgt:");
		if (strncmp(line, "Threads:", 8) == 0)
			threads = strtol(line + 8, NULL, 10);
	}
	fclose(f);
	uint64_t want = pnd | (threads == 1 ? shd : 0);
	want &= ~blk & ~ign;
	static const int dfl_ignore[] = {SIGCHLD, SIGCONT, SIGURG, SIGWINCH};
	for (unsigned i = 0; i < sizeof dfl_ignore / sizeof dfl_ignore[0]; i++) {
		uint64_t bit = 1ull << (dfl_ignore[i] - 1);
		if (!(cgt & bit))
			want &= ~bit;
	}
	return want != 0;
}

static void *watcher(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&plock);
	for (;;) {
		while (!plist)
			pthread_cond_wait(&pcond, &plock);
		pthread_mutex_unlock(&plock);
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&plock);
		/* Until the call returns: a signal may land before it sleeps. */
		for (struct pending *p = plist; p; p = p->next) {
			if (p->interrupted || signal_pending(p->tid)) {
				p->interrupted = true;
				pthread_kill(p->thread, SIGUSR2);
			}
		}
	}
	return NULL;
}

static void on_cancel(int sig)
{
	(void)sig; /* its only job: make libkipc's sleep return EINTR */
}

/* ---------------------------------------------------------------- */
/* Serving one notification                                            */

static void answer(uint64_t id, long val, int err, uint32_t flags)
{
	struct seccomp_notif_resp r = {.id = id, .val = err ? 0 : val,
				       .error = err ? -err : 0, .flags = flags};
	/* ENOENT: the program's thread is gone (killed): nothing to tell. */
	ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r);
}

static void serve_one(const struct seccomp_notif *n)
{
	long nr = n->data.nr;
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = (long)n->data.args[i];
	struct mirror m[3];
	int nm = 0, err = 0;
	int out = -1, out2 = -1; /* mirrors written back on success */
	size_t out_fixed = 0;     /* bytes of m[out] to write back, 0: by result */
#define MIRROR_AT(v, len, kind)                                              \
	do {                                                                 \
		if (!err && !(err = -mirror(&m[nm], (uintptr_t)(v), len, kind))) \
			(v) = (long)m[nm].local;                             \
		nm++;                                                        \
	} while (0)
#define MIRROR(i, len, kind) MIRROR_AT(a[i], len, kind)
/* argument i is the result: a struct of this type, written back whole */
#define MIRROR_RESULT(i, type)                                               \
	do {                                                                 \
		out = nm;                                                    \
		out_fixed = sizeof(type);                                    \
		MIRROR(i, sizeof(type), OUT);                                \
	} while (0)
	switch (nr) {
	case __NR_msgsnd:
		MIRROR(1, sizeof(long) + (size_t)a[2], IN);
		break;
	case __NR_msgrcv:
		out = nm;
		MIRROR(1, sizeof(long) + (size_t)a[2], OUT);
		break;
	case __NR_msgctl:
		switch (a[1] & ~0x100) {
		case IPC_SET:
			MIRROR(2, sizeof(struct msqid_ds), IN);
			break;
		case IPC_STAT:
		case MSG_STAT:
		case MSG_STAT_ANY:
			MIRROR_RESULT(2, struct msqid_ds);
			break;
		case IPC_INFO:
		case MSG_INFO:
			MIRROR_RESULT(2, struct msginfo);
			break;
		default:
			a[2] = 0;
		}
		break;
	case __NR_mq_open:
		MIRROR(0, PATH_MAX, STR);
		MIRROR(3, sizeof(struct mq_attr), IN);
		break;
	case __NR_mq_unlink:
		MIRROR(0, PATH_MAX, STR);
		break;
	case __NR_mq_timedsend:
		MIRROR(1, (size_t)a[2], IN);
		MIRROR(4, sizeof(struct timespec), IN);
		break;
	case __NR_mq_timedreceive:
		out = nm;
		MIRROR(1, (size_t)a[2], OUT);
		out2 = nm;
		MIRROR(3, sizeof(unsigned), OUT);
		MIRROR(4, sizeof(struct timespec), IN);
		break;
	case __NR_mq_notify:
		MIRROR(1, sizeof(struct sigevent), IN);
		if (!err && m[0].whole) {
			/* SIGEV_THREAD's cookie (serve.c): mirrored too. */
			struct sigevent *sev = (struct sigevent *)m[0].local;
			if (sev->sigev_notify == SIGEV_THREAD) {
				long c = (long)sev->sigev_value.sival_ptr;
				MIRROR_AT(c, 32, IN);
				sev->sigev_value.sival_ptr = (void *)c;
			}
		}
		break;
	case __NR_mq_getsetattr:
		MIRROR(1, sizeof(struct mq_attr), IN);
		out2 = nm;
		MIRROR(2, sizeof(struct mq_attr), OUT);
		break;
	}
#undef MIRROR_RESULT
#undef MIRROR
#undef MIRROR_AT
	long r = -1;
	if (!err) {
		struct pending p = {.tid = (pid_t)n->pid, .thread = pthread_self()};
		pthread_mutex_lock(&plock);
		p.next = plist;
		plist = &p;
		pthread_cond_signal(&pcond);
		pthread_mutex_unlock(&plock);

		if (__atomic_load_n(&creds_changed, __ATOMIC_ACQUIRE))
			kipc_cred_refresh();
		cur_notif = n->id;
		r = __kipc_serve_syscall(nr, a);
		err = r < 0 ? errno : 0;

		pthread_mutex_lock(&plock);
		struct pending **pp = &plist;
		while (*pp != &p)
			pp = &(*pp)->next;
		*pp = p.next;
		bool intr = p.interrupted;
		pthread_mutex_unlock(&plock);
		/* Our cancel: the program's kernel restarts or fails it. */
		if (err == EINTR && intr)
			err = nr == __NR_msgsnd || nr == __NR_msgrcv ? ERESTARTNOHAND : ERESTARTSYS;
	}
	if (!err && out >= 0) {
		size_t k = out_fixed ? out_fixed
			   : nr == __NR_msgrcv ? sizeof(long) + (size_t)r : (size_t)r;
		if (copy_out(&m[out], k))
			err = EFAULT;
	}
	if (!err && out2 >= 0 && copy_out(&m[out2], m[out2].len))
		err = EFAULT;
	for (int i = 0; i < nm; i++)
		unmirror(&m[i]);
	answer(n->id, r, err, 0);
}

/* Posted once per served call: it sleeps for kipcd, or it is done. */
static sem_t reached;
static __thread bool posted;

static void post_reached(void)
{
	if (!posted) {
		posted = true;
		sem_post(&reached);
	}
}

static void *serve_thread(void *arg)
{
	struct seccomp_notif *n = arg;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	__kipc_on_sleep = post_reached;
	serve_one(n);
	free(n);
	post_reached();
	return NULL;
}

/* ---------------------------------------------------------------- */
/* A helper: one served process                                        */

static __attribute__((noreturn)) void helper_main(int chan, pid_t parent, pid_t pid,
						  int pidfd, int mem)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	tpid = pid;
	tpidfd = pidfd;
	__kipc_mqd_space = &served_space;
	sem_init(&reached, 0, 0);
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	struct sigaction sa = {.sa_handler = on_cancel}; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);

	/* Never as ourselves: without the delegation nothing is served. */
	int aerr = kipc_attach_delegate(pidfd, mem) < 0 ? errno : 0;
	close(mem);
	if (aerr)
		fprintf(stderr, "kipc-run: cannot attach for process %d: %s\n", (int)pid,
			strerror(aerr));
	pthread_t w;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (!aerr && pthread_create(&w, &at, watcher, NULL) != 0)
		aerr = EAGAIN;

	struct pollfd pf[2] = {{.fd = chan, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
	for (;;) {
		if (poll(pf, 2, -1) < 0)
			continue;
		if (pf[1].revents)
			_exit(0); /* the process is gone */
		struct seccomp_notif *n = malloc(sizeof *n);
		if (!n)
			_exit(1);
		ssize_t got = recv(chan, n, sizeof *n, 0);
		if (got == 0 || (got < 0 && errno != EINTR))
			_exit(0); /* the dispatcher is gone */
		if (got != (ssize_t)sizeof *n) {
			free(n);
			continue;
		}
		if (is_creds_call(n->data.nr)) {
			/* The OS makes the change; we refresh from now on. */
			__atomic_store_n(&creds_changed, 1, __ATOMIC_RELEASE);
			answer(n->id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
			free(n);
			continue;
		}
		pthread_t t;
		if (aerr || n->data.arch != AUDIT_ARCH_X86_64 ||
		    pthread_create(&t, &at, serve_thread, n) != 0) {
			answer(n->id, 0, aerr ? aerr : EAGAIN, 0);
			free(n);
			continue;
		}
		while (sem_wait(&reached) < 0) /* EINTR */
			;
	}
}

/* ---------------------------------------------------------------- */
/* The dispatcher                                                      */

struct helper {
	pid_t tgid, pid;
	int pidfd, chan;
};
static struct helper *helpers;
static unsigned nhelpers, helpers_cap;

static void drop_helper(unsigned i)
{
	close(helpers[i].pidfd);
	close(helpers[i].chan);
	helpers[i] = helpers[--nhelpers];
}

/* The thread group of thread tid, 0 if unknown. */
static pid_t tgid_of(pid_t tid)
{
	char p[64], line[128];
	snprintf(p, sizeof p, "/proc/%d/status", (int)tid);
	FILE *f = fopen(p, "re");
	if (!f)
		return 0;
	long tgid = 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Tgid: %ld", &tgid) == 1)
			break;
	fclose(f);
	return (pid_t)tgid;
}

static bool notif_valid(uint64_t id)
{
	return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

static struct helper *spawn_helper(pid_t tgid, uint64_t id, int sfd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, tgid, 0);
	if (pidfd < 0)
		return NULL;
	fcntl(pidfd, F_SETFD, FD_CLOEXEC);
	/* The notification's thread is alive, so tgid was its process when
	 * we took the pidfd: not a recycled number. */
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/mem", (int)tgid);
	int mem = -1, ch[2] = {-1, -1};
	if (!notif_valid(id) || (mem = open(p, O_RDWR | O_CLOEXEC)) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ch) < 0)
		goto fail;
	if (nhelpers == helpers_cap) {
		unsigned cap = helpers_cap ? 2 * helpers_cap : 8;
		struct helper *h = realloc(helpers, cap * sizeof *h);
		if (!h)
			goto fail;
		helpers = h;
		helpers_cap = cap;
	}
	pid_t parent = getpid();
	pid_t hp = fork();
	if (hp < 0)
		goto fail;
	if (hp == 0) {
		close(ch[0]);
		close(sfd);
		for (unsigned i = 0; i < nhelpers; i++) {
			close(helpers[i].pidfd);
			close(helpers[i].chan);
		}
		helper_main(ch[1], parent, tgid, pidfd, mem);
	}
	close(ch[1]);
	close(mem);
	helpers[nhelpers] = (struct helper){tgid, hp, pidfd, ch[0]};
	return &helpers[nhelpers++];
fail:
	close(pidfd);
	if (mem >= 0)
		close(mem);
	if (ch[0] >= 0) {
		close(ch[0]);
		close(ch[1]);
	}
	return NULL;
}

static void dispatch(int sfd)
{
	struct seccomp_notif n;
	memset(&n, 0, sizeof n);
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0)
		return; /* EINTR, or ENOENT: the thread went away */
	pid_t tgid = tgid_of((pid_t)n.pid);
	if (!tgid || !notif_valid(n.id))
		return;
	struct helper *h = NULL;
	for (unsigned i = 0; i < nhelpers; i++) {
		if (helpers[i].tgid != tgid)
			continue;
		if (exited(helpers[i].pidfd))
			drop_helper(i); /* that process is gone: the pid is new */
		else
			h = &helpers[i];
		break;
	}
	if (!h)
		h = spawn_helper(tgid, n.id, sfd);
	/* A process we cannot serve (one that made itself undumpable): its
	 * call is not implemented, as without a kernel for it. */
	if (!h || send(h->chan, &n, sizeof n, MSG_NOSIGNAL) != (ssize_t)sizeof n)
		answer(n.id, 0, ENOSYS, 0);
}

static int send_fd(int sock, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c;
	char byte = 0;
	struct iovec iov = {&byte, 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
			    .msg_controllen = sizeof c.buf};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c;
	char byte;
	struct iovec iov = {&byte, 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
			    .msg_controllen = sizeof c.buf};
	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof fd);
	return fd;
}

/*
 * Run argv[0] (a static program) with its message queue calls served:
 * returns its wait status, or -1 with a message on stderr.
 * The environment kipc-run set for us (LD_PRELOAD, KIPC_SUPERVISOR) is
 * the program's own again before it runs.
 */
EXPORT int __kipc_supervise_static(char **argv)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return -1;
	sigset_t sigs, old;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGCHLD);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGQUIT);
	sigprocmask(SIG_BLOCK, &sigs, &old);
	pid_t child = fork();
	if (child < 0)
		return -1;
	if (child == 0) {
		close(sp[0]);
		sigprocmask(SIG_SETMASK, &old, NULL);
		int lfd = install_filter();
		if (lfd < 0) {
			fprintf(stderr, "kipc-run: cannot trap the system calls of %s "
					"(seccomp user notification: %s)\n", argv[0], strerror(errno));
			_exit(127);
		}
		if (send_fd(sp[1], lfd) < 0)
			_exit(127);
		close(lfd);
		close(sp[1]);
		const char *pre = getenv("KIPC_RUN_LD_PRELOAD");
		if (pre)
			setenv("LD_PRELOAD", pre, 1);
		else
			unsetenv("LD_PRELOAD");
		unsetenv("KIPC_RUN_LD_PRELOAD");
		unsetenv("KIPC_SUPERVISOR");
		execvp(argv[0], argv);
		fprintf(stderr, "kipc-run: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(sp[1]);
	listener = recv_fd(sp[0]);
	close(sp[0]);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	int status = -1;
	bool done = false;
	while (!done) {
		struct pollfd pf[2] = {{.fd = listener, .events = POLLIN},
				       {.fd = sfd, .events = POLLIN}};
		int np = listener >= 0 ? 2 : 1;
		if (poll(listener >= 0 ? pf : pf + 1, (nfds_t)np, -1) < 0)
			continue;
		if (listener >= 0 && (pf[0].revents & POLLIN))
			dispatch(sfd);
		if (!(pf[1].revents & POLLIN))
			continue;
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof si) != sizeof si)
			continue;
		if (si.ssi_signo != SIGCHLD) {
			kill(child, (int)si.ssi_signo); /* the program decides */
			continue;
		}
		int st;
		pid_t p;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p == child) {
				status = st;
				done = true;
			}
			for (unsigned i = 0; i < nhelpers; i++)
				if (helpers[i].pid == p) {
					drop_helper(i);
					break;
				}
		}
	}
	/* The helpers end with us (PR_SET_PDEATHSIG). */
	return status;
}
#endif
