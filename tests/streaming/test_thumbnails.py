"""Thumbnails show where: a hit's box drawn on a real photo, nothing else changed."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data  # real photographs shipped in scikit-image

from vigil.services.common.thumbnails import (
    BOX_COLOR,
    BOX_RIM_COLOR,
    box_line_widths,
    thumbnail_with_boxes,
)

BOX = (0.25, 0.2, 0.75, 0.8)


def jpeg_of(pixels: np.ndarray, quality: int = 90) -> bytes:
    output = io.BytesIO()
    Image.fromarray(pixels).save(output, format="JPEG", quality=quality)
    return output.getvalue()


def decoded(jpeg: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    return np.asarray(image.convert("RGB")).astype(int)


def edge_pixels(box, width, height):
    """The box's edge (first/last column and row inside it), minus 10 px near each corner."""
    left, top = round(box[0] * width), round(box[1] * height)
    right, bottom = round(box[2] * width) - 1, round(box[3] * height) - 1
    columns = [(y, x) for x in (left, right) for y in range(top + 10, bottom - 10)]
    rows = [(y, x) for y in (top, bottom) for x in range(left + 10, right - 10)]
    return (left, top, right, bottom), tuple(np.array(columns + rows).T)


def distance_to(pixels: np.ndarray, colour) -> np.ndarray:
    return np.abs(pixels - np.array(colour)).max(axis=-1)


@pytest.fixture(scope="module")
def chelsea_jpeg() -> bytes:
    return jpeg_of(skimage_data.chelsea())  # a 451x300 photo of a cat


def test_the_box_edge_takes_the_box_colour_and_the_rest_of_the_photo_is_unchanged(chelsea_jpeg):
    before = decoded(chelsea_jpeg)
    after = decoded(thumbnail_with_boxes(chelsea_jpeg, [BOX]))
    assert after.shape == before.shape == (300, 451, 3)

    (left, top, right, bottom), edge = edge_pixels(BOX, 451, 300)
    assert distance_to(before[edge], BOX_COLOR).min() > 60  # the cat's fur is nowhere near amber
    assert np.percentile(distance_to(after[edge], BOX_COLOR), 95) <= 24  # JPEG noise only
    # A dark rim on the outer side of the core, so the box reads on a bright scene too.
    core, rim = box_line_widths(451, 300)
    outer_rim = after[top + 10 : bottom - 10, left - (core + 2 * rim) // 2]
    assert distance_to(outer_rim, BOX_RIM_COLOR).mean() < 24

    # Away from the outline (its width plus a margin for JPEG's 8x8 blocks) nothing changed
    # beyond what re-encoding the same pixels does.
    margin = core + 2 * rim + 8
    away = np.ones((300, 451), dtype=bool)
    for x in (left, right):
        away[:, max(0, x - margin) : x + margin + 1] = False
    for y in (top, bottom):
        away[max(0, y - margin) : y + margin + 1, :] = False
    change = np.abs(after - before)[away]
    assert change.mean() < 3 and np.percentile(change, 99.9) <= 20


def test_the_line_width_is_proportional_to_the_frame_size():
    assert box_line_widths(451, 300) == (2, 1)
    assert box_line_widths(640, 480) == (4, 1)
    assert box_line_widths(1920, 1080) == (9, 3)

    def drawn_core_width(scale: int) -> int:
        photo = np.asarray(Image.fromarray(skimage_data.chelsea()).resize((451 * scale, 300 * scale)))
        after = decoded(thumbnail_with_boxes(jpeg_of(photo), [BOX]))
        row = after[150 * scale]  # a row through the middle of the box's left and right edges
        return int((distance_to(row[: 225 * scale], BOX_COLOR) <= 40).sum())

    small, large = drawn_core_width(1), drawn_core_width(4)
    assert small == pytest.approx(box_line_widths(451, 300)[0], abs=1)
    assert large == pytest.approx(box_line_widths(451 * 4, 300 * 4)[0], abs=1) and large >= 4 * small - 1


def test_several_boxes_and_a_box_on_the_frame_border_are_all_drawn(chelsea_jpeg):
    whole_frame, corner = (0.0, 0.0, 1.0, 1.0), (0.8, 0.7, 1.0, 1.0)
    after = decoded(thumbnail_with_boxes(chelsea_jpeg, [whole_frame, corner], quality=95))
    # The outline stays inside the frame, so a box touching the border is still seen whole.
    core, rim = box_line_widths(451, 300)
    assert np.median(distance_to(after[20:280, rim], BOX_COLOR)) <= 24  # left border, inset by its rim
    assert np.median(distance_to(after[20:280, 450 - rim], BOX_COLOR)) <= 24
    assert np.median(distance_to(after[220:280, round(0.8 * 451)], BOX_COLOR)) <= 24  # the corner box


def test_a_greyscale_frame_gets_a_coloured_box():
    grey_jpeg = jpeg_of(skimage_data.camera())  # 512x512, one channel
    assert Image.open(io.BytesIO(grey_jpeg)).mode == "L"
    after = decoded(thumbnail_with_boxes(grey_jpeg, [BOX]))
    assert after.shape == (512, 512, 3)
    _, edge = edge_pixels(BOX, 512, 512)
    assert np.percentile(distance_to(after[edge], BOX_COLOR), 95) <= 24


def test_no_boxes_give_the_same_bytes_back(chelsea_jpeg):
    assert thumbnail_with_boxes(chelsea_jpeg, []) == chelsea_jpeg


@pytest.mark.parametrize(
    ("jpeg", "says"),
    [
        (b"\x89PNG\r\n\x1a\n....", r"not a JPEG \(starts with b'\\x89PNG'"),
        (b"", "not a JPEG"),
        (b"\xff\xd8\xff\xe0" + b"no picture here" * 20, r"JPEG \(304 bytes\) does not decode"),
        ("cam-1/2023-11-14/1.jpg", "must be JPEG bytes, got str"),
    ],
    ids=["png", "empty", "jpeg-header-then-garbage", "a-reference-not-bytes"],
)
def test_what_is_not_a_decodable_jpeg_raises_value_error_saying_so(jpeg, says):
    with pytest.raises(ValueError, match=says):
        thumbnail_with_boxes(jpeg, [BOX])


def test_a_truncated_jpeg_raises_value_error(chelsea_jpeg):
    with pytest.raises(ValueError, match="does not decode: image file is truncated"):
        thumbnail_with_boxes(chelsea_jpeg[: len(chelsea_jpeg) // 2], [BOX])


@pytest.mark.parametrize(
    ("boxes", "quality", "says"),
    [
        ([(0.1, 0.2, 0.3)], 85, r"boxes\[0\] must be \[x0, y0, x1, y1\] \(4 numbers\), got 3"),
        ([BOX, (0.6, 0.2, 0.3, 0.4)], 85, r"boxes\[1\] must have x0 < x1"),
        ([(0.1, 0.2, 1.5, 0.4)], 85, r"boxes\[0\] x1 must be a finite fraction of the frame"),
        ([(0.1, float("nan"), 0.3, 0.4)], 85, r"boxes\[0\] y0 must be a finite fraction .* got nan"),
        ([BOX], 0, "quality must be an integer from 1 to 95"),
        ([BOX], 100, "quality must be an integer from 1 to 95"),
    ],
    ids=["3-numbers", "second-box-x0-after-x1", "1.5", "nan", "quality-0", "quality-100"],
)
def test_bad_boxes_and_quality_are_refused_naming_them(chelsea_jpeg, boxes, quality, says):
    with pytest.raises(ValueError, match=says):
        thumbnail_with_boxes(chelsea_jpeg, boxes, quality=quality)
