"""For people who already run mitmproxy:

    mitmdump -s /path/to/sensor/mitm_addon.py --set pii_sensor_events=file:/var/log/pii.jsonl \\
             --set pii_sensor_metrics_port=9102 [--set pii_sensor_config=/etc/pii-sensor.yaml]

The same events and metrics as `pii-sensor proxy`, from the same addon.
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import sensor  # noqa: F401  installed with pip
except ImportError:  # loaded by path from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sensor import config as config_mod  # noqa: E402
from sensor.metrics import Metrics  # noqa: E402
from sensor.pipeline import Sensor  # noqa: E402
from sensor.proxy import PiiSensorAddon  # noqa: E402
from sensor.ratelimit import EventLimiter  # noqa: E402
from sensor.sinks import open_sink  # noqa: E402


class MitmdumpAddon:
    def __init__(self):
        self.inner: PiiSensorAddon | None = None

    def load(self, loader):
        loader.add_option("pii_sensor_config", str, "", "pii-sensor configuration file (YAML)")
        loader.add_option("pii_sensor_events", str, "stdout", "event sink: stdout, file:PATH or an http(s):// URL")
        loader.add_option("pii_sensor_metrics_port", int, 0, "serve Prometheus /metrics on this port (0: off)")

    def configure(self, updated):
        if self.inner is not None:
            return
        from mitmproxy import ctx

        sensor = Sensor(config_mod.load(ctx.options.pii_sensor_config or None))
        sink = open_sink(ctx.options.pii_sensor_events, sensor.stats, sensor.config.webhook_secret,
                         sensor.config.file_max_bytes, sensor.config.file_backups)
        metrics = Metrics(sensor.stats, sensor.config.max_label_values)
        sensor.on_scanned = metrics.scanned
        if ctx.options.pii_sensor_metrics_port:
            metrics.serve(ctx.options.pii_sensor_metrics_port)
        self.inner = PiiSensorAddon(sensor, sink, metrics, EventLimiter(sensor.config.event_interval), sensor.config.queue_size)

    def response(self, flow):
        self.inner.response(flow)

    def error(self, flow):
        self.inner.error(flow)

    def done(self):
        if self.inner is not None:
            self.inner.close()


addons = [MitmdumpAddon()]
