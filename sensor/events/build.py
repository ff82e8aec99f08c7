"""Findings -> Event (SPEC.md section 2), with nothing raw in it: samples masked, personal
data masked in the URL path, the endpoint, finding paths (keys that are personal data)
and host names; peers named from the configuration or Kubernetes."""
from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from urllib.parse import urlsplit

from detectors.context import PERSON_SIBLINGS, PERSON_WORDS

from .. import policy
from ..config import Config
from ..geo.locate import Locator
from ..model import METHODS, PART_ORDER, Event, Exchange, Finding, Key, Party, Peer, ReportedFinding, ip_or_none
from ..payload import jsonpath
from . import identifiers
from .endpoints import masked_and_template
from .mask import mask
from .peers import is_external, name_of


def iso_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


UNKNOWN_PATH = "{unknown}"
_DNS_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")


@lru_cache(maxsize=4096)  # hosts repeat with every exchange, and judging their labels is costly
def safe_host(host: str | None) -> str | None:
    """The host as events show it: an IP address or a DNS name with every label that is personal
    data masked ('jane-doe.example.com' -> '****-***.example.com'); anything else masked whole."""
    if not host:
        return host
    ip = ip_or_none(host)
    if ip:
        return ip
    if not _DNS_NAME.fullmatch(host):
        return mask(host)
    labels = host.split(".")
    # a name can run across labels (jane.doe.example.com): judge each label with its neighbour
    personal = {i for i, label in enumerate(labels) if not identifiers.shown(label)}
    personal |= {j for i in range(len(labels) - 1) if not {i, i + 1} & personal
                 and identifiers.kind(labels[i] + "." + labels[i + 1]) for j in (i, i + 1)}
    return ".".join(mask(label) if i in personal else label for i, label in enumerate(labels))


def safe_method(method: str) -> str:
    """The request method, or '_OTHER' for one outside the registered methods (as OpenTelemetry
    reports them): HAR files and proxies pass on whatever a client sent."""
    return method if method in METHODS else "_OTHER"


def url_path(exchange: Exchange) -> str:
    return urlsplit(exchange.request.target).path or "/"


def _safe_key(key: str, previous: str | None, personal_values) -> str | None:
    """A finding path's key as events show it: None to keep it, else its masked form."""
    if key in personal_values:
        return mask(key)
    if key.isdigit() and len(key) <= 5:
        return None  # protobuf field numbers ($['1']['3']), array-like keys: no one's data
    if Key.of(key).token_set <= PERSON_SIBLINGS and identifiers.shown(key):
        return None  # 'street', 'email', 'city' under 'shipping' are the schema's words, not a surname
    after_person_word = previous is not None and Key.of(previous).has(PERSON_WORDS)
    return None if identifiers.shown(key, after_person_word) else mask(key)


_SAFE_PATHS: dict[str, str] = {}
_MAX_SAFE_PATHS = 20_000


def _safe_path(path: str, personal_values: set[str]) -> str:
    """The finding's path with every key that is personal data masked. Paths repeat endlessly and
    judging their keys is costly: remembered, unless a value found in the exchange may be part of
    the path (then a key may be that value, and is judged with it)."""
    if any(value in path or "'" in value or "\\" in value for value in personal_values):  # (escaped in paths)
        return jsonpath.map_keys(path, lambda k, prev: _safe_key(k, prev, personal_values), mask)
    safe = _SAFE_PATHS.get(path)
    if safe is None:
        if len(_SAFE_PATHS) >= _MAX_SAFE_PATHS:
            _SAFE_PATHS.clear()
        safe = _SAFE_PATHS[path] = jsonpath.map_keys(path, lambda k, prev: _safe_key(k, prev, ()), mask)
    return safe


class EventBuilder:
    def __init__(self, config: Config, pods=None):
        self.config = config
        self.pods = pods  # a kube.PodResolver when workload names come from Kubernetes
        self.locator = Locator(config)
        self.sealer = None  # evidence.Sealer with evidence.public_key configured
        if config.evidence_key:
            from ..evidence import Sealer  # cryptography loads only when evidence is configured

            self.sealer = Sealer(config.evidence_key)

    def party(self, peer: Peer, destination: bool) -> Party:
        out = Party(peer.ip, peer.port, name_of(peer, self.config))
        if peer.process:
            out.process = {"pid": peer.process[0], "comm": peer.process[1]}
            out.pod_uid = peer.pod_uid
        if destination:
            out.host = safe_host(peer.host)
            out.external = is_external(peer, self.config)
        return out

    def name_workloads(self, event: Event) -> None:
        """Names from Kubernetes, where known, before the configured ones (in the main process:
        the pod watch lives there, and workers build events without it)."""
        if self.pods is None:
            return
        for party in (event.source, event.destination):
            pod = self.pods.lookup_uid(party.pod_uid) or self.pods.lookup(party.ip)  # a traced process: its cgroup
            if pod is not None:
                party.namespace, party.name = pod

    def judge(self, event: Event) -> None:
        """Countries, the border crossing and the policy's verdict (SPEC.md section 7), once the
        parties have their workload names (so in the main process, after name_workloads)."""
        event.source.country = self.locator.country(event.source, False)
        event.destination.country = self.locator.country(event.destination, bool(event.destination.external))
        event.cross_border = bool(event.data_types) and self.locator.cross_border(event.source, event.destination)
        event.violations = policy.violations(self.config.policy, event) if self.config.policy else []
        if event.enforcement:  # the proxy classified the request inline: say what it did about each rule
            event.violations = policy.mark_enforced(event.violations, event.enforcement)

    def build(self, exchange: Exchange, findings: list[Finding]) -> Event:
        sens = self.config.sensitivity
        findings = sorted(findings, key=lambda f: (PART_ORDER.get(f.part, 9), f.path, f.type))
        if exchange.request.target:
            path, endpoint = masked_and_template(url_path(exchange), {f.value: f.type for f in findings if f.part == "request.path"})
        else:  # an HTTP/2 stream whose headers could not be read (a capture joined mid-connection)
            path = endpoint = UNKNOWN_PATH
        personal_values = {f.value for f in findings}

        types = sorted({f.type for f in findings})
        response = exchange.response
        event = Event(
            time=iso_time(exchange.time),
            source=self.party(exchange.source, False),
            destination=self.party(exchange.destination, True),
            method=safe_method(exchange.request.method),
            path=path,
            endpoint=endpoint,
            status=response.status if response else None,
            findings=[ReportedFinding(f.type, f.part, _safe_path(f.path, personal_values), sens.level(f.type),
                                      f.confidence, mask(f.value)) for f in findings],
            data_types=types,
            sensitivity=sens.combine(types) if types else None,
            adjusted_count=exchange.adjusted_count,
            tls=exchange.tls,
            enforcement=exchange.enforcement,
        )
        if self.sealer is not None and findings:
            self._seal(event, findings)
        return event

    def _seal(self, event: Event, findings: list[Finding]) -> None:
        """Each finding's raw value sealed to evidence.public_key, bound to its place in this event
        (id, type, part, masked path): the value itself is kept nowhere."""
        from ..evidence import context

        reported = event.findings
        blobs = self.sealer.seal([(f.value, context(event.id, r.type, r.part, r.path)) for f, r in zip(findings, reported)])
        for r, blob in zip(reported, blobs):
            r.evidence = blob
