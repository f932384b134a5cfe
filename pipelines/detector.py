"""One camera's standing queries, frame by frame: the live detector's decisions (no I/O).

`CameraPipeline` is what the detector service runs for each camera. The service decodes and
embeds frames, then feeds them here one by one in capture order; each frame goes through:

1. the camera's `RollingWindow` (late frames and duplicates are refused here: a frame the
   pipeline has already moved past, e.g. redelivered after a restart, changes nothing);
2. per standing query: raw cosine and max background-prompt cosine -> calibrated score
   against that camera+query's running background (`QueryTrack.calibrate`);
3. optionally the temporal model: every query's window of per-frame features, scored in one
   batch, gives the probability that the event is on now, which replaces the calibrated
   score as what the state machine thresholds;
4. per query: the match state machine (hysteresis, minimum duration, cooldown), which emits
   hits; the background statistics learn the frame only while the machine is idle.

Queries change while frames flow (`set_queries`): a new query starts a track whose background
is warmed up from the frames still in the window (it is judged at once rather than after a
minute of learning); an edited text or language restarts its track (the old statistics belong
to another embedding); a new threshold only changes the thresholds; a deleted query's open
event is closed and reported.

`to_state()` / `from_state()` snapshot everything a restarted detector needs to carry on
exactly where the snapshot was taken (background statistics, state machines, temporal
windows, open events' peak embeddings): with its Kafka offsets committed only after the
snapshot, a crash replays frames into the same state, so the same hits come out with the
same ids. The embeddings window is not snapshotted (it only warms up new queries).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vigil.pipelines.calibration import ScoreCalibrator, ScorePrior
from vigil.pipelines.matching import Hit, MatchSettings, MatchState, MatchStateMachine, QueryTrack
from vigil.pipelines.prompts import QueryVectors, query_scores
from vigil.pipelines.window import RollingWindow

# windows (n, window, features) -> (n,) probabilities; models.temporal.TemporalScorer.score
TemporalModel = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TemporalStage:
    """The temporal model and its per-(camera, query) feature window (pipelines.temporal):
    `new_window()` makes an empty one, `window_from_state(dict)` restores a snapshot."""

    model: TemporalModel
    new_window: Callable[[], Any]
    window_from_state: Callable[[dict], Any]


STATE_VERSION = 1


@dataclass(frozen=True)
class StandingQuery:
    """A standing query as the pipeline needs it.

    vectors_key: identifies the text embedding (e.g. text + language): when it changes the
        query's track starts over, since its background statistics were of another vector.
    """

    query_id: str
    vectors_key: str
    vectors: QueryVectors
    match: MatchSettings


@dataclass(frozen=True)
class CalibrationSettings:
    """See pipelines/calibration.py: ScoreCalibrator's parameters, in frames of this camera."""

    sigma_at_half: float = 3.0
    halflife_frames: float = 300.0
    warmup_frames: int = 30
    # Tighter than ScoreCalibrator's 4: another object filling the view sends a query's score
    # far below normal for as long as it stays, and those frames must not widen the spread the
    # next real event is judged by (measured on vtest with a cat then a motorcycle pasted in:
    # "a motorcycle" peaked at z 2.8 after the cat with 4, 5.5 with 2.5).
    clip_sigma: float = 2.5
    min_std: float = 2e-3


@dataclass
class FrameOutcome:
    """What one frame did: whether it was taken, the hits it caused (each with the embedding
    of its peak frame, for the hit store), and whether it is now the peak of an open candidate
    or event (the service then stores its thumbnail: a hit may point at it later)."""

    accepted: bool
    hits: list[tuple[Hit, np.ndarray]] = field(default_factory=list)
    is_peak: bool = False


@dataclass
class _Track:
    spec: StandingQuery
    track: QueryTrack
    peak_embedding: np.ndarray | None = None


class CameraPipeline:
    """The standing queries of one camera; see the module docstring.

    prior: the encoder's typical background signal (pipelines.calibration.score_prior_for), so
        that a new camera or query is judged from its first frame; None keeps it silent until
        `warmup_frames` background frames were seen.
    temporal: the temporal stage, or None to threshold the calibrated score itself.
    """

    def __init__(
        self,
        camera_id: str,
        dim: int,
        *,
        calibration: CalibrationSettings | None = None,
        prior: ScorePrior | None = None,
        temporal: TemporalStage | None = None,
        window_frames: int = 64,
    ) -> None:
        self.camera_id = camera_id
        self.dim = dim
        self.calibration = calibration or CalibrationSettings()
        self.prior = prior
        self.temporal = temporal
        self.window = RollingWindow(dim, capacity=window_frames)
        self._tracks: dict[str, _Track] = {}
        self.last_ts_ms: int | None = None

    # --- queries -------------------------------------------------------------------------

    @property
    def query_ids(self) -> list[str]:
        return list(self._tracks)

    def set_queries(self, queries: Sequence[StandingQuery]) -> list[tuple[Hit, np.ndarray]]:
        """Make the tracked queries these; returns the closing hits of removed queries."""
        wanted = {query.query_id: query for query in queries}
        closed: list[tuple[Hit, np.ndarray]] = []
        for query_id in list(self._tracks):
            current = self._tracks[query_id]
            spec = wanted.get(query_id)
            if spec is not None and spec.vectors_key == current.spec.vectors_key:
                if spec.match != current.spec.match:
                    current.track.machine.settings = spec.match
                current.spec = spec
                continue
            closed.extend(self._with_embedding(current, current.track.finish()))
            del self._tracks[query_id]
        for query_id, spec in wanted.items():
            if query_id not in self._tracks:
                self._tracks[query_id] = self._new_track(spec, warm=True)
        return closed

    def _new_track(self, spec: StandingQuery, warm: bool) -> _Track:
        c = self.calibration
        calibrator = ScoreCalibrator(
            uses_background=True,
            sigma_at_half=c.sigma_at_half,
            halflife_frames=c.halflife_frames,
            warmup_frames=c.warmup_frames,
            clip_sigma=c.clip_sigma,
            min_std=c.min_std,
            prior=self.prior,
        )
        features = self.temporal.new_window() if self.temporal is not None else None
        track = QueryTrack(calibrator, MatchStateMachine(self.camera_id, spec.query_id, spec.match), features)
        if warm and len(self.window):
            # What the camera showed recently is its background for this query: learn it, and
            # give the temporal model its context. The machine sees none of it (no hit can be
            # about frames from before the query existed).
            raw, background = query_scores(self.window.embeddings(), spec.vectors)
            for ts_ms, r, b in zip(self.window.timestamps(), raw, background, strict=True):
                track.calibrate(int(ts_ms), float(r), float(b))
                calibrator.learn(float(r), float(b))
        return _Track(spec, track)

    # --- frames --------------------------------------------------------------------------

    def step(self, ts_ms: int, embedding: np.ndarray, frame_ref: Hashable = None) -> FrameOutcome:
        """Feed one frame (capture time in ms, L2-normalised embedding)."""
        ts_ms = int(ts_ms)
        if self.last_ts_ms is not None and ts_ms <= self.last_ts_ms:
            return FrameOutcome(accepted=False)  # already past it: a redelivery or a straggler
        vector = np.asarray(embedding, np.float32)
        self.window.append(ts_ms, vector, frame_ref)
        self.last_ts_ms = ts_ms
        outcome = FrameOutcome(accepted=True)
        tracks = list(self._tracks.values())
        if not tracks:
            return outcome
        raw_and_background = [query_scores(vector[None, :], entry.spec.vectors) for entry in tracks]
        scores = [
            entry.track.calibrate(ts_ms, float(raw[0]), float(background[0]))
            for entry, (raw, background) in zip(tracks, raw_and_background, strict=True)
        ]
        if self.temporal is not None:
            windows = np.stack([entry.track.features.matrix() for entry in tracks])
            scores = [float(p) for p in self.temporal.model(windows)]
        for entry, score, (raw, background) in zip(tracks, scores, raw_and_background, strict=True):
            machine = entry.track.machine
            hits = entry.track.decide(ts_ms, score, float(raw[0]), frame_ref, float(background[0]))
            # When the machine just took this frame as its event's peak, keep its embedding for
            # the hit store (the window may have moved on by the close) and have its thumbnail
            # stored. A frame that confirmed and closed nothing is not a peak of anything.
            if machine.peak_ts_ms == ts_ms or any(hit.peak_ts_ms == ts_ms for hit in hits):
                entry.peak_embedding = vector
                outcome.is_peak = True
            outcome.hits.extend(self._with_embedding(entry, list(hits)))
        return outcome

    def expire(self, now_ts_ms: int) -> list[tuple[Hit, np.ndarray]]:
        """Close events of a camera whose frames stopped coming (capture-time clock)."""
        hits: list[tuple[Hit, np.ndarray]] = []
        for entry in self._tracks.values():
            hits.extend(self._with_embedding(entry, entry.track.machine.expire(now_ts_ms)))
        return hits

    def open_events(self) -> int:
        return sum(
            entry.track.machine.state in (MatchState.CANDIDATE, MatchState.ACTIVE)
            for entry in self._tracks.values()
        )

    def _with_embedding(self, entry: _Track, hits: list[Hit]) -> list[tuple[Hit, np.ndarray]]:
        embedding = entry.peak_embedding
        if embedding is None:  # a restored open event whose snapshot had no embedding
            embedding = self.window.embeddings(1)[0] if len(self.window) else np.ones(self.dim, np.float32)
        return [(hit, embedding) for hit in hits]

    # --- snapshots -----------------------------------------------------------------------

    def to_state(self) -> dict:
        """Everything needed to resume this camera's decisions (JSON-serialisable)."""
        tracks = {}
        for query_id, entry in self._tracks.items():
            stats = entry.track.calibrator.stats
            tracks[query_id] = {
                "vectors_key": entry.spec.vectors_key,
                "stats": {"count": stats.count, "mean": stats.mean, "var": stats.var},
                "machine": entry.track.machine.to_state(),
                "features": entry.track.features.to_state() if entry.track.features is not None else None,
                "peak_embedding": None if entry.peak_embedding is None else entry.peak_embedding.tolist(),
            }
        return {
            "version": STATE_VERSION,
            "camera_id": self.camera_id,
            "last_ts_ms": self.last_ts_ms,
            "tracks": tracks,
        }

    def restore(self, state: dict, queries: Sequence[StandingQuery]) -> None:
        """Resume from `to_state()`'s snapshot with today's queries: a query whose vectors are
        unchanged resumes its track, any other query starts afresh (not warmed: the window is
        empty after a restart), and snapshot tracks of queries that are gone are dropped."""
        if state.get("version") != STATE_VERSION or state.get("camera_id") != self.camera_id:
            raise ValueError(f"not a version {STATE_VERSION} snapshot of camera {self.camera_id!r}")
        self.last_ts_ms = state["last_ts_ms"]
        self._tracks = {}
        saved = state["tracks"]
        for spec in queries:
            entry = self._new_track(spec, warm=False)
            old = saved.get(spec.query_id)
            if old is not None and old["vectors_key"] == spec.vectors_key:
                stats = entry.track.calibrator.stats
                stats.count, stats.mean, stats.var = (
                    old["stats"]["count"],
                    old["stats"]["mean"],
                    old["stats"]["var"],
                )
                entry.track.machine.restore(old["machine"])
                if old["features"] is not None and self.temporal is not None:
                    entry.track.features = self.temporal.window_from_state(old["features"])
                if old["peak_embedding"] is not None:
                    entry.peak_embedding = np.asarray(old["peak_embedding"], np.float32)
            self._tracks[spec.query_id] = entry
