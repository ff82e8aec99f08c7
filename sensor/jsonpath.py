"""JSONPath-style locations as SPEC.md section 2 writes them: $.a.b[0].c, $['key-name']."""
from __future__ import annotations

import re

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INDEX = re.compile(r"\[\d+\]")


def child(path: str, key: str) -> str:
    if _IDENT.fullmatch(key):
        return f"{path}.{key}"
    escaped = key.replace("\\", "\\\\").replace("'", "\\'")
    return f"{path}['{escaped}']"


def header(name: str) -> str:
    """Headers are always written $['header-name'], lower-case (SPEC.md section 2)."""
    return f"$['{name.lower()}']"


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def without_indices(path: str) -> str:
    """The path with array indices removed, as eval matches findings to labels."""
    return _INDEX.sub("", path)
