"""`pii-sensor proxy --mode MODE`: mitmproxy with the sensor's addon until SIGINT/SIGTERM."""
from __future__ import annotations

import asyncio
import signal
import warnings

from .. import config as config_mod
from ..errors import InputError
from ..model import Drop
from ..outputs.sinks import check_sink
from .checks import check_port


def run(args) -> int:
    from mitmproxy.options import Options
    from mitmproxy.proxy.mode_specs import ProxyMode
    from mitmproxy.tools.dump import DumpMaster

    from ..sources.deadlines import Deadlines, DeadlinesAddon
    from ..sources.proxy import PiiSensorAddon
    from ..worker import ProcessWorker

    # check everything mitmproxy and the classifier process will need: mistakes are one line and exit 2 here
    try:
        ProxyMode.parse(args.mode)
    except ValueError as e:
        raise InputError(f"--mode {args.mode}: {e}") from None
    config = config_mod.load(args.config)
    check_sink(args.events)
    check_port(args.listen_port, "--listen-port", args.listen_host)
    if args.metrics_port is not None:
        check_port(args.metrics_port)
    addon = PiiSensorAddon(ProcessWorker(args.config, args.events, args.metrics_port, config.queue_size,
                                         config.stop_timeout), config)
    # connections accepted in the instant of shutdown leave un-awaited coroutines behind: not the user's concern
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)

    async def serve():
        opts = Options(mode=[args.mode], listen_port=args.listen_port, listen_host=args.listen_host,
                       ssl_insecure=args.ssl_insecure)
        if args.confdir:
            opts.update(confdir=args.confdir)
        master = DumpMaster(opts, with_termlog=False, with_dumper=False)
        # bodies larger than the sensor reads pass through unbuffered (counted as body_streamed):
        # a 50 MB download must not sit in the proxy whole (an option of mitmproxy's proxyserver addon)
        opts.update(stream_large_bodies=str(config.max_body_bytes))
        master.addons.add(addon, DeadlinesAddon(Deadlines(config.client_header_timeout, config.client_body_timeout,
                                                          config.client_idle_timeout),
                                                addon.worker.count_closed))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, master.shutdown)

        def quiet(loop, context):  # connections cancelled at shutdown are not errors; others are counted
            if not isinstance(context.get("exception"), asyncio.CancelledError):
                addon.worker.drop(Drop.PROXY_ERROR)

        loop.set_exception_handler(quiet)
        await master.run()

    try:
        asyncio.run(serve())
    except Exception as e:  # mitmproxy reports a bad mode or a busy port as exceptions
        raise InputError(f"proxy: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    finally:
        addon.done()  # the classifier process drains its queue and prints the summary line
    return 0
