"""Checks of the command line's inputs before anything starts: mistakes are one line and exit 2."""
from __future__ import annotations

import gzip
import os
import socket

from ..errors import InputError
from ..sources import pcap


def input_kind(path: str) -> str:
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
        raise InputError(f"{path}: cannot read: {e.strerror or type(e).__name__}") from None
    if head in pcap.PCAP_MAGICS:
        return "pcap"
    if path.lower().removesuffix(".gz").endswith((".pcap", ".pcapng", ".cap")):
        raise InputError(f"{path}: not a capture file (unknown format)")
    return "har"


def check_port(port: int, option: str = "--metrics-port", host: str = "") -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise InputError(f"{option} {port}: {e.strerror or e}") from None
        except OverflowError:
            raise InputError(f"{option} {port}: not a port number") from None
