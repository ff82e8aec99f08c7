"""Redaction of a request before the proxy lets it leave (SPEC.md section 9, `action: redact`).

Each value a finding names is replaced where it sits by `[REDACTED:<Type>]`: in JSON and NDJSON
bodies (the string at the finding's path, re-serialised compactly), form-urlencoded bodies and the
query string (only the pairs that change are re-encoded), multipart text and JSON fields, plain
text, XML and HTML text and attribute values, URL path segments and header values. Bodies keep
their Content-Encoding (decoded, rewritten, encoded again) and charset.

Why a fixed token rather than the events' shape mask (`****@*****.***`): the shape leaks a value's
length and punctuation, the mask cuts long values short, and a token is ASCII, so it fits every
format (a JSON string stays a string, a header value stays a header value) and tells the
receiving service what was taken out.

Pure functions: a request part and the findings in it in, `Redacted` out: the rewritten part
(None when nothing changed) and the findings whose value could not be taken out (a format this
does not rewrite, a body that does not parse as it says, a value not found where it was seen).
The caller counts those and, under enforcement.fail_closed, blocks instead.
"""
from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import brotli
import zstandard

from ..model import Finding, header_value
from ..payload import formats, jsonpath
from ..payload.decode import BadEncoding, BodyTooLarge, charset, content_decode

_PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:[-.:][A-Za-z0-9_$]+)*")  # as payload/fields.py: schema words
_BOUNDARY = re.compile(r'boundary=("[^"]+"|[^;\s]+)', re.I)
_PART_NAME = re.compile(rb'(?<![\w-])name=(?:"([^"]*)"|([^;\s]+))', re.I)
_MARKUP_TEXT = re.compile(r">([^<]+)<")  # XML/HTML: text between tags ...
_ATTRIBUTE = re.compile(r"""(=\s*)("[^"]*"|'[^']*')""")  # ... and attribute values; never tag names


def token(data_type: str) -> str:
    return f"[REDACTED:{data_type}]"


@dataclass
class Redacted:
    value: object = field(default=None, repr=False)  # the rewritten part; None when unchanged
    missed: list[Finding] = field(default_factory=list)  # findings whose value is still there


# --- values in one string -----------------------------------------------------

def _pattern(value: str) -> re.Pattern:
    """The value as written raw or percent-encoded (a link's parameter, a cookie), not inside a
    longer word: a Gender finding 'F' must not take the F out of 'FHIR'."""
    forms = dict.fromkeys((value, quote_plus(value), quote(value, safe="")))
    alternatives = []
    for form in forms:
        head = r"(?<!\w)" if form[:1].isalnum() or form[:1] == "_" else ""
        tail = r"(?!\w)" if form[-1:].isalnum() or form[-1:] == "_" else ""
        alternatives.append(head + re.escape(form) + tail)
    return re.compile("|".join(alternatives))


class _Values:
    """The findings of one part, and which of them have been taken out so far."""

    def __init__(self, findings: list[Finding], quoted: bool = False):
        self.findings = sorted(findings, key=lambda f: -len(f.value))  # longest first: 'Jane Doe' before 'Jane'
        self.patterns = {id(f): _pattern(f.value) for f in self.findings if f.value}
        self.done: set[int] = set()
        self.quoted = quoted  # the token percent-encoded (cookies: no spaces or brackets there)

    def sub(self, text: str, findings: list[Finding]) -> str:
        """`text` with the values of `findings` replaced; each one that is no longer there counts as done."""
        original = text
        for f in findings:
            pattern = self.patterns.get(id(f))
            if pattern is None:
                continue
            replacement = quote(token(f.type), safe="") if self.quoted else token(f.type)
            text, n = pattern.subn(lambda _, r=replacement: r, text)  # a function: no backslash escapes
            if n or (pattern.search(original) and not pattern.search(text)):  # inside a longer one taken out
                self.done.add(id(f))
        return text

    def at(self, path: str) -> list[Finding]:
        return [f for f in self.findings if f.path == path]

    def under(self, path: str) -> list[Finding]:
        """Findings at `path` or inside it (JSON inside a string, a link's parameters)."""
        n = len(path)
        return [f for f in self.findings if f.path == path or (f.path.startswith(path) and f.path[n:n + 1] in (".", "["))]

    def missed(self) -> list[Finding]:
        return [f for f in self.findings if id(f) not in self.done]


# --- URL and headers ----------------------------------------------------------

def redact_target(target: str, findings: list[Finding]) -> Redacted:
    """The request target (path and query) with the values of request.path and request.query findings replaced."""
    path_values = _Values([f for f in findings if f.part == "request.path"])
    query_values = _Values([f for f in findings if f.part == "request.query"])
    if not path_values.findings and not query_values.findings:
        return Redacted()
    path, sep, query = target.partition("?")
    segments = []
    for segment in path.split("/"):
        value = unquote(segment)
        new = path_values.sub(value, path_values.findings) if segment else value
        segments.append(segment if new == value else quote(new, safe="@:;=,+!$&'()*-._~"))
    new_path = "/".join(segments)
    new_query = _form(query, query_values) if sep else query
    new = new_path + sep + new_query
    return Redacted(None if new == target else new, path_values.missed() + query_values.missed())


def redact_headers(headers: list[tuple[str, str]], findings: list[Finding]) -> Redacted:
    """Header values (text, as the Exchange holds them) with the values of request.headers findings replaced."""
    wanted = [f for f in findings if f.part == "request.headers"]
    if not wanted:
        return Redacted()
    cookie = jsonpath.header("cookie")
    plain = _Values([f for f in wanted if f.path != cookie])
    cookies = _Values([f for f in wanted if f.path == cookie], quoted=True)
    out, changed = [], False
    for name, value in headers:
        values = cookies if name.lower() == "cookie" else plain
        new = values.sub(value, values.at(jsonpath.header(name)))
        changed |= new != value
        out.append((name, new))
    return Redacted(out if changed else None, plain.missed() + cookies.missed())


def _form(text: str, values: _Values, prefix: str = "$") -> str:
    """A form-urlencoded string with the values (and personal names) of the findings at `$.name`
    replaced; pairs that do not change keep their bytes."""
    if not values.findings:
        return text
    pairs = []
    for pair in text.split("&"):
        raw_name, sep, raw_value = pair.partition("=")
        name = unquote_plus(raw_name)
        here = values.at(jsonpath.child(prefix, name))
        if here:
            value = unquote_plus(raw_value)
            new_value = values.sub(value, here)
            new_name = name if _PLAIN_KEY.fullmatch(name) else values.sub(name, here)
            if (new_name, new_value) != (name, value):
                pair = (raw_name if new_name == name else quote_plus(new_name)) + sep + quote_plus(new_value)
        pairs.append(pair)
    return "&".join(pairs)


# --- JSON -----------------------------------------------------------------------

class _Json:
    """Walks a document as payload/fields.py does, with the same paths, and replaces the values the
    findings name. Items of arrays longer than payload.max_array_items were never classified (the
    first items stand for them): a string there at the same place as a finding, indices aside,
    is taken out whole, by analogy."""

    def __init__(self, values: _Values, max_array_items: int, max_depth: int):
        self.values, self.limit, self.max_depth = values, max_array_items, max_depth
        self.analogues = {jsonpath.without_indices(f.path): f.type for f in values.findings}

    def walk(self, node, path: str, depth: int = 0, unscanned: bool = False):
        if depth > self.max_depth:  # not classified beyond: left as it is
            return node
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                child = jsonpath.child(path, key)
                if not _PLAIN_KEY.fullmatch(key) and not unscanned:  # keys that are data ({"jane@example.com": ...})
                    key = self.values.sub(key, [f for f in self.values.at(child) if f.value in key])
                out[key] = self.walk(value, child, depth + 1, unscanned)
            return out
        if isinstance(node, list):
            return [self.walk(item, jsonpath.index(path, i), depth + 1, unscanned or i >= self.limit)
                    for i, item in enumerate(node)]
        if unscanned:
            kind = self.analogues.get(jsonpath.without_indices(path))
            return token(kind) if kind and isinstance(node, (str, int, float)) and not isinstance(node, bool) else node
        if isinstance(node, str):
            here = self.values.under(path)
            return self.values.sub(node, here) if here else node
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            number = repr(node) if isinstance(node, float) else str(node)
            here = [f for f in self.values.at(path) if f.value == number]
            if here:
                self.values.done.update(id(f) for f in here)
                return token(here[0].type)  # a JSON string where the number was: still valid JSON
        return node


def _dumps(doc) -> str:
    import json

    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _json_text(text: str, values: _Values, limits: tuple[int, int]) -> str | None:
    """A JSON (or NDJSON) document rewritten; None when it does not parse (left alone)."""
    walker = _Json(values, *limits)
    try:
        return _dumps(walker.walk(formats.loads(text), "$"))
    except ValueError:
        if not formats.looks_ndjson(text):
            return None
    return _ndjson(text, walker)


def _ndjson(text: str, walker: _Json) -> str:
    lines = []
    for i, line in enumerate(text.splitlines(keepends=True)):
        body = line.rstrip("\r\n")
        try:
            doc = formats.loads(body) if body.strip() else None
        except ValueError:
            doc = None
        if doc is not None and walker.values.under(f"$[{i}]"):
            line = _dumps(walker.walk(doc, f"$[{i}]")) + line[len(body):]
        lines.append(line)
    return "".join(lines)


# --- bodies -------------------------------------------------------------------

def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


_ENCODERS = {"gzip": _gzip, "x-gzip": _gzip, "deflate": zlib.compress, "br": brotli.compress,
             "zstd": lambda d: zstandard.ZstdCompressor().compress(d), "identity": lambda d: d}


def _decode_text(data: bytes, content_type: str) -> tuple[str, str]:
    """(text, codec) as payload/decode.py's to_text reads it, so the same codec writes it back."""
    for codec in (charset(content_type), "utf-8"):
        if codec:
            try:
                return data.decode(codec), codec
            except (LookupError, UnicodeDecodeError):
                pass
    return data.decode("latin-1"), "latin-1"


def redact_body(headers: list[tuple[str, str]], body: bytes, findings: list[Finding], max_body_bytes: int = 1 << 20,
                max_array_items: int = 32, max_depth: int = 64) -> Redacted:
    """The request body (as sent: Content-Encoded) with the values of request.body findings replaced,
    encoded as it came. The limits are the classifier's (payload.*, max_body_bytes)."""
    values = _Values([f for f in findings if f.part == "request.body"])
    if not values.findings or not body:
        return Redacted(missed=values.findings)
    encoding = header_value(headers, "content-encoding") or ""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    if any(c not in _ENCODERS for c in codings):
        return Redacted(missed=values.findings)
    try:
        data = content_decode(body, encoding, max_body_bytes)
    except (BadEncoding, BodyTooLarge):
        return Redacted(missed=values.findings)
    content_type = header_value(headers, "content-type") or ""
    new = _rewrite(content_type, data, values, (max_array_items, max_depth))
    if new is None or new == data:
        return Redacted(missed=values.missed())
    for coding in codings:  # applied in the order listed, as the sender did
        new = _ENCODERS[coding](new)
    return Redacted(new, values.missed())


def _rewrite(content_type: str, data: bytes, values: _Values, limits: tuple[int, int]) -> bytes | None:
    ctype = content_type.lower()
    if ctype.startswith("multipart/"):
        return _multipart(content_type, data, values, limits)
    if ctype.startswith(("application/grpc", *formats.BINARY_TYPES)) or formats.is_binary(data):
        return None  # protobuf and other binary bodies are not rewritten
    text, codec = _decode_text(data, content_type)
    kind = formats.kind(ctype, text)
    if kind in ("json", "ndjson"):
        new = _json_text(text, values, limits)
    elif kind == "form":
        new = _form(text, values)
    elif kind in ("xml", "html"):
        new = _ATTRIBUTE.sub(lambda m: m.group(1) + values.sub(m.group(2), values.findings),
                             _MARKUP_TEXT.sub(lambda m: ">" + values.sub(m.group(1), values.findings) + "<", text))
    else:
        new = values.sub(text, values.findings)
    return None if new is None else new.encode(codec)


def _multipart(content_type: str, data: bytes, values: _Values, limits: tuple[int, int]) -> bytes | None:
    """Each text (or JSON) field rewritten in place; file parts that are not text were not classified."""
    boundary = _BOUNDARY.search(content_type)
    if not boundary:
        return None
    delimiter = b"--" + boundary.group(1).strip('"').encode("latin-1", "replace")
    chunks = data.split(delimiter)
    for i, chunk in enumerate(chunks[1:], 1):
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, sep, payload = chunk.partition(b"\r\n\r\n")
        if not sep:
            head, sep, payload = chunk.partition(b"\n\n")
        name = _PART_NAME.search(head)
        if not sep or not name:
            continue
        name = (name.group(1) if name.group(1) is not None else name.group(2)).decode("utf-8", "replace")
        path = jsonpath.child("$", name)
        if not values.under(path):
            continue
        trailer = b"\r\n" if payload.endswith(b"\r\n") else b""
        payload = payload[:len(payload) - len(trailer)]
        ctype = re.search(rb"content-type:\s*([^\r\n;]+)", head, re.I)
        ctype = ctype.group(1).strip().decode("latin-1") if ctype else "text/plain"
        text, codec = _decode_text(payload, ctype)
        new = None
        if "json" in ctype.lower():
            try:
                new = _dumps(_Json(values, *limits).walk(formats.loads(text), path, 1))
            except ValueError:
                pass
        if new is None:
            new = values.sub(text, values.under(path))
        chunks[i] = head + sep + new.encode(codec) + trailer
    return delimiter.join(chunks)
