"""What is normal *where*: one query's background statistics per place in one camera's view.

A camera's regions are not alike. The far end of a hall where people cross all day gives
crops that some query always scores high on (the offline encoder reads the distant figures as
"một chiếc xe máy"); the floor in front gives crops it never does. Judged against one
statistic pooled over every region, the far end is "unusual" for ever and fires that query
for ever. Frigate learns per place too (an 8x8 grid of typical object sizes); here each
(camera, query) keeps a coarse grid of running statistics of the query's margin
(discrimination.py) for the regions centred in each cell, and a region is judged against its
own cell once that cell has seen `warmup` regions, against the camera-wide statistics before.

A cell's spread is never taken below the camera-wide one: a cell that has only seen one kind
of crop (a wall) would otherwise make any new crop there infinitely significant. Cells learn
exactly what the camera-wide statistics learn (the views embedded on idle frames), so an event
never becomes its own place's background.
"""

from __future__ import annotations

import math
from typing import Any

from vigil.pipelines.calibration import RunningStats
from vigil.pipelines.regions import Box


class PlaceStats:
    """A `cells` x `cells` grid of `RunningStats` over one (camera, query)'s region margins."""

    def __init__(
        self, cells: int = 4, warmup: int = 20, halflife: float = 300.0, clip_sigma: float = 2.5
    ) -> None:
        if cells < 1 or warmup < 1:
            raise ValueError("PlaceStats needs cells >= 1 and warmup >= 1")
        self.cells = cells
        self.warmup = warmup
        self._settings: dict[str, Any] = {
            "halflife": halflife,
            "warmup": warmup,
            "clip_sigma": clip_sigma,
            "min_std": 1e-3,
        }
        self._grid: dict[int, RunningStats] = {}

    def cell(self, box: Box) -> int:
        cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
        column = min(int(cx * self.cells), self.cells - 1)
        row = min(int(cy * self.cells), self.cells - 1)
        return row * self.cells + column

    def learn(self, box: Box, margin: float) -> None:
        if not math.isfinite(margin):
            return
        stats = self._grid.get(self.cell(box))
        if stats is None:
            stats = self._grid[self.cell(box)] = RunningStats(**self._settings)
        stats.update(margin)

    def background(self, box: Box, camera_wide: tuple[float, float] | None) -> tuple[float, float] | None:
        """(mean, std) to judge a region at `box` by: its cell's once warmed up (spread floored
        at the camera-wide one), else the camera-wide background."""
        stats = self._grid.get(self.cell(box))
        if stats is None or not stats.ready or camera_wide is None:
            return camera_wide
        return stats.mean, max(stats.std, camera_wide[1])

    def to_state(self) -> dict[str, Any]:
        return {str(cell): [s.count, s.mean, s.var] for cell, s in self._grid.items()}

    def restore(self, state: dict[str, Any]) -> None:
        self._grid = {}
        for cell, (count, mean, var) in state.items():
            stats = RunningStats(**self._settings)
            stats.count, stats.mean, stats.var = int(count), float(mean), float(var)
            self._grid[int(cell)] = stats
