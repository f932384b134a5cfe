"""collapse_neighbours: a search's matches collapsed into moments, result by result."""

from __future__ import annotations

import pytest

from vigil.pipelines.search_results import SearchMatch, SearchResult, collapse_neighbours


def frame(ts_s: float, score: float, camera: str = "hall") -> SearchMatch:
    ts_ms = round(ts_s * 1000)
    return SearchMatch(camera, ts_ms, score, "frame", thumbnail=f"{camera}/1970-01-01/{ts_ms}.jpg")


def test_a_run_of_neighbouring_frames_is_one_moment_shown_by_its_best_frame():
    matches = [frame(t, s) for t, s in [(12, 0.20), (13, 0.31), (14, 0.28), (15, 0.25)]]
    assert collapse_neighbours(matches, 10) == [
        SearchResult(
            camera_id="hall",
            ts_ms=13_000,
            start_ts_ms=12_000,
            end_ts_ms=15_000,
            frames=4,
            score=0.31,
            source="frame",
            query_id=None,
            box=None,
            thumbnail="hall/1970-01-01/13000.jpg",
        )
    ]


def test_a_missing_frame_does_not_cut_a_moment_but_a_pause_longer_than_the_gap_does():
    matches = [frame(10, 0.3), frame(12, 0.3), frame(14.5, 0.2), frame(17.1, 0.25)]
    results = collapse_neighbours(matches, 10, gap_ms=2_500)
    assert [(r.start_ts_ms, r.end_ts_ms, r.frames) for r in results] == [
        (10_000, 14_500, 3),
        (17_100, 17_100, 1),
    ]


def test_cameras_are_never_merged_and_results_are_ranked_by_score():
    matches = [frame(5, 0.1, "gate"), frame(5, 0.4, "hall"), frame(6, 0.2, "gate"), frame(40, 0.3, "hall")]
    results = collapse_neighbours(matches, 10)
    assert [(r.camera_id, r.ts_ms, r.score, r.frames) for r in results] == [
        ("hall", 5_000, 0.4, 1),
        ("hall", 40_000, 0.3, 1),
        ("gate", 6_000, 0.2, 2),
    ]


def test_the_limit_keeps_the_best_moments():
    matches = [frame(t * 10, t / 100) for t in range(1, 8)]
    assert [r.ts_ms for r in collapse_neighbours(matches, 3)] == [70_000, 60_000, 50_000]


def test_a_hit_absorbs_the_frames_of_its_event_and_lends_the_moment_its_query_and_box():
    hit = SearchMatch(
        "hall",
        15_000,
        0.25,
        "hit",
        start_ts_ms=12_000,
        end_ts_ms=20_000,
        query_id="cat",
        box=(0.5, 0.2, 0.9, 0.7),
    )
    matches = [frame(11, 0.2), frame(16, 0.3), hit, frame(21, 0.1), frame(30, 0.05)]
    first, second = collapse_neighbours(matches, 10)
    assert (first.source, first.query_id, first.box) == ("hit", "cat", (0.5, 0.2, 0.9, 0.7))
    # Shown by its best match (a frame here), over the union of the spans.
    assert (first.ts_ms, first.score, first.start_ts_ms, first.end_ts_ms, first.frames) == (
        16_000,
        0.3,
        11_000,
        21_000,
        4,
    )
    assert first.thumbnail == "hall/1970-01-01/16000.jpg"
    assert (second.ts_ms, second.source, second.frames) == (30_000, "frame", 1)


def test_an_open_hit_spans_its_start_to_its_peak():
    hit = SearchMatch("hall", 15_000, 0.25, "hit", start_ts_ms=9_000, end_ts_ms=None, query_id="cat")
    (result,) = collapse_neighbours([hit, frame(7, 0.1)], 10)
    assert (result.start_ts_ms, result.end_ts_ms, result.frames, result.source) == (7_000, 15_000, 2, "hit")


def test_equal_inputs_in_any_order_give_equal_outputs_and_ties_go_to_the_earlier_moment():
    matches = [frame(50, 0.3), frame(10, 0.3), frame(30, 0.3)]
    assert [r.ts_ms for r in collapse_neighbours(matches, 10)] == [10_000, 30_000, 50_000]
    assert collapse_neighbours(matches[::-1], 10) == collapse_neighbours(matches, 10)


def test_nothing_matched_is_no_result_and_bad_arguments_are_refused():
    assert collapse_neighbours([], 5) == []
    with pytest.raises(ValueError, match="limit"):
        collapse_neighbours([frame(1, 0.1)], 0)
    with pytest.raises(ValueError, match="gap_ms"):
        collapse_neighbours([frame(1, 0.1)], 1, gap_ms=-1)
