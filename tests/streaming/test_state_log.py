"""Detector state snapshots on the real broker: the newest per camera, never another group's."""

from __future__ import annotations

from vigil.services.common.kafka import ResilientProducer
from vigil.services.detector.state import DetectorStateLog


def test_the_newest_snapshot_of_each_camera_of_this_group_is_loaded(kafka_settings):
    with ResilientProducer(kafka_settings) as producer:
        mine = DetectorStateLog(kafka_settings, producer, "group-a")
        theirs = DetectorStateLog(kafka_settings, producer, "group-b")
        mine.save("cam-1", {"last_ts_ms": 1})
        mine.save("cam-2", {"last_ts_ms": 5})
        theirs.save("cam-1", {"last_ts_ms": 99})
        mine.save("cam-1", {"last_ts_ms": 2})
        producer.flush()
    assert mine.load() == {"cam-1": {"last_ts_ms": 2}, "cam-2": {"last_ts_ms": 5}}
    assert theirs.load() == {"cam-1": {"last_ts_ms": 99}}
    assert DetectorStateLog(kafka_settings, None, "group-c").load() == {}
