"""`pii-sensor hub`: the data map service (SPEC.md section 6) on uvicorn until SIGINT/SIGTERM."""
from __future__ import annotations

import signal
import sys

import uvicorn

from .. import config as config_mod
from ..errors import InputError
from ..hub.app import create_app
from ..hub.service import Hub
from ..hub.store import Store
from ..outputs.sinks import check_sink, open_sink
from ..stats import Stats


def listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--listen {text}: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def run(args) -> int:
    config = config_mod.load(args.config)
    host, port = listen_address(args.listen)
    for spec in args.events:
        check_sink(spec)
    try:
        store = Store(args.db, config.sensitivity)
    except Exception as e:  # noqa: BLE001 - a malformed URL, an unknown database or a missing driver
        raise InputError(f"--db: {str(e).splitlines()[0] if isinstance(e, ValueError) else type(e).__name__}") from None
    stats = Stats()
    hub = Hub(store, config.sensitivity, config.webhook_secret, config.hub_tokens,
              [open_sink(spec, stats, config) for spec in args.events], config.hub_flush_interval,
              config.hub_max_pending_flows).start()
    server = uvicorn.Server(uvicorn.Config(create_app(hub, config.hub_max_body_bytes), host=host, port=port,
                                           log_level="warning", access_log=False, lifespan="off"))
    print(f"pii-sensor hub: listening on http://{host}:{port}, database {store.engine.url.render_as_string()}",
          file=sys.stderr, flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        # uvicorn stops on these, puts these handlers back and raises the signal again for them: with
        # a handler that does nothing, the hub then stops its flusher and says so instead of dying
        signal.signal(sig, lambda *_: None)
    try:
        server.run()
    finally:
        hub.stop()
    if not server.started:
        raise InputError(f"--listen {args.listen}: cannot listen there")
    print("pii-sensor hub: stopped", file=sys.stderr)
    return 0
