"""Which alerts or hits a list request gets: filters, then one page of the newest first (pure).

    wanted = EventFilter(severity="critical", since_ts_ms=t0, until_ts_ms=t1)
    shown = page_of([r for r in records if wanted.admits(facts(r))], offset=0, limit=50)
    shown.items, shown.total        # at most 50, and how many matched in all

Every filter given must hold (an unset one admits everything). Times are Unix milliseconds:
`since_ts_ms` included, `until_ts_ms` excluded, so consecutive windows never count an event
twice. What time and status an item has is the caller's to say (`EventFacts`): an alert is
dated when it was raised, a hit when its event started.

Paging is by offset and limit with the total, not by cursor: the lists live in memory and are
bounded (the alert book's retention, the alerter's hit log), so counting is cheap, and a console
shows "51-100 of 340" and jumps to any page. Items arriving while someone pages push older ones
down a page; a client that wants stable pages passes the first page's newest time as
`until_ts_ms` for the following ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")


@dataclass(frozen=True)
class EventFacts:
    """What the filters read of one alert or hit."""

    camera_id: str
    query_id: str
    severity: str | None
    ts_ms: int
    status: str | None = None


@dataclass(frozen=True)
class EventFilter:
    """The filters of a list request; None = any."""

    status: str | None = None
    camera_id: str | None = None
    query_id: str | None = None
    severity: str | None = None
    since_ts_ms: int | None = None
    until_ts_ms: int | None = None

    def admits(self, facts: EventFacts) -> bool:
        return (
            self.status in (None, facts.status)
            and self.camera_id in (None, facts.camera_id)
            and self.query_id in (None, facts.query_id)
            and self.severity in (None, facts.severity)
            and (self.since_ts_ms is None or facts.ts_ms >= self.since_ts_ms)
            and (self.until_ts_ms is None or facts.ts_ms < self.until_ts_ms)
        )

    def empty_window(self) -> bool:
        """Whether since/until leave no instant at all (a request worth refusing: it is a mistake)."""
        return (
            self.since_ts_ms is not None
            and self.until_ts_ms is not None
            and self.until_ts_ms <= self.since_ts_ms
        )


@dataclass(frozen=True)
class Page(Generic[Item]):
    """One page of a filtered list: its items, how many matched in all, and where it starts."""

    items: list[Item]
    total: int
    offset: int
    limit: int


def page_of(matching: Sequence[Item], offset: int, limit: int) -> Page[Item]:
    """Items `offset` to `offset + limit` of `matching` (already filtered and in order)."""
    if offset < 0 or limit < 1:
        raise ValueError(f"offset must be >= 0 and limit >= 1, got offset={offset}, limit={limit}")
    return Page(
        items=list(matching[offset : offset + limit]), total=len(matching), offset=offset, limit=limit
    )
