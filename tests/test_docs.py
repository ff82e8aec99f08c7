"""The documentation users read names every drop reason, skip reason and setting the code has."""
from helpers import ROOT
from sensor import config as config_mod
from sensor.model import DROP_HELP, SKIP_HELP, Drop, Skip

README = (ROOT / "README.md").read_text()
EXAMPLE = ROOT / "config.example.yaml"


def test_every_drop_and_skip_reason_is_explained_in_the_readme():
    assert set(DROP_HELP) == set(Drop) and set(SKIP_HELP) == set(Skip)
    assert not set(Drop) & set(Skip)  # a reason is loss or it is not
    missing = [r.value for r in [*Drop, *Skip] if f"| `{r.value}` |" not in README]
    assert missing == []


def test_the_example_configuration_documents_every_setting_with_its_default():
    text = EXAMPLE.read_text()
    example, defaults = config_mod.load(str(EXAMPLE)), config_mod.Config()
    for section, keys in config_mod._SECTIONS.items():
        assert f"\n{section}:" in text
        for key, (attr, _, _) in keys.items():
            assert f"  {key}:" in text, f"{section}.{key} is not in config.example.yaml"
            if attr not in ("webhook_secret", "workers"):  # a placeholder, and one per core of the machine
                assert getattr(example, attr) == getattr(defaults, attr), f"{section}.{key} differs from the default"


def test_bad_limits_are_one_line_errors(tmp_path):
    from conftest import run_cli

    path = tmp_path / "c.yaml"
    path.write_text("capture:\n  max_connections: 0\n")
    r = run_cli("scan", "--config", path, ROOT / "corpus" / "tricky.har")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "capture.max_connections must be a number >= 1" in r.stderr
