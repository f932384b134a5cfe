"""Hits over HTTP: what the detectors matched, filtered and paged like alerts.

    GET /api/v1/hits?camera_id=&query_id=&severity=&since_ts_ms=&until_ts_ms=&offset=&limit=   viewer
        -> {"hits": [Hit], "total", "offset", "limit"}

The hits are those the alerter has read from "hits" (pipelines/hit_log.py: one entry per hit id,
the closed version once there is one, the newest `max_hits`), newest event start first; a hit is
dated by its event's start. Milvus holds every hit, but Milvus lite admits one process (the
detector's), so this list is the alerter's memory: since it started, up to `max_hits`.

A hit's `severity` is its alert's when it raised one (`alert_id`), else its query's now (null
when the query no longer stands): the severity filter reads the same. `thumbnail_url` is a signed
link, as in alerts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from vigil.pipelines.event_listing import EventFacts, EventFilter, page_of
from vigil.services.api.event_lists import Paging, event_filter, paging
from vigil.services.common.auth import Principal, TokenAuthority
from vigil.services.common.contract import Box, HitMessage, Severity
from vigil.services.common.http import auth_responses, requires


@dataclass(frozen=True)
class SeenHit:
    """A hit the alerter read, with what became of it."""

    hit: HitMessage
    alert_id: str | None
    severity: Severity | None

    def facts(self) -> EventFacts:
        hit = self.hit
        return EventFacts(hit.camera_id, hit.query_id, self.severity, hit.event_start_ts_ms)


class Hit(BaseModel):
    hit_id: str
    camera_id: str
    query_id: str
    event_start_ts_ms: int
    peak_ts_ms: int
    end_ts_ms: int | None
    peak_score: float
    box: Box | None
    encoder: str
    severity: Severity | None
    alert_id: str | None
    thumbnail_url: str | None


class HitList(BaseModel):
    hits: list[Hit]
    total: int
    offset: int
    limit: int


def hits_router(
    authority: TokenAuthority,
    seen_hits: Callable[[], list[SeenHit]],
    thumbnail_url: Callable[[str | None, float], str | None],
) -> APIRouter:
    """GET /api/v1/hits over `seen_hits()` (newest first); `thumbnail_url(reference, now_s)` signs
    a thumbnail's link (AlertLinks.thumbnail_url)."""
    router = APIRouter(prefix="/api/v1/hits", tags=["hits"])
    viewer = Depends(requires(authority, "viewer"))

    @router.get("", response_model=HitList, responses=auth_responses("viewer"))
    def list_hits(
        wanted: Annotated[EventFilter, Depends(event_filter)],
        page: Annotated[Paging, Depends(paging)],
        principal: Principal = viewer,
    ) -> HitList:
        """Hits the alerter has seen, newest event first."""
        matching = [seen for seen in seen_hits() if wanted.admits(seen.facts())]
        shown = page_of(matching, page.offset, page.limit)
        now_s = time.time()
        hits = [
            Hit(
                **seen.hit.model_dump(exclude={"schema_version", "thumbnail"}),
                severity=seen.severity,
                alert_id=seen.alert_id,
                thumbnail_url=thumbnail_url(seen.hit.thumbnail, now_s),
            )
            for seen in shown.items
        ]
        return HitList(hits=hits, total=shown.total, offset=shown.offset, limit=shown.limit)

    return router
