"""Exchange -> Fields: URL path, query, headers and bodies in every common format.

Each decoder walks its format and emits one Field per scalar value with its
SPEC.md `part` and JSONPath `path`, grouping siblings into a Record.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlsplit

from ..config import Config
from ..model import EMPTY_KEY, Drop, Exchange, Field, Key, Message, Record, Skip, key_of
from . import formats, jsonpath, protobuf
from .decode import BadEncoding, BodyTooLarge, body_bytes, to_text

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
_BOUNDARY = re.compile(r'boundary=("[^"]+"|[^;\s]+)', re.I)
_PART_NAME = re.compile(r'(?<![\w-])name=(?:"([^"]*)"|([^;\s]+))', re.I)
_TAG = re.compile(r"<[^>]{0,2000}>")
# Keys as schemas write them (snake_case, camelCase, kebab-case, dotted). Other keys may be data
# ({"jane.doe@example.com": {...}}, {"Jane Doe": {...}}): they are classified too.
_PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:[-.:][A-Za-z0-9_$]+)*")
_LINK = re.compile(r"(?:https?://[^\s/]+)?/[^\s]*$")  # an absolute or rooted URL, nothing else around it
_MAYBE_NESTED = frozenset("<{[ \t\r\n\f\v")  # first characters of a string that may hold JSON or markup
_SEGMENT_PARAM = re.compile(r"([^=;,]+)=([^;,]*)")  # matrix parameters in a path segment: name=Jane;v=2


class Fields:
    """Collects the Fields of one exchange and counts what it had to skip."""

    def __init__(self, stats, config: Config):
        self.items: list[Field] = []
        self.stats = stats
        self.config = config
        self.max_body = config.max_body_bytes
        self.max_text = config.max_text_chars
        self.resource: tuple = ()  # the URL path's words: what the bodies are about
        self.target_path = ""  # the URL path: a gRPC method's name

    def add(self, part, path, key: Key, value, record: Record, is_number=False):
        record.add(key, value)
        self.items.append(Field(part, path, key, value, record, is_number))

    def key_field(self, part, path, raw: str, parent: Key, siblings: Record, value=None) -> None:
        """A key that is not a schema word is classified as a value, with its parent's key as its
        context and, as its record, the object it opens ({"Jane Doe": {"email": ...}}) or its siblings."""
        if not _plain_key(raw):
            record = Record(parents=siblings.parents + (Key.of(raw),)) if isinstance(value, dict) else siblings
            self.items.append(Field(part, path, parent, raw, record, is_key=True))

    # --- URL ---------------------------------------------------------------

    def url(self, target: str) -> None:
        split = urlsplit(target)
        self.target_path = split.path
        record = Record()
        previous = ""
        self.resource = tuple(w.lower() for w in (s.split(".")[0] for s in split.path.split("/")) if w.isalpha())
        for segment in split.path.split("/"):
            if segment:
                value = unquote(segment)
                self.add("request.path", "$", Key.of(previous), value, record)
                for name, param in _SEGMENT_PARAM.findall(value):  # name=Jane Doe;v=2
                    if param:
                        self.add("request.path", "$", Key.of(name.strip()), param, record)
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
            self.stats.drop(Drop.BODY_TOO_LARGE)
            return
        try:
            data = body_bytes(message, self.max_body)
        except BodyTooLarge:
            self.stats.drop(Drop.BODY_TOO_LARGE)
            return
        except BadEncoding:
            self.stats.drop(Drop.BAD_ENCODING)
            return
        ctype = (message.header("content-type") or "").lower()
        if ctype.startswith("application/grpc"):  # before the binary test: protobuf is binary
            self.grpc(part, data, ctype, message.header("grpc-encoding"))
            return
        if ctype.startswith("multipart/"):  # before the binary test: file parts may be binary
            self.multipart(part, data, message.header("content-type"))
            return
        if ctype.startswith(formats.BINARY_TYPES) or (not ctype.startswith("text/") and formats.is_binary(data)):
            self.stats.skip(Skip.BINARY_BODY)
            return
        text = to_text(data, message.header("content-type"))
        kind = formats.kind(ctype, text)
        if kind == "json":
            try:
                doc = formats.loads(text)
            except ValueError:
                if formats.looks_ndjson(text):
                    kind = "ndjson"
                else:
                    self.stats.drop(Drop.PARSE_ERROR)  # counted, then still scanned as text
                    kind = "text"
            else:
                self.json(part, "$", doc, Record(resource=self.resource), EMPTY_KEY, 0)
                return
        if kind == "ndjson":
            self.ndjson(part, text)
        elif kind == "form":
            self.form(part, text)
        elif kind == "xml":
            try:
                self.xml(part, text)
            except ET.ParseError:
                self.stats.drop(Drop.PARSE_ERROR)
                self.text(part, _TAG.sub(" ", text))
        else:
            self.text(part, _TAG.sub(" ", text) if "html" in ctype or kind == "html" else text)

    def json(self, part: str, path: str, node, record: Record, key: Key, depth: int) -> None:
        if depth > self.config.max_depth:
            self.stats.drop(Drop.TOO_DEEP)
            return
        if isinstance(node, dict):
            child_record = Record(parents=record.parents + ((key,) if key.raw else ()), parent=record)
            # keys first, so every field sees all its siblings
            keys = child_record.keys
            for raw in node:
                keys.append(key_of(raw if type(raw) is str else str(raw)))
            shallow = depth < self.config.max_depth
            for k, v in zip(keys, node.values()):
                raw = k.raw
                child_path = jsonpath.child(path, raw)
                self.key_field(part, child_path, raw, key, child_record, v)
                if type(v) is str and shallow and v[:1] not in _MAYBE_NESTED:  # most values
                    self._scalar(part, child_path, k, v, child_record, False)
                else:
                    self.json(part, child_path, v, child_record, k, depth + 1)
        elif isinstance(node, list):
            limit = self.config.max_array_items
            if len(node) > limit:
                self.stats.skip(Skip.ARRAY_SAMPLED)
            for i, item in enumerate(node[:limit]):
                self.json(part, jsonpath.index(path, i), item, record, key, depth + 1)
        elif isinstance(node, str):
            stripped = node.strip()
            if stripped[:1] == "<" and stripped[-1:] == ">":  # markup inside a string (FHIR's narrative div): its text
                node = " ".join(_TAG.sub(" ", stripped).split())
            elif stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):  # JSON inside a string
                try:
                    inner = formats.loads(stripped)
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
        if len(value) > self.max_text:
            value = self._capped(value)
        # the key itself was registered with the record when its parent was walked
        record.values.setdefault(key.compact, value)
        self.items.append(Field(part, path, key, value, record, is_number))
        if value[:1] in ("/", "h") and ("?" in value or "%" in value) and _LINK.match(value):
            self._link(part, path, value, record)

    def _link(self, part, path, value, record) -> None:
        """A link in a payload ("uri": "/Messages.json?To=%2B14155550100"): its query parameters and
        encoded path segments are values too, under their own names, at the link's path."""
        split = urlsplit(value)
        inner = Record(parents=record.parents, parent=record)
        previous = ""
        for segment in split.path.split("/"):
            if "%" in segment or "@" in segment or segment.startswith("+"):  # /PhoneNumbers/+14155550100
                self.add(part, path, Key.of(previous), unquote(segment), inner)
            elif segment.isalpha():
                previous = segment
        for name, param in parse_qsl(split.query, keep_blank_values=False):
            self.add(part, path, Key.of(name), param, inner)

    def grpc(self, part: str, data: bytes, ctype: str, encoding: str | None) -> None:
        """Each gRPC message decoded as protobuf without a schema, walked like JSON (paths by
        field number: $['1']['3']); with several messages on one stream, the same paths repeat."""
        try:
            messages = protobuf.grpc_messages(data, ctype, encoding, self.max_body)
            docs = [protobuf.decode(m) for m in messages]
        except (protobuf.NotProtobuf, BodyTooLarge):
            self.stats.drop(Drop.GRPC_PARSE_ERROR)
            return
        if self.config.grpc_descriptors:
            from . import grpc_names  # protobuf's runtime, only where descriptor sets are configured

            types = grpc_names.load(self.config.grpc_descriptors).get(self.target_path)
            if types is not None:
                docs = [grpc_names.named(doc, types[part.startswith("response")]) for doc in docs]
        for doc in docs:
            self.json(part, "$", doc, Record(resource=self.resource), EMPTY_KEY, 0)

    def ndjson(self, part: str, text: str) -> None:
        for i, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                doc = formats.loads(line)
            except ValueError:
                self.stats.drop(Drop.PARSE_ERROR)
                continue
            self.json(part, f"$[{i}]", doc, Record(resource=self.resource), EMPTY_KEY, 0)

    def form(self, part: str, text: str) -> None:
        record = Record()
        for name, value in parse_qsl(text, keep_blank_values=True):
            path = jsonpath.child("$", name)
            self.key_field(part, path, name, EMPTY_KEY, record)
            if value:
                self.add(part, path, Key.of(name), value, record)

    def multipart(self, part: str, data: bytes, content_type: str) -> None:
        boundary = _BOUNDARY.search(content_type or "")
        if not boundary:
            self.stats.drop(Drop.PARSE_ERROR)
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
            self.key_field(part, jsonpath.child("$", name), name, EMPTY_KEY, record)
            ctype_match = re.search(r"content-type:\s*([^\r\n;]+)", headers)
            ctype = ctype_match.group(1).strip() if ctype_match else "text/plain"
            if ("filename=" in headers and not ctype.startswith("text/")) or formats.is_binary(payload):
                continue  # uploaded files other than text are not scanned
            value = to_text(payload, ctype)
            if "json" in ctype:
                try:
                    self.json(part, jsonpath.child("$", name), formats.loads(value), record, Key.of(name), 1)
                    continue
                except ValueError:
                    pass
            self.add(part, jsonpath.child("$", name), Key.of(name), self._capped(value), record)

    def xml(self, part: str, text: str) -> None:
        root = ET.fromstring(text.lstrip("\ufeff").strip())
        self._element(part, root, "$", (), 0, None)

    def _element(self, part, element, path, parents, depth, outer: Record | None) -> None:
        if depth > self.config.max_depth:
            self.stats.drop(Drop.TOO_DEEP)
            return
        tag = _local(element.tag)
        path = jsonpath.child(path, tag)
        key = Key.of(tag)
        record = Record(parents=parents, parent=outer, resource=self.resource if outer is None else ())
        children = list(element)
        for name, value in element.attrib.items():
            attr = _local(name)
            self.add(part, jsonpath.child(path, "@" + attr), Key.of(tag if attr == "value" else attr), value, record)
        if not children:
            return
        child_parents = parents + (key,)
        inner = Record(parents=child_parents, parent=record)
        inner.keys.extend(Key.of(_local(c.tag)) for c in children if not len(c))
        for c in children[:self.config.max_array_items]:
            if len(c):
                self._element(part, c, path, child_parents, depth + 1, inner)
                continue
            ctag = _local(c.tag)
            cpath = jsonpath.child(path, ctag)
            for name, value in c.attrib.items():
                attr = _local(name)
                # <gender value="male"/> (FHIR, HL7): the element names the value, not the attribute
                attr_key = Key.of(ctag if attr == "value" else attr)
                self.add(part, jsonpath.child(cpath, "@" + attr), attr_key, value, inner)
            text = (c.text or "").strip()
            if text:
                self._scalar(part, cpath, Key.of(ctag), text, inner, False)

    def _capped(self, text: str) -> str:
        if len(text) > self.config.max_text_chars:
            self.stats.drop(Drop.TEXT_TRUNCATED)
            return text[:self.config.max_text_chars]
        return text

    def text(self, part: str, text: str) -> None:
        text = text.strip()
        if not text:
            return
        text = self._capped(text)
        self.add(part, "$", EMPTY_KEY, text, Record())


def exchange_fields(exchange: Exchange, stats, config: Config) -> list[Field]:
    fields = Fields(stats, config)
    fields.url(exchange.request.target)
    fields.headers("request.headers", exchange.request.headers)
    fields.body("request.body", exchange.request)
    if exchange.response is not None:
        fields.headers("response.headers", exchange.response.headers)
        fields.body("response.body", exchange.response)
    return fields.items


@lru_cache(maxsize=65536)
def _plain_key(raw: str) -> bool:
    """Schema keys repeat endlessly: is this one a schema word (not data to classify)?"""
    return len(raw) > 200 or _PLAIN_KEY.fullmatch(raw) is not None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].split(":")[-1]
