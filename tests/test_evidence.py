"""Encrypted evidence (SPEC.md section 9), through the real command line: keygen, scan with
evidence.public_key, decrypt. Values open only with the private key, only where they were found."""
import base64
import json
import os
import stat

import pytest

from conftest import CORPUS, run_cli
from sensor import evidence
from sensor.events.mask import mask

TRICKY = CORPUS / "tricky.har"
# values the first entry of corpus/tricky.har carries (a SCIM user), by where the finding sits
KNOWN = {("Email", "$.emails[0].value"): "bjensen@example.com",
         ("Phone", "$.phoneNumbers[0].value"): "+1 (415) 555-0123",
         ("Person", "$.name.formatted"): "Ms. Barbara J Jensen III",
         ("Location", "$.addresses[0].streetAddress"): "100 Universal City Plaza"}
RAW = ["bjensen@example.com", "555-0123", "Barbara", "Universal City", "jenny.rosen@example.com", "Jenny Rosen"]


def _events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def _lines(events: list[dict]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    out = run_cli("keygen", "--out", d / "inv")
    assert out.returncode == 0, out.stderr
    config = d / "sensor.yaml"
    config.write_text("evidence:\n  public_key: inv.pub\n")  # relative to the configuration file
    return d / "inv.key", config


@pytest.fixture(scope="module")
def scanned(keys):
    out = run_cli("scan", TRICKY, "--format", "json", "--config", keys[1])
    assert out.returncode == 0, out.stderr
    return out


def _decrypt(key, events_text: str):
    return run_cli("decrypt", "--key", key, input=events_text)


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(keys, tmp_path):
    private, _ = keys
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in private.read_bytes()
    assert b"BEGIN PUBLIC KEY" in private.with_suffix(".pub").read_bytes()
    before = private.read_bytes()
    again = run_cli("keygen", "--out", private.with_suffix(""))
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "not overwritten" in again.stderr
    assert private.read_bytes() == before


def test_scan_then_decrypt_recovers_the_raw_values(keys, scanned):
    events = _events(scanned.stdout)
    assert events and all("evidence" in f for e in events for f in e["findings"])
    out = _decrypt(keys[0], scanned.stdout)
    assert out.returncode == 0, out.stderr
    opened = _events(out.stdout)
    assert len(opened) == len(events)
    first = {(f["type"], f["path"]): f["value"] for f in opened[0]["findings"]}
    assert {k: first.get(k) for k in KNOWN} == KNOWN
    for f in (f for e in opened for f in e["findings"]):  # each value fits its masked sample
        assert mask(f["value"]) == f["sample"]
    assert out.stderr.strip().endswith(f"{sum(len(e['findings']) for e in events)} values opened, 0 failures")


def test_without_the_private_key_nothing_is_readable(keys, scanned, tmp_path):
    for raw in RAW:
        assert raw not in scanned.stdout and raw not in scanned.stderr
    other = run_cli("keygen", "--out", tmp_path / "other")
    assert other.returncode == 0
    out = _decrypt(tmp_path / "other.key", scanned.stdout)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    n = sum(len(e["findings"]) for e in _events(scanned.stdout))
    lines = out.stderr.splitlines()
    assert len(lines) == n + 1  # one line per finding that did not open, and the count
    assert all("cannot open" in line for line in lines[:-1]) and lines[-1].endswith(f"0 values opened, {n} failures")
    assert not any("value" in f for e in _events(out.stdout) for f in e["findings"])
    for raw in RAW:
        assert raw not in out.stdout and raw not in out.stderr


def test_a_tampered_blob_does_not_open_and_the_rest_still_do(keys, scanned):
    events = _events(scanned.stdout)
    blob = events[0]["findings"][0]["evidence"]
    events[0]["findings"][0]["evidence"] = blob[:-3] + ("A" if blob[-3] != "A" else "B") + blob[-2:]
    out = _decrypt(keys[0], _lines(events))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (complaint, summary) = out.stderr.splitlines()
    assert "stdin line 1: finding 0 (" in complaint and "cannot open" in complaint
    opened = _events(out.stdout)
    assert "value" not in opened[0]["findings"][0]
    assert all("value" in f for e in opened for f in e["findings"][int(e is opened[0]):])


def test_a_blob_moved_to_another_finding_or_event_does_not_open(keys, scanned):
    events = _events(scanned.stdout)
    a, b = events[0]["findings"][:2]
    a["evidence"], b["evidence"] = b["evidence"], a["evidence"]  # swapped within the event
    twin = json.loads(json.dumps(events[0]))
    twin["id"] = "00000000-0000-4000-8000-000000000000"  # the same findings, claimed by another event
    out = _decrypt(keys[0], _lines([events[0], twin]))
    assert out.returncode == 2
    failures = [l for l in out.stderr.splitlines() if "cannot open" in l]
    n = len(events[0]["findings"])
    assert len(failures) == 2 + n  # the two swapped, and every finding of the impostor
    assert failures[0].startswith("pii-sensor: stdin line 1: finding 0 (")


def test_lines_that_are_not_events_are_counted_and_the_rest_decrypted(keys, scanned):
    first = scanned.stdout.splitlines()[0]
    out = _decrypt(keys[0], f"not json\n{first}\n[1, 2]\n\xff\n")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert [l for l in out.stderr.splitlines() if "not a JSON event" in l] == [
        "pii-sensor: stdin line 1: not a JSON event; skipped", "pii-sensor: stdin line 3: not a JSON event; skipped",
        "pii-sensor: stdin line 4: not a JSON event; skipped"]
    assert len(_events(out.stdout)) == 1 and "bjensen@example.com" in out.stdout


def test_unusable_keys_are_one_line_and_exit_2(keys, scanned, tmp_path):
    private, config = keys
    cases = [("decrypt", "--key", tmp_path / "missing.key"),
             ("decrypt", "--key", private.with_suffix(".pub")),  # the public key cannot open anything
             ("decrypt", "--key", config)]
    for args in cases:
        out = run_cli(*args, input=scanned.stdout)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
        assert out.stdout == ""
    for key in (tmp_path / "missing.pub", private):  # no key, and the private key on the sensor: refused
        bad = tmp_path / "bad.yaml"
        bad.write_text(f"evidence:\n  public_key: {key}\n")
        out = run_cli("scan", TRICKY, "--format", "json", "--config", bad)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "evidence.public_key" in out.stderr
        assert out.stdout == ""
    assert "is a private key" in out.stderr


def test_without_evidence_configured_events_are_unchanged(scanned):
    plain = run_cli("scan", TRICKY, "--format", "json")
    assert plain.returncode == 0
    strip = lambda events: [{**e, "id": None} for e in events]  # noqa: E731
    with_evidence = [{**e, "findings": [{k: v for k, v in f.items() if k != "evidence"} for f in e["findings"]]}
                     for e in _events(scanned.stdout)]
    assert "evidence" not in plain.stdout
    assert strip(_events(plain.stdout)) == strip(with_evidence)


def test_workers_seal_with_the_key_from_the_configuration(keys):
    labeled = str(CORPUS / "labeled.har")  # 1,200 exchanges: several batches, so worker processes build the events
    one = run_cli("scan", labeled, "--format", "json", "--workers", "0", "--config", keys[1])
    two = run_cli("scan", labeled, "--format", "json", "--workers", "2", "--config", keys[1])
    assert one.returncode == two.returncode == 0
    opened = []
    for scan in (one, two):
        out = _decrypt(keys[0], scan.stdout)
        assert out.returncode == 0 and out.stderr.endswith(" 0 failures\n"), out.stderr
        opened.append([[(f["path"], f["value"]) for f in e["findings"]] for e in _events(out.stdout)])
    assert opened[0] == opened[1] and sum(map(len, opened[0])) > 1000


# --- the format itself ----------------------------------------------------------------

def _pair():
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    private = X25519PrivateKey.generate()
    return private, private.public_key().public_bytes_raw()


def test_blob_length_says_the_value_length_only_to_within_a_bucket():
    private, public = _pair()
    ad = evidence.context("e", "Email", "request.body", "$.email")
    short, long_, longer = evidence.Sealer(public).seal([("a", ad), ("x" * (evidence.PAD - 1), ad), ("x" * evidence.PAD, ad)])
    assert len(short) == len(long_) < len(longer)
    opener = evidence.Opener(private)
    assert [opener.open(b, ad) for b in (short, long_, longer)] == ["a", "x" * (evidence.PAD - 1), "x" * evidence.PAD]


def test_every_value_gets_its_own_nonce_and_keys_are_renewed(monkeypatch):
    private, public = _pair()
    sealer = evidence.Sealer(public)
    ad = evidence.context("e", "Email", "request.body", "$.email")
    blobs = [b for _ in range(3000) for b in sealer.seal([("v", ad)] * 3)]
    heads = [base64.urlsafe_b64decode(b + "=" * (-len(b) % 4))[:45] for b in blobs]  # version, ephemeral key, nonce
    assert len(set(heads)) == len(heads)
    assert len({h[1:33] for h in heads}) >= 9000 // evidence.KEY_USES  # KEY_USES bounds a key's life
    monkeypatch.setattr(evidence, "KEY_SECONDS", 0.0)  # each key expires as soon as it is made
    quick = evidence.Sealer(public)
    assert quick.seal([("v", ad)])[0][:44] != quick.seal([("v", ad)])[0][:44]  # version and ephemeral key
    opener = evidence.Opener(private)
    assert {opener.open(b, ad) for b in blobs} == {"v"}


def test_context_is_unambiguous_and_nothing_leaks_in_reprs_or_errors():
    assert evidence.context("a", "b,1:c", "d", "e") != evidence.context("a", "b", "c", "d,1:e")
    private, public = _pair()
    sealer, opener = evidence.Sealer(public), evidence.Opener(private)
    (blob,) = sealer.seal([("jane.doe@example.com", evidence.context("e", "Email", "request.body", "$.x"))])
    with pytest.raises(evidence.EvidenceError) as e:
        opener.open(blob, evidence.context("e", "Email", "request.body", "$.y"))
    assert "jane" not in str(e.value) and "jane" not in repr(sealer) + repr(opener)
    for bad in ("", "!!!", blob[:20], "Ag" + blob[2:]):
        with pytest.raises(evidence.EvidenceError):
            opener.open(bad, b"")


def test_the_chart_ships_the_public_key_read_only_and_refuses_a_private_one(keys, tmp_path):
    import yaml

    from sensor import config as config_mod
    from test_deploy import render

    private, _ = keys
    public = private.with_suffix(".pub").read_text()
    for mode in ("daemonset", "sidecar"):
        docs = render({"mode": mode, "evidence": {"publicKey": public}})
        data = next(d for d in docs if d["kind"] == "ConfigMap" and "config.yaml" in d["data"])["data"]
        assert yaml.safe_load(data["config.yaml"])["evidence"] == {"public_key": "evidence.pub"}
        (tmp_path / "config.yaml").write_text(data["config.yaml"])  # as mounted: /etc/pii-sensor/{config.yaml,evidence.pub}
        (tmp_path / "evidence.pub").write_text(data["evidence.pub"])
        assert config_mod.load(str(tmp_path / "config.yaml")).evidence_key == evidence.load_public_key(str(private.with_suffix(".pub")))
        pod = next(d for d in docs if d["kind"] in ("DaemonSet", "Deployment"))["spec"]["template"]["spec"]
        mounts = [m for c in pod["containers"] for m in c.get("volumeMounts", []) if m["mountPath"] == "/etc/pii-sensor"]
        assert mounts and all(m["readOnly"] for m in mounts)
    assert "evidence" not in yaml.safe_load(next(d for d in render({}) if d["kind"] == "ConfigMap")["data"]["config.yaml"])
    with pytest.raises(Exception, match="evidence.publicKey holds a private key"):
        render({"evidence": {"publicKey": private.read_text()}})
