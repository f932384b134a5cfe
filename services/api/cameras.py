"""Cameras over HTTP: operators list, add, edit and delete the cameras ingest reads.

    GET    /api/v1/cameras                          viewer: every camera, its live status, a snapshot link
    POST   /api/v1/cameras                          admin: 201 the camera; 409 if the id exists
    GET    /api/v1/cameras/{camera_id}              viewer
    PUT    /api/v1/cameras/{camera_id}              admin: replace its settings; 404 unknown
    DELETE /api/v1/cameras/{camera_id}              admin: 204; ingest stops reading it
    GET    /api/v1/cameras/{camera_id}/snapshot     signed link or viewer: its latest frame (JPEG)

Kafka is the one source of truth: a write goes to the compacted "cameras" topic (key =
camera_id, a tombstone deletes; services/common/kafka/cameras.py) and ingest follows it and
applies the change without a restart. A camera's status is the latest of "camera-status".

Credentials never come back and never reach a log: the URL is always shown masked
(`rtsp://***@host/...`, pipelines/camera_urls.py), a 422 never quotes what was sent (FastAPI's
validation errors carry the input by default: `_UnquotedValidation` strips it), and a URL sent
back still masked (a form filled from the list) keeps the stored credentials. Credentials go in
the URL's user info or in `username` / `password`; a `${NAME}` reference is expanded by ingest
from its environment (the way to keep a password out of Kafka), except Vigil's own `VIGIL_*`
settings, which must not be sendable to a host of the caller's choosing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from kafka import errors as kafka_errors
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, ValidationError

from vigil.pipelines.camera_urls import (
    LIVE_SCHEMES,
    MAX_CAMERA_URL_CHARS,
    camera_url_problem,
    environment_references,
    mask_url,
    unmask_url,
)
from vigil.services.api.camera_directory import CameraDirectory, now_ms
from vigil.services.api.latest_frames import LatestFrames
from vigil.services.common.auth import LinkError, Principal, TokenAuthority, UrlSigner
from vigil.services.common.contract import (
    CameraMessage,
    CameraState,
    CameraStatusMessage,
    Identifier,
)
from vigil.services.common.http import ErrorDetail, auth_responses, presented_token, requires
from vigil.services.common.kafka import BrokerUnavailableError

CameraId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_KAFKA_DOWN = (BrokerUnavailableError, kafka_errors.KafkaError)


class SignedLinks(Protocol):
    """What the router needs of the API's media links (services/common/media_links.py, AlertLinks)."""

    base_url: str
    signer: UrlSigner


class CameraInput(BaseModel):
    """A camera's settings as an admin sends them (PUT: all of them, replacing the stored ones)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = Field(default=None, description="display name; default: the camera id")
    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CAMERA_URL_CHARS)] = Field(
        description="rtsp, rtsps, rtmp(s), http(s), srt, udp or tcp URL, or an absolute file path / "
        "file: URL. Credentials as user info (never shown back), `***` to keep the stored ones, or "
        "`${NAME}` to take them from ingest's environment"
    )
    username: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        default=None, description="instead of user info in the URL"
    )
    password: Annotated[SecretStr, Field(min_length=1, max_length=256)] | None = None
    enabled: bool = True
    fps: Annotated[float, Field(gt=0, le=60)] | None = Field(
        default=None, description="frames per second to publish; default: ingest's"
    )
    transport: Literal["tcp", "udp"] | None = Field(default=None, description="RTSP; default: ingest's")


class NewCamera(CameraInput):
    camera_id: Identifier


class CameraView(BaseModel):
    """A camera as the API serves it: its settings (URL masked), its latest status and a signed
    link to its latest frame."""

    camera_id: str
    name: str
    url: str = Field(description="credentials masked: rtsp://***@host/...")
    enabled: bool
    fps: float | None
    transport: Literal["tcp", "udp"] | None
    status: CameraState | None = Field(description="the latest on camera-status; None: none yet")
    status_reason: str | None
    status_ts_ms: int | None = Field(description="when the camera entered its status")
    snapshot_url: str = Field(description="signed link to the latest frame (404 until there is one)")
    updated_by: str
    updated_ts_ms: int


class CameraList(BaseModel):
    cameras: list[CameraView]


class _UnquotedValidation(APIRoute):
    """422s that name the field and say what is wrong, without echoing the value (`input`), which
    may be a password."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                raise RequestValidationError([_unquoted(item) for item in error.errors()]) from None

        return handle


def _unquoted(item: Any) -> dict:
    return {key: item[key] for key in ("type", "loc", "msg") if key in item}


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": message}])


def _refusal(description: str) -> dict[str, Any]:
    return {"model": ErrorDetail, "description": description}


def snapshot_path(camera_id: str) -> str:
    return f"/api/v1/cameras/{camera_id}/snapshot"


def cameras_router(
    authority: TokenAuthority, directory: CameraDirectory, frames: LatestFrames, links: SignedLinks
) -> APIRouter:
    router = APIRouter(route_class=_UnquotedValidation, tags=["cameras"])
    viewer = Depends(requires(authority, "viewer"))
    admin = Depends(requires(authority, "admin"))
    as_viewer, as_admin = auth_responses("viewer"), auth_responses("admin")
    unknown: dict[int | str, dict[str, Any]] = {404: _refusal("No camera with this id")}
    kafka_down: dict[int | str, dict[str, Any]] = {
        503: _refusal("Kafka is unavailable: nothing was changed, try again")
    }

    def view(camera: CameraMessage, status: CameraStatusMessage | None, now_s: float) -> CameraView:
        path = snapshot_path(camera.camera_id)
        return CameraView(
            camera_id=camera.camera_id,
            name=camera.name,
            url=mask_url(camera.url),
            enabled=camera.enabled,
            fps=camera.fps,
            transport=camera.transport,
            status=status.state if status else None,
            status_reason=status.reason if status else None,
            status_ts_ms=status.since_ts_ms if status else None,
            snapshot_url=f"{links.base_url}{quote(path)}?{links.signer.signed_query(path, now_s)}",
            updated_by=camera.updated_by,
            updated_ts_ms=camera.updated_ts_ms,
        )

    def found(camera_id: str) -> tuple[CameraMessage, CameraStatusMessage | None]:
        entry = directory.camera(camera_id)
        if entry is None:
            raise HTTPException(404, f"no camera {camera_id!r}")
        return entry

    def message(camera_id: str, body: CameraInput, stored: CameraMessage | None, by: str) -> CameraMessage:
        url, problem = unmask_url(body.url, stored.url if stored is not None else None)
        if problem is not None:
            raise _invalid("url", problem)
        url = _with_credentials(url, body)
        vigil_settings = [name for name in environment_references(url) if name.upper().startswith("VIGIL_")]
        if vigil_settings:
            raise _invalid("url", f"${{{vigil_settings[0]}}}: Vigil's own settings cannot be part of a URL")
        problem = camera_url_problem(url)
        if problem is not None:
            raise _invalid("url", problem)
        try:
            return CameraMessage(
                camera_id=camera_id,
                name=body.name or camera_id,
                url=url,
                enabled=body.enabled,
                fps=body.fps,
                transport=body.transport,
                updated_by=by,
                updated_ts_ms=now_ms(),
            )
        except ValidationError as error:  # the input's rules are the message's: a slip of ours
            raise RequestValidationError(
                [{**_unquoted(item), "loc": ("body", *item["loc"])} for item in error.errors()]
            ) from None

    def write(action: Callable[[], None]) -> None:
        try:
            action()
        except _KAFKA_DOWN as error:
            raise HTTPException(
                503, f"Kafka is unavailable, nothing was changed: {type(error).__name__}"
            ) from None

    @router.get("/api/v1/cameras", response_model=CameraList, responses=as_viewer)
    def list_cameras(principal: Principal = viewer) -> CameraList:
        """Every camera, by id, with its latest status and a signed link to its latest frame."""
        now_s = time.time()
        return CameraList(cameras=[view(camera, status, now_s) for camera, status in directory.cameras()])

    @router.post(
        "/api/v1/cameras",
        status_code=201,
        response_model=CameraView,
        responses={**as_admin, 409: _refusal("A camera with this id exists"), **kafka_down},
    )
    def add_camera(body: NewCamera, principal: Principal = admin) -> CameraView:
        """Add a camera: ingest starts reading it within a second or so."""
        with directory.write_lock():
            if directory.camera(body.camera_id) is not None:
                raise HTTPException(
                    409, f"camera {body.camera_id!r} exists: PUT /api/v1/cameras/{body.camera_id}"
                )
            camera = message(body.camera_id, body, None, principal.name)
            write(lambda: directory.put(camera))
        return view(*found(body.camera_id), time.time())

    @router.get("/api/v1/cameras/{camera_id}", response_model=CameraView, responses={**as_viewer, **unknown})
    def get_camera(camera_id: CameraId, principal: Principal = viewer) -> CameraView:
        return view(*found(camera_id), time.time())

    @router.put(
        "/api/v1/cameras/{camera_id}",
        response_model=CameraView,
        responses={**as_admin, **unknown, **kafka_down},
    )
    def edit_camera(camera_id: CameraId, body: CameraInput, principal: Principal = admin) -> CameraView:
        """Replace a camera's settings: ingest restarts its reader on them (a new name alone
        restarts nothing). A URL whose credentials are still `***` keeps the stored ones."""
        with directory.write_lock():
            stored, _ = found(camera_id)
            camera = message(camera_id, body, stored, principal.name)
            write(lambda: directory.put(camera))
        return view(*found(camera_id), time.time())

    @router.delete(
        "/api/v1/cameras/{camera_id}", status_code=204, responses={**as_admin, **unknown, **kafka_down}
    )
    def delete_camera(camera_id: CameraId, principal: Principal = admin) -> Response:
        """Delete a camera: ingest stops reading it, and its status says "camera deleted"."""
        with directory.write_lock():
            found(camera_id)
            write(lambda: directory.delete(camera_id))
        return Response(status_code=204)

    def snapshot_access(request: Request, token: Annotated[str | None, Depends(presented_token)]) -> None:
        """A signed link for this very path (the list's snapshot_url), or a viewer's token."""
        query = request.query_params
        if "signature" in query or "expires" in query:
            try:
                links.signer.verify(
                    request.url.path, query.get("expires"), query.get("signature"), time.time()
                )
            except LinkError as error:
                raise HTTPException(403, str(error)) from None
            return
        if authority.identify(token) is None:
            raise HTTPException(
                401, "this needs a signed link or a bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    @router.get(
        "/api/v1/cameras/{camera_id}/snapshot",
        dependencies=[Depends(snapshot_access)],
        response_class=Response,
        responses={
            200: {
                "description": "The camera's latest frame",
                "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
                "headers": {
                    "X-Frame-Ts-Ms": {
                        "required": True,
                        "description": "its capture time (Unix ms)",
                        "schema": {"type": "string"},
                    },
                    "Cache-Control": {"required": True, "schema": {"type": "string"}},
                },
            },
            401: {
                "model": ErrorDetail,
                "description": "Neither a signed link nor a bearer token, or an unknown token",
                "headers": {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
            },
            403: _refusal("A signed link that is malformed, for another path, or expired"),
            404: _refusal("No camera with this id, or no frame of it yet"),
        },
    )
    def snapshot(
        camera_id: CameraId,
        expires: Annotated[str | None, Query(description="A signed link's expiry (Unix time)")] = None,
        signature: Annotated[str | None, Query(description="A signed link's HMAC")] = None,
    ) -> Response:
        found(camera_id)
        latest = frames.latest(camera_id)
        if latest is None:
            raise HTTPException(404, f"no frame of camera {camera_id!r} yet")
        headers = {"X-Frame-Ts-Ms": str(latest.ts_ms), "Cache-Control": "no-cache"}
        return Response(latest.jpeg, media_type="image/jpeg", headers=headers)

    return router


def _with_credentials(url: str, body: CameraInput) -> str:
    """`url` with `username` / `password` put in as its user info (percent-encoded)."""
    if body.username is None and body.password is None:
        return url
    parts = urlsplit(url)
    field = "username" if body.username is not None else "password"
    if parts.scheme.lower() not in LIVE_SCHEMES:
        raise _invalid(field, "credentials need a network URL (rtsp://host/...), not a file")
    if "@" in parts.netloc:
        raise _invalid(field, "give credentials in the URL or as username/password, not both")
    if body.username is None:
        raise _invalid("username", "a password needs a username")
    userinfo = quote(body.username, safe="")
    if body.password is not None:
        userinfo += ":" + quote(body.password.get_secret_value(), safe="")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))
