"""`pii-sensor eval LABELED.har`: precision, recall and F1 against a HAR's `_pii_labels` (SPEC.md section 3)."""
from __future__ import annotations

import json
import os
from collections import Counter

from detectors.sensitivity import TYPES

from .. import config as config_mod
from ..engine import Sensor
from ..errors import InputError
from ..events import identifiers
from ..events.mask import mask
from ..model import PARTS, Drop
from ..payload.jsonpath import map_keys, without_indices
from ..sources import har


def run(args) -> int:
    if not os.path.exists(args.labeled):
        raise InputError(f"{args.labeled}: no such file")
    sensor = Sensor(config_mod.load(args.config))
    result = score(sensor, args.labeled)
    if args.format == "json":
        if not args.errors:
            result.pop("errors")
        print(json.dumps(result, indent=2, default=list))
    else:
        print(render(result))
        if args.errors:
            for kind, items in result["errors"].items():
                for item in items:
                    print(f"{kind[:-1].replace('_', ' ')}: entry {item[0]} {item[1]} {item[2]} {item[3]}")
    return 0


def _key(i: int, part: str, path: str, data_type: str) -> tuple:
    return (i, part, without_indices(path), data_type)


def score(sensor: Sensor, path: str) -> dict:
    return metrics(*labeled(sensor, path))


def labeled(sensor: Sensor, path: str) -> tuple[set[tuple], set[tuple]]:
    """(labels, findings) of a labeled HAR, each as (entry, part, path without indices, type)."""
    truth: set[tuple] = set()
    predicted: set[tuple] = set()
    for i, entry in enumerate(har.entries(path)):
        try:
            exchange = har.entry_to_exchange(entry)
        except (KeyError, TypeError, ValueError, AttributeError):
            sensor.stats.drop(Drop.BAD_ENTRY)
            continue
        for label in exchange.labels or []:
            if isinstance(label, dict) and all(isinstance(label.get(k), str) for k in ("part", "path", "type")):
                truth.add(_key(i, label["part"], label["path"], label["type"]))
        for f in sensor.findings(exchange):
            predicted.add(_key(i, f.part, f.path, f.type))
        sensor.stats.exchanges += 1
    return truth, predicted


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else (1.0 if not fn else 0.0)
    r = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4), "tp": tp, "fp": fp, "fn": fn}


def metrics(truth: set[tuple], predicted: set[tuple]) -> dict:
    tp, fp, fn = Counter(), Counter(), Counter()
    for k in predicted & truth:
        tp[k[3]] += 1
    for k in predicted - truth:
        fp[k[3]] += 1
    for k in truth - predicted:
        fn[k[3]] += 1
    types = [t for t in TYPES if tp[t] or fp[t] or fn[t]]
    types += sorted(t for t in set(tp) | set(fp) | set(fn) if t not in TYPES)  # labels with unknown types
    per_type = {_type(t): _prf(tp[t], fp[t], fn[t]) for t in types}
    micro = _prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return {"types": per_type, "micro": micro,
            "errors": {"false_positives": _shown(predicted - truth), "false_negatives": _shown(truth - predicted)}}


def _shown(keys: set[tuple]) -> list[tuple]:
    """Mismatches as printed: labels come from a file, so whatever is not the vocabulary or a
    schema word (a personal key in a path, a raw path, an odd part or type) is masked."""
    def key(k: str, previous: str | None) -> str | None:
        return None if identifiers.shown(k) else mask(k)

    return sorted((i, part if part in PARTS else mask(str(part)), map_keys(str(path), key, mask), _type(t))
                  for i, part, path, t in keys)


def _type(data_type) -> str:
    return data_type if data_type in TYPES else mask(str(data_type))


def render(result: dict) -> str:
    lines = [f"{'TYPE':<16}{'PRECISION':>10}{'RECALL':>10}{'F1':>8}{'TP':>7}{'FP':>6}{'FN':>6}"]
    for t, m in list(result["types"].items()) + [("micro-average", result["micro"])]:
        lines.append(f"{t:<16}{m['precision']:>10.3f}{m['recall']:>10.3f}{m['f1']:>8.3f}{m['tp']:>7}{m['fp']:>6}{m['fn']:>6}")
    return "\n".join(lines)
