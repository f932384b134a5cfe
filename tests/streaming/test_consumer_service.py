"""The consumer-service skeleton on the real broker: a service's state snapshot and its committed
offsets move together, so a restart, clean or not, neither loses nor counts twice."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry

from vigil.services.common.consumer_service import ConsumerService
from vigil.services.common.kafka import KafkaSettings, ResilientProducer
from vigil.services.common.state_log import GroupStateLog


class Tally(ConsumerService):
    """Counts the records on "hits"; the count is its state."""

    def __init__(self, settings: KafkaSettings, group: str, commit_interval_s: float) -> None:
        super().__init__("tally", settings, CollectorRegistry(), commit_interval_s)
        with self.opening():
            self.open_kafka()
            state_topic = self.topics.detector_state
            self.state_log = GroupStateLog(settings, self.producer, state_topic, group, "tally")
            self.count = self.state_log.load().get("count", {}).get("n", 0)
            self.open_consumer(self.topics.hits, group, max_poll_records=3)

    def step(self) -> int:
        records = self.poll(200, max_records=3)
        self.count += len(records)
        self.consumed(records)
        self.checkpoint()
        return len(records)

    def save_state(self) -> None:
        self.state_log.save("count", {"n": self.count})

    def settle(self, quiet_steps: int = 10) -> int:
        """Steps until the group has given it partitions and nothing has come for `quiet_steps`
        turns; the count then."""
        deadline = time.monotonic() + 60
        while not self.consumer.assignment() and time.monotonic() < deadline:
            self.step()
        quiet = 0
        while quiet < quiet_steps and time.monotonic() < deadline:
            quiet = 0 if self.step() else quiet + 1
        return self.count


def publish(settings: KafkaSettings, n: int) -> None:
    with ResilientProducer(settings) as producer:
        for i in range(n):
            producer.send(settings.topics.hits, b"{}", key=f"k{i}")


def test_a_restart_resumes_from_the_snapshot_saved_with_the_committed_offsets(kafka_settings):
    publish(kafka_settings, 7)
    first = Tally(kafka_settings, "tally-clean", commit_interval_s=0)  # a checkpoint every turn
    try:
        assert first.settle() == 7
    finally:
        first.close()  # no final checkpoint: every turn already made one
    second = Tally(kafka_settings, "tally-clean", commit_interval_s=0)
    try:
        assert second.count == 7  # the snapshot...
        assert second.settle() == 7  # ...and the offsets: nothing read twice
        publish(kafka_settings, 2)
        assert second.settle() == 9
    finally:
        second.close()


def test_a_crash_between_checkpoints_replays_onto_the_snapshot_saved_with_the_last_commit(kafka_settings):
    publish(kafka_settings, 5)
    first = Tally(kafka_settings, "tally-crash", commit_interval_s=3600)
    try:
        assert first.settle() == 5
        first.checkpoint(force=True)  # snapshot 5, offsets past the 5
        publish(kafka_settings, 4)
        assert first.settle() == 9  # not checkpointed: the interval is not up
    finally:
        first.close()  # a crash, as far as the group knows: no checkpoint at close
    second = Tally(kafka_settings, "tally-crash", commit_interval_s=3600)
    try:
        assert second.count == 5
        assert second.settle() == 9  # the 4 after the last commit, counted once
    finally:
        second.close()
