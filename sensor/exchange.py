"""The Exchange: one HTTP request and its response, as every capture source produces it.

HAR, pcap, live capture and the proxy all build Exchanges; everything downstream
(payload decoding, classification, events, metrics) is shared.
"""
from __future__ import annotations

from dataclasses import dataclass, field


def header_value(headers: list[tuple[str, str]], name: str) -> str | None:
    """The first header called `name` (case-insensitive), or None."""
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


@dataclass(slots=True)
class Peer:
    ip: str | None = None
    port: int | None = None
    host: str | None = None  # Host header / SNI / URL host, for the destination


@dataclass(slots=True)
class Message:
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # True when `body` still carries its Content-Encoding (raw bytes off the wire);
    # False when it is already decoded, as HAR stores it.
    encoded: bool = True
    truncated: bool = False  # the source cut the body short (capture limits, HAR comment)

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


@dataclass(slots=True)
class Request(Message):
    method: str = "GET"
    target: str = "/"  # path and query, as on the request line


@dataclass(slots=True)
class Response(Message):
    status: int | None = None


@dataclass(slots=True)
class Exchange:
    time: float  # Unix seconds when the exchange started
    source: Peer
    destination: Peer
    request: Request
    response: Response | None = None
    labels: list[dict] | None = None  # `_pii_labels` from a labeled HAR, for eval
