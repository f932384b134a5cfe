"""The durable local broker: tansu on its object store keeps every record and committed offset
through a kill -9 of either process and a restart; `vigil up`'s watch brings it back and
re-registers what it lost; the store keeper applies retention and compaction."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from kafka import KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from vigil.services.broker.endpoint import start_local_broker
from vigil.services.broker.keeper import (
    DELETE_RETENTION_MS,
    LIST_PAGE_KEYS,
    LOCAL_EVENTS_RETENTION_MS,
    LOCAL_FRAMES_RETENTION_MS,
    StoredBatch,
    expired_batches,
    superseded_batches,
)
from vigil.services.broker.local import LocalBroker, free_loopback_port
from vigil.services.broker.watch import BrokerWatch
from vigil.services.common.contract import QueryMessage
from vigil.services.common.kafka import (
    KafkaSettings,
    QueryTableReader,
    ResilientProducer,
    ensure_topics,
    make_consumer,
)

GROUP = "durability-test"


def settings_at(bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap=bootstrap, frame_partitions=2, event_partitions=1, connect_timeout_s=10)


def produce_one_batch_each(
    settings: KafkaSettings, topic: str, records: list[tuple[bytes | None, bytes | None]]
):
    """Each record in a batch of its own (the keeper works batch by batch), on partition 0."""
    producer = KafkaProducer(**settings.client_config(), enable_idempotence=False, linger_ms=0)
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value, partition=0).get(timeout=10)
    finally:
        producer.close()


def read_all(
    settings: KafkaSettings,
    topic: str,
    expected: int | None = None,
    timeout_s: float = 10.0,
    until_offset: int | None = None,
):
    """(offset, key, value) of every record of partition 0, from the first one stored; stops at
    `expected` records, at `until_offset`, or else after three empty polls."""
    consumer = make_consumer(settings, group_id=None)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    records, deadline, empty_polls = [], time.monotonic() + timeout_s, 0
    try:
        while time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=300)
            batch = [(r.offset, r.key, r.value) for part in polled.values() for r in part]
            records += batch
            empty_polls = 0 if batch else empty_polls + 1
            if expected is not None and len(records) >= expected:
                break
            if until_offset is not None and any(offset >= until_offset for offset, _, _ in batch):
                break
            if expected is None and until_offset is None and empty_polls >= 3:
                break
    finally:
        consumer.close()
    return records


def committed(settings: KafkaSettings, topic: str) -> int | None:
    consumer = make_consumer(settings, group_id=GROUP)
    try:
        offset = consumer.committed(TopicPartition(topic, 0))
        return offset
    finally:
        consumer.close(autocommit=False)


@pytest.fixture
def durable_broker(tmp_path):
    broker = LocalBroker(0, log_dir=tmp_path, data_dir=tmp_path / "data").start()
    yield broker
    broker.stop()


def test_records_and_committed_offsets_survive_a_kill_9_of_tansu_of_its_store_and_a_restart(
    durable_broker, tmp_path
):
    settings = settings_at(durable_broker.bootstrap)
    ensure_topics(settings)
    topic = settings.topics.alerts
    produce_one_batch_each(settings, topic, [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
    consumer = make_consumer(settings, group_id=GROUP)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, "", -1)})
    consumer.close(autocommit=False)
    expected = [(0, b"a", b"1"), (1, b"b", b"2"), (2, b"c", b"3")]

    os.kill(durable_broker.pid, signal.SIGKILL)  # tansu
    time.sleep(0.3)
    assert not durable_broker.running
    started = time.monotonic()
    assert durable_broker.revive()
    assert time.monotonic() - started < 10
    assert read_all(settings, topic, expected=3) == expected
    assert committed(settings, topic) == 2

    os.kill(durable_broker.store.pid, signal.SIGKILL)  # the object store under it
    time.sleep(0.3)
    assert not durable_broker.running
    assert durable_broker.revive()
    assert read_all(settings, topic, expected=3) == expected
    produce_one_batch_each(settings, topic, [(b"d", b"4")])  # and it takes new records after them

    durable_broker.stop()  # a reboot: a new broker on the same folder and port
    again = LocalBroker(durable_broker.port, log_dir=tmp_path, data_dir=tmp_path / "data").start()
    try:
        assert read_all(settings, topic, expected=4) == [*expected, (3, b"d", b"4")]
        assert committed(settings, topic) == 2
    finally:
        again.stop()


def test_every_record_acknowledged_around_a_kill_9_mid_stream_is_kept_once(durable_broker):
    """The object store's conditional writes at work: a restarted tansu that has not read a
    partition yet must not number new records from 0 over the stored ones.

    A record in flight at the kill may be stored although its producer was told it failed (the
    broker died between writing and answering): that is at-least-once, not a loss. So the test
    holds the broker to: every acknowledged record at its offset, each record stored once, and
    nothing stored that was never sent. The producer sends each record once (no retries), so a
    second copy could only come from the broker."""
    settings = settings_at(durable_broker.bootstrap)
    ensure_topics(settings)
    topic = settings.topics.alerts
    producer = KafkaProducer(**settings.client_config(), enable_idempotence=False, linger_ms=2, retries=0)
    acknowledged: dict[int, bytes] = {}
    sent: set[bytes] = set()
    stop = threading.Event()

    def publish() -> None:
        sequence = 0
        while not stop.is_set():
            value = b"record-%d" % sequence
            sequence += 1
            try:
                future = producer.send(topic, key=b"k", value=value, partition=0)
            except Exception:  # the broker is away: the record was never queued
                continue
            sent.add(value)
            future.add_callback(lambda metadata, value=value: acknowledged.setdefault(metadata.offset, value))
            time.sleep(0.005)

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        assert wait_until(lambda: len(acknowledged) >= 100, timeout_s=20)
        os.kill(durable_broker.pid, signal.SIGKILL)
        before_kill = len(acknowledged)
        time.sleep(0.3)
        durable_broker.revive()
        assert wait_until(lambda: len(acknowledged) >= before_kill + 100, timeout_s=20)
    finally:
        stop.set()
        publisher.join()
        producer.flush(timeout=10)
        producer.close()
    last_acknowledged = max(acknowledged)
    records = read_all(settings, topic, until_offset=last_acknowledged)
    stored = {offset: value for offset, _, value in records}
    assert {offset: stored.get(offset) for offset in acknowledged} == acknowledged
    stored_values = [value for _, _, value in records]
    assert len(stored_values) == len(set(stored_values)), "a record was stored twice"
    assert set(stored_values) <= sent, "a record was stored that was never sent"


def test_a_memory_broker_forgets_everything_at_restart(tmp_path):
    with LocalBroker(0, log_dir=tmp_path) as broker:
        settings = settings_at(broker.bootstrap)
        ensure_topics(settings)
        produce_one_batch_each(settings, settings.topics.alerts, [(b"a", b"1")])
        broker.restart()
        ensure_topics(settings)
        assert read_all(settings, settings.topics.alerts) == []


def standing_query(query_id: str) -> QueryMessage:
    return QueryMessage(query_id=query_id, text="a red motorcycle", created_by="config", updated_ts_ms=1)


def query_ids(settings: KafkaSettings) -> set[str]:
    with QueryTableReader(settings) as reader:
        return set(reader.load(timeout_s=10))


def wait_until(condition, timeout_s: float, step=None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if step is not None:
            step()
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "memory"])
def test_the_watch_restarts_a_killed_broker_and_registers_again_the_queries_it_lost(tmp_path, durable):
    settings = settings_at(f"127.0.0.1:{free_loopback_port()}")
    endpoint = start_local_broker(settings, log_dir=tmp_path, data_dir=tmp_path / "data" if durable else None)
    try:
        watch = BrokerWatch(endpoint, settings, [standing_query("config-query")], interval_s=0.1)
        assert watch.reassert_queries() == ["config-query"]  # as at start: the topic was empty
        assert query_ids(settings) == {"config-query"}

        os.kill(endpoint.broker.pid, signal.SIGKILL)
        killed = time.monotonic()
        assert wait_until(lambda: watch.revivals == 1 and watch.up, timeout_s=10, step=watch.check)
        assert wait_until(lambda: not watch._pending_reassert, timeout_s=10, step=watch.check)
        assert time.monotonic() - killed < 10
        assert query_ids(settings) == {"config-query"}
        # Durable: the query was still there, so nothing was published again; in memory it was lost.
        assert watch.reasserted == (1 if durable else 2)
    finally:
        endpoint.close()


# --- the store keeper ----------------------------------------------------------------------


def batch(base_offset: int, stored_ms: int = 0) -> StoredBatch:
    return StoredBatch(
        key=f"records/{base_offset:020d}.batch", base_offset=base_offset, size=10, stored_ms=stored_ms
    )


def test_retention_expires_old_batches_but_never_a_partitions_newest():
    batches = [batch(0, 1_000), batch(5, 2_000), batch(9, 3_000)]
    assert [b.base_offset for b in expired_batches(batches, retention_ms=500, now_ms=2_600)] == [0, 5]
    assert [b.base_offset for b in expired_batches(batches, retention_ms=500, now_ms=10_000)] == [0, 5]
    assert expired_batches(batches, retention_ms=5_000, now_ms=5_000) == []


def test_compaction_removes_batches_without_a_live_record_among_those_read_whole():
    batches = [batch(0), batch(3), batch(6), batch(8)]  # records 0-2, 3-5, 6-7, 8-
    assert [b.base_offset for b in superseded_batches(batches, live_offsets={4, 9}, read_up_to=10)] == [0, 6]
    # Records 6 and 7 unread: that batch may still hold a key's newest record.
    assert [b.base_offset for b in superseded_batches(batches, live_offsets={4, 9}, read_up_to=7)] == [0]
    assert superseded_batches([batch(0)], live_offsets=set(), read_up_to=10) == []


def test_the_keeper_expires_frames_past_their_retention_and_compacts_state(tmp_path):
    settings = settings_at(f"127.0.0.1:{free_loopback_port()}")
    endpoint = start_local_broker(settings, log_dir=tmp_path, data_dir=tmp_path / "data")
    try:
        endpoint.keeper.stop()  # passes are run here, at chosen times
        keeper = endpoint.keeper
        keeper._stop.clear()
        # camera-status is compacted with Kafka's default tombstone retention; queries and cameras
        # keep their tombstones (topics.py: a deleted query or camera is not seeded back).
        frames, statuses = settings.topics.frames, settings.topics.camera_status
        produce_one_batch_each(settings, frames, [(b"cam", b"jpeg-%d" % i) for i in range(4)])
        produce_one_batch_each(
            settings,
            statuses,
            [(b"k1", b"v1"), (b"k2", b"v1"), (b"k1", b"v2"), (b"k3", b"v1"), (b"k3", None), (b"k4", b"v1")],
        )
        cameras, queries = settings.topics.cameras, settings.topics.queries
        produce_one_batch_each(settings, cameras, [(b"gate", b"v1"), (b"gate", None), (b"dock", b"v1")])
        produce_one_batch_each(settings, queries, [(b"fence", b"v1"), (b"fence", None)])
        now_ms = int(time.time() * 1000)

        keeper.run_once(now_ms)  # frames are young: kept; superseded k1 and k3 records go
        assert [offset for offset, _, _ in read_all(settings, frames, expected=4)] == [0, 1, 2, 3]
        assert read_all(settings, statuses) == [
            (1, b"k2", b"v1"),
            (2, b"k1", b"v2"),
            (4, b"k3", None),
            (5, b"k4", b"v1"),
        ]

        later_ms = now_ms + settings.frames_retention_ms + DELETE_RETENTION_MS + 60_000
        removed = keeper.run_once(later_ms)
        assert removed[frames] == 3
        assert read_all(settings, frames) == [(3, b"cam", b"jpeg-3")]  # the newest batch stays
        # The tombstone is forgotten once older than delete.retention.ms, like Kafka's.
        assert read_all(settings, statuses) == [(1, b"k2", b"v1"), (2, b"k1", b"v2"), (5, b"k4", b"v1")]
        # ... unless the topic keeps its tombstones longer: a deleted camera or query stays deleted.
        assert read_all(settings, cameras) == [(1, b"gate", None), (2, b"dock", b"v1")]
        assert read_all(settings, queries) == [(1, b"fence", None)]
        produce_one_batch_each(settings, frames, [(b"cam", b"jpeg-4")])
        assert read_all(settings, frames) == [(3, b"cam", b"jpeg-3"), (4, b"cam", b"jpeg-4")]
    finally:
        endpoint.close()


def test_the_object_store_keeps_its_open_files_bounded_under_a_camera_and_a_detector(durable_broker):
    """tansu reads its small state objects with conditional GETs; s3rver alone leaked a file
    descriptor on each that matched: 900 open files after two minutes of two cameras under
    `vigil up`, ~20 in the 12 s of this test."""
    settings = KafkaSettings(bootstrap=durable_broker.bootstrap, frame_partitions=8, connect_timeout_s=10)
    ensure_topics(settings)

    def open_files() -> int:
        return len(os.listdir(f"/proc/{durable_broker.store.pid}/fd"))

    before = open_files()
    with ResilientProducer(settings) as producer:
        consumer = make_consumer(settings, group_id=GROUP)
        consumer.subscribe([settings.topics.frames])
        try:
            deadline, sequence = time.monotonic() + 12, 0
            while time.monotonic() < deadline:  # two cameras at 4 frames/s, a detector committing
                producer.send(settings.topics.frames, b"jpeg-%d" % sequence, key=f"cam{sequence % 2}")
                sequence += 1
                if consumer.poll(timeout_ms=250):
                    consumer.commit()
        finally:
            consumer.close(autocommit=False)
    assert open_files() - before < 8, (before, open_files())


def test_retention_pages_through_a_long_partition_oldest_first(tmp_path):
    settings = settings_at(f"127.0.0.1:{free_loopback_port()}")
    endpoint = start_local_broker(settings, log_dir=tmp_path, data_dir=tmp_path / "data")
    try:
        endpoint.keeper.stop()
        keeper = endpoint.keeper
        frames = settings.topics.frames
        total = LIST_PAGE_KEYS * 2 + 30  # three pages of the store's listing
        produce_one_batch_each(settings, frames, [(b"cam", b"jpeg-%d" % i) for i in range(total)])
        assert keeper.run_once(int(time.time() * 1000)).get(frames) is None  # all young
        # An hour is configured, but the local log keeps two minutes of frames (fetches list a
        # partition's every batch): three minutes on, all but the newest are gone.
        assert settings.frames_retention_ms > LOCAL_FRAMES_RETENTION_MS
        assert keeper.run_once(int(time.time() * 1000) + 3 * 60_000)[frames] == total - 1
        assert read_all(settings, frames) == [(total - 1, b"cam", b"jpeg-%d" % (total - 1))]
    finally:
        endpoint.close()


def test_the_keeper_keeps_the_query_history_past_the_local_cap_until_its_own_retention(tmp_path):
    """The local log caps deleted topics at LOCAL_EVENTS_RETENTION_MS, but not "query-history":
    it is the only copy of who changed a standing query."""
    settings = settings_at(f"127.0.0.1:{free_loopback_port()}")
    endpoint = start_local_broker(settings, log_dir=tmp_path, data_dir=tmp_path / "data")
    try:
        endpoint.keeper.stop()
        keeper = endpoint.keeper
        history, hits = settings.topics.query_history, settings.topics.hits
        produce_one_batch_each(settings, history, [(b"fence", b"created"), (b"fence", b"updated")])
        produce_one_batch_each(settings, hits, [(b"cam", b"hit-1"), (b"cam", b"hit-2")])
        now_ms = int(time.time() * 1000)
        removed = keeper.run_once(now_ms + 2 * LOCAL_EVENTS_RETENTION_MS)
        assert removed.get(history) is None and removed[hits] == 1
        assert [value for _, _, value in read_all(settings, history)] == [b"created", b"updated"]
        removed = keeper.run_once(now_ms + settings.query_history_retention_ms + 60_000)
        assert removed[history] == 1  # the newest batch stays, as ever
    finally:
        endpoint.close()
