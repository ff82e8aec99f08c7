"""International Bank Account Numbers: country format and mod-97 checksum (python-stdnum)."""
from __future__ import annotations

import re

from stdnum import iban as stdnum_iban

from .base import Candidate
from sensor.model import Field

TYPE = "IBAN"
IN_KEYS = True  # objects keyed by this type exist in real APIs
TEXT_PATTERN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_SHAPE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")


def candidate(value: str, field: Field) -> Candidate | None:
    if len(value) < 15 or len(value) > 50:
        return None
    compact = value.replace(" ", "").replace("-", "").upper()
    if not _SHAPE.fullmatch(compact) or not stdnum_iban.is_valid(compact):
        return None
    return Candidate(TYPE, 0.99, compact[:2])


def confirm(candidate: Candidate, field: Field) -> float:
    # A valid checksum and country format is strong evidence on its own:
    # a random string passes with probability about 1/97 and must also fit the country's layout.
    return 0.99
