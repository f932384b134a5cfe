"""Decode the frames of a recorded file that 1 frame/s (or `fps`) sampling keeps, and no more
than they need (pipelines/decode_plan.py says which packets).

The packets' timestamps are read first, without decoding (a pass over the file's packets, a
small part of decoding it); then the file is read again and only the planned packets are
decoded. A file that the plan cannot vouch for (B-frames, missing timestamps) is decoded
whole, as `vigil scan` does (services/scan/video.py's `sampled_frames`): either way the same
frames come out, pixel for pixel (tests/search/test_sampled_decoding.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vigil.pipelines.decode_plan import DecodePlan, PacketStamp, plan_sampled_decoding
from vigil.services.scan.video import sampled_frames

log = logging.getLogger("vigil.search")

# Frame and slice threading, as `vigil scan`: with most packets skipped the choice hardly matters
# (measured on the demo's clip at 1 frame/s); decoding every frame, frame threading is the fastest.
THREAD_TYPE = "AUTO"


def decode_sampled(path: Path, fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds since the first frame, RGB uint8 pixels) of each frame that `fps` sampling keeps.
    Raises av.error.FFmpegError (or OSError) where the file cannot be read."""
    plan = plan_sampled_decoding(packet_stamps(path), fps)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = THREAD_TYPE
        if plan is None:
            yield from sampled_frames(container, fps)
            return
        yield from _planned(container, plan)


def packet_stamps(path: Path) -> list[PacketStamp]:
    """Every packet of the first video stream, in decode order, without decoding any."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            PacketStamp(packet.pts, _seconds(packet.pts, stream.time_base), packet.is_keyframe)
            for packet in container.demux(stream)
            if packet.size
        ]


def _planned(container: av.container.InputContainer, plan: DecodePlan) -> Iterator[tuple[float, np.ndarray]]:
    stream = container.streams.video[0]
    wanted, kept = len(plan.keep), 0

    def kept_frames(frames: list[av.VideoFrame]) -> Iterator[tuple[float, np.ndarray]]:
        nonlocal kept
        for frame in frames:
            if frame.pts in plan.keep and frame.time is not None:
                kept += 1
                yield frame.time - plan.first_time, frame.to_ndarray(format="rgb24")

    index = 0
    for packet in container.demux(stream):
        if not packet.size:  # the demuxer's closing empty packet flushes the decoder's last frames
            yield from kept_frames(stream.decode(packet))
            continue
        if index in plan.feed:
            yield from kept_frames(stream.decode(packet))
        index += 1
    if kept != wanted:  # a damaged packet (decoding all, the sampler would take the next frame)
        log.warning("decoded %d of the %d frames sampled from %s", kept, wanted, container.name)


def _seconds(pts: int | None, time_base: Fraction | None) -> float | None:
    """A timestamp in seconds, computed as PyAV computes a decoded frame's `time` (bit for bit)."""
    if pts is None or time_base is None:
        return None
    return float(pts) * time_base.numerator / time_base.denominator
