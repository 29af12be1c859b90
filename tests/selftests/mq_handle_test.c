// SPDX-License-Identifier: MIT
/*
 * mq_handle_test - a POSIX queue is reached only through a handle of
 * one's own (Documentation/security.md, "Objects, handles and rights"),
 * with real processes, a root kernel and users made up for the test
 * (60001+, as isolation_test):
 *  - another user scanning numbers (handles, mailbox ids) with any
 *    descriptor number gets EBADF from receive, send, notify and getattr,
 *    and the queue is untouched;
 *  - a fork child uses the descriptor it inherited (the kernel checks
 *    the child holds it), not a number alone;
 *  - non-root users of a root kernel open queues (their descriptor file
 *    is theirs), and read(2)/write(2) on one's descriptor do not change
 *    what poll reports on anyone else's (and the queue's next emptying
 *    puts one's own right again);
 *  - an aborted open leaves no queue and no file;
 *  - a descriptor closed where kipcd is not told (a plain close(2), as
 *    close_range or a process that never attached) still ends its open
 *    after the queue was drained through it (kipcd keeps the reader of
 *    a drain: kernel/daemon/mqfs.cc), with kipcd idle and kept busy.
 * The library's shim does what mqd_open_mode() does here (lib/posix/mqueue.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kipc/mqueue.h>

#include "kipc_test.h"
#include "mq_helper.h"

/* mq_open with mode and the queue's defaults, as libkipc-posix.so does it. */
static int mqd_open_mode(const char *name, unsigned oflag, unsigned mode, struct mqd *d)
{
	struct kipc_mq_open o;
	memset(&o, 0, sizeof o);
	o.oflag = oflag;
	o.mode = mode;
	return mqd_open_as(name, &o, d);
}

/* errno of a call that must fail, 0 if it succeeded */
#define ERR(call) ((call) < 0 ? errno : 0)

struct scan {
	struct mqd victim;
	int64_t qid;   /* the queue's mailbox id */
	char name[64];
};

static int scan_numbers(void *p)
{
	struct scan *s = p;
	/* fork gave us the victim's descriptor, which is a right (as on
	 * Linux: a_fork_child_uses_...): the scanner is one who has none */
	close(s->victim.fd);
	struct kipc_mq_open o;
	memset(&o, 0, sizeof o);
	if (kipc_mq_open(s->name, &o) >= 0 || errno != EACCES)
		return 10; /* the front door stays shut (it always was) */
	/* the victim's FIFO: unlinked once held, and never ours to open */
	char path[PATH_MAX];
	kipc_mq_path(s->victim.h, ".rw", path, sizeof path);
	if (open(path, O_RDWR | O_NONBLOCK) >= 0)
		return 11;
	struct kipc_mq_notify n;
	memset(&n, 0, sizeof n);
	n.notify = KIPC_MQ_SIGEV_SIGNAL;
	n.signo = SIGKILL;
	/* every handle so far and 64 more, and the mailbox ids around the
	 * queue's (ids are seq * 32768 + index: not a range to walk) */
	int64_t ids[256];
	int nid = 0;
	for (int64_t id = 1; id <= s->victim.h + 64 && nid < 200; id++)
		ids[nid++] = id;
	for (int64_t id = s->qid - 4; id <= s->qid + 4; id++)
		if (id > 0)
			ids[nid++] = id;
	for (int i = 0; i < nid; i++) {
		int64_t id = ids[i];
		for (int fd = -1; fd < 8; fd++) {
			char b[64];
			struct kipc_mq_attr at;
			int e = ERR(kipc_mq_timedreceive(id, fd, b, sizeof b, NULL, KIPC_F_NONBLOCK, 0));
			if (e != EBADF) {
				ksft_print("# receive(%lld, fd %d): errno %d\n", (long long)id, fd, e);
				return 20;
			}
			if (ERR(kipc_mq_timedsend(id, fd, "forged", 6, 0, KIPC_F_NONBLOCK, 0)) != EBADF)
				return 21;
			if (ERR(kipc_mq_notify(id, fd, &n)) != EBADF)
				return 22;
			if (ERR(kipc_mq_getattr(id, fd, &at)) != EBADF)
				return 23;
		}
		if (ERR(kipc_mq_close(id, KIPC_MQ_CLOSE_ABORT)) != EBADF)
			return 24;
	}
	return 0;
}

TEST(another_user_scanning_numbers_gets_ebadf)
{
	NEED_ROOT();
	struct scan s;
	kt_name(s.name, sizeof s.name, "mqh-scan");
	ASSERT_EQ(0, mqd_open_mode(s.name, KIPC_MQ_RDWR | KIPC_O_CREAT, 0600, &s.victim));
	ASSERT_EQ(0, kipc_mq_timedsend(s.victim.h, s.victim.fd, "secret", 6, 0, 0, 0));
	s.qid = 0;
	struct kipc_mbox_info mi[64];
	ssize_t n = kipc_mbox_list(mi, 64);
	for (ssize_t i = 0; i < n; i++) /* the only one: this test's kernel is fresh */
		if (mi[i].st.attr.flags & KIPC_MBOX_POSIX)
			s.qid = mi[i].st.id;
	ASSERT_LT(0, s.qid);
	EXPECT_EQ(0, kt_as_user(UID_B, scan_numbers, &s));
	struct kipc_mq_attr at;
	ASSERT_EQ(0, kipc_mq_getattr(s.victim.h, s.victim.fd, &at));
	EXPECT_EQ(1, at.curmsgs); /* nothing stolen, nothing forged */
	char b[8192];
	EXPECT_EQ(6, kipc_mq_timedreceive(s.victim.h, s.victim.fd, b, sizeof b, NULL,
					  KIPC_F_NONBLOCK, 0));
	EXPECT_EQ(0, memcmp(b, "secret", 6));
	kipc_mq_unlink(s.name);
	mqd_close(&s.victim);
}

static int child_sends(void *p)
{
	struct mqd *d = p;
	/* a new task: the number alone is not a right */
	if (ERR(kipc_mq_timedsend(d->h, -1, "no", 2, 0, 0, 0)) != EBADF)
		return 10;
	if (ERR(kipc_mq_timedsend(d->h, d->fd + 1, "no", 2, 0, 0, 0)) != EBADF)
		return 11;
	/* the descriptor it inherited is */
	if (kipc_mq_timedsend(d->h, d->fd, "child", 5, 0, 0, 0) < 0)
		return 12;
	return 0;
}

TEST(a_fork_child_uses_the_descriptor_it_inherited)
{
	char name[64];
	struct mqd d;
	kt_name(name, sizeof name, "mqh-fork");
	ASSERT_EQ(0, mqd_open_mode(name, KIPC_MQ_RDWR | KIPC_O_CREAT, 0600, &d));
	pid_t c = kt_fork(child_sends, &d);
	ASSERT_EQ(0, kt_wait(c));
	char b[8192];
	EXPECT_EQ(5, kipc_mq_timedreceive(d.h, d.fd, b, sizeof b, NULL, KIPC_F_NONBLOCK, 0));
	kipc_mq_unlink(name);
	mqd_close(&d);
}

struct corrupt {
	char name[64];
	int opened[2], go[2], done[2];
};


static int corrupt_own(void *p)
{
	struct corrupt *c = p;
	struct mqd d;
	char x = 0;
	if (mqd_open_mode(c->name, KIPC_MQ_RDWR, 0, &d) < 0)
		return 10; /* a non-root user of a root kernel opens it */
	if (write(c->opened[1], "o", 1) != 1 || read(c->go[0], &x, 1) != 1)
		return 11;
	char b[16];
	fcntl(d.fd, F_SETFL, O_NONBLOCK);
	if (read(d.fd, b, 1) != 1) /* its own FIFO: the message's byte */
		return 12;
	if (write(d.fd, "garbage", 7) != 7)
		return 13;
	if (write(c->done[1], "d", 1) != 1 || read(c->go[0], &x, 1) != 1)
		return 14;
	/* the queue's emptying read our pipe empty, garbage included */
	if (poll_now(d.fd) != POLLOUT)
		return 17;
	if (write(d.fd, "more", 4) != 4) /* and again on an empty queue */
		return 15;
	if (write(c->done[1], "d", 1) != 1 || read(c->go[0], &x, 1) != 1)
		return 16;
	mqd_close(&d);
	return 0;
}

TEST(read_write_on_ones_descriptor_does_not_corrupt_others_poll)
{
	NEED_ROOT();
	struct corrupt c;
	struct mqd d;
	char x;
	kt_name(c.name, sizeof c.name, "mqh-poll");
	ASSERT_EQ(0, pipe(c.opened));
	ASSERT_EQ(0, pipe(c.go));
	ASSERT_EQ(0, pipe(c.done));
	ASSERT_EQ(0, mqd_open_mode(c.name, KIPC_MQ_RDWR | KIPC_O_CREAT, 0666, &d));
	ASSERT_EQ(0, kipc_mq_timedsend(d.h, d.fd, "m", 1, 0, 0, 0));
	pid_t pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int r = kt_become(UID_A);
		_exit(r ? r : corrupt_own(&c));
	}
	ASSERT_EQ(1, read(c.opened[0], &x, 1));
	ASSERT_EQ(1, write(c.go[1], "g", 1));
	ASSERT_EQ(1, read(c.done[0], &x, 1));
	/* a message waits: readable, and not full */
	EXPECT_EQ(POLLIN | POLLOUT, poll_now(d.fd));
	char b[8192];
	EXPECT_EQ(1, kipc_mq_timedreceive(d.h, d.fd, b, sizeof b, NULL, KIPC_F_NONBLOCK, 0));
	EXPECT_EQ(POLLOUT, poll_now(d.fd));
	ASSERT_EQ(1, write(c.go[1], "g", 1));
	ASSERT_EQ(1, read(c.done[0], &x, 1));
	EXPECT_EQ(POLLOUT, poll_now(d.fd)); /* empty stays empty */
	ASSERT_EQ(1, write(c.go[1], "g", 1));
	int st;
	ASSERT_EQ(0, ksft_waitpid_timeout(pid, &st, KT_BOUND_MS));
	EXPECT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
	kipc_mq_unlink(c.name);
	mqd_close(&d);
}

TEST(an_aborted_open_leaves_no_queue_and_no_file)
{
	char name[64], path[PATH_MAX];
	kt_name(name, sizeof name, "mqh-abort");
	struct kipc_mq_open o;
	memset(&o, 0, sizeof o);
	o.oflag = KIPC_MQ_RDWR | KIPC_O_CREAT | KIPC_O_EXCL;
	o.mode = 0600;
	int64_t h = kipc_mq_open(name, &o);
	ASSERT_LT(0, h);
	ASSERT_EQ(0, kipc_mq_path(h, ".rw", path, sizeof path));
	struct stat st;
	ASSERT_EQ(0, stat(path, &st)); /* the FIFO, waiting to be opened */
	ASSERT_EQ(0, kipc_mq_close(h, KIPC_MQ_CLOSE_ABORT));
	EXPECT_EQ(-1, stat(path, &st));
	EXPECT_EQ(ENOENT, errno);
	o.oflag = KIPC_MQ_RDWR;
	EXPECT_EQ(-1, kipc_mq_open(name, &o));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, kipc_mq_close(h, 0));
	EXPECT_EQ(EBADF, errno);
}

/* A kipc process that keeps kipcd busy until its pipe closes. */
static int keep_busy(void *p)
{
	int *stop = p;
	close(stop[1]);
	struct pollfd f = {stop[0], POLLIN, 0};
	while (poll(&f, 1, 0) == 0)
		if (kipc_nop() < 0)
			return 10;
	return 0;
}

/*
 * Drain the queue through d (kipcd reads the pipe empty, with a reader
 * it keeps), unlink it, close the descriptor with close(2) alone and
 * wait for the open to end: kipc_mq_getattr of the handle then fails
 * EBADF. 0, or the step that failed.
 */
static int released_after_drain(const char *name)
{
	struct mqd d;
	char b[8192];
	struct kipc_mq_attr at;
	if (mqd_open_mode(name, KIPC_MQ_RDWR | KIPC_O_CREAT | KIPC_O_EXCL, 0600, &d) < 0)
		return 1;
	for (int i = 0; i < 3; i++)
		if (kipc_mq_timedsend(d.h, d.fd, "m", 1, 0, 0, 0) < 0 ||
		    kipc_mq_timedreceive(d.h, d.fd, b, sizeof b, NULL, KIPC_F_NONBLOCK, 0) != 1)
			return 2;
	if (poll_now(d.fd) != POLLOUT)
		return 3;
	if (kipc_mq_unlink(name) < 0 || kipc_mq_getattr(d.h, d.fd, &at) < 0)
		return 4;
	close(d.fd); /* kipcd is not told: only the FIFO's last close shows it */
	int64_t deadline = __ksft_now_ms() + KT_BOUND_MS;
	while (kipc_mq_getattr(d.h, -1, &at) == 0) {
		if (__ksft_now_ms() > deadline)
			return 5;
		kt_sleep_ms(1);
	}
	return errno == EBADF ? 0 : 6;
}

TEST(a_descriptor_closed_unseen_after_a_drain_ends_its_open)
{
	char name[64];
	kt_name(name, sizeof name, "mqh-idle");
	EXPECT_EQ(0, released_after_drain(name));
	int stop[2];
	ASSERT_EQ(0, pipe(stop));
	pid_t c = kt_fork(keep_busy, stop);
	ASSERT_LT(0, c);
	kt_name(name, sizeof name, "mqh-busy");
	EXPECT_EQ(0, released_after_drain(name));
	close(stop[1]);
	EXPECT_EQ(0, kt_wait(c));
	close(stop[0]);
}

KIPC_TEST_MAIN
