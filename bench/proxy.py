"""Benchmark: wrk against an upstream directly, through plain mitmproxy, and through `pii-sensor proxy`.

    python bench/proxy.py [--duration 20] [--connections 16]

Reports requests/s and p50/p99 latency side by side, and the RSS of `pii-sensor proxy`
at the start and the end of its run (use --duration 300 for the five-minute soak).
The upstream is a small asyncio HTTP/1.1 server, so the proxies, not it, set the pace.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

UPSTREAM = r'''
import asyncio, json, sys
BODY = json.dumps({"id": 8812, "status": "created", "user": {"name": "Jane Doe", "email": "jane.doe@example.com"}}).encode()
RESP = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            n = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    n = int(line.split(b":")[1])
            if n:
                await reader.readexactly(n)
            writer.write(RESP)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    async with server:
        await server.serve_forever()
asyncio.run(main())
'''

POST_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '%s'
""" % json.dumps({"customer": {"name": "Jane Doe", "email": "jane.doe@example.com", "phone": "+1 415-555-2671",
                               "address": {"city": "Berlin", "zip": "10115"}}, "order_id": "4556737586899855"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout=30.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wrk(url: str, duration: int, connections: int, script: str) -> dict:
    out = subprocess.run(["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout

    def latency(pct):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": latency(50), "p99": latency(99),
            "errors": "Non-2xx" in out or "Socket errors" in out}


def start_sensor(up, tmp):
    ours, metrics = free_port(), free_port()
    sensor = subprocess.Popen([sys.executable, "-m", "sensor", "proxy", "--mode", f"reverse:http://127.0.0.1:{up}",
                               "--listen-port", str(ours), "--metrics-port", str(metrics), "--confdir", str(tmp / "mitm"),
                               "--events", f"file:{tmp / 'events.jsonl'}"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    wait_port(ours)
    return sensor, ours


def soak(up, tmp, script, args):
    sensor, ours = start_sensor(up, tmp)
    try:
        wrk(f"http://127.0.0.1:{ours}/v1/users/1", 5, 4, str(script))  # warm up
        children = lambda: [int(p) for p in Path(f"/proc/{sensor.pid}/task/{sensor.pid}/children").read_text().split()]  # noqa: E731
        start = {pid: rss_mb(pid) for pid in [sensor.pid, *children()]}
        r = wrk(f"http://127.0.0.1:{ours}/v1/users/1", args.soak, args.connections, str(script))
        end = {pid: rss_mb(pid) for pid in start}
        print(f"soak: {args.soak} s at {r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms")
        for pid in start:
            role = "proxy" if pid == sensor.pid else "classifier"
            print(f"  {role:<10} RSS {start[pid]:.0f} MB at start, {end[pid]:.0f} MB at the end")
    finally:
        sensor.send_signal(signal.SIGTERM)
        _, err = sensor.communicate(timeout=60)
    print(err.strip().splitlines()[-1] if err.strip() else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--soak", type=int, metavar="SECONDS",
                    help="only load pii-sensor proxy for this long and report its RSS at the start and the end")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    script = tmp / "post.lua"
    script.write_text(POST_LUA)
    up = free_port()
    procs = [subprocess.Popen([sys.executable, "-c", UPSTREAM, str(up)])]
    try:
        wait_port(up)
        def both(url):  # saturating load for throughput; one connection for the latency a request sees
            return wrk(url, args.duration, args.connections, str(script)), wrk(url, max(5, args.duration // 3), 1, str(script))

        if args.soak:
            return soak(up, tmp, script, args)
        rows = [("direct", *both(f"http://127.0.0.1:{up}/v1/users/1"))]

        plain = free_port()
        procs.append(subprocess.Popen(["mitmdump", "-q", "--mode", f"reverse:http://127.0.0.1:{up}", "-p", str(plain),
                                       "--set", f"confdir={tmp / 'mitm'}"], stdout=subprocess.DEVNULL))
        wait_port(plain)
        rows.append(("mitmproxy (no addon)", *both(f"http://127.0.0.1:{plain}/v1/users/1")))
        procs[-1].send_signal(signal.SIGINT)
        procs[-1].wait()

        sensor, ours = start_sensor(up, tmp)
        procs.append(sensor)
        wrk(f"http://127.0.0.1:{ours}/v1/users/1", 2, 2, str(script))  # warm: spaCy and caches loaded
        rss_start = rss_mb(sensor.pid)
        rows.append(("pii-sensor proxy", *both(f"http://127.0.0.1:{ours}/v1/users/1")))
        rss_end = rss_mb(sensor.pid)
        sensor.send_signal(signal.SIGTERM)
        _, err = sensor.communicate(timeout=60)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    print(f"{'':<22}{f'{args.connections} connections':^30}{'1 connection':^20}")
    print(f"{'target':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, r, one in rows:
        print(f"{name:<22}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}{one['p50']:>10.2f}{one['p99']:>10.2f}"
              f"{'  (errors)' if r['errors'] else ''}")
    (_, plain_r, plain_one), (_, ours_r, ours_one) = rows[1], rows[2]
    print(f"pii-sensor proxy keeps {ours_r['rps'] / plain_r['rps']:.1%} of mitmproxy's req/s (target >= 95%); "
          f"adds {ours_one['p50'] - plain_one['p50']:+.2f} ms at p50 on one connection, "
          f"{ours_r['p50'] - plain_r['p50']:+.2f} ms under saturation (target <= 1 ms)")
    print(f"pii-sensor proxy RSS: {rss_start:.0f} MB at start, {rss_end:.0f} MB after {args.duration} s of load")
    print(err.strip().splitlines()[-1] if err.strip() else "")
    os.system(f"rm -rf {tmp}")


if __name__ == "__main__":
    main()
