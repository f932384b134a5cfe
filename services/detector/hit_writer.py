"""The detector's last stage: hits made durable, in Milvus and on "hits", before anything is
committed past the frames that made them.

A hit is written twice per event (confirmed, then closed) under one id, so both writes are
upserts: Milvus keeps the closing version and "hits" consumers de-duplicate on the id. Its
thumbnail was saved when its peak frame was scored (services/detector/service.py), so a hit
never names a picture that is not there.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from vigil.pipelines.matching import Hit
from vigil.pipelines.views import FULL_FRAME, View
from vigil.services.common.contract import HitMessage, Topics, encode_json
from vigil.services.common.kafka import ResilientProducer
from vigil.services.common.thumbnail_store import thumbnail_reference
from vigil.services.detector.metrics import DetectorMetrics
from vigil.services.detector.store import HitRecord, HitStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HitWriter:
    """`write(camera_id, hits, confirmed_at)`: Milvus upsert (fsynced) and "hits" acknowledged,
    then counted and logged."""

    store: HitStore
    producer: ResilientProducer
    topics: Topics
    metrics: DetectorMetrics
    encoder_name: str

    def write(self, camera_id: str, hits: list[tuple[Hit, View]], confirmed_at: int | None) -> None:
        """`hits` of one camera with the view each peaked on; `confirmed_at`: the capture time of
        the frame that confirmed them (None when no frame did: a query change or a silent camera
        closed them), for the glass-to-hit latency."""
        if not hits:
            return
        records = [HitRecord(self._message(hit, view), view.embedding) for hit, view in hits]
        self.store.upsert_hits(records)
        for record in records:
            self.producer.send(self.topics.hits, encode_json(record.hit), key=camera_id.encode())
        self.producer.flush()
        now_ms = time.time() * 1000
        for record in records:
            message = record.hit
            kind = "closed" if message.end_ts_ms is not None else "confirmed"
            self.metrics.hits.labels(camera_id, kind).inc()
            if kind == "confirmed" and confirmed_at is not None:
                self.metrics.glass_to_hit_seconds.observe((now_ms - confirmed_at) / 1000)
            log.info(
                "hit %s %s: query %s on %s, score %.2f",
                message.hit_id,
                kind,
                message.query_id,
                message.camera_id,
                message.peak_score,
                extra={"hit_id": message.hit_id, "kind": kind, "thumbnail": message.thumbnail},
            )

    def _message(self, hit: Hit, view: View) -> HitMessage:
        box = view.box
        return HitMessage(
            hit_id=hit.hit_id,
            camera_id=hit.camera_id,
            query_id=hit.query_id,
            event_start_ts_ms=hit.event_start_ts_ms,
            peak_ts_ms=hit.peak_ts_ms,
            end_ts_ms=hit.end_ts_ms,
            peak_score=float(hit.peak_score),
            thumbnail=thumbnail_reference(hit.camera_id, hit.peak_ts_ms),
            encoder=self.encoder_name,
            box=None if box == FULL_FRAME else (box.x0, box.y0, box.x1, box.y1),
        )
