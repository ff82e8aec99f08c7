"""Exchange -> Event: decode the payload, classify its fields, build the SPEC.md event."""
from __future__ import annotations

import datetime as dt
import time
from itertools import islice
from urllib.parse import urlsplit

from detectors.classify import Classifier, Finding

from .config import Config
from .endpoint import masked_path, template
from .exchange import Exchange, Peer
from .mask import mask
from .payload import exchange_fields
from .stats import Stats
from .workloads import is_external, name_of

_PART_ORDER = {p: i for i, p in enumerate(
    ("request.path", "request.query", "request.headers", "request.body", "response.headers", "response.body"))}


def iso_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Sensor:
    """The shared engine every input (HAR, pcap, live, proxy) feeds with Exchanges."""

    def __init__(self, config: Config | None = None, stats: Stats | None = None):
        self.config = config or Config()
        self.stats = stats or Stats()
        self.classifier = Classifier(self.config.min_confidence, ner=self.config.ner)
        self.on_scanned = None  # optional callback(seconds per exchange), for metrics
        self.pods = None  # a kube.PodResolver when workload names come from Kubernetes
        if self.config.kubernetes is not None:
            from .kube import PodResolver

            self.pods = PodResolver.from_settings(self.config.kubernetes, self.stats).start()

    def findings(self, exchange: Exchange) -> list[Finding]:
        fields = exchange_fields(exchange, self.stats, self.config.max_body_bytes)
        return self.classifier.classify(fields)

    def findings_many(self, exchanges: list[Exchange]) -> list[list[Finding]]:
        """Findings of several exchanges, with spaCy batched over all of their free text."""
        fields = [self._guarded(exchange_fields, ex, self.stats, self.config.max_body_bytes) for ex in exchanges]
        self.classifier.prepare(f for fs in fields for f in fs)
        return [self._guarded(self.classifier.classify, fs) for fs in fields]

    def _guarded(self, step, *args) -> list:
        """One bad exchange must not stop the sensor: a bug in a step is counted, not raised.
        (findings() above is unguarded, so the tests see every such bug.)"""
        try:
            return step(*args)
        except Exception:  # noqa: BLE001
            self.stats.drop("internal_error")
            return []

    def process(self, exchange: Exchange, emit_all: bool = False) -> dict | None:
        """The event for one exchange, or None when it carries no PII (unless emit_all)."""
        return self.process_many([exchange], emit_all)[0]

    def process_many(self, exchanges: list[Exchange], emit_all: bool = False) -> list[dict | None]:
        """Events for a batch of exchanges (None for those without PII unless emit_all)."""
        started = time.perf_counter()
        results = self.findings_many(exchanges)
        per_exchange = (time.perf_counter() - started) / max(1, len(exchanges))
        events = []
        for exchange, findings in zip(exchanges, results):
            self.stats.exchanges += 1
            if findings:
                self.stats.with_pii += 1
            events.append(self.event(exchange, findings) if findings or emit_all else None)
            if self.on_scanned:
                self.on_scanned(per_exchange)
        return events

    def process_stream(self, exchanges, emit_all: bool = False, batch: int = 256):
        """(exchange, event) for each exchange of an iterable, classified in batches."""
        it = iter(exchanges)
        while chunk := list(islice(it, batch)):
            yield from zip(chunk, self.process_many(chunk, emit_all))

    def _peer(self, peer: Peer, destination: bool) -> dict:
        out = {"ip": peer.ip, "port": peer.port}
        if destination:
            out["host"] = peer.host
        pod = self.pods.lookup(peer.ip) if self.pods is not None else None
        if pod is not None:
            out["namespace"], out["name"] = pod
        else:
            out["name"] = name_of(peer, self.config)  # the configured map is the fallback
        if destination:
            out["external"] = is_external(peer, self.config)
        return out

    def event(self, exchange: Exchange, findings: list[Finding]) -> dict:
        sens = self.config.sensitivity
        findings = sorted(findings, key=lambda f: (_PART_ORDER.get(f.part, 9), f.path, f.type))
        path = urlsplit(exchange.request.target).path or "/"
        pii_segments = {f.value for f in findings if f.part == "request.path"}
        types = sorted({f.type for f in findings})
        resp = exchange.response
        return {
            "time": iso_time(exchange.time),
            "source": self._peer(exchange.source, False),
            "destination": self._peer(exchange.destination, True),
            "request": {"method": exchange.request.method, "path": masked_path(path, pii_segments), "endpoint": template(path)},
            "response": {"status": resp.status if resp else None},
            "findings": [
                {
                    "type": f.type,
                    "part": f.part,
                    "path": f.path,
                    "sensitivity": sens.level(f.type),
                    "confidence": f.confidence,
                    "sample": mask(f.value),
                }
                for f in findings
            ],
            "data_types": types,
            "sensitivity": sens.combine(types) if types else None,
        }
