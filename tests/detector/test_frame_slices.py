"""The frame index's time slices (services/detector/frame_slices.py): where a frame goes, when a
slice opens, and which slices retention may drop, decided from the slices' names alone."""

from __future__ import annotations

import pytest

from vigil.services.detector.frame_slices import (
    MINUTE_MS,
    FrameSlice,
    slice_for,
    slice_minutes_for,
    slices_ended_by,
)

T0 = 1_800_000_000_000  # a whole minute (2027-01-15T08:00Z)
HOUR_MS = 60 * MINUTE_MS


def test_the_first_frame_opens_a_slice_at_its_own_minute():
    assert slice_for(T0 + 42_123, [], minutes=5) == FrameSlice(T0, 5)


def test_a_frame_goes_to_the_newest_slice_starting_at_or_before_it():
    slices = [FrameSlice(T0, 5), FrameSlice(T0 + 5 * MINUTE_MS, 5)]
    assert slice_for(T0 + 5 * MINUTE_MS - 1, slices, minutes=5) == slices[0]
    assert slice_for(T0 + 5 * MINUTE_MS, slices, minutes=5) == slices[1]
    assert slice_for(T0 + 10 * MINUTE_MS - 1, slices, minutes=5) == slices[1]
    # Older than every slice (a camera lagging behind): the oldest, which goes first anyway.
    assert slice_for(T0 - HOUR_MS, slices, minutes=5) == slices[0]


def test_a_frame_past_the_newest_slice_opens_the_next_one_right_after_it_or_at_its_minute_after_a_gap():
    newest = FrameSlice(T0, 5)
    assert slice_for(newest.end_ms, [newest], minutes=15) == FrameSlice(newest.end_ms, 15)
    last_in_it = newest.end_ms + 15 * MINUTE_MS - 1
    assert slice_for(last_in_it, [newest], minutes=15) == FrameSlice(newest.end_ms, 15)
    # No frame for an hour: the next slice starts at the frame's minute, not an hour back.
    late = newest.end_ms + HOUR_MS + 30_000
    assert slice_for(late, [newest], minutes=15) == FrameSlice(late - 30_000, 15)


def test_a_replayed_frame_goes_where_it_went_the_first_time_whatever_the_length_now():
    slices = [FrameSlice(T0, 60)]
    first = slice_for(T0 + 50 * MINUTE_MS, slices, minutes=60)
    # Retention has since shortened the slices to open: a slice already open keeps its range.
    assert slice_for(T0 + 50 * MINUTE_MS, slices, minutes=1) == first == slices[0]


def test_a_slice_is_named_by_its_start_and_length_and_read_back_from_the_name():
    frame_slice = FrameSlice(T0 + 5 * MINUTE_MS, 15)
    assert frame_slice.name == "frames_20270115T0805_15"
    assert FrameSlice.parse(frame_slice.name) == frame_slice
    assert frame_slice.end_ms == T0 + 20 * MINUTE_MS
    not_slices = ("_default", "frames_20270115T0805", "frames_20270115T0805_0", "frames_20270115T0805_61")
    for other in not_slices:
        assert FrameSlice.parse(other) is None, other


def test_a_slice_that_is_not_whole_minutes_is_refused():
    with pytest.raises(ValueError, match="whole minute"):
        FrameSlice(T0 + 1, 5)
    with pytest.raises(ValueError, match="1 to 60 minutes"):
        FrameSlice(T0, 61)


def test_the_slice_length_is_an_eighth_of_what_is_kept_from_a_minute_to_an_hour():
    assert slice_minutes_for(12_500_000) == 26  # 8 cameras under the default 100,000-row budget
    assert slice_minutes_for(7 * 24 * HOUR_MS) == 60
    assert slice_minutes_for(10_000) == 1


def test_only_slices_wholly_before_the_cutoff_are_dropped():
    slices = [FrameSlice(T0 + n * 5 * MINUTE_MS, 5) for n in range(4)]
    assert slices_ended_by(T0 + 10 * MINUTE_MS, slices) == slices[:2]
    assert slices_ended_by(T0 + 10 * MINUTE_MS - 1, slices) == slices[:1]
    assert slices_ended_by(T0, slices) == []
