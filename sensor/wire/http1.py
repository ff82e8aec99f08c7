"""HTTP/1.x message parsing as a sans-I/O engine, one parser per direction of a connection.

Bytes in, Messages out: keep-alive and pipelining, Content-Length, chunked bodies with
trailers, close-delimited bodies, HEAD and 1xx/204/304 without bodies, interim 100
Continue, 101 upgrades, and resynchronisation after garbage or a capture gap (the parser
skips to the next line that starts a request or a response). Bodies beyond `max_body`
are not kept: the message still comes out, marked `body_too_large`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..model import METHODS, Drop, Skip, header_value
from .tcp import MOD, seq_diff

_METHODS = "|".join(sorted(METHODS)).encode()
_REQUEST_LINE = re.compile(
    rb"(" + _METHODS + rb") "
    rb"(\S+) HTTP/1\.[01]\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})(?: [^\r\n]*)?\r?\n")
# Where a message may start after garbage or a gap: a whole request line or status line.
# (Not only after a newline: a pipelined request follows the previous body directly.)
_START = re.compile(
    rb"(?:" + _METHODS + rb")"
    rb" (?:/|https?://|\*)\S* HTTP/1\.[01]\r?\n|HTTP/1\.[01] [1-5]\d\d[ \r\n]")
RESYNC_TAIL = 4096  # bytes kept while resynchronising: a start line may straddle two segments
_HEAD_END = re.compile(rb"\r?\n\r?\n")


@dataclass(slots=True)
class Message:
    is_request: bool
    ts: float
    method: str = ""
    target: str = field(default="", repr=False)  # values of the traffic never print
    status: int = 0
    headers: list = field(default_factory=list, repr=False)
    body: bytearray = field(default_factory=bytearray, repr=False)
    body_too_large: bool = False
    truncated: bool = False  # a capture gap or the end of the stream cut it short
    # Where the message sits in its TCP stream (None without sequence numbers): its first byte,
    # the byte after its last, and the acknowledgement its first segment carried, i.e. how much
    # of the other direction its sender had received when it began. Pairing relies on these.
    start_seq: int | None = None
    end_seq: int | None = None
    ack: int | None = None

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


class BodyBudget:
    """The bytes of bodies all the parsers of a capture hold at once, bounded together: many
    connections each mid-way through a large body must not add up past the sensor's memory."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0

    def take(self, n: int) -> bool:
        if self.used + n > self.limit:
            return False
        self.used += n
        return True

    def give(self, n: int) -> None:
        self.used -= n


class Parser:
    """One direction of one connection. `method_hint()` gives the method of the request that
    the next response answers (HEAD responses have no body)."""

    def __init__(self, stats, max_body: int = 1 << 20, method_hint=lambda: None, max_head: int = 64 * 1024,
                 budget: BodyBudget | None = None):
        self.stats, self.max_body, self.method_hint, self.max_head = stats, max_body, method_hint, max_head
        self.budget = budget or BodyBudget(1 << 62)
        self.buf = bytearray()
        self.pos: int | None = None  # stream sequence number of buf[0]
        self.acks: list[tuple[int, int | None]] = []  # (sequence number, ack) of the segments in buf
        self.state = "start"  # start | body_length | chunk_size | chunk_data | chunk_crlf | trailers | body_close | upgraded
        self.leftover: bytes | None = None  # after a 101: the bytes that followed it
        self.switched: Message | None = None  # the 101 response itself
        self.msg: Message | None = None
        self.remaining = 0
        self.ts = 0.0

    # --- input -------------------------------------------------------------

    def feed(self, data: bytes, ts: float, seq: int | None = None, ack: int | None = None) -> list[Message]:
        if self.state == "upgraded":
            return []
        if not self.buf:
            self.ts = ts
            self.pos, self.acks = seq, []
        if seq is not None:
            self.acks.append((seq, ack))
        self.buf += data
        return self._run(ts)

    def gap(self, size: int) -> list[Message]:
        """`size` bytes of the stream were never captured."""
        out = []
        if self.state == "body_length" and self.msg is not None:
            self.msg.truncated = True
            if size < self.remaining:
                self.remaining -= size
                return out
            out.append(self._finish())
        elif self.state in ("chunk_size", "chunk_data", "chunk_crlf", "trailers") and self.msg is not None:
            self.msg.truncated = True
            out.append(self._finish())
        elif self.state == "body_close" and self.msg is not None:
            self.msg.truncated = True
            return out
        self.buf.clear()
        self.state = "start"
        self.msg = None
        return out

    def close(self) -> list[Message]:
        """The stream ended: a close-delimited body is complete, anything else is cut short."""
        out = []
        if self.msg is not None and self.state not in ("start", "upgraded"):
            if self.state != "body_close":
                self.msg.truncated = True
                self.stats.drop(Drop.INCOMPLETE_MESSAGE)
            out.append(self._finish())
        elif self.state == "start" and self.buf.strip():
            self.stats.drop(Drop.INCOMPLETE_MESSAGE)
        self.buf.clear()
        return out

    # --- the engine ----------------------------------------------------------

    def _run(self, ts: float) -> list[Message]:
        out = []
        while True:
            if self.state == "start":
                msg = self._head(ts)
                if msg is None:
                    return out
                if msg is not True:
                    out.append(msg)
            elif self.state == "body_length":
                if not self._take_body():
                    return out
                out.append(self._finish())
            elif self.state == "body_close":
                self._keep(self.buf)
                self._consume(len(self.buf))
                return out
            elif self.state == "chunk_size":
                end = self.buf.find(b"\n")
                if end < 0:
                    if len(self.buf) > 1024:
                        self._garbage()
                    return out
                line = bytes(self.buf[:end]).split(b";", 1)[0].strip()
                self._consume(end + 1)
                try:
                    size = int(line, 16)
                except ValueError:
                    self._garbage(drop_byte=False)  # the bad line is already consumed
                    continue
                if size == 0:
                    self.state = "trailers"
                else:
                    self.remaining, self.state = size, "chunk_data"
            elif self.state == "chunk_data":
                if not self._take_body():
                    return out
                self.state = "chunk_crlf"
            elif self.state == "chunk_crlf":
                if len(self.buf) < 2 and not self.buf.startswith(b"\n"):
                    return out
                self._consume(2 if self.buf.startswith(b"\r\n") else 1)
                self.state = "chunk_size"
            elif self.state == "trailers":
                end = self.buf.find(b"\n")
                if end < 0:
                    return out
                line = bytes(self.buf[:end]).strip()
                self._consume(end + 1)
                if not line:
                    out.append(self._finish())
                elif b":" in line:
                    k, v = line.split(b":", 1)
                    self.msg.headers.append((k.decode("latin-1").strip(), v.decode("latin-1").strip()))
            else:  # upgraded: the rest of the stream is not HTTP/1.x
                self.buf.clear()
                return out

    def _head(self, ts: float):
        """Parse a start line and headers. None: need more bytes. True: consumed, no message yet."""
        if not self.buf:
            return None
        if not (_REQUEST_LINE.match(self.buf) or _STATUS_LINE.match(self.buf)):
            if _could_start(self.buf):
                return None  # the start of a start line: wait for the rest
            m = _START.search(self.buf, 1)
            if m is None:
                if len(self.buf) > RESYNC_TAIL:
                    self.stats.drop(Drop.HTTP_GARBAGE)
                    self._consume(len(self.buf) - RESYNC_TAIL)
                return None
            self.stats.skip(Skip.HTTP_RESYNC)
            self._consume(m.start())
            return True
        end = _HEAD_END.search(self.buf)
        if end is None:
            if len(self.buf) > self.max_head:
                self._garbage()
                return True
            return None
        head = bytes(self.buf[: end.start()])
        start_seq, ack = self.pos, self._ack_at_pos()
        self._consume(end.end())
        lines = head.split(b"\n")
        start = lines[0].rstrip(b"\r")
        msg = Message(is_request=not start.startswith(b"HTTP/"), ts=self.ts or ts, start_seq=start_seq, ack=ack)
        if msg.is_request:
            method, target, _ = start.split(b" ", 2)
            msg.method, msg.target = method.decode(), target.decode("latin-1")
        else:
            msg.status = int(start[9:12])
        for line in lines[1:]:
            line = line.rstrip(b"\r")
            if line[:1] in (b" ", b"\t") and msg.headers:  # obsolete line folding
                k, v = msg.headers[-1]
                msg.headers[-1] = (k, v + " " + line.strip().decode("latin-1"))
            elif b":" in line:
                k, v = line.split(b":", 1)
                msg.headers.append((k.decode("latin-1").strip(), v.decode("latin-1").strip()))
        self.msg = msg
        self.ts = ts
        return self._body_framing(msg)

    def _body_framing(self, msg: Message):
        te = (msg.header("transfer-encoding") or "").lower()
        length = msg.header("content-length")
        if not msg.is_request:
            if 100 <= msg.status < 200:
                self.msg = None
                if msg.status == 101:
                    self.state = "upgraded"
                    self.leftover = bytes(self.buf)  # the new protocol's first bytes (HTTP/2 after h2c)
                    self.switched = msg  # its headers say what was agreed (WebSocket extensions)
                return True  # interim response: not a message of its own
            if self.method_hint() == "HEAD" or msg.status in (204, 304):
                return self._finish()
        if "chunked" in te:
            self.state = "chunk_size"
            return True
        if length is not None:
            try:
                n = int(length.split(",")[0].strip())
            except ValueError:
                n = -1
            if n < 0:
                self.stats.drop(Drop.PARSE_ERROR)
                return self._finish()
            if n == 0:
                return self._finish()
            self.remaining, self.state = n, "body_length"
            return True
        if msg.is_request:
            return self._finish()
        self.state = "body_close"  # a response without framing runs until the connection closes
        return True

    def _take_body(self) -> bool:
        """Move up to `remaining` body bytes out of the buffer; True once all have arrived."""
        take = min(self.remaining, len(self.buf))
        self._keep(self.buf[:take])
        self._consume(take)
        self.remaining -= take
        return not self.remaining

    def _keep(self, chunk) -> None:
        msg = self.msg
        if msg.body_too_large:
            return
        if len(msg.body) + len(chunk) > self.max_body or not self.budget.take(len(chunk)):
            msg.body_too_large = True  # counted as body_too_large with its exchange
            self.budget.give(len(msg.body))
            msg.body.clear()
            return
        msg.body += chunk

    def _consume(self, n: int) -> None:
        """Drop the first n bytes of the buffer, keeping track of where the buffer now starts."""
        del self.buf[:n]
        if self.pos is not None:
            self.pos = (self.pos + n) % MOD
            while len(self.acks) > 1 and seq_diff(self.acks[1][0], self.pos) <= 0:
                del self.acks[0]

    def _ack_at_pos(self) -> int | None:
        """The ack of the segment that carried the byte at the start of the buffer."""
        return self.acks[0][1] if self.acks and self.pos is not None else None

    def _finish(self) -> Message:
        msg, self.msg = self.msg, None
        if msg is not None:
            msg.end_seq = self.pos
            self.budget.give(len(msg.body))  # the body leaves the parser with its message
        self.state = "start"
        self.ts = 0.0
        return msg

    def _garbage(self, drop_byte: bool = True) -> None:
        """Give up on the message being parsed and look for the next start line."""
        self.stats.drop(Drop.HTTP_GARBAGE)
        if self.msg is not None:
            self.budget.give(len(self.msg.body))
        self.msg = None
        self.state = "start"
        if drop_byte:
            self._consume(1)


_PARTIAL_START = re.compile(rb"(?:[A-Z]{3,9} (?:/|https?://|\*)[^\s]*(?: H(?:T(?:T(?:P(?:/(?:1(?:\.[01]?)?)?)?)?)?)?)?|H(?:T(?:T(?:P(?:/(?:1(?:\.(?:[01](?: \d{0,3})?)?)?)?)?)?)?)?)\r?")


def _could_start(buf: bytearray) -> bool:
    """Is the whole buffer the beginning of a start line still arriving? ('POST /v1/us')"""
    return len(buf) < 8192 and _PARTIAL_START.fullmatch(bytes(buf)) is not None
