"""The standing queries as folded from the "queries" topic: the last value per key wins, a
tombstone (value None) deletes, and a bad record is refused with its reason and changes nothing.
`queries_to_seed` says which of a config file's queries to publish: those the topic has no record
of, so that what an operator changed or deleted through the API survives a restart.

Pure (no I/O), so the rules are tested without a broker; the service side
(services/common/kafka/queries.py: QueryTableReader) reads the topic and feeds records in.
Readers keep the table themselves because compaction is not guaranteed (tansu never compacts;
Kafka compacts lazily), so a replay sees every version of a query, oldest first.

The message type belongs to the services' Kafka contract (QueryMessage), which pipelines do not
import: the table is given the decoding as a function, and needs of a query only its id and
which cameras it watches (StandingQuery).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, Protocol, TypeVar

from vigil.errors import VigilError


class KeyedRecord(Protocol):
    """What the table reads of a "queries" record (a consumed Kafka record has both)."""

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


class StandingQuery(Protocol):
    """What the table needs of a decoded query (the contract's QueryMessage has both)."""

    @property
    def query_id(self) -> str: ...

    def applies_to(self, camera_id: str) -> bool: ...


Query = TypeVar("Query", bound=StandingQuery)


class QueryTable(Generic[Query]):
    """The standing queries: the last value per key of "queries", a tombstone deletes.

    `decode` turns a record's value into a query, or raises a VigilError (the contract's
    BadMessageError) whose message says what was wrong; that message is the reason apply()
    returns for the dead-letter topic.
    """

    def __init__(self, decode: Callable[[bytes], Query]) -> None:
        self._decode = decode
        self._queries: dict[str, Query] = {}
        self._deleted: set[str] = set()  # ids whose last record is a tombstone
        self.version = 0  # bumps on every change: cheap "did anything change?" for callers

    def apply(self, record: KeyedRecord) -> str | None:
        """Apply one "queries" record. Returns None, or why the record is bad (for the
        dead-letter topic); a bad record leaves the table as it was."""
        if record.key is None:
            return "queries record has no key (the key must be the query_id)"
        try:
            query_id = record.key.decode("utf-8")
        except UnicodeDecodeError:
            return "queries record key is not UTF-8"
        if record.value is None:
            self._deleted.add(query_id)
            if self._queries.pop(query_id, None) is not None:
                self.version += 1
            return None
        try:
            query = self._decode(record.value)
        except VigilError as error:
            return str(error)
        if query.query_id != query_id:
            return (
                f"{type(query).__name__}: query_id {query.query_id!r} does not match the record key "
                f"{query_id!r}"
            )
        self._queries[query_id] = query
        self._deleted.discard(query_id)
        self.version += 1
        return None

    def get(self, query_id: str) -> Query | None:
        return self._queries.get(query_id)

    def snapshot(self) -> dict[str, Query]:
        """A copy safe to iterate while another thread applies records."""
        return dict(self._queries)

    def for_camera(self, camera_id: str) -> list[Query]:
        """Enabled queries that watch this camera."""
        return [query for query in self.snapshot().values() if query.applies_to(camera_id)]

    def knows(self, query_id: str) -> bool:
        """The topic has a record of this id: a query, or a tombstone (it was deleted)."""
        return query_id in self._queries or query_id in self._deleted

    def __len__(self) -> int:
        return len(self._queries)

    def __contains__(self, query_id: object) -> bool:
        return query_id in self._queries

    def __iter__(self) -> Iterator[str]:
        return iter(self.snapshot())


def queries_to_seed(configured: Iterable[Query], table: QueryTable[Query]) -> list[Query]:
    """The config file's queries to publish: those the topic has no record of. The topic wins
    over the file once it knows an id, as for cameras (pipelines/camera_table.py): an edit or a
    delete made through the API or `vigil queries` is not undone by the next start."""
    return [query for query in configured if not table.knows(query.query_id)]
