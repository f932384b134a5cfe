"""MatchStateMachine, frame by frame: hysteresis, minimum duration, cooldown, gaps and hits."""

from __future__ import annotations

import pytest

from vigil.pipelines.matching import Hit, MatchSettings, MatchState, MatchStateMachine, hit_id

# 1 frame/s; thresholds on the calibrated scale.
SETTINGS = MatchSettings(enter=0.6, exit=0.4, min_duration_ms=2000, cooldown_ms=5000, max_gap_ms=3000)
LOW, MID, HIGH = 0.1, 0.5, 0.8  # below exit, between exit and enter, above enter


def run(scores: list[float], settings: MatchSettings = SETTINGS, start_ms: int = 0, step_ms: int = 1000):
    """Feed one score per frame; return the machine and every hit with the index of its frame."""
    machine = MatchStateMachine("cam-1", "q-1", settings)
    hits: list[tuple[int, Hit]] = []
    for i, score in enumerate(scores):
        ts = start_ms + i * step_ms
        hits.extend((i, hit) for hit in machine.step(ts, score, frame_ref=f"frame-{ts}"))
    return machine, hits


def test_a_blip_shorter_than_min_duration_emits_nothing():
    machine, hits = run([LOW, HIGH, HIGH, LOW, LOW])  # over enter for 1 s < 2 s
    assert hits == []
    assert machine.state is MatchState.IDLE


def test_an_event_is_confirmed_as_soon_as_it_has_lasted_min_duration():
    _, hits = run([LOW, HIGH, HIGH, HIGH, HIGH])
    assert [i for i, _ in hits] == [3]  # frames 1..3 span 2000 ms: alert at frame 3, not later
    hit = hits[0][1]
    assert not hit.closed and hit.end_ts_ms is None


def test_event_start_is_the_first_frame_over_the_enter_threshold():
    _, hits = run([LOW, MID, MID, HIGH, HIGH, HIGH, HIGH])
    assert hits[0][1].event_start_ts_ms == 3000  # the MID frames before it are not the start


def test_hysteresis_keeps_an_event_open_through_a_dip():
    _, hits = run([HIGH, HIGH, HIGH, HIGH, MID, MID, HIGH, HIGH, LOW])
    assert [(i, h.closed) for i, h in hits] == [(2, False), (8, True)]
    assert hits[1][1].event_start_ts_ms == 0


def test_hysteresis_also_carries_a_candidate_through_a_dip():
    _, hits = run([HIGH, MID, MID, LOW])  # only the first frame was over enter
    assert [(i, h.closed) for i, h in hits] == [(2, False), (3, True)]


def test_a_drop_below_exit_closes_the_event_at_its_last_frame_over_exit():
    machine, hits = run([HIGH, HIGH, HIGH, MID, LOW, LOW])
    closing = hits[-1][1]
    assert closing.closed
    assert closing.end_ts_ms == 3000  # frame 3 (MID) was still part of it; frame 4 was not
    assert machine.state is MatchState.COOLDOWN


def test_the_closing_hit_carries_the_peak_and_its_frame_as_thumbnail():
    _, hits = run([0.7, 0.7, 0.75, 0.95, 0.8, LOW])
    opening, closing = hits[0][1], hits[1][1]
    assert (opening.peak_ts_ms, opening.peak_score) == (2000, 0.75)  # the best so far at confirmation
    assert (closing.peak_ts_ms, closing.peak_score, closing.thumbnail_ref) == (3000, 0.95, "frame-3000")


def test_a_tie_keeps_the_first_frame_at_the_peak():
    _, hits = run([0.9, 0.7, 0.9, LOW])
    assert hits[-1][1].peak_ts_ms == 0


def test_cooldown_suppresses_a_second_event():
    # event ends at 2000 ms; cooldown until 7000 ms; the second burst at 4000-6000 ms is suppressed
    machine, hits = run([HIGH, HIGH, HIGH, LOW, HIGH, HIGH, HIGH])
    assert [(i, h.closed) for i, h in hits] == [(2, False), (3, True)]
    assert machine.state is MatchState.COOLDOWN


def test_a_new_event_can_start_once_the_cooldown_is_over():
    scores = [HIGH, HIGH, HIGH, LOW] + [LOW] * 4 + [HIGH, HIGH, HIGH]
    _, hits = run(scores)
    assert [(i, h.closed) for i, h in hits] == [(2, False), (3, True), (10, False)]
    assert hits[-1][1].event_start_ts_ms == 8000


def test_an_event_that_persists_through_the_cooldown_restarts_right_after_it():
    _, hits = run([HIGH, HIGH, HIGH, LOW] + [HIGH] * 8)
    assert hits[-1][1].event_start_ts_ms == 7000  # end 2000 ms + cooldown 5000 ms


def test_a_gap_longer_than_max_gap_closes_the_event_at_the_last_frame_before_it():
    machine = MatchStateMachine("cam-1", "q-1", SETTINGS)
    hits = []
    for ts in (0, 1000, 2000, 3000, 10_000):  # 7 s without frames
        hits += machine.step(ts, HIGH)
    assert [h.closed for h in hits] == [False, True]
    assert hits[1].end_ts_ms == 3000
    # cooldown counts from the event's end (3000 + 5000 ms), so the frame after the gap is
    # already free to open a new candidate
    assert machine.state is MatchState.CANDIDATE
    assert machine.open_since_ts_ms == 10_000


def test_a_gap_within_max_gap_does_not_split_the_event():
    machine = MatchStateMachine("cam-1", "q-1", SETTINGS)
    hits = []
    for ts in (0, 1000, 2000, 5000, 6000):  # 3 s apart: tolerated
        hits += machine.step(ts, HIGH)
    assert [h.closed for h in hits] == [False]
    assert machine.state is MatchState.ACTIVE


def test_a_gap_abandons_a_candidate():
    machine = MatchStateMachine("cam-1", "q-1", SETTINGS)
    hits = []
    for ts in (0, 10_000, 11_000, 12_000):
        hits += machine.step(ts, HIGH)
    assert [h.event_start_ts_ms for h in hits] == [10_000]  # the frame at 0 ms did not count


def test_zero_min_duration_confirms_on_the_first_frame_over_enter():
    settings = MatchSettings(enter=0.6, exit=0.4, min_duration_ms=0, cooldown_ms=0)
    _, hits = run([LOW, HIGH, LOW], settings)
    assert [(i, h.closed, h.event_start_ts_ms, h.end_ts_ms) for i, h in hits] == [
        (1, False, 1000, None),
        (2, True, 1000, 1000),
    ]


def test_finish_closes_an_open_event_and_drops_a_candidate():
    machine, _ = run([HIGH, HIGH, HIGH, HIGH])
    [closing] = machine.finish()
    assert closing.closed and closing.end_ts_ms == 3000
    candidate, _ = run([HIGH])
    assert candidate.finish() == []
    assert candidate.state is MatchState.IDLE


def test_expire_closes_the_event_of_a_camera_that_went_silent():
    machine, _ = run([HIGH, HIGH, HIGH])
    assert machine.expire(now_ts_ms=5000) == []  # 3 s of silence is within max_gap
    [closing] = machine.expire(now_ts_ms=5001)
    assert closing.end_ts_ms == 2000


def test_frames_not_newer_than_the_last_are_ignored():
    machine = MatchStateMachine("cam-1", "q-1", SETTINGS)
    machine.step(5000, LOW)
    assert machine.step(4000, HIGH) == [] and machine.step(5000, HIGH) == []
    assert machine.state is MatchState.IDLE
    assert machine.ignored_out_of_order == 2


def test_hit_ids_are_stable_on_replay_and_shared_by_the_opening_and_closing_hits():
    scores = [LOW, HIGH, HIGH, HIGH, LOW]
    _, first = run(scores, start_ms=1_700_000_000_000)
    _, replay = run(scores, start_ms=1_700_000_000_000)
    assert [h for _, h in first] == [h for _, h in replay]
    opening, closing = first[0][1], first[1][1]
    assert opening.hit_id == closing.hit_id == hit_id("cam-1", "q-1", 1_700_000_001_000)
    assert hit_id("cam-2", "q-1", 1_700_000_001_000) != opening.hit_id
    assert hit_id("cam-1", "q-1", 1_700_000_002_000) != opening.hit_id


def test_open_since_marks_the_oldest_frame_a_consumer_must_not_commit_past():
    machine = MatchStateMachine("cam-1", "q-1", SETTINGS)
    machine.step(0, LOW)
    assert machine.open_since_ts_ms is None
    machine.step(1000, HIGH)
    assert machine.open_since_ts_ms == 1000  # a candidate already pins its start
    for ts in (2000, 3000):
        machine.step(ts, HIGH)
    assert machine.state is MatchState.ACTIVE and machine.open_since_ts_ms == 1000
    machine.step(4000, LOW)
    assert machine.open_since_ts_ms is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"enter": 0.5, "exit": 0.5},
        {"enter": 0.4, "exit": 0.5},
        {"enter": 1.2, "exit": 0.5},
        {"exit": 0.0},
        {"min_duration_ms": -1},
        {"cooldown_ms": -1},
        {"max_gap_ms": 0},
    ],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        MatchSettings(**kwargs)
