"""Live capture for `pii-sensor sniff`: scapy's PF_PACKET sockets feed a CaptureSession.

Several interfaces are read with select(); idle streams are flushed periodically;
SIGINT and SIGTERM end the loop, after which everything held is flushed.
"""
from __future__ import annotations

import select
import signal
import time

from scapy.all import conf

from ..config import Config
from ..errors import InputError
from ..model import Drop
from ..wire.session import CaptureSession

PACKET_OUTGOING = 4


class Stop:
    def __init__(self):
        self.requested = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._set)

    def _set(self, *_):
        self.requested = True


def open_sockets(interfaces: list[str], bpf: str | None):
    sockets = []
    for iface in interfaces:
        try:
            sockets.append(conf.L2listen(iface=None if iface == "any" else iface, filter=bpf))
        except OSError as e:
            raise InputError(f"--interface {iface}: cannot capture: {e.strerror or e}") from None
        except Exception as e:  # scapy reports bad BPF filters and unknown interfaces in many ways
            raise InputError(f"--interface {iface}: cannot capture: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return sockets


def run(sockets, stats, config: Config, on_exchanges) -> None:
    """Capture from open sockets until stopped; `on_exchanges(list)` gets every batch of completed exchanges."""
    stop = Stop()
    session = CaptureSession(stats, config)
    linktypes = {}
    last_flush = time.time()
    try:
        while not stop.requested:
            try:
                ready, _, _ = select.select(sockets, [], [], 0.5)
            except InterruptedError:
                continue
            batch = []
            for sock in ready:
                try:
                    frame, sa_ll, ts = sock._recv_raw(sock.ins, 65535)
                except OSError:
                    stats.drop(Drop.CAPTURE_ERROR)
                    continue
                if frame is None or (sa_ll[2] == PACKET_OUTGOING and sa_ll[0] == "lo"):
                    continue  # loopback shows each packet twice; like libpcap, keep the incoming copy
                cls = sock.LL
                linktype = linktypes.get(cls)
                if linktype is None:
                    linktype = linktypes[cls] = conf.l2types.layer2num.get(cls, 1)
                try:
                    batch += session.frame(linktype, frame, ts or time.time())
                except Exception:  # noqa: BLE001 - one bad packet must not stop the sensor: counted
                    stats.drop(Drop.INTERNAL_ERROR)
            now = time.time()
            if now - last_flush >= config.flush_interval:
                batch += session.expire(now)
                last_flush = now
            if batch:
                on_exchanges(batch)
        on_exchanges(session.finish())
    finally:
        stats.packets += session.packets
        for sock in sockets:
            sock.close()
