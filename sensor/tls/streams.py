"""TLS plaintext chunks (tracer.py) in, Exchanges out, through the same HTTP/1.x, HTTP/2 and
WebSocket engines as captured packets (sensor/wire/session.py).

Each traced connection is one OpenSSL object (pid, SSL pointer). What the process wrote is one
direction of the stream and what it read the other; byte offsets stand in for TCP sequence
numbers, so requests and responses pair as they do on the wire. A call cut short (beyond the
probe's 64 KiB) is a gap. When both ends of a connection are traced on this node (a client and
a server both linked to libssl), the first one seen carries the data and the other only lends
its process's name: one exchange, reported once.

Bounded: connections tracked (oldest evicted, counted), bytes per second per process (beyond,
chunks are dropped and counted), idle connections closed after `idle_timeout`.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict

from ..config import Config
from ..model import Drop, Exchange
from ..wire import http1
from ..wire.session import HttpConnection, make_exchange
from .tracer import Chunk

_UNKNOWN_LOCAL, _UNKNOWN_REMOTE = ("", -1), ("", -2)  # ends of a connection whose addresses are unknown
# A pod's UID in a cgroup path, as the kubelet writes it with the systemd driver
# (kubepods-burstable-pod1b2c..._..._.slice) or the cgroupfs one (/kubepods/burstable/pod1b2c-...).
_POD_UID = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")


def pod_uid(pid: int, proc: str = "/proc") -> str | None:
    """The UID of the Kubernetes pod a process runs in, from its cgroup; None outside one."""
    try:
        with open(f"{proc}/{pid}/cgroup") as fh:
            m = _POD_UID.search(fh.read())
    except OSError:  # gone already
        return None
    return m.group(1).replace("_", "-") if m else None


class _NoTcp:
    connections: dict = {}  # HttpConnection asks the TCP layer about data held out of order: none here


class _Conn:
    """One traced connection, and what its HttpConnection reads of a capture session."""

    tcp = _NoTcp()

    def __init__(self, streams: "TlsStreams", local, remote, process, now: float):
        self.stats, self.max_body, self.max_head, self.bodies = \
            streams.stats, streams.max_body, streams.max_head, streams.bodies
        self.local, self.remote, self.process = local, remote, process
        self.pod_uid = pod_uid(process[0])
        self.offsets = {local: 0, remote: 0}  # bytes of each direction so far: their sequence numbers
        self.last_seen = now
        self.peer_process = self.peer_pod_uid = None  # the other end's (pid, comm) and pod, when it is traced too
        self.http = HttpConnection(self, (local, remote))

    def exchange(self, request: http1.Message, response: http1.Message | None, client, server) -> Exchange:
        """As a capture makes them, marked as TLS, with each traced process named on its side."""
        exchange = make_exchange(self.stats, request, response, client, server)
        exchange.tls = True
        for peer, end in ((exchange.source, client), (exchange.destination, server)):
            if end is None:
                continue
            if end[1] is not None and end[1] < 0:
                peer.ip = peer.port = None  # addresses unknown
            ours = end == self.local
            peer.process = self.process if ours else self.peer_process
            peer.pod_uid = self.pod_uid if ours else self.peer_pod_uid
        return exchange


class TlsStreams:
    def __init__(self, stats, config: Config | None = None, own_pid: int | None = None):
        config = config or Config()
        self.stats, self.config = stats, config
        self.max_body, self.max_head = config.max_body_bytes, config.max_header_bytes
        self.bodies = http1.BodyBudget(config.max_bodies_buffered)  # shared by every connection
        self.conns: OrderedDict[tuple[int, int], _Conn] = OrderedDict()  # (pid, ssl), least recently used first
        self.owners: dict[tuple, tuple[int, int]] = {}  # a connection's address pair -> the (pid, ssl) read
        self.own_pid = os.getpid() if own_pid is None else own_pid
        self.budgets: dict[int, list[float]] = {}  # pid -> [second, bytes taken in it]

    def chunks(self, chunks: list[Chunk], now: float) -> list[Exchange]:
        out: list[Exchange] = []
        touched = {}
        for chunk in chunks:
            conn = self._conn(chunk, now)
            if conn is None:
                continue
            sender = conn.local if chunk.direction == "write" else conn.remote
            other = conn.remote if sender is conn.local else conn.local
            seq, ack = conn.offsets[sender], conn.offsets[other]
            if self._over_budget(chunk, now):
                conn.http.gap(sender, chunk.length)  # not read: a hole in that direction
                self.stats.drop(Drop.TLS_RATE_LIMITED)
            else:
                conn.http.feed(sender, chunk.data, chunk.timestamp_ns / 1e9, seq, ack)
                if chunk.truncated:
                    conn.http.gap(sender, chunk.length - len(chunk.data))
                    self.stats.drop(Drop.TLS_CHUNK_CUT)
            conn.offsets[sender] = (seq + chunk.length) % (1 << 32)
            conn.last_seen = now
            touched[id(conn)] = conn
        for conn in touched.values():
            conn.http.settle(out)
        return out

    def _conn(self, chunk: Chunk, now: float) -> _Conn | None:
        key = (chunk.pid, chunk.ssl)
        conn = self.conns.get(key)
        if conn is not None:
            self.conns.move_to_end(key)
            return conn
        if chunk.pid == self.own_pid:
            return None  # the sensor's own HTTPS (webhooks, the hub)
        local, remote = chunk.local or _UNKNOWN_LOCAL, chunk.remote or _UNKNOWN_REMOTE
        pair = frozenset((local, remote)) if chunk.local and chunk.remote else None
        owner = self.conns.get(self.owners.get(pair)) if pair else None
        if owner is not None:  # the other end of a connection already read: it names its process, no more
            if owner.peer_process is None:
                owner.peer_process, owner.peer_pod_uid = (chunk.pid, chunk.comm), pod_uid(chunk.pid)
            return None
        if len(self.conns) >= self.config.max_connections:
            self._close(next(iter(self.conns)), [])
            self.stats.drop(Drop.STREAM_EVICTED)
        conn = self.conns[key] = _Conn(self, local, remote, (chunk.pid, chunk.comm), now)
        if pair:
            self.owners[pair] = key
        return conn

    def _over_budget(self, chunk: Chunk, now: float) -> bool:
        """Bytes per second per process beyond tls.max_process_bytes_per_second are not read."""
        second = int(now)
        budget = self.budgets.get(chunk.pid)
        if budget is None or budget[0] != second:
            if len(self.budgets) > 4 * self.config.max_connections:
                self.budgets.clear()
            budget = self.budgets[chunk.pid] = [second, 0]
        budget[1] += chunk.length
        return budget[1] > self.config.tls_max_process_bytes_per_second

    def expire(self, now: float) -> list[Exchange]:
        """Connections idle for capture.idle_timeout_seconds: OpenSSL's end of them is not traced."""
        out: list[Exchange] = []
        for key in [k for k, c in self.conns.items() if now - c.last_seen > self.config.idle_timeout]:
            self._close(key, out)
        return out

    def finish(self) -> list[Exchange]:
        out: list[Exchange] = []
        for key in list(self.conns):
            self._close(key, out)
        return out

    def _close(self, key, out: list) -> None:
        conn = self.conns[key]
        conn.http.close(out)
        del self.conns[key]
        pair = frozenset((conn.local, conn.remote))
        if self.owners.get(pair) == key:
            del self.owners[pair]
