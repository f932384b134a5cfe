"""Capture times judged against this machine's clock and the broker's receive time."""

from __future__ import annotations

import pytest

from vigil.pipelines.admission import capture_time_problem, snapshot_time_problem

NOW = 1_780_000_000_000
SKEW = 30_000
DAY = 86_400_000


def test_a_live_frame_is_believed():
    assert capture_time_problem(NOW - 400, NOW - 300, NOW, SKEW) is None


def test_a_frame_a_day_ahead_is_refused_naming_both_times():
    problem = capture_time_problem(NOW + DAY, NOW, NOW, SKEW)
    assert (
        problem is not None
        and "86400.0 s ahead of this machine's clock" in problem
        and str(NOW + DAY) in problem
    )


@pytest.mark.parametrize("offset_ms", [-DAY, -SKEW - 1, SKEW + 1])
def test_a_stamp_far_from_the_broker_receive_time_is_refused_either_way(offset_ms):
    # The broker took the record just now; the stamp says otherwise (the future case stays
    # within the machine's own bound, so only the broker's clock can tell).
    received = NOW - 2 * SKEW
    problem = capture_time_problem(received + offset_ms, received, NOW, SKEW)
    side = "before" if offset_ms < 0 else "after"
    assert problem is not None and f"s {side} the broker received the frame at {received}" in problem


def test_a_detector_that_scores_old_frames_accepts_a_publisher_that_far_behind():
    # Recorded footage sent with its capture times: a minute behind its publishing.
    received = NOW - 100
    assert capture_time_problem(received - 60_000, received, NOW, SKEW) is not None
    assert capture_time_problem(received - 60_000, received, NOW, SKEW, max_behind_ms=3_600_000) is None
    # ...but not stamps ahead: the lag bound says nothing about the future.
    assert capture_time_problem(received + 60_000, received, NOW + 60_000, SKEW, max_behind_ms=3_600_000)


def test_a_frame_old_on_both_clocks_is_a_backlog_not_a_bad_stamp():
    # Published an hour ago with a matching stamp: the detector is behind, the stamp is right.
    assert capture_time_problem(NOW - 3_600_000, NOW - 3_600_000 + 200, NOW, SKEW) is None


@pytest.mark.parametrize("received", [None, -1])
def test_without_a_broker_timestamp_only_the_machines_clock_judges(received):
    assert capture_time_problem(NOW - DAY, received, NOW, SKEW) is None
    assert capture_time_problem(NOW + DAY, received, NOW, SKEW) is not None


def test_the_bound_itself_is_allowed():
    assert capture_time_problem(NOW + SKEW, NOW, NOW, SKEW) is None
    assert capture_time_problem(NOW + SKEW + 1, NOW + SKEW + 1, NOW, SKEW) is not None


def test_a_snapshot_stamped_ahead_of_the_clock_cannot_be_resumed():
    assert snapshot_time_problem(None, NOW, SKEW) is None
    assert snapshot_time_problem(NOW - 5_000, NOW, SKEW) is None
    problem = snapshot_time_problem(NOW + DAY, NOW, SKEW)
    assert problem is not None and "ahead of this machine's clock" in problem
