"""`FrameSearch`: find a described moment in what the detector stored.

A text in any language the encoder reads ("a cat", "một con mèo") is embedded as the detector
embeds a standing query's text (pipelines/prompts.py: its prompt ensemble in its detected
language, averaged), less its language's background prompts (`text_vector` says why), by the
encoder the detector picks (`detector.encoder`, "auto": CLIP when an
export of real weights is present, else the offline encoder; models/registry.py), so it lands
in the space of the stored frames. It is searched in Milvus over the frame index (whole-frame
embeddings, about one a second per camera) and the hits (the detector's events, with the box of
their region), within the camera and time filters, and the matches are collapsed into moments
(pipelines/search_results.py: near-duplicate neighbouring frames are one result).
The frame index is searched in this process's cache of it when that is loaded (frame_cache.py:
FAISS, milliseconds where Milvus lite takes seconds at a million frames), else in Milvus.

`moment` lists a camera's indexed frames around a time (the console's click-through).

The store is opened as the process allows: the CLI may own a Milvus lite directory that no one
has open; the alerter only ever connects to the directory's owner (the detector), so it never
takes the directory from it (services/detector/store/lite_sharing.py). `LazyFrameSearch` loads
the encoder and connects on the first search, so the alerter starts as fast as before, and
tries again on the next search after a failure (SearchUnavailableError: the API's 503).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vigil.errors import VigilError
from vigil.models.encoder import Encoder
from vigil.models.registry import EncoderSettings, create_encoder, resolve_kind
from vigil.pipelines.prompts import embed_queries
from vigil.pipelines.search_results import SearchMatch, SearchResult, collapse_neighbours
from vigil.services.detector.config import load_detector_config
from vigil.services.detector.store import HitStore, IndexedFrame, StoreError, StoreSettings
from vigil.services.search.frame_cache import FrameCache, FrameCacheSettings

logger = logging.getLogger(__name__)

# Candidates fetched per result wanted, before collapsing: a moment of ten seconds is about ten
# indexed frames, all near the top of a search for what is in it.
CANDIDATES_PER_RESULT = 10
MAX_CANDIDATES = 1024  # Milvus' top_k limit here (FrameIndex.search_frames)
MAX_SPAN_S = 600
# Prompts kept embedded (about 1.5 KiB each at 384-d): the background prompts and recent texts'.
PROMPT_CACHE_LIMIT = 5_000


class SearchUnavailableError(VigilError):
    """The encoder or the store cannot be reached now; the message says why."""


class SearchSettings(BaseModel):
    """What search runs on: the detector's store (VIGIL_MILVUS_*), its encoder choice, and the
    frame index cache (VIGIL_SEARCH_CACHE_*, frame_cache.py)."""

    model_config = ConfigDict(frozen=True)

    store: StoreSettings
    encoder: EncoderSettings
    cache: FrameCacheSettings = Field(default_factory=FrameCacheSettings)

    @classmethod
    def load(cls, path: Path | None = None) -> Self:
        """From the config file at `path` (its `detector:` section names the encoder) and the
        environment, as the detector reads them."""
        return cls(
            store=StoreSettings.load(path),
            encoder=load_detector_config(path).encoder,
            cache=FrameCacheSettings.load(path),
        )


class FrameSearch:
    """Search over an open store with the encoder that filled it; see the module docstring."""

    def __init__(self, store: HitStore, encoder: Encoder, cache: FrameCache | None = None) -> None:
        if store.settings.dim != encoder.info.dim:
            raise StoreError(
                f"the store holds {store.settings.dim}-d embeddings but the encoder "
                f"{encoder.info.name} makes {encoder.info.dim}-d ones"
            )
        self.store = store
        self.encoder = encoder
        # The frame index in memory (Milvus lite only); None, or not yet loaded: Milvus searches.
        self.cache = cache
        # prompt -> embedding: the background prompts are embedded once, not on every search.
        self._prompt_cache: dict[str, np.ndarray] = {}

    @classmethod
    def open(
        cls,
        settings: SearchSettings,
        *,
        may_own_lite: bool = True,
        encoder: Encoder | None = None,
        with_cache: bool = False,
    ) -> Self:
        """Load the encoder (unless given) and open the store (Milvus lite: as its owner, or
        through the owner); `with_cache` (a process that searches for long, the API's) also
        starts loading the frame index cache when the settings have it on. A one-shot search
        (`vigil search`) would only pay the cache's load and search Milvus meanwhile."""
        if encoder is None:
            encoder = create_encoder(settings.encoder)
            logger.info("search encoder: %s", resolve_kind(settings.encoder)[1])
        store_settings = settings.store.model_copy(update={"dim": encoder.info.dim})
        store = HitStore(store_settings, may_own_lite=may_own_lite)
        cached = with_cache and settings.cache.enabled and store.settings.is_lite
        cache = FrameCache(store, settings.cache) if cached else None
        return cls(store, encoder, cache)

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def text_vector(self, text: str) -> tuple[np.ndarray, float]:
        """The direction searched for `text`, and the scale that turns a cosine with it into the
        score: its prompt ensemble in its language (as the detector embeds a standing query)
        less the mean of that language's background prompts ("an empty corridor", ...).

        A frame's score is then its cosine with the text less its mean cosine with ordinary
        scenes: the detector judges a query on its margin over the background too, because the
        raw cosine also rewards what every frame of a camera shares with any text (measured on
        the offline encoder: "một chiếc xe máy" ranked a cat's frames above the motorcycle's by
        raw cosine, and below by margin). A mean, not the detector's max over the background,
        so that the margin is one linear direction that Milvus' vector index can search.
        """
        if len(self._prompt_cache) > PROMPT_CACHE_LIMIT:
            self._prompt_cache.clear()  # the searched texts' prompts pile up; the background is re-made once
        (vectors,) = embed_queries(self.encoder, [text], negatives=False, prompt_cache=self._prompt_cache)
        direction = vectors.text - vectors.background.mean(axis=0)
        scale = float(np.linalg.norm(direction))
        if not scale > 1e-6:
            raise ValueError(f"the text {text!r} embeds as the background does: describe what to find")
        return (direction / scale).astype(np.float32), scale

    def search(
        self,
        text: str,
        camera_ids: Sequence[str] | None = None,
        since_ts_ms: int | None = None,
        until_ts_ms: int | None = None,
        limit: int = 20,
    ) -> list[SearchResult]:
        """The `limit` moments that best match `text`, best first (ValueError for bad input)."""
        if not 1 <= limit <= 100:
            raise ValueError(f"limit must be from 1 to 100, got {limit}")
        if since_ts_ms is not None and until_ts_ms is not None and since_ts_ms > until_ts_ms:
            raise ValueError(f"since_ts_ms ({since_ts_ms}) is after until_ts_ms ({until_ts_ms})")
        vector, scale = self.text_vector(text)
        top_k = min(MAX_CANDIDATES, limit * CANDIDATES_PER_RESULT)
        frames = (
            self.cache.search(vector, top_k, camera_ids, since_ts_ms, until_ts_ms) if self.cache else None
        )
        if frames is None:
            (frames,) = self.store.search_frames(
                vector[np.newaxis], top_k, camera_ids, since_ts_ms, until_ts_ms
            )
        hits = self.store.search_hits(
            vector, min(MAX_CANDIDATES, limit * 2), camera_ids, since_ts_ms, until_ts_ms
        )
        matches = [
            SearchMatch(f.camera_id, f.ts_ms, f.score * scale, "frame", thumbnail=f.thumbnail or None)
            for f in frames
        ] + [
            SearchMatch(
                h.hit.camera_id,
                h.hit.peak_ts_ms,
                h.score * scale,
                "hit",
                start_ts_ms=h.hit.event_start_ts_ms,
                end_ts_ms=h.hit.end_ts_ms,
                query_id=h.hit.query_id,
                box=h.hit.box,
                thumbnail=h.hit.thumbnail,
            )
            for h in hits
        ]
        return collapse_neighbours(matches, limit)

    def moment(self, camera_id: str, around_ts_ms: int, span_s: float = 10.0) -> list[IndexedFrame]:
        """The camera's indexed frames from span_s/2 before to span_s/2 after `around_ts_ms`."""
        if not 0 < span_s <= MAX_SPAN_S:
            raise ValueError(f"span_s must be more than 0 and at most {MAX_SPAN_S}, got {span_s}")
        half_ms = round(span_s * 500)
        return self.store.frames_between(camera_id, max(0, around_ts_ms - half_ms), around_ts_ms + half_ms)


class LazyFrameSearch:
    """A FrameSearch opened on first use and kept; opened again after it failed (the alerter's)."""

    def __init__(self, settings: SearchSettings, *, may_own_lite: bool = False) -> None:
        self.settings = settings
        self.may_own_lite = may_own_lite
        self._search: FrameSearch | None = None
        self._encoder: Encoder | None = None  # kept when the store goes: it is the slow part
        self._lock = threading.Lock()

    def get(self) -> FrameSearch:
        """The open FrameSearch; SearchUnavailableError when the encoder or store cannot be had."""
        with self._lock:
            if self._search is None:
                try:
                    if self._encoder is None:
                        self._encoder = create_encoder(self.settings.encoder)
                        logger.info("search encoder: %s", resolve_kind(self.settings.encoder)[1])
                    self._search = FrameSearch.open(
                        self.settings, may_own_lite=self.may_own_lite, encoder=self._encoder, with_cache=True
                    )
                except (VigilError, OSError) as error:
                    raise SearchUnavailableError(f"search is unavailable: {error}") from None
                except Exception as error:  # pymilvus' connection errors: the store is not there
                    raise SearchUnavailableError(
                        "search is unavailable: cannot reach the store "
                        f"{self.settings.store.uri_for_logs()}: {type(error).__name__}"
                    ) from None
            return self._search

    def reset(self) -> None:
        """Forget the open FrameSearch (its store went away): the next `get` opens a new one."""
        with self._lock:
            search, self._search = self._search, None
        if search is not None:
            try:
                search.close()
            except Exception:  # the connection is already broken; nothing more to release
                logger.debug("closing a broken search store", exc_info=True)

    def close(self) -> None:
        self.reset()
