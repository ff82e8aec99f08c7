"""HTTP/2 cleartext through `pii-sensor proxy`: curl with prior knowledge and with an upgrade
against nghttpd, and a real gRPC client and server (grpcio) through the sidecar."""
import importlib.util
import json
import shutil
import socket
import subprocess
import sys

import pytest

from helpers import ROOT, free_port, scrape, start_upstream, started, wait_for
from test_proxy import stop


SIGNUP = {"customer": {"name": "Ana Lima", "email": "ana.lima@example.com", "phone": "+1 415-555-2671"}}


@pytest.fixture
def nghttpd(tmp_path):
    if shutil.which("nghttpd") is None or shutil.which("curl") is None:
        pytest.skip("nghttpd (nghttp2-server) and curl are needed (.ci/run installs them)")
    docs = tmp_path / "docs"
    (docs / "v1" / "users").mkdir(parents=True)
    (docs / "v1" / "users" / "7").write_text(json.dumps({"user": {"name": "Jane Doe", "email": "jane.doe@example.com"}}))
    port = free_port()
    proc = subprocess.Popen(["nghttpd", "--no-tls", "-d", str(docs), str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert wait_for(lambda: subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null",
                                            f"http://127.0.0.1:{port}/v1/users/7"]).returncode == 0)
    yield port
    proc.kill()
    proc.wait()


def start_proxy(tmp_path, upstream_port):
    """The proxy in reverse mode in front of an HTTP/2-only upstream (no HTTP/1 health check here)."""
    listen, metrics_port = free_port(), free_port()
    events = tmp_path / "events.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "sensor", "proxy", "--mode", f"reverse:http://127.0.0.1:{upstream_port}",
                             "--listen-port", str(listen), "--metrics-port", str(metrics_port), "--events", f"file:{events}",
                             "--confdir", str(tmp_path / "mitm")], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    started(proc, lambda: "pii_sensor_exchanges_total" in scrape(metrics_port)
            and socket.create_connection(("127.0.0.1", listen), timeout=1).close() is None)
    return proc, listen, events


def events_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_h2c_prior_knowledge_passes_through_and_is_classified(nghttpd, tmp_path):
    proc, listen, events = start_proxy(tmp_path, nghttpd)
    try:
        out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-X", "POST", "-H", "content-type: application/json",
                              "-d", json.dumps(SIGNUP), "-w", "\n%{http_version} %{response_code}",
                              f"http://127.0.0.1:{listen}/v1/users/7"], capture_output=True, text=True, timeout=30).stdout
        body, status = out.rsplit("\n", 1)
        assert status == "2 200" and json.loads(body)["user"]["name"] == "Jane Doe"  # HTTP/2 end to end
        assert wait_for(lambda: len(events_of(events)) >= 1)
        post = next(e for e in events_of(events) if e["request"]["method"] == "POST")
        assert {"Person", "Email", "Phone"} <= set(post["data_types"])
    finally:
        stop(proc)


def test_a_preface_split_across_segments_is_still_http2(nghttpd, tmp_path):
    """The proxy must not judge the connection on a preface cut short ('PRI * HTTP/2.0' and a blank
    line read as a complete HTTP/1 request head), as a client under load may send it."""
    import time

    import h2.connection
    import h2.events

    proc, listen, _ = start_proxy(tmp_path, nghttpd)
    try:
        conn = h2.connection.H2Connection()
        conn.initiate_connection()
        opening = conn.data_to_send()
        with socket.create_connection(("127.0.0.1", listen), timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(opening[:18])  # 'PRI * HTTP/2.0\r\n\r\n'
            time.sleep(0.3)  # not a wait for a condition: it makes the rest a segment of its own
            sock.sendall(opening[18:])
            conn.send_headers(1, [(":method", "GET"), (":path", "/v1/users/7"), (":scheme", "http"),
                                  (":authority", "api.example.com")], end_stream=True)
            sock.sendall(conn.data_to_send())
            status, body, ended = None, b"", False
            while not ended:
                data = sock.recv(65536)
                assert data, "the proxy closed the connection"
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        status = dict(event.headers)[b":status"]
                    elif isinstance(event, h2.events.DataReceived):
                        body += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    ended = ended or isinstance(event, h2.events.StreamEnded)
                sock.sendall(conn.data_to_send())
        assert status == b"200" and json.loads(body)["user"]["email"] == "jane.doe@example.com"
    finally:
        stop(proc)


def test_an_h2c_upgrade_is_answered_in_http1_and_classified(tmp_path):
    port = free_port()
    upstream = start_upstream(port)  # an HTTP/1.1 server, as most apps behind a sidecar are
    proc, listen, events = start_proxy(tmp_path, port)
    try:
        out = subprocess.run(["curl", "-s", "--http2", "-X", "POST", "-H", "content-type: application/json",
                              "-d", json.dumps(SIGNUP), "-w", "\n%{http_version} %{response_code}",
                              f"http://127.0.0.1:{listen}/v1/users/7"], capture_output=True, text=True, timeout=30).stdout
        assert out.endswith("\n1.1 201")  # mitmproxy declines the upgrade; the request is served all the same
        assert wait_for(lambda: len(events_of(events)) >= 1)
        assert {"Person", "Email", "Phone"} <= set(events_of(events)[0]["data_types"])
    finally:
        stop(proc)
        upstream.kill()
        upstream.wait()


GRPC_SERVER = """
import sys, time
sys.path.insert(0, sys.argv[2])
from grpc_users import message_classes, serve
User = message_classes()["User"]
server = serve(int(sys.argv[1]), lambda request, context: User(
    id=request.user_id, full_name="Jane Doe", email="jane.doe@example.com", phone="+1 415-555-2671"))
print("serving", flush=True)
time.sleep(600)
"""
GRPC_CLIENT = """
import sys
sys.path.insert(0, sys.argv[2])
import grpc
from grpc_users import message_classes, stub
GetUserRequest = message_classes()["GetUserRequest"]
with grpc.insecure_channel("127.0.0.1:" + sys.argv[1]) as channel:
    for i in range(3):
        user = stub(channel)(GetUserRequest(user_id=str(i), requested_by="agent@example.com"), timeout=30)
        assert user.full_name == "Jane Doe"  # the answer came back through the proxy intact
"""


def test_grpc_through_the_proxy(tmp_path):
    """grpcio's server and client, each in a process of its own (grpcio's fork handlers do not
    belong in the test runner, which forks a lot), with the proxy between them."""
    if importlib.util.find_spec("grpc") is None:  # found, not imported: see above
        pytest.skip("grpcio is not installed (the test extras install it)")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", GRPC_SERVER, str(port), str(ROOT / "fixtures")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "serving"
        proc, listen, events = start_proxy(tmp_path, port)
        try:
            client = subprocess.run([sys.executable, "-c", GRPC_CLIENT, str(listen), str(ROOT / "fixtures")],
                                    capture_output=True, text=True, timeout=120)
            assert client.returncode == 0, client.stderr
            assert wait_for(lambda: len(events_of(events)) >= 3)
            event = events_of(events)[0]
            assert event["request"]["path"] == "/users.v1.Users/GetUser"
            assert {("request.body", "$['2']", "Email"), ("response.body", "$['3']", "Email"),
                    ("response.body", "$['4']", "Phone")} <= {(f["part"], f["path"], f["type"]) for f in event["findings"]}
        finally:
            stop(proc)
    finally:
        server.kill()
        server.wait()


def test_websocket_messages_through_the_proxy(tmp_path):
    """aiohttp's WebSocket server behind the proxy, aiohttp's client in front; each JSON message
    is classified on the side that sent it."""
    import asyncio

    import aiohttp
    from aiohttp import web

    async def run():
        async def handler(request):
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await ws.send_str(json.dumps({"agent": {"name": "Sam Carter", "phone": "+1 415-555-2671"}}))
            return ws

        app = web.Application()
        app.router.add_get("/chat", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        proc, listen, events = await asyncio.get_running_loop().run_in_executor(None, start_proxy, tmp_path, port)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"http://127.0.0.1:{listen}/chat") as ws:
                    for _ in range(2):
                        await ws.send_str(json.dumps({"user": {"name": "Jane Doe", "email": "jane.doe@example.com"}}))
                        reply = await ws.receive()
                        assert json.loads(reply.data)["agent"]["name"] == "Sam Carter"
            found = lambda: {(f["part"], f["type"]) for e in events_of(events) for f in e["findings"]}  # noqa: E731
            assert await asyncio.get_running_loop().run_in_executor(None, lambda: wait_for(lambda: {
                ("request.body", "Email"), ("request.body", "Person"), ("response.body", "Phone")} <= found()))
        finally:
            await asyncio.get_running_loop().run_in_executor(None, stop, proc)
            await runner.cleanup()

    asyncio.run(run())
