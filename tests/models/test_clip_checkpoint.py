"""The offline way to real weights: a local checkpoint file, exported on first use by from_spec.

ViT-S-32 (small, random weights saved as a checkpoint) keeps this to ~15 s; what is tested is
the checkpoint path, naming and provenance, not the architecture (test_clip_parity does that).
"""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from vigil.models.clip.config import ClipSpec
from vigil.models.clip.export import import_open_clip
from vigil.models.clip.runtime import ClipEncoder
from vigil.models.encoder import sha256_file

open_clip = import_open_clip()


def test_checkpoint_exports_on_first_use_and_matches_open_clip(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_MODELS_DIR", str(tmp_path / "models"))
    torch.manual_seed(3)
    model = open_clip.create_model("ViT-S-32", pretrained=None).eval()
    checkpoint = tmp_path / "my-clip.pt"
    torch.save(model.state_dict(), checkpoint)
    digest = sha256_file(checkpoint)
    spec = ClipSpec(model="ViT-S-32", checkpoint=checkpoint, precision="fp32")

    encoder = ClipEncoder.from_spec(spec)

    export = tmp_path / "models" / "clip" / f"ViT-S-32-ckpt-{digest[:12]}"
    assert encoder.directory == export
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["random_init"] is False
    assert manifest["checkpoint"] == str(checkpoint.resolve())
    assert manifest["checkpoint_sha256"] == digest
    assert set(manifest["files"]) == {"fp32", "int8"}
    assert encoder.info.name == f"clip:ViT-S-32/ckpt-{digest[:12]}"
    assert encoder.info.source == f"checkpoint {checkpoint.resolve()}"
    assert encoder.info.dim == 384

    texts = ["một xe máy màu đỏ", "a person at the gate"]
    image = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    _, _, transform = open_clip.create_model_and_transforms("ViT-S-32", pretrained=None)
    with torch.no_grad():
        expected_texts = model.encode_text(open_clip.get_tokenizer("ViT-S-32")(texts), normalize=True)
        expected_image = model.encode_image(transform(Image.fromarray(image))[None], normalize=True)
    assert np.abs(encoder.embed_texts(texts) - expected_texts.numpy()).max() <= 1e-4
    assert np.abs(encoder.embed_images([image]) - expected_image.numpy()).max() <= 1e-4

    # Second use: the export is found, not redone.
    stamp = (export / "manifest.json").stat().st_mtime_ns
    assert ClipEncoder.from_spec(spec.model_copy(update={"precision": "int8"})).precision == "int8"
    assert (export / "manifest.json").stat().st_mtime_ns == stamp
