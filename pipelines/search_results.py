"""Retrospective search's results: near-duplicate neighbouring matches collapsed into moments
(no I/O, no clock read).

A search over the frame index returns, for one thing seen, every indexed frame it was in:
about one a second for as long as it stayed, each a near copy of the next. An operator wants
the moment once, with how long it lasted, not ten rows of the same cat. So the matches (frames
of the frame index, and hits of the detector, which already are events with a span) are grouped
per camera into runs: two matches are neighbours when their spans come within `gap_ms` of each
other, and a run is a chain of neighbours. A run is one result:

- its span is the union of its members' spans, `frames` how many matches it holds;
- its time, score and thumbnail are those of its best-scoring match (the frame to show);
- it is a "hit" when any member is a hit (a detector event carries its query and the box of
  the region it was about, which a frame lacks): source, query id and box come from the
  best-scoring hit in it;

and results are ranked by score, best first; ties go to the earlier moment, then the camera,
so that equal inputs give equal outputs.

The gap defaults to 2.5 s: the frame index holds about one frame a second per camera, so
consecutive frames of one scene are about 1 s apart, and one missing frame (a shed or still
frame) must not cut a moment in two; two separate appearances of a thing more than a couple of
seconds apart stay separate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

DEFAULT_GAP_MS = 2_500

Source = Literal["frame", "hit"]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class SearchMatch:
    """One match of a search, before collapsing: an indexed frame (start = end = its time) or a
    hit (its event's span, its peak as ts_ms); score is its similarity to the searched text."""

    camera_id: str
    ts_ms: int
    score: float
    source: Source = "frame"
    start_ts_ms: int | None = None  # None: ts_ms
    end_ts_ms: int | None = None  # None: ts_ms
    query_id: str | None = None
    box: Box | None = None
    thumbnail: str | None = None

    @property
    def span(self) -> tuple[int, int]:
        start = self.ts_ms if self.start_ts_ms is None else min(self.start_ts_ms, self.ts_ms)
        end = self.ts_ms if self.end_ts_ms is None else max(self.end_ts_ms, self.ts_ms)
        return start, end


@dataclass(frozen=True)
class SearchResult:
    """A moment: a run of neighbouring matches of one camera (see the module docstring)."""

    camera_id: str
    ts_ms: int
    start_ts_ms: int
    end_ts_ms: int
    frames: int
    score: float
    source: Source
    query_id: str | None
    box: Box | None
    thumbnail: str | None


def collapse_neighbours(
    matches: Iterable[SearchMatch], limit: int, gap_ms: int = DEFAULT_GAP_MS
) -> list[SearchResult]:
    """The `limit` best moments among `matches`: each run of neighbouring matches of a camera
    (spans within `gap_ms`) is one result; best score first."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if gap_ms < 0:
        raise ValueError(f"gap_ms must not be negative, got {gap_ms}")
    by_camera: dict[str, list[SearchMatch]] = {}
    for match in matches:
        by_camera.setdefault(match.camera_id, []).append(match)
    results = [
        _moment(run)
        for camera_matches in by_camera.values()
        for run in _runs(sorted(camera_matches, key=lambda m: m.span), gap_ms)
    ]
    results.sort(key=lambda r: (-r.score, r.ts_ms, r.camera_id))
    return results[:limit]


def _runs(ordered: Sequence[SearchMatch], gap_ms: int) -> list[list[SearchMatch]]:
    """Chains of matches (sorted by span) whose spans come within gap_ms of the run so far."""
    runs: list[list[SearchMatch]] = []
    run_end = 0
    for match in ordered:
        start, end = match.span
        if runs and start - run_end <= gap_ms:
            runs[-1].append(match)
            run_end = max(run_end, end)
        else:
            runs.append([match])
            run_end = end
    return runs


def _best(matches: Iterable[SearchMatch]) -> SearchMatch:
    return min(matches, key=lambda m: (-m.score, m.ts_ms))


def _moment(run: list[SearchMatch]) -> SearchResult:
    best = _best(run)
    hits = [m for m in run if m.source == "hit"]
    best_hit = _best(hits) if hits else None
    return SearchResult(
        camera_id=best.camera_id,
        ts_ms=best.ts_ms,
        start_ts_ms=min(m.span[0] for m in run),
        end_ts_ms=max(m.span[1] for m in run),
        frames=len(run),
        score=best.score,
        source="hit" if best_hit else "frame",
        query_id=best_hit.query_id if best_hit else None,
        box=best_hit.box if best_hit else None,
        thumbnail=best.thumbnail or (best_hit.thumbnail if best_hit else None),
    )
