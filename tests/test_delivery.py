"""At-least-once delivery end to end: the sensor's real outputs (engine, Outputs, the spooled webhook
sink, /metrics) in a process of its own, a real HTTP receiver on loopback that removes duplicates by
event id, and outages: the receiver stopped, answering 503, the sensor SIGKILLed and started again,
a spool too small for the outage. Also `pii-sensor hub`'s change events through the spool."""
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers import free_port, metric, scrape, wait_for
from sensor.model import Event, Party, ReportedFinding
from sensor.outputs.sinks import SpooledWebhookSink
from sensor.outputs.spool import parse
from sensor.stats import Stats

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cret"
TRICKY = ROOT / "corpus" / "tricky.har"  # 19 events, published ROUNDS times over (with ids of their own)
ROUNDS = 60  # 1,140 events: several batches of 500


class Receiver:
    """A webhook receiver on a fixed port that can be stopped and started again: it checks each
    POST's signature, answers as `mode` says, and keeps the ids it accepted in arrival order."""

    def __init__(self, port: int, mode: str = "ok", accept_first: int = 0):
        self.port, self.mode, self.accept_first = port, mode, accept_first
        self.ids: list[str] = []  # every accepted event's id, duplicates included
        self.posts = self.failures = self.bad_signatures = 0
        self.types: set[str] = set()
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()
        self.server = None

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                with receiver.lock:
                    receiver.posts += 1
                    if not hmac.compare_digest(self.headers.get("X-PII-Sensor-Signature", ""), expected):
                        receiver.bad_signatures += 1
                        status = 401
                    elif receiver.mode == "ok" or receiver.accept_first > 0:
                        receiver.accept_first -= 1
                        receiver.types.add(self.headers["Content-Type"])
                        receiver.bodies.append(body)
                        receiver.ids += [json.loads(line)["id"] for line in body.splitlines() if line.strip()]
                        status = 200
                    else:
                        receiver.failures += 1
                        status = {"fail": 503, "busy": 429, "refuse": 400}[receiver.mode]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def unique(self) -> set:
        with self.lock:
            return set(self.ids)

    def first_arrivals(self) -> list:
        with self.lock:
            return list(dict.fromkeys(self.ids))


def write_config(tmp_path, **events) -> Path:
    path = tmp_path / "sensor.yaml"
    settings = {"spool_dir": str(tmp_path / "spool"), "webhook_backoff_seconds": 0.02, **events}
    path.write_text("ner: false\nclassifier:\n  workers: 0\nevents:\n"
                    + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in settings.items()))
    return path


class Sensor:
    """This file run as a script (drive(), below): the sensor's outputs in a process of their own."""

    def __init__(self, tmp_path, config, url, rounds=ROUNDS, close_wait=5.0, name="ids"):
        self.metrics_port, self.ids_path = free_port(), tmp_path / f"{name}.json"
        self.proc = subprocess.Popen([sys.executable, __file__, str(config), url, str(self.metrics_port),
                                      str(self.ids_path), str(close_wait), str(rounds)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                     env={**os.environ, "PII_SENSOR_WEBHOOK_SECRET": SECRET,
                                          "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                                      os.environ.get("PYTHONPATH")]))})

    def written(self) -> list[str]:
        """The ids of the events it wrote to the sink, once it has written them all."""
        assert wait_for(lambda: self.ids_path.exists() or self.proc.poll() is not None, timeout=120)
        assert self.proc.poll() is None, self.proc.communicate()[1]
        return json.loads(self.ids_path.read_text())

    def metric(self, series: str) -> float:
        return metric(scrape(self.metrics_port), series)

    def stop(self) -> tuple[dict, str]:
        """SIGTERM: what it dropped, and what it said."""
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, err
        return json.loads(out), err

    def kill(self) -> None:
        self.proc.kill()
        self.proc.communicate(timeout=60)


@pytest.mark.slow  # processes of their own: a cold start of the classifier each
def test_receiver_stopped_then_failing_then_back_every_event_arrives_exactly_once(tmp_path):
    receiver = Receiver(free_port(), mode="fail")  # not started: connections are refused
    sensor = Sensor(tmp_path, write_config(tmp_path), receiver.url)
    try:
        ids = sensor.written()
        assert len(ids) == len(set(ids)) > 1000
        assert wait_for(lambda: sensor.metric("pii_sensor_spool_events") == len(ids))  # all waiting on disk
        assert sensor.metric("pii_sensor_spool_bytes") > len(ids) * 500
        receiver.start()  # up, but answering 503
        assert wait_for(lambda: receiver.failures >= 2)
        receiver.mode = "ok"
        assert wait_for(lambda: receiver.unique() == set(ids))
        assert wait_for(lambda: sensor.metric("pii_sensor_spool_events") == 0)
        assert sensor.metric("pii_sensor_spool_bytes") == 0
        dropped, said = sensor.stop()
    finally:
        if sensor.proc.poll() is None:
            sensor.kill()
        receiver.stop()
    assert receiver.first_arrivals() == ids and len(receiver.ids) == len(ids)  # in order, exactly once
    assert dropped == {} and "left in the spool" not in said and receiver.bad_signatures == 0
    # in batches of JSON lines (the first may hold a single event, taken as soon as it was written)
    assert "application/x-ndjson" in receiver.types <= {"application/x-ndjson", "application/json"}
    assert receiver.posts - receiver.failures <= 5


@pytest.mark.slow  # processes of their own: a cold start of the classifier each
def test_a_sensor_killed_during_an_outage_delivers_its_spool_after_a_restart(tmp_path):
    receiver = Receiver(free_port(), mode="fail", accept_first=1).start()
    config = write_config(tmp_path)
    first = Sensor(tmp_path, config, receiver.url, name="first")
    try:
        before = first.written()
        assert wait_for(lambda: receiver.ids and receiver.failures >= 2)  # one batch in, then 503s
        delivered = len(receiver.ids)
    finally:
        first.kill()  # SIGKILL: no chance to flush or say goodbye
    second = Sensor(tmp_path, config, receiver.url, rounds=1, name="second")
    try:
        after = second.written()
        receiver.mode = "ok"
        assert wait_for(lambda: receiver.unique() == set(before) | set(after))
        dropped, said = second.stop()
    finally:
        if second.proc.poll() is None:
            second.kill()
        receiver.stop()
    assert f"{len(before) - delivered} events spooled by an earlier run are delivered first" in said
    assert receiver.first_arrivals() == before + after  # in order across the restart
    assert len(receiver.ids) == len(before) + len(after)  # the batch delivered before the kill was not sent again
    assert dropped == {}


@pytest.mark.slow  # processes of their own: a cold start of the classifier each
def test_a_spool_too_small_for_the_outage_drops_the_oldest_and_counts_exactly_what_is_missing(tmp_path):
    receiver = Receiver(free_port())  # stopped
    config = write_config(tmp_path, spool_max_bytes=128 << 10)
    first = Sensor(tmp_path, config, receiver.url, close_wait=0.2, name="first")
    try:
        ids = first.written()
        full = 'pii_sensor_dropped_total{reason="spool_full"}'
        assert wait_for(lambda: first.metric(full) + first.metric("pii_sensor_spool_events") == len(ids))
        waiting = int(first.metric("pii_sensor_spool_events"))
        assert 0 < waiting < len(ids) // 5 and first.metric("pii_sensor_spool_bytes") <= 128 << 10
        dropped, said = first.stop()
    finally:
        if first.proc.poll() is None:
            first.kill()
    assert dropped == {"spool_full": len(ids) - waiting}
    assert f"{waiting} events left in the spool" in said
    receiver.start()
    second = Sensor(tmp_path, config, receiver.url, rounds=0, name="second")  # no new events: the spool's
    try:
        assert second.written() == []
        assert wait_for(lambda: len(receiver.ids) == waiting)
        dropped, _ = second.stop()
    finally:
        if second.proc.poll() is None:
            second.kill()
        receiver.stop()
    assert receiver.ids == ids[-waiting:] and dropped == {}  # the newest survived, in order


def event(i: int) -> Event:
    return Event(time="2026-11-22T10:00:00.000Z", source=Party("10.0.0.1", 5000), destination=Party(None, 80),
                 method="POST", path=f"/v1/users/{i}", endpoint="/v1/users/{id}", status=201,
                 findings=[ReportedFinding("Email", "request.body", "$.email", "medium", 0.9, "****")],
                 data_types=["Email"], sensitivity="medium")


def test_a_receiver_refusing_events_gets_no_retries_a_busy_one_does(tmp_path):
    receiver = Receiver(free_port(), mode="refuse").start()  # 400: these events are not wanted
    stats = Stats()
    sink = SpooledWebhookSink(receiver.url, stats, str(tmp_path / "spool"), SECRET, backoff=0.01)
    try:
        for i in range(5):
            sink.write(event(i))
        assert wait_for(lambda: stats.dropped["webhook_rejected"] == 5 and sink.spool.pending == (0, 0))
        receiver.mode = "busy"  # 429: later
        sink.write(event(5))
        assert wait_for(lambda: receiver.failures >= 3)
        receiver.mode = "ok"
        assert wait_for(lambda: len(receiver.ids) == 1)
    finally:
        sink.close()
        receiver.stop()
    assert stats.dropped == {"webhook_rejected": 5}


def test_one_event_per_post_is_plain_json_as_without_a_spool(tmp_path):
    receiver = Receiver(free_port()).start()
    sink = SpooledWebhookSink(receiver.url, Stats(), str(tmp_path / "spool"), SECRET, batch=1)
    try:
        events = [event(i) for i in range(3)]
        for e in events:
            sink.write(e)
        assert wait_for(lambda: len(receiver.ids) == 3)
    finally:
        sink.close()
        receiver.stop()
    assert receiver.types == {"application/json"}
    assert [json.loads(body) for body in receiver.bodies] == [e.to_dict() for e in events]


@pytest.mark.slow  # processes of their own: a cold start of the classifier each
def test_the_hub_spools_its_change_events_and_refuses_a_second_process_on_the_spool(tmp_path):
    receiver = Receiver(free_port())  # stopped
    config = write_config(tmp_path)
    db = f"sqlite:///{tmp_path / 'map.db'}"
    env = {**os.environ, "PII_SENSOR_WEBHOOK_SECRET": SECRET}

    def hub(port):
        return subprocess.Popen([sys.executable, "-m", "sensor", "hub", "--listen", f"127.0.0.1:{port}", "--db", db,
                                 "--config", str(config), "--events", receiver.url], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def up(port):
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status == 200

    events = subprocess.run([sys.executable, "-m", "sensor", "scan", str(TRICKY), "--format", "json", "--config",
                             str(config)], cwd=ROOT, capture_output=True, timeout=300, check=True).stdout
    port = free_port()
    first = hub(port)
    try:
        assert wait_for(lambda: first.poll() is not None or up(port), timeout=120) and first.poll() is None
        second = subprocess.run([sys.executable, "-m", "sensor", "hub", "--listen", f"127.0.0.1:{free_port()}",
                                 "--db", f"sqlite:///{tmp_path / 'other.db'}", "--config", str(config),
                                 "--events", receiver.url], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 2 and second.stderr.count("\n") == 1
        assert "in use by another process" in second.stderr
        signature = "sha256=" + hmac.new(SECRET.encode(), events, hashlib.sha256).hexdigest()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/events", data=events, method="POST",
                                         headers={"X-PII-Sensor-Signature": signature})
        assert urllib.request.urlopen(request, timeout=10).status == 202
        changes = lambda: json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/changes",
                                                            timeout=10).read())["changes"]
        assert wait_for(lambda: len(changes()) > 0)
        stored = {c["id"] for c in changes()}
        assert wait_for(lambda: records_spooled(tmp_path) == len(stored))  # written to the spool
    finally:
        first.kill()
        first.communicate(timeout=60)
    receiver.start()
    port = free_port()
    again = hub(port)
    try:
        assert wait_for(lambda: receiver.unique() == stored)
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=60)
        receiver.stop()
    assert len(receiver.ids) == len(stored)


def records_spooled(tmp_path) -> int:
    count = 0
    for path in (tmp_path / "spool").glob("*/*.seg"):
        data, at = path.read_bytes(), 0
        while (record := parse(data, at)) is not None:
            count, at = count + 1, record[1]
    return count


def drive(config_path, url, metrics_port, ids_path, close_wait, rounds) -> int:
    """The sensor's outputs as sniff and proxy run them: the events of TRICKY published to the sink
    `rounds` times (each time with new ids: classifying is the slow part, and not what is tested
    here), their ids written to `ids_path`; then wait for SIGTERM and close the sink as they do."""
    import dataclasses
    import uuid

    from sensor import config as config_mod
    from sensor import stream
    from sensor.engine import Sensor as Engine
    from sensor.errors import InputError
    from sensor.outputs.publisher import Outputs
    from sensor.sources import har

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    config = config_mod.load(config_path)
    engine = Engine(config)
    try:
        outputs = Outputs(engine, url, int(metrics_port))
    except InputError as e:
        print(f"pii-sensor: {e}", file=sys.stderr)
        return 2
    ids = []
    events = [e for e in stream.events(engine, har.read(str(TRICKY), engine.stats, config.max_body_bytes)) if e]
    for _ in range(int(rounds)):
        copies = [dataclasses.replace(e, id=str(uuid.uuid4())) for e in events]
        outputs.publish(copies)
        ids += [e.id for e in copies]
    Path(ids_path + ".tmp").write_text(json.dumps(ids))
    os.replace(ids_path + ".tmp", ids_path)
    signal.sigwait({signal.SIGTERM})
    outputs.sink.close(wait=float(close_wait))
    print(json.dumps(dict(engine.stats.all_dropped())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(drive(*sys.argv[1:]))
