"""JSONPath-style locations as SPEC.md section 2 writes them: $.a.b[0].c, $['key-name']."""
from __future__ import annotations

import re

def child(path: str, key: str) -> str:
    if key.isascii() and key.isidentifier():  # [A-Za-z_][A-Za-z0-9_]*, without a regex: called for every key
        return f"{path}.{key}"
    return f"{path}[{_quoted(key)}]"


def _quoted(key: str) -> str:
    return "'" + key.replace("\\", "\\\\").replace("'", "\\'") + "'"


def header(name: str) -> str:
    """Headers are always written $['header-name'], lower-case (SPEC.md section 2)."""
    return f"$[{_quoted(name.lower())}]"


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


_SEGMENT = re.compile(r"\.([^.\[]+)|\['((?:[^'\\]|\\.)*)'\]|\[\"((?:[^\"\\]|\\.)*)\"\]|\[(\d+|\*)\]")


def without_indices(path: str) -> str:
    """The path with array indices removed and every key written one way, as eval matches
    findings to labels: $.a[0]['b'] and $.a.b are the same place."""
    if not path.startswith("$"):
        return path
    keys = [m.group(1) or m.group(2) or m.group(3) for m in _SEGMENT.finditer(path, 1) if m.group(4) is None]
    out = "$"
    for k in keys:
        out = child(out, k.replace("\\'", "'"))
    return out


def map_keys(path: str, rename, unreadable) -> str:
    """The path with each key for which `rename(key, previous_key)` returns a string replaced by
    that string (written $['...']); indices and the other keys stay exactly as they were written.
    What does not read as a path is passed through `unreadable` instead of shown as it is."""
    if not path.startswith("$"):
        return unreadable(path)
    out, pos, previous = ["$"], 1, None
    for m in _SEGMENT.finditer(path, 1):
        if m.start() != pos:
            break  # the rest does not read as a path
        pos = m.end()
        if m.group(4) is not None:
            out.append(m.group(0))
            continue
        key = (m.group(1) or m.group(2) or m.group(3) or "").replace("\\'", "'").replace('\\"', '"').replace("\\\\", "\\")
        new = rename(key, previous)
        out.append(m.group(0) if new is None else child("", new))
        previous = key
    if pos < len(path):
        out.append(unreadable(path[pos:]))
    return "".join(out)
