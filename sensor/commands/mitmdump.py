"""For people who already run mitmproxy:

    mitmdump -s /path/to/sensor/commands/mitmdump.py --set pii_sensor_events=file:/var/log/pii.jsonl \\
             --set pii_sensor_metrics_port=9102 [--set pii_sensor_config=/etc/pii-sensor.yaml]

The same events and metrics as `pii-sensor proxy`, from the same addon.
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import sensor  # noqa: F401  installed with pip
except ImportError:  # loaded by path from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sensor.sources.proxy import PiiSensorAddon  # noqa: E402
from sensor.worker import ProcessWorker  # noqa: E402


class MitmdumpAddon:
    """Registers pii-sensor's options with mitmproxy and starts the classifier process."""

    def __init__(self):
        self.inner: PiiSensorAddon | None = None

    def load(self, loader):
        loader.add_option("pii_sensor_config", str, "", "pii-sensor configuration file (YAML)")
        loader.add_option("pii_sensor_events", str, "stdout", "event sink: stdout, file:PATH or an http(s):// URL")
        loader.add_option("pii_sensor_metrics_port", int, 0, "serve Prometheus /metrics on this port (0: off)")

    def running(self):
        from mitmproxy import ctx

        from sensor import config as config_mod

        config = config_mod.load(ctx.options.pii_sensor_config or None)
        self.inner = PiiSensorAddon(ProcessWorker(ctx.options.pii_sensor_config or None, ctx.options.pii_sensor_events,
                                                  ctx.options.pii_sensor_metrics_port or None, config.queue_size,
                                                  config.stop_timeout), config)

    async def request(self, flow):  # enforcement of redact and block rules (SPEC.md section 9)
        if self.inner is not None:
            await self.inner.request(flow)

    def response(self, flow):
        if self.inner is not None:
            self.inner.response(flow)

    def error(self, flow):
        if self.inner is not None:
            self.inner.error(flow)

    def done(self):
        if self.inner is not None:
            self.inner.done()


addons = [MitmdumpAddon()]
