"""Deadlines for the proxy's client connections (mitmproxy 11 itself only closes a connection after
600 s without a byte, so a client that trickles bytes holds one forever): a new connection must
send its first request headers within `header_timeout` (slowloris), a request body must arrive
within `body_timeout` (slow POST), and a keep-alive connection may wait for its next request
for `idle_timeout`. Time spent waiting on the upstream is not the client's. Each connection
closed is counted: pii_sensor_connections_closed_total{reason}.
"""
from __future__ import annotations

import asyncio
import time

CLOSE_REASONS = ("slow_headers", "slow_body", "idle")
_CHECK_EVERY = 1.0  # seconds


class _Client:
    __slots__ = ("since", "requests", "receiving", "waiting")

    def __init__(self, now: float):
        self.since = now  # when the client's current wait began
        self.requests = 0  # requests whose headers arrived
        self.receiving = 0  # requests whose headers arrived and body has not
        self.waiting = 0  # requests sent upstream, their responses not yet back


class Deadlines:
    """Which connections are past their deadline, from mitmproxy's hooks (pure: no I/O here)."""

    def __init__(self, header_timeout: float, body_timeout: float, idle_timeout: float):
        self.header_timeout, self.body_timeout, self.idle_timeout = header_timeout, body_timeout, idle_timeout
        self.clients: dict[str, _Client] = {}

    def connected(self, client_id: str, now: float) -> None:
        self.clients[client_id] = _Client(now)

    def headers(self, client_id: str, now: float) -> None:
        if (c := self.clients.get(client_id)) is not None:
            c.requests += 1
            c.receiving += 1
            c.since = now

    def body(self, client_id: str, now: float) -> None:
        if (c := self.clients.get(client_id)) is not None:
            c.receiving = max(0, c.receiving - 1)
            c.waiting += 1
            c.since = now

    def answered(self, client_id: str, now: float) -> None:
        if (c := self.clients.get(client_id)) is not None:
            c.waiting = max(0, c.waiting - 1)
            c.since = now

    def upgraded(self, client_id: str) -> None:
        """A WebSocket: long-lived by design, its messages are not requests."""
        if (c := self.clients.get(client_id)) is not None:
            c.waiting += 1

    def disconnected(self, client_id: str) -> None:
        self.clients.pop(client_id, None)

    def expired(self, now: float) -> list[tuple[str, str]]:
        """(client id, reason) of each connection past its deadline; they are forgotten here."""
        out = []
        for client_id, c in self.clients.items():
            waited = now - c.since
            if c.receiving:
                late = waited > self.body_timeout and "slow_body"
            elif c.waiting:
                late = False  # the upstream is slow, not the client
            elif not c.requests:
                late = waited > self.header_timeout and "slow_headers"
            else:
                late = waited > self.idle_timeout and "idle"
            if late:
                out.append((client_id, late))
        for client_id, _ in out:
            del self.clients[client_id]
        return out


class DeadlinesAddon:
    """mitmproxy hooks feeding Deadlines; once a second, closes the connections past theirs and
    counts them with `count(reason)`."""

    def __init__(self, deadlines: Deadlines, count):
        self.deadlines, self.count = deadlines, count
        self.task: asyncio.Task | None = None

    def running(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._watch())

    def client_connected(self, client) -> None:
        self.deadlines.connected(client.id, time.monotonic())

    def client_disconnected(self, client) -> None:
        self.deadlines.disconnected(client.id)

    def requestheaders(self, flow) -> None:
        self.deadlines.headers(flow.client_conn.id, time.monotonic())

    def request(self, flow) -> None:
        self.deadlines.body(flow.client_conn.id, time.monotonic())

    def response(self, flow) -> None:
        self.deadlines.answered(flow.client_conn.id, time.monotonic())

    def error(self, flow) -> None:
        self.deadlines.answered(flow.client_conn.id, time.monotonic())

    def websocket_start(self, flow) -> None:
        self.deadlines.upgraded(flow.client_conn.id)

    async def _watch(self) -> None:
        from mitmproxy import ctx

        while True:
            await asyncio.sleep(_CHECK_EVERY)
            connections = ctx.master.addons.get("proxyserver").connections
            for client_id, reason in self.deadlines.expired(time.monotonic()):
                handler = connections.get(client_id)
                if handler is not None:
                    self.count(reason)
                    await handler.on_timeout()  # what mitmproxy does after 600 s of silence

    def done(self) -> None:
        if self.task is not None:
            self.task.cancel()
