"""Per-(sequence, query) streams run as the live detector runs them, and the figures they make.

`run_sequence` replays one sequence's frames, in capture order, through one `ScoreCalibrator`,
`RawBaseline`, `FeatureWindow` and `MatchStateMachine` per query, exactly as
`pipelines/detector.py` does for a camera of whole frames with its default discriminative
decision: each frame is calibrated against that query's running background (margin over the
background prompts; prior-less warm-up or the encoder's prior) and gets its gate margin (the
query's lift over its camera baseline less the highest lift of its rivals: the other queries
of its camera, its language's negatives; pipelines/discrimination.py), its features are
pushed, every query's decision score is computed in one batch (the calibrated score itself for
the baseline, the temporal model's probability for the GRU), a frame that fails the gate may
not open or confirm an event, the machine steps on that score, and the frame teaches the
background and the baselines only while the machine stays idle. So each scorer is judged in
closed loop: what it decides changes what its calibrator learns, as it would live.

Figures (`score_streams`):
- frame level: the decision score >= the enter threshold vs the label, over every query-frame;
- event level: a ground-truth event is a run of frames showing the query's object; a hit
  (an event the machine confirmed) that overlaps it detects it (the first one; later ones are
  duplicates); a hit that overlaps none is a false alert. Precision = detecting hits / hits;
- time to detect: capture time of the frame that confirmed the hit minus that of the first
  frame showing the photo (so the sampling delay before the first frame is not counted);
- false alerts per hour of background: false alerts / background time, where background
  time is the time covered by label-0 frames that had a z-score (could alert), summed over
  every (sequence, query): per query-hour, i.e. per standing query on one camera.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vigil.pipelines.calibration import ScoreCalibrator, ScorePrior
from vigil.pipelines.discrimination import DiscriminationSettings, RawBaseline, gate_margins
from vigil.pipelines.matching import Hit, MatchSettings, MatchState, MatchStateMachine
from vigil.pipelines.temporal import FEATURE_NAMES, TEMPORAL_WINDOW, FeatureWindow

# pipelines/detector.py's CalibrationSettings defaults (the live detector's calibration).
CALIBRATION = {
    "sigma_at_half": 3.0,
    "halflife_frames": 300.0,
    "warmup_frames": 30,
    "clip_sigma": 4.0,
    "min_std": 2e-3,
}
MATCH = MatchSettings(enter=0.5, exit=0.35, min_duration_ms=1_000, cooldown_ms=10_000, max_gap_ms=5_000)
GATE_MIN_MARGIN = DiscriminationSettings().min_margin  # the live detector's default gate
BACKGROUND_FRAME_CAP_S = 5.0  # a frame stands for at most this much background time (stalls)

Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass
class SequenceInput:
    """One sequence's frames as the detector sees them, for its queries."""

    name: str
    ts_ms: np.ndarray  # (n,) int64
    raw: np.ndarray  # (q, n) cosine with each query
    background: np.ndarray  # (q, n) max cosine with that query's background prompts
    labels: np.ndarray  # (q, n) int8
    query_keys: list[str]
    conditions: list[str]  # per frame: "plain", "cut", "light", "other-photo" (see train.py)
    # Per query: (n, 1 + negatives) cosines with its text and the negatives its gate counts,
    # and the indexes of its rival queries (pipelines.discrimination.rivals_for). None: no
    # gate (every frame passes, the gate feature is +inf).
    gate_cosines: list[np.ndarray] | None = None
    rivals: list[tuple[int, ...]] | None = None


@dataclass
class StreamResult:
    """One (sequence, query) replayed: per frame features and decisions, and its hits."""

    sequence: str
    query: str
    ts_ms: np.ndarray
    labels: np.ndarray
    rows: np.ndarray  # (n, features): FeatureWindow rows
    calibrated: np.ndarray  # (n,)
    decision: np.ndarray  # (n,) what the machine was fed
    z_known: np.ndarray  # (n,) bool
    hits: list[tuple[int, Hit]] = field(default_factory=list)  # (frame index it was emitted at, hit)
    conditions: list[str] = field(default_factory=list)


def new_calibrator(prior: ScorePrior | None) -> ScoreCalibrator:
    return ScoreCalibrator(uses_background=True, prior=prior, **CALIBRATION)


def run_sequence(
    sequence: SequenceInput,
    prior: ScorePrior | None,
    scorer: Scorer | None = None,
    match: MatchSettings = MATCH,
    window: int = TEMPORAL_WINDOW,
) -> list[StreamResult]:
    """Replay one sequence for all its queries (see the module docstring); scorer None is the
    per-frame threshold baseline (the machine is fed the calibrated score)."""
    q_count, n = sequence.raw.shape
    calibrators = [new_calibrator(prior) for _ in range(q_count)]
    machines = [MatchStateMachine(sequence.name, key, match) for key in sequence.query_keys]
    windows = [FeatureWindow(window) for _ in range(q_count)]
    results = [
        StreamResult(
            sequence=sequence.name,
            query=key,
            ts_ms=sequence.ts_ms,
            labels=sequence.labels[q],
            rows=np.zeros((n, len(FEATURE_NAMES)), np.float32),
            calibrated=np.zeros(n, np.float32),
            decision=np.zeros(n, np.float32),
            z_known=np.zeros(n, bool),
            conditions=sequence.conditions,
        )
        for q, key in enumerate(sequence.query_keys)
    ]
    sigma = CALIBRATION["sigma_at_half"]
    baselines = [RawBaseline(CALIBRATION["halflife_frames"]) for _ in range(q_count)]
    gated = sequence.gate_cosines is not None
    for i in range(n):
        ts = int(sequence.ts_ms[i])
        gates = _gate_margins(sequence, baselines, i) if gated else np.full(q_count, np.inf)
        for q in range(q_count):
            z = calibrators[q].z_score(float(sequence.raw[q, i]), float(sequence.background[q, i]))
            score = 0.0 if z is None else _sigmoid(z - sigma)
            windows[q].push(ts, z, score, float(gates[q]))
            result = results[q]
            result.rows[i] = windows[q].last_row
            result.calibrated[i] = score
            result.z_known[i] = z is not None
        if scorer is None:
            decisions = [float(r.calibrated[i]) for r in results]
        else:
            decisions = [float(p) for p in scorer(np.stack([w.matrix() for w in windows]))]
        for q in range(q_count):
            result, machine = results[q], machines[q]
            decision = decisions[q]
            if machine.state is not MatchState.ACTIVE and not gates[q] > GATE_MIN_MARGIN:
                decision = min(decision, machine.settings.exit * 0.999)  # not this query's frame
            result.decision[i] = decision
            hits = machine.step(ts, decision, i)
            result.hits.extend((i, hit) for hit in hits)
            if machine.state is MatchState.IDLE and not hits:
                calibrators[q].learn(float(sequence.raw[q, i]), float(sequence.background[q, i]))
                if gated:
                    baselines[q].learn(sequence.gate_cosines[q][i])
    for q in range(q_count):
        results[q].hits.extend((n - 1, hit) for hit in machines[q].finish())
    return results


def _gate_margins(sequence: SequenceInput, baselines: list[RawBaseline], i: int) -> np.ndarray:
    """(q,) every query's gate margin on frame i (pipelines/detector.py's, for one view)."""
    for q, baseline in enumerate(baselines):
        if baseline.mean is None:  # a camera's first frame: lifts start from it
            baseline.learn(sequence.gate_cosines[q][i])
    lifts = [baseline.lifts(sequence.gate_cosines[q][i]) for q, baseline in enumerate(baselines)]
    margins = np.empty(len(baselines), np.float32)
    for q, lift in enumerate(lifts):
        rivals = [lifts[r][:1] for r in sequence.rivals[q]]
        if len(lift) > 1:
            rivals.append(lift[1:].max(keepdims=True))
        margins[q] = gate_margins(lift[:1], rivals)[0]
    return margins


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def true_events(labels: np.ndarray) -> list[tuple[int, int]]:
    """Runs of 1s as (first frame index, last frame index)."""
    events, start = [], None
    for i, value in enumerate(labels):
        if value and start is None:
            start = i
        elif not value and start is not None:
            events.append((start, i - 1))
            start = None
    if start is not None:
        events.append((start, len(labels) - 1))
    return events


@dataclass
class StreamEvents:
    detected: list[bool]
    ttd_s: list[float]
    true_hits: int
    duplicates: int
    false_alerts: list[str]  # the condition at each false alert's start
    background_s: float
    gt_photos: list[str] = field(default_factory=list)


def stream_events(result: StreamResult, background_mask: np.ndarray) -> StreamEvents:
    ts = result.ts_ms
    gts = true_events(result.labels)
    detected = [False] * len(gts)
    ttd = [math.nan] * len(gts)
    true_hits = duplicates = 0
    false_alerts: list[str] = []
    confirmed = [(i, hit) for i, hit in result.hits if hit.end_ts_ms is None]
    closing = {hit.hit_id: hit for _, hit in result.hits if hit.end_ts_ms is not None}
    for index, hit in confirmed:
        start = hit.event_start_ts_ms
        end = closing[hit.hit_id].end_ts_ms if hit.hit_id in closing else int(ts[-1])
        overlapping = [g for g, (a, b) in enumerate(gts) if start <= ts[b] and end >= ts[a]]
        if not overlapping:
            at = int(np.searchsorted(ts, start))
            false_alerts.append(result.conditions[at] if result.conditions else "plain")
            continue
        g = overlapping[0]
        if detected[g]:
            duplicates += 1
            continue
        detected[g] = True
        true_hits += 1
        ttd[g] = max(0.0, (int(ts[index]) - int(ts[gts[g][0]])) / 1000.0)
    gaps = np.diff(ts, append=ts[-1] + 1000) / 1000.0
    background_s = float(np.minimum(gaps, BACKGROUND_FRAME_CAP_S)[background_mask].sum())
    return StreamEvents(detected, ttd, true_hits, duplicates, false_alerts, background_s)


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def score_streams(results: list[StreamResult], background_masks: list[np.ndarray], enter: float) -> dict:
    """The figures of one scorer over a set of streams (see the module docstring)."""
    tp = fp = fn = 0
    gt_total = gt_detected = true_hits = duplicates = 0
    ttds: list[float] = []
    false_alerts: dict[str, int] = {}
    background_s = 0.0
    for result, mask in zip(results, background_masks, strict=True):
        predicted = result.decision >= enter
        positive = result.labels.astype(bool)
        tp += int((predicted & positive).sum())
        fp += int((predicted & ~positive).sum())
        fn += int((~predicted & positive).sum())
        events = stream_events(result, mask)
        gt_total += len(events.detected)
        gt_detected += sum(events.detected)
        true_hits += events.true_hits
        duplicates += events.duplicates
        ttds += [t for t in events.ttd_s if not math.isnan(t)]
        for condition in events.false_alerts:
            false_alerts[condition] = false_alerts.get(condition, 0) + 1
        background_s += events.background_s
    frame_p = tp / (tp + fp) if tp + fp else 0.0
    frame_r = tp / (tp + fn) if tp + fn else 0.0
    hits = true_hits + duplicates + sum(false_alerts.values())
    event_p = true_hits / hits if hits else 0.0
    event_r = gt_detected / gt_total if gt_total else 0.0
    fa = sum(false_alerts.values())
    return {
        "frame_precision": frame_p,
        "frame_recall": frame_r,
        "frame_f1": _f1(frame_p, frame_r),
        "events": gt_total,
        "detected": gt_detected,
        "hits": hits,
        "duplicates": duplicates,
        "false_alerts": fa,
        "false_alerts_by_condition": dict(sorted(false_alerts.items())),
        "event_precision": event_p,
        "event_recall": event_r,
        "event_f1": _f1(event_p, event_r),
        "ttd_median_s": float(np.median(ttds)) if ttds else None,
        "ttd_p90_s": float(np.percentile(ttds, 90)) if ttds else None,
        "background_query_hours": background_s / 3600.0,
        "false_alerts_per_query_hour": fa / (background_s / 3600.0) if background_s else None,
    }


def detections_by_photo(
    results: list[StreamResult], photo_of_run: Callable[[StreamResult, int], str]
) -> dict:
    """{photo: [events, detected]} over the streams' ground-truth events."""
    table: dict[str, list[int]] = {}
    for result in results:
        events = stream_events(result, np.zeros(len(result.ts_ms), bool))
        for (first, _), detected in zip(true_events(result.labels), events.detected, strict=True):
            row = table.setdefault(photo_of_run(result, first), [0, 0])
            row[0] += 1
            row[1] += int(detected)
    return dict(sorted(table.items()))
