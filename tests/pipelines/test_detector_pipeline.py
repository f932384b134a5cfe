"""CameraPipeline frame by frame on synthetic embeddings: live query changes, snapshots, peaks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vigil.pipelines.calibration import ScorePrior
from vigil.pipelines.detector import CalibrationSettings, CameraPipeline, StandingQuery, TemporalStage
from vigil.pipelines.matching import MatchSettings
from vigil.pipelines.prompts import QueryVectors

DIM = 8
AXES = np.eye(DIM, dtype=np.float32)
# Direction 0 is the scene, 1 the "cat", 2 the "car"; 7 is what the background prompts describe.
CAT, CAR = 1, 2
MATCH = MatchSettings(enter=0.5, exit=0.35, min_duration_ms=1_000, cooldown_ms=2_000, max_gap_ms=5_000)


def _unit(vector) -> np.ndarray:
    vector = np.asarray(vector, np.float32)
    return vector / np.linalg.norm(vector)


def query(query_id: str, axis: int, match: MatchSettings = MATCH, key: str | None = None) -> StandingQuery:
    vectors = QueryVectors(text=AXES[axis], background=AXES[7:8], language="en")
    return StandingQuery(query_id, key or f"axis{axis}", vectors, match)


def frames(seconds: float, events: dict[int, tuple[float, float]], fps: float = 2.0, start_s: float = 0.0):
    """(ts_ms, embedding) at `fps`: the scene plus noise, turned towards an axis during its span."""
    rng = np.random.default_rng(int(start_s * 10) + 7)
    for t in np.arange(start_s, start_s + seconds, 1 / fps):
        vector = AXES[0] + rng.normal(0, 0.02, DIM)
        for axis, (begin, end) in events.items():
            if begin <= t < end:
                vector = vector + 1.2 * AXES[axis]
        yield round(t * 1000), _unit(vector)


def pipeline(**options) -> CameraPipeline:
    options.setdefault("calibration", CalibrationSettings(warmup_frames=10))
    return CameraPipeline("cam-1", DIM, **options)


def run(p: CameraPipeline, stream) -> list:
    hits = []
    for ts, vector in stream:
        hits.extend(hit for hit, _ in p.step(ts, vector, ts).hits)
    return hits


def test_a_query_added_mid_stream_is_warmed_from_the_window_and_finds_the_next_event():
    p = pipeline()  # no prior: a cold query would stay silent for warmup_frames
    run(p, frames(30, {}))
    p.set_queries([query("cat", CAT)])
    hits = run(p, frames(20, {CAT: (35.0, 40.0)}, start_s=30))
    assert [(h.query_id, h.event_start_ts_ms, h.closed) for h in hits] == [
        ("cat", 35_000, False),
        ("cat", 35_000, True),
    ]
    assert hits[1].end_ts_ms == 39_500 and hits[0].hit_id == hits[1].hit_id


def test_without_history_or_prior_a_new_query_stays_silent_while_it_learns():
    p = pipeline()
    p.set_queries([query("cat", CAT)])
    assert run(p, frames(3, {CAT: (0.0, 3.0)})) == []


def test_a_prior_judges_a_new_query_from_its_first_frames():
    p = pipeline(prior=ScorePrior(mean=0.0, std=0.03))
    p.set_queries([query("cat", CAT)])
    hits = run(p, frames(10, {CAT: (2.0, 6.0)}))
    assert [(h.event_start_ts_ms, h.closed) for h in hits] == [(2_000, False), (2_000, True)]


def test_deleting_a_query_closes_its_open_event_and_stops_its_hits():
    p = pipeline()
    p.set_queries([query("cat", CAT), query("car", CAR)])
    run(p, frames(20, {}))
    opened = run(p, frames(3, {CAT: (20.0, 30.0)}, start_s=20))
    assert [h.closed for h in opened] == [False]
    closing = [hit for hit, _ in p.set_queries([query("car", CAR)])]
    assert [(h.query_id, h.closed, h.event_start_ts_ms) for h in closing] == [("cat", True, 20_000)]
    assert run(p, frames(10, {CAT: (23.0, 33.0)}, start_s=23)) == []
    assert p.query_ids == ["car"]


def test_a_new_threshold_keeps_the_learnt_background_but_new_text_starts_over():
    p = pipeline()
    p.set_queries([query("cat", CAT)])
    run(p, frames(20, {}))
    learnt = p.to_state()["tracks"]["cat"]["stats"]
    stricter = MatchSettings(enter=0.9, exit=0.6, min_duration_ms=1_000, cooldown_ms=2_000)
    p.set_queries([query("cat", CAT, match=stricter)])
    assert p.to_state()["tracks"]["cat"]["stats"] == learnt
    p.set_queries([query("cat", CAR, key="now-about-cars")])
    # warmed again from the window, for the new vector: other statistics
    assert p.to_state()["tracks"]["cat"]["stats"] != learnt


def gru_stage() -> TemporalStage:
    from vigil.models.temporal import TemporalScorer
    from vigil.pipelines.temporal import FeatureWindow

    return TemporalStage(TemporalScorer.load().score, FeatureWindow, FeatureWindow.from_state)


@pytest.mark.parametrize("temporal", ["off", "gru"])
def test_a_snapshot_resumes_exactly_and_refuses_the_frames_it_has_seen(temporal):
    options = {"temporal": gru_stage()} if temporal == "gru" else {}
    stream = list(frames(60, {CAT: (20.0, 26.0), CAR: (24.0, 40.0)}))
    queries = [query("cat", CAT), query("car", CAR)]
    straight = pipeline(**options)
    straight.set_queries(queries)
    expected = run(straight, stream)
    assert len(expected) == 4  # the real GRU too: two clear events, confirmed then closed

    first = pipeline(**options)
    first.set_queries(queries)
    before = run(first, stream[:50])  # stops in the middle of the car's event
    snapshot = json.loads(json.dumps(first.to_state()))
    resumed = pipeline(**options)
    resumed.restore(snapshot, queries)
    replayed = [resumed.step(ts, v, ts).accepted for ts, v in stream[40:50]]
    assert not any(replayed)  # redelivered frames change nothing
    after = run(resumed, stream[50:])
    assert before + after == expected


def test_the_peak_frame_is_flagged_so_its_thumbnail_can_be_kept():
    p = pipeline()
    p.set_queries([query("cat", CAT)])
    run(p, frames(20, {}))
    peaks, confirmed = [], []
    for ts, vector in frames(10, {CAT: (22.0, 26.0)}, start_s=20):
        outcome = p.step(ts, vector, ts)
        if outcome.is_peak:
            peaks.append(ts)
        confirmed.extend(outcome.hits)
    hit, view = confirmed[-1]
    assert hit.closed and hit.peak_ts_ms in peaks and all(22_000 <= t < 26_000 for t in peaks)
    assert view.embedding.shape == (DIM,) and float(view.embedding @ AXES[CAT]) > 0.5


def test_the_temporal_stage_decides_what_the_state_machine_sees():
    # A stand-in model whose answer is known: the mean calibrated score of the window's last
    # three frames, so one bright frame alone cannot reach the threshold, two can.
    from vigil.pipelines.temporal import FEATURE_NAMES, FeatureWindow

    calibrated = FEATURE_NAMES.index("calibrated")
    stage = TemporalStage(
        model=lambda windows: windows[:, -3:, calibrated].mean(axis=1),
        new_window=FeatureWindow,
        window_from_state=FeatureWindow.from_state,
    )
    p = pipeline(temporal=stage)
    p.set_queries([query("cat", CAT, match=MatchSettings(enter=0.5, exit=0.35, min_duration_ms=0))])
    run(p, frames(20, {}))
    assert run(p, frames(0.5, {CAT: (20.0, 20.5)}, start_s=20)) == []  # one bright frame: ~1/3
    hits = run(p, frames(5, {CAT: (23.0, 26.0)}, start_s=21))
    assert hits and hits[0].event_start_ts_ms == 23_500  # the second bright frame: ~2/3


def test_the_temporal_model_sees_each_querys_gate_margin():
    # A stand-in model that records what it is given: on a cat frame the cat query's window
    # ends with a passing gate (it lifts "cat" more than its rival "car"), the car query's with
    # a failing one; on a quiet frame neither query's view stands out.
    from vigil.pipelines.temporal import FEATURE_NAMES, FeatureWindow

    seen = []
    calibrated, gate = FEATURE_NAMES.index("calibrated"), FEATURE_NAMES.index("gate")

    def model(windows):
        seen.append(windows[:, -1, gate].copy())
        return windows[:, -1, calibrated]

    stage = TemporalStage(model=model, new_window=FeatureWindow, window_from_state=FeatureWindow.from_state)
    p = pipeline(temporal=stage)
    p.set_queries([query("cat", CAT), query("car", CAR)])
    run(p, frames(20, {}))
    quiet = seen[-1]
    run(p, frames(1, {CAT: (20.0, 21.0)}, start_s=20))
    cat_frame = seen[-1]
    assert cat_frame[0] > 0.5 and cat_frame[1] < -0.5  # scaled: cat passes by far, car fails by far
    assert np.all(np.abs(quiet) < 0.5)


def test_a_snapshot_of_another_camera_is_refused():
    p = pipeline()
    with pytest.raises(ValueError, match="cam-1"):
        p.restore({"version": 1, "camera_id": "cam-2", "last_ts_ms": 0, "tracks": {}}, [])
