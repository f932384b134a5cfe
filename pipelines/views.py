"""What a camera currently looks like to the encoder: its views and their embeddings (no I/O).

A frame is not embedded whole any more. The change detector (pipelines/regions/) says which parts of
it changed; only those are embedded, as crops, plus the whole frame at a low rate. So a
camera's picture of its scene is a set of *views*, each embedded at some time:

- the full view: the whole frame, re-embedded every `full_frame_interval_ms` and at each
  global change (pipelines/regions/ decides when);
- region views: crops around what changed (and, for an encoder with an object detector, its
  boxes there), each standing for its part of the scene until that part changes again.

A region's embedding stands until a newer region overlaps it. When the motion in a region
stops, its spot is cut and embedded once more (`unsettled`: framing.py asks for it) and that
*settled* view stands: a cat that walks in and sits down stops being motion, but its settled
crop still shows a cat, so the query keeps seeing it; a cat that walked out leaves a crop of
the empty floor behind, which ends the event. (Without the settling crop the last crop of the
cat would stand after it left: the spot returns to the background, which is no motion.)
Views are dropped after `max_age_ms` (a stale crop must not hold an event open for ever), all
at once at a global change (lights, shake: every old crop is of another picture), and the
oldest first beyond `max_regions`. A still frame changes nothing: its views are the last ones,
at no encoder cost.

`ViewBook.to_state()` / `restore()` snapshot the views (embeddings included) so a restarted
detector scores the next still frame exactly as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vigil.pipelines.regions import Box

FULL_FRAME = Box(0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True)
class ViewSettings:
    """max_regions: region views kept at once (the oldest go first).
    max_age_ms: a region view older than this (capture time) is dropped.
    replace_iou: a new region replaces an old one overlapping it at least this much (IoU), or
        containing the old one's centre."""

    max_regions: int = 8
    max_age_ms: int = 30_000
    replace_iou: float = 0.3

    def __post_init__(self) -> None:
        if self.max_regions < 0 or self.max_age_ms <= 0 or not 0 < self.replace_iou <= 1:
            raise ValueError("ViewSettings: need max_regions >= 0, max_age_ms > 0, 0 < replace_iou <= 1")


@dataclass(frozen=True)
class View:
    box: Box  # FULL_FRAME for the full view
    embedding: np.ndarray  # (dim,) L2-normalised
    ts_ms: int  # capture time of the frame it was cut from
    # Embedded after the motion there stopped: it shows what stayed (the cat that sat down, or
    # the empty floor it left). A region cut while something moved is unsettled until then.
    settled: bool = False


def _contains_centre(outer: Box, inner: Box) -> bool:
    cx, cy = inner.centre
    return outer.x0 <= cx <= outer.x1 and outer.y0 <= cy <= outer.y1


class ViewBook:
    """One camera's current views; see the module docstring."""

    def __init__(self, settings: ViewSettings | None = None) -> None:
        self.settings = settings or ViewSettings()
        self.full: View | None = None
        self.regions: list[View] = []

    def update(
        self,
        ts_ms: int,
        full: np.ndarray | None,
        regions: Sequence[tuple[Box, np.ndarray]],
        global_change: bool = False,
        settled: Sequence[tuple[Box, np.ndarray]] = (),
    ) -> None:
        """Take one frame's new embeddings: the full view's (or None), its moving regions' and
        the settling crops of regions whose motion stopped (`unsettled`)."""
        ts_ms = int(ts_ms)
        if global_change:
            self.regions = []
        if full is not None:
            self.full = View(FULL_FRAME, np.asarray(full, np.float32), ts_ms)
        news = [(box, embedding, False) for box, embedding in regions]
        news += [(box, embedding, True) for box, embedding in settled]
        for box, embedding, is_settled in news:
            self.regions = [
                old
                for old in self.regions
                if old.box.iou(box) < self.settings.replace_iou and not _contains_centre(box, old.box)
            ]
            self.regions.append(View(box, np.asarray(embedding, np.float32), ts_ms, is_settled))
        self.regions = [view for view in self.regions if ts_ms - view.ts_ms <= self.settings.max_age_ms]
        if len(self.regions) > self.settings.max_regions:
            self.regions = self.regions[len(self.regions) - self.settings.max_regions :]

    def unsettled(self, motion: Sequence[Box]) -> list[Box]:
        """Regions cut while something moved there, where nothing moves now: to be embedded
        once more, as they look now (see the module docstring)."""
        return [
            view.box
            for view in self.regions
            if not view.settled
            and not any(view.box.iou(box) > 0 or _contains_centre(box, view.box) for box in motion)
        ]

    def views(self) -> list[View]:
        """The full view first (when there is one), then the regions, oldest first."""
        return ([self.full] if self.full is not None else []) + list(self.regions)

    def matrix(self) -> np.ndarray:
        """(v, dim) embeddings of `views()`."""
        return np.stack([view.embedding for view in self.views()])

    def __len__(self) -> int:
        return len(self.regions) + (self.full is not None)

    # --- snapshots -----------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "full": None if self.full is None else view_to_state(self.full),
            "regions": [view_to_state(view) for view in self.regions],
        }

    def restore(self, state: dict[str, Any]) -> None:
        try:
            self.full = None if state["full"] is None else view_from_state(state["full"])
            self.regions = [view_from_state(entry) for entry in state["regions"]]
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a ViewBook snapshot: {error}") from None


def view_to_state(view: View) -> dict[str, Any]:
    box = view.box
    return {
        "box": [box.x0, box.y0, box.x1, box.y1],
        "embedding": view.embedding.tolist(),
        "ts_ms": view.ts_ms,
        "settled": view.settled,
    }


def view_from_state(state: dict[str, Any]) -> View:
    return View(
        Box(*state["box"]),
        np.asarray(state["embedding"], np.float32),
        int(state["ts_ms"]),
        bool(state.get("settled", False)),
    )
