"""Shared CLIP fixtures: one export of random-init ViT-B-32 per test session (~25 s on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.models.clip.config import ClipSpec

VITB32_RANDOM = ClipSpec(model="ViT-B-32", pretrained=None)


@pytest.fixture(scope="session")
def clip_vitb32_random_export(tmp_path_factory) -> Path:
    """Manifest path of the real ViT-B-32 architecture with seeded random weights, fp32 + int8.

    Random weights because no pretrained weights can be downloaded here; parity with open_clip
    does not depend on what the weights are. The manifest records random_init: true.
    """
    from vigil.models.clip.export import export_clip

    return export_clip(
        VITB32_RANDOM,
        tmp_path_factory.mktemp("clip") / "ViT-B-32-random-init",
        precisions=("fp32", "int8"),
        random_init=True,
    )


@pytest.fixture(scope="session")
def open_clip_vitb32_random():
    """open_clip's PyTorch ViT-B-32 with the same seeded random weights as the export above."""
    from vigil.models.clip.export import load_open_clip_model

    model, _ = load_open_clip_model(VITB32_RANDOM, random_init=True)
    return model


@pytest.fixture(scope="session")
def offline_encoder():
    """The offline ConSE encoder on the CPU, loaded once (builds its artefacts on first use)."""
    from vigil.models.offline import OfflineEncoder

    return OfflineEncoder.load(device="cpu")
