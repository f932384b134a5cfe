"""`vigil demo` (`make demo`): the embedded default, live, on real footage, offline.

A real RTSP camera (gst-rtsp-server) streams OpenCV's vtest.avi (a real hall with people
walking) in which real photographs were pasted for known spans: a cat from 12 s to 20 s and a
motorcycle from 34 s to 42 s of the stream. `vigil up` runs on it (local broker, ingest over
RTSP, detector, Milvus lite) with two standing queries, one English and one Vietnamese, and
prints each hit as it happens; at the end, every hit with its time into the stream, next to
the truth.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer
import yaml

from vigil.media import DEMO_EVENTS, event_clip
from vigil.paths import var_dir

DEMO_QUERIES = (
    {"id": "cat", "text": "a cat"},
    {"id": "xe-may", "text": "một chiếc xe máy", "severity": "critical"},  # "a motorcycle"
)
EXPECTED = {"cat": "cat", "xe-may": "motorcycle"}
# Long enough for the detector to start (encoder, Milvus lite, group join) and the last event
# to end and close.
DEMO_SECONDS = 62.0


def write_demo_config(directory: Path, rtsp_url: str) -> Path:
    config = {
        "metrics_port": 0,
        "defaults": {"fps": 2, "resize": {"max_width": 768, "max_height": 576}},
        "cameras": [{"id": "hall", "url": rtsp_url}],
        "detector": {"metrics_port": 0, "max_lag_s": 30},
        "queries": list(DEMO_QUERIES),
    }
    path = directory / "vigil.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def run_demo(seconds: float = DEMO_SECONDS) -> int:
    """Run the demo; returns how many of the inserted events were found by their query."""
    from vigil.rtsp import RtspCamera
    from vigil.services.broker.local import free_loopback_port
    from vigil.services.embedded import run_embedded

    directory = var_dir() / "demo"
    directory.mkdir(parents=True, exist_ok=True)
    # The demo's own hit store, so it never mixes with (or locks) the default one.
    os.environ.setdefault("VIGIL_MILVUS_URI", str(directory / "milvus"))
    os.environ.setdefault("VIGIL_MILVUS_THUMBNAILS_DIR", str(directory / "thumbnails"))
    clip = event_clip()
    truth = ", ".join(f"a {name} from {start:g} s to {end:g} s" for name, start, end in DEMO_EVENTS)
    typer.echo(f"footage: {clip.name}: vtest.avi (real hall) with real photos pasted in: {truth}")
    camera = RtspCamera(media=clip, port=free_loopback_port(), mount="/hall", width=768, height=576, fps=10)
    hits = {}

    def on_hit(hit) -> None:
        from vigil.cli import describe_hit

        hits[hit.hit_id] = hit
        typer.echo(describe_hit(hit))

    def on_ready(bootstrap: str) -> None:
        typer.echo(
            f"running: broker {bootstrap}, camera {camera.url}, queries: "
            + "; ".join(f"{q['id']} = {q['text']!r}" for q in DEMO_QUERIES)
        )

    camera.start()
    stream_start_s = time.time()
    try:
        config = write_demo_config(directory, camera.url)
        run_embedded(config, on_hit=on_hit, seconds=seconds, on_ready=on_ready)
    finally:
        camera.stop()
    return summarise(hits, stream_start_s)


def summarise(hits: dict, stream_start_s: float) -> int:
    """Every event (its latest version: the closing one replaces the confirmation) with its
    times into the stream, against the truth; returns how many inserted events were found.

    The stream's clock starts when ingest connects, a fraction of a second after the camera
    started, so an event counts as found when it starts between 2 s before and the end of the
    span its query describes."""
    spans = {name: (start, end) for name, start, end in DEMO_EVENTS}
    typer.echo(f"\n{len(hits)} event(s):")
    found = set()
    for hit in sorted(hits.values(), key=lambda h: h.event_start_ts_ms):
        start = hit.event_start_ts_ms / 1000 - stream_start_s
        end = "still on" if hit.end_ts_ms is None else f"to {hit.end_ts_ms / 1000 - stream_start_s:.0f} s"
        name = EXPECTED.get(hit.query_id)
        truth_start, truth_end = spans.get(name, (None, None))
        if truth_start is not None and truth_start - 2 <= start <= truth_end:
            found.add(hit.query_id)
            verdict = f"the {name} shown {truth_start:g}-{truth_end:g} s"
        else:
            verdict = "NOT an inserted event"
        typer.echo(f"  {hit.query_id:>7}: from {start:.0f} s {end}, score {hit.peak_score:.2f}: {verdict}")
        typer.echo(f"           thumbnail: {thumbnails_dir() / hit.thumbnail}")
    typer.echo(f"{len(found)}/{len(DEMO_QUERIES)} inserted events found by their query")
    return len(found)


def thumbnails_dir() -> Path:
    return Path(os.environ["VIGIL_MILVUS_THUMBNAILS_DIR"])
