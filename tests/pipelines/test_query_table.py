"""The standing-query table: last value per key, a tombstone deletes, bad records change nothing."""

from __future__ import annotations

from kafka.consumer.fetcher import ConsumerRecord

from vigil.pipelines.query_table import QueryTable, queries_to_seed
from vigil.services.common.contract import QueryMessage, encode_json
from vigil.services.common.kafka import decode_query

_offsets = iter(range(1_000_000))


def record(key: bytes | None, value: bytes | None) -> ConsumerRecord:
    """A "queries" record as kafka-python hands it to a consumer."""
    return ConsumerRecord(
        topic="queries", partition=0, leader_epoch=0, offset=next(_offsets), timestamp=0, timestamp_type=0,
        key=key, value=value, headers=[], checksum=None,
        serialized_key_size=len(key or b""), serialized_value_size=len(value or b""),
        serialized_header_size=0,
    )  # fmt: skip


def query(query_id: str, text: str, **fields) -> QueryMessage:
    return QueryMessage(query_id=query_id, text=text, created_by="test", updated_ts_ms=1, **fields)


def put(table: QueryTable, message: QueryMessage) -> str | None:
    return table.apply(record(message.query_id.encode(), encode_json(message)))


def test_the_last_value_per_key_wins():
    table = QueryTable(decode_query)
    assert put(table, query("q1", "a cat")) is None
    assert put(table, query("q2", "a dog")) is None
    assert put(table, query("q1", "a black cat", threshold=0.3)) is None
    assert len(table) == 2
    assert table.get("q1").text == "a black cat" and table.get("q1").threshold == 0.3
    assert table.get("q2").text == "a dog"


def test_a_tombstone_deletes_the_query_and_a_tombstone_for_nothing_is_harmless():
    table = QueryTable(decode_query)
    put(table, query("q1", "a cat"))
    version = table.version
    assert table.apply(record(b"q1", None)) is None
    assert "q1" not in table and table.version == version + 1
    assert table.apply(record(b"never-existed", None)) is None
    assert table.version == version + 1


def test_a_bad_record_returns_its_reason_and_leaves_the_table_as_it_was():
    table = QueryTable(decode_query)
    put(table, query("q1", "a cat"))
    before = table.snapshot()
    bad_value = table.apply(record(b"q1", b'{"query_id": "q1", "text": ""}'))
    assert bad_value is not None and "text:" in bad_value and "created_by:" in bad_value
    assert "key" in table.apply(record(None, encode_json(query("q3", "a bus"))))
    mismatch = table.apply(record(b"q4", encode_json(query("q5", "a bus"))))
    assert "does not match the record key" in mismatch
    assert "not UTF-8" in table.apply(record(b"\xff\xfe", encode_json(query("q6", "a bus"))))
    assert table.snapshot() == before


def test_queries_for_a_camera_are_the_enabled_ones_that_watch_it():
    table = QueryTable(decode_query)
    put(table, query("everywhere", "a fire"))
    put(table, query("gate", "a truck", cameras=["gate-1"]))
    put(table, query("paused", "a dog", enabled=False))
    assert {q.query_id for q in table.for_camera("gate-1")} == {"everywhere", "gate"}
    assert {q.query_id for q in table.for_camera("lobby")} == {"everywhere"}


def test_the_table_knows_a_deleted_query_until_it_is_published_again():
    table = QueryTable(decode_query)
    put(table, query("q1", "a cat"))
    assert table.apply(record(b"q1", None)) is None
    assert "q1" not in table and table.knows("q1")
    assert not table.knows("q2")
    put(table, query("q1", "a black cat"))
    assert "q1" in table and table.knows("q1")


def test_only_the_config_queries_the_topic_has_no_record_of_are_seeded():
    table = QueryTable(decode_query)
    put(table, query("edited", "a cat, as an operator edited it", threshold=0.4))
    put(table, query("deleted", "a dog"))
    table.apply(record(b"deleted", None))
    configured = [query("edited", "a cat"), query("deleted", "a dog"), query("new", "a red motorcycle")]
    assert [q.query_id for q in queries_to_seed(configured, table)] == ["new"]
