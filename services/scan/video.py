"""Decode a recorded file with PyAV, sample it by frame timestamps, embed in micro-batches,
and run `ScanPipeline` over it. Times are seconds into the file (the first decoded frame is 0).

Queries are embedded once, as prompt ensembles in their own language (detected from the text)
with background prompts (`embed_queries`), and judged on their margin over the background."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import av
import av.error
import numpy as np

from vigil.errors import VigilError
from vigil.models.encoder import Encoder
from vigil.pipelines.discrimination import DiscriminationSettings
from vigil.pipelines.prompts import embed_queries
from vigil.pipelines.regions import ChangeDetector, RegionSettings
from vigil.pipelines.sampling import FrameSampler
from vigil.pipelines.scan import ScanEvent, ScanPipeline, ScanSettings
from vigil.pipelines.views import ViewBook
from vigil.services.common.framing import FrameWork, embed_frames

# progress(seconds decoded so far, total seconds or None)
Progress = Callable[[float, float | None], None]


@dataclass(frozen=True)
class ScanResult:
    events: list[ScanEvent]
    frames_sampled: int
    duration_s: float


def video_duration_s(container: av.container.InputContainer) -> float | None:
    stream = container.streams.video[0]
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def sampled_frames(container: av.container.InputContainer, fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds since the first decoded frame, RGB uint8 pixels) of each frame of the first video
    stream that `vigil scan --fps` keeps: sampled by frame timestamps, not by frame count."""
    sampler = FrameSampler(fps)
    first: float | None = None
    for frame in container.decode(container.streams.video[0]):
        if frame.time is None:
            continue
        if first is None:
            first = frame.time
        t = frame.time - first
        if sampler.offer(t):
            yield t, frame.to_ndarray(format="rgb24")


def scan_video(
    path: Path,
    queries: Sequence[str],
    encoder: Encoder,
    *,
    fps: float = 2.0,
    settings: ScanSettings | None = None,
    batch_size: int = 16,
    progress: Progress | None = None,
    regions: RegionSettings | None = None,
) -> ScanResult:
    """The events of `queries` in the video at `path`; a file PyAV cannot read is a VigilError."""
    if not fps > 0:
        raise VigilError(f"--fps must be positive, got {fps!r}")
    settings = settings or ScanSettings()
    # At a low sampling rate consecutive frames are far apart; that is not a gap in the footage.
    gap_ms = max(settings.max_gap_ms, round(3000 / fps))
    if gap_ms != settings.max_gap_ms:
        settings = replace(settings, max_gap_ms=gap_ms)
    discrimination = DiscriminationSettings.for_encoder(encoder.info)
    pipeline = ScanPipeline(
        list(queries),
        embed_queries(encoder, list(queries), negatives=discrimination.enabled and discrimination.negatives),
        settings,
        discrimination,
    )
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise VigilError(f"{path}: cannot open as a video: {_reason(error)}") from None
    batch_ts: list[int] = []
    batch_pixels: list[np.ndarray] = []
    sampled = 0
    last_s = 0.0

    # With `regions` the file is one camera: what changed is embedded, as a live detector does
    # (framing.py), and each frame is scored on its views (the whole frame and the regions that
    # stand). Without, each frame is embedded whole: a scan calibrates each query against the
    # file's own median and spread (pipelines/scan.py), and over the region views that spread
    # came out too wide for the large inserted objects of tests/scan (a 45 %-wide motorcycle
    # at z 1.2), so whole frames stay the default here until the scan learns per place too.
    changes, views = ChangeDetector(regions or RegionSettings()), ViewBook()

    def flush() -> None:
        if batch_pixels and regions is None:
            pipeline.feed(batch_ts, encoder.embed_images(batch_pixels), list(batch_ts))
            batch_ts.clear()
            batch_pixels.clear()
        if batch_pixels:
            work = [
                FrameWork(changes, ts, pixels, views)
                for ts, pixels in zip(batch_ts, batch_pixels, strict=True)
            ]
            embedded, _ = embed_frames(encoder, work, changes.settings)
            frame_views = []
            for ts_ms, frame in zip(batch_ts, embedded, strict=True):
                views.update(ts_ms, frame.full, frame.regions, frame.global_change, frame.settled)
                frame_views.append(views.matrix())
            pipeline.feed(batch_ts, frame_views, list(batch_ts))
            batch_ts.clear()
            batch_pixels.clear()

    with container:
        if not container.streams.video:
            raise VigilError(f"{path}: has no video stream")
        total = video_duration_s(container)
        container.streams.video[0].thread_type = "AUTO"
        try:
            for t, pixels in sampled_frames(container, fps):
                sampled += 1
                last_s = max(last_s, t)
                batch_ts.append(round(t * 1000))
                batch_pixels.append(pixels)
                if len(batch_pixels) >= batch_size:
                    flush()
                    if progress is not None:
                        progress(t, total)
        except av.error.FFmpegError as error:
            raise VigilError(f"{path}: cannot decode: {_reason(error)}") from None
        flush()
    if not sampled:  # the sampler keeps the first frame, so none was decoded
        raise VigilError(f"{path}: no video frames could be decoded")
    if progress is not None:
        progress(total if total is not None else last_s, total)
    return ScanResult(pipeline.finish(), pipeline.frames, last_s)


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)
