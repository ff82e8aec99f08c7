"""`pii-sensor sniff --interface IFACE`: live capture until SIGINT/SIGTERM, events to a sink, /metrics."""
from __future__ import annotations

import sys

from .. import config as config_mod
from ..engine import Sensor
from ..outputs.publisher import Outputs
from ..sources import live
from .checks import check_port


def run(args) -> int:
    sensor = Sensor(config_mod.load(args.config))
    if args.metrics_port is not None:
        check_port(args.metrics_port)
    interfaces = [i.strip() for arg in args.interface for i in arg.split(",") if i.strip()]
    rings = live.open_rings(interfaces, args.bpf, sensor.config)  # capturing before /metrics answers: it means ready
    outputs = Outputs(sensor, args.events, args.metrics_port)
    try:
        live.run(rings, sensor.stats, sensor.config,  # classified 256 at a time, as scan does: memory stays bounded
                 lambda exchanges: outputs.publish(e for _, e in sensor.process_stream(exchanges, emit_all=args.all)))
    finally:
        outputs.close()
    print(f"pii-sensor: {sensor.stats.summary()}", file=sys.stderr)
    return 0
