"""Workload names from Kubernetes: pod IPs resolved to their owning workload and namespace.

A background thread lists and then watches pods through the Kubernetes API (the official
Python client), keeping a map pod IP -> (namespace, workload). A ReplicaSet's pods belong
to its Deployment (the ReplicaSet's name less the pod-template-hash); StatefulSets,
DaemonSets and Jobs own their pods directly. Reads only pods: RBAC needs get/list/watch
on pods, and get on the sensor's own node for its region (the country of internal workloads).
"""
from __future__ import annotations

import threading

from kubernetes import client, config as kube_config, watch


def owner_workload(pod) -> tuple[str, str]:
    """(kind, name) of the workload that owns a pod (a V1Pod or its dict form)."""
    meta = pod.metadata
    owners = meta.owner_references or []
    owner = next((o for o in owners if o.controller), owners[0] if owners else None)
    if owner is None:
        return "Pod", meta.name
    if owner.kind == "ReplicaSet":
        pod_hash = (meta.labels or {}).get("pod-template-hash")
        if pod_hash and owner.name.endswith("-" + pod_hash):
            return "Deployment", owner.name[: -len(pod_hash) - 1]
    return owner.kind, owner.name


class PodResolver:
    def __init__(self, api: client.ApiClient, stats=None, max_pods: int = 200_000):
        self.v1 = client.CoreV1Api(api)
        self.stats = stats
        self.max_pods = max_pods
        self.by_ip: dict[str, tuple[str, str]] = {}  # pod IP -> (namespace, workload)
        self.by_uid: dict[str, tuple[str, str]] = {}  # pod UID -> (namespace, workload): a traced process's pod
        self.synced = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="pii-sensor-pods", daemon=True)

    @classmethod
    def from_settings(cls, settings: dict, stats=None) -> "PodResolver":
        """In the cluster by default; a kubeconfig file or an API URL when configured."""
        if settings.get("host"):
            configuration = client.Configuration()
            configuration.host = settings["host"]
            api = client.ApiClient(configuration)
        elif settings.get("kubeconfig"):
            api = kube_config.new_client_from_config(config_file=settings["kubeconfig"])
        else:
            kube_config.load_incluster_config()
            api = client.ApiClient()
        return cls(api, stats, settings.get("max_pods", 200_000))

    def start(self) -> "PodResolver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()

    def node_region(self, node: str) -> str | None:
        """The cloud region of a node from its well-known label (or the beta one older clusters
        set). Needs get on nodes; None when it cannot be read."""
        try:
            labels = self.v1.read_node(node, _request_timeout=10).metadata.labels or {}
        except Exception:  # noqa: BLE001 - no permission, no such node, no API: the country stays unknown
            if self.stats is not None:
                self.stats.error("kubernetes")
            return None
        return labels.get("topology.kubernetes.io/region") or labels.get("failure-domain.beta.kubernetes.io/region")

    def lookup(self, ip: str | None) -> tuple[str, str] | None:
        return self.by_ip.get(ip) if ip else None

    def lookup_uid(self, uid: str | None) -> tuple[str, str] | None:
        return self.by_uid.get(uid) if uid else None

    def _apply(self, kind: str, pod, table: dict, uids: dict | None = None) -> None:
        uids = self.by_uid if uids is None else uids
        uid = pod.metadata.uid if pod.metadata else None
        if uid and kind == "DELETED":
            uids.pop(uid, None)
        elif uid and (len(uids) < self.max_pods or uid in uids):  # host-network pods too: a cgroup names one
            uids[uid] = (pod.metadata.namespace, owner_workload(pod)[1])
        ip = pod.status.pod_ip if pod.status else None
        if not ip or (pod.spec and pod.spec.host_network):
            return  # host-network pods share the node's IP: it names no single workload
        if kind == "DELETED":
            if table.get(ip, (None,))[0] == pod.metadata.namespace:
                table.pop(ip, None)
            return
        if len(table) < self.max_pods or ip in table:
            table[ip] = (pod.metadata.namespace, owner_workload(pod)[1])

    def _run(self) -> None:
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                pods = self.v1.list_pod_for_all_namespaces(_request_timeout=30)
                table: dict = {}
                uids: dict = {}
                for pod in pods.items:
                    self._apply("ADDED", pod, table, uids)
                self.by_ip, self.by_uid = table, uids  # swapped whole: lookups never see a half-built map
                self.synced.set()
                backoff = 1.0
                stream = watch.Watch().stream(self.v1.list_pod_for_all_namespaces,
                                              resource_version=pods.metadata.resource_version, timeout_seconds=300)
                for event in stream:
                    if self.stopping.is_set():
                        return
                    self._apply(event["type"], event["object"], self.by_ip)
            except Exception:  # noqa: BLE001 - API down, expired resourceVersion, network: relist after a pause
                if self.stats is not None:
                    self.stats.error("kubernetes_api")
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 60.0)
