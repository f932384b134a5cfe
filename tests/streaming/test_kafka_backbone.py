"""The streaming backbone against a real Kafka-protocol broker (tansu on loopback)."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, TopicPartition

from vigil.services.broker import free_loopback_port
from vigil.services.common.contract import (
    BadMessageError,
    FrameHeaders,
    QueryMessage,
    decode_json,
    encode_json,
)
from vigil.services.common.kafka import (
    DEAD_LETTERS,
    MIB,
    BrokerUnavailableError,
    KafkaSettings,
    MessageTooLargeError,
    QueryTableReader,
    ResilientProducer,
    assign_all_partitions,
    ensure_topics,
    make_consumer,
    send_to_dead_letter,
)


def test_topics_are_created_once_with_their_partitions_and_creating_again_is_fine(kafka_broker):
    settings = KafkaSettings(bootstrap=kafka_broker.bootstrap, topic_prefix="idempotent-", frame_partitions=8)
    first = ensure_topics(settings)
    second = ensure_topics(settings)
    assert set(first.values()) == {"created"}
    assert set(second.values()) == {"existed"} and set(second) == set(first)
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        partitions = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(first))}
    finally:
        admin.close()
    assert partitions[settings.topics.frames] == 8
    assert partitions[settings.topics.queries] == 1
    assert partitions[settings.topics.hits] == settings.event_partitions


def test_a_frame_travels_as_jpeg_bytes_keyed_by_camera_with_its_headers(kafka_settings, read_records):
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4000 + b"\xff\xd9"  # ~1 MB, not compressible to nothing
    headers = FrameHeaders(camera_id="lobby-2", ts_ms=1_700_000_000_123, seq=7, width=1280, height=720)
    with ResilientProducer(kafka_settings) as producer:
        metadata = producer.send_frame(headers, jpeg).get(timeout=10)
    [record] = read_records(kafka_settings, kafka_settings.topics.frames, 1)
    assert record.key == b"lobby-2"
    assert record.value == jpeg
    assert FrameHeaders.from_kafka(record.headers) == headers
    assert (record.partition, record.offset) == (metadata.partition, metadata.offset)


def test_a_frame_of_ten_megabytes_goes_through_and_a_larger_one_is_refused_up_front(
    kafka_settings, read_records
):
    headers = FrameHeaders(camera_id="big", ts_ms=1, seq=0, width=7680, height=4320)
    big = b"\xff\xd8" + b"\x01" * (10 * MIB - 1024)
    with ResilientProducer(kafka_settings) as producer:
        producer.send_frame(headers, big).get(timeout=20)
        with pytest.raises(MessageTooLargeError, match="max_message_bytes"):
            producer.send_frame(headers, b"\x00" * (10 * MIB + 1))
    [record] = read_records(kafka_settings, kafka_settings.topics.frames, 1, timeout_s=20)
    assert len(record.value) == len(big)


def test_a_bad_message_goes_to_the_dead_letter_topic_with_reasons_and_consumption_goes_on(
    kafka_settings, read_records
):
    topics = kafka_settings.topics
    good = [
        QueryMessage(query_id=f"q{i}", text=f"query {i}", created_by="test", updated_ts_ms=i)
        for i in range(2)
    ]
    with ResilientProducer(kafka_settings) as producer:
        producer.send(topics.queries, encode_json(good[0]), key="q0")
        producer.send(
            topics.queries, b'{"query_id": "q9", "text": 42}', key="q9", headers=[("trace", b"abc")]
        )
        producer.send(topics.queries, encode_json(good[1]), key="q1")
        producer.flush(10)

        dead_before = DEAD_LETTERS.labels(source_topic=topics.queries)._value.get()
        decoded = []
        for record in read_records(kafka_settings, topics.queries, 3):
            try:
                decoded.append(decode_json(QueryMessage, record.value))
            except BadMessageError as error:
                send_to_dead_letter(producer, topics, record, str(error)).get(timeout=10)
                bad = record
        assert decoded == good  # the records after the bad one were consumed
        assert DEAD_LETTERS.labels(source_topic=topics.queries)._value.get() == dead_before + 1

    [dead] = read_records(kafka_settings, topics.dead_letters, 1)
    assert (dead.key, dead.value) == (bad.key, bad.value)
    headers = dict(dead.headers)
    assert headers["trace"] == b"abc"  # the original headers travel with it
    reason = headers["dlq.reason"].decode()
    assert reason.startswith("QueryMessage:") and "text:" in reason and "created_by:" in reason
    assert headers["dlq.source_topic"] == topics.queries.encode()
    assert int(headers["dlq.partition"]) == bad.partition and int(headers["dlq.offset"]) == bad.offset
    assert abs(int(headers["dlq.ts_ms"]) - time.time() * 1000) < 60_000


def test_replaying_queries_from_the_beginning_rebuilds_the_table(kafka_settings, read_records):
    topics = kafka_settings.topics

    def query(query_id: str, text: str) -> bytes:
        return encode_json(QueryMessage(query_id=query_id, text=text, created_by="test", updated_ts_ms=1))

    with ResilientProducer(kafka_settings) as producer:
        producer.send(topics.queries, query("cat", "a cat"), key="cat")
        producer.send(topics.queries, query("dog", "a dog"), key="dog")
        producer.send(topics.queries, query("cat", "a black cat"), key="cat")  # newer version
        producer.send(topics.queries, b"not json", key="broken")
        producer.send(topics.queries, None, key="dog")  # tombstone
        producer.send(topics.queries, query("bus", "a red bus"), key="bus")
        producer.flush(10)

        with QueryTableReader(kafka_settings, dead_letters=producer) as reader:
            table = reader.load(timeout_s=10)
            assert {query_id: q.text for query_id, q in table.snapshot().items()} == {
                "cat": "a black cat",
                "bus": "a red bus",
            }
            # ...then it follows: a change published now shows up on the next polls.
            producer.send(topics.queries, None, key="bus").get(timeout=10)
            deadline = time.monotonic() + 10
            while "bus" in table and time.monotonic() < deadline:
                reader.poll(timeout_ms=200)
            assert set(table.snapshot()) == {"cat"}
        producer.flush(10)

    [dead] = read_records(kafka_settings, topics.dead_letters, 1)
    assert dead.key == b"broken" and b"Invalid JSON" in dict(dead.headers)["dlq.reason"]

    # A second reader, started afresh, reconstructs the same table from the log alone.
    with QueryTableReader(kafka_settings) as second:
        assert set(second.load(timeout_s=10).snapshot()) == {"cat"}


def test_a_consumer_group_resumes_from_its_committed_offset(kafka_settings):
    """The only test that joins a group: tansu takes half the session timeout per join (3 s here)."""
    topics = kafka_settings.topics
    group = f"{kafka_settings.topic_prefix}detector"
    with ResilientProducer(kafka_settings) as producer:
        for i in range(6):
            producer.send(topics.hits, f"hit {i}".encode(), key="cam-1")
        producer.flush(10)

    def consume(count: int, commit: bool) -> list[bytes]:
        consumer = make_consumer(
            kafka_settings.model_copy(update={"consumer_session_timeout_ms": 6_000}), group, [topics.hits]
        )
        try:
            values: list[bytes] = []
            deadline = time.monotonic() + 30
            while len(values) < count and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=500, max_records=count - len(values)).values():
                    values.extend(record.value for record in records)
            if commit:
                consumer.commit()  # after processing: at-least-once
            return values
        finally:
            consumer.close(autocommit=False)

    assert consume(4, commit=True) == [f"hit {i}".encode() for i in range(4)]
    # A restarted consumer of the same group starts after what was committed, not at the start.
    assert consume(2, commit=False) == [b"hit 4", b"hit 5"]


def test_without_a_broker_errors_name_the_bootstrap_address_and_come_quickly():
    settings = KafkaSettings(
        bootstrap=f"127.0.0.1:{free_loopback_port()}", max_block_ms=500, topic_prefix="none-"
    )
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match=settings.bootstrap):
        ensure_topics(settings, timeout_s=0.5)
    with (
        ResilientProducer(settings) as producer,
        pytest.raises(BrokerUnavailableError, match=settings.bootstrap),
    ):
        producer.send(settings.topics.hits, b"x", key="k")
    with pytest.raises(BrokerUnavailableError, match=settings.bootstrap):
        make_consumer(settings, None)
    assert time.monotonic() - started < 5


def test_a_reader_of_a_topic_that_does_not_exist_is_told_to_create_it(kafka_broker):
    settings = KafkaSettings(bootstrap=kafka_broker.bootstrap, topic_prefix="never-created-")
    consumer = make_consumer(settings, None)
    try:
        with pytest.raises(Exception, match="does not exist.*ensure_topics"):
            assign_all_partitions(consumer, settings.topics.queries)
        assert (
            consumer.assignment() == set()
            or TopicPartition(settings.topics.queries, 0) not in consumer.assignment()
        )
    finally:
        consumer.close()
