# SPDX-License-Identifier: MIT
"""pytest fixtures of the kipc module's tests: a private kernel for the
session (kipcd from $KIPC_KIPCD, else build/bin/kipcd of the tree) on a
socket in a fresh directory; KIPC_AUTOSTART=0 so nothing starts another."""
import os
import subprocess
import sys
import tempfile
import time

import pytest

TREE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TREE, "python"))

_dir = tempfile.mkdtemp(prefix="kipc-pytest.")
os.chmod(_dir, 0o755)  # tests that drop to another uid reach the socket
SOCKET = os.path.join(_dir, "kipcd.sock")
os.environ["KIPC_SOCKET"] = SOCKET
os.environ["KIPC_AUTOSTART"] = "0"


@pytest.fixture(scope="session", autouse=True)
def kernel():
    kipcd = os.environ.get("KIPC_KIPCD") or os.path.join(TREE, "build", "bin", "kipcd")
    log = open(os.path.join(_dir, "kipcd.log"), "w")
    p = subprocess.Popen([kipcd, "--foreground", "--socket", SOCKET], stderr=log,
                         stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:  # wait for the state: the log says it listens
        with open(os.path.join(_dir, "kipcd.log")) as f:
            if "listening on" in f.read():
                break
        if p.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("kipcd did not start: " + open(log.name).read())
        time.sleep(0.01)
    yield SOCKET
    p.terminate()
    p.wait(10)
    log.close()
