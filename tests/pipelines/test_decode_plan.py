"""plan_sampled_decoding: the frames it keeps are FrameSampler's over every frame, it decodes only
up to each keyframe group's last kept frame, and it refuses streams where skipping is unsafe."""

from __future__ import annotations

import pytest

from vigil.pipelines.decode_plan import PacketStamp, plan_sampled_decoding
from vigil.pipelines.sampling import FrameSampler


def stream(frames: int, fps: float = 10.0, gop: int = 10, jitter: float = 0.0) -> list[PacketStamp]:
    """A camera at `fps` with a keyframe every `gop` frames, timestamps in ms (time base 1/1000)."""
    stamps = []
    for i in range(frames):
        pts = round(1000 * i / fps + (jitter * 1000 * ((i * 7) % 3 - 1) if i else 0))
        stamps.append(PacketStamp(pts, pts / 1000, i % gop == 0))
    return stamps


def kept_by_sampler(packets: list[PacketStamp], fps: float) -> set[int]:
    sampler = FrameSampler(fps)
    first = packets[0].time
    return {p.pts for p in packets if sampler.offer(p.time - first)}


@pytest.mark.parametrize(
    ("fps", "gop", "jitter"),
    [(1.0, 10, 0.0), (1.0, 25, 0.0), (2.0, 10, 0.01), (0.3, 10, 0.02), (7.0, 10, 0.0)],
)
def test_keeps_what_the_sampler_keeps_over_every_frame(fps, gop, jitter):
    packets = stream(300, gop=gop, jitter=jitter)
    plan = plan_sampled_decoding(packets, fps)
    assert plan is not None
    assert plan.keep == kept_by_sampler(packets, fps)
    assert plan.first_time == 0.0


def test_decodes_each_group_up_to_its_last_kept_frame_only():
    packets = stream(60, gop=10)  # 6 s at 10 frames/s, a keyframe a second
    plan = plan_sampled_decoding(packets, 1.0)
    assert plan is not None
    assert plan.keep == {0, 1000, 2000, 3000, 4000, 5000}  # the keyframes themselves
    assert plan.feed == {0, 10, 20, 30, 40, 50}
    assert plan.skipped(len(packets)) == 54
    # A keyframe every 2 s at 1 frame/s: the frame at 1 s needs its group's first 11 packets.
    sparse = plan_sampled_decoding(stream(40, gop=20), 1.0)
    assert sparse is not None
    assert sparse.keep == {0, 1000, 2000, 3000}
    assert sparse.feed == set(range(0, 11)) | set(range(20, 31))


def test_a_group_without_a_kept_frame_is_not_decoded():
    plan = plan_sampled_decoding(stream(100, gop=5), 0.5)  # keyframe every 0.5 s, a frame every 2 s
    assert plan is not None
    assert plan.keep == {0, 2000, 4000, 6000, 8000}
    assert plan.feed == {0, 20, 40, 60, 80}


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: [p[0], p[2], p[1], *p[3:]], id="b-frame-reordering"),
        pytest.param(lambda p: [p[0], PacketStamp(None, None, False), *p[2:]], id="missing-timestamp"),
        pytest.param(lambda p: p[1:], id="starts-mid-group"),
        pytest.param(lambda p: [], id="empty"),
    ],
)
def test_no_plan_where_skipping_is_not_known_to_be_safe(damage):
    assert plan_sampled_decoding(damage(stream(30)), 1.0) is None
