"""OpenVINO's CPU runtime against onnxruntime on the same ONNX files (not named openvino.py: bench/
is first on sys.path when a bench script runs, and would shadow the package).

    python bench/run.py --part openvino              # into bench/results/openvino.json + BENCHMARKS.md
    python bench/openvino_cpu.py --model clip-image-int8 --batch 8   # one process; prints one JSON line

Models: CLIP ViT-B-32's image tower (random-init export, speed only) fp32 and int8 (the files
`vigil models export-clip` writes), and the offline encoder's two networks under var/models/offline
(MobileNetV2 classifier, YOLOv3-tiny detector), and that encoder end to end with both networks in
either runtime. Each process loads one model in every runtime, feeds them the same preprocessed
batch of camera-sized frames and times them interleaved (one run of each in turn), so a burst of
noise on a shared machine hits all alike; a figure is the median of those runs, then the median
over `rounds` processes. Both runtimes get the same thread count,
keep the batch axis dynamic as deployed, and are checked against each other: the max abs
difference of their outputs on that batch.

OpenVINO runs twice: at f32 (INFERENCE_PRECISION_HINT f32: what an exact replacement would run)
and at its default, which is bf16 on CPUs with avx512_bf16 or AMX (another precision, recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 8)
THREADS = int(os.environ.get("VIGIL_BENCH_THREADS", "2"))
RUNTIMES = ("onnxruntime", "openvino-f32", "openvino-default")
MODELS = ("clip-image-fp32", "clip-image-int8", "mobilenet_v2", "yolov3_tiny", "offline-encoder")
OFFLINE_NETWORKS = ("mobilenet_v2", "yolov3_tiny")


def model_file(model: str) -> Path:
    if model.startswith("clip-image-"):
        sys.path.insert(0, str(ROOT / "bench"))
        from encoders import RANDOM_EXPORT_DIR

        from vigil.models.clip.manifest import read_manifest

        precision = model.removeprefix("clip-image-")
        return RANDOM_EXPORT_DIR / read_manifest(RANDOM_EXPORT_DIR)["files"][precision]["image"]["file"]
    from vigil.models.offline.build import offline_dir

    return offline_dir() / f"{model}.onnx"


def model_input(model: str, batch: int):
    """The batch each model sees in production: its own preprocessing of camera-sized frames (the
    offline encoder end to end takes the frames themselves)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from encoders import sample_images

    frames = sample_images(batch)
    if model == "offline-encoder":
        return frames
    if model.startswith("clip-image-"):
        from encoders import clip_input

        return clip_input(batch)
    from vigil.models.offline.preprocess import imagenet_input, yolo_input

    if model == "mobilenet_v2":
        return np.stack([imagenet_input(frame) for frame in frames])
    return np.stack([yolo_input(frame)[0] for frame in frames])


class OpenVinoSession:
    """One ONNX file compiled by OpenVINO for the CPU, called like an onnxruntime session's run()."""

    def __init__(self, path: Path, runtime: str, threads: int):
        import openvino as ov

        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
        if runtime == "openvino-f32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        compiled = ov.Core().compile_model(str(path), "CPU", config)
        self.request = compiled.create_infer_request()
        # What the plugin really chose (e.g. bf16 by default where the CPU has it), not what was asked.
        self.precision = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()

    def run(self, output_names, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        (batch,) = feeds.values()
        self.request.infer([batch])
        return [self.request.get_output_tensor(0).data.copy()]


def make_runner(runtime: str, model: str, threads: int):
    """A callable batch -> output array, and the precision the runtime says it runs at."""
    if model == "offline-encoder":
        return _offline_encoder_runner(runtime, threads)
    path = model_file(model)
    if runtime == "onnxruntime":
        from vigil.models.onnx_session import create_session

        session = create_session(path, device="cpu", threads=threads)
        name = session.get_inputs()[0].name
        precision = "int8" if ".int8." in path.name else "f32"
    else:
        session = OpenVinoSession(path, runtime, threads)
        name, precision = "(the only input)", session.precision
    return (lambda batch: session.run(None, {name: batch})[0]), precision


def _offline_encoder_runner(runtime: str, threads: int):
    """The offline encoder end to end (preprocessing, both networks, ConSE), its two networks run
    by `runtime`: what a frame costs the default CPU encoder either way."""
    from vigil.models.offline.encoder import OfflineEncoder

    os.environ["VIGIL_ORT_THREADS"] = str(threads)  # create_session's thread count, as for OpenVINO
    encoder = OfflineEncoder.load(device="cpu")
    precision = "f32"
    if runtime != "onnxruntime":
        classifier, detector = (
            OpenVinoSession(model_file(name), runtime, threads) for name in OFFLINE_NETWORKS
        )
        encoder.classifier.session, encoder.detector.session = classifier, detector
        precision = classifier.precision
    return encoder.embed_images, precision


def measure(model: str, batch: int, threads: int, min_repeats: int, min_seconds: float) -> dict:
    inputs = model_input(model, batch)
    runners, results = {}, {}
    for runtime in RUNTIMES:
        started = time.perf_counter()
        runner, precision = make_runner(runtime, model, threads)
        output = runner(inputs)  # first call: compilation / kernel selection, not throughput
        runners[runtime] = runner
        results[runtime] = {
            "inference_precision": precision,
            "load_and_first_call_s": time.perf_counter() - started,
            "output": output,
        }
    times: dict[str, list[float]] = {runtime: [] for runtime in RUNTIMES}
    started = time.perf_counter()
    while len(times[RUNTIMES[0]]) < min_repeats or time.perf_counter() - started < min_seconds:
        for runtime in RUNTIMES:
            begin = time.perf_counter()
            runners[runtime](inputs)
            times[runtime].append(time.perf_counter() - begin)
    reference = results["onnxruntime"]["output"]
    rows = {}
    for runtime, result in results.items():
        median = statistics.median(times[runtime])
        rows[runtime] = {
            "inference_precision": result["inference_precision"],
            "load_and_first_call_s": result["load_and_first_call_s"],
            "repeats": len(times[runtime]),
            "median_batch_s": median,
            "images_per_s": batch / median,
            "max_abs_diff_vs_onnxruntime": float(np.abs(result["output"] - reference).max()),
        }
    return {
        "model": model,
        "file": " + ".join(f"{name}.onnx" for name in OFFLINE_NETWORKS)
        if model == "offline-encoder"
        else model_file(model).name,
        "batch": batch,
        "threads": threads,
        "output_max_abs": float(np.abs(reference).max()),
        "runtimes": rows,
    }


def bench(quick: bool, rounds: int) -> dict:
    """One process per (model, batch) and round, the rounds interleaved across cases."""
    import onnxruntime
    import openvino  # bench/run.py checked that it is installed

    samples: dict[tuple[str, int], list[dict]] = {(m, b): [] for m in MODELS for b in BATCHES}
    for round_index in range(rounds):
        for model, batch in samples:
            command = [sys.executable, str(Path(__file__)), "--model", model, "--batch", str(batch)]
            if quick:
                command += ["--min-repeats", "2", "--min-seconds", "0"]
            output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
            row = json.loads(output.strip().splitlines()[-1])
            samples[(model, batch)].append(row)
            rates = ", ".join(f"{name} {r['images_per_s']:.1f}" for name, r in row["runtimes"].items())
            print(f"  round {round_index + 1}/{rounds} {model} batch {batch}: {rates} images/s", flush=True)
    rows = []
    for (model, batch), runs in samples.items():
        for runtime in RUNTIMES:
            seconds = statistics.median(run["runtimes"][runtime]["median_batch_s"] for run in runs)
            # Each process's own ratio (both runtimes timed side by side), then the median over
            # processes: noise between processes cancels out of the ratio.
            ratios = [
                run["runtimes"]["onnxruntime"]["median_batch_s"] / run["runtimes"][runtime]["median_batch_s"]
                for run in runs
            ]
            rows.append(
                {
                    "model": model,
                    "file": runs[0]["file"],
                    "batch": batch,
                    "threads": runs[0]["threads"],
                    "runtime": runtime,
                    "inference_precision": runs[0]["runtimes"][runtime]["inference_precision"],
                    "rounds": len(runs),
                    "timed_batches": sum(run["runtimes"][runtime]["repeats"] for run in runs),
                    "images_per_s": batch / seconds,
                    "ms_per_image": 1000 * seconds / batch,
                    "speedup_vs_onnxruntime": statistics.median(ratios),
                    "speedup_range": [min(ratios), max(ratios)],
                    "load_and_first_call_s": statistics.median(
                        run["runtimes"][runtime]["load_and_first_call_s"] for run in runs
                    ),
                    "max_abs_diff_vs_onnxruntime": max(
                        run["runtimes"][runtime]["max_abs_diff_vs_onnxruntime"] for run in runs
                    ),
                    "output_max_abs": runs[0]["output_max_abs"],
                }
            )
    versions = {"openvino": openvino.__version__, "onnxruntime": onnxruntime.__version__}
    return {"rows": rows, "versions": versions}


def table(result: dict) -> str:
    versions = result["versions"]
    lines = [
        f"OpenVINO {versions['openvino']}, onnxruntime {versions['onnxruntime']}, "
        f"{result['rows'][0]['threads']} threads each.",
        "",
        "| model | batch | runtime | runs at | images/s (median) | ms/image | x onnxruntime (range) "
        "| max abs diff vs onnxruntime (output max abs) | load + first call s |",
        "|---|---:|---|---|---:|---:|---:|---|---:|",
    ]
    for row in result["rows"]:
        low, high = row["speedup_range"]
        lines.append(
            f"| {row['model']} | {row['batch']} | {row['runtime']} | {row['inference_precision']} "
            f"| {row['images_per_s']:.1f} | {row['ms_per_image']:.1f} "
            f"| {row['speedup_vs_onnxruntime']:.2f} ({low:.2f}-{high:.2f}) "
            f"| {row['max_abs_diff_vs_onnxruntime']:.2g} ({row['output_max_abs']:.3g}) "
            f"| {row['load_and_first_call_s']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=MODELS, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--min-repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=6.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.model, args.batch, args.threads, args.min_repeats, args.min_seconds)))


if __name__ == "__main__":
    main()
