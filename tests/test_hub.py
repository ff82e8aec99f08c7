"""`pii-sensor hub` as operators run it: a real uvicorn server on loopback, SQLite and a real
PostgreSQL server, signed ingest, tokens, restarts, two replicas, a database that goes away, and
a proxy reporting to it."""
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from conftest import CORPUS, run_cli
from helpers import ROOT, free_port, metric, start_upstream, started, wait_for
from sensor.datamap.flows import DataMap

sys.path.insert(0, str(ROOT / "fixtures"))
from postgres import Postgres, unavailable  # noqa: E402

SECRET, TOKEN = "hub-test-secret", "reader-token"


@pytest.fixture(scope="module")
def events():
    """Real events: the labeled corpus scanned, as the sensors would send them."""
    result = run_cli("scan", CORPUS / "labeled.har", "--format", "json")
    assert result.returncode == 0
    return result.stdout.splitlines()


def offline_map(lines):
    m = DataMap()
    for line in lines:
        m.add(json.loads(line))
    return m.document()


def start_hub(tmp_path, db, *extra, secret=SECRET, tokens=TOKEN, settings="flush_interval_seconds: 0.2"):
    port = free_port()
    config = tmp_path / "hub.yaml"
    config.write_text(f"hub: {{{settings}}}\n")
    env = {**os.environ, "PII_SENSOR_WEBHOOK_SECRET": secret or "", "PII_SENSOR_HUB_TOKENS": tokens or ""}
    proc = subprocess.Popen([sys.executable, "-m", "sensor", "hub", "--listen", f"127.0.0.1:{port}", "--db", db,
                             "--config", str(config), *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    started(proc, lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status == 200)
    return proc, f"http://127.0.0.1:{port}"


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


def request(url, body=None, headers=None, method=None):
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def post(base, lines, secret=SECRET):
    body = "".join(line + "\n" for line in lines).encode()
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-PII-Sensor-Signature"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    status, data, _ = request(f"{base}/api/v1/events", body, headers, "POST")
    return status, json.loads(data)


def read(base, path, token=TOKEN, accept=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if accept:
        headers["Accept"] = accept
    status, data, hdrs = request(base + path, headers=headers)
    return status, data


def the_map(base, query=""):
    status, data = read(base, "/api/v1/map" + query)
    assert status == 200, data
    return json.loads(data)


def comparable(doc):
    return {(e["source"], e["target"]): (e["data_types"], e["exchanges"], e["sensitivity"], e["endpoints"])
            for e in doc["edges"]}


def test_signed_events_make_the_map_and_the_api_guards_itself(tmp_path, events):
    proc, base = start_hub(tmp_path, f"sqlite:///{tmp_path}/map.db")
    try:
        assert post(base, events[:500]) == (202, {"accepted": 500, "rejected": 0})
        assert post(base, events[500:] + ["{not json", json.dumps({"source": "x"}), "[1]"]) == \
            (202, {"accepted": len(events) - 500, "rejected": 3})
        forged = post(base, events[:5], secret="wrong")
        assert forged[0] == 401
        assert comparable(the_map(base)) == comparable(offline_map(events))
        # filters
        high = the_map(base, "?sensitivity=high")
        assert high["edges"] and all(e["sensitivity"] == "high" for e in high["edges"])
        ibans = the_map(base, "?data_type=IBAN")
        assert ibans["edges"] and all("IBAN" in e["data_types"] for e in ibans["edges"])
        assert the_map(base, "?since=2099-01-01T00:00:00Z")["edges"] == []
        assert read(base, "/api/v1/map?sensitivity=extreme")[0] == 400
        # tokens: header, query parameter (for the page in a browser), nothing
        assert read(base, "/api/v1/map", token=None)[0] == 401
        assert read(base, "/api/v1/map", token="guess")[0] == 401
        assert request(f"{base}/?token={TOKEN}")[0] == 200
        status, csv_text = read(base, "/api/v1/flows", accept="text/csv")
        assert status == 200 and csv_text.decode().splitlines()[0].startswith("source,target,data_types")
        assert len(csv_text.decode().splitlines()) == len(the_map(base)["edges"]) + 1
        changes = json.loads(read(base, "/api/v1/changes")[1])["changes"]
        new_flows = [c for c in changes if c["type"] == "new_flow"]
        assert len(new_flows) == len(the_map(base)["edges"])  # one per flow, however many events
        assert [c["time"] for c in changes] == sorted((c["time"] for c in changes), reverse=True)
        metrics = request(f"{base}/metrics")[1].decode()
        assert metric(metrics, 'pii_hub_events_total{result="accepted"}') == len(events)
        assert metric(metrics, 'pii_hub_events_total{result="rejected"}') == 3
        assert metric(metrics, 'pii_hub_requests_refused_total{reason="signature"}') == 1
        assert metric(metrics, 'pii_hub_requests_refused_total{reason="token"}') == 2
    finally:
        stop(proc)


def test_the_map_survives_a_restart_and_keeps_counting(tmp_path, events):
    db = f"sqlite:///{tmp_path}/map.db"
    proc, base = start_hub(tmp_path, db)
    post(base, events)
    before = the_map(base)
    stop(proc)
    proc, base = start_hub(tmp_path, db)
    try:
        assert comparable(the_map(base)) == comparable(before)
        post(base, events[:100])
        after = comparable(the_map(base))
        assert sum(v[1] for v in after.values()) == sum(v[1] for v in comparable(before).values()) + 100
        new_flows = [c for c in json.loads(read(base, "/api/v1/changes")[1])["changes"] if c["type"] == "new_flow"]
        assert len(new_flows) == len(before["edges"])  # a restart announces nothing again
    finally:
        stop(proc)


def test_change_events_go_to_the_hubs_sinks(tmp_path, events):
    changes = tmp_path / "changes.jsonl"
    proc, base = start_hub(tmp_path, f"sqlite:///{tmp_path}/map.db", "--events", f"file:{changes}")
    try:
        post(base, events)
        flows = len(the_map(base)["edges"])
        assert wait_for(lambda: changes.exists() and
                        sum('"type":"new_flow"' in line for line in changes.read_text().splitlines()) == flows)
        stored = {c["id"] for c in json.loads(read(base, "/api/v1/changes?limit=10000")[1])["changes"]}
        assert {json.loads(line)["id"] for line in changes.read_text().splitlines()} == stored
    finally:
        stop(proc)


def test_oversized_bodies_and_unsigned_ingest(tmp_path, events):
    proc, base = start_hub(tmp_path, f"sqlite:///{tmp_path}/map.db", settings="max_body_bytes: 2048")
    try:
        assert post(base, events[:50])[0] == 413
        assert post(base, events[:1], secret=None)[0] == 401  # a secret is configured: unsigned is refused
        assert post(base, events[:1]) == (202, {"accepted": 1, "rejected": 0})
        metrics = request(f"{base}/metrics")[1].decode()
        assert metric(metrics, 'pii_hub_requests_refused_total{reason="too_large"}') == 1
    finally:
        stop(proc)


def test_bad_hub_options_exit_2(tmp_path):
    for args, message in ((["--listen", "nowhere"], "--listen nowhere: expected HOST:PORT"),
                          (["--db", "mysql://x/y"], "--db: unsupported database 'mysql'"),
                          (["--events", "kafka://x"], "unknown event sink")):
        result = run_cli("hub", *args)
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr


@pytest.fixture
def postgres():
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    server = Postgres(free_port()).start()
    yield server
    server.remove()


def test_two_replicas_on_one_postgresql_give_one_consistent_map(tmp_path, events, postgres):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, base_a = start_hub(tmp_path / "a", postgres.url)
    b, base_b = start_hub(tmp_path / "b", postgres.url)
    try:
        halves = (events[0::2], events[1::2])  # every flow reaches both replicas at once
        threads = [threading.Thread(target=post, args=(base, half)) for base, half in zip((base_a, base_b), halves)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        expected = comparable(offline_map(events))
        assert wait_for(lambda: comparable(the_map(base_a)) == expected == comparable(the_map(base_b)))
        changes = json.loads(read(base_a, "/api/v1/changes?limit=10000")[1])["changes"]
        assert len([c for c in changes if c["type"] == "new_flow"]) == len(expected)  # not once per replica
        types = {(c["source"], c["target"], c["data_type"]) for c in changes if c["type"] == "new_data_type"}
        assert len(types) == len([c for c in changes if c["type"] == "new_data_type"])
    finally:
        stop(a)
        stop(b)


def test_a_database_that_goes_away_loses_nothing(tmp_path, events, postgres):
    proc, base = start_hub(tmp_path, postgres.url)
    try:
        post(base, events[:300])
        assert wait_for(lambda: len(the_map(base)["edges"]) > 0)
        postgres.stop()
        assert post(base, events[300:]) == (202, {"accepted": len(events) - 300, "rejected": 0})  # into memory
        assert wait_for(lambda: json.loads(request(f"{base}/healthz")[1])["database"] == "down")
        assert read(base, "/api/v1/map")[0] == 503
        postgres.start()
        assert wait_for(lambda: read(base, "/api/v1/map")[0] == 200, timeout=60)
        assert comparable(the_map(base)) == comparable(offline_map(events))
        metrics = request(f"{base}/metrics")[1].decode()
        assert metric(metrics, 'pii_hub_flushes_total{result="error"}') >= 1
    finally:
        err = stop(proc)
    assert "database error" in err and "Traceback" not in err


def test_a_proxy_reports_to_the_hub(tmp_path):
    proc, base = start_hub(tmp_path, f"sqlite:///{tmp_path}/map.db")
    upstream_port, listen, metrics_port = free_port(), free_port(), free_port()
    upstream = start_upstream(upstream_port)
    proxy = subprocess.Popen([sys.executable, "-m", "sensor", "proxy", "--mode", f"reverse:http://127.0.0.1:{upstream_port}",
                              "--listen-port", str(listen), "--metrics-port", str(metrics_port),
                              "--events", f"{base}/api/v1/events", "--confdir", str(tmp_path / "mitm")],
                             cwd=ROOT, env={**os.environ, "PII_SENSOR_WEBHOOK_SECRET": SECRET},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started(proxy, lambda: urllib.request.urlopen(f"http://127.0.0.1:{listen}/health", timeout=2))
        body = json.dumps({"customer": {"name": "Jane Doe", "email": "jane.doe@example.com"}}).encode()
        for i in range(3):
            status, _, _ = request(f"http://127.0.0.1:{listen}/v1/users/{i}", body,
                                   {"Content-Type": "application/json"}, "POST")
            assert status == 201
        assert wait_for(lambda: any(e["exchanges"] == 3 for e in the_map(base)["edges"]))
        (edge,) = the_map(base)["edges"]
        assert set(edge["data_types"]) == {"Person", "Email"} and edge["endpoints"] == ["POST /v1/users/{id}"]
    finally:
        proxy.send_signal(signal.SIGTERM)
        proxy.communicate(timeout=60)
        upstream.kill()
        upstream.wait()
        stop(proc)


def test_a_database_down_at_start_is_waited_for(tmp_path, events):
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    server = Postgres(free_port())  # made, not started
    proc, base = start_hub(tmp_path, server.url)
    try:
        assert post(base, events) == (202, {"accepted": len(events), "rejected": 0})
        assert json.loads(request(f"{base}/healthz")[1])["database"] == "down"
        assert read(base, "/api/v1/map")[0] == 503
        server.start()
        assert wait_for(lambda: read(base, "/api/v1/map")[0] == 200, timeout=60)
        assert comparable(the_map(base)) == comparable(offline_map(events))
    finally:
        err = stop(proc)
        server.remove()
    assert "database error" in err and "Traceback" not in err
