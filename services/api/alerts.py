"""The alerts over HTTP: the alerter's book as the API mirrors it, its live stream, acknowledgements.

    GET  /api/v1/alerts?status=open&camera_id=&query_id=&severity=&since_ts_ms=&until_ts_ms=
                       &offset=0&limit=100          viewer: {"alerts", "total", "offset", "limit"}
    GET  /api/v1/alerts/stream                      viewer: Server-Sent Events (below)
    GET  /api/v1/alerts/{alert_id}                  viewer
    POST /api/v1/alerts/{alert_id}/acknowledge      operator: once; 409 names who did it first

Every alert is served as an `AlertView`: the record (the alert message, open/acknowledged by
whom and when, the event's end) plus `thumbnail_url` and `audio_url`, absolute signed links
(services/common/media_links.py) that an <img>/<audio> element or a webhook receiver can fetch
without a token until they expire; they are made fresh on every response.

The stream sends `event: raised | acknowledged | ended`, `data:` an AlertView, `id:` the change
id. A client that reconnects with `Last-Event-ID` (browsers do it by themselves) is sent what it
missed; when that cannot be known (the API restarted, or the client was away for more than
`replay_changes` changes) the first event is `resync`: fetch /api/v1/alerts again.

An acknowledgement is a command to the alerter (services/api/acknowledgements.py): 200 once the
alerter applied it, 409 when someone else was first, 503 when the alerter did not apply it in
time (it stays queued and applies when the alerter is back).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from prometheus_client import Gauge
from pydantic import BaseModel, ConfigDict

from vigil.pipelines.alert_book import AlertRecord, AlertStatus
from vigil.pipelines.event_listing import EventFacts, EventFilter, page_of
from vigil.services.api.acknowledgements import AcknowledgementPendingError, SendCommand, acknowledge
from vigil.services.api.alert_mirror import MirroredAlerts
from vigil.services.api.event_lists import Paging, event_filter, paging
from vigil.services.api.feed import AlertChange
from vigil.services.common.auth import Principal, TokenAuthority
from vigil.services.common.contract import DERIVED_ID_PATTERN, AlertMessage
from vigil.services.common.http import ErrorDetail, auth_responses, json_refusals, requires
from vigil.services.common.media_links import AlertLinks

# A stream with nothing to say still wakes up this often, to notice a closed feed.
_STREAM_WAKE_S = 5.0
_RETRY_MS = 2000
AlertId = Annotated[str, Path(min_length=1, max_length=400, pattern=DERIVED_ID_PATTERN)]


class AlreadyAcknowledged(ErrorDetail):
    """409: the alert was acknowledged before, by whom and when."""

    acknowledged_by: str
    acknowledged_ts_ms: int


class AlertView(BaseModel):
    """An alert as the API serves it: its record (pipelines/alert_book.py) plus fresh signed
    links to its media."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    status: AlertStatus
    acknowledged_by: str | None
    acknowledged_ts_ms: int | None
    end_ts_ms: int | None
    alert: AlertMessage
    thumbnail_url: str | None
    audio_url: str | None


class AlertList(BaseModel):
    alerts: list[AlertView]
    total: int | None = None  # every alert that matched (None only in older clients' eyes)
    offset: int = 0
    limit: int | None = None


def alert_facts(record: AlertRecord[AlertMessage]) -> EventFacts:
    """What the list's filters read of an alert: dated when it was raised."""
    alert = record.alert
    return EventFacts(alert.camera_id, alert.query_id, alert.severity, alert.raised_ts_ms, record.status)


def alert_view(links: AlertLinks, record: AlertRecord[AlertMessage], now_s: float | None = None) -> AlertView:
    media = links.for_alert(record.alert, time.time() if now_s is None else now_s)
    return AlertView.model_construct(
        alert_id=record.alert_id,
        status=record.status,
        acknowledged_by=record.acknowledged_by,
        acknowledged_ts_ms=record.acknowledged_ts_ms,
        end_ts_ms=record.end_ts_ms,
        alert=record.alert,
        thumbnail_url=media["thumbnail_url"],
        audio_url=media["audio_url"],
    )


def _refusal(description: str) -> dict[str, Any]:
    return {"model": ErrorDetail, "description": description}


def alerts_router(
    authority: TokenAuthority,
    alerts: MirroredAlerts,
    links: AlertLinks,
    send_command: SendCommand,
    acknowledge_timeout_s: float,
    stream_clients: Gauge,
) -> APIRouter:
    """The routes of the module docstring over the mirror `alerts`; `send_command` puts an
    acknowledgement on "alert-commands"."""
    router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
    viewer = Depends(requires(authority, "viewer"))
    operator = Depends(requires(authority, "operator"))
    as_viewer, as_operator = auth_responses("viewer"), auth_responses("operator")
    unknown_alert: dict[int | str, dict[str, Any]] = {404: _refusal("No alert with this id")}

    @router.get("", response_model=AlertList, responses=as_viewer)
    def list_alerts(
        wanted: Annotated[EventFilter, Depends(event_filter)],
        page: Annotated[Paging, Depends(paging)],
        status: Literal["open", "acknowledged", "all"] = "open",
        principal: Principal = viewer,
    ) -> AlertList:
        """Alerts, newest raised first, filtered (all filters hold; times are when raised) and paged."""
        wanted = dataclasses.replace(wanted, status=None if status == "all" else status)
        matching = [record for record in alerts.records() if wanted.admits(alert_facts(record))]
        shown = page_of(matching, page.offset, page.limit)
        now_s = time.time()
        return AlertList.model_construct(
            alerts=[alert_view(links, record, now_s) for record in shown.items],
            total=shown.total,
            offset=shown.offset,
            limit=shown.limit,
        )

    @router.get("/stream", response_class=EventSourceResponse, responses=json_refusals(as_viewer))
    async def stream(
        request: Request,
        principal: Principal = viewer,
        last_event_id: Annotated[str | None, Header(max_length=64)] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        with alerts.feed.subscribe(last_event_id, asyncio.get_running_loop()) as subscription:
            stream_clients.inc()
            try:
                if subscription.resync:
                    yield ServerSentEvent(
                        event="resync", data={"reason": "missed changes; reload the alerts"}
                    )
                for missed in subscription.backlog:
                    yield _event(missed)
                yield ServerSentEvent(comment="following", retry=_RETRY_MS)
                while True:
                    try:
                        change = await subscription.next(_STREAM_WAKE_S)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        continue
                    if change is None:
                        return
                    yield _event(change)
            finally:
                stream_clients.dec()

    def _event(change: AlertChange) -> ServerSentEvent:
        data = alert_view(links, change.record).model_dump(mode="json")
        return ServerSentEvent(event=change.kind, id=change.id, data=data)

    @router.get("/{alert_id}", response_model=AlertView, responses={**as_viewer, **unknown_alert})
    def get_alert(alert_id: AlertId, principal: Principal = viewer) -> AlertView:
        return alert_view(links, alerts.get(alert_id))

    @router.post(
        "/{alert_id}/acknowledge",
        response_model=AlertView,
        responses={
            **as_operator,
            **unknown_alert,
            409: {"model": AlreadyAcknowledged, "description": "Acknowledged before: by whom and when"},
            503: _refusal(
                "The alerter did not apply it in time; it stays queued and applies when it is back"
            ),
        },
    )
    async def acknowledge_alert(alert_id: AlertId, principal: Principal = operator) -> AlertView:
        """Acknowledge an alert as the token's user; once (409 names who did it first)."""
        try:
            record = await acknowledge(alerts, send_command, alert_id, principal.name, acknowledge_timeout_s)
        except AcknowledgementPendingError as error:
            raise HTTPException(503, str(error)) from None
        return alert_view(links, record)

    return router
