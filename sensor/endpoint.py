"""URL paths for events: PII masked, and templated into endpoints (/v1/users/{id})."""
from __future__ import annotations

import re
from urllib.parse import unquote

from .mask import mask

_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
_EMAIL = re.compile(r"[^@/\s]+@[^@/\s]+\.[A-Za-z]{2,}")
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")
_HEX = re.compile(r"[0-9a-f]{12,}", re.I)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:T[\d:.]+Z?)?")
_IP = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}|[0-9a-f]*:[0-9a-f:]+", re.I)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,}")  # opaque tokens, base64url ids


def placeholder(segment: str) -> str | None:
    """The placeholder for a variable path segment, or None for a fixed word."""
    s = unquote(segment)
    if _UUID.fullmatch(s):
        return "{uuid}"
    if _EMAIL.fullmatch(s):
        return "{email}"
    if _DATE.fullmatch(s):
        return "{date}"
    if _IP.fullmatch(s) and any(c.isdigit() for c in s):
        return "{ip}"
    if _NUMBER.fullmatch(s):
        return "{id}"
    if _HEX.fullmatch(s):
        return "{hash}"
    digits = sum(c.isdigit() for c in s)
    if _TOKEN.fullmatch(s) or (digits >= 2 and digits * 3 >= len(s)) or (digits and len(s) >= 8):
        return "{id}"
    return None


def template(path: str) -> str:
    """'/v1/users/8812/orders' -> '/v1/users/{id}/orders'."""
    return "/".join(placeholder(seg) or seg if seg else seg for seg in path.split("/")) or "/"


def masked_path(path: str, pii_segments: set[str]) -> str:
    """The path with every segment that held PII masked."""
    return "/".join(mask(unquote(seg)) if seg and unquote(seg) in pii_segments else seg for seg in path.split("/"))
