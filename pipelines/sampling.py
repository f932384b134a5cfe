"""Which decoded frames of a camera to keep, decided by capture time alone (no I/O).

A camera sends 5-30 frames/s; the detector wants N frames/s. `FrameSampler` keeps a frame
when its capture time reaches the next slot of a fixed grid spaced 1/N s apart, so:

- jitter does not drift the rate: the grid advances by whole slots, not from each kept
  frame's (late or early) time, and a frame up to half a camera frame early (estimated from
  the frames seen, at most `max_early` of a slot) still fills its slot;
- a gap (camera stalled, network hiccup) yields one frame when frames return, never a burst
  making up for the missed slots: the grid restarts at the first frame after the gap;
- kept frames are never closer than half a slot, whatever the jitter;
- time going backwards (clock step, file looping) cannot stall sampling: a step back of
  more than one slot restarts the grid at that frame; a smaller one (reordering) is dropped.

`peek(t)` says whether a frame at `t` would be kept without changing state, so a caller can
skip the cost of decoding a frame it would throw away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Weight of the newest frame interval in the camera's estimated frame interval.
_FRAME_INTERVAL_SMOOTHING = 0.1


@dataclass
class FrameSampler:
    """Keep up to `fps` frames per second of capture time.

    fps: frames per second to keep (> 0).
    max_early: the most a frame may come before its slot and still fill it, as a fraction of
        a slot, in [0, 0.5); the allowance actually used is half the camera's own frame
        interval when that is smaller, so a 10 frames/s camera sampled at 1 frame/s keeps
        the frame at 1.0 s, not the one at 0.9 s.
    """

    fps: float
    max_early: float = 0.25
    _next_slot: float | None = field(default=None, init=False, repr=False)
    _last_kept: float | None = field(default=None, init=False, repr=False)
    _last_offered: float | None = field(default=None, init=False, repr=False)
    _frame_interval: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"FrameSampler fps must be a positive number, got {self.fps!r}")
        if not 0 <= self.max_early < 0.5:
            raise ValueError(f"FrameSampler max_early must be in [0, 0.5), got {self.max_early!r}")
        self.interval = 1.0 / self.fps

    def peek(self, capture_time: float) -> bool:
        """Would a frame captured at `capture_time` (seconds) be kept? Changes nothing."""
        return self._decide(capture_time) is not None

    def offer(self, capture_time: float) -> bool:
        """Decide for one frame, in arrival order; True means keep it."""
        next_slot = self._decide(capture_time)
        self._learn_frame_interval(capture_time)
        if next_slot is None:
            return False
        self._next_slot = next_slot
        self._last_kept = capture_time
        return True

    def reset(self) -> None:
        """Forget the grid and the camera's frame interval (e.g. after a reconnect)."""
        self._next_slot = self._last_kept = self._last_offered = self._frame_interval = None

    @property
    def early_allowance(self) -> float:
        """Seconds before its slot that a frame still fills it."""
        allowance = self.max_early * self.interval
        if self._frame_interval is not None:
            allowance = min(allowance, self._frame_interval / 2)
        return allowance

    def _decide(self, t: float) -> float | None:
        """The next slot after keeping a frame at `t`, or None to drop it."""
        if self._next_slot is None or self._last_kept is None:
            return t + self.interval
        if t < self._last_kept - self.interval:
            return t + self.interval  # the clock stepped back: start a new grid here
        early = self.early_allowance
        if t < self._next_slot - early or t < self._last_kept + self.interval / 2:
            return None
        if t >= self._next_slot + self.interval:
            return t + self.interval  # missed whole slots (a gap): restart the grid, no burst
        slots_passed = math.floor((t + early - self._next_slot) / self.interval) + 1
        return self._next_slot + slots_passed * self.interval

    def _learn_frame_interval(self, t: float) -> None:
        previous, self._last_offered = self._last_offered, t
        if previous is None or not 0 < t - previous < self.interval:
            return  # a gap, a step back or a camera slower than the rate says nothing useful
        delta = t - previous
        if self._frame_interval is None:
            self._frame_interval = delta
        else:
            self._frame_interval += _FRAME_INTERVAL_SMOOTHING * (delta - self._frame_interval)


# A keyframe interval this much longer than the sampling interval still counts as short
# enough: keyframe timestamps jitter, and 2 % fewer frames than asked is not worth the cost
# of decoding every frame.
_GOP_ALLOWANCE = 1.02
_GOP_HISTORY = 3


@dataclass
class KeyframeOnlyPolicy:
    """Whether to decode keyframes only (skipping every other frame saves most decode time).

    mode: True or False forces it; "auto" decodes keyframes only while the camera's keyframe
    interval (GOP), measured from the keyframes seen, is no longer than the sampling interval,
    so that keyframes alone still give the requested rate. Until two keyframes have been seen
    (or after the GOP grows), every frame is decoded.
    """

    mode: bool | str
    sample_interval: float
    _last_keyframe: float | None = field(default=None, init=False, repr=False)
    _gops: list[float] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in (True, False, "auto"):
            raise ValueError(f"keyframes_only must be true, false or 'auto', got {self.mode!r}")

    def observe_keyframe(self, stream_time: float) -> None:
        """A keyframe at `stream_time` seconds of the stream's own clock."""
        previous, self._last_keyframe = self._last_keyframe, stream_time
        if previous is None or stream_time <= previous:
            return  # first keyframe, or the stream's clock restarted: nothing to measure
        self._gops = [*self._gops, stream_time - previous][-_GOP_HISTORY:]

    @property
    def gop_seconds(self) -> float | None:
        """The longest recent keyframe interval, once measured."""
        return max(self._gops) if self._gops else None

    @property
    def keyframes_only(self) -> bool:
        if self.mode != "auto":
            return bool(self.mode)
        gop = self.gop_seconds
        return gop is not None and gop <= self.sample_interval * _GOP_ALLOWANCE

    def reset(self) -> None:
        """Forget the measured GOP (a new connection may bring different encoder settings)."""
        self._last_keyframe = None
        self._gops = []
