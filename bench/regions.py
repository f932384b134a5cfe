"""What the change detector saves: encoder work per camera-second on a still hall and a busy one.

    python bench/run.py --part regions        # bench/results/regions.json, BENCHMARKS.md

One camera's frames at 2 frames/s go through `replay` (the live detector's framing and
pipeline, no Kafka) with the offline encoder, in both embed modes:

- still hall: one real vtest.avi frame with sensor noise (+-3 grey levels) and +-1 % flicker;
- busy hall: vtest.avi itself (people walking all the time).

Reported per (scene, mode): frames that ran any model per camera-second (the "encoder calls"
of the goal: at most 0.3 on a still hall), crops and whole frames embedded per frame, and the
wall time per frame (median over the run's batches is not separable here: total / frames, on
this machine's cores; it includes embedding the two queries once). `bench/run.py` records
the CPU's instruction set with the results.
"""

from __future__ import annotations

import time

import numpy as np

FPS = 2.0


def still_hall(seconds: float) -> list[tuple[int, np.ndarray]]:
    import av

    from vigil.fixtures.media import vtest_avi

    with av.open(str(vtest_avi())) as container:
        frame = next(iter(container.decode(video=0))).to_ndarray(format="rgb24")
    rng = np.random.default_rng(7)
    frames = []
    for k in range(int(seconds * FPS)):
        gain = 1.0 + rng.uniform(-0.01, 0.01)
        noisy = frame.astype(np.float32) * gain + rng.integers(-3, 4, frame.shape)
        frames.append((round(k * 1000 / FPS), np.clip(noisy, 0, 255).astype(np.uint8)))
    return frames


def busy_hall(seconds: float) -> list[tuple[int, np.ndarray]]:
    import av

    from vigil.fixtures.media import vtest_avi

    frames = []
    with av.open(str(vtest_avi())) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % 5 == 0:  # 10 frames/s -> 2
                frames.append((index * 100, frame.to_ndarray(format="rgb24")))
            if len(frames) >= seconds * FPS:
                break
    return frames


def measure(encoder, frames, mode: str) -> dict:
    from vigil.services.detector.config import DetectorSettings
    from vigil.services.detector.replay import ReplayQuery, replay

    config = DetectorSettings(embed=mode)
    queries = [ReplayQuery("cat", "a cat"), ReplayQuery("xe-may", "một chiếc xe máy")]
    started = time.perf_counter()
    result = replay(encoder, frames, queries, config)
    elapsed = time.perf_counter() - started
    cost = result.cost
    seconds = len(frames) / FPS
    return {
        "frames": cost.frames,
        "still_frames": cost.still,
        "encoder_calls_per_camera_second": round(cost.encoded_frames / seconds, 3),
        "crops_per_frame": round(cost.crops / cost.frames, 2),
        "full_frames_per_frame": round(cost.full_views / cost.frames, 2),
        "seconds_per_frame": round(elapsed / cost.frames, 4),
    }


def bench(quick: bool, rounds: int) -> dict:
    """Every (scene, mode) once: the counts are deterministic; `rounds` does not apply."""
    from vigil.models.registry import EncoderSettings, create_encoder

    seconds = 10.0 if quick else 40.0
    encoder = create_encoder(EncoderSettings(kind="offline"))
    encoder.embed_images([np.zeros((64, 64, 3), np.uint8)])  # load and warm the sessions
    results = {}
    for scene, make in (("still hall", still_hall), ("busy hall", busy_hall)):
        frames = make(seconds)
        for mode in ("frames", "regions"):
            results[f"{scene} / {mode}"] = measure(encoder, frames, mode)
            print(f"  {scene} / {mode}: {results[f'{scene} / {mode}']}", flush=True)
    return {"encoder": encoder.info.name, "seconds_per_scene": seconds, "results": results}


def table(result: dict) -> str:
    rows = [
        "| scene / embed | still frames | encoder calls / camera-second | crops / frame "
        "| whole frames / frame | s / frame |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in result["results"].items():
        calls = r["encoder_calls_per_camera_second"]
        rows.append(
            f"| {name} | {r['still_frames']}/{r['frames']} | {calls:.2f} | {r['crops_per_frame']:.2f} "
            f"| {r['full_frames_per_frame']:.2f} | {r['seconds_per_frame']:.3f} |"
        )
    return "\n".join(rows)
