"""The skeleton of a service that consumes a Kafka topic in a consumer group: the detector and
the alerter stand on it, and so does every later service that does.

    class AlerterService(ConsumerService):
        def __init__(self, settings: AlerterServiceSettings):
            super().__init__("alerter", settings.kafka, registry, settings.alerter.commit_interval_s)
            with self.opening():                    # a failure closes what was opened
                self.open_kafka()                   # topics, broker monitor, producer
                ...                                 # the service's own parts
                self.open_consumer(topics.hits, config.group_id, max_poll_records=64)

        def step(self) -> int:                      # one turn: poll, handle, checkpoint
            records = self.poll(100, max_records=64)
            ...
            self.consumed(records)
            self.checkpoint()
            return len(records)

        def save_state(self) -> None:               # the snapshots the offsets rely on
            ...

    run_service(lambda: AlerterService(AlerterServiceSettings.load(path)))   # until SIGINT / SIGTERM

What the skeleton owns is the order that makes a crash lose nothing and a restart repeat
nothing: at each checkpoint (every `commit_interval_s`, before partitions are revoked, and at
stop) the service's state snapshots are queued (`save_state`), the producer is flushed, so the
snapshots and every output sent before them are acknowledged, and only then are the consumed
offsets committed. A crash in between replays the records after the last commit onto the
snapshot saved with it.

A service that only follows topics (the API's mirror of the alert book) opens a follower
instead of a consumer (`open_follower`): every partition of its topics, no group, so it
commits nothing (it calls no `consumed`) and every checkpoint is a no-op; it positions the
follower itself (e.g. `replay_to_end`, then from there).

Hooks: `has_state_to_save` (a snapshot is due even with no new offsets, e.g. events the
detector closed on a silent camera), `on_revoked` and `on_assigned` (the partitions a rebalance
took or gave), `running_message` (the line logged at start).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kafka import AsyncConsumerRebalanceListener, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry

from vigil.services.common.broker_health import BrokerMonitor
from vigil.services.common.group_poll import poll_through_outage
from vigil.services.common.kafka import (
    KafkaRecord,
    KafkaSettings,
    ResilientProducer,
    assign_all_partitions,
    ensure_topics,
    make_consumer,
)
from vigil.services.common.lifecycle import Closers, serve_metrics, stop_on_signals

log = logging.getLogger(__name__)


class _CheckpointOnRevoke(AsyncConsumerRebalanceListener):
    """Checkpoint before partitions go; tell the service which came and went.

    kafka-python calls a rebalance listener on its own network thread, where a blocking
    `commit` cannot run (it raises, and the rebalance fails with it); the commit is awaited
    there instead. Partitions lost (the group already gave them to another member) are not
    committed: this member no longer owns them. A service that is closing has checkpointed
    at the end of `run` already, and a `close` after a crash must not checkpoint."""

    def __init__(self, service: ConsumerService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if not self.service.closing:
            offsets = self.service.prepare_commit()
            if offsets:
                await self.service.consumer.commit_async(offsets)
        self.service.partitions_gone(revoked)

    async def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        self.service.partitions_gone(lost)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.service.on_assigned(assigned)


class ConsumerService:
    """See the module docstring. `run(stop)` blocks until `stop` is set; then `close()`."""

    def __init__(
        self,
        name: str,
        kafka_settings: KafkaSettings,
        metrics_registry: CollectorRegistry,
        commit_interval_s: float,
    ) -> None:
        self.name = name
        self.kafka_settings = kafka_settings
        self.topics = kafka_settings.topics
        self.metrics_registry = metrics_registry
        self.commit_interval_s = commit_interval_s
        self._closers = Closers(name)
        self._offsets: dict[TopicPartition, int] = {}
        self._last_commit = float("-inf")
        self.closing = False

    # --- opening -------------------------------------------------------------------------

    @contextmanager
    def opening(self) -> Iterator[None]:
        """Whatever fails while the service opens its parts closes those already open."""
        try:
            yield
        except BaseException:
            self.close()
            raise

    def on_close(self, close: Callable[[], Any]) -> None:
        """Run `close` at `close()`, newest first."""
        self._closers.push(close)

    def open_kafka(self) -> None:
        """The topics (created where missing), a broker monitor and the producer."""
        ensure_topics(self.kafka_settings)
        self.broker_monitor = BrokerMonitor(self.kafka_settings, self.metrics_registry).start()
        self.on_close(self.broker_monitor.stop)
        self.producer = ResilientProducer(self.kafka_settings)
        self.on_close(self.producer.close)

    def open_consumer(
        self,
        topic: str | Sequence[str],
        group_id: str,
        *,
        max_poll_records: int,
        all_partitions: bool = False,
    ) -> None:
        """The group's consumer of `topic` (one, or several): subscribed (partitions shared by
        the group's members, rebalances checkpointed), or with `all_partitions` assigned every
        partition of the topics (one member; it still resumes from the group's committed offsets)."""
        topics = [topic] if isinstance(topic, str) else list(topic)
        self.consumer = make_consumer(self.kafka_settings, group_id, max_poll_records=max_poll_records)
        self.on_close(lambda: self.consumer.close(autocommit=False))
        if all_partitions:
            partitions = [tp for name in topics for tp in assign_all_partitions(self.consumer, name)]
            self.consumer.assign(partitions)
        else:
            self.consumer.subscribe(topics, listener=_CheckpointOnRevoke(self))

    def open_follower(self, topics: Sequence[str], *, max_poll_records: int) -> list[TopicPartition]:
        """A group-less consumer assigned every partition of `topics` (see the module docstring);
        returns them, for the service to position."""
        self.consumer = make_consumer(self.kafka_settings, None, max_poll_records=max_poll_records)
        self.on_close(lambda: self.consumer.close(autocommit=False))
        partitions = [tp for name in topics for tp in assign_all_partitions(self.consumer, name)]
        self.consumer.assign(partitions)
        return partitions

    def serve_metrics(self, port: int) -> None:
        if port:
            self.on_close(serve_metrics(port, self.metrics_registry))

    # --- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        log.info("%s", self.running_message())
        while not stop.is_set():
            self.step()
        self.checkpoint(force=True)

    def step(self) -> int:
        """One turn of the loop; returns the records read."""
        raise NotImplementedError

    def poll(self, timeout_ms: int, *, max_records: int) -> list[KafkaRecord]:
        """Records of one poll, oldest first per partition; none through a broker outage."""
        polled = poll_through_outage(self.consumer, timeout_ms, max_records=max_records)
        return [record for records in polled.values() for record in records]

    def consumed(self, records: Collection[KafkaRecord]) -> None:
        """`records` are handled: their offsets go into the next commit."""
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            self._offsets[partition] = max(self._offsets.get(partition, 0), record.offset + 1)

    def checkpoint(self, force: bool = False) -> None:
        """State snapshots queued, the producer flushed, then the consumed offsets committed; at
        most every `commit_interval_s` unless forced (at stop and on a rebalance)."""
        if not force and time.monotonic() - self._last_commit < self.commit_interval_s:
            return
        offsets = self.prepare_commit()
        if offsets:
            self.consumer.commit(offsets)

    def prepare_commit(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """The first half of a checkpoint: the state snapshots queued and the producer flushed,
        so they (and every output sent before them) are acknowledged; returns the offsets they
        rely on, for the caller to commit (none: nothing was consumed since the last)."""
        if not self._offsets and not self.has_state_to_save():
            return {}
        self._last_commit = time.monotonic()
        self.save_state()
        self.producer.flush()
        offsets = {
            partition: OffsetAndMetadata(offset, "", -1) for partition, offset in self._offsets.items()
        }
        self._offsets = {}
        return offsets

    def partitions_gone(self, partitions: Collection[TopicPartition]) -> None:
        """Another member owns `partitions` now: what was consumed there is not this member's
        to commit, and the service drops what it kept for them (`on_revoked`)."""
        gone = set(partitions)
        self._offsets = {tp: offset for tp, offset in self._offsets.items() if tp not in gone}
        self.on_revoked(partitions)

    # --- hooks ---------------------------------------------------------------------------

    def running_message(self) -> str:
        return f"{self.name} running"

    def has_state_to_save(self) -> bool:
        return False

    def save_state(self) -> None:
        """Queue the snapshots the offsets about to be committed rely on."""

    def on_revoked(self, partitions: Collection[TopicPartition]) -> None:
        """`partitions` went to another member: revoked (after the checkpoint that precedes a
        revocation) or lost (no checkpoint: they were no longer this member's)."""

    def on_assigned(self, partitions: Collection[TopicPartition]) -> None:
        pass

    def close(self) -> None:
        self.closing = True
        self._closers.close()


def run_service(open_service: Callable[[], ConsumerService]) -> None:
    """Open the service and run it until SIGINT or SIGTERM, then checkpoint and close it."""
    with stop_on_signals() as stop:
        service = open_service()
        try:
            service.run(stop)
        finally:
            service.close()
