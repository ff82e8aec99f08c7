"""TLS plaintext chunks to exchanges (sensor/tls/streams.py), without BPF: chunks as the tracer
makes them, for a client and a server on one node, cut calls, a busy process, unknown addresses,
and the pod a process runs in (its cgroup, the pod watch's UIDs)."""
import json

from kubernetes.client import V1ObjectMeta, V1OwnerReference, V1Pod, V1PodSpec, V1PodStatus

from sensor.config import Config
from sensor.engine import Sensor
from sensor.events.build import EventBuilder
from sensor.events.kube import PodResolver
from sensor.model import Drop
from sensor.stats import Stats
from sensor.tls.streams import TlsStreams, pod_uid
from sensor.tls.tracer import Chunk

CLIENT, SERVER = ("10.244.1.7", 53211), ("10.96.0.12", 443)
BODY = json.dumps({"customer": {"name": "Jane Doe", "email": "jane.doe@example.com"}}).encode()
REQUEST = b"POST /v1/users HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY
RESPONSE = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def chunk(pid, direction, data, local, remote, comm="app", ssl=0x1000, length=None):
    return Chunk(pid=pid, tid=pid, comm=comm, ssl=ssl, direction=direction, timestamp_ns=1_700_000_000 * 10**9,
                 length=len(data) if length is None else length, data=data, local=local, remote=remote)


def test_both_ends_traced_make_one_exchange_naming_both_processes():
    streams = TlsStreams(Stats(), Config(), own_pid=1)
    out = streams.chunks([
        chunk(100, "write", REQUEST, CLIENT, SERVER, comm="curl"),  # the client's SSL_write ...
        chunk(200, "read", REQUEST, SERVER, CLIENT, comm="api", ssl=0x2000),  # ... is the server's SSL_read
        chunk(200, "write", RESPONSE, SERVER, CLIENT, comm="api", ssl=0x2000),
        chunk(100, "read", RESPONSE, CLIENT, SERVER, comm="curl"),
    ], now=0.0)
    assert len(out) == 1
    (ex,) = out
    assert ex.tls and ex.request.target == "/v1/users" and ex.response.status == 201 and ex.request.body == BODY
    assert (ex.source.ip, ex.source.port, ex.source.process) == (*CLIENT, (100, "curl"))
    assert (ex.destination.ip, ex.destination.port, ex.destination.process) == (*SERVER, (200, "api"))
    event = Sensor(Config()).process_many([ex])[0]
    payload = event.to_dict()
    assert payload["tls"] is True and payload["source"]["process"] == {"pid": 100, "comm": "curl"}
    assert {"Person", "Email"} <= set(payload["data_types"])


def test_the_sensors_own_tls_is_left_out_and_addresses_may_be_unknown():
    streams = TlsStreams(Stats(), Config(), own_pid=100)
    assert streams.chunks([chunk(100, "write", REQUEST, CLIENT, SERVER)], now=0.0) == []
    out = streams.chunks([chunk(300, "write", REQUEST, None, None), chunk(300, "read", RESPONSE, None, None)], now=0.0)
    (ex,) = out
    assert ex.source.ip is None and ex.destination.port is None and ex.source.process == (300, "app")


def test_a_cut_call_is_a_gap_and_a_busy_process_is_not_read_past_its_budget():
    stats = Stats()
    streams = TlsStreams(stats, Config(), own_pid=1)
    first = REQUEST + REQUEST
    out = streams.chunks([chunk(100, "write", first[:40], CLIENT, SERVER, length=len(first))], now=0.0)
    out += streams.chunks([chunk(100, "write", REQUEST, CLIENT, SERVER), chunk(100, "read", RESPONSE, CLIENT, SERVER),
                           chunk(100, "read", RESPONSE, CLIENT, SERVER)], now=0.0)
    out += streams.finish()
    assert stats.all_dropped()[Drop.TLS_CHUNK_CUT.value] == 1
    assert any(ex.request.body == BODY and ex.response and ex.response.status == 201 for ex in out)  # after the gap

    stats = Stats()
    config = Config()
    config.tls_max_process_bytes_per_second = len(REQUEST) + len(RESPONSE)
    streams = TlsStreams(stats, config, own_pid=1)
    calls = [chunk(100, d, m, CLIENT, SERVER) for _ in range(3) for d, m in (("write", REQUEST), ("read", RESPONSE))]
    out = streams.chunks(calls, now=5.0) + streams.finish()
    assert stats.all_dropped()[Drop.TLS_RATE_LIMITED.value] == 4  # the first exchange fits the second's budget
    assert sum(1 for ex in out if ex.response and ex.response.status == 201) == 1


def test_idle_connections_are_closed_and_the_table_is_bounded():
    stats = Stats()
    config = Config()
    config.max_connections = 2
    streams = TlsStreams(stats, config, own_pid=1)
    for ssl in (1, 2, 3):
        streams.chunks([chunk(100, "write", REQUEST, (CLIENT[0], 50000 + ssl), SERVER, ssl=ssl)], now=0.0)
    assert len(streams.conns) == 2 and stats.all_dropped()[Drop.STREAM_EVICTED.value] == 1
    out = streams.expire(config.idle_timeout + 1)
    assert not streams.conns and len(out) == 2 and all(ex.response is None for ex in out)  # requests without answers


def test_the_pod_of_a_traced_process_comes_from_its_cgroup(tmp_path):
    uid = "1b2c3d4e-5f60-4718-9abc-def012345678"
    for pid, line in ((1, f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid.replace('-', '_')}.slice/"
                          "cri-containerd-0123abcd.scope\n"),
                      (2, f"12:memory:/kubepods/besteffort/pod{uid}/0123abcd\n"),
                      (3, "0::/user.slice/user-0.slice/session-1.scope\n")):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cgroup").write_text(line)
    assert pod_uid(1, str(tmp_path)) == uid and pod_uid(2, str(tmp_path)) == uid
    assert pod_uid(3, str(tmp_path)) is None and pod_uid(4, str(tmp_path)) is None

    resolver = PodResolver.__new__(PodResolver)  # the watch's tables, filled as the watch fills them
    resolver.by_ip, resolver.by_uid, resolver.max_pods = {}, {}, 10
    pod = V1Pod(metadata=V1ObjectMeta(name="checkout-7d9f-x2x", namespace="shop", uid=uid, labels={"pod-template-hash": "7d9f"},
                                      owner_references=[V1OwnerReference(api_version="apps/v1", kind="ReplicaSet",
                                                                         name="checkout-7d9f", uid="r", controller=True)]),
                spec=V1PodSpec(containers=[], host_network=True), status=V1PodStatus(pod_ip="10.0.0.5"))
    resolver._apply("ADDED", pod, resolver.by_ip)
    assert resolver.by_ip == {}  # a host-network pod shares the node's IP ...
    assert resolver.lookup_uid(uid) == ("shop", "checkout")  # ... but its cgroup names it

    streams = TlsStreams(Stats(), Config(), own_pid=1)
    (ex,) = streams.chunks([chunk(100, "write", REQUEST, CLIENT, SERVER), chunk(100, "read", RESPONSE, CLIENT, SERVER)],
                           now=0.0)
    ex.source.pod_uid = uid  # as pod_uid(100) reads it in a cluster
    builder = EventBuilder(Config(), pods=resolver)
    event = builder.build(ex, [])
    builder.name_workloads(event)
    assert (event.source.namespace, event.source.name) == ("shop", "checkout")
    resolver._apply("DELETED", pod, resolver.by_ip)
    assert resolver.lookup_uid(uid) is None
