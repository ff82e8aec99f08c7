"""Capture files (pcap, pcapng, gzip-compressed) through scapy's raw readers: (linktype, frame, ts)."""
from __future__ import annotations

import logging

from scapy.error import Scapy_Exception
from scapy.utils import RawPcapReader

from ..config import Config
from ..errors import InputError
from ..model import Drop
from ..wire.session import CaptureSession

logging.getLogger("scapy").setLevel(logging.ERROR)  # its per-packet warnings would flood stderr; we count instead


def frames(path: str, stats):
    """Yield (linktype, frame bytes, timestamp). An unreadable file is an InputError;
    a file that breaks off mid-way is counted as dropped{reason="truncated_capture"}."""
    try:
        reader = RawPcapReader(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (Scapy_Exception, OSError, EOFError, ValueError) as e:
        raise InputError(f"{path}: not a capture file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    with reader:
        default_linktype = getattr(reader, "linktype", None)
        while True:
            try:
                data, meta = reader._read_packet()
            except EOFError:
                return
            except (Scapy_Exception, OSError, ValueError, KeyError, IndexError):
                stats.drop(Drop.TRUNCATED_CAPTURE)
                return
            if hasattr(meta, "tsresol"):  # pcapng
                ts = ((meta.tshigh << 32) + meta.tslow) / meta.tsresol
                linktype = meta.linktype
            else:
                ts = meta.sec + meta.usec / (1e9 if getattr(reader, "nano", False) else 1e6)
                linktype = default_linktype
            if len(data) < getattr(meta, "caplen", 0):  # the file ends inside this packet
                stats.drop(Drop.TRUNCATED_CAPTURE)
            yield linktype, data, ts


PCAP_MAGICS = (b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1", b"\x0a\x0d\x0d\x0a")


def exchanges(path: str, stats, config: Config):
    """Every HTTP exchange in a capture file, in the order their responses complete."""
    session = CaptureSession(stats, config)
    for linktype, frame, ts in frames(path, stats):
        yield from session.frame(linktype, frame, ts)
    yield from session.finish()
