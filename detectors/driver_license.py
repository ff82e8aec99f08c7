"""US driver license numbers. The state formats alone match too much, so a key or nearby
words must say 'driver license'; a sibling state field narrows the format."""
from __future__ import annotations

import re

from .base import Candidate
from .context import nearby_has
from sensor.model import Field

TYPE = "Driver license"
TEXT_PATTERN = re.compile(r"(?<![\w-])[A-Z*]{0,3}\d[\d-]{3,18}[A-Z]{0,2}(?![\w-])|(?<![\w-])[A-Z]{8}(?![\w-])")

# Formats per state after removing dashes and spaces (AAMVA/NTSI published layouts).
STATE_FORMATS = {
    "AL": r"\d{1,8}", "AK": r"\d{1,7}", "AZ": r"[A-Z]\d{8}|\d{9}", "AR": r"\d{4,9}",
    "CA": r"[A-Z]\d{7}", "CO": r"\d{9}|[A-Z]\d{3,6}|[A-Z]{2}\d{2,5}", "CT": r"\d{9}",
    "DE": r"\d{1,7}", "DC": r"\d{7}|\d{9}", "FL": r"[A-Z]\d{12}", "GA": r"\d{7,9}",
    "HI": r"[A-Z]\d{8}|\d{9}", "ID": r"[A-Z]{2}\d{6}[A-Z]|\d{9}", "IL": r"[A-Z]\d{11,12}",
    "IN": r"[A-Z]\d{9}|\d{9,10}", "IA": r"\d{9}|\d{3}[A-Z]{2}\d{4}",
    "KS": r"[A-Z]\d[A-Z]\d[A-Z]|[A-Z]\d{8}|\d{9}", "KY": r"[A-Z]\d{8,9}|\d{9}", "LA": r"\d{1,9}",
    "ME": r"\d{7,8}|\d{7}[A-Z]", "MD": r"[A-Z]\d{12}", "MA": r"[A-Z]\d{8}|\d{9}",
    "MI": r"[A-Z]\d{10}|[A-Z]\d{12}", "MN": r"[A-Z]\d{12}", "MS": r"\d{9}",
    "MO": r"[A-Z]\d{5,9}|[A-Z]\d{6}R|\d{8}[A-Z]{2}|\d{9}[A-Z]?", "MT": r"[A-Z]\d{8}|\d{9}|\d{13,14}",
    "NE": r"[A-Z]\d{6,8}|\d{1,7}", "NV": r"\d{9,10}|\d{12}|X\d{8}", "NH": r"\d{2}[A-Z]{3}\d{5}",
    "NJ": r"[A-Z]\d{14}", "NM": r"\d{8,9}", "NY": r"[A-Z]\d{7}|[A-Z]\d{18}|\d{8,9}|\d{16}|[A-Z]{8}",
    "NC": r"\d{1,12}", "ND": r"[A-Z]{3}\d{6}|\d{9}", "OH": r"[A-Z]\d{4,8}|[A-Z]{2}\d{3,7}|\d{8}",
    "OK": r"[A-Z]\d{9}|\d{9}", "OR": r"\d{1,9}|[A-Z]\d{6}", "PA": r"\d{8}", "RI": r"\d{7}|[A-Z]\d{6}",
    "SC": r"\d{5,11}", "SD": r"\d{6,10}|\d{12}", "TN": r"\d{7,9}", "TX": r"\d{7,8}",
    "UT": r"\d{4,10}", "VT": r"\d{8}|\d{7}A", "VA": r"[A-Z]\d{8,11}|\d{9}",
    "WA": r"[A-Z*]{1,7}[A-Z0-9*]{5}|WDL[A-Z0-9]{9}", "WV": r"\d{7}|[A-Z]{1,2}\d{5,6}",
    "WI": r"[A-Z]\d{13}", "WY": r"\d{9,10}",
}
_DIGIT = re.compile(r"\d")
_COMPILED = {state: re.compile(fmt) for state, fmt in STATE_FORMATS.items()}
_LOOSE = re.compile(r"[A-Z]{0,3}\d{4,18}[A-Z]{0,2}")
_ANY = re.compile("|".join(f"(?:{f})" for f in set(STATE_FORMATS.values())))

_DL_PHRASES = ("driverlicen", "driverslicen", "drivinglicen", "dlnumber", "dlno", "dlnum", "licensenumber", "licencenumber", "licenseno", "licenceno")
_DL_TOKENS = frozenset("driver drivers driving".split())
_LICENSE_TOKENS = frozenset("license licence lic licenses licences permit".split())
_NOT_DL_TOKENS = frozenset(
    "software product key plan seat seats business medical professional nursing pilot "
    "api app type status class expiry expiration expires issued plate vehicle".split()
)
_DL_TEXT_CUES = ("driver", "driving", "licence", "license", "dl#", "dl #", "dl no", "dl:")


def candidate(value: str, field: Field) -> Candidate | None:
    if not 4 <= len(value) <= 24:
        return None
    compact = value.replace("-", "").replace(" ", "").upper()
    if not _DIGIT.search(compact) and not (len(compact) == 8 and compact.isalpha()):
        return None
    if not _ANY.fullmatch(compact) and not (field is not None and field.nearby and _LOOSE.fullmatch(compact)):
        return None  # in free text after 'driver's license no:' the cue vouches for other layouts
    return Candidate(TYPE, 0.3, compact)


def _state_hint(field: Field) -> str | None:
    for compact, value in field.record.values.items():
        if "state" in compact or "issuer" in compact or "jurisdiction" in compact:
            v = value.strip().upper()
            if len(v) == 2 and v in STATE_FORMATS:
                return v
    return None


def _license_context(field: Field) -> tuple[bool, bool]:
    """(the key names a driver license, the field sits in a license object)."""
    key = field.key
    keyed = key.contains(_DL_PHRASES) or key.has(("dl", "dln")) or (key.has(_DL_TOKENS) and key.has(_LICENSE_TOKENS))
    parent = field.record.parents[-1] if field.record.parents else None
    in_license_object = parent is not None and (
        parent.contains(("driverlicen", "driverslicen", "drivinglicen")) or parent.has(("dl", "dln"))
        or (parent.has(_LICENSE_TOKENS) and not parent.has(_NOT_DL_TOKENS) and field.record.sibling_has(("state", "class", "jurisdiction", "issuing"), exclude=field.key))
    )
    return keyed, in_license_object


_TYPED_VALUE_KEYS = frozenset("value number idnumber id documentnumber".split())
_TYPE_KEYS = frozenset("type category idtype documenttype kind".split())


def _typed(field: Field) -> bool:
    """A typed identifier's value: {"category": "drivers_license", "id_number": ...}, FHIR's
    {"system": "urn:oid:...", "value": ...} (its shape only)."""
    return field.key.compact in _TYPED_VALUE_KEYS and any(k.compact in _TYPE_KEYS or k.compact == "system"
                                                          for k in field.record.keys)


# HL7's namespace of US driver's license numbers: urn:oid:2.16.840.1.113883.4.3.<state FIPS code>
_DL_SYSTEM = "urn:oid:2.16.840.1.113883.4.3."


def _typed_as_license(field: Field) -> bool:
    values = field.record.values
    return values.get("system", "").startswith(_DL_SYSTEM) or any(
        compact in _TYPE_KEYS and ("driver" in value.lower() or value.strip().upper() == "DL") for compact, value in values.items())


def in_context(field: Field) -> bool:
    """A whole value is a license number only under a license key, inside a license object, or as a
    typed identifier's value (whose type is read in confirm)."""
    return any(_license_context(field)) or _typed(field)


def confirm(candidate: Candidate, field: Field) -> float:
    key = field.key
    keyed, in_license_object = _license_context(field)
    keyed = keyed or _typed(field) and _typed_as_license(field)
    if keyed and key.has(_NOT_DL_TOKENS - {"class"}):
        return 0.0
    if in_license_object and not key.has(("number", "no", "num", "id", "value")):
        return 0.0
    if not (keyed or in_license_object):
        if field.nearby and nearby_has(field, _DL_TEXT_CUES) and any(c.isdigit() for c in field.value):
            return 0.8
        return 0.0
    state = _state_hint(field)
    if state and not _COMPILED[state].fullmatch(candidate.detail):
        return 0.3  # says 'driver license' but does not fit the stated state's format
    return 0.95
