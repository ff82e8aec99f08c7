"""Workload names for peers, and whether a destination is outside the internal networks."""
from __future__ import annotations

import ipaddress
from functools import lru_cache

from ..config import Config
from ..model import Peer


@lru_cache(maxsize=16384)  # peers repeat with every exchange
def _ip(value):
    try:
        return ipaddress.ip_address(value) if value else None
    except ValueError:
        return None


def name_of(peer: Peer, config: Config) -> str | None:
    ip = _ip(peer.ip)
    host = (peer.host or "").lower()
    for w in config.workloads:
        if ip is not None and any(ip in n for n in w.networks if n.version == ip.version):
            return w.name
        if host and host in w.hosts:
            return w.name
    return None


def is_external(peer: Peer, config: Config) -> bool:
    ip = _ip(peer.ip) or _ip(peer.host)
    if ip is not None:
        return not any(ip in n for n in config.internal_networks if n.version == ip.version)
    host = (peer.host or "").lower()
    if not host:
        return False  # nothing known: do not claim the data left the cluster
    if "." not in host:
        return False  # single-label names resolve inside the cluster
    return not any(host == s.lstrip(".") or host.endswith(s) for s in config.internal_suffixes)
