"""A camera's recent frames: capture times, embeddings and frame references (no I/O).

`RollingWindow` keeps the newest frames of one camera, ordered by capture time, bounded by a
frame count (`capacity`) and/or an age (`max_age_ms`, measured from the newest frame's capture
time, never from the wall clock, so a replay of a recorded file evicts exactly as the live run
did). It is what the temporal scorer reads: the last N embeddings, timestamps, or cosine scores
against a query's text embedding.

Timestamps that arrive out of order:

- a frame no more than `reorder_tolerance_ms` older than the newest is inserted in its place
  (micro-batches and a multi-threaded decoder may swap neighbours);
- a frame older than that is dropped and `append` returns False: the matching state machine
  has already moved past that time, and inserting it would rewrite history that hits were
  derived from;
- a frame carrying a capture time already held is dropped too: at-least-once delivery
  redelivers frames after a restart, and a duplicate would count twice;
- a step back of more than `clock_step_ms` (the camera's clock was reset, a file looped) is a
  new timeline, not a late frame: the window is cleared and starts again from that frame,
  so a camera whose clock jumped back is not silenced for ever.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowEntry:
    """One frame: capture time (ms since the epoch), L2-normalised embedding, and a reference
    to the frame itself (whatever the caller uses to fetch a thumbnail: Kafka offset, path)."""

    ts_ms: int
    embedding: np.ndarray
    frame_ref: Hashable


class RollingWindow:
    """The newest frames of one camera, oldest first.

    dim: embedding dimension (every appended embedding must have it).
    capacity: most frames kept (None: no count bound).
    max_age_ms: frames older than the newest by more than this are evicted (None: no age bound).
    reorder_tolerance_ms: how much older than the newest a frame may be and still be inserted.
    clock_step_ms: a step back larger than this clears the window instead of being dropped.
    """

    def __init__(
        self,
        dim: int,
        *,
        capacity: int | None = 64,
        max_age_ms: int | None = None,
        reorder_tolerance_ms: int = 500,
        clock_step_ms: int = 60_000,
    ) -> None:
        if dim <= 0:
            raise ValueError(f"RollingWindow dim must be positive, got {dim!r}")
        if capacity is None and max_age_ms is None:
            raise ValueError("RollingWindow needs a capacity, a max_age_ms, or both")
        if capacity is not None and capacity <= 0:
            raise ValueError(f"RollingWindow capacity must be positive, got {capacity!r}")
        if max_age_ms is not None and max_age_ms <= 0:
            raise ValueError(f"RollingWindow max_age_ms must be positive, got {max_age_ms!r}")
        if reorder_tolerance_ms < 0:
            raise ValueError(f"RollingWindow reorder_tolerance_ms must be >= 0, got {reorder_tolerance_ms!r}")
        if clock_step_ms <= reorder_tolerance_ms:
            raise ValueError("RollingWindow clock_step_ms must exceed reorder_tolerance_ms")
        self.dim = dim
        self.capacity = capacity
        self.max_age_ms = max_age_ms
        self.reorder_tolerance_ms = reorder_tolerance_ms
        self.clock_step_ms = clock_step_ms
        self._entries: list[WindowEntry] = []
        self._times: list[int] = []  # mirrors _entries, for bisect
        self.dropped_late = 0
        self.dropped_duplicate = 0
        self.clock_steps = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def newest_ts_ms(self) -> int | None:
        return self._times[-1] if self._times else None

    @property
    def entries(self) -> tuple[WindowEntry, ...]:
        return tuple(self._entries)

    def append(self, ts_ms: int, embedding: np.ndarray, frame_ref: Hashable = None) -> bool:
        """Add one frame (capture time in ms); False when it was dropped (late or a duplicate)."""
        vector = np.asarray(embedding, dtype=np.float32)
        if vector.shape != (self.dim,):
            raise ValueError(f"embedding shape {vector.shape} does not match window dim ({self.dim},)")
        ts_ms = int(ts_ms)
        newest = self.newest_ts_ms
        if newest is not None and ts_ms < newest:
            behind = newest - ts_ms
            if behind > self.clock_step_ms:
                self.clock_steps += 1
                self.clear()
            elif behind > self.reorder_tolerance_ms:
                self.dropped_late += 1
                return False
        position = bisect.bisect_left(self._times, ts_ms)
        if position < len(self._times) and self._times[position] == ts_ms:
            self.dropped_duplicate += 1
            return False
        self._times.insert(position, ts_ms)
        self._entries.insert(position, WindowEntry(ts_ms, vector, frame_ref))
        self._evict()
        return True

    def evict_older_than(self, ts_ms: int) -> int:
        """Drop frames captured before `ts_ms`; return how many went."""
        position = bisect.bisect_left(self._times, int(ts_ms))
        del self._times[:position]
        del self._entries[:position]
        return position

    def clear(self) -> None:
        self._entries.clear()
        self._times.clear()

    def last(self, n: int | None = None) -> tuple[WindowEntry, ...]:
        """The newest `n` frames (all when None), oldest first."""
        return tuple(self._entries if n is None else self._entries[-n:] if n > 0 else ())

    def timestamps(self, n: int | None = None) -> np.ndarray:
        """Capture times (int64 ms) of the newest `n` frames, oldest first."""
        return np.array([e.ts_ms for e in self.last(n)], dtype=np.int64)

    def embeddings(self, n: int | None = None) -> np.ndarray:
        """(k, dim) float32 embeddings of the newest `n` frames, oldest first (k <= n)."""
        entries = self.last(n)
        if not entries:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([e.embedding for e in entries])

    def frame_refs(self, n: int | None = None) -> list[Hashable]:
        return [e.frame_ref for e in self.last(n)]

    def scores(self, text_embedding: np.ndarray, n: int | None = None) -> np.ndarray:
        """Cosine similarity (float32, in [-1, 1]) of each of the newest `n` frames with a query's
        L2-normalised text embedding, oldest first."""
        query = np.asarray(text_embedding, dtype=np.float32)
        if query.shape != (self.dim,):
            raise ValueError(f"text embedding shape {query.shape} does not match window dim ({self.dim},)")
        return self.embeddings(n) @ query

    def _evict(self) -> None:
        if self.max_age_ms is not None and self._times:
            self.evict_older_than(self._times[-1] - self.max_age_ms)
        if self.capacity is not None and len(self._entries) > self.capacity:
            excess = len(self._entries) - self.capacity
            del self._times[:excess]
            del self._entries[:excess]
