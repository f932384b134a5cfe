"""The standing queries and their edit history, as the API and `vigil queries` see and change them.

    catalog = QueryCatalog(kafka_settings, producer).load()      # both topics read to their end
    catalog.follow()                                              # a thread keeps reading them
    catalog.create(query, by="olga")      # QueryExistsError
    catalog.update(query, by="olga")      # UnknownQueryError; `created_by` stays the creator's
    catalog.delete("fence", by="olga")    # UnknownQueryError
    catalog.queries(), catalog.get("fence"), catalog.history("fence")

Kafka is the one source of truth: the table is folded from "queries" (pipelines/query_table.py,
the same rules as every other reader's) and the history from "query-history", by one group-less
consumer of both. A write goes to the broker first (services/common/kafka/query_history.py) and
returns once the follower has read it back, so the writer's next read sees it; a change made
elsewhere (`vigil queries`, another API process) shows within a poll (~0.2 s). Writes are
serialised, so two requests racing to create one id get one 201 and one 409.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import TopicPartition

from vigil.errors import VigilError
from vigil.pipelines.query_table import QueryTable
from vigil.services.common.contract import BadMessageError, QueryAction, QueryChangeMessage, QueryMessage
from vigil.services.common.kafka import (
    KafkaRecord,
    KafkaSettings,
    ResilientProducer,
    assign_all_partitions,
    decode_query,
    decode_query_change,
    make_consumer,
    publish_query_change,
    replay_to_end,
)

log = logging.getLogger(__name__)

_FOLLOW_POLL_MS = 200
# How long a write waits to read itself back before answering anyway (it is on the broker).
_READ_BACK_S = 10.0


class QueryExistsError(VigilError):
    def __init__(self, query_id: str) -> None:
        self.query_id = query_id
        super().__init__(f"a standing query {query_id!r} exists already (PUT changes it)")


class UnknownQueryError(VigilError):
    def __init__(self, query_id: str) -> None:
        self.query_id = query_id
        super().__init__(f"no standing query {query_id!r}")


class QueryCatalog:
    """See the module docstring. Thread-safe."""

    def __init__(self, settings: KafkaSettings, producer: ResilientProducer) -> None:
        self.settings = settings
        self.topics = settings.topics
        self._producer = producer
        self._table: QueryTable[QueryMessage] = QueryTable(decode_query)
        self._history: dict[str, list[QueryChangeMessage]] = {}
        self._read_up_to: dict[str, int] = {self.topics.queries: -1, self.topics.query_history: -1}
        self._changed = threading.Condition()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer = make_consumer(settings, group_id=None)
        try:
            self._partitions: list[TopicPartition] = [
                *assign_all_partitions(self._consumer, self.topics.queries),
                *assign_all_partitions(self._consumer, self.topics.query_history),
            ]
            self._consumer.assign(self._partitions)
        except BaseException:
            self._consumer.close()
            raise

    # --- reading ---------------------------------------------------------------------------

    def load(self, timeout_s: float = 30.0) -> QueryCatalog:
        """Read both topics from their first record to their end as of now."""
        replay_to_end(
            self._consumer,
            self._partitions,
            self._poll,
            self.settings,
            "loading the standing queries and their history",
            timeout_s,
        )
        return self

    def follow(self) -> QueryCatalog:
        """Keep reading both topics in a thread until close()."""
        self._thread = threading.Thread(target=self._follow, name="query-catalog", daemon=True)
        self._thread.start()
        return self

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll(_FOLLOW_POLL_MS)
            except Exception as error:  # the broker away for a moment: the consumer reconnects
                log.warning("following the standing queries: %s", error)
                self._stop.wait(1.0)

    def _poll(self, timeout_ms: int) -> int:
        batches = self._consumer.poll(timeout_ms=timeout_ms)
        count = 0
        with self._changed:
            for partition, records in batches.items():
                for record in records:
                    count += 1
                    self._apply(partition.topic, record)
                    self._read_up_to[partition.topic] = max(self._read_up_to[partition.topic], record.offset)
            if count:
                self._changed.notify_all()
        return count

    def _apply(self, topic: str, record: KafkaRecord) -> None:
        if topic == self.topics.queries:
            reason = self._table.apply(record)
        else:
            try:
                change = decode_query_change(record.value)
                self._history.setdefault(change.query_id, []).append(change)
                reason = None
            except BadMessageError as error:
                reason = str(error)
        if reason is not None:  # the alerter's and detector's readers dead-letter it
            log.warning("skipped bad %s record %d@%d: %s", topic, record.partition, record.offset, reason)

    def queries(self) -> list[QueryMessage]:
        """The standing queries, by id."""
        with self._changed:
            return sorted(self._table.snapshot().values(), key=lambda query: query.query_id)

    def get(self, query_id: str) -> QueryMessage:
        with self._changed:
            query = self._table.get(query_id)
        if query is None:
            raise UnknownQueryError(query_id)
        return query

    def history(self, query_id: str) -> list[QueryChangeMessage]:
        """Every change of the query still kept, oldest first; UnknownQueryError when there is
        neither a change nor a standing query (one registered from `vigil up`'s file has none)."""
        with self._changed:
            changes = list(self._history.get(query_id, []))
            if not changes and query_id not in self._table:
                raise UnknownQueryError(query_id)
        return changes

    # --- writing ---------------------------------------------------------------------------

    def create(self, query: QueryMessage, by: str) -> QueryMessage:
        with self._write_lock:
            if query.query_id in self._standing():
                raise QueryExistsError(query.query_id)
            self._write("created", query.query_id, query, by)
            return query

    def update(self, query: QueryMessage, by: str) -> QueryMessage:
        """Replace a standing query; its creator stays `created_by`, the editor is in the history."""
        with self._write_lock:
            known = self._standing().get(query.query_id)
            if known is None:
                raise UnknownQueryError(query.query_id)
            kept = query.model_copy(update={"created_by": known.created_by})
            self._write("updated", query.query_id, kept, by)
            return kept

    def upsert(self, query: QueryMessage, by: str) -> QueryMessage:
        """Create, or replace as `update` does (`vigil queries add`)."""
        with self._write_lock:
            known = self._standing().get(query.query_id)
            if known is not None:
                query = query.model_copy(update={"created_by": known.created_by})
            self._write("created" if known is None else "updated", query.query_id, query, by)
            return query

    def delete(self, query_id: str, by: str) -> None:
        with self._write_lock:
            if query_id not in self._standing():
                raise UnknownQueryError(query_id)
            self._write("deleted", query_id, None, by)

    def _standing(self) -> dict[str, QueryMessage]:
        with self._changed:
            return self._table.snapshot()

    def _write(self, action: QueryAction, query_id: str, query: QueryMessage | None, by: str) -> None:
        change = QueryChangeMessage(
            query_id=query_id, action=action, by=by, ts_ms=int(time.time() * 1000), query=query
        )
        offsets = publish_query_change(self._producer, self.topics, change)
        self._read_back(offsets)

    def _read_back(self, offsets: dict[str, int]) -> None:
        """Wait until the follower (or, without one, this thread) has read `offsets`."""

        def read() -> bool:
            return all(self._read_up_to[topic] >= offset for topic, offset in offsets.items())

        deadline = time.monotonic() + _READ_BACK_S
        while time.monotonic() < deadline:
            if self._thread is None:
                self._poll(_FOLLOW_POLL_MS)
                with self._changed:
                    if read():
                        return
                continue
            with self._changed:
                if self._changed.wait_for(read, timeout=max(0.0, deadline - time.monotonic())):
                    return
        log.warning("a query change is on the broker but was not read back within %.0f s", _READ_BACK_S)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._consumer.close(autocommit=False)

    def __enter__(self) -> QueryCatalog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
