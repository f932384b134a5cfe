"""How long the detector keeps what it stores: hits, the frame index and their thumbnails.

Without a bound, Milvus lite and the thumbnail folder grow with every camera-second (the soak
bench measures how fast: BENCHMARKS.md). At least once every `check_every_s` the detector forgets:
- hits whose peak is older than `hits_days` (30, as alerts and the "hits" topic), with their
  thumbnails: nothing an operator can still open in the console points at them;
- frame index rows older than `frames_days` (7: the index answers "when did it last look like
  this?" over recent footage), with their small JPEGs;
- and sooner when the cameras being indexed would fill more than `frames_max_rows`: Milvus
  lite, the embedded default, holds its whole index in the detector's memory (bench part
  frame_index: ~5 KiB a row at 384 dimensions). At one row a second per camera, 7 days of 8
  cameras is 4.8 million rows, over 20 GiB. The budget is kept as an age, `frames_max_rows` /
  (rows written per second), because Milvus queries have no ORDER BY and a filtered count costs
  ~50 us a row on lite, while an age is known without asking.
Frames are forgotten by whole time slices (services/detector/frame_slices.py): deleted rows
keep their memory in Milvus lite until it compacts them (RSS grew 34 % under a row budget
enforced by deletes), a dropped slice frees it at once. Each pass sets the length of the slices
opened next to an eighth of the age kept, and passes come at least once per slice, so the rows
held stay within an eighth (one slice) over the budget. Rows written before the index was
sliced are deleted row by row.
Each pass deletes at most `batch_rows` hits, and frame rows up to 4 batches' worth (at least one
slice), so a backlog is worked off over several passes instead of blocking the scoring loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from vigil.services.common.memory import trim_c_heap
from vigil.services.common.thumbnail_store import ThumbnailStore
from vigil.services.detector.frame_slices import slice_minutes_for, slices_ended_by
from vigil.services.detector.store import HitStore

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
_FRAME_BATCHES_PER_PASS = 4


class RetentionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hits_days: float = Field(30.0, gt=0, description="hits (and their thumbnails) kept this long")
    frames_days: float = Field(7.0, gt=0, description="frame index rows (and their JPEGs) kept this long")
    frames_max_rows: int = Field(
        100_000,
        ge=1,
        description="frame index rows kept at most, the oldest going first (kept as an age: this "
        "many rows over the rate they are written at; forgotten by time slices of an eighth of "
        "that age, so up to an eighth more are held)",
    )
    check_every_s: float = Field(600.0, ge=1, description="how often old rows are looked for")
    batch_rows: int = Field(5_000, ge=1, le=16_384, description="rows of each kind deleted per pass, at most")


class Retention:
    """Applies RetentionSettings to a store; `maybe_apply` is cheap until a pass is due."""

    def __init__(
        self,
        settings: RetentionSettings,
        store: HitStore,
        thumbnails: ThumbnailStore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.thumbnails = thumbnails
        self._clock = clock
        self._next_pass = 0.0

    def maybe_apply(self, frame_rows_per_s: Callable[[], float] = lambda: 0.0) -> tuple[int, int] | None:
        """A pass when one is due (see apply; the write rate is asked for only then); None
        otherwise."""
        started = self._clock()
        if started < self._next_pass:
            return None
        self._next_pass = started + self.settings.check_every_s  # a failed pass waits as long
        forgotten = self.apply(frame_rows_per_s=frame_rows_per_s())
        # At least one pass per frame slice, or the rows held would overshoot by a whole
        # check interval where slices are shorter (many cameras: an eighth of a short age).
        self._next_pass = started + min(self.settings.check_every_s, self.store.frames_slice_minutes * 60)
        return forgotten

    def frames_kept_ms(self, frame_rows_per_s: float) -> int:
        """How long frame index rows are kept when `frame_rows_per_s` are written."""
        days_ms = int(self.settings.frames_days * DAY_MS)
        if frame_rows_per_s <= 0:
            return days_ms
        return min(days_ms, int(self.settings.frames_max_rows / frame_rows_per_s * 1000))

    def apply(self, now_ms: int | None = None, frame_rows_per_s: float = 0.0) -> tuple[int, int]:
        """Forget hits and frame rows past their retention; returns (hits, frames) forgotten.
        `frame_rows_per_s`: the rate the frame index is written at now (0: unknown)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        limit = self.settings.batch_rows
        hit_thumbnails = self.store.forget_hits_before(now_ms - int(self.settings.hits_days * DAY_MS), limit)
        frames_kept_ms = self.frames_kept_ms(frame_rows_per_s)
        if frame_rows_per_s > 0:  # unknown (no camera indexed lately): keep the slices' length
            self.store.frames_slice_minutes = slice_minutes_for(frames_kept_ms)
        frames_forgotten, frame_thumbnails = self._forget_frames(now_ms - frames_kept_ms)
        # A frame's small JPEG may be the thumbnail of a hit that is kept: only unshared ones go.
        kept: set[str] = set()
        for first in range(0, len(frame_thumbnails), limit):  # a filter of `limit` names at most
            kept |= self.store.hit_thumbnails(frame_thumbnails[first : first + limit])
        removed = self.thumbnails.delete([*hit_thumbnails, *(t for t in frame_thumbnails if t not in kept)])
        # What the pass freed (and the scoring loop since the last one) goes back to the OS.
        self.store.release_freed_memory()
        trim_c_heap()
        if hit_thumbnails or frames_forgotten:
            log.info(
                "retention: forgot %d hits and %d frame index rows, %d thumbnails deleted",
                len(hit_thumbnails),
                frames_forgotten,
                removed,
            )
        return len(hit_thumbnails), frames_forgotten

    def _forget_frames(self, before_ms: int) -> tuple[int, list[str]]:
        """Frame index rows captured before `before_ms`, oldest first, up to the pass's share:
        (how many, their thumbnails)."""
        share = _FRAME_BATCHES_PER_PASS * self.settings.batch_rows
        forgotten, thumbnails = 0, []
        for frame_slice in slices_ended_by(before_ms, self.store.frame_slices()):
            if forgotten >= share:
                break
            rows, slice_thumbnails = self.store.drop_frame_slice(frame_slice)
            forgotten, thumbnails = forgotten + rows, thumbnails + slice_thumbnails
        while forgotten < share:
            batch = self.store.forget_unsliced_frames_before(before_ms, self.settings.batch_rows)
            forgotten, thumbnails = forgotten + len(batch), thumbnails + batch
            if len(batch) < self.settings.batch_rows:
                break
        return forgotten, thumbnails
