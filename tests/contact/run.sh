#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/contact/run.sh - a new user's first contact, as a user does it:
# autostart (which kernel, which error), refused boot lines, kipcd
# --status/--stop, and `make install` followed by building and running a
# program with pkg-config and the installed kipc-run.
#
# usage: tests/contact/run.sh [O]     (default O=build, already built)
# Prints "ok N - what" / "not ok N - what" lines and ends with
# "contact: P passed, F failed"; exits non-zero iff F > 0. Every kernel it
# starts is on a socket in its own temporary directory, stopped at exit.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
srctree=$PWD
O=${1:-build}
O=${O%/}
MAKE=${MAKE:-make}
bin=$(cd "$O/bin" && pwd) || { echo "contact: no $O/bin"; exit 1; }
lib=$(cd "$O/lib" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kipc-contact.XXXXXX") || exit 1
: >"$tmp/socks"
# The sockets handed out by sock(), one per line: sock runs in a command
# substitution (a subshell), so it records them in a file, not a variable.
cleanup() {
	local s
	while IFS= read -r s; do
		"$bin/kipcd" --stop --socket "$s" >/dev/null 2>&1
	done <"$tmp/socks"
	rm -rf "$tmp"
}
trap cleanup EXIT
unset KIPC_KIPCD KIPCD KIPC_AUTOSTART KIPC_LOOP KIPC_POSIX_LIB

n=0 pass=0 fail=0
check() { # description command...
	[ -z "${KIPC_CONTACT_ONLY:-}" ] || [ "$2" = "$KIPC_CONTACT_ONLY" ] || return 0
	local what=$1
	shift
	n=$((n + 1))
	if "$@" >"$tmp/out" 2>&1; then
		pass=$((pass + 1))
		echo "ok $n - $what"
	else
		fail=$((fail + 1))
		echo "not ok $n - $what"
		sed 's/^/#   /' "$tmp/out" | tail -n 20
	fi
}

# A program that attaches (the first call autostarts) and reports errno.
cat >"$tmp/attach.c" <<'C'
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <kipc/libkipc.h>
int main(void)
{
	if (kipc_attach() < 0) {
		printf("errno=%s\n", strerrorname_np(errno));
		return 1;
	}
	printf("attached pid=%d\n", (int)kipc_task_pid());
	return 0;
}
C
cc -Iuapi "$tmp/attach.c" "$O/lib/libkipc.a" -pthread -o "$tmp/attach" || exit 1

# Running (a zombie has exited: its reaper may be slow).
alive() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat" 2>/dev/null; }

sock() { # name: a fresh socket path, stopped at exit
	local s=$tmp/$1/kipcd.sock
	printf '%s\n' "$s" >>"$tmp/socks"
	printf '%s\n' "$s"
}

t_autostart_own_kernel() {
	local s out
	s=$(sock auto)
	out=$(cd / && env -i PATH=/usr/bin:/bin KIPC_SOCKET="$s" "$tmp/attach") || return 1
	grep -q '^attached' <<<"$out" &&
		"$bin/kipcd" --status --socket "$s" | grep -qx "socket: $s"
}
check "autostart finds the build tree's kipcd from any directory, without \$PATH" t_autostart_own_kernel

t_autostart_enoent() {
	local s out err
	s=$(sock enoent)
	out=$(KIPC_SOCKET="$s" KIPC_KIPCD=$tmp/no-such-kipcd "$tmp/attach" 2>"$tmp/err")
	err=$(cat "$tmp/err")
	[ "$out" = "errno=ENOENT" ] &&
		[ "$(wc -l <"$tmp/err")" = 1 ] &&
		grep -q "cannot start a kernel for $s: \$KIPC_KIPCD=$tmp/no-such-kipcd: No such file" <<<"$err"
}
check "a kipcd that cannot be run: errno ENOENT and one line naming it" t_autostart_enoent

t_autostart_off_quiet() {
	local s out
	s=$(sock off)
	out=$(KIPC_SOCKET="$s" KIPC_AUTOSTART=0 KIPC_KIPCD=$tmp/no-such "$tmp/attach" 2>"$tmp/err")
	[ "$out" = "errno=ECONNREFUSED" ] && [ ! -s "$tmp/err" ]
}
check "KIPC_AUTOSTART=0: ECONNREFUSED and nothing on stderr" t_autostart_off_quiet

t_documented_boot_line() {
	local s
	s=$(sock doc)
	"$bin/kipcd" --socket "$s" msg_max=4 bytes_per_user=4096 2>"$tmp/log" &&
		grep -q 'defaults lowered to their hard limits: msg_default=4 taskq_capacity=4' "$tmp/log" &&
		"$bin/kipcd" --status --socket "$s" | grep -q '^limits: msg_default=4 msg_max=4 .*bytes_per_user=4096 taskq_capacity=4 '
}
check "kipcd msg_max=4 bytes_per_user=4096 boots (Documentation/index.md)" t_documented_boot_line

t_refused_not_replaced() {
	local s out rc
	s=$(sock refused)
	"$bin/kipcd" --socket "$s" msg_max=4 msg_default=10 2>"$tmp/err"
	rc=$?
	[ "$rc" = 2 ] || { echo "kipcd exited $rc"; return 1; }
	grep -qx 'kipcd: inconsistent boot parameters: msg_default=10 exceeds msg_max=4 (.*)' "$tmp/err" || return 1
	out=$(KIPC_SOCKET="$s" "$tmp/attach" 2>"$tmp/err")
	[ "$out" = "errno=ECONNREFUSED" ] || { echo "$out"; return 1; }
	grep -q "not starting a kernel on $s: the last kipcd there refused to boot (inconsistent boot parameters: msg_default=10 exceeds msg_max=4" "$tmp/err" || return 1
	[ ! -e "$s" ] || { echo "a kernel took the socket"; return 1; }
	# A kernel booted by the user clears the refusal.
	"$bin/kipcd" --quiet --socket "$s" msg_max=4 && [ ! -e "$s.refused" ] &&
		KIPC_SOCKET="$s" "$tmp/attach" | grep -q '^attached'
}
check "a refused boot line is not silently replaced by a default kernel" t_refused_not_replaced

t_status_stop() {
	local s rc pid
	s=$(sock life)
	"$bin/kipcd" --status --socket "$s" >/dev/null 2>&1
	rc=$?
	[ "$rc" = 3 ] || { echo "--status without kernel: $rc"; return 1; }
	"$bin/kipcd" --stop --socket "$s" 2>/dev/null
	rc=$?
	[ "$rc" = 3 ] || { echo "--stop without kernel: $rc"; return 1; }
	"$bin/kipcd" --quiet --socket "$s" loop=x 2>/dev/null && return 1 # bad parameter
	rm -f "$s.refused"
	"$bin/kipcd" --quiet --socket "$s" --loop=epoll || return 1
	"$bin/kipcd" --status --socket "$s" >"$tmp/st" || return 1
	for k in pid socket version protocol abi build_id uptime loop ring command_line \
		limits tasks mailboxes messages bytes sent delivered attaches exits; do
		grep -q "^$k: " "$tmp/st" || { echo "no $k:"; cat "$tmp/st"; return 1; }
	done
	grep -qx 'loop: epoll' "$tmp/st" || return 1
	pid=$(sed -n 's/^pid: //p' "$tmp/st")
	alive "$pid" || return 1
	"$bin/kipcd" --stop --socket "$s" || return 1
	# --stop returns once the kernel has exited (its socket is gone).
	! alive "$pid" && [ ! -e "$s" ] &&
		{ "$bin/kipcd" --status --socket "$s" >/dev/null 2>&1; [ $? = 3 ]; }
}
check "kipcd --status (key: value, exit 0/3) and --stop (waits, exit 0/3)" t_status_stop

t_other_build_warns() {
	local s out
	s=$(sock build)
	# A library of another build: lib/kipcd_path.c with another id.
	mkdir -p "$tmp/gen/generated"
	sed 's/KIPC_BUILD_ID 0x[0-9a-f]*ull/KIPC_BUILD_ID 0x1ull/' "$O/include/generated/build_id.h" \
		>"$tmp/gen/generated/build_id.h"
	cp "$O/include/generated/kipcd_path.h" "$tmp/gen/generated/"
	cc -Iuapi -I"$tmp/gen" -c lib/kipcd_path.c -o "$tmp/path.o" &&
		cc -Iuapi "$tmp/attach.c" "$tmp/path.o" "$O/lib/libkipc.a" -pthread -o "$tmp/attach-old" || return 1
	"$bin/kipcd" --quiet --socket "$s" || return 1
	KIPC_SOCKET="$s" "$tmp/attach" 2>"$tmp/err" | grep -q '^attached' && [ ! -s "$tmp/err" ] ||
		{ echo "same build warned"; cat "$tmp/err"; return 1; }
	KIPC_SOCKET="$s" "$tmp/attach-old" 2>"$tmp/err" | grep -q '^attached' || return 1
	[ "$(wc -l <"$tmp/err")" = 1 ] &&
		grep -q "^libkipc: warning: the kernel at $s is build [0-9a-f]\{16\}, this library is build 0000000000000001" "$tmp/err"
}
check "a library of another build warns once when it attaches" t_other_build_warns

t_install() {
	local p=$tmp/prefix s out
	s=$(sock inst)
	$MAKE -C "$srctree" O="$O" install PREFIX="$p" >"$tmp/install.log" 2>&1 ||
		{ cat "$tmp/install.log"; return 1; }
	# Nothing the README names is missing.
	for f in bin/kipcd bin/kipcs bin/kipcrm bin/kipc-trace bin/kipc-run bin/kipc-bench \
		bin/kipc-stress lib/libkipc.a lib/libkipc.so lib/libkipc-posix.so \
		lib/pkgconfig/kipc.pc include/kipc/libkipc.h share/man/man8/kipcd.8 \
		share/man/man1/kipcs.1 share/man/man1/kipc-run.1; do
		[ -e "$p/$f" ] || { echo "not installed: $f"; return 1; }
	done
	grep -q 'tests/\|bench/' "$tmp/install.log" && { echo "install built tests"; return 1; }
	export PKG_CONFIG_PATH=$p/lib/pkgconfig
	cc "$tmp/attach.c" $(pkg-config --cflags --libs kipc) -Wl,-rpath,"$p/lib" \
		-o "$tmp/attach-dyn" || return 1
	cc -static "$tmp/attach.c" $(pkg-config --static --cflags --libs kipc) \
		-o "$tmp/attach-static" 2>"$tmp/ld" || { cat "$tmp/ld"; return 1; }
	# The installed library starts the installed kernel.
	out=$(cd / && env -i PATH=/usr/bin:/bin KIPC_SOCKET="$s" "$tmp/attach-dyn") || return 1
	grep -q '^attached' <<<"$out" || return 1
	grep -q "^$p/bin/kipcd" "/proc/$("$bin/kipcd" --status --socket "$s" | sed -n 's/^pid: //p')/cmdline" ||
		{ echo "not the installed kipcd"; return 1; }
	KIPC_SOCKET="$s" "$tmp/attach-static" | grep -q '^attached' || return 1
	cat >"$tmp/mq.c" <<'C'
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
int main(void)
{
	struct mq_attr a = {.mq_maxmsg = 4, .mq_msgsize = 32};
	mqd_t q = mq_open("/kipc-contact", O_CREAT | O_RDWR, 0600, &a);
	char b[32];
	if (q == (mqd_t)-1 || mq_send(q, "hello", 5, 0) < 0) {
		perror("mq");
		return 1;
	}
	ssize_t n = mq_receive(q, b, sizeof b, NULL);
	mq_unlink("/kipc-contact");
	printf("%.*s\n", (int)n, b);
	return 0;
}
C
	cc "$tmp/mq.c" -o "$tmp/mq" || return 1
	out=$(cd / && env -i PATH=/usr/bin:/bin KIPC_SOCKET="$s" "$p/bin/kipc-run" "$tmp/mq") &&
		[ "$out" = hello ] || { echo "kipc-run: $out"; return 1; }
	# ... and it ran on kipc: the kernel counted its attach.
	[ "$("$bin/kipcd" --status --socket "$s" | sed -n 's/^attaches: //p')" -ge 4 ] || return 1
	$MAKE -C "$srctree" O="$O" uninstall PREFIX="$p" >/dev/null 2>&1 &&
		[ -z "$(find "$p" -type f -o -type l)" ] || { find "$p" -type f -o -type l; return 1; }
}
check "make install, then pkg-config (shared and --static) and the installed kipc-run" t_install

echo "contact: $pass passed, $fail failed"
[ "$fail" = 0 ]
