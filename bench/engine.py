"""Benchmark: the detection engine against Presidio on the labeled corpus, in one run.

    python bench/engine.py [corpus/labeled.har] [--presidio-limit N]
    python bench/engine.py --capture FILE.pcap   (the engine alone on unlabelled traffic)

Reports, for pii-sensor and for presidio-analyzer (same spaCy pipeline, each
field analysed with its key as context, as Presidio's analyze_dict does):
exchanges/s and MB/s on one core after start-up (pii-sensor: a cold pass, then a warm one over
the same traffic with its caches filled), micro-F1 and per-type F1
against the corpus labels, and peak RSS. Both engines see the same decoded
fields (pii-sensor's payload decoders), so the comparison is about detection.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detectors import nlp  # noqa: E402
from sensor.commands import eval as evaluate  # noqa: E402
from sensor.config import Config  # noqa: E402
from sensor.sources import har, pcap  # noqa: E402
from sensor.payload.jsonpath import without_indices  # noqa: E402
from sensor.payload.fields import exchange_fields  # noqa: E402
from sensor.engine import Sensor  # noqa: E402
from sensor.stats import Stats  # noqa: E402

BATCH = 256  # the batch `pii-sensor scan` classifies at once (sensor/stream.py)
PRESIDIO_TYPES = {
    "PERSON": "Person", "EMAIL_ADDRESS": "Email", "PHONE_NUMBER": "Phone", "CREDIT_CARD": "Card",
    "IBAN_CODE": "IBAN", "US_SSN": "SSN", "IP_ADDRESS": "IP address", "US_DRIVER_LICENSE": "Driver license",
    "LOCATION": "Location",
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(path: str):
    doc = har.load(path)
    exchanges, truth = [], set()
    for i, entry in enumerate(doc["log"]["entries"]):
        ex = har.entry_to_exchange(entry)
        exchanges.append(ex)
        for label in ex.labels or []:
            truth.add((i, label["part"], without_indices(label["path"]), label["type"]))
    size = sum(len(ex.request.body) + len(ex.response.body) + len(ex.request.target)
               + sum(len(k) + len(v) for k, v in ex.request.headers + ex.response.headers) for ex in exchanges)
    return exchanges, truth, size


def run_sensor(exchanges):
    """A cold pass (every cache empty, as at a sensor's start) and then a warm one over the same
    traffic (what a long-running sensor sees: record shapes, short values and texts repeat)."""
    sensor = Sensor()
    nlp.pipeline()  # start-up is not part of the throughput
    nlp._cache.clear()
    predicted = set()
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        results = []
        for i in range(0, len(exchanges), BATCH):  # as `scan` does: spaCy is much faster on bigger batches
            results += sensor.findings_many(exchanges[i:i + BATCH])
        seconds.append(time.perf_counter() - started)
    for i, findings in enumerate(results):
        predicted |= {(i, f.part, without_indices(f.path), f.type) for f in findings}
    return seconds, predicted


def run_capture(path: str) -> None:
    """The whole engine (fields, detectors, events) on a capture's exchanges, as `scan` runs it
    after reading them: a cold pass and a warm one."""
    config = Config()
    exchanges = list(pcap.exchanges(path, Stats(), config))
    sensor = Sensor(config)
    nlp.pipeline()
    rates = []
    for _ in range(2):
        started = time.perf_counter()
        for i in range(0, len(exchanges), BATCH):
            sensor.events_many(exchanges[i:i + BATCH])
        rates.append(len(exchanges) / (time.perf_counter() - started))
    print(f"engine alone, one core: {len(exchanges)} exchanges of {path}: {rates[0]:.0f} exchanges/s cold, "
          f"{rates[1]:.0f} warm (the same traffic again)")


def run_presidio(exchanges, limit):
    import tldextract.tldextract as tld

    # Presidio's email and URL recognizers use tldextract, which fetches the public suffix
    # list at first use; nothing may download at run time, so use the bundled snapshot.
    tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=(), cache_dir=None)
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": nlp.MODEL}]})
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    analyzer.analyze("warm up John Smith", language="en")
    stats = Stats()
    predicted = set()
    subset = exchanges[:limit]
    started = time.perf_counter()
    for i, ex in enumerate(subset):
        for field in exchange_fields(ex, stats, Config()):
            for r in analyzer.analyze(text=field.value, language="en", context=[field.key.raw] if field.key.raw else None):
                t = PRESIDIO_TYPES.get(r.entity_type)
                if t:
                    predicted.add((i, field.part, without_indices(field.path), t))
    seconds = time.perf_counter() - started
    return seconds, predicted, len(subset)


def report(name, seconds, n, size, result):
    return {
        "engine": name, "exchanges": n, "seconds": round(seconds, 3),
        "exchanges_per_s": round(n / seconds, 1), "mb_per_s": round(size / seconds / 1e6, 3),
        "micro_f1": result["micro"]["f1"], "per_type_f1": {t: m["f1"] for t, m in result["types"].items()},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", nargs="?", default=str(ROOT / "corpus" / "labeled.har"))
    ap.add_argument("--presidio-limit", type=int, default=400,
                    help="exchanges Presidio analyses (it is slow; its rate and F1 are over this prefix)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--capture", metavar="PCAP", help="instead: the engine alone on a capture's traffic, unlabelled")
    args = ap.parse_args()

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    if args.capture:
        run_capture(args.capture)
        return
    exchanges, truth, size = load(args.corpus)

    (seconds, warm), predicted = run_sensor(exchanges)
    ours = report("pii-sensor", seconds, len(exchanges), size, evaluate.metrics(truth, predicted))
    ours["exchanges_per_s_warm"] = round(len(exchanges) / warm, 1)
    ours["peak_rss_mb"] = round(peak_rss_mb(), 1)

    p_seconds, p_predicted, n = run_presidio(exchanges, args.presidio_limit)
    p_truth = {k for k in truth if k[0] < n}
    p_size = size * n / len(exchanges)
    theirs = report("presidio-analyzer", p_seconds, n, p_size, evaluate.metrics(p_truth, p_predicted))
    theirs["peak_rss_mb_cumulative"] = round(peak_rss_mb(), 1)
    # the same prefix through pii-sensor, so F1 is compared on identical traffic
    ours_prefix = evaluate.metrics(p_truth, {k for k in predicted if k[0] < n})["micro"]["f1"]

    ratio = ours["exchanges_per_s"] / theirs["exchanges_per_s"]
    if args.json:
        print(json.dumps({"pii_sensor": ours, "presidio": theirs, "throughput_ratio": round(ratio, 1),
                          "pii_sensor_micro_f1_on_presidio_prefix": ours_prefix}, indent=2))
        return
    print(f"corpus: {args.corpus} ({len(exchanges)} exchanges, {size / 1e6:.2f} MB of headers, URLs and bodies)")
    print(f"{'engine':<20}{'exchanges':>10}{'exch/s':>10}{'MB/s':>8}{'micro-F1':>10}")
    for r in (ours, theirs):
        print(f"{r['engine']:<20}{r['exchanges']:>10}{r['exchanges_per_s']:>10}{r['mb_per_s']:>8}{r['micro_f1']:>10}")
    print(f"pii-sensor micro-F1 on Presidio's {n}-exchange prefix: {ours_prefix}")
    print(f"throughput ratio pii-sensor / Presidio: {ratio:.1f}x (cold pass); pii-sensor warm pass, "
          f"the same traffic again with its caches filled: {ours['exchanges_per_s_warm']} exchanges/s")
    print(f"peak RSS: pii-sensor {ours['peak_rss_mb']} MB (measured before Presidio loaded)")
    print("per-type F1      pii-sensor  presidio")
    for t in ours["per_type_f1"]:
        print(f"  {t:<16}{ours['per_type_f1'][t]:>8}{theirs['per_type_f1'].get(t, 0.0):>10}")


if __name__ == "__main__":
    main()
