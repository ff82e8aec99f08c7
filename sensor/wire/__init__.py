"""Packet capture path: frames -> IP -> TCP streams -> HTTP/1.x messages -> Exchanges.

The TCP reassembler (tcp.py) and the HTTP parser (http1.py) are sans-I/O engines in
the manner of h11: bytes in, events out, no sockets and no threads; session.py pairs their
messages into Exchanges. Capture files (sources/pcap.py) and live interfaces
(sources/live.py) only feed them.
"""
