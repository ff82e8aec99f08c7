"""Capture filters ("tcp port 80") compiled by libpcap, as tcpdump compiles them: pcap_compile on
a handle opened for the link type alone, no interface needed. The result is the classic BPF
program the kernel runs on a packet socket (SO_ATTACH_FILTER)."""
from __future__ import annotations

import ctypes
import ctypes.util
import struct

from ..errors import InputError

_SNAPLEN = 262144
_NETMASK_UNKNOWN = 0xFFFFFFFF


class _Instruction(ctypes.Structure):  # struct bpf_insn, the same layout as the kernel's sock_filter
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):  # struct bpf_program
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_Instruction))]


def _libpcap():
    name = ctypes.util.find_library("pcap")
    if name is None:
        raise InputError("--bpf: needs libpcap (Debian: apt install libpcap0.8)")
    lib = ctypes.CDLL(name)
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Program), ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_Program)]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    return lib


class Filter:
    """A compiled filter, ready for setsockopt(SOL_SOCKET, SO_ATTACH_FILTER, filter.fprog)."""

    def __init__(self, expression: str, linktype: int):
        lib = _libpcap()
        handle = lib.pcap_open_dead(linktype, _SNAPLEN)
        program = _Program()
        try:
            if lib.pcap_compile(handle, ctypes.byref(program), expression.encode(), 1, _NETMASK_UNKNOWN) != 0:
                reason = (lib.pcap_geterr(handle) or b"").decode(errors="replace")
                raise InputError(f"--bpf: cannot compile the filter ({reason or 'libpcap refused it'})")
            count = program.bf_len
            self.instructions = ctypes.create_string_buffer(ctypes.string_at(program.bf_insns, count * 8), count * 8)
            lib.pcap_freecode(ctypes.byref(program))
        finally:
            lib.pcap_close(handle)
        # struct sock_fprog: the instruction count and a pointer to them (kept alive by this object)
        self.fprog = struct.pack("@HP", count, ctypes.addressof(self.instructions))
