"""A bounded on-disk queue: what a webhook has not delivered yet survives a restart of the sensor.

One directory per sink, held by one process at a time (an flock on LOCK):

    LOCK                   locked while a spool is open: a second process is refused (InputError)
    ACK                    "SEGMENT OFFSET INDEX": the first record not yet delivered
    0000000000000007.seg   segments of records, appended in order; the newest is written, the oldest read

A record is MAGIC (2 bytes), the payload's length (4, little-endian), the CRC32 of length and payload
(4), then the payload. The first magic byte, 0xF5, never occurs in UTF-8 text: after a damaged
record the reader finds the next one by it, and the CRC tells a real record from chance.

- Writes go to the kernel at once (a killed process loses nothing) and are fsync'd by a thread of
  the spool every SYNC_RECORDS records or SYNC_SECONDS, whichever comes first: fsync per record
  would put a disk flush on the traffic path.
- The cap (`max_bytes`, all segments on disk) drops the OLDEST segments for room; the events in them
  that were not delivered are counted (`spool_full`). A torn record at the end of a segment (a crash
  mid-write) is cut off when the spool opens, and a damaged one is skipped when read past: each
  counted once (`spool_corrupt`).
- The reader leases a batch (`take`), and once the receiver has it says `done`: the ACK file moves
  past it, and segments wholly behind it are deleted. A batch the receiver never confirmed is sent
  again after a restart: delivery is at least once, and events carry ids for receivers to remove
  duplicates.
"""
from __future__ import annotations

import fcntl
import os
import struct
import threading
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

from ..errors import InputError
from ..model import Drop

MAGIC = b"\xf5\x5e"
HEADER = struct.Struct("<2sII")  # magic, payload length, CRC32 of length + payload
SYNC_RECORDS = 100
SYNC_SECONDS = 1.0
MAX_SEGMENT_BYTES = 16 << 20
MIN_SEGMENT_BYTES = 4096


def frame(payload: bytes) -> bytes:
    length = len(payload).to_bytes(4, "little")
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload, zlib.crc32(length))) + payload


def parse(data: bytes, offset: int):
    """(payload, end) of the record at `offset` in `data`; None when it is damaged or cut short."""
    if len(data) - offset < HEADER.size:
        return None
    magic, length, crc = HEADER.unpack_from(data, offset)
    end = offset + HEADER.size + length
    if magic != MAGIC or end > len(data):
        return None
    payload = data[offset + HEADER.size:end]
    if zlib.crc32(payload, zlib.crc32(length.to_bytes(4, "little"))) != crc:
        return None
    return payload, end


def resync(data: bytes, offset: int) -> int:
    """Where the next whole record after a damaged one at `offset` begins (len(data) if none)."""
    at = data.find(MAGIC, offset + 1)
    while at != -1 and parse(data, at) is None:
        at = data.find(MAGIC, at + 1)
    return len(data) if at == -1 else at


class Pos(NamedTuple):
    """A place in the spool: segment number, byte offset in it, and records before it in that segment."""

    seg: int
    offset: int
    index: int


@dataclass
class Segment:
    number: int
    size: int = 0  # bytes of whole records
    records: int = 0  # whole records (damaged stretches are not counted)


@dataclass
class Batch:
    """Records leased to the sender, from the head up to `end` (exclusive)."""

    payloads: list = field(repr=False)
    start: Pos
    end: Pos
    sending: bool = False  # a POST of it is under way
    revoked: bool = False  # the cap dropped records of it from the spool while it was out


class Spool:
    def __init__(self, directory: str, max_bytes: int = 256 << 20, drop=lambda reason, n=1: None):
        self.dir, self.max_bytes, self._count_drop = directory, max_bytes, drop
        self.segment_bytes = max(MIN_SEGMENT_BYTES, min(MAX_SEGMENT_BYTES, max_bytes // 8))
        self._lock = threading.Lock()
        self._data = threading.Condition(self._lock)  # records appended, or the spool interrupted
        self._synced = threading.Condition(self._lock)  # records to fsync
        self._segments: list[Segment] = []
        self._bytes = self._records = 0  # of all segments: kept, not summed, as append checks the cap each time
        self._fd: int | None = None  # the newest segment's, while this process writes it
        self._sealed: list[int] = []  # fds of segments written and rotated away, to fsync and close
        self._unsynced = 0
        self._dir_dirty = False
        self._lease: Batch | None = None
        self._interrupted = False
        self._closed = False
        self._lockfd = self._acquire()
        try:
            self._load()
        except OSError as e:
            os.close(self._lockfd)
            raise InputError(f"spool {self.dir}: cannot read: {e.strerror or e}") from None
        except BaseException:
            os.close(self._lockfd)
            raise
        self._syncer = threading.Thread(target=self._sync_loop, name="pii-sensor-spool-sync", daemon=True)
        self._syncer.start()

    # --- opening ---------------------------------------------------------------------------
    def _acquire(self) -> int:
        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            fd = os.open(os.path.join(self.dir, "LOCK"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise InputError(f"spool {self.dir}: cannot open: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise InputError(f"spool {self.dir}: in use by another process (one spool per sink and process)") from None
        return fd

    def _load(self) -> None:
        numbers = sorted(int(name[:-4]) for name in os.listdir(self.dir)
                         if name.endswith(".seg") and name[:-4].isdigit())
        for number in numbers:
            segment = self._recover(number)
            if segment.size:
                self._segments.append(segment)
                self._bytes += segment.size
                self._records += segment.records
            else:
                os.unlink(self._path(number))
        self._next = numbers[-1] + 1 if numbers else 1
        self._head = self._read_ack()
        self._forget_delivered()

    def _recover(self, number: int) -> Segment:
        """Count a segment's records; cut off a torn record at its end (a crash mid-write)."""
        with open(self._path(number), "rb") as fh:
            data = fh.read()
        segment, offset, good_end = Segment(number), 0, 0
        while offset < len(data):
            record = parse(data, offset)
            if record is None:
                offset = resync(data, offset)
                continue
            offset = good_end = record[1]
            segment.records += 1
        if good_end < len(data):  # no whole record after it: a torn tail. (Damage in the middle is
            os.truncate(self._path(number), good_end)  # skipped, and counted, when the reader gets there.)
            self._count_drop(Drop.SPOOL_CORRUPT, 1)
        segment.size = good_end
        return segment

    def _read_ack(self) -> Pos:
        first = self._first()
        try:
            with open(os.path.join(self.dir, "ACK"), encoding="ascii") as fh:
                seg, offset, index = (int(v) for v in fh.read().split())
        except (OSError, ValueError):
            return first  # none, or unreadable: send everything again (at least once)
        segment = next((s for s in self._segments if s.number == seg), None)
        if segment is None:
            return first if seg < first.seg or seg >= self._next else Pos(seg, 0, 0)
        if offset > segment.size or index > segment.records:
            return first
        return Pos(seg, offset, index)

    # --- writing ---------------------------------------------------------------------------
    def append(self, payload: bytes) -> None:
        """Queue one record; never blocks on the disk beyond a write to the page cache."""
        record = frame(payload)
        with self._lock:
            if self._closed or len(record) > self.max_bytes:
                self._count_drop(Drop.SPOOL_FULL, 1)
                return
            while self._segments and self._bytes + len(record) > self.max_bytes:
                self._drop_oldest()
            current = self._segments[-1] if self._segments and self._fd is not None else None
            try:
                if current is None or (current.size and current.size + len(record) > self.segment_bytes):
                    current = self._rotate()
                written = 0
                while written < len(record):
                    written += os.write(self._fd, record[written:])
            except OSError:  # the disk is full (or gone): the event is lost, and counted
                if current is not None and self._fd is not None:
                    try:
                        os.ftruncate(self._fd, current.size)  # no partial record left behind
                    except OSError:
                        pass
                self._count_drop(Drop.SPOOL_FULL, 1)
                return
            current.size += len(record)
            current.records += 1
            self._bytes += len(record)
            self._records += 1
            self._unsynced += 1
            if self._unsynced >= SYNC_RECORDS:
                self._synced.notify()
            self._data.notify_all()

    def _rotate(self) -> Segment:
        number, self._next = self._next, self._next + 1
        fd = os.open(self._path(number), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        if self._fd is not None:
            self._sealed.append(self._fd)
        self._fd = fd
        self._dir_dirty = True
        segment = Segment(number)
        self._segments.append(segment)
        if not self._segments[:-1]:
            self._head = Pos(number, 0, 0)
        return segment

    def _drop_oldest(self) -> None:
        """Make room: the oldest segment goes, and the events in it not yet delivered are counted. A
        batch out with the sender that lost records here is given up as a whole, unless a POST of it
        is under way: then its fate (delivered, or counted) is settled when the POST returns."""
        segment = self._segments[0]
        acked = self._head.index if self._head.seg == segment.number else 0
        leased = self._leased_in(segment)
        if segment.records - acked - leased:
            self._count_drop(Drop.SPOOL_FULL, segment.records - acked - leased)
        self._delete_oldest()
        self._head = self._first()
        if leased:
            self._lease.revoked = True
            if not self._lease.sending:
                self._give_up(self._lease)

    def _give_up(self, batch: Batch) -> None:
        """A revoked batch will not be sent (again): count it, and move past what is left of it."""
        self._count_drop(Drop.SPOOL_FULL, len(batch.payloads))
        if self._lease is batch:
            self._lease = None
        self._move_head(batch.end)

    def _leased_in(self, segment: Segment) -> int:
        lease = self._lease
        if lease is None or not lease.start.seg <= segment.number <= lease.end.seg:
            return 0
        start = lease.start.index if lease.start.seg == segment.number else 0
        end = lease.end.index if lease.end.seg == segment.number else segment.records
        return max(0, end - start)

    # --- reading ---------------------------------------------------------------------------
    def take(self, max_records: int, max_bytes: int, timeout: float | None = None) -> Batch | None:
        """Lease the oldest records not yet delivered, up to `max_records` and `max_bytes` (but at
        least one), waiting up to `timeout` for some; None when there are none or on interrupt()."""
        with self._lock:
            self._data.wait_for(lambda: self._pending()[0] or self._interrupted or self._closed, timeout)
            self._interrupted = False
            if self._closed:
                return None
            payloads, size, pos = [], 0, self._head
            while len(payloads) < max_records and size < max_bytes:
                segment = self._segment_at(pos)
                if segment is None:
                    break
                if segment.number != pos.seg:
                    pos = Pos(segment.number, 0, 0)
                data, record = self._record_at(segment, pos.offset, max_bytes - size)
                if record is None:
                    if payloads:
                        break  # the batch ends before the damage; the next take skips it
                    self._count_drop(Drop.SPOOL_CORRUPT, 1)
                    rest = self._read(segment, pos.offset, None)
                    self._head = pos = Pos(pos.seg, pos.offset + resync(rest, 0), pos.index)
                    self._save_ack()
                    continue
                at = 0
                while record is not None and len(payloads) < max_records:
                    payload, end = record
                    if payloads and size + len(payload) > max_bytes:
                        break
                    payloads.append(payload)
                    size += len(payload)
                    pos, at = Pos(pos.seg, pos.offset + end - at, pos.index + 1), end
                    record = parse(data, at)
                if record is not None:
                    break  # full
            self._forget_delivered()
            if not payloads:
                return None
            self._lease = Batch(payloads, self._head, pos)
            return self._lease

    def _segment_at(self, pos: Pos) -> Segment | None:
        """The segment holding the record at `pos`: its own, or the next when it is read to its end."""
        for segment in self._segments:
            if segment.number > pos.seg or (segment.number == pos.seg and pos.offset < segment.size):
                return segment
        return None

    def _record_at(self, segment: Segment, offset: int, budget: int):
        """Bytes from `offset` (about `budget` of them, or one whole record) and the record there."""
        data = self._read(segment, offset, budget)
        record = parse(data, 0)
        if record is None and len(data) >= HEADER.size:  # longer than the budget, or damaged
            magic, length, _ = HEADER.unpack_from(data)
            if magic == MAGIC and offset + HEADER.size + length <= segment.size:
                data = self._read(segment, offset, length)
                record = parse(data, 0)
        return data, record

    def _read(self, segment: Segment, offset: int, limit: int | None) -> bytes:
        size = segment.size - offset if limit is None else min(segment.size - offset, limit + HEADER.size)
        fd = os.open(self._path(segment.number), os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)

    def sending(self, batch: Batch) -> bool:
        """A POST of the batch begins. False: the cap dropped it meanwhile (counted): do not send it."""
        with self._lock:
            batch.sending = not batch.revoked and not self._closed
            return batch.sending

    def done(self, batch: Batch) -> None:
        """The receiver has the batch (or refused it for good): move past it."""
        with self._lock:
            batch.sending = False
            if self._lease is batch:
                self._lease = None
            self._move_head(batch.end)
            self._data.notify_all()

    def failed(self, batch: Batch) -> bool:
        """The receiver did not take the batch. True: send it again later. False: the cap dropped it
        from the spool during the POST, and its events are now counted as dropped."""
        with self._lock:
            batch.sending = False
            if batch.revoked:
                self._give_up(batch)
            return not batch.revoked

    def _move_head(self, pos: Pos) -> None:
        if not self._closed and pos > self._head:
            self._head = pos
            self._forget_delivered()
            self._save_ack()

    def _forget_delivered(self) -> None:
        """Delete segments wholly behind the head (never the one being written)."""
        while self._segments:
            oldest = self._segments[0]
            behind = self._head.seg > oldest.number or (self._head.seg == oldest.number and
                                                         self._head.offset >= oldest.size)
            if not behind or (len(self._segments) == 1 and self._fd is not None):
                break
            self._delete_oldest()
            if self._head.seg <= oldest.number:
                self._head = self._first()
        if self._segments and self._head.seg < self._segments[0].number:
            self._head = self._first()

    def _delete_oldest(self) -> None:
        segment = self._segments.pop(0)
        self._bytes -= segment.size
        self._records -= segment.records
        if not self._segments and self._fd is not None:  # it was the one being written
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self._path(segment.number))
        except FileNotFoundError:
            pass

    def _save_ack(self) -> None:
        # Not fsync'd, and a failure is let go: an ACK lost means events sent twice, which at least once allows.
        tmp = os.path.join(self.dir, "ACK.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, f"{self._head.seg} {self._head.offset} {self._head.index}\n".encode())
            finally:
                os.close(fd)
            os.replace(tmp, os.path.join(self.dir, "ACK"))
        except OSError:
            pass

    # --- state -----------------------------------------------------------------------------
    @property
    def pending(self) -> tuple[int, int]:
        """(events, bytes) waiting to be delivered."""
        with self._lock:
            return self._pending()

    def _pending(self) -> tuple[int, int]:
        if self._segments and self._head.seg == self._segments[0].number:
            return self._records - self._head.index, self._bytes - self._head.offset
        return self._records, self._bytes

    def _first(self) -> Pos:
        return Pos(self._segments[0].number, 0, 0) if self._segments else Pos(self._next, 0, 0)

    def _path(self, number: int) -> str:
        return os.path.join(self.dir, f"{number:016d}.seg")

    def wait_empty(self, timeout: float) -> bool:
        """Wait until every event was delivered (or dropped); False at the timeout."""
        with self._lock:
            return self._data.wait_for(lambda: not self._pending()[0] or self._closed, timeout)

    def interrupt(self) -> None:
        """Wake a take() that waits for records: it returns None."""
        with self._lock:
            self._interrupted = True
            self._data.notify_all()

    # --- durability ------------------------------------------------------------------------
    def _sync_loop(self) -> None:
        while True:
            with self._lock:
                self._synced.wait_for(lambda: self._unsynced >= SYNC_RECORDS or self._closed, SYNC_SECONDS)
                if self._closed:
                    return
                fds = self._claim_unsynced()
            _fsync(fds)

    def _claim_unsynced(self) -> list[int]:
        """Fds to fsync (ours to close): rotated segments, a duplicate of the current one, the directory."""
        fds, self._sealed = self._sealed, []
        try:
            if self._unsynced and self._fd is not None:
                fds.append(os.dup(self._fd))
            if self._dir_dirty:
                fds.append(os.open(self.dir, os.O_RDONLY | os.O_CLOEXEC))
                self._dir_dirty = False
        except OSError:  # out of file descriptors: the next round syncs what this one could not
            return fds
        self._unsynced = 0
        return fds

    def close(self) -> int:
        """Sync and release the spool; the number of events left in it for the next start."""
        with self._lock:
            if self._closed:
                return 0
            if self._lease is not None and self._lease.revoked:  # a POST under way of events no longer spooled
                self._give_up(self._lease)
            left = self._pending()[0]
            self._closed = True
            self._synced.notify_all()
            self._data.notify_all()
            fds = self._claim_unsynced()
            if self._fd is not None:
                fds.append(self._fd)
                self._fd = None
        self._syncer.join()
        _fsync(fds)
        os.close(self._lockfd)
        return left

    def __repr__(self) -> str:
        return f"Spool({self.dir!r})"


def _fsync(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.fsync(fd)
        except OSError:  # a segment dropped meanwhile, or a file system without fsync: nothing to keep
            pass
        finally:
            os.close(fd)
