"""How long the detector keeps what it stores: hits, the frame index and their thumbnails.

Without a bound, Milvus lite and the thumbnail folder grow with every camera-second (the soak
bench measures how fast: BENCHMARKS.md). Once every `check_every_s` the detector forgets:
- hits whose peak is older than `hits_days` (30, as alerts and the "hits" topic), with their
  thumbnails: nothing an operator can still open in the console points at them;
- frame index rows older than `frames_days` (7: the index answers "when did it last look like
  this?" over recent footage), with their small JPEGs.
Each pass deletes at most `batch_rows` rows of each kind, so a backlog is worked off over
several passes instead of blocking the scoring loop.
"""

from __future__ import annotations

import logging
import time

from pydantic import BaseModel, ConfigDict, Field

from vigil.services.detector.store import HitStore, ThumbnailStore

log = logging.getLogger(__name__)

DAY_MS = 86_400_000


class RetentionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hits_days: float = Field(30.0, gt=0, description="hits (and their thumbnails) kept this long")
    frames_days: float = Field(7.0, gt=0, description="frame index rows (and their JPEGs) kept this long")
    check_every_s: float = Field(3600.0, ge=1, description="how often old rows are looked for")
    batch_rows: int = Field(5_000, ge=1, le=16_384, description="rows of each kind deleted per pass, at most")


class Retention:
    """Applies RetentionSettings to a store; `maybe_apply` is cheap until a pass is due."""

    def __init__(self, settings: RetentionSettings, store: HitStore, thumbnails: ThumbnailStore) -> None:
        self.settings = settings
        self.store = store
        self.thumbnails = thumbnails
        self._next_pass = 0.0

    def maybe_apply(self, now_ms: int | None = None) -> tuple[int, int] | None:
        """A pass when one is due (see apply); None otherwise."""
        if time.monotonic() < self._next_pass:
            return None
        self._next_pass = time.monotonic() + self.settings.check_every_s
        return self.apply(now_ms)

    def apply(self, now_ms: int | None = None) -> tuple[int, int]:
        """Forget hits and frame rows past their retention; returns (hits, frames) forgotten."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        limit = self.settings.batch_rows
        hit_thumbnails = self.store.forget_hits_before(now_ms - int(self.settings.hits_days * DAY_MS), limit)
        frame_thumbnails = self.store.forget_frames_before(
            now_ms - int(self.settings.frames_days * DAY_MS), limit
        )
        # A frame's small JPEG may be the thumbnail of a hit that is kept: only unshared ones go.
        kept = self.store.hit_thumbnails(frame_thumbnails) if frame_thumbnails else set()
        removed = self.thumbnails.delete([*hit_thumbnails, *(t for t in frame_thumbnails if t not in kept)])
        if hit_thumbnails or frame_thumbnails:
            log.info(
                "retention: forgot %d hits and %d frame index rows, %d thumbnails deleted",
                len(hit_thumbnails),
                len(frame_thumbnails),
                removed,
            )
        return len(hit_thumbnails), len(frame_thumbnails)
