/* SPDX-License-Identifier: MIT */
/*
 * libkipc-posix.so: one raw message queue system call (x86-64 numbers and
 * arguments) served from the functions that interpose on libc's (msg.c,
 * mqueue.c). Used by the SIGSYS handler of the seccomp filter
 * (seccomp.c: dynamic programs) and by the supervisor of static ones
 * (supervise.c), which hands it pointers to its mirrors of the program's
 * buffers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <mqueue.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "posix.h"

#if defined(__x86_64__)
/* The raw mq_open and mq_unlink take the name without glibc's '/'. */
static long with_slash(const char *uname, char *buf, size_t size)
{
	size_t i = 0;
	buf[0] = '/';
	for (;; i++) {
		if (i + 2 > size)
			return -ENAMETOOLONG;
		char c;
		if (__kipc_copy_from_user(&c, uname + i, 1))
			return -EFAULT;
		buf[i + 1] = c;
		if (!c)
			return 0;
	}
}

/*
 * The system call's SIGEV_THREAD (what glibc's mq_notify makes of its
 * own): sigev_value points to a 32-byte cookie, sigev_signo is a netlink
 * socket the cookie goes to. Checked in do_mq_notify()'s order: the
 * cookie (EFAULT), the descriptor (EBADF), a socket (ENOTSOCK), netlink
 * (EINVAL); then the queue's descriptor and registration (mqueue.c).
 */
static long netlink_notify(int mqdes, const struct sigevent *sev)
{
	unsigned char cookie[32];
	if (__kipc_copy_from_user(cookie, sev->sigev_value.sival_ptr, sizeof cookie)) {
		errno = EFAULT;
		return -1;
	}
	int sock = __kipc_mqd_space->dup(sev->sigev_signo);
	if (sock < 0) {
		errno = EBADF;
		return -1;
	}
	struct stat st;
	int domain = 0;
	socklen_t len = sizeof domain;
	int err = 0;
	if (fstat(sock, &st) < 0 || !S_ISSOCK(st.st_mode))
		err = ENOTSOCK;
	else if (getsockopt(sock, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_NETLINK)
		err = EINVAL;
	if (err) {
		__kipc_real_close(sock);
		errno = err;
		return -1;
	}
	return __kipc_mq_notify_netlink(mqdes, sock, cookie);
}

long __kipc_serve_syscall(long nr, const long *a)
{
	char name[512];
	long r;
	switch (nr) {
	case __NR_msgget:
		return msgget((key_t)a[0], (int)a[1]);
	case __NR_msgsnd:
		return msgsnd((int)a[0], (const void *)a[1], (size_t)a[2], (int)a[3]);
	case __NR_msgrcv:
		return msgrcv((int)a[0], (void *)a[1], (size_t)a[2], a[3], (int)a[4]);
	case __NR_msgctl:
		return msgctl((int)a[0], (int)a[1], (struct msqid_ds *)a[2]);
	case __NR_mq_open:
		if ((r = with_slash((const char *)a[0], name, sizeof name))) {
			errno = (int)-r;
			return -1;
		}
		return mq_open(name, (int)a[1], (mode_t)a[2], (struct mq_attr *)a[3]);
	case __NR_mq_unlink:
		if ((r = with_slash((const char *)a[0], name, sizeof name))) {
			errno = (int)-r;
			return -1;
		}
		return mq_unlink(name);
	case __NR_mq_timedsend:
		return mq_timedsend((mqd_t)a[0], (const char *)a[1], (size_t)a[2],
				    (unsigned)a[3], (const struct timespec *)a[4]);
	case __NR_mq_timedreceive:
		return mq_timedreceive((mqd_t)a[0], (char *)a[1], (size_t)a[2],
				       (unsigned *)a[3], (const struct timespec *)a[4]);
	case __NR_mq_notify: {
		struct sigevent sev;
		if (a[1] && __kipc_copy_from_user(&sev, (const void *)a[1], sizeof sev)) {
			errno = EFAULT;
			return -1;
		}
		if (a[1] && sev.sigev_notify == SIGEV_THREAD)
			return netlink_notify((int)a[0], &sev);
		return mq_notify((mqd_t)a[0], a[1] ? &sev : NULL);
	}
	case __NR_mq_getsetattr:
		return __kipc_mq_getsetattr((mqd_t)a[0], (const struct mq_attr *)a[1],
					    (struct mq_attr *)a[2]);
	}
	errno = ENOSYS;
	return -1;
}

/*
 * A system call that the filters let through whatever it is: the library's
 * own use of Linux's queues (the SIGEV_THREAD relay, mqueue.c). Linux's
 * result, -errno on failure. The filters allow calls whose instruction
 * pointer is __kipc_passthrough_ret (just after its syscall instruction).
 */
__asm__(".text\n"
	".globl __kipc_passthrough\n"
	".hidden __kipc_passthrough\n"
	".type __kipc_passthrough, @function\n"
	"__kipc_passthrough:\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rdi\n"
	"	mov %rdx, %rsi\n"
	"	mov %rcx, %rdx\n"
	"	mov %r8, %r10\n"
	"	mov %r9, %r8\n"
	"	syscall\n"
	".globl __kipc_passthrough_ret\n"
	".hidden __kipc_passthrough_ret\n"
	"__kipc_passthrough_ret:\n"
	"	ret\n"
	".size __kipc_passthrough, . - __kipc_passthrough\n");

/*
 * The filter both use. The 64-bit entry of the served calls (and of
 * extra[]) gets `action`; the other entries of the same calls, which the
 * library does not serve, fail ENOSYS instead of reaching Linux's own
 * queues behind the program's back: the x32 ones (__X32_SYSCALL_BIT, on
 * the x86-64 arch) and the i386 ones (int 0x80: ipc(2)'s MSGSND, MSGRCV,
 * MSGGET and MSGCTL, the direct msg* calls of Linux 5.1 and the mq_*
 * calls, time64 included). Everything else is allowed.
 */
enum { L_NEXT = -1, L_ALLOW, L_I386, L_IPC, L_X32, L_NR, L_ENOSYS, L_ACTION, L_NLABELS };

struct bpf {
	struct sock_filter *f;
	unsigned n;
	signed char jt[KIPC_FILTER_MAX], jf[KIPC_FILTER_MAX]; /* labels */
	unsigned at[L_NLABELS];
};

static void op(struct bpf *b, uint16_t code, uint32_t k, int jt, int jf)
{
	b->jt[b->n] = (signed char)jt;
	b->jf[b->n] = (signed char)jf;
	b->f[b->n++] = (struct sock_filter)BPF_JUMP(code, k, 0, 0);
}

static void label(struct bpf *b, int l)
{
	b->at[l] = b->n;
}

static void ret(struct bpf *b, uint32_t k)
{
	op(b, BPF_RET | BPF_K, k, L_NEXT, L_NEXT);
}

static void jeq(struct bpf *b, uint32_t k, int l)
{
	op(b, BPF_JMP | BPF_JEQ | BPF_K, k, l, L_NEXT);
}

unsigned __kipc_filter(struct sock_filter *f, const int *extra, unsigned nextra, uint32_t action,
		       int passthrough)
{
	static const int served[] = {KIPC_TRAPPED_SYSCALLS};
	static const int x32_only[] = {527 /* mq_notify */};
	static const int i386[] = {277, 278, 279, 280, 281, 282, /* mq_* */
				   399, 400, 401, 402,           /* msg* (Linux 5.1) */
				   418, 419};                    /* mq_*_time64 */
	static const int ipc_calls[] = {11, 12, 13, 14}; /* MSGSND..MSGCTL */
	struct bpf b = {.f = f};
	op(&b, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), L_NEXT, L_NEXT);
	jeq(&b, AUDIT_ARCH_I386, L_I386);
	op(&b, BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, L_NEXT, L_ALLOW);
	if (passthrough) {
		/* The library's own real calls (__kipc_passthrough) pass. */
		uint64_t ip = (uint64_t)(uintptr_t)__kipc_passthrough_ret;
		size_t ipo = offsetof(struct seccomp_data, instruction_pointer);
		op(&b, BPF_LD | BPF_W | BPF_ABS, (uint32_t)ipo, L_NEXT, L_NEXT);
		op(&b, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)ip, L_NEXT, L_NR);
		op(&b, BPF_LD | BPF_W | BPF_ABS, (uint32_t)ipo + 4, L_NEXT, L_NEXT);
		jeq(&b, (uint32_t)(ip >> 32), L_ALLOW);
	}
	label(&b, L_NR);
	op(&b, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), L_NEXT, L_NEXT);
	op(&b, BPF_JMP | BPF_JSET | BPF_K, 0x40000000 /* __X32_SYSCALL_BIT */, L_X32, L_NEXT);
	for (unsigned i = 0; i < sizeof served / sizeof served[0]; i++)
		jeq(&b, (uint32_t)served[i], L_ACTION);
	for (unsigned i = 0; i < nextra; i++)
		jeq(&b, (uint32_t)extra[i], L_ACTION);
	ret(&b, SECCOMP_RET_ALLOW);

	label(&b, L_X32);
	op(&b, BPF_ALU | BPF_AND | BPF_K, ~0x40000000u, L_NEXT, L_NEXT);
	for (unsigned i = 0; i < sizeof served / sizeof served[0]; i++)
		jeq(&b, (uint32_t)served[i], L_ENOSYS);
	for (unsigned i = 0; i < sizeof x32_only / sizeof x32_only[0]; i++)
		jeq(&b, (uint32_t)x32_only[i], L_ENOSYS);
	ret(&b, SECCOMP_RET_ALLOW);

	label(&b, L_I386);
	op(&b, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), L_NEXT, L_NEXT);
	jeq(&b, 117 /* ipc */, L_IPC);
	for (unsigned i = 0; i < sizeof i386 / sizeof i386[0]; i++)
		jeq(&b, (uint32_t)i386[i], L_ENOSYS);
	ret(&b, SECCOMP_RET_ALLOW);

	label(&b, L_IPC); /* the call is the low 16 bits of the first argument */
	op(&b, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]), L_NEXT, L_NEXT);
	op(&b, BPF_ALU | BPF_AND | BPF_K, 0xffff, L_NEXT, L_NEXT);
	for (unsigned i = 0; i < sizeof ipc_calls / sizeof ipc_calls[0]; i++)
		jeq(&b, (uint32_t)ipc_calls[i], L_ENOSYS);
	label(&b, L_ALLOW);
	ret(&b, SECCOMP_RET_ALLOW);
	label(&b, L_ENOSYS);
	ret(&b, SECCOMP_RET_ERRNO | ENOSYS);
	label(&b, L_ACTION);
	ret(&b, action);

	for (unsigned i = 0; i < b.n; i++) {
		if (b.jt[i] != L_NEXT)
			f[i].jt = (uint8_t)(b.at[b.jt[i]] - i - 1);
		if (b.jf[i] != L_NEXT)
			f[i].jf = (uint8_t)(b.at[b.jf[i]] - i - 1);
	}
	return b.n;
}
#endif
