"""Event throttling per endpoint: a new data type on an endpoint is reported at once;
repeats are let through at most once per `interval` seconds. Metrics still count all."""
from __future__ import annotations

import time

from ..model import Event


class EventLimiter:
    def __init__(self, interval: float = 0.0, max_endpoints: int = 10_000, clock=time.monotonic):
        self.interval, self.max_endpoints, self.clock = interval, max_endpoints, clock
        self.endpoints: dict[tuple, tuple[float, frozenset]] = {}  # key -> (last sent, types seen)
        self.suppressed = 0

    def allow(self, event: Event) -> bool:
        if self.interval <= 0:
            return True
        key = (event.destination.host or event.destination.ip, event.route)
        now = self.clock()
        types = frozenset(event.data_types)
        last, seen = self.endpoints.get(key, (None, frozenset()))
        if last is None or not types <= seen or now - last >= self.interval:
            if key not in self.endpoints and len(self.endpoints) >= self.max_endpoints:
                self.endpoints.pop(next(iter(self.endpoints)))  # forget the oldest endpoint
            self.endpoints[key] = (now, seen | types)
            return True
        self.suppressed += 1
        return False
