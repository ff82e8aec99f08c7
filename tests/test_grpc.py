"""gRPC: messages recorded from a real grpcio server and client, decoded without a schema and with
a FileDescriptorSet; the protobuf reader and the framing on bad input."""
import base64
import gzip
import json
import shutil
import subprocess

import pytest

from conftest import ROOT, run_cli
from sensor.config import Config
from sensor.payload import protobuf as pb
from sensor.sources import pcap as pcapfile
from sensor.stats import Stats
from test_capture_fixtures import sensor_messages, tshark_h2_messages

PCAP = ROOT / "fixtures" / "pcaps" / "grpc_users.pcap"
DESCRIPTORS = ROOT / "fixtures" / "grpc_users.pb"
CALLS = json.loads((ROOT / "fixtures" / "pcaps" / "grpc_users.calls.json").read_text())
WEB_PCAP = ROOT / "fixtures" / "pcaps" / "grpc_web_users.pcap"  # sonora's gRPC-Web server and client
WEB_CALLS = json.loads((ROOT / "fixtures" / "pcaps" / "grpc_web_users.calls.json").read_text())


def scan(*extra, pcap=PCAP):
    result = run_cli("scan", pcap, "--format", "json", *extra)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def test_every_call_is_recovered_and_agrees_with_tshark():
    ours, stats = sensor_messages(PCAP)
    assert [(m["method"], m["target"], m["status"]) for m in ours] == [(c["method"], c["target"], c["status"]) for c in CALLS]
    assert not stats.all_dropped()
    if shutil.which("tshark"):
        requests, responses = tshark_h2_messages(PCAP, 18093)
        assert sorted(requests) == sorted((m["method"], m["target"], m["request_body"]) for m in ours)
        assert sorted(responses) == sorted((m["status"], m["response_body"]) for m in ours)


def test_without_a_schema_fields_are_numbers_and_values_speak_for_themselves():
    events, _ = scan()
    assert len(events) == len(CALLS)
    findings = {(f["part"], f["path"], f["type"]) for f in events[0]["findings"]}
    assert ("request.body", "$['2']", "Email") in findings  # requested_by
    assert {("response.body", "$['3']", "Email"), ("response.body", "$['4']", "Phone")} <= findings
    assert "Person" not in events[0]["data_types"]  # a lone name under the key '2' says nothing


def test_descriptor_sets_name_the_fields_and_stage_2_sees_more(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"grpc:\n  descriptors: [{DESCRIPTORS}]\n")
    events, _ = scan("--config", config)
    findings = {(f["part"], f["path"], f["type"]) for f in events[0]["findings"]}
    assert findings == {("request.body", "$.requested_by", "Email"), ("response.body", "$.email", "Email"),
                        ("response.body", "$.phone", "Phone"), ("response.body", "$.full_name", "Person"),
                        ("response.body", "$.birth_date", "Birth date"), ("response.body", "$.home.street", "Location"),
                        ("response.body", "$.home.city", "Location"), ("response.body", "$.home.postal_code", "Location"),
                        ("response.body", "$.home.country", "Location")}
    plain, _ = scan()
    assert sum(len(e["findings"]) for e in events) > 2 * sum(len(e["findings"]) for e in plain)


def test_grpc_web_messages_agree_with_tshark_and_carry_the_same_data(tmp_path):
    ours, stats = sensor_messages(WEB_PCAP)
    assert [(m["method"], m["target"], m["status"]) for m in ours] == [(c["method"], c["target"], c["status"]) for c in WEB_CALLS]
    assert not stats.all_dropped()
    if shutil.which("tshark"):  # tshark's gRPC dissector: every length-prefixed message, trailers included
        out = subprocess.run(["tshark", "-r", str(WEB_PCAP), "-d", "tcp.port==18094,http", "-Y", "grpc", "-T", "fields",
                              "-e", "grpc.message_length"], capture_output=True, text=True, timeout=120, check=True).stdout
        theirs = [[int(n) for n in line.split(",")] for line in out.split()]
        exchanges = list(pcapfile.exchanges(str(WEB_PCAP), Stats(), Config()))
        mine = []
        for ex in exchanges:
            for message in (ex.request, ex.response):
                data = [len(m) for m in pb.grpc_messages(message.body, message.header("content-type"), None, 1 << 20)]
                mine.append(data)
        assert [lengths[:1] for lengths in theirs] == mine  # the trailers frame (its last message) is no payload
    config = tmp_path / "c.yaml"
    config.write_text(f"grpc:\n  descriptors: [{DESCRIPTORS}]\n")
    events, _ = scan("--config", config, pcap=WEB_PCAP)
    assert len(events) == len(WEB_CALLS)
    assert all({"Person", "Email", "Phone", "Birth date", "Location"} <= set(e["data_types"]) for e in events)


def test_a_bad_descriptor_set_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\xff\xff not protobuf")
    config = tmp_path / "c.yaml"
    config.write_text(f"grpc:\n  descriptors: [{bad}]\n")
    result = run_cli("scan", PCAP, "--config", config)
    assert result.returncode == 2 and "grpc.descriptors" in result.stderr and result.stderr.count("\n") == 1


def key(number, wire):
    return bytes([(number << 3) | wire])


def ld(number, data):
    return key(number, 2) + bytes([len(data)]) + data


def test_the_reader_takes_nested_messages_repeated_fields_and_text():
    inner = ld(1, b"+14155552671") + key(2, 0) + bytes([42])
    message = ld(1, b"Jane Doe") + ld(2, b"a") + ld(2, b"b") + ld(3, inner) + ld(4, b"\x00\x01\xff")
    assert pb.decode(message) == {"1": "Jane Doe", "2": ["a", "b"], "3": {"1": "+14155552671", "2": 42}}
    for broken in (b"\x0a\x10short", b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", b"\x00", b"\x0b\x01"):
        with pytest.raises(pb.NotProtobuf):
            pb.decode(broken)


def test_framing_compression_bombs_and_grpc_web():
    message = ld(1, b"jane@example.com")
    framed = b"\x00" + len(message).to_bytes(4, "big") + message
    assert pb.grpc_messages(framed * 3, "application/grpc", None, 1 << 20) == [message] * 3
    squeezed = gzip.compress(message)
    assert pb.grpc_messages(b"\x01" + len(squeezed).to_bytes(4, "big") + squeezed, "application/grpc", "gzip", 1 << 20) == [message]
    bomb = gzip.compress(b"\x00" * (50 << 20))
    with pytest.raises(pb.BodyTooLarge):
        pb.grpc_messages(b"\x01" + len(bomb).to_bytes(4, "big") + bomb, "application/grpc", "gzip", 1 << 20)
    many = gzip.compress(b"\x00" * (300 << 10))  # each message within the limit, together far beyond it
    with pytest.raises(pb.BodyTooLarge):
        pb.grpc_messages((b"\x01" + len(many).to_bytes(4, "big") + many) * 10, "application/grpc", "gzip", 1 << 20)
    trailers = b"grpc-status:0\r\n"
    web = framed + b"\x80" + len(trailers).to_bytes(4, "big") + trailers
    assert pb.grpc_messages(base64.b64encode(web), "application/grpc-web-text", None, 1 << 20) == [message]
    with pytest.raises(pb.NotProtobuf):
        pb.grpc_messages(framed[:-2], "application/grpc", None, 1 << 20)
