"""The frame index: about one sampled frame per camera per second, for retrospective search.

It is cut into one Milvus partition per time slice of capture time, so that retention frees
memory by dropping old slices whole (services/detector/frame_slices.py says why and how a
frame finds its slice). Rows written before the index was sliced sit in the default partition
and are forgotten row by row.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vigil.services.common.contract import check_id, check_ts_ms
from vigil.services.detector.frame_slices import FrameSlice, slice_for
from vigil.services.detector.store.connection import MAX_QUERY_ROWS, MilvusConnection
from vigil.services.detector.store.filters import MilvusFilter

logger = logging.getLogger(__name__)

# The partition every Milvus collection has: frame rows written before the index was cut into
# time slices (services/detector/frame_slices.py) are there, and are forgotten row by row.
DEFAULT_PARTITION = "_default"
# A frame row's fields as `frame_rows` and `frames_by_id` return them.
ROW_FIELDS = ["frame_id", "camera_id", "ts_ms", "thumbnail", "embedding"]


@dataclass(frozen=True)
class FrameRecord:
    """One sampled frame for retrospective search; thumbnail is a ThumbnailStore reference or ""."""

    camera_id: str
    ts_ms: int
    embedding: Sequence[float] | np.ndarray
    thumbnail: str = ""

    @property
    def frame_id(self) -> str:
        return derive_frame_id(self.camera_id, self.ts_ms)


@dataclass(frozen=True)
class FrameMatch:
    """A frame found by `HitStore.search_frames`; score is the cosine similarity (higher = closer)."""

    frame_id: str
    camera_id: str
    ts_ms: int
    thumbnail: str
    score: float


@dataclass(frozen=True)
class IndexedFrame:
    """A frame of the index as `HitStore.frames_between` lists it."""

    camera_id: str
    ts_ms: int
    thumbnail: str


def derive_frame_id(camera_id: str, ts_ms: int) -> str:
    """The frame's primary key: re-indexing the same frame after a replay overwrites it."""
    return f"{camera_id}:{ts_ms}"


class FrameIndex(MilvusConnection):
    """A mixin of HitStore: the frame index (settings.frames_collection) on its connection."""

    _frames_since_flush: int
    # How long a new frame slice is, in minutes; retention sets it from how long frames are kept.
    frames_slice_minutes: int
    _frame_slices: list[FrameSlice]  # oldest first

    # --- writing -------------------------------------------------------------------------

    def add_frames(self, records: Sequence[FrameRecord]) -> None:
        """Index sampled frames (idempotent by camera and timestamp), each in its time slice.

        Flushed every `frames_flush_rows` rows rather than per call: the frame index is a
        search aid, so losing its last seconds to a power cut is cheaper than an fsync per
        micro-batch. But unflushed rows are searched without the HNSW index (measured on lite:
        10k unflushed 512-d rows, 235 ms a search; flushed, 4 ms), so they must not pile up.
        """
        if not records:
            return
        rows_by_slice: dict[FrameSlice, list[dict[str, Any]]] = {}
        for record in records:
            check_id("camera_id", record.camera_id)
            check_ts_ms("ts_ms", record.ts_ms)
            row = {
                "frame_id": record.frame_id,
                "embedding": self._vector(record.embedding, f"frame {record.frame_id}"),
                "camera_id": record.camera_id,
                "ts_ms": record.ts_ms,
                "thumbnail": record.thumbnail,
            }
            rows_by_slice.setdefault(self._frame_slice_for(record.ts_ms), []).append(row)
        name, timeout = self.settings.frames_collection, self.settings.timeout_s
        for frame_slice, rows in rows_by_slice.items():
            self._client.upsert(name, rows, partition_name=frame_slice.name, timeout=timeout)
            self._frames_since_flush += len(rows)
        if self._frames_since_flush >= self.settings.frames_flush_rows:
            self.flush_frames()

    def _frame_slice_for(self, ts_ms: int) -> FrameSlice:
        """The slice a frame goes to, opening it (a Milvus partition) when it is new."""
        frame_slice = slice_for(ts_ms, self._frame_slices, self.frames_slice_minutes)
        if frame_slice in self._frame_slices:
            return frame_slice
        name, timeout = self.settings.frames_collection, self.settings.timeout_s
        # Another writer may have opened slices since (a detector on the same server, or
        # `vigil index` through lite's owner): follow them. Rare: once per new slice.
        self._frame_slices = self._list_frame_slices()
        frame_slice = slice_for(ts_ms, self._frame_slices, self.frames_slice_minutes)
        if frame_slice in self._frame_slices:
            return frame_slice
        if not self._client.has_partition(name, frame_slice.name, timeout=timeout):
            self._client.create_partition(name, frame_slice.name, timeout=timeout)
            if not self.settings.is_lite:  # a server loads a new partition of a loaded collection
                self._client.load_partitions(name, [frame_slice.name], timeout=timeout)
            logger.info("opened frame index slice %s", frame_slice.name)
        bisect.insort(self._frame_slices, frame_slice)
        return frame_slice

    def _list_frame_slices(self) -> list[FrameSlice]:
        names = self._client.list_partitions(self.settings.frames_collection, timeout=self.settings.timeout_s)
        return sorted(s for s in map(FrameSlice.parse, names) if s is not None)

    def flush_frames(self) -> None:
        """Seal the frame rows written so far into indexed, fsynced segments."""
        self._client.flush(self.settings.frames_collection, timeout=self.settings.timeout_s)
        self._frames_since_flush = 0

    # --- reading -------------------------------------------------------------------------

    def search_frames(
        self,
        query_vectors: Sequence[Sequence[float]] | np.ndarray,
        top_k: int = 10,
        camera_ids: Sequence[str] | None = None,
        since_ts_ms: int | None = None,
        until_ts_ms: int | None = None,
    ) -> list[list[FrameMatch]]:
        """The top_k nearest frames for each query vector, best first, in ONE Milvus call
        (each call costs tens of ms on lite whatever the batch size, so callers should batch).

        camera_ids: only these cameras (None = all); since/until: inclusive capture-time bounds.
        """
        if not 1 <= top_k <= 1024:
            raise ValueError(f"top_k must be from 1 to 1024, got {top_k}")
        vectors = [self._vector(vector, f"query vector {i}") for i, vector in enumerate(query_vectors)]
        if not vectors:
            return []
        condition = (
            MilvusFilter()
            .id_in("camera_id", camera_ids)
            .at_or_after("ts_ms", since_ts_ms, "since_ts_ms")
            .at_or_before("ts_ms", until_ts_ms, "until_ts_ms")
        )
        if camera_ids is not None and not camera_ids:
            return [[] for _ in vectors]
        results = self._client.search(
            self.settings.frames_collection,
            data=vectors,
            anns_field="embedding",
            filter=str(condition),
            partition_names=self._slices_overlapping(since_ts_ms, until_ts_ms),
            limit=top_k,
            output_fields=["camera_id", "ts_ms", "thumbnail"],
            search_params={"metric_type": "COSINE", "params": {"ef": max(self.settings.search_ef, top_k)}},
            timeout=self.settings.timeout_s,
        )
        return [
            [
                FrameMatch(
                    frame_id=match["frame_id"],
                    camera_id=match["entity"]["camera_id"],
                    ts_ms=int(match["entity"]["ts_ms"]),
                    thumbnail=match["entity"]["thumbnail"],
                    score=float(match["distance"]),
                )
                for match in matches
            ]
            for matches in results
        ]

    def frames_between(
        self, camera_id: str, since_ts_ms: int, until_ts_ms: int, limit: int = 1_000
    ) -> list[IndexedFrame]:
        """A camera's indexed frames captured from since to until (inclusive), oldest first; the
        first `limit` of them (Milvus has no ORDER BY: up to 16,384 rows are sorted here)."""
        if not 1 <= limit <= MAX_QUERY_ROWS:
            raise ValueError(f"limit must be from 1 to {MAX_QUERY_ROWS}, got {limit}")
        condition = (
            MilvusFilter()
            .id_is("camera_id", camera_id)
            .at_or_after("ts_ms", since_ts_ms, "since_ts_ms")
            .at_or_before("ts_ms", until_ts_ms, "until_ts_ms")
        )
        rows = self._client.query(
            self.settings.frames_collection,
            filter=str(condition),
            output_fields=["camera_id", "ts_ms", "thumbnail"],
            limit=MAX_QUERY_ROWS,
            timeout=self.settings.timeout_s,
        )
        rows = sorted(rows, key=lambda row: int(row["ts_ms"]))[:limit]
        return [IndexedFrame(row["camera_id"], int(row["ts_ms"]), row["thumbnail"]) for row in rows]

    def frame_partitions(self) -> list[str]:
        """Every partition of the frame index (its slices and the default one), as Milvus lists them."""
        return list(
            self._client.list_partitions(self.settings.frames_collection, timeout=self.settings.timeout_s)
        )

    def frame_rows(self, partition: str) -> Iterator[list[dict[str, Any]]]:
        """A partition's rows with their embeddings, in batches (a search cache's load). Milvus
        lite reads about 300 us a row."""
        name, timeout = self.settings.frames_collection, self.settings.timeout_s
        rows = self._client.query(
            name, filter="", output_fields=ROW_FIELDS, partition_names=[partition], limit=MAX_QUERY_ROWS,
            timeout=timeout,
        )  # fmt: skip
        if len(rows) < MAX_QUERY_ROWS:
            yield rows
            return
        iterator = self._client.query_iterator(  # a slice larger than one query returns
            name, batch_size=MAX_QUERY_ROWS, filter="", output_fields=ROW_FIELDS, partition_names=[partition],
            timeout=timeout,
        )  # fmt: skip
        try:
            while batch := iterator.next():
                yield batch
        finally:
            iterator.close()

    def frames_by_id(self, frame_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The rows, with their embeddings, of those of `frame_ids` that are stored."""
        if not frame_ids:
            return []
        return list(
            self._client.get(
                self.settings.frames_collection, ids=list(frame_ids), output_fields=ROW_FIELDS,
                timeout=self.settings.timeout_s,
            )
        )  # fmt: skip

    def _slices_overlapping(self, since_ts_ms: int | None, until_ts_ms: int | None) -> list[str] | None:
        """The partitions a time-bounded search needs (None: all). Milvus lite's search costs
        time in proportion to every row of the partitions it searches (bench part search), so
        a search over the last hour should not touch last week's slices."""
        if since_ts_ms is None and until_ts_ms is None:
            return None
        low = since_ts_ms if since_ts_ms is not None else 0
        high = until_ts_ms if until_ts_ms is not None else 2**63
        # Another writer may have opened slices since this connection listed them.
        self._frame_slices = self._list_frame_slices()
        names = [s.name for s in self._frame_slices if s.start_ms <= high and s.end_ms > low]
        return [DEFAULT_PARTITION, *names]

    def count_frames(self) -> int:
        return self._count(self.settings.frames_collection)

    # --- forgetting (services/detector/retention.py) -------------------------------------

    def frame_slices(self) -> list[FrameSlice]:
        """The frame index's time slices, oldest first, as Milvus lists them now (with a server,
        another detector may have opened or dropped some)."""
        self._frame_slices = self._list_frame_slices()
        return list(self._frame_slices)

    def drop_frame_slice(self, frame_slice: FrameSlice) -> tuple[int, list[str]]:
        """Forget a whole time slice of the frame index: (its rows, their thumbnails). Its
        memory is freed at once, unlike that of deleted rows (see frame_slices.py)."""
        name, timeout = self.settings.frames_collection, self.settings.timeout_s
        rows, thumbnails = 0, []
        iterator = self._client.query_iterator(
            name,
            batch_size=MAX_QUERY_ROWS,
            filter="",
            output_fields=["thumbnail"],
            partition_names=[frame_slice.name],
            timeout=timeout,
        )
        try:
            while batch := iterator.next():
                rows += len(batch)
                thumbnails += [row["thumbnail"] for row in batch if row.get("thumbnail")]
        finally:
            iterator.close()
        if not self.settings.is_lite:  # a server drops only a released partition
            self._client.release_partitions(name, [frame_slice.name], timeout=timeout)
        self._client.drop_partition(name, frame_slice.name, timeout=timeout)
        self._frame_slices = [s for s in self._frame_slices if s != frame_slice]
        logger.info("dropped frame index slice %s (%d rows)", frame_slice.name, rows)
        return rows, thumbnails

    def forget_unsliced_frames_before(self, before_ms: int, limit: int) -> list[str]:
        """Delete up to `limit` frame index rows captured before `before_ms` that were written
        before the index was sliced (the default partition); their thumbnails."""
        check_ts_ms("before_ms", before_ms)
        return self._forget(
            self.settings.frames_collection,
            "frame_id",
            f"ts_ms < {before_ms}",
            limit,
            partition_names=[DEFAULT_PARTITION],
        )
