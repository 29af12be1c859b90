// SPDX-License-Identifier: MIT
/* The 32-bit (int 0x80: ipc(2), the direct msg* and mq_* calls) and x32
 * entries of the message queue calls never reach another kernel than the
 * program's 64-bit calls: natively they make or use the queues msgget(2)
 * and mq_open(3) see; under kipc-run, which does not serve them, they
 * fail (ENOSYS) and make nothing. Each line says "they agree", which both
 * give; a 32-bit call that went to Linux behind kipc's back would not. */
#include "conform.h"
#include <setjmp.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/syscall.h>

static sigjmp_buf env;
static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(env, 1);
}

/* A 32-bit system call from 64-bit code; -ENOSYS without IA32 emulation
 * (int 0x80 faults then). */
static long int80(long nr, long a, long b, long c, long d, long e)
{
	long r;
	if (sigsetjmp(env, 1))
		return -ENOSYS;
	__asm__ volatile("int $0x80"
			 : "=a"(r)
			 : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e)
			 : "memory", "r8", "r9", "r10", "r11");
	return r;
}

static int key_of(int n)
{
	return (int)(0x4b000000 | (getpid() & 0xffff) << 4 | n);
}

/* msgget made by another entry: does msgget(key, 0) see what it did? */
static void msgget_agrees(const char *what, long r, int key)
{
	int id = msgget(key, 0);
	val(what, (r >= 0 && r == id) || (r < 0 && id < 0));
	if (id >= 0)
		msgctl(id, IPC_RMID, NULL);
	if (r >= 0 && r != id) /* made behind the 64-bit calls' back */
		int80(402, r, IPC_RMID, 0, 0, 0);
}

int main(void)
{
	signal(SIGSEGV, on_segv);
	char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
			 -1, 0);
	if (low == MAP_FAILED)
		return 1;

	int k = key_of(1);
	msgget_agrees("i386 msgget agrees with msgget", int80(399, k, IPC_CREAT | 0600, 0, 0, 0), k);
	k = key_of(2);
	msgget_agrees("i386 ipc(MSGGET) agrees with msgget", int80(117, 13, k, IPC_CREAT | 0600, 0, 0), k);
	k = key_of(3);
	msgget_agrees("x32 msgget agrees with msgget",
		      syscall(0x40000000 | SYS_msgget, k, IPC_CREAT | 0600), k);

	/* A message sent through the 32-bit entry: msgrcv sees it or it failed. */
	int q = (int)res("msgget", msgget(IPC_PRIVATE, IPC_CREAT | 0600));
	int32_t *m32 = (int32_t *)low; /* i386 msgbuf: a 32-bit mtype */
	m32[0] = 5;
	memcpy(m32 + 1, "abc", 4);
	long s = int80(400, q, (long)(uintptr_t)m32, 4, IPC_NOWAIT, 0);
	struct {
		long mtype;
		char text[8];
	} m;
	long r = msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT);
	val("i386 msgsnd agrees with msgrcv", (s == 0 && r == 4 && m.mtype == 5) || (s < 0 && r < 0));
	s = int80(117, 11 /* MSGSND */, q, 4, IPC_NOWAIT, (long)(uintptr_t)m32);
	r = msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT);
	val("i386 ipc(MSGSND) agrees with msgrcv", (s == 0 && r == 4) || (s < 0 && r < 0));
	res("msgctl IPC_RMID", msgctl(q, IPC_RMID, NULL));

	/* mq_open through the 32-bit entry: mq_open(3) sees its queue or none. */
	const char *name = qname("compat");
	strcpy(low, name + 1);
	long fd = int80(277, (long)(uintptr_t)low, O_CREAT | O_RDWR, 0600, 0, 0);
	mqd_t l = mq_open(name, O_RDWR);
	val("i386 mq_open agrees with mq_open", (fd >= 0) == (l >= 0));
	if (fd >= 0) {
		close((int)fd);
		if (l < 0)
			int80(278, (long)(uintptr_t)low, 0, 0, 0, 0);
	}
	if (l >= 0) {
		mq_close(l);
		mq_unlink(name);
	}
	return 0;
}
