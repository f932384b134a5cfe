"""Each service reads its own section of the shared YAML file; the environment wins; errors say where."""

from __future__ import annotations

import pytest

from vigil.services.alerter.config import AlerterConfigError, load_alerter_config
from vigil.services.detector.config import DetectorConfigError, load_detector_config

SHARED = """
cameras:
  - {id: gate, url: "rtsp://127.0.0.1:8554/gate"}
detector:
  max_lag_s: 4
  cameras:
    gate: {match: {cooldown_ms: 2000}}
alerter:
  policy: {cooldown_s: 30}
  cameras: {gate: "cổng chính"}
"""


def test_each_service_reads_its_own_section_of_the_shared_file(tmp_path):
    path = tmp_path / "vigil.yaml"
    path.write_text(SHARED, encoding="utf-8")
    detector = load_detector_config(path)
    assert detector.max_lag_s == 4 and detector.match_for("gate").cooldown_ms == 2000
    alerter = load_alerter_config(path)
    assert alerter.policy.cooldown_s == 30 and alerter.camera_name("gate") == "cổng chính"


def test_the_environment_wins_over_the_file(tmp_path, monkeypatch):
    path = tmp_path / "vigil.yaml"
    path.write_text(SHARED, encoding="utf-8")
    monkeypatch.setenv("VIGIL_DETECTOR_MAX_LAG_S", "7")
    monkeypatch.setenv("VIGIL_ALERTER_POLICY__COOLDOWN_S", "90")
    assert load_detector_config(path).max_lag_s == 7
    assert load_alerter_config(path).policy.cooldown_s == 90


def test_no_file_gives_the_defaults_and_a_missing_section_too(tmp_path):
    path = tmp_path / "vigil.yaml"
    path.write_text("cameras: []\n")
    assert load_detector_config(None) == load_detector_config(path)
    assert load_alerter_config(None) == load_alerter_config(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("detector:\n  max_lag_s: -1\n", r"vigil.yaml: detector: max_lag_s"),
        ("detector: [1, 2]\n", r"detector: expected a mapping of detector settings"),
        ("- just a list\n", r"expected a mapping with a `detector` section"),
        ("detector: {max_lag_s: [}\n", r"not valid YAML"),
        ("detector:\n  no_such_setting: 1\n", r"detector: no_such_setting"),
    ],
)
def test_a_bad_detector_file_names_the_file_the_section_and_the_field(tmp_path, text, expected):
    path = tmp_path / "vigil.yaml"
    path.write_text(text)
    with pytest.raises(DetectorConfigError, match=expected):
        load_detector_config(path)


def test_a_bad_alerter_value_and_a_missing_file_are_named(tmp_path, monkeypatch):
    path = tmp_path / "vigil.yaml"
    path.write_text("alerter:\n  policy: {cooldown_s: -5}\n")
    with pytest.raises(AlerterConfigError, match=r"vigil.yaml: alerter: policy.cooldown_s"):
        load_alerter_config(path)
    with pytest.raises(AlerterConfigError, match=r"cannot read alerter config .*absent.yaml"):
        load_alerter_config(tmp_path / "absent.yaml")
    monkeypatch.setenv("VIGIL_ALERTER_METRICS_PORT", "not a port")
    with pytest.raises(AlerterConfigError, match=r"alerter settings \(VIGIL_ALERTER_\*\): metrics_port"):
        load_alerter_config(None)
