"""AF_PACKET capture through a memory-mapped TPACKET_V3 ring, as libpcap and Suricata read Linux
interfaces: the kernel fills blocks of packets in a shared ring and the reader takes whole
blocks at once, so bursts wait in the ring instead of being lost between two reads. What
the kernel still drops because the ring was full is read from PACKET_STATISTICS and counted.

One Ring per interface. `any` captures on every interface at the network layer (SOCK_DGRAM,
as libpcap's `any` does); a named interface gives link-layer frames (SOCK_RAW). Several
readers can share an interface through PACKET_FANOUT by flow hash (`fanout_group`), so that
each sees whole connections.
"""
from __future__ import annotations

import mmap
import select
import socket
import struct

from ..errors import InputError
from ..wire.packets import DLT_EN10MB, DLT_RAW
from .bpf import Filter

SOL_PACKET = 263
PACKET_RX_RING, PACKET_STATISTICS, PACKET_VERSION, PACKET_FANOUT = 5, 6, 10, 18
TPACKET_V3 = 2
TP_STATUS_KERNEL, TP_STATUS_USER = 0, 1
PACKET_FANOUT_HASH, PACKET_FANOUT_FLAG_DEFRAG = 0, 0x8000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
ARPHRD_LOOPBACK = 772
SO_ATTACH_FILTER = 26
BLOCK_SIZE = 1 << 20  # larger than any packet, offloaded segments of 64 KiB included
BLOCK_TIMEOUT_MS = 50  # a block that is not full is handed over after this long
_REQ3 = struct.Struct("7I")
_BLOCK = struct.Struct("8xIII")  # after version and offset_to_priv: block_status, num_pkts, offset_to_first_pkt
_PACKET = struct.Struct("IIIII4xHH")  # tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len, (status), tp_mac, tp_net
_SLL = struct.Struct("8xHB")  # in the sockaddr_ll after the packet header: sll_hatype, sll_pkttype
_SLL_OFFSET = 48  # TPACKET_ALIGN(sizeof(struct tpacket3_hdr))
_STATS = struct.Struct("III")  # tp_packets (drops included), tp_drops, tp_freeze_q_cnt


class Ring:
    def __init__(self, interface: str, bpf: str | None, ring_bytes: int, fanout_group: int | None = None):
        self.interface = interface
        self.cooked = interface == "any"  # network-layer packets from every interface
        self.linktype = DLT_RAW if self.cooked else DLT_EN10MB
        self.blocks = max(2, ring_bytes // BLOCK_SIZE)
        self.next_block = 0
        kind = socket.SOCK_DGRAM if self.cooked else socket.SOCK_RAW
        try:
            self.sock = socket.socket(socket.AF_PACKET, kind, socket.htons(ETH_P_ALL))
        except PermissionError:
            raise InputError(f"--interface {interface}: cannot capture: needs root or CAP_NET_RAW") from None
        try:
            self.sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            if bpf:
                self._filter(bpf)
            self.sock.setsockopt(SOL_PACKET, PACKET_RX_RING, _REQ3.pack(
                BLOCK_SIZE, self.blocks, 2048, BLOCK_SIZE // 2048 * self.blocks, BLOCK_TIMEOUT_MS, 0, 0))
            self.ring = mmap.mmap(self.sock.fileno(), BLOCK_SIZE * self.blocks, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
            if not self.cooked:  # an unbound packet socket hears every interface
                self.sock.bind((interface, ETH_P_ALL))
            if fanout_group is not None:
                self.sock.setsockopt(SOL_PACKET, PACKET_FANOUT,
                                     fanout_group | (PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16)
        except OSError as e:
            self.sock.close()
            raise InputError(f"--interface {interface}: cannot capture: {e.strerror or e}") from None
        self.view = memoryview(self.ring)

    def _filter(self, bpf: str) -> None:
        """Compile the filter with libpcap for what this socket sees, and attach it."""
        # a cooked socket's filter sees the packet from its IP header on: Linux's DLT_RAW is 12
        compiled = Filter(bpf, 12 if self.cooked else DLT_EN10MB)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, compiled.fprog)

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self, on_packet, max_blocks: int = 4) -> int:
        """Hand every packet of the next ready blocks (at most `max_blocks`, so that the work between two
        reads stays bounded; the rest waits in the ring) to `on_packet(linktype, frame, ts)`; the number of packets."""
        count = 0
        for _ in range(max_blocks):
            base = self.next_block * BLOCK_SIZE
            status, packets, offset = _BLOCK.unpack_from(self.ring, base)
            if not status & TP_STATUS_USER:
                break
            at = base + offset
            for _ in range(packets):
                next_offset, sec, nsec, snaplen, _, mac, net = _PACKET.unpack_from(self.ring, at)
                hatype, pkttype = _SLL.unpack_from(self.ring, at + _SLL_OFFSET)
                if not (pkttype == PACKET_OUTGOING and hatype == ARPHRD_LOOPBACK):  # loopback shows each packet twice
                    start = at + (net if self.cooked else mac)
                    on_packet(self.linktype, bytes(self.view[start:at + mac + snaplen]), sec + nsec / 1e9)
                    count += 1
                at += next_offset
            struct.pack_into("I", self.ring, base + 8, TP_STATUS_KERNEL)  # the block goes back to the kernel
            self.next_block = (self.next_block + 1) % self.blocks
        return count

    def kernel_drops(self) -> int:
        """Packets the kernel dropped since the last call because the ring was full."""
        _, drops, _ = _STATS.unpack(self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size))
        return drops

    def close(self) -> None:
        self.view.release()
        self.ring.close()
        self.sock.close()


def wait(rings: list[Ring], timeout: float) -> list[Ring]:
    """The rings with packets to read, waiting at most `timeout` seconds."""
    ready, _, _ = select.select(rings, [], [], timeout)
    return ready
