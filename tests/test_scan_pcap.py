"""`pii-sensor scan` on captures: the same events as for HAR, bad files as users meet them."""
import gzip
import json
import struct

from conftest import run_cli
from test_capture_fixtures import PCAPS


def events(*paths, extra=()):
    out = run_cli("scan", *paths, "--format", "json", *extra)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()], out.stderr


def test_pcap_events_follow_the_spec():
    evs, err = events(PCAPS / "keepalive.pcap")
    first = evs[0]
    assert first["source"] == {"ip": "10.244.1.7", "port": 53211, "name": None, "country": None}
    assert first["destination"] == {"ip": "10.96.0.12", "port": 8080, "host": "users.internal", "name": None, "external": False,
                                    "country": None}
    assert first["time"].startswith("2025-11-22T")
    assert first["request"]["endpoint"] == "/v1/users/{id}" and first["response"]["status"] == 201
    assert {"Person", "Email", "Phone", "Location"} <= set(first["data_types"])
    assert first["sensitivity"] == "high"
    assert "packets" in err


def test_pcapng_gzip_and_several_files(tmp_path):
    gz = tmp_path / "vlan.pcap.gz"
    gz.write_bytes(gzip.compress((PCAPS / "vlan.pcap").read_bytes()))
    evs, _ = events(PCAPS / "ipv6_ext.pcapng", gz)
    assert len(evs) == 4
    assert evs[0]["source"]["ip"] == "fd00::7"


def test_compressed_bodies_in_captures_are_decoded():
    evs, _ = events(PCAPS / "encodings.pcap")
    gzip_event = next(e for e in evs if e["request"]["path"] == "/v1/gzip")
    assert any(f["part"] == "response.body" and f["type"] == "Email" for f in gzip_event["findings"])


def test_truncated_capture_is_counted_not_fatal(tmp_path):
    data = (PCAPS / "keepalive.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) * 2 // 3])
    out = run_cli("scan", cut, "--format", "json")
    assert out.returncode == 0 and "truncated_capture=1" in out.stderr
    assert len(out.stdout.splitlines()) >= 2


def test_unreadable_captures_exit_2(tmp_path):
    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00")  # pcap magic, header cut short
    for path in (bad, tmp_path / "missing.pcap"):
        out = run_cli("scan", path)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_unknown_link_type_is_counted(tmp_path):
    data = bytearray((PCAPS / "raw_ip.pcap").read_bytes())
    data[20:24] = (147).to_bytes(4, "little")  # DLT_USER0
    odd = tmp_path / "odd.pcap"
    odd.write_bytes(bytes(data))
    out = run_cli("scan", odd, "--format", "json")
    assert out.returncode == 0 and "unknown_linktype=" in out.stderr and out.stdout == ""


def test_gzip_bomb_in_a_capture_is_capped(tmp_path):
    from scapy.all import IP, TCP, Ether, Raw, wrpcap
    bomb = gzip.compress(b"a" * (64 << 20))
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    req = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
    c, s = ("10.0.0.1", 4000), ("10.0.0.2", 80)
    pk = [Ether() / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="PA", seq=1) / Raw(req)]
    data = head + bomb
    for i in range(0, len(data), 1400):
        pk.append(Ether() / IP(src=s[0], dst=c[0]) / TCP(sport=s[1], dport=c[1], flags="PA", seq=1 + i) / Raw(data[i:i + 1400]))
    path = tmp_path / "bomb.pcap"
    wrpcap(str(path), pk)
    out = run_cli("scan", path, "--format", "json", "--all")
    assert out.returncode == 0 and "body_too_large=1" in out.stderr


def test_runs_of_empty_records_are_counted_in_bulk(tmp_path):
    """A capture of nothing but empty records (or a zero-filled .pcap.gz) holds no HTTP: counted, skipped."""
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    empty = tmp_path / "empty.pcap.gz"
    empty.write_bytes(gzip.compress(header + struct.pack("<IIII", 1700000000, 5, 0, 0) * 200_000 + b"\0" * 16 * 1000))
    out = run_cli("scan", empty)
    assert out.returncode == 0 and "201000 packets; 0 exchanges" in out.stderr
    assert "truncated_frame=201000" in out.stderr
