"""CLIP's eval image transform with Pillow + NumPy, no torch: identical to open_clip's.

open_clip's eval transform (torchvision on PIL images) is: resize so the shorter side equals the
image size (Pillow resize, bicubic, whose filter always antialiases), center-crop, scale to
[0, 1], normalise by the model's mean/std. We call the same Pillow resize with the same
arguments and do the arithmetic in float32 in the same order, so the result matches to float32
rounding (tests/models/test_clip_preprocess.py measures it). The numbers (size, mean, std,
interpolation, resize mode) come from the export manifest, which copied them from open_clip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

INTERPOLATIONS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}
# open_clip also knows "longest" (letterbox with padding); no model we export uses it, so it is
# refused at export time rather than approximated here.
RESIZE_MODES = ("shortest", "squash")


@dataclass(frozen=True)
class ClipPreprocess:
    """RGB uint8 (H, W, 3) images -> float32 (N, 3, size, size) batch, as open_clip's eval transform."""

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {self.interpolation!r}"
            )
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> ClipPreprocess:
        return cls(
            image_size=int(manifest["image_size"]),
            mean=tuple(float(x) for x in manifest["mean"]),
            std=tuple(float(x) for x in manifest["std"]),
            interpolation=manifest.get("interpolation", "bicubic"),
            resize_mode=manifest.get("resize_mode", "shortest"),
        )

    def _resized(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        size = self.image_size
        if self.resize_mode == "squash":
            new_width, new_height = size, size
        else:
            # torchvision's rule for an int size: the shorter side becomes `size`, the longer side
            # keeps the aspect ratio, truncated (not rounded) to an int.
            short, long = (width, height) if width <= height else (height, width)
            new_short, new_long = size, int(size * long / short)
            new_width, new_height = (new_short, new_long) if width <= height else (new_long, new_short)
        if (new_width, new_height) == (width, height):
            return image  # torchvision skips the resize too (Pillow would return a copy anyway)
        return image.resize((new_width, new_height), INTERPOLATIONS[self.interpolation])

    def _center_cropped(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        size = self.image_size
        # Python's round (half to even) on purpose: it is what torchvision's center_crop uses.
        top = int(round((height - size) / 2.0))
        left = int(round((width - size) / 2.0))
        return image.crop((left, top, left + size, top + size))

    def one(self, image: np.ndarray) -> np.ndarray:
        """One (H, W, 3) uint8 RGB image -> (3, size, size) float32."""
        pil = self._center_cropped(self._resized(Image.fromarray(np.ascontiguousarray(image))))
        pixels = np.asarray(pil, dtype=np.float32) / np.float32(255.0)
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        return ((pixels - mean) / std).transpose(2, 0, 1)

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(H, W, 3) uint8 RGB images of any sizes -> (N, 3, size, size) float32 batch."""
        size = self.image_size
        batch = np.empty((len(images), 3, size, size), dtype=np.float32)
        for index, image in enumerate(images):
            batch[index] = self.one(image)
        return batch
