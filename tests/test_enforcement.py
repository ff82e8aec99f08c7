"""Enforcement in the proxy (SPEC.md section 9): `pii-sensor proxy` in front of a real upstream that
records the bytes it receives; redact and block rules act before a request leaves, dry run only reports."""
import http.client
import json
import random
import re
import signal
import socket
import socketserver
import string
import subprocess
import sys
import threading

import pytest

from helpers import ROOT, free_port, metric, scrape, started, wait_for
from sensor import policy
from sensor.model import Party

EMAIL, CARD, SSN = "jane.doe@example.com", "4111 1111 1111 1111", "078-05-1120"
POLICY = """
policy:
  - name: contact-data-to-partner
    data_types: [Email, Card]
    to: {hosts: ["localhost"]}
    action: redact
  - name: no-ssn-to-partner
    data_types: [SSN]
    to: {hosts: ["localhost"]}
    action: block
  - name: persons-noted
    data_types: [Person]
"""


# --- could_act and mark_enforced ----------------------------------------------------

def _rules(text):
    import yaml

    return policy.parse(yaml.safe_load(text), "test")


def test_could_act_judges_selectors_without_data_and_assumes_what_it_cannot_know():
    rules = _rules("""
- {name: to-partner, data_types: [Email], to: {hosts: ["*.partner.example"]}, action: redact}
- {name: abroad, min_sensitivity: high, to: {countries: [US]}, action: block}
- {name: from-checkout, from: {workloads: [checkout]}, action: block}
- {name: not-to-psp, data_types: [Card], to: {external: true}, unless_to: {hosts: ["*.stripe.com"]}, action: block}
- {name: alerting, data_types: [Email]}
""")
    names = lambda *args, **kw: [r.name for r in policy.could_act(rules, *args, **kw)]  # noqa: E731
    client = Party("10.0.0.5", 5000, name="checkout")
    assert names(client, Party("203.0.113.7", 443, host="api.partner.example", external=True, country="US"), False) == \
        ["to-partner", "abroad", "from-checkout", "not-to-psp"]
    other = Party("10.0.0.6", 5000)
    # an internal host in the same country: nothing can act, so the request is never classified inline
    assert names(other, Party("10.1.0.9", 80, host="users.internal", external=False, country="DE"), False) == []
    # the destination's IP and country are not known before connecting: the country rule may still act
    assert names(other, Party(None, 443, host="api.example.com", external=True), None) == ["abroad", "not-to-psp"]
    # a host glob that holds for certain rules `unless_to` out
    assert names(other, Party("198.51.100.1", 443, host="api.stripe.com", external=True, country="IE"), False) == []
    # workload names Kubernetes has not given yet count as possible
    assert names(other, Party("10.1.0.9", 80, external=False, country="DE"), False, names_known=False) == ["from-checkout"]


def test_violations_say_what_the_proxy_did():
    violations = [{"rule": "r-redact", "action": "redact"}, {"rule": "r-block", "action": "block"},
                  {"rule": "r-alert", "action": "alert"}]
    marked = policy.mark_enforced(violations, {"actions": [["r-redact", "redact", True]], "dry_run": False})
    assert marked == [{"rule": "r-redact", "action": "redact", "enforced": True},
                      {"rule": "r-block", "action": "block", "enforced": False},
                      {"rule": "r-alert", "action": "alert"}]
    dry = policy.mark_enforced(violations[:1], {"actions": [["r-redact", "redact", False]], "dry_run": True})
    assert dry == [{"rule": "r-redact", "action": "redact", "enforced": False, "dry_run": True}]
    closed = policy.mark_enforced(violations[:1], {"actions": [["r-redact", "block", True]], "failure": "unredactable"})
    assert closed == [{"rule": "r-redact", "action": "redact", "enforced": True, "enforced_as": "block"}]


def test_fail_open_forwards_what_it_could_redact_and_says_it_did_not_enforce():
    import asyncio

    from sensor.config import Config
    from sensor.enforce.inline import Enforcer
    from sensor.model import Exchange, Peer, Request

    enforcer = Enforcer(Config(policy=_rules("[{name: no-email, data_types: [Email], action: redact}]")))
    try:
        assert enforcer.wait_ready(300)
        request = Request(headers=[("content-type", "application/json")], body=b'{"email": "jane.doe@example.com", "x": ',
                          method="POST", target="/v1/notes?contact=jane.doe%40example.com&page=2")
        outcome = asyncio.run(enforcer.decide(Exchange(0.0, Peer("10.0.0.1", 5000), Peer("10.0.0.2", 80), request)))
    finally:
        enforcer.close()
    assert outcome.action == "redact" and outcome.failure == "unredactable"  # the body is not the JSON it says
    assert outcome.acted == [("no-email", "redact", False)] and outcome.body is None
    assert outcome.target == "/v1/notes?contact=%5BREDACTED%3AEmail%5D&page=2"
    assert outcome.record()["actions"] == [["no-email", "redact", False]] and "jane" not in repr(outcome)


def test_a_proxy_without_redact_or_block_rules_loads_no_engine():
    from sensor.config import Config
    from sensor.sources.proxy import _enforcer

    assert _enforcer(Config()) is None
    assert _enforcer(Config(policy=_rules("[{name: a, data_types: [Email]}]"))) is None


# --- the proxy, end to end ---------------------------------------------------------------

class Recorder:
    """A real HTTP/1.1 upstream on loopback that keeps the exact bytes of every request it gets."""

    def __init__(self):
        self.requests: list[tuple[bytes, bytes]] = []  # (request line and headers, body)
        recorder = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    head = line
                    while line not in (b"\r\n", b"\n", b""):
                        line = self.rfile.readline()
                        head += line
                    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                    body = self.rfile.read(int(length.group(1))) if length else b""
                    recorder.requests.append((head, body))
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
                                     b'{"ok":true}')

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self, path: str) -> list[tuple[bytes, bytes]]:
        return [(head, body) for head, body in self.requests if head.split(b" ")[1].startswith(path.encode())]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def upstream():
    recorder = Recorder()
    yield recorder
    recorder.close()


class Proxy:
    """`pii-sensor proxy --mode regular` (an egress proxy) with a policy, its events and /metrics."""

    def __init__(self, tmp, config: str):
        (tmp / "config.yaml").write_text(config)
        self.listen, self.metrics_port, self.events = free_port(), free_port(), tmp / "events.jsonl"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sensor", "proxy", "--mode", "regular", "--listen-port", str(self.listen),
             "--metrics-port", str(self.metrics_port), "--events", f"file:{self.events}", "--confdir", str(tmp / "mitm"),
             "--config", str(tmp / "config.yaml")],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # the enforcement engine loads before the proxy listens: once it does, rules are in force
        started(self.proc, lambda: socket.create_connection(("127.0.0.1", self.listen), timeout=1).close() or True)

    def send(self, url: str, body: bytes | None = None, headers: dict | None = None, method: str = "POST"):
        conn = http.client.HTTPConnection("127.0.0.1", self.listen, timeout=30)
        try:
            conn.request(method, url, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def metric(self, series: str) -> float:
        return metric(scrape(self.metrics_port), series)

    def event(self, path: str) -> dict:
        """The event of the exchange with this URL path, once the classifier process has written it."""
        found = []

        def written():
            found[:] = [e for e in map(json.loads, self.events.read_text().splitlines()) if e["request"]["path"] == path]
            return found

        assert wait_for(written), f"no event for {path}"
        return found[0]

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        return err


@pytest.fixture(scope="module")
def enforcing(tmp_path_factory):
    proxy = Proxy(tmp_path_factory.mktemp("enforcing"), POLICY)
    yield proxy
    err = proxy.stop()
    assert EMAIL not in err and SSN not in err


ACTIONS = 'pii_sensor_enforcement_actions_total{action="%s",dry_run="%s",rule="%s"}'
PAYMENT = {"customer": {"name": "Jane Doe", "email": EMAIL}, "card": {"number": CARD, "exp": "12/29"},
           "amount": 42, "note": "first order"}


def _json_headers(body: bytes) -> dict:
    return {"Content-Type": "application/json", "X-Trace": "t-81", "Content-Length": str(len(body))}


def _raw_values_absent(received: bytes, *values: str):
    for value in values:
        for form in {value, value.replace(" ", ""), value.replace("@", "%40"), value.replace(" ", "+")}:
            assert form.encode() not in received


def test_redact_json_before_it_leaves(upstream, enforcing):
    before = enforcing.metric(ACTIONS % ("redact", "false", "contact-data-to-partner"))
    body = json.dumps(PAYMENT).encode()
    status, answer = enforcing.send(f"http://localhost:{upstream.port}/v1/payments", body, _json_headers(body))
    assert status == 200 and answer == b'{"ok":true}'
    [(head, got)] = upstream.received("/v1/payments")
    _raw_values_absent(head + got, EMAIL, CARD)
    assert re.search(rb"(?im)^content-length: (\d+)\r$", head).group(1) == str(len(got)).encode()
    # still valid JSON; a card's expiry is Card data too (SPEC.md section 1); the rest untouched
    assert json.loads(got) == {"customer": {"name": "Jane Doe", "email": "[REDACTED:Email]"},
                               "card": {"number": "[REDACTED:Card]", "exp": "[REDACTED:Card]"},
                               "amount": 42, "note": "first order"}
    assert b"\r\nX-Trace: t-81\r\n" in head
    # the event reports the request as the client sent it, and the action
    event = enforcing.event("/v1/payments")
    assert {"Email", "Card", "Person"} <= set(event["data_types"])
    assert {"rule": "contact-data-to-partner", "action": "redact", "enforced": True} in event["violations"]
    assert {"rule": "persons-noted", "action": "alert"} in event["violations"]
    assert EMAIL not in json.dumps(event)
    assert wait_for(lambda: enforcing.metric(ACTIONS % ("redact", "false", "contact-data-to-partner")) == before + 1)


def test_redact_form_bodies_and_query_strings(upstream, enforcing):
    body = b"name=Jane+Doe&email=jane.doe%40example.com&plan=pro"
    url = f"http://localhost:{upstream.port}/v1/signup?contact=jane.doe%40example.com&ref=campaign-7"
    status, _ = enforcing.send(url, body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    [(head, got)] = upstream.received("/v1/signup")
    _raw_values_absent(head + got, EMAIL)
    assert head.startswith(b"POST /v1/signup?contact=%5BREDACTED%3AEmail%5D&ref=campaign-7 HTTP/1.1\r\n")
    assert got == b"name=Jane+Doe&email=%5BREDACTED%3AEmail%5D&plan=pro"
    assert re.search(rb"(?im)^content-length: (\d+)\r$", head).group(1) == str(len(got)).encode()
    event = enforcing.event("/v1/signup")
    assert {f["part"] for f in event["findings"] if f["type"] == "Email"} == {"request.query", "request.body"}


def test_other_destinations_pass_byte_identical(upstream, enforcing):
    body = json.dumps(PAYMENT).encode()
    status, _ = enforcing.send(f"http://127.0.0.1:{upstream.port}/v1/elsewhere?email=jane.doe%40example.com", body,
                               _json_headers(body))
    assert status == 200
    [(head, got)] = upstream.received("/v1/elsewhere")
    assert got == body
    assert head.startswith(b"POST /v1/elsewhere?email=jane.doe%40example.com HTTP/1.1\r\n")
    assert f"\r\nContent-Length: {len(body)}\r\n".encode() in head
    assert enforcing.event("/v1/elsewhere")["violations"] == [{"rule": "persons-noted", "action": "alert"}]


def test_block_answers_403_and_sends_nothing_upstream(upstream, enforcing):
    before = enforcing.metric(ACTIONS % ("block", "false", "no-ssn-to-partner"))
    body = json.dumps({"applicant": {"ssn": SSN, "email": EMAIL}}).encode()
    status, answer = enforcing.send(f"http://localhost:{upstream.port}/v1/credit-check", body, _json_headers(body))
    assert status == 403
    assert json.loads(answer) == {"error": "blocked by pii-sensor policy", "rule": "no-ssn-to-partner", "data_types": ["SSN"]}
    clean = json.dumps({"applicant": {"email": EMAIL}}).encode()  # no SSN: passes (with the email redacted)
    assert enforcing.send(f"http://localhost:{upstream.port}/v1/credit-lookup", clean, _json_headers(clean))[0] == 200
    assert upstream.received("/v1/credit-lookup") and upstream.received("/v1/credit-check") == []
    event = enforcing.event("/v1/credit-check")
    assert event["response"]["status"] == 403 and "SSN" in event["data_types"]
    assert {"rule": "no-ssn-to-partner", "action": "block", "enforced": True} in event["violations"]
    assert wait_for(lambda: enforcing.metric(ACTIONS % ("block", "false", "no-ssn-to-partner")) == before + 1)


def test_dry_run_changes_nothing_and_reports_what_it_would_have_done(upstream, tmp_path):
    proxy = Proxy(tmp_path, POLICY + "enforcement:\n  dry_run: true\n")
    try:
        payment = json.dumps(PAYMENT).encode()
        credit = json.dumps({"applicant": {"ssn": SSN}}).encode()
        assert proxy.send(f"http://localhost:{upstream.port}/v1/dry-payments", payment, _json_headers(payment))[0] == 200
        assert proxy.send(f"http://localhost:{upstream.port}/v1/dry-credit", credit, _json_headers(credit))[0] == 200
        assert [body for _, body in upstream.received("/v1/dry-")] == [payment, credit]  # untouched
        redact, block = proxy.event("/v1/dry-payments"), proxy.event("/v1/dry-credit")
        assert {"rule": "contact-data-to-partner", "action": "redact", "enforced": False, "dry_run": True} in redact["violations"]
        assert {"rule": "no-ssn-to-partner", "action": "block", "enforced": False, "dry_run": True} in block["violations"]
        assert wait_for(lambda: proxy.metric(ACTIONS % ("redact", "true", "contact-data-to-partner")) == 1
                        and proxy.metric(ACTIONS % ("block", "true", "no-ssn-to-partner")) == 1)
        assert proxy.metric(ACTIONS % ("redact", "false", "contact-data-to-partner")) == 0
    finally:
        proxy.stop()


def _novel_text_body() -> bytes:
    """A body the engine has never seen, with free text in every field: far slower to classify than 100 ms."""
    rnd = random.Random()
    words = lambda: " ".join("".join(rnd.choices(string.ascii_lowercase, k=7)).title() for _ in range(8))  # noqa: E731
    return json.dumps({f"note_{i}": f"{words()} wrote to {EMAIL}" for i in range(400)}).encode()


def test_fail_closed_blocks_what_it_cannot_judge_or_redact_in_time(upstream, tmp_path):
    proxy = Proxy(tmp_path, POLICY + "enforcement:\n  fail_closed: true\n  inline_timeout_ms: 100\n")
    try:
        broken = b'{"email": "jane.doe@example.com", "unterminated": '  # says JSON, is not: not rewritten
        status, answer = proxy.send(f"http://localhost:{upstream.port}/v1/closed-broken", broken, _json_headers(broken))
        assert status == 403 and json.loads(answer)["reason"] == "unredactable"
        assert json.loads(answer)["rule"] == "contact-data-to-partner"
        body = _novel_text_body()
        status, answer = proxy.send(f"http://localhost:{upstream.port}/v1/closed-slow", body, _json_headers(body))
        assert status == 403 and json.loads(answer) == {"error": "blocked by pii-sensor policy", "rule": None,
                                                        "data_types": [], "reason": "timeout"}
        assert upstream.received("/v1/closed-") == []
        assert wait_for(lambda: proxy.metric('pii_sensor_enforcement_failures_total{reason="timeout"}') == 1
                        and proxy.metric('pii_sensor_enforcement_failures_total{reason="unredactable"}') == 1)
        assert proxy.metric(ACTIONS % ("block", "false", "contact-data-to-partner")) == 1
        event = proxy.event("/v1/closed-slow")
        assert {"rule": "contact-data-to-partner", "action": "redact", "enforced": True, "enforced_as": "block"} in event["violations"]
    finally:
        proxy.stop()
