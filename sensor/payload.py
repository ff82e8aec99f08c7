"""Exchange -> Fields: URL path, query, headers and bodies in every common format.

Each decoder walks its format and emits one Field per scalar value with its
SPEC.md `part` and JSONPath `path`, grouping siblings into a Record.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, unquote, urlsplit

from detectors.field import EMPTY_KEY, Field, Key, Record

from . import jsonpath
from .decode import BadEncoding, BodyTooLarge, body_bytes, to_text
from .exchange import Exchange, Message

MAX_ARRAY_ITEMS = 32  # longer arrays are sampled: the first items carry the same shapes and paths
MAX_DEPTH = 64
MAX_TEXT_CHARS = 20_000  # free text beyond this is not scanned (counted as text_truncated)

# Headers that never carry personal data, or only carry credentials and protocol noise.
_SKIP_HEADERS = frozenset(
    """host content-type content-length accept accept-encoding accept-language accept-charset
    connection keep-alive cache-control pragma date etag server vary content-encoding
    transfer-encoding te upgrade expires last-modified if-none-match if-modified-since
    if-match if-unmodified-since range content-range age user-agent authorization
    proxy-authorization x-request-id x-correlation-id traceparent tracestate x-b3-traceid
    x-b3-spanid x-b3-parentspanid x-b3-sampled x-amzn-trace-id strict-transport-security
    content-security-policy x-content-type-options x-frame-options x-xss-protection
    access-control-allow-origin access-control-allow-headers access-control-allow-methods
    access-control-allow-credentials access-control-expose-headers access-control-max-age
    access-control-request-method access-control-request-headers sec-fetch-site
    sec-fetch-mode sec-fetch-dest sec-fetch-user sec-ch-ua sec-ch-ua-mobile
    sec-ch-ua-platform upgrade-insecure-requests dnt alt-svc content-disposition
    x-powered-by expect via link priority""".split()
)
_BINARY_TYPES = ("image/", "audio/", "video/", "font/", "application/octet-stream", "application/pdf",
                 "application/zip", "application/gzip", "application/x-protobuf", "application/protobuf",
                 "application/grpc", "application/wasm", "application/vnd.google.protobuf", "application/x-tar",
                 "application/msgpack", "application/x-msgpack", "application/cbor")
_BOUNDARY = re.compile(r'boundary=("[^"]+"|[^;\s]+)', re.I)
_PART_NAME = re.compile(r'(?<![\w-])name=(?:"([^"]*)"|([^;\s]+))', re.I)
_TAG = re.compile(r"<[^>]{0,2000}>")
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


class Fields:
    """Collects the Fields of one exchange and counts what it had to skip."""

    def __init__(self, stats, max_body: int):
        self.items: list[Field] = []
        self.stats = stats
        self.max_body = max_body

    def add(self, part, path, key: Key, value, record: Record, is_number=False):
        record.add(key, value)
        self.items.append(Field(part, path, key, value, record, is_number))

    # --- URL ---------------------------------------------------------------

    def url(self, target: str) -> None:
        split = urlsplit(target)
        record = Record()
        previous = ""
        for segment in split.path.split("/"):
            if segment:
                value = unquote(segment)
                self.add("request.path", "$", Key.of(previous), value, record)
                previous = value if value.isalpha() else previous
        if split.query:
            self.form("request.query", split.query)

    # --- headers -----------------------------------------------------------

    def headers(self, part: str, headers: list[tuple[str, str]]) -> None:
        record = Record()
        for name, value in headers:
            lname = name.lower()
            if lname in _SKIP_HEADERS or lname.startswith(":") or not value:
                continue
            path = jsonpath.header(lname)
            if lname in ("cookie", "set-cookie"):
                pairs = value.split(";") if lname == "cookie" else value.split(";")[:1]
                for pair in pairs:
                    k, _, v = pair.strip().partition("=")
                    if v:
                        self.add(part, path, Key.of(k), unquote(v), record)
                continue
            self.add(part, path, Key.of(lname), value, record)

    # --- bodies ------------------------------------------------------------

    def body(self, part: str, message: Message) -> None:
        if not message.body:
            return
        if len(message.body) > self.max_body:
            self.stats.drop("body_too_large")
            return
        try:
            data = body_bytes(message, self.max_body)
        except BodyTooLarge:
            self.stats.drop("body_too_large")
            return
        except BadEncoding:
            self.stats.drop("bad_encoding")
            return
        ctype = (message.header("content-type") or "").lower()
        if ctype.startswith("multipart/"):  # before the binary test: file parts may be binary
            self.multipart(part, data, message.header("content-type"))
            return
        if ctype.startswith(_BINARY_TYPES) or (not ctype.startswith("text/") and _is_binary(data)):
            self.stats.drop("binary_body")
            return
        text = to_text(data, message.header("content-type"))
        kind = _kind(ctype, text)
        if kind == "json":
            try:
                doc = _loads(text)
            except ValueError:
                if _looks_ndjson(text):
                    kind = "ndjson"
                else:
                    self.stats.drop("parse_error")  # counted, then still scanned as text
                    kind = "text"
            else:
                self.json(part, "$", doc, Record(), EMPTY_KEY, 0)
                return
        if kind == "ndjson":
            self.ndjson(part, text)
        elif kind == "form":
            self.form(part, text)
        elif kind == "xml":
            try:
                self.xml(part, text)
            except ET.ParseError:
                self.stats.drop("parse_error")
                self.text(part, _TAG.sub(" ", text))
        else:
            self.text(part, _TAG.sub(" ", text) if "html" in ctype or kind == "html" else text)

    def json(self, part: str, path: str, node, record: Record, key: Key, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.stats.drop("too_deep")
            return
        if isinstance(node, dict):
            child_record = Record(parents=record.parents + ((key,) if key.raw else ()))
            # keys first, so every field sees all its siblings
            items = [(k, Key.of(str(k)), v) for k, v in node.items()]
            child_record.keys.extend(k for _, k, _ in items)
            for raw, k, v in items:
                self.json(part, jsonpath.child(path, str(raw)), v, child_record, k, depth + 1)
        elif isinstance(node, list):
            if len(node) > MAX_ARRAY_ITEMS:
                self.stats.drop("array_sampled")
            for i, item in enumerate(node[:MAX_ARRAY_ITEMS]):
                self.json(part, jsonpath.index(path, i), item, record, key, depth + 1)
        elif isinstance(node, str):
            stripped = node.strip()
            if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):  # JSON inside a string
                try:
                    inner = _loads(stripped)
                except ValueError:
                    pass
                else:
                    if isinstance(inner, (dict, list)):
                        self.json(part, path, inner, record, key, depth + 1)
                        return
            self._scalar(part, path, key, node, record, False)
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            self._scalar(part, path, key, repr(node) if isinstance(node, float) else str(node), record, True)

    def _scalar(self, part, path, key, value, record, is_number):
        if len(value) > MAX_TEXT_CHARS:
            self.stats.drop("text_truncated")
            value = value[:MAX_TEXT_CHARS]
        # the key itself was registered with the record when its parent was walked
        record.values.setdefault(key.compact, value)
        self.items.append(Field(part, path, key, value, record, is_number))

    def ndjson(self, part: str, text: str) -> None:
        for i, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                doc = _loads(line)
            except ValueError:
                self.stats.drop("parse_error")
                continue
            self.json(part, f"$[{i}]", doc, Record(), EMPTY_KEY, 0)

    def form(self, part: str, text: str) -> None:
        record = Record()
        for name, value in parse_qsl(text, keep_blank_values=False):
            self.add(part, jsonpath.child("$", name), Key.of(name), value, record)

    def multipart(self, part: str, data: bytes, content_type: str) -> None:
        boundary = _BOUNDARY.search(content_type or "")
        if not boundary:
            self.stats.drop("parse_error")
            return
        delimiter = b"--" + boundary.group(1).strip('"').encode("latin-1", "replace")
        record = Record()
        for chunk in data.split(delimiter)[1:]:
            if chunk.startswith(b"--"):
                break  # the closing delimiter
            head, sep, payload = chunk.partition(b"\r\n\r\n")
            if not sep:
                head, sep, payload = chunk.partition(b"\n\n")
            if payload.endswith(b"\r\n"):
                payload = payload[:-2]
            headers = head.decode("latin-1").lower()
            name = _PART_NAME.search(head.decode("utf-8", "replace"))
            if not name:
                continue
            name = name.group(1) if name.group(1) is not None else name.group(2)
            ctype_match = re.search(r"content-type:\s*([^\r\n;]+)", headers)
            ctype = ctype_match.group(1).strip() if ctype_match else "text/plain"
            if ("filename=" in headers and not ctype.startswith("text/")) or _is_binary(payload):
                continue  # uploaded files other than text are not scanned
            value = to_text(payload, ctype)
            if "json" in ctype:
                try:
                    self.json(part, jsonpath.child("$", name), _loads(value), record, Key.of(name), 1)
                    continue
                except ValueError:
                    pass
            self.add(part, jsonpath.child("$", name), Key.of(name), value[:MAX_TEXT_CHARS], record)

    def xml(self, part: str, text: str) -> None:
        root = ET.fromstring(text.lstrip("\ufeff").strip())
        self._element(part, root, "$", (), 0)

    def _element(self, part, element, path, parents, depth) -> None:
        if depth > MAX_DEPTH:
            self.stats.drop("too_deep")
            return
        tag = _local(element.tag)
        path = jsonpath.child(path, tag)
        key = Key.of(tag)
        record = Record(parents=parents)
        children = list(element)
        for name, value in element.attrib.items():
            attr = _local(name)
            self.add(part, jsonpath.child(path, "@" + attr), Key.of(attr), value, record)
        if not children:
            return
        child_parents = parents + (key,)
        inner = Record(parents=child_parents)
        inner.keys.extend(Key.of(_local(c.tag)) for c in children if not len(c))
        for c in children[:MAX_ARRAY_ITEMS]:
            if len(c):
                self._element(part, c, path, child_parents, depth + 1)
                continue
            ctag = _local(c.tag)
            cpath = jsonpath.child(path, ctag)
            for name, value in c.attrib.items():
                attr = _local(name)
                self.add(part, jsonpath.child(cpath, "@" + attr), Key.of(attr), value, inner)
            text = (c.text or "").strip()
            if text:
                self._scalar(part, cpath, Key.of(ctag), text, inner, False)

    def text(self, part: str, text: str) -> None:
        text = text.strip()
        if not text:
            return
        if len(text) > MAX_TEXT_CHARS:
            self.stats.drop("text_truncated")
            text = text[:MAX_TEXT_CHARS]
        self.add(part, "$", EMPTY_KEY, text, Record())


def _loads(text: str):
    """json.loads that reports absurd nesting ('[' * 100000) as the ValueError it is."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].split(":")[-1]


def _is_binary(data: bytes) -> bool:
    head = data[:1024]
    return b"\x00" in head or len(_CONTROL.findall(head)) > len(head) // 10


def _looks_ndjson(text: str) -> bool:
    lines = [l for l in text.splitlines() if l.strip()]
    return len(lines) > 1 and all(l.lstrip()[:1] in "{[" for l in lines[:5])


def _kind(ctype: str, text: str) -> str:
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
        return "ndjson" if _looks_ndjson(s) and "\n" in s else "json"
    if s[:1] == "<":
        return "html" if s[:15].lower().startswith(("<!doctype html", "<html")) else "xml"
    if _FORM.fullmatch(s):
        return "form"
    return "text"


def exchange_fields(exchange: Exchange, stats, max_body: int) -> list[Field]:
    fields = Fields(stats, max_body)
    fields.url(exchange.request.target)
    fields.headers("request.headers", exchange.request.headers)
    fields.body("request.body", exchange.request)
    if exchange.response is not None:
        fields.headers("response.headers", exchange.response.headers)
        fields.body("response.body", exchange.response)
    return fields.items
