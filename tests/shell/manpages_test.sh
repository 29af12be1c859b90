#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/shell/manpages_test.sh - the section 3 man pages against the code
# and the error documentation:
#  - every function declared in uapi/kipc/libkipc.h is in the SYNOPSIS of
#    one page of Documentation/man/*.3, and named in its NAME line;
#  - for every syscall wrapped by a page's functions (kipc_<call>), each
#    errno that Documentation/syscalls.md lists for the call is in the
#    page's ERRORS;
#  - every errno a page lists is in Documentation/errors.md.
# usage: tests/shell/manpages_test.sh [O]   (O unused: no build needed)
# Ends with "manpages: P passed, F failed".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
exec python3 - <<'PY'
import glob, re, sys
hdr = open("uapi/kipc/libkipc.h").read()
funcs = sorted(set(re.findall(r'^(?:static inline )?[a-z_0-9 ]+?\**\s*\b(kipc_[a-z_0-9]+)\(', hdr, re.M)))
pages = {}
for p in sorted(glob.glob("Documentation/man/*.3")):
    t = open(p).read()
    syn = t.split(".SH SYNOPSIS")[1].split(".SH DESCRIPTION")[0]
    name = t.split(".SH NAME")[1].split(".SH")[0]
    errs = t.split(".SH ERRORS")[1].split(".SH")[0] if ".SH ERRORS" in t else ""
    pages[p] = (set(re.findall(r'(kipc_[a-z_0-9]+)\(', syn)), name, set(re.findall(r'^\.B (E[A-Z0-9]+)$', errs, re.M)))
sysmd = open("Documentation/syscalls.md").read().split("### Errors per call")[1].split("### Order of checks")[0]
percall = {}
for line in sysmd.splitlines():
    m = re.match(r'^\| (`[a-z_]+`(?:, `[a-z_]+`)*) \| (.*) \|$', line)
    if not m:
        continue
    errs = re.findall(r'`(E[A-Z0-9]+)`', m.group(2))
    if 'as `mbox_receive`' in m.group(2): errs = percall['mbox_receive']
    if 'as `call`' in m.group(2): errs = percall['call'] + errs
    for n in re.findall(r'`([a-z_]+)`', m.group(1)):
        percall[n] = errs
errmd = set(re.findall(r'`(E[A-Z0-9]+)`', open("Documentation/errors.md").read()))
n = fails = 0
def check(ok, what, detail=""):
    global n, fails
    n += 1
    if ok:
        print(f"ok {n} - {what}")
    else:
        fails += 1
        print(f"not ok {n} - {what}" + (f"\n#   {detail}" if detail else ""))
for f in funcs:
    where = [p for p, (syn, name, _) in pages.items() if f in syn]
    check(len(where) == 1 and re.search(r'\b%s\b' % f, pages[where[0]][1]) is not None,
          f"{f} has a man page", f"in the SYNOPSIS of: {where}")
for p, (syn, name, errs) in pages.items():
    for f in sorted(syn):
        for x in (f[5:], f[5:].removesuffix("_x").removesuffix("_timed")):
            if x in percall:
                missing = [e for e in percall[x] if e not in errs]
                check(not missing, f"{p}: the errors of {x} (syscalls.md)", f"missing: {missing}")
                break
    unknown = sorted(e for e in errs if e not in errmd)
    check(not unknown, f"{p}: every errno listed is in errors.md", f"not in errors.md: {unknown}")
print(f"manpages: {n - fails} passed, {fails} failed")
sys.exit(1 if fails else 0)
PY
