"""Export an open_clip model to ONNX (image tower and text tower separately), plus int8 / fp16.

The export is the only place that needs torch and open_clip; they are imported lazily so that the
runtime (tokenizer, preprocessing, onnxruntime) works without them. The fp32 export is checked
against open_clip's PyTorch forward before the manifest is written, and the int8 / fp16 files are
derived from the fp32 ONNX with onnxruntime's own tools, so they need onnx but not torch.

Layout of an export directory (see config.export_dir):
    image.<precision>.onnx   pixels (N, 3, S, S) float32 -> image_embeds (N, D) float32, unnormalised
    text.<precision>.onnx    tokens (N, 77) int64        -> text_embeds (N, D) float32, unnormalised
    manifest.json            what the files are, where the weights came from, checksums, parity
The manifest is written last (atomically), so a directory with a manifest is a complete export.

This module runs an export (`export_clip`) from the parts it draws on, and re-exports the names
its callers import from here:
    open_clip_import.py  import_open_clip (around a torchvision built for another torch)
    open_clip_model.py   load_open_clip_model, and what the manifest says of weights and preprocessing
    towers.py            the fp32 towers, their ONNX export and parity with PyTorch; ExportError
    precisions.py        add_precisions: int8 / fp16 derived from fp32, checked against it
    quiet.py             third-party chatter silenced during export
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vigil.models.clip.config import ClipSpec, export_dir
from vigil.models.clip.manifest import MANIFEST_FORMAT, MANIFEST_NAME, TOWERS, write_manifest
from vigil.models.clip.open_clip_import import import_open_clip
from vigil.models.clip.open_clip_model import describe_weights, load_open_clip_model, preprocess_config
from vigil.models.clip.precisions import add_precisions, check_precisions, file_entry
from vigil.models.clip.quiet import quiet_third_party
from vigil.models.clip.towers import (
    FP32_TOLERANCE,
    OPSET,
    ExportError,
    compare_with_torch,
    export_fp32_tower,
    tower_modules,
)

__all__ = ["ExportError", "add_precisions", "export_clip", "import_open_clip", "load_open_clip_model"]

log = logging.getLogger("vigil.models")


def export_clip(
    spec: ClipSpec,
    out_dir: Path | None = None,
    precisions: Iterable[str] = ("fp32", "int8"),
    random_init: bool = False,
) -> Path:
    """Export `spec` to ONNX in `out_dir` (default: config.export_dir(spec)); return the manifest path.

    Weights come from `spec.checkpoint` if set, else open_clip's download of `spec.pretrained`;
    `random_init=True` uses seeded random weights instead, for tests and benchmarks only (the
    manifest says so). fp32 is always exported, because the other precisions derive from it and
    it is the parity reference. Raises ModelUnavailableError when no weights can be had.
    """
    wanted = check_precisions(["fp32", *precisions])
    model, weights = load_open_clip_model(spec, random_init)
    import onnxruntime
    import open_clip
    import torch

    out_dir = Path(out_dir) if out_dir is not None else export_dir(spec, random_init)
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "model": spec.model,
        "random_init": random_init,
        **weights,
        **describe_weights(spec, weights, random_init),
        "embed_dim": None,  # measured from the towers' outputs below
        **preprocess_config(model, spec.model),
        "context_length": int(model.context_length),
        "outputs_normalised": False,
        "opset": OPSET,
        "exporter": f"torch.onnx (dynamo) {torch.__version__}",
        "open_clip_version": open_clip.__version__,
        "onnxruntime_version": onnxruntime.__version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "files": {},
        "parity": {},
    }

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Build next to the target and swap in at the end: an interrupted export never leaves a
    # directory that looks complete, and a re-export replaces the old one whole.
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        towers = tower_modules(model)
        parity = {}
        for tower, module in towers.items():
            path = staging / f"{tower}.fp32.onnx"
            log.info("exporting %s tower of %s to ONNX", tower, manifest["name"])
            with quiet_third_party():
                export_fp32_tower(module, tower, path, manifest["image_size"], manifest["context_length"])
            diff, dim = compare_with_torch(
                module, tower, path, manifest["image_size"], manifest["context_length"]
            )
            if diff > FP32_TOLERANCE:
                raise ExportError(
                    f"exported {tower} tower of {manifest['name']} differs from PyTorch by {diff:.2e} "
                    f"(> {FP32_TOLERANCE}); the ONNX exporter mistranslated it, not exporting"
                )
            if manifest["embed_dim"] not in (None, dim):
                raise ExportError(f"{manifest['name']}: image and text embeddings differ in size")
            manifest["embed_dim"] = dim
            parity[f"{tower}_max_abs_diff_vs_torch"] = diff
        manifest["files"]["fp32"] = {tower: file_entry(staging / f"{tower}.fp32.onnx") for tower in TOWERS}
        manifest["parity"]["fp32"] = parity
        write_manifest(staging / MANIFEST_NAME, manifest)
        del towers, model  # free ~600 MB of fp32 weights before quantising
        add_precisions(staging / MANIFEST_NAME, wanted)
        _replace_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("exported %s to %s", manifest["name"], out_dir)
    return out_dir / MANIFEST_NAME


def _replace_dir(source: Path, target: Path) -> None:
    if target.exists():
        retired = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, retired)
        os.replace(source, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(source, target)
    target.chmod(0o755)  # mkdtemp creates 0700
