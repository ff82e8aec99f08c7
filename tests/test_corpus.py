"""Detection quality on the labeled corpora, and the generator's determinism."""
import json
import subprocess
import sys

import pytest

from conftest import CORPUS, ROOT
from sensor.commands import eval as evaluate
from sensor.engine import Sensor


@pytest.fixture(scope="module")
def scores():
    return {name: evaluate.score(Sensor(), str(CORPUS / name)) for name in ("labeled.har", "tricky.har")}


def test_generated_corpus_is_large_and_varied():
    doc = json.loads((CORPUS / "labeled.har").read_text())
    entries = doc["log"]["entries"]
    assert len(entries) >= 1000
    types = {l["type"] for e in entries for l in e.get("_pii_labels", [])}
    assert len(types) == 11
    content_types = {h["value"].split(";")[0] for e in entries for h in e["request"]["headers"] if h["name"] == "Content-Type"}
    assert {"application/json", "application/x-www-form-urlencoded", "multipart/form-data", "text/xml", "text/plain"} <= content_types
    assert sum(1 for e in entries if not e.get("_pii_labels")) >= 100  # exchanges without PII


@pytest.mark.parametrize("name", ["labeled.har", "tricky.har"])
def test_micro_f1(scores, name):
    assert scores[name]["micro"]["f1"] >= 0.97


@pytest.mark.parametrize("name", ["labeled.har", "tricky.har"])
def test_every_type_f1(scores, name):
    low = {t: m["f1"] for t, m in scores[name]["types"].items() if m["f1"] < 0.93}
    assert low == {}


def test_generator_is_deterministic(tmp_path):
    out = tmp_path / "again.har"
    subprocess.run([sys.executable, str(ROOT / "corpus" / "generate.py"), "--out", str(out)], check=True, capture_output=True)
    assert out.read_bytes() == (CORPUS / "labeled.har").read_bytes()
