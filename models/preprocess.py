"""torchvision's eval transform on PIL images, in Pillow + NumPy (no torch at run time).

Both image encoders were trained and evaluated with `Resize(int)` -> `CenterCrop` -> `ToTensor`
-> `Normalize` applied to PIL images; these are the same Pillow calls with torchvision's exact
size and rounding rules, so our inputs match theirs to float32 rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image


def resize_shorter_side(image: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    """torchvision's Resize(int): the shorter side becomes `size`; the longer one keeps the aspect
    ratio, truncated (not rounded) to an int."""
    width, height = image.size
    if width <= height:
        new_size = (size, int(size * height / width))
    else:
        new_size = (int(size * width / height), size)
    if new_size == (width, height):
        return image  # torchvision skips the resize too (Pillow would return a copy anyway)
    return image.resize(new_size, resample)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """torchvision's CenterCrop for an image at least `size` on each side."""
    width, height = image.size
    # Python's round (half to even) on purpose: it is what torchvision's center_crop uses.
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def normalised_chw(
    image: Image.Image, mean: Sequence[float] | np.ndarray, std: Sequence[float] | np.ndarray
) -> np.ndarray:
    """ToTensor + Normalize: (3, H, W) float32, arithmetic in float32 in torchvision's order."""
    pixels = np.asarray(image, dtype=np.float32) / np.float32(255.0)
    return ((pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).transpose(2, 0, 1)
