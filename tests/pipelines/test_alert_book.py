"""The alert book: records by alert id, end times, acknowledged exactly once, a hit's alert known
after a lost policy snapshot, retention, and a snapshot format that stays the same (pure, no broker)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from vigil.pipelines.alert_book import (
    AlertBook,
    AlertRecord,
    AlreadyAcknowledgedError,
    UnknownAlertError,
    alert_id_for,
    retention_cutoff_ms,
)
from vigil.services.common.contract import AlertMessage


def alert(alert_id: str = "alert:cam-1:q1:1000", raised_ts_ms: int = 2_000) -> AlertMessage:
    return AlertMessage(
        alert_id=alert_id,
        hit_id=alert_id.removeprefix("alert:"),
        camera_id="cam-1",
        query_id="q1",
        severity="warning",
        text="Cảnh báo: phát hiện một chiếc xe máy tại camera 1.",
        language="vi",
        raised_ts_ms=raised_ts_ms,
    )


def test_an_alert_is_acknowledged_exactly_once_and_the_second_try_says_by_whom_and_when():
    book = AlertBook()
    book.add(AlertRecord(alert=alert()))
    record = book.acknowledge("alert:cam-1:q1:1000", " lan ", now_ms=1_700_000_000_000)
    assert record.status == "acknowledged"
    assert record.acknowledged_by == "lan"
    assert record.acknowledged_ts_ms == 1_700_000_000_000
    assert book.get("alert:cam-1:q1:1000") == record
    with pytest.raises(
        AlreadyAcknowledgedError, match=r"already acknowledged by lan at 2023-11-14 22:13:20 UTC"
    ):
        book.acknowledge("alert:cam-1:q1:1000", "minh", now_ms=1_700_000_100_000)
    assert book.get("alert:cam-1:q1:1000").acknowledged_by == "lan"


def test_unknown_alerts_and_nameless_users_are_refused():
    book = AlertBook()
    with pytest.raises(UnknownAlertError, match="no alert 'alert:nope'"):
        book.acknowledge("alert:nope", "lan", now_ms=1)
    with pytest.raises(UnknownAlertError):
        book.close("alert:nope", 5)
    book.add(AlertRecord(alert=alert()))
    with pytest.raises(ValueError, match="user's name"):
        book.acknowledge("alert:cam-1:q1:1000", "  ", now_ms=1)
    assert book.get("alert:cam-1:q1:1000").status == "open"


def test_close_keeps_the_first_end_time_and_open_alerts_are_oldest_first():
    book = AlertBook()
    book.add(AlertRecord(alert=alert("alert:cam-1:q1:3000", raised_ts_ms=5_000)))
    book.add(AlertRecord(alert=alert("alert:cam-1:q1:1000", raised_ts_ms=2_000)))
    book.add(AlertRecord(alert=alert("alert:cam-1:q1:2000", raised_ts_ms=3_000)))
    assert book.close("alert:cam-1:q1:1000", 4_000).end_ts_ms == 4_000
    assert book.close("alert:cam-1:q1:1000", 9_000).end_ts_ms == 4_000
    book.acknowledge("alert:cam-1:q1:2000", "lan", now_ms=6_000)
    assert [r.alert_id for r in book.open_alerts()] == ["alert:cam-1:q1:1000", "alert:cam-1:q1:3000"]
    assert len(book) == 3 and "alert:cam-1:q1:2000" in book


def test_a_record_survives_its_json_snapshot():
    book = AlertBook()
    book.add(AlertRecord(alert=alert()))
    book.close("alert:cam-1:q1:1000", 4_000)
    record = book.acknowledge("alert:cam-1:q1:1000", "lan", now_ms=6_000)
    restored = AlertRecord[AlertMessage].from_state(json.loads(json.dumps(record.to_state())))
    assert restored == record
    assert restored.alert.text.startswith("Cảnh báo")


def test_prune_forgets_alerts_raised_before_the_cutoff_whatever_their_status():
    book = AlertBook()
    for raised in (1_000, 2_000, 3_000):
        book.add(AlertRecord(alert=alert(f"alert:cam-1:q1:{raised}", raised)))
    book.acknowledge("alert:cam-1:q1:1000", "an", now_ms=1_500)
    assert book.prune(raised_before_ms=2_500) == ["alert:cam-1:q1:1000", "alert:cam-1:q1:2000"]
    assert [r.alert.raised_ts_ms for r in book] == [3_000]
    assert book.prune(raised_before_ms=2_500) == []


# --- the snapshot format: records already on "alert-state" must read back, and new ones read as old


def test_the_snapshot_is_the_records_json_with_the_alert_message_as_published():
    record = AlertRecord[AlertMessage](alert=alert(), end_ts_ms=4_000)
    record = AlertBook[AlertMessage]().add(record)
    assert record.to_state() == {
        "alert": alert().model_dump(mode="json"),
        "status": "open",
        "acknowledged_by": None,
        "acknowledged_ts_ms": None,
        "end_ts_ms": 4_000,
    }


def test_a_record_written_before_the_move_reads_back_whole():
    state = {
        "alert": {
            "schema_version": 1,
            "alert_id": "alert:cam-1:q1:1000",
            "hit_id": "cam-1:q1:1000",
            "camera_id": "cam-1",
            "query_id": "q1",
            "severity": "warning",
            "text": "Cảnh báo: phát hiện một chiếc xe máy tại camera 1.",
            "language": "vi",
            "raised_ts_ms": 2_000,
            "escalated": False,
            "muted": False,
            "event_start_ts_ms": None,
            "peak_ts_ms": None,
            "peak_score": None,
            "thumbnail": None,
            "query_text": None,
            "audio": None,
            "speech_engine": None,
        },
        "status": "acknowledged",
        "acknowledged_by": "lan",
        "acknowledged_ts_ms": 6_000,
        "end_ts_ms": 4_000,
    }
    record = AlertRecord[AlertMessage].from_state(state)
    assert isinstance(record.alert, AlertMessage) and record.alert == alert()
    assert (record.status, record.acknowledged_by, record.acknowledged_ts_ms) == (
        "acknowledged",
        "lan",
        6_000,
    )
    # Every field comes back as it was written; a field added since (the region box) is its default.
    assert record.to_state() == {**state, "alert": {**state["alert"], "box": None}}


def test_an_unreadable_record_is_refused_naming_the_record_and_the_field():
    with pytest.raises(ValidationError, match=r"for AlertRecord\nalert.raised_ts_ms") as refused:
        AlertRecord[AlertMessage].from_state(
            {"alert": {**alert().model_dump(mode="json"), "raised_ts_ms": -1}}
        )
    assert refused.value.error_count() == 1
    with pytest.raises(ValidationError, match="acknowledged_ts_ms"):
        AlertRecord[AlertMessage].from_state(
            {"alert": alert().model_dump(mode="json"), "acknowledged_ts_ms": -5}
        )
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        AlertRecord[AlertMessage].from_state({"alert": alert().model_dump(mode="json"), "note": "x"})


def test_an_acknowledgement_keeps_the_alert_message_and_checks_the_time():
    book = AlertBook[AlertMessage]()
    book.add(AlertRecord[AlertMessage](alert=alert()))
    with pytest.raises(ValidationError, match="acknowledged_ts_ms"):
        book.acknowledge("alert:cam-1:q1:1000", "lan", now_ms=-1)
    assert book.get("alert:cam-1:q1:1000").status == "open"
    record = book.acknowledge("alert:cam-1:q1:1000", "lan", now_ms=6_000)
    assert type(record) is AlertRecord[AlertMessage] and record.alert == alert()


# --- decisions the service takes with the book


def test_a_hits_alert_id_is_derived_from_the_hit_id_alone():
    assert alert_id_for("cam-1:q1:1000") == "alert:cam-1:q1:1000"
    assert alert_id_for("cam-1:q1:1000") == alert_id_for("cam-1:q1:1000")  # any replay: the same


def test_a_hit_whose_alert_is_booked_was_raised_before():
    book = AlertBook[AlertMessage]()
    assert not book.raised_before("cam-1:q1:1000")
    book.add(AlertRecord[AlertMessage](alert=alert("alert:cam-1:q1:1000")))
    assert book.raised_before("cam-1:q1:1000")  # a replay after a crash that lost the policy's snapshot
    assert not book.raised_before("cam-1:q1:2000")
    book.acknowledge("alert:cam-1:q1:1000", "lan", now_ms=6_000)
    assert book.raised_before("cam-1:q1:1000")  # acknowledged or not
    book.prune(raised_before_ms=3_000)
    assert not book.raised_before("cam-1:q1:1000")  # forgotten past retention: the policy's dedupe is all


def test_retention_cuts_at_now_minus_the_retention_days():
    day_ms = 86_400_000
    assert retention_cutoff_ms(now_ms=10 * day_ms, retention_days=7) == 3 * day_ms
    assert retention_cutoff_ms(now_ms=1_000.9, retention_days=1 / 86_400) == 0  # truncated to whole ms
    assert retention_cutoff_ms(now_ms=day_ms, retention_days=0.5) == day_ms // 2


def test_retention_forgets_alerts_raised_before_the_cutoff_and_keeps_the_rest():
    day_ms = 86_400_000
    book = AlertBook[AlertMessage]()
    for raised in (1 * day_ms, 5 * day_ms, 9 * day_ms):
        book.add(AlertRecord[AlertMessage](alert=alert(f"alert:cam-1:q1:{raised}", raised)))
    cutoff = retention_cutoff_ms(now_ms=10 * day_ms, retention_days=5)
    assert book.prune(cutoff) == [f"alert:cam-1:q1:{day_ms}"]
    assert [r.alert.raised_ts_ms for r in book] == [5 * day_ms, 9 * day_ms]  # raised at the cutoff: kept
