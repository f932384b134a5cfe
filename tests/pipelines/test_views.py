"""The view book frame by frame: region embeddings stand until their spot changes, a global
change wipes them, stale ones age out, and a snapshot restores them exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vigil.pipelines.regions import Box
from vigil.pipelines.views import FULL_FRAME, ViewBook, ViewSettings

DIM = 4
LEFT, RIGHT = Box(0.0, 0.0, 0.3, 0.3), Box(0.6, 0.6, 0.9, 0.9)
LEFT_MOVED = Box(0.05, 0.05, 0.35, 0.35)


def vector(i: int) -> np.ndarray:
    return np.eye(DIM, dtype=np.float32)[i]


def boxes(book: ViewBook) -> list[Box]:
    return [view.box for view in book.views()]


def test_a_still_frame_changes_nothing_and_the_full_view_comes_first():
    book = ViewBook()
    book.update(0, vector(0), [(LEFT, vector(1))])
    before = book.matrix().copy()
    book.update(500, None, [])
    assert boxes(book) == [FULL_FRAME, LEFT]
    np.testing.assert_array_equal(book.matrix(), before)


def test_a_new_region_replaces_the_one_at_its_spot_and_keeps_the_others():
    book = ViewBook()
    book.update(0, vector(0), [(LEFT, vector(1)), (RIGHT, vector(2))])
    book.update(500, None, [(LEFT_MOVED, vector(3))])
    assert boxes(book) == [FULL_FRAME, RIGHT, LEFT_MOVED]
    assert [view.ts_ms for view in book.views()] == [0, 0, 500]


def test_a_global_change_wipes_every_region():
    book = ViewBook()
    book.update(0, vector(0), [(LEFT, vector(1)), (RIGHT, vector(2))])
    book.update(500, vector(3), [], global_change=True)
    assert boxes(book) == [FULL_FRAME]
    assert book.full.ts_ms == 500


def test_regions_older_than_max_age_are_dropped_and_the_oldest_go_beyond_the_cap():
    book = ViewBook(ViewSettings(max_regions=2, max_age_ms=10_000))
    book.update(0, vector(0), [(LEFT, vector(1))])
    book.update(6_000, None, [(RIGHT, vector(2))])
    book.update(10_500, None, [])
    assert boxes(book) == [FULL_FRAME, RIGHT]  # LEFT was 10.5 s old
    middle = Box(0.35, 0.35, 0.55, 0.55)
    bottom = Box(0.0, 0.7, 0.2, 0.9)
    book.update(11_000, None, [(middle, vector(1)), (bottom, vector(3))])
    assert boxes(book) == [FULL_FRAME, middle, bottom]  # RIGHT, the oldest, made room


def test_a_snapshot_restores_the_same_views():
    book = ViewBook()
    book.update(0, vector(0), [(LEFT, vector(1))])
    book.update(700, None, [(RIGHT, vector(2))])
    restored = ViewBook()
    restored.restore(json.loads(json.dumps(book.to_state())))
    assert boxes(restored) == boxes(book)
    np.testing.assert_array_equal(restored.matrix(), book.matrix())
    with pytest.raises(ValueError, match="ViewBook snapshot"):
        restored.restore({"full": None})


def test_a_region_whose_motion_stopped_is_unsettled_until_embedded_once_more():
    book = ViewBook()
    book.update(0, vector(0), [(LEFT, vector(1)), (RIGHT, vector(2))])
    # motion goes on at LEFT only: RIGHT's crop is of something that moved and is now still
    assert book.unsettled([LEFT_MOVED]) == [RIGHT]
    book.update(500, None, [], settled=[(RIGHT, vector(3))])
    assert book.unsettled([LEFT_MOVED]) == []  # settled: it stands as it is now
    assert [view.settled for view in book.regions] == [False, True]
    book.update(1_000, None, [(Box(0.62, 0.62, 0.92, 0.92), vector(1))])  # motion there again
    assert book.unsettled([]) == [LEFT, Box(0.62, 0.62, 0.92, 0.92)]
