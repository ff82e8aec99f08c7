"""URL paths for events: personal data masked (`request.path`) and the path templated into an
endpoint (`/v1/users/{id}`), which names the endpoint in events, the table and metric labels.

A segment becomes a placeholder when the classifier found personal data in it (`{email}`,
`{phone}`, `{pii}`, ...), when its shape is a variable value (ids, UUIDs, dates, tokens),
or when it is a name written as an identifier (`jane-doe`, see identifiers.py).
"""
from __future__ import annotations

import re
from urllib.parse import unquote

from detectors.context import PERSON_WORDS

from ..model import Key
from . import identifiers
from .mask import mask

_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
_EMAIL = re.compile(r"[^@/\s]+@[^@/\s]+\.[A-Za-z]{2,}")
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")
_HEX = re.compile(r"[0-9a-f]{12,}", re.I)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:T[\d:.]+Z?)?")
_IP = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}|[0-9a-f]*:[0-9a-f:]+", re.I)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,}")  # opaque tokens, base64url ids
# The placeholder of a segment holding a finding of each type; other types give {pii}.
_TYPE_PLACEHOLDERS = {"Email": "{email}", "Phone": "{phone}", "IP address": "{ip}", "Birth date": "{date}",
                      "Card": "{card}", "IBAN": "{iban}", "SSN": "{ssn}"}


def placeholder(segment: str, after_person_word: bool = False) -> str | None:
    """The placeholder for a variable path segment by its shape, or None for a fixed word.
    `after_person_word`: the segment follows one that names people (/users/jane)."""
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
    kind = identifiers.kind(s, after_person_word)
    return "{" + kind + "}" if kind else None


class PathView:
    """One URL path seen twice: masked and templated, from the same segment decisions.

    `found` is {value: data type} of the classifier's findings in the path; a segment that
    contains such a value is masked (only the value, `name=****;v=2`) and templated by its type."""

    def __init__(self, path: str, found: dict[str, str] | None = None):
        masked, template = [], []
        previous = ""
        for segment in path.split("/"):
            if not segment:
                masked.append(segment)
                template.append(segment)
                continue
            text = unquote(segment)
            hits = [(value, t) for value, t in (found or {}).items() if value and value in text]
            if hits:
                previous = segment
                for value, _ in sorted(hits, key=lambda h: -len(h[0])):
                    text = text.replace(value, mask(value))
                masked.append(text)
                types = {t for _, t in hits}
                template.append((len(types) == 1 and _TYPE_PLACEHOLDERS.get(types.pop())) or "{pii}")
                continue
            shape = placeholder(segment, Key.of(previous).has(PERSON_WORDS))
            previous = segment
            template.append(shape or segment)
            masked.append(mask(text) if shape in ("{email}", "{phone}", "{pii}") else segment)
        self.masked = "/".join(masked)
        self.template = "/".join(template) or "/"


def template(path: str) -> str:
    """'/v1/users/8812/orders' -> '/v1/users/{id}/orders' (for exchanges without findings)."""
    return PathView(path).template
