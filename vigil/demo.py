"""`vigil demo` (`make demo`): the main job offline on the embedded default encoder.

Until the streaming services land, the main job is what every later stage is built on:
standing natural-language queries, in English and Vietnamese, matched against real
frames. The frames are real photographs shipped inside scikit-image; the encoder is the
offline label-space encoder built only from shipped weights.
"""

from __future__ import annotations

import numpy as np
import typer

# (name, loader) pairs: scikit-image's real photographs and scans.
DEMO_FRAMES = (
    "astronaut", "camera", "chelsea", "coffee", "horse", "motorcycle", "page", "rocket",
    "clock", "hubble_deep_field", "immunohistochemistry", "brick",
)  # fmt: skip

# Standing queries as operators would type them, each English one with a Vietnamese twin,
# and the frame a person would pick first.
DEMO_QUERIES = (
    ("a cat", "một con mèo", "chelsea"),
    ("a motorcycle", "một chiếc xe máy", "motorcycle"),
    ("a person", "một người", "camera"),
    ("a cup of coffee", "một tách cà phê", "coffee"),
    ("a rocket", "một tên lửa", "rocket"),
    ("a clock", "một cái đồng hồ", "clock"),
)


def load_demo_frames() -> dict[str, np.ndarray]:
    from skimage import data

    from vigil.models.encoder import as_rgb_uint8

    frames = {}
    for name in DEMO_FRAMES:
        image = np.asarray(data.stereo_motorcycle()[1] if name == "motorcycle" else getattr(data, name)())
        if image.dtype == bool:  # the horse is a binary silhouette
            image = image.astype(np.uint8) * 255
        frames[name] = as_rgb_uint8(image, name)
    return frames


def run_demo(top: int = 3) -> None:
    from vigil.models.registry import EncoderSettings, create_encoder

    encoder = create_encoder(EncoderSettings(kind="offline"))
    info = encoder.info
    typer.echo(f"encoder: {info.name} ({info.dim}-d, {', '.join(info.providers)})")
    frames = load_demo_frames()
    names = list(frames)
    frame_vectors = encoder.embed_images(list(frames.values()))
    typer.echo(f"frames: {len(names)} real photographs from scikit-image\n")
    queries = [(query, expected) for *pair, expected in DEMO_QUERIES for query in pair]
    scores = encoder.embed_texts([query for query, _ in queries]) @ frame_vectors.T
    found = 0
    for (query, expected), row in zip(queries, scores, strict=True):
        best = np.argsort(-row, kind="stable")[:top]
        found += names[best[0]] == expected
        mark = "ok  " if names[best[0]] == expected else "MISS"
        ranked = ", ".join(f"{names[i]} {row[i]:+.3f}" for i in best)
        typer.echo(f"{mark} {query!r:>20} -> {ranked}")
    typer.echo(f"\n{found}/{len(queries)} queries ranked the expected frame first")
