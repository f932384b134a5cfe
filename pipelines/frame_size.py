"""The size a camera's frame is published at: shrunk to the configured bound, never enlarged (no I/O).

Ingest shrinks frames before JPEG-encoding them, keeping the aspect ratio: to fit a bounding box
(`max_width` and/or `max_height`) or to bring the shorter side down to `shorter_side`. A frame
already within the bound keeps its size: enlarging would cost bandwidth and add nothing. Sides
are rounded to whole pixels and never below one.

Whatever the configured bound, a frame must also stay within the pixel count a detector accepts
(`fit_to_pixels`): both sides are floored there, so the product stays within it (but a side that
would fall under one pixel keeps one).
"""

from __future__ import annotations

import math


def resized_size(
    width: int,
    height: int,
    *,
    max_width: int | None = None,
    max_height: int | None = None,
    shorter_side: int | None = None,
) -> tuple[int, int]:
    """(width, height) of a width x height frame after resizing: by `shorter_side` when it is given
    (the config allows one way or the other, not both), else into the max_width x max_height box
    (a side without a bound is free); neither given: unchanged."""
    if shorter_side is not None:
        scale = shorter_side / min(width, height)
    else:
        scale = min(
            max_width / width if max_width else 1.0,
            max_height / height if max_height else 1.0,
        )
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_to_pixels(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """(width, height) scaled down, aspect kept, so that width x height <= max_pixels (sides
    floored; a side never goes under one pixel, so a sliver may stay over); unchanged when it
    already fits."""
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
