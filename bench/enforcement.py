"""Benchmark: the latency inline classification adds to a request (SPEC.md section 9, enforcement).

    python bench/enforcement.py [--requests 300] [--warmup 30]

Runs `pii-sensor proxy --mode reverse:...` twice in front of the same small upstream: without
rules, and with a redact rule that every request matches (so every one is classified inline and
rewritten). One client, one keep-alive connection, requests one after the other, each a JSON
POST with new personal data (a name, an email, a card number, an address: no cache helps).
Prints p50/p95/p99/max per proxy, the difference, the proxy process's RSS (the engine lives
there with rules) and the proxy's own measure of the wait (pii_sensor_enforcement_inline_seconds).
"""
from __future__ import annotations

import argparse
import http.client
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy import UPSTREAM, free_port, rss_mb, wait_port  # noqa: E402  the same upstream as bench/proxy.py

ROOT = Path(__file__).resolve().parent.parent
RULES = """policy:
  - name: redact-contact-and-card
    data_types: [Email, Card, Phone]
    action: redact
"""
FIRST = ["Jane", "Maria", "Ahmed", "Chen", "Olga", "Pedro", "Aiko", "Liam", "Fatima", "Noah"]
LAST = ["Doe", "Schmidt", "Haddad", "Wei", "Ivanova", "Silva", "Tanaka", "Murphy", "Khan", "Berg"]
CARDS = ["4111111111111111", "5500005555555559", "4242424242424242", "378282246310005"]


def bodies(n: int, seed: int = 7) -> list[bytes]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        out.append(json.dumps({
            "order_id": f"ord-{i:06d}", "amount": round(rnd.uniform(5, 500), 2),
            "customer": {"name": f"{first} {last}", "email": f"{first}.{last}{i}@example.com".lower(),
                         "phone": f"+1 415-555-{rnd.randint(1000, 9999)}",
                         "address": {"street": f"{rnd.randint(1, 999)} Market St", "city": "San Francisco", "zip": "94103"}},
            "payment": {"card_number": rnd.choice(CARDS), "exp": "12/29"},
            "note": f"Please deliver to {first} at the back door, order {i}."}).encode())
    return out


def run_proxy(config: Path, upstream: int, requests: list[bytes], warmup: int) -> tuple[list[float], float | None, float]:
    listen, metrics = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sensor", "proxy", "--mode", f"reverse:http://127.0.0.1:{upstream}",
                             "--listen-port", str(listen), "--metrics-port", str(metrics), "--events", "file:/dev/null",
                             "--config", str(config), "--confdir", str(config.parent / "mitm")],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(listen, timeout=300)
        conn = http.client.HTTPConnection("127.0.0.1", listen, timeout=30)
        latencies = []
        for i, body in enumerate(requests):
            started = time.perf_counter()
            conn.request("POST", "/v1/orders", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if i >= warmup:
                latencies.append(time.perf_counter() - started)
            assert response.status == 201, response.status
        conn.close()
        time.sleep(1)  # the classifier process publishes its counters after the last exchange
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5).read().decode()
        values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("pii_sensor_enforcement_inline_seconds_"))
        count = float(values.get("pii_sensor_enforcement_inline_seconds_count", 0))
        inline = float(values["pii_sensor_enforcement_inline_seconds_sum"]) / count if count else None
        return latencies, inline, rss_mb(proc.pid)  # the proxy process alone (not its classifier process)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def percentiles(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": q[49] * 1000, "p95": q[94] * 1000, "p99": q[98] * 1000, "max": max(values) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()
    requests = bodies(args.warmup + args.requests)
    upstream_port = free_port()
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(upstream_port)])
    try:
        wait_port(upstream_port)
        with tempfile.TemporaryDirectory() as tmp:
            plain, rules = Path(tmp) / "plain.yaml", Path(tmp) / "rules.yaml"
            plain.write_text("{}\n")
            rules.write_text(RULES)
            results = {}
            for name, config in (("no rules", plain), ("redact rule", rules)):
                latencies, inline, rss = run_proxy(config, upstream_port, requests, args.warmup)
                results[name] = percentiles(latencies), inline, rss
    finally:
        upstream.kill()
        upstream.wait()
    print(f"{args.requests} POSTs (~{sum(map(len, requests)) // len(requests)} bytes of JSON with new personal data each), "
          "one keep-alive connection, after a warm-up of", args.warmup)
    print(f"{'proxy':<14}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'RSS MB':>9}  inline wait (proxy's mean)")
    for name, (p, inline, rss) in results.items():
        wait = f"{inline * 1000:.2f} ms" if inline is not None else "-"
        print(f"{name:<14}{p['p50']:>9.2f}{p['p95']:>9.2f}{p['p99']:>9.2f}{p['max']:>9.2f}{rss:>9.0f}  {wait}")
    base, enforced = results["no rules"][0], results["redact rule"][0]
    print(f"{'added':<14}" + "".join(f"{enforced[k] - base[k]:>9.2f}" for k in ("p50", "p95", "p99", "max")))


if __name__ == "__main__":
    main()
