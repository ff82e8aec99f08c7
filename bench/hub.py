"""Benchmark: `pii-sensor hub` with SQLite, as a real server on loopback, pinned to one core.

    python bench/hub.py [--workloads 1000] [--edges 10000] [--events 200000]

Reports:
  * ingest: events/s accepted, posting JSON-lines bodies of 1,000 events (a batching forwarder)
    and one event per request (what the sensors' webhook sink sends today), and the time until
    the database holds them all;
  * GET /api/v1/map with `--workloads` workloads and `--edges` flows stored: p50/p95/max latency;
  * the hub's peak RSS.
  * `pii-sensor map --html` of the capture fixtures and the corpus opened in headless Chromium:
    the time until the page has drawn (when chromium and chromedriver are installed).
Targets (issue 12): ingest >= 20,000 events/s on one core; GET /api/v1/map p95 <= 100 ms; the
page open in under 2 s.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import free_port, wait_for  # noqa: E402

TYPES = ["Person", "Email", "Phone", "Location", "Card", "IBAN", "Birth date", "IP address"]


def events(n: int, workloads: int, edges: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    pairs = [(rng.randrange(workloads), rng.randrange(workloads + 200)) for _ in range(edges)]
    out = []
    for i in range(n):
        src, dst = pairs[i % edges] if i < edges else rng.choice(pairs)
        external = dst >= workloads
        event = {
            "id": f"{i:032x}", "time": f"2026-11-23T10:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}Z",
            "source": {"ip": f"10.244.{src // 250}.{src % 250}", "port": 40000, "name": f"app-{src}", "namespace": f"ns-{src % 20}",
                       "country": "DE"},
            "destination": {"ip": f"10.96.{dst // 250}.{dst % 250}", "port": 443, "host": f"api-{dst}.example.com",
                            "name": None if external else f"app-{dst}", "namespace": None if external else f"ns-{dst % 20}",
                            "external": external, "country": "US" if external else "DE"},
            "request": {"method": "POST", "path": f"/v1/things/{i}", "endpoint": f"/v1/things{dst % 7}/{{id}}"},
            "response": {"status": 200}, "findings": [],
            "data_types": sorted(rng.sample(TYPES, rng.randrange(1, 4))), "sensitivity": "high",
            "cross_border": external, "violations": [],
        }
        out.append(json.dumps(event).encode())
    return out


def post_all(port: int, lines: list[bytes], per_request: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    for i in range(0, len(lines), per_request):
        body = b"\n".join(lines[i:i + per_request]) + b"\n"
        conn.request("POST", "/api/v1/events", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        result = json.loads(response.read())
        assert response.status == 202 and result["rejected"] == 0, result
    return time.perf_counter() - started


def get_map(port: int, times: int, fresh: bool = False) -> list[float]:
    """`times` GETs of the map; `fresh`: each with a filter not asked before (no cached answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out = []
    for i in range(times):
        started = time.perf_counter()
        conn.request("GET", f"/api/v1/map?since=2000-01-01T00:00:{i % 60:02d}Z" if fresh else "/api/v1/map")
        response = conn.getresponse()
        body = response.read()
        out.append(time.perf_counter() - started)  # the hub's answer, not the client's JSON parsing
        assert response.status == 200, body[:200]
    return out, json.loads(body)


def page_load(tmp: str) -> str:
    import shutil

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return "skipped: chromium and chromedriver are not installed"
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    page = Path(tmp) / "map.html"
    inputs = sorted(str(p) for p in (ROOT / "fixtures" / "pcaps").glob("*.pcap*")) + [str(ROOT / "corpus" / "labeled.har")]
    subprocess.run([sys.executable, "-m", "sensor", "map", *inputs, "--html", str(page)], cwd=ROOT, check=True,
                   capture_output=True)
    options = Options()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        times = []
        for _ in range(5):
            driver.get(page.as_uri())
            times.append(driver.execute_script(
                "const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime;"))
        edges = len(driver.find_elements("css selector", "path.edge"))
    finally:
        driver.quit()
    return f"{statistics.median(times):.0f} ms median of 5 loads ({edges} flows drawn, {page.stat().st_size // 1024} KB)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", type=int, default=1000)
    ap.add_argument("--edges", type=int, default=10000)
    ap.add_argument("--events", type=int, default=200_000)
    args = ap.parse_args()
    lines = events(args.events, args.workloads, args.edges)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        config = Path(tmp) / "hub.yaml"
        config.write_text("hub: {flush_interval_seconds: 1.0}\n")
        hub = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-m", "sensor", "hub", "--listen", f"127.0.0.1:{port}",
                                "--db", f"sqlite:///{tmp}/map.db", "--config", str(config)], cwd=ROOT,
                               stderr=subprocess.DEVNULL, env={**os.environ, "PII_SENSOR_HUB_TOKENS": ""})
        try:
            assert wait_for(lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/healthz") or True)
            batched = post_all(port, lines, 1000)
            started = time.perf_counter()
            timings, doc = get_map(port, 1)  # the first read merges what is pending
            stored = time.perf_counter() - started
            single = post_all(port, lines[:5000], 1)
            print(f"hub ingest, 1,000 events per request  {len(lines) / batched:9.0f} events/s "
                  f"({len(lines)} events in {batched:.2f} s; then {stored:.2f} s until all are in the database)")
            print(f"hub ingest, 1 event per request       {5000 / single:9.0f} events/s (as the webhook sink posts)")
            for fresh, what in ((False, "as it repeats"), (True, "each with a new filter, not cached")):
                timings, doc = get_map(port, 50, fresh)
                timings.sort()
                p95 = timings[int(len(timings) * 0.95) - 1]
                print(f"GET /api/v1/map, {len(doc['nodes'])} nodes and {len(doc['edges'])} flows, {what}: "
                      f"p50 {statistics.median(timings) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
                      f"max {timings[-1] * 1000:.0f} ms")
            rss = int(open(f"/proc/{hub.pid}/status").read().split("VmHWM:")[1].split()[0]) / 1024
            print(f"hub peak RSS {rss:.0f} MB")
            print(f"map --html (capture fixtures and corpus) in headless Chromium: {page_load(tmp)}")
        finally:
            hub.terminate()
            hub.wait(30)


if __name__ == "__main__":
    main()
