"""Classification in worker processes: the same events as one process, in input order; nothing
lost without a count when a worker dies or the backlog is full."""
import json
import os
import signal

from conftest import CORPUS, run_cli

from sensor.config import Config
from sensor.engine import Sensor
from sensor.feed import Feed
from sensor.pool import ClassifierPool
from sensor.sources import har
from sensor.stats import Stats


def _events(stdout: str) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "id"} for line in stdout.splitlines()]


def test_scan_with_workers_gives_the_events_of_one_process_in_input_order():
    labeled = str(CORPUS / "labeled.har")  # 1,200 exchanges: several batches, so the workers are used
    one = run_cli("scan", labeled, "--format", "json", "--all", "--workers", "0")
    two = run_cli("scan", labeled, "--format", "json", "--all", "--workers", "2")
    assert one.returncode == two.returncode == 0
    assert len(_events(one.stdout)) == 1200
    assert _events(two.stdout) == _events(one.stdout)
    assert two.stderr == one.stderr  # the same counts, skipped and dropped included


def test_bad_worker_count_is_one_line_and_exit_2():
    result = run_cli("scan", str(CORPUS / "labeled.har"), "--workers", "many")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--workers" in result.stderr


def _exchanges(n: int):
    return list(har.read(str(CORPUS / "labeled.har"), Stats()))[:n]


def test_a_killed_worker_is_counted_and_replaced():
    stats = Stats()
    pool = ClassifierPool(Config(), 1, stats, ready=True)
    try:
        batch = _exchanges(1200)  # long enough to be in the worker's hands when it is killed
        worker = pool.executor.submit(os.getpid).result()
        pool.submit(batch)
        os.kill(worker, signal.SIGKILL)
        assert list(pool.drain()) == []
        assert stats.dropped["classifier_lost"] == 1200
        pool.submit(batch[:40])  # the pool started anew
        (events, _), = pool.drain()
        assert len(events) == 40 and any(e.findings for e in events)
    finally:
        pool.close()


def test_batches_wait_in_order_while_the_workers_start(monkeypatch):
    import threading
    import types

    import sensor.pool as pool_module

    held = []

    class HeldStart(threading.Thread):  # the workers' start, held until the test lets it go
        def start(self):
            held.append(self)

    monkeypatch.setattr(pool_module, "threading", types.SimpleNamespace(Event=threading.Event, Thread=HeldStart))
    monkeypatch.setattr(pool_module, "START_BACKLOG", 3)
    pool = ClassifierPool(Config(), 1, Stats())
    try:
        batches = [_exchanges(20)[i:i + 4] for i in range(0, 20, 4)]
        for batch in batches[:3]:
            assert not pool.full()
            pool.submit(batch)  # held, without waiting for the workers
        assert len(pool.waiting) == 3 and pool.full()
        threading.Thread.start(held[0])
        for batch in batches[3:]:
            pool.submit(batch)  # past the backlog: waits for the workers, then sends all in order
        results = [events for events, _ in pool.drain()]
    finally:
        pool.close()
    expected = Sensor(Config()).events_many([ex for batch in batches for ex in batch])
    got = [e for events in results for e in events]
    assert len(results) == 5 and len(got) == 20
    assert [(e.path, e.data_types) for e in got] == [(e.path, e.data_types) for e in expected]


def test_sniff_feed_drops_and_counts_what_its_backlog_cannot_hold():
    config = Config()
    config.workers, config.max_backlog, config.sampling = 1, 10, False
    sensor = Sensor(config)
    published = []
    feed = Feed(sensor, lambda events: published.extend(e for e in events if e is not None), emit_all=True)
    try:
        feed.offer(_exchanges(300))  # at once, far more than the backlog holds
    finally:
        feed.close()
    assert sensor.stats.dropped["queue_full"] == 290
    assert sensor.stats.exchanges == len(published) == 10  # everything else was classified and published


def test_workers_follow_the_containers_cpu_limit(tmp_path):
    from sensor.config import usable_cores

    cores = usable_cores(str(tmp_path / "absent"))
    limit = tmp_path / "cpu.max"
    limit.write_text("150000 100000\n")  # a pod limited to 1.5 CPUs
    assert usable_cores(str(limit)) == min(cores, 2)
    limit.write_text("max 100000\n")
    assert usable_cores(str(limit)) == cores
