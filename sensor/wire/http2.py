"""HTTP/2 in cleartext (h2c), sans-I/O: the two byte streams of one connection in, one
(request, response) pair of http1.Message per stream out, so the rest of the sensor sees HTTP/2
exchanges as it sees HTTP/1.x ones.

Frames are read with hyperframe and header blocks decoded with hpack, one decoder per direction
(HPACK's dynamic table is per direction). A capture that starts inside a connection cannot know
the table: blocks that refer to entries made before it are counted as unreadable, and the
stream's body is still read. Bounded: open streams per connection, a header block's size, and
each body (max_body_bytes, the rest counted).
"""
from __future__ import annotations

from hpack import Decoder
from hpack.exceptions import HPACKError
from hyperframe.exceptions import HyperframeError
from hyperframe.frame import ContinuationFrame, Frame, HeadersFrame, PushPromiseFrame, RstStreamFrame

from ..model import Drop
from .http1 import BodyBudget, Message

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_HEADER_BLOCK = 256 << 10  # a header block's encoded bytes (with its CONTINUATIONs)
MAX_HEADER_LIST = 256 << 10  # ... and decoded: an HPACK bomb stops here
MAX_STREAMS = 1000  # streams open at once on a connection (servers allow 100 to a few hundred)
_PARSED = (1, 3, 5, 9)  # HEADERS, RST_STREAM, PUSH_PROMISE, CONTINUATION: read with hyperframe


def _table_neutral(block: bytes) -> bool:
    """Does the block leave HPACK's dynamic table as it was? True when its fields are all indexed
    (RFC 7541 6.1) or literals without indexing or never indexed (6.2.2, 6.2.3); false for a
    literal with incremental indexing (6.2.1), a table size update (6.3), or bytes that end early."""
    i, n = 0, len(block)
    while i < n:
        b = block[i]
        if b & 0x80:
            i = _skip_int(block, i, 7)
        elif b & 0xC0 == 0x40 or b & 0xE0 == 0x20:
            return False
        else:
            named = b & 0x0F == 0  # a literal name follows the prefix
            i = _skip_int(block, i, 4)
            for _ in range(2 if named else 1):
                if i >= n:
                    return False
                length, i = _int(block, i, 7)
                i += length
        if i > n:
            return False
    return True


def _int(block: bytes, i: int, bits: int) -> tuple[int, int]:
    """An HPACK prefix integer at `i`: (value, index after it)."""
    mask = (1 << bits) - 1
    value = block[i] & mask
    i += 1
    if value < mask:
        return value, i
    shift = 0
    while i < len(block):
        b = block[i]
        i += 1
        value += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return value, i


def _skip_int(block: bytes, i: int, bits: int) -> int:
    return _int(block, i, bits)[1]


class _Stream:
    __slots__ = ("request", "response", "done")

    def __init__(self):
        self.request: Message | None = None
        self.response: Message | None = None
        self.done = {True: False, False: False}  # END_STREAM seen, by is_request


class H2Connection:
    def __init__(self, stats, client, max_body: int, max_streams: int = MAX_STREAMS, upgraded: Message | None = None,
                 budget: BodyBudget | None = None):
        self.stats, self.client, self.max_body, self.max_streams = stats, client, max_body, max_streams
        self.budget = budget or BodyBudget(1 << 62)  # shared with every parser of the capture
        self.buffers: dict = {}
        self.preface = {client: True}  # the client opens with the preface, also after an upgrade
        self.decoders: dict = {}
        self.decoded: dict = {}  # sender -> {block: headers} of blocks that change no table
        self.blocks: dict = {}  # sender -> (stream id, header bytes, END_STREAM) of a block in CONTINUATIONs
        self.broken: set = set()  # directions that sent an unparseable frame: not read further
        self.streams: dict[int, _Stream] = {}
        if upgraded is not None:  # HTTP/1.1 Upgrade: h2c; the request is stream 1, its answer comes in HTTP/2
            stream = self.streams[1] = _Stream()
            stream.request, stream.done[True] = upgraded, True

    def feed(self, sender, data: bytes, ts: float) -> list[tuple[Message, Message | None]]:
        if sender in self.broken:
            return []
        buf = self.buffers.setdefault(sender, bytearray())
        buf += data
        if self.preface.get(sender):
            if len(buf) < len(PREFACE):
                return []
            if buf.startswith(PREFACE):
                del buf[:len(PREFACE)]
            self.preface[sender] = False
        out: list = []
        start = 0
        while len(buf) - start >= 9:
            length = int.from_bytes(buf[start:start + 3], "big")
            end = start + 9 + length
            if len(buf) < end:
                if length > self.max_body + MAX_HEADER_BLOCK:  # a frame larger than anything kept: garbage
                    self._break(sender)
                    return out
                break
            kind = buf[start + 3]
            if kind == 0:  # DATA, most of the bytes: read here, without a frame object
                if not self._data(sender, buf, start, length, ts, out):
                    self._break(sender)
                    return out
            elif kind in _PARSED:
                try:
                    frame, _ = Frame.parse_frame_header(memoryview(bytes(buf[start:start + 9])), strict=False)
                    frame.parse_body(memoryview(bytes(buf[start + 9:end])))
                except (HyperframeError, ValueError):
                    self._break(sender)
                    return out
                self._frame(sender, frame, ts, out)
            # SETTINGS, PING, WINDOW_UPDATE, PRIORITY, GOAWAY and unknown types say nothing of the data
            start = end
        del buf[:start]
        return out

    def _data(self, sender, buf: bytearray, start: int, length: int, ts: float, out: list) -> bool:
        flags, stream_id = buf[start + 4], int.from_bytes(buf[start + 5:start + 9], "big") & 0x7FFFFFFF
        if not stream_id:
            return False
        body_start, body_end = start + 9, start + 9 + length
        if flags & 0x8:  # PADDED
            if not length or buf[body_start] >= length:
                return False
            body_end -= buf[body_start]
            body_start += 1
        if self.blocks.pop(sender, None) is not None:  # a header block cut off by DATA: its headers are lost
            self.stats.drop(Drop.H2_HEADERS_UNREADABLE)
        is_request = sender == self.client
        msg = self._message(stream_id, is_request, ts)
        if msg is not None:
            if not msg.body_too_large:
                n = body_end - body_start
                if len(msg.body) + n > self.max_body or not self.budget.take(n):
                    msg.body_too_large = True  # counted with its exchange, as HTTP/1.x bodies are
                    self.budget.give(len(msg.body))
                    msg.body.clear()
                else:
                    msg.body += buf[body_start:body_end]
            if flags & 0x1:  # END_STREAM
                self._end(stream_id, is_request, out)
        return True

    def _release(self, stream: _Stream) -> None:
        """The stream's messages leave the connection: their bodies no longer count as held."""
        for msg in (stream.request, stream.response):
            if msg is not None:
                self.budget.give(len(msg.body))

    def close(self) -> list[tuple[Message, Message | None]]:
        """The connection ended: streams still open are reported as they are, cut short."""
        out = []
        for stream in self.streams.values():
            self._release(stream)
            if stream.request is not None:
                for msg in (stream.request, stream.response):
                    if msg is not None and not stream.done[msg.is_request]:
                        msg.truncated = True
                out.append((stream.request, stream.response))
        self.streams.clear()
        return out

    def lost(self, sender) -> None:
        """The capture lost bytes of `sender`'s direction (a TCP gap, counted there): frame
        boundaries are gone, so that direction is not read further; its open messages are cut."""
        self.broken.add(sender)
        self.buffers.pop(sender, None)
        for stream in self.streams.values():
            msg = stream.request if sender == self.client else stream.response
            if msg is not None:
                msg.truncated = True

    # --- frames ---------------------------------------------------------------------------
    def _break(self, sender) -> None:
        self.stats.drop(Drop.H2_FRAME_ERROR)
        self.broken.add(sender)
        self.buffers.pop(sender, None)

    def _frame(self, sender, frame, ts: float, out: list) -> None:
        is_request = sender == self.client
        pending = self.blocks.get(sender)
        if pending is not None and not isinstance(frame, ContinuationFrame):
            self.blocks.pop(sender)  # a block cut off: its headers are lost
            self.stats.drop(Drop.H2_HEADERS_UNREADABLE)
            pending = None
        if isinstance(frame, (HeadersFrame, PushPromiseFrame)):
            block = (frame.stream_id, bytearray(frame.data), "END_STREAM" in frame.flags, isinstance(frame, PushPromiseFrame))
            if "END_HEADERS" in frame.flags:
                self._headers(sender, is_request, *block, ts, out)
            else:
                self.blocks[sender] = block
        elif isinstance(frame, ContinuationFrame) and pending is not None:
            pending[1].extend(frame.data)
            if len(pending[1]) > MAX_HEADER_BLOCK:
                self.blocks.pop(sender)
                self.stats.drop(Drop.H2_HEADERS_UNREADABLE)
                self.decoders.pop(sender, None)  # its table now differs from the sender's: later blocks may fail too
            elif "END_HEADERS" in frame.flags:
                self.blocks.pop(sender)
                self._headers(sender, is_request, *pending, ts, out)
        elif isinstance(frame, RstStreamFrame):
            stream = self.streams.pop(frame.stream_id, None)
            if stream is not None:
                self._release(stream)
            if stream is not None and stream.request is not None:
                for msg in (stream.request, stream.response):
                    if msg is not None and not stream.done[msg.is_request]:
                        msg.truncated = True
                out.append((stream.request, stream.response))

    def _headers(self, sender, is_request, stream_id, block, end_stream, promise, ts, out) -> None:
        headers = self._decode(sender, bytes(block))
        if headers is None:
            self.stats.drop(Drop.H2_HEADERS_UNREADABLE)
        if promise:
            return  # a server push's request headers: decoded only to keep the table in step
        msg = self._message(stream_id, is_request, ts)
        if msg is None:
            return
        if headers is not None:
            if msg.method or msg.status:  # a second block: trailers (grpc-status, grpc-message)
                msg.headers += [(k, v) for k, v in headers if not k.startswith(":")]
            else:
                self._pseudo(msg, headers)
        if end_stream:
            self._end(stream_id, is_request, out)

    def _decode(self, sender, block: bytes):
        """The header list of a block, or None. A block that adds nothing to the table decodes the
        same way for as long as the table does not change: gRPC and API clients send the same few
        blocks over and over, and decoding is the costly part of reading HTTP/2."""
        decoder = self.decoders.get(sender)
        if decoder is None:
            decoder = self.decoders[sender] = Decoder(max_header_list_size=MAX_HEADER_LIST)
            decoder.max_allowed_table_size = 1 << 16
            self.decoded[sender] = {}
        cache = self.decoded[sender]
        headers = cache.get(block)
        if headers is not None:
            return headers
        try:
            headers = decoder.decode(block, raw=False)
        except (HPACKError, ValueError, UnicodeDecodeError, IndexError):
            cache.clear()  # the table may have changed part way: what was cached may mean other entries
            return None
        if _table_neutral(block):
            if len(cache) >= 256:
                cache.clear()
            cache[block] = headers
        else:
            cache.clear()  # the table changed: indices now mean other entries
        return headers

    @staticmethod
    def _pseudo(msg: Message, headers) -> None:
        for name, value in headers:
            if name == ":method":
                msg.method = value
            elif name == ":path":
                msg.target = value
            elif name == ":authority":
                msg.headers.append(("host", value))
            elif name == ":status":
                msg.status = int(value) if value.isdigit() else 0
            elif not name.startswith(":"):
                msg.headers.append((name, value))

    def _message(self, stream_id: int, is_request: bool, ts: float) -> Message | None:
        stream = self.streams.get(stream_id)
        if stream is None:
            if len(self.streams) >= self.max_streams:
                self.stats.drop(Drop.H2_TOO_MANY_STREAMS)
                return None
            stream = self.streams[stream_id] = _Stream()
        if is_request:
            if stream.request is None:
                stream.request = Message(is_request=True, ts=ts)
            return stream.request
        if stream.response is None:
            stream.response = Message(is_request=False, ts=ts)
        return stream.response

    def _end(self, stream_id: int, is_request: bool, out: list) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        stream.done[is_request] = True
        if stream.done[False]:  # the response is complete: the exchange is
            del self.streams[stream_id]
            self._release(stream)
            if stream.request is None:  # joined mid-stream: the request was before the capture
                self.stats.drop(Drop.ORPHAN_RESPONSE)
                return
            out.append((stream.request, stream.response))
