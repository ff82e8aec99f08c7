"""Body decoders, content encodings and the fields (part, path) they produce."""
import gzip
import json
import zlib

import brotli
import pytest
import zstandard

from sensor.model import Exchange, Peer, Request, Response
from sensor.payload.fields import exchange_fields
from sensor.engine import Sensor
from sensor.config import Config
from sensor.stats import Stats


def exchange(body=b"", content_type="application/json", target="/v1/x", headers=(), encoded=True,
             response_body=b"", response_headers=()):
    req_headers = [("Content-Type", content_type), *headers]
    return Exchange(time=0.0, source=Peer(), destination=Peer(host="svc"),
                    request=Request(headers=req_headers, body=body, encoded=encoded, method="POST", target=target),
                    response=Response(headers=list(response_headers), body=response_body, encoded=encoded, status=200))


def fields(ex, max_body=1 << 20):
    stats = Stats()
    return {(f.part, f.path): f.value for f in exchange_fields(ex, stats, Config(max_body_bytes=max_body)) if not f.is_key}, stats


def findings(ex):
    return {(f.part, f.path, f.type) for f in Sensor().findings(ex)}


def test_json_paths_follow_the_spec():
    body = json.dumps({"a": {"b": [{"c": "x"}]}, "key-name": "y", "n": 5, "t": True, "z": None}).encode()
    got, _ = fields(exchange(body))
    assert got[("request.body", "$.a.b[0].c")] == "x"
    assert got[("request.body", "$['key-name']")] == "y"
    assert got[("request.body", "$.n")] == "5"
    assert ("request.body", "$.t") not in got and ("request.body", "$.z") not in got


def test_json_inside_a_json_string_is_walked():
    body = json.dumps({"payload": json.dumps({"email": "jane@example.com"})}).encode()
    assert ("request.body", "$.payload.email", "Email") in findings(exchange(body))


def test_ndjson_paths_carry_the_line():
    body = b'{"email": "a@example.com"}\n{"ip": "203.0.113.9"}\n'
    assert findings(exchange(body, "application/x-ndjson")) == {
        ("request.body", "$[0].email", "Email"), ("request.body", "$[1].ip", "IP address")}


def test_form_query_and_path():
    ex = exchange(b"name=Jane+Doe&email=jane%40example.com&plan=pro", "application/x-www-form-urlencoded",
                  target="/v1/users/jane.doe%40example.com/orders?phone=%2B14155552671&page=2")
    assert findings(ex) >= {("request.body", "$.email", "Email"), ("request.path", "$", "Email"),
                            ("request.query", "$.phone", "Phone"), ("request.body", "$.name", "Person")}


def test_multipart_fields_and_binary_files():
    body = (b"--B\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\njane@example.com\r\n"
            b"--B\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\x00\x00\r\n"
            b"--B--\r\n")
    got, _ = fields(exchange(body, "multipart/form-data; boundary=B"))
    assert got[("request.body", "$.email")] == "jane@example.com"
    assert ("request.body", "$.photo") not in got


def test_xml_elements_and_attributes():
    body = b'<?xml version="1.0"?><s:Envelope xmlns:s="urn:s"><s:Body><Customer id="7" email="a@example.com"><Email>b@example.com</Email></Customer></s:Body></s:Envelope>'
    assert findings(exchange(body, "text/xml")) == {
        ("request.body", "$.Envelope.Body.Customer['@email']", "Email"),
        ("request.body", "$.Envelope.Body.Customer.Email", "Email")}


def test_text_and_html_bodies_are_scanned_as_text():
    ex = exchange(b"<html><body><p>Write to jane@example.com</p></body></html>", "text/html")
    assert findings(ex) == {("request.body", "$", "Email")}


def test_headers_by_name_and_cookies():
    ex = exchange(headers=[("X-Forwarded-For", "203.0.113.7"), ("Cookie", "sid=abc; email=jane%40example.com"),
                           ("User-Agent", "curl/8.4.0 1.2.3.4")])
    assert findings(ex) == {("request.headers", "$['x-forwarded-for']", "IP address"),
                            ("request.headers", "$['cookie']", "Email")}


@pytest.mark.parametrize("coding, compress", [
    ("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", lambda d: zlib.compress(d)[2:-4]),
    ("br", brotli.compress), ("zstd", lambda d: zstandard.ZstdCompressor().compress(d)),
    ("gzip, br", lambda d: brotli.compress(gzip.compress(d))),
])
def test_content_encodings_on_raw_bytes(coding, compress):
    body = compress(json.dumps({"email": "jane@example.com"}).encode())
    ex = exchange(response_body=body, response_headers=[("Content-Type", "application/json"), ("Content-Encoding", coding)])
    assert ("response.body", "$.email", "Email") in findings(ex)


def test_already_decoded_bodies_are_not_decoded_twice():
    ex = exchange(json.dumps({"email": "jane@example.com"}).encode(), headers=[("Content-Encoding", "gzip")], encoded=False)
    assert ("request.body", "$.email", "Email") in findings(ex)


def test_gzip_bomb_is_capped_and_counted():
    bomb = gzip.compress(b"0" * (50 << 20))
    ex = exchange(response_body=bomb, response_headers=[("Content-Encoding", "gzip")])
    _, stats = fields(ex)
    assert stats.dropped["body_too_large"] == 1


def test_oversized_bodies_are_skipped_and_counted():
    _, stats = fields(exchange(b'{"a": "' + b"x" * 2000 + b'"}'), max_body=1000)
    assert stats.dropped["body_too_large"] == 1


def test_invalid_json_is_counted_and_still_scanned_as_text():
    ex = exchange(b'{"email": "jane@example.com", broken')
    stats = Stats()
    found = {f.type for f in Sensor(stats=stats).findings(ex)}
    assert stats.dropped["parse_error"] == 1 and found == {"Email"}


def test_lying_content_type_falls_back_to_the_real_format():
    ex = exchange(b"email=jane%40example.com&x=1", "application/json")
    assert ("request.body", "$.email", "Email") in findings(ex)


def test_binary_bodies_are_skipped_and_counted():
    _, stats = fields(exchange(b"\x00\x01\x02\x03" * 100, "application/octet-stream"))
    assert stats.skipped["binary_body"] == 1


def test_charsets():
    body = "Geschäftsführerin: Jürgen Müller, jürgen@beispiel.de".encode("iso-8859-1")
    got, _ = fields(exchange(body, "text/plain; charset=iso-8859-1"))
    assert "jürgen@beispiel.de" in got[("request.body", "$")]


@pytest.mark.parametrize("body, content_type", [
    (b"[" * 100_000, "application/json"),
    (b'{"a":' * 50_000, "application/json"),
    (b"<a>" * 50_000, "application/xml"),
    (b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><x>&c;</x>', "application/xml"),
    (b"\xff\xfe\x00garbage\x00", "text/plain"),
    (b"--B\r\nno headers at all", "multipart/form-data; boundary=B"),
    (b'{"a": "\\ud800"}', "application/json"),
])
def test_hostile_bodies_never_raise(body, content_type):
    stats = Stats()
    Sensor(stats=stats).findings(exchange(body, content_type))


def test_broken_content_encoding_is_counted():
    ex = exchange(response_body=gzip.compress(b'{"email": "a@example.com"}')[:-6],
                  response_headers=[("Content-Encoding", "gzip")])
    _, stats = fields(ex)
    assert stats.dropped["bad_encoding"] == 1
