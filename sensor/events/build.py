"""Findings -> Event (SPEC.md section 2), with nothing raw in it: samples masked, personal
data masked in the URL path, the endpoint, finding paths (keys that are personal data)
and host names; peers named from the configuration or Kubernetes."""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from ..config import Config
from ..model import PART_ORDER, Event, Exchange, Finding, Party, Peer, ReportedFinding
from ..payload import jsonpath
from . import identifiers
from .endpoints import PathView
from .mask import mask
from .peers import is_external, name_of


def iso_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def safe_host(host: str | None) -> str | None:
    """The host with every label that is personal data masked: 'jane-doe.example.com' -> '****-***.example.com'."""
    if not host:
        return host
    labels = host.split(".")
    if all(label.isdigit() for label in labels) or ":" in host:
        return host  # an IP address
    return ".".join(mask(label) if identifiers.kind(label) else label for label in labels)


def url_path(exchange: Exchange) -> str:
    return urlsplit(exchange.request.target).path or "/"


class EventBuilder:
    def __init__(self, config: Config, pods=None):
        self.config = config
        self.pods = pods  # a kube.PodResolver when workload names come from Kubernetes

    def party(self, peer: Peer, destination: bool) -> Party:
        out = Party(peer.ip, peer.port)
        pod = self.pods.lookup(peer.ip) if self.pods is not None else None
        if pod is not None:
            out.namespace, out.name = pod
        else:
            out.name = name_of(peer, self.config)  # the configured map is the fallback
        if destination:
            out.host = safe_host(peer.host)
            out.external = is_external(peer, self.config)
        return out

    def build(self, exchange: Exchange, findings: list[Finding]) -> Event:
        sens = self.config.sensitivity
        findings = sorted(findings, key=lambda f: (PART_ORDER.get(f.part, 9), f.path, f.type))
        view = PathView(url_path(exchange), {f.value: f.type for f in findings if f.part == "request.path"})
        personal_values = {f.value for f in findings}

        def safe_key(key: str) -> str | None:
            return mask(key) if key in personal_values or identifiers.kind(key) else None

        types = sorted({f.type for f in findings})
        response = exchange.response
        return Event(
            time=iso_time(exchange.time),
            source=self.party(exchange.source, False),
            destination=self.party(exchange.destination, True),
            method=exchange.request.method,
            path=view.masked,
            endpoint=view.template,
            status=response.status if response else None,
            findings=[ReportedFinding(f.type, f.part, jsonpath.map_keys(f.path, safe_key), sens.level(f.type),
                                      f.confidence, mask(f.value)) for f in findings],
            data_types=types,
            sensitivity=sens.combine(types) if types else None,
        )
