"""Classification in worker processes, so that capture, parsing and the outputs keep one core
and classification gets the others (spaCy and the detectors hold the GIL).

Batches of exchanges go in; the findings of each exchange, and what the workers counted while
reading bodies, come back in the order the batches went in. At most `2 x workers` batches are
in flight: `scan` waits for room, `sniff` asks `full()` first and never waits.
A worker that dies loses the batches it held: they are counted and the pool starts anew.
"""
from __future__ import annotations

import multiprocessing
import signal
import time
from collections import Counter, deque
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from dataclasses import replace

from .config import Config
from .model import Drop, Exchange, Finding

_engine = None  # the worker's Sensor


def _start(config: Config) -> None:
    """A worker's start: the parent decides when to stop (Ctrl-C in a terminal reaches the whole
    process group), so the signals that end the sensor must not kill a worker mid-batch."""
    global _engine
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from detectors import nlp

    from .engine import Sensor

    _engine = Sensor(config)
    if config.ner:
        nlp.pipeline()  # loaded before the first batch, not during it


def _ready() -> bool:
    return _engine is not None


def _classify(exchanges: list[Exchange]) -> tuple[list[list[Finding]], float, Counter, Counter]:
    from .stats import Stats

    _engine.stats = stats = Stats()  # what reading these bodies dropped or skipped, sent back with them
    started = time.perf_counter()
    findings = _engine.findings_many(exchanges)
    return findings, time.perf_counter() - started, stats.dropped, stats.skipped


class ClassifierPool:
    def __init__(self, config: Config, workers: int, stats, ready: bool = False):
        self.config = replace(config, kubernetes=None)  # pods are resolved where events are built
        self.workers, self.stats = workers, stats
        self.limit = 2 * workers
        self.pending: deque[tuple[list[Exchange], Future]] = deque()
        self.ready = ready
        self.executor = self._open()

    def _open(self) -> ProcessPoolExecutor:
        # spawn, not fork: the parent may already run threads (the /metrics server, the pod watcher)
        executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_start, initargs=(self.config,))
        if self.ready:  # each submit without an idle worker starts one: all load before traffic arrives
            for ready in [executor.submit(_ready) for _ in range(self.workers)]:
                ready.result()
        return executor

    def full(self) -> bool:
        return len(self.pending) >= self.limit

    def submit(self, exchanges: list[Exchange]) -> None:
        self.pending.append((exchanges, self.executor.submit(_classify, exchanges)))

    def results(self, wait_for: int = 0):
        """(exchanges, findings per exchange, seconds per exchange) of finished batches, in order:
        the first `wait_for` batches, waited for, then those already done."""
        while self.pending and (wait_for > 0 or self.pending[0][1].done()):
            wait_for -= 1
            exchanges, future = self.pending.popleft()
            try:
                findings, seconds, dropped, skipped = future.result()
            except BrokenExecutor:
                self._lost(len(exchanges))
                continue
            self.stats.dropped.update(dropped)
            self.stats.skipped.update(skipped)
            yield exchanges, findings, seconds / max(1, len(exchanges))

    def _lost(self, n: int) -> None:
        """A worker died (killed, out of memory): every batch in flight is lost; start anew."""
        self.stats.drop(Drop.CLASSIFIER_LOST, n)
        for exchanges, _ in self.pending:
            self.stats.drop(Drop.CLASSIFIER_LOST, len(exchanges))
        self.pending.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._open()

    def drain(self):
        return self.results(wait_for=len(self.pending))

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
