"""The third-party payloads (corpus/apis/<source>.json, see README.md) as labeled HAR files, the
format `pii-sensor eval` reads (SPEC.md section 3): one entry per example.

    python corpus/apis/build.py [OUT_DIR]        # writes OUT_DIR/<source>.har (default /tmp/pii-apis)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent


def sources() -> list[Path]:
    return sorted(HERE.glob("*.json"))


def _body(example: dict) -> tuple[str, str]:
    body = example["body"]
    if isinstance(body, str):
        return body, example.get("content_type", "text/plain")
    return json.dumps(body, ensure_ascii=False), example.get("content_type", "application/json")


def entry(example: dict) -> dict:
    text, content_type = _body(example)
    part = example.get("part", "response.body")
    method = example.get("method", "GET" if part == "response.body" else "POST")
    url = example["url"]
    request = {"method": method, "url": url, "httpVersion": "HTTP/1.1", "cookies": [], "headersSize": -1,
               "bodySize": -1, "headers": [{"name": "Host", "value": urlsplit(url).netloc}],
               "queryString": []}
    response = {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "cookies": [], "headers": [],
                "redirectURL": "", "headersSize": -1, "bodySize": -1, "content": {"size": 0, "mimeType": "text/plain"}}
    if part == "request.body":
        request["headers"].append({"name": "Content-Type", "value": content_type})
        request["postData"] = {"mimeType": content_type, "text": text}
    else:
        response["headers"].append({"name": "Content-Type", "value": content_type})
        response["content"] = {"size": len(text), "mimeType": content_type, "text": text}
    labels = [{"part": label.get("part", part), "path": label["path"], "type": label["type"]}
              for label in example.get("labels", [])]
    return {"startedDateTime": "2026-01-01T00:00:00.000Z", "time": 1, "request": request, "response": response,
            "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0}, "comment": example.get("name", ""),
            "_pii_labels": labels}


def har(source: Path) -> dict:
    doc = json.loads(source.read_text(encoding="utf-8"))
    comment = f"{doc['source']} ({doc['url']}), licence: {doc['license']}"
    return {"log": {"version": "1.2", "creator": {"name": "corpus/apis/build.py", "version": "1"},
                    "comment": comment, "entries": [entry(e) for e in doc["examples"]]}}


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/pii-apis")
    out.mkdir(parents=True, exist_ok=True)
    for source in sources():
        path = out / f"{source.stem}.har"
        path.write_text(json.dumps(har(source), ensure_ascii=False), encoding="utf-8")
        print(path)


if __name__ == "__main__":
    main()
