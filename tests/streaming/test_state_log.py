"""Group state snapshots on the real broker: the newest per name, never another group's."""

from __future__ import annotations

import pytest

from vigil.services.common.kafka import ResilientProducer
from vigil.services.common.state_log import GroupStateLog


def test_the_newest_snapshot_of_each_name_of_this_group_is_loaded_and_tombstones_delete(kafka_settings):
    topic = kafka_settings.topics.detector_state
    with ResilientProducer(kafka_settings) as producer:
        mine = GroupStateLog(kafka_settings, producer, topic, "group-a", "test state")
        theirs = GroupStateLog(kafka_settings, producer, topic, "group-b", "test state")
        mine.save("cam-1", {"last_ts_ms": 1})
        mine.save("cam-2", {"last_ts_ms": 5})
        mine.save("cam-3", {"last_ts_ms": 7, "text": "xe máy"})
        theirs.save("cam-1", {"last_ts_ms": 99})
        mine.save("cam-1", {"last_ts_ms": 2})
        mine.delete("cam-2")
        producer.flush()
    assert mine.load() == {"cam-1": {"last_ts_ms": 2}, "cam-3": {"last_ts_ms": 7, "text": "xe máy"}}
    assert theirs.load() == {"cam-1": {"last_ts_ms": 99}}
    assert GroupStateLog(kafka_settings, None, topic, "group-c", "test state").load() == {}


def test_a_read_only_log_refuses_writes_with_a_reason(kafka_settings):
    log = GroupStateLog(kafka_settings, None, kafka_settings.topics.detector_state, "group-d", "test state")
    with pytest.raises(RuntimeError, match="test state log was opened read-only"):
        log.save("cam-1", {})
