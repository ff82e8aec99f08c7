"""The webhook spool (sensor/outputs/spool.py) on a real directory: framing, order across restarts,
torn and damaged records, the size cap with exact counts, one process per spool."""
import os
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sensor import config as config_mod
from sensor.errors import InputError
from sensor.outputs.spool import HEADER, MAGIC, Spool, frame, parse

ROOT = Path(__file__).resolve().parent.parent


class Drops(Counter):
    def __call__(self, reason, n=1):
        self[str(reason)] += n


def record(i: int, pad: int = 40) -> bytes:
    return b'{"id":"%d","x":"%s","name":"J\xc3\xbcrgen"}' % (i, b"y" * pad)


def drain(spool: Spool, max_records=1000, max_bytes=1 << 20) -> list[bytes]:
    """Everything deliverable, delivered."""
    out = []
    while (batch := spool.take(max_records, max_bytes, timeout=0)) is not None:
        out += batch.payloads
        spool.done(batch)
    return out


def segments(directory) -> list[str]:
    return sorted(p for p in os.listdir(directory) if p.endswith(".seg"))


def test_a_record_is_magic_length_crc_payload_and_a_changed_byte_is_caught():
    payload = record(1)
    framed = frame(payload)
    assert framed.startswith(MAGIC) and len(framed) == HEADER.size + len(payload)
    assert parse(framed, 0) == (payload, len(framed))
    for i in range(len(framed)):  # any one byte changed: not a record
        damaged = bytearray(framed)
        damaged[i] ^= 0x01
        assert parse(bytes(damaged), 0) is None
    assert parse(framed[:-1], 0) is None  # cut short


def test_records_come_back_in_order_in_bounded_batches(tmp_path):
    drops = Drops()
    spool = Spool(str(tmp_path / "s"), 1 << 20, drops)
    for i in range(250):
        spool.append(record(i))
    assert spool.pending == (250, sum(len(frame(record(i))) for i in range(250)))
    batch = spool.take(100, 1 << 20, timeout=0)
    assert batch.payloads == [record(i) for i in range(100)]
    spool.done(batch)
    batch = spool.take(1000, 10 * len(record(100)), timeout=0)  # the byte bound
    assert batch.payloads == [record(i) for i in range(100, 110)]
    spool.done(batch)
    assert drain(spool) == [record(i) for i in range(110, 250)]
    assert spool.pending == (0, 0) and spool.take(10, 1 << 20, timeout=0) is None
    big = b"z" * 5000  # longer than a batch's bytes: sent alone
    spool.append(big)
    assert spool.take(10, 100, timeout=0).payloads == [big]
    spool.close()
    assert drops == {}


def test_order_and_acknowledgements_survive_a_restart(tmp_path):
    directory = str(tmp_path / "s")
    spool = Spool(directory, 1 << 20)
    for i in range(10):
        spool.append(record(i))
    spool.done(spool.take(4, 1 << 20, timeout=0))  # delivered
    spool.take(3, 1 << 20, timeout=0)  # out with the sender, never confirmed: sent again
    assert spool.close() == 6
    spool = Spool(directory, 1 << 20)
    assert spool.pending[0] == 6
    spool.append(record(10))
    assert drain(spool, max_records=2) == [record(i) for i in range(4, 11)]
    spool.close()
    spool = Spool(directory, 1 << 20)  # everything delivered: nothing comes back, no segment is left
    assert spool.pending == (0, 0) and drain(spool) == [] and segments(directory) == []
    spool.close()


def test_a_torn_last_record_is_cut_off_and_counted_once(tmp_path):
    directory = str(tmp_path / "s")
    spool = Spool(directory, 1 << 20)
    for i in range(5):
        spool.append(record(i))
    spool.close()
    last = os.path.join(directory, segments(directory)[-1])
    size = os.path.getsize(last)
    with open(last, "ab") as fh:  # a crash in the middle of writing the sixth
        fh.write(frame(record(5))[:30])
    drops = Drops()
    spool = Spool(directory, 1 << 20, drops)
    assert drops == {"spool_corrupt": 1} and os.path.getsize(last) == size
    spool.append(record(6))
    assert drain(spool) == [record(0), record(1), record(2), record(3), record(4), record(6)]
    spool.close()
    Spool(directory, 1 << 20, drops).close()
    assert drops == {"spool_corrupt": 1}


def test_a_damaged_record_in_the_middle_is_skipped_and_counted_once(tmp_path):
    directory = str(tmp_path / "s")
    spool = Spool(directory, 1 << 20)
    for i in range(5):
        spool.append(record(i))
    spool.close()
    path = os.path.join(directory, segments(directory)[0])
    data = bytearray(Path(path).read_bytes())
    data[2 * len(frame(record(0))) + HEADER.size + 3] ^= 0xFF  # a byte of the third record's payload
    Path(path).write_bytes(bytes(data))
    drops = Drops()
    spool = Spool(directory, 1 << 20, drops)
    assert spool.pending[0] == 4
    batch = spool.take(10, 1 << 20, timeout=0)
    assert batch.payloads == [record(0), record(1)]  # a batch ends before the damage
    spool.close()  # not confirmed: the next run sends them again, and counts the damage once
    spool = Spool(directory, 1 << 20, drops)
    assert drain(spool) == [record(0), record(1), record(3), record(4)]
    spool.close()
    assert drops == {"spool_corrupt": 1}


def test_the_cap_drops_the_oldest_and_counts_exactly_what_is_missing(tmp_path):
    directory = str(tmp_path / "s")
    drops = Drops()
    spool = Spool(directory, 64 << 10, drops)
    size = len(frame(record(0)))
    for i in range(2000):
        spool.append(record(i))
        assert sum(os.path.getsize(os.path.join(directory, s)) for s in segments(directory)) <= 64 << 10
    delivered = drain(spool)
    assert 0 < len(delivered) <= (64 << 10) // size
    assert delivered == [record(i) for i in range(2000 - len(delivered), 2000)]  # the newest, in order
    assert drops == {"spool_full": 2000 - len(delivered)}
    spool.close()


def test_a_batch_out_with_the_sender_when_its_records_are_dropped_is_counted_once(tmp_path):
    drops = Drops()
    spool = Spool(str(tmp_path / "s"), 64 << 10, drops)
    for i in range(100):
        spool.append(record(i))
    waiting = spool.take(50, 1 << 20, timeout=0)  # between retries: given up, and counted, when dropped
    written, delivered = 100, []
    while not waiting.revoked:
        spool.append(record(written))
        written += 1
    assert drops["spool_full"] >= len(waiting.payloads)
    assert not spool.sending(waiting)  # it is not sent any more
    sending = spool.take(50, 1 << 20, timeout=0)
    assert spool.sending(sending)  # a POST under way: settled when it returns
    while not sending.revoked:
        spool.append(record(written))
        written += 1
    before = drops["spool_full"]
    spool.done(sending)  # the POST succeeded after all: delivered, not dropped
    delivered += sending.payloads
    assert drops["spool_full"] == before
    delivered += drain(spool)
    numbers = [int(p.split(b'"')[3]) for p in delivered]
    assert numbers == sorted(set(numbers))  # in order, none twice
    assert len(delivered) + drops["spool_full"] == written

    again = Drops()
    spool2 = Spool(str(tmp_path / "t"), 64 << 10, again)
    for i in range(100):
        spool2.append(record(i))
    failing = spool2.take(50, 1 << 20, timeout=0)
    assert spool2.sending(failing)
    n = 100
    while not failing.revoked:
        spool2.append(record(n))
        n += 1
    assert not spool2.failed(failing)  # the POST failed: now the batch is counted, once
    assert len(drain(spool2)) + again["spool_full"] == n
    spool.close()
    spool2.close()


def test_one_process_per_spool(tmp_path):
    directory = str(tmp_path / "s")
    spool = Spool(directory, 1 << 20)
    with pytest.raises(InputError, match="in use by another process"):
        Spool(directory, 1 << 20)
    code = f"from sensor.outputs.spool import Spool; Spool({directory!r})"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert other.returncode != 0 and "in use by another process" in other.stderr
    spool.close()
    assert subprocess.run([sys.executable, "-c", code], timeout=60, cwd=ROOT).returncode == 0  # released


def test_the_spool_is_private_to_the_sensor(tmp_path):
    directory = str(tmp_path / "s")
    spool = Spool(directory, 1 << 20)
    spool.append(record(1))
    spool.done(spool.take(1, 1 << 20, timeout=0))
    spool.close()
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert all(stat.S_IMODE(os.stat(os.path.join(directory, f)).st_mode) == 0o600 for f in os.listdir(directory))


def test_spool_settings(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("events:\n  spool_dir: spool\n  spool_max_bytes: 1048576\n  webhook_batch: 1\n")
    config = config_mod.load(str(path))
    assert config.spool_dir == str(tmp_path / "spool")  # relative to the configuration file
    assert config.spool_max_bytes == 1 << 20 and config.webhook_batch == 1
    path.write_text("events:\n  spool_dir: null\n")
    assert config_mod.load(str(path)).spool_dir is None
    path.write_text("events:\n  spool_max_bytes: 1000\n")
    with pytest.raises(InputError, match="spool_max_bytes must be a number >= 65536"):
        config_mod.load(str(path))


def test_a_full_disk_loses_the_new_event_counted_and_leaves_no_partial_record(tmp_path):
    # A file size limit (RLIMIT_FSIZE) makes writes fail as a full disk does, in a process of its own.
    code = f"""
import resource, signal, sys
from collections import Counter
from sensor.outputs.spool import Spool
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
drops = Counter()
spool = Spool({str(tmp_path / "s")!r}, 1 << 20, lambda reason, n=1: drops.update({{str(reason): n}}))
for i in range(100):
    spool.append(b'{{"id":"%d","x":"%s"}}' % (i, b"y" * 50))
print(spool.pending[0], drops["spool_full"], len(spool.take(1000, 1 << 20, timeout=0).payloads))
spool.close()
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    waiting, lost, readable = map(int, out.stdout.split())
    assert 0 < waiting < 100 and waiting + lost == 100 and readable == waiting
    Spool(str(tmp_path / "s"), 1 << 20, drops := Drops()).close()
    assert drops == {}  # no torn record was left behind
