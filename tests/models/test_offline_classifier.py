"""MobileNetV2 ImageNet classifier of the offline offline_encoder: export parity and sensible output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage import data as skimage_data  # real photographs shipped in scikit-image

from vigil.models.offline.labels import imagenet_labels
from vigil.models.offline.preprocess import imagenet_input

REFERENCE_LOGITS = Path(__file__).parent / "data" / "offline_mobilenet_v2_chelsea_logits.npy"
CAT_CLASSES = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}


def test_onnx_matches_plain_torch_forward(offline_encoder):
    import torch

    from vigil.models.offline.mobilenet_v2 import load_pretrained

    batch = np.stack([imagenet_input(skimage_data.chelsea()), imagenet_input(skimage_data.rocket())])
    with torch.no_grad():
        expected = load_pretrained()(torch.from_numpy(batch)).numpy()
    actual = offline_encoder.classifier.session.run(None, {offline_encoder.classifier.input_name: batch})[0]
    assert actual.shape == (2, 1000)
    assert np.abs(actual - expected).max() <= 1e-4


def test_logits_match_stored_reference(offline_encoder):
    # Made by the plain-torch network from the shipped checkpoint; also pins the preprocessing
    # (Pillow resize + crop + mean/std). 1e-3 leaves room for Pillow/onnxruntime version drift.
    reference = np.load(REFERENCE_LOGITS)
    logits = offline_encoder.classifier.logits([skimage_data.chelsea()])[0]
    assert np.abs(logits - reference).max() <= 1e-3


def test_cat_photo_is_a_cat(offline_encoder):
    probabilities = offline_encoder.classifier.probabilities([skimage_data.chelsea()])[0]
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    top = imagenet_labels().labels[int(probabilities.argmax())]
    assert top.name in CAT_CLASSES
    assert probabilities.max() > 0.5


def test_preprocessing_shape_and_range():
    tensor = imagenet_input(np.full((100, 300, 3), 255, np.uint8))
    assert tensor.shape == (3, 224, 224) and tensor.dtype == np.float32
    # White normalises to (1 - mean) / std per channel.
    assert np.allclose(
        tensor[:, 0, 0], (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    )
