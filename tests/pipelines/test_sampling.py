"""FrameSampler, frame by frame: which capture times are kept at N frames/s."""

from __future__ import annotations

import random

import pytest

from vigil.pipelines.sampling import FrameSampler, KeyframeOnlyPolicy


def kept_times(sampler: FrameSampler, times: list[float]) -> list[float]:
    return [t for t in times if sampler.offer(t)]


def camera_times(fps: float, seconds: float, start: float = 1000.0) -> list[float]:
    return [start + i / fps for i in range(round(seconds * fps))]


def test_first_frame_is_always_kept():
    assert FrameSampler(fps=1).offer(1234.5)


def test_keeps_every_tenth_frame_of_a_10fps_camera_at_1fps():
    times = camera_times(fps=10, seconds=60)
    kept = kept_times(FrameSampler(fps=1), times)
    assert kept == times[::10]


def test_keeps_every_frame_when_the_camera_is_slower_than_the_rate():
    times = camera_times(fps=2, seconds=10)
    assert kept_times(FrameSampler(fps=5), times) == times


def test_jitter_does_not_change_the_rate_or_bunch_frames():
    rng = random.Random(7)
    times = [t + rng.uniform(-0.03, 0.03) for t in camera_times(fps=25, seconds=120)]
    kept = kept_times(FrameSampler(fps=2), times)
    assert abs(len(kept) - 240) <= 1
    gaps = [b - a for a, b in zip(kept, kept[1:], strict=False)]
    assert min(gaps) >= 0.25
    assert max(gaps) <= 0.5 + 0.04 + 0.06  # one slot, plus one source frame of jitter


def test_jitter_around_an_equal_camera_rate_keeps_every_frame():
    rng = random.Random(3)
    times = [t + rng.uniform(-0.02, 0.02) for t in camera_times(fps=5, seconds=60)]
    assert kept_times(FrameSampler(fps=5), times) == times


def test_a_gap_gives_one_frame_when_frames_return_not_a_burst():
    sampler = FrameSampler(fps=2)
    before = camera_times(fps=10, seconds=5, start=0.0)
    after = camera_times(fps=10, seconds=5, start=20.03)  # 15 s without frames
    kept = kept_times(sampler, before + after)
    kept_after = [t for t in kept if t >= 20]
    assert kept_after[0] == pytest.approx(20.03)
    assert kept_after[1] == pytest.approx(20.53)
    assert len(kept_after) == 10


def test_a_late_frame_restarts_nothing_when_within_one_slot():
    sampler = FrameSampler(fps=1)
    assert sampler.offer(0.0)
    assert not sampler.offer(0.5)
    assert sampler.offer(1.4)  # late for slot 1.0
    assert not sampler.offer(1.6)  # slot 2.0 is still the next one: the grid did not move
    assert sampler.offer(2.0)


def test_a_frame_just_before_its_slot_counts_as_on_time():
    sampler = FrameSampler(fps=1, max_early=0.1)
    assert sampler.offer(0.0)
    assert not sampler.offer(0.85)
    assert sampler.offer(0.95)
    assert not sampler.offer(1.5)
    assert sampler.offer(2.0)


def test_kept_frames_are_at_least_half_a_slot_apart():
    sampler = FrameSampler(fps=1, max_early=0.4)
    assert sampler.offer(0.0)
    assert sampler.offer(1.5)  # late
    assert not sampler.offer(1.7)  # early for slot 2.0, but only 0.2 s after the last kept frame
    assert sampler.offer(2.05)


def test_small_step_back_is_dropped():
    sampler = FrameSampler(fps=1)
    assert sampler.offer(10.0)
    assert not sampler.offer(9.8)
    assert sampler.offer(11.0)


def test_clock_stepping_back_does_not_stall_sampling():
    sampler = FrameSampler(fps=1)
    times = camera_times(fps=10, seconds=5, start=5000.0) + camera_times(fps=10, seconds=5, start=1000.0)
    kept = kept_times(sampler, times)
    assert [t for t in kept if t < 2000] == pytest.approx([1000.0, 1001.0, 1002.0, 1003.0, 1004.0])


def test_peek_does_not_change_the_decision():
    sampler = FrameSampler(fps=1)
    assert sampler.peek(0.0)
    assert sampler.offer(0.0)
    assert not sampler.peek(0.5)
    assert sampler.peek(1.0)
    assert sampler.peek(1.0)
    assert sampler.offer(1.0)


def test_reset_keeps_the_next_frame():
    sampler = FrameSampler(fps=1)
    assert sampler.offer(0.0)
    sampler.reset()
    assert sampler.offer(0.1)


@pytest.mark.parametrize("fps", [0, -1, float("nan"), float("inf")])
def test_rejects_a_rate_that_is_not_positive(fps):
    with pytest.raises(ValueError, match="fps"):
        FrameSampler(fps=fps)


def test_rejects_an_early_allowance_of_half_a_slot_or_more():
    with pytest.raises(ValueError, match="max_early"):
        FrameSampler(fps=1, max_early=0.5)


def test_keyframe_policy_auto_decodes_everything_until_the_gop_is_known():
    policy = KeyframeOnlyPolicy(mode="auto", sample_interval=1.0)
    assert not policy.keyframes_only
    policy.observe_keyframe(10.0)
    assert not policy.keyframes_only
    policy.observe_keyframe(11.0)
    assert policy.gop_seconds == pytest.approx(1.0)
    assert policy.keyframes_only


def test_keyframe_policy_auto_decodes_everything_when_keyframes_are_rarer_than_the_rate():
    policy = KeyframeOnlyPolicy(mode="auto", sample_interval=1.0)
    for t in (0.0, 2.0, 4.0):
        policy.observe_keyframe(t)
    assert policy.gop_seconds == pytest.approx(2.0)
    assert not policy.keyframes_only


def test_keyframe_policy_auto_returns_to_full_decoding_when_the_gop_grows():
    policy = KeyframeOnlyPolicy(mode="auto", sample_interval=0.5)
    for t in (0.0, 0.5, 1.0):
        policy.observe_keyframe(t)
    assert policy.keyframes_only
    policy.observe_keyframe(3.0)
    assert not policy.keyframes_only


def test_keyframe_policy_ignores_a_stream_clock_restart():
    policy = KeyframeOnlyPolicy(mode="auto", sample_interval=1.0)
    for t in (100.0, 101.0, 0.0, 1.0):
        policy.observe_keyframe(t)
    assert policy.gop_seconds == pytest.approx(1.0)


@pytest.mark.parametrize("mode", [True, False])
def test_keyframe_policy_forced_modes_ignore_the_gop(mode):
    policy = KeyframeOnlyPolicy(mode=mode, sample_interval=1.0)
    for t in (0.0, 5.0, 10.0):
        policy.observe_keyframe(t)
    assert policy.keyframes_only is mode


def test_keyframe_policy_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="keyframes_only"):
        KeyframeOnlyPolicy(mode="sometimes", sample_interval=1.0)
