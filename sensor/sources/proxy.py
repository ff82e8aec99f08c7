"""The mitmproxy addon: completed flows become Exchanges, classified off the proxy's event loop.

    pii-sensor proxy --mode reverse:http://127.0.0.1:8080 --listen-port 8081 ...
    mitmdump -s sensor/commands/mitmdump.py --set pii_sensor_events=stdout ...

`response` only copies the flow into a plain tuple and hands it to a worker (sensor/worker.py)
that never blocks the proxy: the proxied request never waits for classification.
"""
from __future__ import annotations

from ..model import Drop, Exchange, Peer, Request, Response
from ..wire.http2 import PREFACE


def flow_to_wire(flow) -> tuple:
    """What the classifier needs of a completed flow, as a plain tuple: the proxy's event loop
    pays for this copy and its pickling, so it is kept as cheap as possible."""
    req, resp = flow.request, flow.response
    return (req.timestamp_start, *_ends(flow), req.method, req.path, req.headers.fields, req.raw_content or b"",
            None if resp is None else (resp.status_code, resp.headers.fields, resp.raw_content or b""))


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
    ts, cip, cport, sip, sport, host, method, path, req_fields, req_body, resp = wire
    return Exchange(
        time=ts,
        source=Peer(ip=cip, port=cport),
        destination=Peer(ip=sip, port=sport, host=host),
        request=Request(headers=_text(req_fields), body=req_body, encoded=True, method=method, target=path),
        response=None if resp is None else Response(headers=_text(resp[1]), body=resp[2], encoded=True, status=resp[0]),
    )


class PiiSensorAddon:
    """mitmproxy event handlers; `worker` classifies (ProcessWorker or ThreadWorker)."""

    def __init__(self, worker):
        self.worker = worker

    def next_layer(self, nextlayer) -> None:
        """HTTP/2 with prior knowledge (h2c): mitmproxy 11 reads the connection preface as an HTTP/1
        request and kills it. Where the client opens with the preface, both ends are marked as
        speaking HTTP/2 before the HTTP layer starts, so it serves the client in HTTP/2 and talks
        HTTP/2 to the upstream too (in a sidecar, the app the client meant to reach: gRPC servers
        speak nothing else). Runs after mitmproxy's own next-layer choice."""
        if nextlayer.data_client().startswith(PREFACE) and nextlayer.context.client.alpn is None:
            nextlayer.context.client.alpn = b"h2"
            nextlayer.context.server.alpn = b"h2"

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
        self.worker.close()
