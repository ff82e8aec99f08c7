"""URL paths for events: personal data masked (`request.path`) and the path templated into an
endpoint (`/v1/users/{id}`), which names the endpoint in events, the table and metric labels.

A segment becomes a placeholder when the classifier found personal data in it (`{email}`,
`{phone}`, `{pii}`, ...), when its shape is a variable value (ids, UUIDs, dates, tokens),
or when it is a name written as an identifier (`jane-doe`, see identifiers.py).
"""
from __future__ import annotations

import re
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
# Route words: what a fixed path segment is made of (v1, payment-methods, users:batchGet, report.pdf).
_ROUTE_WORD = re.compile(r"[A-Za-z0-9_~$@:.-]{1,64}")
# The placeholder of a segment holding a finding of each type; other types give {pii}.
_TYPE_PLACEHOLDERS = {"Email": "{email}", "Phone": "{phone}", "IP address": "{ip}", "Birth date": "{date}",
                      "Card": "{card}", "IBAN": "{iban}", "SSN": "{ssn}"}


def placeholder(segment: str, after_person_word: bool = False) -> str | None:
    """The placeholder for a variable path segment by its shape, or None for a fixed word.
    `after_person_word`: the segment follows one that names people (/users/jane)."""
    return _shape(identifiers.decoded(segment), after_person_word)


def _shape(s: str, after_person_word: bool) -> str | None:
    """placeholder() of a segment already percent-decoded."""
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
    if kind:
        return "{" + kind + "}"
    return None if _ROUTE_WORD.fullmatch(s) else "{value}"


def _shown_as_is(text: str, shape: str | None) -> bool:
    """May `request.path` keep this segment? Fixed words, and ids too short to be a phone number,
    an SSN or a card; everything else is masked (fail closed)."""
    if shape is None or shape in ("{uuid}", "{hash}"):
        return True
    return shape == "{id}" and sum(c.isdigit() for c in text) < 7 and identifiers.kind(text) is None


class PathView:
    """One URL path seen twice: masked and templated, from the same segment decisions.

    `found` is {value: data type} of the classifier's findings in the path; a segment that
    contains such a value is masked and templated by its type."""

    def __init__(self, path: str, found: dict[str, str] | None = None):
        masked, template = [], []
        previous = ""
        for segment in path.split("/"):
            if not segment:
                masked.append(segment)
                template.append(segment)
                continue
            text = identifiers.decoded(segment)
            types = {t for value, t in (found or {}).items() if value and value in text}
            if types:
                shape = (len(types) == 1 and _TYPE_PLACEHOLDERS.get(next(iter(types)))) or "{pii}"
            else:
                shape = _shape(text, Key.of(previous).has(PERSON_WORDS))
            template.append(shape or segment)
            masked.append(segment if not types and _shown_as_is(text, shape) else mask(text))
            previous = segment
        self.masked = "/".join(masked)
        self.template = "/".join(template) or "/"


_VIEWS: dict[str, tuple[str, str]] = {}
_MAX_VIEWS = 20_000


def masked_and_template(path: str, found: dict[str, str]) -> tuple[str, str]:
    """PathView(path, found)'s two forms. Paths without findings in them repeat endlessly, and
    judging their segments is costly: those are remembered."""
    if found:
        view = PathView(path, found)
        return view.masked, view.template
    forms = _VIEWS.get(path)
    if forms is None:
        if len(_VIEWS) >= _MAX_VIEWS:
            _VIEWS.clear()
        view = PathView(path)
        forms = _VIEWS[path] = (view.masked, view.template)
    return forms


def template(path: str) -> str:
    """'/v1/users/8812/orders' -> '/v1/users/{id}/orders' (for exchanges without findings)."""
    return masked_and_template(path, {})[1]
