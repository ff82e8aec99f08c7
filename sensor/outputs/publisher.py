"""What every long-running mode (sniff, proxy, mitmdump) does with events: metrics, throttling, the sink."""
from __future__ import annotations

from .. import policy
from .metrics import Metrics
from .throttle import EventLimiter
from .sinks import open_sink


class Outputs:
    def __init__(self, sensor, events: str, metrics_port: int | None):
        config = sensor.config
        self.sink = open_sink(events, sensor.stats, config)
        self.metrics = Metrics(sensor.stats, config.max_label_values)
        sensor.on_scanned = self.metrics.scanned
        sensor.on_enforced = self.metrics.enforced
        if metrics_port:
            self.metrics.serve(metrics_port)
        self.limiter = EventLimiter(config.event_interval, config.max_throttled_endpoints)

    def publish(self, events) -> None:
        """Metrics count every event with findings; the sink gets those the limiter lets through."""
        for event in events:
            if event is None:
                continue
            if event.findings:
                self.metrics.observe(event)
            if policy.acted(event.enforcement) or self.limiter.allow(event):  # the record of a redaction or block
                self.sink.write(event)

    def close(self) -> None:
        self.sink.close()
