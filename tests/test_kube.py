"""Pod IPs to workloads through the real Kubernetes client, against API responses served on loopback."""
import json
from http.server import BaseHTTPRequestHandler

from helpers import LoopbackServer, wait_for
from sensor.config import Config
from sensor.model import Exchange, Peer, Request, Response
from sensor.events.kube import PodResolver
from sensor.engine import Sensor


def pod(name, namespace, ip, owner=None, labels=None, host_network=False):
    meta = {"name": name, "namespace": namespace, "labels": labels or {}, "uid": name}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": "u", "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"hostNetwork": host_network, "containers": [{"name": "c"}]},
            "status": {"podIP": ip}}


PODS = [
    pod("checkout-7d9f8b6c5-x2k4j", "shop", "10.244.1.7", ("ReplicaSet", "checkout-7d9f8b6c5"), {"pod-template-hash": "7d9f8b6c5"}),
    pod("users-db-0", "data", "10.244.2.9", ("StatefulSet", "users-db")),
    pod("node-agent-abcde", "kube-system", "10.244.3.3", ("DaemonSet", "node-agent")),
    pod("migrate-28391", "shop", "10.244.1.20", ("Job", "migrate")),
    pod("debug", "default", "10.244.1.30"),
    pod("kube-proxy-zz", "kube-system", "192.168.0.5", ("DaemonSet", "kube-proxy"), host_network=True),
]
WATCH_EVENTS = [
    {"type": "ADDED", "object": pod("users-api-5c6d7e8f9-abcde", "users", "10.96.0.12", ("ReplicaSet", "users-api-5c6d7e8f9"),
                                    {"pod-template-hash": "5c6d7e8f9"})},
    {"type": "DELETED", "object": pod("debug", "default", "10.244.1.30")},
]


class FakeApiServer:
    """Serves GET /api/v1/pods (a PodList) and its watch stream, as the API server does."""

    def __init__(self):
        self.watches = 0
        self.items = list(PODS)  # the cluster's state: a relist after the watch sees its changes

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(handler):
                if handler.path.startswith("/api/v1/nodes/node-1"):  # the sensor's own node, for its region
                    body = json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {
                        "name": "node-1", "labels": {"topology.kubernetes.io/region": "europe-west3"}}})
                    handler.send_response(200)
                    handler.send_header("Content-Type", "application/json")
                    handler.send_header("Content-Length", str(len(body)))
                    handler.end_headers()
                    handler.wfile.write(body.encode())
                    return
                if not handler.path.startswith("/api/v1/pods"):
                    handler.send_error(404)
                    return
                if "watch=" in handler.path:
                    self.watches += 1
                    events = WATCH_EVENTS if self.watches == 1 else []
                    for e in events:
                        name = e["object"]["metadata"]["name"]
                        self.items = [p for p in self.items if p["metadata"]["name"] != name]
                        if e["type"] != "DELETED":
                            self.items.append(e["object"])
                    body = "".join(json.dumps(e) + "\n" for e in events)
                else:
                    body = json.dumps({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "100"},
                                       "items": self.items})
                data = body.encode()
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(data)))
                handler.end_headers()
                handler.wfile.write(data)

            def log_message(handler, *a):
                pass

        self.http = LoopbackServer(Handler)
        self.port = self.http.port

    def close(self):
        self.http.close()


def test_pods_resolve_to_their_workloads():
    api = FakeApiServer()
    resolver = PodResolver.from_settings({"host": f"http://127.0.0.1:{api.port}"}).start()
    try:
        assert resolver.synced.wait(30)
        assert wait_for(lambda: resolver.lookup("10.96.0.12") is not None)  # from the watch
        assert resolver.lookup("10.244.1.7") == ("shop", "checkout")  # ReplicaSet -> Deployment
        assert resolver.lookup("10.244.2.9") == ("data", "users-db")
        assert resolver.lookup("10.244.3.3") == ("kube-system", "node-agent")
        assert resolver.lookup("10.244.1.20") == ("shop", "migrate")
        assert resolver.lookup("10.96.0.12") == ("users", "users-api")
        assert wait_for(lambda: resolver.lookup("10.244.1.30") is None)  # deleted
        assert resolver.lookup("192.168.0.5") is None  # host network: the node's IP
    finally:
        resolver.stop()
        api.close()


def test_internal_workloads_are_where_the_node_is(monkeypatch):
    api = FakeApiServer()
    monkeypatch.setenv("NODE_NAME", "node-1")
    sensor = Sensor(Config(kubernetes={"host": f"http://127.0.0.1:{api.port}"}))
    try:
        assert sensor.config.geo_country == "DE"  # europe-west3 is Frankfurt
        body = json.dumps({"email": "jane@example.com"}).encode()
        ex = Exchange(time=0, source=Peer("10.244.1.7", 5000), destination=Peer("10.96.0.12", 80, "users.internal"),
                      request=Request(headers=[("Content-Type", "application/json")], body=body, method="POST", target="/x"),
                      response=Response(status=200))
        event = sensor.process(ex)
        assert event.source.country == "DE" and event.destination.country == "DE" and not event.cross_border
    finally:
        sensor.events.pods.stop()
        api.close()
    monkeypatch.setenv("NODE_NAME", "node-unknown")  # a node it cannot read: unknown, counted, no crash
    api = FakeApiServer()
    sensor = Sensor(Config(kubernetes={"host": f"http://127.0.0.1:{api.port}"}))
    try:
        assert sensor.config.geo_country is None and sensor.stats.errors.get("kubernetes")
    finally:
        sensor.events.pods.stop()
        api.close()


def test_events_carry_kubernetes_names_and_fall_back_to_the_configured_map():
    from sensor.config import Workload

    api = FakeApiServer()
    config = Config(kubernetes={"host": f"http://127.0.0.1:{api.port}"},
                    workloads=[Workload("legacy-billing", hosts=["billing.internal"])])
    sensor = Sensor(config)
    try:
        assert sensor.events.pods.synced.wait(30)
        body = json.dumps({"email": "jane@example.com"}).encode()
        ex = Exchange(time=0, source=Peer("10.244.1.7", 5000), destination=Peer("10.0.0.99", 80, "billing.internal"),
                      request=Request(headers=[("Content-Type", "application/json")], body=body, method="POST", target="/x"),
                      response=Response(status=200))
        event = sensor.process(ex)
        assert event.source.name == "checkout" and event.source.namespace == "shop"
        assert event.destination.name == "legacy-billing"
    finally:
        sensor.events.pods.stop()
        api.close()
