"""The `pii-sensor` command line (SPEC.md section 4)."""
from __future__ import annotations

import argparse
import gzip
import html
import json
import os
import sys
from urllib.parse import urlsplit

from . import __version__, config as config_mod, evaluate, har
from .capture import pcapfile
from .endpoint import template
from .errors import InputError
from .pipeline import Sensor
from .report import Summary
from .sinks import check_sink


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as for any other unusable input
        self.exit(2, f"pii-sensor: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pii-sensor", description="Find personal data in HTTP traffic.")
    p.add_argument("--version", action="version", version=f"pii-sensor {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    scan = sub.add_parser("scan", help="scan HAR files and report the PII they carry")
    scan.add_argument("inputs", nargs="+", metavar="INPUT")
    scan.add_argument("--format", choices=("table", "json"), default="table")
    scan.add_argument("--config", metavar="FILE")
    scan.add_argument("--report", metavar="FILE.html", help="also write the summary as an HTML page")
    scan.add_argument("--all", action="store_true", help="emit an event for every exchange, also without findings")
    scan.add_argument("--metrics-file", metavar="PATH",
                      help="also write the metrics in the node-exporter textfile format (e.g. a .prom file)")

    sn = sub.add_parser("sniff", help="watch live interfaces until SIGINT/SIGTERM")
    sn.add_argument("--interface", "-i", action="append", required=True, metavar="IFACE",
                    help="interface to capture on ('any' for all); repeat or comma-separate for several")
    sn.add_argument("--bpf", metavar="FILTER", help='capture filter, e.g. "tcp port 80 or tcp port 8080"')
    sn.add_argument("--config", metavar="FILE")
    sn.add_argument("--metrics-port", type=int, metavar="N", help="serve Prometheus /metrics on this port")
    sn.add_argument("--events", default="stdout", metavar="SINK", help="stdout, file:PATH or an http(s):// webhook URL")
    sn.add_argument("--all", action="store_true", help="emit an event for every exchange, also without findings")

    px = sub.add_parser("proxy", help="run as a mitmproxy-based proxy (sidecar) until SIGINT/SIGTERM")
    px.add_argument("--mode", required=True, metavar="MODE",
                    help="mitmproxy mode: reverse:http://127.0.0.1:8080, regular, transparent, ...")
    px.add_argument("--listen-port", type=int, default=8081, metavar="N")
    px.add_argument("--listen-host", default="", metavar="ADDR", help="address to listen on (default: all)")
    px.add_argument("--config", metavar="FILE")
    px.add_argument("--metrics-port", type=int, metavar="N", help="serve Prometheus /metrics on this port")
    px.add_argument("--events", default="stdout", metavar="SINK", help="stdout, file:PATH or an http(s):// webhook URL")
    px.add_argument("--confdir", metavar="DIR", help="mitmproxy's directory for its CA (default ~/.mitmproxy)")
    px.add_argument("--ssl-insecure", action="store_true", help="do not verify upstream TLS certificates")

    ev = sub.add_parser("eval", help="score the detectors against a labeled HAR (_pii_labels)")
    ev.add_argument("labeled", metavar="LABELED.har")
    ev.add_argument("--format", choices=("table", "json"), default="table")
    ev.add_argument("--config", metavar="FILE")
    ev.add_argument("--errors", action="store_true", help="list the mismatches (entry, part, path, type)")
    return p


def _input_kind(path: str) -> str:
    """'pcap' or 'har', from the file's first bytes (gzip-compressed files too), not its name."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            if head[:2] == b"\x1f\x8b":
                fh.seek(0)
                with gzip.open(fh) as gz:
                    head = gz.read(4)
    except (OSError, EOFError) as e:
        raise InputError(f"{path}: cannot read: {e}") from None
    if head in pcapfile.PCAP_MAGICS:
        return "pcap"
    if path.lower().removesuffix(".gz").endswith((".pcap", ".pcapng", ".cap")):
        raise InputError(f"{path}: not a capture file (unknown format)")
    return "har"


def _scan(args) -> int:
    from .metrics import Metrics

    sensor = Sensor(config_mod.load(args.config))
    metrics = Metrics(sensor.stats, sensor.config.max_label_values)
    sensor.on_scanned = metrics.scanned
    summary = Summary(sensor.config.sensitivity)
    kinds = [(_input_kind(p), p) for p in args.inputs]  # check all before reading any
    out = sys.stdout
    for kind, path in kinds:
        if kind == "pcap":
            source = pcapfile.exchanges(path, sensor.stats, sensor.config.max_body_bytes)
        else:
            source = har.read(path, sensor.stats)
        for exchange, event in sensor.process_stream(source, emit_all=args.all):
            endpoint = event["request"]["endpoint"] if event else template(urlsplit(exchange.request.target).path or "/")
            summary.add(event, exchange.request.method, exchange.destination.host or exchange.destination.ip, endpoint)
            if event is not None and event["findings"]:
                metrics.observe(event)
            if args.format == "json" and event is not None:
                out.write(json.dumps(event, ensure_ascii=False) + "\n")
    if args.format == "table":
        out.write(summary.render() + "\n")
    if args.report:
        _write_report(args.report, summary)
    if args.metrics_file:
        try:
            metrics.write_textfile(args.metrics_file)
        except OSError as e:
            raise InputError(f"{args.metrics_file}: cannot write metrics: {e.strerror or e}") from None
    print(f"pii-sensor: {sensor.stats.summary()}", file=sys.stderr)
    return 0


def _write_report(path: str, summary: Summary) -> None:
    table = summary.render().splitlines()
    rows = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in line.split("  ") if c) + "</tr>" for line in table[1:])
    page = (
        "<!doctype html><meta charset=utf-8><title>pii-sensor report</title>"
        "<style>body{font-family:sans-serif}td{padding:2px 10px;border-bottom:1px solid #ddd}</style>"
        "<h1>PII by endpoint</h1><table><tr><th>Destination</th><th>Method</th><th>Endpoint</th><th>Exchanges</th>"
        f"<th>With PII</th><th>Sensitivity</th><th>Data types</th></tr>\n{rows}</table>\n"
    )
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(page)
    except OSError as e:
        raise InputError(f"{path}: cannot write report: {e.strerror or e}") from None


def _eval(args) -> int:
    if not os.path.exists(args.labeled):
        raise InputError(f"{args.labeled}: no such file")
    sensor = Sensor(config_mod.load(args.config))
    result = evaluate.score(sensor, args.labeled)
    if args.format == "json":
        if not args.errors:
            result.pop("errors")
        print(json.dumps(result, indent=2, default=list))
    else:
        print(evaluate.render(result))
        if args.errors:
            for kind, items in result["errors"].items():
                for item in items:
                    print(f"{kind[:-1].replace('_', ' ')}: entry {item[0]} {item[1]} {item[2]} {item[3]}")
    return 0


def _proxy(args) -> int:
    import asyncio
    import signal
    import warnings

    from mitmproxy.options import Options
    from mitmproxy.proxy.mode_specs import ProxyMode
    from mitmproxy.tools.dump import DumpMaster

    from .proxy import PiiSensorAddon, ProcessWorker

    # check everything mitmproxy and the classifier process will need: mistakes are one line and exit 2 here
    try:
        ProxyMode.parse(args.mode)
    except ValueError as e:
        raise InputError(f"--mode {args.mode}: {e}") from None
    config = config_mod.load(args.config)
    check_sink(args.events)
    _check_port(args.listen_port, "--listen-port", args.listen_host)
    if args.metrics_port is not None:
        _check_port(args.metrics_port)
    addon = PiiSensorAddon(ProcessWorker(args.config, args.events, args.metrics_port, config.queue_size))
    # connections accepted in the instant of shutdown leave un-awaited coroutines behind: not the user's concern
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)

    async def run():
        opts = Options(mode=[args.mode], listen_port=args.listen_port, listen_host=args.listen_host,
                       ssl_insecure=args.ssl_insecure)
        if args.confdir:
            opts.update(confdir=args.confdir)
        master = DumpMaster(opts, with_termlog=False, with_dumper=False)
        master.addons.add(addon)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, master.shutdown)

        def quiet(loop, context):  # connections cancelled at shutdown are not errors; others are counted
            if not isinstance(context.get("exception"), asyncio.CancelledError):
                addon.worker.drop("proxy_error")

        loop.set_exception_handler(quiet)
        await master.run()

    try:
        asyncio.run(run())
    except Exception as e:  # mitmproxy reports a bad mode or a busy port as exceptions
        raise InputError(f"proxy: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    finally:
        addon.done()  # the classifier process drains its queue and prints the summary line
    return 0


def _check_port(port: int, option: str = "--metrics-port", host: str = "") -> None:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise InputError(f"{option} {port}: {e.strerror or e}") from None


def _sniff(args) -> int:
    from .capture import live
    from .outputs import Outputs

    sensor = Sensor(config_mod.load(args.config))
    if args.metrics_port is not None:
        _check_port(args.metrics_port)
    outputs = Outputs(sensor, args.events, args.metrics_port)
    interfaces = [i.strip() for arg in args.interface for i in arg.split(",") if i.strip()]
    try:
        live.run(interfaces, args.bpf, sensor.stats, sensor.config.max_body_bytes,
                 lambda exchanges: outputs.publish(sensor.process_many(exchanges, emit_all=args.all)))
    finally:
        outputs.close()
    print(f"pii-sensor: {sensor.stats.summary()}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"scan": _scan, "eval": _eval, "sniff": _sniff, "proxy": _proxy}[args.command](args)
    except InputError as e:
        print(f"pii-sensor: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `pii-sensor scan ... | head`
        sys.stderr.close()
        return 0
