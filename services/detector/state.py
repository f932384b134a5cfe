"""The detector's per-camera state snapshots on "detector-state" (key = "<group_id>:<camera_id>").

A snapshot is `CameraPipeline.to_state()` as JSON: background statistics, state machines and
temporal windows of every query of that camera. The detector writes the snapshots of the cameras
it advanced, waits for the broker to acknowledge them, and only then commits its frame offsets;
a restarted detector (or one that takes the cameras over after a rebalance) loads the last
snapshot per camera and carries on from it, so replayed frames meet the state that has already
seen them (and are refused by it) instead of a blank one that would decide differently.

Snapshots belong to a consumer group: two detector groups on one cluster (another deployment,
a benchmark, a re-processing run) each consume every frame with their own state, and one must
never resume from the other's. The topic is log-compacted on Kafka (tansu never compacts), so a
reader keeps the last value per key itself, as for "queries".
"""

from __future__ import annotations

import json
import logging

from vigil.services.common.kafka import (
    KafkaSettings,
    ResilientProducer,
    assign_all_partitions,
    make_consumer,
    replay_to_end,
)

log = logging.getLogger(__name__)


class DetectorStateLog:
    def __init__(self, settings: KafkaSettings, producer: ResilientProducer, group_id: str) -> None:
        self.settings = settings
        self.key_prefix = f"{group_id}:"
        self.topic = settings.topics.detector_state
        self.producer = producer

    def save(self, camera_id: str, state: dict) -> None:
        """Queue one camera's snapshot; durable once the producer has been flushed."""
        document = json.dumps(state, separators=(",", ":")).encode()
        self.producer.send(self.topic, document, key=f"{self.key_prefix}{camera_id}")

    def load(self, timeout_s: float = 30.0) -> dict[str, dict]:
        """The newest snapshot of every camera of this group, from the whole topic."""
        states: dict[str, dict] = {}
        consumer = make_consumer(self.settings, group_id=None)

        def poll(timeout_ms: int) -> int:
            records = [record for batch in consumer.poll(timeout_ms=timeout_ms).values() for record in batch]
            for record in records:
                self._apply(states, record)
            return len(records)

        try:
            partitions = assign_all_partitions(consumer, self.topic)
            replay_to_end(consumer, partitions, poll, self.settings, "loading the detector state", timeout_s)
        finally:
            consumer.close(autocommit=False)
        return states

    def _apply(self, states: dict[str, dict], record) -> None:
        key = (record.key or b"").decode("utf-8", errors="replace")
        if not key.startswith(self.key_prefix):
            return  # another group's
        camera_id = key[len(self.key_prefix) :]
        if record.value is None:
            states.pop(camera_id, None)
            return
        try:
            state = json.loads(record.value)
        except ValueError:
            # A snapshot we cannot read only costs that camera its warm start.
            log.warning("skipped an unreadable detector state snapshot of camera %s", camera_id)
            return
        states[camera_id] = state
