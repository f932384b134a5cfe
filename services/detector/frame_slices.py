"""The frame index's time slices: one Milvus partition per slice of capture time.

Why: retention must free memory, not only rows. Milvus lite, the embedded default, holds the
frame index in the detector's memory and frees a deleted row only when it compacts that row's
segment (bench part frame_index: RSS grew 34 % while rows went through a row budget by
deletes); a dropped partition frees its segments at once. So the index is cut into slices of
capture time and retention drops whole slices, as Kafka deletes whole log segments.

A slice covers [start, end) of capture time in whole UTC minutes and is named after both,
`frames_20261207T0500_15` (start, length in minutes): the name is all the state there is.
Ranges never change once made, so a frame written again (a replay after a crash) lands in the
slice it went to the first time and overwrites itself:
- a frame belongs to the newest slice that starts at or before it (or to the oldest slice,
  when it is older than every slice: it goes when that one goes, and it is older still);
- only a frame at or past the newest slice's end opens a new slice: right after the newest
  one, or at the frame's own minute after a gap (no frames for a while).
The length of a new slice is the target of the moment, which retention sets from how long
frames are kept (`slice_minutes_for`), so the rows held exceed what is kept by at most one
slice. With several detectors writing one Milvus server, two may open overlapping slices in
the same instant; the newest-start rule then still sends each frame to one of them.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

MINUTE_MS = 60_000
# Slices are 1 to 60 minutes long: an hour at most keeps 7 days to 168 partitions (a Milvus
# server allows 1,024 per collection by default); a minute at least bounds how many a busy
# site opens while it keeps its frames for minutes.
MIN_SLICE_MINUTES = 1
MAX_SLICE_MINUTES = 60
# What is kept spans this many slices, so the rows held exceed it by at most an eighth.
SLICES_PER_KEPT = 8
# Until retention has measured the write rate (its first pass with cameras running).
DEFAULT_SLICE_MINUTES = 5

_NAME_RE = re.compile(r"^frames_(\d{8}T\d{4})_(\d{1,2})$")
_NAME_TIME_FORMAT = "%Y%m%dT%H%M"


def slice_minutes_for(kept_ms: int) -> int:
    """The slice length that cuts `kept_ms` of frames into about SLICES_PER_KEPT slices."""
    minutes = kept_ms // SLICES_PER_KEPT // MINUTE_MS
    return max(MIN_SLICE_MINUTES, min(MAX_SLICE_MINUTES, minutes))


@dataclass(frozen=True, order=True)
class FrameSlice:
    """[start_ms, end_ms) of capture time; ordered by start, then length."""

    start_ms: int
    minutes: int

    def __post_init__(self) -> None:
        if self.start_ms % MINUTE_MS:
            raise ValueError(f"a frame slice starts on a whole minute, not at {self.start_ms} ms")
        if not MIN_SLICE_MINUTES <= self.minutes <= MAX_SLICE_MINUTES:
            raise ValueError(
                f"a frame slice is {MIN_SLICE_MINUTES} to {MAX_SLICE_MINUTES} minutes long, "
                f"not {self.minutes}"
            )

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.minutes * MINUTE_MS

    @property
    def name(self) -> str:
        start = datetime.fromtimestamp(self.start_ms / 1000, UTC).strftime(_NAME_TIME_FORMAT)
        return f"frames_{start}_{self.minutes}"

    @classmethod
    def parse(cls, name: str) -> FrameSlice | None:
        """The slice a partition name stands for; None for any other partition (`_default`)."""
        match = _NAME_RE.fullmatch(name)
        if match is None:
            return None
        start = datetime.strptime(match[1], _NAME_TIME_FORMAT).replace(tzinfo=UTC)
        try:
            return cls(int(start.timestamp() * 1000), int(match[2]))
        except ValueError:
            return None  # not one of ours after all (a length out of range)


def slice_for(ts_ms: int, slices: Sequence[FrameSlice], minutes: int) -> FrameSlice:
    """The slice a frame captured at `ts_ms` belongs to, among `slices` (sorted), or the new
    slice to open for it, `minutes` long (the caller creates it when it is not in `slices`)."""
    if slices and ts_ms < slices[-1].end_ms:
        # The newest slice starting at or before ts_ms; the oldest for a frame older than all.
        index = bisect.bisect_right([s.start_ms for s in slices], ts_ms) - 1
        return slices[max(index, 0)]
    if slices and ts_ms < slices[-1].end_ms + minutes * MINUTE_MS:
        return FrameSlice(slices[-1].end_ms, minutes)
    return FrameSlice(ts_ms - ts_ms % MINUTE_MS, minutes)


def slices_ended_by(cutoff_ms: int, slices: Sequence[FrameSlice]) -> list[FrameSlice]:
    """Those of `slices` (sorted) whose every frame was captured before `cutoff_ms`, oldest
    first (a slice is dropped whole, so one still holding a frame at or after it stays)."""
    return [s for s in slices if s.end_ms <= cutoff_ms]
