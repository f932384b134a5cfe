"""Milvus lite's memory under each of pyarrow's pools (`make bench`, part "lite_pools"): why the
detector points pyarrow at jemalloc (services/detector/store/connection.py
`use_arrow_pool_that_returns_memory`).

Milvus lite runs inside the detector and allocates from pyarrow's default pool. Every flush
writes a small Parquet segment and the compactions that follow merge and free them again, so
the pool sees as much freed as allocated. One run per pool, each in a fresh process with
ARROW_DEFAULT_MEMORY_POOL set (the store leaves an operator's choice alone), writes hits as the
detector does: each event is confirmed, then closed, two upserts of one hit id, each flushed
(services/detector/service.py `_persist`). RSS is read every 250 events.

Usage: python bench/lite_pools.py [--events 3000] [--pools mimalloc,jemalloc,system]
Prints one JSON line per pool; bench/run.py turns them into the table of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from frame_index import DIM, rss_mib  # the same process RSS, the offline encoder's dimensions

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLE_EVERY = 250
# The first events build the collection's first segments and indexes and warm the pools;
# growth is measured from here on.
WARMUP_EVENTS = 500
EVENT_STEP_MS = 3_000
POOLS = ("mimalloc", "jemalloc", "system")  # mimalloc is pyarrow's own default


def write_events(events: int) -> dict:
    import numpy as np

    from vigil.services.common.contract import HitMessage, derive_hit_id
    from vigil.services.common.thumbnail_store import thumbnail_reference
    from vigil.services.detector.store import (
        HitRecord,
        HitStore,
        StoreSettings,
        use_arrow_pool_that_returns_memory,
    )

    rng = np.random.default_rng(0)
    start_ms = int(time.time() * 1000) - events * EVENT_STEP_MS
    with tempfile.TemporaryDirectory(prefix="vigil-lite-pools-") as folder:
        settings = StoreSettings(uri=str(Path(folder) / "milvus"), thumbnails_dir=Path(folder) / "t", dim=DIM)
        with HitStore(settings) as store:
            pool = use_arrow_pool_that_returns_memory()  # what the store left in use
            samples = []
            started = time.perf_counter()
            for number in range(events):
                event_start_ms = start_ms + number * EVENT_STEP_MS
                camera = f"cam-{number % 8}"
                vector = rng.standard_normal(DIM).astype(np.float32)
                for end_ts_ms in (None, event_start_ms + EVENT_STEP_MS // 2):  # confirmed, closed
                    hit = HitMessage(
                        hit_id=derive_hit_id(camera, "q-bench", event_start_ms),
                        camera_id=camera,
                        query_id="q-bench",
                        event_start_ts_ms=event_start_ms,
                        peak_ts_ms=event_start_ms + 1,
                        end_ts_ms=end_ts_ms,
                        peak_score=0.5,
                        thumbnail=thumbnail_reference(camera, event_start_ms + 1),
                        encoder="bench",
                    )
                    store.upsert_hits([HitRecord(hit, vector / np.linalg.norm(vector))])
                if (number + 1) % SAMPLE_EVERY == 0:
                    gc.collect()
                    samples.append((number + 1, round(rss_mib(), 1)))
            ms_per_event = (time.perf_counter() - started) / events * 1000
    return {"pool": pool, "events": events, "samples": samples, "ms_per_event": round(ms_per_event, 2)}


def summarize(rows: list[dict]) -> dict:
    import numpy as np

    pools = {}
    for row in rows:
        after = [(written, rss) for written, rss in row["samples"] if written >= WARMUP_EVENTS]
        written, rss = np.array(after, dtype=float).T
        # RSS jumps as segments are merged, so the slope over every sample rather than two.
        slope = float(np.polyfit(written, rss, 1)[0]) * 1000
        third = max(1, len(after) // 3)
        first_mib = statistics.median(rss[:third].tolist())
        last_mib = statistics.median(rss[-third:].tolist())
        pools[row["pool"]] = {
            "first_mib": round(first_mib, 1),
            "last_mib": round(last_mib, 1),
            "growth_mib": round(last_mib - first_mib, 1),
            "mib_per_1000_events": round(slope, 1),
            "ms_per_event": row["ms_per_event"],
        }
    return {"events": rows[0]["events"], "warmup_events": WARMUP_EVENTS, "pools": pools, "runs": rows}


def table(result: dict) -> str:
    summary = result["summary"]
    lines = [
        f"{summary['events']:,} events, each confirmed and closed (two flushed upserts); growth from "
        f"event {summary['warmup_events']:,} on.",
        "",
        "| pyarrow pool | RSS, median of the first third | of the last third | growth "
        "| slope per 1,000 events | write, per event |",
        "|---|---|---|---|---|---|",
    ]
    for pool, row in summary["pools"].items():
        chosen = " (the detector's)" if pool == "jemalloc" else ""
        lines.append(
            f"| {pool}{chosen} | {row['first_mib']:.0f} MiB | {row['last_mib']:.0f} MiB "
            f"| {row['growth_mib']:+.0f} MiB | {row['mib_per_1000_events']:+.1f} MiB "
            f"| {row['ms_per_event']:.1f} ms |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3_000)
    parser.add_argument("--pools", default=",".join(POOLS))
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(write_events(args.events)), flush=True)
        return
    for pool in args.pools.split(","):  # each in a fresh process: RSS is the process's own
        environment = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": pool}
        command = [sys.executable, __file__, "--one", f"--events={args.events}"]
        output = subprocess.run(command, check=True, capture_output=True, text=True, env=environment)
        print(output.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
