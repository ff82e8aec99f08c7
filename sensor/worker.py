"""Classification off the proxy's event loop: a bounded queue into a classifier process
(ProcessWorker), so classification uses another core instead of competing with mitmproxy
for the GIL, or a thread (ThreadWorker, for embedding and tests). When the queue is full
the exchange is dropped and counted, never blocking traffic.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections import deque

from .model import Drop
from .sources.deadlines import CLOSE_REASONS
from .sources.proxy import wire_to_exchange

_STOP = "stop"
_IDLE = "idle"  # what a get returns after a quiet wait: time to publish what the workers finished
WIRES_PER_PUT = 64  # the proxy hands exchanges over in lists: one pickling and one write for many
FLUSH_SECONDS = 0.05  # ... and sends a shorter list after this long
# Drops that happen on the proxy side, counted in shared memory so the worker can export them.
PROXY_DROPS = (Drop.QUEUE_FULL, Drop.BODY_STREAMED, Drop.FLOW_ERROR, Drop.PARSE_ERROR, Drop.PROXY_ERROR,
               Drop.CLASSIFIER_LOST, Drop.CLASSIFIER_DOWN, Drop.SHUTDOWN)


def exchanges_of(sensor, wires) -> list:
    exchanges = []
    for wire in wires:
        try:
            exchanges.append(wire_to_exchange(wire))
        except (TypeError, ValueError, IndexError):
            sensor.stats.drop(Drop.PARSE_ERROR)
    return exchanges


def classify_wires(sensor, outputs, wires) -> None:
    outputs.publish(sensor.process_many(exchanges_of(sensor, wires)))


def drain(get, handle) -> None:
    """Take exchanges from a queue in batches (spaCy batches well) until the stop marker. A `get`
    that returns _IDLE after a quiet wait makes `handle` see an empty batch."""
    while True:
        first = get()
        batch = [] if first == _IDLE else [first]
        while batch and len(batch) < 256:
            try:
                batch.append(get(block=False))
            except queue.Empty:
                break
        stop = _STOP in batch
        batch = [item for item in batch if item != _STOP]
        if batch or first == _IDLE:
            handle(batch)
        if stop:
            return


class _QueueWorker:
    """Hands exchanges to the classifier through a bounded queue; never blocks the proxy."""

    queue: queue.Queue

    def submit(self, exchange) -> None:
        try:
            self.queue.put_nowait(exchange)
        except queue.Full:
            self.drop(Drop.QUEUE_FULL)


class ThreadWorker(_QueueWorker):
    def __init__(self, sensor, outputs, queue_size: int = 10_000):
        self.sensor, self.outputs = sensor, outputs
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.thread = threading.Thread(target=drain, args=(self.queue.get, lambda b: classify_wires(sensor, outputs, b)),
                                       name="pii-sensor-classifier", daemon=True)
        self.thread.start()

    def drop(self, reason: str) -> None:
        self.sensor.stats.drop(reason)

    def close(self, timeout: float = 10.0) -> None:
        if self.thread.is_alive():
            self.queue.put(_STOP, timeout=timeout)
            self.thread.join(timeout)
        self.outputs.close()


def _process_main(q, took, drops, restarts, up, closed, held, stop_by, config_path, events, metrics_port, ready) -> None:
    """The classifier process: the sink and /metrics live here, and classification too, or in the
    worker processes it starts (`classifier.workers`, as sniff does, with its backlog and sampling).
    `took` counts the exchanges it took from the queue's lists, `held` those it has not finished (lost
    if it dies, with what is still in the queue); past `stop_by` (a time, set at shutdown) what
    still waits is counted, not classified."""
    from . import config as config_mod
    from .engine import Sensor
    from .feed import Feed
    from .outputs.metrics import CLASSIFIER
    from .outputs.publisher import Outputs

    # The proxy decides when to stop and then sends the marker; a terminal's Ctrl-C or a signal
    # to the whole process group must not kill the classifier before it drains its queue.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.setpgrp()  # its worker processes join its group: if it dies, the proxy ends them with it
    # Below the proxy in the scheduler's eyes: traffic must not wait for classification, and what
    # classification cannot take in time is sampled and counted (sensor/feed.py).
    os.nice(5)
    parent = os.getppid()
    sensor = Sensor(config_mod.load(config_path))
    sensor.stats.shared = {reason: value for reason, value in zip(PROXY_DROPS, drops)}
    CLASSIFIER.restarts, CLASSIFIER.up = restarts, up  # as the proxy sees it
    CLASSIFIER.closed = dict(zip(CLOSE_REASONS, closed))
    outputs = Outputs(sensor, events, metrics_port)
    feed = Feed(sensor, outputs.publish)
    ready.set()
    busy = False
    taken: deque = deque()  # the rest of the last list taken from the queue

    def get(block=True):
        if taken:
            return taken.popleft()
        if not block:
            item = q.get(block=False)
        else:
            try:  # while workers hold batches, look back soon for their events
                item = q.get(timeout=0.02 if busy else 1.0)
            except queue.Empty:  # the proxy died without telling us: stop rather than wait forever
                return _STOP if os.getppid() != parent else _IDLE
        if type(item) is not list:
            return item
        held.value += len(item)  # first: at worst counted twice for a moment, never lost
        took.value += len(item)
        taken.extend(item)
        return taken.popleft()

    def handle(wires):
        nonlocal busy
        if stop_by.value and time.time() > stop_by.value:
            sensor.stats.drop(Drop.SHUTDOWN, len(wires))
            return
        held.value = feed.held() + len(wires) + len(taken)
        busy = feed.offer(exchanges_of(sensor, wires))
        held.value = feed.held() + len(taken)

    try:
        drain(get, handle)
        feed.close(deadline=stop_by.value or None)
    except Exception as e:  # noqa: BLE001 - one line naming the kind, never the message (it may quote traffic)
        print(f"pii-sensor: classifier stopped on an unexpected error: {type(e).__name__}", file=sys.stderr)
    finally:
        held.value = 0
        outputs.close()
        print(f"pii-sensor: {sensor.stats.summary()}", file=sys.stderr)


_RESTART_DELAYS = (0.5, 1, 2, 5, 10, 30)  # seconds between attempts to start a classifier that will not start


def _end_group(process) -> None:
    """Kill a classifier process and the worker processes of its group (it leads one)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.join()


class ProcessWorker(_QueueWorker):
    """The proxy's side of its classifier process, which it supervises: a classifier that dies is
    restarted, what it held counted as lost (classifier_lost) and the restart counted; while one
    cannot be started, flows pass unclassified and are counted (classifier_down), the proxy serves
    /metrics itself with pii_sensor_classifier_up 0, and keeps trying."""

    def __init__(self, config_path, events: str, metrics_port: int | None, queue_size: int = 10_000,
                 stop_timeout: float = 10.0):
        self.ctx = multiprocessing.get_context("spawn")  # no fork of a process that runs an event loop and threads
        self.config_path, self.events, self.metrics_port = config_path, events, metrics_port
        self.queue_size, self.stop_timeout = queue_size, stop_timeout
        # counts that outlive any one classifier process: the proxy's drops, restarts, what one holds
        self.drops = [self.ctx.Value("q", 0, lock=False) for _ in PROXY_DROPS]
        self.restarts = self.ctx.Value("q", 0, lock=False)
        self.shared_up = self.ctx.Value("b", 0, lock=False)  # what pii_sensor_classifier_up says
        self.closed = [self.ctx.Value("q", 0, lock=False) for _ in CLOSE_REASONS]  # connections past a deadline
        self.held = self.ctx.Value("q", 0, lock=False)
        # Exchanges put on the queue and taken from it, each written by one side only (no lock a
        # killed classifier could leave taken): the queue holds sent - took.
        self.sent = self.ctx.Value("q", 0, lock=False)
        self.took = self.ctx.Value("q", 0, lock=False)
        self.stopped = False  # the stop marker is sent: what comes later is counted, not queued
        self.stop_by = self.ctx.Value("d", 0.0, lock=False)
        self.lock = threading.Lock()  # the event loop submits while the watcher may swap the queue
        self.closing = threading.Event()
        self.fallback = None  # the proxy's own /metrics server while no classifier serves it
        self.queue = self._new_queue()
        self.unsent: list = []  # exchanges not yet handed over (sent as one list)
        self.unsent_since = 0.0
        self.process = None
        self._set_up(self._launch())
        if not self.up:
            self._serve_fallback()
        self.watcher = threading.Thread(target=self._watch, name="pii-sensor-supervisor", daemon=True)
        self.watcher.start()

    def submit(self, exchange) -> None:
        with self.lock:
            if not self.up:
                self.drop(Drop.CLASSIFIER_DOWN)
                return
            if self.stopped:
                self.drop(Drop.SHUTDOWN)
                return
            if not self.unsent:
                self.unsent_since = time.monotonic()
            self.unsent.append(exchange)
            if len(self.unsent) >= WIRES_PER_PUT:
                self._send()

    def _new_queue(self):
        return self.ctx.Queue()  # bounded by the exchanges in it (queue_size), counted by sent - took

    def _send(self) -> None:
        """Hand the unsent exchanges over as one list (under self.lock)."""
        wires, self.unsent = self.unsent, []
        if self._queued() + len(wires) > self.queue_size:
            self.drop(Drop.QUEUE_FULL, len(wires))
            return
        self.sent.value += len(wires)
        self.queue.put_nowait(wires)

    def _queued(self) -> int:
        """Exchanges in the queue: put there by the proxy, not yet taken by the classifier."""
        return self.sent.value - self.took.value

    def _flush(self) -> None:
        """Send what waited FLUSH_SECONDS or longer (from the watcher: the event loop never waits)."""
        with self.lock:
            if self.unsent and self.up and time.monotonic() - self.unsent_since >= FLUSH_SECONDS:
                self._send()

    def drop(self, reason: str, n: int = 1) -> None:
        self.drops[PROXY_DROPS.index(reason)].value += n

    def count_closed(self, reason: str) -> None:
        self.closed[CLOSE_REASONS.index(reason)].value += 1  # only the proxy's event loop writes these

    def _launch(self, timeout: float = 120.0) -> bool:
        """Start a classifier process on the current queue; True once it is ready."""
        ready = self.ctx.Event()
        # not a daemon: it starts worker processes of its own; it stops on the marker, or when it sees the proxy gone
        self.process = self.ctx.Process(
            target=_process_main, name="pii-sensor-classifier", daemon=False,
            args=(self.queue, self.took, self.drops, self.restarts, self.shared_up, self.closed, self.held, self.stop_by, self.config_path, self.events,
                  self.metrics_port, ready))
        self.process.start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.1):
            if not self.process.is_alive() or time.monotonic() > deadline or self.closing.is_set():
                _end_group(self.process)
                return False
        return True

    def _watch(self) -> None:
        delays = iter(())
        while not self.closing.is_set():
            if self.up:
                self.process.join(FLUSH_SECONDS)
                self._flush()
                if self.closing.is_set() or self.process.is_alive():
                    continue
                self._lost(f"exited with status {self.process.exitcode}")
                delays = iter(_RESTART_DELAYS)
            elif self.closing.wait(next(delays, _RESTART_DELAYS[-1])):
                return
            self._stop_fallback()  # the classifier serves /metrics on the same port
            if self._launch():
                self._set_up(True)
                self.restarts.value += 1
                print(f"pii-sensor: classifier process restarted ({self.restarts.value} restarts)", file=sys.stderr)
            else:
                self._lost("could not be started")
                if self.up:
                    print("pii-sensor: the classifier process cannot be started; flows pass unclassified, counted as "
                          "dropped (classifier_down); retrying", file=sys.stderr)
                self._set_up(False)
                self._serve_fallback()

    def _set_up(self, up: bool) -> None:
        with self.lock:
            self.up = up
            self.shared_up.value = up
            if not up and self.unsent:  # nothing will classify them
                self.drop(Drop.CLASSIFIER_DOWN, len(self.unsent))
                self.unsent = []

    def _lost(self, why: str) -> None:
        """The classifier process is gone: its worker processes are ended, a new queue made for the
        next one (the old one may be left locked by the dead reader), and what the old one, the
        process and the list not yet sent held is counted as lost."""
        _end_group(self.process)
        with self.lock:
            old, self.queue = self.queue, self._new_queue()
            lost = self._queued() + self.held.value + len(self.unsent)
            self.sent.value = self.took.value = self.held.value = 0  # the classifier that wrote took is gone
            self.unsent = []
        old.cancel_join_thread()
        old.close()
        self.drop(Drop.CLASSIFIER_LOST, lost)
        if self.up or lost:
            print(f"pii-sensor: classifier process {why}; {lost} exchanges it held are lost (counted)", file=sys.stderr)

    def _serve_fallback(self) -> None:
        if self.metrics_port and self.fallback is None:
            from .outputs.metrics import CLASSIFIER, Metrics
            from .stats import Stats

            stats = Stats()
            stats.shared = {reason: value for reason, value in zip(PROXY_DROPS, self.drops)}
            Metrics(stats)
            CLASSIFIER.restarts, CLASSIFIER.up = self.restarts, self.shared_up
            CLASSIFIER.closed = dict(zip(CLOSE_REASONS, self.closed))
            try:
                self.fallback, _ = Metrics.serve(self.metrics_port)
            except OSError:  # the port is still held: the next attempt tries again
                self.fallback = None

    def _stop_fallback(self) -> None:
        if self.fallback is not None:
            self.fallback.shutdown()
            self.fallback.server_close()
            self.fallback = None

    def close(self, timeout: float | None = None) -> None:
        """Stop within `timeout` (proxy.stop_timeout_seconds): the classifier classifies what it can
        until then; what still waits is counted (shutdown) and it prints the summary."""
        timeout = self.stop_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self.stop_by.value = time.time() + max(0.0, timeout - 1.0)  # a second left to publish and print
        self.closing.set()
        self.watcher.join(timeout)
        if self.up and self.process.is_alive():
            with self.lock:
                if self.unsent:
                    self._send()
                self.stopped = True
                self.queue.put(_STOP)
            self.process.join(max(0.1, deadline - time.monotonic()))
        with self.lock:
            self.stopped = True
            if self.unsent:  # the classifier was gone before they could be sent
                self.drop(Drop.SHUTDOWN, len(self.unsent))
                self.unsent = []
        if self.process is not None and self.process.is_alive():
            _end_group(self.process)
            waiting = self._queued() + self.held.value
            self.drop(Drop.SHUTDOWN, waiting)
            print(f"pii-sensor: the classifier did not finish within {timeout:g} s; {waiting} exchanges were not "
                  "classified (counted)", file=sys.stderr)
        self.queue.cancel_join_thread()
        self._stop_fallback()
