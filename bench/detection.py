"""Benchmark: detection quality on the third-party API payloads (corpus/apis), per source and per
type, with the worst source named; the generator's corpora beside them for contrast.

    python bench/detection.py [--errors]

Each source is a file of official example payloads labeled by hand (corpus/apis/README.md).
--errors lists every mismatch (entry, part, path, type), keys that are personal data masked.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "corpus" / "apis"))

import build  # noqa: E402

from sensor.commands import eval as evaluate  # noqa: E402
from sensor.engine import Sensor  # noqa: E402


def labeled(paths: dict[str, Path]) -> dict[str, tuple[set, set]]:
    sensor = Sensor()
    return {name: evaluate.labeled(sensor, str(path)) for name, path in paths.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--errors", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for source in build.sources():
            paths[source.stem] = Path(tmp) / f"{source.stem}.har"
            paths[source.stem].write_text(json.dumps(build.har(source), ensure_ascii=False))
        sets = labeled(paths)
    generated = labeled({"(generator) labeled.har": ROOT / "corpus" / "labeled.har"})
    results = {name: evaluate.metrics(*pair) for name, pair in sets.items()}
    print(f"{'SOURCE':<26}{'PRECISION':>10}{'RECALL':>8}{'F1':>8}{'TP':>6}{'FP':>5}{'FN':>5}")
    for name, result in {**results, **{n: evaluate.metrics(*p) for n, p in generated.items()}}.items():
        m = result["micro"]
        print(f"{name:<26}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['tp']:>6}{m['fp']:>5}{m['fn']:>5}")
    # every source pooled: entries told apart by their source
    pooled = evaluate.metrics(*({(f"{name}#{k[0]}", *k[1:]) for name, pair in sets.items() for k in pair[i]}
                                for i in (0, 1)))
    print("\nall third-party sources")
    print(evaluate.render(pooled))
    worst = min(results, key=lambda n: results[n]["micro"]["f1"])
    print(f"\nworst source: {worst} (F1 {results[worst]['micro']['f1']:.3f})")
    if args.errors:
        for name, result in results.items():
            for kind, items in result["errors"].items():
                for item in items:
                    print(f"{name}: {kind[:-1].replace('_', ' ')}: entry {item[0]} {item[1]} {item[2]} {item[3]}")


if __name__ == "__main__":
    main()
