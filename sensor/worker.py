"""Classification off the proxy's event loop: a bounded queue into a classifier process
(ProcessWorker), so classification uses another core instead of competing with mitmproxy
for the GIL, or a thread (ThreadWorker, for embedding and tests). When the queue is full
the exchange is dropped and counted, never blocking traffic.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import threading

from .model import Drop
from .sources.proxy import wire_to_exchange

_STOP = "stop"
_IDLE = "idle"  # what a get returns after a quiet wait: time to publish what the workers finished
# Drops that happen on the proxy side, counted in shared memory so the worker can export them.
PROXY_DROPS = (Drop.QUEUE_FULL, Drop.BODY_STREAMED, Drop.FLOW_ERROR, Drop.PARSE_ERROR, Drop.PROXY_ERROR)


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


def _process_main(q, drops, config_path, events, metrics_port, ready) -> None:
    """The classifier process: the sink and /metrics live here, and classification too, or in the
    worker processes it starts (`classifier.workers`, as sniff does, with its backlog and sampling)."""
    import signal

    from . import config as config_mod
    from .engine import Sensor
    from .feed import Feed
    from .outputs.publisher import Outputs

    # The proxy decides when to stop and then sends the marker; a terminal's Ctrl-C or a signal
    # to the whole process group must not kill the classifier before it drains its queue.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = os.getppid()
    sensor = Sensor(config_mod.load(config_path))
    sensor.stats.shared = {reason: value for reason, value in zip(PROXY_DROPS, drops)}
    outputs = Outputs(sensor, events, metrics_port)
    feed = Feed(sensor, outputs.publish)
    ready.set()
    busy = False

    def get(block=True):
        if not block:
            return q.get(block=False)
        try:  # while workers hold batches, look back soon for their events
            return q.get(timeout=0.02 if busy else 1.0)
        except queue.Empty:  # the proxy died without telling us: stop rather than wait forever
            return _STOP if os.getppid() != parent else _IDLE

    def handle(wires):
        nonlocal busy
        busy = feed.offer(exchanges_of(sensor, wires))

    try:
        drain(get, handle)
        feed.close()
    except Exception as e:  # noqa: BLE001 - one line naming the kind, never the message (it may quote traffic)
        print(f"pii-sensor: classifier stopped on an unexpected error: {type(e).__name__}", file=sys.stderr)
    finally:
        outputs.close()
        print(f"pii-sensor: {sensor.stats.summary()}", file=sys.stderr)


class ProcessWorker(_QueueWorker):
    def __init__(self, config_path, events: str, metrics_port: int | None, queue_size: int = 10_000):
        ctx = multiprocessing.get_context("spawn")  # no fork of a process that runs an event loop and threads
        self.queue = ctx.Queue(maxsize=queue_size)
        self.drops = [ctx.Value("q", 0, lock=False) for _ in PROXY_DROPS]
        ready = ctx.Event()
        # not a daemon: it starts worker processes of its own; it stops on the marker, or when it sees the proxy gone
        self.process = ctx.Process(target=_process_main, name="pii-sensor-classifier", daemon=False,
                                   args=(self.queue, self.drops, config_path, events, metrics_port, ready))
        self.process.start()
        ready.wait(120)

    def drop(self, reason: str) -> None:
        self.drops[PROXY_DROPS.index(reason)].value += 1  # only the proxy's event loop writes these

    def close(self, timeout: float = 30.0) -> None:
        if self.process.is_alive():
            try:
                self.queue.put(_STOP, timeout=timeout)
            except queue.Full:
                pass
            self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
