"""The hits the alerter has seen, newest event first, bounded (pure).

    log = HitLog[HitMessage](max_hits=10_000)
    log.add(hit)              # a hit's closed version (end_ts_ms set) replaces its open one
    log.hits()                # newest event start first

A hit arrives at least twice under one `hit_id` (when it is confirmed and when it closes) and
again on every replay: the log keeps one entry per id, the version that knows most (a closed
one is never replaced by an open one). Past `max_hits` the hits whose events started earliest
are dropped. The truth of hits is Milvus (the detector's); this log is what the alerter can
serve without opening it (Milvus lite admits one process), so it holds what the alerter saw.

The hit is the services' Kafka message (the contract's HitMessage), which pipelines do not
import: the log is generic over it and reads what `LoggedHit` names.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar


class LoggedHit(Protocol):
    @property
    def hit_id(self) -> str: ...
    @property
    def event_start_ts_ms(self) -> int: ...
    @property
    def end_ts_ms(self) -> int | None: ...


Hit = TypeVar("Hit", bound=LoggedHit)


class HitLog(Generic[Hit]):
    """One entry per hit id, at most `max_hits`; not thread-safe (the service serialises access)."""

    def __init__(self, max_hits: int) -> None:
        if max_hits < 1:
            raise ValueError(f"max_hits must be at least 1, got {max_hits}")
        self.max_hits = max_hits
        self._hits: dict[str, Hit] = {}

    def add(self, hit: Hit) -> None:
        known = self._hits.get(hit.hit_id)
        if known is not None and known.end_ts_ms is not None and hit.end_ts_ms is None:
            return  # a replayed open version must not reopen a closed event
        self._hits[hit.hit_id] = hit
        if len(self._hits) > self.max_hits:
            oldest = min(self._hits.values(), key=lambda h: (h.event_start_ts_ms, h.hit_id))
            del self._hits[oldest.hit_id]

    def hits(self) -> list[Hit]:
        """Every hit kept, newest event start first."""
        return sorted(self._hits.values(), key=lambda h: (h.event_start_ts_ms, h.hit_id), reverse=True)

    def __len__(self) -> int:
        return len(self._hits)

    def __contains__(self, hit_id: object) -> bool:
        return hit_id in self._hits
