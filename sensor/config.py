"""The YAML configuration file: sensitivity, thresholds, size caps, workload names."""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

import yaml

from detectors.classify import DEFAULT_MIN_CONFIDENCE
from detectors.sensitivity import DEFAULT_THRESHOLDS, DEFAULT_WEIGHTS, TYPES, Sensitivity

from . import policy
from .errors import InputError
from .geo.countries import expand, is_country
from .geo.regions import country_of_region

DEFAULT_INTERNAL = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "100.64.0.0/10",
                    "169.254.0.0/16", "::1/128", "fc00::/7", "fe80::/10"]
DEFAULT_INTERNAL_SUFFIXES = [".local", ".internal", ".svc", ".cluster.local", "localhost"]
LEVELS = ("low", "medium", "high")


@dataclass
class Workload:
    name: str
    networks: list = field(default_factory=list)  # ip_network objects
    hosts: list[str] = field(default_factory=list)
    country: str | None = None  # where it runs, when not the cluster's country


def usable_cores(cpu_max: str = "/sys/fs/cgroup/cpu.max") -> int:
    """The cores this process may run on, within its container's CPU limit (cgroup v2's cpu.max,
    'QUOTA PERIOD' or 'max PERIOD'): a pod limited to 1 CPU on a 64-core node has one."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = open(cpu_max, encoding="ascii").read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return cores


def default_workers() -> int:
    """One classifier process per usable core; none of its own on a single core."""
    cores = usable_cores()
    return cores if cores > 1 else 0


@dataclass(repr=False)
class Config:
    """Every setting and limit, validated once. Sections of the YAML file map to attributes
    through _SECTIONS; config.example.yaml documents each."""

    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    max_body_bytes: int = 1 << 20
    ner: bool = True
    sensitivity: Sensitivity = field(default_factory=Sensitivity)
    workloads: list[Workload] = field(default_factory=list)
    internal_networks: list = field(default_factory=lambda: [ipaddress.ip_network(n) for n in DEFAULT_INTERNAL])
    internal_suffixes: list[str] = field(default_factory=lambda: list(DEFAULT_INTERNAL_SUFFIXES))
    kubernetes: dict | None = None  # {} = in-cluster; {"kubeconfig": path} or {"host": url}; "max_pods"
    # geography and policy (SPEC.md section 7)
    geo_home: frozenset = frozenset()  # countries PII may go to without crossing a border (EU, EEA expanded)
    geo_country: str | None = None  # where internal workloads run: geo.country, geo.region, or the node's region
    policy: list = field(default_factory=list)  # policy.Rule
    grpc_descriptors: tuple = ()  # FileDescriptorSet files: field names for gRPC messages
    # payload: how deep and how much of a body is walked
    max_depth: int = 64
    max_array_items: int = 32  # longer arrays are sampled: the first items carry the same shapes and paths
    max_text_chars: int = 20_000  # free text beyond this is not scanned
    # capture: connections and bytes held by TCP reassembly
    max_connections: int = 100_000
    max_stream_buffer: int = 1 << 20  # out-of-order bytes held per direction before a hole is skipped
    max_buffered: int = 32 << 20  # ... and across all connections: the reassembly's memory bound
    max_bodies_buffered: int = 32 << 20  # bodies of HTTP messages still arriving, across all connections
    idle_timeout: float = 60.0  # seconds without packets before a connection is closed (live capture)
    flush_interval: float = 2.0  # seconds between sweeps for idle connections (live capture)
    max_fragment_datagrams: int = 1024
    fragment_timeout: float = 30.0
    max_header_bytes: int = 64 * 1024  # an HTTP head longer than this is garbage
    ring_bytes: int = 32 << 20  # the kernel ring per interface that holds packets until sniff reads them
    # classifier
    ner_cache_size: int = 50_000  # texts whose spaCy entities are remembered
    workers: int = field(default_factory=default_workers)  # classifier processes; 0 = in the main one
    max_backlog: int = 4096  # sniff: exchanges waiting for a worker; beyond, dropped as queue_full
    max_backlog_bytes: int = 64 << 20  # ... and their bodies
    sampling: bool = True  # sniff: under overload, classify a sample of each endpoint (sensor/sampling.py)
    sample_first: int = 10  # ... after always classifying its first exchanges
    # events: throttling and sinks
    event_interval: float = 0.0  # seconds between repeated events for one endpoint; 0 = no throttling
    max_throttled_endpoints: int = 10_000  # endpoints the throttle remembers
    webhook_secret: str | None = None
    webhook_buffer: int = 10_000
    webhook_retries: int = 5
    webhook_backoff: float = 0.5
    webhook_timeout: float = 5.0
    file_max_bytes: int = 100 << 20
    file_backups: int = 5
    spool_dir: str | None = None  # webhooks keep undelivered events on disk here (a directory per sink); None: in memory
    spool_max_bytes: int = 256 << 20  # ... up to this much per sink; beyond, the oldest are dropped and counted
    webhook_batch: int = 500  # with a spool: events per POST at most, as JSON lines (1: one JSON event per POST)
    # metrics and proxy bounds
    max_label_values: int = 50
    queue_size: int = 10_000
    stop_timeout: float = 10.0  # proxy: SIGTERM ends within this many seconds, what still waits counted
    client_header_timeout: float = 30.0  # proxy: a new connection's first request headers must arrive within this
    client_body_timeout: float = 120.0  # ... a request's body within this, once its headers are in
    client_idle_timeout: float = 300.0  # ... a keep-alive connection may wait this long for its next request
    tls_max_process_bytes_per_second: int = 64 << 20  # sniff --tls: a process's plaintext beyond this is not read
    tls_ring_bytes: int = 4 << 20  # ... the eBPF ring buffer the probes hand plaintext over in (a power of 2)
    tls_rescan_interval: float = 10.0  # ... seconds between looks for new processes with their own OpenSSL
    # the hub
    hub_flush_interval: float = 2.0  # seconds between merges of the in-memory aggregate into the database
    hub_max_pending_flows: int = 100_000  # flows held in memory while the database is slow or down
    hub_max_body_bytes: int = 10 << 20  # a larger ingest body is refused (413)
    hub_tokens: tuple = ()  # bearer tokens for reading (PII_SENSOR_HUB_TOKENS, comma-separated); none = open
    # encrypted evidence (SPEC.md section 9): findings carry their value sealed to this public key
    evidence_public_key: str | None = None  # the PEM file, as configured
    evidence_key: bytes | None = None  # its raw X25519 key, read once here: workers get the bytes
    # enforcement of redact and block rules in the proxy (SPEC.md section 9)
    enforcement_dry_run: bool = False  # report what would be redacted or blocked; change nothing
    enforcement_timeout_ms: float = 200  # inline classification of a request waits at most this long
    enforcement_fail_closed: bool = False  # past it (or on an error), answer 403 instead of forwarding unchanged

    def __repr__(self) -> str:  # never print the webhook secret
        return f"Config(min_confidence={self.min_confidence}, workloads={len(self.workloads)})"


_SECTIONS = {  # section -> {key: (attribute, type, minimum)}
    "payload": {"max_depth": ("max_depth", int, 1), "max_array_items": ("max_array_items", int, 1),
                "max_text_chars": ("max_text_chars", int, 1)},
    "capture": {"max_connections": ("max_connections", int, 1), "max_stream_buffer_bytes": ("max_stream_buffer", int, 1),
                "max_buffered_bytes": ("max_buffered", int, 1),
                "max_bodies_buffered_bytes": ("max_bodies_buffered", int, 1),
                "idle_timeout_seconds": ("idle_timeout", (int, float), 0.1),
                "flush_interval_seconds": ("flush_interval", (int, float), 0.1),
                "max_fragment_datagrams": ("max_fragment_datagrams", int, 1),
                "fragment_timeout_seconds": ("fragment_timeout", (int, float), 0.1),
                "max_header_bytes": ("max_header_bytes", int, 1024),
                "ring_bytes": ("ring_bytes", int, 2 << 20)},
    "classifier": {"ner_cache_size": ("ner_cache_size", int, 1), "workers": ("workers", int, 0),
                   "max_backlog": ("max_backlog", int, 1), "max_backlog_bytes": ("max_backlog_bytes", int, 1 << 20),
                   "sampling": ("sampling", bool, None), "sample_first": ("sample_first", int, 0)},
    "events": {"min_interval_seconds": ("event_interval", (int, float), 0),
               "max_throttled_endpoints": ("max_throttled_endpoints", int, 1), "webhook_secret": ("webhook_secret", str, None),
               "webhook_buffer": ("webhook_buffer", int, 1), "webhook_retries": ("webhook_retries", int, 0),
               "webhook_backoff_seconds": ("webhook_backoff", (int, float), 0),
               "webhook_timeout_seconds": ("webhook_timeout", (int, float), 0.1),
               "file_max_bytes": ("file_max_bytes", int, 0), "file_backups": ("file_backups", int, 0),
               "spool_dir": ("spool_dir", str, None), "spool_max_bytes": ("spool_max_bytes", int, 64 << 10),
               "webhook_batch": ("webhook_batch", int, 1)},
    "metrics": {"max_label_values": ("max_label_values", int, 1)},
    "proxy": {"queue_size": ("queue_size", int, 1), "stop_timeout_seconds": ("stop_timeout", (int, float), 1),
              "header_timeout_seconds": ("client_header_timeout", (int, float), 1),
              "body_timeout_seconds": ("client_body_timeout", (int, float), 1),
              "idle_timeout_seconds": ("client_idle_timeout", (int, float), 1)},
    "tls": {"max_process_bytes_per_second": ("tls_max_process_bytes_per_second", int, 1024),
            "ring_bytes": ("tls_ring_bytes", int, 4096), "rescan_interval_seconds": ("tls_rescan_interval", (int, float), 1)},
    "hub": {"flush_interval_seconds": ("hub_flush_interval", (int, float), 0.05),
            "max_pending_flows": ("hub_max_pending_flows", int, 1), "max_body_bytes": ("hub_max_body_bytes", int, 1024)},
    "evidence": {"public_key": ("evidence_public_key", str, None)},
    "enforcement": {"dry_run": ("enforcement_dry_run", bool, None),
                    "inline_timeout_ms": ("enforcement_timeout_ms", (int, float), 1),
                    "fail_closed": ("enforcement_fail_closed", bool, None)},
}


def _fail(path: str, msg: str):
    raise InputError(f"{path}: {msg}")


def _network(path, value):
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        _fail(path, f"not an IP network: {value!r}")


def load(path: str | None, workers: int | None = None) -> Config:
    """The configuration file's settings; `workers`, when given, is the command line's --workers."""
    config = _load_file(path)
    if workers is not None:
        config.workers = workers
    # secrets come from the environment (a Kubernetes Secret), not from a config map
    config.webhook_secret = os.environ.get("PII_SENSOR_WEBHOOK_SECRET") or config.webhook_secret
    config.hub_tokens = tuple(t.strip() for t in os.environ.get("PII_SENSOR_HUB_TOKENS", "").split(",") if t.strip())
    return config


def _load_file(path: str | None) -> Config:
    config = Config()
    if path is None:
        return config
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
    except OSError as e:
        _fail(path, f"cannot read: {e.strerror or e}")
    except yaml.YAMLError as e:
        _fail(path, f"invalid YAML: {str(e).splitlines()[0]}")
    if not isinstance(doc, dict):
        _fail(path, "expected a mapping at the top level")
    known = {"min_confidence", "max_body_bytes", "ner", "sensitivity", "workloads", "internal_networks", "internal_suffixes",
             "kubernetes", "geo", "policy", "grpc", *_SECTIONS}
    unknown = set(doc) - known
    if unknown:
        _fail(path, f"unknown setting(s): {', '.join(sorted(unknown))}")

    if "min_confidence" in doc:
        v = doc["min_confidence"]
        if not isinstance(v, (int, float)) or not 0 <= v <= 1:
            _fail(path, "min_confidence must be a number in [0, 1]")
        config.min_confidence = float(v)
    if "max_body_bytes" in doc:
        v = doc["max_body_bytes"]
        if not isinstance(v, int) or v <= 0:
            _fail(path, "max_body_bytes must be a positive integer")
        config.max_body_bytes = v
    if "ner" in doc:
        config.ner = bool(doc["ner"])

    sens = doc.get("sensitivity") or {}
    if not isinstance(sens, dict):
        _fail(path, "sensitivity must be a mapping")
    for t, level in (sens.get("levels") or {}).items():
        if t not in TYPES:
            _fail(path, f"unknown data type {t!r} (known: {', '.join(TYPES)})")
        if level not in LEVELS:
            _fail(path, f"level of {t} must be one of low, medium, high")
        config.sensitivity.levels[t] = level
    for name, target in (("weights", config.sensitivity.weights), ("thresholds", config.sensitivity.thresholds)):
        allowed = DEFAULT_WEIGHTS if name == "weights" else DEFAULT_THRESHOLDS
        for k, v in (sens.get(name) or {}).items():
            if k not in allowed or not isinstance(v, (int, float)):
                _fail(path, f"sensitivity.{name}.{k} must be one of {', '.join(allowed)} with a number")
            target[k] = v

    for i, w in enumerate(doc.get("workloads") or []):
        if not isinstance(w, dict) or not w.get("name"):
            _fail(path, f"workloads[{i}] needs a name")
        nets, hosts = [], []
        for m in w.get("match") or []:
            try:
                nets.append(ipaddress.ip_network(str(m), strict=False))
            except ValueError:
                hosts.append(str(m).lower())
        country = w.get("country")
        if country is not None and not is_country(str(country)):
            _fail(path, f"workloads[{i}].country must be an ISO 3166-1 alpha-2 code, not {country!r}")
        config.workloads.append(Workload(str(w["name"]), nets, hosts, str(country).upper() if country else None))
    if "internal_networks" in doc:
        config.internal_networks = [_network(path, n) for n in doc["internal_networks"] or []]
    if "internal_suffixes" in doc:
        config.internal_suffixes = [str(s).lower() for s in doc["internal_suffixes"] or []]
    if doc.get("kubernetes"):
        kube = doc["kubernetes"]
        if kube is True:
            kube = {}
        if not isinstance(kube, dict) or set(kube) - {"kubeconfig", "host", "max_pods"}:
            _fail(path, "kubernetes must be true or a mapping with kubeconfig, host or max_pods")
        if not isinstance(kube.get("max_pods", 1), int) or isinstance(kube.get("max_pods"), bool) or kube.get("max_pods", 1) < 1:
            _fail(path, "kubernetes.max_pods must be a number >= 1")
        config.kubernetes = kube
    _geo(path, doc.get("geo"), config)
    _grpc(path, doc.get("grpc"), config)
    config.policy = policy.parse(doc.get("policy"), path)
    for section, keys in _SECTIONS.items():
        values = doc.get(section) or {}
        if not isinstance(values, dict):
            _fail(path, f"{section} must be a mapping")
        for k, v in values.items():
            if k not in keys:
                _fail(path, f"unknown setting {section}.{k} (known: {', '.join(keys)})")
            attr, kind, minimum = keys[k]
            if kind in (str, bool):
                if not isinstance(v, kind) and not (kind is str and v is None):  # null: not set
                    _fail(path, f"{section}.{k} must be {'true or false' if kind is bool else 'a string'}")
            elif not isinstance(v, kind) or isinstance(v, bool) or v < minimum:
                _fail(path, f"{section}.{k} must be a number >= {minimum}")
            setattr(config, attr, v)
    if config.spool_dir:  # relative to the configuration file, as grpc.descriptors are
        config.spool_dir = os.path.join(os.path.dirname(os.path.abspath(path)), config.spool_dir)
    if config.evidence_public_key:
        _evidence(path, config)
    return config


def _evidence(path: str, config: Config) -> None:
    """Reads the public key now: a bad key stops the sensor at start, not at its first finding."""
    from . import evidence  # cryptography loads only when evidence is configured

    config.evidence_public_key = os.path.join(os.path.dirname(os.path.abspath(path)), config.evidence_public_key)
    try:
        config.evidence_key = evidence.load_public_key(config.evidence_public_key)
    except evidence.EvidenceError as e:
        _fail(path, f"evidence.public_key: {e}")


def _geo(path: str, geo, config: Config) -> None:
    if geo is None:
        return
    if not isinstance(geo, dict) or set(geo) - {"home", "country", "region"}:
        _fail(path, "geo must be a mapping with home, country or region")
    home = geo.get("home") or []
    if isinstance(home, str):
        home = [home]
    try:
        config.geo_home = expand(home)
    except (ValueError, TypeError) as e:
        _fail(path, f"geo.home: {e}")
    if geo.get("country") is not None:
        if not is_country(str(geo["country"])):
            _fail(path, f"geo.country must be an ISO 3166-1 alpha-2 code, not {geo['country']!r}")
        config.geo_country = str(geo["country"]).upper()
    elif geo.get("region") is not None:
        config.geo_country = country_of_region(str(geo["region"]))
        if config.geo_country is None:
            _fail(path, f"geo.region: no country known for cloud region {geo['region']!r}; set geo.country")


def _grpc(path: str, grpc, config: Config) -> None:
    if grpc is None:
        return
    if not isinstance(grpc, dict) or set(grpc) - {"descriptors"} or not isinstance(grpc.get("descriptors", []), list):
        _fail(path, "grpc must be a mapping with descriptors: a list of FileDescriptorSet files")
    base = os.path.dirname(os.path.abspath(path))
    files = tuple(os.path.join(base, str(f)) for f in grpc.get("descriptors") or [])  # relative to the config file
    if files:
        from .payload import grpc_names

        try:
            grpc_names.load(files)
        except ValueError as e:
            _fail(path, f"grpc.descriptors: {e}")
    config.grpc_descriptors = files
