import pytest

from detectors.sensitivity import Sensitivity
from sensor import config as config_mod
from sensor.errors import InputError


@pytest.mark.parametrize("types, level", [
    (["Birth date", "Gender"], "low"),
    (["Person", "Phone", "Email"], "medium"),
    (["Person", "Phone", "Email", "Gender"], "high"),
    (["Card"], "high"), (["SSN"], "high"), (["IBAN"], "high"), (["Driver license"], "high"), (["Location"], "high"),
    (["Email"], "medium"), (["Gender"], "low"),
])
def test_reference_combinations(types, level):
    assert Sensitivity().combine(types) == level


def test_distinct_types_count_once():
    assert Sensitivity().combine(["Email", "Email", "Email", "Email"]) == "medium"


def test_levels_and_weights_come_from_the_config_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sensitivity:\n  levels: {Gender: high}\n  weights: {medium: 4}\n  thresholds: {high: 12}\n")
    sens = config_mod.load(str(path)).sensitivity
    assert sens.level("Gender") == "high"
    assert sens.combine(["Gender"]) == "medium"  # 10 < 12, >= 3
    assert sens.combine(["Person", "Phone", "Email"]) == "high"  # 3 x 4 = 12


@pytest.mark.parametrize("text, message", [
    ("sensitivity:\n  levels: {Pet: high}\n", "unknown data type"),
    ("sensitivity:\n  levels: {Gender: extreme}\n", "must be one of"),
    ("colour: blue\n", "unknown setting"),
    ("min_confidence: 7\n", "min_confidence"),
    ("a: [\n", "invalid YAML"),
])
def test_bad_config_is_a_one_line_error(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        config_mod.load(str(path))
