"""Our Pillow + NumPy preprocessing against open_clip's torchvision eval transform."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vigil.models.clip.export import import_open_clip
from vigil.models.clip.preprocess import ClipPreprocess

open_clip = import_open_clip()

from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD  # noqa: E402

# Same Pillow resize call and the same float32 arithmetic: measured max abs diff 0.0 on every
# image below. The bound only allows for a future float32 rounding-order change in torchvision.
BOUND = 1e-6

# (height, width): portrait, landscape, tiny, full HD, exact size, odd crop offsets, extreme strip.
SIZES = [(640, 480), (480, 640), (7, 5), (1080, 1920), (224, 224), (225, 301), (230, 227), (20, 900)]


def _image(height: int, width: int, seed: int) -> np.ndarray:
    """Noise on top of smooth gradients: noise is the hardest case for a resampling filter."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    smooth = 255 * (0.5 * y + 0.5 * x) * np.array([1.0, 0.6, 0.3], np.float32)
    noise = rng.normal(0, 40, (height, width, 3))
    return np.clip(smooth + noise, 0, 255).astype(np.uint8)


def _theirs(transform, image: np.ndarray) -> np.ndarray:
    return transform(Image.fromarray(image)).numpy()


@pytest.mark.parametrize("resize_mode", ["shortest", "squash"])
def test_matches_open_clip_transform(resize_mode):
    transform = open_clip.image_transform(
        224, is_train=False, mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD, resize_mode=resize_mode
    )
    ours = ClipPreprocess(224, OPENAI_DATASET_MEAN, OPENAI_DATASET_STD, resize_mode=resize_mode)
    images = [_image(h, w, seed) for seed, (h, w) in enumerate(SIZES)]
    batch = ours(images)
    assert batch.dtype == np.float32 and batch.shape == (len(SIZES), 3, 224, 224)
    for index, image in enumerate(images):
        diff = np.abs(batch[index] - _theirs(transform, image)).max()
        assert diff <= BOUND, f"{image.shape}: max abs diff {diff}"


def test_manifest_carries_open_clips_preprocess_config(clip_vitb32_random_export):
    """The numbers in the export manifest give the same transform open_clip builds for the model."""
    _, _, transform = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    ours = ClipPreprocess.from_manifest(json.loads(clip_vitb32_random_export.read_text()))
    for seed, (height, width) in enumerate(SIZES[:4]):
        image = _image(height, width, seed)
        assert np.abs(ours.one(image) - _theirs(transform, image)).max() <= BOUND


def test_refuses_unknown_modes():
    with pytest.raises(ValueError, match="resize_mode"):
        ClipPreprocess(224, (0.5,) * 3, (0.5,) * 3, resize_mode="longest")
    with pytest.raises(ValueError, match="interpolation"):
        ClipPreprocess(224, (0.5,) * 3, (0.5,) * 3, interpolation="nearest")
