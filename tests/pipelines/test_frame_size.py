"""The published frame size: the configured bound (box or shorter side) and the pixel bound."""

from __future__ import annotations

import pytest

from vigil.pipelines.frame_size import fit_to_pixels, resized_size


@pytest.mark.parametrize(
    ("bound", "size", "expected"),
    [
        ({"max_width": 640, "max_height": 480}, (1920, 1080), (640, 360)),  # the width binds
        ({"max_width": 640, "max_height": 480}, (1080, 1920), (270, 480)),  # the height binds
        ({"max_width": 640}, (1920, 1080), (640, 360)),  # a side without a bound is free
        ({"max_height": 480}, (1280, 960), (640, 480)),
        ({"max_width": 640, "max_height": 480}, (640, 480), (640, 480)),  # exactly the box
    ],
)
def test_a_frame_is_shrunk_into_the_box_keeping_its_aspect(bound, size, expected):
    assert resized_size(*size, **bound) == expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1280, 720), (398, 224)), ((576, 768), (224, 299)), ((224, 224), (224, 224))],
)
def test_the_shorter_side_is_brought_down_to_its_length(size, expected):
    assert resized_size(*size, shorter_side=224) == expected


@pytest.mark.parametrize(
    "bound", [{"max_width": 640, "max_height": 480}, {"max_height": 2160}, {"shorter_side": 480}]
)
def test_a_frame_within_the_bound_is_never_enlarged(bound):
    assert resized_size(320, 240, **bound) == (320, 240)


def test_no_bound_leaves_the_size_as_it_is():
    assert resized_size(1920, 1080) == (1920, 1080)


def test_the_shorter_side_wins_when_both_ways_are_given():
    # The config refuses both at once; the maths has one answer anyway.
    assert resized_size(1280, 720, max_width=100, shorter_side=224) == (398, 224)


def test_sides_are_rounded_to_the_nearest_pixel():
    assert resized_size(1001, 1000, max_width=500) == (500, 500)  # 499.5... rounds to 500
    assert resized_size(1000, 333, max_width=500) == (500, 166)  # 166.5 rounds half to even


def test_a_sliver_keeps_at_least_one_pixel():
    assert resized_size(10_000, 10, max_width=100) == (100, 1)
    assert resized_size(10_000, 10, shorter_side=1) == (1_000, 1)
    assert resized_size(4_000, 1, max_width=100) == (100, 1)


def test_a_frame_within_the_pixel_bound_keeps_its_size():
    assert fit_to_pixels(7680, 4320, 7680 * 4320) == (7680, 4320)


def test_a_frame_over_the_pixel_bound_is_scaled_down_to_fit_keeping_its_aspect():
    width, height = fit_to_pixels(16_000, 9_000, 7680 * 4320)
    assert (width, height) == (7680, 4320)
    assert width * height <= 7680 * 4320


@pytest.mark.parametrize("size", [(10_001, 9_999), (12_345, 6_789), (100_000, 3)])
def test_flooring_keeps_the_product_within_the_bound(size):
    width, height = fit_to_pixels(*size, 1_000_000)
    assert width * height <= 1_000_000 and width >= 1 and height >= 1


def test_a_sliver_keeps_one_pixel_on_its_short_side_even_over_the_pixel_bound():
    assert fit_to_pixels(1_000_000, 1, 1_000) == (31_622, 1)
