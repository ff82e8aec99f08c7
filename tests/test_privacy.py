"""No raw personal value in any output. Personal data is planted in every place a request can
carry it; every output users see (events of scan and sniff, the table, the HTML report, the
metrics text file, a live /metrics, stderr and log lines) is searched for each raw value,
URL-decoded and lower-cased."""
import http.client
import json
import os
import signal
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlsplit

import pytest

from conftest import har_doc, har_entry, run_cli
from helpers import ROOT, LoopbackServer, free_port, metric, scrape, started, wait_for

NAME, EMAIL, PHONE = "Jane Doe", "jane.doe@example.com", "+1 415 555 0132"
SSN, CARD, IBAN, STREET, IP = "536-22-8012", "4539 1488 0343 6467", "DE89370400440532013000", "42 Baker Street", "203.0.113.42"
HOST = "jane-doe.example.com"
# What must never appear, in any spelling the traffic used (compared URL-decoded and lower-cased).
RAW = ["jane", "doe", EMAIL, "415 555 0132", "4155550132", "+14155550132", SSN, CARD, CARD.replace(" ", ""),
       IBAN, "baker", IP]

XML = (f'<Contacts><Jane_Doe email="{EMAIL}"><Phone>{PHONE}</Phone><Note>Call {NAME} at {PHONE}</Note></Jane_Doe>'
       f'</Contacts>')
MULTIPART = ("--XyZ\r\n"
             f'Content-Disposition: form-data; name="{EMAIL}"\r\n\r\n{PHONE}\r\n'
             "--XyZ\r\n"
             'Content-Disposition: form-data; name="resume"; filename="Jane_Doe_CV.txt"\r\nContent-Type: text/plain\r\n\r\n'
             f"My name is {NAME}, SSN {SSN}.\r\n"
             "--XyZ--\r\n")


def planted_entries():
    """HAR entries that carry the planted values in every place a request or response can."""
    json_body = {
        "contacts": {EMAIL: {"phone": PHONE}, NAME: {"email": EMAIL, "phone": PHONE}},
        "customer": {"name": NAME, "email": EMAIL, "ssn": SSN, "iban": IBAN, "address": {"street": STREET}},
        "payment": {"card": {"number": CARD}},
        "note": f"Hi, my name is {NAME} and I live at {STREET}. Call me at {PHONE} or write to {EMAIL}.",
    }
    return [
        har_entry("GET", f"http://{HOST}/v1/people/Jane%20Doe"),
        har_entry("GET", f"http://{HOST}/v1/users/{EMAIL}/orders?email={EMAIL}&{EMAIL}=1"),
        har_entry("GET", f"http://{HOST}/v1/search/name=Jane%20Doe;v=2"),
        har_entry("GET", f"http://{HOST}/v1/people/jane-doe/profile"),
        har_entry("POST", f"http://{HOST}/v1/customers", body=json_body, response_body=json_body,
                  headers=[("X-Jane-Doe", EMAIL), ("X-Forwarded-For", IP), ("Cookie", f"user={EMAIL}; sid=abc")],
                  response_headers=[("Set-Cookie", f"contact={EMAIL}; Path=/")]),
        har_entry("POST", f"http://{HOST}/v1/forms", body=f"name=Jane+Doe&phone={PHONE}&{EMAIL}=yes",
                  content_type="application/x-www-form-urlencoded"),
        har_entry("POST", f"http://{HOST}/v1/upload", body=MULTIPART, content_type="multipart/form-data; boundary=XyZ"),
        har_entry("POST", f"http://{HOST}/v1/contacts.xml", body=XML, content_type="application/xml"),
        har_entry("POST", f"http://{HOST}/v1/tickets", body=f"Customer {NAME} ({EMAIL}) called from {PHONE}.",
                  content_type="text/plain"),
    ]


def har_only_entries():
    """Shapes only a HAR file (or a proxy) passes on: any method, any header name, any server address."""
    odd_keys = {"contacts": {"Doe, Jane": {"phone": PHONE}, "Jane Doe (VIP)": {"phone": PHONE}, "Jane": {"phone": PHONE},
                             "jane.doe@example.com " + "x" * 250: {"phone": PHONE}}}
    weird = har_entry("JANE.DOE@EXAMPLE.COM", "http://jane.doe.example.com/v1/x", body={"email": EMAIL},
                      headers=[("X-Contact'jane.doe@example.com", EMAIL)])
    weird["serverIPAddress"], weird["_clientIPAddress"] = NAME, EMAIL
    return [
        weird,
        har_entry("POST", "http://api.example.com/v1/contacts", body=odd_keys),
        har_entry("GET", "http://api.example.com/v1/u/jane.doe%2540example.com/x"),
        har_entry("GET", "http://api.example.com/v1/users/4155550132/orders"),
        har_entry("GET", "http://api.example.com/v1/people;name=Jane;last=Doe/x"),
        har_entry("GET", "http://api.example.com/v1/profiles/Doe,Jane/" + "a" * 300),
    ]


def leaks(text: str) -> list[str]:
    seen = unquote(text).lower()
    return [raw for raw in RAW if raw.lower() in seen]


def test_scan_outputs_carry_no_planted_value(tmp_path):
    har = tmp_path / "planted.har"
    har.write_text(json.dumps(har_doc(planted_entries() + har_only_entries())), encoding="utf-8")
    report, prom = tmp_path / "report.html", tmp_path / "metrics.prom"
    events = run_cli("scan", har, "--format", "json", "--metrics-file", prom)
    table = run_cli("scan", har, "--report", report)
    assert events.returncode == 0 and table.returncode == 0, events.stderr + table.stderr
    outputs = {"events": events.stdout, "scan stderr": events.stderr + table.stderr, "table": table.stdout,
               "report": report.read_text(), "metrics file": prom.read_text()}
    assert {name: leaks(text) for name, text in outputs.items()} == {name: [] for name in outputs}

    # not vacuous: the planted data was found in every part, and the keys that are data were counted
    found = [json.loads(line) for line in events.stdout.splitlines()]
    parts = {f["part"] for e in found for f in e["findings"]}
    assert parts == {"request.path", "request.query", "request.headers", "request.body",
                     "response.headers", "response.body"}
    paths = {f["path"] for e in found for f in e["findings"]}
    assert "$.contacts['****.***@*******.***']" in paths and "$.contacts['**** ***']" in paths
    assert "$.contacts['****.***@*******.***'].phone" in paths
    assert "$['*-****-***']" in paths  # the header named after a person
    endpoints = {e["request"]["endpoint"] for e in found}
    assert {"/v1/people/{pii}", "/v1/users/{email}/orders", "/v1/search/{pii}"} <= endpoints
    assert "/v1/people/{pii}/profile" in table.stdout  # a name as an identifier, in an exchange without findings
    assert {e["destination"]["host"] for e in found} >= {"****-***.example.com", "****.***.example.com"}
    assert "_OTHER" in {e["request"]["method"] for e in found}  # a method outside the registry


class EchoAny(BaseHTTPRequestHandler):
    """Answers every request with a small JSON body, as any upstream service would."""
    protocol_version = "HTTP/1.1"

    def _reply(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"ok": True, "contact": {"email": EMAIL}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", f"contact={EMAIL}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _reply

    def log_message(self, *args):
        pass


@pytest.mark.skipif(os.geteuid() != 0, reason="live capture on the loopback interface needs root")
def test_sniff_outputs_carry_no_planted_value(tmp_path):
    server = LoopbackServer(EchoAny)
    metrics_port, events = free_port(), tmp_path / "events.jsonl"
    sniff = subprocess.Popen([sys.executable, "-m", "sensor", "sniff", "-i", "lo", "--bpf", f"tcp port {server.port}",
                              "--metrics-port", str(metrics_port), "--events", f"file:{events}"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started(sniff, lambda: "pii_sensor_exchanges_total" in scrape(metrics_port))
        entries = planted_entries()
        for entry in entries:  # the same requests, sent for real
            request, url = entry["request"], urlsplit(entry["request"]["url"])
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            headers = {h["name"]: h["value"] for h in request["headers"]} | {"Host": url.hostname}
            body = request.get("postData", {}).get("text")
            conn.request(request["method"], url.path + ("?" + url.query if url.query else ""),
                         body=body.encode() if body else None, headers=headers)
            assert conn.getresponse().read()
            conn.close()
        assert wait_for(lambda: metric(scrape(metrics_port), "pii_sensor_exchanges_total") >= len(entries), timeout=60)
        live_metrics = scrape(metrics_port)
    finally:
        sniff.send_signal(signal.SIGTERM)
        out, err = sniff.communicate(timeout=60)
        server.close()
    assert sniff.returncode == 0, err
    outputs = {"events": events.read_text(), "/metrics": live_metrics, "stdout": out, "stderr and log lines": err}
    assert {name: leaks(text) for name, text in outputs.items()} == {name: [] for name in outputs}
    assert len(events.read_text().splitlines()) == len(planted_entries())  # every exchange had findings


def test_reprs_and_errors_hold_no_value():
    from detectors.base import Candidate
    from sensor.config import Config
    from sensor.engine import Sensor
    from sensor.model import Exchange, Peer, Request, Response
    from sensor.payload.fields import exchange_fields
    from sensor.stats import Stats

    body = json.dumps({"contacts": {EMAIL: {"name": NAME, "phone": PHONE}}}).encode()
    exchange = Exchange(time=0, source=Peer("10.244.1.7", 5000), destination=Peer("10.0.0.2", 80, HOST),
                        request=Request(headers=[("Content-Type", "application/json"), ("X-Jane-Doe", EMAIL)],
                                        body=body, method="POST", target=f"/v1/people/{EMAIL}"),
                        response=Response(status=200))
    fields = exchange_fields(exchange, Stats(), Config())
    findings = Sensor().findings(exchange)
    assert findings and fields
    config = Config(webhook_secret="hunter2-secret")
    shown = repr([exchange, fields, findings, [f.record for f in fields], Candidate("Person", 0.5, NAME), config])
    assert leaks(shown) == [] and "hunter2" not in shown


def test_an_unexpected_error_is_one_line_without_its_message(monkeypatch, capsys):
    from sensor.commands import main, scan

    def explode(args):
        raise ValueError(f"invalid literal for int() with base 10: {EMAIL!r}")

    monkeypatch.setattr(scan, "run", explode)
    assert main.main(["scan", "x.har"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ValueError" in err and leaks(err) == []
    assert main.main(["--debug", "scan", "x.har"]) == 1
    err = capsys.readouterr().err
    assert "in explode" in err and leaks(err) == []  # where it happened, never what it said


def test_keys_that_are_personal_data_stay_masked_in_finding_paths():
    """Short numeric keys and schema words are shown in paths ($['3'], $.shipping.street); a key
    that is itself the data found, or that carries it beside a schema word, never is."""
    from sensor.engine import Sensor
    from sensor.sources import har

    body = {"by_zip": {"90210": {"city": "Beverly Hills", "zip": "90210"}},
            "contacts": {"jane.doe@example.com email": {"email": "jane.doe@example.com"}},
            "shipping": {"street": "42 Baker Street", "city": "London"}}
    event = Sensor().process(har.entry_to_exchange(har_entry(body=body))).to_dict()
    paths = " ".join(f["path"] for f in event["findings"])
    assert "90210" not in paths and "jane.doe" not in paths and "example.com" not in paths
    assert "$.shipping.street" in paths
