# SPDX-License-Identifier: MIT
"""libkipc through ctypes: finding the library, the uapi structures, the
function prototypes. Private to the kipc package.

The library is, in this order: $KIPC_LIBKIPC (a path); the build tree's
build/lib/libkipc.so.1 next to this package (python/kipc/ in the source
tree); the LIBDIR `make install` recorded in _config.py; the dynamic
linker's search path (libkipc.so.1).
"""
import ctypes
import os

from ctypes import (c_char, c_char_p, c_int, c_int32, c_int64, c_size_t,
                    c_ssize_t, c_uint, c_uint16, c_uint32, c_uint64, c_void_p,
                    POINTER, Structure)

SONAME = "libkipc.so.1"


def _candidates():
    env = os.environ.get("KIPC_LIBKIPC")
    if env:
        yield env
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "..", "..", "build", "lib", SONAME)
    try:
        from . import _config  # written by make install
        yield os.path.join(_config.LIBDIR, SONAME)
    except ImportError:
        pass
    yield SONAME


def _load():
    errors = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            continue
        try:
            return ctypes.CDLL(path, use_errno=True), path
        except OSError as e:
            errors.append(f"{path}: {e}")
    raise ImportError("kipc: libkipc not found (build it with make, or set "
                      "KIPC_LIBKIPC): " + "; ".join(errors or [SONAME]))


lib, path = _load()

# ---- uapi/kipc/kipc.h --------------------------------------------------

NAME_MAX = 255
COMM_LEN = 16


class MsgInfo(Structure):
    _fields_ = [("pid", c_int32), ("prio", c_uint32), ("type", c_int64),
                ("len", c_uint32), ("flags", c_uint32), ("seq", c_uint64),
                ("source", c_int64), ("token", c_uint64)]


class Opts(Structure):
    _fields_ = [("timeout", c_int64), ("type", c_int64), ("prio", c_uint32),
                ("rsvd0", c_uint32), ("rsvd1", c_uint64)]


class MboxAttr(Structure):
    _fields_ = [("capacity", c_uint32), ("msgsize", c_uint32), ("qbytes", c_uint64),
                ("flags", c_uint32), ("policy", c_uint32), ("mode", c_uint32),
                ("uid", c_uint32), ("gid", c_uint32), ("rsvd", c_uint32 * 7)]


class MboxStat(Structure):
    _fields_ = [("id", c_int64), ("attr", MboxAttr), ("cuid", c_uint32),
                ("cgid", c_uint32), ("owner", c_int32), ("nmsg", c_uint32),
                ("nbytes", c_uint64), ("nsenders", c_uint32), ("nreceivers", c_uint32),
                ("nholders", c_uint32), ("lspid", c_int32), ("lrpid", c_int32),
                ("rsvd0", c_uint32), ("stime", c_uint64), ("rtime", c_uint64),
                ("ctime", c_uint64), ("nsent", c_uint64), ("nreceived", c_uint64),
                ("name", c_char * (NAME_MAX + 1)), ("rsvd", c_uint64 * 4)]


class TaskqStat(Structure):
    _fields_ = [("pid", c_int32), ("uid", c_uint32), ("capacity", c_uint32),
                ("msgsize", c_uint32), ("qbytes", c_uint64), ("flags", c_uint32),
                ("nmsg", c_uint32), ("nbytes", c_uint64), ("nsenders", c_uint32),
                ("nreceivers", c_uint32), ("nsent", c_uint64), ("nreceived", c_uint64),
                ("rsvd", c_uint64 * 4)]

# ---- uapi/kipc/introspect.h -------------------------------------------


class SysInfo(Structure):
    _fields_ = [("msg_default", c_uint32), ("msg_max", c_uint32),
                ("msgsize_default", c_uint32), ("msgsize_max", c_uint32),
                ("mbox_per_user", c_uint32), ("taskq_capacity", c_uint32),
                ("bytes_per_user", c_uint64), ("root_bypass", c_uint32),
                ("msg_overhead", c_uint32), ("ntasks", c_uint32), ("nmboxes", c_uint32),
                ("nmsg", c_uint32), ("npending", c_uint32), ("nbytes", c_uint64),
                ("nparked", c_uint32), ("ntracers", c_uint32), ("boot_time", c_int64),
                ("uptime", c_int64), ("nsent", c_uint64), ("ndelivered", c_uint64),
                ("ntimeouts", c_uint64), ("ncancels", c_uint64), ("nattach", c_uint64),
                ("nexit", c_uint64), ("ndestroyed", c_uint64), ("uid", c_uint32),
                ("user_mboxes", c_uint32), ("user_bytes", c_uint64),
                ("tasks_per_user", c_uint32), ("mq_msg_default", c_uint32),
                ("mq_msg_max", c_uint32), ("mq_msgsize_default", c_uint32),
                ("mq_msgsize_max", c_uint32), ("mq_queues_max", c_uint32),
                ("mq_bytes_per_user", c_uint64), ("msgmax", c_uint32),
                ("msgmnb", c_uint32), ("msgmni", c_uint32), ("rsvd0", c_uint32),
                ("nskipped", c_uint64), ("nonecopy", c_uint64)]


class TaskInfo(Structure):
    _fields_ = [("pid", c_int32), ("uid", c_uint32), ("gid", c_uint32),
                ("state", c_uint32), ("flags", c_uint32), ("nparked", c_uint32),
                ("comm", c_char * COMM_LEN), ("atime", c_int64), ("wait_op", c_uint32),
                ("wait_pid", c_int32), ("wait_mbox", c_int64), ("wait_since", c_int64),
                ("wait_deadline", c_int64), ("capacity", c_uint32), ("msgsize", c_uint32),
                ("qbytes", c_uint64), ("nmsg", c_uint32), ("nsenders", c_uint32),
                ("nbytes", c_uint64), ("nreceivers", c_uint32), ("nheld", c_uint32),
                ("nsent", c_uint64), ("nreceived", c_uint64), ("now", c_int64),
                ("rsvd", c_uint64 * 3)]


class MboxInfo(Structure):
    _fields_ = [("st", MboxStat), ("flags", c_uint32), ("pair_sender", c_int32),
                ("pair_receiver", c_int32), ("excl", c_int32), ("rr_next", c_int32),
                ("ncached", c_uint32), ("rsvd", c_uint64 * 4)]


class WaiterInfo(Structure):
    _fields_ = [("pid", c_int32), ("kind", c_uint32), ("op", c_uint32),
                ("flags", c_uint32), ("since", c_int64), ("deadline", c_int64),
                ("seq", c_uint64), ("len", c_uint32), ("rsvd0", c_uint32),
                ("rsvd", c_uint64 * 2)]


class MsgHeader(Structure):
    _fields_ = [("seq", c_uint64), ("sender", c_int32), ("len", c_uint32),
                ("type", c_int64), ("stime", c_int64), ("prio", c_uint16),
                ("flags", c_uint16), ("route", c_int32), ("rsvd", c_uint64 * 2)]

# ---- uapi/kipc/trace.h -------------------------------------------------


class TraceAttr(Structure):
    _fields_ = [("events", c_uint32), ("bufsize", c_uint32), ("pid", c_int32),
                ("rsvd0", c_uint32), ("mbox", c_int64), ("rsvd", c_uint64 * 4)]


class TraceEvent(Structure):
    _fields_ = [("ts", c_uint64), ("event", c_uint16), ("op", c_uint16),
                ("flags", c_uint32), ("pid", c_int32), ("peer", c_int32),
                ("mbox", c_int64), ("qpid", c_int32), ("len", c_uint32),
                ("seq", c_uint64), ("res", c_int64), ("prio", c_uint16),
                ("rsvd0", c_uint16), ("rsvd1", c_uint32), ("comm", c_char * 16)]


class TraceNet(Structure):  # NETSEND, NETRECV, NETREFUSE, NETEND (network.md)
    _fields_ = [("ts", c_uint64), ("event", c_uint16), ("op", c_uint16),
                ("flags", c_uint32), ("pid", c_int32), ("res", c_int32),
                ("mbox", c_int64), ("seq", c_uint64), ("epoch", c_uint64),
                ("name", c_char * 32)]


class TraceName(Structure):  # NETNAME: the rest of the name of the record before
    _fields_ = [("ts", c_uint64), ("event", c_uint16), ("op", c_uint16),
                ("flags", c_uint32), ("pid", c_int32), ("rsvd0", c_uint32),
                ("mbox", c_int64), ("text", c_char * 48)]


# (struct name in C, ctypes class): the ABI test compares their sizes and
# offsets with the C compiler's.
STRUCTS = {
    "kipc_msginfo": MsgInfo, "kipc_opts": Opts, "kipc_mbox_attr": MboxAttr,
    "kipc_mbox_stat": MboxStat, "kipc_taskq_stat": TaskqStat,
    "kipc_sysinfo": SysInfo, "kipc_task_info": TaskInfo,
    "kipc_mbox_info": MboxInfo, "kipc_waiter_info": WaiterInfo,
    "kipc_msg_info": MsgHeader, "kipc_trace_attr": TraceAttr,
    "kipc_trace_event": TraceEvent, "kipc_trace_net": TraceNet,
    "kipc_trace_name": TraceName,
}

# ---- prototypes (uapi/kipc/libkipc.h) ------------------------------------


def _proto(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


P = POINTER
kipc_attach = _proto("kipc_attach", c_int)
kipc_detach = _proto("kipc_detach", c_int)
kipc_task_pid = _proto("kipc_task_pid", c_int)
kipc_send_x = _proto("kipc_send_x", c_int, c_int, c_void_p, c_size_t, c_uint, c_uint, P(Opts))
kipc_receive_x = _proto("kipc_receive_x", c_ssize_t, c_int, c_void_p, c_size_t, P(MsgInfo),
                        c_uint, P(Opts))
kipc_mbox_open = _proto("kipc_mbox_open", c_int64, c_char_p, c_uint, P(MboxAttr))
kipc_mbox_destroy = _proto("kipc_mbox_destroy", c_int, c_int64)
kipc_mbox_stat = _proto("kipc_mbox_stat", c_int, c_int64, P(MboxStat))
kipc_mbox_setattr = _proto("kipc_mbox_setattr", c_int, c_int64, c_uint, P(MboxAttr))
kipc_mbox_set_owner = _proto("kipc_mbox_set_owner", c_int, c_int64, c_int)
kipc_mbox_grant = _proto("kipc_mbox_grant", c_int, c_int64, c_int)
kipc_mbox_revoke = _proto("kipc_mbox_revoke", c_int, c_int64, c_int)
kipc_mbox_send_x = _proto("kipc_mbox_send_x", c_int, c_int64, c_void_p, c_size_t, c_uint,
                          c_uint, P(Opts))
kipc_mbox_receive_x = _proto("kipc_mbox_receive_x", c_ssize_t, c_int64, c_void_p, c_size_t,
                             P(MsgInfo), c_uint, P(Opts))
kipc_mbox_receive_set_x = _proto("kipc_mbox_receive_set_x", c_ssize_t, P(c_int64), c_uint,
                                 c_void_p, c_size_t, P(MsgInfo), c_uint, P(Opts))
kipc_call_x = _proto("kipc_call_x", c_ssize_t, c_int, c_void_p, c_size_t, c_void_p, c_size_t,
                     P(MsgInfo), c_uint, P(Opts))
kipc_mbox_call_x = _proto("kipc_mbox_call_x", c_ssize_t, c_int64, c_void_p, c_size_t,
                          c_void_p, c_size_t, P(MsgInfo), c_uint, P(Opts))
kipc_reply_x = _proto("kipc_reply_x", c_int, c_uint64, c_void_p, c_size_t, c_uint, P(Opts))
kipc_taskq_stat = _proto("kipc_taskq_stat", c_int, P(TaskqStat))
kipc_sysinfo = _proto("kipc_sysinfo", c_int, P(SysInfo))
kipc_task_list = _proto("kipc_task_list", c_ssize_t, P(TaskInfo), c_size_t)
kipc_task_info = _proto("kipc_task_info", c_int, c_int, P(TaskInfo))
kipc_mbox_list = _proto("kipc_mbox_list", c_ssize_t, P(MboxInfo), c_size_t)
kipc_mbox_info = _proto("kipc_mbox_info", c_int, c_int64, P(MboxInfo))
kipc_waiter_list = _proto("kipc_waiter_list", c_ssize_t, c_int64, c_uint, P(WaiterInfo),
                          c_size_t)
kipc_msg_list = _proto("kipc_msg_list", c_ssize_t, c_int64, c_uint, P(MsgHeader), c_size_t)
kipc_trace_open = _proto("kipc_trace_open", c_int, P(TraceAttr))
kipc_trace_read_timed = _proto("kipc_trace_read_timed", c_ssize_t, P(TraceEvent), c_size_t,
                               c_uint, c_int64)
kipc_trace_read = _proto("kipc_trace_read", c_ssize_t, P(TraceEvent), c_size_t, c_uint)
kipc_trace_close = _proto("kipc_trace_close", c_int)
