"""The alerter's HTTP API (FastAPI, served by uvicorn in the alerter's process).

    GET  /healthz                                   no token
    GET  /api/v1/me                                 viewer: who the token belongs to
    GET  /api/v1/alerts?status=open&camera_id=&query_id=&limit=100        viewer
    GET  /api/v1/alerts/stream                      viewer: Server-Sent Events (below)
    GET  /api/v1/alerts/{alert_id}                  viewer
    POST /api/v1/alerts/{alert_id}/acknowledge      operator: once; 409 names who did it first
    GET  /media/audio/{name}                        signed link or viewer: the spoken alert
    GET  /media/thumbnails/{camera}/{day}/{ts}.jpg  signed link or viewer: the peak frame

Every alert is served as an `AlertView`: the record (the alert message, open/acknowledged by
whom and when, the event's end) plus `thumbnail_url` and `audio_url`, absolute signed links
(services/common/auth.py, `UrlSigner`) that an <img>/<audio> element or a webhook receiver can
fetch without a token until they expire (`link_ttl_s`); they are made fresh on every response.

The stream sends `event: raised | acknowledged | ended`, `data:` an AlertView, `id:` the change
id. A client that reconnects with `Last-Event-ID` (browsers do it by themselves) is sent what it
missed; when that cannot be known (the alerter restarted, or the client was away for more than
`replay_changes` changes) the first event is `resync`: fetch /api/v1/alerts again.

Bad input is a 4xx naming what was wrong: 401 no/unknown token, 403 role too low, 404 unknown
alert or file, 409 already acknowledged, 400 a malformed media name, 403 a bad or expired link,
422 malformed query parameters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict

from vigil.services.alerter.book import AlertRecord, AlertStatus, AlreadyAcknowledgedError, UnknownAlertError
from vigil.services.common.auth import LinkError, Principal, TokenAuthority, UrlSigner
from vigil.services.common.contract import DERIVED_ID_PATTERN, AlertMessage, Identifier
from vigil.services.common.http import RequestLog, authenticate, requires
from vigil.services.detector.store import (
    InvalidThumbnailReferenceError,
    ThumbnailNotFoundError,
    ThumbnailStore,
)

if TYPE_CHECKING:
    from vigil.services.alerter.service import AlerterService

log = logging.getLogger(__name__)

AUDIO_PREFIX = "/media/audio/"
THUMBNAIL_PREFIX = "/media/thumbnails/"
# A stream with nothing to say still wakes up this often, to notice a closed feed.
_STREAM_WAKE_S = 5.0
_RETRY_MS = 2000
# Media files never change under a name (audio is content-addressed, a thumbnail is written once).
_MEDIA_CACHING = {"Cache-Control": "private, max-age=86400"}
AlertId = Annotated[str, Path(min_length=1, max_length=400, pattern=DERIVED_ID_PATTERN)]


class AlertView(BaseModel):
    """An alert as the API serves it: its record (services/alerter/book.py) plus fresh signed
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


class AlertLinks:
    """Absolute, signed links to an alert's thumbnail and audio."""

    def __init__(self, base_url: str, signer: UrlSigner) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer

    def _link(self, path: str, now_s: float) -> str:
        return f"{self.base_url}{quote(path)}?{self.signer.signed_query(path, now_s)}"

    def thumbnail_url(self, reference: str | None, now_s: float) -> str | None:
        return self._link(THUMBNAIL_PREFIX + reference, now_s) if reference else None

    def audio_url(self, name: str | None, now_s: float) -> str | None:
        return self._link(AUDIO_PREFIX + name, now_s) if name else None

    def for_alert(self, alert: AlertMessage, now_s: float) -> dict[str, str | None]:
        return {
            "thumbnail_url": self.thumbnail_url(alert.thumbnail, now_s),
            "audio_url": self.audio_url(alert.audio, now_s),
        }

    def view(self, record: AlertRecord, now_s: float | None = None) -> AlertView:
        now_s = time.time() if now_s is None else now_s
        return AlertView.model_construct(
            **dict(record), alert_id=record.alert_id, **self.for_alert(record.alert, now_s)
        )


def create_alert_api(
    service: AlerterService, authority: TokenAuthority, links: AlertLinks, thumbnails: ThumbnailStore
) -> FastAPI:
    """The ASGI app over a running AlerterService (its book, feed and speech cache)."""
    app = FastAPI(
        title="Vigil alerter",
        summary="Alerts, their live stream, acknowledgements and media",
        docs_url="/docs",
        redoc_url=None,
    )
    viewer = Depends(requires(authority, "viewer"))
    operator = Depends(requires(authority, "operator"))

    @app.exception_handler(UnknownAlertError)
    async def _unknown(request: Request, error: UnknownAlertError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(AlreadyAcknowledgedError)
    async def _already(request: Request, error: AlreadyAcknowledgedError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(error), "acknowledged_by": error.by, "acknowledged_ts_ms": error.ts_ms},
            status_code=409,
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/me")
    def me(principal: Principal = viewer) -> dict[str, str]:
        return {"name": principal.name, "role": principal.role}

    @app.get("/api/v1/alerts", response_model=AlertList)
    def list_alerts(
        status: Literal["open", "acknowledged", "all"] = "open",
        camera_id: Identifier | None = None,
        query_id: Identifier | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        principal: Principal = viewer,
    ) -> AlertList:
        """Alerts, newest raised first."""
        records = service.alert_records(status=status, camera_id=camera_id, query_id=query_id, limit=limit)
        now_s = time.time()
        return AlertList.model_construct(alerts=[links.view(record, now_s) for record in records])

    @app.get("/api/v1/alerts/stream", response_class=EventSourceResponse)
    async def stream(
        request: Request,
        principal: Principal = viewer,
        last_event_id: Annotated[str | None, Header(max_length=64)] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        with service.feed.subscribe(last_event_id, asyncio.get_running_loop()) as subscription:
            if subscription.resync:
                yield ServerSentEvent(event="resync", data={"reason": "missed changes; reload the alerts"})
            for change in subscription.backlog:
                yield _event(change)
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

    def _event(change) -> ServerSentEvent:
        data = links.view(change.record).model_dump(mode="json")
        return ServerSentEvent(event=change.kind, id=change.id, data=data)

    @app.get("/api/v1/alerts/{alert_id}", response_model=AlertView)
    def get_alert(alert_id: AlertId, principal: Principal = viewer) -> AlertView:
        return links.view(service.alert_record(alert_id))

    @app.post("/api/v1/alerts/{alert_id}/acknowledge", response_model=AlertView)
    def acknowledge(alert_id: AlertId, principal: Principal = operator) -> AlertView:
        """Acknowledge an alert as the token's user; once (409 names who did it first)."""
        return links.view(service.acknowledge(alert_id, principal.name))

    def media_access(request: Request) -> None:
        """A genuine, unexpired signed link for this very path, or a viewer's token."""
        query = request.query_params
        if "signature" in query or "expires" in query:
            try:
                expires, signature = query.get("expires"), query.get("signature")
                links.signer.verify(request.url.path, expires, signature, time.time())
            except LinkError as error:
                raise HTTPException(403, str(error)) from None
            return
        principal = authenticate(authority, request)
        if principal is None:
            raise HTTPException(
                401, "this needs a signed link or a bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    @app.get("/media/audio/{name}", dependencies=[Depends(media_access)])
    def audio(name: str) -> FileResponse:
        try:
            path, content_type = service.speech.cached_file(name)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        except FileNotFoundError as error:
            raise HTTPException(404, str(error)) from None
        return FileResponse(path, media_type=content_type, headers=_MEDIA_CACHING)

    @app.get("/media/thumbnails/{reference:path}", dependencies=[Depends(media_access)])
    def thumbnail(reference: str) -> FileResponse:
        try:
            path = thumbnails.path_for(reference)
        except InvalidThumbnailReferenceError as error:
            raise HTTPException(400, str(error)) from None
        except ThumbnailNotFoundError:
            raise HTTPException(404, f"no thumbnail {reference!r}") from None
        return FileResponse(path, media_type="image/jpeg", headers=_MEDIA_CACHING)

    app.add_middleware(RequestLog, logger=log)
    return app
