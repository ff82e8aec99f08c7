"""Prometheus metrics (SPEC.md section 5), declared once and served on --metrics-port.

Label values are bounded: workload and destination names beyond `max_label_values`
are folded into "other", so a scan of a busy node cannot explode the series count.
"""
from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..model import Event
from ..stats import Stats

REGISTRY = CollectorRegistry()
FINDINGS = Counter("pii_sensor_findings_total", "Findings of personal data, by data type and sensitivity",
                   ["data_type", "sensitivity"], registry=REGISTRY)
FLOWS = Counter("pii_sensor_flows_total", "HTTP exchanges carrying personal data, by workload pair",
                ["source", "destination", "sensitivity", "external"], registry=REGISTRY)
ENDPOINT_FINDINGS = Counter("pii_sensor_endpoint_findings_total",
                            "Exchanges carrying each data type, by destination and endpoint (bounded)",
                            ["destination", "endpoint", "data_type", "sensitivity"], registry=REGISTRY)
FLOW_TYPES = Counter("pii_sensor_flow_data_types", "Exchanges carrying each data type, by workload pair and the "
                     "destination's country: the data map as metrics (bounded)",
                     ["source", "destination", "data_type", "country"], registry=REGISTRY)
CROSS_BORDER = Counter("pii_sensor_cross_border_flows", "Exchanges carrying personal data to a country outside "
                       "geo.home, by workload pair, destination country and sensitivity",
                       ["source", "destination", "country", "sensitivity"], registry=REGISTRY)
VIOLATIONS = Counter("pii_sensor_policy_violations", "Exchanges that violated a policy rule, by rule and action",
                     ["rule", "action"], registry=REGISTRY)
# enforcement in the proxy (SPEC.md section 9): rule names come from the configuration, so labels stay bounded
ENFORCEMENT = Counter("pii_sensor_enforcement_actions", "Requests the proxy redacted or blocked, by rule and action "
                      "(dry_run=\"true\": what it would have done under enforcement.dry_run)",
                      ["rule", "action", "dry_run"], registry=REGISTRY)
ENFORCEMENT_FAILURES = Counter("pii_sensor_enforcement_failures", "Requests a redact or block rule could act on that "
                               "got no full verdict, by reason: timeout (enforcement.inline_timeout_ms), error, "
                               "unredactable (a value redaction could not take out), streamed (body not inspected)",
                               ["reason"], registry=REGISTRY)
INLINE_SECONDS = Histogram("pii_sensor_enforcement_inline_seconds", "Time a request waited in the proxy for its "
                           "inline classification and verdict",
                           buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0),
                           registry=REGISTRY)
SCAN_SECONDS = Histogram("pii_sensor_scan_duration_seconds", "Time to classify one exchange",
                         buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
                         registry=REGISTRY)


class _StatsCollector:
    """Exchanges seen, drops, skips and errors come from the shared Stats at scrape time."""

    def __init__(self):
        self.stats: Stats | None = None

    def collect(self):
        exchanges = CounterMetricFamily("pii_sensor_exchanges", "HTTP exchanges seen")
        packets = CounterMetricFamily("pii_sensor_packets", "Packets the sensor read (captures and live interfaces)")
        dropped = CounterMetricFamily("pii_sensor_dropped", "Data the sensor failed to look at, by reason (loss)",
                                      labels=["reason"])
        skipped = CounterMetricFamily("pii_sensor_skipped", "Data left out by design, by reason (not loss)",
                                      labels=["reason"])
        errors = CounterMetricFamily("pii_sensor_errors", "Failures that lose no traffic, by component",
                                     labels=["component"])
        sampled = CounterMetricFamily("pii_sensor_sampled", "Exchanges deliberately not classified (adaptive "
                                      "sampling under overload), by reason; not a loss", labels=["reason"])
        if self.stats is not None:
            exchanges.add_metric([], self.stats.exchanges)
            packets.add_metric([], self.stats.packets)
            for family, counts in ((dropped, self.stats.all_dropped()), (skipped, self.stats.skipped),
                                   (errors, self.stats.errors), (sampled, self.stats.sampled)):
                for label, n in sorted(counts.items()):
                    family.add_metric([label], n)
        yield from (exchanges, packets, dropped, skipped, errors, sampled)


_STATS = _StatsCollector()
REGISTRY.register(_STATS)

SPOOLS: set = set()  # the webhook spools of this process (sensor/outputs/sinks.py adds and removes them)


class _SpoolCollector:
    """What waits in the webhook spools, read at scrape time: 0 without a spool, so alerts need no absent()."""

    def collect(self):
        events = GaugeMetricFamily("pii_sensor_spool_events", "Events in the webhook spool, not yet delivered")
        size = GaugeMetricFamily("pii_sensor_spool_bytes", "Bytes on disk of the events in the webhook spool")
        waiting = [spool.pending for spool in list(SPOOLS)]  # (list() of a set is atomic: sinks may come and go)
        events.add_metric([], sum(n for n, _ in waiting))
        size.add_metric([], sum(b for _, b in waiting))
        yield from (events, size)


REGISTRY.register(_SpoolCollector())


class _ClassifierCollector:
    """The proxy's classifier process as its supervisor (sensor/worker.py) sees it: up or not, and
    how often it was restarted (a count in memory shared with the proxy, so it survives restarts)."""

    def __init__(self):
        self.restarts = self.up = None  # multiprocessing.Values the proxy writes, in proxy mode
        self.closed: dict = {}  # reason -> multiprocessing.Value: client connections the proxy closed

    def collect(self):
        if self.restarts is None:
            return
        yield GaugeMetricFamily("pii_sensor_classifier_up", "1 while the proxy's classifier process runs; 0 while "
                                "flows pass unclassified (counted as dropped, reason classifier_down)",
                                value=int(self.up.value))
        yield CounterMetricFamily("pii_sensor_classifier_restarts", "Times the proxy restarted its classifier process",
                                  value=self.restarts.value)
        closed = CounterMetricFamily("pii_sensor_connections_closed", "Client connections the proxy closed for "
                                     "missing a deadline (proxy.*_timeout_seconds), by reason", labels=["reason"])
        for reason, value in self.closed.items():
            closed.add_metric([reason], value.value)
        yield closed


CLASSIFIER = _ClassifierCollector()
REGISTRY.register(CLASSIFIER)


class Metrics:
    def __init__(self, stats: Stats, max_label_values: int = 50):
        _STATS.stats = stats
        self.max_label_values = max_label_values
        self.seen: dict[str, set[str]] = {"workload": set(), "endpoint": set()}

    def _bounded(self, value: str | None, kind: str = "workload") -> str:
        value = value or "unknown"
        seen = self.seen[kind]
        if value in seen:
            return value
        if len(seen) >= self.max_label_values:
            return "other"
        seen.add(value)
        return value

    def observe(self, event: Event) -> None:
        """Count one event's findings and its flow, as many times as the exchanges it stands for."""
        n = event.adjusted_count
        for (data_type, level), count in Tally((f.type, f.sensitivity) for f in event.findings).items():
            FINDINGS.labels(data_type, level).inc(n * count)
        if event.findings:
            dst = self._bounded(event.destination.workload or event.destination.host)
            FLOWS.labels(self._bounded(event.source.workload), dst, event.sensitivity,
                         str(bool(event.destination.external)).lower()).inc(n)
            endpoint = self._bounded(event.route, "endpoint")
            levels = {f.type: f.sensitivity for f in event.findings}
            src, country = self._bounded(event.source.workload), event.destination.country or "unknown"
            for t in event.data_types:
                ENDPOINT_FINDINGS.labels(dst, endpoint, t, levels[t]).inc(n)
                FLOW_TYPES.labels(src, dst, t, country).inc(n)
            if event.cross_border:
                CROSS_BORDER.labels(src, dst, country, event.sensitivity).inc(n)
        for violation in event.violations:
            VIOLATIONS.labels(violation["rule"], violation["action"]).inc(n)

    @staticmethod
    def enforced(event: Event) -> None:
        """Count what the proxy did to the request of this exchange (its Outcome.record())."""
        record = event.enforcement
        dry_run = bool(record.get("dry_run"))
        for rule, action, enforced in record.get("actions", ()):
            if enforced or dry_run:
                ENFORCEMENT.labels(rule, action, str(dry_run).lower()).inc()
        if record.get("failure"):
            ENFORCEMENT_FAILURES.labels(record["failure"]).inc()
        if record.get("failure") != "streamed":
            INLINE_SECONDS.observe(record.get("seconds", 0.0))

    @staticmethod
    def scanned(seconds: float) -> None:
        SCAN_SECONDS.observe(seconds)

    @staticmethod
    def write_textfile(path: str) -> None:
        """node-exporter's textfile collector format, written atomically."""
        write_to_textfile(path, REGISTRY)

    @staticmethod
    def serve(port: int, addr: str = "0.0.0.0"):
        return start_http_server(port, addr=addr, registry=REGISTRY)
