"""Helpers for the streaming tests: read a topic without joining a consumer group."""

from __future__ import annotations

import time

import pytest

from vigil.services.common.kafka import KafkaSettings, assign_all_partitions, make_consumer


def read_topic(settings: KafkaSettings, topic: str, count: int, timeout_s: float = 10.0) -> list:
    """The first `count` records of `topic` (all partitions, from the beginning), in offset order
    per partition. Group-less: no group join, so it takes milliseconds, not seconds."""
    consumer = make_consumer(settings, group_id=None)
    try:
        assign_all_partitions(consumer, topic)
        records: list = []
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        assert len(records) >= count, f"{topic}: {len(records)} of {count} records within {timeout_s} s"
        return records
    finally:
        consumer.close(autocommit=False)


@pytest.fixture
def read_records():
    return read_topic
