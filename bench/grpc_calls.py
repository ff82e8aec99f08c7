"""Benchmark: gRPC over HTTP/2 captured and scanned end to end.

    python bench/grpc_calls.py [--calls 10000]

Records `--calls` unary calls of a real grpcio client and server (fixtures/grpc_users.py, a user
record with personal data per response) over one channel on loopback with tcpdump, then reports:
  * `pii-sensor scan` of the capture: calls recovered (target: every one), exchanges/s, and the
    data types found;
  * reassembly + HTTP/2 parsing alone, MB/s, beside the HTTP/1.x path on a capture of the same
    size from bench/capture.py (target: HTTP/2 no slower per byte).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent import futures
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "fixtures"))
sys.path.insert(0, str(ROOT / "tests"))

import grpc  # noqa: E402

import capture  # noqa: E402  (bench/capture.py)
from grpc_users import message_classes, serve, stub  # noqa: E402
from helpers import free_port  # noqa: E402


def record(path: Path, calls: int) -> None:
    classes = message_classes()
    User, Address, GetUserRequest = classes["User"], classes["Address"], classes["GetUserRequest"]

    def get_user(request, context):
        return User(id=request.user_id, full_name="Jane Doe", email=f"jane{request.user_id}@example.com",
                    phone="+1 415-555-2671", birth_date="1984-03-12",
                    home=Address(street="1 Main St", city="Springfield", postal_code="62701", country="US"))

    port = free_port()
    server = serve(port, get_user, workers=4)
    dump = subprocess.Popen(["tcpdump", "-i", "lo", "-w", str(path), "-U", "-B", "65536", f"tcp port {port}"],
                            stderr=subprocess.PIPE)
    dump.stderr.readline()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = stub(channel)
            pool = futures.ThreadPoolExecutor(8)  # concurrent streams on the one connection
            list(pool.map(lambda i: call(GetUserRequest(user_id=str(i), requested_by="agent@example.com")), range(calls)))
        time.sleep(1.0)
    finally:
        dump.terminate()
        err = dump.communicate()[1].decode()
        server.stop(None)
    dropped = [line for line in err.splitlines() if "dropped by kernel" in line]
    print(f"recorded {calls} calls: {path.stat().st_size / 1e6:.1f} MB ({', '.join(dropped) or 'tcpdump reported nothing'})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "grpc.pcap"
        record(path, args.calls)
        events_file = Path(tmp) / "events.jsonl"
        seconds, _, err, rss = capture.timed(["sh", "-c", f"{sys.executable} -m sensor scan {path} --format json --all "
                                              f"--workers 0 > {events_file}"])
        events = [json.loads(line) for line in events_file.read_text().splitlines()]
        calls = sum(e["request"]["path"] == "/users.v1.Users/GetUser" for e in events)
        types = Counter(t for e in events for t in e["data_types"])
        print(f"pii-sensor scan: {calls}/{args.calls} calls recovered in {seconds:.2f} s ({calls / seconds:.0f} exchanges/s, "
              f"peak memory {rss:.0f} MB); data types {dict(types)}")
        print(f"  {err.strip().splitlines()[-1]}")
        h2_sec, _, h2_exchanges = capture.reassembly_only(path)
        size = path.stat().st_size
        h1 = Path(tmp) / "h1.pcap"
        connections = 300
        capture.generate(h1, connections)
        while h1.stat().st_size < size:  # an HTTP/1.x capture at least as large
            connections *= 2
            capture.generate(h1, connections)
        h1_sec, _, h1_exchanges = capture.reassembly_only(h1)
        h2_rate, h1_rate = size / h2_sec / 1e6, h1.stat().st_size / h1_sec / 1e6
        print(f"reassembly + parsing alone: HTTP/2 {h2_rate:.1f} MB/s, {h2_exchanges / h2_sec:.0f} streams/s; "
              f"HTTP/1.x {h1_rate:.1f} MB/s, {h1_exchanges / h1_sec:.0f} exchanges/s "
              f"(HTTP/2 / HTTP/1.x: {h2_rate / h1_rate:.2f} per byte, {h2_exchanges / h2_sec / (h1_exchanges / h1_sec):.2f} per exchange; "
              f"gRPC messages are ~150 bytes, the HTTP/1.x bodies ~7 KB)")


if __name__ == "__main__":
    main()
