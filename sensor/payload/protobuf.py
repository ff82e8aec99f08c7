"""Protocol Buffers without a schema, as gRPC carries them: the wire format read into a JSON-like
tree keyed by field number ({"1": {"3": "jane@example.com"}}), so the JSON walker and stage 2 see
gRPC messages like any other document, their paths written `$['1']['3']`.

Without the schema a length-delimited field may be a nested message, a string or bytes: it is
taken as a message when it parses whole as one (and is not also plain readable text), else as a
string when it is UTF-8 text, else skipped as bytes. Numbers are kept as integers (a fixed32 or
fixed64 may be a float: without a schema nobody can tell, and no personal data type is a float).
"""
from __future__ import annotations

import base64
import struct

from .decode import BadEncoding, BodyTooLarge, content_decode

MAX_DEPTH = 32
MAX_FIELDS = 10_000  # fields in one message: beyond, the rest is not read


class NotProtobuf(ValueError):
    pass


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise NotProtobuf("bad varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def decode(data: bytes, depth: int = 0) -> dict:
    """The message in `data` as {field number: value or [values]}; NotProtobuf if it is not one."""
    out: dict = {}
    i, n = 0, 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if number == 0 or number > 536_870_911:
            raise NotProtobuf("bad field number")
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 1:
            if i + 8 > len(data):
                raise NotProtobuf("cut fixed64")
            value, i = struct.unpack_from("<q", data, i)[0], i + 8
        elif wire == 5:
            if i + 4 > len(data):
                raise NotProtobuf("cut fixed32")
            value, i = struct.unpack_from("<i", data, i)[0], i + 4
        elif wire == 2:
            length, i = _varint(data, i)
            if i + length > len(data):
                raise NotProtobuf("cut length-delimited field")
            value, i = _bytes_field(data[i:i + length], depth), i + length
            if value is None:
                continue  # opaque bytes
        else:
            raise NotProtobuf("unsupported wire type")  # groups (3, 4) are long deprecated
        n += 1
        if n > MAX_FIELDS:
            break
        field = str(number)
        if field in out:
            previous = out[field]
            out[field] = previous + [value] if isinstance(previous, list) else [previous, value]
        else:
            out[field] = value
    return out


def _bytes_field(data: bytes, depth: int):
    text = None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if text is not None and (text.isprintable() or not text.strip("\n\r\t")) and text:
        return text  # readable text is text, even when its bytes happen to parse as a message
    if depth < MAX_DEPTH and data:
        try:
            return decode(data, depth + 1)
        except NotProtobuf:
            pass
    return text  # text with control characters, or None for bytes


def grpc_messages(body: bytes, content_type: str, encoding: str | None, max_size: int) -> list[bytes]:
    """The messages of a gRPC or gRPC-Web body: each a flag byte (bit 0: compressed with the
    `grpc-encoding`; bit 7: gRPC-Web trailers) and a 4-byte length. Raises NotProtobuf on bad
    framing, BodyTooLarge when decompression would pass `max_size`."""
    if "grpc-web-text" in content_type:
        try:
            body = base64.b64decode(body, validate=False)
        except ValueError:
            raise NotProtobuf("bad base64") from None
    out, i, total = [], 0, 0
    while i < len(body):
        if i + 5 > len(body):
            raise NotProtobuf("cut message header")
        flags, length = body[i], int.from_bytes(body[i + 1:i + 5], "big")
        data = body[i + 5:i + 5 + length]
        if len(data) < length:
            raise NotProtobuf("cut message")
        i += 5 + length
        if flags & 0x80:
            continue  # gRPC-Web trailers (grpc-status ...): no payload
        if flags & 1:
            try:  # the room left for the whole body, not each message: 200 small bombs are one large one
                data = content_decode(data, encoding or "identity", max_size - total)
            except BadEncoding:
                raise NotProtobuf("bad compression") from None
        total += len(data)
        if total > max_size:
            raise BodyTooLarge()
        out.append(data)
    return out
