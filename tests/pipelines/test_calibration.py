"""RunningStats and ScoreCalibrator, frame by frame, on synthetic cosine streams; the encoders'
measured score priors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vigil.models.encoder import EncoderInfo
from vigil.pipelines.calibration import (
    AUTO_THRESHOLD,
    RunningStats,
    ScoreCalibrator,
    ScorePrior,
    cosine_scores,
    max_background_cosine,
    resolve_threshold,
    score_prior_for,
    sigmoid,
)
from vigil.pipelines.matching import MatchSettings, MatchState, MatchStateMachine, QueryTrack
from vigil.pipelines.prompts import prompts_fingerprint


def background_cosines(mean: float, std: float, n: int, seed: int = 0) -> list[float]:
    return np.random.default_rng(seed).normal(mean, std, n).tolist()


def warmed_up(values: list[float], **kwargs) -> ScoreCalibrator:
    calibrator = ScoreCalibrator(**kwargs)
    for value in values:
        calibrator.learn(value)
    return calibrator


# --- RunningStats ---------------------------------------------------------------------------


def test_running_stats_are_the_plain_mean_and_variance_during_warm_up():
    values = [0.1, 0.3, 0.2, 0.25, 0.15]
    stats = RunningStats(halflife=1000, warmup=10)
    for value in values:
        stats.update(value)
    assert stats.mean == pytest.approx(np.mean(values))
    assert stats.var == pytest.approx(np.var(values))
    assert not stats.ready


def test_running_stats_forget_old_values_by_the_halflife():
    stats = RunningStats(halflife=10, warmup=1, clip_sigma=1e9)
    for _ in range(1000):
        stats.update(0.0)
    for _ in range(10):
        stats.update(1.0)
    assert stats.mean == pytest.approx(0.5, abs=1e-6)


def test_one_outlier_barely_moves_clipped_statistics():
    values = background_cosines(0.2, 0.01, 200)
    clipped, unclipped = RunningStats(halflife=50), RunningStats(halflife=50, clip_sigma=1e9)
    for stats in (clipped, unclipped):
        for value in values:
            stats.update(value)
    before = clipped.mean, clipped.std
    for stats in (clipped, unclipped):
        stats.update(5.0)  # far outside any cosine a camera gives
    assert abs(clipped.mean - before[0]) < 0.001
    assert clipped.std < 1.5 * before[1]
    assert abs(unclipped.mean - before[0]) > 0.05  # what clipping saved us from


def test_a_nan_score_does_not_poison_the_statistics():
    stats = RunningStats(warmup=2)
    for value in (0.2, 0.3, float("nan"), 0.25):
        stats.update(value)
    assert stats.count == 3
    assert math.isfinite(stats.mean) and math.isfinite(stats.var)


def test_a_perfectly_still_scene_is_floored_at_min_std():
    stats = RunningStats(warmup=3, min_std=0.002)
    for _ in range(10):
        stats.update(0.2)
    assert stats.std == 0.002


# --- ScoreCalibrator ------------------------------------------------------------------------


def test_the_score_is_one_half_at_sigma_at_half_standard_deviations_above_the_background():
    calibrator = warmed_up(background_cosines(0.2, 0.01, 500), sigma_at_half=3.0)
    mean, std = calibrator.background()
    assert calibrator.calibrate(mean + 3 * std) == pytest.approx(0.5)
    assert calibrator.calibrate(mean) == pytest.approx(sigmoid(-3.0))
    assert calibrator.calibrate(mean + 6 * std) == pytest.approx(sigmoid(3.0))


def test_calibrate_learns_nothing():
    calibrator = warmed_up(background_cosines(0.2, 0.01, 100))
    before = (calibrator.stats.count, calibrator.stats.mean, calibrator.stats.var)
    for _ in range(50):
        calibrator.calibrate(0.9)
    assert (calibrator.stats.count, calibrator.stats.mean, calibrator.stats.var) == before


def test_without_a_prior_a_new_camera_scores_zero_until_warmed_up():
    calibrator = ScoreCalibrator(warmup_frames=30)
    for value in background_cosines(0.2, 0.01, 29):
        calibrator.learn(value)
    assert calibrator.calibrate(0.9) == 0.0
    calibrator.learn(0.2)
    assert calibrator.ready
    assert calibrator.calibrate(0.9) > 0.99


def test_with_a_prior_a_new_camera_is_judged_from_its_second_frame():
    calibrator = ScoreCalibrator(warmup_frames=30, prior=ScorePrior(mean=0.0, std=0.01, weight=10))
    assert calibrator.calibrate(0.9) == 0.0  # the first frame is only learnt: no mean yet
    calibrator.learn(0.2)  # the camera's own mean, however far from the prior's
    assert calibrator.calibrate(0.2) < 0.1
    assert calibrator.calibrate(0.26) > 0.9  # 6 prior spreads above the camera's first frame


def test_the_prior_gives_way_to_what_the_camera_shows():
    calibrator = ScoreCalibrator(warmup_frames=30, prior=ScorePrior(mean=0.2, std=0.05, weight=10))
    values = background_cosines(0.5, 0.01, 29)
    for value in values[:15]:
        calibrator.learn(value)
    mean, std = calibrator.background()  # the camera's mean; halfway, the prior's spread weighs 5
    assert mean == pytest.approx(np.mean(values[:15]))
    assert std == pytest.approx(np.sqrt((5 * 0.05**2 + 15 * np.var(values[:15])) / 20), rel=0.05)
    for value in values[15:]:
        calibrator.learn(value)
    # the last warm-up frame: the prior has almost faded, so there is no jump at the end
    almost = calibrator.background()
    calibrator.learn(0.5)
    assert calibrator.background()[0] == pytest.approx(np.mean([*values, 0.5]))
    assert almost[1] == pytest.approx(calibrator.background()[1], rel=0.5)


def test_a_prior_that_does_not_fade_keeps_its_weight_through_warm_up():
    calibrator = ScoreCalibrator(
        warmup_frames=30, prior=ScorePrior(mean=0.2, std=0.01, weight=10), prior_fades=False
    )
    values = background_cosines(0.5, 0.01, 29)
    for value in values:
        calibrator.learn(value)
    assert calibrator.background()[0] == pytest.approx((10 * 0.2 + 29 * np.mean(values)) / 39)


def test_one_threshold_works_for_two_encoders_with_different_score_ranges():
    # CLIP-like: background cosines bunch tightly near 0.2, an event lifts them by 0.06;
    # offline-like: background near 0.55 with five times the spread, an event lifts it by 0.3.
    encoders = {"clip": (0.20, 0.01, 0.26), "offline": (0.55, 0.05, 0.85)}
    threshold = resolve_threshold("auto")
    for name, (mean, std, event) in encoders.items():
        calibrator = warmed_up(background_cosines(mean, std, 500, seed=1))
        quiet = [calibrator.calibrate(v) for v in background_cosines(mean, std, 1000, seed=2)]
        events = [calibrator.calibrate(v) for v in background_cosines(event, std / 2, 100, seed=3)]
        false_alarm_rate = np.mean(np.array(quiet) >= threshold)
        assert false_alarm_rate < 0.01, name
        assert min(events) >= threshold, name
    # No raw cosine threshold could do both: what separates CLIP's event from its background
    # is below every background frame of the offline encoder.
    clip_raw_threshold = 0.23
    assert min(background_cosines(0.55, 0.05, 1000, seed=2)) > clip_raw_threshold


def test_background_prompts_remove_what_the_query_shares_with_every_scene():
    # At frame 300 the lights come on: every text cosine rises by 0.05, the query's and the
    # background prompt's alike. Against the background prompt nothing happened.
    rng = np.random.default_rng(4)
    common = np.where(np.arange(400) < 300, 0.0, 0.05) + rng.normal(0, 0.005, 400)
    query_raw = 0.20 + common + rng.normal(0, 0.003, 400)
    background_raw = 0.22 + common + rng.normal(0, 0.003, 400)
    raw_only = ScoreCalibrator()
    with_background = ScoreCalibrator(uses_background=True)
    for q, b in zip(query_raw[:300], background_raw[:300], strict=True):
        raw_only.learn(q)
        with_background.learn(q, b)
    after = list(zip(query_raw[300:], background_raw[300:], strict=True))
    assert min(raw_only.calibrate(q) for q, _ in after) > AUTO_THRESHOLD  # fooled by the lights
    assert max(with_background.calibrate(q, b) for q, b in after) < AUTO_THRESHOLD
    # while the queried thing itself (query cosine up, background prompt not) still shows
    assert with_background.calibrate(0.20 + 0.05 + 0.04, 0.22 + 0.05) > AUTO_THRESHOLD


def test_a_calibrator_refuses_to_mix_raw_and_margin_signals():
    with pytest.raises(ValueError, match="needs a background"):
        ScoreCalibrator(uses_background=True).calibrate(0.2)
    with pytest.raises(ValueError, match="without"):
        ScoreCalibrator().learn(0.2, 0.1)


def test_background_statistics_do_not_learn_from_matching_frames():
    # A car parks in view for 20 minutes at 1 frame/s, longer than the statistics' memory.
    settings = MatchSettings(enter=0.5, exit=0.35, min_duration_ms=2000, cooldown_ms=0)
    background = background_cosines(0.2, 0.01, 300, seed=5)
    parked = background_cosines(0.27, 0.005, 1200, seed=6)

    track = QueryTrack(ScoreCalibrator(halflife_frames=100), MatchStateMachine("cam", "car", settings))
    learn_everything = warmed_up(background, halflife_frames=100)
    ts = 0
    for value in background:
        track.step(ts, value)
        ts += 1000
    mean_before = track.calibrator.stats.mean
    scores, hits = [], []
    for value in parked:
        frame = track.step(ts, value)
        learn_everything.learn(value)
        scores.append(frame.score)
        hits.extend(frame.hits)
        ts += 1000
    assert track.machine.state is MatchState.ACTIVE
    assert len(hits) == 1 and not hits[0].closed  # one event, still open
    assert min(scores[2:]) > AUTO_THRESHOLD
    assert track.calibrator.stats.mean == pytest.approx(mean_before)
    # Had every frame been learnt, the parked car would have become the background:
    assert learn_everything.calibrate(parked[-1]) < settings.exit


def test_frames_between_exit_and_enter_while_idle_are_still_background():
    track = QueryTrack(ScoreCalibrator(warmup_frames=5), MatchStateMachine("cam", "q"))
    for ts, value in enumerate(background_cosines(0.2, 0.01, 5)):
        track.step(ts * 1000, value)
    count = track.calibrator.stats.count
    mean, std = track.calibrator.background()
    frame = track.step(10_000, mean + 2.8 * std)  # just under "auto": not matching
    assert frame.score < AUTO_THRESHOLD
    assert track.calibrator.stats.count == count + 1


# --- helpers --------------------------------------------------------------------------------


def test_resolve_threshold_accepts_auto_and_numbers_in_the_unit_interval():
    assert resolve_threshold("auto") == AUTO_THRESHOLD
    assert resolve_threshold(0.8) == 0.8
    for bad in (0, 1, 1.5, -0.1, "high", True, None):
        with pytest.raises(ValueError):
            resolve_threshold(bad)


def test_cosine_helpers_score_a_micro_batch_at_once():
    frames = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    query = np.array([1, 0, 0], np.float32)
    background = np.array([[0, 1, 0], [0.6, 0.8, 0]], np.float32)
    np.testing.assert_allclose(cosine_scores(frames, query), [1.0, 0.0])
    np.testing.assert_allclose(max_background_cosine(frames, background), [0.6, 1.0])
    with pytest.raises(ValueError):
        max_background_cosine(frames, np.zeros((0, 3), np.float32))


# --- score priors ----------------------------------------------------------------------------


def test_the_offline_encoder_carries_its_measured_score_prior():
    from vigil.models.offline.encoder import SCORE_PRIOR_FILE, OfflineEncoder

    committed = json.loads(SCORE_PRIOR_FILE.read_text())
    prior = score_prior_for(OfflineEncoder.load().info)
    spreads = sorted(std for _, std in committed["per_query_mean_std"].values())
    # The mean pooled over queries; the spread one query's (the median), which is what a new
    # query's z-scores start from (its mean comes from the camera's frames).
    assert prior == ScorePrior(mean=committed["mean"], std=spreads[len(spreads) // 2])
    assert committed["prompts_fingerprint"] == prompts_fingerprint()  # measured with today's prompts
    assert prior.std < committed["std"] / 5


def _info(**details: str) -> EncoderInfo:
    return EncoderInfo(name="clip:ViT-B-32", dim=512, source="random-init", licence="MIT", details=details)


def test_an_encoder_without_measured_numbers_has_no_prior():
    assert score_prior_for(_info(precision="fp32", random_init="true")) is None


def test_a_prior_measured_with_other_prompts_or_malformed_is_not_used():
    numbers = {"score_prior_mean": "0.01", "score_prior_std": "0.1"}
    assert score_prior_for(_info(**numbers, score_prior_prompts=prompts_fingerprint())) == ScorePrior(
        0.01, 0.1
    )
    assert score_prior_for(_info(**numbers, score_prior_prompts="0123456789abcdef")) is None
    assert score_prior_for(_info(**numbers)) is None
    fingerprint = prompts_fingerprint()
    assert (
        score_prior_for(_info(score_prior_mean="x", score_prior_std="0.1", score_prior_prompts=fingerprint))
        is None
    )
    assert (
        score_prior_for(_info(score_prior_mean="0", score_prior_std="0", score_prior_prompts=fingerprint))
        is None
    )
    assert (
        score_prior_for(_info(score_prior_mean="nan", score_prior_std="1", score_prior_prompts=fingerprint))
        is None
    )
