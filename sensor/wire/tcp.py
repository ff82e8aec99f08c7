"""TCP stream reassembly as a sans-I/O engine: segments in, ordered byte events out.

Handles out-of-order segments, retransmissions, overlaps, sequence wrap-around,
streams picked up mid-way (no SYN seen), gaps (skipped and reported), FIN and RST,
and idle timeouts. Bounded: connections tracked and bytes buffered per direction;
what is dropped is counted in `stats`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .packets import Segment
from ..model import Drop, Skip

MOD = 1 << 32
ACK_GRACE = 0.2  # seconds


def seq_diff(a: int, b: int) -> int:
    """a - b in sequence space, wrap-around aware."""
    d = (a - b) % MOD
    return d - MOD if d >= MOD // 2 else d


Endpoint = tuple[str, int]


@dataclass(slots=True)
class Data:
    conn: tuple
    sender: Endpoint
    data: bytes = field(repr=False)  # stream bytes never print
    ts: float
    seq: int = 0  # sequence number of the first byte
    ack: int | None = None  # the acknowledgement the sender's segment carried: how much of the peer's stream it had


@dataclass(slots=True)
class Gap:
    conn: tuple
    sender: Endpoint
    size: int


@dataclass(slots=True)
class Closed:
    conn: tuple


@dataclass(slots=True)
class HalfStream:
    next_seq: int | None = None
    pending: dict = field(default_factory=dict, repr=False)  # seq -> (bytes, ts, ack), out of order
    pending_bytes: int = 0
    fin_seq: int | None = None
    done: bool = False
    peer_ack: int | None = None  # the latest acknowledgement of this direction's bytes
    hole_acked_at: float | None = None


@dataclass(slots=True)
class Connection:
    key: tuple
    halves: dict  # Endpoint -> HalfStream
    last_ts: float
    client: Endpoint | None = None  # the SYN sender, when the handshake was seen


def connection_key(a: Endpoint, b: Endpoint) -> tuple:
    return (a, b) if a <= b else (b, a)


class Reassembler:
    def __init__(self, stats, max_connections: int = 100_000, max_buffer: int = 1 << 20, idle_timeout: float = 120.0,
                 max_buffered: int = 32 << 20):
        self.stats = stats
        self.max_connections = max_connections
        self.max_buffer = max_buffer  # out-of-order bytes held per direction
        self.max_buffered = max_buffered  # ... and across all connections
        self.buffered = 0
        self.idle_timeout = idle_timeout
        self.connections: dict[tuple, Connection] = {}  # insertion order = age, refreshed on use

    def feed(self, seg: Segment) -> list:
        sender, receiver = (seg.src, seg.sport), (seg.dst, seg.dport)
        key = connection_key(sender, receiver)
        events: list = []
        conn = self.connections.get(key)
        if conn is not None and seg.syn and not seg.has_ack and conn.halves.get(sender, HalfStream()).next_seq not in (None, (seg.seq + 1) % MOD):
            events += self._close(conn)  # the 4-tuple is reused by a new connection
            conn = None
        if conn is None:
            if seg.rst or (seg.fin and not seg.payload):
                return events  # teardown of a connection we never saw
            if len(self.connections) >= self.max_connections:
                oldest = next(iter(self.connections.values()))
                self.stats.drop(Drop.STREAM_EVICTED)
                events += self._close(oldest)
            conn = self.connections[key] = Connection(key, {sender: HalfStream(), receiver: HalfStream()}, seg.ts)
        else:
            self.connections.pop(key)  # move to the young end
            self.connections[key] = conn
        conn.last_ts = seg.ts
        half = conn.halves[sender]

        if seg.rst:
            events += self._close(conn)
            return events
        if seg.has_ack:
            conn.halves[receiver].peer_ack = seg.ack
        events += self._acked_holes(conn, seg.ts)
        seq = seg.seq
        if seg.syn:
            if not seg.has_ack:
                conn.client = sender
            half.next_seq = (seq + 1) % MOD
            seq = (seq + 1) % MOD
        if seg.payload:
            if half.next_seq is None:
                half.next_seq = seq  # picked up mid-stream
            events += self._data(conn, sender, half, seq, seg.payload, seg.ts, seg.ack if seg.has_ack else None)
        if seg.fin:
            half.fin_seq = (seq + len(seg.payload)) % MOD
        if half.fin_seq is not None and half.next_seq == half.fin_seq and not half.pending:
            half.done = True
        if all(h.done for h in conn.halves.values()):
            events += self._close(conn)
        return events

    def _data(self, conn, sender, half, seq, payload, ts, ack) -> list:
        events = []
        d = seq_diff(seq, half.next_seq)
        if d + len(payload) <= 0:
            self.stats.skip(Skip.TCP_RETRANSMISSION)
            return events
        if d < 0:  # overlaps what was delivered: keep only the new tail
            payload, seq = payload[-d:], half.next_seq
            d = 0
        if d == 0:
            events.append(Data(conn.key, sender, payload, ts, seq, ack))
            half.next_seq = (seq + len(payload)) % MOD
            events += self._drain(conn, sender, half)
            return events
        old = half.pending.get(seq)
        if old is None or len(old[0]) < len(payload):
            grown = len(payload) - (len(old[0]) if old else 0)
            half.pending_bytes += grown
            self.buffered += grown
            half.pending[seq] = (payload, ts, ack)
        while (half.pending_bytes > self.max_buffer or self.buffered > self.max_buffered) and half.pending:
            events += self._skip_gap(conn, sender, half)  # out of room: give up on the hole
        return events

    def _acked_holes(self, conn, ts: float) -> list:
        """A hole the peer has acknowledged holds bytes the receiver got but the capture missed:
        no retransmission will fill it. Skip it once the acknowledgement is ACK_GRACE old (the
        grace absorbs captures that list an ACK before the segment it acknowledges)."""
        events = []
        for sender, half in conn.halves.items():
            if not half.pending or half.peer_ack is None or seq_diff(half.peer_ack, half.next_seq) <= 0:
                half.hole_acked_at = None
            elif half.hole_acked_at is None:
                half.hole_acked_at = ts
            elif ts - half.hole_acked_at >= ACK_GRACE:
                half.hole_acked_at = None
                events += self._skip_gap(conn, sender, half)
        return events

    def _drain(self, conn, sender, half) -> list:
        events = []
        while half.pending:
            ready = [s for s in half.pending if seq_diff(s, half.next_seq) <= 0]
            if not ready:
                break
            for s in sorted(ready, key=lambda s: seq_diff(s, half.next_seq)):
                payload, ts, ack = half.pending.pop(s)
                half.pending_bytes -= len(payload)
                self.buffered -= len(payload)
                d = seq_diff(s, half.next_seq)
                if d + len(payload) <= 0:
                    self.stats.skip(Skip.TCP_RETRANSMISSION)
                    continue
                payload = payload[-d:] if d < 0 else payload
                events.append(Data(conn.key, sender, payload, ts, half.next_seq, ack))
                half.next_seq = (half.next_seq + len(payload)) % MOD
        return events

    def _skip_gap(self, conn, sender, half) -> list:
        """Jump over the hole before the earliest buffered segment; report its size."""
        first = min(half.pending, key=lambda s: seq_diff(s, half.next_seq))
        size = seq_diff(first, half.next_seq)
        self.stats.drop(Drop.TCP_GAP)
        half.next_seq = first
        return [Gap(conn.key, sender, size)] + self._drain(conn, sender, half)

    def _close(self, conn) -> list:
        events = []
        for sender, half in conn.halves.items():
            while half.pending:
                events += self._skip_gap(conn, sender, half)
        self.connections.pop(conn.key, None)
        events.append(Closed(conn.key))
        return events

    def expire(self, now: float) -> list:
        """Close connections idle longer than the timeout (live capture calls this periodically)."""
        events = []
        for conn in list(self.connections.values()):
            if now - conn.last_ts <= self.idle_timeout:
                break  # ordered by last use: the rest are younger
            self.stats.skip(Skip.TCP_IDLE_TIMEOUT)
            events += self._close(conn)
        return events

    def finish(self) -> list:
        """End of input: deliver what is buffered, skipping holes, and close everything."""
        events = []
        for conn in list(self.connections.values()):
            events += self._close(conn)
        return events
