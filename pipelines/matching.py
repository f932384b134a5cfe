"""When a (camera, query)'s calibrated scores make an event, and the hits it emits (no I/O).

`MatchStateMachine` is fed one calibrated score per frame, in capture-time order:

    idle ──score >= enter──> candidate ──lasted min_duration_ms──> active ──score < exit──> cooldown
      ^                          │ score < exit, or a gap                  (or a gap)          │
      └──────────────────────────┴───────────────────────<── cooldown_ms after the event end ─┘

- Hysteresis: an event opens at `enter` and stays open until a score falls below `exit`
  (exit < enter), so a score wobbling around one threshold makes one event, not many.
- Minimum duration: a candidate becomes an event only once it has lasted `min_duration_ms`
  (from its first frame to the current one), so a one-frame blip alerts nobody.
- Cooldown: after an event ends, no new one may start for `cooldown_ms` (measured from the
  event's last frame), so a person stepping behind a pillar does not alert twice.
- Gaps: when consecutive frames are more than `max_gap_ms` apart (a stalled camera, dropped
  frames), an open candidate or event ends at the last frame seen before the gap: nothing is
  known about the time in between, and stretching an event over it would invent evidence.

It emits a `Hit` twice per event: once when the event is confirmed (so the alert goes out
within `min_duration_ms` of the event starting), with `end_ts_ms` None, and once when it closes,
with the final peak and `end_ts_ms`. Both carry the same `hit_id`, derived from camera, query
and event start, so a sink that upserts by id keeps the closing version, and a replay of the
same frames yields the same ids (the event start is the capture time of the first frame over
`enter`, a property of the frames, not of when they were processed).

`QueryTrack` joins a `ScoreCalibrator` and a `MatchStateMachine` for one (camera, query) and
owns the rule that only frames seen while idle teach the calibrator the background.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vigil.pipelines.calibration import ScoreCalibrator, resolve_threshold, sigmoid

if TYPE_CHECKING:
    from vigil.pipelines.temporal import FeatureWindow


def hit_id(camera_id: str, query_id: str, event_start_ts_ms: int) -> str:
    """A stable id for the event of `query_id` on `camera_id` that started at that capture time:
    the same event replayed after a crash gets the same id, so writes keyed by it are idempotent.
    Readable on purpose ("cam-1:q-cat:1700000001000"); camera and query ids never contain ':'
    (the contract's identifier pattern), so the parts cannot run into each other."""
    return f"{camera_id}:{query_id}:{int(event_start_ts_ms)}"


@dataclass(frozen=True)
class Hit:
    """An event of a query on a camera. Times are capture times in ms since the epoch; scores are
    calibrated (0..1). `end_ts_ms` is None while the event is open; once closed it is the
    capture time of the event's last frame (the last one scoring at least the exit threshold)."""

    camera_id: str
    query_id: str
    event_start_ts_ms: int
    peak_ts_ms: int
    peak_score: float
    thumbnail_ref: Hashable
    end_ts_ms: int | None = None

    @property
    def hit_id(self) -> str:
        return hit_id(self.camera_id, self.query_id, self.event_start_ts_ms)

    @property
    def closed(self) -> bool:
        return self.end_ts_ms is not None


class MatchState(enum.Enum):
    IDLE = "idle"
    CANDIDATE = "candidate"
    ACTIVE = "active"
    COOLDOWN = "cooldown"


@dataclass(frozen=True)
class MatchSettings:
    """enter/exit: calibrated-score thresholds (exit < enter); durations in ms of capture time."""

    enter: float = 0.5
    exit: float = 0.35
    min_duration_ms: int = 1_000
    cooldown_ms: int = 10_000
    max_gap_ms: int = 5_000

    def __post_init__(self) -> None:
        if not 0 < self.exit < self.enter <= 1:
            raise ValueError(f"need 0 < exit < enter <= 1, got exit={self.exit!r}, enter={self.enter!r}")
        if self.min_duration_ms < 0 or self.cooldown_ms < 0 or self.max_gap_ms <= 0:
            raise ValueError("min_duration_ms and cooldown_ms must be >= 0, max_gap_ms > 0")

    @classmethod
    def for_threshold(
        cls,
        threshold: float | str,
        *,
        exit_ratio: float,
        min_duration_ms: int,
        cooldown_ms: int,
        max_gap_ms: int,
    ) -> MatchSettings:
        """A query's settings: enter at its threshold ("auto" or a number in (0, 1)), exit at
        `exit_ratio` of it (hysteresis)."""
        enter = resolve_threshold(threshold)
        return cls(
            enter=enter,
            exit=enter * exit_ratio,
            min_duration_ms=min_duration_ms,
            cooldown_ms=cooldown_ms,
            max_gap_ms=max_gap_ms,
        )


class MatchStateMachine:
    """The event state of one (camera, query); see the module docstring."""

    def __init__(self, camera_id: str, query_id: str, settings: MatchSettings | None = None) -> None:
        self.camera_id = camera_id
        self.query_id = query_id
        self.settings = settings or MatchSettings()
        self.state = MatchState.IDLE
        self._last_ts: int | None = None
        self._start_ts = 0
        self._end_ts = 0  # last frame of the open event scoring >= exit
        self._peak_ts = 0
        self._peak_score = 0.0
        self._peak_ref: Hashable = None
        self._cooldown_until = 0
        self.ignored_out_of_order = 0

    @property
    def open_since_ts_ms(self) -> int | None:
        """Capture time of the first frame of the open candidate or event, else None.

        A consumer must not commit offsets past this frame: replaying from a later one would
        start the event later and give it a different hit id."""
        if self.state in (MatchState.CANDIDATE, MatchState.ACTIVE):
            return self._start_ts
        return None

    @property
    def peak_ts_ms(self) -> int | None:
        """Capture time of the open candidate's or event's best frame so far, else None."""
        return self._peak_ts if self.open_since_ts_ms is not None else None

    def step(self, ts_ms: int, score: float, frame_ref: Hashable = None) -> list[Hit]:
        """Feed one frame (capture time in ms, calibrated score); return the hits it caused.

        A frame not newer than the last one fed is ignored (the window already reorders what it
        can; a straggler past that cannot change decisions already taken)."""
        ts_ms = int(ts_ms)
        if self._last_ts is not None and ts_ms <= self._last_ts:
            self.ignored_out_of_order += 1
            return []
        hits: list[Hit] = []
        gap = self._last_ts is not None and ts_ms - self._last_ts > self.settings.max_gap_ms
        self._last_ts = ts_ms
        if gap:
            if self.state is MatchState.ACTIVE:
                hits.append(self._close())
            elif self.state is MatchState.CANDIDATE:
                self.state = MatchState.IDLE
        hits.extend(self._advance(ts_ms, float(score), frame_ref))
        return hits

    def expire(self, now_ts_ms: int) -> list[Hit]:
        """Close an open event when no frame has come for more than `max_gap_ms` by `now_ts_ms`
        (capture-time clock); lets a live detector end events of a camera that went silent."""
        if self._last_ts is None or now_ts_ms - self._last_ts <= self.settings.max_gap_ms:
            return []
        return self.finish()

    def finish(self) -> list[Hit]:
        """End of stream (file scanned, query deleted): close an open event, drop a candidate."""
        if self.state is MatchState.ACTIVE:
            return [self._close()]
        if self.state is MatchState.CANDIDATE:
            self.state = MatchState.IDLE
        return []

    # Fields that make up the machine's state: a snapshot of them resumes it exactly.
    _STATE_FIELDS = (
        "_last_ts", "_start_ts", "_end_ts", "_peak_ts", "_peak_score", "_peak_ref", "_cooldown_until",
    )  # fmt: skip

    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot (frame refs must be JSON values: the detector uses ts_ms)."""
        state = {name.lstrip("_"): getattr(self, name) for name in self._STATE_FIELDS}
        state["state"] = self.state.value
        return state

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from `to_state()`'s snapshot (the settings stay this machine's own)."""
        try:
            self.state = MatchState(state["state"])
            for name in self._STATE_FIELDS:
                setattr(self, name, state[name.lstrip("_")])
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError(f"not a MatchStateMachine snapshot: {error}") from None

    def _advance(self, ts: int, score: float, ref: Hashable) -> list[Hit]:
        s = self.settings
        if self.state is MatchState.COOLDOWN:
            if ts < self._cooldown_until:
                return []
            self.state = MatchState.IDLE
        if self.state is MatchState.IDLE:
            if score < s.enter:
                return []
            self.state = MatchState.CANDIDATE
            self._start_ts = self._end_ts = self._peak_ts = ts
            self._peak_score, self._peak_ref = score, ref
            return self._confirm_if_long_enough(ts)
        # candidate or active: hysteresis keeps it open down to the exit threshold
        if score < s.exit:
            if self.state is MatchState.ACTIVE:
                return [self._close()]
            self.state = MatchState.IDLE  # a blip: never confirmed, so no cooldown either
            return []
        self._end_ts = ts
        if score > self._peak_score:  # strict: the first frame of a tie stays the thumbnail
            self._peak_ts, self._peak_score, self._peak_ref = ts, score, ref
        if self.state is MatchState.CANDIDATE:
            return self._confirm_if_long_enough(ts)
        return []

    def _confirm_if_long_enough(self, ts: int) -> list[Hit]:
        if ts - self._start_ts < self.settings.min_duration_ms:
            return []
        self.state = MatchState.ACTIVE
        return [self._hit(end_ts_ms=None)]

    def _close(self) -> Hit:
        self.state = MatchState.COOLDOWN
        self._cooldown_until = self._end_ts + self.settings.cooldown_ms
        return self._hit(end_ts_ms=self._end_ts)

    def _hit(self, end_ts_ms: int | None) -> Hit:
        return Hit(
            camera_id=self.camera_id,
            query_id=self.query_id,
            event_start_ts_ms=self._start_ts,
            peak_ts_ms=self._peak_ts,
            peak_score=self._peak_score,
            thumbnail_ref=self._peak_ref,
            end_ts_ms=end_ts_ms,
        )


@dataclass(frozen=True)
class ScoredFrame:
    """What one frame meant for one (camera, query): its calibrated score and the hits it caused."""

    ts_ms: int
    score: float
    hits: tuple[Hit, ...]


class QueryTrack:
    """Calibration and matching for one (camera, query), fed raw cosines frame by frame.

    A frame goes through two phases, so that a caller can put a temporal model between them
    (the live detector scores every query's window in one batch): `calibrate` turns the raw
    cosine into the calibrated score (and feeds `features`, the temporal model's per-frame
    window, when there is one); `decide` feeds the score the state machine acts on (the
    calibrated one, or the temporal model's probability) and applies the learning rule.
    `step` is both, for callers with no temporal stage.

    Known limit: since an open event teaches the background nothing, a lasting change of scene
    that scores over `exit` (a new poster that matches the query) keeps one event open until
    the caller ends it; a maximum event duration is the detector's call, not made here.
    """

    def __init__(
        self, calibrator: ScoreCalibrator, machine: MatchStateMachine, features: FeatureWindow | None = None
    ) -> None:
        self.calibrator = calibrator
        self.machine = machine
        self.features = features  # a pipelines.temporal.FeatureWindow, or None

    def calibrate(
        self,
        ts_ms: int,
        raw_cosine: float,
        background_cosine: float | None = None,
        gate_margin: float | None = None,
    ) -> float:
        """The frame's calibrated score; learns nothing (see `decide`). gate_margin: the
        discriminative evidence the temporal window also records (None: unknown)."""
        z = self.calibrator.z_score(raw_cosine, background_cosine)
        score = 0.0 if z is None else sigmoid(z - self.calibrator.sigma_at_half)
        if self.features is not None:
            self.features.push(int(ts_ms), z, score, gate_margin)
        return score

    def decide(
        self,
        ts_ms: int,
        score: float,
        raw_cosine: float,
        frame_ref: Hashable = None,
        background_cosine: float | None = None,
        learn: Sequence[tuple[float, float | None]] | None = None,
    ) -> tuple[Hit, ...]:
        """Feed `score` to the state machine; learn the frame as background if it is one.

        learn: what to learn instead of (raw_cosine, background_cosine): a camera judged on
        several views of each frame learns each newly embedded view once (pipelines/detector.py)."""
        hits = self.machine.step(ts_ms, score, frame_ref)
        if self.learns(hits):
            for raw, background in [(raw_cosine, background_cosine)] if learn is None else learn:
                self.calibrator.learn(raw, background)
        return tuple(hits)

    def learns(self, hits: Sequence[Hit]) -> bool:
        """Whether the frame just decided (with these hits) teaches the background. Only frames
        that neither belong to an event nor may start one do: a candidate or an event must not
        become the background it is judged against. Cooldown frames are also kept out: they
        are the tail of an event that just ended."""
        return self.machine.state is MatchState.IDLE and not hits

    def step(
        self,
        ts_ms: int,
        raw_cosine: float,
        frame_ref: Hashable = None,
        background_cosine: float | None = None,
    ) -> ScoredFrame:
        score = self.calibrate(ts_ms, raw_cosine, background_cosine)
        hits = self.decide(ts_ms, score, raw_cosine, frame_ref, background_cosine)
        return ScoredFrame(int(ts_ms), score, hits)

    def finish(self) -> list[Hit]:
        return self.machine.finish()
