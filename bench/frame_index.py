"""The frame index's memory (`make bench`, part "frame_index"): Milvus lite runs inside the
detector and holds its whole index there, so the detector's RSS grows with the rows it keeps.

Two runs, each in a fresh process, writing rows as the detector does (batches of 16 frames of
8 cameras, a flush every 1,000 rows, unit vectors of the offline encoder's 384 dimensions):
- "uncapped": `--rows` rows, nothing deleted: RSS per row kept (least-squares slope);
- "capped": `--capped-rows` rows through the detector's Retention with `frames_max_rows =
  --cap` (the default), a pass every 4,000 rows written at 8 rows/s (a pass every 500 s of 8
  cameras): RSS once 1.5 times the cap was written (the medians of its first and last thirds),
  and how long a pass that forgets takes.

Usage: python bench/frame_index.py [--rows 100000] [--capped-rows 250000] [--cap 100000]
Prints one JSON line per run; bench/run.py turns them into the table of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DIM = 384  # the offline encoder's
CAMERAS = 8
BATCH = 16
SAMPLE_EVERY = 4_000
FRAME_STEP_MS = 125  # 8 cameras at 1 frame/s each


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def write_rows(rows: int, cap: int | None) -> dict:
    import numpy as np

    from vigil.services.common.thumbnail_store import ThumbnailStore, thumbnail_reference
    from vigil.services.detector.retention import Retention, RetentionSettings
    from vigil.services.detector.store import FrameRecord, HitStore, StoreSettings

    rng = np.random.default_rng(0)
    start_ms = int(time.time() * 1000) - rows * FRAME_STEP_MS
    with tempfile.TemporaryDirectory(prefix="vigil-frame-index-") as folder:
        settings = StoreSettings(uri=str(Path(folder) / "milvus"), thumbnails_dir=Path(folder) / "t", dim=DIM)
        with HitStore(settings) as store:
            retention = None
            if cap is not None:
                retention = Retention(
                    RetentionSettings(frames_max_rows=cap), store, ThumbnailStore(Path(folder) / "t")
                )
            gc.collect()
            samples, passes = [(0, round(rss_mib(), 1))], []
            for first in range(0, rows, BATCH):
                records = []
                for number in range(first, first + BATCH):
                    vector = rng.standard_normal(DIM).astype(np.float32)
                    ts_ms = start_ms + number * FRAME_STEP_MS
                    camera = f"cam-{number % CAMERAS}"
                    unit = vector / np.linalg.norm(vector)
                    records.append(FrameRecord(camera, ts_ms, unit, thumbnail_reference(camera, ts_ms)))
                store.add_frames(records)
                written = first + BATCH
                if written % SAMPLE_EVERY == 0:
                    if retention is not None:
                        started = time.perf_counter()
                        now_ms = start_ms + written * FRAME_STEP_MS
                        _, forgotten = retention.apply(now_ms, frame_rows_per_s=1000 / FRAME_STEP_MS)
                        if forgotten:
                            passes.append(time.perf_counter() - started)
                    gc.collect()
                    samples.append((written, round(rss_mib(), 1)))
            kept = store.count_frames()
    return {"rows": rows, "cap": cap, "kept": kept, "samples": samples, "pass_s": passes}


def summarize(rows: list[dict]) -> dict:
    uncapped = next(row for row in rows if row["cap"] is None)
    capped = next(row for row in rows if row["cap"] is not None)
    import numpy as np

    # Per row: the least-squares slope over the samples. RSS jumps while Milvus lite builds a
    # segment's index or compacts, so two samples alone can be far off.
    written, rss = np.array(uncapped["samples"], dtype=float).T
    per_row_kib = float(np.polyfit(written, rss, 1)[0]) * 1024
    # Under the cap: the medians of the first and last thirds of the samples taken from 1.5
    # times the cap on (one sample swings by ~50 MiB as segments are built and dropped).
    reached = [rss for written, rss in capped["samples"] if written >= 1.5 * capped["cap"]]
    third = max(1, len(reached) // 3)
    first_mib, last_mib = statistics.median(reached[:third]), statistics.median(reached[-third:])
    return {
        "uncapped": uncapped,
        "capped": capped,
        "kib_per_row": round(per_row_kib, 2),
        "capped_first_mib": round(first_mib, 1),
        "capped_last_mib": round(last_mib, 1),
        "capped_max_mib": max(reached),
        "capped_growth": round(last_mib / first_mib - 1, 3),
        "pass_s_median": round(statistics.median(capped["pass_s"]), 2) if capped["pass_s"] else None,
    }


def table(result: dict) -> str:
    summary = result["summary"]
    uncapped, capped = summary["uncapped"], summary["capped"]
    lines = [
        "| run | rows written | rows kept | RSS at start | RSS at the end | figure |",
        "|---|---|---|---|---|---|",
        f"| no cap | {uncapped['rows']:,} | {uncapped['kept']:,} | {uncapped['samples'][0][1]:.0f} MiB "
        f"| {uncapped['samples'][-1][1]:.0f} MiB | {summary['kib_per_row']:.1f} KiB per row kept |",
        f"| frames_max_rows {capped['cap']:,} | {capped['rows']:,} | {capped['kept']:,} "
        f"| {capped['samples'][0][1]:.0f} MiB | {capped['samples'][-1][1]:.0f} MiB "
        f"| from 1.5 times the cap on, median of the first third of samples to that of the last: "
        f"{summary['capped_first_mib']:.0f} to {summary['capped_last_mib']:.0f} MiB "
        f"({summary['capped_growth']:+.1%}), at most {summary['capped_max_mib']:.0f} MiB; "
        f"a pass over the cap {summary['pass_s_median']} s (median) |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--capped-rows", type=int, default=250_000)
    parser.add_argument("--cap", type=int, default=100_000)
    parser.add_argument("--one", choices=["uncapped", "capped"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one == "uncapped":
        print(json.dumps(write_rows(args.rows, None)), flush=True)
        return
    if args.one == "capped":
        print(json.dumps(write_rows(args.capped_rows, args.cap)), flush=True)
        return
    for one in ("uncapped", "capped"):  # each in a fresh process: RSS is the process's own
        command = [sys.executable, __file__, f"--one={one}", f"--rows={args.rows}"]
        command += [f"--capped-rows={args.capped_rows}", f"--cap={args.cap}"]
        print(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
