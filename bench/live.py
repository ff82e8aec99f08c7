"""Benchmark: `pii-sensor sniff` under live load, at increasing rates.

Two network namespaces joined by a veth pair; an aiohttp server (bench/live_server.py) in one
answers ~1 KB of JSON whose data type depends on the path; wrk in the other drives keep-alive
connections, paced (a pause per request on each connection) and unpaced. `pii-sensor sniff` on
the client side's veth sees it all. Per level: requests wrk completed, exchanges the sensor saw,
responses paired with their own request (the data type must match the path) and with another,
what the sensor counted as lost or sampled (classified one in N under overload), how many of the
traffic's three (endpoint, data type) pairs its events reported, and the CPU (100% = one core) and peak memory (PSS: shared pages
counted once, as a cgroup limit counts them) of the sensor with its classifier processes.

    sudo python3 bench/live.py [--seconds 10] [--levels 4:10,16:10,64:10,16:0,64:0]

A level is CONNECTIONS:PAUSE_MS (0 = unpaced). Needs root, iproute2, wrk and aiohttp.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
from netns import sh, veth_pair  # noqa: E402
NS_CLIENT, NS_SERVER = f"benchc{os.getpid()}", f"benchs{os.getpid()}"
CLIENT_IP, SERVER_IP, PORT, METRICS = "10.78.0.1", "10.78.0.2", 8080, 9103
TYPE_OF = {"email": "Email", "phone": "Phone", "iban": "IBAN"}
WRK = """
counter = 0
kinds = {"email", "phone", "iban"}
request = function()
  counter = counter + 1
  return wrk.format("GET", "/pii/" .. kinds[counter %% 3 + 1] .. "/" .. counter)
end
%s
"""


def in_ns(ns, *cmd, **kw):
    return subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **kw)


def metrics() -> str:
    out = sh("ip", "netns", "exec", NS_CLIENT, sys.executable, "-c",
             f"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:{METRICS}/metrics').read().decode())",
             check=False)
    return out.stdout


def value(text: str, series: str) -> float:
    m = re.search(r"^" + re.escape(series) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def wait(predicate, timeout=60.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def tree(pid: int) -> list[int]:
    """The sensor and its classifier processes."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            todo += [int(c) for c in task.read_text().split()]
    return pids


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Usage:
    """CPU and memory of a process tree, sampled while it runs (children come and go)."""

    def __init__(self, pid: int):
        self.pid, self.cpu, self.rss = pid, {}, 0.0
        self.base = {p: cpu_seconds(p) for p in tree(pid)}

    def sample(self) -> None:
        total_rss = 0.0
        for p in tree(self.pid):
            try:
                self.cpu[p] = cpu_seconds(p) - self.base.get(p, 0.0)
                # PSS: pages the workers share with their fork server (spaCy's model) are counted once
                total_rss += int(re.search(r"^Pss:\s+(\d+)", Path(f"/proc/{p}/smaps_rollup").read_text(), re.M).group(1)) / 1024
            except (OSError, AttributeError):
                continue
        self.rss = max(self.rss, total_rss)

    def cpu_total(self) -> float:
        return sum(self.cpu.values())


def level(connections: int, pause_ms: int, seconds: int, work: Path, workers: int | None) -> dict:
    work.mkdir()
    events = work / "events.jsonl"
    script = work / "typed.lua"
    script.write_text(WRK % (f"function delay() return {pause_ms} end" if pause_ms else ""))
    sniff = in_ns(NS_CLIENT, sys.executable, "-m", "sensor", "sniff", "-i", "vpii0", "--bpf", f"tcp port {PORT}",
                  *(["--workers", str(workers)] if workers is not None else []),
                  "--metrics-port", str(METRICS), "--events", f"file:{events}",
                  cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert wait(lambda: "pii_sensor_exchanges_total" in metrics()), "sniff did not start"
    usage, started = Usage(sniff.pid), time.time()
    wrk = in_ns(NS_CLIENT, "wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script),
                f"http://{SERVER_IP}:{PORT}/", stdout=subprocess.PIPE, text=True)
    while wrk.poll() is None:
        usage.sample()
        time.sleep(0.5)
    out = wrk.stdout.read()
    sent = int(re.search(r"(\d+) requests in", out).group(1))
    # stop at once: sniff processes what its rings and streams hold, then prints its summary
    sniff.send_signal(signal.SIGTERM)
    while sniff.poll() is None:
        usage.sample()
        time.sleep(0.2)
    cpu = usage.cpu_total() / (time.time() - started)
    err = sniff.stderr.read()
    summary = re.search(r"(\d+) packets; (\d+) exchanges.*", err)
    seen = int(summary.group(2)) if summary else 0
    right = wrong = 0
    pairs = set()  # (endpoint, data type) reported: the traffic has three, one per kind
    for line in events.read_text().splitlines():
        e = json.loads(line)
        kind = e["request"]["path"].split("/")[2]
        types = {f["type"] for f in e["findings"] if f["part"] == "response.body"}
        pairs |= {(e["request"]["endpoint"], t) for t in types}
        if types:
            right, wrong = (right + 1, wrong) if types == {TYPE_OF[kind]} else (right, wrong + 1)
    counts = {label: dict((k, int(v)) for k, v in (kv.split("=") for kv in m.group(1).split(", ")))
              for label in ("dropped", "sampled") if summary and (m := re.search(label + r": ([^;]+)", summary.group(0)))}
    return {"connections": connections, "pause_ms": pause_ms, "sent": sent, "rate": sent / seconds, "seen": seen,
            "right": right, "wrong": wrong, "dropped": counts.get("dropped", {}),
            "sampled": sum(counts.get("sampled", {}).values()), "pairs": len(pairs), "cpu": cpu, "rss": usage.rss}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--levels", default="4:10,16:10,64:10,16:0,64:0")
    ap.add_argument("--workers", type=int, help="sniff --workers (default: its own, one per core)")
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("wrk") or not shutil.which("ip"):
        sys.exit("bench/live.py needs root, iproute2 and wrk")
    server = None
    with veth_pair(NS_CLIENT, NS_SERVER, CLIENT_IP, SERVER_IP):
        try:
            server = in_ns(NS_SERVER, sys.executable, str(ROOT / "bench" / "live_server.py"), SERVER_IP, str(PORT))
            probe = f"import socket; socket.create_connection(('{SERVER_IP}', {PORT}), timeout=1).close()"
            assert wait(lambda: sh("ip", "netns", "exec", NS_CLIENT, sys.executable, "-c", probe, check=False).returncode == 0)
            run_levels(args)
        finally:
            if server is not None:
                server.kill()


def run_levels(args) -> None:
    print(f"{'conns':>5} {'pause':>6} {'sent':>7} {'req/s':>7} {'seen':>7} {'sampled':>7} {'paired':>7} {'wrong':>6} "
          f"{'pairs':>5} {'uncounted':>9} {'cpu':>5} {'mem MB':>7}  counted losses")
    with tempfile.TemporaryDirectory() as work:
        for n, spec in enumerate(args.levels.split(",")):
            c, p = (int(x) for x in spec.split(":"))
            r = level(c, p, args.seconds, Path(work) / str(n), args.workers)
            lost = sum(n for reason, n in r["dropped"].items() if reason in ("orphan_response", "response_lost", "queue_full", "classifier_lost"))
            uncounted = max(0, r["sent"] - r["seen"] - lost) if not r["dropped"].get("capture_kernel") \
                and not r["dropped"].get("tcp_gap") else "-"
            print(f"{c:>5} {str(p) + 'ms' if p else 'none':>6} {r['sent']:>7} {r['rate']:>7.0f} {r['seen']:>7} "
                  f"{r['sampled']:>7} {r['right']:>7} {r['wrong']:>6} {r['pairs']:>3}/3 {uncounted!s:>9} "
                  f"{r['cpu']:>5.0%} {r['rss']:>7.0f}  "
                  f"{', '.join(f'{k}={v}' for k, v in sorted(r['dropped'].items())) or '-'}")


if __name__ == "__main__":
    main()
