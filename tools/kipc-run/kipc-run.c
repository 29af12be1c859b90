/* SPDX-License-Identifier: MIT */
/*
 * kipc-run PROGRAM [ARGS]: run an unmodified program with its POSIX
 * (mq_*) and System V (msg*) message queues on kipc.
 *
 * Preloads libkipc-posix.so ($KIPC_POSIX_LIB, else the one built or
 * installed with the libkipc this program is linked with), makes sure a kernel answers (libkipc
 * starts one if none does, unless KIPC_AUTOSTART=0), then execs PROGRAM.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kipc/libkipc.h>

#include "../include/tool.h"

/* lib/kipcd_path.c: $(O)/lib/ in the build tree, $(LIBDIR) installed. */
extern const char __kipc_posix_lib_path[];

static void die(int code, const char *fmt, const char *arg)
{
	fprintf(stderr, "kipc-run: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(code);
}

int main(int argc, char **argv)
{
	/* Options only before PROGRAM: the program's own go to it. */
	int first = 1;
	if (first < argc && argv[first][0] == '-') {
		const char *a = argv[first];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			printf("usage: kipc-run PROGRAM [ARG]...\n"
			       "Run PROGRAM with its POSIX (mq_*) and System V (msg*) message\n"
			       "queues on kipc: libkipc-posix.so is preloaded, and a kernel is\n"
			       "started first when none answers (unless KIPC_AUTOSTART=0).\n"
			       "  -h, --help     this help\n"
			       "      --version  print the version\n"
			       "Environment: KIPC_POSIX_LIB (the preload library, default %s),\n"
			       "KIPC_SOCKET, KIPC_AUTOSTART, KIPC_KIPCD. See kipc-run(1).\n",
			       __kipc_posix_lib_path);
			return 0;
		}
		if (!strcmp(a, "--version")) {
			tool_print_version("kipc-run");
			return 0;
		}
		if (!strcmp(a, "--"))
			first++;
		else
			tool_usage_error("kipc-run", "unrecognized option '%s'", a);
	}
	if (first >= argc)
		tool_usage_error("kipc-run", "missing PROGRAM");

	char lib[PATH_MAX + 32];
	const char *env = getenv("KIPC_POSIX_LIB");
	snprintf(lib, sizeof lib, "%s", env && *env ? env : __kipc_posix_lib_path);
	if (access(lib, R_OK) < 0)
		die(1, "no preload library %s (make it, or set KIPC_POSIX_LIB)", lib);

	/*
	 * A kernel must answer before the program runs. Attach from a child
	 * (libkipc starts kipcd when none answers): our own pid is about to
	 * become the program's, and must not be a task already.
	 */
	pid_t child = fork();
	if (child < 0)
		die(1, "fork: %s", strerror(errno));
	if (child == 0)
		_exit(kipc_attach() < 0 ? 1 : 0);
	int st;
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die(1, "%s", "no kipc kernel answers and none could be started");

	const char *old = getenv("LD_PRELOAD");
	char *preload;
	if (old && *old) {
		size_t len = strlen(lib) + strlen(old) + 2;
		preload = malloc(len);
		if (!preload)
			die(1, "%s", strerror(ENOMEM));
		snprintf(preload, len, "%s:%s", lib, old);
	} else {
		preload = lib;
	}
	setenv("LD_PRELOAD", preload, 1);
	execvp(argv[first], argv + first);
	int err = errno;
	fprintf(stderr, "kipc-run: %s: %s\n", argv[first], strerror(err));
	return 127;
}
