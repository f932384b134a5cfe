"""An alert's media over HTTP: its spoken audio and its peak frame.

    GET  /media/audio/{name}                        signed link or viewer: the spoken alert
    GET  /media/thumbnails/{camera}/{day}/{ts}.jpg  signed link or viewer: the peak frame

The audio is the alerter's speech cache (`api: audio_dir`, the same folder as `alerter: speech:
cache_dir`), served by file name alone (services/common/speech_files.py); the thumbnails are the
detector's (services/common/thumbnail_store.py). Either is reached with a viewer's token or with
the signed link of an alert's `thumbnail_url` / `audio_url` (services/common/media_links.py).

Bad input is a 4xx naming what was wrong: 400 a malformed name, 401 neither link nor token, 403 a
bad or expired link, 404 no such file. Media honours `Range` (as <audio> elements send it): 206
with the bytes, 416 for a range past the end, 400 (plain text) for a malformed one.
"""

from __future__ import annotations

import time
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse
from fastapi.security import APIKeyQuery

from vigil.services.common.auth import LinkError, TokenAuthority
from vigil.services.common.http import WWW_AUTHENTICATE, ErrorDetail, presented_token
from vigil.services.common.media_links import AlertLinks
from vigil.services.common.speech_files import SPEECH_CONTENT_TYPES, cached_speech_file
from vigil.services.common.thumbnail_store import (
    InvalidThumbnailReferenceError,
    ThumbnailNotFoundError,
    ThumbnailStore,
)

# Media files never change under a name (audio is content-addressed, a thumbnail is written once).
_MEDIA_CACHING = {"Cache-Control": "private, max-age=86400"}
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


def media_router(
    authority: TokenAuthority, links: AlertLinks, thumbnails: ThumbnailStore, audio_dir: FilePath
) -> APIRouter:
    """The routes of the module docstring."""
    router = APIRouter(tags=["media"])

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

    @router.get(
        "/media/audio/{name}",
        dependencies=[Depends(media_access)],
        response_class=FileResponse,
        responses=_media_responses("The spoken alert", sorted(set(SPEECH_CONTENT_TYPES.values()))),
    )
    def audio(
        name: Annotated[str, Path(description="An alert's `audio`: <engine>-<sha256>.wav or .mp3")],
    ) -> FileResponse:
        try:
            path, content_type = cached_speech_file(audio_dir, name)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        except FileNotFoundError as error:
            raise HTTPException(404, str(error)) from None
        return FileResponse(path, media_type=content_type, headers=_MEDIA_CACHING)

    @router.get(
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

    return router
