"""The query parameters that alert and hit lists share: filters and paging (FastAPI dependencies).

    GET /api/v1/alerts?camera_id=&query_id=&severity=&since_ts_ms=&until_ts_ms=&offset=0&limit=100
    GET /api/v1/hits?...the same

The decision is pipelines/event_listing.py (`EventFilter`, `page_of`: since included, until
excluded, newest first, offset paging with the total and why); here are its parameters, declared
once so the two routes cannot drift apart, and a window that ends before it starts is a 422.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from vigil.pipelines.event_listing import EventFilter
from vigil.services.common.contract import Identifier, Severity

MAX_PAGE = 1000
# Unix milliseconds up to the year 9999: past that, a mistake (seconds for ms would still fit).
_MAX_TS_MS = 253_402_300_799_999


class Paging(BaseModel):
    """Where the page starts and how long it is."""

    offset: int = 0
    limit: int = 100


def event_filter(
    camera_id: Identifier | None = None,
    query_id: Identifier | None = None,
    severity: Severity | None = None,
    since_ts_ms: Annotated[
        int | None, Query(ge=0, le=_MAX_TS_MS, description="from this instant, included (Unix ms)")
    ] = None,
    until_ts_ms: Annotated[
        int | None, Query(ge=0, le=_MAX_TS_MS, description="up to this instant, excluded (Unix ms)")
    ] = None,
) -> EventFilter:
    wanted = EventFilter(
        camera_id=camera_id,
        query_id=query_id,
        severity=severity,
        since_ts_ms=since_ts_ms,
        until_ts_ms=until_ts_ms,
    )
    if wanted.empty_window():
        message = f"until_ts_ms {until_ts_ms} is not after since_ts_ms {since_ts_ms}"
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "until_ts_ms"), "msg": message, "input": until_ts_ms}]
        )
    return wanted


def paging(
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="how many matches to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="at most this many")] = 100,
) -> Paging:
    return Paging(offset=offset, limit=limit)
