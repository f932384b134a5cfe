"""The cameras on Kafka: `publish_camera` / `delete_camera` write the compacted "cameras" topic
(key = camera_id, a tombstone deletes), and `CameraTableReader` keeps a CameraTable
(pipelines/camera_table.py, the pure rules) in step with it: `load()` replays the topic to its
end, `poll()` follows what comes after. Group-less, as the queries' reader: every reader needs
every camera, so no group join delays a start and no offset is committed.
"""

from __future__ import annotations

import logging

from kafka.producer.future import RecordMetadata

from vigil.pipelines.camera_table import CameraTable
from vigil.services.common.contract import CameraMessage, Topics, decode_json, encode_json
from vigil.services.common.kafka.consumers import (
    KafkaRecord,
    assign_all_partitions,
    make_consumer,
    replay_to_end,
)
from vigil.services.common.kafka.producer import ResilientProducer
from vigil.services.common.kafka.settings import KafkaSettings

log = logging.getLogger("vigil.kafka")

_WRITE_TIMEOUT_S = 10.0


def publish_camera(producer: ResilientProducer, topics: Topics, camera: CameraMessage) -> RecordMetadata:
    """Add or replace a camera and wait until the broker has it (BrokerUnavailableError or
    kafka-python's error otherwise); returns where it was written."""
    future = producer.send(topics.cameras, encode_json(camera), key=camera.camera_id)
    producer.flush(timeout_s=_WRITE_TIMEOUT_S)
    return future.get(timeout=_WRITE_TIMEOUT_S)


def delete_camera(producer: ResilientProducer, topics: Topics, camera_id: str) -> RecordMetadata:
    """Delete a camera: a tombstone under its key."""
    future = producer.send(topics.cameras, None, key=camera_id)
    producer.flush(timeout_s=_WRITE_TIMEOUT_S)
    return future.get(timeout=_WRITE_TIMEOUT_S)


def decode_camera(value: bytes | None) -> CameraMessage:
    """A "cameras" value as a CameraMessage; BadMessageError names what was wrong."""
    return decode_json(CameraMessage, value)


def new_camera_table() -> CameraTable[CameraMessage]:
    return CameraTable(decode_camera)


class CameraTableReader:
    """Keeps a CameraTable in step with "cameras" (see the module docstring). Bad records are
    logged (without their value: it may hold a URL's password) and skipped."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.table = new_camera_table()
        self._consumer = make_consumer(settings, group_id=None)
        try:
            self._partitions = assign_all_partitions(self._consumer, settings.topics.cameras)
        except BaseException:
            self._consumer.close()
            raise

    def load(self, timeout_s: float = 30.0) -> CameraTable[CameraMessage]:
        """Rebuild the table from the first record to the end of the topic as of now."""
        replay_to_end(
            self._consumer, self._partitions, self.poll, self.settings, "loading the cameras", timeout_s
        )
        return self.table

    def poll(self, timeout_ms: int = 1000) -> int:
        """Apply the records that arrived; returns how many were read (good or bad)."""
        count = 0
        for records in self._consumer.poll(timeout_ms=timeout_ms).values():
            for record in records:
                count += 1
                reason = self.table.apply(record)
                if reason is not None:
                    _skip(record, reason)
        return count

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def _skip(record: KafkaRecord, reason: str) -> None:
    log.warning("skipped bad cameras record %d@%d: %s", record.partition, record.offset, reason)
