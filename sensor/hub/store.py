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

from sqlalchemy import (BigInteger, Boolean, Column, Integer, MetaData, String, Table, Text, bindparam, create_engine,
                        select, tuple_, update)
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


_NODE_COLUMNS = ("id", "kind", "name", "namespace", "host", "ip", "country", "first_seen")


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i:i + size]


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
        """Add an aggregate of events in one transaction; return the change events it makes. Rows
        are read, inserted and updated in bulk (a few statements per thousand flows, not per flow)."""
        changes: list[dict] = []
        with self.engine.begin() as conn:
            changes += self._merge_nodes(conn, nodes)
            pending = dict(edges)
            while pending:  # a second round only for flows another replica inserted meanwhile
                keys = sorted(pending)  # one lock order for every replica
                stored = self._locked(conn, keys)
                fresh = [pending[k] for k in keys if k not in stored]
                inserted = self._insert_new(conn, fresh)
                updates = []
                for key in keys:
                    delta = pending[key]
                    if key in inserted:
                        changes += merge_edge(None, delta, self.sensitivity, delta.first_seen)[1]
                    elif key in stored:
                        merged, more = merge_edge(stored[key], delta, self.sensitivity, delta.last_seen)
                        updates.append({"k_source": key[0], "k_target": key[1], **_columns(merged)})
                        changes += more
                if updates:
                    conn.execute(update(EDGES).where(EDGES.c.source == bindparam("k_source"),
                                                     EDGES.c.target == bindparam("k_target")), updates)
                pending = {k: pending[k] for k in keys if k not in inserted and k not in stored}
            for change in changes:
                change.setdefault("id", str(uuid.uuid4()))
            if changes:
                conn.execute(CHANGES.insert(), [{"id": c["id"], "type": c["type"], "time": c["time"],
                                                 "body": json.dumps(c)} for c in changes])
        return changes

    def _merge_nodes(self, conn, nodes: dict[str, dict]) -> list[dict]:
        changes = []
        rows = [{c: node.get(c) for c in _NODE_COLUMNS} for _, node in sorted(nodes.items())]
        new = set()
        for chunk in _chunks(rows):
            new |= {r[0] for r in conn.execute(self._insert(NODES).on_conflict_do_nothing().returning(NODES.c.id), chunk)}
        for row in rows:
            if row["id"] in new:
                if row["kind"] == "external":
                    changes.append({"type": "new_external_destination", "target": row["id"], "country": row["country"],
                                    "time": row["first_seen"] or ""})
        known = [{"k_id": r["id"], "country": r["country"]} for r in rows if r["id"] not in new and r["country"]]
        if known:  # a country learnt later fills one that was unknown
            conn.execute(update(NODES).where(NODES.c.id == bindparam("k_id"), NODES.c.country.is_(None)), known)
        return changes

    def _locked(self, conn, keys: list[tuple]) -> dict[tuple, Edge]:
        """The stored edges among `keys`, locked until the transaction ends (PostgreSQL)."""
        out = {}
        for chunk in _chunks(keys):
            query = select(EDGES).where(tuple_(EDGES.c.source, EDGES.c.target).in_(chunk)).with_for_update()
            out.update({(r.source, r.target): _edge(r) for r in conn.execute(query)})
        return out

    def _insert_new(self, conn, fresh: list[Edge]) -> set[tuple]:
        """Insert the edges not stored yet; the keys this transaction inserted (a concurrent replica
        may have inserted some first)."""
        inserted: set[tuple] = set()
        rows = [{"source": e.source, "target": e.target, **_columns(e)} for e in fresh]
        for chunk in _chunks(rows):
            statement = self._insert(EDGES).on_conflict_do_nothing().returning(EDGES.c.source, EDGES.c.target)
            inserted |= {(r[0], r[1]) for r in conn.execute(statement, chunk)}
        return inserted

    def read(self) -> tuple[dict[str, dict], list[Edge]]:
        with self.engine.connect() as conn:
            nodes = {r.id: {str(k): v for k, v in r._mapping.items()} for r in conn.execute(select(NODES))}
            edges = [_edge(r) for r in conn.execute(select(EDGES))]
        return nodes, edges

    def changes(self, limit: int = 500) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(CHANGES.c.body).order_by(CHANGES.c.time.desc(), CHANGES.c.seq.desc()).limit(limit))
            return [json.loads(r.body) for r in rows]
