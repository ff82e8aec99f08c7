"""End to end: a real Prometheus server scrapes a running sensor fed with PII traffic,
evaluates the shipped rules, and the high-sensitivity external-flow alert fires."""
import json
import os
import shutil
import subprocess
import sys
import urllib.request

import pytest
import yaml

from helpers import ROOT, free_port, scrape, start_upstream, started, wait_for

RULES = ROOT / "deploy" / "helm" / "pii-sensor" / "files" / "pii-sensor-rules.yaml"

pytestmark = [
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed (.ci/run installs it)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="sniffing the loopback interface needs root"),
]


def alerts(port):
    data = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/alerts", timeout=5).read())
    return {(a["labels"]["alertname"], a["state"]): a for a in data["data"]["alerts"]}


def test_high_sensitivity_external_flow_alert_fires(tmp_path):
    upstream_port, metrics_port, prom_port = free_port(), free_port(), free_port()
    config = tmp_path / "sensor.yaml"
    config.write_text("internal_networks: []\ninternal_suffixes: []\n")  # on loopback, treat the upstream as a third party
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "pii-sensor", "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }))
    upstream = start_upstream(upstream_port)
    sensor = subprocess.Popen([sys.executable, "-m", "sensor", "sniff", "-i", "lo", "--bpf", f"tcp port {upstream_port}",
                               "--metrics-port", str(metrics_port), "--config", str(config),
                               "--events", f"file:{tmp_path / 'events.jsonl'}"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        started(sensor, lambda: "pii_sensor_exchanges_total" in scrape(metrics_port))
        assert wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/-/ready", timeout=2).status == 200)
        assert wait_for(lambda: ("PiiSensorDown", "firing") not in alerts(prom_port) and
                        json.loads(urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/api/v1/query?query=up", timeout=5).read())["data"]["result"])

        def send_pii():
            body = json.dumps({"customer": {"name": "Jane Doe", "email": "jane.doe@example.com"},
                               "card": {"number": "4532 0151 1283 0366", "exp": "12/27"}}).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{upstream_port}/v1/payments", data=body,
                                         headers={"Content-Type": "application/json"})
            return urllib.request.urlopen(req, timeout=5).status == 201

        # traffic keeps flowing while Prometheus takes its samples, so increase() sees the counter grow
        assert wait_for(lambda: send_pii() and ("PiiHighSensitivityExternalFlow", "firing") in alerts(prom_port), timeout=60)
        firing = alerts(prom_port)
    finally:
        prom.terminate()
        sensor.terminate()
        upstream.kill()
        for p in (prom, sensor, upstream):
            p.wait(30)
    alert = firing[("PiiHighSensitivityExternalFlow", "firing")]
    assert alert["labels"]["destination"] == "127.0.0.1" and alert["labels"]["severity"] == "critical"
    assert ("PiiNewHighSensitivityDataType", "firing") in firing  # Card is new on this endpoint
    assert firing[("PiiNewHighSensitivityDataType", "firing")]["labels"]["endpoint"] == "POST /v1/payments"
