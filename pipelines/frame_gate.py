"""Which believable frames the detector goes on to decode and score (no I/O, no clock read).

Sits after admission (pipelines/admission.py), on purpose a separate step: admission refuses a
frame whose capture time cannot be believed, and that frame goes to the dead-letter topic, wrong
for any detector at any time. The gate skips a frame that is fine but of no use to this detector
now; a skip is counted (the detector's `frames_skipped` metric, labelled with `Skip`'s value),
never dead-lettered. Two rules, asked in this order:

- behind: a frame captured more than `max_lag_s` before the batch's clock reading is skipped, so
  a detector that fell behind jumps to each camera's newest frames instead of scoring stale ones
  (and falling further behind). It needs no camera state, so the caller asks it before loading
  (restoring) a camera's pipeline: a camera all of whose frames are behind is never loaded.
- replayed: a frame no newer than the last one the camera's state took (typically a redelivery,
  after a restart, of frames scored before it: the restored snapshot has seen them) is skipped
  before its JPEG is decoded. The camera's pipeline would refuse it anyway; the gate saves the
  decoding.

The lag bound also sets the clock by which a silent camera's open events close: no frame captured
more than `max_lag_s` ago will be scored, so, seen from the capture-time clock of the frames still
to come, a camera is silent at least since `now - max_lag_s` (`silence_clock_ms`).

Times are ms since the epoch; `now_ms` is the caller's clock reading for the batch, passed in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Skip(enum.Enum):
    """Why the gate skipped a frame; the value is the metric label (a public name: keep it)."""

    BEHIND = "behind"
    REPLAYED = "replayed"


@dataclass(frozen=True)
class FrameGate:
    """The detector's frame gate; see the module docstring. max_lag_s > 0."""

    max_lag_s: float

    @property
    def max_lag_ms(self) -> float:
        return self.max_lag_s * 1000

    def by_lag(self, ts_ms: int, now_ms: float) -> Skip | None:
        """Skip.BEHIND for a frame captured more than max_lag_s before `now_ms`, else None."""
        return Skip.BEHIND if now_ms - ts_ms > self.max_lag_ms else None

    @staticmethod
    def by_camera_state(ts_ms: int, last_ts_ms: int | None) -> Skip | None:
        """Skip.REPLAYED for a frame no newer than `last_ts_ms`, the capture time of the last frame
        the camera's state took (None: it has taken none), else None."""
        return Skip.REPLAYED if last_ts_ms is not None and ts_ms <= last_ts_ms else None

    def silence_clock_ms(self, now_ms: int) -> int:
        """The capture-time clock at which silent cameras' open events are judged (their
        pipelines' `expire`): `now_ms` less the lag bound, in whole ms. A camera whose newest
        frame is older than max_lag + its max_gap will not send a frame this detector still scores
        before the gap is over, so its open events can be closed."""
        return now_ms - int(self.max_lag_ms)
