"""The alerter's HTTP API (FastAPI, served by uvicorn in the alerter's process).

    GET  /healthz                                   no token: {"status": "ok" | "degraded", "kafka": ...}
    GET  /api/v1/me                                 viewer: who the token belongs to
    GET  /api/v1/alerts?status=open&camera_id=&query_id=&severity=&since_ts_ms=&until_ts_ms=
                       &offset=0&limit=100          viewer: {"alerts", "total", "offset", "limit"}
    GET  /api/v1/alerts/stream                      viewer: Server-Sent Events (below)
    GET  /api/v1/alerts/{alert_id}                  viewer
    POST /api/v1/alerts/{alert_id}/acknowledge      operator: once; 409 names who did it first
    GET  /media/audio/{name}                        signed link or viewer: the spoken alert
    GET  /media/thumbnails/{camera}/{day}/{ts}.jpg  signed link or viewer: the peak frame
    /api/v1/users, /api/v1/tokens                  admin: users and tokens (services/api/users.py)

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
422 malformed query parameters. Media honours `Range` (as <audio> elements send it): 206 with the
bytes, 416 for a range past the end, 400 (plain text) for a malformed one.

The OpenAPI document (/openapi.json) lists every one of these per route, with their bodies
(`ErrorDetail`, `AlreadyAcknowledged`, FastAPI's validation error) and headers, and the security
schemes: a bearer token in the Authorization header or `?access_token=`, and for media also a
signed link (`signedLink`: `?expires=..&signature=..`). tests/alerter/test_api_conformance.py
holds the running API to it with schemathesis.

The routes of services/api/ are included here: standing queries and their history (queries.py),
hits (hits.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import APIKeyQuery
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict

from vigil.pipelines.alert_book import AlertRecord, AlertStatus, AlreadyAcknowledgedError, UnknownAlertError
from vigil.pipelines.event_listing import EventFacts, EventFilter, page_of
from vigil.services.alerter.speech import CONTENT_TYPES
from vigil.services.api.cameras import cameras_router
from vigil.services.api.console import console_router
from vigil.services.api.event_lists import Paging, event_filter, paging
from vigil.services.api.hits import hits_router
from vigil.services.api.queries import queries_router
from vigil.services.api.search import search_router
from vigil.services.api.users import users_router
from vigil.services.common.auth import LinkError, Principal, Role, TokenAuthority, UrlSigner
from vigil.services.common.contract import DERIVED_ID_PATTERN, AlertMessage
from vigil.services.common.http import (
    WWW_AUTHENTICATE,
    ErrorDetail,
    RequestLog,
    auth_responses,
    json_refusals,
    presented_token,
    requires,
)
from vigil.services.common.thumbnail_store import (
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
# The third way into media, besides a token: the signed link of an alert's thumbnail_url/audio_url
# (documentation only, auto_error=False: `media_access` checks it).
SIGNED_LINK = APIKeyQuery(
    name="signature",
    scheme_name="signedLink",
    description="A signed link, `?expires=<unix time>&signature=<hmac>`, as in an alert's thumbnail_url "
    "and audio_url: valid for that path only, until it expires (services/common/auth.py, UrlSigner).",
    auto_error=False,
)
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_PLAIN_TEXT = {"text/plain": {"schema": {"type": "string"}}}


class Me(BaseModel):
    """Who the token belongs to."""

    name: str
    role: Role


class AlreadyAcknowledged(ErrorDetail):
    """409: the alert was acknowledged before, by whom and when."""

    acknowledged_by: str
    acknowledged_ts_ms: int


def _refusal(description: str) -> dict:
    return {"model": ErrorDetail, "description": description}


def _media_responses(what: str, media_types: list[str]) -> dict[int | str, dict]:
    """What a media route answers: the file (whole or a range), or a refusal."""
    content = {media_type: _BINARY for media_type in media_types}
    return {
        200: {
            "description": what,
            "content": content,
            "headers": {
                "Cache-Control": {"required": True, "schema": {"type": "string"}},
                "Accept-Ranges": {"required": True, "schema": {"type": "string", "enum": ["bytes"]}},
            },
        },
        206: {
            "description": "The bytes of a `Range` request (several ranges: multipart/byteranges)",
            "content": {**content, "multipart/byteranges": _BINARY},
        },
        400: {
            "model": ErrorDetail,
            "description": "A malformed file name (JSON), or a malformed `Range` header (plain text)",
            "content": _PLAIN_TEXT,
        },
        401: {
            "model": ErrorDetail,
            "description": "Neither a signed link nor a bearer token, or an unknown token",
            "headers": WWW_AUTHENTICATE,
        },
        403: _refusal("A signed link that is malformed, for another path, or expired"),
        404: _refusal("No such file"),
        416: {
            "description": "A `Range` that starts past the end of the file",
            "content": _PLAIN_TEXT,
            "headers": {"Content-Range": {"required": True, "schema": {"type": "string"}}},
        },
    }


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

    def view(self, record: AlertRecord[AlertMessage], now_s: float | None = None) -> AlertView:
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
    as_viewer, as_operator = auth_responses("viewer"), auth_responses("operator")
    unknown_alert = {404: _refusal("No alert with this id")}

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
    def healthz() -> dict[str, object]:
        # 200 either way: the alerter lives on through a Kafka outage (the book, the stream and
        # acknowledgements still answer), so a liveness probe must not restart it for one.
        kafka = service.broker_monitor.health()
        return {"status": "ok" if kafka["kafka"] == "up" else "degraded", **kafka}

    @app.get("/api/v1/me", response_model=Me, responses=as_viewer)
    def me(principal: Principal = viewer) -> Me:
        return Me(name=principal.name, role=principal.role)

    @app.get("/api/v1/alerts", response_model=AlertList, responses=as_viewer)
    def list_alerts(
        wanted: Annotated[EventFilter, Depends(event_filter)],
        page: Annotated[Paging, Depends(paging)],
        status: Literal["open", "acknowledged", "all"] = "open",
        principal: Principal = viewer,
    ) -> AlertList:
        """Alerts, newest raised first, filtered (all filters hold; times are when raised) and paged."""
        wanted = dataclasses.replace(wanted, status=None if status == "all" else status)
        matching = [record for record in service.alert_records() if wanted.admits(alert_facts(record))]
        shown = page_of(matching, page.offset, page.limit)
        now_s = time.time()
        return AlertList.model_construct(
            alerts=[links.view(record, now_s) for record in shown.items],
            total=shown.total,
            offset=shown.offset,
            limit=shown.limit,
        )

    @app.get("/api/v1/alerts/stream", response_class=EventSourceResponse, responses=json_refusals(as_viewer))
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

    @app.get("/api/v1/alerts/{alert_id}", response_model=AlertView, responses={**as_viewer, **unknown_alert})
    def get_alert(alert_id: AlertId, principal: Principal = viewer) -> AlertView:
        return links.view(service.alert_record(alert_id))

    @app.post(
        "/api/v1/alerts/{alert_id}/acknowledge",
        response_model=AlertView,
        responses={
            **as_operator,
            **unknown_alert,
            409: {"model": AlreadyAcknowledged, "description": "Acknowledged before: by whom and when"},
        },
    )
    def acknowledge(alert_id: AlertId, principal: Principal = operator) -> AlertView:
        """Acknowledge an alert as the token's user; once (409 names who did it first)."""
        return links.view(service.acknowledge(alert_id, principal.name))

    def media_access(
        request: Request,
        token: Annotated[str | None, Depends(presented_token)],
        _signature: Annotated[str | None, Depends(SIGNED_LINK)],
        expires: Annotated[str | None, Query(description="A signed link's expiry (Unix time)")] = None,
        byte_range: Annotated[
            str | None, Header(alias="range", description="Only these bytes of the file (RFC 9110)")
        ] = None,
    ) -> None:
        """A genuine, unexpired signed link for this very path, or a viewer's token. (`expires`
        and `range` are declared for the OpenAPI document; FileResponse serves a range.)"""
        query = request.query_params
        if "signature" in query or "expires" in query:
            try:
                expires, signature = query.get("expires"), query.get("signature")
                links.signer.verify(request.url.path, expires, signature, time.time())
            except LinkError as error:
                raise HTTPException(403, str(error)) from None
            return
        principal = authority.identify(token)
        if principal is None:
            raise HTTPException(
                401, "this needs a signed link or a bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    @app.get(
        "/media/audio/{name}",
        dependencies=[Depends(media_access)],
        response_class=FileResponse,
        responses=_media_responses("The spoken alert", sorted(set(CONTENT_TYPES.values()))),
    )
    def audio(
        name: Annotated[str, Path(description="An alert's `audio`: <engine>-<sha256>.wav or .mp3")],
    ) -> FileResponse:
        try:
            path, content_type = service.speech.cached_file(name)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        except FileNotFoundError as error:
            raise HTTPException(404, str(error)) from None
        return FileResponse(path, media_type=content_type, headers=_MEDIA_CACHING)

    @app.get(
        "/media/thumbnails/{reference:path}",
        dependencies=[Depends(media_access)],
        response_class=FileResponse,
        responses=_media_responses("The peak frame", ["image/jpeg"]),
    )
    def thumbnail(
        reference: Annotated[
            str, Path(description="An alert's `thumbnail`: <camera_id>/<yyyy-mm-dd>/<ts_ms>.jpg")
        ],
    ) -> FileResponse:
        try:
            path = thumbnails.path_for(reference)
        except InvalidThumbnailReferenceError as error:
            raise HTTPException(400, str(error)) from None
        except ThumbnailNotFoundError:
            raise HTTPException(404, f"no thumbnail {reference!r}") from None
        return FileResponse(path, media_type="image/jpeg", headers=_MEDIA_CACHING)

    app.include_router(users_router(authority, service.identities))
    app.include_router(queries_router(authority, service.query_catalog))
    app.include_router(hits_router(authority, service.seen_hits, links.thumbnail_url))
    app.include_router(console_router())
    app.include_router(cameras_router(authority, service.camera_directory, service.latest_frames, links))
    app.include_router(search_router(service.search, authority, links))
    app.add_middleware(RequestLog, logger=log)
    return app
