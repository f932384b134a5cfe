"""Bad image input gets an error that names the problem; odd but valid input is converted."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vigil.errors import BadImageError, BadTextError
from vigil.models.encoder import MAX_IMAGE_PIXELS, as_rgb_uint8, check_text, l2_normalise
from vigil.models.images import load_image


def test_grey_image_is_replicated_to_three_channels():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = as_rgb_uint8(grey)
    assert rgb.shape == (3, 4, 3)
    assert (rgb[:, :, 0] == grey).all() and (rgb[:, :, 2] == grey).all()


def test_rgba_image_drops_alpha():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 7
    rgb = as_rgb_uint8(rgba)
    assert rgb.shape == (2, 2, 3) and (rgb[..., 0] == 200).all() and (rgb[..., 1:] == 0).all()


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((4, 4, 3), np.float32), "dtype uint8"),
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.zeros((2, 4, 4, 3), np.uint8), "shape"),
    ],
)
def test_unusable_arrays_are_refused_by_name(array, expected):
    with pytest.raises(BadImageError, match=expected):
        as_rgb_uint8(array, "frame 7")


def test_a_huge_array_is_refused_without_touching_its_pixels():
    # A strided view: enormous shape, no memory; the size check must come first.
    huge = np.lib.stride_tricks.as_strided(np.zeros(3, np.uint8), (20000, 10000, 3), (0, 0, 1))
    with pytest.raises(BadImageError, match="exceeds the limit"):
        as_rgb_uint8(huge)


def test_texts_must_not_be_empty():
    assert check_text("một xe máy màu đỏ") == "một xe máy màu đỏ"
    with pytest.raises(BadTextError, match="text #3: text is empty"):
        check_text("  \n", "text #3")


def test_l2_normalise_gives_unit_rows_and_survives_zero_vectors():
    vectors = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert vectors.dtype == np.float32
    assert np.allclose(vectors[0], [0.6, 0.8]) and np.all(np.isfinite(vectors[1]))


def write_png(path: Path, size=(32, 24), mode="RGB") -> Path:
    Image.new(mode, size, color=128 if mode == "L" else (10, 20, 30)).save(path)
    return path


def test_load_image_converts_grey_and_rgba_files(tmp_path):
    assert load_image(write_png(tmp_path / "grey.png", mode="L")).shape == (24, 32, 3)
    assert load_image(write_png(tmp_path / "rgba.png", mode="RGBA")).shape == (24, 32, 3)


def test_load_image_names_a_truncated_file(tmp_path):
    Image.new("RGB", (640, 480), (90, 10, 200)).save(tmp_path / "big.jpg", quality=95)
    data = (tmp_path / "big.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImageError, match=r"cut\.jpg: cannot decode image"):
        load_image(tmp_path / "cut.jpg")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.png", b"", "file is empty"),
        ("notes.png", b"this is not an image at all", "not an image file"),
    ],
)
def test_load_image_names_empty_and_non_image_files(tmp_path, name, content, expected):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(BadImageError, match=expected):
        load_image(tmp_path / name)


def test_load_image_names_a_missing_file_and_a_directory(tmp_path):
    with pytest.raises(BadImageError, match="no such image file"):
        load_image(tmp_path / "absent.jpg")
    with pytest.raises(BadImageError, match="is a directory"):
        load_image(tmp_path)


def test_load_image_refuses_a_huge_image_before_decoding_it(tmp_path):
    side = int(MAX_IMAGE_PIXELS**0.5) + 16
    Image.new("1", (side, side)).save(tmp_path / "huge.png")  # 1-bit: small on disk and in memory
    with pytest.raises(BadImageError, match="exceeds the limit|too large"):
        load_image(tmp_path / "huge.png")
