// SPDX-License-Identifier: MIT
/*
 * message_test: sizes (up to msgsize_max, zero length, EMSGSIZE), fixed
 * size links, small receive buffers (EMSGSIZE leaves the message, TRUNC
 * truncates), priorities, type selection, payload integrity.
 */
#include "kipc_test.h"

#include <sys/mman.h>

static int64_t mbox_with(uint32_t cap, uint32_t msgsize, uint32_t flags)
{
	struct kipc_mbox_attr a = kt_attr(cap);
	a.msgsize = msgsize;
	a.flags = flags;
	return kipc_mbox_open(NULL, 0, &a);
}

TEST(sizes_up_to_msgsize_max)
{
	int64_t id = mbox_with(4, 0, 0);
	ASSERT_LT(0, id);
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	uint32_t max = st.attr.msgsize;
	EXPECT_LT(0, max);
	char *buf = malloc(max + 1), *rbuf = malloc(max + 1);
	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, rbuf);
	for (uint32_t i = 0; i <= max; i++)
		buf[i] = (char)(i * 7 + 3);
	EXPECT_EQ(0, kipc_mbox_send(id, buf, max, 0, 0));
	EXPECT_EQ(-1, kipc_mbox_send(id, buf, max + 1, 0, 0));
	EXPECT_EQ(EMSGSIZE, errno);
	EXPECT_EQ((ssize_t)max, kipc_mbox_receive(id, rbuf, max + 1, NULL, 0));
	EXPECT_EQ(0, memcmp(buf, rbuf, max));
	free(buf);
	free(rbuf);
}

TEST(zero_length_message)
{
	int64_t id = mbox_with(4, 0, 0);
	ASSERT_LT(0, id);
	EXPECT_EQ(0, kipc_mbox_send(id, NULL, 0, 0, 0));
	char b[4];
	struct kipc_msginfo info;
	EXPECT_EQ(0, kipc_mbox_receive(id, b, sizeof b, &info, 0));
	EXPECT_EQ(0, info.len);
	EXPECT_EQ(0, kipc_send(getpid(), NULL, 0, 0, 0));
	EXPECT_EQ(0, kipc_receive(KIPC_ANY, NULL, 0, &info, 0));
}

TEST(large_payloads_across_processes)
{
	int64_t id = mbox_with(2, 16384, KIPC_MBOX_KERNEL_OWNED);
	ASSERT_LT(0, id);
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		static unsigned char b[16384];
		for (int k = 0; k < 20; k++) {
			for (size_t i = 0; i < sizeof b; i++)
				b[i] = (unsigned char)(i * 13 + k);
			if (kipc_mbox_send(id, b, sizeof b - (size_t)k, 0, 0) < 0)
				_exit(1);
		}
		_exit(0);
	}
	static unsigned char r[16384];
	for (int k = 0; k < 20; k++) {
		ASSERT_EQ((ssize_t)(sizeof r - (size_t)k), kipc_mbox_receive(id, r, sizeof r, NULL, 0));
		size_t bad = 0;
		for (size_t i = 0; i < sizeof r - (size_t)k; i++)
			bad += r[i] != (unsigned char)(i * 13 + k);
		EXPECT_EQ(0, bad);
	}
	EXPECT_EQ(0, kt_wait(c));
	kipc_mbox_destroy(id);
}

TEST(fixed_size_link)
{
	int64_t id = mbox_with(4, 16, KIPC_MBOX_FIXED);
	ASSERT_LT(0, id);
	char b[32] = "0123456789abcdef";
	EXPECT_EQ(-1, kipc_mbox_send(id, b, 15, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kipc_mbox_send(id, b, 17, 0, 0));
	EXPECT_TRUE(errno == EINVAL || errno == EMSGSIZE) TH_LOG("errno %d", errno);
	EXPECT_EQ(-1, kipc_mbox_send(id, b, 0, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, kipc_mbox_send(id, b, 16, 0, 0));
	char r[32];
	EXPECT_EQ(16, kipc_mbox_receive(id, r, sizeof r, NULL, 0));
	EXPECT_EQ(0, memcmp(b, r, 16));
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_TRUE(st.attr.flags & KIPC_MBOX_FIXED);
	EXPECT_EQ(16, st.attr.msgsize);
}

TEST(small_buffer_emsgsize_keeps_message)
{
	int64_t id = mbox_with(4, 0, 0);
	ASSERT_LT(0, id);
	ASSERT_EQ(0, kipc_mbox_send(id, "hello world", 11, 0, 0));
	char r[16];
	EXPECT_EQ(-1, kipc_mbox_receive(id, r, 5, NULL, 0));
	EXPECT_EQ(EMSGSIZE, errno);
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(1, st.nmsg);
	/* with TRUNC: truncated, full length reported */
	struct kipc_msginfo info;
	memset(r, 0, sizeof r);
	EXPECT_EQ(5, kipc_mbox_receive(id, r, 5, &info, KIPC_F_TRUNC));
	EXPECT_EQ(0, memcmp(r, "hello", 5));
	EXPECT_EQ(11, info.len);
	EXPECT_TRUE(info.flags & KIPC_CQE_F_TRUNC);
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(0, st.nmsg);

	/* the same on the task queue */
	ASSERT_EQ(0, kipc_send(getpid(), "abcdef", 6, 0, 0));
	EXPECT_EQ(-1, kipc_receive(KIPC_ANY, r, 3, NULL, 0));
	EXPECT_EQ(EMSGSIZE, errno);
	EXPECT_EQ(6, kipc_receive(KIPC_ANY, r, sizeof r, NULL, 0));
}

TEST(priorities_order_fifo_within)
{
	int64_t id = mbox_with(16, 0, 0);
	ASSERT_LT(0, id);
	/* (prio, seq) */
	unsigned prios[] = {0, 5, 0, 32767, 5, 1, 32767, 0};
	int n = sizeof prios / sizeof prios[0];
	for (int i = 0; i < n; i++)
		ASSERT_EQ(0, kipc_mbox_send(id, &i, sizeof i, prios[i], 0));
	int expect[] = {3, 6, 1, 4, 5, 0, 2, 7};
	for (int i = 0; i < n; i++) {
		int v;
		struct kipc_msginfo info;
		ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive(id, &v, sizeof v, &info, 0));
		EXPECT_EQ(expect[i], v);
		EXPECT_EQ(prios[expect[i]], info.prio);
	}
	EXPECT_EQ(-1, kipc_mbox_send(id, "x", 1, KIPC_PRIO_MAX + 1, 0));
	EXPECT_EQ(EINVAL, errno);
}

TEST(type_selection)
{
	int64_t id = mbox_with(16, 0, 0);
	ASSERT_LT(0, id);
	int64_t types[] = {3, 1, 2, 3, 5};
	for (int i = 0; i < 5; i++) {
		struct kipc_opts o = {.type = types[i]};
		ASSERT_EQ(0, kipc_mbox_send_x(id, &i, sizeof i, 0, 0, &o));
	}
	int v;
	struct kipc_msginfo info;
	/* type > 0: the first of that type */
	struct kipc_opts sel = {.type = 3};
	ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive_x(id, &v, sizeof v, &info, KIPC_F_TYPE, &sel));
	EXPECT_EQ(0, v);
	EXPECT_EQ(3, info.type);
	/* type > 0 with EXCEPT: the first of any other type */
	ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive_x(id, &v, sizeof v, &info, KIPC_F_TYPE | KIPC_F_EXCEPT, &sel));
	EXPECT_EQ(1, v);
	/* type < 0: the lowest type <= |type| */
	sel.type = -4;
	ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive_x(id, &v, sizeof v, &info, KIPC_F_TYPE, &sel));
	EXPECT_EQ(2, v);
	EXPECT_EQ(2, info.type);
	/* no message of type 7: EAGAIN with NONBLOCK, others stay */
	sel.type = 7;
	EXPECT_EQ(-1, kipc_mbox_receive_x(id, &v, sizeof v, &info, KIPC_F_TYPE | KIPC_F_NONBLOCK, &sel));
	EXPECT_EQ(EAGAIN, errno);
	/* type 0: the oldest */
	sel.type = 0;
	ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive_x(id, &v, sizeof v, &info, KIPC_F_TYPE, &sel));
	EXPECT_EQ(3, v);
	ASSERT_EQ((ssize_t)sizeof v, kipc_mbox_receive(id, &v, sizeof v, &info, 0));
	EXPECT_EQ(4, v);
	EXPECT_EQ(5, info.type);
}

/* A receiver blocked for a type is woken only by that type. */
TEST(blocked_type_receive_waits_for_its_type)
{
	int64_t id = kt_shared_mbox(16);
	ASSERT_LT(0, id);
	pid_t c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		int v;
		struct kipc_opts sel = {.type = 9};
		ssize_t n = kipc_mbox_receive_x(id, &v, sizeof v, NULL, KIPC_F_TYPE, &sel);
		_exit(n == sizeof v ? v : 100);
	}
	ASSERT_EQ(0, kt_wait_mbox(id, KT_RECEIVERS, 1, KT_BOUND_MS));
	struct kipc_opts o = {.type = 1};
	int v = 1;
	ASSERT_EQ(0, kipc_mbox_send_x(id, &v, sizeof v, 0, 0, &o));
	o.type = 9;
	v = 9;
	ASSERT_EQ(0, kipc_mbox_send_x(id, &v, sizeof v, 0, 0, &o));
	EXPECT_EQ(9, kt_wait(c));
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(1, st.nmsg);
	kipc_mbox_destroy(id);
}

TEST(stat_counters)
{
	int64_t id = mbox_with(8, 0, 0);
	ASSERT_LT(0, id);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0, kipc_mbox_send(id, "abcd", 4, 0, 0));
	char b[8];
	ASSERT_EQ(4, kipc_mbox_receive(id, b, sizeof b, NULL, 0));
	struct kipc_mbox_stat st;
	ASSERT_EQ(0, kipc_mbox_stat(id, &st));
	EXPECT_EQ(2, st.nmsg);
	EXPECT_EQ(8, st.nbytes);
	EXPECT_EQ(3, st.nsent);
	EXPECT_EQ(1, st.nreceived);
	EXPECT_EQ(getpid(), st.lspid);
	EXPECT_EQ(getpid(), st.lrpid);
	EXPECT_LT(0, st.stime);
	EXPECT_LE(st.stime, st.rtime);
}

/*
 * Bad pointers fail EFAULT as a kernel's copy_from_user()/copy_to_user()
 * do, never crash: a NULL or unmapped send buffer sends nothing; a NULL
 * receive buffer takes nothing; a non-NULL bad receive buffer (unmapped,
 * read-only) is found when the message is copied out: EFAULT, the message
 * is gone (as Linux's msgrcv).
 */
TEST(bad_pointers_efault)
{
	char *page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	ASSERT_EQ(0, mprotect(page + 4096, 4096, PROT_NONE));
	char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	void *volatile nul = NULL;
	struct kipc_taskq_stat ts;
	char b[16];

	EXPECT_EQ(-1, kipc_send(getpid(), nul, 5, 0, 0));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, kipc_send(getpid(), page + 4096, 5, 0, 0));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, kipc_send(getpid(), page + 4094, 5, 0, 0)); /* crosses */
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(0, kipc_taskq_stat(&ts));
	EXPECT_EQ(0, ts.nmsg);

	ASSERT_EQ(0, kipc_send(getpid(), "hello", 5, 0, 0));
	EXPECT_EQ(-1, kipc_receive(KIPC_ANY, nul, 16, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(0, kipc_taskq_stat(&ts));
	EXPECT_EQ(1, ts.nmsg); /* nothing consumed */
	memcpy(page, "xxxxx", 5);
	EXPECT_EQ(5, kipc_receive(KIPC_ANY, page, 16, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, memcmp(page, "hello", 5)); /* heap/mmap buffers copy too */

	ASSERT_EQ(0, kipc_send(getpid(), "hello", 5, 0, 0));
	EXPECT_EQ(-1, kipc_receive(KIPC_ANY, ro, 16, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(0, kipc_send(getpid(), "hello", 5, 0, 0));
	EXPECT_EQ(-1, kipc_receive(KIPC_ANY, page + 4093, 16, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(0, kipc_taskq_stat(&ts));
	EXPECT_EQ(0, ts.nmsg);

	/* the program's own data: .bss is copied, .rodata is EFAULT */
	static char bss[16];
	static const char rodata[16] = "constant";
	ASSERT_EQ(0, kipc_send(getpid(), "hello", 5, 0, 0));
	EXPECT_EQ(5, kipc_receive(KIPC_ANY, bss, sizeof bss, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(0, memcmp(bss, "hello", 5));
	ASSERT_EQ(0, kipc_send(getpid(), "hello", 5, 0, 0));
	EXPECT_EQ(-1, kipc_receive(KIPC_ANY, (void *)rodata, sizeof rodata, NULL, KIPC_F_NONBLOCK));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_STREQ("constant", rodata);

	EXPECT_EQ(-1, kipc_taskq_stat((struct kipc_taskq_stat *)(void *)ro));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, kipc_taskq_stat(nul));
	EXPECT_EQ(EFAULT, errno);
	/* zero length with no buffer is fine, as read(fd, NULL, 0) */
	EXPECT_EQ(0, kipc_send(getpid(), nul, 0, 0, 0));
	EXPECT_EQ(0, kipc_receive(KIPC_ANY, b, sizeof b, NULL, KIPC_F_NONBLOCK));
	munmap(page, 8192);
	munmap(ro, 4096);
}

KIPC_TEST_MAIN
