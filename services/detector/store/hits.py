"""The hits collection: one row per detected event, written durably, listed newest first and
forgotten by age (services/detector/retention.py).

Durability: `HitStore.upsert_hits` returns only once the rows would survive a crash, because
the detector commits its Kafka offsets right after it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vigil.services.common.contract import Box, HitMessage, check_ts_ms, derive_hit_id
from vigil.services.common.thumbnail_store import REFERENCE_RE, InvalidThumbnailReferenceError
from vigil.services.detector.store.connection import MAX_QUERY_ROWS, MilvusConnection
from vigil.services.detector.store.filters import MilvusFilter
from vigil.services.detector.store.schema import BOX_FIELD

# end_ts_ms of an event that is still on: Milvus INT64 fields are not nullable here.
OPEN_EVENT_END = -1


@dataclass(frozen=True)
class HitRecord:
    """A hit as the detector stores it: the contract's message and the peak frame's embedding."""

    hit: HitMessage  # hit.box, the peak region, is stored with it (None = the whole frame)
    embedding: Sequence[float] | np.ndarray


@dataclass(frozen=True)
class HitMatch:
    """A hit found by `HitStore.search_hits`; score is the cosine similarity of the search vector
    to the hit's peak embedding (higher = closer), not the detector's peak score."""

    hit: HitMessage
    score: float


_HIT_FIELDS = [
    "hit_id",
    "camera_id",
    "query_id",
    "event_start_ts_ms",
    "peak_ts_ms",
    "end_ts_ms",
    "score",
    "thumbnail",
    "encoder",
    BOX_FIELD,
]


class HitsCollection(MilvusConnection):
    """A mixin of HitStore: the hits collection (settings.hits_collection) on its connection."""

    # --- writing -------------------------------------------------------------------------

    @staticmethod
    def _box_row(hit: HitMessage) -> list[float] | None:
        """hit.box as stored: FLOAT (32-bit) fractions, or None (NULL) for the whole frame."""
        if hit.box is None:
            return None
        stored = np.asarray(hit.box, dtype=np.float32)
        x0, y0, x1, y1 = stored.tolist()
        if not (x0 < x1 and y0 < y1):
            # Only a box narrower than ~1e-7 of the frame collapses at 32 bits: no pixel is.
            raise ValueError(
                f"hit {hit.hit_id}: box {list(hit.box)} collapses to {stored.tolist()} at FLOAT precision"
            )
        return stored.tolist()

    def upsert_hits(self, records: Sequence[HitRecord]) -> None:
        """Write hits; the same hit id overwrites, so replays do not duplicate. Durable on return."""
        if not records:
            return
        rows = []
        for record in records:
            hit = record.hit
            expected_id = derive_hit_id(hit.camera_id, hit.query_id, hit.event_start_ts_ms)
            if hit.hit_id != expected_id:
                # A hit id not derived from its parts would defeat idempotent replays.
                raise ValueError(f"hit_id {hit.hit_id!r} is not derive_hit_id(...) = {expected_id!r}")
            rows.append(
                {
                    "hit_id": hit.hit_id,
                    "embedding": self._vector(record.embedding, f"hit {hit.hit_id}"),
                    "camera_id": hit.camera_id,
                    "query_id": hit.query_id,
                    "event_start_ts_ms": hit.event_start_ts_ms,
                    "peak_ts_ms": hit.peak_ts_ms,
                    "end_ts_ms": OPEN_EVENT_END if hit.end_ts_ms is None else hit.end_ts_ms,
                    "score": hit.peak_score,
                    "thumbnail": hit.thumbnail,
                    "encoder": hit.encoder,
                    BOX_FIELD: self._box_row(hit),
                }
            )
        name = self.settings.hits_collection
        self._client.upsert(name, rows, timeout=self.settings.timeout_s)
        if self.settings.is_lite:
            # Lite's write-ahead log reaches the OS on upsert (survives a process crash) but is
            # fsynced only at flush; flushing (~10 ms) makes the hit survive a power loss too,
            # before the detector commits the Kafka offsets that would let it be forgotten. A
            # server acknowledges an upsert once it is in its own log, and rate-limits flush.
            self._client.flush(name, timeout=self.settings.timeout_s)

    # --- reading -------------------------------------------------------------------------

    def hits(
        self,
        camera_id: str | None = None,
        query_id: str | None = None,
        since_ts_ms: int | None = None,
        limit: int = 100,
    ) -> list[HitMessage]:
        """Stored hits, newest peak first; since_ts_ms bounds the peak time (inclusive). Each
        hit's box is as written, at FLOAT (32-bit) precision; None for whole-frame hits.

        Milvus queries have no ORDER BY, so up to 16,384 matching rows are sorted here; with
        more matches than that, narrow the query with since_ts_ms.
        """
        if not 1 <= limit <= MAX_QUERY_ROWS:
            raise ValueError(f"limit must be from 1 to {MAX_QUERY_ROWS}, got {limit}")
        condition = (
            MilvusFilter()
            .id_is("camera_id", camera_id)
            .id_is("query_id", query_id)
            .at_or_after("peak_ts_ms", since_ts_ms, "since_ts_ms")
        )
        rows = self._client.query(
            self.settings.hits_collection,
            filter=str(condition),
            output_fields=_HIT_FIELDS,
            limit=MAX_QUERY_ROWS,
            timeout=self.settings.timeout_s,
        )
        rows = sorted(rows, key=lambda row: (row["peak_ts_ms"], row["hit_id"]), reverse=True)[:limit]
        return [_hit_from_row(row) for row in rows]

    def search_hits(
        self,
        query_vector: Sequence[float] | np.ndarray,
        top_k: int = 10,
        camera_ids: Sequence[str] | None = None,
        since_ts_ms: int | None = None,
        until_ts_ms: int | None = None,
    ) -> list[HitMatch]:
        """The top_k hits whose peak embedding is nearest `query_vector`, best first;
        since/until bound the peak time (inclusive), camera_ids the cameras (None = all)."""
        if not 1 <= top_k <= 1024:
            raise ValueError(f"top_k must be from 1 to 1024, got {top_k}")
        vector = self._vector(query_vector, "query vector")
        if camera_ids is not None and not camera_ids:
            return []
        condition = (
            MilvusFilter()
            .id_in("camera_id", camera_ids)
            .at_or_after("peak_ts_ms", since_ts_ms, "since_ts_ms")
            .at_or_before("peak_ts_ms", until_ts_ms, "until_ts_ms")
        )
        (matches,) = self._client.search(
            self.settings.hits_collection,
            data=[vector],
            anns_field="embedding",
            filter=str(condition),
            limit=top_k,
            output_fields=_HIT_FIELDS,
            search_params={"metric_type": "COSINE", "params": {"ef": max(self.settings.search_ef, top_k)}},
            timeout=self.settings.timeout_s,
        )
        return [
            HitMatch(_hit_from_row({**match["entity"], "hit_id": match["hit_id"]}), float(match["distance"]))
            for match in matches
        ]

    def hit_thumbnails(self, references: Sequence[str]) -> set[str]:
        """Those of `references` that a stored hit shows (a peak frame is indexed too)."""
        for reference in references:
            if not REFERENCE_RE.fullmatch(reference):
                raise InvalidThumbnailReferenceError(f"thumbnail reference {reference!r} is malformed")
        rows = self._client.query(
            self.settings.hits_collection,
            filter=f"thumbnail in {json.dumps(list(references))}",
            output_fields=["thumbnail"],
            limit=MAX_QUERY_ROWS,
            timeout=self.settings.timeout_s,
        )
        return {row["thumbnail"] for row in rows}

    def count_hits(self) -> int:
        return self._count(self.settings.hits_collection)

    # --- forgetting (services/detector/retention.py) -------------------------------------

    def forget_hits_before(self, peak_before_ms: int, limit: int) -> list[str]:
        """Delete up to `limit` hits whose peak is before `peak_before_ms`; their thumbnails."""
        check_ts_ms("peak_before_ms", peak_before_ms)
        return self._forget(self.settings.hits_collection, "hit_id", f"peak_ts_ms < {peak_before_ms}", limit)


def _hit_from_row(row: dict) -> HitMessage:
    return HitMessage(
        hit_id=row["hit_id"],
        camera_id=row["camera_id"],
        query_id=row["query_id"],
        event_start_ts_ms=int(row["event_start_ts_ms"]),
        peak_ts_ms=int(row["peak_ts_ms"]),
        end_ts_ms=None if row["end_ts_ms"] == OPEN_EVENT_END else int(row["end_ts_ms"]),
        # Milvus stores FLOAT (32-bit); round so 0.9 reads back as 0.9, not 0.899999976.
        peak_score=round(float(row["score"]), 6),
        thumbnail=row["thumbnail"],
        encoder=row["encoder"],
        box=_box_from_row(row.get(BOX_FIELD)),
    )


def _box_from_row(stored: Sequence[float] | None) -> Box | None:
    """A stored box back as the contract's floats: each FLOAT as the shortest decimal that is
    that FLOAT (0.1 reads back as 0.1, not 0.10000000149), which keeps x0 < x1 and y0 < y1."""
    if stored is None:
        return None
    x0, y0, x1, y1 = (float(str(np.float32(value))) for value in stored)
    return x0, y0, x1, y1
