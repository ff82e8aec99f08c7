"""Email addresses, also inside URL paths (percent-decoded by the payload decoder)."""
from __future__ import annotations

import re

from .base import Candidate
from sensor.model import Field

TYPE = "Email"
IN_KEYS = True  # objects keyed by this type exist in real APIs
_ADDRESS = r"[\w.%+'-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
TEXT_PATTERN = re.compile(r"(?<![\w.%+'-])" + _ADDRESS + r"(?![\w-])")
_WHOLE = re.compile(r"(?:mailto:)?(" + _ADDRESS + r")")
# Domains reserved for documentation and placeholders still hold an address shape,
# but local parts like these are system senders, not people.
_SYSTEM_LOCAL = frozenset("noreply no-reply donotreply do-not-reply mailer-daemon postmaster".split())


def candidate(value: str, field: Field) -> Candidate | None:
    if "@" not in value or len(value) > 320:
        return None
    m = _WHOLE.fullmatch(value.strip())
    if not m:
        return None
    local = m.group(1).split("@", 1)[0]
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return None
    return Candidate(TYPE, 0.95, local.lower())


def confirm(candidate: Candidate, field: Field) -> float:
    if candidate.detail in _SYSTEM_LOCAL:
        return 0.0
    return 0.98
