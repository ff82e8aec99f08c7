"""Benchmark: what encrypted evidence (evidence.public_key) costs per finding.

    python bench/evidence.py [corpus/labeled.har] [--repeat N]

Classifies the corpus once, then builds its events again and again without evidence, with it
as shipped (an ephemeral key serves up to a second of findings), and with an ephemeral key per
event, and reports the cost per finding of each; then the parts: a key agreement (X25519 +
HKDF), sealing one value, opening one, and the blob's size.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from sensor import evidence  # noqa: E402
from sensor.config import Config  # noqa: E402
from sensor.engine import Sensor  # noqa: E402
from sensor.events.build import EventBuilder  # noqa: E402
from sensor.sources import har  # noqa: E402
from sensor.stats import Stats  # noqa: E402

US = 1e6


def best(fn, repeat: int) -> float:
    """The fastest of `repeat` runs, in seconds: the least disturbed by the rest of the machine."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("har", nargs="?", default=str(ROOT / "corpus" / "labeled.har"))
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()

    private = X25519PrivateKey.generate()
    public = private.public_key().public_bytes_raw()
    config = Config(workers=0)
    sensor = Sensor(config)
    exchanges = list(har.read(args.har, Stats(), config.max_body_bytes))
    sensor.findings_many(exchanges)  # a cold pass fills the caches
    started = time.perf_counter()
    all_findings = sensor.findings_many(exchanges)
    classified = time.perf_counter() - started
    pairs = [(ex, fs) for ex, fs in zip(exchanges, all_findings) if fs]
    n = sum(len(fs) for _, fs in pairs)
    print(f"corpus: {len(pairs)} events with findings, {n} findings ({n / len(pairs):.1f} per event); "
          f"classifying them (warm) took {classified * US / n:.0f} us per finding")

    plain, sealed = EventBuilder(config), EventBuilder(replace(config, evidence_key=public))
    build = lambda builder: [builder.build(ex, fs) for ex, fs in pairs]  # noqa: E731
    build(plain), build(sealed)  # warm the path caches both use
    t_plain = best(lambda: build(plain), args.repeat)
    t_shipped = best(lambda: build(sealed), args.repeat)
    shipped_life = evidence.KEY_SECONDS
    evidence.KEY_SECONDS = 0.0  # every seal call (one per event) finds its key expired
    t_per_event = best(lambda: build(sealed), args.repeat)
    evidence.KEY_SECONDS = shipped_life
    print(f"building events: {t_plain * US / n:.1f} us per finding without evidence; with it, "
          f"+{(t_shipped - t_plain) * US / n:.1f} us per finding as shipped, "
          f"+{(t_per_event - t_plain) * US / n:.1f} us with an ephemeral key per event")

    sealer, opener = evidence.Sealer(public), evidence.Opener(private)
    ad = evidence.context("00000000-0000-0000-0000-000000000000", "Email", "request.body", "$.customer.email")
    items = [("jane.doe@example.com", ad)] * 100
    rotate = best(lambda: [sealer._rotate() for _ in range(1000)], args.repeat) / 1000
    seal = best(lambda: [sealer.seal(items) for _ in range(20)], args.repeat) / 2000
    blobs = sealer.seal(items)
    open_shared = best(lambda: [opener.open(b, ad) for b in blobs], args.repeat) / len(blobs)
    open_alone = best(lambda: [evidence.Opener(private).open(b, ad) for b in blobs], args.repeat) / len(blobs)
    context = best(lambda: [evidence.context("x", "Email", "request.body", "$.a.b") for _ in range(10000)], args.repeat) / 10000
    print(f"parts: a key agreement (ephemeral key, X25519, HKDF) {rotate * US:.1f} us; sealing a value "
          f"{seal * US:.2f} us (padding, ChaCha20-Poly1305, base64url), its context {context * US:.2f} us")
    print(f"opening a value: {open_shared * US:.1f} us beside others of its key, {open_alone * US:.1f} us alone")
    print(f"blob: {len(blobs[0])} characters for a value of up to {evidence.PAD - 1} bytes, "
          f"{evidence.PAD * 4 // 3} more per further {evidence.PAD} bytes")


if __name__ == "__main__":
    main()
