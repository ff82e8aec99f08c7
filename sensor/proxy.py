"""The mitmproxy addon: completed flows become Exchanges, classified off the proxy's event loop.

    pii-sensor proxy --mode reverse:http://127.0.0.1:8080 --listen-port 8081 ...
    mitmdump -s sensor/mitm_addon.py --set pii_sensor_events=stdout ...

`response` only copies the flow into a bounded queue (put_nowait): the proxied request
never waits for classification, and when the queue is full the exchange is dropped and
counted, never blocking traffic. A worker thread classifies, exports metrics and writes
events.
"""
from __future__ import annotations

import queue
import threading
import time

from .exchange import Exchange, Peer, Request, Response

_STOP = object()


def flow_to_exchange(flow, stats) -> Exchange | None:
    """A completed mitmproxy HTTP flow as the shared Exchange (bodies as sent, still encoded)."""
    req, resp = flow.request, flow.response
    if req.stream or (resp is not None and resp.stream):
        stats.drop("body_streamed")  # stream_large_bodies passed the body through unbuffered
    client = flow.client_conn.peername or (None, None)
    server = flow.server_conn.peername or flow.server_conn.address or (None, None)
    return Exchange(
        time=req.timestamp_start,
        source=Peer(ip=client[0], port=client[1]),
        destination=Peer(ip=server[0], port=server[1], host=req.pretty_host or flow.server_conn.sni),
        request=Request(headers=[(k, v) for k, v in req.headers.items(multi=True)], body=req.raw_content or b"",
                        encoded=True, method=req.method, target=req.path),
        response=None if resp is None else Response(
            headers=[(k, v) for k, v in resp.headers.items(multi=True)], body=resp.raw_content or b"",
            encoded=True, status=resp.status_code),
    )


class PiiSensorAddon:
    def __init__(self, sensor, sink, metrics, limiter, queue_size: int = 10_000):
        self.sensor, self.sink, self.metrics, self.limiter = sensor, sink, metrics, limiter
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.worker = threading.Thread(target=self._work, name="pii-sensor-classifier", daemon=True)
        self.worker.start()

    # --- mitmproxy events -------------------------------------------------------

    def response(self, flow) -> None:
        try:
            exchange = flow_to_exchange(flow, self.sensor.stats)
        except Exception:  # noqa: BLE001 - a malformed flow must not disturb the proxy
            self.sensor.stats.drop("parse_error")
            return
        try:
            self.queue.put_nowait(exchange)
        except queue.Full:
            self.sensor.stats.drop("queue_full")

    def error(self, flow) -> None:
        """Client went away mid-body, upstream refused, malformed response: counted."""
        self.sensor.stats.drop("flow_error")

    def done(self) -> None:
        self.close()

    # --- the worker ------------------------------------------------------------

    def _work(self) -> None:
        while True:
            batch = [self.queue.get()]
            while len(batch) < 64:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            stop = _STOP in batch
            batch = [ex for ex in batch if ex is not _STOP]
            if batch:
                self._handle(batch)
            if stop:
                return

    def _handle(self, exchanges) -> None:
        for event in self.sensor.process_many(exchanges):
            if event is None:
                continue
            self.metrics.observe(event)
            if self.limiter.allow(event):
                self.sink.write(event)

    def close(self, timeout: float = 10.0) -> None:
        if not self.worker.is_alive():
            return
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self.queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:
                continue
        self.worker.join(timeout=max(0.1, deadline - time.time()))
        self.sink.close()
