"""The Helm chart, the alerting rules and the dashboard, checked with the real tools:
Helm's own engine (helm-python-sdk), Kubernetes schemas (kubernetes-validate), promtool."""
import json
import re
import shutil
import subprocess

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from conftest import ROOT

CHART = ROOT / "deploy" / "helm" / "pii-sensor"
RULES = CHART / "files" / "pii-sensor-rules.yaml"
RULE_TESTS = CHART / "files" / "pii-sensor-rules.test.yaml"
DASHBOARD = CHART / "files" / "pii-sensor-dashboard.json"
K8S_VERSION = "1.30.0"
CRDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}  # Prometheus Operator kinds: not in the Kubernetes schemas
EVERYTHING = {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}, "prometheusRule": {"enabled": True},
              "dashboard": {"enabled": True}, "networkPolicy": {"enabled": True, "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]},
              "events": {"sink": "https://hooks.example.com/pii", "webhookSecret": {"value": "s3cret", "key": "webhook-secret"}}}
MODES = {
    "daemonset-defaults": {},
    "daemonset-everything": EVERYTHING,
    "daemonset-tls": {"tls": {"enabled": True}},
    "sidecar-defaults": {"mode": "sidecar"},
    "sidecar-everything": {"mode": "sidecar", **EVERYTHING},
    "hub-sqlite": {"hub": {"enabled": True}},
    "hub-postgresql": {"prometheusRule": {"enabled": True},
                       "hub": {"enabled": True, "storage": "postgresql", "replicas": 2,
                               "postgresql": {"existingSecret": "map-db", "key": "url"},
                               "tokens": {"value": "t0ken"}, "changeSinks": ["https://chat.example.com/hook"]}},
}


def render(values):
    chart = helm.Chart.load(str(CHART))
    try:
        out = chart.render(values, name="pii", namespace="monitoring", is_install=True)
    finally:
        chart.close()
    return [doc for text in out.values() for doc in yaml.safe_load_all(text) if doc]


def kinds(docs):
    return sorted(d["kind"] for d in docs)


@pytest.mark.parametrize("mode", MODES)
def test_chart_lints_clean(mode):
    report = helm.lint(str(CHART), MODES[mode], strict=True, namespace="monitoring", kube_version=f"v{K8S_VERSION}")
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("mode", MODES)
def test_every_manifest_validates_against_the_kubernetes_schemas(mode):
    docs = render(MODES[mode])
    assert docs
    for doc in docs:
        if doc["kind"] in CRDS:
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_daemonset_mode_runs_sniff_with_only_the_capabilities_it_needs():
    docs = render({})
    assert kinds(docs) == ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "Service", "ServiceAccount"]
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["hostNetwork"] is True and c["args"][0] == "sniff"
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_RAW", "NET_ADMIN"]}
    assert c["securityContext"]["privileged"] is False and c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert {"operator": "Exists"} in pod["tolerations"]
    assert c["ports"] == [{"name": "metrics", "containerPort": 9102, "protocol": "TCP"}]  # not 9100 (node exporter)
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                             {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]
    config = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["config.yaml"])
    assert config["kubernetes"] is True and config["min_confidence"] == 0.5


def test_tls_adds_the_host_pid_namespace_and_the_ebpf_capabilities_only_when_asked():
    pod = next(d for d in render({"tls": {"enabled": True}}) if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["hostPID"] is True and "--tls" in c["args"]
    assert c["securityContext"]["capabilities"]["add"] == ["NET_RAW", "NET_ADMIN", "BPF", "PERFMON", "SYS_ADMIN", "SYS_PTRACE"]
    assert c["securityContext"]["privileged"] is False
    pod = next(d for d in render({}) if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    assert "hostPID" not in pod and "--tls" not in pod["containers"][0]["args"]


def test_sensor_accepts_the_rendered_config(tmp_path):
    from sensor import config as config_mod
    for values in ({}, {"mode": "sidecar"}):
        text = next(d for d in render(values) if d["kind"] == "ConfigMap")["data"]["config.yaml"]
        path = tmp_path / "config.yaml"
        path.write_text(text)
        config_mod.load(str(path))  # raises on anything the sensor does not understand


def test_sidecar_mode_renders_an_app_behind_the_sensor():
    docs = render({"mode": "sidecar"})
    assert kinds(docs) == ["ConfigMap", "Deployment", "Service", "ServiceAccount"]
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    app, sensor = deploy["spec"]["template"]["spec"]["containers"]
    assert sensor["name"] == "pii-sensor" and sensor["args"][:3] == ["proxy", "--mode", "reverse:http://127.0.0.1:8080"]
    assert sensor["securityContext"]["runAsNonRoot"] is True and sensor["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    service = next(d for d in docs if d["kind"] == "Service")
    assert {"name": "http", "port": 80, "targetPort": "proxy"} in service["spec"]["ports"]


def test_optional_objects_and_the_rule_file_are_the_same_rules():
    docs = render(EVERYTHING)
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule", "NetworkPolicy", "Secret"} <= set(kinds(docs))
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    dashboard = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard"))
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["pii-sensor.json"]) == json.loads(DASHBOARD.read_text())
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    env = ds["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "PII_SENSOR_WEBHOOK_SECRET", "valueFrom": {"secretKeyRef": {"name": "pii-pii-sensor", "key": "webhook-secret"}}} in env


def test_the_hub_in_both_storage_modes_and_the_sensors_report_to_it():
    docs = render(MODES["hub-sqlite"])
    hub = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "pii-pii-sensor-hub")
    spec = hub["spec"]["template"]["spec"]
    args = spec["containers"][0]["args"]
    assert args[:5] == ["hub", "--listen", "0.0.0.0:8090", "--db", "sqlite:////var/lib/pii-sensor/pii-map.db"]
    assert hub["spec"]["strategy"]["type"] == "Recreate" and hub["spec"]["replicas"] == 1
    assert any(v.get("persistentVolumeClaim") for v in spec["volumes"])
    assert spec["automountServiceAccountToken"] is False  # it reads no Kubernetes API
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    sensor_args = ds["spec"]["template"]["spec"]["containers"][0]["args"]
    assert sensor_args[sensor_args.index("--events") + 1] == "http://pii-pii-sensor-hub.monitoring.svc:8090/api/v1/events"
    # the sensor's selectors do not take the hub's pods
    ds_selector = ds["spec"]["selector"]["matchLabels"]
    assert not all(hub["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in ds_selector.items())
    rules = next(d for d in docs if d["kind"] == "ClusterRole")["rules"]
    assert {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]} in rules  # the node's region

    docs = render(MODES["hub-postgresql"])
    hub = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "pii-pii-sensor-hub")
    container = hub["spec"]["template"]["spec"]["containers"][0]
    assert hub["spec"]["replicas"] == 2 and "$(PII_SENSOR_HUB_DB)" in container["args"]
    assert {"name": "PII_SENSOR_HUB_DB", "valueFrom": {"secretKeyRef": {"name": "map-db", "key": "url"}}} in container["env"]
    assert container["args"][-2:] == ["--events", "https://chat.example.com/hook"]
    assert not any(d["kind"] == "PersistentVolumeClaim" for d in docs)


@pytest.mark.parametrize("values, message", [
    ({"hub": {"enabled": True, "replicas": 2}}, "hub.replicas > 1 needs hub.storage: postgresql"),
    ({"hub": {"enabled": True, "storage": "postgresql"}}, "needs hub.postgresql.url or hub.postgresql.existingSecret"),
])
def test_impossible_hub_settings_fail_to_render_with_a_clear_message(values, message):
    with pytest.raises(Exception, match=re.escape(message)):
        render(values)


@pytest.mark.parametrize("values, message", [
    ({"hub": {"enabled": True, "storage": "mysql"}}, "storage"),
    ({"mode": "sidecars"}, "mode"),
    ({"metrics": {"port": "ninety"}}, "port"),
    ({"events": {"sink": "kafka://x"}}, "sink"),
    ({"colour": "blue"}, "colour"),
    ({"sidecar": {"mode": "reverse", "listenPort": 8081, "metricsPort": 9102}}, "mode"),
])
def test_bad_values_fail_with_a_clear_message(values, message):
    report = helm.lint(str(CHART), values, strict=True)
    errors = " ".join(report["errors"] + [m["error"] for m in report["messages"] if m["severity"] == 3])
    assert errors and message in errors


promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (.ci/run installs prometheus)")


@promtool
def test_rules_pass_promtool_check_and_unit_tests():
    check = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(["promtool", "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, cwd=RULES.parent)
    assert test.returncode == 0, test.stdout + test.stderr
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert alerts == tested == {"PiiHighSensitivityExternalFlow", "PiiNewHighSensitivityDataType", "PiiSensorDroppingTraffic",
                               "PiiSensorMissingPackets", "PiiSensorDown", "PiiPolicyViolation",
                               "PiiCrossBorderHighSensitivityFlow", "PiiSensorClassifierDown"}


def used_metric_names() -> set[str]:
    text = RULES.read_text() + DASHBOARD.read_text()
    return {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"\bpii_sensor_[a-z_]+", text)}


def test_rules_and_dashboard_use_only_metrics_the_sensor_exports(tmp_path):
    """The names are read from real /metrics pages of a running sniff and a running proxy."""
    from helpers import free_port, scrape, wait_for
    import sys

    page = ""
    for command, ready in ((["sniff", "-i", "lo", "--bpf", "tcp port 1"], "pii_sensor_exchanges_total"),
                           (["proxy", "--mode", f"reverse:http://127.0.0.1:{free_port()}", "--listen-port", str(free_port()),
                             "--confdir", str(tmp_path / "mitm")], "pii_sensor_classifier_up")):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "sensor", *command, "--metrics-port", str(port),
                                 "--events", f"file:{tmp_path / 'e.jsonl'}"], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert wait_for(lambda: ready in scrape(port), timeout=120)
            page += scrape(port)
        finally:
            proc.terminate()
            proc.wait(30)
    exported = set(re.findall(r"^# TYPE (\w+) ", page, re.M))
    exported |= {re.sub(r"_total$", "", n) + "_total" for n in exported if not n.endswith("_created")}
    missing = {m for m in used_metric_names() if m not in exported}
    assert used_metric_names() and missing == set()
