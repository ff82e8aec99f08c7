"""`pii-sensor sniff --interface IFACE`: live capture until SIGINT/SIGTERM, events to a sink, /metrics."""
from __future__ import annotations

import sys

from .. import config as config_mod
from ..engine import Sensor
from ..feed import Feed
from ..outputs.publisher import Outputs
from ..sources import live
from .checks import check_port


def run(args) -> int:
    sensor = Sensor(config_mod.load(args.config, workers=args.workers))
    if args.metrics_port is not None:
        check_port(args.metrics_port)
    interfaces = [i.strip() for arg in args.interface for i in arg.split(",") if i.strip()]
    rings = live.open_rings(interfaces, args.bpf, sensor.config)  # capturing before /metrics answers: it means ready
    try:
        feed = Feed(sensor, lambda events: outputs.publish(events), args.all)  # workers ready before /metrics
        outputs = Outputs(sensor, args.events, args.metrics_port)
    except BaseException:
        for ring in rings:
            ring.close()
        raise
    try:
        live.run(rings, sensor.stats, sensor.config, feed.offer)
        feed.close()
    finally:
        outputs.close()
    print(f"pii-sensor: {sensor.stats.summary()}", file=sys.stderr)
    return 0
