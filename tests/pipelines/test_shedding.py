"""Load shedding, batch by batch: nothing is shed in time, and when behind the cheapest loss goes
first (older still frames, then whole-frame refreshes, then older region frames), never a
camera's newest frame, nor a frame replayed after a restart; and a detector that keeps up sheds
nothing, however late its frames came."""

from __future__ import annotations

from vigil.pipelines.shedding import CostModel, LoadMeter, PlannedFrame, shed_to_budget

COST = CostModel(seconds_per_crop=0.1, seconds_per_full=0.2)


def frame(
    camera: str,
    ts_ms: int,
    *,
    still=False,
    full=False,
    global_change=False,
    crops=0,
    whole=False,
    replay=False,
) -> PlannedFrame:
    return PlannedFrame(camera, ts_ms, still, full, global_change, crops, whole, replay)


def test_a_batch_that_fits_its_budget_keeps_everything():
    frames = [frame("a", 1_000, crops=2), frame("a", 1_500, still=True), frame("b", 1_200, full=True)]
    # done by 1_600 + 400
    plan = shed_to_budget(frames, now_ms=1_600, budget_ms=1_000, cost=COST, overloaded=True)
    assert plan.keep == [True, True, True] and plan.drop_full == [False] * 3 and plan.shed == {}


def test_older_still_frames_go_first_and_the_newest_of_each_camera_stays():
    frames = [
        frame("a", 1_000, still=True),
        frame("a", 1_500, still=True),
        frame("b", 1_900, crops=1),
        frame("a", 2_000, still=True),  # camera a's newest: kept even though still
    ]
    plan = shed_to_budget(frames, now_ms=2_300, budget_ms=1_000, cost=COST, overloaded=True)
    assert plan.keep == [False, False, True, True]
    assert plan.shed == {"still": 2}


def test_whole_frame_refreshes_are_deferred_before_any_region_frame_is_dropped():
    frames = [frame("a", 1_000, crops=1, full=True), frame("a", 1_400, crops=1)]
    # 100 + 100 + 200 ms of work from 1_600: the 1_000 frame would be out at 2_000 (1_000 late)
    plan = shed_to_budget(frames, now_ms=1_600, budget_ms=900, cost=COST, overloaded=True)
    assert plan.keep == [True, True] and plan.drop_full == [True, False]
    assert plan.shed == {"full_frame": 1}


def test_a_global_change_keeps_its_whole_frame():
    frames = [frame("a", 1_000, full=True, global_change=True), frame("a", 1_400, crops=1)]
    plan = shed_to_budget(frames, now_ms=1_600, budget_ms=800, cost=COST, overloaded=True)
    assert plan.keep == [True, True] and plan.drop_full == [False, False] and plan.shed == {}


def test_older_region_frames_go_oldest_first_until_the_rest_fits():
    frames = [frame("a", ts, crops=2) for ts in (1_000, 1_500, 2_000, 2_500)]
    # each frame 200 ms of crops; at now 2_600 with a 1 s budget only the last two fit
    plan = shed_to_budget(frames, now_ms=2_600, budget_ms=1_000, cost=COST, overloaded=True)
    assert plan.keep == [False, False, True, True]
    assert plan.shed == {"frame": 2}


def test_when_even_the_newest_frames_are_late_they_are_kept_and_everything_else_shed():
    frames = [frame("a", 0, crops=1), frame("a", 100, crops=1), frame("b", 50, crops=1)]
    plan = shed_to_budget(frames, now_ms=5_000, budget_ms=1_000, cost=COST, overloaded=True)
    assert plan.keep == [False, True, True]


def test_the_cost_model_learns_from_what_batches_took():
    model = CostModel(seconds_per_crop=0.01, seconds_per_full=0.02, alpha=0.5)
    for _ in range(20):
        model.observe(crops=4, full=0, seconds=0.4)  # 100 ms a crop in truth
    assert abs(model.seconds_per_crop - 0.1) < 0.005
    assert model.seconds_per_full == 0.02  # no whole frame in those batches: unchanged
    model.observe(crops=0, full=0, seconds=1.0)  # nothing embedded: nothing learnt
    assert abs(model.seconds_per_crop - 0.1) < 0.005


def test_a_whole_frame_detector_sheds_older_frames_never_the_newest_one_s_embedding():
    frames = [frame("a", ts, whole=True) for ts in (1_000, 1_500, 2_000)]
    # 200 ms a whole frame: from 2_400 only the newest fits; it is kept, embedding and all
    plan = shed_to_budget(frames, now_ms=2_400, budget_ms=1_000, cost=COST, overloaded=True)
    assert plan.keep == [False, False, True] and plan.drop_full == [False] * 3
    assert plan.shed == {"frame": 2}


def test_one_slow_batch_moves_the_estimates_by_at_most_four_times():
    model = CostModel(seconds_per_crop=0.02, seconds_per_full=0.06, alpha=1.0)
    model.observe(crops=0, full=1, seconds=30.0)  # the first call, loading the sessions
    assert model.seconds_per_full == 0.24


def test_replayed_frames_are_never_shed_nor_their_whole_frames_deferred_and_the_rest_is():
    # A restarted detector's catch-up batch: three frames a crashed one may have scored (far
    # over budget), then two newer live frames of the same camera and one of another camera.
    frames = [
        frame("a", 1_000, crops=2, full=True, replay=True),
        frame("a", 1_500, still=True, replay=True),
        frame("a", 2_000, crops=2, replay=True),
        frame("a", 4_000, crops=2),
        frame("a", 4_500, crops=2),
        frame("b", 4_200, still=True),
    ]
    plan = shed_to_budget(frames, now_ms=5_000, budget_ms=1_000, cost=COST, overloaded=True)
    assert plan.keep == [True, True, True, False, True, True]
    assert plan.drop_full == [False] * 6
    assert plan.shed == {"frame": 1}


def keeping_up(meter: LoadMeter, seconds: float, start_s: float = 0.0) -> float:
    """One camera at 2 frames/s on a detector that takes 0.1 s a frame: 0.4 s of each turn waiting."""
    now = start_s
    while now < start_s + seconds:
        now += 0.5
        meter.record(now, busy_s=0.1, waited_s=0.4)
    return now


def test_a_detector_that_keeps_up_sheds_nothing_of_a_batch_a_broker_restart_held_back():
    meter = LoadMeter()
    now = keeping_up(meter, 30.0)
    meter.record(now + 1.5, busy_s=0.0, waited_s=1.5)  # the broker is away: polls come back empty
    assert not meter.overloaded()
    # Its catch-up batch: the frames captured while the broker was away, over a 0.5 s budget.
    frames = [frame("a", ts, crops=2, full=ts == 1_000) for ts in (1_000, 1_500, 2_000, 2_500)]
    plan = shed_to_budget(frames, now_ms=3_000, budget_ms=500, cost=COST, overloaded=meter.overloaded())
    assert plan.keep == [True] * 4 and plan.drop_full == [False] * 4 and plan.shed == {}
    # The same batch on a detector that cannot keep up is shed as before.
    assert shed_to_budget(frames, now_ms=3_000, budget_ms=500, cost=COST, overloaded=True).shed


def test_the_load_meter_is_overloaded_only_while_it_never_waits_for_frames():
    meter = LoadMeter(window_s=10.0, overload_at=0.9)
    assert not meter.overloaded() and meter.utilisation() == 0.0  # just started
    now = keeping_up(meter, 20.0)
    assert abs(meter.utilisation() - 0.2) < 1e-9
    for _ in range(10):  # a backlog: every poll comes back full, 1 s of work a batch
        now += 1.0
        meter.record(now, busy_s=1.0, waited_s=0.0)
    assert meter.utilisation() > 0.9 and meter.overloaded()
    now = keeping_up(meter, 10.0, start_s=now)  # caught up: what was busy left the window
    assert abs(meter.utilisation() - 0.2) < 1e-9 and not meter.overloaded()
