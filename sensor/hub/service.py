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
import sys
import threading
import time

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge

from ..datamap.flows import BadEvent, Change, DataMap, Edge, node_of, select
from .store import Store

SIGNATURE_HEADER = "x-pii-sensor-signature"
FLOW_COLUMNS = ("source", "target", "data_types", "sensitivity", "exchanges", "first_seen", "last_seen", "endpoints",
                "country", "cross_border", "violations")


class StorageUnavailable(RuntimeError):
    pass


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
        self.creating = threading.Lock()
        self.database_up = False
        self.reading = threading.Lock()
        self._snapshot = None  # (monotonic time, self._stored then, nodes, edges, edges as dicts)
        self._stored = 0  # merges this replica made: a snapshot older than the last one is refreshed
        self._documents: dict[tuple, bytes] = {}  # JSON of the snapshot, per filter
        self._stale = threading.Event()  # a reader found the snapshot old: the flusher reads a new one
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
                event = orjson.loads(line)
                if not isinstance(event, dict):
                    raise BadEvent("not an object")
            except (orjson.JSONDecodeError, BadEvent):
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
                    self.pending.gather(event)
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
                self._create()
                changes = self.store.merge(nodes, edges)
            except Exception as e:  # noqa: BLE001 - the database is down or refused: keep the data, say so
                self._restore(nodes, edges)
                self.metrics.flushes.labels("error").inc()
                self._database(False)
                print(f"pii-sensor hub: database error ({type(e).__name__}); {len(edges)} flows kept for the "
                      f"next try", file=self.log, flush=True)
                return False
            self.metrics.flushes.labels("ok").inc()
            self._stored += 1
            self._database(True)
            with self.lock:
                self.metrics.pending.set(len(self.pending.edges))
        for change in changes:
            self.metrics.changes.labels(change["type"]).inc()
            for sink in self.sinks:
                sink.write(Change(change))
        return True

    def _create(self) -> None:
        """The tables, once (the flusher and a reader's flush may both try first)."""
        with self.creating:
            if not self.ready.is_set():
                self.store.create()
                self.ready.set()

    def _restore(self, nodes: dict, edges: dict) -> None:
        with self.lock:
            for node_id, node in nodes.items():
                self.pending.nodes.setdefault(node_id, node)
            for key, edge in edges.items():
                later = self.pending.edges.get(key)
                if later is not None:
                    edge.absorb(later)
                self.pending.edges[key] = edge
            self.metrics.pending.set(len(self.pending.edges))

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
                    self._create()
                    self._database(True)
                except Exception as e:  # noqa: BLE001
                    self._database(False)
                    print(f"pii-sensor hub: database unavailable ({type(e).__name__}); retrying", file=self.log,
                          flush=True)
                    backoff = min(backoff * 2, 30.0)
                    continue
            backoff = self.flush_interval if self.flush() else min(backoff * 2, 30.0)
            if self._stale.is_set() and backoff == self.flush_interval:
                self._stale.clear()
                try:
                    self._refresh()
                except Exception:  # noqa: BLE001 - readers keep the old snapshot; the next flush says why
                    pass

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.flush()
        for sink in self.sinks:
            sink.close()

    # --- reading --------------------------------------------------------------------------
    def snapshot(self) -> tuple[dict, list[Edge]]:
        """The stored map as of at most about two flush intervals ago, read once for every reader:
        when it is older than an interval, the flusher reads a new one while readers keep being
        answered from this one. This replica's own pending events are stored first, so what it
        accepted is in what it answers; other replicas' writes show within their flush interval."""
        if not self.flush():  # (which also waits for a merge under way)
            raise StorageUnavailable("accepted events are not stored yet: the database is unavailable")
        with self.reading:
            snapshot = self._snapshot
        if snapshot is None or snapshot[1] != self._stored:  # this replica stored more since
            snapshot = self._refresh()
        elif time.monotonic() - snapshot[0] > self.flush_interval:
            self._stale.set()
        return snapshot[2:]

    def _refresh(self):
        stored = self._stored
        nodes, edges = self.store.read()
        nodes = {i: _node(n) for i, n in nodes.items()}
        rendered = {(e.source, e.target): e.to_dict(self.sensitivity) for e in edges}  # once per snapshot
        with self.reading:
            self._snapshot = (time.monotonic(), stored, nodes, edges, rendered)
            self._documents = {}
            return self._snapshot

    def document(self, **filters) -> dict:
        nodes, edges, rendered = self.snapshot()
        chosen = [rendered[(e.source, e.target)] for e in select(edges, nodes, self.sensitivity, **filters)]
        used = {e["source"] for e in chosen} | {e["target"] for e in chosen}
        return {"nodes": [n for i, n in sorted(nodes.items()) if i in used],
                "edges": sorted(chosen, key=lambda e: (e["source"], e["target"]))}

    def document_json(self, **filters) -> bytes:
        """The document as JSON, made once per snapshot and filter (maps of thousands of flows are
        read far more often than they change)."""
        self.snapshot()  # a newer snapshot clears the cache
        key = tuple(sorted(filters.items()))
        with self.reading:
            cached = self._documents.get(key)
        if cached is None:
            cached = orjson.dumps(self.document(**filters))
            with self.reading:
                if len(self._documents) >= 16:  # a few MB each for big maps
                    self._documents.clear()
                self._documents[key] = cached
        return cached

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
