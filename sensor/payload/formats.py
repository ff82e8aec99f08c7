"""What a body is: its format from Content-Type checked against the bytes (content types lie),
binary or text, and a JSON parser that reports absurd nesting as the ValueError it is."""
from __future__ import annotations

import json
import re

import orjson

BINARY_TYPES = ("image/", "audio/", "video/", "font/", "application/octet-stream", "application/pdf",
                 "application/zip", "application/gzip", "application/x-protobuf", "application/protobuf",
                 "application/grpc", "application/wasm", "application/vnd.google.protobuf", "application/x-tar",
                 "application/msgpack", "application/x-msgpack", "application/cbor")
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def loads(text: str):
    """JSON through orjson (several times faster), and through the standard library for what orjson
    refuses but JSON allows (integers beyond 64 bits, NaN) or to say what is wrong; absurd nesting
    ('[' * 100000) is the ValueError it is."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def is_binary(data: bytes) -> bool:
    head = data[:1024]
    return b"\x00" in head or len(_CONTROL.findall(head)) > len(head) // 10


def looks_ndjson(text: str) -> bool:
    lines = [l for l in text.splitlines() if l.strip()]
    return len(lines) > 1 and all(l.lstrip()[:1] in "{[" for l in lines[:5])


def kind(ctype: str, text: str) -> str:
    """The body format from Content-Type, checked against the body itself (content types lie)."""
    head = text.lstrip()[:1]
    if "ndjson" in ctype or "jsonl" in ctype or "json-seq" in ctype:
        return "ndjson"
    if "json" in ctype:
        return "json" if head in ("{", "[", '"') or head.isdigit() else _sniff(text)
    if "x-www-form-urlencoded" in ctype:
        return "json" if head in ("{", "[") else "form"
    if "xml" in ctype or "soap" in ctype:
        return "xml" if head == "<" else _sniff(text)
    if "html" in ctype:
        return "html"
    if ctype.startswith("text/"):
        return _sniff(text) if head in ("{", "[") else "text"
    return _sniff(text)


_FORM = re.compile(r"[\w.\[\]%-]+=[^&\s]*(?:&[\w.\[\]%-]+=[^&\s]*)*")


def _sniff(text: str) -> str:
    s = text.strip()
    if s[:1] in ("{", "["):
        return "ndjson" if looks_ndjson(s) and "\n" in s else "json"
    if s[:1] == "<":
        return "html" if s[:15].lower().startswith(("<!doctype html", "<html")) else "xml"
    if _FORM.fullmatch(s):
        return "form"
    return "text"
