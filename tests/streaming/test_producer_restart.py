"""Publishing survives the broker going away and coming back (its own broker: a restart empties it)."""

from __future__ import annotations

import time

from kafka import KafkaAdminClient
from kafka import errors as kafka_errors

from vigil.services.broker import LocalBroker
from vigil.services.common.kafka import (
    BrokerUnavailableError,
    KafkaSettings,
    ResilientProducer,
    ensure_topics,
    topic_specs,
)


def test_publishing_resumes_within_seconds_after_a_broker_restart(tmp_path, read_records):
    with LocalBroker(0, log_dir=tmp_path) as broker:
        settings = KafkaSettings(
            bootstrap=broker.bootstrap,
            topic_prefix="restart-",
            frame_partitions=2,
            event_partitions=1,
            max_block_ms=1_000,
        )
        topics = settings.topics
        ensure_topics(settings)
        with ResilientProducer(settings) as producer:
            producer.send(topics.hits, b"before", key="cam-1").get(timeout=10)

            broker.stop()
            started = time.monotonic()
            try:  # while it is down a record is either refused at once or queued for retry
                queued_while_down = producer.send(topics.hits, b"while down", key="cam-1")
            except BrokerUnavailableError as error:
                assert broker.bootstrap in str(error)
                queued_while_down = None
            assert time.monotonic() - started < 2 * settings.max_block_ms / 1000

            broker.start()  # memory storage: it comes back empty...
            ensure_topics(settings)  # ...so topics are created again, as the embedded default does
            restarted = time.monotonic()
            while True:
                try:
                    producer.send(topics.hits, b"after", key="cam-1").get(timeout=2)
                    break
                except (BrokerUnavailableError, kafka_errors.KafkaError):
                    assert time.monotonic() - restarted < 10, "publishing did not resume within 10 s"
                    time.sleep(0.2)
            resumed_after_s = time.monotonic() - restarted
            if queued_while_down is not None:
                queued_while_down.get(timeout=15)  # retried and delivered, not lost

        values = [record.value for record in read_records(settings, topics.hits, 1)]
        assert b"after" in values
        assert b"before" not in values  # the memory engine forgot it: that is the broker, not us
        if queued_while_down is not None:
            assert b"while down" in values
        assert resumed_after_s < 5


def test_a_producer_whose_client_was_closed_under_it_is_replaced_on_the_next_send(
    kafka_settings, read_records
):
    with ResilientProducer(kafka_settings) as producer:
        producer.send(kafka_settings.topics.alerts, b"first", key="cam-1").get(timeout=10)
        producer._producer.close()  # what a dead I/O thread or a fatal producer error leaves behind
        producer.send(kafka_settings.topics.alerts, b"second", key="cam-1").get(timeout=10)
    values = [record.value for record in read_records(kafka_settings, kafka_settings.topics.alerts, 2)]
    assert values == [b"first", b"second"]


def test_a_full_buffer_refuses_the_record_within_max_block_ms_naming_the_broker(tmp_path):
    with LocalBroker(0, log_dir=tmp_path) as broker:
        settings = KafkaSettings(
            bootstrap=broker.bootstrap,
            topic_prefix="full-",
            max_block_ms=300,
            max_message_bytes=1024 * 1024,
            producer_buffer_bytes=1024 * 1024,
        )
        ensure_topics(settings)
        with ResilientProducer(settings) as producer:
            producer.send(settings.topics.frames, b"x", key="cam-1").get(timeout=10)  # metadata cached
            broker.stop()
            producer.send(
                settings.topics.frames, b"\x01" * 700_000, key="cam-1"
            )  # queued, never acknowledged
            started = time.monotonic()
            try:
                producer.send(settings.topics.frames, b"\x02" * 700_000, key="cam-1")
                raise AssertionError("a record beyond the buffer was accepted")
            except BrokerUnavailableError as error:
                assert broker.bootstrap in str(error) and "buffer" in str(error)
            assert 0.25 < time.monotonic() - started < 2
            assert producer.buffered_bytes >= 700_000
            producer.close(timeout_s=0.2)  # gives up on the queued record instead of waiting 5 s
            assert producer.buffered_bytes == 0  # the dropped record failed its future, freeing its room


def test_a_producer_recreates_the_topics_of_a_broker_that_came_back_empty(tmp_path):
    with LocalBroker(0, log_dir=tmp_path) as broker:
        settings = KafkaSettings(
            bootstrap=broker.bootstrap,
            topic_prefix="heal-",
            frame_partitions=2,
            event_partitions=1,
            max_block_ms=1_000,
        )
        ensure_topics(settings)
        with ResilientProducer(settings) as producer:
            for value in (b"first", b"second"):
                producer.send(settings.topics.hits, value, key="cam-1").get(timeout=10)
            broker.restart()  # memory storage: every topic is gone, and nobody calls ensure_topics
            deadline = time.monotonic() + 15
            delivered = 0
            while delivered < 2:  # the second acknowledgement shows the offsets went backwards
                try:
                    producer.send(settings.topics.hits, b"after", key="cam-1").get(timeout=2)
                    delivered += 1
                except (BrokerUnavailableError, kafka_errors.KafkaError):
                    assert time.monotonic() < deadline, "publishing did not resume within 15 s"
                    time.sleep(0.2)
            # get() returns as soon as a record is acknowledged; the delivery callback that
            # notices the lower offsets runs just after, on the producer's I/O thread, and the
            # send after that heals. On a loaded machine that can be one more send.
            deadline = time.monotonic() + 10
            while missing := missing_topics(settings):
                assert time.monotonic() < deadline, f"topics not re-created: {sorted(missing)}"
                producer.send(settings.topics.hits, b"healed", key="cam-1").get(timeout=10)
                time.sleep(0.1)
        # Topics nobody wrote to since the restart exist again: the producer re-created them.
        assert set(ensure_topics(settings).values()) == {"existed"}


def missing_topics(settings: KafkaSettings) -> set[str]:
    """Vigil's topics the broker does not have (without creating any, as ensure_topics would)."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    try:
        return set(topic_specs(settings)) - set(admin.list_topics())
    finally:
        admin.close()
