"""Capture files, gzip-compressed or not, as (linktype, frame, ts): classic pcap with a reader of
its own (records parsed from large reads; runs of empty records skipped in bulk, so a file
of millions of them, or a zero-filled .pcap.gz bomb, takes seconds), pcapng through scapy's."""
from __future__ import annotations

import gzip
import logging
import re
import struct

from ..config import Config
from ..errors import InputError
from ..model import Drop
from ..wire.session import CaptureSession



CHUNK = 1 << 20
MAX_RECORD = 1 << 18  # no link layer carries larger frames: a longer record means a corrupt file
_EMPTY_RUN = re.compile(rb"(?:.{8}\0{8})+", re.S)  # records of no bytes (any time stamp, caplen = len = 0)
_NANO = (b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1")


def frames(path: str, stats):
    """Yield (linktype, frame bytes, timestamp). An unreadable file is an InputError;
    a file that breaks off mid-way is counted as dropped{reason="truncated_capture"}."""
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    with raw:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        fh = gzip.open(raw) if compressed else raw
        try:
            head = fh.read(24)
        except (OSError, EOFError):
            raise InputError(f"{path}: not a capture file (corrupt gzip)") from None
        if head[:4] not in PCAP_MAGICS or head[:4] == b"\x0a\x0d\x0d\x0a":
            yield from _pcapng(path, stats)
            return
        if len(head) < 24:
            raise InputError(f"{path}: not a capture file (header cut short)")
        try:
            yield from _classic(fh, head, stats)
        except (OSError, EOFError):  # a gzip stream that breaks off
            stats.drop(Drop.TRUNCATED_CAPTURE)


def _classic(fh, head: bytes, stats):
    """Records of a classic pcap file, read a megabyte at a time."""
    order = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    scale = 1e9 if head[:4] in _NANO else 1e6
    linktype = struct.unpack(order + "I", head[20:24])[0] & 0x0FFFFFFF
    record = struct.Struct(order + "IIII")
    buf, pos = b"", 0
    while True:
        if len(buf) - pos < 16 + MAX_RECORD:  # room for a whole record, or the end of the file
            more = fh.read(CHUNK)
            buf, pos = buf[pos:] + more, 0
            if len(buf) < 16:
                if buf:
                    stats.drop(Drop.TRUNCATED_CAPTURE)
                return
        empty = _EMPTY_RUN.match(buf, pos)
        if empty:  # counted as the empty frames they are, in bulk
            stats.packets += (empty.end() - pos) // 16
            stats.drop(Drop.TRUNCATED_FRAME, (empty.end() - pos) // 16)
            pos = empty.end()
            continue
        sec, frac, caplen, _ = record.unpack_from(buf, pos)
        if caplen > MAX_RECORD:
            stats.drop(Drop.TRUNCATED_CAPTURE)  # corrupt from here on
            return
        if pos + 16 + caplen > len(buf):
            stats.drop(Drop.TRUNCATED_CAPTURE)  # the file ends inside this packet
            return
        yield linktype, buf[pos + 16:pos + 16 + caplen], sec + frac / scale
        pos += 16 + caplen


def _pcapng(path: str, stats):
    """Packets of a pcapng file, through scapy's reader (it raises InputError for anything else)."""
    from scapy.error import Scapy_Exception  # imported on use: scapy's tables cost sniff memory it never needs
    from scapy.utils import RawPcapReader

    logging.getLogger("scapy").setLevel(logging.ERROR)  # its per-packet warnings would flood stderr; we count instead
    try:
        reader = RawPcapReader(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (Scapy_Exception, OSError, EOFError, ValueError) as e:
        raise InputError(f"{path}: not a capture file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    with reader:
        while True:
            try:
                data, meta = reader._read_packet()
            except EOFError:
                return
            except (Scapy_Exception, OSError, ValueError, KeyError, IndexError):
                stats.drop(Drop.TRUNCATED_CAPTURE)
                return
            if len(data) < getattr(meta, "caplen", 0):  # the file ends inside this packet
                stats.drop(Drop.TRUNCATED_CAPTURE)
            yield meta.linktype, data, ((meta.tshigh << 32) + meta.tslow) / meta.tsresol


PCAP_MAGICS = (b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1", b"\x0a\x0d\x0d\x0a")


def exchanges(path: str, stats, config: Config):
    """Every HTTP exchange in a capture file, in the order their responses complete."""
    session = CaptureSession(stats, config)
    for linktype, frame, ts in frames(path, stats):
        yield from session.frame(linktype, frame, ts)
    yield from session.finish()
