"""Retrospective search over HTTP (viewer): `GET /api/v1/search` finds the moments that match a
description, `GET /api/v1/frames` lists a camera's indexed frames around a time (the console's
click-through from a result). Thumbnails come as absolute signed links, so an <img> needs no token.

The work is services/search's `FrameSearch`, opened on the first request (`LazyFrameSearch`: the
encoder loads then, so the alerter starts as fast as without search) through the Milvus lite
directory's owner, the detector, or the Milvus server. Refusals: 400 for a search that cannot be
made as asked (since after until, a text with nothing to search for), 422 for malformed
parameters, 503 while the store cannot be reached (no detector has the lite directory open, the
server is down); the next request tries again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Annotated, Literal, Protocol, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from vigil.pipelines.search_results import SearchResult
from vigil.services.common.auth import TokenAuthority
from vigil.services.common.contract import Identifier
from vigil.services.common.http import ErrorDetail, auth_responses, requires
from vigil.services.search import FrameSearch, LazyFrameSearch, SearchUnavailableError, StoreError

log = logging.getLogger(__name__)

# The largest epoch milliseconds the contract takes (services/common/contract.py's check_ts_ms).
MAX_TS_MS = 253_402_300_799_999
T = TypeVar("T")
TsMs = Annotated[int, Query(ge=0, le=MAX_TS_MS, description="Unix milliseconds")]


class ThumbnailLinks(Protocol):
    """What the routes need of services/common/media_links.py's AlertLinks."""

    def thumbnail_url(self, reference: str | None, now_s: float) -> str | None: ...


class SearchResultView(BaseModel):
    """A moment: neighbouring matching frames (and hits) of one camera, collapsed into one
    (pipelines/search_results.py). `ts_ms` is its best frame's time; score is its margin of
    similarity to the text over ordinary scenes (higher is closer)."""

    camera_id: str
    ts_ms: int
    start_ts_ms: int
    end_ts_ms: int
    frames: int
    score: float
    source: Literal["frame", "hit"]
    query_id: str | None
    box: tuple[float, float, float, float] | None
    thumbnail_url: str | None


class SearchResults(BaseModel):
    results: list[SearchResultView]


class MomentFrame(BaseModel):
    camera_id: str
    ts_ms: int
    thumbnail_url: str | None


class MomentFrames(BaseModel):
    frames: list[MomentFrame]


def _refusal(description: str) -> dict:
    return {"model": ErrorDetail, "description": description}


def search_router(search: LazyFrameSearch, authority: TokenAuthority, links: ThumbnailLinks) -> APIRouter:
    """The search routes over `search` (opened on first use), signing thumbnails with `links`."""
    router = APIRouter()
    viewer = Depends(requires(authority, "viewer"))
    responses = {
        **auth_responses("viewer"),
        400: _refusal("A search that cannot be made as asked (the detail says why)"),
        503: _refusal("The store cannot be reached now (no detector has it open, or the server is down)"),
    }

    def run(call: Callable[[FrameSearch], T]) -> T:
        try:
            return call(search.get())
        except SearchUnavailableError as error:
            raise HTTPException(503, str(error)) from None
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        except Exception as error:
            if not _is_store_failure(error):
                raise
            # The owner went away (detector restarted) or the server is down: connect afresh next time.
            log.warning(
                "search: the store failed (%s); reconnecting on the next request", type(error).__name__
            )
            search.reset()
            raise HTTPException(503, f"the store cannot be reached now: {type(error).__name__}") from None

    @router.get("/api/v1/search", response_model=SearchResults, responses=responses)
    def search_moments(
        text: Annotated[
            str, Query(min_length=1, max_length=500, description="What to look for, any language")
        ],
        camera_id: Identifier | None = None,
        since_ts_ms: TsMs | None = None,
        until_ts_ms: TsMs | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        _principal=viewer,
    ) -> SearchResults:
        """The moments that best match `text` in the frame index and the hits, best first."""
        cameras = None if camera_id is None else [camera_id]

        def call(frame_search: FrameSearch) -> list[SearchResult]:
            return frame_search.search(text, cameras, since_ts_ms, until_ts_ms, limit)

        results = run(call)
        now_s = time.time()
        return SearchResults(
            results=[
                SearchResultView(
                    camera_id=r.camera_id,
                    ts_ms=r.ts_ms,
                    start_ts_ms=r.start_ts_ms,
                    end_ts_ms=r.end_ts_ms,
                    frames=r.frames,
                    score=round(r.score, 6),
                    source=r.source,
                    query_id=r.query_id,
                    box=r.box,
                    thumbnail_url=links.thumbnail_url(r.thumbnail, now_s),
                )
                for r in results
            ]
        )

    @router.get("/api/v1/frames", response_model=MomentFrames, responses=responses)
    def moment_frames(
        camera_id: Identifier,
        around_ts_ms: TsMs,
        span_s: Annotated[float, Query(gt=0, le=600, description="Seconds of frames, centred")] = 10.0,
        _principal=viewer,
    ) -> MomentFrames:
        """A camera's indexed frames from span_s/2 before to span_s/2 after `around_ts_ms`, oldest first."""
        frames = run(lambda frame_search: frame_search.moment(camera_id, around_ts_ms, span_s))
        now_s = time.time()
        return MomentFrames(
            frames=[
                MomentFrame(
                    camera_id=f.camera_id,
                    ts_ms=f.ts_ms,
                    thumbnail_url=links.thumbnail_url(f.thumbnail, now_s),
                )
                for f in frames
            ]
        )

    return router


def _is_store_failure(error: Exception) -> bool:
    """Whether `error` is Milvus (or the connection to it) failing, not a bug of ours."""
    if isinstance(error, StoreError):
        return True
    from pymilvus.exceptions import MilvusException

    try:
        import grpc

        return isinstance(error, MilvusException | grpc.RpcError)
    except ImportError:
        return isinstance(error, MilvusException)
