"""Reading Vigil topics: `make_consumer` (at-least-once: auto-commit off, commit after what was
derived is durable), `assign_all_partitions` for group-less readers that need a whole topic,
`replay_to_end` to load such a topic up to now, and `KafkaRecord`, what a consumed record offers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka import errors as kafka_errors

from vigil.services.common.kafka.errors import TopicMissingError, broker_unavailable_error
from vigil.services.common.kafka.reachability import broker_reachable
from vigil.services.common.kafka.settings import MIB, RECORD_OVERHEAD_BYTES, KafkaSettings


class KafkaRecord(Protocol):
    """What a consumed record offers (kafka-python's ConsumerRecord has these attributes)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None


def make_consumer(
    settings: KafkaSettings,
    group_id: str | None,
    topics: Sequence[str] = (),
    **overrides: Any,
) -> KafkaConsumer:
    """A KafkaConsumer for Vigil topics, subscribed to `topics` when given.

    At-least-once by default: auto-commit off (commit after processing), a new group starts
    from the earliest record. group_id None gives a group-less consumer for manual assignment
    (assign_all_partitions): no rebalance, no commits. kafka-python options in `overrides` win.
    """
    if topics and group_id is None:
        raise ValueError("subscribing needs a group_id; without one, use assign_all_partitions()")
    config: dict[str, Any] = {
        **settings.client_config(),
        "client_id": f"{settings.client_id}-consumer",
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "allow_auto_create_topics": False,
        # Kafka's default. A larger first batch still comes whole (fetch v3+, tansu too: a 10 MB
        # frame was read with this), and the durable local broker reads every object a fetch may
        # return before answering: at 10 MB a fetch from the start of "frames" took seconds.
        "max_partition_fetch_bytes": 1 * MIB,
        "fetch_max_bytes": max(52_428_800, settings.max_message_bytes + RECORD_OVERHEAD_BYTES),
        "bootstrap_timeout_ms": int(settings.connect_timeout_s * 1000),
        "session_timeout_ms": settings.consumer_session_timeout_ms,
        "heartbeat_interval_ms": settings.consumer_session_timeout_ms // 4,
        "fetch_max_wait_ms": settings.consumer_fetch_max_wait_ms,
    }
    config.update(overrides)
    started = time.monotonic()
    if not broker_reachable(settings.bootstrap):
        raise broker_unavailable_error(settings, "cannot connect a consumer", time.monotonic() - started)
    try:
        consumer = KafkaConsumer(**config)
    except kafka_errors.KafkaTimeoutError:
        raise broker_unavailable_error(
            settings, "cannot connect a consumer", time.monotonic() - started
        ) from None
    if topics:
        consumer.subscribe(list(topics))
    return consumer


def assign_all_partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    """Assign every partition of `topic` to a group-less consumer (no group join: instant)."""
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise TopicMissingError(
            f"topic {topic!r} does not exist at {consumer.config['bootstrap_servers']}: "
            "create the topics first (ensure_topics; `vigil broker` does it for the local broker)"
        )
    assigned = [TopicPartition(topic, partition) for partition in sorted(partitions)]
    consumer.assign(assigned)
    return assigned


def replay_to_end(
    consumer: KafkaConsumer,
    partitions: Sequence[TopicPartition],
    poll: Callable[[int], int],
    settings: KafkaSettings,
    what: str,
    timeout_s: float,
) -> None:
    """Seek `partitions` to their first record and call `poll(timeout_ms)` (which applies what it
    reads and returns how many records that was) until the topic has been read to its end as of
    now. BrokerUnavailableError names `what` after `timeout_s`.

    "The end" is every partition at its end offset AND a poll that read nothing: tansu reports
    the end of a partition written in one batch as 1, whatever the batch held, so the end
    offset alone would stop after the first batch.
    """
    started = time.monotonic()
    consumer.seek_to_beginning(*partitions)
    try:
        end_offsets = consumer.end_offsets(list(partitions), timeout_ms=int(timeout_s * 1000))
    except kafka_errors.KafkaTimeoutError:
        raise broker_unavailable_error(settings, what, time.monotonic() - started) from None

    def reached() -> bool:
        for partition, end in end_offsets.items():
            position = consumer.position(partition, timeout_ms=1_000)
            if position is None or position < end:
                return False
        return True

    while True:
        if time.monotonic() - started > timeout_s:
            raise broker_unavailable_error(settings, what, time.monotonic() - started)
        if poll(200) == 0 and reached():
            return
