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


_GIVEN: set[int] = set()


def free_port() -> int:
    """A free port not handed out before in this run: the kernel may offer a just-released port
    again, and two servers of one test must not be given the same one."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


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


def started(proc, ready) -> None:
    """Wait until a process we launched is ready, or gone. A cold start (no bytecode cache, a new CA)
    can be slow, so the wait ends on one of those two conditions, not on a guess of how long starting takes."""
    assert wait_for(lambda: proc.poll() is not None or ready(), timeout=300) and proc.poll() is None, \
        f"{proc.args[2:4]} did not start (exit {proc.poll()})"


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
