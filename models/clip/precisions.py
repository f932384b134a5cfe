"""Derived precisions: int8 and fp16 files made from an export's fp32 files with onnxruntime's own
tools, checked against fp32 and recorded in the manifest (`add_precisions`). Needs onnx and
onnxruntime, not torch."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vigil.errors import ModelUnavailableError, VigilError
from vigil.models.clip.config import PRECISIONS
from vigil.models.clip.int8 import INT8_RECIPE, derive_int8, u8s8_saturation_risks
from vigil.models.clip.manifest import (
    RECIPE_VERSIONS,
    TOWERS,
    read_manifest,
    stale_precisions,
    write_manifest,
)
from vigil.models.clip.quiet import quiet_third_party
from vigil.models.clip.towers import ExportError, example_inputs
from vigil.models.encoder import sha256_file
from vigil.models.onnx_session import Device, create_session

log = logging.getLogger("vigil.models")


def _derive_int8(source: Path, target: Path) -> None:
    """7-bit per-channel weights (models/clip/int8.py says why), checked after quantising: a file
    whose u8 x s8 products could saturate on a CPU without VNNI is never written into an export."""
    derive_int8(source, target)
    risks = u8s8_saturation_risks(target)
    if risks:
        target.unlink()
        raise ExportError(
            f"{target.name}: onnxruntime's quantiser produced weights that can saturate int16 on x86 "
            f"CPUs without VNNI ({'; '.join(risks[:3])}{'; ...' if len(risks) > 3 else ''})"
        )


def _derive_fp16(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    # Inputs and outputs stay float32, so the runtime feeds the same arrays at every precision.
    converted = OnnxModel(convert_float_to_float16(onnx.load(str(source)), keep_io_types=True))
    # The converter appends the casts of the kept float32 inputs at the end of the node list,
    # which the ONNX checker rejects; sort the graph so the file is valid ONNX.
    converted.topological_sort()
    onnx.save(converted.model, str(target))


_DERIVERS = {"int8": _derive_int8, "fp16": _derive_fp16}
_RECIPES = {"int8": INT8_RECIPE, "fp16": "onnxruntime float16 conversion, float32 inputs and outputs"}


def _cuda_available() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def _min_cosine(
    directory: Path, files: dict[str, Any], precision: str, manifest: dict[str, Any]
) -> dict[str, Any]:
    """Cosine similarity of a derived precision against fp32 on the deterministic example inputs."""
    if precision == "fp16" and not _cuda_available():
        # onnxruntime's CPU provider crashes (segfault) building fp16 CLIP graphs at full
        # optimisation, and fp16 is for CUDA anyway.
        return {"skipped": "fp16 is checked only where CUDA is available"}
    from vigil.models.encoder import l2_normalise

    device: Device = "cuda" if precision == "fp16" else "cpu"
    result = {}
    for tower in TOWERS:
        inputs = example_inputs(tower, 3, manifest["image_size"], manifest["context_length"])
        outputs = []
        for name in (files["fp32"][tower]["file"], files[precision][tower]["file"]):
            session = create_session(directory / name, device=device)
            outputs.append(l2_normalise(session.run(None, {session.get_inputs()[0].name: inputs})[0]))
        result[f"{tower}_min_cosine_vs_fp32"] = float((outputs[0] * outputs[1]).sum(axis=1).min())
    return result


def file_entry(path: Path) -> dict[str, Any]:
    """The manifest's entry for one file: its name, checksum and size."""
    return {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}


def check_precisions(precisions: Iterable[str]) -> list[str]:
    """`precisions` once each, in order; VigilError naming any unknown one."""
    wanted = list(dict.fromkeys(precisions))
    unknown = [p for p in wanted if p not in PRECISIONS]
    if unknown:
        raise VigilError(f"unknown CLIP precision {', '.join(unknown)}; choose from {', '.join(PRECISIONS)}")
    return wanted


def add_precisions(manifest_path: Path, precisions: Iterable[str]) -> Path:
    """Derive int8 / fp16 files from an export's fp32 files and record them in its manifest.

    A precision already there is derived again when an older recipe made it (manifest.RECIPE_VERSIONS).
    Needs onnx and onnxruntime, not torch, so an fp32 export can be extended anywhere.
    """
    manifest_path = Path(manifest_path)
    directory = manifest_path.parent
    manifest = read_manifest(directory)
    files = manifest["files"]
    stale = stale_precisions(manifest)
    for precision in check_precisions(precisions):
        if precision in files and precision not in stale:
            continue
        if precision in stale:
            log.info("re-deriving %s: its files were made by an older recipe", precision)
        if precision == "fp32" or "fp32" not in files:
            raise ModelUnavailableError(f"{directory} has no fp32 files; re-export it with torch + open_clip")
        for tower in TOWERS:
            source = directory / files["fp32"][tower]["file"]
            target = directory / f"{tower}.{precision}.onnx"
            log.info("deriving %s from %s", target.name, source.name)
            with quiet_third_party():
                _DERIVERS[precision](source, target)
        files[precision] = {tower: file_entry(directory / f"{tower}.{precision}.onnx") for tower in TOWERS}
        manifest.setdefault("recipes", {})[precision] = {
            "version": RECIPE_VERSIONS[precision],
            "recipe": _RECIPES[precision],
        }
        manifest["parity"][precision] = _min_cosine(directory, files, precision, manifest)
        write_manifest(manifest_path, manifest)
    return manifest_path
