import json
import subprocess
import sys
from pathlib import Path

import pytest

from sensor.model import Field, Key, Record

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


def field(key: str, value, parents=(), siblings=None, part="request.body", is_number=False) -> Field:
    """A Field as a JSON body would give it: `siblings` are {key: value} beside it."""
    record = Record(parents=tuple(Key.of(p) for p in parents))
    k = Key.of(key)
    record.add(k, str(value))
    for sk, sv in (siblings or {}).items():
        record.add(Key.of(sk), str(sv))
    return Field(part, "$." + key, k, str(value), record, is_number=is_number)


def run_cli(*args, input=None):
    return subprocess.run([sys.executable, "-m", "sensor", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, input=input, timeout=300)


def har_doc(entries):
    return {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": entries}}


def har_entry(method="POST", url="http://users.internal/v1/users", body=None, content_type="application/json",
              response_body="", response_type="application/json", headers=(), response_headers=(), status=200,
              labels=None, encoding=None):
    request = {"method": method, "url": url, "httpVersion": "HTTP/1.1",
               "headers": [{"name": "Content-Type", "value": content_type}] + [{"name": k, "value": v} for k, v in headers],
               "queryString": [], "cookies": [], "headersSize": -1, "bodySize": -1}
    if body is not None:
        request["postData"] = {"mimeType": content_type, "text": body if isinstance(body, str) else json.dumps(body)}
    content = {"size": 0, "mimeType": response_type,
               "text": response_body if isinstance(response_body, str) else json.dumps(response_body)}
    if encoding:
        content["encoding"] = encoding
    entry = {"startedDateTime": "2026-11-22T10:00:00.123Z", "time": 1, "request": request,
             "response": {"status": status, "statusText": "", "httpVersion": "HTTP/1.1",
                          "headers": [{"name": "Content-Type", "value": response_type}] + [{"name": k, "value": v} for k, v in response_headers],
                          "cookies": [], "content": content, "redirectURL": "", "headersSize": -1, "bodySize": -1},
             "cache": {}, "timings": {"send": 0, "wait": 0, "receive": 0}, "serverIPAddress": "10.96.0.12"}
    if labels:
        entry["_pii_labels"] = labels
    return entry


@pytest.fixture
def write_har(tmp_path):
    def write(*entries, name="t.har"):
        path = tmp_path / name
        path.write_text(json.dumps(har_doc(list(entries))), encoding="utf-8")
        return path
    return write
