"""The mitmproxy addon: completed flows become Exchanges, classified off the proxy's event loop.

    pii-sensor proxy --mode reverse:http://127.0.0.1:8080 --listen-port 8081 ...
    mitmdump -s sensor/commands/mitmdump.py --set pii_sensor_events=stdout ...

`response` only copies the flow into a plain tuple and hands it to a worker (sensor/worker.py)
that never blocks the proxy: the proxied request never waits for classification. The one exception
is enforcement (SPEC.md section 9, sensor/enforce/): with redact or block rules, `request` classifies
inline the requests one of them could act on, and redacts or blocks them before they leave.
"""
from __future__ import annotations

import sys

from .. import policy
from ..model import Drop, Exchange, Peer, Request, Response, ip_or_none
from ..wire.http2 import PREFACE

ORIGINAL = "pii_sensor_original"  # flow.metadata: (path, header fields, body) as the client sent them, before redaction
ENFORCED = "pii_sensor_enforcement"  # flow.metadata: the inline verdict's record (enforce/inline.py Outcome.record)


def flow_to_wire(flow) -> tuple:
    """What the classifier needs of a completed flow, as a plain tuple: the proxy's event loop
    pays for this copy and its pickling, so it is kept as cheap as possible. A flow classified
    inline carries the record of what was done as a twelfth element, and its request as the client
    sent it: the event reports the findings of the original, not of what went upstream."""
    req, resp = flow.request, flow.response
    path, fields, body = flow.metadata.get(ORIGINAL) or (req.path, req.headers.fields, req.raw_content)
    wire = (req.timestamp_start, *_ends(flow), req.method, path, fields, body or b"",
            None if resp is None else (resp.status_code, resp.headers.fields, resp.raw_content or b""))
    record = flow.metadata.get(ENFORCED)
    return wire if record is None else (*wire, record)


def message_to_wire(flow, message) -> tuple:
    """A WebSocket message as the same tuple: the opening request's method and path, the message
    as the request's body (client to server) or the response's (server to client, status 101)."""
    req = flow.request
    host = [(k, v) for k, v in req.headers.fields if k.lower() == b"host"]
    return (message.timestamp, *_ends(flow), req.method, req.path, host, message.content if message.from_client else b"",
            None if message.from_client else (101, [], message.content))


def _ends(flow) -> tuple:
    """(client ip, client port, server ip, server port, host) of a flow."""
    client = flow.client_conn.peername or (None, None)
    server = flow.server_conn.peername or flow.server_conn.address or (None, None)
    return client[0], client[1], server[0], server[1], flow.request.pretty_host or flow.server_conn.sni


def _text(fields) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in fields]


def wire_to_exchange(wire: tuple) -> Exchange:
    """The shared Exchange (bodies as sent, still Content-Encoded) from flow_to_wire's tuple."""
    ts, cip, cport, sip, sport, host, method, path, req_fields, req_body, resp, *enforcement = wire
    return Exchange(
        time=ts,
        source=Peer(ip=cip, port=cport),
        destination=Peer(ip=sip, port=sport, host=host),
        request=Request(headers=_text(req_fields), body=req_body, encoded=True, method=method, target=path),
        response=None if resp is None else Response(headers=_text(resp[1]), body=resp[2], encoded=True, status=resp[0]),
        enforcement=enforcement[0] if enforcement else None,
    )


def request_peers(flow) -> tuple[Peer, Peer]:
    """Client and server of a request before the proxy connects upstream: the server's IP is known
    once connected (keep-alive), from the mode (reverse, transparent) or an IP literal as host; else None."""
    client = flow.client_conn.peername or (None, None)
    server = flow.server_conn.peername or flow.server_conn.address or (None, flow.request.port)
    ip = ip_or_none(server[0]) or ip_or_none(flow.request.host)
    return Peer(client[0], client[1]), Peer(ip, server[1], flow.request.pretty_host or flow.server_conn.sni)


def request_exchange(flow, source: Peer, destination: Peer) -> Exchange:
    """The request alone as an Exchange, for inline classification."""
    req = flow.request
    return Exchange(time=req.timestamp_start, source=source, destination=destination,
                    request=Request(headers=_text(req.headers.fields), body=req.raw_content or b"", encoded=True,
                                    method=req.method, target=req.path))


def _enforcer(config):
    """An Enforcer when the policy has redact or block rules, loaded before traffic; else None (the
    detectors and spaCy are then never loaded in the proxy process)."""
    if config is None or not any(rule.action in policy.ENFORCING for rule in config.policy):
        return None
    from ..enforce.inline import Enforcer

    enforcer = Enforcer(config)
    if not enforcer.wait_ready(120):
        print("pii-sensor: the enforcement engine did not load; requests that rules could act on are counted as "
              "enforcement failures (error)", file=sys.stderr)
    return enforcer


def _config_of(worker):
    """The configuration a worker classifies with: the ThreadWorker's engine's, or the file the
    ProcessWorker's classifier process loads."""
    sensor = getattr(worker, "sensor", None)
    if sensor is not None:
        return sensor.config
    from .. import config as config_mod

    return config_mod.load(getattr(worker, "config_path", None))


def _apply(flow, outcome) -> None:
    """Block (a 403 set here: mitmproxy then never contacts the upstream) or redact the request."""
    from mitmproxy import http

    req = flow.request
    if outcome.action == "block":
        flow.response = http.Response.make(403, outcome.answer(), {"Content-Type": "application/json"})
        return
    flow.metadata[ORIGINAL] = (req.path, req.headers.fields, req.raw_content)
    if outcome.target is not None:
        req.path = outcome.target
    if outcome.headers is not None:
        req.headers = http.Headers([(k.encode("latin-1"), v.encode("latin-1")) for k, v in outcome.headers])
    if outcome.body is not None:
        req.raw_content = outcome.body  # still in its Content-Encoding: redact.py encoded it again
        if "content-length" in req.headers:
            req.headers["content-length"] = str(len(outcome.body))


def _may_be_http2(server_data: bytes) -> bool:
    """Nothing yet from the server, or the start of an HTTP/2 server's SETTINGS frame (an h2c server
    speaks as soon as it accepts); not a greeting of a server that speaks first (SMTP, MySQL), which
    waits for the client and must not wait for us."""
    return len(server_data) < 4 or server_data[3] == 0x4  # a frame's 4th byte is its type; SETTINGS is 4


class PiiSensorAddon:
    """mitmproxy event handlers; `worker` classifies (ProcessWorker or ThreadWorker). `config`, when
    not given, is the worker's."""

    def __init__(self, worker, config=None):
        self.worker = worker
        self.enforcer = _enforcer(config if config is not None else _config_of(worker))

    async def request(self, flow) -> None:
        """Redact or block (SPEC.md section 9) a request that a rule could act on, before it leaves."""
        if self.enforcer is None:
            return
        try:
            source, destination = request_peers(flow)
            if not self.enforcer.candidates(source, destination):
                return  # no redact or block rule could match: classified later, as every flow
            if flow.request.stream:  # stream_large_bodies: the body went upstream unread
                outcome = self.enforcer.failed("streamed")
            else:
                outcome = await self.enforcer.decide(request_exchange(flow, source, destination))
            if outcome.changes_traffic:
                _apply(flow, outcome)
        except Exception:  # noqa: BLE001 - never the request's undoing; fail_closed decides what passes
            outcome = self.enforcer.failed("error")
            if outcome.changes_traffic and not flow.request.stream:
                _apply(flow, outcome)
        flow.metadata[ENFORCED] = outcome.record()

    def next_layer(self, nextlayer) -> None:
        """HTTP/2 with prior knowledge (h2c): mitmproxy 11 reads the connection preface as an HTTP/1
        request and kills it. Where the client opens with the preface, both ends are marked as
        speaking HTTP/2 before the HTTP layer starts, so it serves the client in HTTP/2 and talks
        HTTP/2 to the upstream too (in a sidecar, the app the client meant to reach: gRPC servers
        speak nothing else). Runs after mitmproxy's own next-layer choice, which in reverse mode
        may come before the client's first bytes, or with a preface cut short: then it waits for them."""
        from mitmproxy.proxy.layers import TCPLayer
        from mitmproxy.proxy.layers.http import HTTPMode, HttpLayer

        if nextlayer.context.client.alpn is not None:
            return
        data, server = nextlayer.data_client(), nextlayer.data_server()
        # an h2c upstream (eager connection) sends its SETTINGS first: mitmproxy then takes it for a
        # server that speaks first and would relay raw TCP, unseen
        h2_server_first = isinstance(nextlayer.layer, TCPLayer) and len(server) >= 4 and server[3] == 0x4
        if data.startswith(PREFACE):
            nextlayer.context.client.alpn = b"h2"
            nextlayer.context.server.alpn = b"h2"
            if h2_server_first:
                nextlayer.layer = HttpLayer(nextlayer.context, HTTPMode.transparent)
        elif PREFACE.startswith(data) and (h2_server_first or (isinstance(nextlayer.layer, HttpLayer)
                                                               and _may_be_http2(server))):
            nextlayer.layer = None  # asked again when more arrives (a client speaks first in HTTP)

    def response(self, flow) -> None:
        if flow.request.stream or (flow.response is not None and flow.response.stream):
            self.worker.drop(Drop.BODY_STREAMED)  # stream_large_bodies passed the body through unbuffered
        try:
            wire = flow_to_wire(flow)
        except Exception:  # noqa: BLE001 - a malformed flow must not disturb the proxy
            self.worker.drop(Drop.PARSE_ERROR)
            return
        self.worker.submit(wire)

    def websocket_message(self, flow) -> None:
        """Each WebSocket message, classified like a body (SPEC.md section 8)."""
        try:
            wire = message_to_wire(flow, flow.websocket.messages[-1])
        except Exception:  # noqa: BLE001
            self.worker.drop(Drop.PARSE_ERROR)
            return
        self.worker.submit(wire)

    def error(self, flow) -> None:
        """Client went away mid-body, upstream refused or sent garbage: counted."""
        self.worker.drop(Drop.FLOW_ERROR)

    def done(self) -> None:
        if self.enforcer is not None:
            self.enforcer.close()
        self.worker.close()
