"""Boxes in frame fractions and the square crops cut around them (no I/O).

A `Box` is what the change detector reports, what an object detector proposes and what a view
is of; `square_region` pads one into the region to embed, `crop_box_pixels` turns it into the
pixel crop to cut for the encoder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    """A rectangle in fractions of the frame: x to the right, y down, both in [0, 1].

    Coordinates are clipped to [0, 1] (a detector's box may stick out by a rounding error);
    an inverted or non-finite box is an error."""

    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        values = (self.x0, self.y0, self.x1, self.y1)
        if not all(math.isfinite(float(v)) for v in values):
            raise ValueError(f"Box needs finite coordinates, got {values!r}")
        x0, y0, x1, y1 = (min(1.0, max(0.0, float(v))) for v in values)
        if x1 < x0 or y1 < y0:
            raise ValueError(f"Box needs x0 <= x1 and y0 <= y1, got {values!r}")
        for name, value in zip(("x0", "y0", "x1", "y1"), (x0, y0, x1, y1), strict=True):
            object.__setattr__(self, name, value)

    @classmethod
    def from_pixels(cls, x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> Box:
        return cls(x0 / width, y0 / height, x1 / width, y1 / height)

    @classmethod
    def enclosing(cls, boxes: Sequence[Box]) -> Box:
        """The smallest box around all of `boxes` (at least one)."""
        return cls(
            min(b.x0 for b in boxes),
            min(b.y0 for b in boxes),
            max(b.x1 for b in boxes),
            max(b.y1 for b in boxes),
        )

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    def intersection(self, other: Box) -> float:
        """Area (in frame fractions) that both boxes cover."""
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return w * h if w > 0 and h > 0 else 0.0

    def touches(self, other: Box) -> bool:
        """Whether the boxes overlap or share an edge."""
        return self.x0 <= other.x1 and other.x0 <= self.x1 and self.y0 <= other.y1 and other.y0 <= self.y1

    def iou(self, other: Box) -> float:
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def overlap_of_smaller(self, other: Box) -> float:
        """Intersection over the smaller box's area: 1.0 when one contains the other."""
        smaller = min(self.area, other.area)
        return self.intersection(other) / smaller if smaller > 0 else 0.0

    def fraction_inside(self, other: Box) -> float:
        """How much of this box lies inside `other` (0..1)."""
        return self.intersection(other) / self.area if self.area > 0 else 0.0

    def union(self, other: Box) -> Box:
        """The smallest box around both (what merging two boxes makes)."""
        return Box.enclosing((self, other))

    def scaled(self, factor: float) -> Box:
        """This box grown (or shrunk) by `factor` around its centre, clipped to the frame."""
        cx, cy = self.centre
        hw, hh = self.width * factor / 2, self.height * factor / 2
        return Box(cx - hw, cy - hh, cx + hw, cy + hh)

    def to_pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in pixels of a width x height frame, rounded outwards, in bounds, so
        that `frame[y0:y1, x0:x1]` holds the whole box (at least one pixel)."""
        x0 = min(width - 1, math.floor(self.x0 * width + 1e-9))
        y0 = min(height - 1, math.floor(self.y0 * height + 1e-9))
        x1 = max(x0 + 1, min(width, math.ceil(self.x1 * width - 1e-9)))
        y1 = max(y0 + 1, min(height, math.ceil(self.y1 * height - 1e-9)))
        return x0, y0, x1, y1


def square_region(
    box: Box, frame_aspect: float | None, context_scale: float, min_side_fraction: float
) -> Box:
    """The region to embed for `box`: grown by `context_scale`, square in pixels, at least
    `min_side_fraction` of the frame's shorter side, shifted (not cut) to stay in the frame.

    Square where the frame allows: the square is at most the frame's shorter side (the
    context is what gives way), and a box longer than that keeps its own length on that axis
    (the object itself is never cut).

    frame_aspect: width / height of the frame; None treats the frame as square (fractions),
    which keeps the box in the frame but square in pixels only for a square frame."""
    aspect = 1.0 if frame_aspect is None else float(frame_aspect)
    # Work in units of the frame's height: the frame is [0, aspect] x [0, 1].
    cx, cy = box.centre[0] * aspect, box.centre[1]
    box_w, box_h = box.width * aspect, box.height
    shorter = min(aspect, 1.0)
    side = min(max(box_w * context_scale, box_h * context_scale, min_side_fraction * shorter), shorter)
    side_x, side_y = min(max(side, box_w), aspect), min(max(side, box_h), 1.0)
    x0 = min(max(cx - side_x / 2, 0.0), aspect - side_x)
    y0 = min(max(cy - side_y / 2, 0.0), 1.0 - side_y)
    return Box(x0 / aspect, y0, (x0 + side_x) / aspect, y0 + side_y)


def crop_box_pixels(box: Box, width: int, height: int, min_side_px: int = 224) -> tuple[int, int, int, int]:
    """The square pixel crop (x0, y0, x1, y1) to cut for `box` from a width x height frame, for
    an encoder whose input is `min_side_px` square (224 for CLIP): around the box's centre, as
    large as the box's longer side and never smaller than `min_side_px` (upscaling a small crop
    adds no detail), shifted into the frame. Square where the frame allows: at most the
    frame's shorter side, except along a box longer than that, which is never cut."""
    if width <= 0 or height <= 0:
        raise ValueError(f"need a frame of positive size, got {width}x{height}")
    x0, y0, x1, y1 = box.x0 * width, box.y0 * height, box.x1 * width, box.y1 * height
    side = min(max(x1 - x0, y1 - y0, float(min_side_px), 1.0), min(width, height))
    side_x = min(round(max(side, x1 - x0)), width)
    side_y = min(round(max(side, y1 - y0)), height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = min(max(round(cx - side_x / 2), 0), width - side_x)
    top = min(max(round(cy - side_y / 2), 0), height - side_y)
    return left, top, left + side_x, top + side_y
