"""Retrospective search (`make bench`, part "search"): how long a search takes over a large frame
index in Milvus lite, and how fast `vigil index` indexes a recorded file.

Search: `--frames` rows are written into a fresh Milvus lite frame index (the detector's store
code, batches of 1,000, a flush every 1,000 rows as the detector's default), 8 cameras at 1
frame/s each. The rows are made from REAL embeddings: the offline encoder's embeddings of every
second of the real clips (vtest.avi's hall with real photos pasted in: the demo's clip and two
others), each row one of them plus Gaussian noise (sigma 0.02 a dimension, renormalised; the
cosine of a row with its source is about 0.9), so the index has the clustered shape of real
footage rather than uniform noise. Then `FrameSearch.search` (the API's and `vigil search`'s
path: the text's embedding, the frame index and hits searches, collapsing) is timed for 10
texts in English and Vietnamese, `--repeats` times each, unfiltered and filtered by one camera
and the last hour; p50 and p95 of each, and of the Milvus search call alone (top 200 frames,
what a 20-result search asks for). Each timed search embeds its text afresh (the background
prompts, embedded once per process, are kept, as a running search keeps them).

Indexing: `index_video` (what `vigil index` runs) over the demo's 60 s clip at 1 frame/s into a
fresh store, frames per second, best of 2 runs.

Usage: python bench/search.py [--frames 100000] [--repeats 10] [--skip-indexing]
Prints one JSON line; bench/run.py turns it into the table of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CAMERAS = 8
BATCH = 1_000
NOISE = 0.02
TEXTS = (
    "a cat",
    "một con mèo",
    "a motorcycle",
    "một chiếc xe máy",
    "a person carrying a bag",
    "một người mang túi",
    "a red car",
    "một chiếc ô tô màu đỏ",
    "a dog",
    "một con chó",
)
WARM_TEXTS = ("a bicycle", "một chiếc xe đạp")
CLIPS = (
    ((("cat", 12.0, 20.0), ("motorcycle", 34.0, 42.0)), 60.0),
    ((("cat", 8.0, 13.0), ("motorcycle", 17.0, 22.0), ("cat", 26.0, 31.0)), 36.0),
    ((("coffee", 6.0, 12.0), ("rocket", 25.0, 31.0), ("astronaut", 40.0, 46.0)), 50.0),
)


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def real_embeddings(encoder):
    """The offline encoder's embeddings of every second of the real clips."""
    import av
    import numpy as np

    from vigil.fixtures.media import event_clip
    from vigil.services.scan.video import sampled_frames

    vectors = []
    for events, seconds in CLIPS:
        with av.open(str(event_clip(events, seconds))) as container:
            pixels = [frame for _, frame in sampled_frames(container, 1.0)]
        for start in range(0, len(pixels), 16):
            vectors.append(encoder.embed_images(pixels[start : start + 16]))
    return np.concatenate(vectors)


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q))


def bench_search(frames: int, repeats: int) -> dict:
    import numpy as np

    from vigil.models.registry import EncoderSettings, create_encoder
    from vigil.services.detector.store import FrameRecord, HitStore, StoreSettings
    from vigil.services.search import FrameSearch

    encoder = create_encoder(EncoderSettings(kind="offline"))
    sources = real_embeddings(encoder)
    rng = np.random.default_rng(0)
    now_ms = int(time.time() * 1000)
    start_ms = now_ms - (frames // CAMERAS + 1) * 1000
    with tempfile.TemporaryDirectory(prefix="vigil-search-bench-") as folder:
        settings = StoreSettings(
            uri=str(Path(folder) / "milvus"), thumbnails_dir=Path(folder) / "t", dim=encoder.info.dim
        )
        with HitStore(settings) as store:
            began = time.perf_counter()
            for first in range(0, frames, BATCH):
                count = min(BATCH, frames - first)
                picked = sources[rng.integers(0, len(sources), count)]
                noisy = picked + rng.normal(0, NOISE, picked.shape).astype(np.float32)
                noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
                store.add_frames(
                    [
                        FrameRecord(
                            f"cam-{(first + i) % CAMERAS}",
                            start_ms + ((first + i) // CAMERAS) * 1000,
                            noisy[i],
                        )
                        for i in range(count)
                    ]
                )
            store.flush_frames()
            write_s = time.perf_counter() - began
            # Let lite finish building the segments' indexes (a background thread) before timing.
            time.sleep(5)
            search = FrameSearch(store, encoder)
            cases = {
                "all cameras, all time": {},
                "one camera, last hour": {"camera_ids": ["cam-3"], "since_ts_ms": now_ms - 3_600_000},
            }
            # Warm: both languages' background prompts embedded once, as a running search keeps them;
            # every timed search then embeds its own text afresh (its prompts are dropped again).
            for text in WARM_TEXTS:
                search.search(text, limit=20)
            warm_cache = dict(search._prompt_cache)
            timings: dict[str, dict[str, list[float]]] = {}
            for name, filters in cases.items():
                total, milvus = [], []
                for _ in range(repeats):
                    for text in TEXTS:
                        search._prompt_cache = dict(warm_cache)
                        started = time.perf_counter()
                        search.search(text, limit=20, **filters)
                        total.append((time.perf_counter() - started) * 1000)
                        vector, _ = search.text_vector(text)
                        started = time.perf_counter()
                        store.search_frames(
                            [vector], 200, filters.get("camera_ids"), filters.get("since_ts_ms")
                        )
                        milvus.append((time.perf_counter() - started) * 1000)
                timings[name] = {"total_ms": total, "milvus_ms": milvus}
            rss = rss_mib()
    return {
        "frames": frames,
        "sources": len(sources),
        "write_s": round(write_s, 1),
        "rss_mib": round(rss),
        "searches": {
            name: {
                "n": len(t["total_ms"]),
                "p50_ms": round(percentile(t["total_ms"], 50), 1),
                "p95_ms": round(percentile(t["total_ms"], 95), 1),
                "milvus_p50_ms": round(percentile(t["milvus_ms"], 50), 1),
                "milvus_p95_ms": round(percentile(t["milvus_ms"], 95), 1),
            }
            for name, t in timings.items()
        },
    }


def bench_indexing() -> dict:
    from vigil.fixtures.media import event_clip
    from vigil.models.registry import EncoderSettings, create_encoder
    from vigil.services.common.thumbnail_store import ThumbnailStore
    from vigil.services.detector.store import HitStore, StoreSettings
    from vigil.services.search import index_video
    from vigil.services.search.indexing import onnx_threads_per_worker

    os.environ.setdefault("VIGIL_ORT_THREADS", str(onnx_threads_per_worker()))  # as `vigil index`
    encoder = create_encoder(EncoderSettings(kind="offline"))
    clip = event_clip()
    runs = []
    for _ in range(2):
        with tempfile.TemporaryDirectory(prefix="vigil-index-bench-") as folder:
            settings = StoreSettings(uri=str(Path(folder) / "milvus"), dim=encoder.info.dim)
            with HitStore(settings) as store:
                done = index_video(
                    clip, "hall", 1_796_637_600_000, store, encoder, ThumbnailStore(Path(folder) / "t")
                )
            runs.append(
                {
                    "frames": done.frames,
                    "seconds": round(done.elapsed_s, 2),
                    "frames_per_s": round(done.frames_per_s, 1),
                }
            )
    return {
        "clip": clip.name,
        "video_s": 60,
        "runs": runs,
        "frames_per_s": max(r["frames_per_s"] for r in runs),
    }


def summarize(rows: list[dict]) -> dict:
    return {
        "search": [row for row in rows if "searches" in row],
        "indexing": next((row for row in rows if "runs" in row), None),
    }


def table(result: dict) -> str:
    summary = result["summary"]
    lines = [
        "| frames indexed | search | p50 | p95 | Milvus call p50 / p95 | searches | writing them | RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in summary["search"]:
        for name, s in run["searches"].items():
            lines.append(
                f"| {run['frames']:,} | {name} | {s['p50_ms']:.0f} ms | {s['p95_ms']:.0f} ms "
                f"| {s['milvus_p50_ms']:.0f} / {s['milvus_p95_ms']:.0f} ms | {s['n']} "
                f"| {run['write_s']:.0f} s | {run['rss_mib']:,} MiB |"
            )
    indexing = summary["indexing"]
    if indexing:
        lines += [
            "",
            f"Indexing (`vigil index`, {indexing['clip']}, {indexing['video_s']} s of video at 1 frame/s): "
            f"**{indexing['frames_per_s']:.1f} frames/s** (best of {len(indexing['runs'])}: "
            + ", ".join(f"{r['frames']} frames in {r['seconds']} s" for r in indexing["runs"])
            + f"), {indexing['frames_per_s']:.0f}x real time.",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, action="append", help="index sizes (default 100000; repeat)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--skip-indexing", action="store_true")
    args = parser.parse_args()
    for frames in args.frames or [100_000]:
        print(json.dumps(bench_search(frames, args.repeats)), flush=True)
    if not args.skip_indexing:
        print(json.dumps(bench_indexing()), flush=True)


if __name__ == "__main__":
    main()
