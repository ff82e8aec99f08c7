"""Masked renderings of values: the shape survives, the content does not."""
from __future__ import annotations

MAX_SAMPLE = 40


def mask(value: str) -> str:
    """'jane.doe@example.com' -> '****.***@*******.***'. Letters and digits become '*'."""
    out = "".join("*" if c.isalnum() else c for c in value[:MAX_SAMPLE])
    return out + "…" if len(value) > MAX_SAMPLE else out
