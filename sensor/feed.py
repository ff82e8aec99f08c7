"""What `sniff` does with the exchanges capture completes: classify them without ever making
capture wait, and publish their events.

Exchanges wait in a bounded backlog until the worker pool has room; they then go as one batch,
so batches are small when the workers keep up (events come quickly) and large when they do
not (spaCy and the detectors work best on batches). When the backlog fills, adaptive sampling
(sampling.py) classifies a sample of each endpoint and every new shape; beyond the backlog's
bound an exchange is dropped and counted (queue_full). Capture never stalls, so the kernel's
ring never overflows because classification is behind.
"""
from __future__ import annotations

import time
from collections import deque

from . import policy
from .engine import BATCH, Sensor
from .model import Drop, Exchange
from .pool import ClassifierPool
from .sampling import OVERLOAD, Sampler

_BATCH_BYTES = 8 << 20  # a batch's bodies: bounds what the workers hold at once, with the pool's batch limit


def _size(exchange: Exchange) -> int:
    return len(exchange.request.body) + (len(exchange.response.body) if exchange.response else 0)


class Feed:
    def __init__(self, sensor: Sensor, publish, emit_all: bool = False):
        self.sensor, self.publish, self.emit_all = sensor, publish, emit_all
        config = sensor.config
        self.pool = ClassifierPool(config, config.workers, sensor.stats, ready=True) if config.workers else None
        self.sampler = Sampler(config.sample_first) if self.pool is not None and config.sampling else None
        self.backlog: deque[Exchange] = deque()
        self.backlog_bytes = 0
        self.max_backlog, self.max_backlog_bytes = config.max_backlog, config.max_backlog_bytes

    def offer(self, exchanges: list[Exchange]) -> bool:
        """Take newly completed exchanges, publish what has been classified; True while work is
        in flight (the caller then looks back soon rather than waiting for packets)."""
        if self.pool is None:  # classified here, as they come
            for start in range(0, len(exchanges), BATCH):
                self.publish(self.sensor.process_many(exchanges[start:start + BATCH], self.emit_all))
            return False
        for exchange in exchanges:
            if self.sampler is not None and not policy.acted(exchange.enforcement):  # the proxy's actions are all reported
                exchange.adjusted_count = self.sampler.admit(exchange, len(self.backlog) / self.max_backlog)
                if not exchange.adjusted_count:
                    self.sensor.stats.sample(OVERLOAD)
                    continue
            size = _size(exchange)
            if len(self.backlog) >= self.max_backlog or self.backlog_bytes + size > self.max_backlog_bytes:
                self.sensor.stats.drop(Drop.QUEUE_FULL)
                continue
            self.backlog.append(exchange)
            self.backlog_bytes += size
        self._submit()
        self._publish(self.pool.results())
        return bool(self.backlog or self.pool.pending)

    def _submit(self) -> None:
        while self.backlog and not self.pool.full():
            batch, size = [], 0
            while self.backlog and len(batch) < BATCH and size < _BATCH_BYTES:
                batch.append(self.backlog.popleft())
                size += _size(batch[-1])
            self.backlog_bytes -= size
            self.pool.submit(batch)

    def _publish(self, results) -> None:
        for events, per_exchange in results:
            self.publish(self.sensor.account(events, per_exchange, self.emit_all))

    def held(self) -> int:
        """Exchanges taken in and not yet published."""
        return 0 if self.pool is None else len(self.backlog) + sum(len(batch) for batch, _ in self.pool.pending)

    def close(self, deadline: float | None = None) -> None:
        """Classify and publish everything still held, then stop the workers; past `deadline` (a
        time), what is left is counted (shutdown) instead."""
        if self.pool is None:
            return
        try:
            while self.backlog and (deadline is None or time.time() < deadline):
                self._publish(self.pool.results(wait_for=1 if self.pool.full() else 0))
                self._submit()
            if self.backlog:
                self.sensor.stats.drop(Drop.SHUTDOWN, len(self.backlog))
                self.backlog.clear()
            self._publish(self.pool.drain())
        finally:
            self.pool.close()
