"""The detector contract, declared once: every module in detectors/ (card, iban, ssn, ...)
has the same small shape, in the manner of python-stdnum's one module per format:

    TYPE = "Card"                       # the SPEC.md type name
    TEXT_PATTERN = re.compile(...)      # finds candidate spans in free text (or None)
    def candidate(value, field)         # stage 1: does the value have the type's shape?
                                        #   -> Candidate or None. It reads the value alone (results are
                                        #   remembered per value), unless CANDIDATE_READS_FIELD = True
    def confirm(candidate, field)       # stage 2: is it PII here, given the context?
                                        #   -> confidence in [0, 1]; 0 means no

and, where the type needs them, these optional hooks:

    def in_context(field)               # a whole value can be this type only where this is true (a birth
                                        #   date under a birth key): stage 1 is not even run elsewhere.
                                        #   It reads where the value sits, never the value (it is decided
                                        #   once per record shape); confirm() must return 0 for whole
                                        #   values where it is false.
    IN_KEYS = True                      # a key of an object can be this type ({"jane@example.com": {...}})
    ENTITY_LABELS = ("PERSON",)         # spaCy entity labels in free text that may be this type
    def entity_confidence(text, start, end, field)  # -> confidence for such an entity
    def related(field, record_types)    # record rule: this field is the type because its record
                                        #   holds others (a card's expiry beside the card)

Detector.of(module) checks a module against the contract; the classifier only ever uses
Detector objects, so every type is run the same way.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from sensor.model import Field


@dataclass(slots=True)
class Candidate:
    type: str
    score: float  # stage-1 evidence from the value alone, in [0, 1]
    detail: object = None  # detector-specific: card issuer, phone region, parsed date ...

    def __repr__(self) -> str:  # the detail can be the value itself
        return f"Candidate({self.type!r}, {self.score})"


@dataclass(frozen=True, slots=True)
class Detector:
    type: str
    text_pattern: re.Pattern | None
    candidate: Callable[[str, Field], Candidate | None]
    confirm: Callable[[Candidate, Field], float]
    in_keys: bool = False
    entity_labels: tuple[str, ...] = ()
    entity_confidence: Callable[[str, int, int, Field], float] | None = None
    related: Callable[[Field, set], float] | None = None
    in_context: Callable[[Field], bool] | None = None
    candidate_reads_field: bool = False

    @classmethod
    def of(cls, module: ModuleType) -> "Detector":
        for name in ("TYPE", "TEXT_PATTERN", "candidate", "confirm"):
            if not hasattr(module, name):
                raise TypeError(f"{module.__name__} lacks {name} (see detectors/base.py)")
        labels = tuple(getattr(module, "ENTITY_LABELS", ()))
        if labels and not hasattr(module, "entity_confidence"):
            raise TypeError(f"{module.__name__} has ENTITY_LABELS without entity_confidence")
        return cls(module.TYPE, module.TEXT_PATTERN, module.candidate, module.confirm,
                   bool(getattr(module, "IN_KEYS", False)), labels,
                   getattr(module, "entity_confidence", None), getattr(module, "related", None),
                   getattr(module, "in_context", None), bool(getattr(module, "CANDIDATE_READS_FIELD", False)))


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
