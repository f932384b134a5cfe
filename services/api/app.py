"""The API's app (FastAPI, served by uvicorn in the API service's process; services/api/service.py).

    GET  /healthz             no token: {"status": "ok" | "degraded", "kafka": ...}; 200 either way
    GET  /readyz              no token: 200 once the mirror of the alert book has loaded, else 503
    GET  /api/v1/me           viewer: who the token belongs to
    /api/v1/alerts...         the alerts, their stream and acknowledgements (alerts.py)
    /media/...                an alert's audio and thumbnail (media.py)
    /api/v1/users, /tokens    admin: users and tokens (users.py)
    /api/v1/queries...        standing queries and their history (queries.py)
    /api/v1/hits              the hits read (hits.py)
    /api/v1/cameras...        cameras and their snapshots (cameras.py)
    /api/v1/search            retrospective search (search.py)
    /console/                 the operators' console (console.py)

Bad input is a 4xx naming what was wrong: 401 no/unknown token, 403 role too low, 404 unknown
alert or file, 409 already acknowledged, 422 malformed parameters. The OpenAPI document
(/openapi.json) lists every one of these per route, with their bodies and headers, and the
security schemes: a bearer token in the Authorization header or `?access_token=`, and for media
also a signed link. tests/alerter/test_api_conformance.py holds the running API to it with
schemathesis. Every request is logged (services/common/http.py, RequestLog), never its token.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from vigil.pipelines.alert_book import AlreadyAcknowledgedError, UnknownAlertError
from vigil.services.api.alerts import alerts_router
from vigil.services.api.cameras import cameras_router
from vigil.services.api.console import console_router
from vigil.services.api.hits import hits_router
from vigil.services.api.media import media_router
from vigil.services.api.queries import queries_router
from vigil.services.api.search import search_router
from vigil.services.api.users import users_router
from vigil.services.common.auth import Principal, Role
from vigil.services.common.http import RequestLog, auth_responses, requires

if TYPE_CHECKING:
    from vigil.services.api.service import ApiService

log = logging.getLogger(__name__)


class Me(BaseModel):
    """Who the token belongs to."""

    name: str
    role: Role


def create_api_app(service: ApiService) -> FastAPI:
    """The ASGI app over a running ApiService (its mirror of the book, followers and stores)."""

    authority = service.authority
    app = FastAPI(
        title="Vigil API",
        summary="Alerts, their live stream, acknowledgements and media; queries, hits, cameras, users",
        docs_url="/docs",
        redoc_url=None,
    )
    viewer = Depends(requires(authority, "viewer"))

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
        # 200 either way: the API lives on through a Kafka outage (the mirror, the stream and the
        # media still answer), so a liveness probe must not restart it for one.
        kafka = service.broker_monitor.health()
        return {"status": "ok" if kafka["kafka"] == "up" else "degraded", **kafka}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        # Not ready until the mirror of the alert book has read "alert-state" to its end: before,
        # the alert list would be incomplete and an acknowledgement answered 404.
        if not service.alerts.loaded.is_set():
            return JSONResponse({"status": "loading", "detail": "reading the alert book"}, status_code=503)
        return JSONResponse({"status": "ready", "alerts": len(service.alerts)})

    @app.get("/api/v1/me", response_model=Me, responses=auth_responses("viewer"))
    def me(principal: Principal = viewer) -> Me:
        return Me(name=principal.name, role=principal.role)

    links = service.links
    app.include_router(
        alerts_router(
            authority,
            service.alerts,
            links,
            service.send_command,
            service.config.acknowledge_timeout_s,
            service.metrics.stream_clients,
        )
    )
    app.include_router(media_router(authority, links, service.thumbnails, service.config.audio_dir))
    app.include_router(users_router(authority, service.identities))
    app.include_router(queries_router(authority, service.query_catalog))
    app.include_router(hits_router(authority, service.seen_hits, links.thumbnail_url))
    app.include_router(console_router())
    app.include_router(cameras_router(authority, service.camera_directory, service.latest_frames, links))
    app.include_router(search_router(service.search, authority, links))
    app.add_middleware(RequestLog, logger=log)
    return app
