#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scripts/check.sh - build and run kipc's test suites (`make check`).
#
# usage: scripts/check.sh [all|selftests|uapi|unit|fuzz|san|tsan|stress|posix|contact|docs]
#   all        uapi check, unit tests (the default config's; the tiny
#              config's run in the ASan+UBSan pass), selftests, selftests again with KIPC_LOOP=epoll, then the
#              hardening passes (built in the background meanwhile): a
#              short fuzz run, the ASan+UBSan build of the tiny config's
#              unit tests and of the selftests, the ThreadSanitizer build of
#              the multi-threaded selftests, and a short chaos stress run
#   fuzz       each tests/fuzz target for KIPC_FUZZ_SECONDS (default 5),
#              side by side
#   san        unit tests (configs/tiny_defconfig, in $O/san/tiny) and
#              selftests built with SANITIZE=1 in $O/san
#   tsan       the threaded selftests built with SANITIZE=thread in $O/tsan
#   stress     tools/kipc-stress for KIPC_STRESS_SECONDS (default 20)
#   posix      the POSIX/System V differential suite (tests/posix/run.sh)
#   docs       the examples of README.md and Documentation/*.md (scripts/doc-examples)
#   contact    autostart, refused boots, kipcd --status/--stop, make install
#              then pkg-config and the installed kipc-run (tests/contact/run.sh)
#   selftests  only the selftests (`make kselftest`)
#   uapi       only the uapi header check
#   unit       only the unit tests (default and tiny config)
#   shell      only tests/shell/*.sh (kipc(1) from the shell)
#   python     only the Python module's pytest tests (python/tests)
#   samples    only the samples, outputs against samples/expected/
#   netcheck   the whole cross-node suite (tests/net) on both loops; `all`
#              runs only its quick tests (KIPC_NET_QUICK=1), default loop
#
# Environment (set by the Makefile): MAKE, O (output dir), SANITIZE.
# Knobs: KIPC_UNIT_ARGS (extra doctest arguments), KIPC_TEST_TIMEOUT
# (seconds per test binary, default 600).
#
# Counting: uapi: one check per header and language, plus abi.c/abi.cc.
# Unit: doctest's test cases ("[doctest] test cases: N | P passed | F
# failed"). Selftests: "# Totals: pass:P fail:F xfail:XF xpass:XP skip:S
# error:E" -> passed P+XF, failed F+XP+E. A binary that crashes, times out,
# exits non-zero with nothing failed, or prints no summary adds 1 failed; a
# failed build adds 1 failed. A missing suite is skipped.
#
# Prints one result line per suite and ends with exactly one line
# "check: N passed, M failed". Exits non-zero iff M > 0.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
srctree=$PWD

what=${1:-all}
case "$what" in
all)       label=check ;;
selftests) label=kselftest ;;
fuzz|san|tsan|stress) label=$what ;;
uapi)      label=uapi-check ;;
unit)      label=unit ;;
posix)     label=posix ;;
contact)   label=contact ;;
shell)     label=shell ;;
python)    label=python ;;
samples)   label=samples ;;
docs)      label=doc-examples ;;
netcheck)  label=netcheck ;;
*) echo "usage: $0 [all|selftests|uapi|unit|fuzz|san|tsan|stress|posix|contact|docs|shell|python|samples|netcheck]" >&2; exit 2 ;;
esac

MAKE=${MAKE:-make}
SANITIZE=${SANITIZE:-}
if [ -z "${O:-}" ]; then
	if [ "$SANITIZE" = 1 ]; then O=build-san; else O=build; fi
fi
O=${O%/}
TIMEOUT=${KIPC_TEST_TIMEOUT:-600}

# The hardening passes' builds, as make arguments (run_fuzz, run_san,
# run_tsan; `all` starts them early: build_ahead).
fuzz_make=(O="$O/fuzz" FUZZ=1 CC=clang CXX=clang++ SANITIZE= fuzzers)
san_make=(O="$O/san" SANITIZE=1 selftests)
san_tiny_make=(O="$O/san/tiny" KCONFIG_CONFIG="$O/san/tiny/.config" SANITIZE=1)
TSAN_SELFTESTS="thread_test fork_test credit_test"
tsan_targets=()
for t in $TSAN_SELFTESTS; do
	[ ! -e "tests/selftests/$t.c" ] || tsan_targets+=("$t")
done
tsan_make=(O="$O/tsan" SANITIZE=thread "${tsan_targets[@]/#/$O/tsan/tests/selftests/}")

total_pass=0
total_fail=0
total_skip=0
failures=()   # "suite: test: first failing assertion", listed at the end

# `make kselftest` (what=selftests) writes one TAP 13 document: one test
# point per selftest program (and loop), everything else as "# " comments
# (the programs' own TAP included), so that `prove` can consume it.
tap=0
tap_n=0
[ "$what" != selftests ] || tap=1
say() { # line: a comment in TAP mode
	if [ "$tap" = 1 ]; then printf '# %s\n' "$*"; else printf '%s\n' "$*"; fi
}
as_comments() { # filter
	if [ "$tap" = 1 ]; then sed -u 's/^/# /'; else cat; fi
}

result() { # suite pass fail [skip] [note]
	local suite=$1 p=$2 f=$3 s=${4:-0} note=${5:-} tag="[ OK ]"
	[ "$f" = 0 ] || tag="[FAIL]"
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	total_skip=$((total_skip + s))
	if [ "$tap" = 1 ]; then
		tap_n=$((tap_n + 1))
		tag="ok $tap_n -"
		[ "$f" = 0 ] || tag="not ok $tap_n -"
	fi
	printf '%s %s: %d passed, %d failed' "$tag" "$suite" "$p" "$f"
	[ "$s" = 0 ] || printf ', %d skipped' "$s"
	[ -z "$note" ] || printf ' (%s)' "$note"
	[ "$tap" = 0 ] || [ "$p$f" != 00 ] || [ "$s" = 0 ] || printf ' # SKIP'
	printf '\n'
}

skipped() { # suite reason
	if [ "$tap" = 1 ]; then echo "# SKIP $1: $2"; else echo "[SKIP] $1: $2"; fi
}

build() { # suite make-args...
	local suite=$1
	shift
	say "  MAKE    $*"
	if ! $MAKE -C "$srctree" "$@" 2>&1 | as_comments; then
		[ "$tap" = 0 ] || echo "1..$((tap_n + 1))"
		result "$suite" 0 1 0 "build failed: make $*"
		failures+=("$suite: build failed: make $*")
		return 1
	fi
}

# The failed tests of a kselftest log and the first failing assertion of
# each (the harness's "# file.c:LINE: ..." line), else its last diagnostic.
first_failures() { # log
	awk '
	/^# RUN / { t = substr($0, 7); first = ""; last = ""; next }
	/^# [^ ]+\.(c|cc|h):[0-9]+: / { if (first == "") first = substr($0, 3); next }
	/^# / { last = substr($0, 3); next }
	/^not ok [0-9]+ / {
		name = $0; sub(/^not ok [0-9]+ /, "", name)
		why = first != "" ? first : last
		print name ": " (why != "" ? why : "no diagnostic")
		first = ""; last = ""
	}' "$1"
}

now_ms() { date +%s%3N; }

# Sanitizer run-time options.
san_env() {
	export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}
	# LeakSanitizer needs ptrace-like powers that some containers deny.
	leaks=0
	probe=$(mktemp -d "${TMPDIR:-/tmp}/kipc-lsan.XXXXXX")
	if echo 'int main(void){return 0;}' |
		${CC:-gcc} -x c -fsanitize=address -o "$probe/p" - 2>/dev/null &&
		ASAN_OPTIONS=detect_leaks=1 "$probe/p" >/dev/null 2>&1; then
		leaks=1
	fi
	rm -rf "$probe"
	export ASAN_OPTIONS=detect_leaks=$leaks${ASAN_OPTIONS:+:$ASAN_OPTIONS}
	echo "  SAN     ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS"
}
[ "$SANITIZE" != 1 ] || san_env

srcs() { # glob...: print the files that exist
	local f
	for f in "$@"; do [ -e "$f" ] && printf '%s\n' "$f"; done
}

# ---------------------------------------------------------------------------
# (a) uapi headers

run_uapi() {
	local out p f
	if [ -z "$(srcs uapi/kipc/*.h)" ]; then
		skipped uapi-check "no uapi/kipc/*.h"
		return
	fi
	out=$(tests/uapi-check/run.sh)
	printf '%s\n' "$out" | grep -v '^uapi-check: '
	read -r p f < <(printf '%s\n' "$out" |
		sed -nE 's/^uapi-check: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' | tail -n1)
	result uapi-check "${p:-0}" "${f:-1}"
}

# ---------------------------------------------------------------------------
# (b), (c) unit tests (doctest)

run_doctest() { # suite binary
	local suite=$1 bin=$2 log rc line p f s note=""
	log=$(mktemp "${TMPDIR:-/tmp}/kipc-unit.XXXXXX")
	# shellcheck disable=SC2086
	timeout -k 10 "$TIMEOUT" "$bin" ${KIPC_UNIT_ARGS:-} 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	line=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -a '^\[doctest\] test cases:' | tail -n1)
	rm -f "$log"
	if [ -z "$line" ]; then
		result "$suite" 0 1 0 "no doctest summary, exit status $rc"
		return
	fi
	p=$(sed -nE 's/.*\| *([0-9]+) passed.*/\1/p' <<<"$line")
	f=$(sed -nE 's/.*\| *([0-9]+) failed.*/\1/p' <<<"$line")
	s=$(sed -nE 's/.*\| *([0-9]+) skipped.*/\1/p' <<<"$line")
	p=${p:-0} f=${f:-0} s=${s:-0}
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1 note="exit status $rc"
	fi
	result "$suite" "$p" "$f" "$s" "$note"
}

run_unit() { # [default]: only the default config's
	if [ -z "$(srcs tests/unit/*.cc)" ]; then
		skipped unit "no tests/unit/*.cc"
		return
	fi
	echo "=== unit tests ($O, ${KCONFIG_CONFIG:-.config})"
	if build unit unit; then
		run_doctest unit "$O/tests/unit/kipc-unit"
	fi
	[ "${1:-}" != default ] || return 0

	echo "=== unit tests (configs/tiny_defconfig, $O/tiny)"
	local tiny=(O="$O/tiny" KCONFIG_CONFIG="$O/tiny/.config")
	if build unit-tiny "${tiny[@]}" tiny_defconfig &&
		build unit-tiny "${tiny[@]}" unit; then
		run_doctest unit-tiny "$O/tiny/tests/unit/kipc-unit"
	fi
}

# ---------------------------------------------------------------------------
# (d) selftests (kselftest TAP 13)

# End the kipcd instances started for one run (by the harness or libkipc's
# autostart): those running our binary with our private socket.
reap_kipcd() { # kipcd-path socket [rundir]
	local p exe pid
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		[ "$exe" = "$1" ] || continue
		# Ours: started with our socket in its environment, or (a test's
		# own kernel) serving a socket under our run directory.
		tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qxF "KIPC_SOCKET=$2" ||
			{ [ -n "${3:-}" ] && tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -q "^$3/"; } ||
			continue
		pid=${p#/proc/}
		kill "$pid" 2>/dev/null
		sleep 0.2
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
	done
}

run_selftest() { # suite binary env-args...
	local suite=$1 bin=$2 log rc line p f xf xp s e note="" t0 secs ff
	shift 2
	log=$(mktemp "${TMPDIR:-/tmp}/kipc-check-log.XXXXXX")
	t0=$(now_ms)
	env "$@" timeout -k 10 "$TIMEOUT" "$bin" 2>&1 </dev/null | tee "$log" | as_comments
	rc=${PIPESTATUS[0]}
	secs=$(awk -v ms=$(($(now_ms) - t0)) 'BEGIN { printf "%.1fs", ms / 1000 }')
	line=$(grep -a '^# Totals: ' "$log" | tail -n1)
	while IFS= read -r ff; do
		failures+=("$suite: $ff")
	done < <(first_failures "$log")
	rm -f "$log"
	if [ -z "$line" ]; then
		if [ "$rc" = 4 ]; then # KSFT_SKIP
			result "$suite" 0 0 1 "skipped, $secs"
		else
			result "$suite" 0 1 0 "no Totals line, exit status $rc, $secs"
			failures+=("$suite: no Totals line, exit status $rc")
		fi
		return
	fi
	get() { sed -nE "s/.* $1:([0-9]+).*/\\1/p" <<<"$line"; }
	p=$(get pass) f=$(get fail) xf=$(get xfail) xp=$(get xpass) s=$(get skip) e=$(get error)
	p=$((${p:-0} + ${xf:-0}))
	f=$((${f:-0} + ${xp:-0} + ${e:-0}))
	s=${s:-0}
	if [ "$rc" != 0 ] && [ "$rc" != 4 ] && [ "$f" = 0 ]; then
		f=1 note="exit status $rc"
	fi
	[ "$rc" != 124 ] || note="timed out after ${TIMEOUT}s"
	result "$suite" "$p" "$f" "$s" "${note:+$note, }$secs"
}

run_selftests() { # [outdir [loops [suite-tag [make-args...]]]]
	local out=${1:-$O} loops=${2:-"default epoll"} tag=${3:-}
	local s name rundir kipcd bindir loop envs sfx
	shift 3 2>/dev/null || shift $#
	selftests=()
	for s in $(srcs tests/selftests/*.c tests/selftests/*.cc); do
		name=${s##*/}
		selftests+=("${name%.*}")
	done
	if [ "${#selftests[@]}" = 0 ]; then
		skipped selftests "no tests/selftests/*.c"
		return
	fi
	build "selftests$tag" "$@" selftests || return

	bindir=$(cd "$out" && pwd)/bin
	kipcd=
	[ ! -x "$bindir/kipcd" ] || kipcd=$bindir/kipcd
	if [ "$tap" = 1 ]; then
		local nloops=0
		for loop in $loops; do
			[ "$loop" = epoll ] && [ -z "$kipcd" ] || nloops=$((nloops + 1))
		done
		echo "1..$((${#selftests[@]} * nloops))"
	fi
	for loop in $loops; do
		if [ "$loop" = epoll ] && [ -z "$kipcd" ]; then
			skipped "selftests$tag (KIPC_LOOP=epoll)" "no $out/bin/kipcd"
			break
		fi
		# A private socket per pass: each pass boots its own kernel; the
		# tests' own kernels get their directories in it (TMPDIR).
		rundir=$(mktemp -d "${TMPDIR:-/tmp}/kipc-check.XXXXXX")
		chmod 755 "$rundir" # tests that drop privileges reach their sockets
		envs=(KIPC_SOCKET="$rundir/kipc.sock" KIPCD="$kipcd" KIPC_KIPCD="$kipcd" PATH="$bindir:$PATH"
			TMPDIR="$rundir")
		if [ "$loop" = epoll ]; then
			envs=(KIPC_LOOP=epoll "${envs[@]}")
			say "=== selftests$tag (KIPC_LOOP=epoll)"
		else
			envs=(-u KIPC_LOOP "${envs[@]}")
			say "=== selftests$tag"
		fi
		sfx=
		[ "$loop" = default ] || sfx=" [KIPC_LOOP=$loop]"
		for name in "${selftests[@]}"; do
			run_selftest "selftests$tag/$name$sfx" \
				"$out/tests/selftests/$name" "${envs[@]}"
			[ -z "$kipcd" ] || reap_kipcd "$kipcd" "$rundir/kipc.sock" "$rundir"
		done
		rm -rf "$rundir"
	done
}

# ---------------------------------------------------------------------------
# (e) fuzz: each libFuzzer target for a few seconds from its seed corpus

run_fuzz() {
	local t name secs=${KIPC_FUZZ_SECONDS:-5} out=$O/fuzz work log rc runs
	if [ -z "$(srcs tests/fuzz/*.cc)" ]; then
		skipped fuzz "no tests/fuzz/*.cc"
		return
	fi
	echo "=== fuzz (${secs}s per target, $out)"
	build fuzz "${fuzz_make[@]}" || return
	# The targets run side by side (each is one process: two cores run
	# two), then are reported in order.
	local names=() works=() pids=() i
	for t in tests/fuzz/*.cc; do
		name=${t##*/}
		name=${name%.cc}
		work=$(mktemp -d "${TMPDIR:-/tmp}/kipc-fuzz.XXXXXX")
		[ ! -d "tests/fuzz/corpus/$name" ] || cp -r "tests/fuzz/corpus/$name/." "$work/"
		timeout -k 10 $((secs + 60)) "$out/fuzz-bin/$name" -max_total_time="$secs" \
			-print_final_stats=1 -artifact_prefix="$out/$name-" "$work" >"$work.log" 2>&1 &
		names+=("$name") works+=("$work") pids+=($!)
	done
	for i in "${!names[@]}"; do
		name=${names[$i]} work=${works[$i]} log=${works[$i]}.log
		wait "${pids[$i]}"
		rc=$?
		runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
		if [ "$rc" = 0 ]; then
			result "fuzz/$name" 1 0 0 "${runs:-?} runs"
		else
			grep -aE 'ERROR|runtime error|fuzz:|SUMMARY|Test unit written' "$log" | head -n 20
			result "fuzz/$name" 0 1 0 "exit status $rc, input in $out/$name-*"
		fi
		rm -rf "$work" "$log"
	done
}

# ---------------------------------------------------------------------------
# (f) the ASan+UBSan build of the unit tests and selftests (io_uring loop)

run_san() {
	local out=$O/san
	if [ "$SANITIZE" = 1 ]; then
		skipped san "this build is the sanitizer build"
		return
	fi
	echo "=== sanitizers (ASan+UBSan, $out)"
	( san_env >/dev/null; export UBSAN_OPTIONS ASAN_OPTIONS
	  SANITIZE=1 O=$out
	  # The unit tests under the tiny configuration, the one build of
	  # them this pass and the plain one do not already make (the
	  # default configuration's run in the plain build's unit pass).
	  echo "=== unit tests (configs/tiny_defconfig, ASan+UBSan, $out/tiny)"
	  if build unit-tiny-san "${san_tiny_make[@]}" tiny_defconfig &&
		build unit-tiny-san "${san_tiny_make[@]}" unit; then
		run_doctest unit-tiny-san "$out/tiny/tests/unit/kipc-unit"
	  fi
	  run_selftests "$out" default "-san" "${san_make[@]}"
	  echo "san-totals: $total_pass $total_fail $total_skip" ) | tee "$O/.san.log"
	local p f sk
	read -r p f sk < <(sed -nE 's/^san-totals: ([0-9]+) ([0-9]+) ([0-9]+)$/\1 \2 \3/p' "$O/.san.log")
	rm -f "$O/.san.log"
	# The subshell counted on top of what we had: take its totals.
	total_pass=${p:-$total_pass}
	total_fail=${f:-$((total_fail + 1))}
	total_skip=${sk:-$total_skip}
}

# ---------------------------------------------------------------------------
# (g) ThreadSanitizer: libkipc's multi-threaded selftests against the
# regular kipcd

run_tsan() {
	local out=$O/tsan name rundir kipcd targets=("${tsan_targets[@]}")
	if [ "${#targets[@]}" = 0 ]; then
		skipped tsan "no threaded selftests"
		return
	fi
	echo "=== ThreadSanitizer ($out)"
	build tsan O="$O" SANITIZE= kipcd || return
	build tsan "${tsan_make[@]}" || return
	kipcd=$(cd "$O" && pwd)/bin/kipcd
	rundir=$(mktemp -d "${TMPDIR:-/tmp}/kipc-tsan.XXXXXX")
	for name in "${targets[@]}"; do
		run_selftest "selftests-tsan/$name" "$out/tests/selftests/$name" \
			-u KIPC_LOOP KIPC_SOCKET="$rundir/kipc.sock" KIPCD="$kipcd" \
			TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1"
		reap_kipcd "$kipcd" "$rundir/kipc.sock"
	done
	rm -rf "$rundir"
}

# ---------------------------------------------------------------------------
# (h) chaos: tools/kipc-stress, short

run_stress() {
	local secs=${KIPC_STRESS_SECONDS:-20} rundir kipcd log rc line
	if [ ! -d tools/kipc-stress ]; then
		skipped stress "no tools/kipc-stress"
		return
	fi
	echo "=== stress (${secs}s)"
	build stress "$O/bin/kipc-stress" kipcd || return
	kipcd=$(cd "$O" && pwd)/bin/kipcd
	rundir=$(mktemp -d "${TMPDIR:-/tmp}/kipc-stress.XXXXXX")
	log=$rundir/log
	# Sanitizer build: ASan's quarantine keeps freed memory resident on
	# purpose; keep it small so kipcd's memory bound still means something.
	[ "$SANITIZE" != 1 ] ||
		export ASAN_OPTIONS=quarantine_size_mb=4${ASAN_OPTIONS:+:$ASAN_OPTIONS}
	env -u KIPC_LOOP KIPC_SOCKET="$rundir/kipc.sock" KIPCD="$kipcd" \
		timeout -k 10 $((secs * 3 + 60)) "$O/bin/kipc-stress" --seconds "$secs" \
		2>&1 </dev/null | tee "$log"
	rc=${PIPESTATUS[0]}
	reap_kipcd "$kipcd" "$rundir/kipc.sock"
	line=$(grep -a '^kipc-stress: ' "$log" | tail -n1)
	if [ "$rc" = 0 ]; then
		result stress 1 0 0 "${line#kipc-stress: }"
	else
		result stress 0 1 0 "exit status $rc"
	fi
	rm -rf "$rundir"
}

# ---------------------------------------------------------------------------
# (p) POSIX and System V message queues: each tests/posix/*.c natively and
# under kipc-run, transcripts diffed (tests/posix/run.sh)

run_posix() {
	local log p f
	if [ -z "$(srcs tests/posix/*.c)" ]; then
		skipped posix "no tests/posix/*.c"
		return
	fi
	echo "=== posix (native vs kipc-run)"
	log=$(mktemp "${TMPDIR:-/tmp}/kipc-posix.XXXXXX")
	# Sanitizer build: kipc-run preloads an ASan library ahead of the
	# test's own ASan runtime; tell ASan that this order is intended.
	[ "$SANITIZE" != 1 ] ||
		export ASAN_OPTIONS=verify_asan_link_order=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
	tests/posix/run.sh "$O" 2>&1 | tee "$log"
	read -r p f < <(sed -nE 's/^posix: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$log" | tail -n1)
	rm -f "$log"
	result posix "${p:-0}" "${f:-1}"
}

# ---------------------------------------------------------------------------
# (c2) first contact: autostart, refused boots, kipcd --status/--stop,
# make install + pkg-config + the installed kipc-run (tests/contact/run.sh)

run_contact() {
	local log p f
	if [ ! -x tests/contact/run.sh ]; then
		skipped contact "no tests/contact/run.sh"
		return
	fi
	echo "=== contact (autostart, kipcd --status/--stop, make install)"
	log=$(mktemp "${TMPDIR:-/tmp}/kipc-contact.XXXXXX")
	MAKE=$MAKE tests/contact/run.sh "$O" 2>&1 | tee "$log"
	read -r p f < <(sed -nE 's/^contact: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$log" | tail -n1)
	rm -f "$log"
	result contact "${p:-0}" "${f:-1}"
}

# ---------------------------------------------------------------------------
# (k) kipc(1) and kipc-top (in tmux) against private kernels (tests/shell/*.sh:
# "ok"/"not ok" lines, then "<name>: P passed, F failed")

run_shell() {
	local t log p f
	if [ -z "$(srcs tests/shell/*.sh)" ]; then
		skipped shell "no tests/shell/*.sh"
		return
	fi
	echo "=== shell (kipc)"
	build shell "$O/bin/kipc" "$O/bin/kipcs" "$O/bin/kipc-top" kipcd || return
	for t in tests/shell/*.sh; do
		log=$(mktemp "${TMPDIR:-/tmp}/kipc-shell.XXXXXX")
		env -u KIPC_LOOP timeout -k 10 "$TIMEOUT" "$t" "$O" 2>&1 </dev/null | tee "$log"
		read -r p f < <(sed -nE 's/^[a-z-]+: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$log" | tail -n1)
		rm -f "$log"
		result "shell/${t##*/}" "${p:-0}" "${f:-1}"
	done
}

# ---------------------------------------------------------------------------
# (r) every sample against one kernel, outputs checked against
# samples/expected/*.out with times masked (scripts/run-samples.sh)

run_samples() {
	local log p f
	if [ -z "$(srcs samples/*.c)" ]; then
		skipped samples "no samples/*.c"
		return
	fi
	echo "=== samples"
	build samples samples kipcd || return
	log=$(mktemp "${TMPDIR:-/tmp}/kipc-samples.XXXXXX")
	env -u KIPC_LOOP scripts/run-samples.sh "$O" 2>&1 </dev/null | tee "$log"
	read -r p f < <(sed -nE 's/^run-samples: ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/p' "$log" | tail -n1)
	rm -f "$log"
	result samples "${p:-0}" "${f:-1}"
}

# ---------------------------------------------------------------------------
# (y) the Python module (python/kipc) with pytest, against a private kernel
# booted by python/tests/conftest.py

run_python() {
	local py=/usr/bin/python3 log p f
	if [ -z "$(srcs python/tests/test_*.py)" ]; then
		skipped python "no python/tests"
		return
	fi
	# Debian's python3-pytest (scripts/install-deps) belongs to /usr/bin/python3.
	[ -x "$py" ] || py=python3
	if ! "$py" -c 'import pytest' 2>/dev/null; then
		skipped python "no pytest for $py (scripts/install-deps installs python3-pytest)"
		return
	fi
	echo "=== python (pytest)"
	build python "$O/lib/libkipc.so" "$O/samples/producer_consumer" kipcd || return
	log=$(mktemp "${TMPDIR:-/tmp}/kipc-pytest.XXXXXX")
	env -u KIPC_LOOP KIPC_LIBKIPC="$(cd "$O/lib" && pwd)/libkipc.so.1" \
		KIPC_KIPCD="$(cd "$O/bin" && pwd)/kipcd" PYTHONDONTWRITEBYTECODE=1 \
		timeout -k 10 "$TIMEOUT" "$py" -m pytest -q -rs -p no:cacheprovider python/tests \
		2>&1 </dev/null | tee "$log"
	# pytest's last line: "16 passed, 1 skipped in 1.5s", "1 failed, 15 passed in ..."
	p=$(tail -n1 "$log" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
	f=$(tail -n1 "$log" | grep -oE '[0-9]+ (failed|errors?)' | awk '{s += $1} END {print s + 0}')
	rm -f "$log"
	result python "${p:-0}" "${f:-$([ -n "$p" ] && echo 0 || echo 1)}"
}

# ---------------------------------------------------------------------------
# (c3) the documentation's examples (scripts/doc-examples)

run_docs() {
	local log p f
	if [ ! -x scripts/doc-examples ]; then
		skipped doc-examples "no scripts/doc-examples"
		return
	fi
	echo "=== doc-examples (README.md, Documentation/*.md)"
	log=$(mktemp "${TMPDIR:-/tmp}/kipc-docs.XXXXXX")
	scripts/doc-examples "$O" 2>&1 | tee "$log"
	read -r p f < <(sed -nE 's/^doc-examples: ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/p' "$log" | tail -n1)
	rm -f "$log"
	result doc-examples "${p:-0}" "${f:-1}"
}

# ---------------------------------------------------------------------------
# (n) the cross-node suite (tests/net, Documentation/network.md): a NATS
# server and three kipcd nodes per run. quick: the tests that take
# milliseconds (make check); full: all of them, both loops (make netcheck).

run_net() { # quick|full
	local mode=$1 bin=$O/tests/net/net_test loop rundir envs sfx p
	local kipcd=$srctree/$O/bin/kipcd
	# The protocol in process (no NATS, milliseconds): both modes.
	[ ! -x "$O/tests/net/net_unit" ] || run_doctest net-unit "$O/tests/net/net_unit"
	if ! command -v nats-server >/dev/null 2>&1; then
		skipped net "no nats-server (scripts/install-deps installs it)"
		return
	fi
	if [ ! -x "$bin" ]; then
		skipped net "no $bin (CONFIG_NET=n)"
		return
	fi
	for loop in default epoll; do
		[ "$mode" = full ] || [ "$loop" = default ] || continue
		rundir=$(mktemp -d "${TMPDIR:-/tmp}/kipc-check.XXXXXX")
		chmod 755 "$rundir"
		envs=(KIPCD="$kipcd" KIPC_KIPCD="$kipcd" TMPDIR="$rundir")
		[ "$mode" = full ] || envs+=(KIPC_NET_QUICK=1)
		sfx=
		if [ "$loop" = epoll ]; then
			envs=(KIPC_LOOP=epoll "${envs[@]}")
			sfx=" [KIPC_LOOP=epoll]"
		else
			envs=(-u KIPC_LOOP "${envs[@]}")
		fi
		run_selftest "net$sfx" "$bin" "${envs[@]}"
		# Whatever a crashed run left: its kipcds and its nats-server.
		reap_kipcd "$kipcd" "$rundir/none" "$rundir"
		for p in $(pgrep -x nats-server 2>/dev/null); do
			tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -q "^$rundir/" &&
				kill -9 "$p" 2>/dev/null
		done
		rm -rf "$rundir"
	done
}

# ---------------------------------------------------------------------------

# `all`: the hardening passes' builds (ASan+UBSan, fuzz, TSan) start in
# the background at the lowest CPU priority once the plain build is done,
# while the plain build's suites run: those mostly wait (for kernels,
# timeouts, children), and the builds take the CPU they leave. The
# output goes to a log nobody reads: each pass runs its own make before
# it runs (nothing left to do, or the error, shown there). Own job slots
# (the tests' makes keep theirs); wait_ahead before those passes.
ahead_pid=
build_ahead() {
	local m=(env -u MAKEFLAGS -u MFLAGS nice -n 19 $MAKE -j"$(nproc)" -C "$srctree")
	( exec </dev/null >"$checktmp/ahead.log" 2>&1
	  "${m[@]}" "${san_tiny_make[@]}" tiny_defconfig &&
		"${m[@]}" "${san_tiny_make[@]}" unit
	  "${m[@]}" "${san_make[@]}"
	  "${m[@]}" "${fuzz_make[@]}"
	  [ "${#tsan_targets[@]}" = 0 ] || "${m[@]}" "${tsan_make[@]}" ) &
	ahead_pid=$!
}
wait_ahead() {
	[ -z "$ahead_pid" ] || wait "$ahead_pid"
	ahead_pid=
}

# Run one pass and say how long it took (make check must stay fast).
timed() {
	local t0=$SECONDS
	"$@"
	echo "=== ${1#run_}: $((SECONDS - t0))s"
}

# Every process a pass starts inherits KIPC_CHECK_RUN; one still running
# when the passes are done was left behind by a test (a kernel nobody
# stopped, a server): a failure, and it is killed, so that it cannot hold
# our output open (CI waits for that) or the next run's sockets.
# A test that runs a program with a clean environment (env -i) still
# puts its files under our TMPDIR: a process whose command line names it
# is ours too.
export KIPC_CHECK_RUN="$$.$(now_ms)"
checktmp=
if [ "$what" = all ]; then
	checktmp=$(mktemp -d "${TMPDIR:-/tmp}/kipc-check-run.XXXXXX") || exit 1
	chmod 755 "$checktmp" # tests that drop privileges reach their sockets
	export TMPDIR=$checktmp
fi
run_leftovers() {
	local p pid left=0
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[ "$pid" != $$ ] && [ "$pid" != "$BASHPID" ] || continue
		tr '\0' '\n' 2>/dev/null <"$p/environ" |
			grep -qxF "KIPC_CHECK_RUN=$KIPC_CHECK_RUN" ||
			{ [ -n "$checktmp" ] && tr '\0' '\n' 2>/dev/null <"$p/cmdline" |
				grep -qF "$checktmp/"; } || continue
		# Our own pipeline (tee, sed) is still ours: only orphans.
		[ "$(awk '{print $4}' "$p/stat" 2>/dev/null)" = 1 ] || continue
		say "left running: $pid $(tr '\0' ' ' 2>/dev/null <"$p/cmdline")"
		kill -9 "$pid" 2>/dev/null
		left=$((left + 1))
	done
	if [ "$left" = 0 ]; then
		result leftovers 1 0
	else
		result leftovers 0 1 0 "$left processes left running by the tests, killed"
		failures+=("leftovers: $left processes left running (listed above)")
	fi
}

build_failed=0
[ "$tap" = 0 ] || echo "TAP version 13"
case "$what" in
all)
	echo "=== build ($O)"
	t0=$SECONDS
	build build all || build_failed=1
	echo "=== build: $((SECONDS - t0))s"
	[ "$build_failed" = 1 ] || [ "$SANITIZE" = 1 ] || build_ahead
	timed run_uapi
	# The default config's unit tests are those `all` built; the tiny
	# config's run in the sanitizer pass (run_san builds them with
	# ASan+UBSan): one build of the unit tests per configuration.
	if [ "$SANITIZE" = 1 ]; then timed run_unit; else timed run_unit default; fi
	timed run_selftests
	timed run_net quick
	timed run_contact
	timed run_docs
	timed run_posix
	timed run_shell
	timed run_samples
	timed run_python
	timed wait_ahead
	timed run_fuzz
	timed run_san
	timed run_tsan
	timed run_stress
	run_leftovers
	rm -rf "$checktmp"
	;;
selftests) run_selftests ;;
fuzz)      run_fuzz ;;
san)       run_san ;;
tsan)      run_tsan ;;
stress)    run_stress ;;
uapi)      run_uapi ;;
unit)      run_unit ;;
posix)     run_posix ;;
contact)   run_contact ;;
shell)     run_shell ;;
python)    run_python ;;
samples)   run_samples ;;
docs)      run_docs ;;
netcheck)  build netcheck all && run_net full ;;
esac

if [ "${#failures[@]}" != 0 ]; then
	say "Failed (with the first failing assertion):"
	for f in "${failures[@]}"; do say "  $f"; done
fi
[ "$total_skip" = 0 ] || say "($total_skip skipped)"
say "$label: $total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ] && [ "$build_failed" = 0 ]
