"""HAR 1.2 reader (browser and mitmproxy exports) producing Exchanges.

HAR stores bodies decoded (`content.text`, `postData.text`, base64 for binary),
even where a Content-Encoding header is present, so the bodies are marked
`encoded=False` and are never decoded twice. Entries are read one at a time with a
streaming JSON parser (ijson), so a HAR file larger than memory can be scanned.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip
import json
from urllib.parse import urlsplit

import ijson

from ..errors import InputError
from ..model import Drop, Exchange, Peer, Request, Response, ip_or_none
from .capped import CHUNK, CappedStrings


def load(path: str) -> dict:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise InputError(f"{path}: corrupt gzip: {e}") from None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a HAR file (invalid JSON: {e})") from None
    entries = doc.get("log", {}).get("entries") if isinstance(doc, dict) and isinstance(doc.get("log"), dict) else None
    if not isinstance(entries, list):
        raise InputError(f"{path}: not a HAR file (no log.entries)")
    return doc


def _time(value) -> float:
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _headers(items) -> list[tuple[str, str]]:
    if not isinstance(items, list):
        return []
    return [(str(h.get("name", "")), str(h.get("value", ""))) for h in items if isinstance(h, dict)]


def _content(text, encoding) -> bytes:
    if not isinstance(text, str):
        return b""
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=False)
        except (binascii.Error, ValueError):
            return text.encode("utf-8", "surrogatepass")
    return text.encode("utf-8", "surrogatepass")


def _post_body(post: dict, headers: list[tuple[str, str]]) -> bytes:
    if "text" in post:
        return _content(post.get("text"), post.get("encoding"))
    params = post.get("params")
    if isinstance(params, list):  # some exporters keep only the parsed form
        from urllib.parse import urlencode

        return urlencode([(p.get("name", ""), p.get("value", "")) for p in params if isinstance(p, dict)]).encode()
    return b""


def entry_to_exchange(entry: dict) -> Exchange:
    """One HAR entry -> Exchange. Raises ValueError/KeyError/TypeError on a malformed entry."""
    req = entry["request"]
    url = urlsplit(req["url"])
    target = url.path or "/"
    if url.query:
        target += "?" + url.query
    req_headers = _headers(req.get("headers"))
    request = Request(
        headers=req_headers,
        body=_post_body(req.get("postData") or {}, req_headers),
        encoded=False,
        method=str(req.get("method", "GET")).upper(),
        target=target,
    )
    resp = entry.get("response") or {}
    content = resp.get("content") or {}
    status = resp.get("status")
    response = Response(
        headers=_headers(resp.get("headers")),
        body=_content(content.get("text"), content.get("encoding")),
        encoded=False,
        status=int(status) if isinstance(status, (int, float)) and status > 0 else None,
    )
    port = url.port or (443 if url.scheme == "https" else 80)
    client_port = entry.get("_clientPort")
    destination = Peer(ip=ip_or_none(entry.get("serverIPAddress")), port=port, host=url.hostname)
    source = Peer(ip=ip_or_none(entry.get("_clientIPAddress")),
                  port=client_port if isinstance(client_port, int) and 0 < client_port < 65536 else None)
    labels = entry.get("_pii_labels")
    return Exchange(
        time=_time(entry.get("startedDateTime")),
        source=source,
        destination=destination,
        request=request,
        response=response,
        labels=labels if isinstance(labels, list) else [],
    )


def entries(path: str, max_body: int = 1 << 20):
    """The entries of a HAR file, one at a time, as parsed JSON. Input that is not a HAR file,
    or breaks off, is an InputError (at the point where it breaks). Strings are cut a little
    beyond what a body of `max_body` bytes can take when escaped (six bytes per character at
    most), so one huge body costs no memory and is still known to be too large."""
    count = 0
    try:
        with open(path, "rb") as raw:
            fh = gzip.open(raw) if raw.read(2) == b"\x1f\x8b" else raw
            fh.seek(0)
            strings = CappedStrings(fh, 6 * max_body + CHUNK + 64)  # kept: more than 6 * max_body
            for entry in ijson.items(strings, "log.entries.item", use_float=True):
                count += 1
                yield entry
    except OSError as e:  # unreadable, or a corrupt gzip stream
        raise InputError(f"{path}: cannot read: {e.strerror or type(e).__name__}") from None
    except (ijson.JSONError, EOFError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a HAR file (invalid JSON: {str(e).splitlines()[0][:80]})") from None
    if not count:
        load(path)  # none: a HAR with no entries, or not a HAR at all (the whole check says which)


def read(path: str, stats, max_body: int = 1 << 20):
    """The usable entries of a HAR file as Exchanges, one at a time; malformed entries are skipped and counted."""
    for entry in entries(path, max_body):
        try:
            yield entry_to_exchange(entry)
        except (KeyError, TypeError, ValueError, AttributeError):
            stats.drop(Drop.BAD_ENTRY)
