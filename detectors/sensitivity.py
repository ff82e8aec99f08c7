"""Sensitivity of a type and of a set of findings (SPEC.md section 1)."""
from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_LEVELS = {
    "Person": "medium",
    "Birth date": "low",
    "Gender": "low",
    "Driver license": "high",
    "SSN": "high",
    "Card": "high",
    "Phone": "medium",
    "Email": "medium",
    "Location": "high",
    "IBAN": "high",
    "IP address": "medium",
}
TYPES = tuple(DEFAULT_LEVELS)
DEFAULT_WEIGHTS = {"low": 1, "medium": 3, "high": 10}
DEFAULT_THRESHOLDS = {"high": 10, "medium": 3}  # a sum of weights at or above these


@dataclass
class Sensitivity:
    levels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LEVELS))
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))

    def level(self, data_type: str) -> str:
        return self.levels[data_type]

    def combine(self, data_types) -> str:
        """The level of a set of findings: the sum of the weights of its distinct types."""
        score = sum(self.weights[self.levels[t]] for t in set(data_types))
        if score >= self.thresholds["high"]:
            return "high"
        if score >= self.thresholds["medium"]:
            return "medium"
        return "low"
