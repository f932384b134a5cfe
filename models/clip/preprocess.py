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
from typing import Any, cast

import numpy as np
from PIL import Image

from vigil.models.preprocess import center_crop, normalised_chw, resize_shorter_side

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
            # RGB triples, as the export wrote them.
            mean=cast(tuple[float, float, float], tuple(float(x) for x in manifest["mean"])),
            std=cast(tuple[float, float, float], tuple(float(x) for x in manifest["std"])),
            interpolation=manifest.get("interpolation", "bicubic"),
            resize_mode=manifest.get("resize_mode", "shortest"),
        )

    def _resized(self, image: Image.Image) -> Image.Image:
        resample = INTERPOLATIONS[self.interpolation]
        if self.resize_mode == "squash":
            if image.size == (self.image_size, self.image_size):
                return image
            return image.resize((self.image_size, self.image_size), resample)
        return resize_shorter_side(image, self.image_size, resample)

    def one(self, image: np.ndarray) -> np.ndarray:
        """One (H, W, 3) uint8 RGB image -> (3, size, size) float32."""
        pil = center_crop(self._resized(Image.fromarray(np.ascontiguousarray(image))), self.image_size)
        return normalised_chw(pil, self.mean, self.std)

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(H, W, 3) uint8 RGB images of any sizes -> (N, 3, size, size) float32 batch."""
        size = self.image_size
        batch = np.empty((len(images), 3, size, size), dtype=np.float32)
        for index, image in enumerate(images):
            batch[index] = self.one(image)
        return batch
