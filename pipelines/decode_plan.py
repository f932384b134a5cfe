"""Which packets of a recorded file to decode, when only some frames are kept (no I/O).

`vigil index` keeps 1 frame/s of a file recorded at 10-30 frames/s, and decoding the frames it
throws away was a fifth of its time. A frame it keeps needs the packets before it back to the
last keyframe, not the ones after it: so, per keyframe group (a keyframe and the packets up to
the next), only the packets up to the group's last kept frame are decoded, and a group with no
kept frame is not decoded at all.

The kept frames must be exactly those that decoding every frame and offering each to
`FrameSampler` keeps. The sampler learns the camera's frame interval from every frame offered,
so every packet's timestamp is offered, in presentation order; this plan is made only where the
packets' order is that order and no packet needs a frame from before the last keyframe:
every packet has a timestamp, timestamps strictly increase in decode order (no B-frame
reordering, hence no leading frames that refer back past a keyframe) and the first packet is a
keyframe. Anything else (B-frames, open GOPs, missing timestamps) gets no plan: decode it all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vigil.pipelines.sampling import FrameSampler


@dataclass(frozen=True, slots=True)
class PacketStamp:
    """One packet of the video stream, in decode order: its timestamp (stream time-base units)
    and that time in seconds as the decoded frame will report it, and whether it is a keyframe.
    Slotted: a 10-hour recording at 30 frames/s has a million of them."""

    pts: int | None
    time: float | None
    keyframe: bool


@dataclass(frozen=True)
class DecodePlan:
    """feed: decode-order indices of the packets to decode; keep: timestamps (pts) of the frames
    to keep; first_time: the first frame's time in seconds, what kept frames' times count from."""

    feed: frozenset[int]
    keep: frozenset[int]
    first_time: float

    def skipped(self, packets: int) -> int:
        return packets - len(self.feed)


def plan_sampled_decoding(packets: Sequence[PacketStamp], fps: float) -> DecodePlan | None:
    """The packets to decode to keep `fps` frames/s as `FrameSampler(fps)` would over every
    frame, or None where skipping packets is not known to be safe (see the module docstring)."""
    if not packets or not packets[0].keyframe:
        return None
    stamps: list[tuple[int, float]] = []
    for packet in packets:
        if packet.pts is None or packet.time is None:
            return None
        if stamps and packet.pts <= stamps[-1][0]:
            return None
        stamps.append((packet.pts, packet.time))
    sampler = FrameSampler(fps)
    first_time = stamps[0][1]
    feed: set[int] = set()
    keep: set[int] = set()
    group_start = 0
    last_kept: int | None = None  # index of the current group's last kept packet
    for index, ((pts, time), packet) in enumerate(zip(stamps, packets, strict=True)):
        if packet.keyframe and index > group_start:
            if last_kept is not None:
                feed.update(range(group_start, last_kept + 1))
            group_start, last_kept = index, None
        if sampler.offer(time - first_time):
            keep.add(pts)
            last_kept = index
    if last_kept is not None:
        feed.update(range(group_start, last_kept + 1))
    return DecodePlan(frozenset(feed), frozenset(keep), first_time)
