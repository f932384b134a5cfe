"""`index_video`: put a recorded file into the frame index, so that it can be searched like live
footage (`vigil index`).

The file is decoded with PyAV and sampled by frame timestamps (1 frame/s by default: the live
index's spacing, pipelines/frame_index_sampling.py), decoding only the packets the kept frames
need (sampled_decoding.py); each kept frame is embedded whole, as the detector embeds the
whole-frame view it indexes, and written with a small JPEG thumbnail into the same frame index
(`HitStore.add_frames`), under the camera given and the capture time of the frame: the
recording's start plus the frame's offset. Rows are keyed by camera and time, so indexing the
same file again overwrites its rows instead of duplicating them.

Three things run at once, because each releases the GIL: decoding (a thread, a few chunks ahead),
embedding and thumbnail-making (`workers` threads, one chunk of frames each) and writing (this
thread, chunks in order). On 2 cores, two single-threaded onnxruntime calls side by side embed
more frames a second than one call on two threads (bench/search.notes.md): `vigil index` opens
its encoder with single-threaded sessions (vigil/cli/search.py) for that reason.
"""

from __future__ import annotations

import io
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import av
import av.error
import numpy as np
from PIL import Image

from vigil.errors import VigilError
from vigil.models.encoder import Encoder
from vigil.services.common.contract import check_id
from vigil.services.common.thumbnail_store import ThumbnailStore
from vigil.services.detector.store import FrameRecord, HitStore
from vigil.services.scan.video import video_duration_s
from vigil.services.search.background import BackgroundIterator
from vigil.services.search.sampled_decoding import decode_sampled

T = TypeVar("T")
# As the detector's frame-index thumbnails: for scrolling through search results.
THUMBNAIL_WIDTH = 320
# Frames per embedding task: small, so that every worker has one while the file is short, and
# a multiple of the offline encoder's images per onnxruntime call on CPU (2).
CHUNK = 4
# Concurrent embedding tasks: one a core, at most 4 (each holds onnxruntime buffers: about
# 0.2 GiB for a YOLOv3-tiny call of 2 frames).
MAX_WORKERS = 4
# Progress is reported when this many more frames are written (chunks are smaller).
PROGRESS_EVERY = 16


def default_workers() -> int:
    """The cores this process may run on, at most MAX_WORKERS."""
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


def onnx_threads_per_worker(workers: int | None = None) -> int:
    """onnxruntime threads per session so that `workers` concurrent calls fill the cores, not more:
    1 on 2 cores (VIGIL_ORT_THREADS, read when the encoder's sessions are made)."""
    return max(1, len(os.sched_getaffinity(0)) // (workers or default_workers()))


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
    workers: int | None = None,
) -> IndexProgress:
    """Index the file at `path` as `camera_id` from `start_ms` (Unix ms of its first frame), with
    `workers` concurrent embedding tasks (default: one a core, `default_workers`)."""
    check_id("camera_id", camera_id)
    if not fps > 0:
        raise VigilError(f"--fps must be positive, got {fps!r}")
    if start_ms < 0:
        raise VigilError(f"the recording's start must be after 1970, got {start_ms} ms")
    workers = workers or default_workers()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VigilError(f"{path}: has no video stream")
            duration = video_duration_s(container)
    except (av.error.FFmpegError, OSError) as error:
        raise VigilError(f"{path}: cannot open as a video: {error}") from None
    total = None if duration is None else int(duration * fps) + 1
    began = time.perf_counter()
    done = 0

    def write(chunk: _Embedded) -> None:
        nonlocal done
        records = [
            FrameRecord(camera_id, ts_ms, embedding, thumbnails.save(camera_id, ts_ms, jpeg))
            for ts_ms, embedding, jpeg in zip(chunk.ts_ms, chunk.embeddings, chunk.jpegs, strict=True)
        ]
        store.add_frames(records)
        done += len(records)
        if progress is not None and done // PROGRESS_EVERY > (done - len(records)) // PROGRESS_EVERY:
            progress(IndexProgress(done, total, time.perf_counter() - began))

    frames = BackgroundIterator(decode_sampled(path, fps), depth=CHUNK * (workers + 1))
    try:
        with frames, ThreadPoolExecutor(workers, thread_name_prefix="vigil-index") as pool:
            in_flight: deque[Future[_Embedded]] = deque()
            for chunk in _chunks(frames, CHUNK):
                ts_ms = [start_ms + round(t * 1000) for t, _ in chunk]
                in_flight.append(pool.submit(_embed, encoder, ts_ms, [pixels for _, pixels in chunk]))
                # Written in order, as soon as the oldest is done; at most one queued per worker.
                while in_flight and (len(in_flight) > workers or in_flight[0].done()):
                    write(in_flight.popleft().result())
            while in_flight:
                write(in_flight.popleft().result())
    except (av.error.FFmpegError, OSError) as error:
        raise VigilError(f"{path}: cannot decode: {error}") from None
    store.flush_frames()
    if not done:
        raise VigilError(f"{path}: no video frames could be decoded")
    result = IndexProgress(done, done, time.perf_counter() - began)
    if progress is not None:
        progress(result)
    return result


@dataclass(frozen=True)
class _Embedded:
    ts_ms: list[int]
    embeddings: np.ndarray
    jpegs: list[bytes]


def _embed(encoder: Encoder, ts_ms: list[int], pixels: list[np.ndarray]) -> _Embedded:
    return _Embedded(ts_ms, encoder.embed_images(pixels), [_small_jpeg(p) for p in pixels])


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


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
