"""decode_sampled (what `vigil index` decodes) gives the very frames, pixel for pixel and at the same
times, that decoding every frame and sampling it (`vigil scan`'s sampled_frames) gives: on the
real clips (H.264 with a keyframe a second or x264's own keyframes, MPEG-4 in AVI), and on a clip
with B-frames, which it decodes whole."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vigil.pipelines.decode_plan import plan_sampled_decoding
from vigil.services.scan.video import sampled_frames
from vigil.services.search.sampled_decoding import decode_sampled, packet_stamps


def media() -> list[Path]:
    from vigil.fixtures.media import MediaUnavailableError, event_clip, vtest_avi

    try:
        return [event_clip(), vtest_avi()]
    except MediaUnavailableError as error:
        pytest.skip(str(error))


def every_frame_sampled(path: Path, fps: float) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        container.streams.video[0].thread_type = "AUTO"
        return list(sampled_frames(container, fps))


def assert_same_frames(path: Path, fps: float) -> None:
    expected = every_frame_sampled(path, fps)
    got = list(decode_sampled(path, fps))
    assert [t for t, _ in got] == [t for t, _ in expected]
    for (t, pixels), (_, reference) in zip(got, expected, strict=True):
        assert np.array_equal(pixels, reference), f"{path.name} at {t} s"


@pytest.mark.parametrize("fps", [1.0, 2.0, 0.3])
def test_the_same_frames_as_decoding_every_frame(fps):
    for path in media():
        assert_same_frames(path, fps)


def test_the_demo_clip_decodes_a_tenth_of_its_packets_at_one_frame_a_second():
    path = media()[0]
    packets = packet_stamps(path)
    plan = plan_sampled_decoding(packets, 1.0)
    assert plan is not None and len(plan.keep) == 60
    assert len(plan.feed) == 60 and len(packets) == 600  # a keyframe a second, 10 frames/s


def test_a_clip_with_b_frames_is_decoded_whole_with_the_same_frames(tmp_path):
    source = media()[1]
    clip = tmp_path / "b-frames.mp4"
    with av.open(str(source)) as reader, av.open(str(clip), "w") as writer:
        stream = writer.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"bf": "2", "g": "10", "preset": "veryfast"}
        for i, decoded in enumerate(reader.decode(video=0)):
            if i == 60:
                break
            # A new frame, not the decoded one: x264 would keep the decoded frame's picture type.
            pixels = decoded.reformat(width=320, height=240, format="yuv420p").to_ndarray()
            frame = av.VideoFrame.from_ndarray(pixels, format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            writer.mux(stream.encode(frame))
        writer.mux(stream.encode(None))
    assert plan_sampled_decoding(packet_stamps(clip), 1.0) is None  # reordered: no plan
    assert_same_frames(clip, 1.0)
