"""`vigil index`'s rate (`python bench/run.py --part index`): `index_video` over the demo's 60 s
clip (10 frames/s H.264, 768x576, a keyframe a second) at 1 frame/s into a fresh Milvus lite
store, as `vigil index` runs it (its onnxruntime thread count included); frames/s (wall) and
the process's CPU seconds a frame, each run in a process of its own, median of `--rounds`.

`--before DIR` measures the same in a checkout of an earlier commit too (PYTHONPATH=DIR),
interleaved round by round with this one, so that both see the same machine load:
    git worktree add /tmp/vigil-before main && python bench/index.py --before /tmp/vigil-before

Usage: python bench/index.py [--rounds 3] [--before DIR]
Prints one JSON line; bench/run.py turns it into the table of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_MS = 1_796_637_600_000

# One run, in a fresh process; only index_video's public signature is used, so it runs on
# earlier commits too. The encoder's thread count is `vigil index`'s where the code has one.
RUN = r"""
import json, os, resource, tempfile
from pathlib import Path
from vigil.services.search import indexing
if hasattr(indexing, "onnx_threads_per_worker"):
    os.environ.setdefault("VIGIL_ORT_THREADS", str(indexing.onnx_threads_per_worker()))
from vigil.fixtures.media import event_clip
from vigil.models.registry import EncoderSettings, create_encoder
from vigil.services.common.thumbnail_store import ThumbnailStore
from vigil.services.detector.store import HitStore, StoreSettings

def cpu_s():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

encoder = create_encoder(EncoderSettings(kind="offline"))
clip = event_clip()
with tempfile.TemporaryDirectory(prefix="vigil-index-bench-") as folder:
    with HitStore(StoreSettings(uri=str(Path(folder) / "milvus"), dim=encoder.info.dim)) as store:
        thumbnails = ThumbnailStore(Path(folder) / "thumbnails")
        # A first file warms onnxruntime up (its first calls are slower), as a long file would.
        indexing.index_video(clip, "warm", START_MS, store, encoder, thumbnails)
        cpu = cpu_s()
        done = indexing.index_video(clip, "hall", START_MS, store, encoder, thumbnails)
        cpu = cpu_s() - cpu
print(json.dumps({"clip": clip.name, "frames": done.frames, "seconds": round(done.elapsed_s, 3),
                  "cpu_s": round(cpu, 3), "ort_threads": os.environ.get("VIGIL_ORT_THREADS")}))
""".replace("START_MS", str(START_MS))


def one_run(pythonpath: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    env.pop("VIGIL_ORT_THREADS", None)
    output = subprocess.run(
        [sys.executable, "-c", RUN], env=env, cwd=pythonpath, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def summarize_runs(runs: list[dict]) -> dict:
    return {
        "runs": runs,
        "frames_per_s": round(statistics.median(r["frames"] / r["seconds"] for r in runs), 1),
        "cpu_ms_per_frame": round(statistics.median(1000 * r["cpu_s"] / r["frames"] for r in runs)),
    }


def commit_of(path: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return result.stdout.strip() or str(path)


def measure(rounds: int, before: Path | None = None) -> dict:
    load_before = [round(x, 2) for x in os.getloadavg()]
    versions = {f"this commit ({commit_of(ROOT)})": ROOT}
    if before:
        versions[f"before ({commit_of(before)})"] = before
    runs: dict[str, list[dict]] = {name: [] for name in versions}
    for _ in range(rounds):
        for name, path in versions.items():
            runs[name].append(one_run(path))
    first = next(iter(runs.values()))[0]
    return {
        "clip": first["clip"],
        "video_s": 60,
        "load_average": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "versions": {name: summarize_runs(r) for name, r in runs.items()},
    }


def table(result: dict) -> str:
    lines = [
        f"`vigil index` over {result['clip']} ({result['video_s']} s at 1 frame/s); the machine's load "
        f"average (1, 5, 15 min) {', '.join(map(str, result['load_average']))} before, "
        f"{', '.join(map(str, result.get('load_average_after', [])))} after:",
        "",
        "| code | frames/s (median) | x real time | CPU ms a frame | runs (s for 60 frames) |",
        "|---|---|---|---|---|",
    ]
    for name, version in result["versions"].items():
        seconds = ", ".join(f"{r['seconds']:.2f}" for r in version["runs"])
        lines.append(
            f"| {name} | {version['frames_per_s']:.1f} | {version['frames_per_s']:.0f}x "
            f"| {version['cpu_ms_per_frame']} | {seconds} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="a checkout of an earlier commit to compare with")
    args = parser.parse_args()
    print(json.dumps(measure(args.rounds, args.before)), flush=True)


if __name__ == "__main__":
    main()
