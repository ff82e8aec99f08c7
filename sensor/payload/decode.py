"""Body bytes -> text: Content-Encoding (gzip, deflate, br, zstd, stacked) and charset.

Decompression is capped: output beyond `max_size` raises BodyTooLarge, so a
gzip bomb costs at most `max_size` bytes of memory.
"""
from __future__ import annotations

import re
import zlib

import brotli
import zstandard

from ..model import Message


class BodyTooLarge(Exception):
    pass


class BadEncoding(Exception):
    pass


def _zlib(data: bytes, wbits: int, max_size: int) -> bytes:
    d = zlib.decompressobj(wbits)
    out = d.decompress(data, max_size + 1)
    if len(out) > max_size:
        raise BodyTooLarge()
    if not d.eof:
        raise BadEncoding("truncated stream")
    return out


def _deflate(data: bytes, max_size: int) -> bytes:
    try:  # RFC 9110 says zlib-wrapped; many servers send raw deflate
        return _zlib(data, zlib.MAX_WBITS, max_size)
    except zlib.error:
        return _zlib(data, -zlib.MAX_WBITS, max_size)


def _brotli(data: bytes, max_size: int) -> bytes:
    d = brotli.Decompressor()
    out = bytearray()
    step = 64 * 1024
    for i in range(0, len(data), step):  # feed in steps so a bomb is stopped early
        out += d.process(data[i:i + step])
        if len(out) > max_size:
            raise BodyTooLarge()
    return bytes(out)


def _zstd(data: bytes, max_size: int) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(data)
    out = reader.read(max_size + 1)
    if len(out) > max_size:
        raise BodyTooLarge()
    return out


_DECODERS = {
    "gzip": lambda d, m: _zlib(d, 16 + zlib.MAX_WBITS, m),
    "x-gzip": lambda d, m: _zlib(d, 16 + zlib.MAX_WBITS, m),
    "deflate": _deflate,
    "br": _brotli,
    "zstd": _zstd,
}


def content_decode(data: bytes, encoding_header: str | None, max_size: int) -> bytes:
    """Undo each Content-Encoding, last applied first."""
    if not encoding_header:
        return data
    for coding in reversed([c.strip().lower() for c in encoding_header.split(",") if c.strip()]):
        if coding == "identity":
            continue
        decoder = _DECODERS.get(coding)
        if decoder is None:
            raise BadEncoding(coding)
        try:
            data = decoder(data, max_size)
        except BodyTooLarge:
            raise
        except Exception as e:  # zlib.error, brotli.error, zstd errors, EOFError
            raise BadEncoding(f"{coding}: {e}") from None
    return data


_CHARSET = re.compile(r"charset\s*=\s*\"?([\w.:-]+)", re.I)


def charset(content_type: str | None) -> str | None:
    m = _CHARSET.search(content_type or "")
    return m.group(1) if m else None


def to_text(data: bytes, content_type: str | None) -> str:
    """Decode with the declared charset; else UTF-8; else Latin-1, which never fails."""
    declared = charset(content_type)
    if declared:
        try:
            return data.decode(declared)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def body_bytes(message: Message, max_size: int) -> bytes:
    """The message body with any Content-Encoding undone (HAR bodies are already decoded)."""
    if not message.encoded:
        if len(message.body) > max_size:
            raise BodyTooLarge()
        return message.body
    return content_decode(message.body, message.header("content-encoding"), max_size)
