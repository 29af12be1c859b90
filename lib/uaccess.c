/* SPDX-License-Identifier: MIT */
/*
 * libkipc: copies between the caller's buffers and the arena, the way a
 * kernel's copy_from_user()/copy_to_user() work: a bad pointer makes the
 * call fail EFAULT, it never crashes the caller.
 *
 * NULL (with a length) is refused for free. A buffer on the calling
 * thread's live stack (between the current frame and the stack's top,
 * which is mapped and writable) is copied with memcpy. Anything else is
 * copied by the OS with process_vm_readv(2)/process_vm_writev(2) on our
 * own pid: one system call that both checks and copies, and that fails
 * EFAULT (or transfers less) when a page is unmapped or, for a write,
 * not writable. If the OS refuses those calls (a seccomp filter: ENOSYS
 * or EPERM) the copy falls back to memcpy after the NULL check
 * (Documentation/posix.md, known differences).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

static int no_vm_rw; /* process_vm_* refused by the OS */

/* [lo, hi) of this thread's stack; 0 until known, 1 when unknown. */
static __thread uintptr_t stack_lo, stack_hi;

static bool on_live_stack(const void *p, size_t len)
{
	if (!stack_hi) {
		pthread_attr_t at;
		void *addr;
		size_t size;
		stack_hi = 1;
		if (pthread_getattr_np(pthread_self(), &at) == 0) {
			if (pthread_attr_getstack(&at, &addr, &size) == 0) {
				stack_lo = (uintptr_t)addr;
				stack_hi = (uintptr_t)addr + size;
			}
			pthread_attr_destroy(&at);
		}
	}
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	uintptr_t a = (uintptr_t)p;
	/* sp outside the stack: a signal handler on an alternate stack */
	return sp >= stack_lo && sp < stack_hi && a >= sp && a < stack_hi &&
	       len <= stack_hi - a;
}

static int vm_copy(void *local, const void *remote, size_t len, bool write)
{
	struct iovec l = {.iov_base = local, .iov_len = len};
	struct iovec r = {.iov_base = (void *)remote, .iov_len = len};
	ssize_t n = write ? process_vm_writev(getpid(), &l, 1, &r, 1, 0)
			  : process_vm_readv(getpid(), &l, 1, &r, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
		__atomic_store_n(&no_vm_rw, 1, __ATOMIC_RELAXED);
		return 1;
	}
	return -EFAULT; /* EFAULT, or a partial copy up to a bad page */
}

int __kipc_copy_from_user(void *dst, const void *src, size_t len)
{
	if (!len)
		return 0;
	if (!src)
		return -EFAULT;
	if (on_live_stack(src, len) || __atomic_load_n(&no_vm_rw, __ATOMIC_RELAXED)) {
		memcpy(dst, src, len);
		return 0;
	}
	int r = vm_copy(dst, src, len, false);
	if (r > 0)
		memcpy(dst, src, len);
	return r < 0 ? r : 0;
}

int __kipc_copy_to_user(void *dst, const void *src, size_t len)
{
	if (!len)
		return 0;
	if (!dst)
		return -EFAULT;
	if (on_live_stack(dst, len) || __atomic_load_n(&no_vm_rw, __ATOMIC_RELAXED)) {
		memcpy(dst, src, len);
		return 0;
	}
	int r = vm_copy((void *)src, dst, len, true);
	if (r > 0)
		memcpy(dst, src, len);
	return r < 0 ? r : 0;
}
