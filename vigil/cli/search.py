"""`vigil search` (find a described moment in what was stored) and `vigil index` (put a recorded
file into the frame index). Both work with or without a running detector: with Milvus lite they
open the directory, or go through the process that has it open (services/detector/store/
lite_sharing.py); with a Milvus server URI they connect to it."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from vigil.errors import VigilError

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML whose `detector:` section names the encoder (default: none)"),
]
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_time(text: str, now_ms: int, option: str) -> int:
    """Unix ms of `text`: ISO-8601 (no zone: UTC; "2026-12-07T13:00:00+07:00" keeps its own) or a
    time ago, "90s", "15m", "2h", "3d", "1w"; a VigilError naming `option` otherwise."""
    relative = _RELATIVE.match(text)
    if relative:
        return round(now_ms - float(relative[1]) * _UNIT_S[relative[2]] * 1000)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise VigilError(
            f"{option}: expected an ISO-8601 time (2026-12-07T13:00:00Z) or a time ago (2h, 15m), "
            f"got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def search(
    text: Annotated[str, typer.Argument(help="what to look for, in English or Vietnamese")],
    camera: Annotated[list[str] | None, typer.Option("--camera", help="only this camera (repeat)")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO-8601 or a time ago (2h)")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO-8601 or a time ago (10m)")] = None,
    limit: Annotated[int, typer.Option("--limit", help="moments to list", min=1, max=100)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per moment per line")] = False,
    config: ConfigOption = None,
) -> None:
    """Find the moments that best match a description in the frame index and the hits."""
    from vigil.services.search import FrameSearch, SearchSettings

    now_ms = round(time.time() * 1000)
    since_ms = None if since is None else parse_time(since, now_ms, "--since")
    until_ms = None if until is None else parse_time(until, now_ms, "--until")
    settings = SearchSettings.load(config)
    with FrameSearch.open(settings) as frame_search:
        try:
            results = frame_search.search(text, camera or None, since_ms, until_ms, limit)
        except ValueError as error:
            raise VigilError(str(error)) from None
    thumbnails_dir = Path(settings.store.thumbnails_dir).resolve()
    for result in results:
        thumbnail = str(thumbnails_dir / result.thumbnail) if result.thumbnail else None
        if as_json:
            row = {
                "camera_id": result.camera_id,
                "ts_ms": result.ts_ms,
                "time": _iso(result.ts_ms),
                "start_ts_ms": result.start_ts_ms,
                "end_ts_ms": result.end_ts_ms,
                "frames": result.frames,
                "score": round(result.score, 4),
                "source": result.source,
                "query_id": result.query_id,
                "box": result.box,
                "thumbnail": thumbnail,
            }
            typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            typer.echo(
                f"{_iso(result.ts_ms)}  {result.camera_id}  {result.score:.3f}  "
                f"{thumbnail or '-'}  ({result.frames} frame(s), {result.source})"
            )
    if not results and not as_json:
        typer.echo("no indexed frames match these filters", err=True)


def index(
    video: Annotated[Path, typer.Argument(help="recorded video file")],
    camera: Annotated[str, typer.Option("--camera", help="the camera it was recorded by")],
    start: Annotated[
        str | None,
        typer.Option("--start", help="when its first frame was captured (default: from the file)"),
    ] = None,
    fps: Annotated[float, typer.Option("--fps", help="frames per second of video to index")] = 1.0,
    config: ConfigOption = None,
) -> None:
    """Put a recorded file into the frame index, so that `vigil search` finds it; progress on stderr."""
    from vigil.services.common.thumbnail_store import ThumbnailStore
    from vigil.services.search import FrameSearch, IndexProgress, SearchSettings, index_video
    from vigil.services.search.indexing import onnx_threads_per_worker, recording_start_ms

    if not video.is_file():
        raise VigilError(f"{video}: no such file")
    start_ms = (
        recording_start_ms(video)
        if start is None
        else parse_time(start, round(time.time() * 1000), "--start")
    )
    typer.echo(f"indexing {video} as camera {camera} from {_iso(start_ms)} at {fps:g} frame(s)/s", err=True)

    def progress(state: IndexProgress) -> None:
        total = "?" if state.total is None else str(state.total)
        typer.echo(f"  {state.frames} / {total} frames, {state.frames_per_s:.1f} frames/s", err=True)

    # index_video embeds on every core at once: single-threaded onnxruntime sessions on 2 cores
    # (unless VIGIL_ORT_THREADS says otherwise) do more frames a second than two-threaded ones.
    os.environ.setdefault("VIGIL_ORT_THREADS", str(onnx_threads_per_worker()))
    settings = SearchSettings.load(config)
    with FrameSearch.open(settings) as frame_search:
        thumbnails = ThumbnailStore(settings.store.thumbnails_dir)
        done = index_video(
            video,
            camera,
            start_ms,
            frame_search.store,
            frame_search.encoder,
            thumbnails,
            fps=fps,
            progress=progress,
        )
    typer.echo(
        f"indexed {done.frames} frames of {video} as {camera} in {done.elapsed_s:.1f} s "
        f"({done.frames_per_s:.1f} frames/s)"
    )
