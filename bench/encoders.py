"""Encoder throughput: one runtime, one batch size, in this process; prints one JSON line.

Run by bench/run.py, which starts one process per (runtime, batch) so that no runtime
inherits another's thread pools, allocator state or warmed caches.

CLIP runtimes time the image tower alone on an already-preprocessed batch (the same
tensor for every runtime), so PyTorch eager and onnxruntime are compared like for like.
The offline encoder is timed end to end (preprocessing, classifier, detector, ConSE),
because that is what a frame costs it. ViT-B-32 uses random-init weights: speed does not
depend on the weights' values, and no accuracy is read from these runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

THREADS = int(os.environ.get("VIGIL_BENCH_THREADS", str(os.cpu_count() or 1)))
RANDOM_EXPORT_DIR = Path(os.environ.get("VIGIL_BENCH_DIR", "var/bench")) / "clip-ViT-B-32-random"


def timed_runs(step, min_repeats: int, min_seconds: float) -> list[float]:
    step()  # warm-up: first-call allocation and kernel selection are not throughput
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - started < min_seconds:
        begin = time.perf_counter()
        step()
        times.append(time.perf_counter() - begin)
    return times


def sample_images(batch: int, seed: int = 0) -> list[np.ndarray]:
    """Camera-sized frames with structure (gradients + noise), not constant arrays."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, 640, dtype=np.float32)
    frames = []
    for _ in range(batch):
        base = (ramp[None, :, None] + rng.normal(0, 30, (480, 640, 3))) % 256
        frames.append(base.astype(np.uint8))
    return frames


def clip_input(batch: int) -> np.ndarray:
    from vigil.models.clip.manifest import read_manifest
    from vigil.models.clip.preprocess import ClipPreprocess

    return ClipPreprocess.from_manifest(read_manifest(RANDOM_EXPORT_DIR))(sample_images(batch))


def make_step(runtime: str, batch: int):
    if runtime == "torch-eager-fp32":
        import torch

        from vigil.models.clip.config import ClipSpec
        from vigil.models.clip.export import load_open_clip_model

        torch.set_num_threads(THREADS)
        model, _ = load_open_clip_model(ClipSpec(model="ViT-B-32"), random_init=True)
        pixels = torch.from_numpy(clip_input(batch))

        def step():
            with torch.inference_mode():
                model.encode_image(pixels)

        return step
    if runtime in ("onnx-fp32", "onnx-int8"):
        from vigil.models.clip.manifest import read_manifest
        from vigil.models.onnx_session import create_session

        precision = runtime.split("-")[1]
        image_file = read_manifest(RANDOM_EXPORT_DIR)["files"][precision]["image"]["file"]
        session = create_session(RANDOM_EXPORT_DIR / image_file, device="cpu", threads=THREADS)
        name = session.get_inputs()[0].name
        pixels = clip_input(batch)

        def step():
            session.run(None, {name: pixels})

        return step
    if runtime == "offline":
        from vigil.models.offline.encoder import OfflineEncoder

        encoder = OfflineEncoder.load(device="cpu")
        frames = sample_images(batch)

        def step():
            encoder.embed_images(frames)

        return step
    raise SystemExit(f"unknown runtime {runtime!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--min-repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    args = parser.parse_args()
    step = make_step(args.runtime, args.batch)
    times = timed_runs(step, args.min_repeats, args.min_seconds)
    median = statistics.median(times)
    print(
        json.dumps(
            {
                "runtime": args.runtime,
                "batch": args.batch,
                "threads": THREADS,
                "repeats": len(times),
                "median_batch_s": median,
                "images_per_s": args.batch / median,
                "ms_per_image": 1000 * median / args.batch,
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            }
        )
    )


if __name__ == "__main__":
    main()
