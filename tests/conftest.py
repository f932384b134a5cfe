"""Fixtures shared by every test package: a real Kafka-protocol broker (tansu) on loopback."""

from __future__ import annotations

import uuid

import pytest

from vigil.services.broker import LocalBroker
from vigil.services.common.kafka import KafkaSettings, ensure_topics


@pytest.fixture(autouse=True)
def _durable_broker_dir_of_the_test(monkeypatch, tmp_path_factory):
    """A durable local broker started by a test (or by a `vigil up` it runs) keeps its log in a
    folder of that test, never in the checkout's var/broker."""
    monkeypatch.setenv("VIGIL_BROKER_DIR", str(tmp_path_factory.mktemp("broker-home")))


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """One real tansu broker for the session, in memory, on a free loopback port.

    `.bootstrap` is its host:port. `.restart()` empties it (memory storage): every topic of
    every test is gone afterwards, so a test that restarts should start its own LocalBroker
    instead. Its log is under the session's temporary directory.
    """
    with LocalBroker(0, log_dir=tmp_path_factory.mktemp("kafka")) as broker:
        yield broker


@pytest.fixture(scope="session")
def new_kafka_settings(kafka_broker):
    """Makes settings with a topic prefix of their own on the session's broker (topics created,
    2 frame partitions): for a fixture wider than one test; a test takes `kafka_settings`."""

    def make() -> KafkaSettings:
        settings = KafkaSettings(
            bootstrap=kafka_broker.bootstrap,
            topic_prefix=f"test-{uuid.uuid4().hex[:10]}-",
            frame_partitions=2,
            event_partitions=1,
            connect_timeout_s=10,
        )
        ensure_topics(settings)
        return settings

    return make


@pytest.fixture
def kafka_settings(new_kafka_settings) -> KafkaSettings:
    """Settings for this test alone: its own topic prefix (topics created, 2 frame partitions).

    The fixture's topics cannot meet another test's records, so tests need no cleanup.
    """
    return new_kafka_settings()
