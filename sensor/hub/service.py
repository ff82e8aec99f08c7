"""The hub's state: events in, the aggregate merged into the store every few seconds, the map out.

Ingest never waits on the database: events are folded into an in-memory aggregate (one entry per
flow, so memory follows flows, not events) that a flusher thread merges into the store. While the
database is down the aggregate keeps growing up to `max_pending_flows`; events of new flows beyond
that are dropped and counted. Change events go to the configured sinks once they are stored.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import sys
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge

from ..datamap.flows import BadEvent, Change, DataMap, Edge, merge_edge, node_of, select
from .store import Store

SIGNATURE_HEADER = "x-pii-sensor-signature"
FLOW_COLUMNS = ("source", "target", "data_types", "sensitivity", "exchanges", "first_seen", "last_seen", "endpoints",
                "country", "cross_border", "violations")


class HubMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("pii_hub_events", "Event lines ingested, by result", ["result"], registry=r)
        self.refused = Counter("pii_hub_requests_refused", "Requests refused, by reason", ["reason"], registry=r)
        self.dropped = Counter("pii_hub_dropped", "Accepted events lost before they reached the store, by reason",
                               ["reason"], registry=r)
        self.flushes = Counter("pii_hub_flushes", "Merges of the aggregate into the database, by result", ["result"],
                               registry=r)
        self.changes = Counter("pii_hub_changes", "Change events, by type", ["type"], registry=r)
        self.pending = Gauge("pii_hub_pending_flows", "Flows aggregated in memory, not yet in the database", registry=r)
        self.database_up = Gauge("pii_hub_database_up", "1 when the last database operation succeeded", registry=r)


class Hub:
    def __init__(self, store: Store, sensitivity, secret: str | None = None, tokens=(), sinks=(),
                 flush_interval: float = 2.0, max_pending_flows: int = 100_000, log=sys.stderr):
        self.store, self.sensitivity = store, sensitivity
        self.secret = secret.encode() if secret else None
        self.tokens = [t.encode() for t in tokens if t]
        self.sinks = list(sinks)
        self.flush_interval, self.max_pending_flows = flush_interval, max_pending_flows
        self.log = log
        self.metrics = HubMetrics()
        self.pending = DataMap(sensitivity)
        self.lock = threading.Lock()  # guards `pending`
        self.flushing = threading.Lock()  # one merge at a time
        self.ready = threading.Event()  # the tables exist
        self.database_up = False
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="pii-hub-flush", daemon=True)

    # --- requests -------------------------------------------------------------------------
    def signed(self, body: bytes, header: str | None) -> bool:
        if self.secret is None:
            return True
        expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        return header is not None and hmac.compare_digest(expected.encode(), header.strip().encode())

    def authorized(self, token: str | None) -> bool:
        return not self.tokens or token is not None and any(hmac.compare_digest(token.encode(), t) for t in self.tokens)

    def ingest(self, body: bytes) -> tuple[int, int]:
        """(accepted, rejected) lines of a JSON-lines body; a bad line is counted, the rest kept."""
        accepted = rejected = 0
        events = []
        for line in body.splitlines():
            if not line.strip():
                continue
            try:
                event = json.loads(line)
                if not isinstance(event, dict):
                    raise BadEvent("not an object")
            except (ValueError, BadEvent):
                rejected += 1
                continue
            events.append(event)
        with self.lock:
            for event in events:
                try:
                    if len(self.pending.edges) >= self.max_pending_flows and not self._known(event):
                        self.metrics.dropped.labels("pending_full").inc()
                        accepted += 1  # a valid event, lost for want of room: counted as a drop
                        continue
                    self.pending.add(event)
                    accepted += 1
                except BadEvent:
                    rejected += 1
            self.metrics.pending.set(len(self.pending.edges))
        self.metrics.events.labels("accepted").inc(accepted)
        self.metrics.events.labels("rejected").inc(rejected)
        return accepted, rejected

    def _known(self, event: dict) -> bool:
        try:
            return (node_of(event["source"], False)["id"], node_of(event["destination"], True)["id"]) in self.pending.edges
        except (KeyError, TypeError, AttributeError):
            return False

    # --- the store ------------------------------------------------------------------------
    def flush(self) -> bool:
        """Merge what is pending into the store; on failure keep it for the next try."""
        with self.flushing:
            with self.lock:
                nodes, edges = self.pending.take()
            if not nodes and not edges:
                return True
            try:
                if not self.ready.is_set():
                    self.store.create()
                    self.ready.set()
                changes = self.store.merge(nodes, edges)
            except Exception as e:  # noqa: BLE001 - the database is down or refused: keep the data, say so
                self._restore(nodes, edges)
                self.metrics.flushes.labels("error").inc()
                self._database(False)
                print(f"pii-sensor hub: database error ({type(e).__name__}); {len(edges)} flows kept for the "
                      f"next try", file=self.log, flush=True)
                return False
            self.metrics.flushes.labels("ok").inc()
            self._database(True)
            with self.lock:
                self.metrics.pending.set(len(self.pending.edges))
        for change in changes:
            self.metrics.changes.labels(change["type"]).inc()
            for sink in self.sinks:
                sink.write(Change(change))
        return True

    def _restore(self, nodes: dict, edges: dict) -> None:
        with self.lock:
            for node_id, node in nodes.items():
                self.pending.nodes.setdefault(node_id, node)
            for key, edge in edges.items():
                later = self.pending.edges.get(key)
                self.pending.edges[key] = edge if later is None else merge_edge(edge, later, self.sensitivity, "")[0]

    def _database(self, up: bool) -> None:
        self.database_up = up
        self.metrics.database_up.set(int(up))

    def start(self) -> "Hub":
        self.thread.start()
        return self

    def _run(self) -> None:
        backoff = self.flush_interval
        while not self.stopping.wait(backoff):
            if not self.ready.is_set():
                try:
                    self.store.create()
                    self.ready.set()
                    self._database(True)
                except Exception as e:  # noqa: BLE001
                    self._database(False)
                    print(f"pii-sensor hub: database unavailable ({type(e).__name__}); retrying", file=self.log,
                          flush=True)
                    backoff = min(backoff * 2, 30.0)
                    continue
            backoff = self.flush_interval if self.flush() else min(backoff * 2, 30.0)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.flush()
        for sink in self.sinks:
            sink.close()

    # --- reading --------------------------------------------------------------------------
    def edges(self, **filters) -> tuple[dict, list[Edge]]:
        """The stored map (this replica's pending events merged first), filtered as the API says."""
        self.flush()
        nodes, edges = self.store.read()
        return nodes, select(edges, nodes, self.sensitivity, **filters)

    def document(self, **filters) -> dict:
        nodes, edges = self.edges(**filters)
        view = DataMap(self.sensitivity)
        view.nodes = {i: _node(n) for i, n in nodes.items()}
        return view.document(edges)

    def flows_csv(self, **filters) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(FLOW_COLUMNS)
        for edge in self.document(**filters)["edges"]:
            writer.writerow([_cell(edge[c]) for c in FLOW_COLUMNS])
        return out.getvalue()


def _cell(value) -> str:
    if isinstance(value, list):
        return ";".join(value)
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _node(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "host" or row.get("kind") == "external" or v}
