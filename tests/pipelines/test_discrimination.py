"""The discriminative decision on synthetic embeddings: who a query's rivals are, how lifts over
camera baselines gate it, and that a query no longer fires on another query's or a negative's
object while a rival that rises with it does not flatten its novelty."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.models.encoder import EncoderInfo
from vigil.pipelines.detector import CalibrationSettings, CameraPipeline, FrameEmbeddings, StandingQuery
from vigil.pipelines.discrimination import (
    DiscriminationSettings,
    RawBaseline,
    gate_margins,
    gate_negatives,
    rivals_for,
)
from vigil.pipelines.matching import MatchSettings
from vigil.pipelines.prompts import QueryVectors
from vigil.pipelines.regions import Box

DIM = 8
AXES = np.eye(DIM, dtype=np.float32)
SCENE, CAT, MOTORBIKE, PERSON, BACKGROUND = 0, 1, 2, 3, 7
ON = DiscriminationSettings(enabled=True)
MATCH = MatchSettings(enter=0.5, exit=0.35, min_duration_ms=1_000, cooldown_ms=2_000, max_gap_ms=5_000)


def unit(vector) -> np.ndarray:
    vector = np.asarray(vector, np.float32)
    return vector / np.linalg.norm(vector)


def vectors(axis: int, negatives: np.ndarray | None = None, text: np.ndarray | None = None) -> QueryVectors:
    return QueryVectors(
        text=AXES[axis] if text is None else text,
        background=AXES[BACKGROUND:],
        language="en",
        negatives=negatives,
    )


def test_rivals_are_other_queries_and_negatives_less_the_query_s_synonyms():
    negatives = np.stack([AXES[PERSON], unit(AXES[CAT] + 0.1 * AXES[SCENE])])  # "a person", "a kitten"
    cat = vectors(CAT, negatives)
    motorbike = vectors(MOTORBIKE, negatives)
    same_cat_in_vietnamese = vectors(CAT, negatives, text=unit(AXES[CAT] + 0.3 * AXES[SCENE]))
    others = {"cat": cat, "motorbike": motorbike, "meo": same_cat_in_vietnamese}
    assert rivals_for(cat, others, ON) == ("motorbike",)  # not itself, not its translation
    kept = gate_negatives(cat, ON)
    assert kept.shape == (1, DIM) and np.allclose(kept[0], AXES[PERSON])  # the kitten means a cat


def test_switched_off_rivals_leave_the_gate_open():
    negatives = AXES[PERSON][None, :]
    cat, motorbike = vectors(CAT, negatives), vectors(MOTORBIKE, negatives)
    off = DiscriminationSettings(enabled=False)
    assert rivals_for(cat, {"motorbike": motorbike}, off) == ()
    assert gate_negatives(cat, off).shape == (0, DIM)
    assert rivals_for(cat, {"motorbike": motorbike}, DiscriminationSettings(other_queries=False)) == ()
    assert gate_negatives(cat, DiscriminationSettings(negatives=False)).shape == (0, DIM)
    assert np.isinf(gate_margins(np.array([0.1, 0.2]), [])).all()


def test_a_lift_is_over_the_text_s_own_usual_cosine_and_survives_a_snapshot():
    baseline = RawBaseline(halflife_frames=10)
    assert np.allclose(baseline.lifts(np.array([[0.3, 0.5]])), 0.0)  # nothing learnt: no evidence
    for _ in range(200):
        baseline.learn([0.30, 0.10])  # "một chiếc xe máy" runs high everywhere, "a cat" low
    lifts = baseline.lifts(np.array([[0.32, 0.25]]))  # a cat: both rise, the cat far more
    assert lifts[0] == pytest.approx([0.02, 0.15], abs=1e-4)
    # ... so the cat query wins the gate on lifts, though its raw cosine is lower.
    assert gate_margins(lifts[:, 1], [lifts[:, 0]])[0] == pytest.approx(0.13, abs=1e-4)
    restored = RawBaseline(halflife_frames=10)
    restored.restore(baseline.to_state())
    assert np.allclose(restored.lifts(np.array([0.32, 0.25])), lifts[0])
    restored.restore(None)  # a snapshot from before lifts: start afresh
    assert restored.mean is None and restored.count == 0


def test_recent_views_weigh_more_than_old_ones():
    baseline = RawBaseline(halflife_frames=10)
    for _ in range(100):
        baseline.learn(0.1)
    for _ in range(100):
        baseline.learn(0.3)  # the scene changed: the baseline follows within a few half-lives
    assert baseline.mean[0] == pytest.approx(0.3, abs=0.01)


def test_the_encoder_s_measured_synonym_cosine_is_used_unless_configured():
    info = EncoderInfo(name="e", dim=DIM, source="s", licence="l", details={"synonym_cosine": "0.85"})
    assert DiscriminationSettings.for_encoder(info).synonym_cosine == 0.85
    assert DiscriminationSettings.for_encoder(info, synonym_cosine=0.6).synonym_cosine == 0.6
    bare = EncoderInfo(name="e", dim=DIM, source="s", licence="l")
    assert DiscriminationSettings.for_encoder(bare).synonym_cosine == DiscriminationSettings().synonym_cosine


@pytest.mark.parametrize("field, value", [("synonym_cosine", 1.5), ("min_margin", 1.0)])
def test_settings_out_of_range_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        DiscriminationSettings(**{field: value})


CAR = 4  # "a car": a negative, not a query


def _fired(
    discrimination: DiscriminationSettings, crop_axes: dict[int, float], negatives: np.ndarray | None = None
) -> list[str]:
    """Two standing queries, "a cat" and "a motorbike" (with `negatives`): 30 s of scene, then
    6 s of a region whose crop mixes `crop_axes`. Returns the ids of the queries that fired."""
    pipeline = CameraPipeline(
        "cam", DIM, calibration=CalibrationSettings(warmup_frames=10), discrimination=discrimination
    )
    pipeline.set_queries(
        [
            StandingQuery("cat", "cat", vectors(CAT, negatives), MATCH),
            StandingQuery("motorbike", "motorbike", vectors(MOTORBIKE, negatives), MATCH),
        ]
    )
    rng = np.random.default_rng(11)
    fired = []
    for ts in range(0, 40_000, 500):
        full = unit(AXES[SCENE] + rng.normal(0, 0.02, DIM))
        regions: tuple = ()
        if 30_000 <= ts < 36_000:
            mix = sum(weight * AXES[axis] for axis, weight in crop_axes.items())
            regions = ((Box(0.4, 0.4, 0.6, 0.6), unit(mix + rng.normal(0, 0.02, DIM))),)
        outcome = pipeline.step(ts, FrameEmbeddings(full=full, regions=regions), ts)
        fired.extend(hit.query_id for hit, _ in outcome.hits if not hit.closed)
    return fired


def test_a_query_does_not_fire_on_another_query_s_object():
    # The cat's crop is unusual for both queries (the motorbike's cosine with it rises from
    # ~0 to 0.4), so judged only against its background the motorbike fires too.
    cat_crop = {CAT: 1.0, MOTORBIKE: 0.45}
    assert sorted(_fired(DiscriminationSettings(enabled=False), cat_crop)) == ["cat", "motorbike"]
    assert _fired(ON, cat_crop) == ["cat"]


def test_the_hit_carries_its_region_s_box_and_embedding():
    pipeline = CameraPipeline("cam", DIM, calibration=CalibrationSettings(warmup_frames=10))
    pipeline.set_queries([StandingQuery("cat", "cat", vectors(CAT), MATCH)])
    box = Box(0.1, 0.2, 0.3, 0.4)
    rng = np.random.default_rng(5)
    confirmed = []
    for ts in range(0, 36_000, 500):
        full = unit(AXES[SCENE] + rng.normal(0, 0.02, DIM))
        regions = ((box, unit(AXES[CAT] + 0.2 * AXES[SCENE])),) if ts >= 30_000 else ()
        outcome = pipeline.step(ts, FrameEmbeddings(full=full, regions=regions), ts)
        confirmed.extend(outcome.hits)
        if outcome.is_peak:
            assert outcome.peak_boxes == [box]
    (hit, view), *_ = confirmed
    assert view.box == box
    assert float(view.embedding @ AXES[CAT]) > 0.9


def test_a_negative_that_rises_with_the_query_does_not_flatten_its_novelty():
    # A motorbike's crop also looks a little like a car: "a car" rises too, less than "a
    # motorbike". Subtracted in the calibrated margin it would eat the novelty; in the gate,
    # the motorbike out-lifts it.
    assert _fired(ON, {MOTORBIKE: 1.0, CAR: 0.8}, AXES[CAR][None, :]) == ["motorbike"]


def test_a_region_better_explained_by_a_negative_opens_no_event():
    # A person in a cat-print shirt: unusual for "a cat", but "a person" rose far more.
    person = {PERSON: 1.0, CAT: 0.35}
    assert _fired(DiscriminationSettings(enabled=False), person, AXES[PERSON][None, :]) == ["cat"]
    assert _fired(ON, person, AXES[PERSON][None, :]) == []
