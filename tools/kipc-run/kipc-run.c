/* SPDX-License-Identifier: MIT */
/*
 * kipc-run PROGRAM [ARGS]: run an unmodified program with its POSIX
 * (mq_*) and System V (msg*) message queues on kipc.
 *
 * Preloads libkipc-posix.so ($KIPC_POSIX_LIB, else the one built or
 * installed with the libkipc this program is linked with), makes sure a kernel answers (libkipc
 * starts one if none does, unless KIPC_AUTOSTART=0), then execs PROGRAM.
 *
 * A statically linked PROGRAM (an ELF file without PT_INTERP) cannot
 * load the library: kipc-run then runs itself again with the library
 * preloaded (--supervise-static, internal), and the library's supervisor
 * (lib/posix/supervise.c) runs PROGRAM with its calls trapped by seccomp
 * user notification and serves them as PROGRAM's own.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
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

/* The file execvp(3) would run for name, in buf; false if none. */
static bool find_program(const char *name, char *buf, size_t size)
{
	if (strchr(name, '/')) {
		snprintf(buf, size, "%s", name);
		return true;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		if ((size_t)snprintf(buf, size, "%.*s/%s", (int)n, n ? p : ".", name) < size &&
		    access(buf, X_OK) == 0)
			return true;
		p += n;
		if (*p == ':')
			p++;
	}
	return false;
}

/* An ELF executable that cannot load the (64-bit) library: static, or a
 * 32-bit program (the supervisor's filter fails its calls ENOSYS). */
static bool is_static(const char *name)
{
	char path[PATH_MAX];
	if (!find_program(name, path, sizeof path))
		return false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	Elf64_Ehdr eh;
	bool elf = pread(fd, &eh, sizeof eh, 0) == (ssize_t)sizeof eh &&
		   memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0;
	if (elf && eh.e_ident[EI_CLASS] == ELFCLASS32) {
		close(fd);
		return true;
	}
	elf = elf && eh.e_ident[EI_CLASS] == ELFCLASS64 &&
		   (eh.e_type == ET_EXEC || eh.e_type == ET_DYN) &&
		   eh.e_phentsize == sizeof(Elf64_Phdr);
	bool interp = false;
	for (unsigned i = 0; elf && i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + i * sizeof ph)) != (ssize_t)sizeof ph) {
			elf = false;
			break;
		}
		if (ph.p_type == PT_INTERP)
			interp = true;
	}
	close(fd);
	return elf && !interp;
}

/* Run by ourselves with the library preloaded: the static program. */
static int supervise(char **argv)
{
	int (*fn)(char **) = (int (*)(char **))dlsym(RTLD_DEFAULT, "__kipc_supervise_static");
	if (!fn)
		die(1, "%s", "the preload library has no supervisor for static programs");
	int st = fn(argv);
	if (st < 0)
		die(1, "cannot run the program: %s", strerror(errno));
	if (WIFSIGNALED(st)) {
		/* Die as the program did: the caller sees the same status. */
		int sig = WTERMSIG(st);
		signal(sig, SIG_DFL);
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, sig);
		sigprocmask(SIG_UNBLOCK, &s, NULL);
		raise(sig);
		return 128 + sig;
	}
	return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
	if (argc > 2 && !strcmp(argv[1], "--supervise-static"))
		return supervise(argv + 2);

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
	const char *seccomp = getenv("KIPC_SECCOMP");
	if (is_static(argv[first]) && !(seccomp && !strcmp(seccomp, "0"))) {
		/* Ourselves again, with the library: it supervises. */
		if (old)
			setenv("KIPC_RUN_LD_PRELOAD", old, 1);
		setenv("KIPC_SUPERVISOR", "1", 1);
		setenv("LD_PRELOAD", lib, 1);
		char **av = calloc((size_t)(argc - first + 3), sizeof *av);
		if (!av)
			die(1, "%s", strerror(ENOMEM));
		av[0] = argv[0];
		av[1] = "--supervise-static";
		memcpy(av + 2, argv + first, (size_t)(argc - first) * sizeof *av);
		execv("/proc/self/exe", av);
		die(1, "cannot run the supervisor: %s", strerror(errno));
	}
	setenv("LD_PRELOAD", preload, 1);
	execvp(argv[first], argv + first);
	int err = errno;
	fprintf(stderr, "kipc-run: %s: %s\n", argv[first], strerror(err));
	return 127;
}
