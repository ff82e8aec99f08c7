"""Where events go (SPEC.md section 4, SINK): stdout, a rotating file, or a webhook.

Every sink takes `write(event)` on the sensor's worker path and never blocks traffic:
the webhook posts from its own thread, and what it cannot deliver is counted in
dropped{reason}. Without `events.spool_dir` the webhook buffers in memory and gives up
after its retries (WebhookSink); with it, events wait on disk until the receiver takes
them, across restarts (SpooledWebhookSink, sensor/outputs/spool.py).
"""
from __future__ import annotations

import collections
import hashlib
import hmac
import http.client
import os
import sys
import threading
import time
import urllib.error
import urllib.request

from ..config import Config
from ..errors import InputError
from ..model import Drop, Event
from . import metrics
from .spool import Spool

SIGNATURE_HEADER = "X-PII-Sensor-Signature"  # "sha256=<hex HMAC of the body>"
BATCH_BYTES = 1 << 20  # a spooled POST's body at most (the hub takes up to hub.max_body_bytes, 10 MiB)
MAX_BACKOFF = 30.0


def post(url: str, body: bytes, content_type: str, secret: bytes | None, timeout: float) -> int:
    """POST a body, signed when there is a secret: the HTTP status, or 0 when no answer came."""
    headers = {"Content-Type": content_type, "User-Agent": "pii-sensor"}
    if secret:
        headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as e:
        e.close()
        return e.code
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):  # refused, reset, garbage
        return 0


def retryable(status: int) -> bool:
    """Worth sending again: no answer, 5xx, 408 Request Timeout, 429 Too Many Requests. Any other
    4xx is the receiver refusing these events for good (a wrong signature, a body it cannot read)."""
    return not 400 <= status < 500 or status in (408, 429)


class LineSink:
    def __init__(self, stream):
        self.stream = stream

    def write(self, event: Event) -> None:
        self.stream.write(event.to_json() + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class FileSink:
    """JSON lines appended to a file, rotated by size like logrotate: PATH.1 is the newest backup."""

    def __init__(self, path: str, max_bytes: int = 100 << 20, backups: int = 5):
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        try:
            self.fh = open(path, "a", encoding="utf-8")
        except OSError as e:
            raise InputError(f"file:{path}: cannot open: {e.strerror or e}") from None

    def write(self, event: Event) -> None:
        line = event.to_json() + "\n"
        if self.max_bytes and self.fh.tell() + len(line) > self.max_bytes and self.fh.tell() > 0:
            self._rotate()
        self.fh.write(line)
        self.fh.flush()

    def _rotate(self) -> None:
        self.fh.close()
        for i in range(self.backups - 1, 0, -1):
            if os.path.exists(f"{self.path}.{i}"):
                os.replace(f"{self.path}.{i}", f"{self.path}.{i + 1}")
        if self.backups:
            os.replace(self.path, f"{self.path}.1")
        else:
            os.unlink(self.path)
        self.fh = open(self.path, "a", encoding="utf-8")

    def close(self) -> None:
        self.fh.close()


class WebhookSink:
    """POSTs each event as JSON, signed with HMAC-SHA256 when a secret is configured (no spool).

    A sender thread drains a bounded buffer; failed posts are retried with exponential
    backoff; events that find the buffer full, or exhaust their retries, are counted."""

    def __init__(self, url: str, stats, secret: str | None = None, buffer: int = 10_000, retries: int = 5,
                 backoff: float = 0.5, timeout: float = 5.0):
        self.url, self.stats, self.retries, self.backoff, self.timeout = url, stats, retries, backoff, timeout
        self.secret = secret.encode() if secret else None
        self.queue: collections.deque = collections.deque()
        self.limit = buffer
        self.ready = threading.Condition()
        self.closing = False
        self.thread = threading.Thread(target=self._run, name="pii-sensor-webhook", daemon=True)
        self.thread.start()

    def write(self, event: Event) -> None:
        with self.ready:
            if len(self.queue) >= self.limit:
                self.stats.drop(Drop.WEBHOOK_BUFFER_FULL)
                return
            self.queue.append(event.to_json().encode())
            self.ready.notify()

    def _post(self, body: bytes) -> bool:
        return 200 <= post(self.url, body, "application/json", self.secret, self.timeout) < 300

    def _run(self) -> None:
        while True:
            with self.ready:
                while not self.queue and not self.closing:
                    self.ready.wait()
                if not self.queue:
                    return
                body = self.queue.popleft()
            delay = self.backoff
            for attempt in range(self.retries + 1):
                if self._post(body):
                    break
                if attempt == self.retries or self.closing:
                    self.stats.drop(Drop.WEBHOOK_FAILED)
                    break
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def close(self, wait: float = 10.0) -> None:
        """Deliver what is buffered (for at most `wait` seconds), then stop."""
        deadline = time.time() + wait
        while self.queue and time.time() < deadline:
            time.sleep(0.05)
        with self.ready:
            self.closing = True
            left = len(self.queue)
            self.queue.clear()
            self.ready.notify()
        if left:
            self.stats.drop(Drop.WEBHOOK_FAILED, left)
        self.thread.join(timeout=max(0.1, deadline - time.time()))


class SpooledWebhookSink:
    """The webhook over an on-disk spool: at-least-once delivery, in order, across restarts.

    write() appends the event to the spool; a sender thread POSTs what is spooled, oldest first, in
    batches of JSON lines (one JSON event when a batch has one), and moves past a batch once the
    receiver answers 2xx. Failures are retried with exponential backoff for as long as it takes: the
    spool's cap is the only bound, and it drops the oldest events (spool_full). A 4xx other than 408
    and 429 refuses the events for good: counted (webhook_rejected) and skipped. A batch sent again
    after a lost answer arrives twice: receivers remove duplicates by the events' ids."""

    def __init__(self, url: str, stats, directory: str, secret: str | None = None, max_bytes: int = 256 << 20,
                 batch: int = 500, backoff: float = 0.5, timeout: float = 5.0):
        self.url, self.batch, self.backoff, self.timeout = url, batch, backoff, timeout
        self.secret = secret.encode() if secret else None
        self.drop = stats.drop if stats is not None else (lambda reason, n=1: None)
        self.spool = Spool(directory, max_bytes, self.drop)
        waiting = self.spool.pending[0]
        if waiting:
            print(f"pii-sensor: webhook: {waiting} events spooled by an earlier run are delivered first",
                  file=sys.stderr, flush=True)
        metrics.SPOOLS.add(self.spool)
        self.hurry = threading.Event()  # close() began: a backoff ends now, and later ones are short
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="pii-sensor-webhook", daemon=True)
        self.thread.start()

    def write(self, event: Event) -> None:
        self.spool.append(event.to_json().encode())

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                batch = self.spool.take(self.batch, BATCH_BYTES, timeout=1.0)
                if batch is not None:
                    self._deliver(batch)
            except OSError as e:  # the spool's disk failed under us: say so, and try again
                print(f"pii-sensor: webhook: cannot read the spool {self.spool.dir} "
                      f"({e.strerror or type(e).__name__}); retrying", file=sys.stderr, flush=True)
                self.stopping.wait(5.0)

    def _deliver(self, batch) -> None:
        if len(batch.payloads) == 1:
            body, kind = batch.payloads[0], "application/json"
        else:
            body, kind = b"\n".join(batch.payloads) + b"\n", "application/x-ndjson"
        delay = self.backoff
        while not self.stopping.is_set() and self.spool.sending(batch):  # (not if the cap dropped it: counted)
            status = post(self.url, body, kind, self.secret, self.timeout)
            if 200 <= status < 300:
                self.spool.done(batch)
                return
            if not retryable(status):
                self.drop(Drop.WEBHOOK_REJECTED, len(batch.payloads))
                self.spool.done(batch)
                return
            if not self.spool.failed(batch) or self.stopping.is_set():
                return  # dropped for room during the POST (and counted), or stopping: it stays spooled
            if self.hurry.is_set():
                self.stopping.wait(min(delay, 0.5))
            else:
                self.hurry.wait(delay)
            delay = min(max(delay * 2, 0.05), MAX_BACKOFF)

    def close(self, wait: float = 10.0) -> None:
        """Deliver what is spooled for at most `wait` seconds; what is left stays for the next start."""
        deadline = time.monotonic() + wait
        self.hurry.set()
        self.spool.wait_empty(wait)
        self.stopping.set()
        self.spool.interrupt()
        self.thread.join(timeout=max(0.1, deadline - time.monotonic()))
        metrics.SPOOLS.discard(self.spool)
        left = self.spool.close()
        if left:
            print(f"pii-sensor: webhook: {left} events left in the spool {self.spool.dir}, to deliver on the next "
                  f"start", file=sys.stderr, flush=True)


def spool_path(root: str, url: str) -> str:
    """A sink's own spool under events.spool_dir: named by a hash, as URLs may hold tokens."""
    return os.path.join(root, "webhook-" + hashlib.sha256(url.encode()).hexdigest()[:16])


def check_sink(spec: str) -> None:
    """Raise InputError for a SINK that open_sink would refuse, without opening anything."""
    if spec != "stdout" and not spec.startswith(("file:", "http://", "https://")):
        raise InputError(f"{spec}: unknown event sink (stdout, file:PATH or an http(s):// URL)")


def open_sink(spec: str, stats=None, config: Config | None = None):
    config = config or Config()
    if spec == "stdout":
        return LineSink(sys.stdout)
    if spec.startswith("file:"):
        return FileSink(spec[5:], config.file_max_bytes, config.file_backups)
    check_sink(spec)
    if config.spool_dir:
        return SpooledWebhookSink(spec, stats, spool_path(config.spool_dir, spec), config.webhook_secret,
                                  config.spool_max_bytes, config.webhook_batch, config.webhook_backoff,
                                  config.webhook_timeout)
    return WebhookSink(spec, stats, config.webhook_secret, config.webhook_buffer, config.webhook_retries,
                       config.webhook_backoff, config.webhook_timeout)
