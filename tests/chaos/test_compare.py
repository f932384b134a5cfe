"""How a chaos run is held against its clean run (vigil/chaos/reference.py `compare`), on made-up
hits: no `vigil up` needed."""

from __future__ import annotations

from vigil.chaos import ChaosRun, Reference, compare
from vigil.chaos.model import Event
from vigil.services.alerter.service import alert_id_for
from vigil.services.common.contract import AlertMessage, HitMessage, derive_hit_id

CAMERA = "hall"


def hit(query_id: str, start_s: float, end_s: float | None) -> HitMessage:
    start_ms = int(start_s * 1000)
    return HitMessage(
        hit_id=derive_hit_id(CAMERA, query_id, start_ms),
        camera_id=CAMERA,
        query_id=query_id,
        event_start_ts_ms=start_ms,
        peak_ts_ms=start_ms + 500,
        end_ts_ms=None if end_s is None else int(end_s * 1000),
        peak_score=0.9,
        thumbnail=f"{CAMERA}/{start_ms}.jpg",
        encoder="offline-test",
    )


def run_of(tmp_path, *hits: HitMessage) -> ChaosRun:
    run = ChaosRun(home=tmp_path, stream_start_s=0.0)
    run.stored_hits = list(hits)
    run.hits = {one.hit_id: one for one in hits}
    run.alerts = [
        AlertMessage(
            alert_id=alert_id_for(one.hit_id),
            hit_id=one.hit_id,
            camera_id=CAMERA,
            query_id=one.query_id,
            severity="warning",
            text=one.query_id,
            language="en",
            raised_ts_ms=one.peak_ts_ms,
        )
        for one in hits
    ]
    return run


def reference_of(*events: Event) -> Reference:
    ids = {derive_hit_id(CAMERA, event.query_id, int(event.start_s * 1000)) for event in events}
    return Reference(events=list(events), hit_ids=ids, frames=100)


def test_an_event_open_when_the_frames_ran_out_matches_one_the_run_left_open(tmp_path):
    reference = reference_of(Event("cat", 12.0, 20.0), Event("cat", 50.6, None))
    run = run_of(tmp_path, hit("cat", 12.0, 20.5), hit("cat", 50.6, None))
    assert compare(reference, run) == []


def test_an_open_event_does_not_match_a_closed_one_either_way(tmp_path):
    open_in_run = compare(reference_of(Event("cat", 50.6, 55.0)), run_of(tmp_path, hit("cat", 50.6, None)))
    assert open_in_run == [
        "Event(query_id='cat', start_s=50.6, end_s=55.0) of the clean run has no counterpart within 2.0 s",
        "Event(query_id='cat', start_s=50.6, end_s=None) is not in the clean run",
    ]
    closed_in_run = compare(reference_of(Event("cat", 50.6, None)), run_of(tmp_path, hit("cat", 50.6, 55.0)))
    assert len(closed_in_run) == 2


def test_an_end_moved_past_the_tolerance_is_a_difference(tmp_path):
    reference = reference_of(Event("cat", 20.3, 27.8))
    assert compare(reference, run_of(tmp_path, hit("cat", 20.3, 26.0))) == []
    assert compare(reference, run_of(tmp_path, hit("cat", 20.3, 24.8))) == [
        "Event(query_id='cat', start_s=20.3, end_s=27.8) of the clean run has no counterpart within 2.0 s",
        "Event(query_id='cat', start_s=20.3, end_s=24.8) is not in the clean run",
    ]
