# SPDX-License-Identifier: MIT
"""The kipc Python module against a real kernel (conftest.py boots one)."""
import dataclasses
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

import kipc
from kipc import _lib

TREE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def wait_for(pred, seconds=10):
    """Until pred() holds (the state we wait for), at most `seconds`."""
    deadline = time.monotonic() + seconds
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("state not reached")
        time.sleep(0.005)


def child(fn):
    """Run fn() in a forked child (a new task); returns its pid. The child
    exits 0 if fn returned, 1 if it raised."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        except BaseException as e:  # report, never return into pytest
            print(f"child: {e!r}", file=sys.stderr)
        finally:
            os._exit(code)
    return pid


def join(pid):
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_round_trip_from_the_issue():
    m = kipc.Mailbox.create("/q", capacity=4)
    m.send(b"hi")
    assert m.recv(timeout=1) == b"hi"
    m.destroy()


def test_context_manager_destroys_what_it_created():
    with kipc.Mailbox.create("/ctx") as m:
        m.send("text is utf-8")
        assert m.recv() == b"text is utf-8"
    with pytest.raises(FileNotFoundError):
        kipc.Mailbox.open("/ctx")
    # An opened mailbox is not destroyed by the block that opened it.
    keep = kipc.Mailbox.create("/keep")
    with kipc.Mailbox.open("/keep") as again:
        assert again == keep
    assert kipc.Mailbox.open("/keep").id == keep.id
    keep.destroy()


def test_full_mailbox_blocking_io_error():
    with kipc.Mailbox.create(capacity=2) as m:
        m.send(b"1")
        m.send(b"2")
        with pytest.raises(BlockingIOError) as e:
            m.send(b"3", nonblock=True)
        assert e.value.errno == errno.EAGAIN
        assert "EAGAIN" in str(e.value)
        assert m.stat().nmsg == 2


def test_timeouts_in_seconds():
    with kipc.Mailbox.create(capacity=0, kernel_owned=True) as m:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as e:
            m.recv(timeout=0.2)
        assert time.monotonic() - t0 >= 0.2
        assert e.value.errno == errno.ETIMEDOUT
        with pytest.raises(TimeoutError):
            m.send(b"nobody receives at a rendezvous", timeout=0.05)
        with pytest.raises(ValueError):
            m.recv(timeout=-1)


def test_sending_to_yourself_at_a_rendezvous_is_edeadlk():
    # Process-owned, we are its only receiver: we would wait for ourselves.
    with kipc.Mailbox.create(capacity=0) as m:
        with pytest.raises(OSError) as e:
            m.send(b"to myself", timeout=1)
        assert e.value.errno == errno.EDEADLK and "(EDEADLK)" in str(e.value)


def test_rendezvous_blocks_until_received():
    with kipc.Mailbox.create("/rv", capacity=0, mode=0o600, kernel_owned=True) as m:
        pid = child(lambda: kipc.Mailbox.open("/rv").send(b"hello"))
        wait_for(lambda: m.stat().nsenders == 1)
        [w] = [w for w in m.waiters() if w.kind == 2]
        assert w.pid == pid and kipc.SYSCALLS[w.op] == "mbox_send"
        msg = m.recv(timeout=5, message=True)
        assert msg.data == b"hello" and msg.sender == pid and msg.source == m.id
        assert join(pid) == 0


def test_call_and_reply():
    with kipc.Mailbox.create("/srv", kernel_owned=True) as m:
        def serve():
            box = kipc.Mailbox.open("/srv")
            req = box.recv(timeout=10, message=True)
            assert req.call
            kipc.reply(req, req.data.upper())
        pid = child(serve)
        assert m.call(b"ping", timeout=10) == b"PING"
        assert join(pid) == 0


def test_call_priority_orders_the_request():
    # a call's prio (struct kipc_opts' prio) orders its request among the
    # queued messages, and the server sees it; past KIPC_PRIO_MAX: EINVAL,
    # nothing sent
    with kipc.Mailbox.create("/prio", kernel_owned=True) as m:
        with pytest.raises(OSError) as e:
            m.call(b"urgent", prio=32768, timeout=1)
        assert e.value.errno == errno.EINVAL and m.stat().nmsg == 0
        m.send(b"routine")
        pid = child(lambda: kipc.Mailbox.open("/prio").call(b"urgent", prio=3, timeout=10))
        wait_for(lambda: m.stat().nmsg == 2)
        req = m.recv(timeout=1, message=True)
        assert (req.data, req.prio, req.call) == (b"urgent", 3, True)
        kipc.reply(req, b"done")
        assert m.recv(timeout=1) == b"routine"
        assert join(pid) == 0


def test_task_queues_direct():
    me = kipc.pid()
    pid = child(lambda: kipc.send(me, b"direct", prio=3))
    msg = kipc.recv(from_pid=pid, timeout=10, message=True)
    assert (msg.data, msg.sender, msg.prio, msg.source) == (b"direct", pid, 3, 0)
    assert join(pid) == 0
    with pytest.raises(ProcessLookupError):
        kipc.send(2 ** 22 + 12345, b"nobody")


def test_priorities_and_types():
    with kipc.Mailbox.create() as m:
        m.send(b"low", prio=1)
        m.send(b"high", prio=9)
        m.send(b"typed", type=7)
        assert m.recv(type=7) == b"typed"
        assert [m.recv(), m.recv()] == [b"high", b"low"]


def test_port_set():
    with kipc.Mailbox.create() as a, kipc.Mailbox.create() as b:
        b.send(b"to b")
        msg = kipc.receive_set([a, b], timeout=1)
        assert msg.data == b"to b" and msg.source == b.id
        with pytest.raises(TimeoutError):
            kipc.receive_set([a, b], timeout=0.01)


def test_introspection_records_are_dataclasses():
    with kipc.Mailbox.create("/intro", capacity=3) as m:
        m.send(b"abc", prio=2)
        si = kipc.sysinfo()
        assert dataclasses.is_dataclass(si) and si.msgsize_max > 0
        st = m.stat()
        assert dataclasses.is_dataclass(st.attr)
        assert (st.name, st.attr.capacity, st.nmsg, st.nbytes) == ("/intro", 3, 1, 3)
        assert any(i.st.id == m.id for i in kipc.mailboxes())
        me = kipc.task(kipc.pid())
        assert me.pid == kipc.pid() and kipc.TASK_STATES[me.state] == "running"
        assert any(t.pid == me.pid for t in kipc.tasks())
        [h] = m.messages()
        assert (h.len, h.prio, h.sender) == (3, 2, kipc.pid())
        with pytest.raises(dataclasses.FrozenInstanceError):
            st.nmsg = 0


def test_trace_is_an_iterator():
    with kipc.Mailbox.create() as m:
        with kipc.trace(mbox=m, timeout=0.5) as t:
            m.send(b"traced")
            m.recv()
            evs = list(t)
        names = [e.event_name for e in evs]
        assert names[:3] == ["send", "enqueue", "deliver"]
        assert len({e.seq for e in evs[:3]}) == 1
        assert evs[0].op_name == "mbox_send" and evs[0].len == 6


def test_event_names_are_trace_h():
    # Every event of uapi/kipc/trace.h, by the name kipc-trace gives it.
    import re
    with open(os.path.join(TREE, "uapi", "kipc", "trace.h")) as f:
        c = {int(nr): name.lower() for name, nr in
             re.findall(r"^#define KIPC_TRACE_([A-Z]+)\s+(\d+)\s", f.read(), re.M)
             if name != "MAX"}
    assert kipc.EVENTS == c
    assert {c[e] for e in kipc.NET_EVENTS} == {"netsend", "netrecv", "netrefuse", "netend"}


def test_a_net_record_comes_with_its_whole_name():
    # NETSEND of a request to "b:/" + 200 bytes: 31 bytes in the record,
    # the rest in NETNAMEs right after it (trace.h); then one cut by a
    # LOST (a full ring): the name so far.
    from kipc import _lib
    name = ("b:/" + "n" * 200).encode()
    more, trunc = 1 << 10, 1 << 6
    rec = _lib.TraceNet(event=13, op=next(
        k for k, v in kipc.SYSCALLS.items() if v == "mbox_send"), flags=more | trunc,
        pid=4242, res=0, mbox=7, seq=9, epoch=123, name=name[:31])
    raw = [_lib.TraceEvent.from_buffer_copy(rec)]
    rest = name[31:]
    while rest:
        x = _lib.TraceName(event=21, op=rec.op, flags=more if len(rest) > 48 else 0,
                           pid=4242, mbox=7, text=rest[:48])
        raw.append(_lib.TraceEvent.from_buffer_copy(x))
        rest = rest[48:]
    raw.append(_lib.TraceEvent(event=3, seq=5))
    cut = _lib.TraceNet(event=20, flags=more | trunc, pid=0, res=-11, seq=3, epoch=1,
                        name=b"c:" + b"9" * 29)
    raw += [_lib.TraceEvent.from_buffer_copy(cut), _lib.TraceEvent(event=15, res=4)]
    r = kipc._decode(raw)
    assert (r.event_name, r.op_name, r.name) == ("netsend", "mbox_send", name.decode())
    assert (r.pid, r.mbox, r.seq, r.epoch, r.res) == (4242, 7, 9, 123, 0)
    assert kipc._decode(raw).event_name == "send"
    r = kipc._decode(raw)
    assert (r.event_name, r.res, r.name) == ("netrefuse", -11, "c:" + "9" * 29)
    assert kipc._decode(raw).event_name == "lost" and raw == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another uid")
def test_another_uid_gets_permission_error():
    with kipc.Mailbox.create("/mine", mode=0o600, kernel_owned=True):
        def other():
            os.setgid(65534)
            os.setuid(65534)
            try:
                kipc.Mailbox.open("/mine").send(b"x")
            except PermissionError as e:
                assert e.errno == errno.EACCES
                return
            raise AssertionError("send as another uid succeeded")
        assert join(child(other)) == 0


def test_no_kernel_is_connection_refused():
    env = dict(os.environ, KIPC_SOCKET="/nonexistent/kipcd.sock", KIPC_AUTOSTART="0",
               PYTHONPATH=os.path.join(TREE, "python"))
    code = ("import kipc\n"
            "try:\n kipc.attach()\nexcept ConnectionRefusedError as e:\n print(e.errno)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == str(errno.ECONNREFUSED), out.stderr


@pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")
def test_structures_match_the_c_abi():
    """Every ctypes structure has the C layout: sizes and offsets."""
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <kipc/libkipc.h>",
             "int main(void) {"]
    for cname, ct in _lib.STRUCTS.items():
        lines.append(f'printf("{cname} %zu\\n", sizeof(struct {cname}));')
        for f, _ in ct._fields_:
            lines.append(f'printf("{cname}.{f} %zu\\n", offsetof(struct {cname}, {f}));')
    lines.append("return 0; }")
    with tempfile.TemporaryDirectory() as d:
        src, exe = os.path.join(d, "abi.c"), os.path.join(d, "abi")
        with open(src, "w") as f:
            f.write("\n".join(lines))
        subprocess.run(["cc", "-I", os.path.join(TREE, "uapi"), "-o", exe, src], check=True)
        got = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    import ctypes
    want = []
    for cname, ct in _lib.STRUCTS.items():
        want.append(f"{cname} {ctypes.sizeof(ct)}")
        want += [f"{cname}.{f} {getattr(ct, f).offset}" for f, _ in ct._fields_]
    assert got.split("\n")[:-1] == want


def test_producer_consumer_sample_prints_what_the_c_sample_prints():
    """python/samples/producer_consumer.py and samples/producer_consumer.c
    tell the same story (mailbox ids differ)."""
    env = dict(os.environ, PYTHONPATH=os.path.join(TREE, "python"))
    py = subprocess.run([sys.executable, os.path.join(TREE, "python", "samples",
                                                      "producer_consumer.py")],
                        env=env, capture_output=True, text=True, timeout=60)
    assert py.returncode == 0, py.stderr
    c_sample = os.path.join(os.path.dirname(_lib.path), "..", "samples", "producer_consumer")
    if not os.path.exists(c_sample):
        pytest.skip("samples/producer_consumer not built")
    c = subprocess.run([c_sample], env=env, capture_output=True, text=True, timeout=60)
    assert c.returncode == 0, c.stderr
    strip = lambda s: [line.split(" mailbox ")[0] if "holds at most" in line else line
                       for line in s.splitlines()]
    assert strip(py.stdout) == strip(c.stdout)
    assert "consumer: got item 12" in py.stdout


@pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")
def test_syscall_names_are_the_c_table(tmp_path):
    # What the C preprocessor makes of uapi/kipc/syscalls.h (as the tools
    # do) is what the package read: every row, the ones from 56 on too.
    src = tmp_path / "names.c"
    src.write_text('#include <stdio.h>\n#include <kipc/syscalls.h>\n'
                   '#define P(nr, name, family) printf("%d %s\\n", nr, #name);\n'
                   'int main(void) { KIPC_ENUMERATE_SYSCALLS(P) return 0; }\n')
    exe = tmp_path / "names"
    subprocess.run(["cc", "-I", os.path.join(TREE, "uapi"), "-o", str(exe), str(src)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    c = {int(nr): name for nr, name in (line.split() for line in out.splitlines())}
    assert kipc.SYSCALLS == c
    assert c[56] == "kernel_info" and c[65] == "sysctl"


def test_an_installed_package_reads_its_own_copy_of_the_table(tmp_path):
    pkg = tmp_path / "kipc"
    pkg.mkdir()
    shutil.copy(os.path.join(TREE, "python", "kipc", "_syscalls.py"), pkg)
    (pkg / "__init__.py").write_text("")
    (pkg / "syscalls.h").write_text("#define KIPC_ENUMERATE_SYSCALLS(X) \\\n"
                                    "\tX(0, nop, misc) /* a */ \\\n\tX(70, mbox_peek, msg)\n")
    out = subprocess.run([sys.executable, "-c", "import kipc._syscalls as s; print(s.SYSCALLS)"],
                         cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    assert out.strip() == "{0: 'nop', 70: 'mbox_peek'}"
