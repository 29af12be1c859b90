# SPDX-License-Identifier: MIT
"""The syscall names by number, read from uapi/kipc/syscalls.h: the one
table the kernel's dispatch, the KIPC_SYS_* numbers and the C tools'
names are generated from (its rows are X(number, name, family)). The
header is the copy `make install` puts next to this package, else the
source tree's (this package in python/kipc/). Private to the kipc package.
"""
import os
import re

_ROW = re.compile(r"\bX\((\d+),\s*(\w+),\s*\w+\)")


def header():
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.path.join(here, "syscalls.h"),
                 os.path.join(here, "..", "..", "uapi", "kipc", "syscalls.h")):
        if os.path.exists(path):
            return path
    raise ImportError("kipc: syscalls.h is neither next to the package nor in its source tree")


def load(path):
    """{number: name} of the header at path."""
    with open(path) as f:
        rows = {int(nr): name for nr, name in _ROW.findall(f.read())}
    if not rows:
        raise ImportError(f"kipc: no syscall rows in {path}")
    return rows


SYSCALLS = load(header())
