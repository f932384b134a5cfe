"""A mirror of the alerter's book, record by record: what each new version of an alert's record
changed (raised, ended, acknowledged), nothing for a repeat or a load, and a tombstone that
forgets (pure, no broker)."""

from __future__ import annotations

from vigil.pipelines.alert_book import AlertRecord
from vigil.pipelines.alert_changes import AlertMirror, alert_changes
from vigil.services.common.contract import AlertMessage

ALERT_ID = "alert:cam-1:q1:1000"


def record(**what_happened) -> AlertRecord[AlertMessage]:
    alert = AlertMessage(
        alert_id=ALERT_ID,
        hit_id=ALERT_ID.removeprefix("alert:"),
        camera_id="cam-1",
        query_id="q1",
        severity="warning",
        text="Cảnh báo: phát hiện một chiếc xe máy tại camera 1.",
        language="vi",
        raised_ts_ms=2_000,
    )
    return AlertRecord[AlertMessage](alert=alert, **what_happened)


OPEN = record()
ENDED = record(end_ts_ms=5_000)
ACKNOWLEDGED = record(end_ts_ms=5_000, status="acknowledged", acknowledged_by="an", acknowledged_ts_ms=6_000)


def test_each_version_of_an_alert_tells_what_it_changed():
    mirror = AlertMirror[AlertMessage]()
    steps = [(OPEN, ["raised"]), (OPEN, []), (ENDED, ["ended"]), (ACKNOWLEDGED, ["acknowledged"])]
    for version, expected in steps:
        assert mirror.apply(ALERT_ID, version) == expected
        assert mirror.book.get(ALERT_ID) == version
    assert mirror.apply(ALERT_ID, ACKNOWLEDGED) == []  # the alerter's at-least-once writes


def test_a_version_seen_late_reports_every_change_it_carries():
    assert alert_changes(OPEN, ACKNOWLEDGED) == ["ended", "acknowledged"]
    acknowledged_open = record(status="acknowledged", acknowledged_by="an", acknowledged_ts_ms=3_000)
    assert alert_changes(OPEN, acknowledged_open) == ["acknowledged"]
    assert alert_changes(None, ACKNOWLEDGED) == ["raised"]  # new to the mirror: raised, as it is now


def test_loading_reports_nothing_and_a_tombstone_forgets():
    mirror = AlertMirror[AlertMessage]()
    mirror.load(ALERT_ID, OPEN)
    mirror.load(ALERT_ID, ACKNOWLEDGED)
    assert mirror.book.get(ALERT_ID).acknowledged_by == "an"
    assert mirror.apply(ALERT_ID, None) == [] and ALERT_ID not in mirror.book
    assert mirror.apply(ALERT_ID, None) == []  # a tombstone for an alert not held
    mirror.load(ALERT_ID, None)
    assert len(mirror.book) == 0
