"""Where events go (SPEC.md section 4, SINK): stdout, a rotating file, or a webhook.

Every sink takes `write(event)` on the sensor's worker path and never blocks traffic:
the webhook posts from its own thread out of a bounded buffer, and what it cannot
deliver is counted in dropped{reason}.
"""
from __future__ import annotations

import collections
import hashlib
import hmac
import os
import sys
import threading
import time
import urllib.error
import urllib.request

from ..config import Config
from ..errors import InputError
from ..model import Drop, Event

SIGNATURE_HEADER = "X-PII-Sensor-Signature"  # "sha256=<hex HMAC of the body>"


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
    """POSTs each event as JSON, signed with HMAC-SHA256 when a secret is configured.

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
        headers = {"Content-Type": "application/json", "User-Agent": "pii-sensor"}
        if self.secret:
            headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return 200 <= response.status < 300
        except (urllib.error.URLError, OSError, ValueError):
            return False

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
    return WebhookSink(spec, stats, config.webhook_secret, config.webhook_buffer, config.webhook_retries,
                       config.webhook_backoff, config.webhook_timeout)
