"""Shared helpers for tests that start real processes: free ports, waiting, scraping."""
import socket
import subprocess
import threading
from http.server import ThreadingHTTPServer
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "live" / "server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=30.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        try:
            if predicate():
                return True
        except Exception:
            pass
        time.sleep(0.2)
    return False


def scrape(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


def start_upstream(port: int, *tls) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(SERVER), "127.0.0.1", str(port), *map(str, tls)])
    assert wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True), "upstream did not start"
    return proc


def metric(text: str, series: str) -> float:
    """The value of one series, e.g. 'pii_sensor_dropped_total{reason="queue_full"}'; 0 when absent."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class LoopbackServer:
    """A real HTTP server on loopback in a thread, for fakes of other services (webhooks, APIs)."""

    def __init__(self, handler_class):
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), handler_class)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
