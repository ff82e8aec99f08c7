"""The mitmproxy addon: completed flows become Exchanges, classified off the proxy's event loop.

    pii-sensor proxy --mode reverse:http://127.0.0.1:8080 --listen-port 8081 ...
    mitmdump -s sensor/mitm_addon.py --set pii_sensor_events=stdout ...

`response` only copies the flow into a bounded queue (put_nowait): the proxied request
never waits for classification, and when the queue is full the exchange is dropped and
counted, never blocking traffic. Classification runs in a separate process
(ProcessWorker), so it uses another core instead of competing with the proxy for the
GIL; ThreadWorker does the same inside the process (for embedding and tests).
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import threading

from .exchange import Exchange, Peer, Request, Response

_STOP = "stop"
# Drops that happen on the proxy side, counted in shared memory so the worker can export them.
PROXY_DROPS = ("queue_full", "body_streamed", "flow_error", "parse_error", "proxy_error")


def flow_to_wire(flow) -> tuple:
    """What the classifier needs of a completed flow, as a plain tuple: the proxy's event loop
    pays for this copy and its pickling, so it is kept as cheap as possible."""
    req, resp = flow.request, flow.response
    client = flow.client_conn.peername or (None, None)
    server = flow.server_conn.peername or flow.server_conn.address or (None, None)
    return (req.timestamp_start, client[0], client[1], server[0], server[1], req.pretty_host or flow.server_conn.sni,
            req.method, req.path, req.headers.fields, req.raw_content or b"",
            None if resp is None else (resp.status_code, resp.headers.fields, resp.raw_content or b""))


def _text(fields) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in fields]


def wire_to_exchange(wire: tuple) -> Exchange:
    """The shared Exchange (bodies as sent, still Content-Encoded) from flow_to_wire's tuple."""
    ts, cip, cport, sip, sport, host, method, path, req_fields, req_body, resp = wire
    return Exchange(
        time=ts,
        source=Peer(ip=cip, port=cport),
        destination=Peer(ip=sip, port=sport, host=host),
        request=Request(headers=_text(req_fields), body=req_body, encoded=True, method=method, target=path),
        response=None if resp is None else Response(headers=_text(resp[1]), body=resp[2], encoded=True, status=resp[0]),
    )


def classify_wires(sensor, outputs, wires) -> None:
    exchanges = []
    for wire in wires:
        try:
            exchanges.append(wire_to_exchange(wire))
        except (TypeError, ValueError, IndexError):
            sensor.stats.drop("parse_error")
    outputs.publish(sensor.process_many(exchanges))


def drain(get, handle) -> None:
    """Take exchanges from a queue in batches (spaCy batches well) until the stop marker."""
    while True:
        batch = [get()]
        while len(batch) < 256:
            try:
                batch.append(get(block=False))
            except queue.Empty:
                break
        stop = _STOP in batch
        batch = [item for item in batch if item != _STOP]
        if batch:
            handle(batch)
        if stop:
            return


class PiiSensorAddon:
    """mitmproxy event handlers; `worker` classifies (ProcessWorker or ThreadWorker)."""

    def __init__(self, worker):
        self.worker = worker

    def response(self, flow) -> None:
        if flow.request.stream or (flow.response is not None and flow.response.stream):
            self.worker.drop("body_streamed")  # stream_large_bodies passed the body through unbuffered
        try:
            wire = flow_to_wire(flow)
        except Exception:  # noqa: BLE001 - a malformed flow must not disturb the proxy
            self.worker.drop("parse_error")
            return
        self.worker.submit(wire)

    def error(self, flow) -> None:
        """Client went away mid-body, upstream refused or sent garbage: counted."""
        self.worker.drop("flow_error")

    def done(self) -> None:
        self.worker.close()


class _QueueWorker:
    """Hands exchanges to the classifier through a bounded queue; never blocks the proxy."""

    queue: queue.Queue

    def submit(self, exchange) -> None:
        try:
            self.queue.put_nowait(exchange)
        except queue.Full:
            self.drop("queue_full")


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
    """The classifier process: the engine, the sink and /metrics live here."""
    import signal

    from . import config as config_mod
    from .outputs import Outputs
    from .pipeline import Sensor

    # The proxy decides when to stop and then sends the marker; a terminal's Ctrl-C or a signal
    # to the whole process group must not kill the classifier before it drains its queue.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = os.getppid()

    def get(block=True):
        while True:
            try:
                return q.get(timeout=1.0) if block else q.get(block=False)
            except queue.Empty:
                if not block:
                    raise
                if os.getppid() != parent:
                    return _STOP  # the proxy died without telling us: stop rather than wait forever

    sensor = Sensor(config_mod.load(config_path))
    sensor.stats.shared = {reason: value for reason, value in zip(PROXY_DROPS, drops)}
    outputs = Outputs(sensor, events, metrics_port)
    ready.set()
    try:
        drain(get, lambda b: classify_wires(sensor, outputs, b))
    finally:
        outputs.close()
        print(f"pii-sensor: {sensor.stats.summary()}", file=sys.stderr)


class ProcessWorker(_QueueWorker):
    def __init__(self, config_path, events: str, metrics_port: int | None, queue_size: int = 10_000):
        ctx = multiprocessing.get_context("spawn")  # no fork of a process that runs an event loop and threads
        self.queue = ctx.Queue(maxsize=queue_size)
        self.drops = [ctx.Value("q", 0, lock=False) for _ in PROXY_DROPS]
        ready = ctx.Event()
        self.process = ctx.Process(target=_process_main, name="pii-sensor-classifier", daemon=True,
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
