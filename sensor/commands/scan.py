"""`pii-sensor scan INPUT...`: HAR files and captures -> the summary table, events, an HTML report, metrics."""
from __future__ import annotations

import sys

from .. import config as config_mod
from .. import stream
from ..engine import Sensor
from ..errors import InputError
from ..outputs.metrics import Metrics
from ..outputs.report import Summary
from ..sources import har, pcap
from .checks import input_kind


def exchanges(path: str, kind: str, sensor: Sensor):
    if kind == "pcap":
        return pcap.exchanges(path, sensor.stats, sensor.config)
    return har.read(path, sensor.stats, sensor.config.max_body_bytes)


def run(args) -> int:
    sensor = Sensor(config_mod.load(args.config, workers=args.workers))
    metrics = Metrics(sensor.stats, sensor.config.max_label_values)
    sensor.on_scanned = metrics.scanned
    summary = Summary(sensor.config.sensitivity)
    kinds = [(input_kind(p), p) for p in args.inputs]  # check all before reading any
    try:
        _scan(args, kinds, sensor, metrics, summary)
    except KeyboardInterrupt:  # interrupted: say what was done, and exit as interrupted commands do
        print(f"pii-sensor: interrupted; {sensor.stats.summary()}", file=sys.stderr)
        return 130
    if args.format == "table":
        sys.stdout.write(summary.render() + "\n")
    if args.report:
        _write(args.report, summary.html(), "report")
    if args.metrics_file:
        try:
            metrics.write_textfile(args.metrics_file)
        except OSError as e:
            raise InputError(f"{args.metrics_file}: cannot write metrics: {e.strerror or e}") from None
    print(f"pii-sensor: {sensor.stats.summary()}", file=sys.stderr)
    return 0


def _scan(args, kinds, sensor: Sensor, metrics: Metrics, summary: Summary) -> None:
    out = sys.stdout
    for kind, path in kinds:
        for event in stream.events(sensor, exchanges(path, kind, sensor), emit_all=True):  # the table has them all
            summary.add(event.destination.host or event.destination.ip, event.method, event.endpoint, event.data_types)
            if event.findings:
                metrics.observe(event)
            if args.format == "json" and (event.findings or args.all):
                out.write(event.to_json() + "\n")


def _write(path: str, text: str, what: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as e:
        raise InputError(f"{path}: cannot write {what}: {e.strerror or e}") from None
