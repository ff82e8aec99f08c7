"""The engine every source feeds: Exchange -> fields (payload) -> findings (detectors) -> Event (events)."""
from __future__ import annotations

import os
import time

from detectors import nlp
from detectors.classify import Classifier

from .config import Config
from .events.build import EventBuilder
from .geo.regions import country_of_region
from .model import Drop, Event, Exchange, Finding
from .payload.fields import exchange_fields
from .stats import Stats


BATCH = 256  # exchanges classified at once: spaCy is much faster on batches


class Sensor:
    """The shared engine every input (HAR, pcap, live, proxy) feeds with Exchanges."""

    def __init__(self, config: Config | None = None, stats: Stats | None = None):
        self.config = config or Config()
        self.stats = stats or Stats()
        self.classifier = Classifier(self.config.min_confidence, ner=self.config.ner)
        nlp.CACHE_SIZE = self.config.ner_cache_size
        self.on_scanned = None  # optional callback(seconds per exchange), for metrics
        self.on_enforced = None  # optional callback(event) for events the proxy enforced a rule on, for metrics
        pods = None
        if self.config.kubernetes is not None:
            from .events.kube import PodResolver

            pods = PodResolver.from_settings(self.config.kubernetes, self.stats).start()
            if self.config.geo_country is None and os.environ.get("NODE_NAME"):  # the chart sets it (downward API)
                self.config.geo_country = country_of_region(pods.node_region(os.environ["NODE_NAME"]))
        self.events = EventBuilder(self.config, pods)
        nlp.settle()

    def _fields(self, exchange: Exchange):
        return exchange_fields(exchange, self.stats, self.config)

    def findings(self, exchange: Exchange) -> list[Finding]:
        return self.classifier.classify(self._fields(exchange))

    def findings_many(self, exchanges: list[Exchange]) -> list[list[Finding]]:
        """Findings of several exchanges, with spaCy batched over all of their free text."""
        fields = [self._guarded(self._fields, ex) for ex in exchanges]
        self.classifier.prepare(f for fs in fields for f in fs)
        return [self._guarded(self.classifier.classify, fs) for fs in fields]

    def _guarded(self, step, *args) -> list:
        """One bad exchange must not stop the sensor: a bug in a step is counted, not raised.
        (findings() above is unguarded, so the tests see every such bug.)"""
        try:
            return step(*args)
        except Exception:  # noqa: BLE001
            self.stats.drop(Drop.INTERNAL_ERROR)
            return []

    def process(self, exchange: Exchange, emit_all: bool = False) -> Event | None:
        """The event for one exchange, or None when it carries no PII (unless emit_all)."""
        return self.process_many([exchange], emit_all)[0]

    def process_many(self, exchanges: list[Exchange], emit_all: bool = False) -> list[Event | None]:
        """Events for a batch of exchanges (None for those without PII unless emit_all)."""
        started = time.perf_counter()
        events = self.events_many(exchanges)
        return self.account(events, (time.perf_counter() - started) / max(1, len(exchanges)), emit_all)

    def events_many(self, exchanges: list[Exchange]) -> list[Event]:
        """An event for every exchange, `findings: []` where there are none: what a worker sends back
        (events carry nothing raw, and the main process needs no detector, nor spaCy, of its own)."""
        return [self.events.build(ex, findings) for ex, findings in zip(exchanges, self.findings_many(exchanges))]

    def account(self, events: list[Event], per_exchange: float, emit_all: bool = False) -> list[Event | None]:
        """Counts of classified exchanges, here or in a worker, and their workloads from Kubernetes;
        None for those without PII unless emit_all."""
        out = []
        for event in events:
            self.stats.exchanges += 1
            if event.findings:
                self.stats.with_pii += event.adjusted_count
            self.events.name_workloads(event)
            self.events.judge(event)
            if event.enforcement and self.on_enforced:  # counted with or without findings (a timeout has none)
                self.on_enforced(event)
            if self.on_scanned:
                self.on_scanned(per_exchange)
            out.append(event if event.findings or emit_all else None)
        return out
