"""Counters of what the sensor saw and what it had to skip; nothing is lost without a count."""
from __future__ import annotations

from collections import Counter


class Stats:
    def __init__(self):
        self.exchanges = 0
        self.with_pii = 0
        self.packets = 0
        self.dropped: Counter[str] = Counter()
        self.shared: dict = {}  # reason -> multiprocessing.Value counted by another process (the proxy)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] += n

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
        dropped = self.all_dropped()
        if dropped:
            parts.append("skipped: " + ", ".join(f"{k}={v}" for k, v in sorted(dropped.items())))
        return "; ".join(parts)
