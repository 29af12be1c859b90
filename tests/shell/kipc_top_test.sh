#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/shell/kipc_top_test.sh - kipc-top in a tmux pane against a private
# kernel and a scripted workload (a full mailbox with a blocked sender, a
# blocked receiver, a send to trace): checks the captured screen, then
# drives the keys (filter, drill-down into a mailbox and a task, back,
# quit).
#
# usage: tests/shell/kipc_top_test.sh [O]
# Ends with "kipc-top: P passed, F failed"; exits non-zero iff F > 0.
set -uo pipefail

O=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
bindir=$(cd "$O/bin" && pwd) || exit 1
K=$bindir/kipc
pass=0 fail=0 n=0
if ! command -v tmux >/dev/null; then
	echo "ok 1 - # SKIP tmux is not installed (scripts/install-deps installs it)"
	echo "kipc-top: 0 passed, 0 failed"
	exit 0
fi
rundir=$(mktemp -d "${TMPDIR:-/tmp}/kipc-top.XXXXXX") || exit 1
export KIPC_SOCKET=$rundir/kipcd.sock KIPC_AUTOSTART=0
T=(tmux -L "kipc-top-test-$$" -f /dev/null)
kpid=

cleanup() {
	"${T[@]}" kill-server 2>/dev/null
	jobs -p | xargs -r kill 2>/dev/null
	[ -z "$kpid" ] || { kill "$kpid" 2>/dev/null; wait "$kpid" 2>/dev/null; }
	rm -rf "$rundir"
}
trap cleanup EXIT

ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; }
screen() { "${T[@]}" capture-pane -p -t top 2>/dev/null; }

# see NAME REGEX: until the screen shows REGEX (10 s at most)
see() {
	local i
	for i in $(seq 1 500); do
		if screen | grep -qE -- "$2"; then
			ok "$1"
			return 0
		fi
		sleep 0.02
	done
	not_ok "$1"
	echo "#   /$2/ not on the screen:"
	screen | sed 's/^/#   | /'
	return 1
}

# unseen NAME REGEX: REGEX gone from the screen (10 s at most)
unseen() {
	local i
	for i in $(seq 1 500); do
		if ! screen | grep -qE -- "$2"; then
			ok "$1"
			return 0
		fi
		sleep 0.02
	done
	not_ok "$1"
	screen | sed 's/^/#   | /'
}

"$bindir/kipcd" --foreground --quiet --socket "$KIPC_SOCKET" 2>"$rundir/kipcd.log" &
kpid=$!
for _ in $(seq 1 500); do "$K" kernel status >/dev/null 2>&1 && break; sleep 0.02; done

# The workload: a full mailbox with a sender blocked on it, a receiver
# blocked on an empty one.
full=$("$K" mbox create /full --capacity 4)
"$K" send /full item --count 4
"$K" send /full one-too-many &
sender=$!
"$K" mbox create /empty >/dev/null
"$K" recv /empty &
receiver=$!

"${T[@]}" new-session -d -s top -x 200 -y 50 \
	"env KIPC_SOCKET='$KIPC_SOCKET' '$bindir/kipc-top' -d 0.2; sleep 30"
see "header: the kernel's socket and counts" "^kipc-top +$KIPC_SOCKET +up .* tasks [0-9]+ +mailboxes 2 "
see "the full mailbox as a bar of its slots" "^$full +/full .*\[####  +\] 4/4 "
see "its blocked sender, with how long" "/full .* S:$sender [0-9.]+(us|ms|s)"
see "the empty mailbox's blocked receiver" "/empty .*\[\.\.\.\.\.\.\.\.\.\.  +\] 0/10 .* R:$receiver "
see "the blocked tasks' queues" "^taskq +pid:$sender kipc "
see "your usage against the quotas" "^user [a-z0-9]+: mailboxes \[[#.]+\] 2/[0-9]+ +bytes \[[#.]+\] "

traced=$("$K" mbox create /traced)
"$K" send /traced hello
see "the live trace pane shows the send" "kipc-[0-9]+ +send +mbox=$traced seq=[0-9]+ len=5"

"${T[@]}" send-keys -t top / full Enter
see "filter: the footer names it" "/ filter \('full'\)"
unseen "filter: other mailboxes are gone" "^[0-9]+ +/empty "
"${T[@]}" send-keys -t top Enter
see "drill-down into the mailbox" "^Mailbox $full /full +\(Esc: back\)"
see "drill-down: the blocked sender and its syscall" "^$sender +sender +mbox_send "
see "drill-down: the queued message headers" "^[0-9]+ +[0-9]+ +4 +0 +0 "
screen >"$rundir/mbox.screen"
"${T[@]}" send-keys -t top Escape
see "Esc: back to the table" "^ID +NAME +USER"

"${T[@]}" send-keys -t top / C-u
"${T[@]}" send-keys -t top BSpace BSpace BSpace BSpace "pid:$sender" Enter
see "filter on the sender's task queue" "^taskq +pid:$sender "
"${T[@]}" send-keys -t top Enter
see "drill-down into a task: what it is blocked in" "^blocked in mbox_send on mailbox $full for "
screen >"$rundir/task.screen"

"${T[@]}" send-keys -t top Escape q
unseen "q quits (the pane runs sleep after it)" "^kipc-top +/"
kill "$sender" "$receiver" 2>/dev/null
wait "$sender" "$receiver" 2>/dev/null

[ -z "${KIPC_TOP_SCREENS:-}" ] || cat "$rundir/mbox.screen" "$rundir/task.screen"
echo "kipc-top: $pass passed, $fail failed"
[ "$fail" = 0 ]
