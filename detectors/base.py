"""What every detector module shares.

Each module in detectors/ (card, iban, ssn, ...) has the same small interface,
in the manner of python-stdnum's one-module-per-format:

    TYPE = "Card"                       # the SPEC.md type name
    TEXT_PATTERN = re.compile(...)      # finds candidate spans in free text (or None)
    def candidate(value, field)         # stage 1: does the value have the type's shape?
                                        #   -> Candidate or None
    def confirm(candidate, field)       # stage 2: is it PII here, given the context?
                                        #   -> confidence in [0, 1]; 0 means no
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Candidate:
    type: str
    score: float  # stage-1 evidence from the value alone, in [0, 1]
    detail: object = None  # detector-specific: card issuer, phone region, parsed date ...


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0
