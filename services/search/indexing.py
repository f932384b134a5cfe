"""`index_video`: put a recorded file into the frame index, so that it can be searched like live
footage (`vigil index`).

The file is decoded with PyAV and sampled by frame timestamps (services/scan/video.py's
`sampled_frames`, 1 frame/s by default: the live index's spacing, pipelines/frame_index_sampling.py);
each kept frame is embedded whole, as the detector embeds the whole-frame view it indexes, in
micro-batches, and written with a small JPEG thumbnail into the same frame index
(`HitStore.add_frames`), under the camera given and the capture time of the frame: the
recording's start plus the frame's offset. Rows are keyed by camera and time, so indexing the
same file again overwrites its rows instead of duplicating them.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import numpy as np
from PIL import Image

from vigil.errors import VigilError
from vigil.models.encoder import Encoder
from vigil.services.common.contract import check_id
from vigil.services.common.thumbnail_store import ThumbnailStore
from vigil.services.detector.store import FrameRecord, HitStore
from vigil.services.scan.video import sampled_frames, video_duration_s

# As the detector's frame-index thumbnails: for scrolling through search results.
THUMBNAIL_WIDTH = 320
BATCH = 16


@dataclass(frozen=True)
class IndexProgress:
    """Where indexing stands: frames written, the frames expected (None: unknown), rate."""

    frames: int
    total: int | None
    elapsed_s: float

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0


def recording_start_ms(path: Path) -> int:
    """When the recording began, for a file with no --start: its container's creation_time if it
    has one, else its modification time less its duration (a recorder writes as it records)."""
    try:
        with av.open(str(path)) as container:
            created = container.metadata.get("creation_time")
            duration = video_duration_s(container) if container.streams.video else None
    except (av.error.FFmpegError, OSError) as error:
        raise VigilError(f"{path}: cannot open as a video: {error}") from None
    if created:
        from datetime import datetime

        try:
            return round(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            pass
    return round((path.stat().st_mtime - (duration or 0.0)) * 1000)


def index_video(
    path: Path,
    camera_id: str,
    start_ms: int,
    store: HitStore,
    encoder: Encoder,
    thumbnails: ThumbnailStore,
    *,
    fps: float = 1.0,
    progress: Callable[[IndexProgress], None] | None = None,
) -> IndexProgress:
    """Index the file at `path` as `camera_id` from `start_ms` (Unix ms of its first frame)."""
    check_id("camera_id", camera_id)
    if not fps > 0:
        raise VigilError(f"--fps must be positive, got {fps!r}")
    if start_ms < 0:
        raise VigilError(f"the recording's start must be after 1970, got {start_ms} ms")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise VigilError(f"{path}: cannot open as a video: {error}") from None
    began = time.perf_counter()
    done = 0
    pending: list[tuple[int, np.ndarray]] = []

    def write() -> None:
        nonlocal done
        embeddings = encoder.embed_images([pixels for _, pixels in pending])
        records = []
        for (ts_ms, pixels), embedding in zip(pending, embeddings, strict=True):
            reference = thumbnails.save(camera_id, ts_ms, _small_jpeg(pixels))
            records.append(FrameRecord(camera_id, ts_ms, embedding, reference))
        store.add_frames(records)
        done += len(records)
        pending.clear()

    with container:
        if not container.streams.video:
            raise VigilError(f"{path}: has no video stream")
        duration = video_duration_s(container)
        total = None if duration is None else int(duration * fps) + 1
        container.streams.video[0].thread_type = "AUTO"
        try:
            for t, pixels in sampled_frames(container, fps):
                pending.append((start_ms + round(t * 1000), pixels))
                if len(pending) >= BATCH:
                    write()
                    if progress is not None:
                        progress(IndexProgress(done, total, time.perf_counter() - began))
        except av.error.FFmpegError as error:
            raise VigilError(f"{path}: cannot decode: {error}") from None
        if pending:
            write()
    store.flush_frames()
    if not done:
        raise VigilError(f"{path}: no video frames could be decoded")
    result = IndexProgress(done, done, time.perf_counter() - began)
    if progress is not None:
        progress(result)
    return result


def _small_jpeg(pixels: np.ndarray) -> bytes:
    height, width = pixels.shape[:2]
    image = Image.fromarray(pixels)
    if width > THUMBNAIL_WIDTH:
        image = image.resize(
            (THUMBNAIL_WIDTH, max(1, round(height * THUMBNAIL_WIDTH / width))), Image.Resampling.BILINEAR
        )
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()
