"""The evaluation's figures on hand-made truth and hits: exact values, both sides of every edge."""

from __future__ import annotations

import pytest

from vigil.evaluation.metrics import GOALS, HOUR_MS, TOLERANCE_MS, Event, Hit, Run, match_run, summarise

T0 = 1_700_000_000_000
S = 1_000


def event(event_id, query, start_s, end_s, ordinal=1, bucket="small") -> Event:
    return Event(event_id, query, T0 + round(start_s * S), T0 + round(end_s * S), ordinal, bucket)


def hit(query, start_ms, end_ms, confirmed_ms=None) -> Hit:
    return Hit(
        query, T0 + start_ms, T0 + (confirmed_ms if confirmed_ms is not None else start_ms + S), T0 + end_ms
    )


def run(events, hits, queries=("cat", "bike", "dog"), duration_s=120, language="en") -> Run:
    return Run("cam", language, tuple(queries), duration_s * S, tuple(events), tuple(hits))


@pytest.mark.parametrize(
    ("offset_ms", "found"),
    [
        (-TOLERANCE_MS - 1, False),
        (-TOLERANCE_MS, True),
        (-1, True),
        (0, True),
        (TOLERANCE_MS, True),
        (TOLERANCE_MS + 1, False),
    ],
)
def test_an_event_is_found_by_its_query_starting_within_1_5_s_either_side(offset_ms, found):
    start_ms = 20 * S
    outcome = match_run(run([event("e1", "cat", 20, 28)], [hit("cat", start_ms + offset_ms, 27 * S)]))
    assert outcome.found(outcome.run.events[0]) is found
    # missed by 1 ms: too early is a false event (background), too late a late one
    assert outcome.kinds == ["match" if found else ("background" if offset_ms < 0 else "late")]


def test_a_hit_of_another_query_at_the_right_time_finds_nothing_and_is_cross_firing():
    outcome = match_run(run([event("e1", "cat", 20, 28)], [hit("bike", 20 * S, 25 * S)]))
    assert not outcome.found(outcome.run.events[0])
    assert outcome.kinds == ["cross"]
    assert sorted(outcome.cross_pairs) == [("e1", "bike", True), ("e1", "dog", False)]


def test_one_hit_finds_one_event_the_nearest_start_wins():
    events = [event("e1", "cat", 20, 28)]
    hits = [hit("cat", 19 * S, 19 * S + 500), hit("cat", 20 * S + 200, 27 * S)]
    outcome = match_run(run(events, hits))
    assert outcome.matched == {"e1": 1}
    assert outcome.kinds == ["late", "match"]  # a second hit for the same cat: not a false one


def test_a_hit_ending_just_before_an_event_does_not_overlap_it_one_ending_on_its_start_does():
    events = [event("e1", "cat", 20, 28)]
    before = match_run(run(events, [hit("dog", 5 * S, 20 * S - 1)]))
    touching = match_run(run(events, [hit("dog", 5 * S, 20 * S)]))
    after_end = match_run(run(events, [hit("dog", 28 * S, 30 * S)]))  # the end is exclusive
    assert (
        before.kinds == ["background"] and touching.kinds == ["cross"] and after_end.kinds == ["background"]
    )


def test_a_hit_starting_long_before_its_own_event_is_false_not_late():
    events = [event("e1", "cat", 20, 28), event("e2", "bike", 40, 45)]
    early = match_run(run(events, [hit("bike", 1 * S, 42 * S)]))  # from the warm-up on, over the cat
    alone = match_run(run(events[1:], [hit("bike", 30 * S, 42 * S)]))
    starts_late = match_run(run(events[1:], [hit("bike", 42 * S, 44 * S)]))
    assert early.kinds == ["cross"] and alone.kinds == ["background"] and starts_late.kinds == ["late"]
    assert not early.found(events[1]) and not starts_late.found(events[1])


def test_time_to_detect_is_confirmation_minus_event_start():
    events = [event("e1", "cat", 20, 28), event("e2", "bike", 50, 60)]
    hits = [hit("cat", 20 * S + 500, 27 * S, confirmed_ms=21 * S + 500), hit("bike", 49 * S, 58 * S, 50 * S)]
    outcome = match_run(run(events, hits))
    assert outcome.time_to_detect_ms(events[0]) == 1_500
    assert outcome.time_to_detect_ms(events[1]) == 0
    figures = summarise([outcome])
    assert figures["time_to_detect_ms"] == {"n": 2, "median": 750.0, "p90": 1_350.0}


def test_false_events_per_hour_per_query_count_cross_and_background_not_late():
    events = [event("e1", "cat", 20, 28), event("e2", "bike", 60, 70)]
    hits = [
        hit("cat", 20 * S, 27 * S),  # match
        hit("cat", 24 * S, 26 * S),  # late: the cat is there, the event was already found
        hit("dog", 61 * S, 65 * S),  # cross-firing on the bike
        hit("bike", 100 * S, 102 * S),  # background
        hit("dog", 110 * S, 112 * S),  # background
    ]
    figures = summarise([match_run(run(events, hits, duration_s=120))])
    query_hours = 120 * 3 / 3600
    assert figures["hit_kinds"] == {"match": 1, "late": 1, "cross": 1, "background": 2}
    assert figures["false_events"] == 3
    assert figures["query_hours"] == pytest.approx(query_hours)
    assert figures["false_per_hour_per_query"] == pytest.approx(3 / query_hours)
    assert figures["cross_false_per_hour_per_query"] == pytest.approx(1 / query_hours)
    assert figures["background_false_per_hour_per_query"] == pytest.approx(2 / query_hours)
    assert figures["found"] == 1 and figures["found_pct"] == 50.0
    # precision 1 match of 1 + 3 false (the late hit counts neither way), recall 1 of 2
    assert figures["precision_pct"] == pytest.approx(25.0)
    assert figures["event_f1"] == pytest.approx(2 * 0.25 * 0.5 / (0.25 + 0.5))


def test_cross_firing_rate_is_over_event_and_other_query_pairs():
    # 2 events x 3 other queries (4 registered) = 6 pairs; dog fires on both, fox on e2: 3 of 6.
    queries = ("cat", "bike", "dog", "fox")
    events = [event("e1", "cat", 20, 28), event("e2", "bike", 60, 70)]
    hits = [hit("dog", 21 * S, 23 * S), hit("dog", 62 * S, 66 * S), hit("fox", 69 * S, 75 * S)]
    figures = summarise([match_run(run(events, hits, queries))])
    assert figures["cross_pairs"] == 6
    assert figures["cross_fired"] == 3
    assert figures["cross_firing_pct"] == 50.0
    # one query firing twice on one event is one pair
    twice = summarise(
        [match_run(run(events[:1], [hit("dog", 20 * S, 21 * S), hit("dog", 25 * S, 26 * S)], queries))]
    )
    assert (twice["cross_fired"], twice["cross_pairs"]) == (1, 3)


def test_the_two_event_query_reports_its_first_and_second_event_apart():
    events = [
        event("e1", "cat", 20, 28, ordinal=1, bucket="small"),
        event("e2", "bike", 45, 50, bucket="large"),
        event("e3", "cat", 70, 80, ordinal=2, bucket="large"),
    ]
    found_first_only = [hit("cat", 20 * S, 28 * S), hit("bike", 45 * S, 49 * S)]
    figures = summarise([match_run(run(events, found_first_only))])
    assert figures["two_event_query"]["first"] == {"events": 1, "found": 1, "found_pct": 100.0}
    assert figures["two_event_query"]["second"] == {"events": 1, "found": 0, "found_pct": 0.0}
    assert figures["size_buckets"]["large"] == {"events": 2, "found": 1, "found_pct": 50.0}
    assert figures["per_query"]["cat"]["found"] == 1
    # found again after the first one closed: the second is found as well
    both = summarise([match_run(run(events, [*found_first_only, hit("cat", 71 * S, 79 * S)]))])
    assert both["two_event_query"]["second"]["found"] == 1 and both["found"] == 3


def test_figures_add_up_over_runs_and_nothing_is_divided_by_zero():
    a = match_run(run([event("e1", "cat", 20, 28)], [hit("cat", 20 * S, 28 * S)], duration_s=100))
    b = match_run(run([], [hit("dog", 10 * S, 12 * S)], duration_s=200, language="vi"))
    figures = summarise([a, b])
    assert figures["events"] == 1 and figures["found"] == 1
    assert figures["query_hours"] == pytest.approx((100 + 200) * 3 / 3600)
    empty = summarise([])
    assert empty["found_pct"] is None and empty["false_per_hour_per_query"] is None
    assert empty["time_to_detect_ms"]["median"] is None


def test_an_event_whose_query_is_not_registered_is_refused():
    with pytest.raises(ValueError, match="not registered"):
        match_run(run([event("e1", "horse", 20, 28)], []))


def test_goals_judge_found_false_and_cross_firing():
    passing = {"found_pct": 90.0, "false_per_hour_per_query": 2.0, "cross_firing_pct": 5.0}
    failing = {"found_pct": 89.9, "false_per_hour_per_query": 2.01, "cross_firing_pct": 5.1}
    assert GOALS.check(passing) == dict.fromkeys(passing, True)
    assert GOALS.check(failing) == dict.fromkeys(failing, False)
    assert HOUR_MS == 3_600_000
