"""Per-group state snapshots on a compacted topic (key = "<group_id>:<name>", value = JSON).

A service that must resume exactly where it stopped (the detector's per-camera pipelines, the
alerter's policy and alert records) writes snapshots here, waits for the broker to acknowledge
them, and only then commits its input offsets; a restarted instance (or one that takes the work
over after a rebalance) loads the last snapshot per name and carries on from it, so replayed
input meets the state that has already seen it (and is refused by it) instead of a blank one
that would decide differently.

Snapshots belong to a consumer group: two groups on one cluster (another deployment, a
benchmark, a re-processing run) each consume every record with their own state, and one must
never resume from the other's. The topics are log-compacted on Kafka (tansu never compacts), so
a reader keeps the last value per key itself, as for "queries". A tombstone (value None)
deletes a name.
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

# The alerter's records of its alerts ("<group>:alert:<alert_id>"; services/alerter/state.py),
# which the API process follows into its mirror of the book (services/api/alert_mirror.py).
ALERT_RECORD_PREFIX = "alert:"


class GroupStateLog:
    def __init__(
        self,
        settings: KafkaSettings,
        producer: ResilientProducer | None,
        topic: str,
        group_id: str,
        what: str,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.key_prefix = f"{group_id}:"
        self.producer = producer
        self.what = what

    def save(self, name: str, state: dict) -> None:
        """Queue one snapshot; durable once the producer has been flushed."""
        document = json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()
        self._producer().send(self.topic, document, key=f"{self.key_prefix}{name}")

    def delete(self, name: str) -> None:
        """Queue a tombstone for `name`; durable once the producer has been flushed."""
        self._producer().send(self.topic, None, key=f"{self.key_prefix}{name}")

    def load(self, timeout_s: float = 30.0) -> dict[str, dict]:
        """The newest snapshot of every name of this group, from the whole topic."""
        states: dict[str, dict] = {}
        consumer = make_consumer(self.settings, group_id=None)

        def poll(timeout_ms: int) -> int:
            records = [record for batch in consumer.poll(timeout_ms=timeout_ms).values() for record in batch]
            for record in records:
                self._apply(states, record)
            return len(records)

        try:
            partitions = assign_all_partitions(consumer, self.topic)
            replay_to_end(consumer, partitions, poll, self.settings, f"loading the {self.what}", timeout_s)
        finally:
            consumer.close(autocommit=False)
        return states

    def _producer(self) -> ResilientProducer:
        if self.producer is None:
            raise RuntimeError(f"this {self.what} log was opened read-only (no producer)")
        return self.producer

    def name_of(self, key: bytes | None) -> str | None:
        """The name a record's key gives in this group's log; None for another group's."""
        text = (key or b"").decode("utf-8", errors="replace")
        return text[len(self.key_prefix) :] if text.startswith(self.key_prefix) else None

    def _apply(self, states: dict[str, dict], record) -> None:
        name = self.name_of(record.key)
        if name is None:
            return  # another group's
        if record.value is None:
            states.pop(name, None)
            return
        try:
            state = json.loads(record.value)
        except ValueError:
            # A snapshot we cannot read only costs that name its warm start.
            log.warning("skipped an unreadable %s snapshot %r", self.what, name)
            return
        states[name] = state
