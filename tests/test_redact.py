"""sensor/enforce/redact.py: request parts rewritten with the values of findings taken out, formats kept valid.
Findings come from the real engine, as they do in the proxy."""
import gzip
import json
import zlib

import brotli
import pytest

from sensor.engine import Sensor
from sensor.enforce.redact import redact_body, redact_headers, redact_target, token
from sensor.model import Exchange, Finding, Peer, Request

EMAIL, CARD, PHONE = "jane.doe@example.com", "4111 1111 1111 1111", "+1 415-555-2671"


@pytest.fixture(scope="module")
def sensor():
    return Sensor()


def findings(sensor, body=b"", ctype="application/json", target="/v1/orders", headers=(), types=None):
    request = Request(headers=[("content-type", ctype), *headers], body=body, method="POST", target=target)
    found = sensor.findings(Exchange(0.0, Peer(), Peer(), request))
    return [f for f in found if types is None or f.type in types], request.headers


def body_of(sensor, doc, types=("Email", "Card"), ctype="application/json"):
    body = json.dumps(doc).encode()
    found, headers = findings(sensor, body, ctype, types=types)
    return redact_body(headers, body, found)


def test_json_nested_paths_and_arrays_lose_only_the_chosen_types(sensor):
    doc = {"customer": {"name": "Jane Doe", "contacts": [{"email": EMAIL}, {"phone": PHONE}],
                        "payment": {"card_number": CARD, "amount": 12.5}}, "order_id": "A-7781"}
    out = body_of(sensor, doc)
    assert out.missed == []
    new = json.loads(out.value)  # still JSON
    assert new["customer"]["contacts"][0]["email"] == token("Email")
    assert new["customer"]["payment"]["card_number"] == token("Card")
    assert new["customer"]["contacts"][1]["phone"] == PHONE and new["customer"]["name"] == "Jane Doe"  # not chosen
    assert new["customer"]["payment"]["amount"] == 12.5 and new["order_id"] == "A-7781"
    assert EMAIL.encode() not in out.value and CARD.encode() not in out.value
    assert b" " not in out.value.replace(CARD.encode(), b"").replace(b"Jane Doe", b"").replace(PHONE.encode(), b"")  # compact


def test_items_of_a_sampled_array_are_redacted_like_the_classified_ones(sensor):
    # only the first payload.max_array_items (32) items are classified; the rest follow them
    doc = {"recipients": [{"email": f"user{i}@example.com", "id": i} for i in range(50)]}
    out = body_of(sensor, doc)
    new = json.loads(out.value)
    assert all(r["email"] == token("Email") for r in new["recipients"]) and new["recipients"][49]["id"] == 49
    assert b"@example.com" not in out.value


def test_json_inside_a_string_keys_that_are_data_and_numbers(sensor):
    doc = {"event": json.dumps({"customer": {"email": EMAIL}}),
           "contacts": {EMAIL: {"since": "2020"}},
           "card_number": 4111111111111111}
    out = body_of(sensor, doc)
    assert out.missed == [] and EMAIL.encode() not in out.value and b"4111111111111111" not in out.value
    new = json.loads(out.value)
    assert json.loads(new["event"]) == {"customer": {"email": token("Email")}}  # the inner document stays JSON
    assert list(new["contacts"]) == [token("Email")] and new["contacts"][token("Email")] == {"since": "2020"}
    assert new["card_number"] == token("Card")


def test_ndjson_lines_are_rewritten_one_by_one(sensor):
    body = (json.dumps({"email": EMAIL}) + "\n" + json.dumps({"status": "ok"}) + "\r\n").encode()
    found, headers = findings(sensor, body, "application/x-ndjson", types={"Email"})
    out = redact_body(headers, body, found)
    assert out.value == b'{"email":"[REDACTED:Email]"}\n{"status": "ok"}\r\n'  # untouched lines keep their bytes


def test_a_body_that_is_not_the_json_it_claims_is_left_alone_and_reported(sensor):
    body = b'{"email": "jane.doe@example.com", "broken": '
    found, headers = findings(sensor, body, types={"Email"})
    assert found  # classified as text
    out = redact_body(headers, body, found)
    assert out.value is None and out.missed == found


def test_form_bodies_keep_the_bytes_of_untouched_pairs(sensor):
    body = b"name=Jane+Doe&email=jane.doe%40example.com&plan=pro%2Bplus&card=4111+1111+1111+1111"
    found, headers = findings(sensor, body, "application/x-www-form-urlencoded", types={"Email", "Card"})
    out = redact_body(headers, body, found)
    assert out.missed == []
    assert out.value == b"name=Jane+Doe&email=%5BREDACTED%3AEmail%5D&plan=pro%2Bplus&card=%5BREDACTED%3ACard%5D"


def test_multipart_text_and_json_fields_are_rewritten_and_files_left(sensor):
    boundary = "XyZ42"
    parts = [
        b'Content-Disposition: form-data; name="email"\r\n\r\njane.doe@example.com',
        (b'Content-Disposition: form-data; name="profile"\r\nContent-Type: application/json\r\n\r\n'
         b'{"card": "4111 1111 1111 1111", "tier": "gold"}'),
        b'Content-Disposition: form-data; name="avatar"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG\x00\x01',
    ]
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts) + b"--" + boundary.encode() + b"--\r\n"
    ctype = f"multipart/form-data; boundary={boundary}"
    found, headers = findings(sensor, body, ctype, types={"Email", "Card"})
    out = redact_body(headers, body, found)
    assert out.missed == [] and EMAIL.encode() not in out.value and CARD.encode() not in out.value
    assert b'name="email"\r\n\r\n[REDACTED:Email]\r\n' in out.value
    assert b'{"card":"[REDACTED:Card]","tier":"gold"}' in out.value
    assert b"\x89PNG\x00\x01\r\n--XyZ42--\r\n" in out.value  # the file part and the closing delimiter as they were


@pytest.mark.parametrize("coding, encode, decode", [
    ("gzip", gzip.compress, gzip.decompress),
    ("deflate", zlib.compress, zlib.decompress),
    ("br", brotli.compress, brotli.decompress),
])
def test_encoded_bodies_are_decoded_rewritten_and_encoded_again(sensor, coding, encode, decode):
    plain = json.dumps({"email": EMAIL, "note": "hello"}).encode()
    body = encode(plain)
    found, headers = findings(sensor, body, headers=[("content-encoding", coding)], types={"Email"})
    out = redact_body(headers, body, found)
    assert out.missed == [] and json.loads(decode(out.value)) == {"email": token("Email"), "note": "hello"}


def test_binary_bodies_and_unknown_codings_are_reported_not_rewritten():
    finding = Finding("Email", "request.body", "$", 0.9, EMAIL)
    for headers, body in (([("content-type", "application/octet-stream")], b"\x00\x01" + EMAIL.encode()),
                          ([("content-type", "text/plain"), ("content-encoding", "compress")], b"x")):
        out = redact_body(headers, body, [finding])
        assert out.value is None and out.missed == [finding]


def test_text_bodies_replace_whole_words_only():
    text = b"FHIR patient F, write to jane.doe@example.com."
    found = [Finding("Gender", "request.body", "$", 0.9, "F"), Finding("Email", "request.body", "$", 0.9, EMAIL)]
    out = redact_body([("content-type", "text/plain")], text, found)
    assert out.value == b"FHIR patient [REDACTED:Gender], write to [REDACTED:Email]." and out.missed == []


def test_xml_text_and_attributes_but_never_tag_names():
    body = b'<Customer email="jane.doe@example.com"><F>F</F><Note>Mail jane.doe@example.com</Note></Customer>'
    found = [Finding("Email", "request.body", "$.Customer['@email']", 0.9, EMAIL),
             Finding("Gender", "request.body", "$.Customer.F", 0.9, "F")]
    out = redact_body([("content-type", "application/xml")], body, found)
    assert out.value == (b'<Customer email="[REDACTED:Email]"><F>[REDACTED:Gender]</F>'
                         b'<Note>Mail [REDACTED:Email]</Note></Customer>')


def test_query_path_and_header_values(sensor):
    target = "/v1/users/jane.doe@example.com/orders?email=jane.doe%40example.com&ref=abc%20d&x=1"
    headers = [("X-Forwarded-For", "203.0.113.9"), ("Cookie", "session=s1; email=jane.doe%40example.com"),
               ("Accept", "application/json")]
    found, request_headers = findings(sensor, target=target, headers=headers, types={"Email", "IP address"})
    assert {f.part for f in found} == {"request.path", "request.query", "request.headers"}
    new_target = redact_target(target, found)
    assert new_target.missed == []
    assert new_target.value == "/v1/users/%5BREDACTED:Email%5D/orders?email=%5BREDACTED%3AEmail%5D&ref=abc%20d&x=1"
    new_headers = redact_headers(request_headers, found)
    assert new_headers.missed == []
    assert new_headers.value[1:] == [("X-Forwarded-For", "[REDACTED:IP address]"),
                                     ("Cookie", "session=s1; email=%5BREDACTED%3AEmail%5D"),
                                     ("Accept", "application/json")]


def test_results_never_show_a_value(sensor):
    out = body_of(sensor, {"email": EMAIL, "broken": "x"}, types=("Email",))
    missed = redact_body([("content-type", "application/octet-stream")], b"\x00" + EMAIL.encode(),
                         [Finding("Email", "request.body", "$", 0.9, EMAIL)])
    assert "jane" not in repr(out) and "jane" not in repr(missed)
