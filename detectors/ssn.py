"""US Social Security Numbers: area/group/serial rules; undashed only with supporting context."""
from __future__ import annotations

import re

from .base import Candidate
from .context import ID_PARENTS, ID_WORDS, QUANTITY_WORDS, nearby_has
from sensor.model import Field

TYPE = "SSN"
IN_KEYS = True  # objects keyed by this type exist in real APIs
TEXT_PATTERN = re.compile(r"(?<![\w-])\d{3}([- ])\d{2}\1\d{4}(?![\w-])|(?<![\w-])\d{9}(?![\w-])")
_SHAPE = re.compile(r"(\d{3})([- ]?)(\d{2})\2(\d{4})")

_SSN_KEYS = frozenset("ssn ssns social socialsecurity sin itin taxpayer".split())
_NOT_SSN_KEYS = ID_WORDS | QUANTITY_WORDS | frozenset(
    "ein fein employer routing aba rtn account acct phone tel mobile fax zip postal postcode "
    "npi dea license licence dl passport member policy claim".split()
)
_SSN_TEXT_CUES = ("ssn", "social security", "social-security", "soc sec", "tax id", "taxpayer")
_NOT_SSN_TEXT_CUES = ("ein", "employer", "routing", "order", "tracking", "phone", "call", "account", "invoice")


def candidate(value: str, field: Field) -> Candidate | None:
    if not 9 <= len(value) <= 11:
        return None
    m = _SHAPE.fullmatch(value)
    if not m:
        return None
    area, sep, group, serial = m.groups()
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return None
    # 078-05-1120 and friends were printed in ads and examples: SSN-shaped, but only an SSN key makes them one
    example = area + group + serial in ("078051120", "219099999", "123456789")
    return Candidate(TYPE, 0.2 if example else (0.8 if sep else 0.3), bool(sep))


def _typed_ssn(field: Field) -> bool:
    """A typed identifier: {"type": "us_ssn", "value": ...}, FHIR's {"system": ".../us-ssn", "value": ...}."""
    return field.key.compact in ("value", "number", "id", "identifier") and any(
        "ssn" in v.lower() or "socialsecurity" in v.lower().replace(" ", "")
        for k, v in field.record.values.items() if k in ("type", "system", "kind", "scheme", "idtype"))


def confirm(candidate: Candidate, field: Field) -> float:
    key = field.key
    dashed = candidate.detail
    if field.nearby:  # a span in free text: the words around it decide
        if nearby_has(field, _SSN_TEXT_CUES):
            return 0.95
        if nearby_has(field, _NOT_SSN_TEXT_CUES):
            return 0.0
        return 0.7 if dashed and candidate.score > 0.2 else 0.0
    if key.has(_SSN_KEYS) or key.contains(("socialsecurity", "ssn")):
        return 0.98
    if _typed_ssn(field):
        return 0.95
    if key.has(("tin", "taxid")) or key.contains(("taxid", "taxpayerid", "nationalid")):
        return 0.85 if dashed or len(field.value) == 9 else 0.0
    if key.has(_NOT_SSN_KEYS) or field.record.parent_has(ID_PARENTS | {"employer", "company", "business", "bank"}):
        return 0.0
    return 0.8 if dashed and candidate.score > 0.2 else 0.0
