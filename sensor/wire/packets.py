"""Frames to TCP segments, parsed from raw bytes with struct (scapy's dissection is far slower).

Link types: Ethernet (with 802.1Q/QinQ tags), Linux cooked capture v1 and v2, raw IP,
BSD loopback (NULL and LOOP). IPv4 (fragments reassembled, bounded) and IPv6 (extension
headers walked). Everything else is counted by the caller and skipped.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from ..model import Drop

DLT_NULL, DLT_EN10MB, DLT_RAW, DLT_LOOP, DLT_LINUX_SLL, DLT_IPV4, DLT_IPV6, DLT_LINUX_SLL2 = 0, 1, 101, 108, 113, 228, 229, 276
DLT_RAW_ALT = 12  # some systems write raw IP as 12 or 14
ETH_IPV4, ETH_IPV6, ETH_VLAN, ETH_QINQ, ETH_QINQ_OLD = 0x0800, 0x86DD, 0x8100, 0x88A8, 0x9100
PROTO_TCP = 6
_IPV6_EXT = {0, 43, 60, 135, 139, 140}  # hop-by-hop, routing, destination options, mobility, HIP, shim6
_IPV6_FRAGMENT = 44

_H = struct.Struct("!H")
_TCP = struct.Struct("!HHIIBB")


@dataclass(slots=True)
class Segment:
    ts: float
    src: str
    sport: int
    dst: str
    dport: int
    seq: int
    ack: int
    flags: int
    payload: bytes = field(repr=False)

    @property
    def syn(self) -> bool:
        return bool(self.flags & 0x02)

    @property
    def fin(self) -> bool:
        return bool(self.flags & 0x01)

    @property
    def rst(self) -> bool:
        return bool(self.flags & 0x04)

    @property
    def has_ack(self) -> bool:
        return bool(self.flags & 0x10)


class Unsupported(Exception):
    """A frame the sensor does not read: its `reason` becomes a dropped{reason} count."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def network_layer(linktype: int, frame: bytes) -> tuple[int, bytes]:
    """(ethertype, IP packet) from a link-layer frame."""
    if linktype == DLT_EN10MB:
        if len(frame) < 14:
            raise Unsupported(Drop.TRUNCATED_FRAME)
        ethertype, offset = _H.unpack_from(frame, 12)[0], 14
        while ethertype in (ETH_VLAN, ETH_QINQ, ETH_QINQ_OLD):  # 802.1Q and QinQ tags
            if len(frame) < offset + 4:
                raise Unsupported(Drop.TRUNCATED_FRAME)
            ethertype = _H.unpack_from(frame, offset + 2)[0]
            offset += 4
        return ethertype, frame[offset:]
    if linktype == DLT_LINUX_SLL:
        if len(frame) < 16:
            raise Unsupported(Drop.TRUNCATED_FRAME)
        return _H.unpack_from(frame, 14)[0], frame[16:]
    if linktype == DLT_LINUX_SLL2:
        if len(frame) < 20:
            raise Unsupported(Drop.TRUNCATED_FRAME)
        return _H.unpack_from(frame, 0)[0], frame[20:]
    if linktype in (DLT_RAW, DLT_RAW_ALT, 14, DLT_IPV4, DLT_IPV6):
        if not frame:
            raise Unsupported(Drop.TRUNCATED_FRAME)
        return (ETH_IPV6 if frame[0] >> 4 == 6 else ETH_IPV4), frame
    if linktype in (DLT_NULL, DLT_LOOP):
        if len(frame) < 4:
            raise Unsupported(Drop.TRUNCATED_FRAME)
        family = frame[0] or frame[3]  # host byte order (NULL) or network order (LOOP)
        return (ETH_IPV4 if family == 2 else ETH_IPV6), frame[4:]
    raise Unsupported(Drop.UNKNOWN_LINKTYPE)


class Defragmenter:
    """IPv4 fragment reassembly with bounds on the datagrams and bytes held."""

    def __init__(self, max_datagrams: int = 1024, max_bytes: int = 65535, timeout: float = 30.0):
        self.max_datagrams, self.max_bytes, self.timeout = max_datagrams, max_bytes, timeout
        self.pending: dict[tuple, dict] = {}

    def add(self, key: tuple, offset: int, more: bool, data: bytes, ts: float, stats) -> bytes | None:
        """The whole payload once every fragment is in, else None."""
        entry = self.pending.get(key)
        if entry is None:
            if len(self.pending) >= self.max_datagrams:
                self.expire(ts, stats, force=True)
            entry = self.pending[key] = {"parts": {}, "total": None, "ts": ts, "size": 0}
        entry["parts"][offset] = data
        entry["size"] += len(data)
        if not more:
            entry["total"] = offset + len(data)
        if entry["size"] > self.max_bytes:
            del self.pending[key]
            stats.drop(Drop.FRAGMENT_OVERFLOW)
            return None
        if entry["total"] is None:
            return None
        out, pos = bytearray(), 0
        for off in sorted(entry["parts"]):
            if off > pos:
                return None  # a hole remains
            out += entry["parts"][off][pos - off:]
            pos = max(pos, off + len(entry["parts"][off]))
        if pos < entry["total"]:
            return None
        del self.pending[key]
        return bytes(out[: entry["total"]])

    def expire(self, now: float, stats, force: bool = False) -> None:
        for key in [k for k, e in self.pending.items() if force or now - e["ts"] > self.timeout]:
            del self.pending[key]
            stats.drop(Drop.FRAGMENT_TIMEOUT)
            if force:
                break


def tcp_segment(ethertype: int, packet: bytes, ts: float, defrag: Defragmenter, stats) -> Segment | None:
    """The TCP segment inside an IP packet; None for other protocols and held fragments."""
    if ethertype == ETH_IPV4:
        if len(packet) < 20 or packet[0] >> 4 != 4:
            raise Unsupported(Drop.BAD_IP)
        ihl = (packet[0] & 0x0F) * 4
        total = _H.unpack_from(packet, 2)[0]
        if ihl < 20 or total < ihl:
            raise Unsupported(Drop.BAD_IP)
        proto = packet[9]
        src, dst = packet[12:16], packet[16:20]
        payload = packet[ihl:total] if total <= len(packet) else packet[ihl:]
        frag = _H.unpack_from(packet, 6)[0]
        more, offset = bool(frag & 0x2000), (frag & 0x1FFF) * 8
        if more or offset:
            ident = _H.unpack_from(packet, 4)[0]
            payload = defrag.add((src, dst, proto, ident), offset, more, payload, ts, stats)
            if payload is None:
                return None
        src_ip, dst_ip = _ip4(src), _ip4(dst)
    elif ethertype == ETH_IPV6:
        if len(packet) < 40 or packet[0] >> 4 != 6:
            raise Unsupported(Drop.BAD_IP)
        proto, offset = packet[6], 40
        while proto in _IPV6_EXT or proto == _IPV6_FRAGMENT:
            if len(packet) < offset + 8:
                raise Unsupported(Drop.BAD_IP)
            if proto == _IPV6_FRAGMENT:
                stats.drop(Drop.IPV6_FRAGMENT)  # rare on TCP (PMTU discovery): counted, not reassembled
                return None
            proto, offset = packet[offset], offset + (packet[offset + 1] + 1) * 8
        length = _H.unpack_from(packet, 4)[0]
        payload = packet[offset: 40 + length] if length else packet[offset:]
        src_ip, dst_ip = str(ipaddress.IPv6Address(packet[8:24])), str(ipaddress.IPv6Address(packet[24:40]))
    else:
        return None
    if proto != PROTO_TCP:
        return None
    if len(payload) < 20:
        raise Unsupported(Drop.BAD_TCP)
    sport, dport, seq, ack, off, flags = _TCP.unpack_from(payload, 0)
    header = (off >> 4) * 4
    if header < 20 or header > len(payload):
        raise Unsupported(Drop.BAD_TCP)
    return Segment(ts, src_ip, sport, dst_ip, dport, seq, ack, flags, payload[header:])


def _ip4(raw: bytes) -> str:
    return "%d.%d.%d.%d" % (raw[0], raw[1], raw[2], raw[3])
