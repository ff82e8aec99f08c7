"""The values that flow through the sensor, stage to stage, and the vocabularies they use.

    Exchange (sources, wire) -> Field (payload) -> Finding (detectors) -> Event (events) -> outputs

Raw personal data lives only in Exchange bodies, Field values and Finding values; none
of them prints it: their reprs leave values out. An Event holds nothing raw: samples
are masked and paths, endpoints and hosts are made safe before it is built.
"""
from __future__ import annotations

import ipaddress
import json
import re
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

# --- vocabularies --------------------------------------------------------------

# SPEC.md section 2: where in an exchange a value sits.
PARTS = ("request.path", "request.query", "request.headers", "request.body", "response.headers", "response.body")
PART_ORDER = {p: i for i, p in enumerate(PARTS)}
# Registered HTTP methods (RFC 9110, PATCH, WebDAV, PURGE): the HTTP/1.x parser knows these, and
# events name any other method `_OTHER`.
METHODS = frozenset("""GET POST PUT DELETE PATCH HEAD OPTIONS TRACE CONNECT PROPFIND PROPPATCH MKCOL COPY MOVE
    LOCK UNLOCK REPORT SEARCH PURGE""".split())


class Drop(StrEnum):
    """Data the sensor failed to look at: pii_sensor_dropped_total{reason}. Each is loss;
    DROP_HELP says what it means and what to do about it (the README lists them)."""

    # capture
    BAD_PACKET = "bad_packet"
    TRUNCATED_FRAME = "truncated_frame"
    BAD_IP = "bad_ip"
    BAD_TCP = "bad_tcp"
    UNKNOWN_LINKTYPE = "unknown_linktype"
    CAPTURE_ERROR = "capture_error"
    CAPTURE_KERNEL = "capture_kernel"
    TRUNCATED_CAPTURE = "truncated_capture"
    FRAGMENT_OVERFLOW = "fragment_overflow"
    FRAGMENT_TIMEOUT = "fragment_timeout"
    IPV6_FRAGMENT = "ipv6_fragment"
    TCP_GAP = "tcp_gap"
    STREAM_EVICTED = "stream_evicted"
    # HTTP
    HTTP_GARBAGE = "http_garbage"
    INCOMPLETE_MESSAGE = "incomplete_message"
    ORPHAN_RESPONSE = "orphan_response"
    RESPONSE_LOST = "response_lost"
    BAD_ENTRY = "bad_entry"
    H2_FRAME_ERROR = "h2_frame_error"
    H2_HEADERS_UNREADABLE = "h2_headers_unreadable"
    H2_TOO_MANY_STREAMS = "h2_too_many_streams"
    WS_FRAME_ERROR = "ws_frame_error"
    # TLS plaintext (sniff --tls)
    TLS_RINGBUF = "tls_ringbuf"
    TLS_CHUNK_CUT = "tls_chunk_cut"
    TLS_RATE_LIMITED = "tls_rate_limited"
    # payload
    BODY_TOO_LARGE = "body_too_large"
    BAD_ENCODING = "bad_encoding"
    PARSE_ERROR = "parse_error"
    TOO_DEEP = "too_deep"
    TEXT_TRUNCATED = "text_truncated"
    GRPC_PARSE_ERROR = "grpc_parse_error"
    # the sensor itself
    INTERNAL_ERROR = "internal_error"
    QUEUE_FULL = "queue_full"
    CLASSIFIER_LOST = "classifier_lost"
    CLASSIFIER_DOWN = "classifier_down"
    SHUTDOWN = "shutdown"
    BODY_STREAMED = "body_streamed"
    FLOW_ERROR = "flow_error"
    PROXY_ERROR = "proxy_error"
    # delivery of events
    WEBHOOK_BUFFER_FULL = "webhook_buffer_full"
    WEBHOOK_FAILED = "webhook_failed"
    WEBHOOK_REJECTED = "webhook_rejected"
    SPOOL_FULL = "spool_full"
    SPOOL_CORRUPT = "spool_corrupt"


DROP_HELP = {
    Drop.BAD_PACKET: "a frame that could not be parsed. Persistent counts mean a link type or encapsulation the sensor does not read.",
    Drop.TRUNCATED_FRAME: "a frame shorter than its link-layer header. Raise the capture snap length.",
    Drop.BAD_IP: "an IP header that is invalid or cut short. Raise the capture snap length.",
    Drop.BAD_TCP: "a TCP header that is invalid or cut short. Raise the capture snap length.",
    Drop.UNKNOWN_LINKTYPE: "a capture link type the sensor does not read. Capture on an Ethernet, cooked (any) or raw-IP interface.",
    Drop.CAPTURE_ERROR: "the kernel socket returned an error while reading. Check the interface and the sensor's capabilities.",
    Drop.CAPTURE_KERNEL: "packets the kernel dropped because the capture ring was full (the sensor fell behind). "
                         "Compare with pii_sensor_packets_total for the share seen; raise capture.ring_bytes, "
                         "give the sensor more CPU, or narrow --bpf to the ports that matter.",
    Drop.TRUNCATED_CAPTURE: "a capture file that ends in the middle of a packet. The file was cut short while written or copied.",
    Drop.FRAGMENT_OVERFLOW: "an IPv4 datagram whose fragments exceeded the reassembly bound. Usually an attack or broken path MTU.",
    Drop.FRAGMENT_TIMEOUT: "IPv4 fragments whose datagram never completed. Check for packet loss before the sensor.",
    Drop.IPV6_FRAGMENT: "an IPv6 fragment (not reassembled). Rare for TCP; persistent counts mean broken path MTU discovery.",
    Drop.TCP_GAP: "bytes of a TCP stream the capture missed; the HTTP parser resynchronises after the hole. "
                  "Give the capture more buffer or CPU, or filter it to the ports that matter.",
    Drop.STREAM_EVICTED: "a connection forgotten because more were open than the tracking bound. Raise capture.max_connections.",
    Drop.HTTP_GARBAGE: "bytes that are not HTTP/1.x, skipped while looking for the next message. Non-HTTP traffic on a watched port.",
    Drop.INCOMPLETE_MESSAGE: "an HTTP message cut short by the end of its stream or capture.",
    Drop.ORPHAN_RESPONSE: "a response whose request was never seen (the capture began mid-connection, or a gap "
                          "took the request); it is never paired with another request.",
    Drop.RESPONSE_LOST: "a request whose response fell into a capture gap; it is reported without a response.",
    Drop.BAD_ENTRY: "a malformed HAR entry. Check the tool that exported the HAR.",
    Drop.TLS_RINGBUF: "TLS plaintext the eBPF probes could not hand over: the ring buffer was full (the sensor fell "
                      "behind). Give the sensor more CPU, or raise tls.ring_bytes.",
    Drop.TLS_CHUNK_CUT: "an SSL_write or SSL_read larger than the probe copies (64 KiB): the rest of it is a gap in "
                        "that connection. Bodies that large are seldom classified whole anyway.",
    Drop.TLS_RATE_LIMITED: "TLS plaintext of a process beyond tls.max_process_bytes_per_second, not read (a gap in its "
                           "connection): one busy process cannot take the sensor from the others.",
    Drop.BODY_TOO_LARGE: "a body larger than max_body_bytes (before or after decompression), or one that found no room "
                         "among the bodies all connections hold at once (capture.max_bodies_buffered_bytes). "
                         "Raise them if such bodies matter.",
    Drop.BAD_ENCODING: "a body whose Content-Encoding could not be undone (corrupt or unknown coding).",
    Drop.PARSE_ERROR: "a body that does not parse as its content type says; it is still scanned as text where possible.",
    Drop.TOO_DEEP: "a document nested deeper than payload.max_depth; the deeper part is not scanned.",
    Drop.TEXT_TRUNCATED: "free text longer than payload.max_text_chars; the rest is not scanned.",
    Drop.INTERNAL_ERROR: "an exchange the sensor failed on because of a bug. Please report it with the sensor's version.",
    Drop.QUEUE_FULL: "an exchange dropped because classification is behind (proxy.queue_size, "
                     "classifier.max_backlog). Give the sensor more CPU or workers.",
    Drop.CLASSIFIER_LOST: "an exchange held by a classifier process that died (killed, out of memory); "
                          "the workers restart. Check the sensor's memory limit.",
    Drop.CLASSIFIER_DOWN: "a proxied flow passed on unclassified while the classifier process could not be "
                          "restarted (pii_sensor_classifier_up is 0). Read the proxy's log for the reason.",
    Drop.SHUTDOWN: "an exchange still waiting for classification when the bounded shutdown ended "
                   "(proxy.stop_timeout_seconds). Raise the bound, or give the sensor more CPU.",
    Drop.BODY_STREAMED: "a flow mitmproxy streamed without buffering (stream_large_bodies); its body is not scanned.",
    Drop.FLOW_ERROR: "a proxied flow that failed (client went away mid-body, upstream refused or sent garbage).",
    Drop.PROXY_ERROR: "an unexpected error in the proxy's event loop.",
    Drop.WEBHOOK_BUFFER_FULL: "an event not sent because the webhook buffer was full. Check the receiver's availability.",
    Drop.WEBHOOK_FAILED: "an event the webhook receiver did not accept after every retry.",
    Drop.WEBHOOK_REJECTED: "an event the webhook receiver refused for good (a 4xx answer other than 408 and 429: "
                           "a wrong signature secret, a body it cannot read); not retried. Check the receiver's logs.",
    Drop.SPOOL_FULL: "an event dropped from the webhook spool for room: the oldest when events.spool_max_bytes is "
                     "reached while the receiver is down, or a new one when the disk is full. Raise the cap or fix the receiver.",
    Drop.SPOOL_CORRUPT: "a damaged record in the webhook spool (a write cut short by a crash or power loss, or a bad disk); skipped.",
    Drop.H2_FRAME_ERROR: "an HTTP/2 frame that could not be parsed; the rest of that direction of the connection is not read.",
    Drop.H2_HEADERS_UNREADABLE: "an HTTP/2 header block that could not be decoded: the capture joined the connection after "
                                "HPACK entries it refers to were made, or the block was too large. Its body is still read.",
    Drop.H2_TOO_MANY_STREAMS: "an HTTP/2 stream beyond the 1,000 open at once on a connection (sensor/wire/http2.py MAX_STREAMS).",
    Drop.WS_FRAME_ERROR: "a WebSocket frame header that cannot be one; the rest of that direction of the connection is not read.",
    Drop.GRPC_PARSE_ERROR: "a gRPC message that is not valid length-prefixed protobuf (or expands beyond max_body_bytes).",
}


class Skip(StrEnum):
    """What the sensor deliberately does not look at, by design: pii_sensor_skipped_total{reason}. Not loss."""

    TCP_RETRANSMISSION = "tcp_retransmission"
    TCP_IDLE_TIMEOUT = "tcp_idle_timeout"
    HTTP_RESYNC = "http_resync"
    BINARY_BODY = "binary_body"
    ARRAY_SAMPLED = "array_sampled"


SKIP_HELP = {
    Skip.TCP_RETRANSMISSION: "a TCP segment whose bytes were already seen.",
    Skip.TCP_IDLE_TIMEOUT: "a connection closed by the sensor after capture.idle_timeout_seconds without packets; what it held was processed.",
    Skip.HTTP_RESYNC: "the HTTP parser found the next message after a gap or garbage (the bytes skipped are counted as drops).",
    Skip.BINARY_BODY: "a body of a binary type (images, archives, protobuf without gRPC framing).",
    Skip.ARRAY_SAMPLED: "an array longer than payload.max_array_items; only its first items are scanned (they repeat shapes and paths).",
}


# --- the exchange --------------------------------------------------------------

def header_value(headers: list[tuple[str, str]], name: str) -> str | None:
    """The first header called `name` (case-insensitive), or None."""
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def host_without_port(authority: str | None) -> str | None:
    """'api.example.com:8443' -> 'api.example.com', '[2001:db8::1]:80' -> '2001:db8::1'."""
    if not authority:
        return None
    if authority.startswith("["):
        return authority[1:].split("]", 1)[0]
    host, sep, port = authority.rpartition(":")
    return host if sep and port.isdigit() and ":" not in host else authority


def ip_or_none(value) -> str | None:
    """The address as text when `value` is an IP address (sources pass on what they were given)."""
    try:
        return str(ipaddress.ip_address(str(value).strip("[]"))) if value else None
    except ValueError:
        return None


@dataclass(slots=True)
class Peer:
    ip: str | None = None
    port: int | None = None
    host: str | None = field(default=None, repr=False)  # Host header / SNI / URL host; may be personal
    process: tuple[int, str] | None = None  # (pid, comm) of a process traced with eBPF (sniff --tls)
    pod_uid: str | None = None  # ... and its Kubernetes pod, from its cgroup


@dataclass(slots=True)
class Message:
    headers: list[tuple[str, str]] = field(default_factory=list, repr=False)
    body: bytes = field(default=b"", repr=False)
    # True when `body` still carries its Content-Encoding (raw bytes off the wire);
    # False when it is already decoded, as HAR stores it.
    encoded: bool = True
    truncated: bool = False  # the source cut the body short (capture limits, HAR comment)

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


@dataclass(slots=True)
class Request(Message):
    method: str = "GET"
    target: str = field(default="/", repr=False)  # path and query, as on the request line


@dataclass(slots=True)
class Response(Message):
    status: int | None = None


@dataclass(slots=True)
class Exchange:
    """One HTTP request and its response, as every source (HAR, pcap, live, proxy) produces it."""

    time: float  # Unix seconds when the exchange started
    source: Peer
    destination: Peer = field(repr=False)  # its host may be personal
    request: Request
    response: Response | None = None
    labels: list[dict] | None = field(default=None, repr=False)  # `_pii_labels` from a labeled HAR, for eval
    adjusted_count: int = 1  # under sampling: the exchanges of its endpoint this one stands for
    tls: bool = False  # read as TLS plaintext from a process's OpenSSL (sniff --tls), not off the wire
    # what the proxy did to the request before it left (sensor/enforce/inline.py Outcome.record): plain values
    enforcement: dict | None = field(default=None, repr=False)


# --- fields: what the detectors look at ---------------------------------------

# Split points of camelCase, PascalCase, acronyms (IPAddress -> ip address), digits.
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


@lru_cache(maxsize=65536)
def key_tokens(key: str) -> tuple[str, ...]:
    """'customerEmail' / 'customer_email' / 'Customer-Email' -> ('customer', 'email')."""
    return tuple(t.lower() for t in _CAMEL.findall(key))


@dataclass(slots=True, repr=False)
class Key:
    """A normalized key name: its word tokens and its compact form ('dateofbirth').
    Keys can be personal data themselves ({"jane@example.com": {...}}): the repr hides them."""

    raw: str
    tokens: tuple[str, ...]
    compact: str
    token_set: frozenset

    @classmethod
    def of(cls, raw: str) -> "Key":
        return key_of(raw)

    def has(self, words) -> bool:
        """True if any token of the key is one of `words`."""
        return not self.token_set.isdisjoint(words)

    def contains(self, phrases) -> bool:
        """True if the compact key contains one of `phrases` ('birthdate' in 'userbirthdate')."""
        return any(p in self.compact for p in phrases)

    def __repr__(self) -> str:
        return f"Key(<{len(self.raw)} chars>)"


@lru_cache(maxsize=65536)
def key_of(raw: str) -> Key:
    """Keys repeat endlessly in traffic: build each once. (Key objects are never mutated.)"""
    tokens = key_tokens(raw)
    return Key(raw, tokens, "".join(tokens), frozenset(tokens))


EMPTY_KEY = Key("", (), "", frozenset())


@dataclass(slots=True)
class Record:
    """The object (JSON dict, XML element, form, header block) that holds sibling fields."""

    keys: list[Key] = field(default_factory=list, repr=False)
    values: dict[str, str] = field(default_factory=dict, repr=False)  # compact key -> value
    parents: tuple[Key, ...] = field(default=(), repr=False)  # keys from the root down to this record
    parent: "Record | None" = field(default=None, repr=False)  # the enclosing object, whose siblings say whose this is
    resource: tuple = field(default=(), repr=False)  # a body's root: the URL path's words ('v', 'customers')
    detectors: dict | None = field(default=None, repr=False)  # the classifier's: key -> detectors its context admits
    # the classifier's answers about the whole record, found once (detectors/context.py)
    person_keys: tuple | None = field(default=None, repr=False)
    says: tuple | None = field(default=None, repr=False)

    def add(self, key: Key, value: str) -> None:
        self.keys.append(key)
        self.values.setdefault(key.compact, value)

    def sibling_has(self, words, exclude: Key | None = None) -> bool:
        return any(k is not exclude and k.has(words) for k in self.keys)

    def parent_has(self, words) -> bool:
        return any(k.has(words) for k in self.parents)


@dataclass(slots=True)
class Field:
    """One scalar value and where it sits: `part` and JSONPath `path` (SPEC.md section 2),
    its own key, and the Record of its siblings."""

    part: str
    path: str = field(repr=False)  # may hold keys that are personal data until masked
    key: Key = field(repr=False)  # the value's own key (EMPTY_KEY for a bare value)
    value: str = field(repr=False)
    record: Record = field(repr=False)
    is_number: bool = False
    nearby: str = field(default="", repr=False)  # for a span found in free text: the words around it, lower-case
    is_key: bool = False  # the value is a key of its record ({"jane@example.com": {...}}), not a value


@dataclass(slots=True)
class Finding:
    """Stage 2's verdict: this value, at this place, is personal data of this type."""

    type: str
    part: str
    path: str = field(repr=False)
    confidence: float
    value: str = field(repr=False)  # the matched text; only ever rendered masked


# --- the event (SPEC.md section 2) ----------------------------------------------

@dataclass(slots=True)
class Party:
    """A source or destination as events report it: never a raw personal host name."""

    ip: str | None
    port: int | None
    name: str | None = None  # the workload name (configuration or Kubernetes)
    namespace: str | None = None  # Kubernetes namespace, when known
    host: str | None = None  # destinations only: the host name, masked where personal
    external: bool | None = None  # destinations only
    country: str | None = None  # ISO 3166-1 alpha-2 (sensor/geo), when known
    process: dict | None = None  # {"pid": ..., "comm": ...} of the side traced with eBPF (sniff --tls)
    pod_uid: str | None = field(default=None, repr=False)  # its pod (from its cgroup), named in name_workloads

    @property
    def workload(self) -> str | None:
        """'namespace/name' for workloads found in Kubernetes, the configured name otherwise."""
        return f"{self.namespace}/{self.name}" if self.namespace and self.name else self.name

    def to_dict(self, destination: bool) -> dict:
        out = {"ip": self.ip, "port": self.port}
        if destination:
            out["host"] = self.host
        if self.namespace:
            out["namespace"] = self.namespace
        out["name"] = self.name
        if destination:
            out["external"] = self.external
        out["country"] = self.country
        if self.process:
            out["process"] = self.process
        return out


@dataclass(slots=True)
class ReportedFinding:
    """A finding as an event carries it: the value only as a masked sample, and, with
    evidence.public_key configured, sealed to that key (sensor/evidence.py)."""

    type: str
    part: str
    path: str  # personal keys masked
    sensitivity: str
    confidence: float
    sample: str
    evidence: str | None = None  # the raw value encrypted; only the private key's holder opens it

    def to_dict(self) -> dict:  # dataclasses.asdict deep-copies every value: a tenth of a scan's time
        out = {"type": self.type, "part": self.part, "path": self.path, "sensitivity": self.sensitivity,
               "confidence": self.confidence, "sample": self.sample}
        if self.evidence is not None:
            out["evidence"] = self.evidence
        return out


@dataclass(slots=True)
class Event:
    time: str  # UTC ISO 8601
    source: Party
    destination: Party
    method: str
    path: str  # the URL path with personal data masked
    endpoint: str  # the path templated: /v1/users/{id}
    status: int | None
    findings: list[ReportedFinding]
    data_types: list[str]
    sensitivity: str | None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))  # unique: receivers remove duplicates by it
    adjusted_count: int = 1  # under sampling: the exchanges this event stands for (OpenTelemetry's term)
    cross_border: bool = False  # the data went to a country outside geo.home (SPEC.md section 7)
    violations: list = field(default_factory=list)  # [{"rule": ..., "action": ...}] of the policy
    tls: bool = False  # read as TLS plaintext with eBPF (SPEC.md section 8)
    enforcement: dict | None = None  # the proxy's record of what it did (Exchange.enforcement); violations show it

    @property
    def route(self) -> str:
        """'METHOD /endpoint', as metrics, throttling and the data map name an endpoint."""
        return f"{self.method} {self.endpoint}"

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "time": self.time,
            "source": self.source.to_dict(False),
            "destination": self.destination.to_dict(True),
            "request": {"method": self.method, "path": self.path, "endpoint": self.endpoint},
            "response": {"status": self.status},
            "findings": [f.to_dict() for f in self.findings],
            "data_types": self.data_types,
            "sensitivity": self.sensitivity,
            "cross_border": self.cross_border,
            "violations": self.violations,
            **({"adjusted_count": self.adjusted_count} if self.adjusted_count > 1 else {}),
            **({"tls": True} if self.tls else {}),
        }

    def to_json(self) -> str:
        """The one serialisation every sink and command writes (one JSON line)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)
