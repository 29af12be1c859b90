/* SPDX-License-Identifier: MIT */
/*
 * libkipc: copies between the caller's buffers and the arena, the way a
 * kernel's copy_from_user()/copy_to_user() work: a bad pointer makes the
 * call fail EFAULT, it never crashes the caller.
 *
 * NULL (with a length) is refused for free. A buffer on the calling
 * thread's live stack (between the current frame and the stack's top,
 * which is mapped and writable), or in the main program's writable data
 * (its PF_W PT_LOAD segment, .data and .bss, less PT_GNU_RELRO; the main
 * program is never unmapped), is copied with memcpy. Anything else is
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
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

static int no_vm_rw; /* process_vm_* refused by the OS */

/* [lo, hi) of this thread's stack; 0 until known, 1 when unknown. */
static __thread uintptr_t stack_lo, stack_hi;

/* The main program's writable data: [lo, hi) less [relro_lo, relro_hi). */
static struct {
	uintptr_t lo, hi, relro_lo, relro_hi;
} data;
static pthread_once_t data_once = PTHREAD_ONCE_INIT;

static int main_program(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size, (void)arg;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W) && (ph->p_flags & PF_R) &&
		    !data.hi) {
			data.lo = lo;
			data.hi = hi;
		} else if (ph->p_type == PT_GNU_RELRO) {
			data.relro_lo = lo;
			data.relro_hi = hi;
		}
	}
	return 1; /* the first object is the main program */
}

static void find_data(void)
{
	dl_iterate_phdr(main_program, NULL);
}

static bool in_range(uintptr_t a, size_t len, uintptr_t lo, uintptr_t hi)
{
	return a >= lo && a < hi && len <= hi - a;
}

static bool in_main_data(const void *p, size_t len)
{
	pthread_once(&data_once, find_data);
	uintptr_t a = (uintptr_t)p;
	if (!in_range(a, len, data.lo, data.hi))
		return false;
	/* overlaps RELRO (read-only after relocation)? */
	return a + len <= data.relro_lo || a >= data.relro_hi;
}

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

static bool known_good(const void *p, size_t len)
{
	return on_live_stack(p, len) || in_main_data(p, len);
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

/* Copy len bytes; user is the caller's side (src on a read, dst on a
 * write), checked as a kernel's copy would be. */
static int copy_user(void *dst, const void *src, size_t len, bool write)
{
	const void *user = write ? dst : src;
	if (!len)
		return 0;
	if (!user)
		return -EFAULT;
	if (known_good(user, len) || __atomic_load_n(&no_vm_rw, __ATOMIC_RELAXED)) {
		memcpy(dst, src, len);
		return 0;
	}
	/* process_vm_*: the local side is ours, the remote one the caller's */
	int r = write ? vm_copy((void *)src, dst, len, true) : vm_copy(dst, src, len, false);
	if (r > 0)
		memcpy(dst, src, len);
	return r < 0 ? r : 0;
}

int __kipc_copy_from_user(void *dst, const void *src, size_t len)
{
	return copy_user(dst, src, len, false);
}

int __kipc_copy_to_user(void *dst, const void *src, size_t len)
{
	return copy_user(dst, src, len, true);
}
