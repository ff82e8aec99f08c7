"""`sniff --tls`: the TLS tracer as a source beside the capture rings. It finds what to trace
(targets.py) at start and every tls.rescan_interval_seconds (processes started later with their
own OpenSSL; those using the system's libssl are traced from the start, uprobes belong to the
file), turns chunks into exchanges (streams.py), and counts what the ring buffer lost."""
from __future__ import annotations

import logging
import time

from ..config import Config
from ..errors import InputError
from ..model import Drop, Exchange
from . import targets
from .streams import TlsStreams
from .tracer import BpfUnavailable, SslTracer

log = logging.getLogger(__name__)


class TlsSource:
    def __init__(self, stats, config: Config):
        self.stats, self.config = stats, config
        try:
            self.tracer = SslTracer(ring_bytes=config.tls_ring_bytes)
        except BpfUnavailable as e:
            raise InputError(f"--tls: {e}") from None
        self.streams = TlsStreams(stats, config)
        self.lost = 0
        self.next_scan = 0.0
        try:
            errors: list[str] = []
            if not self._scan(time.monotonic(), errors):
                raise InputError(f"--tls: {errors[0]}" if errors else
                                 "--tls: found no OpenSSL to trace (no libssl.so.3 on this system or in any process)")
        except BaseException:
            self.tracer.close()
            raise

    def fileno(self) -> int:
        return self.tracer.fileno()

    def read(self) -> list[Exchange]:
        """The exchanges the chunks waiting in the ring buffer complete."""
        return self.streams.chunks(self.tracer.poll(0), time.monotonic())

    def expire(self) -> list[Exchange]:
        """Idle connections closed, new processes looked for, ring-buffer losses counted."""
        now = time.monotonic()
        if now >= self.next_scan:
            self._scan(now)
        lost = self.tracer.lost()
        if lost > self.lost:
            self.stats.drop(Drop.TLS_RINGBUF, lost - self.lost)
            self.lost = lost
        return self.streams.expire(now)

    def _scan(self, now: float, errors: list | None = None) -> list[str]:
        """Attach to every file not yet traced; the files traced. Why a file could not be, in `errors`."""
        self.next_scan = now + self.config.tls_rescan_interval
        for path in targets.discover():
            try:
                if self.tracer.attach(path):
                    log.info("tracing OpenSSL in %s", path)
            except (BpfUnavailable, OSError) as e:  # a process gone meanwhile, a file without the symbols
                log.debug("not tracing %s: %s", path, e)
                if errors is not None:
                    errors.append(str(e))
        return self.tracer.attached

    def finish(self) -> list[Exchange]:
        return self.read() + self.streams.finish()

    def close(self) -> None:
        self.tracer.close()
