"""The engine every source feeds: Exchange -> fields (payload) -> findings (detectors) -> Event (events)."""
from __future__ import annotations

import time
from itertools import chain, islice

from detectors import nlp
from detectors.classify import Classifier

from .config import Config
from .events.build import EventBuilder
from .model import Drop, Event, Exchange, Finding
from .payload.fields import exchange_fields
from .pool import ClassifierPool
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
        pods = None
        if self.config.kubernetes is not None:
            from .events.kube import PodResolver

            pods = PodResolver.from_settings(self.config.kubernetes, self.stats).start()
        self.events = EventBuilder(self.config, pods)

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
            if self.on_scanned:
                self.on_scanned(per_exchange)
            out.append(event if event.findings or emit_all else None)
        return out

    def process_stream(self, exchanges, emit_all: bool = False, batch: int = BATCH):
        """The event (or None, as process_many) of each exchange of an iterable, classified in batches,
        in order. Inputs longer than one batch go to worker processes (`classifier.workers`; 0 = here)."""
        it = iter(exchanges)
        head = [chunk for chunk in (list(islice(it, batch)), list(islice(it, batch))) if chunk]
        if len(head) < 2 or not self.config.workers:
            for chunk in chain(head, iter(lambda: list(islice(it, batch)), [])):
                yield from self.process_many(chunk, emit_all)
            return
        pool = ClassifierPool(self.config, self.config.workers, self.stats)
        try:
            for chunk in chain(head, iter(lambda: list(islice(it, batch)), [])):
                if pool.full():
                    yield from self._pooled(pool.results(wait_for=1), emit_all)
                pool.submit(chunk)
                yield from self._pooled(pool.results(), emit_all)
            yield from self._pooled(pool.drain(), emit_all)
        finally:
            pool.close()

    def _pooled(self, results, emit_all: bool):
        for events, per_exchange in results:
            yield from self.account(events, per_exchange, emit_all)
