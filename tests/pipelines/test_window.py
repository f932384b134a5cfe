"""RollingWindow, frame by frame: bounds, ordering, late and duplicate frames, query scores."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.pipelines.window import RollingWindow

DIM = 4


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def axis(i: int) -> np.ndarray:
    vector = np.zeros(DIM, np.float32)
    vector[i] = 1.0
    return vector


def fill(window: RollingWindow, times: list[int]) -> None:
    for ts in times:
        window.append(ts, axis(0), frame_ref=f"f{ts}")


def test_capacity_keeps_only_the_newest_frames():
    window = RollingWindow(DIM, capacity=3)
    fill(window, [0, 1000, 2000, 3000, 4000])
    assert window.timestamps().tolist() == [2000, 3000, 4000]
    assert window.frame_refs() == ["f2000", "f3000", "f4000"]


def test_max_age_evicts_by_capture_time_of_the_newest_frame():
    window = RollingWindow(DIM, capacity=None, max_age_ms=2500)
    fill(window, [0, 1000, 2000, 3000])
    assert window.timestamps().tolist() == [1000, 2000, 3000]
    fill(window, [10_000])
    assert window.timestamps().tolist() == [10_000]


def test_a_frame_exactly_max_age_old_is_kept():
    window = RollingWindow(DIM, capacity=None, max_age_ms=2000)
    fill(window, [0, 2000])
    assert window.timestamps().tolist() == [0, 2000]


def test_capacity_and_age_both_apply():
    window = RollingWindow(DIM, capacity=2, max_age_ms=10_000)
    fill(window, [0, 100, 200])
    assert len(window) == 2
    fill(window, [20_000])
    assert window.timestamps().tolist() == [20_000]


def test_a_slightly_late_frame_is_inserted_in_capture_order():
    window = RollingWindow(DIM, reorder_tolerance_ms=500)
    fill(window, [0, 1000, 2000])
    assert window.append(1700, axis(1), frame_ref="late")
    assert window.timestamps().tolist() == [0, 1000, 1700, 2000]
    assert window.frame_refs()[2] == "late"


def test_a_frame_later_than_the_tolerance_is_dropped_and_counted():
    window = RollingWindow(DIM, reorder_tolerance_ms=500)
    fill(window, [0, 1000, 2000])
    assert not window.append(1400, axis(1))
    assert window.timestamps().tolist() == [0, 1000, 2000]
    assert window.dropped_late == 1


def test_a_redelivered_frame_is_dropped_as_a_duplicate():
    window = RollingWindow(DIM)
    fill(window, [0, 1000])
    assert not window.append(1000, axis(2), frame_ref="again")
    assert window.frame_refs() == ["f0", "f1000"]
    assert window.dropped_duplicate == 1


def test_a_clock_step_back_restarts_the_window_instead_of_silencing_the_camera():
    window = RollingWindow(DIM, reorder_tolerance_ms=500, clock_step_ms=60_000)
    fill(window, [3_600_000, 3_601_000])
    assert window.append(0, axis(0), frame_ref="after reset")
    assert window.append(1000, axis(0))
    assert window.timestamps().tolist() == [0, 1000]
    assert window.clock_steps == 1


def test_last_n_arrays_are_oldest_first_and_shorter_when_the_window_is():
    window = RollingWindow(DIM, capacity=10)
    for i, ts in enumerate([0, 1000, 2000]):
        window.append(ts, axis(i), frame_ref=ts)
    assert window.embeddings(2).shape == (2, DIM)
    np.testing.assert_array_equal(window.embeddings(2), np.stack([axis(1), axis(2)]))
    assert window.timestamps(2).tolist() == [1000, 2000]
    assert window.embeddings(5).shape == (3, DIM)
    assert window.timestamps(0).tolist() == []


def test_scores_are_cosines_with_the_query_text_embedding():
    window = RollingWindow(DIM)
    window.append(0, unit(1, 0, 0, 0))
    window.append(1000, unit(1, 1, 0, 0))
    window.append(2000, unit(0, 0, 1, 0))
    scores = window.scores(unit(1, 0, 0, 0))
    np.testing.assert_allclose(scores, [1.0, np.sqrt(0.5), 0.0], atol=1e-6)
    np.testing.assert_allclose(window.scores(unit(1, 0, 0, 0), n=1), [0.0], atol=1e-6)


def test_an_empty_window_gives_empty_arrays_of_the_right_shape():
    window = RollingWindow(DIM)
    assert window.embeddings().shape == (0, DIM)
    assert window.scores(axis(0)).shape == (0,)
    assert window.newest_ts_ms is None


def test_embeddings_of_the_wrong_dimension_are_refused():
    window = RollingWindow(DIM)
    with pytest.raises(ValueError, match="dim"):
        window.append(0, np.ones(DIM + 1, np.float32))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"capacity": None, "max_age_ms": None},
        {"capacity": 0},
        {"max_age_ms": 0},
        {"reorder_tolerance_ms": -1},
        {"reorder_tolerance_ms": 1000, "clock_step_ms": 1000},
    ],
)
def test_bad_bounds_are_refused(kwargs):
    with pytest.raises(ValueError):
        RollingWindow(DIM, **kwargs)
