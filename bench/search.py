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
QUANTISATION = 0.005  # the cosine error of 8-bit codes of unit vectors, about
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


def moments_recall(cached: list, milvus: list) -> float:
    """The share of Milvus' moments that the cached search returns too: a moment is found when
    a moment of the same camera overlaps its time span."""
    if not milvus:
        return 1.0
    found = sum(
        any(
            c.camera_id == m.camera_id and c.start_ts_ms <= m.end_ts_ms and m.start_ts_ms <= c.end_ts_ms
            for c in cached
        )
        for m in milvus
    )
    return found / len(milvus)


def time_searches(search, texts, repeats, filters, warm_cache) -> list[float]:
    """Milliseconds of each whole `FrameSearch.search`, each text embedded afresh."""
    total = []
    for _ in range(repeats):
        for text in texts:
            search._prompt_cache = dict(warm_cache)
            started = time.perf_counter()
            search.search(text, limit=20, **filters)
            total.append((time.perf_counter() - started) * 1000)
    return total


def refresh_cost(store, cache, start_ms: int, rounds: int = 10) -> dict:
    """One second of 8 cameras written (through the owner's server, so journaled): how long
    until the cache finds them (the refresh thread's period, 1 s, plus its work), and what a
    refresh applying them costs (the journal's records folded, the rows read back by id from
    Milvus, added to FAISS), timed here on the same rows."""
    import numpy as np

    from vigil.pipelines.frame_cache_plan import plan_refresh
    from vigil.services.detector.store import FrameRecord

    rng = np.random.default_rng(1)
    applies, delays = [], []
    for round_ in range(rounds):
        vectors = rng.normal(0, 1, (CAMERAS, cache.vectors.dim)).astype(np.float32)
        ts = start_ms + round_ * 1000
        records = [FrameRecord(f"cam-new-{i}", ts, vectors[i]) for i in range(CAMERAS)]
        written = time.perf_counter()
        store.add_frames(records)
        while not cache.search(vectors[0] / np.linalg.norm(vectors[0]), 1, ["cam-new-0"], ts, ts):
            time.sleep(0.01)
        delays.append((time.perf_counter() - written) * 1000)
        journal = [
            {
                "op": "upsert",
                "collection": cache.collection,
                "partition": "",
                "ids": [r.frame_id for r in records],
            }
        ]
        started = time.perf_counter()
        cache.apply(plan_refresh(journal, cache.collection))
        applies.append((time.perf_counter() - started) * 1000)
    return {
        "written_to_found_p50_ms": round(percentile(delays, 50)),
        "written_to_found_max_ms": round(max(delays)),
        "refresh_of_8_rows_p50_ms": round(percentile(applies, 50), 1),
    }


def bench_search(frames: int, repeats: int, milvus_too: bool) -> dict:
    import numpy as np

    from vigil.models.registry import EncoderSettings, create_encoder
    from vigil.services.detector.store import FrameRecord, HitStore, StoreSettings
    from vigil.services.search import FrameSearch
    from vigil.services.search.frame_cache import FrameCache, FrameCacheSettings

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
            rss_before_cache = rss_mib()
            cache = FrameCache(store, FrameCacheSettings(max_frames=max(frames * 2, 2_000_000)))
            if not cache.wait_ready(3_600):
                raise RuntimeError("the search cache did not load")
            rss_cache = rss_mib() - rss_before_cache
            search = FrameSearch(store, encoder, cache)
            milvus_search = FrameSearch(store, encoder)
            cases = {
                "all cameras, all time": {},
                "one camera, last hour": {"camera_ids": ["cam-3"], "since_ts_ms": now_ms - 3_600_000},
            }
            # Warm: both languages' background prompts embedded once, as a running search keeps them;
            # every timed search then embeds its own text afresh (its prompts are dropped again).
            for text in WARM_TEXTS:
                search.search(text, limit=20)
            warm_cache = dict(search._prompt_cache)
            milvus_search._prompt_cache = dict(warm_cache)
            timings: dict[str, dict[str, list[float]]] = {}
            recall: dict[str, dict[str, float]] = {}
            for name, filters in cases.items():
                embed, cached_call = [], []
                for text in TEXTS:
                    search._prompt_cache = dict(warm_cache)
                    started = time.perf_counter()
                    vector, _ = search.text_vector(text)
                    embed.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    cache.search(vector, 200, filters.get("camera_ids"), filters.get("since_ts_ms"), None)
                    cached_call.append((time.perf_counter() - started) * 1000)
                timings[name] = {
                    "total_ms": time_searches(search, TEXTS, repeats, filters, warm_cache),
                    "embed_ms": embed,
                    "cache_ms": cached_call,
                }
                if milvus_too:
                    timings[name]["milvus_total_ms"] = time_searches(
                        milvus_search, TEXTS, max(1, repeats // 2), filters, warm_cache
                    )
                    frames_found, as_good, moments_found = [], [], []
                    for text in TEXTS:
                        vector, _ = search.text_vector(text)
                        cached = cache.search(
                            vector, 200, filters.get("camera_ids"), filters.get("since_ts_ms"), None
                        )
                        (milvus,) = store.search_frames(
                            [vector], 200, filters.get("camera_ids"), filters.get("since_ts_ms")
                        )
                        ids = {m.frame_id for m in cached}
                        frames_found.append(sum(m.frame_id in ids for m in milvus) / max(1, len(milvus)))
                        # Up to ties and approximation: a Milvus frame the cache left out for one
                        # scoring at least as high (within the SQ8 codes' error) is not a miss.
                        floor = min((m.score for m in cached), default=1.0) - QUANTISATION
                        as_good.append(
                            sum(m.frame_id in ids or m.score <= floor + 2 * QUANTISATION for m in milvus)
                            / max(1, len(milvus))
                        )
                        moments_found.append(
                            moments_recall(
                                search.search(text, limit=20, **filters),
                                milvus_search.search(text, limit=20, **filters),
                            )
                        )
                    recall[name] = {
                        "frames_at_200": round(float(np.mean(frames_found)), 3),
                        "frames_at_200_up_to_ties": round(float(np.mean(as_good)), 3),
                        "moments_at_20": round(float(np.mean(moments_found)), 3),
                    }
            refresh = refresh_cost(store, cache, now_ms + 60_000)
            rss = rss_mib()
            cache_bytes = cache.vectors.memory_bytes()
            load_s = cache.load_s
            cache.close()
    return {
        "frames": frames,
        "sources": len(sources),
        "write_s": round(write_s, 1),
        "rss_mib": round(rss),
        "cache_load_s": round(load_s or 0, 1),
        "cache_rss_mib": round(rss_cache),
        "cache_index_mib": round(cache_bytes / 2**20),
        "refresh": refresh,
        "recall": recall,
        "searches": {
            name: {
                "n": len(t["total_ms"]),
                "p50_ms": round(percentile(t["total_ms"], 50), 1),
                "p95_ms": round(percentile(t["total_ms"], 95), 1),
                "embed_p50_ms": round(percentile(t["embed_ms"], 50), 1),
                "cache_p50_ms": round(percentile(t["cache_ms"], 50), 2),
                "cache_p95_ms": round(percentile(t["cache_ms"], 95), 2),
            }
            | (
                {
                    "milvus_n": len(t["milvus_total_ms"]),
                    "milvus_p50_ms": round(percentile(t["milvus_total_ms"], 50), 1),
                    "milvus_p95_ms": round(percentile(t["milvus_total_ms"], 95), 1),
                }
                if "milvus_total_ms" in t
                else {}
            )
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
        "| frames indexed | search | p50 | p95 | cache call p50 / p95 | text embedding p50 "
        "| Milvus alone p50 / p95 | recall vs Milvus: frames@200 (up to ties) / moments@20 | searches |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in summary["search"]:
        for name, s in run["searches"].items():
            milvus = (
                f"{s['milvus_p50_ms']:.0f} / {s['milvus_p95_ms']:.0f} ms"
                if "milvus_p50_ms" in s
                else "not run"
            )
            recall = run.get("recall", {}).get(name)
            recall_text = (
                f"{recall['frames_at_200']:.3f} ({recall['frames_at_200_up_to_ties']:.3f}) / "
                f"{recall['moments_at_20']:.3f}"
                if recall
                else "-"
            )
            lines.append(
                f"| {run['frames']:,} | {name} | {s['p50_ms']:.0f} ms | {s['p95_ms']:.0f} ms "
                f"| {s['cache_p50_ms']:.1f} / {s['cache_p95_ms']:.1f} ms | {s['embed_p50_ms']:.0f} ms "
                f"| {milvus} | {recall_text} | {s['n']} |"
            )
    lines += [
        "",
        "| frames indexed | writing them | cache load | cache RSS | cache index "
        "| written to found p50 / max | a refresh of 8 rows | process RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in summary["search"]:
        refresh = run["refresh"]
        lines.append(
            f"| {run['frames']:,} | {run['write_s']:.0f} s | {run['cache_load_s']:.0f} s "
            f"| {run['cache_rss_mib']:,} MiB "
            f"| {run['cache_index_mib']:,} MiB | {refresh['written_to_found_p50_ms']:,} / "
            f"{refresh['written_to_found_max_ms']:,} ms | {refresh['refresh_of_8_rows_p50_ms']:.1f} ms "
            f"| {run['rss_mib']:,} MiB |"
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
    parser.add_argument(
        "--frames", type=int, action="append", help="index sizes (default 100000 and 1000000; repeat)"
    )
    parser.add_argument(
        "--milvus-up-to", type=int, default=100_000, help="also time Milvus alone up to this many frames"
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--skip-indexing", action="store_true")
    args = parser.parse_args()
    for frames in args.frames or [100_000, 1_000_000]:
        print(json.dumps(bench_search(frames, args.repeats, frames <= args.milvus_up_to)), flush=True)
    if not args.skip_indexing:
        print(json.dumps(bench_indexing()), flush=True)


if __name__ == "__main__":
    main()
