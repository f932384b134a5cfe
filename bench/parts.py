"""The parts of `make bench`, and how bench/run.py runs each and writes its table: PARTS maps a
part's name to its runner ((quick, rounds) -> the result bench/run.py stores in
bench/results/<part>.json) and its table writer (result -> the markdown of its section in
BENCHMARKS.md); HEADINGS holds each section's heading. Most parts hand both to their own bench
module (bench/<part>.py), imported only when the part runs; the encoders and ingest parts
aggregate their processes' lines here.

bench/ is on sys.path (bench/run.py puts it there), so bench modules import as top-level modules.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP_RUNTIMES = ("torch-eager-fp32", "onnx-fp32", "onnx-int8")
ENCODER_RUNTIMES = (*CLIP_RUNTIMES, "offline")
BATCHES = (1, 8, 32)


def ensure_random_clip_export() -> None:
    from encoders import RANDOM_EXPORT_DIR

    from vigil.models.clip.config import ClipSpec
    from vigil.models.clip.export import add_precisions, export_clip

    if (RANDOM_EXPORT_DIR / "manifest.json").exists():
        # Derives int8 again if an older recipe made it (models/clip/manifest.py); else does nothing.
        add_precisions(RANDOM_EXPORT_DIR / "manifest.json", ["fp32", "int8"])
    else:
        print(f"exporting random-init ViT-B-32 to {RANDOM_EXPORT_DIR} (speed only) ...", flush=True)
        export_clip(
            ClipSpec(model="ViT-B-32"),
            out_dir=RANDOM_EXPORT_DIR,
            precisions=("fp32", "int8"),
            random_init=True,
        )


def run_encoder_process(runtime: str, batch: int, quick: bool) -> dict:
    command = [
        sys.executable,
        str(ROOT / "bench" / "encoders.py"),
        "--runtime",
        runtime,
        "--batch",
        str(batch),
    ]
    if quick:
        command += ["--min-repeats", "2", "--min-seconds", "0"]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def bench_encoders(quick: bool, rounds: int) -> dict:
    """Each (runtime, batch) runs `rounds` times in fresh processes, the rounds interleaved so
    that a burst of noise on this shared machine hits every runtime alike; the figure is the
    median over rounds of each process's median batch time."""
    ensure_random_clip_export()
    cases = [(runtime, batch) for runtime in ENCODER_RUNTIMES for batch in BATCHES]
    samples: dict[tuple[str, int], list[dict]] = {case: [] for case in cases}
    for round_index in range(rounds):
        for runtime, batch in cases:
            row = run_encoder_process(runtime, batch, quick)
            samples[(runtime, batch)].append(row)
            print(
                f"  round {round_index + 1}/{rounds} {runtime:18s} batch {batch:>2}: "
                f"{row['images_per_s']:8.1f} images/s",
                flush=True,
            )
    rows = []
    for (runtime, batch), runs in samples.items():
        batch_seconds = statistics.median(run["median_batch_s"] for run in runs)
        rates = [run["images_per_s"] for run in runs]
        rows.append(
            {
                "runtime": runtime,
                "batch": batch,
                "threads": runs[0]["threads"],
                "rounds": len(runs),
                "timed_batches": sum(run["repeats"] for run in runs),
                "images_per_s": batch / batch_seconds,
                "ms_per_image": 1000 * batch_seconds / batch,
                "images_per_s_range": [min(rates), max(rates)],
            }
        )
    eager = {r["batch"]: r["images_per_s"] for r in rows if r["runtime"] == "torch-eager-fp32"}
    for row in rows:
        if row["runtime"] in CLIP_RUNTIMES:  # the offline encoder is another model: no ratio
            row["speedup_vs_torch_eager"] = row["images_per_s"] / eager[row["batch"]]
    return {"rows": rows}


def encoders_table(result: dict) -> str:
    lines = [
        "| runtime | batch | images/s (median) | ms/image | x PyTorch eager | images/s range "
        "| rounds x batches |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for row in result["rows"]:
        low, high = row["images_per_s_range"]
        speedup = row.get("speedup_vs_torch_eager")
        lines.append(
            f"| {row['runtime']} | {row['batch']} | {row['images_per_s']:.1f} | {row['ms_per_image']:.1f} "
            f"| {'-' if speedup is None else f'{speedup:.2f}'} | {low:.1f}-{high:.1f} | {row['rounds']} x "
            f"{row['timed_batches'] // row['rounds']} |"
        )
    return "\n".join(lines)


def bench_ingest(quick: bool, rounds: int) -> dict:
    """bench/ingest.py runs each case in a process of its own (median of its runs) and prints
    one JSON line per case; `rounds` is not used: each case repeats inside bench/ingest.py."""
    command = [sys.executable, str(ROOT / "bench" / "ingest.py")]
    if quick:
        command += ["--runs", "1", "--seconds", "5"]
    rows = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT) as process:
        for line in process.stdout:
            row = json.loads(line)
            rows.append(row)
            print(
                f"  {row['source']:4s} GOP {row['gop_s']:.0f} s {row['mode']:20s}: "
                f"{row['cpu_s_per_camera_s']:.4f} CPU-s per camera-s, "
                f"{row['cameras_per_core']:.0f} cameras/core",
                flush=True,
            )
    if process.returncode:
        raise SystemExit(f"bench/ingest.py failed with exit code {process.returncode}")
    return {"rows": rows}


def ingest_table(result: dict) -> str:
    lines = [
        "| source | GOP | decode mode | published frames/s | CPU-s per camera-s (median) | range "
        "| cameras per core | runs |",
        "|---|---:|---|---:|---:|---|---:|---:|",
    ]
    for row in result["rows"]:
        low, high = row["cpu_s_per_camera_s_range"]
        lines.append(
            f"| {row['source']} | {row['gop_s']:.0f} s | {row['mode']} | {row['published_per_camera_s']:.2f} "
            f"| {row['cpu_s_per_camera_s']:.4f} | {low:.4f}-{high:.4f} | {row['cameras_per_core']:.0f} "
            f"| {row['runs']} |"
        )
    return "\n".join(lines)


def bench_temporal(quick: bool, rounds: int) -> dict:
    """bench/temporal.py: the GRU's held-out figures (from its training report) and its scoring
    speed, one process per (threads, batch) and round."""
    import temporal

    return temporal.bench(quick, rounds)


def temporal_table(result: dict) -> str:
    import temporal

    return temporal.table(result)


def bench_detector(quick: bool, rounds: int) -> dict:
    """bench/detector.py runs the encoder alone and each case (1, 4, 8 real RTSP cameras through
    ingest, the local broker and the detector) in processes of its own and prints one JSON line
    each; `rounds` is not used: one run per case (each takes 1.5 to 2 minutes)."""
    import detector

    command = [sys.executable, str(ROOT / "bench" / "detector.py")]
    if quick:
        command += ["--cases=1:independent:offline", "--seconds=10", "--warmup-s=2", "--encoder-seconds=0.5"]
    else:
        ensure_random_clip_export()  # the CLIP int8 case (speed only)
    rows = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT) as process:
        for line in process.stdout:
            row = json.loads(line)
            rows.append(row)
            print(detector.describe(row), flush=True)
    if process.returncode:
        raise SystemExit(f"bench/detector.py failed with exit code {process.returncode}")
    return detector.summarize(rows)


def detector_table(result: dict) -> str:
    import detector

    return detector.table(result)


def bench_alerter(quick: bool, rounds: int) -> dict:
    """bench/alerter.py: speech synthesis times (`rounds` processes, samples pooled) and hit-to-alert
    latency through the real alerter service on a local broker (one process per case)."""
    import alerter

    return alerter.bench(quick, rounds)


def alerter_table(result: dict) -> str:
    import alerter

    return alerter.table(result)


def bench_openvino(quick: bool, rounds: int) -> dict:
    """bench/openvino_cpu.py: OpenVINO's CPU runtime against onnxruntime on the same ONNX files
    (CLIP image tower fp32 and int8, the offline encoder's two networks and the encoder end to
    end), one process per (model, batch) and round."""
    import openvino_cpu

    ensure_random_clip_export()
    return openvino_cpu.bench(quick, rounds)


def openvino_table(result: dict) -> str:
    import openvino_cpu

    return openvino_cpu.table(result)


def bench_regions(quick: bool, rounds: int) -> dict:
    """bench/regions.py: encoder calls per camera-second on a still and a busy hall, both embed modes."""
    import regions

    return regions.bench(quick, rounds)


def regions_table(result: dict) -> str:
    import regions

    return regions.table(result)


def bench_chaos(quick: bool, rounds: int) -> dict:
    """bench/chaos.py: a clean `vigil up` run on the demo clip, then `rounds` runs with every
    service killed at random points (seeded) and poison frames, each held against the clean run."""
    import chaos

    command = [sys.executable, str(ROOT / "bench" / "chaos.py"), f"--runs={1 if quick else rounds}"]
    rows = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT) as process:
        for line in process.stdout:
            rows.append(json.loads(line))
            print(line.strip(), flush=True)
    if process.returncode:
        raise SystemExit(f"bench/chaos.py failed with exit code {process.returncode}")
    return chaos.summarize(rows)


def chaos_table(result: dict) -> str:
    import chaos

    return chaos.table(result)


SOAK_FRAMES_MAX_ROWS = 2_000


def bench_soak(quick: bool, rounds: int) -> dict:
    """bench/soak.py: `vigil up` on 8 real RTSP cameras for 30 minutes (2 in --quick), every
    process's RSS, open files and threads, and the disk var/ takes; `rounds` is not used."""
    command = [sys.executable, str(ROOT / "bench" / "soak.py")]
    if quick:
        command += ["--minutes=2", "--every-s=10", "--warmup-min=0.5", "--cameras=2"]
    else:
        # A frame index budget that 8 cameras fill within the warm-up (~8 rows/s: 4 minutes), so
        # growth after it is what leaks, not the index filling up to its budget by design (the
        # default 100,000 rows take 3.5 h; part frame_index measures the plateau under it).
        command += [f"--frames-max-rows={SOAK_FRAMES_MAX_ROWS}"]
    samples, summary = [], None
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT) as process:
        for line in process.stdout:
            row = json.loads(line)
            if "summary" in row:
                summary = row["summary"]
            else:
                samples.append(row)
                print(f"  minute {row['minute']}: {json.dumps(row['processes'])}", flush=True)
    if process.returncode or summary is None:
        raise SystemExit(f"bench/soak.py failed with exit code {process.returncode}")
    return {"summary": summary, "samples": samples}


def soak_table(result: dict) -> str:
    import soak

    return soak.table(result)


def bench_frame_index(quick: bool, rounds: int) -> dict:
    """bench/frame_index.py: the detector's RSS per frame index row in Milvus lite, without a
    row cap and with one (fewer rows in --quick); `rounds` is not used."""
    import frame_index

    command = [sys.executable, str(ROOT / "bench" / "frame_index.py")]
    if quick:
        command += ["--rows=12000", "--capped-rows=16000", "--cap=4000"]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    rows = [json.loads(line) for line in output.splitlines() if line.strip()]
    return {"summary": frame_index.summarize(rows)}


def frame_index_table(result: dict) -> str:
    import frame_index

    return frame_index.table(result)


def bench_lite_pools(quick: bool, rounds: int) -> dict:
    """bench/lite_pools.py: Milvus lite's RSS over hit writes under each pyarrow pool, each in a
    fresh process (fewer events in --quick); `rounds` is not used."""
    import lite_pools

    command = [sys.executable, str(ROOT / "bench" / "lite_pools.py")]
    if quick:
        command += ["--events=1000"]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    rows = [json.loads(line) for line in output.splitlines() if line.strip()]
    return {"summary": lite_pools.summarize(rows)}


def lite_pools_table(result: dict) -> str:
    import lite_pools

    return lite_pools.table(result)


def bench_search(quick: bool, rounds: int) -> dict:
    """bench/search.py: search latency with the in-process frame index cache over 100,000 and
    1,000,000 frames in Milvus lite (Milvus alone at 100,000), and the rate of `vigil index`
    (10,000 frames and 3 repeats in --quick); `rounds` is not used."""
    import search

    command = [sys.executable, str(ROOT / "bench" / "search.py")]
    if quick:
        command += ["--frames=10000", "--repeats=3"]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    rows = [json.loads(line) for line in output.splitlines() if line.strip()]
    return {"summary": search.summarize(rows)}


def search_table(result: dict) -> str:
    import search

    return search.table(result)


def bench_index(quick: bool, rounds: int) -> dict:
    """bench/index.py: `vigil index`'s rate on the demo's clip, `rounds` processes (2 in --quick);
    with VIGIL_BENCH_BEFORE=DIR (a checkout of an earlier commit) that commit's too, interleaved."""
    import index

    before = os.environ.get("VIGIL_BENCH_BEFORE")
    return {"summary": index.measure(2 if quick else rounds, Path(before) if before else None)}


def index_table(result: dict) -> str:
    import index

    return index.table(result["summary"])


PARTS = {
    "encoders": (bench_encoders, encoders_table),
    "ingest": (bench_ingest, ingest_table),
    "temporal": (bench_temporal, temporal_table),
    "detector": (bench_detector, detector_table),
    "alerter": (bench_alerter, alerter_table),
    "openvino": (bench_openvino, openvino_table),
    "regions": (bench_regions, regions_table),
    "chaos": (bench_chaos, chaos_table),
    "soak": (bench_soak, soak_table),
    "frame_index": (bench_frame_index, frame_index_table),
    "lite_pools": (bench_lite_pools, lite_pools_table),
    "search": (bench_search, search_table),
    "index": (bench_index, index_table),
}
# Parts that measure a package the default install leaves out (pyproject extras of the same name).
OPTIONAL_PACKAGES = {"openvino": ("openvino",)}
HEADINGS = {
    "encoders": "Encoders (image embedding throughput)",
    "ingest": "Ingest (1280x720 H.264 camera at 25 frames/s, 1 frame/s published)",
    "temporal": "GRU temporal scorer (held-out event detection, scoring speed)",
    "detector": "Detector end to end (real RTSP cameras at 1 frame/s, embedded default, offline + CLIP int8)",
    "alerter": "Alerter (speech synthesis, hit-to-alert latency through the service on the local broker)",
    "openvino": "OpenVINO against onnxruntime on CPU (same ONNX files: CLIP image tower, offline encoder)",
    "regions": "Change detection: encoder work on a still hall and a busy one (one camera, 2 frames/s)",
    "chaos": "Chaos: kill -9 of every service at random points of a `vigil up` run, against a clean run",
    "soak": "Soak and disk: `vigil up` on 8 real RTSP cameras for 30 minutes",
    "frame_index": "Frame index memory: Milvus lite's RSS per row, without and with `frames_max_rows`",
    "lite_pools": "Milvus lite's memory under each pyarrow pool (hit writes as the detector makes them)",
    "search": "Retrospective search: 1,000,000 frames, in-process cache against Milvus lite; `vigil index`",
    "index": "`vigil index`: indexing a recorded file (decode, embed, write) at 1 frame/s",
}
