"""Per-place background statistics: a place that always scores high for a query stops being
unusual there, and a new kind of crop in a quiet place stands out."""

from __future__ import annotations

import json

import numpy as np

from vigil.pipelines.places import PlaceStats
from vigil.pipelines.regions import Box

FAR_END = Box(0.8, 0.0, 1.0, 0.2)  # where people always cross
FLOOR = Box(0.1, 0.7, 0.3, 0.9)
CAMERA_WIDE = (0.0, 0.05)  # (mean, std) over every region of the camera


def test_a_place_is_judged_by_the_camera_until_it_has_seen_enough_regions():
    places = PlaceStats(cells=4, warmup=5)
    for _ in range(4):
        places.learn(FAR_END, 0.2)
    assert places.background(FAR_END, CAMERA_WIDE) == CAMERA_WIDE
    places.learn(FAR_END, 0.2)
    mean, std = places.background(FAR_END, CAMERA_WIDE)
    assert abs(mean - 0.2) < 1e-6 and std == CAMERA_WIDE[1]  # spread floored at the camera's


def test_a_place_that_always_scores_high_is_not_unusual_there_but_would_be_elsewhere():
    rng = np.random.default_rng(1)
    places = PlaceStats(cells=4, warmup=10)
    for _ in range(40):
        places.learn(FAR_END, 0.2 + rng.normal(0, 0.01))
        places.learn(FLOOR, -0.1 + rng.normal(0, 0.01))
    far_mean, far_std = places.background(FAR_END, CAMERA_WIDE)
    floor_mean, floor_std = places.background(FLOOR, CAMERA_WIDE)
    assert (0.21 - far_mean) / far_std < 1  # the far end, as usual
    assert (0.21 - floor_mean) / floor_std > 5  # the same margin on the floor: unusual
    assert places.background(FAR_END, None) is None  # no camera background yet: nothing


def test_a_snapshot_restores_the_same_places():
    places = PlaceStats(cells=4, warmup=2)
    for value in (0.1, 0.3, 0.2):
        places.learn(FLOOR, value)
    restored = PlaceStats(cells=4, warmup=2)
    restored.restore(json.loads(json.dumps(places.to_state())))
    assert restored.background(FLOOR, CAMERA_WIDE) == places.background(FLOOR, CAMERA_WIDE)
    assert restored.background(FAR_END, CAMERA_WIDE) == CAMERA_WIDE
