"""WebSocket (RFC 6455) after an HTTP/1.1 upgrade, sans-I/O: the two byte streams in, whole
messages out (client frames unmasked, fragments joined, permessage-deflate undone with one
inflater per direction, as RFC 7692's context takeover needs). Control frames are skipped.
Bounded: a message beyond `max_message` is cut and counted; a frame header that cannot be one
stops that direction of the connection and is counted."""
from __future__ import annotations

import zlib

from ..model import Drop
from .http1 import BodyBudget

_TAIL = b"\x00\x00\xff\xff"  # the deflate block end each compressed message leaves off


class _Partial:
    """A message whose fragments are still arriving."""
    __slots__ = ("opcode", "compressed", "body", "cut")

    def __init__(self, opcode: int, compressed: bool):
        self.opcode, self.compressed, self.body, self.cut = opcode, compressed, bytearray(), False


class WsConnection:
    def __init__(self, stats, client, max_message: int, deflate: bool = False, no_context: tuple = (),
                 budget: BodyBudget | None = None):
        self.stats, self.client, self.max_message = stats, client, max_message
        self.budget = budget or BodyBudget(1 << 62)  # shared with every parser of the capture
        self.deflate = deflate
        self.no_context = set(no_context)  # directions that reset their window per message
        self.buffers: dict = {}
        self.partial: dict[object, _Partial] = {}  # sender -> its fragmented message
        self.inflaters: dict = {}
        self.broken: set = set()

    def feed(self, sender, data: bytes) -> list[tuple[bool, int, bytes, bool]]:
        """(from the client, opcode: 1 text or 2 binary, payload, cut short) of each message completed."""
        if sender in self.broken:
            return []
        buf = self.buffers.setdefault(sender, bytearray())
        buf += data
        out = []
        while True:
            frame = self._frame(buf)
            if frame is None:
                break
            if frame is False:
                self.stats.drop(Drop.WS_FRAME_ERROR)
                self.broken.add(sender)
                self.buffers.pop(sender, None)
                break
            fin, rsv1, opcode, payload = frame
            message = self._message(sender, fin, rsv1, opcode, payload)
            if message is not None:
                out.append(message)
        return out

    def lost(self, sender) -> None:
        """A TCP gap in `sender`'s direction (counted there): frames cannot be found again after it."""
        self.broken.add(sender)
        self.buffers.pop(sender, None)
        if (partial := self.partial.pop(sender, None)) is not None:
            self.budget.give(len(partial.body))

    def _frame(self, buf: bytearray):
        """(fin, rsv1, opcode, unmasked payload) of the first whole frame, removed from `buf`;
        None when it is not all there; False when it cannot be a frame."""
        if len(buf) < 2:
            return None
        fin, rsv1, opcode = buf[0] & 0x80, buf[0] & 0x40, buf[0] & 0x0F
        masked, length, i = buf[1] & 0x80, buf[1] & 0x7F, 2
        if opcode not in (0, 1, 2, 8, 9, 10) or buf[0] & 0x30:
            return False
        if length == 126:
            if len(buf) < 4:
                return None
            length, i = int.from_bytes(buf[2:4], "big"), 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length, i = int.from_bytes(buf[2:10], "big"), 10
            if length >> 62:
                return False
        if opcode >= 8 and (length > 125 or not fin):
            return False
        key = b""
        if masked:
            if len(buf) < i + 4:
                return None
            key, i = bytes(buf[i:i + 4]), i + 4
        if length > 2 * self.max_message + (1 << 20):
            return False  # no message we would keep is that large: this is not a frame
        if len(buf) < i + length:
            return None
        payload = bytes(buf[i:i + length])
        del buf[:i + length]
        if key:
            payload = _unmask(payload, key)
        return bool(fin), bool(rsv1), opcode, payload

    def _message(self, sender, fin, rsv1, opcode, payload):
        if opcode >= 8:
            return None  # close, ping, pong
        if opcode != 0:
            if (previous := self.partial.get(sender)) is not None:  # a message left unfinished
                self.budget.give(len(previous.body))
            self.partial[sender] = _Partial(opcode, rsv1)
        elif sender not in self.partial:
            return None  # a continuation of a message begun before the capture
        partial = self.partial[sender]
        body = partial.body
        if not fin:  # fragments wait for the rest, held within the capture's shared budget
            if partial.cut or len(body) + len(payload) > self.max_message or not self.budget.take(len(payload)):
                partial.cut = True
            else:
                body += payload
            return None
        del self.partial[sender]
        self.budget.give(len(body))
        cut = partial.cut or len(body) + len(payload) > self.max_message
        data = bytes(body) + payload[:max(0, self.max_message - len(body))]
        first = partial.opcode
        if partial.compressed and self.deflate:
            if cut:  # part of the deflate stream is missing: the window can no longer be followed
                self.inflaters.pop(sender, None)
                data = b""
            else:
                data, cut = self._inflate(sender, data)
        if cut:
            self.stats.drop(Drop.BODY_TOO_LARGE)
        return sender == self.client, first, data, cut

    def _inflate(self, sender, data: bytes) -> tuple[bytes, bool]:
        inflater = self.inflaters.get(sender)
        if inflater is None or sender in self.no_context:
            inflater = self.inflaters[sender] = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            out = inflater.decompress(data + _TAIL, self.max_message + 1)
        except zlib.error:
            self.inflaters.pop(sender, None)  # joined mid-way (no window) or corrupt
            self.stats.drop(Drop.BAD_ENCODING)
            return b"", True
        if len(out) > self.max_message or inflater.unconsumed_tail:
            self.inflaters.pop(sender, None)  # the window is lost with what was not read
            return out[:self.max_message], True
        return out, False


def _unmask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    mask = int.from_bytes((key * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(payload, "little") ^ mask).to_bytes(n, "little")
