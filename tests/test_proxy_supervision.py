"""The proxy supervises its classifier process: killed, it is restarted and what it held is
counted; while it cannot start, flows pass, are counted, and /metrics says so; SIGTERM ends
within the configured bound."""
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from helpers import ROOT, free_port, metric, scrape, started, wait_for
from sensor.sources.deadlines import Deadlines
from test_proxy import PII, post, stop, upstream  # noqa: F401  (upstream: a fixture)


def start(tmp_path, upstream, config_text="proxy:\n  stop_timeout_seconds: 5\n"):
    config = tmp_path / "config.yaml"
    config.write_text(config_text)
    listen, metrics_port = free_port(), free_port()
    events = tmp_path / "events.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "sensor", "proxy", "--mode", f"reverse:http://127.0.0.1:{upstream}",
                             "--listen-port", str(listen), "--metrics-port", str(metrics_port), "--events", f"file:{events}",
                             "--config", str(config), "--confdir", str(tmp_path / "mitm")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started(proc, lambda: "pii_sensor_classifier_up 1.0" in scrape(metrics_port))
    assert wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{listen}/health", timeout=2))
    return proc, listen, metrics_port, events, config


def classifier_pid(proxy_pid: int) -> int:
    """The proxy's child that runs the classifier (spawned by multiprocessing, not a resource tracker;
    by whichever thread started it: each thread has its own list of children)."""
    for task in os.listdir(f"/proc/{proxy_pid}/task"):
        for child in open(f"/proc/{proxy_pid}/task/{task}/children").read().split():
            if b"spawn_main" in open(f"/proc/{child}/cmdline", "rb").read():
                return int(child)
    raise AssertionError("no classifier process")


def peak_kb(pid: int) -> int:
    return int(next(line for line in open(f"/proc/{pid}/status") if line.startswith("VmHWM")).split()[1])


def user_events(path):
    return [e for e in map(json.loads, path.read_text().splitlines()) if e["request"]["endpoint"] == "/v1/users/{id}"] \
        if path.exists() else []


def scraped(port):
    try:
        return scrape(port)
    except OSError:  # between two classifier processes, no one serves the port for a moment
        return ""


@pytest.mark.slow
def test_a_killed_classifier_is_restarted_and_nothing_goes_unaccounted(upstream, tmp_path):
    proc, listen, metrics_port, events, _ = start(tmp_path, upstream)
    sent = 0
    try:
        first = classifier_pid(proc.pid)
        for i in range(40):  # a burst, then the classifier is killed while it may still hold some of it
            assert post(f"http://127.0.0.1:{listen}/v1/users/{i}", PII)[0] == 201
            sent += 1
        os.kill(first, signal.SIGKILL)
        for i in range(40, 60):  # the proxy keeps serving while the classifier restarts
            assert post(f"http://127.0.0.1:{listen}/v1/users/{i}", PII)[0] == 201
            sent += 1
        assert wait_for(lambda: metric(scraped(metrics_port), "pii_sensor_classifier_restarts_total") == 1
                        and metric(scraped(metrics_port), "pii_sensor_classifier_up") == 1, timeout=120)
        assert classifier_pid(proc.pid) != first
        for i in range(60, 80):
            assert post(f"http://127.0.0.1:{listen}/v1/users/{i}", PII)[0] == 201
            sent += 1

        def accounted():
            lost = metric(scraped(metrics_port), 'pii_sensor_dropped_total{reason="classifier_lost"}')
            return len(user_events(events)) + lost >= sent

        assert wait_for(accounted, timeout=60)  # every exchange is an event or counted as lost
        assert len(user_events(events)) <= sent
        assert len(user_events(events)) >= 40  # those after the restart at least
    finally:
        err = stop(proc)
    assert "classifier process exited" in err and "restarted" in err


@pytest.mark.slow
def test_a_classifier_that_cannot_start_leaves_the_proxy_serving_and_counting(upstream, tmp_path):
    proc, listen, metrics_port, events, config = start(tmp_path, upstream)
    try:
        config.write_text("min_confidence: 7\n")  # a bad change the classifier reads when it starts again
        os.kill(classifier_pid(proc.pid), signal.SIGKILL)
        assert wait_for(lambda: metric(scraped(metrics_port), "pii_sensor_classifier_up") == 0
                        and "pii_sensor_classifier_up 0.0" in scraped(metrics_port), timeout=120)
        for i in range(5):  # traffic flows, unclassified and counted
            assert post(f"http://127.0.0.1:{listen}/v1/users/{i}", PII)[0] == 201
        assert metric(scraped(metrics_port), 'pii_sensor_dropped_total{reason="classifier_down"}') == 5
        config.write_text("proxy:\n  stop_timeout_seconds: 5\n")  # mended: the next attempt starts it
        assert wait_for(lambda: metric(scraped(metrics_port), "pii_sensor_classifier_up") == 1, timeout=120)
        assert post(f"http://127.0.0.1:{listen}/v1/users/9", PII)[0] == 201
        assert wait_for(lambda: any(e["request"]["path"] == "/v1/users/9" for e in user_events(events)), timeout=60)
    finally:
        err = stop(proc)
    assert "cannot be started" in err


@pytest.mark.slow
def test_sigterm_ends_within_the_bound_even_without_a_classifier(upstream, tmp_path):
    proc, listen, metrics_port, _, config = start(tmp_path, upstream)
    config.write_text("min_confidence: 7\n")
    os.kill(classifier_pid(proc.pid), signal.SIGKILL)
    assert wait_for(lambda: "pii_sensor_classifier_up 0.0" in scraped(metrics_port), timeout=120)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)  # it hung for minutes once
    assert proc.returncode == 0, err


def test_deadlines_judge_each_wait_by_whose_turn_it_is():
    d = Deadlines(header_timeout=5, body_timeout=10, idle_timeout=60)
    for client in "abcde":
        d.connected(client, 0)
    d.headers("b", 1)  # b sends headers, then its body trickles
    d.headers("c", 1)
    d.body("c", 2)  # c's request is upstream: the upstream is slow, not c
    d.headers("d", 1)
    d.body("d", 2)
    d.answered("d", 3)  # d is idle on keep-alive
    d.upgraded("e")  # e is a WebSocket
    assert d.expired(4) == []
    assert d.expired(6) == [("a", "slow_headers")]
    assert d.expired(12) == [("b", "slow_body")]
    assert d.expired(70) == [("d", "idle")]
    assert set(d.clients) == {"c", "e"}


@pytest.mark.slow
def test_slow_clients_are_closed_and_counted_and_large_bodies_stream_through(upstream, tmp_path):
    proc, listen, metrics_port, _, _ = start(tmp_path, upstream, "proxy:\n  header_timeout_seconds: 2\n"
                                             "  body_timeout_seconds: 2\n")
    try:
        slowloris = socket.create_connection(("127.0.0.1", listen))
        slowloris.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        slow_post = socket.create_connection(("127.0.0.1", listen))
        slow_post.sendall(b"POST /v1/users/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        for s in (slowloris, slow_post):
            s.settimeout(60)
            assert s.recv(65536) == b""  # closed by the proxy (it answers nothing first)
        text = scraped(metrics_port)
        assert metric(text, 'pii_sensor_connections_closed_total{reason="slow_headers"}') == 1
        assert metric(text, 'pii_sensor_connections_closed_total{reason="slow_body"}') == 1
        assert post(f"http://127.0.0.1:{listen}/v1/users/2", PII)[0] == 201  # others are served

        before = peak_kb(proc.pid)
        with urllib.request.urlopen(f"http://127.0.0.1:{listen}/large/64", timeout=60) as r:
            received = 0
            while chunk := r.read(1 << 20):
                received += len(chunk)
        assert received == 64 << 20
        assert peak_kb(proc.pid) - before < 16 << 10  # the 64 MB body never sat in the proxy whole
        assert wait_for(lambda: metric(scraped(metrics_port), 'pii_sensor_dropped_total{reason="body_streamed"}') == 1)
    finally:
        stop(proc)
