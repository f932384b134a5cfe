"""One camera's standing queries, frame by frame: the live detector's decisions (no I/O).

`CameraPipeline` is what the detector service runs for each camera. For each frame, in
capture order:

1. `changes.observe(ts_ms, grey)`: the camera's change detector (regions/) looks at a small grey copy
   and says what to embed: nothing (a still frame: its last embeddings stand), the regions
   that changed, and/or the whole frame (at a low rate, and at a global change). The service
   then cuts those crops and embeds them, batched across cameras (and may add an object
   detector's boxes inside the motion: regions.select_regions);
2. `step(ts_ms, FrameEmbeddings)`: the new embeddings update the camera's views (views.py);
   a frame the pipeline has already moved past (a redelivery after a restart) changes
   nothing;
3. per standing query, its best view: each view's margin over the query's background prompts
   (its novelty) in standard deviations above the background of its place (places.py; the
   whole frame: the camera's), the most unusual view that passes the gate (discrimination.py;
   on by default: the view lifts this query above its usual cosine on this camera more than
   it lifts any other standing query or any negative of the query's language) being the
   query's region; each newly embedded view teaches the background (and the baselines of the
   lifts) once;
4. optionally the temporal model over every query's window of per-frame features;
5. per query: the match state machine (hysteresis, minimum duration, cooldown), which emits
   hits, each with its peak view (the region's box and embedding); the background statistics
   learn the frame only while the machine is idle.

Queries change while frames flow (`set_queries`): a new query starts a track whose background
is warmed up from the recent frames' views (it is judged at once rather than after a minute of
learning); an edited text or language restarts its track (the old statistics belong to another
embedding); a new threshold only changes the thresholds; a deleted query's open event is closed
and reported. Any change of the query set changes every query's rivals.

This file is over 400 lines because it is the one place where a camera's views, queries,
calibration, gate and state machines meet frame by frame; its parts (regions, views, places,
discrimination, matching) already live in their own modules.

`to_state()` / `from_state()` snapshot everything a restarted detector needs to carry on
exactly where the snapshot was taken (the change detector's background, the views, background
statistics, state machines, temporal windows, open events' peak views): with its Kafka offsets
committed only after the snapshot, a crash replays frames into the same state, so the same
hits come out with the same ids. The recent frames' views are not snapshotted (they only warm
up new queries).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np

from vigil.pipelines.calibration import ScoreCalibrator, ScorePrior, sigmoid
from vigil.pipelines.discrimination import (
    DiscriminationSettings,
    RawBaseline,
    ViewMargins,
    gate_margins,
    gate_negatives,
    rivals_for,
    view_cosines,
)
from vigil.pipelines.matching import Hit, MatchSettings, MatchState, MatchStateMachine, QueryTrack
from vigil.pipelines.places import PlaceStats
from vigil.pipelines.prompts import QueryVectors
from vigil.pipelines.regions import Box, ChangeDetector, RegionSettings
from vigil.pipelines.views import FULL_FRAME, View, ViewBook, ViewSettings, view_from_state, view_to_state

# windows (n, window, features) -> (n,) probabilities; models.temporal.TemporalScorer.score
TemporalModel = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TemporalStage:
    """The temporal model and its per-(camera, query) feature window (pipelines.temporal):
    `new_window()` makes an empty one, `window_from_state(dict)` restores a snapshot."""

    model: TemporalModel
    new_window: Callable[[], Any]
    window_from_state: Callable[[dict[str, Any]], Any]


STATE_VERSION = 2


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


@dataclass(frozen=True)
class FrameEmbeddings:
    """What the encoder made of one frame: the whole frame's embedding (None when `plan` did
    not ask for it), the embedded regions, and whether the scene changed as a whole."""

    full: np.ndarray | None = None
    regions: tuple[tuple[Box, np.ndarray], ...] = ()
    global_change: bool = False
    settled: tuple[tuple[Box, np.ndarray], ...] = ()  # regions whose motion stopped (views.py)


@dataclass
class FrameOutcome:
    """What one frame did: whether it was taken, the hits it caused (each with the view of its
    peak frame: the region's box and embedding, for the hit store and the thumbnail), and
    whether it is now the peak of an open candidate or event (the service then stores its
    thumbnail: a hit may point at it later)."""

    accepted: bool
    hits: list[tuple[Hit, View]] = field(default_factory=list)
    is_peak: bool = False
    peak_boxes: list[Box] = field(default_factory=list)  # the regions this frame is the peak of


@dataclass
class _Track:
    spec: StandingQuery
    track: QueryTrack
    rivals: tuple[str, ...]  # the other queries a region must lift this one more than (the gate)
    baseline: RawBaseline  # this query's (and its gate negatives') usual cosines on the camera
    gate_texts: np.ndarray  # (1 + negatives, dim): the query's text, then the negatives its gate counts
    places: PlaceStats = field(default_factory=PlaceStats)
    peak_view: View | None = None


class CameraPipeline:
    """The standing queries of one camera; see the module docstring.

    prior: the encoder's typical background signal (pipelines.calibration.score_prior_for), so
        that a new camera or query is judged from its first frame; None keeps it silent until
        `warmup_frames` background frames were seen.
    temporal: the temporal stage, or None to threshold the calibrated score itself.
    regions / views / discrimination: the change detector's, the view book's and the
        discriminative decision's settings.
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
        regions: RegionSettings | None = None,
        views: ViewSettings | None = None,
        discrimination: DiscriminationSettings | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.dim = dim
        self.calibration = calibration or CalibrationSettings()
        self.prior = prior
        self.temporal = temporal
        self.discrimination = discrimination or DiscriminationSettings()
        self.changes = ChangeDetector(regions or RegionSettings())
        self.views = ViewBook(views)
        # (ts_ms, (v, dim) views) of recent frames: what a new query is warmed up from
        # (ts_ms, (v, dim) views, their boxes, indexes of the views new on that frame) of recent
        # frames: what a new query is warmed up from
        self._recent: deque[tuple[int, np.ndarray, tuple[Box, ...], tuple[int, ...]]] = deque(
            maxlen=window_frames
        )
        self._tracks: dict[str, _Track] = {}
        self._specs: list[StandingQuery] = []
        self.last_ts_ms: int | None = None

    # --- queries -------------------------------------------------------------------------

    @property
    def query_ids(self) -> list[str]:
        return list(self._tracks)

    def set_queries(self, queries: Sequence[StandingQuery]) -> list[tuple[Hit, View]]:
        """Make the tracked queries these; returns the closing hits of removed queries."""
        wanted = {query.query_id: query for query in queries}
        closed: list[tuple[Hit, View]] = []
        for query_id in list(self._tracks):
            current = self._tracks[query_id]
            spec = wanted.get(query_id)
            if spec is not None and spec.vectors_key == current.spec.vectors_key:
                if spec.match != current.spec.match:
                    current.track.machine.settings = spec.match
                current.spec = spec
                continue
            closed.extend(self._with_view(current, current.track.finish()))
            del self._tracks[query_id]
        self._refresh_rivals(list(wanted.values()))
        for query_id, spec in wanted.items():
            if query_id not in self._tracks:
                self._tracks[query_id] = self._new_track(spec, warm=True)
        return closed

    def _rivals(self, spec: StandingQuery, specs: Sequence[StandingQuery]) -> tuple[str, ...]:
        others = {other.query_id: other.vectors for other in specs if other.query_id != spec.query_id}
        return rivals_for(spec.vectors, others, self.discrimination)

    def _gate_texts(self, spec: StandingQuery) -> np.ndarray:
        """(1 + negatives, dim): the query's text, then the negatives its gate counts."""
        negatives = gate_negatives(spec.vectors, self.discrimination)
        return np.concatenate([spec.vectors.text[None, :], negatives]).astype(np.float32)

    def _refresh_rivals(self, specs: Sequence[StandingQuery]) -> None:
        for entry in self._tracks.values():
            entry.rivals = self._rivals(entry.spec, specs)
        self._specs = list(specs)

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
        rivals = self._rivals(spec, self._specs)
        baseline = RawBaseline(c.halflife_frames)
        gate_texts = self._gate_texts(spec)
        if warm:
            # What the camera showed recently is its background for this query: learn it, and
            # give the temporal model its context. The machine sees none of it (no hit can be
            # about frames from before the query existed).
            places = PlaceStats()
            for ts_ms, views, boxes, new in self._recent:
                text_cosines, competing = view_cosines(views, gate_texts, spec.vectors.background)
                raw = text_cosines[:, 0]
                best = int(np.argmax(raw - competing))
                # Their gate margins stay unknown (None): the rivals' baselines of those frames
                # were not kept.
                track.calibrate(ts_ms, float(raw[best]), float(competing[best]))
                for v in new:
                    calibrator.learn(float(raw[v]), float(competing[v]))
                    baseline.learn(text_cosines[v])
                    if boxes[v] != FULL_FRAME:
                        places.learn(boxes[v], float(raw[v] - competing[v]))
            return _Track(spec, track, rivals, baseline, gate_texts, places)
        return _Track(spec, track, rivals, baseline, gate_texts)

    # --- frames --------------------------------------------------------------------------

    def step(
        self, ts_ms: int, embeddings: FrameEmbeddings | np.ndarray, frame_ref: Hashable = None
    ) -> FrameOutcome:
        """Feed one frame: capture time in ms, and what the encoder made of it (a bare (dim,)
        vector is a whole-frame embedding; `FrameEmbeddings()` is a still frame)."""
        ts_ms = int(ts_ms)
        if self.last_ts_ms is not None and ts_ms <= self.last_ts_ms:
            return FrameOutcome(accepted=False)  # already past it: a redelivery or a straggler
        if not isinstance(embeddings, FrameEmbeddings):
            embeddings = FrameEmbeddings(full=np.asarray(embeddings, np.float32))
        changed = (
            embeddings.full is not None
            or embeddings.regions
            or embeddings.settled
            or embeddings.global_change
        )
        if changed:
            self.views.update(
                ts_ms, embeddings.full, embeddings.regions, embeddings.global_change, embeddings.settled
            )
        self.last_ts_ms = ts_ms
        outcome = FrameOutcome(accepted=True)
        if not len(self.views):
            return outcome  # nothing seen yet (a stream that starts with still frames)
        views = self.views.views()
        matrix = self.views.matrix()
        # The views embedded on this frame (the full view is first, new regions are last): each
        # embedding teaches the background once, not once per frame it stands for.
        added = len(embeddings.regions) + len(embeddings.settled)
        new = ((0,) if embeddings.full is not None else ()) + tuple(range(len(views) - added, len(views)))
        self._recent.append((ts_ms, matrix, tuple(view.box for view in views), new))
        tracks = list(self._tracks.values())
        if not tracks:
            return outcome
        # Per query: the views' cosines with it and its gate's negatives, (views, 1 + negatives),
        # and with its best background prompt. Column 0 less the latter is its novelty margin;
        # every column less its camera baseline is a lift (the gate).
        measured = [view_cosines(matrix, e.gate_texts, e.spec.vectors.background) for e in tracks]
        gate_cosines = [text_cosines for text_cosines, _ in measured]
        cosines = [(text_cosines[:, 0], competing) for text_cosines, competing in measured]
        for entry, cos in zip(tracks, gate_cosines, strict=True):
            if entry.baseline.mean is None:  # a camera's first view: lifts start from it
                entry.baseline.learn(cos[0])
        all_lifts = [entry.baseline.lifts(cos) for entry, cos in zip(tracks, gate_cosines, strict=True)]
        lifts = {entry.spec.query_id: lift[:, 0] for entry, lift in zip(tracks, all_lifts, strict=True)}
        negative_lifts = {
            entry.spec.query_id: (lift[:, 1:].max(axis=1) if lift.shape[1] > 1 else None)
            for entry, lift in zip(tracks, all_lifts, strict=True)
        }
        best = [
            self._best(entry, views, raw, competing, lifts, negative_lifts[entry.spec.query_id])
            for entry, (raw, competing) in zip(tracks, cosines, strict=True)
        ]
        scores = []
        for entry, (b, z, _) in zip(tracks, best, strict=True):
            calibrated = entry.track.calibrate(  # and the temporal features
                ts_ms, b.raw_cosine, b.competitor_cosine, b.gate_margin
            )
            scores.append(calibrated if z is None else sigmoid(z - entry.track.calibrator.sigma_at_half))
        if self.temporal is not None:
            matrices = []
            for entry in tracks:
                features = entry.track.features
                assert features is not None  # with a temporal model every track keeps its features
                matrices.append(features.matrix())
            windows = np.stack(matrices)
            scores = [float(p) for p in self.temporal.model(windows)]
        for entry, score, (b, _, passes), (raw, competing), gate_cos in zip(
            tracks, scores, best, cosines, gate_cosines, strict=True
        ):
            machine = entry.track.machine
            if self.discrimination.enabled and machine.state is not MatchState.ACTIVE and not passes:
                # Not this query's region: it may neither open nor confirm an event (an open
                # event is held by hysteresis on the novelty alone, so a flicker of another
                # explanation does not cut it short).
                score = min(score, machine.settings.exit * 0.999)
            learn = [(float(raw[v]), float(competing[v])) for v in new]
            hits = entry.track.decide(ts_ms, score, b.raw_cosine, frame_ref, b.competitor_cosine, learn)
            if entry.track.learns(hits):  # the places learn what the camera-wide statistics learn
                for v in new:
                    entry.baseline.learn(gate_cos[v])
                    if views[v].box != FULL_FRAME:
                        entry.places.learn(views[v].box, float(raw[v] - competing[v]))
            # When the machine just took this frame as its event's peak, keep its view for the
            # hit store (the views may have moved on by the close) and have its thumbnail
            # stored. A frame that confirmed and closed nothing is not a peak of anything.
            if machine.peak_ts_ms == ts_ms or any(hit.peak_ts_ms == ts_ms for hit in hits):
                entry.peak_view = views[b.view]
                outcome.is_peak = True
                outcome.peak_boxes.append(entry.peak_view.box)
            outcome.hits.extend(self._with_view(entry, list(hits)))
        return outcome

    def _view_zs(self, entry: _Track, views: list[View], margins: np.ndarray) -> list[float | None]:
        """Each view's margin in standard deviations above the background of its place
        (places.py; the whole frame: the camera's), None while there is no background."""
        camera_wide = entry.track.calibrator.background()
        zs: list[float | None] = []
        for view, margin in zip(views, margins, strict=True):
            place = camera_wide if view.box == FULL_FRAME else entry.places.background(view.box, camera_wide)
            zs.append(None if place is None else (float(margin) - place[0]) / place[1])
        return zs

    def _best(
        self,
        entry: _Track,
        views: list[View],
        raw: np.ndarray,
        competing: np.ndarray,
        lifts: dict[str, np.ndarray],
        negative_lifts: np.ndarray | None = None,
    ) -> tuple[ViewMargins, float | None, bool]:
        """The query's region on this frame, its z-score, and whether it passes the gate: of the
        views where the query beats what the gate asks (discrimination.py: with "queries", the
        region lifts this query more than every other standing query, each over its own camera
        baseline), the most unusual for its place (places.py); when none passes, the most
        unusual of all (the caller then keeps it from opening an event)."""
        margins = raw - competing
        zs = self._view_zs(entry, views, margins)
        rival_lifts = [lifts[r] for r in entry.rivals if r in lifts]
        if negative_lifts is not None:
            rival_lifts.append(negative_lifts)
        gate = gate_margins(lifts[entry.spec.query_id], rival_lifts)
        passing = [v for v in range(len(margins)) if gate[v] > self.discrimination.min_margin]
        order = passing or list(range(len(margins)))
        if zs[0] is None:  # no background yet (a prior-less warm-up): the widest margin
            index = max(order, key=lambda v: margins[v])
        else:
            index = max(order, key=lambda v: -math.inf if (z := zs[v]) is None else z)  # all are known
        z = zs[index]
        if z is not None and len(order) > 1:
            # The best of k views is k chances at a high z: judged as one view would be, a frame
            # with many regions fires more often by chance. Shift z so that the chance of
            # clearing `sigma_at_half` stays that of one view (Bonferroni).
            z -= _many_views_shift(entry.track.calibrator.sigma_at_half, len(order))
        view = ViewMargins(index, float(raw[index]), float(competing[index]), float(gate[index]))
        return view, z, bool(passing)

    def expire(self, now_ts_ms: int) -> list[tuple[Hit, View]]:
        """Close events of a camera whose frames stopped coming (capture-time clock)."""
        hits: list[tuple[Hit, View]] = []
        for entry in self._tracks.values():
            hits.extend(self._with_view(entry, entry.track.machine.expire(now_ts_ms)))
        return hits

    def open_events(self) -> int:
        return sum(
            entry.track.machine.state in (MatchState.CANDIDATE, MatchState.ACTIVE)
            for entry in self._tracks.values()
        )

    def _with_view(self, entry: _Track, hits: list[Hit]) -> list[tuple[Hit, View]]:
        view = entry.peak_view
        if view is None:  # a restored open event whose snapshot had no peak view
            views = self.views.views()
            view = views[0] if views else View(FULL_FRAME, np.ones(self.dim, np.float32), 0)
        return [(hit, view) for hit in hits]

    # --- snapshots -----------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything needed to resume this camera's decisions (JSON-serialisable)."""
        tracks = {}
        for query_id, entry in self._tracks.items():
            stats = entry.track.calibrator.stats
            tracks[query_id] = {
                "vectors_key": entry.spec.vectors_key,
                "stats": {"count": stats.count, "mean": stats.mean, "var": stats.var},
                "machine": entry.track.machine.to_state(),
                "features": entry.track.features.to_state() if entry.track.features is not None else None,
                "peak_view": None if entry.peak_view is None else view_to_state(entry.peak_view),
                "places": entry.places.to_state(),
                "baseline": entry.baseline.to_state(),
            }
        return {
            "version": STATE_VERSION,
            "camera_id": self.camera_id,
            "last_ts_ms": self.last_ts_ms,
            "changes": self.changes.to_state(),
            "views": self.views.to_state(),
            "tracks": tracks,
        }

    def restore(self, state: dict[str, Any], queries: Sequence[StandingQuery]) -> None:
        """Resume from `to_state()`'s snapshot with today's queries: a query whose vectors are
        unchanged resumes its track, any other query starts afresh (not warmed: the window is
        empty after a restart), and snapshot tracks of queries that are gone are dropped."""
        if state.get("version") != STATE_VERSION or state.get("camera_id") != self.camera_id:
            raise ValueError(f"not a version {STATE_VERSION} snapshot of camera {self.camera_id!r}")
        self.last_ts_ms = state["last_ts_ms"]
        self.changes.restore(state["changes"])
        self.views.restore(state["views"])
        self._tracks = {}
        self._specs = list(queries)
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
                if old["peak_view"] is not None:
                    entry.peak_view = view_from_state(old["peak_view"])
                entry.places.restore(old["places"])
                entry.baseline.restore(old.get("baseline"))  # absent in snapshots before the gate used lifts
            self._tracks[spec.query_id] = entry


@lru_cache(maxsize=256)
def _many_views_shift(sigma: float, views: int) -> float:
    """How much higher the best of `views` z-scores must be than one view's `sigma` to be as
    unlikely under the background (one-sided, independent views: a conservative bound)."""
    normal = NormalDist()
    tail = 1.0 - normal.cdf(sigma)
    return normal.inv_cdf(1.0 - tail / views) - sigma
