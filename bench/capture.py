"""Benchmark: a large generated capture through `pii-sensor scan` and through tshark, in one run.

    python bench/capture.py [--connections 3000] [--out /tmp/pii-bench.pcap]

Generates a capture of thousands of keep-alive HTTP connections (`--traffic orders`: one order
schema with realistic body sizes; `--traffic apis`: the official example payloads of corpus/apis,
13 public APIs, requests and responses as documented, mixed at random), 1% reordered and 1% retransmitted segments, overlapping retransmissions, and 2%
of the connections picked up mid-stream (handshake and first request missing). Reports:
  * `pii-sensor scan --format json`, in one process and with 2 classifier workers: packets/s,
    MB/s, exchanges/s, peak RSS;
  * the engine alone on one core (bench/engine.py --capture), cold and warm;
  * reassembly + HTTP parsing alone, without classification: packets/s, MB/s;
  * `tshark -q -z http,tree` on the same file: packets/s, MB/s, peak RSS;
  * exchanges recovered by each, against the generator's ground truth.
With `--protocol http2` the same exchanges go over h2c connections (the h2 library's client and
server, a stream per exchange; tshark's HTTP/2 dissector beside it), and the HTTP/2 parsing speed
is compared per byte with the HTTP/1.1 capture of the same exchanges.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import struct
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MSS = 1448


def eth_ip_tcp(src, dst, sport, dport, seq, ack, flags, payload, ident):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq % (1 << 32), ack % (1 << 32), 5 << 4, flags, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident & 0xFFFF, 0x4000, 64, 6, 0, bytes(src), bytes(dst))
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp + payload


def body(rng, size):
    record = {"customer": {"name": rng.choice(["Jane Doe", "Ana Lima", "Sven Olsson", "Priya Natarajan"]),
                           "email": f"user{rng.randrange(10**6)}@example.com", "phone": "+1 415-555-2671",
                           "address": {"street": "42 Baker Street", "city": "London", "postcode": "NW1 6XE"}},
              "order_id": str(rng.randrange(10**15, 10**16)), "items": []}
    while len(json.dumps(record)) < size:
        record["items"].append({"sku": f"SKU-{rng.randrange(10**5)}", "name": "Classic Runner", "qty": 1, "price": 19.99})
    return json.dumps(record).encode()


def orders(rng) -> tuple[bytes, bytes, bytes]:
    """(request line and target, request body, response body) of one order-API exchange."""
    target = b"POST /v1/users/%d" % rng.randrange(10**6)
    return target, body(rng, rng.choice([200, 800, 2000, 6000])), body(rng, rng.choice([150, 1000, 4000, 15000]))


def api_examples():
    sys.path.insert(0, str(ROOT / "corpus" / "apis"))
    import build

    examples = []
    for source in build.sources():
        for example in json.loads(source.read_text(encoding="utf-8"))["examples"]:
            text = build._body(example)[0].encode()
            part = example.get("part", "response.body")
            method = example.get("method", "GET" if part == "response.body" else "POST")
            split = urlsplit(example["url"])
            target = f"{method} {split.path or '/'}{'?' + split.query if split.query else ''}".encode()
            examples.append((target, text if part == "request.body" else b"", text if part == "response.body" else b"{}"))
    return examples


def http1_units(rng, make, exchanges: int) -> list[tuple[bytes, bool]]:
    """(bytes, from the client) of each message of a keep-alive HTTP/1.1 connection."""
    units = []
    for _ in range(exchanges):
        target, qb, rb = make(rng)
        req = (target + b" HTTP/1.1\r\nHost: users.internal\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(qb)) + qb
        resp = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(rb) + rb
        units += [(req, True), (resp, False)]
    return units


def http2_units(rng, make, exchanges: int) -> list[tuple[bytes, bool]]:
    """The same exchanges as http1_units makes, as the h2 library's client and server send them over
    one h2c connection with prior knowledge: the preface and settings, then a stream per exchange."""
    import h2.config
    import h2.connection
    import h2.events

    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    units = []

    def pump():
        while True:
            moved = False
            for sender, receiver, fwd in ((client, server, True), (server, client, False)):
                data = sender.data_to_send()
                if data:
                    moved = True
                    units.append((data, fwd))
                    for event in receiver.receive_data(data):
                        if isinstance(event, h2.events.DataReceived) and event.flow_controlled_length:
                            receiver.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if not moved:
                return

    pump()
    for _ in range(exchanges):
        target, qb, rb = make(rng)
        method, path = target.decode().split(" ", 1)
        sid = client.get_next_available_stream_id()
        client.send_headers(sid, [(":method", method), (":path", path), (":scheme", "http"), (":authority", "users.internal"),
                                  ("content-type", "application/json"), ("content-length", str(len(qb)))], end_stream=not qb)
        if qb:
            client.send_data(sid, qb, end_stream=True)
        pump()
        server.send_headers(sid, [(":status", "201"), ("content-type", "application/json"), ("content-length", str(len(rb)))],
                            end_stream=not rb)
        for off in range(0, len(rb), 16384):  # the peer's largest frame
            server.send_data(sid, rb[off:off + 16384], end_stream=off + 16384 >= len(rb))
        pump()
    return units


def generate(path: Path, connections: int, seed: int = 1, batches: int = 1, traffic: str = "orders",
             protocol: str = "http1") -> int:
    """Write the capture, `batches` times `connections` connections, one batch after the
    other (so a huge file is written in bounded memory); return the number of exchanges
    whose request starts inside it."""
    rng = random.Random(seed)
    if traffic == "apis":
        examples = api_examples()
        make = lambda rng: rng.choice(examples)  # noqa: E731
    else:
        make = orders
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        units = http2_units if protocol == "http2" else http1_units
        return sum(_batch(out, rng, connections, 1_763_800_000.0 + b * 120, make, units) for b in range(batches))


def _batch(out, rng, connections: int, ts: float, make, units) -> int:
    ident = 0
    expected = 0
    active = []  # interleave connections: realistic captures are not one connection at a time
    for n in range(connections):
        client = (10, 244, rng.randrange(256), rng.randrange(1, 255))
        server = (10, 96, rng.randrange(256), rng.randrange(1, 255))
        active.append([client, server, 30000 + n % 30000, rng.randrange(1 << 32), rng.randrange(1 << 32),
                       rng.randrange(1, 5), rng.random() < 0.02 and units is http1_units, True])
    packets = []

    def emit(frame_args, when):
        nonlocal ident
        ident += 1
        packets.append((when, eth_ip_tcp(*frame_args, ident)))

    for conn in active:
        client, server, port, cseq, sseq, exchanges, midstream, _ = conn
        t = ts + rng.random() * 60
        segs = []
        if not midstream:
            segs += [(client, server, port, 8080, cseq, 0, 0x02, b""), (server, client, 8080, port, sseq, cseq + 1, 0x12, b""),
                     (client, server, port, 8080, cseq + 1, sseq + 1, 0x10, b"")]
        cseq += 1
        sseq += 1
        expected += exchanges - midstream  # picked up mid-stream: the first request is not in the capture
        for n_unit, (data, fwd) in enumerate(units(rng, make, exchanges)):
            for off in range(0, len(data), MSS):
                chunk = data[off:off + MSS]
                if fwd:
                    seg = (client, server, port, 8080, cseq + off, sseq, 0x18, chunk)
                else:
                    seg = (server, client, 8080, port, sseq + off, cseq, 0x18, chunk)
                if not (midstream and n_unit == 0 and off == 0):
                    segs.append(seg)
            if fwd:
                cseq += len(data)
            else:
                sseq += len(data)
        segs += [(client, server, port, 8080, cseq, sseq, 0x11, b""), (server, client, 8080, port, sseq, cseq + 1, 0x11, b"")]
        # network weather: reordering, retransmission, overlapping retransmission
        for i in range(len(segs) - 2):
            r = rng.random()
            if r < 0.01:
                segs[i], segs[i + 1] = segs[i + 1], segs[i]
            elif r < 0.02 and segs[i][7]:
                segs.insert(i + 2, segs[i])
            elif r < 0.025 and len(segs[i][7]) > 100:
                s = segs[i]
                segs.insert(i + 1, s[:4] + (s[4] + 50,) + s[5:7] + (s[7][50:],))
        for j, s in enumerate(segs):
            emit(s, t + j * 0.0005)
    packets.sort(key=lambda p: p[0])
    for when, frame in packets:
        sec = int(when)
        out.write(struct.pack("<IIII", sec, int((when - sec) * 1e6), len(frame), len(frame)))
        out.write(frame)
    return expected


def _tree(pid: int) -> list[int]:
    """pid and its descendants (the classifier's fork server and workers too)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += map(int, fh.read().split())
        except OSError:
            pass
    return out


def _pss_mb(pids) -> float:
    """Proportional set size of the processes, in MB: pages they share (the workers' copy-on-write
    model, libraries) are counted once in total, unlike a sum of RSS."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
    return total / 1024


def timed(cmd) -> tuple[float, str, str, float]:
    """Run cmd; return seconds, stdout, stderr, and the peak memory of it and all its descendants
    together (PSS in MB, sampled every 50 ms)."""
    import threading

    peak = 0.0
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def sample():
        nonlocal peak
        while proc.poll() is None:
            peak = max(peak, _pss_mb(_tree(proc.pid)))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    sampler.join()
    return seconds, out[-20000:], err[-5000:], peak


def reassembly_only(path: Path):
    from sensor.sources.pcap import frames
    from sensor.wire.session import CaptureSession
    from sensor.stats import Stats

    stats = Stats()
    session = CaptureSession(stats)
    started = time.perf_counter()
    exchanges = 0
    for linktype, frame, ts in frames(str(path), stats):
        exchanges += len(session.frame(linktype, frame, ts))
    exchanges += len(session.finish())
    return time.perf_counter() - started, stats.packets, exchanges


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=3000)
    ap.add_argument("--batches", type=int, default=1, help="repeat the connections this many times (16 makes ~1 GB)")
    ap.add_argument("--traffic", choices=("orders", "apis"), default="orders")
    ap.add_argument("--protocol", choices=("http1", "http2"), default="http1",
                    help="http2: the same exchanges over h2c (prior knowledge), compared with HTTP/1.1 per byte and per exchange")
    ap.add_argument("--out", default="/tmp/pii-bench.pcap")
    args = ap.parse_args()
    path = Path(args.out)
    expected = generate(path, args.connections, batches=args.batches, traffic=args.traffic, protocol=args.protocol)
    size = path.stat().st_size
    print(f"capture: {path} {size / 1e6:.1f} MB, {args.traffic} traffic, {args.connections} connections, "
          f"{expected} exchanges that start inside it")

    for workers in (0, 2):
        sec, _, err, rss = timed([sys.executable, "-m", "sensor", "scan", str(path), "--format", "json",
                                  "--workers", str(workers)])
        m = re.search(r"(\d+) packets; (\d+) exchanges", err)
        packets, ours = int(m.group(1)), int(m.group(2))
        print(f"pii-sensor scan, {workers} workers {sec:7.2f} s  {packets / sec:9.0f} packets/s  "
              f"{size / sec / 1e6:6.2f} MB/s  {ours / sec:7.0f} exchanges/s  peak memory (all processes, PSS) {rss:.0f} MB  "
              f"recovered {ours}/{expected} = {ours / expected:.2%}")

    engine = subprocess.run([sys.executable, str(Path(__file__).with_name("engine.py")), "--capture", str(path)],
                            capture_output=True, text=True, check=True)
    print(engine.stdout.strip())
    r_sec, r_packets, r_exchanges = reassembly_only(path)
    print(f"reassembly + HTTP    {r_sec:7.2f} s  {r_packets / r_sec:9.0f} packets/s  {size / r_sec / 1e6:6.2f} MB/s  "
          f"(no classification, {r_exchanges} exchanges)")

    if args.protocol == "http2":
        t_sec, out, _, t_rss = timed(["tshark", "-r", str(path), "-o", "tcp.reassemble_out_of_order:TRUE",
                                      "-d", "tcp.port==8080,http2", "-q", "-z", "http2,tree"])
        m = re.search(r"HEADERS\s+(\d+)", out)
        theirs = int(m.group(1)) // 2 if m else 0  # a request's and its response's HEADERS
    else:
        t_sec, out, _, t_rss = timed(["tshark", "-r", str(path), "-o", "tcp.reassemble_out_of_order:TRUE",
                                      "-d", "tcp.port==8080,http", "-q", "-z", "http,tree"])
        m = re.search(r"Request Packets\s+(\d+)", out)
        theirs = int(m.group(1)) if m else 0
    print(f"tshark {args.protocol:<13} {t_sec:7.2f} s  {packets / t_sec:9.0f} packets/s  {size / t_sec / 1e6:6.2f} MB/s  "
          f"peak memory {t_rss:.0f} MB  recovered {theirs}/{expected} = {theirs / expected:.2%}")
    print(f"reassembly + HTTP time / tshark time: {r_sec / t_sec:.2f}x (target <= 1.5x)")
    if args.protocol == "http2":  # the same exchanges over HTTP/1.1: HTTP/2 should be no slower per byte
        h1 = path.with_suffix(".http1.pcap")
        generate(h1, args.connections, batches=args.batches, traffic=args.traffic)
        h1_sec, _, h1_exchanges = min((reassembly_only(h1) for _ in range(3)), key=lambda r: r[0])
        h2_sec, _, _ = min([(r_sec, 0, 0), *(reassembly_only(path) for _ in range(2))], key=lambda r: r[0])
        h1_size = h1.stat().st_size
        print(f"the same exchanges over HTTP/1.1: {h1_size / 1e6:.1f} MB; reassembly + parsing HTTP/2 {size / h2_sec / 1e6:.1f} MB/s "
              f"{r_exchanges / h2_sec:.0f} exchanges/s, HTTP/1.1 {h1_size / h1_sec / 1e6:.1f} MB/s {h1_exchanges / h1_sec:.0f} "
              f"exchanges/s: HTTP/2 / HTTP/1.1 {size / h2_sec / (h1_size / h1_sec):.2f} per byte (target >= 1.00)")
        os.unlink(h1)
    os.unlink(path)


if __name__ == "__main__":
    main()
