"""What a detector that fell behind leaves out, so an alert is late by a bounded time (no I/O).

A detector that cannot keep up used to work through its backlog in order: each frame waited for
every older one, and glass-to-hit grew until frames reached the lag limit (10 s) and were
skipped. An alert 10 s late is worth little. So before a micro-batch is embedded, its cost is
estimated (seconds per crop and per whole frame, measured as the detector goes:
`CostModel`), and when the oldest frame would come out later than `budget_ms` after its
capture, work is shed, cheapest loss first:

1. still frames that are not their camera's newest in the batch: they bring no new picture
   (their views stand) and the newest frame carries the camera's time forward;
2. whole-frame refreshes: the full view is re-embedded later (a global change is never
   shed: every old view is of another picture);
3. other frames, oldest first, but never a camera's newest frame in the batch (it holds what
   the camera shows now, and its regions replace the older ones anyway) nor a global change.

Whatever is still over budget after that is the newest frame of each camera: kept, since
dropping it would blind the camera rather than make it late. The decision is a value
(`ShedPlan`) the caller applies and counts.

Only a detector that cannot keep up sheds (`LoadMeter`: busy for at least 90 % of the last
10 s). Frames can be late for reasons that are not the detector's: a broker restart held them
back, a stall upstream, a neighbour restarting on the same cores. A detector that keeps up works
through them in a batch or two, and shedding them would only trade evidence for a fraction of a
second: in a CI chaos run a broker kill 0.8 s into the motorcycle event got the detector's next
batches shed, its first two frames went (a later event start, so another hit id) and a deferred
whole-frame refresh left the stale view scoring under the exit threshold, which ended the event
at 38.2 s where the clean run ends it at 43.8 s (and the cooldown then held back the rest).

A replayed frame (`replay`: one a previous owner of its partition may already have scored, re-read
after a crash or a rebalance) is never shed, nor its whole frame deferred. The state it resumes
from was saved before the crash; the frames after it decide how an event open at the crash
ends, and whether one that the dead detector already confirmed starts at the same frame (its hit
id). Shedding them moved an event's end 3 s earlier after a detector kill (the chaos bench): the
catch-up batch was over budget, all but its newest frame went, and the state machine saw a gap.
The replay is bounded (frames older than the detector's `max_lag_s` are skipped before this),
and the frames after it are shed as usual until the detector has caught up.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PlannedFrame:
    """One frame of a micro-batch as the change detector planned it."""

    camera_id: str
    ts_ms: int
    still: bool
    full: bool  # a whole-frame refresh is planned (deferrable: the regions carry the frame)
    global_change: bool
    crops: int  # regions to embed
    # The frame's work is one whole-frame embedding (a detector embedding whole frames): not a
    # refresh that can be deferred, so it is shed only with the frame.
    whole: bool = False
    # A previous owner of the partition may have scored it: replayed exactly, never shed.
    replay: bool = False


@dataclass
class CostModel:
    """Seconds of encoder time per crop, per whole frame and per frame run through the object
    detector, as exponentially weighted means of what batches took (`observe`)."""

    seconds_per_crop: float = 0.02
    seconds_per_full: float = 0.06
    alpha: float = 0.2

    def estimate(self, crops: int, full: int) -> float:
        return crops * self.seconds_per_crop + full * self.seconds_per_full

    def observe(self, crops: int, full: int, seconds: float) -> None:
        """Learn from one batch that embedded `crops` crops and `full` whole frames in `seconds`:
        the batch's time is split in proportion to the current estimates."""
        estimate = self.estimate(crops, full)
        if estimate <= 0 or seconds <= 0:
            return
        # One batch can be slow for reasons of its own (the first call warms the sessions up):
        # it moves the estimates by at most 4x, so it cannot make every later batch look late.
        ratio = min(max(seconds / estimate, 0.25), 4.0)
        if crops:
            self.seconds_per_crop += self.alpha * (self.seconds_per_crop * ratio - self.seconds_per_crop)
        if full:
            self.seconds_per_full += self.alpha * (self.seconds_per_full * ratio - self.seconds_per_full)


@dataclass
class LoadMeter:
    """Whether the detector keeps up: the share of the last `window_s` of wall time it spent
    working rather than waiting for frames, from one `record` per turn of its loop.

    Overloaded at `overload_at`: a detector that keeps up idles between batches, waiting for
    the next frame; one that cannot keep up always finds frames waiting. 90 %, not 100 %,
    because a turn's bookkeeping (query refresh, checkpoint) counts as busy and a backlog that
    drains at a tenth of real time is as good as not draining. An empty meter (a detector just
    started) is not overloaded: its first batches are the backlog a restart left, replayed in
    full anyway."""

    window_s: float = 10.0
    overload_at: float = 0.9
    _turns: deque[tuple[float, float, float]] = field(default_factory=deque)  # end, busy, waited

    def record(self, end_s: float, busy_s: float, waited_s: float) -> None:
        """One turn that ended at `end_s` (monotonic seconds): `busy_s` working, `waited_s`
        waiting for frames."""
        self._turns.append((end_s, max(busy_s, 0.0), max(waited_s, 0.0)))
        while self._turns and self._turns[0][0] <= end_s - self.window_s:
            self._turns.popleft()

    def utilisation(self) -> float:
        busy = sum(turn[1] for turn in self._turns)
        total = busy + sum(turn[2] for turn in self._turns)
        return busy / total if total > 0 else 0.0

    def overloaded(self) -> bool:
        return self.utilisation() >= self.overload_at


@dataclass
class ShedPlan:
    """keep[i]: embed and score frame i; drop_full[i]: embed its regions but not the whole
    frame; shed: how many frames (or refreshes) were shed, by reason."""

    keep: list[bool]
    drop_full: list[bool]
    shed: dict[str, int] = field(default_factory=dict)


def shed_to_budget(
    frames: Sequence[PlannedFrame], now_ms: float, budget_ms: float, cost: CostModel, *, overloaded: bool
) -> ShedPlan:
    """Which frames of a batch to embed so that the oldest kept one is done within `budget_ms`
    of its capture (see the module docstring for the order); all of them when the detector is
    not `overloaded` (`LoadMeter`)."""
    keep = [True] * len(frames)
    drop_full = [False] * len(frames)
    shed: dict[str, int] = {}
    if not overloaded:
        return ShedPlan(keep, drop_full)
    newest: dict[str, int] = {}
    for i, frame in enumerate(frames):
        if frame.camera_id not in newest or frame.ts_ms >= frames[newest[frame.camera_id]].ts_ms:
            newest[frame.camera_id] = i
    protected = set(newest.values()) | {i for i, frame in enumerate(frames) if frame.replay}

    def over_budget() -> bool:
        kept = [i for i in range(len(frames)) if keep[i]]
        if not kept:
            return False
        crops = sum(frames[i].crops for i in kept)
        full = sum((frames[i].full and not drop_full[i]) or frames[i].whole for i in kept)
        oldest = min(frames[i].ts_ms for i in kept)
        return now_ms + 1000 * cost.estimate(crops, full) - oldest > budget_ms

    if not over_budget():
        return ShedPlan(keep, drop_full)
    by_age = sorted(range(len(frames)), key=lambda i: frames[i].ts_ms)
    for i in by_age:  # 1. older still frames
        if frames[i].still and i not in protected:
            keep[i] = False
            shed["still"] = shed.get("still", 0) + 1
    for i in by_age:  # 2. whole-frame refreshes
        if not over_budget():
            break
        if keep[i] and frames[i].full and not frames[i].global_change and not frames[i].replay:
            drop_full[i] = True
            shed["full_frame"] = shed.get("full_frame", 0) + 1
    for i in by_age:  # 3. older frames
        if not over_budget():
            break
        if keep[i] and i not in protected and not frames[i].global_change:
            keep[i] = False
            shed["frame"] = shed.get("frame", 0) + 1
    return ShedPlan(keep, drop_full, shed)
