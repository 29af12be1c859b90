/* SPDX-License-Identifier: MIT */
/*
 * libkipc-posix.so: credentials change during a program's life. After
 * each of libc's set*id(2) and setgroups(2) succeeds, the kernel is told
 * to read the process's credentials again from the OS
 * (kipc_cred_refresh(): kipcd reads /proc/<pid>/status, nothing the
 * process says), so that seteuid(nobody) then msgctl(IPC_RMID) on root's
 * queue fails EPERM as on Linux. glibc applies these calls to every
 * thread before returning; a raw syscall(SYS_setuid) bypasses this file
 * (Documentation/posix.md).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <sys/fsuid.h>
#include <unistd.h>

#include <kipc/libkipc.h>

#define EXPORT __attribute__((visibility("default")))

/*
 * Attach before the change: a process that drops root may no longer be
 * able to reach a kernel whose socket is root's (a 0700 directory), and
 * once attached its connection stays; the refresh after the change is
 * what makes the kernel see the new credentials.
 */
static void before(void)
{
	int saved = errno;
	kipc_attach();
	errno = saved;
}

static int changed(int r)
{
	if (r == 0) {
		int saved = errno;
		kipc_cred_refresh();
		errno = saved;
	}
	return r;
}

/* fn: libc's own name (this file's definitions have its signature) */
#define REAL(name) \
	static __typeof__(&name) fn; \
	if (!fn) \
		fn = (__typeof__(&name))dlsym(RTLD_NEXT, #name); \
	if (!fn) { \
		errno = ENOSYS; \
		return -1; \
	} \
	before()

/* An interposed call: libc's, then the refresh if it succeeded. */
#define CRED_CALL(name, params, args) \
	EXPORT int name params \
	{ \
		REAL(name); \
		return changed(fn args); \
	}

CRED_CALL(setuid, (uid_t u), (u))
CRED_CALL(seteuid, (uid_t u), (u))
CRED_CALL(setreuid, (uid_t r, uid_t e), (r, e))
CRED_CALL(setresuid, (uid_t r, uid_t e, uid_t s), (r, e, s))
CRED_CALL(setgid, (gid_t g), (g))
CRED_CALL(setegid, (gid_t g), (g))
CRED_CALL(setregid, (gid_t r, gid_t e), (r, e))
CRED_CALL(setresgid, (gid_t r, gid_t e, gid_t s), (r, e, s))
CRED_CALL(setgroups, (size_t n, const gid_t *list), (n, list))
CRED_CALL(initgroups, (const char *user, gid_t group), (user, group))

