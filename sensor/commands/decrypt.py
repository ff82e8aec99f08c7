"""`pii-sensor decrypt --key PRIVATE_KEY [EVENTS...] < events.jsonl`: the events again, each
finding's evidence opened beside it as "value" (SPEC.md section 9).

A line that is not an event, or evidence that does not open (another key's, altered, moved to
another finding), is one line on stderr and counted; the event is still printed, with what did
open. Exit status 2 when anything failed.
"""
from __future__ import annotations

import json
import os
import sys

from ..errors import InputError
from ..evidence import EvidenceError, Opener, context, load_private_key


def run(args) -> int:
    try:
        opener = Opener(load_private_key(args.key))
    except EvidenceError as e:
        raise InputError(str(e)) from None
    for path in args.inputs:  # all checked before any is read
        if path != "-" and not os.path.isfile(path):
            raise InputError(f"{path}: no such file")
    opened = failed = 0
    out = sys.stdout
    for where, raw in _lines(args.inputs):
        try:
            event = json.loads(raw)
        except ValueError:  # also bytes that are not UTF-8
            event = None
        if not isinstance(event, dict):
            _complain(f"{where}: not a JSON event; skipped")
            failed += 1
            continue
        findings = event.get("findings")
        for i, finding in enumerate(findings if isinstance(findings, list) else []):
            if not isinstance(finding, dict) or "evidence" not in finding:
                continue
            try:
                ad = context(str(event.get("id", "")), *(str(finding.get(k, "")) for k in ("type", "part", "path")))
                finding["value"] = opener.open(finding["evidence"], ad)
                opened += 1
            except EvidenceError as e:  # the masked place only: the event shows it already
                place = " ".join(_shown(finding.get(k)) for k in ("type", "part", "path"))
                _complain(f"{where}: finding {i} ({place}): {e}")
                failed += 1
        text = json.dumps(event, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (as JSON may escape one): written escaped, still JSON
            text = json.dumps(event)
        out.write(text + "\n")
    print(f"pii-sensor: {opened} values opened, {failed} failures", file=sys.stderr)
    return 2 if failed else 0


def _lines(inputs):
    """(where, bytes) of each non-blank line of the files, or of stdin without any."""
    for path in inputs or ["-"]:
        name = "stdin" if path == "-" else path
        try:
            fh = sys.stdin.buffer if path == "-" else open(path, "rb")
        except OSError as e:
            raise InputError(f"{path}: cannot read: {e.strerror or type(e).__name__}") from None
        with fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    yield f"{name} line {n}", line


def _shown(value) -> str:
    """A field of the event as one short line, whatever a damaged event holds there."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("unicode_escape").decode("ascii")[:80]


def _complain(message: str) -> None:
    print(f"pii-sensor: {message}", file=sys.stderr)
