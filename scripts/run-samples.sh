#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scripts/run-samples.sh - run every sample program against one kernel.
#
# usage: scripts/run-samples.sh [O [PARAM=VALUE...]]
#   O      the build output directory (default: build); the samples are
#          $O/samples/*, the kernel is $O/bin/kipcd (or $KIPC_KIPCD).
#   PARAM  boot parameters passed to kipcd (e.g. msg_max=64).
#
# Boots one kipcd in the foreground (in the background of this script)
# on a socket in a fresh temporary directory, waits until it accepts,
# runs each sample with KIPC_SOCKET pointing at it (KIPC_AUTOSTART=0, so
# a sample never starts a kernel of its own), printing a header line per
# sample, then stops the kernel with SIGTERM. Each sample gets
# KIPC_SAMPLE_TIMEOUT seconds (default 30). Environment KIPC_LOOP picks
# the kernel's event loop.
#
# A sample with an expected output, samples/expected/<name>.out, must also
# print exactly that once the varying parts are masked (see mask below:
# durations, mailbox ids, pids); checked only without boot parameters
# (they change limits that samples print).
#
# Exits 0 only if every sample exited 0 and printed what it should (and
# the kernel exited cleanly).
set -uo pipefail

O=${1:-build}
O=${O%/}
shift || true
params=("$@")
cd "$(dirname "$0")/.." || exit 1

kipcd=${KIPC_KIPCD:-$O/bin/kipcd}
timeout_s=${KIPC_SAMPLE_TIMEOUT:-30}

if [ ! -x "$kipcd" ]; then
	echo "run-samples: no kernel at $kipcd (build it with make)" >&2
	exit 1
fi
shopt -s nullglob
samples=("$O"/samples/*)
if [ "${#samples[@]}" = 0 ]; then
	echo "run-samples: no samples in $O/samples (build them with make)" >&2
	exit 1
fi

rundir=$(mktemp -d "${TMPDIR:-/tmp}/kipc-samples.XXXXXX") || exit 1
sock=$rundir/kipcd.sock
log=$rundir/kipcd.log
kpid=

cleanup() {
	if [ -n "$kpid" ] && kill -0 "$kpid" 2>/dev/null; then
		kill -TERM "$kpid" 2>/dev/null
		wait "$kpid" 2>/dev/null
	fi
	rm -rf "$rundir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

loop_arg=()
[ -z "${KIPC_LOOP:-}" ] || loop_arg=(--loop="$KIPC_LOOP")
"$kipcd" --foreground --socket "$sock" "${loop_arg[@]}" "${params[@]}" 2>"$log" &
kpid=$!

# Wait (bounded) until the socket accepts a connection.
ready=0
for _ in $(seq 1 500); do
	if ! kill -0 "$kpid" 2>/dev/null; then
		break
	fi
	# kipcd logs "listening on" after listen(2): from then on connects
	# succeed (they queue until the loop accepts them).
	if [ -S "$sock" ] && grep -q 'listening on' "$log"; then
		ready=1
		break
	fi
	sleep 0.02
done
if [ "$ready" != 1 ]; then
	echo "run-samples: kipcd did not start:" >&2
	sed 's/^/  kipcd: /' "$log" >&2
	exit 1
fi
sed -n 's/^\[ *[0-9.]*\] /  kipcd: /p' "$log" | grep -E 'event loop|listening' || true

# What varies from run to run: durations (300 ms, 1.5s), mailbox ids,
# pids (as samples print them: "2801 sent", "/rpc-sample-2810").
mask() {
	sed -E -e 's/[0-9]+(\.[0-9]+)? ?(ns|us|ms|s)\b/<time>/g' \
		-e 's/mailbox [0-9]+/mailbox <id>/g' \
		-e 's/\b[0-9]+ (sent|answered|asked)\b/<pid> \1/g' \
		-e 's|(/[a-z-]+)-[0-9]+\b|\1-<pid>|g'
}

export KIPC_SOCKET=$sock KIPC_AUTOSTART=0
passed=0
failed=()
for s in "${samples[@]}"; do
	[ -x "$s" ] && [ -f "$s" ] || continue
	name=${s##*/}
	echo "==== $name"
	expected=samples/expected/$name.out
	timeout -k 5 "$timeout_s" "$s" </dev/null | tee "$rundir/out"
	rc=${PIPESTATUS[0]}
	if [ "$rc" = 0 ] && [ -f "$expected" ] && [ "${#params[@]}" = 0 ] &&
		! mask <"$rundir/out" | diff -u "$expected" - >"$rundir/diff"; then
		failed+=("$name")
		echo "---- $name: FAILED (output differs from $expected, masked):"
		sed 's/^/  /' "$rundir/diff"
	elif [ "$rc" = 0 ]; then
		passed=$((passed + 1))
		echo "---- $name: ok"
	else
		failed+=("$name")
		echo "---- $name: FAILED (exit status $rc)"
	fi
done

kill -TERM "$kpid"
kst=0
wait "$kpid" || kst=$?
kpid=
if [ "$kst" != 0 ]; then
	echo "run-samples: kipcd exited with status $kst" >&2
	sed 's/^/  kipcd: /' "$log" >&2
fi

echo "run-samples: ${passed} passed, ${#failed[@]} failed${failed:+ (${failed[*]})}"
[ "${#failed[@]}" = 0 ] && [ "$kst" = 0 ]
