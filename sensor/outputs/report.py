"""The `scan` summary: per endpoint, what PII flows there and how sensitive it is, as a table or an HTML page."""
from __future__ import annotations

import html

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from detectors.sensitivity import Sensitivity


@dataclass
class EndpointSummary:
    exchanges: int = 0
    with_pii: int = 0
    types: Counter = field(default_factory=Counter)  # data type -> exchanges carrying it


class Summary:
    def __init__(self, sensitivity: Sensitivity):
        self.sensitivity = sensitivity
        self.rows: dict[tuple[str, str, str], EndpointSummary] = defaultdict(EndpointSummary)

    def add(self, host: str | None, method: str, endpoint: str, data_types: list[str]) -> None:
        """One exchange; `host` and `endpoint` as events show them (personal data masked)."""
        row = self.rows[(host or "-", method, endpoint)]
        row.exchanges += 1
        if data_types:
            row.with_pii += 1
            row.types.update(data_types)

    def render(self) -> str:
        header = ("DESTINATION", "METHOD", "ENDPOINT", "EXCHANGES", "WITH PII", "SENSITIVITY", "DATA TYPES (exchanges)")
        lines = []
        order = {"high": 0, "medium": 1, "low": 2, "-": 3}
        rows = []
        for (host, method, endpoint), s in self.rows.items():
            level = self.sensitivity.combine(s.types) if s.types else "-"
            types = ", ".join(f"{t} ({n})" for t, n in sorted(s.types.items(), key=lambda kv: (-kv[1], kv[0]))) or "-"
            rows.append((order[level], host, method, endpoint, str(s.exchanges), str(s.with_pii), level, types))
        rows.sort(key=lambda r: (r[0], r[1], r[3], r[2]))
        table = [header] + [r[1:] for r in rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
        for r in table:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
        return "\n".join(lines)

    def html(self) -> str:
        table = self.render().splitlines()
        rows = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in line.split("  ") if c) + "</tr>"
                         for line in table[1:])
        return (
            "<!doctype html><meta charset=utf-8><title>pii-sensor report</title>"
            "<style>body{font-family:sans-serif}td{padding:2px 10px;border-bottom:1px solid #ddd}</style>"
            "<h1>PII by endpoint</h1><table><tr><th>Destination</th><th>Method</th><th>Endpoint</th><th>Exchanges</th>"
            f"<th>With PII</th><th>Sensitivity</th><th>Data types</th></tr>\n{rows}</table>\n"
        )

