"""The small grey frame the change detector looks at (step 1 of the package docstring; no I/O)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# ITU-R BT.601 luma weights: what "grey" means for JPEG and for OpenCV's cvtColor.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_VOID3 = np.dtype((np.void, 3))  # one RGB pixel as one element: a 3x faster column gather


@lru_cache(maxsize=64)
def _sample_positions(size: int, cells: int, samples: int) -> np.ndarray:
    """`samples` evenly spaced positions in each of `cells` equal cells of `size` pixels."""
    positions = (np.arange(cells * samples) + 0.5) * (size / (cells * samples))
    out = np.minimum(positions.astype(np.intp), size - 1)
    out.flags.writeable = False
    return out


def small_grey(rgb: np.ndarray, height: int = 100, samples: int = 4) -> np.ndarray:
    """A small grey copy of an RGB uint8 frame (H, W, 3), `height` rows high (float32, 0..255,
    the frame's aspect ratio), for the change detector. A 2-D array is taken as grey already.

    Each output pixel is the mean of a samples x samples grid spread evenly over its cell of
    the frame: an area average in effect (noise falls by `samples`), at a cost that depends on
    the output size only, not the camera's resolution. A frame lower than `height` keeps its
    own height."""
    frame = np.asarray(rgb)
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        raise ValueError(f"small_grey needs an (H, W, 3) RGB or (H, W) grey frame, got {frame.shape}")
    if height < 1 or not 1 <= samples <= 16:  # 16 samples of 255 still sum within uint16
        raise ValueError("small_grey needs height >= 1 and 1 <= samples <= 16")
    frame_h, frame_w = frame.shape[:2]
    out_h = min(height, frame_h)
    out_w = max(1, round(frame_w * out_h / frame_h))
    rows = _sample_positions(frame_h, out_h, samples)
    cols = _sample_positions(frame_w, out_w, samples)
    picked_rows = np.take(frame, rows, axis=0)
    if frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8:
        # Gather whole RGB pixels (3-byte elements) rather than bytes, then sum the samples in
        # uint16 (16 x 255 fits) before any float: few, small temporaries are what make it fast.
        pixels = np.take(picked_rows.view(_VOID3).reshape(len(rows), frame_w), cols, axis=1)
        cells = pixels.view(np.uint8).reshape(out_h, samples, out_w * samples * 3)
        row_sums = cells[:, 0].astype(np.uint16)
        for i in range(1, samples):
            row_sums += cells[:, i]
        row_sums = row_sums.reshape(out_h, out_w, samples, 3)
        sums = row_sums[:, :, 0].astype(np.float32)
        for i in range(1, samples):
            sums += row_sums[:, :, i]
        grey: np.ndarray = sums @ (_LUMA / np.float32(samples * samples))
        return grey
    picked = np.take(picked_rows, cols, axis=1).astype(np.float32)
    grey = picked[..., :3] @ _LUMA if picked.ndim == 3 else picked
    downsampled: np.ndarray = grey.reshape(out_h, samples, out_w, samples).mean(axis=(1, 3), dtype=np.float32)
    return downsampled
