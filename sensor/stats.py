"""Counters of what the sensor saw, what it lost and what it skipped by design: nothing is lost without a count."""
from __future__ import annotations

from collections import Counter

from .model import Drop, Skip


class Stats:
    def __init__(self):
        self.exchanges = 0
        self.with_pii = 0
        self.packets = 0
        self.dropped: Counter[str] = Counter()  # Drop reason -> count: data the sensor failed to look at
        self.skipped: Counter[str] = Counter()  # Skip reason -> count: left out by design, not loss
        self.errors: Counter[str] = Counter()  # component -> failures that lose no data (an API down, then retried)
        self.sampled: Counter[str] = Counter()  # reason -> exchanges seen but deliberately not classified
        self.shared: dict = {}  # Drop reason -> multiprocessing.Value counted by another process (the proxy)

    def drop(self, reason: Drop, n: int = 1) -> None:
        self.dropped[Drop(reason).value] += n

    def skip(self, reason: Skip, n: int = 1) -> None:
        self.skipped[Skip(reason).value] += n

    def sample(self, reason: str) -> None:
        self.exchanges += 1
        self.sampled[reason] += 1

    def error(self, component: str) -> None:
        self.errors[component] += 1

    def all_dropped(self) -> Counter:
        """Own drops plus those another process counted in shared memory."""
        out = Counter(self.dropped)
        for reason, value in self.shared.items():
            if value.value:
                out[reason] += value.value
        return out

    def summary(self) -> str:
        parts = [f"{self.exchanges} exchanges", f"{self.with_pii} with PII"]
        if self.packets:
            parts.insert(0, f"{self.packets} packets")
        for label, counts in (("dropped", self.all_dropped()), ("skipped", self.skipped), ("sampled", self.sampled)):
            if counts:
                parts.append(f"{label}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        return "; ".join(parts)
