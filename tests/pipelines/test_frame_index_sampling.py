"""Frame-index sampling, decision by decision: the spacing per camera and the write rate."""

from __future__ import annotations

from vigil.pipelines.frame_index_sampling import RECENT_MS, FrameIndexSampler

T0 = 1_780_000_000_000


def offered(sampler: FrameIndexSampler, camera_id: str, times_ms: list[int]) -> list[int]:
    """The capture times of the frames (offered in order) that go into the index."""
    return [ts for ts in times_ms if sampler.offer(camera_id, ts)]


def test_a_cameras_first_frame_is_indexed():
    assert FrameIndexSampler(1.0).offer("cam-1", T0)


def test_about_one_frame_per_interval_goes_in_at_five_frames_per_second():
    times = [T0 + i * 200 for i in range(16)]  # 3 s of frames
    assert offered(FrameIndexSampler(1.0), "cam-1", times) == [T0, T0 + 1_000, T0 + 2_000, T0 + 3_000]


def test_the_spacing_runs_from_the_last_indexed_frame_not_a_grid():
    # A frame late for its second is indexed, and the next one is a whole interval after it.
    times = [T0, T0 + 1_300, T0 + 2_000, T0 + 2_300]
    assert offered(FrameIndexSampler(1.0), "cam-1", times) == [T0, T0 + 1_300, T0 + 2_300]


def test_a_frame_exactly_one_interval_after_the_last_is_indexed():
    sampler = FrameIndexSampler(1.0)
    assert offered(sampler, "cam-1", [T0, T0 + 999, T0 + 1_000]) == [T0, T0 + 1_000]


def test_a_frame_not_indexed_does_not_move_the_spacing():
    sampler = FrameIndexSampler(2.0)
    assert offered(sampler, "cam-1", [T0, T0 + 1_500, T0 + 2_000]) == [T0, T0 + 2_000]


def test_cameras_are_spaced_independently():
    sampler = FrameIndexSampler(1.0)
    assert sampler.offer("cam-1", T0)
    assert sampler.offer("cam-2", T0 + 100)
    assert not sampler.offer("cam-1", T0 + 500)
    assert sampler.offer("cam-1", T0 + 1_000)
    assert not sampler.offer("cam-2", T0 + 1_000)


def test_a_fractional_interval_is_kept_in_ms():
    sampler = FrameIndexSampler(0.25)
    assert offered(sampler, "cam-1", [T0, T0 + 200, T0 + 250, T0 + 400, T0 + 500]) == [T0, T0 + 250, T0 + 500]


def test_a_zero_interval_turns_the_index_off():
    sampler = FrameIndexSampler(0.0)
    assert offered(sampler, "cam-1", [T0, T0 + 60_000]) == []
    assert sampler.rows_per_s(T0) == 0.0


def test_an_older_frame_after_an_indexed_one_is_not_indexed():
    sampler = FrameIndexSampler(1.0)
    assert offered(sampler, "cam-1", [T0 + 5_000, T0]) == [T0 + 5_000]


def test_nothing_indexed_writes_nothing():
    assert FrameIndexSampler(1.0).rows_per_s(T0) == 0.0


def test_the_write_rate_is_one_row_per_interval_per_recently_indexed_camera():
    sampler = FrameIndexSampler(2.0)
    for camera_id in ("cam-1", "cam-2", "cam-3"):
        sampler.offer(camera_id, T0)
    assert sampler.rows_per_s(T0 + 1_000) == 1.5


def test_a_camera_indexed_more_than_ten_minutes_ago_no_longer_counts():
    sampler = FrameIndexSampler(1.0)
    sampler.offer("cam-old", T0)
    sampler.offer("cam-new", T0 + 1_000)
    assert sampler.rows_per_s(T0 + RECENT_MS) == 2.0  # exactly ten minutes: still counts
    assert sampler.rows_per_s(T0 + RECENT_MS + 1) == 1.0
    assert RECENT_MS == 600_000
