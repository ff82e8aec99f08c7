"""Live capture for `pii-sensor sniff`: memory-mapped AF_PACKET rings (ring.py) feed a CaptureSession.

Several interfaces are read as they become ready; idle streams are flushed and the kernel's
drop counters read periodically; SIGINT and SIGTERM end the loop, after which what the rings
and the session hold is processed.
"""
from __future__ import annotations

import signal
import time

from ..config import Config
from ..model import Drop
from ..wire.session import CaptureSession
from .ring import BLOCK_TIMEOUT_MS, Ring, wait


class Stop:
    def __init__(self):
        self.requested = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._set)

    def _set(self, *_):
        self.requested = True


def open_rings(interfaces: list[str], bpf: str | None, config: Config) -> list[Ring]:
    rings: list[Ring] = []
    try:
        for interface in interfaces:
            rings.append(Ring(interface, bpf, config.ring_bytes))
    except Exception:
        for ring in rings:
            ring.close()
        raise
    return rings


def run(rings: list[Ring], stats, config: Config, on_exchanges, tls=None) -> None:
    """Capture until stopped; `on_exchanges(list)` gets the exchanges completed since its last call,
    at least twice a second, and says whether it has work in flight (then it is called again soon).
    `tls`: a TlsSource (sniff --tls), read as its ring buffer fills, beside the capture rings."""
    stop = Stop()
    session = CaptureSession(stats, config)
    batch: list = []

    def packet(linktype, frame, ts) -> None:
        try:
            batch.extend(session.frame(linktype, frame, ts))
        except Exception:  # noqa: BLE001 - one bad packet must not stop the sensor: counted
            stats.drop(Drop.INTERNAL_ERROR)

    def count_kernel_drops() -> None:
        for ring in rings:
            if dropped := ring.kernel_drops():
                stats.drop(Drop.CAPTURE_KERNEL, dropped)

    last_flush = time.time()
    busy = False
    sources = [tls] if tls is not None else []
    try:
        while not stop.requested:
            try:
                ready = wait(rings + sources, 0.02 if busy else 0.5)
            except InterruptedError:
                continue
            for ring in ready:
                if ring is tls:
                    batch += tls.read()
                else:
                    ring.read(packet)  # a few blocks at a time: memory stays bounded, the rest waits in the ring
            now = time.time()
            if now - last_flush >= config.flush_interval:
                batch += session.expire(now)
                if tls is not None:
                    batch += tls.expire()
                count_kernel_drops()
                last_flush = now
            busy = on_exchanges(batch[:])
            batch.clear()
        # what arrived before the stop, also in blocks the kernel hands over only when their timeout
        # expires; bounded, since traffic does not stop because the sensor does
        deadline = time.time() + 10 * BLOCK_TIMEOUT_MS / 1000
        while time.time() < deadline and (ready := wait(rings, 2 * BLOCK_TIMEOUT_MS / 1000)):
            for ring in ready:
                ring.read(packet)
        count_kernel_drops()
        on_exchanges(batch + session.finish() + (tls.finish() if tls is not None else []))
    finally:
        for ring in rings:
            ring.close()
        if tls is not None:
            tls.close()
