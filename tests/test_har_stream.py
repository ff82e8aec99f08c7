"""HAR files are streamed: strings are cut beyond what a body may hold, so one huge body costs
no memory, and the JSON the parser sees stays valid whatever the cut falls on."""
import io
import json
import random
import subprocess
import sys

import pytest

from conftest import ROOT, har_doc, har_entry
from sensor.sources import capped

ALPHABET = ["a", "é", '"', "\\", "\n", "€", "x", "\U0001F600", " ", "/"]


def _length(text: str, ascii_only: bool) -> int:
    return len(json.dumps(text, ensure_ascii=ascii_only).encode()) - 2


@pytest.mark.parametrize("ascii_only", [True, False])
def test_cut_strings_stay_valid_json_and_only_long_strings_are_cut(monkeypatch, ascii_only):
    monkeypatch.setattr(capped, "CHUNK", 16)  # tiny chunks: every escape and character meets a boundary
    rng = random.Random(7)
    cut = whole = 0
    for _ in range(1500):
        doc = {"k": ["".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 300))) for _ in range(4)],
               "n": rng.random()}
        stream = capped.CappedStrings(io.BytesIO(json.dumps(doc, ensure_ascii=ascii_only).encode()), 200)
        got = json.loads(stream.read())  # never invalid
        assert got["n"] == doc["n"]
        for before, after in zip(doc["k"], got["k"]):
            assert before.startswith(after)
            if _length(before, ascii_only) <= stream.kept:
                assert after == before  # only strings longer than the cap are cut ...
                whole += len(before) > 30
            elif after != before:
                assert _length(after, ascii_only) >= stream.kept  # ... and to about the cap
        cut += stream.cut
    assert cut > 100 and whole > 100  # both cases met


def test_a_huge_body_is_counted_too_large_in_bounded_memory(tmp_path):
    huge = har_entry(body={"blob": "A" * (200 << 20), "email": "jane.doe@example.com"})
    after = har_entry(url="http://users.internal/v1/after", body={"email": "ana.lima@example.org"})
    path = tmp_path / "huge.har"
    path.write_text(json.dumps(har_doc([huge, after])))
    # a process of its own around the scan, so that its peak memory is the scan's alone
    measure = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024); "
               "print(r.stderr, end=''); print(r.stdout, end='', file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "sensor", "scan", str(path),
                             "--format", "json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    first, summary = result.stdout.split("\n", 1)
    status, peak_mb = map(int, first.split())
    assert status == 0, summary
    assert "body_too_large=1" in summary
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert [e["request"]["path"] for e in events] == ["/v1/after"]  # the entry after it is read as usual
    assert peak_mb < 150  # the 200 MB string was never held
