"""The cameras as the API serves them: the "cameras" topic (what operators configured) and the
latest "camera-status" of each (what ingest last said of it), followed in a thread, and the
writes, which wait until the follower has read them back so that a list right after a write
shows it (read your writes).

Group-less on both topics: every API instance needs every camera and every status, no offset is
committed, no group join delays a start. Both are compacted and small (one record per camera).
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import TopicPartition

from vigil.services.common.contract import (
    BadMessageError,
    CameraMessage,
    CameraStatusMessage,
    decode_json,
)
from vigil.services.common.kafka import (
    KafkaSettings,
    ResilientProducer,
    TopicMissingError,
    make_consumer,
    replay_to_end,
)
from vigil.services.common.kafka.cameras import delete_camera, new_camera_table, publish_camera

log = logging.getLogger(__name__)

_POLL_MS = 200
# A write is answered once the follower has read it back, or after this (it is on Kafka anyway).
_READ_BACK_S = 5.0


class CameraDirectory:
    """Follows "cameras" and "camera-status"; `close()` stops the thread and the clients."""

    def __init__(self, settings: KafkaSettings, *, load_timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.table = new_camera_table()
        self._statuses: dict[str, CameraStatusMessage] = {}
        self._read_up_to: dict[int, int] = {}  # "cameras" partition -> next offset to read
        self._changed = threading.Condition()
        self._write_lock = threading.Lock()  # one write at a time: "exists?" then write
        self._closed = threading.Event()
        self.producer = ResilientProducer(settings)
        self._consumer = make_consumer(settings, group_id=None)
        try:
            partitions = [
                TopicPartition(topic, partition)
                for topic in (self.topics.cameras, self.topics.camera_status)
                for partition in sorted(self._partitions_of(topic))
            ]
            self._consumer.assign(partitions)
            replay_to_end(
                self._consumer, partitions, self._poll, settings, "loading the cameras", load_timeout_s
            )
        except BaseException:
            self._consumer.close(autocommit=False)
            self.producer.close()
            raise
        self._thread = threading.Thread(target=self._follow, name="api-cameras", daemon=True)
        self._thread.start()

    def _partitions_of(self, topic: str) -> set[int]:
        partitions = self._consumer.partitions_for_topic(topic)
        if not partitions:
            raise TopicMissingError(f"topic {topic!r} does not exist at {self.settings.bootstrap}")
        return partitions

    # --- reading -----------------------------------------------------------------------

    def cameras(self) -> list[tuple[CameraMessage, CameraStatusMessage | None]]:
        """Every camera with its latest status (None: ingest has said nothing of it yet), by id."""
        statuses = dict(self._statuses)
        return [
            (camera, statuses.get(camera_id)) for camera_id, camera in sorted(self.table.snapshot().items())
        ]

    def camera(self, camera_id: str) -> tuple[CameraMessage, CameraStatusMessage | None] | None:
        camera = self.table.get(camera_id)
        return None if camera is None else (camera, self._statuses.get(camera_id))

    # --- writing -----------------------------------------------------------------------

    def write_lock(self) -> threading.Lock:
        """Held around a check of the table and the write that depends on it."""
        return self._write_lock

    def put(self, camera: CameraMessage) -> None:
        """Add or replace a camera; returns once the broker has it and (within _READ_BACK_S) the
        table shows it. BrokerUnavailableError (or kafka-python's error) when Kafka is away."""
        metadata = publish_camera(self.producer, self.topics, camera)
        self._wait_until_read(metadata.partition, metadata.offset)

    def delete(self, camera_id: str) -> None:
        metadata = delete_camera(self.producer, self.topics, camera_id)
        self._wait_until_read(metadata.partition, metadata.offset)

    def _wait_until_read(self, partition: int, offset: int) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._read_up_to.get(partition, 0) > offset, timeout=_READ_BACK_S)

    # --- the follower --------------------------------------------------------------------

    def _follow(self) -> None:
        while not self._closed.is_set():
            try:
                self._poll(_POLL_MS)
            except Exception:  # the last resort: keep serving what is known, try again
                log.exception("following the cameras topics failed; trying again")
                self._closed.wait(1.0)

    def _poll(self, timeout_ms: int) -> int:
        count = 0
        for partition, records in self._consumer.poll(timeout_ms=timeout_ms).items():
            for record in records:
                count += 1
                if partition.topic == self.topics.cameras:
                    reason = self.table.apply(record)
                    if reason is not None:
                        log.warning(
                            "skipped bad cameras record %d@%d: %s", record.partition, record.offset, reason
                        )
                else:
                    self._apply_status(record)
            if partition.topic == self.topics.cameras and records:
                with self._changed:
                    self._read_up_to[partition.partition] = records[-1].offset + 1
                    self._changed.notify_all()
        return count

    def _apply_status(self, record) -> None:
        camera_id = (record.key or b"").decode("utf-8", errors="replace")
        if record.value is None:
            self._statuses.pop(camera_id, None)
            return
        try:
            status = decode_json(CameraStatusMessage, record.value)
        except BadMessageError as error:
            log.warning("skipped bad camera-status record %d@%d: %s", record.partition, record.offset, error)
            return
        known = self._statuses.get(status.camera_id)
        if known is None or status.ts_ms >= known.ts_ms:  # several partitions: newest by its time
            self._statuses[status.camera_id] = status

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=_POLL_MS / 1000 + 5.0)
        self._consumer.close(autocommit=False)
        self.producer.close()


def now_ms() -> int:
    return round(time.time() * 1000)
