"""FeatureWindow frame by frame: padding and mask, z None during warm-up, the gap and z-change
features, out-of-order frames, and snapshots that restore an identical window."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vigil.pipelines.temporal import (
    FEATURE_NAMES,
    GAP_CAP_S,
    GATE_MAX,
    GATE_SCALE,
    STATE_VERSION,
    TEMPORAL_WINDOW,
    Z_SCALE,
    FeatureWindow,
    sliding_windows,
    stream_rows,
)

COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}


def col(matrix: np.ndarray, name: str) -> np.ndarray:
    return matrix[:, COLUMN[name]]


def test_the_interface_constants():
    assert TEMPORAL_WINDOW == 16
    assert FEATURE_NAMES == ("calibrated", "z", "dz", "gap", "z_known", "present", "gate")


def test_an_empty_window_is_all_padding():
    matrix = FeatureWindow().matrix()
    assert matrix.shape == (TEMPORAL_WINDOW, len(FEATURE_NAMES)) and matrix.dtype == np.float32
    assert not matrix.any()


def test_frames_fill_from_the_right_oldest_first_with_the_mask_set():
    window = FeatureWindow(window=4)
    window.push(1_000, 0.5, 0.1)
    matrix = window.matrix()
    assert col(matrix, "present").tolist() == [0, 0, 0, 1]
    assert not matrix[:3].any()  # padding rows are zeros in every feature
    window.push(2_000, 1.0, 0.2)
    window.push(3_000, 2.0, 0.3)
    matrix = window.matrix()
    assert col(matrix, "present").tolist() == [0, 1, 1, 1]
    assert np.allclose(col(matrix, "calibrated"), [0, 0.1, 0.2, 0.3])
    assert np.allclose(col(matrix, "z"), [0, 0.5 / Z_SCALE, 1.0 / Z_SCALE, 2.0 / Z_SCALE])
    window.push(4_000, 3.0, 0.4)
    window.push(5_000, 4.0, 0.5)  # the oldest frame falls out
    matrix = window.matrix()
    assert col(matrix, "present").tolist() == [1, 1, 1, 1]
    assert np.allclose(col(matrix, "calibrated"), [0.2, 0.3, 0.4, 0.5])
    assert len(window) == 4


def test_z_none_during_warm_up_is_zero_with_its_flag_off():
    window = FeatureWindow(window=3)
    window.push(0, None, 0.0)
    window.push(1_000, None, 0.0)
    window.push(2_000, 2.5, 0.2)
    matrix = window.matrix()
    assert col(matrix, "z_known").tolist() == [0, 0, 1]
    assert col(matrix, "present").tolist() == [1, 1, 1]
    assert np.allclose(col(matrix, "z"), [0, 0, 2.5 / Z_SCALE])
    # no change can be measured from a frame that had no z
    assert col(matrix, "dz").tolist() == [0, 0, 0]


def test_z_is_clipped_and_its_change_measured_between_clipped_values():
    window = FeatureWindow(window=3)
    window.push(0, -40.0, 0.0)
    window.push(1_000, 50.0, 1.0)
    window.push(2_000, 4.0, 0.7)
    matrix = window.matrix()
    assert np.allclose(col(matrix, "z"), [-1.0, 2.0, 0.8])
    assert np.allclose(col(matrix, "dz"), [0.0, 3.0, -1.2])


def test_non_finite_inputs_are_treated_as_unknown_not_propagated():
    window = FeatureWindow(window=2)
    window.push(0, float("nan"), float("nan"))
    window.push(1_000, float("inf"), 0.3)
    matrix = window.matrix()
    assert np.isfinite(matrix).all()
    assert col(matrix, "z_known").tolist() == [0, 0] and col(matrix, "calibrated").tolist()[0] == 0.0


def test_the_gap_feature_is_seconds_since_the_previous_frame_capped():
    window = FeatureWindow(window=4)
    window.push(10_000, 0.0, 0.0)  # first frame: no previous one
    window.push(10_500, 0.0, 0.0)
    window.push(12_500, 0.0, 0.0)
    window.push(60_000, 0.0, 0.0)  # a stalled camera: capped
    assert np.allclose(col(window.matrix(), "gap"), [0.0, 0.5 / GAP_CAP_S, 2.0 / GAP_CAP_S, 1.0])


def test_frames_not_newer_than_the_last_are_ignored():
    window = FeatureWindow(window=3)
    assert window.push(2_000, 1.0, 0.1)
    before = window.matrix()
    assert not window.push(2_000, 9.0, 0.9)  # a duplicate
    assert not window.push(1_000, 9.0, 0.9)  # a straggler
    assert np.array_equal(window.matrix(), before)
    assert window.ignored_out_of_order == 2


def test_a_snapshot_restores_an_identical_window_and_it_goes_on_identically():
    rng = np.random.default_rng(7)
    window = FeatureWindow()
    ts = 1_700_000_000_000
    for i in range(23):
        ts += int(rng.integers(400, 3_000))
        window.push(ts, None if i < 3 else float(rng.normal(0, 3)), float(rng.uniform()))
    state = json.loads(json.dumps(window.to_state()))  # through JSON, as the detector stores it
    restored = FeatureWindow.from_state(state)
    assert np.array_equal(restored.matrix(), window.matrix())
    for step in range(5):
        ts += 1_000
        z = float(step)
        window.push(ts, z, 0.5)
        restored.push(ts, z, 0.5)
        assert np.array_equal(restored.matrix(), window.matrix())


def test_a_snapshot_of_a_partly_filled_window_keeps_its_padding():
    window = FeatureWindow()
    window.push(5_000, 1.5, 0.05)
    restored = FeatureWindow.from_state(window.to_state())
    assert np.array_equal(restored.matrix(), window.matrix())
    assert col(restored.matrix(), "present").sum() == 1


@pytest.mark.parametrize(
    "state",
    [
        {},
        {
            "version": 99,
            "window": 16,
            "features": list(FEATURE_NAMES),
            "rows": [],
            "last_ts_ms": None,
            "last_z": None,
        },
        {"version": 1, "window": 16, "features": ["other"], "rows": [], "last_ts_ms": None, "last_z": None},
        {  # version 1 had no gate column
            "version": 1,
            "window": 16,
            "features": list(FEATURE_NAMES),
            "rows": [],
            "last_ts_ms": None,
            "last_z": None,
        },
        {
            "version": STATE_VERSION,
            "window": 2,
            "features": list(FEATURE_NAMES),
            "rows": [[0] * 7] * 3,
            "last_ts_ms": 1,
            "last_z": None,
        },
        {
            "version": STATE_VERSION,
            "window": 16,
            "features": list(FEATURE_NAMES),
            "rows": [[0, 1]],
            "last_ts_ms": 1,
            "last_z": None,
        },
    ],
)
def test_a_bad_snapshot_is_a_clear_error(state):
    with pytest.raises(ValueError, match="FeatureWindow snapshot"):
        FeatureWindow.from_state(state)


def test_the_gate_margin_is_scaled_and_clipped_with_unknown_as_zero_and_no_rival_as_the_maximum():
    window = FeatureWindow(window=6)
    margins = [0.5 * GATE_SCALE, -0.5 * GATE_SCALE, 10.0, -10.0, math.inf, None]
    for i, margin in enumerate(margins):
        window.push(1_000 * (i + 1), 1.0, 0.2, margin)
    assert np.allclose(col(window.matrix(), "gate"), [0.5, -0.5, 1.0, -1.0, GATE_MAX / GATE_SCALE, 0.0])
    assert np.isfinite(window.matrix()).all()


def test_a_version_1_snapshot_restores_with_the_gate_unknown():
    rows = [[0.1, 0.2, 0.0, 0.1, 1.0, 1.0], [0.3, 0.4, 0.04, 0.1, 1.0, 1.0]]
    state = {
        "version": 1,
        "window": 4,
        "features": ["calibrated", "z", "dz", "gap", "z_known", "present"],
        "rows": rows,
        "last_ts_ms": 2_000,
        "last_z": 2.0,
    }
    restored = FeatureWindow.from_state(state)
    matrix = restored.matrix()
    assert np.allclose(matrix[2:, :6], rows) and not matrix[:, COLUMN["gate"]].any()
    assert restored.push(3_000, 2.5, 0.5, 0.05)
    assert np.isclose(col(restored.matrix(), "gate")[-1], 0.05 / GATE_SCALE)
    assert np.isclose(col(restored.matrix(), "dz")[-1], 0.5 / Z_SCALE)  # carried on from last_z


def test_the_training_helpers_build_exactly_what_the_window_gives_frame_by_frame():
    rng = np.random.default_rng(3)
    ts = np.cumsum(rng.integers(300, 4_000, 40))
    z = [None if i < 4 else float(rng.normal(0, 4)) for i in range(40)]
    calibrated = rng.uniform(size=40).tolist()
    gates = [None if i < 2 else float(rng.normal(0, 0.08)) for i in range(40)]
    window = FeatureWindow()
    expected = []
    for t, zi, c, g in zip(ts, z, calibrated, gates, strict=True):
        window.push(int(t), zi, c, g)
        expected.append(window.matrix())
    windows = sliding_windows(stream_rows(ts, z, calibrated, gates))
    assert windows.shape == (40, TEMPORAL_WINDOW, len(FEATURE_NAMES))
    assert np.array_equal(windows, np.stack(expected))


def test_a_window_size_below_one_is_refused():
    with pytest.raises(ValueError):
        FeatureWindow(window=0)
