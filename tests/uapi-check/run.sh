#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/uapi-check/run.sh - the uapi headers must stand alone in C and C++.
#
# Each uapi/kipc/*.h is compiled alone (included twice, to check its guard)
# as C11 and as C++20 with -pedantic -Werror: one check per header and
# language. Then abi.c and abi.cc are compiled with every header included
# and static_assert the sizes of the ring entries: one check each.
#
# Run from the source tree root. Prints one line per failure (with the
# compiler's output) and ends with "uapi-check: N passed, M failed".
# Exit status is 1 if anything failed.
set -uo pipefail

CC=${CC:-gcc}
CXX=${CXX:-g++}
here=$(dirname "$0")
warn=(-Wall -Wextra -Werror -pedantic -fsyntax-only -Iuapi)
pass=0 fail=0

try() { # label, compiler args...
	local label=$1 out
	shift
	if out=$("$@" 2>&1); then
		pass=$((pass + 1))
		[ "${V:-0}" != 1 ] || echo "  ok      $label"
	else
		fail=$((fail + 1))
		echo "  FAIL    $label"
		printf '%s\n' "$out" | sed 's/^/	/'
	fi
}

headers=()
for h in uapi/kipc/*.h; do
	[ -f "$h" ] || continue
	headers+=("$h")
	inc="kipc/${h#uapi/kipc/}"
	src=$(printf '#include <%s>\n#include <%s>\n' "$inc" "$inc")
	try "c11    $inc" "$CC" -x c -std=c11 "${warn[@]}" - <<<"$src"
	try "c++20  $inc" "$CXX" -x c++ -std=c++20 "${warn[@]}" - <<<"$src"
done

if [ "${#headers[@]}" != 0 ]; then
	incs=()
	for h in "${headers[@]}"; do incs+=(-include "$h"); done
	try "c11    abi.c (all headers)" "$CC" -std=c11 "${warn[@]}" "${incs[@]}" "$here/abi.c"
	try "c++20  abi.cc (all headers)" "$CXX" -std=c++20 "${warn[@]}" "${incs[@]}" "$here/abi.cc"
fi

echo "uapi-check: $pass passed, $fail failed"
[ "$fail" = 0 ]
