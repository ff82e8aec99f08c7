"""`pii-sensor sniff --interface IFACE [--tls]`: live capture (and TLS plaintext read with eBPF) until
SIGINT/SIGTERM, events to a sink, /metrics."""
from __future__ import annotations

import sys

from .. import config as config_mod
from ..engine import Sensor
from ..errors import InputError
from ..feed import Feed
from ..outputs.publisher import Outputs
from ..sources import live
from .checks import check_port


def run(args) -> int:
    sensor = Sensor(config_mod.load(args.config, workers=args.workers))
    if args.metrics_port is not None:
        check_port(args.metrics_port)
    interfaces = [i.strip() for arg in args.interface for i in arg.split(",") if i.strip()]
    if not interfaces and not args.tls:
        raise InputError("sniff: give --interface IFACE, --tls, or both")
    tls = None
    if args.tls:
        from ..tls.source import TlsSource  # libbpf only where it is asked for

        tls = TlsSource(sensor.stats, sensor.config)
    try:
        rings = live.open_rings(interfaces, args.bpf, sensor.config)  # capturing before /metrics answers: it means ready
    except BaseException:
        if tls is not None:
            tls.close()
        raise
    try:
        feed = Feed(sensor, lambda events: outputs.publish(events), args.all)  # workers ready before /metrics
        outputs = Outputs(sensor, args.events, args.metrics_port)
    except BaseException:
        for ring in rings:
            ring.close()
        if tls is not None:
            tls.close()
        raise
    try:
        live.run(rings, sensor.stats, sensor.config, feed.offer, tls)
        feed.close()
    finally:
        outputs.close()
    print(f"pii-sensor: {sensor.stats.summary()}", file=sys.stderr)
    return 0
