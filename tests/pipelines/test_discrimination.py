"""The discriminative decision on synthetic embeddings: who competes with a query, which view is
its region, and that a query no longer fires on another query's object."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.models.encoder import EncoderInfo
from vigil.pipelines.detector import CalibrationSettings, CameraPipeline, FrameEmbeddings, StandingQuery
from vigil.pipelines.discrimination import DiscriminationSettings, best_view, competitors_for
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


def test_competitors_are_background_negatives_and_other_queries_less_the_query_s_synonyms():
    negatives = np.stack([AXES[PERSON], unit(AXES[CAT] + 0.1 * AXES[SCENE])])  # "a person", "a kitten"
    cat = vectors(CAT, negatives)
    motorbike = vectors(MOTORBIKE, negatives)
    same_cat_in_vietnamese = vectors(CAT, negatives, text=unit(AXES[CAT] + 0.3 * AXES[SCENE]))
    got = competitors_for(cat, [cat, motorbike, same_cat_in_vietnamese], ON)
    rows = {tuple(np.round(row, 3)) for row in got}
    assert tuple(np.round(AXES[BACKGROUND], 3)) in rows  # background prompts always compete
    assert tuple(np.round(AXES[PERSON], 3)) in rows  # a negative that means something else
    assert tuple(np.round(AXES[MOTORBIKE], 3)) in rows  # another standing query
    assert len(got) == 3  # the kitten and the Vietnamese cat mean the query: not competitors


def test_switched_off_competitors_leave_the_background_prompts_only():
    negatives = AXES[PERSON][None, :]
    cat, motorbike = vectors(CAT, negatives), vectors(MOTORBIKE, negatives)
    off = DiscriminationSettings(enabled=False)
    assert competitors_for(cat, [motorbike], off).shape == (1, DIM)
    no_others = DiscriminationSettings(enabled=True, other_queries=False)
    assert competitors_for(cat, [motorbike], no_others).shape == (2, DIM)


def test_the_best_view_is_the_region_the_query_explains_best_not_the_one_most_like_it():
    competitors = np.stack([AXES[BACKGROUND], AXES[PERSON]])
    views = np.stack(
        [
            unit(AXES[SCENE] + 0.2 * AXES[CAT]),  # the whole frame: a bit of cat, mostly scene
            unit(AXES[PERSON] + 0.6 * AXES[CAT]),  # a person in a cat shirt: more cat, but a person
            unit(AXES[CAT] + 0.3 * AXES[SCENE]),  # the cat
        ]
    )
    best = best_view(views, AXES[CAT], competitors)
    assert best.view == 2
    assert best.margin == pytest.approx(float(views[2] @ AXES[CAT]))  # no competitor in it at all
    assert best.raw_cosine - best.competitor_cosine == pytest.approx(best.margin)


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


def _stream(discrimination: DiscriminationSettings, cat_region_axis_mix: float):
    """A camera with "a cat" and "a motorbike" standing: 30 s of scene, then a region whose
    crop is mostly cat with a little motorbike in it for 6 s. Returns the hits' query ids."""
    pipeline = CameraPipeline(
        "cam", DIM, calibration=CalibrationSettings(warmup_frames=10), discrimination=discrimination
    )
    pipeline.set_queries(
        [
            StandingQuery("cat", "cat", vectors(CAT), MATCH),
            StandingQuery("motorbike", "motorbike", vectors(MOTORBIKE), MATCH),
        ]
    )
    rng = np.random.default_rng(3)
    fired = []
    for ts in range(0, 40_000, 500):
        full = unit(AXES[SCENE] + rng.normal(0, 0.02, DIM))
        regions: tuple = ()
        if 30_000 <= ts < 36_000:
            crop = unit(AXES[CAT] + cat_region_axis_mix * AXES[MOTORBIKE] + rng.normal(0, 0.02, DIM))
            regions = ((Box(0.4, 0.4, 0.6, 0.6), crop),)
        outcome = pipeline.step(ts, FrameEmbeddings(full=full, regions=regions), ts)
        fired.extend(hit.query_id for hit, _ in outcome.hits if not hit.closed)
    return fired


def test_a_query_does_not_fire_on_another_query_s_object():
    # The cat's crop is unusual for both queries (the motorbike's cosine with it rises from
    # ~0 to 0.4), so judged only against its background the motorbike fires too.
    assert sorted(_stream(DiscriminationSettings(enabled=False), 0.45)) == ["cat", "motorbike"]
    assert _stream(ON, 0.45) == ["cat"]


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
