"""Which scored frames go into the frame index, and the index's write rate (no I/O, no clock read).

The frame index holds whole-frame embeddings for retrospective search ("when did a red van pass
camera 3?"). A row every frame would be mostly repeats of a still scene, so about one frame per
camera per `interval_s` of capture time goes in: a scored frame is indexed when it was captured at
least `interval_s` after the camera's last indexed frame. The spacing runs from the last indexed
frame, not from a fixed grid, and is judged in capture time, so a detector catching up on a
backlog indexes the backlog at the same spacing. The caller offers a frame only once its camera
has a whole-frame view (its newest whole-frame embedding, which stands for still frames too):
before that there is no embedding of the scene to index, and a frame not offered does not count.
`interval_s` 0 turns the index off.

`rows_per_s` is the index's write rate now, for retention's row budget: one row per `interval_s`
from each camera indexed within the last ten minutes.

The last indexed time per camera is held in memory only, not in the detector's state snapshots:
after a restart each camera's spacing starts afresh: the first frame offered is indexed.
"""

from __future__ import annotations

# A camera counts towards the write rate while its last indexed frame is this recent.
RECENT_MS = 600_000


class FrameIndexSampler:
    """Decides, camera by camera, which scored frames the frame index gets; see the module docstring."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last_indexed: dict[str, int] = {}

    def offer(self, camera_id: str, ts_ms: int) -> bool:
        """Whether the camera's frame captured at `ts_ms`, just scored (its camera has a whole-frame
        view), goes into the index; a frame that does becomes the camera's last indexed one."""
        interval_ms = self.interval_s * 1000
        last = self._last_indexed.get(camera_id)
        if interval_ms and (last is None or ts_ms - last >= interval_ms):
            self._last_indexed[camera_id] = ts_ms
            return True
        return False

    def rows_per_s(self, now_ms: float) -> float:
        """The index's write rate at `now_ms`: rows per second from the recently indexed cameras."""
        if not self.interval_s:
            return 0.0
        recent_ms = now_ms - RECENT_MS
        return sum(1 for ts_ms in self._last_indexed.values() if ts_ms >= recent_ms) / self.interval_s
