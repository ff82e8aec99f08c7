"""`pii-sensor map INPUT...`: the data map of HAR files and captures, offline (SPEC.md section 6):
a table of flows, the map as JSON, or one self-contained HTML page."""
from __future__ import annotations

import json
import sys

from .. import config as config_mod
from .. import stream
from ..datamap.flows import DataMap
from ..datamap.page import render
from ..engine import Sensor
from .checks import input_kind
from .scan import _write, exchanges


def run(args) -> int:
    sensor = Sensor(config_mod.load(args.config, workers=args.workers))
    kinds = [(input_kind(p), p) for p in args.inputs]  # check all before reading any
    datamap = DataMap(sensor.config.sensitivity)
    changes = []
    for kind, path in kinds:
        for event in stream.events(sensor, exchanges(path, kind, sensor), emit_all=False):
            if event is not None:  # None: an exchange without personal data
                changes += datamap.add(event.to_dict())
    document = datamap.document()
    if args.html:
        _write(args.html, render(document, changes), "page")
    if args.format == "json":
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(table(document) + "\n")
    print(f"pii-sensor: {sensor.stats.summary()}; {len(document['nodes'])} nodes, {len(document['edges'])} flows",
          file=sys.stderr)
    return 0


def table(document: dict) -> str:
    rows = [("SOURCE", "DESTINATION", "COUNTRY", "SENSITIVITY", "EXCHANGES", "DATA TYPES")]
    for e in document["edges"]:
        rows.append((e["source"], e["target"], e["country"] or "-", e["sensitivity"] or "-", str(e["exchanges"]),
                     ", ".join(e["data_types"]) + (" (cross-border)" if e["cross_border"] else "")
                     + (f" violates {', '.join(e['violations'])}" if e["violations"] else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[5] for r in rows)
