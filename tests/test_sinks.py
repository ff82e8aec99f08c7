"""Event sinks and throttling: a real webhook receiver checking signatures, rotation, limits, the proxy queue."""
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from helpers import LoopbackServer, free_port, wait_for
from sensor.outputs.throttle import EventLimiter
from sensor.outputs.sinks import SIGNATURE_HEADER, FileSink, WebhookSink, open_sink
from sensor.model import Event, Party, ReportedFinding
from sensor.stats import Stats

def event(data_types=("Email",), path="/v1/users/1") -> Event:
    return Event(time="2026-11-22T10:00:00.000Z", source=Party("10.0.0.1", 5000), destination=Party(None, 80, host="users.internal"),
                 method="POST", path=path, endpoint="/v1/users/{id}", status=200,
                 findings=[ReportedFinding(t, "request.body", "$.x", "medium", 0.9, "****") for t in data_types],
                 data_types=list(data_types), sensitivity="medium")


EVENT = event()


def finishes(work) -> bool:
    """Did `work` return, rather than block? (A hang detector with a generous limit, not a timing.)"""
    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout=30)
    return not t.is_alive()


class Receiver:
    """A real HTTP webhook receiver that verifies the HMAC signature of every POST."""

    def __init__(self, secret: bytes, fail_first: int = 0):
        self.secret, self.fail_first, self.received, self.bad_signatures = secret, fail_first, [], 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(self.headers.get(SIGNATURE_HEADER, ""), expected):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                elif receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(503)
                else:
                    receiver.received.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.http = LoopbackServer(Handler)
        self.port = self.http.port

    def close(self):
        self.http.close()


def test_webhook_posts_signed_events_and_retries():
    receiver = Receiver(b"s3cret", fail_first=2)
    stats = Stats()
    sink = WebhookSink(f"http://127.0.0.1:{receiver.port}/hook", stats, secret="s3cret", backoff=0.05)
    try:
        for i in range(3):
            sink.write(event(path=f"/v1/users/{i}"))
        assert wait_for(lambda: len(receiver.received) == 3, timeout=15)
    finally:
        sink.close()
        receiver.close()
    assert [e["request"]["path"] for e in receiver.received] == ["/v1/users/0", "/v1/users/1", "/v1/users/2"]
    assert len({e["id"] for e in receiver.received}) == 3 and receiver.bad_signatures == 0
    assert stats.dropped == {}


def test_wrong_secret_is_rejected_by_the_receiver():
    receiver = Receiver(b"right")
    stats = Stats()
    sink = WebhookSink(f"http://127.0.0.1:{receiver.port}/hook", stats, secret="wrong", retries=1, backoff=0.01)
    sink.write(EVENT)
    assert wait_for(lambda: stats.dropped["webhook_failed"] == 1, timeout=10)
    sink.close()
    receiver.close()
    assert receiver.bad_signatures == 2 and receiver.received == []


def test_receiver_down_drops_are_counted_and_writes_never_block():
    stats = Stats()
    sink = WebhookSink(f"http://127.0.0.1:{free_port()}/hook", stats, retries=1, backoff=0.01, buffer=5)
    assert finishes(lambda: [sink.write(EVENT) for _ in range(50)])  # writes only enqueue
    sink.close(wait=2.0)
    assert stats.dropped["webhook_buffer_full"] >= 40
    assert stats.dropped["webhook_buffer_full"] + stats.dropped["webhook_failed"] == 50


def test_file_sink_rotates_by_size(tmp_path):
    path = tmp_path / "events.jsonl"
    sink = FileSink(str(path), max_bytes=1000, backups=2)
    for i in range(100):
        sink.write(event(path=f"/v1/users/{i}"))
    sink.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
    last = json.loads(path.read_text().splitlines()[-1])
    assert last["request"]["path"] == "/v1/users/99"


def test_unknown_sink_is_an_error():
    from sensor.errors import InputError
    with pytest.raises(InputError):
        open_sink("ftp://x")


def test_limiter_reports_new_types_at_once_and_throttles_repeats():
    now = [0.0]
    limiter = EventLimiter(interval=10, clock=lambda: now[0])
    assert limiter.allow(EVENT)
    assert not limiter.allow(EVENT)
    assert limiter.allow(event(["Email", "SSN"]))  # a new type: at once
    now[0] = 11
    assert limiter.allow(EVENT)
    assert limiter.suppressed == 1
    assert EventLimiter(interval=0).allow(EVENT)


def test_full_queue_drops_and_counts_without_blocking():
    from mitmproxy.test import tflow

    from sensor.engine import Sensor
    from sensor.sources.proxy import PiiSensorAddon
    from sensor.worker import ThreadWorker

    gate, busy = threading.Event(), threading.Event()

    class SlowSensor(Sensor):
        def process_many(self, exchanges, emit_all=False):
            busy.set()
            assert gate.wait(30)
            return super().process_many(exchanges, emit_all)

    sensor = SlowSensor()
    written = []

    class ListOutputs:
        def publish(self, events):
            written.extend(e for e in events if e)

        def close(self):
            pass

    addon = PiiSensorAddon(ThreadWorker(sensor, ListOutputs(), queue_size=2))

    def proxy_flows(n):
        for _ in range(n):
            flow = tflow.tflow(resp=True)
            flow.request.content = json.dumps({"email": "jane@example.com"}).encode()
            addon.response(flow)

    proxy_flows(1)
    assert busy.wait(30)  # the classifier holds that one flow and is stuck on it
    assert finishes(lambda: proxy_flows(9))  # while it is stuck, the proxy path still returns
    gate.set()
    addon.done()
    assert sensor.stats.dropped["queue_full"] == 7  # two fit in the queue, the rest are counted
    assert sensor.stats.exchanges == 3 and len(written) == 3
