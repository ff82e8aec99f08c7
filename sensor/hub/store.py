"""The hub's storage: the map's nodes, edges and change events in SQL through SQLAlchemy, SQLite
embedded or PostgreSQL shared by several hub replicas (the same statements for both).

Writes scale with flows, not events: the hub aggregates events in memory (datamap.DataMap) and
merges the aggregate here every few seconds. A merge is one transaction; each edge is inserted if
new or locked and merged if not, so two replicas adding to one edge neither lose counts nor both
announce it as new: whoever inserts a row, or adds a data type to it, reports the change.
"""
from __future__ import annotations

import json
import uuid

from sqlalchemy import (BigInteger, Boolean, Column, Integer, MetaData, String, Table, Text, create_engine, select,
                        update)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from ..datamap.flows import Edge, merge_edge

META = MetaData()
NODES = Table(
    "pii_map_nodes", META,
    Column("id", String(512), primary_key=True), Column("kind", String(16), nullable=False),
    Column("name", String(256)), Column("namespace", String(256)), Column("host", String(512)),
    Column("ip", String(64)), Column("country", String(2)), Column("first_seen", String(40)),
)
EDGES = Table(
    "pii_map_edges", META,
    Column("source", String(512), primary_key=True), Column("target", String(512), primary_key=True),
    Column("data_types", Text, nullable=False), Column("exchanges", BigInteger, nullable=False),
    Column("first_seen", String(40), nullable=False), Column("last_seen", String(40), nullable=False),
    Column("endpoints", Text, nullable=False), Column("country", String(2)),
    Column("cross_border", Boolean, nullable=False), Column("violations", Text, nullable=False),
)
CHANGES = Table(
    "pii_map_changes", META,
    Column("seq", Integer, primary_key=True, autoincrement=True), Column("id", String(36), unique=True, nullable=False),
    Column("type", String(32), nullable=False), Column("time", String(40), nullable=False),
    Column("body", Text, nullable=False),
)


def engine_for(url: str):
    """A SQLAlchemy engine for sqlite:///FILE or postgresql://... (psycopg 3 as the driver)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql://")
    kwargs = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
    return create_engine(parsed, **kwargs)


def _edge(row) -> Edge:
    return Edge(row.source, row.target, set(json.loads(row.data_types)), row.exchanges, row.first_seen, row.last_seen,
                set(json.loads(row.endpoints)), row.country, bool(row.cross_border), set(json.loads(row.violations)))


def _columns(edge: Edge) -> dict:
    return {"data_types": json.dumps(sorted(edge.data_types)), "exchanges": edge.exchanges,
            "first_seen": edge.first_seen, "last_seen": edge.last_seen, "endpoints": json.dumps(sorted(edge.endpoints)),
            "country": edge.country, "cross_border": edge.cross_border, "violations": json.dumps(sorted(edge.violations))}


class Store:
    def __init__(self, url: str, sensitivity):
        self.engine = engine_for(url)
        self.sensitivity = sensitivity
        self._insert = (postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert)

    def create(self) -> None:
        META.create_all(self.engine)  # the tables if missing; idempotent, also between replicas

    def merge(self, nodes: dict[str, dict], edges: dict[tuple, Edge]) -> list[dict]:
        """Add an aggregate of events; return the change events it makes, as stored."""
        changes: list[dict] = []
        with self.engine.begin() as conn:
            for node in sorted(nodes.values(), key=lambda n: n["id"]):  # one lock order for every replica
                row = {c: node.get(c) for c in ("id", "kind", "name", "namespace", "host", "ip", "country", "first_seen")}
                if self._inserted(conn, self._insert(NODES).values(**row), NODES.c.id):
                    if node["kind"] == "external":
                        changes.append({"type": "new_external_destination", "target": node["id"],
                                        "country": node.get("country"), "time": node.get("first_seen") or ""})
                elif node.get("country"):
                    conn.execute(update(NODES).where(NODES.c.id == node["id"], NODES.c.country.is_(None))
                                 .values(country=node["country"]))
            for key in sorted(edges):
                delta = edges[key]
                new = self._insert(EDGES).values(source=delta.source, target=delta.target, **_columns(delta))
                if self._inserted(conn, new, EDGES.c.source):
                    changes += merge_edge(None, delta, self.sensitivity, delta.first_seen)[1]
                    continue
                where = (EDGES.c.source == delta.source) & (EDGES.c.target == delta.target)
                old = _edge(conn.execute(select(EDGES).where(where).with_for_update()).one())
                merged, more = merge_edge(old, delta, self.sensitivity, delta.last_seen)
                conn.execute(update(EDGES).where(where).values(**_columns(merged)))
                changes += more
            for change in changes:
                change.setdefault("id", str(uuid.uuid4()))
                conn.execute(CHANGES.insert().values(id=change["id"], type=change["type"], time=change["time"],
                                                     body=json.dumps(change)))
        return changes

    @staticmethod
    def _inserted(conn, insert, column) -> bool:
        """Insert unless the key exists; whether this call inserted it (RETURNING says so on both
        databases, where rowcount does not)."""
        return conn.execute(insert.on_conflict_do_nothing().returning(column)).first() is not None

    def read(self) -> tuple[dict[str, dict], list[Edge]]:
        with self.engine.connect() as conn:
            nodes = {r.id: dict(r._mapping) for r in conn.execute(select(NODES))}
            edges = [_edge(r) for r in conn.execute(select(EDGES))]
        return nodes, edges

    def changes(self, limit: int = 500) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(CHANGES.c.body).order_by(CHANGES.c.time.desc(), CHANGES.c.seq.desc()).limit(limit))
            return [json.loads(r.body) for r in rows]
