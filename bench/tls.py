"""Benchmark: `pii-sensor sniff --tls` under load, and what tracing costs the traced processes.

    python bench/tls.py [--seconds 10] [--connections 4]   (as root: eBPF)

A Python HTTPS server (HTTP/1.1 keep-alive, a JSON body with personal data each way) and wrk,
both linked to the system's libssl, run twice: alone, then with `sniff --tls` tracing them. Reports
requests/s and the CPU time per request of the server and of wrk in each run (the overhead of
the uprobes on the traced processes), the sensor's own CPU, and whether every exchange was seen:
the sensor's exchanges against wrk's completed requests (target: all of them, at >= 1,000
requests/s; other TLS traffic on the machine counts too), how many were classified and how many
sampled out under overload (classification cannot keep up with a 2-core load test of itself), and
the ring buffer's losses.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

BODY = json.dumps({"customer": {"name": "Jane Doe", "email": "jane.doe@example.com", "phone": "+1 415-555-2671"}})
SERVER = """
import http.server, ssl, sys
BODY = sys.argv[3].encode()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as services talk
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall between them
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"""
WRK_SCRIPT = 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n'


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its reaped children, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def run_wrk(port: int, seconds: int, connections: int, script: str) -> tuple[int, float, float]:
    """(requests completed, requests/s, wrk's CPU seconds)."""
    before = os.times()
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script,
                          f"https://127.0.0.1:{port}/v1/customers"], capture_output=True, text=True, check=True).stdout
    after = os.times()
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return requests, rate, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def scrape(port: int) -> str:
    import urllib.request

    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


def metric(text: str, series: str) -> float:
    return next((float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(series + " ")), 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args()
    from test_tls_tracer import _self_signed

    tmp = Path(tempfile.mkdtemp(prefix="pii-bench-tls-"))
    cert, key = _self_signed(tmp)
    script = tmp / "post.lua"
    script.write_text(WRK_SCRIPT % json.dumps(BODY))
    server = subprocess.Popen([sys.executable, "-c", SERVER, cert, key, BODY], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)  # wrk ends connections abruptly: not news
    port = int(server.stdout.readline())
    try:
        results = {}
        for traced in (False, True):
            sensor = None
            if traced:
                events, metrics_port = tmp / "events.jsonl", 19555
                sensor = subprocess.Popen([sys.executable, "-m", "sensor", "sniff", "--tls", "--events", f"file:{events}",
                                           "--metrics-port", str(metrics_port)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
                for _ in range(600):
                    try:
                        scrape(metrics_port)
                        break
                    except OSError:
                        time.sleep(0.1)
                sensor_cpu = cpu_seconds(sensor.pid)
            server_cpu = cpu_seconds(server.pid)
            requests, rate, wrk_cpu = run_wrk(port, args.seconds, args.connections, str(script))
            server_cpu = cpu_seconds(server.pid) - server_cpu
            line = (f"{'traced' if traced else 'alone ':6}  {rate:8.0f} requests/s ({requests} requests)  "
                    f"server {server_cpu / requests * 1e6:6.0f} us CPU/request  wrk {wrk_cpu / requests * 1e6:5.0f} us CPU/request")
            if traced:
                text, seen = "", 0
                for _ in range(600):  # until the sensor has read what the ring holds
                    text = scrape(metrics_port)
                    seen = metric(text, "pii_sensor_exchanges_total")
                    if seen >= requests:
                        break
                    time.sleep(0.1)
                sensor_cpu = cpu_seconds(sensor.pid) - sensor_cpu
                lost = metric(text, 'pii_sensor_dropped_total{reason="tls_ringbuf"}')
                sampled = sum(float(v) for v in re.findall(r'^pii_sensor_sampled_total\{[^}]*\} (\S+)$', text, re.M))
                sensor.send_signal(signal.SIGINT)
                sensor.communicate(timeout=60)
                classified = sum(1 for e in map(json.loads, events.read_text().splitlines())
                                 if e["destination"]["port"] == port) if events.exists() else 0
                line += (f"\n        exchanges seen {seen:.0f}/{requests} = {seen / requests:.2%} (target 100% at >= 1,000/s): "
                         f"{classified} classified, {sampled:.0f} sampled out under overload; ring buffer losses {lost:.0f}; "
                         f"sensor CPU {sensor_cpu / max(seen, 1) * 1e6:.0f} us/exchange")
            results[traced] = (rate, server_cpu / requests, wrk_cpu / requests)
            print(line, flush=True)
        (r0, s0, w0), (r1, s1, w1) = results[False], results[True]
        print(f"tracing costs: requests/s x{r1 / r0:.2f}; server CPU per request +{(s1 - s0) * 1e6:.0f} us "
              f"({s1 / s0 - 1:+.0%}); wrk CPU per request +{(w1 - w0) * 1e6:.0f} us ({w1 / w0 - 1:+.0%})")
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
