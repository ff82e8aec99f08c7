"""IP addresses of clients and users: fields and X-Forwarded-For-style headers; not version strings."""
from __future__ import annotations

import ipaddress
import re

from .base import Candidate
from .context import VERSION_WORDS, nearby_has
from sensor.model import Field

TYPE = "IP address"
IN_KEYS = True  # objects keyed by this type exist in real APIs
TEXT_PATTERN = re.compile(
    r"(?<![\w.:])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)|(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"
)
# Keys that name infrastructure, not a client: the spec counts only client/user addresses.
_NOT_CLIENT_KEYS = VERSION_WORDS | frozenset(
    "server host node gateway gw dns nameserver resolver router netmask mask subnet cidr "
    "broadcast bind listen upstream backend pod service cluster vip lb balancer "
    "local destination dest dst target".split()
)
_IP_KEYS = frozenset("ip ips ipv4 ipv6 addr remote forwarded real connecting peer".split())
_VERSION_TEXT_CUES = ("version", " v", "release", "build", "firmware")
_SERVER_TEXT_CUES = ("server", "host", "dns", "gateway", "router", "subnet", "nameserver", "proxy")
_ADDRESS_CHARS = re.compile(r"[0-9A-Fa-f:.\[\], ]+")
_FORWARDED_FOR = re.compile(r'for="?\[?([0-9A-Fa-f.:]+)', re.I)


def _parse(token: str):
    token = token.strip().strip('"')
    if token.startswith("["):  # [v6]:port
        token = token[1:].split("]", 1)[0]
    elif token.count(":") == 1 and "." in token:  # v4:port
        token = token.split(":", 1)[0]
    if token.count(".") != 3 and token.count(":") < 2:
        return None  # an amount or a version ('12.50', '2.1'): cheaper than letting ipaddress raise
    try:
        return ipaddress.ip_address(token)
    except ValueError:
        return None


def candidate(value: str, field: Field) -> Candidate | None:
    if len(value) < 3 or len(value) > 400 or not (":" in value or "." in value):
        return None
    if "for=" in value.lower():  # RFC 7239 Forwarded header
        tokens = _FORWARDED_FOR.findall(value)
    elif _ADDRESS_CHARS.fullmatch(value):
        tokens = value.split(",")
    else:
        return None  # cheaper than letting ipaddress raise
    addresses = [_parse(t) for t in tokens]
    if not addresses or any(a is None for a in addresses):
        return None
    if all(a.is_unspecified for a in addresses):
        return None
    return Candidate(TYPE, 0.85, addresses[0].version)


def confirm(candidate: Candidate, field: Field) -> float:
    key = field.key
    if key.has(_NOT_CLIENT_KEYS) or field.record.parent_has(VERSION_WORDS):
        return 0.0
    if field.nearby and (nearby_has(field, _VERSION_TEXT_CUES) or nearby_has(field, _SERVER_TEXT_CUES)):
        return 0.0  # "firmware 1.2.3.4", "server IPs: 10.0.0.1"
    if key.has(_IP_KEYS) or key.contains(("ipaddr", "forwardedfor", "realip", "clientip")):
        return 0.97
    if field.part.endswith("headers"):
        return 0.0  # other headers with addresses (X-Served-By, Via) name infrastructure
    if field.record.sibling_has(VERSION_WORDS, exclude=field.key):
        return 0.0  # a record of versions: '1.2.3.4' there is one more version
    return candidate.score
