"""`pii-sensor sniff --tls` as users run it, against real TLS clients and servers on loopback: curl,
Python and Node.js clients to a Python HTTPS server (HTTP/1.1), curl to nghttpd (HTTP/2 over TLS).
The plaintext is read with eBPF uprobes on OpenSSL; no interface is captured, no proxy or CA used.
Needs root and BPF; skipped with the reason otherwise."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

import pytest

from helpers import ROOT, free_port, metric, scrape, started, wait_for
from test_tls_tracer import SERVER, _self_signed, bpf  # noqa: F401  (bpf: the fixture that skips without BPF)

PII = {"customer": {"name": "Jane Doe", "email": "jane.doe@example.com", "phone": "+1 415-555-2671"}}
pytestmark = pytest.mark.slow


@pytest.fixture
def sensor(bpf, tmp_path):
    """A running `sniff --tls`: (its process, the events file, its metrics port)."""
    events, metrics_port = tmp_path / "events.jsonl", free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sensor", "sniff", "--tls", "--events", f"file:{events}",
                             "--metrics-port", str(metrics_port), "--workers", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started(proc, lambda: "pii_sensor_exchanges_total" in scrape(metrics_port))  # probes attached by then
    yield proc, events, metrics_port
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture
def https_server(tmp_path):
    cert, key = _self_signed(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", SERVER, cert, key], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    yield proc.pid, port, cert, key
    proc.kill()
    proc.wait()


def events_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_and_python_clients_to_a_python_server(sensor, https_server):
    proc, events, metrics_port = sensor
    server_pid, port, _, _ = https_server
    curl = subprocess.run(["curl", "-sk", "--http1.1", "-H", "content-type: application/json", "-d", json.dumps(PII),
                           f"https://127.0.0.1:{port}/v1/customers"], capture_output=True, text=True, timeout=30)
    assert '"ok": true' in curl.stdout
    client = ("import json, ssl, urllib.request; ctx = ssl.create_default_context(); ctx.check_hostname = False; "
              "ctx.verify_mode = ssl.CERT_NONE; r = urllib.request.Request(%r, data=%r.encode(), "
              "headers={'Content-Type': 'application/json'}); print(urllib.request.urlopen(r, context=ctx).read())"
              % (f"https://127.0.0.1:{port}/v1/signup", json.dumps(PII)))
    subprocess.run([sys.executable, "-c", client], check=True, capture_output=True, timeout=30)
    assert wait_for(lambda: {"/v1/customers", "/v1/signup"} <= {e["request"]["path"] for e in events_of(events)}, timeout=60)
    err = stop(proc)
    ours = [e for e in events_of(events) if port in (e["destination"]["port"], e["source"]["port"])]  # the node's other TLS aside
    by_path = {e["request"]["path"]: e for e in ours}
    assert sorted(by_path) == ["/v1/customers", "/v1/signup"] and len(ours) == 2  # once each, though both ends are traced
    for event in by_path.values():
        assert event["tls"] is True and event["response"]["status"] == 200
        assert {"Person", "Email", "Phone"} <= set(event["data_types"])
        assert event["destination"]["port"] == port and event["source"]["ip"] == "127.0.0.1"
    assert by_path["/v1/customers"]["source"]["process"]["comm"] == "curl"
    assert by_path["/v1/customers"]["destination"]["process"]["pid"] == server_pid  # the other end, traced too
    assert "jane.doe@example.com" not in events.read_text()
    assert "exchanges" in err


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_a_nodejs_client(sensor, https_server):
    proc, events, _ = sensor
    _, port, _, _ = https_server
    script = ("const https = require('https'); const body = %s; const r = https.request({host: '127.0.0.1', port: %d, "
              "path: '/v1/node', method: 'POST', rejectUnauthorized: false, headers: {'content-type': 'application/json', "
              "'content-length': Buffer.byteLength(body)}}, res => { res.resume(); res.on('end', () => process.exit(0)); }); "
              "r.end(body);" % (json.dumps(json.dumps(PII)), port))
    subprocess.run(["node", "-e", script], check=True, timeout=30)
    assert wait_for(lambda: any(e["request"]["path"] == "/v1/node" for e in events_of(events)), timeout=60)
    stop(proc)
    event = next(e for e in events_of(events) if e["request"]["path"] == "/v1/node")
    assert {"Person", "Email", "Phone"} <= set(event["data_types"]) and event["tls"] is True


@pytest.mark.skipif(shutil.which("nghttpd") is None or shutil.which("curl") is None, reason="needs nghttpd and curl")
def test_http2_over_tls_to_nghttpd(sensor, https_server, tmp_path):
    proc, events, metrics_port = sensor
    _, _, cert, key = https_server
    docs = tmp_path / "docs"
    (docs / "v1" / "users").mkdir(parents=True)
    (docs / "v1" / "users" / "7").write_text(json.dumps({"user": PII["customer"]}))
    port = free_port()
    server = subprocess.Popen(["nghttpd", "-d", str(docs), str(port), key, cert], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: subprocess.run(["curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version}",
                                                f"https://127.0.0.1:{port}/v1/users/7"], capture_output=True,
                                               text=True).stdout == "2")
        assert wait_for(lambda: any(e["request"]["path"] == "/v1/users/7" for e in events_of(events)), timeout=60)
    finally:
        server.kill()
        server.wait()
    assert metric(scrape(metrics_port), 'pii_sensor_dropped_total{reason="tls_ringbuf"}') == 0
    stop(proc)
    event = next(e for e in events_of(events) if e["request"]["path"] == "/v1/users/7")
    assert event["tls"] is True and event["response"]["status"] == 200
    assert {"Person", "Email", "Phone"} <= set(event["data_types"])


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_without_bpf_rights_it_is_one_line_and_exit_2(bpf):
    """Root without capabilities (as in a container that was not granted CAP_BPF): one line, exit 2."""
    out = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", sys.executable,
                          "-m", "sensor", "sniff", "--tls"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith("pii-sensor: --tls:") and "Operation not permitted" in out.stderr
