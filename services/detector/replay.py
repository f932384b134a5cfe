"""One camera's frames through the live detector's decisions, without Kafka or Milvus.

    result = replay_camera(encoder, frames, [ReplayQuery("cat", "a cat")])

`replay_camera` is what the detector service does for one camera (regions planned and embedded
in micro-batches by `embed_frames`, `CameraPipeline` frame by frame, the encoder's score prior,
the temporal stage when `temporal: gru`, the same settings), with the frames given in capture
order by the caller instead of polled from "frames". The evaluation (`vigil eval`) runs its dev
set through it, so the figures it reports are the live detector's, not a re-implementation's.

Each event is reported once, when it closes (or at the end of the frames), with the capture
time of the frame that confirmed it: the time an operator would have been alerted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from vigil.models.encoder import Encoder
from vigil.pipelines.calibration import score_prior_for
from vigil.pipelines.detector import StandingQuery
from vigil.pipelines.discrimination import DiscriminationSettings
from vigil.pipelines.matching import Hit
from vigil.pipelines.prompts import embed_queries, resolve_language
from vigil.pipelines.views import View
from vigil.services.common.framing import EmbeddingCost, FrameWork, embed_frames
from vigil.services.detector.config import DetectorSettings
from vigil.services.detector.temporal import load_temporal_stage


@dataclass(frozen=True)
class ReplayQuery:
    """A standing query as an operator registers it."""

    query_id: str
    text: str
    language: str = "auto"
    threshold: float | str = "auto"


@dataclass(frozen=True)
class ReplayHit:
    """One event as the live detector would have reported it (capture times in ms)."""

    query_id: str
    event_start_ts_ms: int
    confirmed_ts_ms: int  # capture time of the frame whose scoring confirmed the event
    peak_ts_ms: int
    end_ts_ms: int
    peak_score: float
    box: tuple[float, float, float, float]  # the peak region, fractions of the frame


@dataclass(frozen=True)
class ReplayResult:
    """The events, and what embedding the frames cost (summed over the micro-batches)."""

    hits: list[ReplayHit]
    cost: EmbeddingCost


def replay_camera(
    encoder: Encoder,
    frames: Iterable[tuple[int, np.ndarray]],
    queries: Sequence[ReplayQuery],
    config: DetectorSettings | None = None,
    *,
    camera_id: str = "replay",
    batch_frames: int | None = None,
) -> list[ReplayHit]:
    """The events `queries` raise on (capture ts_ms, RGB uint8 pixels) frames in capture order."""
    return replay(encoder, frames, queries, config, camera_id=camera_id, batch_frames=batch_frames).hits


def replay(
    encoder: Encoder,
    frames: Iterable[tuple[int, np.ndarray]],
    queries: Sequence[ReplayQuery],
    config: DetectorSettings | None = None,
    *,
    camera_id: str = "replay",
    batch_frames: int | None = None,
) -> ReplayResult:
    """`replay_camera`'s events, with what embedding the frames cost."""
    config = config or DetectorSettings()
    languages = [resolve_language(query.text, query.language) for query in queries]
    discrimination = DiscriminationSettings.for_encoder(encoder.info, **config.discrimination)
    vectors = embed_queries(
        encoder,
        [query.text for query in queries],
        languages,
        negatives=discrimination.enabled and discrimination.negatives,
    )
    match = config.match_for(camera_id)
    specs = [
        StandingQuery(
            query.query_id, f"{query.text}\x1f{language}", vector, match.for_threshold(query.threshold)
        )
        for query, language, vector in zip(queries, languages, vectors, strict=True)
    ]
    pipeline = config.camera_pipeline(
        camera_id,
        encoder.info.dim,
        prior=score_prior_for(encoder.info),
        discrimination=discrimination,
        temporal=load_temporal_stage() if config.temporal == "gru" else None,
    )
    pipeline.set_queries(specs)
    confirmed: dict[str, int] = {}
    closed: list[tuple[Hit, View]] = []
    total = EmbeddingCost()

    def take(hits: list[tuple[Hit, View]], ts_ms: int) -> None:
        for hit, view in hits:
            confirmed.setdefault(hit.hit_id, ts_ms)
            if hit.end_ts_ms is not None:
                closed.append((hit, view))

    batch: list[FrameWork] = []
    size = batch_frames or config.batch_max_frames

    def flush() -> None:
        embedded, cost = embed_frames(
            encoder,
            batch,
            config.regions,
            use_proposals=config.detector_boxes,
            regions=config.embed == "regions",
        )
        total.add(cost)
        for item, embeddings in zip(batch, embedded, strict=True):
            take(pipeline.step(item.ts_ms, embeddings, item.ts_ms).hits, item.ts_ms)
        batch.clear()

    last_ts = None
    for ts_ms, pixels in frames:
        if last_ts is not None and int(ts_ms) <= last_ts:
            continue  # as the live detector: a frame it has moved past changes nothing
        batch.append(FrameWork(pipeline.changes, int(ts_ms), pixels, pipeline.views))
        last_ts = int(ts_ms)
        if len(batch) >= size:
            flush()
    if batch:
        flush()
    if last_ts is not None:
        take(pipeline.set_queries([]), last_ts)
    hits = [
        ReplayHit(
            query_id=hit.query_id,
            event_start_ts_ms=hit.event_start_ts_ms,
            confirmed_ts_ms=confirmed[hit.hit_id],
            peak_ts_ms=hit.peak_ts_ms,
            end_ts_ms=int(hit.end_ts_ms),
            peak_score=float(hit.peak_score),
            box=(view.box.x0, view.box.y0, view.box.x1, view.box.y1),
        )
        for hit, view in closed
    ]
    return ReplayResult(hits, total)
