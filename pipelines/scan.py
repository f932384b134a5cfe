"""Standing queries over a recorded file: the events each query makes in it (no I/O).

`ScanPipeline` is the pure half of `vigil scan`: the caller decodes and embeds the file's sampled
frames and feeds them in capture order, in batches, as (ts_ms, frame embeddings, frame refs);
`finish()` returns the events of every query, as a live detector would have found them, with
times relative to whatever clock the caller used (seconds into the file for `vigil scan`).

Calibration warm-up (the choice made here, and why): a live camera learns what is normal for
each query from its own past frames. A recorded file has no past, and starting it cold would
leave the first `warmup_frames` frames silent (or judged against a generic prior that means
little for this scene). But a file is known in full before it has to be judged, so the scan
takes two passes, both over per-frame scores only (frames x queries floats, kept in memory;
the embeddings themselves are not):

1. while frames are fed: keep each frame's cosine with every query and, for queries embedded
   with background prompts (`QueryVectors`, prompts.py), its highest cosine with them and its
   cosines with the negatives of the query's gate (per view, when a frame has several);
2. at `finish()`: estimate each query's background *signal* (the cosine, or its margin over
   the background prompts, as the calibrator sees it) robustly over the whole file, median
   and MAD (scaled by 1.4826 to a standard deviation, floored at `min_std`), so the frames of
   the events themselves (a minority of the file) barely move it; then replay the scores, in
   order, through a normal `QueryTrack` (`ScoreCalibrator` + `MatchStateMachine`) whose
   `ScorePrior` is that estimate with the weight of the whole file. The calibrator still
   learns from idle frames as it goes, blended with the prior by counts (it never leaves
   warm-up, so the prior keeps at least half the weight): a slow drift of the scene is
   followed, an event is not taught as background. What it learns is clipped to the file's
   background +- `clip_sigma` standard deviations (a live calibrator clips only once warmed
   up): a span far *below* normal (another query's object covering the view drives this
   query's margin down by ten standard deviations) would otherwise inflate the learnt spread
   until a real event later in the file no longer stands out.

At the end every state machine is finished, so an event still on when the file ends is closed
at its last frame. Only closed events are reported (the "confirmed" hits the state machine
emits early are a live detector's alert, not a scan result).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from vigil.pipelines.calibration import ScoreCalibrator, ScorePrior
from vigil.pipelines.discrimination import (
    DiscriminationSettings,
    gate_margins,
    gate_negatives,
    rivals_for,
)
from vigil.pipelines.matching import Hit, MatchSettings, MatchState, MatchStateMachine, QueryTrack
from vigil.pipelines.prompts import QueryVectors

# MAD of a normal distribution times this is its standard deviation.
_MAD_TO_STD = 1.4826


@dataclass(frozen=True)
class ScanSettings:
    """How a scan decides (durations in ms of capture time, thresholds on the calibrated scale).

    threshold: the enter threshold, a number in (0, 1) or "auto" (0.5: `sigma_at_half` standard
        deviations above the file's background for that query).
    exit_ratio: exit threshold as a fraction of enter (hysteresis).
    min_duration_ms / cooldown_ms / max_gap_ms: as in `MatchSettings`; a scan's defaults are
        shorter than a live camera's: an operator searching footage wants every occurrence.
    sigma_at_half: standard deviations above the background that score 0.5.
    min_std: floor on a query's background standard deviation (in the signal's units: cosine, or
        cosine margin over the background prompts).
    """

    threshold: float | str = "auto"
    exit_ratio: float = 0.7
    min_duration_ms: int = 1_000
    cooldown_ms: int = 2_000
    max_gap_ms: int = 5_000
    sigma_at_half: float = 3.0
    min_std: float = 2e-3

    def match_settings(self) -> MatchSettings:
        return MatchSettings.for_threshold(
            self.threshold,
            exit_ratio=self.exit_ratio,
            min_duration_ms=self.min_duration_ms,
            cooldown_ms=self.cooldown_ms,
            max_gap_ms=self.max_gap_ms,
        )


@dataclass(frozen=True)
class ScanEvent:
    """One event of one query: first frame, last frame and peak frame (ms), peak calibrated score."""

    query: str
    start_ms: int
    end_ms: int
    peak_ms: int
    score: float
    frame_ref: Hashable = None

    def as_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "start_s": round(self.start_ms / 1000, 1),
            "end_s": round(self.end_ms / 1000, 1),
            "peak_s": round(self.peak_ms / 1000, 1),
            "score": round(self.score, 4),
        }


def robust_background(signal: np.ndarray, min_std: float) -> tuple[float, float]:
    """(median, MAD-based std) of one query's signal (cosines or margins) over a file."""
    values = np.asarray(signal, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, min_std
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    return median, max(mad * _MAD_TO_STD, min_std)


class FileCalibrator(ScoreCalibrator):
    """A `ScoreCalibrator` whose prior is the file's own robust background, which it trusts
    enough to clip what it learns to prior mean +- clip_sigma prior standard deviations."""

    def __init__(self, *, prior: ScorePrior, **settings: Any) -> None:
        super().__init__(prior=prior, prior_fades=False, **settings)  # the file's own: it keeps its say
        self.file_background = prior

    def learn(self, raw_cosine: float, background_cosine: float | None = None) -> None:
        value = self.signal(raw_cosine, background_cosine)
        bound = self.stats.clip_sigma * self.file_background.std
        mean = self.file_background.mean
        self.stats.update(min(max(value, mean - bound), mean + bound))


class ScanPipeline:
    """Queries' events over one recorded file; see the module docstring.

    queries: the query texts, in the order of `query_vectors`.
    query_vectors: one `QueryVectors` per query (`embed_queries`: prompt ensemble and background
        prompts; the signal is the cosine margin over the background prompts), or a plain
        (q, dim) array of L2-normalised text embeddings (the signal is the raw cosine).
    """

    def __init__(
        self,
        queries: Sequence[str],
        query_vectors: Sequence[QueryVectors] | np.ndarray,
        settings: ScanSettings | None = None,
        discrimination: DiscriminationSettings | None = None,
    ) -> None:
        self.discrimination = discrimination or DiscriminationSettings()
        if isinstance(query_vectors, np.ndarray):
            vectors: np.ndarray = np.asarray(query_vectors, np.float32)
            self._backgrounds: list[np.ndarray] | None = None
        else:
            query_vectors = list(query_vectors)
            if not all(isinstance(v, QueryVectors) for v in query_vectors):
                raise TypeError("query_vectors must be QueryVectors or a (q, dim) array")
            vectors = np.stack([v.text for v in query_vectors]) if query_vectors else np.zeros((0, 0))
            # Each query's novelty is its margin over its background prompts; its gate counts
            # the scan's other queries and its language's negatives (discrimination.py).
            self._backgrounds = [np.asarray(v.background, np.float32) for v in query_vectors]
            self._gate_texts = [
                np.concatenate([v.text[None, :], gate_negatives(v, self.discrimination)]).astype(np.float32)
                for v in query_vectors
            ]
            by_index = {str(i): v for i, v in enumerate(query_vectors)}
            self._rivals = [
                [int(r) for r in rivals_for(v, by_index, self.discrimination)] for v in query_vectors
            ]
        if vectors.ndim != 2 or vectors.shape[0] != len(queries) or not queries:
            raise ValueError("need one query vector per query, and at least one query")
        self.queries = list(queries)
        self.query_vectors = vectors.astype(np.float32)
        self.settings = settings or ScanSettings()
        self._match = self.settings.match_settings()  # validates the thresholds up front
        self._ts: list[int] = []
        self._refs: list[Hashable] = []
        self._cosines: list[np.ndarray] = []  # without background prompts: (n, queries) per batch
        # With them, per frame: its views' cosines with every query and with each query's best
        # background prompt, both (views, queries), and per query with its gate's negatives.
        # Which view is a query's region depends on the gate, whose lifts are over file-wide
        # baselines, so it is chosen once all is fed (and kept until more is fed).
        self._view_cosines: list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]] = []
        self._chosen: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._finished = False

    @property
    def uses_background(self) -> bool:
        """True when each query's signal is its margin over its background prompts."""
        return self._backgrounds is not None

    @property
    def frames(self) -> int:
        return len(self._ts)

    def feed(
        self,
        ts_ms: Sequence[int],
        embeddings: np.ndarray | Sequence[np.ndarray],
        frame_refs: Sequence[Hashable] | None = None,
    ) -> None:
        """Take one batch of frames, in capture order: times (ms), embeddings, refs.

        embeddings: (n, dim), one whole-frame embedding per frame, or n (v_i, dim) arrays, each
            frame's views (views.py: the whole frame and its regions); a query's frame is then
            its best view's, the one it explains best relative to its competitors."""
        if self._finished:
            raise RuntimeError("this scan has finished")
        if isinstance(embeddings, np.ndarray):
            frames = np.asarray(embeddings, np.float32)
            if frames.ndim != 2:
                raise ValueError("embeddings must be (n, dim) with one row per timestamp")
            views = [frame[None, :] for frame in frames]
        else:
            views = [np.asarray(frame_views, np.float32) for frame_views in embeddings]
        if len(views) != len(ts_ms):
            raise ValueError("need one frame's embeddings per timestamp")
        if not views:
            return
        refs = list(frame_refs) if frame_refs is not None else [None] * len(ts_ms)
        if len(refs) != len(ts_ms):
            raise ValueError("need one frame ref per timestamp")
        self._ts.extend(int(t) for t in ts_ms)
        self._refs.extend(refs)
        if self._backgrounds is None:
            self._cosines.append(np.stack([(frame @ self.query_vectors.T).max(axis=0) for frame in views]))
            return
        for frame in views:
            cosines = frame @ self.query_vectors.T
            competing = np.stack(
                [(frame @ competitors.T).max(axis=1) for competitors in self._backgrounds], axis=1
            )
            negatives = [frame @ texts[1:].T for texts in self._gate_texts]  # per query (views, n)
            self._view_cosines.append((cosines, competing, negatives))

    def signals(self) -> np.ndarray:
        """(frames, queries) signal over what has been fed: cosines, or their background margins."""
        cosines, background = self._matrices()
        return cosines if background is None else cosines - background

    def backgrounds(self) -> list[tuple[float, float]]:
        """Per query, (median, std) of its signal over what has been fed (pass 1)."""
        signals = self.signals()
        return [robust_background(signals[:, q], self.settings.min_std) for q in range(len(self.queries))]

    def finish(self) -> list[ScanEvent]:
        """Calibrate and match every query over the whole file (pass 2); events sorted by start."""
        self._finished = True
        cosines, background = self._matrices()
        gates = self._choose_views()[3] if self._backgrounds is not None and self._view_cosines else None
        n = cosines.shape[0]
        events: list[ScanEvent] = []
        if n == 0:
            return events
        for q, (mean, std) in enumerate(self.backgrounds()):
            calibrator = FileCalibrator(
                uses_background=self.uses_background,
                sigma_at_half=self.settings.sigma_at_half,
                warmup_frames=n + 1,  # never leaves warm-up: the file-wide prior keeps its say
                min_std=self.settings.min_std,
                prior=ScorePrior(mean=mean, std=std, weight=float(n)),
            )
            machine = MatchStateMachine("scan", f"q{q}", self._match)
            track = QueryTrack(calibrator, machine)
            gate = self.discrimination.enabled and gates is not None
            hits: list[Hit] = []
            for i in range(n):
                raw = float(cosines[i, q])
                best_background = None if background is None else float(background[i, q])
                if not math.isfinite(raw - (best_background or 0.0)):
                    continue  # a broken frame: no evidence either way
                score = track.calibrate(self._ts[i], raw, best_background)
                if gate and gates is not None and machine.state is not MatchState.ACTIVE:
                    if gates[i, q] <= self.discrimination.min_margin:
                        score = min(score, machine.settings.exit * 0.999)  # not this query's region
                hits.extend(track.decide(self._ts[i], score, raw, i, best_background))
            hits.extend(track.finish())
            for hit in hits:
                if hit.closed:
                    assert hit.end_ts_ms is not None  # a closed hit has its end
                    # The scan's frame refs are frame indices (decide() above is given i).
                    ref = self._refs[cast(int, hit.thumbnail_ref)] if hit.thumbnail_ref is not None else None
                    events.append(
                        ScanEvent(
                            query=self.queries[q],
                            start_ms=hit.event_start_ts_ms,
                            end_ms=int(hit.end_ts_ms),
                            peak_ms=hit.peak_ts_ms,
                            score=float(hit.peak_score),
                            frame_ref=ref,
                        )
                    )
        events.sort(key=lambda e: (e.start_ms, self.queries.index(e.query)))
        return events

    def _matrices(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(frames, queries) cosines, and highest background cosines (None without background)."""
        empty = np.zeros((0, len(self.queries)), np.float32)
        if self._backgrounds is None:
            return (np.concatenate(self._cosines, axis=0) if self._cosines else empty), None
        if not self._view_cosines:
            return empty, empty
        _, cosines, competing, _ = self._choose_views()
        return cosines, competing

    def _choose_views(self) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """Per frame and query: the cosine, best background prompt's cosine and gate margin of
        the query's region. As live (pipelines/detector.py): the region is the widest margin
        among the views that pass the gate (the view lifts this query more than every other
        query and every negative of its language); a text's lift is its cosine less its
        file-wide baseline, the median of its whole-frame (first view) cosine, as the file-wide
        calibration is."""
        n = len(self._view_cosines)
        if self._chosen is not None and self._chosen[0] == n:
            return self._chosen
        baselines = np.median(np.stack([c[0] for c, _, _ in self._view_cosines]), axis=0)
        negative_baselines = [
            np.median(np.stack([negs[q][0] for _, _, negs in self._view_cosines]), axis=0)
            for q in range(len(self.queries))
        ]
        q_count = len(self.queries)
        raw = np.zeros((n, q_count), np.float32)
        competing = np.zeros_like(raw)
        gates = np.zeros_like(raw)
        for i, (cosines, competitors, negatives) in enumerate(self._view_cosines):
            lifts = cosines - baselines
            for q in range(q_count):
                margins = cosines[:, q] - competitors[:, q]
                rivals = [lifts[:, r] for r in self._rivals[q]]
                if negatives[q].shape[1]:
                    rivals.append((negatives[q] - negative_baselines[q]).max(axis=1))
                gate = gate_margins(lifts[:, q], rivals)
                passing = np.flatnonzero(gate > self.discrimination.min_margin)
                candidates = passing if len(passing) else np.arange(len(margins))
                v = int(candidates[np.argmax(margins[candidates])])
                raw[i, q], competing[i, q], gates[i, q] = cosines[v, q], competitors[v, q], gate[v]
        self._chosen = (n, raw, competing, gates)
        return self._chosen
