"""Frames in, Exchanges out: link layer -> IP -> TCP reassembly -> HTTP/1.x -> request/response pairs.

One CaptureSession serves a capture file or a live interface; it holds no sockets.
"""
from __future__ import annotations

from collections import deque

from ..config import Config
from ..model import Drop, Exchange, Peer, Request, Response, Skip, host_without_port
from . import http1
from .packets import Defragmenter, Unsupported, network_layer, tcp_segment
from .tcp import Closed, Data, Gap, Reassembler


class HttpConnection:
    """The two directions of one TCP connection and the requests waiting for their responses."""

    def __init__(self, session: "CaptureSession", key: tuple):
        self.key = key
        self.pending: deque[tuple[http1.Message, tuple]] = deque()  # (request, client endpoint)
        self.early: deque[tuple[http1.Message, tuple]] = deque()  # (response, server endpoint) ahead of its request
        self.parsers: dict[tuple, http1.Parser] = {}
        self.session = session

    def parser(self, sender) -> http1.Parser:
        p = self.parsers.get(sender)
        if p is None:
            p = self.parsers[sender] = http1.Parser(
                self.session.stats, self.session.max_body, lambda: self.pending[0][0].method if self.pending else None,
                self.session.max_head)
        return p

    def messages(self, sender, messages, out: list) -> None:
        for msg in messages:
            if msg.is_request:
                if self.early:  # its response overtook it in the capture
                    response, server = self.early.popleft()
                    out.append(self.session.exchange(msg, response, sender, server))
                else:
                    self.pending.append((msg, sender))
            elif self.pending:
                request, client = self.pending.popleft()
                out.append(self.session.exchange(request, msg, client, sender))
            elif self._request_in_progress(sender) and len(self.early) < 16:
                self.early.append((msg, sender))  # reordered across directions: the request is still arriving
            else:
                self.session.stats.drop(Drop.ORPHAN_RESPONSE)  # its request was before the capture began

    def _request_in_progress(self, server) -> bool:
        """Is a request from the other side still arriving (parsed in part, or held out of order)?"""
        if any(p.msg is not None or p.buf for s, p in self.parsers.items() if s != server):
            return True
        tcp = self.session.tcp.connections.get(self.key)
        return tcp is not None and any(h.pending for s, h in tcp.halves.items() if s != server)

    def close(self, out: list) -> None:
        for sender, parser in self.parsers.items():
            self.messages(sender, parser.close(), out)
        if self.early:
            self.session.stats.drop(Drop.ORPHAN_RESPONSE, len(self.early))
            self.early.clear()
        while self.pending:  # requests whose responses were never seen
            request, client = self.pending.popleft()
            server = next((s for s in self.parsers if s != client), None)
            out.append(self.session.exchange(request, None, client, server))


class CaptureSession:
    def __init__(self, stats, config: Config | None = None):
        config = config or Config()
        self.stats = stats
        self.max_body = config.max_body_bytes
        self.max_head = config.max_header_bytes
        self.defrag = Defragmenter(config.max_fragment_datagrams, timeout=config.fragment_timeout)
        self.tcp = Reassembler(stats, config.max_connections, config.max_stream_buffer, config.idle_timeout)
        self.http: dict[tuple, HttpConnection] = {}
        self.packets = 0
        self.bytes = 0

    def frame(self, linktype: int, frame: bytes, ts: float) -> list[Exchange]:
        """One captured frame; the Exchanges it completes."""
        self.packets += 1
        self.bytes += len(frame)
        try:
            ethertype, packet = network_layer(linktype, frame)
            seg = tcp_segment(ethertype, packet, ts, self.defrag, self.stats)
        except Unsupported as e:
            self.stats.drop(e.reason)
            return []
        except (IndexError, ValueError):
            self.stats.drop(Drop.BAD_PACKET)
            return []
        if seg is None:
            return []
        return self._events(self.tcp.feed(seg))

    def expire(self, now: float) -> list[Exchange]:
        self.defrag.expire(now, self.stats)
        return self._events(self.tcp.expire(now))

    def finish(self) -> list[Exchange]:
        return self._events(self.tcp.finish())

    def _events(self, events) -> list[Exchange]:
        out: list[Exchange] = []
        for ev in events:
            if isinstance(ev, Data):
                conn = self.http.get(ev.conn)
                if conn is None:
                    conn = self.http[ev.conn] = HttpConnection(self, ev.conn)
                conn.messages(ev.sender, conn.parser(ev.sender).feed(ev.data, ev.ts), out)
            elif isinstance(ev, Gap):
                conn = self.http.get(ev.conn)
                if conn is not None:
                    conn.messages(ev.sender, conn.parser(ev.sender).gap(ev.size), out)
            elif isinstance(ev, Closed):
                conn = self.http.pop(ev.conn, None)
                if conn is not None:
                    conn.close(out)
        return out

    def exchange(self, request: http1.Message, response: http1.Message | None, client, server) -> Exchange:
        for msg in (request, response):
            if msg is not None and msg.body_too_large:
                self.stats.drop(Drop.BODY_TOO_LARGE)
        host = request.header("host")
        return Exchange(
            time=request.ts,
            source=Peer(ip=client[0], port=client[1]),
            destination=Peer(ip=server[0] if server else None, port=server[1] if server else None,
                             host=host_without_port(host)),
            request=Request(headers=request.headers, body=bytes(request.body), encoded=True,
                            truncated=request.truncated, method=request.method, target=request.target),
            response=None if response is None else Response(headers=response.headers, body=bytes(response.body),
                                                            encoded=True, truncated=response.truncated,
                                                            status=response.status),
        )
