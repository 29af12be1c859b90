#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/posix/run.sh - differential conformance of POSIX and System V
# message queues: every tests/posix/*.c runs natively and under kipc-run,
# and the two transcripts must be identical. Each also runs linked
# statically (gcc -static), which kipc-run serves through its supervisor
# (lib/posix/supervise.c), except the tests in static_skip below.
#
# usage: tests/posix/run.sh [O] [test-name...]
#   O defaults to build. Builds each test into $O/tests/posix/, runs it
#   against a private kipcd (its own socket), diffs, prints one line per
#   test and ends with "posix: N passed, M failed". Exit 1 on failure.
#   kipcd boots with the machine's fs.mqueue.* and kernel.msg* limits.
#   KIPC_POSIX_KEEP=1 keeps the transcripts in $O/tests/posix/.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
O=${1:-build}
shift || true
CC=${CC:-gcc}
out=$O/tests/posix
mkdir -p "$out"
run=$O/bin/kipc-run
if [ ! -x "$run" ] || [ ! -f "$O/lib/libkipc-posix.so" ]; then
	echo "posix: $run or $O/lib/libkipc-posix.so missing (make first)"
	echo "posix: 0 passed, 1 failed"
	exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kipc-posix.XXXXXX")
export KIPC_SOCKET=$tmp/kipcd.sock
kipcd=$(readlink -f "$O/bin/kipcd")
cleanup() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$kipcd" ] || continue
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$KIPC_SOCKET" || continue
		kill "${p#/proc/}" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# The native side runs under the machine's IPC sysctls, whatever they are;
# kipcd boots with the same values, so the transcripts compare behaviour,
# not limits (no test may assume Linux's defaults).
params=()
for n in msg_default msg_max msgsize_default msgsize_max queues_max; do
	params+=("mq_$n=$(cat "/proc/sys/fs/mqueue/$n")")
done
for n in msgmax msgmnb msgmni; do
	params+=("$n=$(cat "/proc/sys/kernel/$n")")
done
export KIPC_AUTOSTART=0
if ! "$kipcd" --quiet --socket "$KIPC_SOCKET" "${params[@]}" >"$tmp/kipcd.log" 2>&1; then
	echo "posix: kipcd does not boot with the machine's limits (${params[*]}):"
	sed 's/^/	/' "$tmp/kipcd.log"
	echo "posix: 0 passed, 1 failed"
	exit 1
fi

tests=("$@")
if [ ${#tests[@]} = 0 ]; then
	for f in tests/posix/*.c; do tests+=("$(basename "$f" .c)"); done
fi
# Not run statically, and why (Documentation/posix.md, "Static programs"):
declare -A static_skip=(
	[proc_limits]="a static program's open(2) of /proc/sys is not trapped"
)
static_ok=1
if ! $CC -static -x c -o "$tmp/static-probe" - <<<'int main(void){return 0;}' 2>/dev/null; then
	echo "posix: no static libc (libc6-dev's libc.a): static runs skipped"
	static_ok=0
fi

pass=0 fail=0
# check NAME BIN: BIN natively and under kipc-run, the same transcript.
check() {
	local t=$1 bin=$2
	timeout -k 5 60 "$bin" >"$out/$t.native" 2>&1
	echo "exit $?" >>"$out/$t.native"
	timeout -k 5 60 "$run" "$bin" >"$out/$t.kipc" 2>&1
	echo "exit $?" >>"$out/$t.kipc"
	if diff -u "$out/$t.native" "$out/$t.kipc" >"$out/$t.diff"; then
		echo "[ OK ] posix/$t ($(wc -l <"$out/$t.native") lines)"
		pass=$((pass + 1))
	else
		echo "[FAIL] posix/$t: native and kipc-run differ:"
		sed 's/^/	/' "$out/$t.diff" | head -40
		fail=$((fail + 1))
	fi
	[ "${KIPC_POSIX_KEEP:-0}" = 1 ] || rm -f "$out/$t.native" "$out/$t.kipc" "$out/$t.diff"
}
# served NAME BIN: BIN's raw msgget (KIPC_TEST_LEAVE) made its queue in
# kipc, not in Linux: a transcript cannot tell, kipcrm can.
served() {
	local id
	KIPC_TEST_LEAVE=1 timeout -k 5 20 "$run" "$2" 3>"$tmp/id" >/dev/null 2>&1
	id=$(cat "$tmp/id" 2>/dev/null)
	if [ -n "$id" ] && [ "$id" -ge 0 ] 2>/dev/null && "$O/bin/kipcrm" -q "$id" >/dev/null 2>&1; then
		echo "[ OK ] posix/$1: its raw calls reach kipc"
		pass=$((pass + 1))
	else
		echo "[FAIL] posix/$1: its raw msgget (id '$id') did not make a kipc queue"
		[ -z "$id" ] || ipcrm -q "$id" 2>/dev/null
		fail=$((fail + 1))
	fi
}
for t in "${tests[@]}"; do
	src=tests/posix/$t.c
	for kind in dynamic static; do
		bin=$out/$t name=$t flags=()
		if [ $kind = static ]; then
			[ $static_ok = 1 ] && [ -z "${static_skip[$t]:-}" ] || continue
			bin=$out/$t.static name=$t.static flags=(-static)
		fi
		# Built again unless it was built from exactly these sources with
		# exactly this command (a date comparison misses a binary left by
		# another checkout or an older run.sh).
		cmd=("$CC" "${flags[@]}" -std=gnu11 -O1 -g -Wall -Wextra -Werror -o "$bin" "$src" -lrt -pthread)
		sum=$( { printf '%s\n' "${cmd[@]}"; cat "$src" tests/posix/conform.h; } | sha256sum)
		if [ ! -x "$bin" ] || [ "$(cat "$bin.sum" 2>/dev/null)" != "$sum" ]; then
			rm -f "$bin.sum"
			if ! "${cmd[@]}"; then
				echo "[FAIL] posix/$name: does not build"
				fail=$((fail + 1))
				continue
			fi
			echo "$sum" >"$bin.sum"
		fi
		check "$name" "$bin"
		[ "$t" != raw_syscall ] || served "$name" "$bin"
	done
done

# Go (gccgo: Debian's small Go; scripts/install-deps has it as optional),
# dynamic and static, when no test names were given or "go" was.
if [ ${#@} = 0 ] || [[ " $* " == *" go "* ]]; then
	if ! command -v gccgo >/dev/null; then
		echo "posix: gccgo not installed: the Go programs are skipped"
	else
		for src in tests/posix/go/*.go; do
			t=go_$(basename "$src" .go)
			for kind in dynamic static; do
				bin=$out/$t name=$t flags=()
				[ $kind = dynamic ] || { bin=$out/$t.static name=$t.static flags=(-static); }
				[ $kind = dynamic ] || [ $static_ok = 1 ] || continue
				if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
					if ! gccgo "${flags[@]}" -O1 -o "$bin" "$src"; then
						echo "[FAIL] posix/$name: does not build"
						fail=$((fail + 1))
						continue
					fi
				fi
				check "$name" "$bin"
				served "$name" "$bin"
			done
		done
	fi
fi
echo "posix: $pass passed, $fail failed"
[ "$fail" = 0 ]
