"""The detector's frame gate, decision by decision: behind, replayed, and the silence clock."""

from __future__ import annotations

import pytest

from vigil.pipelines.frame_gate import FrameGate, Skip

NOW = 1_780_000_000_000
GATE = FrameGate(max_lag_s=10.0)


def test_a_live_frame_passes_both_rules():
    assert GATE.by_lag(NOW - 300, NOW) is None
    assert GATE.by_camera_state(NOW - 300, NOW - 1_300) is None


def test_a_frame_captured_more_than_max_lag_ago_is_behind():
    assert GATE.by_lag(NOW - 10_001, NOW) is Skip.BEHIND


def test_a_frame_exactly_max_lag_old_is_still_scored():
    assert GATE.by_lag(NOW - 10_000, NOW) is None


def test_the_lag_is_measured_against_the_clock_reading_passed_in_fractions_included():
    # The batch's clock reading is a float of ms; 0.5 ms over the bound is over it.
    assert GATE.by_lag(NOW - 10_000, NOW + 0.5) is Skip.BEHIND
    assert GATE.by_lag(NOW - 10_000, NOW + 0.0) is None


def test_a_frame_from_the_future_is_not_behind():
    # Believability of the stamp is admission's question (pipelines/admission.py), not the gate's.
    assert GATE.by_lag(NOW + 5_000, NOW) is None


def test_a_fractional_lag_bound_is_kept_in_ms():
    gate = FrameGate(max_lag_s=0.25)
    assert gate.max_lag_ms == 250
    assert gate.by_lag(NOW - 250, NOW) is None
    assert gate.by_lag(NOW - 251, NOW) is Skip.BEHIND


def test_a_camera_that_has_taken_no_frame_has_seen_nothing():
    assert GATE.by_camera_state(0, None) is None


@pytest.mark.parametrize("ts_ms", [NOW - 1_000, NOW])
def test_a_frame_no_newer_than_the_cameras_last_is_replayed(ts_ms):
    assert GATE.by_camera_state(ts_ms, NOW) is Skip.REPLAYED


def test_a_frame_one_ms_newer_than_the_cameras_last_is_new():
    assert GATE.by_camera_state(NOW + 1, NOW) is None


def test_the_replay_rule_ignores_the_clock():
    # A redelivered frame is replayed however recent, and a new one is new however old: the lag
    # rule alone judges age.
    assert GATE.by_camera_state(NOW - 60_000, NOW - 60_000) is Skip.REPLAYED
    assert GATE.by_camera_state(NOW - 60_000, NOW - 61_000) is None


def test_skip_values_are_the_metric_labels():
    assert [skip.value for skip in Skip] == ["behind", "replayed"]


def test_the_silence_clock_is_now_less_the_lag_bound():
    assert GATE.silence_clock_ms(NOW) == NOW - 10_000


def test_the_silence_clock_drops_a_fraction_of_a_ms_from_the_bound():
    # int(): a bound of 2.0005 s is 2000 ms of grace, the clock stays whole ms.
    assert FrameGate(max_lag_s=2.0005).silence_clock_ms(NOW) == NOW - 2_000


def test_the_oldest_frame_still_scored_is_no_older_than_the_silence_clock():
    # Whatever comes next and is not behind was captured at or after the silence clock, so
    # closing events by it cannot close one a later frame would have continued.
    clock = GATE.silence_clock_ms(NOW)
    assert GATE.by_lag(clock, NOW) is None
    assert GATE.by_lag(clock - 1, NOW) is Skip.BEHIND
