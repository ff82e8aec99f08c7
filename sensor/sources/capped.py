"""A JSON byte stream with every string cut to a bounded length, for streaming parsers that hold
each string whole (ijson does): a HAR whose one body is 500 MB is then read in bounded memory.

The stream is read a megabyte at a time. Where each string starts and ends only matters near the
cap, so most chunks cost two C-speed passes (escapes removed, quotes counted: their parity says
whether a string is still open at the chunk's end); only a chunk in which an open string could
pass the cap is scanned precisely. A cut string keeps its first `cap` bytes or more, cut on a
character and escape boundary, so the JSON stays valid and the parser never sees the rest.
"""
from __future__ import annotations

import re

CHUNK = 1 << 20

_ESCAPE = re.compile(rb"\\.", re.S)
_STRING_BODY = re.compile(rb'(?:[^"\\]++|\\.)*+', re.S)  # up to a string's closing quote
_PARTIAL_ESCAPE = re.compile(rb"(\\+)(u[0-9A-Fa-f]{0,3})?$")
_HIGH_SURROGATE = re.compile(rb"(\\+)u[dD][89abAB][0-9A-Fa-f]{2}$")
_TAIL_ESCAPE = re.compile(rb"\\(?:u[0-9A-Fa-f]{0,3})?$")
_TAIL_HIGH_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9A-Fa-f]{2}$")


def _unfinished(chunk: bytes) -> int:
    """How many bytes at the chunk's end begin an escape, a surrogate pair or a UTF-8 character
    that the next chunk completes: they go with the next chunk, so that a string is never cut
    inside one."""
    keep = len(chunk)
    while keep:
        tail = _unfinished_unit(chunk, keep)
        if not tail:
            break
        keep -= tail
    return len(chunk) - keep


def _unfinished_unit(chunk: bytes, end: int) -> int:
    for pattern in (_TAIL_ESCAPE, _TAIL_HIGH_SURROGATE):  # \u00, or \ud83d whose pair comes next
        m = pattern.search(chunk, max(0, end - 6), end)
        if m:
            before = chunk[:m.start()]
            if (len(before) - len(before.rstrip(b"\\"))) % 2 == 0:  # the backslash is not itself escaped
                return end - m.start()
    for back in range(1, min(4, end) + 1):
        byte = chunk[end - back]
        if byte & 0xC0 != 0x80:  # not a continuation byte: ASCII, or the lead byte of a character
            need = 1 if byte < 0xC0 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return back if need > back else 0
    return 0


def _safe_cut(data: bytes, at: int) -> bytes:
    """data[:at], backed off so that it ends neither inside a UTF-8 character nor inside an escape."""
    while 0 < at < len(data) and data[at] & 0xC0 == 0x80:
        at -= 1
    piece = data[:at]
    m = _PARTIAL_ESCAPE.search(piece)
    if m and len(m.group(1)) % 2:  # a lone backslash, or \u with its digits cut off
        piece = piece[:m.end(1) - 1]
    m = _HIGH_SURROGATE.search(piece)
    if m and (len(m.group(1)) % 2):  # the first half of a pair whose second half was cut off
        piece = piece[:m.end(1) - 1]
    return piece


class CappedStrings:
    """A file-like object over `raw` (binary) whose JSON strings are at most about `cap` bytes."""

    def __init__(self, raw, cap: int):
        self.raw, self.cap = raw, max(cap, 2 * CHUNK)
        # Strings up to `kept` bytes (escaped) are never cut, and a cut one keeps at least that
        # many: the length of a string opened inside a chunk is estimated as the chunk's, and a
        # cut backs off to the start of an escape, a surrogate pair or a character.
        self.kept = self.cap - CHUNK - 24
        self.in_string = False
        self.run = 0  # bytes of the open string so far (an upper bound)
        self.skipping = False  # past the cap: drop bytes until the string closes
        self.carry = b""  # the start of an escape or a character that the next chunk completes
        self.out = bytearray()
        self.cut = 0  # strings cut

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self.out) < size) and self._fill():
            pass
        n = len(self.out) if size < 0 else min(size, len(self.out))
        data = bytes(self.out[:n])
        del self.out[:n]
        return data

    def _fill(self) -> bool:
        chunk = self.raw.read(CHUNK)
        if not chunk:
            self.out += self.carry
            self.carry = b""
            return False
        chunk = self.carry + chunk
        keep = len(chunk) - _unfinished(chunk)
        chunk, self.carry = chunk[:keep], chunk[keep:]
        self._chunk(chunk)
        return True

    def _chunk(self, chunk: bytes) -> None:
        if self.in_string and (self.skipping or self.run + len(chunk) > self.cap):
            end = _STRING_BODY.match(chunk).end()  # the closing quote, or the chunk's end
            if not self.skipping:
                room = self.cap - self.run
                if end <= room:  # it closes before the cap after all
                    self.out += chunk[:end]
                else:
                    self.out += _safe_cut(chunk, room)
                    self.skipping = True
                    self.cut += 1
            if end == len(chunk):
                self.run += len(chunk)
                return
            self.out += b'"'
            self.in_string = self.skipping = False
            self.run = 0
            chunk = chunk[end + 1:]  # after the closing quote: the rest is read as usual
        quotes = _ESCAPE.sub(b"", chunk).count(b'"')
        self.out += chunk
        if quotes == 0:
            if self.in_string:
                self.run += len(chunk)
            return
        if quotes % 2:
            self.in_string = not self.in_string
        self.run = len(chunk) if self.in_string else 0  # the open string started within this chunk
