"""The fp32 ONNX towers: CLIP's image and text towers as separate modules, their export at opset
`OPSET`, and their parity with PyTorch on deterministic example inputs (`ExportError` when an
export came out wrong). torch is imported only when called; `example_inputs` needs NumPy alone."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vigil.errors import ModelUnavailableError, VigilError
from vigil.models.clip.tokenizer import ClipTokenizer
from vigil.models.onnx_session import create_session

if TYPE_CHECKING:
    import torch

OPSET = 18
# An exported fp32 tower must reproduce PyTorch to this; measured ~4e-6 for ViT-B-32 at opset 18.
FP32_TOLERANCE = 1e-4
# A single-file ONNX model is a protobuf, which cannot exceed 2 GiB; keep a margin for the graph.
MAX_SINGLE_FILE_BYTES = 1_900_000_000


class ExportError(VigilError):
    """An export that ran but produced something wrong (e.g. ONNX disagreeing with PyTorch)."""


def tower_modules(model: Any) -> dict[str, torch.nn.Module]:  # model: open_clip's CLIP (untyped)
    """Image and text towers as separate modules, each returning unnormalised embeddings."""
    import torch

    class ImageTower(torch.nn.Module):
        def __init__(self, clip: Any) -> None:
            super().__init__()
            self.clip = clip

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            embeddings: torch.Tensor = self.clip.encode_image(pixels, normalize=False)
            return embeddings

    class TextTower(torch.nn.Module):
        def __init__(self, clip: Any) -> None:
            super().__init__()
            self.clip = clip

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            embeddings: torch.Tensor = self.clip.encode_text(tokens, normalize=False)
            return embeddings

    return {"image": ImageTower(model).eval(), "text": TextTower(model).eval()}


def example_inputs(tower: str, batch: int, image_size: int, context_length: int) -> np.ndarray:
    """Deterministic NumPy inputs: normal noise for pixels (the scale of normalised images), real tokens.

    NumPy, not torch, so that add_precisions can check int8 / fp16 files without torch.
    """
    if tower == "image":
        generator = np.random.default_rng(batch)
        return generator.standard_normal((batch, 3, image_size, image_size), dtype=np.float32)
    texts = ["a photo of a red motorbike", "một xe máy màu đỏ", "two people at a gate at night"]
    return ClipTokenizer(context_length=context_length).tokenize((texts * batch)[:batch]).ids


def export_fp32_tower(
    module: torch.nn.Module, tower: str, path: Path, image_size: int, context_length: int
) -> None:
    import torch

    parameter_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    if parameter_bytes > MAX_SINGLE_FILE_BYTES:
        raise ModelUnavailableError(
            f"{tower} tower has {parameter_bytes / 1e9:.1f} GB of weights; single-file ONNX export "
            "is limited to 2 GB and external-data exports are not supported yet"
        )
    input_name = "pixels" if tower == "image" else "tokens"
    example = torch.from_numpy(example_inputs(tower, 2, image_size, context_length))
    # The torch.export-based exporter (the default since torch 2.9) reproduces open_clip to ~4e-6
    # at opset 18; the legacy TorchScript exporter is equally exact but deprecated.
    torch.onnx.export(
        module,
        (example,),
        str(path),
        dynamo=True,
        opset_version=OPSET,
        input_names=[input_name],
        # Not just "embedding": the text graph already has a value of that name (the token lookup).
        output_names=[f"{tower}_embeds"],
        dynamic_shapes={input_name: {0: torch.export.Dim("batch")}},
        external_data=False,
        verbose=False,
    )


def compare_with_torch(
    module: torch.nn.Module, tower: str, path: Path, image_size: int, context_length: int
) -> tuple[float, int]:
    """Max abs difference ONNX vs PyTorch, and the embedding size.

    Runs a batch size unlike the export example (3), so the dynamic batch axis is exercised too.
    """
    import torch

    inputs = example_inputs(tower, 3, image_size, context_length)
    with torch.no_grad():
        expected = module(torch.from_numpy(inputs)).numpy()
    session = create_session(path, device="cpu")
    actual = session.run(None, {session.get_inputs()[0].name: inputs})[0]
    return float(np.abs(actual - expected).max()), int(expected.shape[1])
