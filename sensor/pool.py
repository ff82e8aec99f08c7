"""Classification in worker processes, so that capture, parsing and the outputs keep one core
and classification gets the others (spaCy and the detectors hold the GIL).

Batches of exchanges go in; the event of each exchange (`findings: []` where there are none),
and what the workers counted while reading bodies, come back in the order the batches went in.
At most `2 x workers` batches are in flight: `scan` waits for room, `sniff` asks `full()` first
and never waits. While the workers start (spaCy loads for seconds), up to START_BACKLOG batches
wait here, so that `scan` reads on meanwhile.
A worker that dies loses the batches it held: they are counted and the pool starts anew.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter, deque
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from dataclasses import replace

from .config import Config
from .model import Drop, Event, Exchange
from .stats import Stats

_engine = None  # the worker's Sensor
START_BACKLOG = 32  # batches held while the workers start


def _die_with_parent() -> None:
    """A worker outlives a sensor killed outright (SIGKILL, or SIGTERM before it could stop cleanly)
    unless the kernel ends it with its parent, the fork server, which ends with the sensor."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass


def _start(config: Config) -> None:
    """A worker's start: the parent decides when to stop (Ctrl-C in a terminal reaches the whole
    process group), so the signals that end the sensor must not kill a worker mid-batch."""
    global _engine
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    # Below capture in the scheduler's eyes: a packet the kernel drops is lost, while an exchange
    # the workers cannot take in time is sampled, deliberately and counted.
    os.nice(5)
    from detectors import nlp

    from .engine import Sensor

    _engine = Sensor(config)
    if config.ner:
        nlp.pipeline()  # loaded before the first batch, not during it


def _ready() -> bool:
    return _engine is not None


def _classify(exchanges: list[Exchange]) -> tuple[list[Event], float, Counter, Counter]:
    _engine.stats = stats = Stats()  # what reading these bodies dropped or skipped, sent back with them
    started = time.perf_counter()
    events = _engine.events_many(exchanges)
    return events, time.perf_counter() - started, stats.dropped, stats.skipped


class ClassifierPool:
    def __init__(self, config: Config, workers: int, stats, ready: bool = False):
        self.config = replace(config, kubernetes=None)  # workloads from Kubernetes are named in the main process
        self.workers, self.stats = workers, stats
        self.limit = 2 * workers
        self.pending: deque[tuple[list[Exchange], Future]] = deque()
        self.waiting: deque[list[Exchange]] = deque()  # batches held until the workers have started
        self.ready = ready
        self.executor = self._open()

    def _open(self) -> ProcessPoolExecutor:
        # Not fork: the parent may already run threads (the /metrics server, the pod watcher). A fork
        # server starts clean, loads the engine and spaCy once, and forks the workers: they share it.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["sensor.preload"] if self.config.ner else ["sensor.engine"])
        executor = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start, initargs=(self.config,))
        started = self.started = threading.Event()  # this executor's: a restart makes another

        def start() -> None:  # each submit without an idle worker starts one: all load before the first batch
            try:
                for ready in [executor.submit(_ready) for _ in range(self.workers)]:
                    ready.result()
            except BrokenExecutor:
                pass  # the first batch finds it broken, and counts its loss
            finally:
                started.set()

        if self.ready:  # before traffic arrives
            start()
        else:  # while the caller reads on: a submit would wait for the fork server to load
            threading.Thread(target=start, name="pii-sensor-pool-start", daemon=True).start()
        return executor

    def full(self) -> bool:
        if not self.started.is_set():
            return len(self.waiting) >= START_BACKLOG
        return len(self.pending) + len(self.waiting) >= self.limit

    def submit(self, exchanges: list[Exchange]) -> None:
        if not self.started.is_set() and len(self.waiting) < START_BACKLOG:
            self.waiting.append(exchanges)
            return
        self._send_waiting()
        self._send(exchanges)

    def _send_waiting(self) -> None:
        while self.waiting:
            self._send(self.waiting.popleft())

    def _send(self, exchanges: list[Exchange]) -> None:
        try:
            future = self.executor.submit(_classify, exchanges)
        except BrokenExecutor:  # a worker died since the last look: what was in flight is lost
            self._lost(0)
            future = self.executor.submit(_classify, exchanges)
        self.pending.append((exchanges, future))

    def results(self, wait_for: int = 0):
        """(events, seconds per exchange) of finished batches, in order:
        the first `wait_for` batches, waited for, then those already done."""
        if self.waiting and (wait_for > 0 or self.started.is_set()):
            self._send_waiting()  # (waits for the workers to start)
        while self.pending and (wait_for > 0 or self.pending[0][1].done()):
            wait_for -= 1
            exchanges, future = self.pending.popleft()
            try:
                events, seconds, dropped, skipped = future.result()
            except BrokenExecutor:
                self._lost(len(exchanges))
                continue
            self.stats.dropped.update(dropped)
            self.stats.skipped.update(skipped)
            yield events, seconds / max(1, len(exchanges))

    def _lost(self, n: int) -> None:
        """A worker died (killed, out of memory): every batch in flight is lost; start anew."""
        self.stats.drop(Drop.CLASSIFIER_LOST, n)
        for exchanges, _ in self.pending:
            self.stats.drop(Drop.CLASSIFIER_LOST, len(exchanges))
        self.pending.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._open()

    def drain(self):
        self._send_waiting()
        return self.results(wait_for=len(self.pending))

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
