"""Where events go: stdout or a file (SPEC.md section 4, SINK)."""
from __future__ import annotations

import json
import sys

from .errors import InputError


class LineSink:
    def __init__(self, stream, close=False):
        self.stream, self._close = stream, close

    def write(self, event: dict) -> None:
        self.stream.write(json.dumps(event, ensure_ascii=False) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._close:
            self.stream.close()


def open_sink(spec: str):
    if spec == "stdout":
        return LineSink(sys.stdout)
    if spec.startswith("file:"):
        try:
            return LineSink(open(spec[5:], "a", encoding="utf-8"), close=True)
        except OSError as e:
            raise InputError(f"{spec}: cannot open: {e.strerror or e}") from None
    if spec.startswith(("http://", "https://")):
        raise InputError(f"{spec}: webhook sinks are not available in this version yet (use stdout or file:PATH)")
    raise InputError(f"{spec}: unknown event sink (stdout, file:PATH or an http(s):// URL)")
