"""Thumbnails that show where: a hit's peak-frame JPEG with its region's box drawn on it.

A hit from a region embedding carries that region as `HitMessage.box` ([x0, y0, x1, y1],
fractions of the frame). `thumbnail_with_boxes` draws such boxes onto the peak frame's JPEG
before `ThumbnailStore.save` (services/common/thumbnail_store.py) writes it, so every reader of the
thumbnail (alert feed, webhooks, console) sees the region without knowing about boxes.

Pure: bytes in, bytes out, no I/O. Boxes are in the stored pixel grid (EXIF orientation is
not applied: ingest frames carry none, and the detector embedded the pixels as stored).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, UnidentifiedImageError

from vigil.services.common.contract import Box, validate_box

# What every JPEG starts with (SOI marker, then the first segment's marker byte).
JPEG_MAGIC = b"\xff\xd8\xff"
# The box's core colour, between two dark rims: amber stands out on dark scenes, the dark
# rims on bright ones (snow, sky, white walls), like a hazard tape.
BOX_COLOR = (255, 200, 0)
BOX_RIM_COLOR = (0, 0, 0)
DEFAULT_QUALITY = 85


def box_line_widths(width: int, height: int) -> tuple[int, int]:
    """(core, rim) line widths in pixels for a frame of this size: the core about 1/120 of the
    frame's shorter side (4 px at 480p, 9 px at 1080p), at least 2 px; each rim a third of it,
    at least 1 px. The whole outline is core + 2 rims wide, centred on the box's edge."""
    core = max(2, round(min(width, height) / 120))
    return core, max(1, core // 3)


def thumbnail_with_boxes(
    jpeg: bytes,
    boxes: Sequence[Box | Sequence[float]],
    *,
    quality: int = DEFAULT_QUALITY,
    color: tuple[int, int, int] = BOX_COLOR,
    rim_color: tuple[int, int, int] = BOX_RIM_COLOR,
) -> bytes:
    """The JPEG `jpeg` with each box drawn as a rectangle outline, re-encoded at `quality`.

    boxes: [x0, y0, x1, y1] fractions of the frame (HitMessage.box). The outline is centred on
    the box's edge (part inside, part outside the region), kept inside the frame for a box that
    touches the border. With no boxes the input comes back unchanged (no second JPEG loss),
    once it is known to decode. The output has the input's size; it is RGB (a greyscale frame
    becomes RGB so that the box keeps its colour) with 4:4:4 chroma, so that the thin coloured
    line is not smeared by chroma subsampling.

    Raises ValueError naming the problem: bytes that are not a decodable JPEG, a bad box
    (`boxes[i] ...`, as the contract's check says it), a quality outside 1-95.
    """
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 95:
        raise ValueError(f"quality must be an integer from 1 to 95 (Pillow's useful range), got {quality!r}")
    checked = [validate_box(box, name=f"boxes[{index}]") for index, box in enumerate(boxes)]
    image = _decode_jpeg(jpeg)
    if not checked:
        return jpeg
    image = image.convert("RGB")
    width, height = image.size
    core, rim = box_line_widths(width, height)
    draw = ImageDraw.Draw(image)
    for box in checked:
        left, top, right, bottom = _outline_rectangle(box, width, height, core + 2 * rim)
        # The whole outline in the rim colour, then the core inset by one rim on each side.
        draw.rectangle((left, top, right, bottom), outline=rim_color, width=core + 2 * rim)
        # (max(): a frame only a few pixels wide leaves no room for the core; Pillow clips.)
        inner = (left + rim, top + rim, max(left + rim, right - rim), max(top + rim, bottom - rim))
        draw.rectangle(inner, outline=color, width=core)
    output = io.BytesIO()
    image.save(output, format="JPEG", quality=quality, subsampling=0)
    return output.getvalue()


def _decode_jpeg(jpeg: bytes) -> Image.Image:
    if not isinstance(jpeg, bytes | bytearray | memoryview):
        raise ValueError(f"thumbnail must be JPEG bytes, got {type(jpeg).__name__}")
    jpeg = bytes(jpeg)
    if not jpeg.startswith(JPEG_MAGIC):
        raise ValueError(f"thumbnail is not a JPEG (starts with {jpeg[:4]!r}, not {JPEG_MAGIC!r})")
    try:
        image = Image.open(io.BytesIO(jpeg))
        image.load()  # Image.open reads only the header; a truncated or corrupt body fails here
    except Image.DecompressionBombError as error:
        raise ValueError(f"thumbnail JPEG is too large to decode safely: {error}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"thumbnail JPEG ({len(jpeg)} bytes) does not decode: {error}") from None
    if image.format != "JPEG":
        raise ValueError(f"thumbnail is a {image.format} image, not a JPEG")
    return image


def _outline_rectangle(box: Box, width: int, height: int, thickness: int) -> tuple[int, int, int, int]:
    """Pixel rectangle (inclusive corners) whose `thickness`-wide inner band is centred on the
    box's edge, shifted to stay inside the frame."""
    x0, y0, x1, y1 = box
    # The box's edge pixels: first and last column/row inside the region.
    left, right = round(x0 * width), max(round(x0 * width), round(x1 * width) - 1)
    top, bottom = round(y0 * height), max(round(y0 * height), round(y1 * height) - 1)
    half = thickness // 2
    return (
        max(0, left - half),
        max(0, top - half),
        min(width - 1, right + half),
        min(height - 1, bottom + half),
    )
