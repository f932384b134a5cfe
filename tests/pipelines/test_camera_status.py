"""A camera's status machine, event by event: states, since, reconnects, and what is news."""

from __future__ import annotations

from vigil.pipelines.camera_status import (
    DELETED_REASON,
    STOPPED_REASON,
    CameraStatus,
    CameraStatusMachine,
    StatusChange,
)

T0 = 1_780_000_000.0
STALL_AFTER_S = 2.0


def machine() -> CameraStatusMachine:
    return CameraStatusMachine("cam-1", STALL_AFTER_S, now=T0)


def streaming_machine() -> CameraStatusMachine:
    camera = machine()
    camera.connecting(T0 + 1)
    camera.streaming(T0 + 2)
    return camera


def test_a_new_camera_is_connecting_since_it_was_made():
    assert machine().status == CameraStatus("cam-1", "connecting", None, T0, 0)


def test_the_first_attempt_is_reported_although_it_repeats_the_initial_status():
    change = machine().connecting(T0 + 1)
    assert change == StatusChange(
        CameraStatus("cam-1", "connecting", None, T0 + 1, 0), news=True, trouble=False
    )


def test_the_first_frame_makes_it_streaming():
    camera = machine()
    camera.connecting(T0 + 1)
    change = camera.streaming(T0 + 2)
    assert change is not None and change.status == CameraStatus("cam-1", "streaming", None, T0 + 2, 0)
    assert change.news and not change.trouble


def test_the_same_state_and_reason_again_reports_nothing():
    camera = streaming_machine()
    assert camera.streaming(T0 + 3) is None
    assert camera.status.since == T0 + 2


def test_a_disabled_camera_is_reported_once_as_disabled():
    camera = machine()
    change = camera.disabled(T0 + 1)
    assert change is not None and change.status == CameraStatus("cam-1", "disabled", None, T0 + 1, 0)
    assert change.news and not change.trouble
    assert camera.disabled(T0 + 2) is None


def test_a_lost_camera_goes_down_with_its_reason_as_trouble():
    camera = streaming_machine()
    change = camera.down("lost: no data for 5 s", T0 + 9)
    assert change is not None and change.status == CameraStatus(
        "cam-1", "down", "lost: no data for 5 s", T0 + 9
    )
    assert change.news and change.trouble


def test_a_camera_being_retried_stays_down_until_it_streams():
    camera = streaming_machine()
    camera.down("cannot open: Connection refused", T0 + 9)
    assert camera.connecting(T0 + 10) is None
    assert camera.status.state == "down"
    change = camera.streaming(T0 + 11)
    assert change is not None and change.status.state == "streaming" and change.status.since == T0 + 11


def test_a_new_reason_while_down_keeps_the_time_it_went_down():
    camera = streaming_machine()
    camera.down("cannot open: Connection refused", T0 + 9)
    change = camera.down("no answer within 5 s", T0 + 12)
    assert change is not None and change.status == CameraStatus(
        "cam-1", "down", "no answer within 5 s", since=T0 + 9, reconnects=0
    )
    assert change.news and change.trouble


def test_a_reason_that_changes_back_is_news_and_a_repeated_one_no_change():
    camera = streaming_machine()
    camera.down("cannot open: Connection refused", T0 + 9)
    camera.down("no answer within 5 s", T0 + 12)
    again = camera.down("cannot open: Connection refused", T0 + 15)
    # The reason changed, so the status is reported and logged ...
    assert again is not None and again.news
    # ... but the same reason twice in a row is no change at all.
    assert camera.down("cannot open: Connection refused", T0 + 18) is None


def test_going_down_again_for_the_reason_it_was_last_down_for_is_not_news():
    # Down, then connecting (a file replayed: not through a retry), then down for the same reason.
    camera = machine()
    camera.connecting(T0 + 1)
    camera.down("cannot open: Connection refused", T0 + 2)
    camera.disabled(T0 + 3)  # any state but streaming keeps the last down reason
    change = camera.down("cannot open: Connection refused", T0 + 4)
    assert change is not None and not change.news and change.trouble


def test_streaming_again_makes_the_next_down_news_whatever_its_reason():
    camera = streaming_machine()
    camera.down("stream ended", T0 + 9)
    camera.streaming(T0 + 10)
    change = camera.down("stream ended", T0 + 30)
    assert change is not None and change.news and change.status.since == T0 + 30


def test_reconnects_count_the_attempts_after_the_first():
    camera = machine()
    assert camera.connections == 0
    camera.connecting(T0 + 1)
    camera.down("cannot open: Connection refused", T0 + 2)
    camera.connecting(T0 + 3)
    camera.connecting(T0 + 4)
    assert camera.connections == 3
    change = camera.streaming(T0 + 5)
    assert change is not None and change.status.reconnects == 2


def test_reconnects_are_read_when_the_status_changes_not_when_an_attempt_starts():
    camera = machine()
    camera.connecting(T0 + 1)
    camera.down("cannot open: Connection refused", T0 + 2)
    camera.connecting(T0 + 3)  # stays down: nothing reported, the count waits for the next change
    assert camera.status.reconnects == 0


def test_a_streaming_camera_silent_for_longer_than_stall_after_s_is_stalled():
    camera = streaming_machine()
    assert camera.check_stall(STALL_AFTER_S, T0 + 5) is None  # exactly the bound: not yet
    change = camera.check_stall(STALL_AFTER_S + 0.1, T0 + 5)
    assert change is not None and change.status == CameraStatus(
        "cam-1", "stalled", "no data for more than 2 s", T0 + 5
    )
    assert change.news and change.trouble


def test_a_stalled_camera_stays_stalled_until_its_next_event():
    camera = streaming_machine()
    camera.check_stall(3.0, T0 + 5)
    assert camera.check_stall(4.0, T0 + 6) is None
    change = camera.streaming(T0 + 7)
    assert change is not None and change.status.state == "streaming"


def test_only_a_streaming_camera_can_stall():
    camera = machine()
    assert camera.check_stall(60.0, T0 + 60) is None
    camera.connecting(T0 + 61)
    assert camera.check_stall(60.0, T0 + 62) is None
    camera.down("lost", T0 + 63)
    assert camera.check_stall(60.0, T0 + 64) is None
    assert camera.status.state == "down"


def test_the_stall_reason_names_the_bound():
    camera = CameraStatusMachine("cam-1", 0.5, now=T0)
    camera.streaming(T0 + 1)
    change = camera.check_stall(0.6, T0 + 2)
    assert change is not None and change.status.reason == "no data for more than 0.5 s"


def test_stopping_is_down_but_no_trouble():
    camera = streaming_machine()
    change = camera.stopped(T0 + 20)
    assert change is not None and change.status == CameraStatus("cam-1", "down", STOPPED_REASON, T0 + 20)
    assert change.news and not change.trouble
    assert STOPPED_REASON == "ingest stopped"


def test_a_camera_down_for_another_reason_keeps_its_since_when_ingest_stops():
    camera = streaming_machine()
    camera.down("cannot open: Connection refused", T0 + 9)
    change = camera.stopped(T0 + 20)
    assert change is not None and change.status.since == T0 + 9 and change.status.reason == STOPPED_REASON


def test_a_file_that_ended_is_down_as_trouble():
    camera = streaming_machine()
    change = camera.down("the file ended (set loop: true to play it again)", T0 + 20)
    assert change is not None and change.trouble


def test_down_without_a_reason_is_reported_and_news_only_after_a_reason():
    # No reason compares equal to "never down yet": reported, not logged.
    camera = streaming_machine()
    change = camera.down(None, T0 + 9)
    assert change is not None and change.status.reason is None and not change.news and change.trouble
    camera.down("lost", T0 + 10)
    change = camera.down(None, T0 + 11)
    assert change is not None and change.news


def test_a_deleted_camera_ends_down_saying_so_and_that_is_no_trouble():
    change = streaming_machine().deleted(T0 + 30)
    assert change == StatusChange(
        CameraStatus("cam-1", "down", DELETED_REASON, T0 + 30), news=True, trouble=False
    )
    assert DELETED_REASON == "camera deleted"
