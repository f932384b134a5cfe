"""The standing queries on Kafka: `publish_query` / `delete_query` write the "queries" topic, and
`QueryTableReader` keeps a QueryTable (pipelines/query_table.py, the pure rules of the table) in
step with it. `decode_query` is the contract's decoding that the table is given.
`seed_standing_queries` publishes a config file's queries that the topic has no record of.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from vigil.pipelines.query_table import QueryTable, queries_to_seed
from vigil.services.common.contract import QueryChangeMessage, QueryMessage, Topics, decode_json, encode_json
from vigil.services.common.kafka.consumers import (
    KafkaRecord,
    assign_all_partitions,
    make_consumer,
    replay_to_end,
)
from vigil.services.common.kafka.dead_letters import send_to_dead_letter
from vigil.services.common.kafka.producer import ResilientProducer
from vigil.services.common.kafka.query_history import publish_query_change
from vigil.services.common.kafka.settings import KafkaSettings

log = logging.getLogger("vigil.kafka")


def publish_query(producer: ResilientProducer, topics: Topics, query: QueryMessage) -> None:
    """Add or replace a standing query (key = query_id) and wait until the broker has it."""
    producer.send(topics.queries, encode_json(query), key=query.query_id)
    producer.flush()


def delete_query(producer: ResilientProducer, topics: Topics, query_id: str) -> None:
    """Delete a standing query: a tombstone (value None) under its key."""
    producer.send(topics.queries, None, key=query_id)
    producer.flush()


def decode_query(value: bytes | None) -> QueryMessage:
    """A "queries" value as a QueryMessage; BadMessageError names what was wrong."""
    return decode_json(QueryMessage, value)


class QueryTableReader:
    """Keeps a QueryTable in step with "queries": load() replays the topic from the beginning up
    to its end offsets at start, poll() follows what comes after.

    Group-less on purpose: every reader needs every query, so no partition is shared out, no
    offset is committed, and no group join (seconds on tansu) delays the start. Bad records
    go to the dead-letter topic when a producer is given, and are skipped either way.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        dead_letters: ResilientProducer | None = None,
        table: QueryTable[QueryMessage] | None = None,
        on_bad_record: Callable[[KafkaRecord, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.table = table if table is not None else QueryTable(decode_query)
        self._dead_letters = dead_letters
        self._on_bad_record = on_bad_record
        self._consumer = make_consumer(settings, group_id=None)
        try:
            self._partitions = assign_all_partitions(self._consumer, self.topics.queries)
        except BaseException:
            self._consumer.close()
            raise

    def load(self, timeout_s: float = 30.0) -> QueryTable[QueryMessage]:
        """Rebuild the table from the first record to the end of the topic as of now."""
        replay_to_end(
            self._consumer, self._partitions, self.poll, self.settings, "loading the queries", timeout_s
        )
        return self.table

    def poll(self, timeout_ms: int = 1000) -> int:
        """Apply the records that arrived; returns how many were read (good or bad)."""
        batches = self._consumer.poll(timeout_ms=timeout_ms)
        count = 0
        for records in batches.values():
            for record in records:
                count += 1
                reason = self.table.apply(record)
                if reason is not None:
                    self._reject(record, reason)
        return count

    def _reject(self, record: KafkaRecord, reason: str) -> None:
        if self._on_bad_record is not None:
            self._on_bad_record(record, reason)
        if self._dead_letters is not None:
            send_to_dead_letter(self._dead_letters, self.topics, record, reason)
        else:
            log.warning("skipped bad queries record %d@%d: %s", record.partition, record.offset, reason)

    def close(self) -> None:
        self._consumer.close(autocommit=False)

    def __enter__(self) -> QueryTableReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def seed_standing_queries(
    settings: KafkaSettings, queries: Sequence[QueryMessage], by: str, timeout_s: float = 10.0
) -> list[str]:
    """Publish the configured `queries` that "queries" has no record of (neither a query nor a
    tombstone), each with a "created" record on "query-history" naming `by` (the config file);
    returns their ids. The topic wins over the file once it knows an id (queries_to_seed)."""
    if not queries:
        return []
    with QueryTableReader(settings) as reader:
        table = reader.load(timeout_s=timeout_s)
    seeds = queries_to_seed(queries, table)
    if seeds:
        with ResilientProducer(settings) as producer:
            for query in seeds:
                now_ms = int(time.time() * 1000)
                change = QueryChangeMessage(
                    query_id=query.query_id, action="created", by=by, ts_ms=now_ms, query=query
                )
                publish_query_change(producer, settings.topics, change)
    return [query.query_id for query in seeds]
