"""`FrameCache`: the frame index held in the searching process, kept fresh from Milvus lite.

Why: Milvus lite 3.2.2 searches at about 2.5 us a row in Python (bench/search.notes.md), 2.6 s
at 1,000,000 frames; FAISS over the same rows in this process takes milliseconds
(frame_vectors.py). Milvus stays the store of record: the cache only mirrors it, and a search
goes to Milvus whenever the cache is not ready (loading, reloading, over its memory bound).

- Loading: a background thread reads the frame index from Milvus one partition (time slice) at
  a time, newest first; searches go to Milvus until it is done (lite reads ~300 us a row: about
  5 minutes per million frames on a loaded 2-core machine).
- Keeping up: every `refresh_s` the thread reads what the lite owner's change journal gained
  (services/detector/store/change_journal.py: every write by the detector, `vigil index` or
  retention passes through the owner's server and is noted there), folds it into a plan
  (pipelines/frame_cache_plan.py) and applies it: written frames are read back by id, deleted
  ones and dropped slices forgotten. A frame written is searchable here within refresh_s plus
  the read (about 2 s). A journal of another generation (a new owner) means changes may have
  been missed: the cache reloads, and searches go to Milvus meanwhile.
- Bound: past `max_frames` rows the cache frees everything and stays off (a warning says so):
  every search goes to Milvus, as with the cache disabled.

A Milvus server keeps no journal (and its search is compiled code): there the cache is off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from vigil.pipelines.frame_cache_plan import RefreshPlan, plan_refresh
from vigil.services.common.settings import EnvironmentSettings
from vigil.services.detector.store import FrameMatch, HitStore
from vigil.services.detector.store.change_journal import JournalReader
from vigil.services.detector.store.frame_index import DEFAULT_PARTITION
from vigil.services.search.frame_vectors import FrameVectors

logger = logging.getLogger(__name__)

_FETCH_IDS = 1_000  # frame ids read back per query


class FrameCacheSettings(EnvironmentSettings):
    """The searching process's frame index cache (environment: VIGIL_SEARCH_CACHE_<FIELD>)."""

    describes = "the search cache"

    model_config = SettingsConfigDict(env_prefix="VIGIL_SEARCH_CACHE_", extra="forbid", validate_default=True)

    enabled: bool = Field(True, description="hold the frame index in memory for search (Milvus lite only)")
    max_frames: int = Field(
        2_000_000, ge=1, description="past this many frames the cache stays off (about 0.5 GiB a million)"
    )
    refresh_s: float = Field(1.0, gt=0, le=60, description="how often the cache reads the change journal")


class FrameCache:
    """See the module docstring. `search` returns None when the caller must ask Milvus."""

    def __init__(self, store: HitStore, settings: FrameCacheSettings, *, start: bool = True) -> None:
        self.store = store
        self.settings = settings
        self.collection = store.settings.frames_collection
        self.vectors = FrameVectors(store.settings.dim)
        self.ready = False
        self.over_budget = False
        self.load_s: float | None = None
        self._reader = JournalReader(Path(store.settings.uri).expanduser().resolve())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frame-cache", daemon=True)
        if start:
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)  # a daemon: a partition read in flight ends with the process

    def search(
        self,
        vector: np.ndarray,
        top_k: int,
        camera_ids: Sequence[str] | None,
        since_ts_ms: int | None,
        until_ts_ms: int | None,
    ) -> list[FrameMatch] | None:
        if not self.ready:
            return None
        return [
            FrameMatch(m.frame_id, m.camera_id, m.ts_ms, m.thumbnail, m.score)
            for m in self.vectors.search(vector, top_k, camera_ids, since_ts_ms, until_ts_ms)
        ]

    def wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self.ready and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.05)
        return self.ready

    # --- the background thread -----------------------------------------------------------

    def _run(self) -> None:
        last_error = ""
        while not self._stop.is_set() and not self.over_budget:
            try:
                if not self.ready:
                    self._load()
                else:
                    records = self._reader.read()
                    if records is None:
                        logger.warning("search cache: the change journal restarted; reloading")
                        self.ready = False
                        continue
                    self.apply(plan_refresh(records, self.collection))
            except Exception as error:  # the store went away for a moment: Milvus searches meanwhile
                if str(error) != last_error:  # once, not every refresh_s while it lasts
                    logger.warning("search cache: %s; searching Milvus until it is reloaded", error)
                last_error = str(error)
                self.ready = False
            else:
                last_error = ""
            self._stop.wait(self.settings.refresh_s)

    def _load(self) -> None:
        """Read the whole frame index, slice by slice, newest first (journal position first, so
        what is written meanwhile is applied after)."""
        if not self._reader.start():
            raise RuntimeError("no change journal beside the Milvus lite directory (an older owner?)")
        began = time.perf_counter()
        self.vectors = FrameVectors(self.store.settings.dim)
        for partition in sorted(self.store.frame_partitions(), reverse=True):
            if self._stop.is_set():
                return
            for rows in self.store.frame_rows(partition):
                self._add(rows, partition)
                if self.over_budget:
                    return
        self.load_s = time.perf_counter() - began
        self.ready = True
        logger.info("search cache: %d frames loaded in %.1f s", len(self.vectors), self.load_s)

    def _add(self, rows: list[dict[str, Any]], partition: str | Sequence[str]) -> None:
        if not rows:
            return
        if len(self.vectors) + len(rows) > self.settings.max_frames:
            logger.warning(
                "search cache: the frame index holds more than VIGIL_SEARCH_CACHE_MAX_FRAMES=%d frames; "
                "the cache is off and every search goes to Milvus",
                self.settings.max_frames,
            )
            self.over_budget, self.ready = True, False
            self.vectors = FrameVectors(self.store.settings.dim)
            return
        partitions = [partition] * len(rows) if isinstance(partition, str) else list(partition)
        self.vectors.upsert(
            [r["frame_id"] for r in rows],
            [r["camera_id"] for r in rows],
            [int(r["ts_ms"]) for r in rows],
            [r.get("thumbnail") or "" for r in rows],
            partitions,
            np.asarray([r["embedding"] for r in rows], dtype=np.float32),
        )

    def apply(self, plan: RefreshPlan) -> None:
        """Catch up with one refresh's plan (the thread's; public for the bench's timing)."""
        if plan.reload:
            self.ready = False
            return
        for partition in plan.drop_partitions:
            self.vectors.drop_partition(partition)
        self.vectors.forget(sorted(plan.forget))
        ids = list(plan.fetch)
        for first in range(0, len(ids), _FETCH_IDS):
            chunk = ids[first : first + _FETCH_IDS]
            rows = self.store.frames_by_id(chunk)
            self._add(rows, [plan.fetch[r["frame_id"]] or DEFAULT_PARTITION for r in rows])
