"""The sans-I/O engines on bytes: TCP reassembly and HTTP/1.x parsing edge cases."""
import pytest

from sensor.wire import http1
from sensor.wire.packets import Segment
from sensor.wire.tcp import Closed, Data, Gap, Reassembler, seq_diff
from sensor.stats import Stats

C, S = ("10.0.0.1", 40000), ("10.0.0.2", 80)
SYN, ACK, PSH, FIN, RST = 0x02, 0x10, 0x08, 0x01, 0x04


def seg(src, seq, payload=b"", flags=ACK | PSH, ack=0, ts=0.0):
    dst = S if src == C else C
    return Segment(ts, src[0], src[1], dst[0], dst[1], seq % (1 << 32), ack, flags, payload)


def stream(events, sender=C):
    return b"".join(e.data for e in events if isinstance(e, Data) and e.sender == sender)


def run(segments, **kw):
    r = Reassembler(Stats(), **kw)
    events = []
    for s in segments:
        events += r.feed(s)
    return events + r.finish(), r


def test_in_order_after_handshake():
    events, _ = run([seg(C, 100, flags=SYN), seg(S, 900, flags=SYN | ACK), seg(C, 101, b"hello "), seg(C, 107, b"world")])
    assert stream(events) == b"hello world"


def test_out_of_order_retransmission_and_overlap():
    events, r = run([seg(C, 100, flags=SYN), seg(C, 107, b"world"), seg(C, 101, b"hello "), seg(C, 101, b"hello "),
                     seg(C, 104, b"lo wor"), seg(C, 112, b"!")])
    assert stream(events) == b"hello world!"
    assert r.stats.skipped["tcp_retransmission"] == 2


def test_sequence_wrap_around():
    start = (1 << 32) - 3
    events, _ = run([seg(C, start - 1, flags=SYN), seg(C, start, b"abcdef"), seg(C, start + 6, b"gh")])
    assert stream(events) == b"abcdefgh"
    assert seq_diff(2, (1 << 32) - 2) == 4


def test_mid_stream_pickup_without_syn():
    events, _ = run([seg(C, 5000, b"POST /x HTTP/1.1\r\n"), seg(C, 5018, b"\r\n")])
    assert stream(events) == b"POST /x HTTP/1.1\r\n\r\n"


def test_gap_is_skipped_and_reported_at_the_end():
    events, r = run([seg(C, 100, flags=SYN), seg(C, 101, b"aaaa"), seg(C, 109, b"cccc")])
    assert stream(events) == b"aaaacccc"
    assert [e.size for e in events if isinstance(e, Gap)] == [4]
    assert r.stats.dropped["tcp_gap"] == 1


def test_buffer_is_bounded_per_direction():
    segs = [seg(C, 100, flags=SYN), seg(C, 101, b"a")] + [seg(C, 200 + i * 100, b"x" * 100) for i in range(50)]
    events, r = run(segs, max_buffer=1000)
    assert any(isinstance(e, Gap) for e in events)
    assert len(stream(events)) == 1 + 50 * 100


def test_connections_are_bounded():
    r = Reassembler(Stats(), max_connections=10)
    for port in range(50):
        r.feed(Segment(0.0, "10.0.0.1", 1000 + port, "10.0.0.2", 80, 1, 0, PSH | ACK, b"x"))
    assert len(r.connections) == 10 and r.stats.dropped["stream_evicted"] == 40


def test_fin_from_both_sides_and_rst_close():
    events, _ = run([seg(C, 100, flags=SYN), seg(C, 101, b"hi", flags=ACK | PSH | FIN), seg(S, 900, flags=ACK | FIN)])
    assert sum(isinstance(e, Closed) for e in events) == 1
    r = Reassembler(Stats())
    r.feed(seg(C, 101, b"x"))
    assert any(isinstance(e, Closed) for e in r.feed(seg(S, 1, flags=RST)))
    assert not r.connections


def test_idle_connections_expire():
    r = Reassembler(Stats(), idle_timeout=10)
    r.feed(seg(C, 101, b"x", ts=0.0))
    assert r.expire(now=5.0) == []
    assert any(isinstance(e, Closed) for e in r.expire(now=11.0))


# --- HTTP/1.x ---------------------------------------------------------------------


def parse(data: bytes, chunks=1, method_hint=None, max_body=1 << 20):
    p = http1.Parser(Stats(), max_body, lambda: method_hint)
    out = []
    step = max(1, len(data) // chunks)
    for i in range(0, len(data), step):
        out += p.feed(data[i:i + step], 0.0)
    return out + p.close(), p


@pytest.mark.parametrize("chunks", [1, 7, 1000])
def test_pipelined_requests_in_any_segmentation(chunks):
    data = (b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
            b"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n")
    msgs, _ = parse(data, chunks)
    assert [(m.method, m.target, bytes(m.body)) for m in msgs] == [("POST", "/a", b"abc"), ("GET", "/b", b""), ("PUT", "/c", b"abcde")]
    assert msgs[2].header("x-t") == "1"  # trailer


def test_responses_without_bodies():
    msgs, _ = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", method_hint="HEAD")
    assert len(msgs) == 1 and msgs[0].body == b"" and not msgs[0].truncated
    msgs, _ = parse(b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n")
    assert [m.status for m in msgs] == [204, 304]


def test_interim_and_upgrade_responses():
    msgs, _ = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
    assert [m.status for m in msgs] == [201]
    msgs, p = parse(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello")
    assert msgs == [] and p.state == "upgraded"


def test_close_delimited_body():
    msgs, _ = parse(b"HTTP/1.0 200 OK\r\n\r\nall of this until the end")
    assert msgs[0].body == b"all of this until the end" and not msgs[0].truncated


def test_resync_after_garbage():
    msgs, p = parse(b"\x16\x03\x01garbage bytes {}\r\nGET /ok HTTP/1.1\r\n\r\n")
    assert [m.target for m in msgs] == ["/ok"]
    assert p.stats.skipped["http_resync"] == 1


def test_gap_inside_a_body_truncates_the_message():
    p = http1.Parser(Stats(), 1 << 20)
    assert p.feed(b"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 0.0) == []
    assert p.gap(4) == []
    msgs = p.feed(b"ijkGET /b HTTP/1.1\r\n\r\n", 0.0)  # 3 + 4 lost + 3 = the 10 declared bytes
    assert [(m.target, m.truncated, bytes(m.body)) for m in msgs] == [("/a", True, b"abcijk"), ("/b", False, b"")]


def test_huge_declared_body_is_not_kept():
    msgs, p = parse(b"POST /a HTTP/1.1\r\nContent-Length: 10000000000\r\n\r\n" + b"x" * 5000, max_body=1000)
    assert msgs[0].body_too_large and msgs[0].truncated and msgs[0].body == b""


def test_absurd_chunk_size_is_garbage_not_a_hang():
    msgs, p = parse(b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzzzz\r\nGET /b HTTP/1.1\r\n\r\n")
    assert [m.target for m in msgs] == ["/b"]


def test_out_of_order_bytes_are_bounded_across_connections():
    """Holes on many connections at once: the reassembler gives up holes rather than hold more than its bound."""
    r = Reassembler(Stats(), max_buffer=1 << 20, max_buffered=64 * 1000)
    for c in range(100):  # each connection: a first segment, one missing, then 10 KB waiting behind the hole
        for i in (1, *range(3, 13)):
            r.feed(Segment(0.0, "10.0.0.1", 1000 + c, "10.0.0.2", 80, 1000 * i, 0, 0x18, b"x" * 1000))
        assert r.buffered <= 64 * 1000
    assert r.stats.dropped["tcp_gap"] > 0


def test_bodies_held_across_connections_are_bounded():
    """Many connections mid-way through a body: together they hold no more than the budget."""
    budget = http1.BodyBudget(10_000)
    parsers = [http1.Parser(Stats(), 1 << 20, budget=budget) for _ in range(5)]
    for p in parsers:
        p.feed(b"POST /x HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"a" * 3000, 0.0)
        assert budget.used <= 10_000
    assert sum(bool(p.msg.body) for p in parsers) == 3 and sum(p.msg.body_too_large for p in parsers) == 2
    done = parsers[0].feed(b"a" * 97000, 0.0)[0]  # 100 KB do not fit: the body is skipped, its room given back
    assert done.body_too_large and not done.body and budget.used == 6000
