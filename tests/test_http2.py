"""HTTP/2 on the capture path: recorded h2c fixtures, and byte streams from the h2 library (a real
HTTP/2 implementation, both ends) for what real clients seldom do on purpose: many concurrent
streams, HPACK table eviction, a capture joined mid-connection, broken frames, a header bomb."""
import json

import h2.config
import h2.connection
from hpack import Encoder
from hyperframe.frame import HeadersFrame

from conftest import ROOT, run_cli
from sensor.config import Config
from sensor.engine import Sensor
from sensor.model import Drop
from sensor.wire.session import CaptureSession
from sensor.stats import Stats
from sensor.wire.http1 import BodyBudget
from sensor.wire.http2 import MAX_HEADER_LIST, H2Connection

CLIENT, SERVER = ("10.0.0.1", 40000), ("10.0.0.2", 80)
PII = {"customer": {"name": "Jane Doe", "email": "jane.doe@example.com"}}


def test_recorded_h2c_exchanges_carry_their_personal_data():
    result = run_cli("scan", ROOT / "fixtures/pcaps/h2c_prior_knowledge.pcap", ROOT / "fixtures/pcaps/h2c_upgrade.pcap",
                     "--format", "json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == 5 and "dropped" not in result.stderr
    post = next(e for e in events if e["request"]["method"] == "POST")
    assert set(post["data_types"]) == {"Person", "Email", "Phone", "Location"}
    assert {(f["part"], f["type"]) for f in post["findings"]} >= {("request.body", "Location"), ("response.body", "Phone")}
    upgraded = [e for e in events if e["request"]["path"] == "/v1/users/8"]
    assert upgraded and {"Email", "Person"} <= set(upgraded[0]["data_types"])
    assert any(f["part"] == "request.query" and f["type"] == "Email" for f in upgraded[0]["findings"])


class Pair:
    """A client and a server of the h2 library talking; what each sends is kept as a byte stream."""

    def __init__(self, header_table_size=4096):
        self.client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        self.client.initiate_connection()
        self.client.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: header_table_size})
        self.server.initiate_connection()
        self.sent: list[tuple] = []  # (sender, bytes) in the order they crossed the wire
        self.pump()

    def pump(self):
        while True:
            a, b = self.client.data_to_send(), self.server.data_to_send()
            if not a and not b:
                return
            if a:
                self.sent.append((CLIENT, a))
                self.server.receive_data(a)
            if b:
                self.sent.append((SERVER, b))
                self.client.receive_data(b)

    def exchange(self, path, body=None, extra=()):
        sid = self.client.get_next_available_stream_id()
        headers = [(":method", "POST" if body else "GET"), (":path", path), (":scheme", "http"), (":authority", "api"),
                   *extra] + ([("content-type", "application/json")] if body else [])
        self.client.send_headers(sid, headers, end_stream=body is None)
        if body:
            self.client.send_data(sid, json.dumps(body).encode(), end_stream=True)
        self.pump()
        self.server.send_headers(sid, [(":status", "200"), ("content-type", "application/json")])
        self.server.send_data(sid, json.dumps(PII).encode(), end_stream=True)
        self.pump()
        return sid


def read(pair, stats=None, skip=0, max_streams=1000, extra=(), budget=None):
    """The pairs an H2Connection makes of what crossed the wire, in order, in segments of at most
    700 bytes; `skip`: the capture starts after that many of the sends."""
    stats = stats or Stats()
    conn = H2Connection(stats, CLIENT, 1 << 20, max_streams=max_streams, budget=budget)
    out = []
    for sender, data in [*pair.sent[skip:], *extra]:
        for i in range(0, len(data), 700):
            out += conn.feed(sender, data[i:i + 700], 0.0)
    return out + conn.close(), stats


def test_many_streams_and_table_eviction_decode_like_the_library_sent_them():
    pair = Pair(header_table_size=256)  # a small table: entries are evicted all the time
    for i in range(60):
        pair.exchange(f"/v1/users/{i}", PII, extra=[("x-request-id", f"req-{i:04d}" * 8)])
    pairs, stats = read(pair)
    assert len(pairs) == 60 and not stats.all_dropped()
    for i, (request, response) in enumerate(sorted(pairs, key=lambda p: int(p[0].target.rsplit("/", 1)[1]))):
        assert request.method == "POST" and request.target == f"/v1/users/{i}" and request.header("host") == "api"
        assert request.header("x-request-id") == f"req-{i:04d}" * 8
        assert json.loads(request.body) == PII and response.status == 200 and json.loads(response.body) == PII


def test_a_capture_joined_mid_connection_keeps_the_bodies_and_counts_the_headers():
    pair = Pair()
    for i in range(3):
        pair.exchange(f"/v1/users/{i}", PII, extra=[("x-tenant", "acme-corp-eu-west")])
    joined = len(pair.sent)
    for i in range(3, 6):
        pair.exchange(f"/v1/users/{i}", PII, extra=[("x-tenant", "acme-corp-eu-west")])  # indexed in the table now
    pairs, stats = read(pair, skip=joined)
    assert len(pairs) == 3  # every stream that began inside the capture
    assert all(json.loads(r.body) == PII and json.loads(s.body) == PII for r, s in pairs)  # bodies still read
    assert stats.all_dropped().get(Drop.H2_HEADERS_UNREADABLE.value, 0) >= 1  # and what could not be, counted
    unreadable = [request for request, _ in pairs if not request.target]
    assert unreadable  # the first stream's headers refer to entries made before the capture
    exchange = CaptureSession(Stats()).exchange(unreadable[0], None, CLIENT, SERVER)
    event = Sensor(Config()).process_many([exchange])[0]
    assert (event.method, event.path, event.endpoint) == ("_OTHER", "{unknown}", "{unknown}")  # marked, not '/'
    assert event.data_types == ["Email", "Person"]  # and its body still classified


def test_broken_frames_stop_that_direction_and_are_counted():
    pair = Pair()
    pair.exchange("/a", PII)
    unknown = b"\x00\x00\x05\xff\x00\x00\x00\x00\x01abcde"  # a frame of an unknown type is fine ...
    broken = b"\x00\x00\x02\x03\x00\x00\x00\x00\x01\x00\x00"  # ... an RST_STREAM of 2 bytes is not
    pairs, stats = read(pair, extra=[(CLIENT, unknown + broken)])
    assert len(pairs) == 1 and stats.all_dropped().get(Drop.H2_FRAME_ERROR.value) == 1


def test_a_header_bomb_is_cut_off_and_too_many_streams_are_counted():
    pair = Pair()
    encoder = Encoder()
    big = encoder.encode([("x-big", "a" * 4000)])  # a large entry, then thousands of one-byte references to it
    bomb = HeadersFrame(1, data=big + bytes([0xBE]) * 2000, flags=["END_HEADERS", "END_STREAM"])
    pairs, stats = read(pair, extra=[(CLIENT, bomb.serialize())])
    assert stats.all_dropped().get(Drop.H2_HEADERS_UNREADABLE.value) == 1
    assert 2000 * 4000 > MAX_HEADER_LIST

    pair = Pair()
    for i in range(5):
        sid = pair.client.get_next_available_stream_id()
        pair.client.send_headers(sid, [(":method", "GET"), (":path", f"/{i}"), (":scheme", "http"), (":authority", "a")])
        pair.pump()  # requests left open: no END_STREAM
    pairs, stats = read(pair, max_streams=3)
    assert stats.all_dropped().get(Drop.H2_TOO_MANY_STREAMS.value) == 2 and len(pairs) == 3
    assert all(request.truncated for request, _ in pairs)  # reported at the end, cut short


def test_a_lost_segment_stops_that_direction_and_keeps_what_came_before():
    pair = Pair()
    pair.exchange("/v1/users/1", PII)
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, [(":method", "POST"), (":path", "/v1/users/2"), (":scheme", "http"), (":authority", "a")])
    pair.client.send_data(sid, json.dumps(PII).encode() * 20, end_stream=True)
    pair.pump()
    stats = Stats()
    conn = H2Connection(stats, CLIENT, 1 << 20)
    out = []
    for sender, data in pair.sent:
        out += conn.feed(sender, data[:len(data) // 2] if len(data) > 1000 else data, 0.0)
        if len(data) > 1000:
            conn.lost(sender)  # the rest of that segment never reached the capture
    out += conn.close()
    done = {r.target: r for r, _ in out}
    assert not done["/v1/users/1"].truncated and done["/v1/users/2"].truncated


def test_open_streams_hold_their_bodies_within_the_captures_shared_budget():
    pair = Pair()
    body = json.dumps(PII).encode() * 40  # ~2 KB per stream
    for i in range(10):
        sid = pair.client.get_next_available_stream_id()
        pair.client.send_headers(sid, [(":method", "POST"), (":path", f"/{i}"), (":scheme", "http"), (":authority", "a")])
        pair.client.send_data(sid, body)  # no END_STREAM: each stream holds its body open
        pair.pump()
    budget = BodyBudget(5 * len(body))
    stats = Stats()
    conn = H2Connection(stats, CLIENT, 1 << 20, budget=budget)
    for sender, data in pair.sent:
        conn.feed(sender, data, 0.0)
    assert budget.used == 5 * len(body)  # five bodies held, the others refused ...
    pairs = conn.close()
    kept = [request for request, _ in pairs if request.body]
    assert len(kept) == 5 and all(r.body == body for r in kept)
    assert sum(r.body_too_large for r, _ in pairs) == 5  # ... and marked, to be counted with their exchanges
    assert budget.used == 0  # what left the connection is no longer held
