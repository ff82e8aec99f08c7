"""ctypes bindings to the few libbpf.so.1 functions the TLS tracer uses.

libbpf's own messages (the verifier log among them) are kept, not printed: the
BpfUnavailable raised when a step fails quotes the line that says why, on one line.
"""
from __future__ import annotations

import ctypes
import logging
import os
from collections import deque

log = logging.getLogger(__name__)

__all__ = ["BpfUnavailable", "lib", "check_ptr", "check_rc", "UprobeOpts", "RingCallback"]


class BpfUnavailable(RuntimeError):
    """libbpf is missing, or the kernel refused: not root, no BPF, no uprobes."""

    def __init__(self, message: str, errno: int = 0):
        super().__init__(message)
        self.errno = errno


c_void_p, c_char_p, c_int, c_size_t = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t


class UprobeOpts(ctypes.Structure):
    """struct bpf_uprobe_opts of libbpf 1.1 (sz tells libbpf which version we mean)."""
    _fields_ = [("sz", c_size_t), ("ref_ctr_offset", c_size_t), ("bpf_cookie", ctypes.c_uint64),
                ("retprobe", ctypes.c_bool), ("func_name", c_char_p)]


# int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size)
RingCallback = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t)
# int (*libbpf_print_fn_t)(enum libbpf_print_level, const char *fmt, va_list ap): on x86-64
# and arm64 a va_list parameter is passed as a pointer, which vsnprintf takes back.
_PrintFn = ctypes.CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)

_SIGNATURES = {
    "bpf_object__open_file": (c_void_p, [c_char_p, c_void_p]),
    "bpf_object__load": (c_int, [c_void_p]),
    "bpf_object__close": (None, [c_void_p]),
    "bpf_object__find_program_by_name": (c_void_p, [c_void_p, c_char_p]),
    "bpf_object__find_map_by_name": (c_void_p, [c_void_p, c_char_p]),
    "bpf_map__fd": (c_int, [c_void_p]),
    "bpf_map__set_max_entries": (c_int, [c_void_p, ctypes.c_uint32]),
    "bpf_map__lookup_elem": (c_int, [c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, ctypes.c_uint64]),
    "bpf_program__attach": (c_void_p, [c_void_p]),
    "bpf_program__set_autoload": (c_int, [c_void_p, ctypes.c_bool]),
    "bpf_program__attach_uprobe_opts": (c_void_p, [c_void_p, c_int, c_char_p, c_size_t, ctypes.POINTER(UprobeOpts)]),
    "bpf_link__destroy": (c_int, [c_void_p]),
    "ring_buffer__new": (c_void_p, [c_int, RingCallback, c_void_p, c_void_p]),
    "ring_buffer__poll": (c_int, [c_void_p, c_int]),
    "ring_buffer__epoll_fd": (c_int, [c_void_p]),
    "ring_buffer__free": (None, [c_void_p]),
    "libbpf_set_print": (c_void_p, [_PrintFn]),
}

_messages: deque[str] = deque(maxlen=200)  # since the last check_*()
_lib = _printer = None


def _load():
    global _lib, _printer
    try:
        lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    except OSError as e:
        raise BpfUnavailable(f"libbpf.so.1 not found ({e}); install libbpf1") from None
    for fn, (restype, argtypes) in _SIGNATURES.items():
        f = getattr(lib, fn)
        f.restype, f.argtypes = restype, argtypes
    libc = ctypes.CDLL(None)
    libc.vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]

    buf = ctypes.create_string_buffer(1 << 20)  # a whole verifier log comes as one message

    def printer(level, fmt, args):
        libc.vsnprintf(buf, len(buf), fmt, args)
        text = buf.value.decode(errors="replace").rstrip()
        if text:
            _messages.append(text)
            log.debug("libbpf: %s", text)
        return 0

    _printer = _PrintFn(printer)  # kept alive for as long as libbpf may call it
    lib.libbpf_set_print(_printer)
    _lib = lib


def lib():
    if _lib is None:
        _load()
    return _lib


def _fail(what: str, err: int):
    hint = " (needs root, or CAP_BPF and CAP_PERFMON)" if err == 1 else ""
    lines = [line.removeprefix("libbpf: ") for m in _messages for line in m.splitlines()]
    said = next((line for line in lines if "failed" in line or "rror" in line), "")
    if "-- END PROG LOAD LOG --" in lines:  # the verifier's reason is its last line before the statistics
        log_end = lines.index("-- END PROG LOAD LOG --")
        said += " / " + next((line for line in reversed(lines[:log_end])
                              if line and not line.startswith(("processed ", "verification time"))), "")
    _messages.clear()
    raise BpfUnavailable(f"{what}: {os.strerror(err)}{hint}" + (f" [{said}]" if said else ""), err)


def check_ptr(ptr, what: str):
    """libbpf 1.x returns NULL and sets errno on failure."""
    if not ptr:
        _fail(what, ctypes.get_errno() or 22)
    _messages.clear()
    return ptr


def check_rc(rc: int, what: str) -> int:
    """...or a negative errno."""
    if rc < 0:
        _fail(what, -rc)
    _messages.clear()
    return rc
