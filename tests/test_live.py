"""`pii-sensor sniff` on a real veth pair between two network namespaces, with a real
HTTP server and client exchanging PII; events and /metrics are checked as users see them."""
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, metric, started, wait_for

sys.path.insert(0, str(ROOT / "fixtures"))
from netns import sh, veth_pair  # noqa: E402

HERE = Path(__file__).resolve().parent
NS_CLIENT, NS_SERVER = f"piic{os.getpid()}", f"piis{os.getpid()}"
CLIENT_IP, SERVER_IP = "10.77.0.1", "10.77.0.2"


def can_make_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    probe = f"piiprobe{os.getpid()}"
    r = sh("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"cannot create network namespaces here: {r.stderr.strip()}"
    sh("ip", "netns", "del", probe, check=False)
    return None


SKIP = can_make_namespaces()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


@pytest.fixture
def namespaces():
    with veth_pair(NS_CLIENT, NS_SERVER, CLIENT_IP, SERVER_IP):
        yield


def in_ns(ns, *cmd, **kw):
    return subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **kw)


def scrape(port):
    """/metrics from inside the client namespace, as Prometheus on the node would."""
    out = subprocess.run(["ip", "netns", "exec", NS_CLIENT, sys.executable, "-c",
                          f"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:{port}/metrics').read().decode())"],
                         capture_output=True, text=True, timeout=30)
    return out.stdout


@contextlib.contextmanager
def sniffing(events_file, finished: dict, server_command=None):
    """`pii-sensor sniff` on the client's veth while the block runs; `finished` gets its exit status and stderr."""
    server = start_server(server_command)
    sniffer = in_ns(NS_CLIENT, sys.executable, "-m", "sensor", "sniff", "--interface", "vpii0",
                    "--bpf", "tcp port 8080", "--metrics-port", "9102", "--events", f"file:{events_file}",
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE.parent)
    try:
        started(sniffer, lambda: "pii_sensor_exchanges_total" in scrape(9102))
        yield
    finally:
        sniffer.send_signal(signal.SIGTERM)
        _, finished["err"] = sniffer.communicate(timeout=60)
        finished["returncode"] = sniffer.returncode
        server.kill()
        server.wait()


def start_server(command=None):
    server = in_ns(NS_SERVER, *(command or [sys.executable, str(HERE / "live" / "server.py"), SERVER_IP, "8080"]),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = f"import socket; socket.create_connection(('{SERVER_IP}', 8080), timeout=1).close()"
    assert wait_for(lambda: subprocess.run(["ip", "netns", "exec", NS_CLIENT, sys.executable, "-c", probe],
                                           capture_output=True, timeout=30).returncode == 0), "server did not start"
    return server


def test_sniff_reports_pii_crossing_a_veth_pair(namespaces, tmp_path):
    events_file, finished = tmp_path / "events.jsonl", {}
    with sniffing(events_file, finished):
        client = [
            "import json, urllib.request",
            "for i in range(5):",
            "    body = json.dumps({'customer': {'name': 'Jane Doe', 'email': 'jane.doe@example.com', 'phone': '+1 415-555-2671', 'gender': 'F'}}).encode()",
            f"    r = urllib.request.Request('http://{SERVER_IP}:8080/v1/users/%d' % i, data=body, headers={{'Content-Type': 'application/json'}})",
            "    assert urllib.request.urlopen(r, timeout=10).status == 201",
            f"urllib.request.urlopen('http://{SERVER_IP}:8080/health', timeout=10).read()",
        ]
        subprocess.run(["ip", "netns", "exec", NS_CLIENT, sys.executable, "-c", "\n".join(client)], check=True, timeout=60)
        assert wait_for(lambda: len(events_file.read_text().splitlines()) >= 5, timeout=30), "no events"
        metrics = scrape(9102)
    err = finished["err"]
    assert finished["returncode"] == 0, err
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert len(events) == 5
    e = events[0]
    assert e["source"]["ip"] == CLIENT_IP and e["destination"]["ip"] == SERVER_IP and e["destination"]["port"] == 8080
    assert e["request"]["endpoint"] == "/v1/users/{id}" and e["response"]["status"] == 201
    assert set(e["data_types"]) == {"Person", "Email", "Phone", "Gender"} and e["sensitivity"] == "high"
    assert "jane.doe@example.com" not in events_file.read_text()
    assert 'pii_sensor_exchanges_total 6.0' in metrics
    assert 'pii_sensor_findings_total{data_type="Email",sensitivity="medium"}' in metrics
    assert 'pii_sensor_flows_total{destination="10.77.0.2",external="false",sensitivity="high",source="unknown"} 5.0' in metrics
    assert "pii_sensor_scan_duration_seconds_count" in metrics
    assert "6 exchanges; 5 with PII" in err


@pytest.mark.skipif(shutil.which("nghttpd") is None or shutil.which("curl") is None,
                    reason="nghttpd (nghttp2-server) and curl are needed (.ci/run installs them)")
def test_sniff_reads_http2_with_prior_knowledge(namespaces, tmp_path):
    docs = tmp_path / "docs"
    (docs / "v1" / "users").mkdir(parents=True)
    (docs / "v1" / "users" / "7").write_text(json.dumps({"user": {"name": "Jane Doe", "email": "jane.doe@example.com"}}))
    events_file, finished = tmp_path / "events.jsonl", {}
    with sniffing(events_file, finished, ["nghttpd", "--no-tls", "-a", SERVER_IP, "-d", str(docs), "8080"]):
        body = json.dumps({"customer": {"name": "Ana Lima", "phone": "+1 415-555-2671"}})
        for _ in range(3):
            subprocess.run(["ip", "netns", "exec", NS_CLIENT, "curl", "-sf", "--http2-prior-knowledge", "-X", "POST",
                            "-H", "content-type: application/json", "-d", body, f"http://{SERVER_IP}:8080/v1/users/7"],
                           check=True, timeout=60, capture_output=True)
        assert wait_for(lambda: events_file.exists() and len(events_file.read_text().splitlines()) >= 3, timeout=30)
    assert finished["returncode"] == 0, finished["err"]
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert len(events) == 3 and all(e["request"]["method"] == "POST" and e["response"]["status"] == 200 for e in events)
    assert {"Person", "Phone", "Email"} <= set(events[0]["data_types"])  # the request's and the response's


WRK_SCRIPT = """
counter = 0
kinds = {"email", "phone", "iban"}
request = function()
  counter = counter + 1
  return wrk.format("GET", "/pii/" .. kinds[counter % 3 + 1] .. "/" .. counter)
end
function delay() return 2 end
"""
TYPE_OF = {"email": "Email", "phone": "Phone", "iban": "IBAN"}


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_sniff_sees_every_exchange_under_load_and_pairs_each_right(namespaces, tmp_path):
    """wrk drives keep-alive connections at a moderate rate; every exchange must be seen, and each
    response (whose data type depends on its request's path) must be paired with its own request."""
    events_file, script = tmp_path / "events.jsonl", tmp_path / "typed.lua"
    script.write_text(WRK_SCRIPT)
    finished = {}
    with sniffing(events_file, finished):
        wrk = subprocess.run(["ip", "netns", "exec", NS_CLIENT, "wrk", "-t2", "-c8", "-d5s", "-s", str(script),
                              f"http://{SERVER_IP}:8080/"], capture_output=True, text=True, timeout=60)
        sent = int(re.search(r"(\d+) requests in", wrk.stdout).group(1))
        assert sent > 500 and "Non-2xx" not in wrk.stdout and "Socket errors" not in wrk.stdout, wrk.stdout
        # wrk stops with requests in flight: those are seen too, as exchanges without a response
        assert wait_for(lambda: metric(scrape(9102), "pii_sensor_exchanges_total") >= sent, timeout=60)
    err = finished["err"]
    assert finished["returncode"] == 0, err
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert len(events) >= sent
    wrong = [e["request"]["path"] for e in events
             if {f["type"] for f in e["findings"]} != {TYPE_OF[e["request"]["path"].split("/")[2]]}]
    assert wrong == []
    assert "capture_kernel" not in err and "tcp_gap" not in err and "orphan_response" not in err
