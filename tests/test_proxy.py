"""The proxy as users start it: a real upstream, `pii-sensor proxy`, real clients through it."""
import json
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from helpers import ROOT, free_port, metric, scrape, start_upstream, started, wait_for

PII = {"customer": {"name": "Jane Doe", "email": "jane.doe@example.com", "phone": "+1 415-555-2671", "gender": "F"}}


@pytest.fixture
def upstream():
    port = free_port()
    proc = start_upstream(port)
    yield port
    proc.kill()
    proc.wait()


def start_proxy(tmp_path, mode, *extra):
    listen, metrics_port = free_port(), free_port()
    events = tmp_path / "events.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "sensor", "proxy", "--mode", mode, "--listen-port", str(listen),
                             "--metrics-port", str(metrics_port), "--events", f"file:{events}",
                             "--confdir", str(tmp_path / "mitm"), *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started(proc, lambda: "pii_sensor_exchanges_total" in scrape(metrics_port))
    if mode.startswith("reverse"):
        assert wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{listen}/health", timeout=2))
    else:  # the proxy has made its CA and listens
        assert wait_for(lambda: (tmp_path / "mitm" / "mitmproxy-ca-cert.pem").exists())
        assert wait_for(lambda: socket.create_connection(("127.0.0.1", listen), timeout=1).close() or True)
    return proc, listen, metrics_port, events


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


def post(url, body, opener=urllib.request.urlopen):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with opener(req, timeout=10) as r:
        return r.status, r.read()


def test_reverse_proxy_reports_pii_and_changes_nothing(upstream, tmp_path):
    proc, listen, metrics_port, events = start_proxy(tmp_path, f"reverse:http://127.0.0.1:{upstream}")
    try:
        for i in range(4):
            status, body = post(f"http://127.0.0.1:{listen}/v1/users/{i}", PII)
            assert status == 201 and json.loads(body)["user"] == PII
        # byte-identical responses, also compressed ones the proxy must not decode
        for path in ("/gzip", "/health"):
            direct = urllib.request.urlopen(f"http://127.0.0.1:{upstream}{path}", timeout=5)
            proxied = urllib.request.urlopen(f"http://127.0.0.1:{listen}{path}", timeout=5)
            assert proxied.status == direct.status
            assert proxied.read() == direct.read()
            assert proxied.headers["Content-Encoding"] == direct.headers["Content-Encoding"]
        assert wait_for(lambda: metric(scrape(metrics_port), "pii_sensor_exchanges_total") >= 7)
        text = scrape(metrics_port)
    finally:
        err = stop(proc)
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    users = [e for e in lines if e["request"]["endpoint"] == "/v1/users/{id}"]
    assert len(users) == 4
    assert set(users[0]["data_types"]) == {"Person", "Email", "Phone", "Gender"} and users[0]["sensitivity"] == "high"
    assert users[0]["response"]["status"] == 201 and users[0]["source"]["ip"] == "127.0.0.1"
    gz = next(e for e in lines if e["request"]["path"] == "/gzip")
    assert gz["findings"][0]["part"] == "response.body"  # classified after decoding
    assert "jane.doe@example.com" not in events.read_text()
    assert metric(text, 'pii_sensor_findings_total{data_type="Email",sensitivity="medium"}') >= 9
    assert metric(text, 'pii_sensor_flows_total{destination="127.0.0.1",external="false",sensitivity="high",source="unknown"}') == 4
    assert "exchanges" in err


def test_broken_upstream_and_vanishing_clients_are_counted(upstream, tmp_path):
    proc, listen, metrics_port, _ = start_proxy(tmp_path, f"reverse:http://127.0.0.1:{upstream}")
    try:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{listen}/garbage", timeout=10)
        assert e.value.code == 502
        s = socket.create_connection(("127.0.0.1", listen))  # a client that goes away mid-body
        s.sendall(b"POST /v1/users/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"email\": ")
        s.close()
        assert post(f"http://127.0.0.1:{listen}/v1/users/2", PII)[0] == 201  # traffic keeps flowing
        assert wait_for(lambda: metric(scrape(metrics_port), 'pii_sensor_dropped_total{reason="flow_error"}') >= 1)
    finally:
        stop(proc)


def test_regular_mode_intercepts_https_with_its_own_ca(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import datetime as dt
    import ssl

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(dt.datetime(2024, 1, 1)).not_valid_after(dt.datetime(2035, 1, 1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False).sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    port = free_port()
    upstream = start_upstream(port, tmp_path / "cert.pem", tmp_path / "key.pem")
    proc, listen, metrics_port, events = start_proxy(tmp_path, "regular", "--ssl-insecure")
    try:
        # the client trusts the proxy's CA, as the README tells users to (HTTPS_PROXY + CA bundle)
        context = ssl.create_default_context(cafile=str(tmp_path / "mitm" / "mitmproxy-ca-cert.pem"))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"https": f"http://127.0.0.1:{listen}"}),
                                             urllib.request.HTTPSHandler(context=context)).open
        status, _ = post(f"https://localhost:{port}/v1/leads", PII, opener)
        assert status == 201
        assert wait_for(lambda: events.read_text().strip() != "")
    finally:
        stop(proc)
        upstream.kill()
        upstream.wait()
    event = json.loads(events.read_text().splitlines()[0])
    assert event["destination"]["host"] == "localhost" and event["destination"]["port"] == port
    assert {"Person", "Email"} <= set(event["data_types"])


def test_mitmdump_users_load_the_same_addon(upstream, tmp_path):
    listen, metrics_port = free_port(), free_port()
    events = tmp_path / "events.jsonl"
    proc = subprocess.Popen(["mitmdump", "-q", "-s", str(ROOT / "sensor" / "commands" / "mitmdump.py"),
                             "--mode", f"reverse:http://127.0.0.1:{upstream}", "-p", str(listen),
                             "--set", f"confdir={tmp_path / 'mitm'}",
                             "--set", f"pii_sensor_events=file:{events}", "--set", f"pii_sensor_metrics_port={metrics_port}"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: "pii_sensor_exchanges_total" in scrape(metrics_port)), proc.stderr
        assert post(f"http://127.0.0.1:{listen}/v1/users/9", PII)[0] == 201
        assert wait_for(lambda: events.read_text().strip() != "")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert json.loads(events.read_text().splitlines()[0])["request"]["endpoint"] == "/v1/users/{id}"


@pytest.mark.parametrize("args, message", [
    (["--mode", "nonsense"], "--mode"),
    (["--mode", "regular", "--events", "kafka://x"], "unknown event sink"),
])
def test_bad_proxy_options_exit_2(args, message):
    out = subprocess.run([sys.executable, "-m", "sensor", "proxy", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_busy_listen_port_exits_2(upstream):
    out = subprocess.run([sys.executable, "-m", "sensor", "proxy", "--mode", "regular", "--listen-port", str(upstream)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--listen-port" in out.stderr and len(out.stderr.strip().splitlines()) == 1
