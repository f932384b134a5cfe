"""The `vigil` console script as a user runs it: a real subprocess, real files, real models."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

VIGIL = str(Path(sys.executable).with_name("vigil"))


def vigil(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([VIGIL, *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_the_commands():
    result = vigil("--help")
    assert result.returncode == 0
    for command in ("zeroshot", "models", "demo"):
        assert command in result.stdout


def test_a_bad_image_is_one_clear_line_not_a_traceback(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    result = vigil("zeroshot", str(tmp_path / "broken.jpg"), "--label", "a cat")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"vigil: error: {tmp_path / 'broken.jpg'}: " in result.stderr


def test_an_unknown_model_is_refused_by_the_parser(tmp_path):
    result = vigil("zeroshot", "x.jpg", "--label", "a cat", "--model", "dalle")
    assert result.returncode == 2
    assert "dalle" in result.stderr and "Traceback" not in result.stderr


def test_clip_without_weights_names_both_ways_to_get_them(tmp_path):
    image = tmp_path / "frame.png"
    Image.fromarray(np.full((32, 32, 3), 100, np.uint8)).save(image)
    result = subprocess.run(
        [VIGIL, "zeroshot", str(image), "--label", "a cat", "--model", "clip", "--pretrained", "no-such-tag"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "VIGIL_MODELS_DIR": str(tmp_path / "models"), "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "--pretrained" in result.stderr and "--checkpoint" in result.stderr


@pytest.fixture(scope="module")
def real_photos(tmp_path_factory) -> dict[str, Path]:
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    photos = {"cat": data.chelsea(), "rocket": data.rocket(), "motorcycle": data.stereo_motorcycle()[1]}
    paths = {}
    for name, pixels in photos.items():
        paths[name] = folder / f"{name}.jpg"
        Image.fromarray(pixels).save(paths[name], quality=92)
    return paths


def test_zeroshot_json_ranks_labels_for_real_photos_in_english_and_vietnamese(real_photos):
    labels = ["a cat", "a rocket", "a motorcycle", "một con mèo", "một tên lửa", "một chiếc xe máy"]
    args = ["zeroshot", "--model", "offline", "--json"]
    for label in labels:
        args += ["--label", label]
    result = vigil(*args, *(str(p) for p in real_photos.values()))
    assert result.returncode == 0, result.stderr
    ranked = json.loads(result.stdout)
    assert [item["image"] for item in ranked] == [str(p) for p in real_photos.values()]
    for item in ranked:
        scores = [entry["score"] for entry in item["labels"]]
        assert scores == sorted(scores, reverse=True)
        assert sorted(entry["label"] for entry in item["labels"]) == sorted(labels)
    best_english = {}
    best_vietnamese = {}
    for item, name in zip(ranked, real_photos, strict=True):
        order = [entry["label"] for entry in item["labels"]]
        best_english[name] = next(label for label in order if label in labels[:3])
        best_vietnamese[name] = next(label for label in order if label in labels[3:])
    assert best_english == {"cat": "a cat", "rocket": "a rocket", "motorcycle": "a motorcycle"}
    assert best_vietnamese == {
        "cat": "một con mèo",
        "rocket": "một tên lửa",
        "motorcycle": "một chiếc xe máy",
    }


def test_models_lists_the_offline_encoder_with_checksums_and_provider():
    result = vigil("models", "--json")
    assert result.returncode == 0, result.stderr
    statuses = json.loads(result.stdout)
    offline = next(s for s in statuses if s["kind"] == "offline")
    assert offline["available"] is True
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert offline["info"]["providers"] == ["CPUExecutionProvider"]  # never claims a GPU it lacks
    assert offline["info"]["checksums"] and all(len(d) == 64 for d in offline["info"]["checksums"].values())
    assert offline["info"]["licence"]
