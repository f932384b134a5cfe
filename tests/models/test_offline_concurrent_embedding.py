"""The offline encoder as `vigil index` runs it (single-threaded onnxruntime sessions, several
embedding calls at once, frames in chunks) embeds as the detector runs it (sessions on every core,
one call at a time): the frame index holds the same vectors, up to float rounding, whichever
process wrote them.

Measured on 2 CPU cores (AVX2): bit-identical (max abs difference 0) on these photos; the bound,
1e-5 a component, leaves room for another CPU's kernels."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from skimage import data as skimage_data  # real photographs shipped in scikit-image

from vigil.models.offline import OfflineEncoder

BOUND = 1e-5


def photos() -> list[np.ndarray]:
    camera = skimage_data.camera()
    return [
        skimage_data.chelsea(),
        skimage_data.rocket(),
        skimage_data.coffee(),
        skimage_data.stereo_motorcycle()[1],
        np.repeat(camera[:, :, None], 3, axis=2),
        skimage_data.astronaut(),
        skimage_data.hubble_deep_field(),
        skimage_data.immunohistochemistry(),
    ]


def test_single_threaded_sessions_in_concurrent_chunks_embed_as_one_image_at_a_time(
    offline_encoder, monkeypatch
):
    images = photos()
    one_at_a_time = np.concatenate([offline_encoder.embed_images([image]) for image in images])
    monkeypatch.setenv("VIGIL_ORT_THREADS", "1")
    indexing_encoder = OfflineEncoder.load(device="cpu")
    chunks = [images[i : i + 3] for i in range(0, len(images), 3)]  # 3, 3, 2: odd sizes too
    with ThreadPoolExecutor(2) as pool:
        concurrent = np.concatenate(list(pool.map(indexing_encoder.embed_images, chunks)))
    difference = float(np.abs(concurrent - one_at_a_time).max())
    assert difference <= BOUND, difference
    # And the default sessions batched (the detector's micro-batches) agree with both.
    batched = offline_encoder.embed_images(images)
    assert float(np.abs(batched - one_at_a_time).max()) <= BOUND
