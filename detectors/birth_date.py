"""Dates of birth in any common representation; only where the context says 'birth'.

Other dates (created_at, delivery_date) have the same shapes, so the key, a parent
key or the words around a date in free text must name a birth.
"""
from __future__ import annotations

import datetime as dt
import re

from .base import Candidate
from .context import BIRTH_CUES, nearby_has
from sensor.model import Field

TYPE = "Birth date"
_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            "january jan janvier januar enero gennaio", "february feb fevrier février februar febrero febbraio",
            "march mar mars märz maerz marzo", "april apr avril abril aprile", "may mai mayo maggio",
            "june jun juin juni junio giugno", "july jul juillet juli julio luglio",
            "august aug aout août agosto", "september sep sept septembre septiembre settembre",
            "october oct octobre oktober octubre ottobre", "november nov novembre noviembre",
            "december dec decembre décembre dezember diciembre dicembre",
        ]
    )
    for m in names.split()
}
_MONTH_RX = "|".join(sorted(_MONTHS, key=len, reverse=True))
_NUMERIC = re.compile(r"(\d{1,4})([-/.])(\d{1,2})\2(\d{1,4})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
_DOTNET = re.compile(r"/Date\((-?\d{1,15})(?:[+-]\d{4})?\)/")  # Microsoft's JSON dates: /Date(572313600000+0000)/
_COMPACT = re.compile(r"(19\d{2}|20\d{2})(\d{2})(\d{2})")
_NAMED_DMY = re.compile(rf"(\d{{1,2}})(?:st|nd|rd|th)?[ \-.]+({_MONTH_RX})\.?[ \-.,]+(\d{{2,4}})", re.I)
_NAMED_MDY = re.compile(rf"({_MONTH_RX})\.?[ \-]+(\d{{1,2}})(?:st|nd|rd|th)?,?[ \-]+(\d{{4}})", re.I)
_DATE_TEXT = (
    r"\d{4}-\d{2}-\d{2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)? (?:{_MONTH_RX})\.? \d{{4}}|(?:{_MONTH_RX})\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}"
)
TEXT_PATTERN = re.compile(rf"(?<![\w/.-])(?:{_DATE_TEXT})(?![\w/-])", re.I)

_BIRTH_PHRASES = ("birth", "dob", "bday", "geburt", "nacimiento", "naissance", "nascita", "nascimento")
_NOT_BIRTH_TOKENS = frozenset("place city country location town name certificate weight".split())


def _valid(year: int, month: int, day: int) -> dt.date | None:
    if year < 100:
        year += 1900 if year > (dt.date.today().year % 100) else 2000
    try:
        date = dt.date(year, month, day)
    except ValueError:
        return None
    if not 1900 <= year <= dt.date.today().year:
        return None
    return date


def parse(value: str) -> dt.date | None:
    """The date a birth-date-shaped value denotes, or None."""
    v = value.strip()
    m = _NUMERIC.fullmatch(v)
    if m:
        a, _, b, c = m.groups()
        if len(a) == 4:  # ISO, Y/M/D
            return _valid(int(a), int(b), int(c))
        if len(c) in (2, 4):  # US M/D/Y first, then EU D/M/Y
            return _valid(int(c), int(a), int(b)) or _valid(int(c), int(b), int(a))
        return None
    m = _COMPACT.fullmatch(v)
    if m:
        return _valid(int(m[1]), int(m[2]), int(m[3]))
    m = _NAMED_DMY.fullmatch(v)
    if m:
        return _valid(int(m[3]), _MONTHS[m[2].lower()], int(m[1]))
    m = _NAMED_MDY.fullmatch(v)
    if m:
        return _valid(int(m[3]), _MONTHS[m[1].lower()], int(m[2]))
    m = _DOTNET.fullmatch(v)
    if m:
        return _epoch(int(m[1]) / 1000)
    if v.lstrip("-").isdigit() and 5 <= len(v.lstrip("-")) <= 13:  # Unix seconds or milliseconds
        n = int(v)
        return _epoch(n / 1000 if abs(n) > 4 * 10**9 else n)  # beyond 4e9 seconds is past 2096: milliseconds
    return None


def _epoch(seconds: float) -> dt.date | None:
    if -2208988800 <= seconds <= dt.datetime.now().timestamp():
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).date()
    return None


def candidate(value: str, field: Field) -> Candidate | None:
    if value.isdigit() and len(value) <= 2 and 1 <= int(value) <= 31:
        return Candidate(TYPE, 0.1, ("part", int(value)))  # a day or month: only under its key in a birth object
    if not 4 <= len(value) <= 40 or not (value[:1].isalnum() or value[:1] in "-/"):
        return None
    date = parse(value)
    if date is not None:
        return Candidate(TYPE, 0.5, date)
    v = value.strip()
    if v.isdigit() and len(v) == 4 and 1900 <= int(v) <= dt.date.today().year:
        return Candidate(TYPE, 0.1, int(v))  # a bare year: only under a birth-year key
    return None


def _in_birth_object(field: Field) -> bool:
    return any(p.contains(_BIRTH_PHRASES) for p in field.record.parents[-1:])


def in_context(field: Field) -> bool:
    """A whole value is a birth date only under a birth key (free text has its cues instead)."""
    key = field.key
    if key.has(_NOT_BIRTH_TOKENS):
        return False
    if key.contains(_BIRTH_PHRASES) or key.has(("born", "birthday", "bday")):
        return True
    # {"birth": {"date": ...}} / {"dob": {"year": ...}}
    return _in_birth_object(field)


def confirm(candidate: Candidate, field: Field) -> float:
    if in_context(field):
        if isinstance(candidate.detail, int):  # bare year
            return 0.9 if field.key.has(("year", "yr", "yyyy")) else 0.0
        if isinstance(candidate.detail, tuple):  # a day or a month of a date in parts
            day, month = field.key.has(("day", "dd")), field.key.has(("month", "mm"))
            return 0.9 if (day or month and candidate.detail[1] <= 12) and _in_birth_object(field) else 0.0
        return 0.97
    if field.nearby and not isinstance(candidate.detail, int) and nearby_has(field, BIRTH_CUES + ("born on", "date of birth", "d.o.b")):
        return 0.9
    return 0.0
