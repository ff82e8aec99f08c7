"""Events -> nodes and edges. One aggregation for `pii-sensor map` (in memory) and the hub (which
keeps the same deltas in memory and merges them into its database with `merge_edge`)."""
from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field

from detectors.sensitivity import TYPES, Sensitivity

from ..config import LEVELS

MAX_ENDPOINTS = 50  # per edge: 'METHOD /endpoint' beyond this are counted, not listed
CHANGE_KINDS = ("new_flow", "new_data_type", "new_external_destination", "sensitivity_raised", "policy_violation")


class BadEvent(ValueError):
    """An ingested line that is not a section 2 event; the message names what is wrong, no value."""


def node_of(party: dict, destination: bool) -> dict:
    """A node from an event's source or destination: a workload ('namespace/name' from Kubernetes,
    the configured name), else for a destination outside the cluster its host, else the IP."""
    name, namespace = party.get("name"), party.get("namespace")
    external = bool(destination and party.get("external"))
    if name:
        node_id, kind = (f"{namespace}/{name}" if namespace else name), "workload"
    else:
        node_id = (party.get("host") if destination else None) or party.get("ip") or "unknown"
        kind = "external" if external else "workload"
    node = {"id": node_id, "kind": kind, "name": name, "namespace": namespace, "country": party.get("country")}
    if destination:
        node["host"] = party.get("host")
    node["ip"] = party.get("ip")
    return node


@dataclass
class Edge:
    source: str
    target: str
    data_types: set = field(default_factory=set)
    exchanges: int = 0
    first_seen: str = ""
    last_seen: str = ""
    endpoints: set = field(default_factory=set)
    country: str | None = None
    cross_border: bool = False
    violations: set = field(default_factory=set)

    def absorb(self, delta: "Edge") -> None:
        """Add another edge's exchanges to this one, in place."""
        self.data_types |= delta.data_types
        self.exchanges += delta.exchanges
        self.first_seen = min(self.first_seen, delta.first_seen)
        self.last_seen = max(self.last_seen, delta.last_seen)
        if not delta.endpoints <= self.endpoints:
            self.endpoints = _bounded(self.endpoints | delta.endpoints)
        self.country = delta.country or self.country
        self.cross_border = self.cross_border or delta.cross_border
        self.violations |= delta.violations

    def copy(self) -> "Edge":
        return Edge(self.source, self.target, set(self.data_types), self.exchanges, self.first_seen, self.last_seen,
                    set(self.endpoints), self.country, self.cross_border, set(self.violations))

    def to_dict(self, sensitivity: Sensitivity) -> dict:
        types = sorted(self.data_types, key=TYPES.index)
        return {"source": self.source, "target": self.target, "data_types": types,
                "sensitivity": sensitivity.combine(types) if types else None, "exchanges": self.exchanges,
                "first_seen": self.first_seen, "last_seen": self.last_seen, "endpoints": sorted(self.endpoints),
                "country": self.country, "cross_border": self.cross_border, "violations": sorted(self.violations)}


def edge_of(event: dict) -> tuple[dict, dict, Edge]:
    """(source node, destination node, the edge this one event makes). Raises BadEvent."""
    try:
        source, destination = event["source"], event["destination"]
        types = event["data_types"]
        when = event["time"]
        request = event.get("request") or {}
        if not (isinstance(source, dict) and isinstance(destination, dict) and isinstance(types, list)
                and isinstance(when, str) and isinstance(request, dict)):
            raise BadEvent("source, destination, data_types or time has the wrong type")
        unknown = [t for t in types if t not in TYPES]
        if unknown:
            raise BadEvent("unknown data type in data_types")
        count = event.get("adjusted_count", 1)
        count = count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1
        src, dst = node_of(source, False), node_of(destination, True)
        violations = {v["rule"] for v in event.get("violations") or [] if isinstance(v, dict) and isinstance(v.get("rule"), str)}
        route = f"{request.get('method')} {request.get('endpoint')}" if request.get("endpoint") else None
        edge = Edge(src["id"], dst["id"], set(types), count, when, when, {route} if route else set(),
                    destination.get("country"), bool(event.get("cross_border")), violations)
    except (KeyError, TypeError, AttributeError) as e:
        raise BadEvent(f"not an event: {type(e).__name__} on a required field") from None
    return src, dst, edge


def merge_edge(old: Edge | None, delta: Edge, sensitivity: Sensitivity, when: str) -> tuple[Edge, list[dict]]:
    """The edge with `delta` added, and the changes it makes (SPEC.md section 6): a new flow, a new
    data type on it, its sensitivity raised, a policy rule newly violated on it."""
    if old is None:
        changes = [change("new_flow", when, delta, data_types=sorted(delta.data_types, key=TYPES.index))]
        changes += [change("policy_violation", when, delta, rule=r) for r in sorted(delta.violations)]
        return delta, changes
    before = sensitivity.combine(sorted(old.data_types)) if old.data_types else "low"
    added = delta.data_types - old.data_types
    new_rules = delta.violations - old.violations
    merged = old.copy()
    merged.absorb(delta)
    changes = [change("new_data_type", when, merged, data_type=t) for t in sorted(added, key=TYPES.index)]
    after = sensitivity.combine(sorted(merged.data_types)) if merged.data_types else "low"
    if LEVELS.index(after) > LEVELS.index(before):
        changes.append(change("sensitivity_raised", when, merged, before=before, after=after))
    changes += [change("policy_violation", when, merged, rule=r) for r in sorted(new_rules)]
    return merged, changes


def _bounded(endpoints: set) -> set:
    return endpoints if len(endpoints) <= MAX_ENDPOINTS else set(sorted(endpoints)[:MAX_ENDPOINTS])


def change(kind: str, when: str, edge: Edge, **detail) -> dict:
    return {"id": str(uuid.uuid4()), "type": kind, "time": when, "source": edge.source, "target": edge.target,
            **detail}


class Change(dict):
    """A change event as the event sinks take it (they call to_json)."""

    def to_json(self) -> str:
        return json.dumps(self, separators=(",", ":"))


class DataMap:
    """Nodes and edges from events, in memory; `add` returns the changes each event makes."""

    def __init__(self, sensitivity: Sensitivity | None = None):
        self.sensitivity = sensitivity or Sensitivity()
        self.nodes: dict[str, dict] = {}
        self.edges: dict[tuple[str, str], Edge] = {}

    def add(self, event: dict) -> list[dict]:
        src, dst, delta = edge_of(event)
        if not delta.data_types:
            return []  # an exchange without personal data is no flow of it
        changes = [{"id": str(uuid.uuid4()), "type": "new_external_destination", "time": delta.first_seen,
                    "target": node["id"], "country": node["country"]}
                   for node in self._nodes(src, dst, delta.first_seen) if node["kind"] == "external"]
        key = (delta.source, delta.target)
        self.edges[key], more = merge_edge(self.edges.get(key), delta, self.sensitivity, delta.last_seen)
        return changes + more

    def gather(self, event: dict) -> None:
        """add() without working out the changes, merging in place: the hub's pending aggregate,
        whose changes are worked out against the database when it is stored."""
        src, dst, delta = edge_of(event)
        if not delta.data_types:
            return
        self._nodes(src, dst, delta.first_seen)
        edge = self.edges.get((delta.source, delta.target))
        if edge is None:
            self.edges[(delta.source, delta.target)] = delta
        else:
            edge.absorb(delta)

    def _nodes(self, src: dict, dst: dict, seen: str) -> list[dict]:
        """Keep both ends of a flow; the ones not known before."""
        new = []
        for node in (src, dst):
            known = self.nodes.get(node["id"])
            if known is None:
                node["first_seen"] = seen
                self.nodes[node["id"]] = node
                new.append(node)
            else:  # later events may know more (a country, an IP)
                for k in ("country", "ip", "host"):
                    if known.get(k) is None and node.get(k) is not None:
                        known[k] = node[k]
        return new

    def take(self) -> tuple[dict[str, dict], dict[tuple, Edge]]:
        """The nodes and edges gathered so far, and a fresh start (the hub's pending aggregate)."""
        nodes, edges = self.nodes, self.edges
        self.nodes, self.edges = {}, {}
        return nodes, edges

    def document(self, edges=None) -> dict:
        """{"nodes": [...], "edges": [...]} (SPEC.md section 6), of `edges` (default: all)."""
        edges = [e.to_dict(self.sensitivity) for e in (self.edges.values() if edges is None else edges)]
        used = {e["source"] for e in edges} | {e["target"] for e in edges}
        return {"nodes": [n for i, n in sorted(self.nodes.items()) if i in used],
                "edges": sorted(edges, key=lambda e: (e["source"], e["target"]))}


def _instant(text: str) -> dt.datetime:
    """An ISO 8601 time ('...Z' too) as an aware datetime; the epoch for what is not one."""
    try:
        value = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return dt.datetime.fromtimestamp(0, dt.timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def select(edges: list[Edge], nodes: dict, sensitivity: Sensitivity, data_type=None, level=None, namespace=None,
           external=None, since=None) -> list[Edge]:
    """The API's filters: a data type on the edge, its sensitivity at least `level`, either end in
    `namespace`, the destination external or not, seen since `since` (an aware datetime)."""
    out = []
    for e in edges:
        if data_type and data_type not in e.data_types:
            continue
        if level and LEVELS.index(sensitivity.combine(sorted(e.data_types))) < LEVELS.index(level):
            continue
        if namespace and namespace not in (nodes.get(e.source, {}).get("namespace"), nodes.get(e.target, {}).get("namespace")):
            continue
        if external is not None and (nodes.get(e.target, {}).get("kind") == "external") != external:
            continue
        if since and _instant(e.last_seen) < since:
            continue
        out.append(e)
    return out
