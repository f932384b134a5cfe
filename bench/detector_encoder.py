"""Detector bench: the encoder alone (`bench/detector.py --role encoder`): `embed_images` on real
camera frames, images per second and per CPU-second, for the offline encoder and ViT-B-32 int8
with random weights (speed only).
"""

from __future__ import annotations

import os
import statistics
import time

from detector_footage import HEIGHT, WIDTH, camera_clip

ENCODER_BATCHES = (1, 4, 8)
ENCODERS = ("offline", "clip-int8")  # clip-int8: random weights, speed only


def sample_frames(batch: int) -> list:
    """Real camera frames: the event clip's, 1280x720 (the cameras' size), photos included."""
    import av
    import numpy as np

    clip = camera_clip(0, 1)
    frames = []
    with av.open(str(clip)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % 25 == 0:
                frames.append(frame.to_ndarray(format="rgb24", width=WIDTH, height=HEIGHT))
            if len(frames) == 16:
                break
    return [np.ascontiguousarray(frames[i % len(frames)]) for i in range(batch)]


def measure_encoder(encoder_name: str, batch: int, min_repeats: int, min_seconds: float) -> dict:
    from encoders import RANDOM_EXPORT_DIR, timed_runs

    if encoder_name == "offline":
        from vigil.models.offline.encoder import OfflineEncoder

        encoder = OfflineEncoder.load(device="cpu")
    else:
        from vigil.models.clip.runtime import ClipEncoder

        encoder = ClipEncoder(RANDOM_EXPORT_DIR, precision="int8", device="cpu")
    frames = sample_frames(batch)
    encoder.embed_images(frames)  # warm-up outside the CPU count
    cpu_started = time.process_time()
    times = timed_runs(lambda: encoder.embed_images(frames), min_repeats, min_seconds)
    cpu_s = time.process_time() - cpu_started
    median = statistics.median(times)
    images = batch * (len(times) + 1)  # timed_runs runs one more warm-up call inside
    return {
        "encoder": encoder_name,
        "batch": batch,
        "frame": f"{WIDTH}x{HEIGHT}",
        "threads": os.cpu_count(),
        "repeats": len(times),
        "images_per_s": batch / median,
        "ms_per_image": 1000 * median / batch,
        "images_per_cpu_s": images / cpu_s,
    }


def clip_int8_available() -> bool:
    from encoders import RANDOM_EXPORT_DIR

    return (RANDOM_EXPORT_DIR / "manifest.json").is_file()
