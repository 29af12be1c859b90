# SPDX-License-Identifier: MIT
"""kipc: message passing on the kipc kernel, from Python.

A thin layer over libkipc (ctypes; no compiler needed)::

    import kipc
    m = kipc.Mailbox.create("/q", capacity=4)
    m.send(b"hi")
    m.recv(timeout=1)          # b'hi'

- Mailboxes are objects; ``with Mailbox.create(...) as m:`` destroys the
  mailbox at the end of the block (one created by this object only).
- ``send``/``recv``/``call`` take ``timeout`` in seconds (a float; ``None``
  waits for ever, ``0`` fails at once unless the call can complete) and
  ``nonblock=True``.
- Failures raise ``OSError`` with the errno, as the os module does, so the
  built-in subclasses apply: ``BlockingIOError`` (EAGAIN),
  ``TimeoutError`` (ETIMEDOUT), ``PermissionError`` (EACCES, EPERM),
  ``FileNotFoundError`` (ENOENT), ``FileExistsError`` (EEXIST),
  ``ProcessLookupError`` (ESRCH), ``ConnectionRefusedError`` (no kernel);
  ``e.errno`` is the number and ``errno.errorcode[e.errno]`` its name.
- The introspection records (``sysinfo()``, ``tasks()``, ``mailboxes()``,
  ``Mailbox.stat()``, ``waiters()``, ``messages()``) are dataclasses.
- ``trace()`` is an iterator over the kernel's trace events.

The kernel is the one at $KIPC_SOCKET (libkipc's rules); as in C, the
first call attaches and may start a kernel unless KIPC_AUTOSTART=0.
"""
import ctypes
import dataclasses
import errno as _errno
import functools
import os

from . import _lib

__all__ = [
    "Mailbox", "Message", "Trace", "attach", "detach", "pid", "send", "recv",
    "call", "reply", "receive_set", "sysinfo", "tasks", "task", "mailboxes",
    "trace", "UNBOUNDED", "DEFAULT", "ANY", "POLICIES", "SYSCALLS", "EVENTS",
]

UNBOUNDED = 0xFFFFFFFF   # capacity: no bound
DEFAULT = 0xFFFFFFFE     # capacity: the kernel's default
ANY = 0                  # recv(from_pid=ANY): from anyone

# uapi/kipc/kipc.h
F_NONBLOCK, F_TIMEOUT, F_TRUNC, F_TYPE, F_EXCEPT = 1 << 0, 1 << 1, 1 << 5, 1 << 6, 1 << 7
O_CREAT, O_EXCL = 1 << 8, 1 << 9
CQE_F_TRUNC, CQE_F_CALL, CQE_F_DELIVERED = 1 << 2, 1 << 3, 1 << 4
MBOX_FIXED, MBOX_KERNEL_OWNED = 1 << 0, 1 << 1
POLICIES = {"any": 0, "pair": 1, "exclusive": 2, "round-robin": 3}
SET_MODE, SET_CAPACITY, SET_POLICY = 1 << 0, 1 << 3, 1 << 4
INTRO_TASKQ = 1 << 0

from ._syscalls import SYSCALLS  # uapi/kipc/syscalls.h: {number: name}
EVENTS = {1: "attach", 2: "exit", 3: "send", 4: "enqueue", 5: "block", 6: "wake",
          7: "deliver", 8: "timeout", 9: "cancel", 10: "destroy", 11: "create", 12: "open",
          13: "netsend", 14: "netrecv", 15: "lost", 16: "syscall", 17: "sysret",
          18: "sysarg", 19: "netend", 20: "netrefuse", 21: "netname"}
# uapi/kipc/trace.h: the records laid out as struct kipc_trace_net
NET_EVENTS = frozenset((13, 14, 19, 20))
_NETNAME = 21
_TRACE_F_MORE = 1 << 10
TASK_STATES = {0: "running", 1: "blocked", 2: "unattached"}
WAITER_KINDS = {1: "receiver", 2: "sender", 3: "cached", 4: "holder"}


_NAMES = {_errno.EDEADLK: "EDEADLK", _errno.EAGAIN: "EAGAIN", _errno.EOPNOTSUPP: "EOPNOTSUPP"}


def errname(err):
    """"EAGAIN" for errno.EAGAIN (the names libc's strerrorname_np gives)."""
    return _NAMES.get(err) or _errno.errorcode.get(err, str(err))


def _raise(what):
    err = ctypes.get_errno()
    name = errname(err)
    raise OSError(err, f"{what}: {os.strerror(err)} ({name})")


def _check(r, what):
    if r < 0:
        _raise(what)
    return r


def _bytes(data):
    if isinstance(data, str):
        return data.encode()
    return bytes(data)


def _wait(timeout, nonblock, type_=None):
    """flags and struct kipc_opts for a call that may wait."""
    o = _lib.Opts()
    flags = 0
    if nonblock:
        flags |= F_NONBLOCK
    if timeout is not None:
        if timeout < 0:
            raise ValueError("timeout must be >= 0 seconds (or None)")
        flags |= F_TIMEOUT
        o.timeout = int(round(timeout * 1e9))
    if type_ is not None:
        o.type = int(type_)
    return flags, o


# ---- records ------------------------------------------------------------

def _record_class(name, ctype):
    """A dataclass with the fields of a uapi structure (reserved ones left out)."""
    fields = []
    for fname, ftype in ctype._fields_:
        if fname.startswith("rsvd"):
            continue
        fields.append((fname, object))
    return dataclasses.make_dataclass(name, fields, frozen=True)


def _convert(cls_of, value):
    if isinstance(value, ctypes.Structure):
        cls = cls_of[type(value)]
        kw = {}
        for fname, _ in type(value)._fields_:
            if fname.startswith("rsvd"):
                continue
            kw[fname] = _convert(cls_of, getattr(value, fname))
        return cls(**kw)
    if isinstance(value, bytes):  # char arrays (names, comm)
        return value.decode(errors="replace")
    return value


MboxAttr = _record_class("MboxAttr", _lib.MboxAttr)
MboxStat = _record_class("MboxStat", _lib.MboxStat)
MboxInfo = _record_class("MboxInfo", _lib.MboxInfo)
TaskqStat = _record_class("TaskqStat", _lib.TaskqStat)
SysInfo = _record_class("SysInfo", _lib.SysInfo)
TaskInfo = _record_class("TaskInfo", _lib.TaskInfo)
WaiterInfo = _record_class("WaiterInfo", _lib.WaiterInfo)
MsgHeader = _record_class("MsgHeader", _lib.MsgHeader)
TraceEvent = _record_class("TraceEvent", _lib.TraceEvent)
TraceNet = _record_class("TraceNet", _lib.TraceNet)
_CLASSES = {_lib.MboxAttr: MboxAttr, _lib.MboxStat: MboxStat, _lib.MboxInfo: MboxInfo,
            _lib.TaskqStat: TaskqStat, _lib.SysInfo: SysInfo, _lib.TaskInfo: TaskInfo,
            _lib.WaiterInfo: WaiterInfo, _lib.MsgHeader: MsgHeader,
            _lib.TraceEvent: TraceEvent, _lib.TraceNet: TraceNet}


def _record(c):
    return _convert(_CLASSES, c)


@dataclasses.dataclass(frozen=True)
class Message:
    """A received message: its bytes and what the kernel says about it."""
    data: bytes
    sender: int       # pid of the sender
    prio: int
    type: int
    len: int          # full length (> len(data) if truncated)
    seq: int          # kernel sequence number
    source: int       # mailbox id it came from, 0: a task queue
    call: bool        # a call's request: answer with reply(msg.token, ...)
    token: int

    def __bytes__(self):
        return self.data


def _message(buf, n, info):
    return Message(bytes(buf[:n]), info.pid, info.prio, info.type, info.len, info.seq,
                   info.source, bool(info.flags & CQE_F_CALL), info.token)


# ---- the process ----------------------------------------------------------

def attach():
    """Attach now (otherwise the first call does)."""
    _check(_lib.kipc_attach(), "attach")


def detach():
    """Detach: the kernel destroys this task (its process-owned mailboxes too)."""
    _check(_lib.kipc_detach(), "detach")


def pid():
    """The pid the kernel knows this process by."""
    attach()
    return _check(_lib.kipc_task_pid(), "task pid")


_msgsize_max = None


def _bufsize():
    global _msgsize_max
    if _msgsize_max is None:
        _msgsize_max = sysinfo().msgsize_max
    return _msgsize_max


def _receive(receive, what, flags, o, bufsize, message):
    """Run receive(buf, buflen, info, flags, opts), one of the library's
    receives with its first arguments bound: the bytes, or a Message with
    message=True."""
    buf = ctypes.create_string_buffer(bufsize or _bufsize())
    info = _lib.MsgInfo()
    n = _check(receive(buf, len(buf), ctypes.byref(info), flags, ctypes.byref(o)), what)
    m = _message(buf, n, info)
    return m if message else m.data


def _call(call, data, what, prio, type, timeout, nonblock, bufsize):
    """Run call(req, reqlen, reply, replylen, info, flags, opts), one of the
    library's calls with its target bound: the reply's bytes. The request
    has priority prio (struct kipc_opts' prio)."""
    b = _bytes(data)
    flags, o = _wait(timeout, nonblock, type)
    o.prio = prio  # past KIPC_PRIO_MAX: OSError EINVAL, as send's
    buf = ctypes.create_string_buffer(bufsize or _bufsize())
    info = _lib.MsgInfo()
    n = _check(call(b, len(b), buf, len(buf), ctypes.byref(info), flags, ctypes.byref(o)), what)
    return bytes(buf[:n])


# ---- direct communication: task queues -------------------------------------

def send(to_pid, data, prio=0, type=0, timeout=None, nonblock=False):
    """Send data to the task queue of process to_pid."""
    b = _bytes(data)
    flags, o = _wait(timeout, nonblock, type)
    _check(_lib.kipc_send_x(to_pid, b, len(b), prio, flags, ctypes.byref(o)), f"send {to_pid}")


def recv(from_pid=ANY, timeout=None, nonblock=False, message=False, bufsize=None):
    """Receive from the own task queue (from from_pid, or anyone). Returns
    the bytes, or a Message with message=True."""
    flags, o = _wait(timeout, nonblock)
    return _receive(functools.partial(_lib.kipc_receive_x, from_pid), "recv", flags, o,
                    bufsize, message)


def call(to_pid, data, prio=0, type=0, timeout=None, nonblock=False, bufsize=None):
    """Send a request to process to_pid and return its reply (bytes)."""
    return _call(functools.partial(_lib.kipc_call_x, to_pid), data, f"call {to_pid}", prio,
                 type, timeout, nonblock, bufsize)


def reply(token, data, type=0):
    """Answer a call (msg.token of a received Message with msg.call)."""
    if isinstance(token, Message):
        token = token.token
    b = _bytes(data)
    o = _lib.Opts()
    o.type = type
    _check(_lib.kipc_reply_x(token, b, len(b), 0, ctypes.byref(o)), "reply")


def receive_set(mailboxes, timeout=None, nonblock=False, bufsize=None):
    """Receive from whichever mailbox has a message first (a port set);
    msg.source says which."""
    ids = (ctypes.c_int64 * len(mailboxes))(*[int(m) for m in mailboxes])
    flags, o = _wait(timeout, nonblock)
    return _receive(functools.partial(_lib.kipc_mbox_receive_set_x, ids, len(mailboxes)),
                    "receive_set", flags, o, bufsize, True)


# ---- mailboxes -------------------------------------------------------------

class Mailbox:
    """A mailbox of the kernel, by id.

    Mailbox.create(...) makes one, Mailbox.open(name) looks one up,
    Mailbox(id) names one by id. int(m) is the id.
    """

    def __init__(self, id, name=None, *, owned=False):
        self.id = int(id)
        self.name = name
        self._destroy_on_exit = owned

    @classmethod
    def create(cls, name=None, capacity=DEFAULT, msgsize=0, qbytes=0, mode=0o600,
               policy="any", fixed=False, kernel_owned=False, exclusive=True):
        """Create a mailbox (name "/x", or None: anonymous). capacity: a
        number, 0 (rendezvous), UNBOUNDED or DEFAULT. kernel_owned: it
        outlives this process; else it dies with it. exclusive: fail
        (FileExistsError) if the name exists, else open the existing one."""
        a = _lib.MboxAttr()
        a.capacity = capacity
        a.msgsize = msgsize
        a.qbytes = qbytes
        a.mode = mode
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
        a.policy = POLICIES[policy]
        a.flags = (MBOX_FIXED if fixed else 0) | (MBOX_KERNEL_OWNED if kernel_owned else 0)
        oflag = O_CREAT | (O_EXCL if exclusive else 0)
        id = _check(_lib.kipc_mbox_open(name.encode() if name else None, oflag,
                                        ctypes.byref(a)), f"create {name or '(anonymous)'}")
        return cls(id, name, owned=True)

    @classmethod
    def open(cls, name):
        """The existing mailbox of that name (FileNotFoundError if none)."""
        id = _check(_lib.kipc_mbox_open(name.encode(), 0, None), f"open {name}")
        return cls(id, name)

    def __int__(self):
        return self.id

    def __index__(self):
        return self.id

    def __repr__(self):
        return f"Mailbox({self.id}{', ' + repr(self.name) if self.name else ''})"

    def __eq__(self, other):
        return isinstance(other, Mailbox) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._destroy_on_exit:
            try:
                self.destroy()
            except OSError as e:
                if e.errno not in (_errno.EIDRM, _errno.EINVAL):
                    raise

    def _what(self, verb):
        return f"{verb} {self.name or self.id}"

    def send(self, data, prio=0, type=0, timeout=None, nonblock=False):
        """Send data (bytes or str). BlockingIOError when full and nonblock,
        TimeoutError after timeout seconds."""
        b = _bytes(data)
        flags, o = _wait(timeout, nonblock, type)
        _check(_lib.kipc_mbox_send_x(self.id, b, len(b), prio, flags, ctypes.byref(o)),
               self._what("send"))

    def recv(self, timeout=None, nonblock=False, type=None, message=False, bufsize=None):
        """Receive the next message (with type: System V selection). The
        bytes, or a Message with message=True."""
        flags, o = _wait(timeout, nonblock, type)
        if type is not None:
            flags |= F_TYPE
        return _receive(functools.partial(_lib.kipc_mbox_receive_x, self.id),
                        self._what("recv"), flags, o, bufsize, message)

    def call(self, data, prio=0, type=0, timeout=None, nonblock=False, bufsize=None):
        """Send a request through the mailbox and return the reply."""
        return _call(functools.partial(_lib.kipc_mbox_call_x, self.id), data,
                     self._what("call"), prio, type, timeout, nonblock, bufsize)

    def destroy(self):
        _check(_lib.kipc_mbox_destroy(self.id), self._what("destroy"))
        self._destroy_on_exit = False

    def grant(self, pid):
        _check(_lib.kipc_mbox_grant(self.id, pid), self._what("grant"))

    def revoke(self, pid):
        _check(_lib.kipc_mbox_revoke(self.id, pid), self._what("revoke"))

    def set_owner(self, pid):
        _check(_lib.kipc_mbox_set_owner(self.id, pid), self._what("set_owner"))

    def set_capacity(self, capacity, qbytes=0):
        a = _lib.MboxAttr()
        a.capacity = capacity
        a.qbytes = qbytes
        _check(_lib.kipc_mbox_setattr(self.id, SET_CAPACITY, ctypes.byref(a)),
               self._what("setattr"))

    def stat(self):
        """MboxStat (dataclass; .attr is an MboxAttr)."""
        st = _lib.MboxStat()
        _check(_lib.kipc_mbox_stat(self.id, ctypes.byref(st)), self._what("stat"))
        return _record(st)

    def info(self):
        """MboxInfo: the stat plus the policy's state (pair binding, ...)."""
        mi = _lib.MboxInfo()
        _check(_lib.kipc_mbox_info(self.id, ctypes.byref(mi)), self._what("info"))
        return _record(mi)

    def waiters(self):
        """[WaiterInfo]: receivers, blocked senders, cached messages, holders."""
        return _list(_lib.WaiterInfo, lambda b, n: _lib.kipc_waiter_list(self.id, 0, b, n),
                     self._what("waiters"))

    def messages(self):
        """[MsgHeader]: the queued messages' headers (never payloads)."""
        return _list(_lib.MsgHeader, lambda b, n: _lib.kipc_msg_list(self.id, 0, b, n),
                     self._what("messages"))


# ---- introspection ---------------------------------------------------------

_ARENA = 512 * 1024  # the most a list asks for at once (the tools' bound)


def _list(ctype, fn, what):
    cap = 64
    while True:
        arr = (ctype * cap)()
        n = _check(fn(arr, cap), what)
        if n <= cap or cap * ctypes.sizeof(ctype) >= _ARENA:
            return [_record(arr[i]) for i in range(min(n, cap))]
        cap = min(max(n, cap * 2), _ARENA // ctypes.sizeof(ctype))


def sysinfo():
    """SysInfo: limits, counts now, counters since boot, your usage."""
    si = _lib.SysInfo()
    _check(_lib.kipc_sysinfo(ctypes.byref(si)), "sysinfo")
    return _record(si)


def tasks():
    """[TaskInfo] of every task (private fields zero for other users')."""
    return _list(_lib.TaskInfo, _lib.kipc_task_list, "task list")


def task(pid):
    ti = _lib.TaskInfo()
    _check(_lib.kipc_task_info(pid, ctypes.byref(ti)), f"task {pid}")
    return _record(ti)


def mailboxes():
    """[MboxInfo] of the mailboxes you may see."""
    return _list(_lib.MboxInfo, _lib.kipc_mbox_list, "mailbox list")


def taskq_stat():
    st = _lib.TaskqStat()
    _check(_lib.kipc_taskq_stat(ctypes.byref(st)), "taskq_stat")
    return _record(st)


# ---- tracing ---------------------------------------------------------------

class Trace:
    """This task's trace listener: iterate to get TraceEvents as they come.

    with kipc.trace(mbox=m) as t:
        for ev in t:             # waits for events; stops after timeout
            print(ev.event_name, ev.pid, ev.seq)

    timeout: seconds without an event after which iteration ends (None:
    wait for ever). Events carry event_name and op_name besides the raw
    fields of struct kipc_trace_event; a network event (netsend, netrecv,
    netrefuse, netend: Documentation/network.md) has the fields of struct
    kipc_trace_net instead (seq, epoch, res, name), its name whole (the
    NETNAME records after it joined; cut where a full ring lost the rest).
    """

    def __init__(self, events=None, pid=0, mbox=0, bufsize=0, timeout=None):
        a = _lib.TraceAttr()
        if events:
            inv = {v: k for k, v in EVENTS.items()}
            a.events = sum(1 << inv[e] for e in events)
        a.pid = pid
        a.mbox = int(mbox)
        a.bufsize = bufsize
        _check(_lib.kipc_trace_open(ctypes.byref(a)), "trace open")
        self._open = True
        self.timeout = timeout
        self._buf = (_lib.TraceEvent * 256)()
        self._pending = []

    def __iter__(self):
        return self

    def __next__(self):
        while not self._pending:
            if not self._open:
                raise StopIteration
            if self.timeout is None:
                n = _lib.kipc_trace_read(self._buf, len(self._buf), 0)
            else:
                n = _lib.kipc_trace_read_timed(self._buf, len(self._buf), 0,
                                               int(self.timeout * 1e9))
            if n < 0:
                if ctypes.get_errno() == _errno.ETIMEDOUT:
                    raise StopIteration
                _raise("trace read")
            self._pending = [_lib.TraceEvent.from_buffer_copy(self._buf[i]) for i in range(n)]
            # A network record's NETNAMEs are in the ring with it: the rest
            # of a name cut by the end of our buffer is there already.
            while (self._pending[-1].event in NET_EVENTS | {_NETNAME} and
                   self._pending[-1].flags & _TRACE_F_MORE):
                n = _lib.kipc_trace_read_timed(self._buf, len(self._buf), 0, 0)
                if n <= 0:
                    break
                self._pending += [_lib.TraceEvent.from_buffer_copy(self._buf[i])
                                  for i in range(n)]
        return _decode(self._pending)

    def close(self):
        if self._open:
            self._open = False
            _check(_lib.kipc_trace_close(), "trace close")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _decode(pending):
    """The next event of pending (raw struct kipc_trace_events), taken from
    it: a network record with the NETNAMEs that follow it in pending."""
    ev = pending.pop(0)
    if ev.event in NET_EVENTS:
        n = _lib.TraceNet.from_buffer_copy(ev)
        name = n.name
        more = n.flags & _TRACE_F_MORE
        while more and pending and pending[0].event == _NETNAME:
            x = _lib.TraceName.from_buffer_copy(pending.pop(0))
            name += x.text
            more = x.flags & _TRACE_F_MORE
        r = _record(n)
        object.__setattr__(r, "name", name.decode(errors="replace"))
    else:
        r = _record(ev)
    object.__setattr__(r, "event_name", EVENTS.get(r.event, "?"))
    object.__setattr__(r, "op_name", SYSCALLS.get(r.op, "-"))
    return r


def trace(events=None, pid=0, mbox=0, bufsize=0, timeout=None):
    """Open the trace listener (see Trace); events: names, e.g. ["send", "deliver"]."""
    return Trace(events, pid, mbox, bufsize, timeout)
