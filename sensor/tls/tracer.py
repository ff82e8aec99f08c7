"""Plaintext of OpenSSL's SSL_write/SSL_read(_ex), by eBPF uprobes (ssl_trace.bpf.c).

    with SslTracer() as tracer:
        for path in targets.discover():
            tracer.attach(path)
        while running:
            for chunk in tracer.poll(100):
                ...

A Chunk is what one SSL call moved: at most MAX_CHUNK * MAX_PIECES bytes of it
are captured, `length` says how many there were.
"""
from __future__ import annotations

import ctypes
import errno
import ipaddress
import logging
import os
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from . import libbpf
from .libbpf import BpfUnavailable

log = logging.getLogger(__name__)

__all__ = ["Chunk", "SslTracer", "BpfUnavailable", "OBJECT", "MAX_CHUNK", "MAX_PIECES", "PROGRAMS"]

OBJECT = Path(__file__).with_name("ssl_trace.bpf.o")
MAX_CHUNK = 16384  # as in ssl_trace.bpf.c
MAX_PIECES = 4
# struct chunk's header: ts_ns ssl pid tid len offset size family sport dport dir flags saddr daddr comm
_HEADER = struct.Struct("<QQIIIIIHHHBB16s16s16s")
_LAST = 1
# function: (entry program, return program)
_UPROBES = {
    "SSL_write": ("ssl_wr_enter", "ssl_wr_exit"),
    "SSL_read": ("ssl_rd_enter", "ssl_rd_exit"),
    "SSL_write_ex": ("ssl_wrex_enter", "ssl_wrex_exit"),  # OpenSSL >= 1.1.1 only
    "SSL_read_ex": ("ssl_rdex_enter", "ssl_rdex_exit"),
}
# programs that learn a connection's addresses, best first
_SOCKET_PROBES = {"tracepoint": ("ssl_sock_send", "ssl_sock_recv"), "kprobe": ("ssl_tcp_send", "ssl_tcp_recv"),
                  None: None}
PROGRAMS = frozenset(p for pair in [*_UPROBES.values(), *_SOCKET_PROBES.values()] if pair for p in pair)
_STALE_NS = 1_000_000_000  # a call whose last piece never came (ring full) is given up after this


@dataclass(frozen=True, slots=True, repr=False)
class Chunk:
    pid: int
    tid: int
    comm: str
    ssl: int
    direction: str  # "write": the traced process sent it; "read": it received it
    timestamp_ns: int  # CLOCK_MONOTONIC, as time.monotonic_ns()
    length: int  # bytes the call moved; more than len(data) when cut
    data: bytes
    local: tuple[str, int] | None  # the traced process's end; None: unknown
    remote: tuple[str, int] | None

    @property
    def truncated(self) -> bool:
        return len(self.data) < self.length

    def __repr__(self) -> str:  # never the plaintext itself
        return (f"Chunk(pid={self.pid}, tid={self.tid}, comm={self.comm!r}, ssl={self.ssl:#x}, "
                f"direction={self.direction!r}, timestamp_ns={self.timestamp_ns}, length={self.length}, "
                f"captured={len(self.data)}, local={self.local}, remote={self.remote})")


def _endpoint(family: int, addr: bytes, port: int) -> tuple[str, int] | None:
    if family == socket.AF_INET:
        return str(ipaddress.IPv4Address(addr[:4])), port
    if family == socket.AF_INET6:
        ip = ipaddress.IPv6Address(addr)
        return str(ip.ipv4_mapped or ip), port
    return None


class SslTracer:
    """Loads ssl_trace.bpf.o; attach() puts its uprobes on one library or executable."""

    def __init__(self, obj_path: str | os.PathLike = OBJECT, ring_bytes: int | None = None):
        self._lib = libbpf.lib()
        self._obj = self._rb = None
        self._socket_links: list[int] = []
        self._links: dict[str, list[int]] = {}
        self._pending: dict[int, tuple[tuple, list[bytes]]] = {}  # tid -> first piece's header, pieces
        self._ready: list[Chunk] = []
        self.addresses = None  # which programs tell the addresses: "tracepoint", "kprobe" or None
        try:
            for kind in _SOCKET_PROBES:  # a failed load cannot be retried: reopen for the next kind
                try:
                    self._load(obj_path, ring_bytes, kind)
                    break
                except BpfUnavailable as e:
                    if kind is None or not self._obj or e.errno == errno.EPERM:  # not the socket programs' fault
                        raise
                    log.debug("no %s programs for the addresses: %s", kind, e)
                    self.close()
            if self.addresses is None:
                log.warning("TLS chunks will come without addresses: neither tp_btf nor kprobes work here")
            self._callback = libbpf.RingCallback(self._on_sample)  # libbpf calls it: keep it alive
            fd = self._lib.bpf_map__fd(self._map("chunks"))
            self._rb = libbpf.check_ptr(self._lib.ring_buffer__new(fd, self._callback, None, None),
                                        "cannot open the ring buffer")
        except BaseException:
            self.close()
            raise

    def _load(self, obj_path, ring_bytes: int | None, kind: str | None) -> None:
        self._obj = libbpf.check_ptr(self._lib.bpf_object__open_file(os.fsencode(obj_path), None),
                                     f"cannot open {obj_path}")
        for k, names in _SOCKET_PROBES.items():
            for name in names or ():
                self._lib.bpf_program__set_autoload(self._prog(name), k == kind)
        if ring_bytes:  # a power of 2, a multiple of the page size
            libbpf.check_rc(self._lib.bpf_map__set_max_entries(self._map("chunks"), ring_bytes), "ring size")
        libbpf.check_rc(self._lib.bpf_object__load(self._obj), "cannot load the TLS tracer's BPF programs")
        for name in _SOCKET_PROBES[kind] or ():
            self._socket_links.append(libbpf.check_ptr(self._lib.bpf_program__attach(self._prog(name)),
                                                       f"cannot attach {name}"))
        self.addresses = kind

    def _prog(self, name: str) -> int:
        return libbpf.check_ptr(self._lib.bpf_object__find_program_by_name(self._obj, name.encode()), name)

    def _map(self, name: str) -> int:
        return libbpf.check_ptr(self._lib.bpf_object__find_map_by_name(self._obj, name.encode()), name)

    def attach(self, path: str | os.PathLike, pid: int = -1) -> list[str]:
        """Uprobes on the SSL functions `path` defines, for one process or all (-1).
        Returns the functions attached (none if already attached); raises BpfUnavailable
        when none could be."""
        path = os.fspath(path)
        if path in self._links:
            return []
        if not os.path.isfile(path):  # libbpf would say ENOENT, as for a missing function
            raise FileNotFoundError(errno.ENOENT, "no such file to attach to", path)
        links: list[int] = []
        found = []
        try:
            for func, progs in _UPROBES.items():
                pair = []
                try:
                    for prog, retprobe in zip(progs, (False, True)):
                        opts = libbpf.UprobeOpts(sz=ctypes.sizeof(libbpf.UprobeOpts), retprobe=retprobe,
                                                 func_name=func.encode())
                        link = self._lib.bpf_program__attach_uprobe_opts(self._prog(prog), pid, path.encode(), 0,
                                                                         ctypes.byref(opts))
                        pair.append(libbpf.check_ptr(link, f"cannot attach to {func} in {path}"))
                except BpfUnavailable as e:
                    for link in pair:
                        self._lib.bpf_link__destroy(link)
                    if e.errno != errno.ENOENT:  # ENOENT: no such function here (an older OpenSSL)
                        raise
                    continue
                links += pair
                found.append(func)
            if not found:
                raise BpfUnavailable(f"{path} defines none of {', '.join(_UPROBES)}", errno.ENOENT)
        except BaseException:
            for link in links:
                self._lib.bpf_link__destroy(link)
            raise
        self._links[path] = links
        return found

    def detach(self, path: str | os.PathLike) -> None:
        for link in self._links.pop(os.fspath(path), []):
            self._lib.bpf_link__destroy(link)

    @property
    def attached(self) -> list[str]:
        return list(self._links)

    def poll(self, timeout_ms: int = 100) -> list[Chunk]:
        """Chunks that arrived, waiting up to timeout_ms for the first."""
        if self._rb is None:
            raise ValueError("SslTracer is closed")
        rc = self._lib.ring_buffer__poll(self._rb, timeout_ms)
        if rc < 0 and rc != -errno.EINTR:
            libbpf.check_rc(rc, "ring buffer poll")
        old = time.monotonic_ns() - _STALE_NS
        for tid in [t for t, (head, _) in self._pending.items() if head[0] < old]:
            self._finish(tid)
        ready, self._ready = self._ready, []
        return ready

    def fileno(self) -> int:
        """An epoll descriptor that is readable when chunks wait: select() it with capture rings."""
        return self._lib.ring_buffer__epoll_fd(self._rb)

    def lost(self) -> int:
        """Chunk events dropped so far: the ring buffer was full (see ssl_trace.bpf.c)."""
        key, value = ctypes.c_uint32(0), ctypes.c_uint64(0)
        libbpf.check_rc(self._lib.bpf_map__lookup_elem(self._map("lost"), ctypes.byref(key), 4,
                                                       ctypes.byref(value), 8, 0), "lost counter")
        return value.value

    def _on_sample(self, ctx, data, size) -> int:
        try:
            self._take(ctypes.string_at(data, size))
        except Exception:  # must not unwind into libbpf
            log.exception("bad TLS chunk event")
        return 0

    def _take(self, raw: bytes) -> None:
        head = _HEADER.unpack_from(raw)
        tid, offset, size, flags = head[3], head[5], head[6], head[11]
        data = raw[_HEADER.size:_HEADER.size + size]
        if offset == 0:
            self._finish(tid)  # the thread's previous call lost its last piece
            self._pending[tid] = (head, [data])
        elif tid in self._pending and sum(map(len, self._pending[tid][1])) == offset:
            self._pending[tid][1].append(data)
        else:
            return  # its first pieces were lost: there is no prefix to attach it to
        if flags & _LAST:
            self._finish(tid)

    def _finish(self, tid: int) -> None:
        if tid not in self._pending:
            return
        (ts, ssl, pid, tid, length, _, _, family, sport, dport, direction, _, saddr, daddr, comm), pieces = \
            self._pending.pop(tid)
        self._ready.append(Chunk(pid=pid, tid=tid, comm=comm.split(b"\0", 1)[0].decode(errors="replace"), ssl=ssl,
                                 direction="read" if direction else "write", timestamp_ns=ts, length=length,
                                 data=b"".join(pieces), local=_endpoint(family, saddr, sport),
                                 remote=_endpoint(family, daddr, dport)))

    def close(self) -> None:
        """Destroys every link, the ring buffer and the object; safe to call again."""
        if self._rb:
            self._lib.ring_buffer__free(self._rb)
            self._rb = None
        for path in list(self._links):
            self.detach(path)
        while self._socket_links:
            self._lib.bpf_link__destroy(self._socket_links.pop())
        if self._obj:
            self._lib.bpf_object__close(self._obj)
            self._obj = None

    def __enter__(self) -> SslTracer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
