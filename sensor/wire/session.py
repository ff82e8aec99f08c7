"""Frames in, Exchanges out: link layer -> IP -> TCP reassembly -> HTTP/1.x -> request/response pairs.

One CaptureSession serves a capture file or a live interface; it holds no sockets.
"""
from __future__ import annotations

from collections import deque

from ..config import Config
from ..model import Drop, Exchange, Peer, Request, Response, host_without_port
from . import http1
from .http2 import PREFACE, H2Connection
from .websocket import WsConnection
from .packets import Defragmenter, Unsupported, network_layer, tcp_segment
from .tcp import Closed, Data, Gap, Reassembler, seq_diff

MAX_EARLY = 16  # responses held while the requests they may answer are still arriving


class HttpConnection:
    """The two directions of one TCP connection: requests and responses paired in order.

    Without loss, each response answers the oldest unanswered request (HTTP/1.x keeps order).
    Once the capture has lost bytes of the connection, a response is paired only when TCP agrees:
    its first segment acknowledges the client's stream exactly up to the end of the request (the
    server had that request, and no later one, when it began). Requests that such a response
    skips lost their responses to a gap: they are reported without one and counted. A response
    that matches no request is counted and dropped, never joined with a neighbour's request."""

    def __init__(self, session: "CaptureSession", key: tuple):
        self.key = key
        self.pending: deque[tuple[http1.Message, tuple]] = deque()  # (request, client endpoint)
        self.early: deque[tuple[http1.Message, tuple]] = deque()  # (response, server endpoint) not yet paired
        self.parsers: dict[tuple, http1.Parser] = {}
        self.lossy = False  # the capture lost bytes of this connection: acknowledgements decide
        self.session = session
        self.h2: H2Connection | None = None  # once the connection speaks HTTP/2
        self.ws: WsConnection | None = None  # once it speaks WebSocket
        self.ws_request: http1.Message | None = None  # the request that opened the WebSocket
        self.switched: list = []  # (request, response, client, server) of HTTP/2 streams and WebSocket messages

    def parser(self, sender) -> http1.Parser:
        p = self.parsers.get(sender)
        if p is None:
            p = self.parsers[sender] = http1.Parser(
                self.session.stats, self.session.max_body, lambda: self.pending[0][0].method if self.pending else None,
                self.session.max_head, self.session.bodies)
        return p

    def feed(self, sender, data: bytes, ts: float, seq: int, ack: int | None) -> None:
        if self.h2 is None and sender not in self.parsers and self._opens_h2(sender, data):
            client = sender if data.startswith(PREFACE) else self._other(sender)
            self.h2 = H2Connection(self.session.stats, client, self.session.max_body,  # prior knowledge
                                    budget=self.session.bodies)
            for other, parser in list(self.parsers.items()):  # the server's SETTINGS may come first
                if parser.msg is None and not self.pending and not self.early:
                    del self.parsers[other]
                    self._h2(self.h2.feed(other, bytes(parser.buf), ts))
        if self.h2 is not None:
            self._h2(self.h2.feed(sender, data, ts))
            return
        if self.ws is not None:
            self._ws(self.ws.feed(sender, data), ts)
            return
        parser = self.parser(sender)
        self._queue(sender, parser.feed(data, ts, seq, ack))
        if parser.state == "upgraded" and parser.leftover is not None:
            self._upgrade(sender, parser)

    def _opens_h2(self, sender, data: bytes) -> bool:
        """The client's connection preface, or a server's SETTINGS frame as the first bytes it sends
        (an HTTP/2 server speaks first, before the client's preface arrives or even if it never does)."""
        if data.startswith(PREFACE):
            return True
        return len(data) >= 9 and data[3] == 4 and data[4] == 0 and data[5:9] == b"\0\0\0\0" and \
            int.from_bytes(data[:3], "big") % 6 == 0

    def _other(self, endpoint):
        return self.key[1] if self.key[0] == endpoint else self.key[0]

    def _upgrade(self, server, parser) -> None:
        """A 101: an `Upgrade: h2c` request becomes stream 1 of HTTP/2; an `Upgrade: websocket`
        one opens a WebSocket. Either way both directions speak the new protocol from here, the
        server's bytes after the 101 first. Other protocols are not read."""
        client = next((c for _, c in self.pending), None)
        request = next((r for r, _ in self.pending if (r.header("upgrade") or "").lower() in ("h2c", "websocket")), None)
        leftover, parser.leftover = bytes(parser.leftover), None
        if request is None or client is None:
            return
        self.pending = deque((r, c) for r, c in self.pending if r is not request)
        client_parser = self.parsers.get(client)
        early = bytes(client_parser.buf) if client_parser is not None else b""  # sent before the 101 arrived
        if request.header("upgrade").lower() == "h2c":
            self.h2 = H2Connection(self.session.stats, client, self.session.max_body, upgraded=request,
                                    budget=self.session.bodies)
            for sender, data in ((client, early), (server, leftover)):
                if data:
                    self._h2(self.h2.feed(sender, data, request.ts))
            return
        extensions = ((parser.switched.header("sec-websocket-extensions") if parser.switched else None) or "").lower()
        no_context = tuple(e for e, flag in ((client, "client_no_context_takeover"), (server, "server_no_context_takeover"))
                           if flag in extensions)
        self.ws = WsConnection(self.session.stats, client, self.session.max_body, "permessage-deflate" in extensions,
                               no_context, self.session.bodies)
        self.ws_request = request
        for sender, data in ((client, early), (server, leftover)):
            if data:
                self._ws(self.ws.feed(sender, data), request.ts)

    def _ws(self, messages, ts: float) -> None:
        """Each WebSocket message as an exchange: client messages as the request's body, server
        messages as the response's (SPEC.md section 8), under the path that opened the socket."""
        opened = self.ws_request
        host = [(k, v) for k, v in opened.headers if k.lower() == "host"]
        server = self._other(self.ws.client)
        for from_client, _opcode, payload, cut in messages:
            request = http1.Message(is_request=True, ts=ts, method=opened.method, target=opened.target, headers=host)
            response = None
            if from_client:
                request.body, request.truncated = bytearray(payload), cut
            else:
                response = http1.Message(is_request=False, ts=ts, status=101, body=bytearray(payload), truncated=cut)
            self.switched.append((request, response, self.ws.client, server))

    def _h2(self, pairs) -> None:
        server = self._other(self.h2.client)
        for request, response in pairs:
            self.switched.append((request, response, self.h2.client, server))

    def gap(self, sender, size: int) -> None:
        if self.h2 is not None or self.ws is not None:  # frames cannot be found again after a hole
            (self.h2 or self.ws).lost(sender)
            return
        self.lossy = True
        self._queue(sender, self.parser(sender).gap(size))

    def _queue(self, sender, messages) -> None:
        for msg in messages:
            (self.pending if msg.is_request else self.early).append((msg, sender))

    def settle(self, out: list, final: bool = False) -> None:
        """Pair the oldest waiting response while it can be paired for sure. Called once all the
        bytes a packet released are parsed, so requests held behind a hole are seen first."""
        while self.switched:
            request, response, client, server = self.switched.pop(0)
            out.append(self.session.exchange(request, response, client, server))
        stats = self.session.stats
        while self.early:
            response, server = self.early[0]
            if not self.pending:
                if not final and self._request_in_progress(server) and len(self.early) <= MAX_EARLY:
                    return  # reordered across directions: its request is still arriving
                self.early.popleft()
                stats.drop(Drop.ORPHAN_RESPONSE)  # its request was before the capture began, or lost
                continue
            match = 0 if not self.lossy else self._answered_by(response)
            if match is None:
                last = self.pending[-1][0]
                beyond = response.ack is not None and last.end_seq is not None and seq_diff(response.ack, last.end_seq) > 0
                if beyond and not final and self._request_in_progress(server) and len(self.early) <= MAX_EARLY:
                    return  # it acknowledges more than the requests seen so far: its request may still come
                self.early.popleft()
                stats.drop(Drop.ORPHAN_RESPONSE)  # no request it surely answers
                continue
            for _ in range(match):  # older requests whose responses fell into a gap
                request, client = self.pending.popleft()
                stats.drop(Drop.RESPONSE_LOST)
                out.append(self.session.exchange(request, None, client, server))
            self.early.popleft()
            request, client = self.pending.popleft()
            out.append(self.session.exchange(request, response, client, server))

    def _answered_by(self, response) -> int | None:
        """The index of the pending request `response` acknowledges exactly, or None. A request cut
        by a gap ends somewhere between its last captured byte and the start of what follows it."""
        ack = response.ack
        if ack is None:
            return None
        for i, (request, client) in enumerate(self.pending):
            if request.end_seq is None or seq_diff(ack, request.end_seq) < 0:
                return None  # acknowledgements only grow: no later request can match either
            if not request.truncated:
                if request.end_seq == ack:
                    return i
                continue
            following = self.pending[i + 1][0].start_seq if i + 1 < len(self.pending) else self._stream_end(client)
            if following is not None and seq_diff(following, ack) >= 0:
                return i
        return None

    def _stream_end(self, client) -> int | None:
        """Where the client's stream stands: the start of a request still arriving, else the end of
        what was captured."""
        parser = self.parsers.get(client)
        if parser is None or parser.pos is None:
            return None
        if parser.msg is not None:
            return parser.msg.start_seq
        return (parser.pos + len(parser.buf)) % (1 << 32)

    def _request_in_progress(self, server) -> bool:
        """Is a request from the other side still arriving (parsed in part, or held out of order)?"""
        if any(p.msg is not None or p.buf for s, p in self.parsers.items() if s != server):
            return True
        tcp = self.session.tcp.connections.get(self.key)
        return tcp is not None and any(h.pending for s, h in tcp.halves.items() if s != server)

    def close(self, out: list) -> None:
        if self.h2 is not None:
            self._h2(self.h2.close())
        for sender, parser in self.parsers.items():
            self._queue(sender, parser.close())
        self.settle(out, final=True)
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
        self.bodies = http1.BodyBudget(config.max_bodies_buffered)
        self.defrag = Defragmenter(config.max_fragment_datagrams, timeout=config.fragment_timeout)
        self.tcp = Reassembler(stats, config.max_connections, config.max_stream_buffer, config.idle_timeout,
                               config.max_buffered)
        self.http: dict[tuple, HttpConnection] = {}
        self.bytes = 0

    def frame(self, linktype: int, frame: bytes, ts: float) -> list[Exchange]:
        """One captured frame; the Exchanges it completes."""
        self.stats.packets += 1
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
        touched: dict[tuple, HttpConnection] = {}
        for ev in events:
            if isinstance(ev, Data):
                conn = self.http.get(ev.conn)
                if conn is None:
                    conn = self.http[ev.conn] = HttpConnection(self, ev.conn)
                conn.feed(ev.sender, ev.data, ev.ts, ev.seq, ev.ack)
                touched[ev.conn] = conn
            elif isinstance(ev, Gap):
                conn = self.http.get(ev.conn)
                if conn is not None:
                    conn.gap(ev.sender, ev.size)
                    touched[ev.conn] = conn
            elif isinstance(ev, Closed):
                conn = self.http.pop(ev.conn, None)
                touched.pop(ev.conn, None)
                if conn is not None:
                    conn.close(out)
        for conn in touched.values():
            conn.settle(out)
        return out

    def exchange(self, request: http1.Message, response: http1.Message | None, client, server) -> Exchange:
        return make_exchange(self.stats, request, response, client, server)


def make_exchange(stats, request: http1.Message, response: http1.Message | None, client, server) -> Exchange:
    """The Exchange of a request and its response as a parser made them, between two (ip, port)."""
    for msg in (request, response):
        if msg is not None and msg.body_too_large:
            stats.drop(Drop.BODY_TOO_LARGE)
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
