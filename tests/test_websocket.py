"""WebSocket after an HTTP/1.1 upgrade: a capture recorded from aiohttp's server and client (with
and without permessage-deflate) against what each side sent and against tshark; frames crafted
for masks, fragments, control frames, size bounds and broken headers."""
import json
import shutil
import subprocess
import zlib

from conftest import ROOT, run_cli
from sensor.model import Drop
from sensor.stats import Stats
from sensor.wire.http1 import BodyBudget
from sensor.wire.websocket import WsConnection

PCAP = ROOT / "fixtures" / "pcaps" / "websocket.pcap"
SENT = json.loads((ROOT / "fixtures" / "pcaps" / "websocket.messages.json").read_text())
CLIENT, SERVER = ("10.0.0.1", 5000), ("10.0.0.2", 80)


def test_every_message_of_the_recording_is_classified_where_it_was_sent():
    result = run_cli("scan", PCAP, "--format", "json", "--all")
    assert result.returncode == 0 and "dropped" not in result.stderr, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == len(SENT)  # one exchange per message, binary ones included (skipped as binary)
    for event, sent in zip(events, SENT):
        assert event["request"]["path"] == "/ws"
        parts = {f["part"] for f in event["findings"]}
        if "text" in sent:
            assert parts == {"request.body" if sent["from_client"] else "response.body"}
    types = {(f["path"], f["type"]) for e in events for f in e["findings"]}
    assert {("$.user.email", "Email"), ("$.user.name", "Person"), ("$.shipping.street", "Location"),
            ("$.text", "Phone"), ("$.agent.phone", "Phone")} <= types


def test_message_counts_agree_with_tshark():
    if shutil.which("tshark") is None:
        return
    out = subprocess.run(["tshark", "-r", str(PCAP), "-d", "tcp.port==18094,http", "-Y", "websocket.opcode == 1 || websocket.opcode == 2",
                          "-T", "fields", "-e", "websocket.mask"], capture_output=True, text=True, check=True).stdout
    masks = [line.split(",")[0] for line in out.splitlines()]
    assert masks.count("1") == sum(s["from_client"] for s in SENT)  # client frames are masked
    assert masks.count("0") == sum(not s["from_client"] for s in SENT)


def frame(payload: bytes, opcode=1, fin=True, mask=b"", rsv1=False) -> bytes:
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    n = len(payload)
    size = bytes([n]) if n < 126 else (bytes([126]) + n.to_bytes(2, "big") if n < 65536 else bytes([127]) + n.to_bytes(8, "big"))
    if mask:
        size = bytes([size[0] | 0x80]) + size[1:]
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + size + mask + payload


def test_masks_fragments_control_frames_and_compression():
    ws = WsConnection(Stats(), CLIENT, 1 << 20, deflate=True)
    text = json.dumps({"email": "jane@example.com"}).encode()
    data = frame(text[:10], fin=False, mask=b"\x01\x02\x03\x04") + frame(b"", opcode=9, mask=b"abcd") \
        + frame(text[10:], opcode=0, mask=b"\x05\x06\x07\x08")
    assert ws.feed(CLIENT, data[:7]) == []  # a frame split across segments waits for the rest
    assert ws.feed(CLIENT, data[7:]) == [(True, 1, text, False)]
    deflater = zlib.compressobj(wbits=-15)
    for i in range(2):  # the second message refers to the first one's window (context takeover)
        squeezed = deflater.compress(text) + deflater.flush(zlib.Z_SYNC_FLUSH)
        assert ws.feed(SERVER, frame(squeezed[:-4], rsv1=True)) == [(False, 1, text, False)]


def test_bounds_and_broken_headers_are_counted():
    stats = Stats()
    ws = WsConnection(stats, CLIENT, 100)
    big = b"x" * 150
    assert ws.feed(SERVER, frame(big)) == [(False, 1, b"x" * 100, True)]
    assert stats.all_dropped().get(Drop.BODY_TOO_LARGE.value) == 1
    assert ws.feed(CLIENT, b"\x8f\x00") == []  # opcode 15 does not exist
    assert stats.all_dropped().get(Drop.WS_FRAME_ERROR.value) == 1
    assert ws.feed(CLIENT, frame(b"later")) == []  # that direction is no longer read
    assert ws.feed(SERVER, frame(b"{}")) == [(False, 1, b"{}", False)]  # the other still is


def test_fragments_wait_within_the_captures_shared_budget():
    budget = BodyBudget(100)
    ws = WsConnection(Stats(), CLIENT, 1 << 20, budget=budget)
    assert ws.feed(CLIENT, frame(b"a" * 60, fin=False, mask=b"abcd")) == []
    assert ws.feed(SERVER, frame(b"b" * 60, fin=False)) == []  # over the budget: this message is cut
    assert budget.used == 60
    assert ws.feed(SERVER, frame(b"c", opcode=0)) == [(False, 1, b"c", True)]
    assert ws.feed(CLIENT, frame(b"d", opcode=0, mask=b"abcd")) == [(True, 1, b"a" * 60 + b"d", False)]
    assert budget.used == 0
