"""The `pii-sensor` command line (SPEC.md section 4): the parser, and errors as one line.

Unusable input is one line and exit 2; an unexpected error is one line naming its type
(never its message, which may quote traffic) and exit 1, with the call stack under --debug.
"""
from __future__ import annotations

import argparse
import sys
import traceback

from .. import __version__
from ..errors import InputError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as for any other unusable input
        self.exit(2, f"pii-sensor: {message}\n")


_WORKERS = "classifier processes beside the main one (default: classifier.workers, one per core; 0 = none)"


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a number >= 0: {text!r}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pii-sensor", description="Find personal data in HTTP traffic.")
    p.add_argument("--version", action="version", version=f"pii-sensor {__version__}")
    p.add_argument("--debug", action="store_true", help="on an unexpected error, print where it happened")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    scan = sub.add_parser("scan", help="scan HAR files and captures and report the PII they carry")
    scan.add_argument("inputs", nargs="+", metavar="INPUT")
    scan.add_argument("--format", choices=("table", "json"), default="table")
    scan.add_argument("--config", metavar="FILE")
    scan.add_argument("--report", metavar="FILE.html", help="also write the summary as an HTML page")
    scan.add_argument("--all", action="store_true", help="emit an event for every exchange, also without findings")
    scan.add_argument("--workers", type=_count, metavar="N", help=_WORKERS)
    scan.add_argument("--metrics-file", metavar="PATH",
                      help="also write the metrics in the node-exporter textfile format (e.g. a .prom file)")

    sn = sub.add_parser("sniff", help="watch live interfaces until SIGINT/SIGTERM")
    sn.add_argument("--interface", "-i", action="append", default=[], metavar="IFACE",
                    help="interface to capture on ('any' for all); repeat or comma-separate for several")
    sn.add_argument("--tls", action="store_true",
                    help="also read the plaintext of processes' OpenSSL connections with eBPF (root or CAP_BPF+CAP_PERFMON)")
    sn.add_argument("--bpf", metavar="FILTER", help='capture filter, e.g. "tcp port 80 or tcp port 8080"')
    sn.add_argument("--config", metavar="FILE")
    sn.add_argument("--metrics-port", type=int, metavar="N", help="serve Prometheus /metrics on this port")
    sn.add_argument("--events", default="stdout", metavar="SINK", help="stdout, file:PATH or an http(s):// webhook URL")
    sn.add_argument("--all", action="store_true", help="emit an event for every exchange, also without findings")
    sn.add_argument("--workers", type=_count, metavar="N", help=_WORKERS)

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

    mp = sub.add_parser("map", help="the data map of HAR files and captures: which workloads send which PII where")
    mp.add_argument("inputs", nargs="+", metavar="INPUT")
    mp.add_argument("--format", choices=("table", "json"), default="table")
    mp.add_argument("--html", metavar="FILE", help="also write the map as one self-contained HTML page")
    mp.add_argument("--config", metavar="FILE")
    mp.add_argument("--workers", type=_count, metavar="N", help=_WORKERS)

    hb = sub.add_parser("hub", help="the data map service sensors report to, until SIGINT/SIGTERM")
    hb.add_argument("--listen", default="127.0.0.1:8090", metavar="HOST:PORT")
    hb.add_argument("--db", default="sqlite:///pii-map.db", metavar="URL",
                    help="sqlite:///FILE (default pii-map.db) or postgresql://... for several replicas")
    hb.add_argument("--config", metavar="FILE")
    hb.add_argument("--events", action="append", default=[], metavar="SINK",
                    help="where change events go too: file:PATH or an http(s):// webhook URL (repeatable)")

    ev = sub.add_parser("eval", help="score the detectors against a labeled HAR (_pii_labels)")
    ev.add_argument("labeled", metavar="LABELED.har")
    ev.add_argument("--format", choices=("table", "json"), default="table")
    ev.add_argument("--config", metavar="FILE")
    ev.add_argument("--errors", action="store_true", help="list the mismatches (entry, part, path, type)")

    kg = sub.add_parser("keygen", help="make a key pair for encrypted evidence (evidence.public_key)")
    kg.add_argument("--out", required=True, metavar="PREFIX", help="writes PREFIX.key (private, mode 0600) and PREFIX.pub")

    dc = sub.add_parser("decrypt", help="open the encrypted evidence in events with the private key")
    dc.add_argument("inputs", nargs="*", metavar="EVENTS", help="JSON-lines files of events (default: stdin)")
    dc.add_argument("--key", required=True, metavar="PRIVATE_KEY", help="PREFIX.key from `pii-sensor keygen`")
    return p


def _command(name: str):
    """The command's module, imported on use: `eval` need not load mitmproxy, nor `scan` scapy's sockets."""
    if name == "scan":
        from . import scan as module
    elif name == "sniff":
        from . import sniff as module
    elif name == "proxy":
        from . import proxy as module
    elif name == "map":
        from . import map as module
    elif name == "hub":
        from . import hub as module
    elif name == "keygen":
        from . import keygen as module
    elif name == "decrypt":
        from . import decrypt as module
    else:
        from . import eval as module
    return module.run


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _command(args.command)(args)
    except InputError as e:
        print(f"pii-sensor: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `pii-sensor scan ... | head`
        sys.stderr.close()
        return 0
    except Exception as e:  # noqa: BLE001 - a bug: say what kind, never the message (it may quote traffic)
        print(f"pii-sensor: unexpected error: {type(e).__name__} (run with --debug for where)", file=sys.stderr)
        if args.debug:
            sys.stderr.write("".join(traceback.format_tb(e.__traceback__)))
        return 1
