"""Reading image files into RGB uint8 arrays with errors that name the file and the problem."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vigil.errors import BadImageError
from vigil.models.encoder import MAX_IMAGE_PIXELS, as_rgb_uint8


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB; grey, palette and RGBA files are converted."""
    path = Path(path)
    if path.is_dir():
        raise BadImageError(f"{path}: is a directory, not an image file")
    if not path.is_file():
        raise BadImageError(f"{path}: no such image file")
    if path.stat().st_size == 0:
        raise BadImageError(f"{path}: file is empty (0 bytes)")
    try:
        # Our own pixel limit (checked below, before decoding) replaces Pillow's warning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise BadImageError(
                    f"{path}: {width}x{height} pixels exceeds the limit of {MAX_IMAGE_PIXELS} pixels"
                )
            image.load()
            rgb = image.convert("RGB")
    except UnidentifiedImageError:
        raise BadImageError(f"{path}: not an image file Pillow can read") from None
    except Image.DecompressionBombError as error:
        raise BadImageError(f"{path}: image too large ({error})") from None
    except OSError as error:  # truncated or corrupt data
        raise BadImageError(f"{path}: cannot decode image ({error})") from None
    return as_rgb_uint8(np.asarray(rgb), str(path))
