"""Export an open_clip model to ONNX (image tower and text tower separately), plus int8 / fp16.

This is the only place that needs torch and open_clip; they are imported lazily so that the
runtime (tokenizer, preprocessing, onnxruntime) works without them. The fp32 export is checked
against open_clip's PyTorch forward before the manifest is written, and the int8 / fp16 files are
derived from the fp32 ONNX with onnxruntime's own tools, so they need onnx but not torch.

Layout of an export directory (see config.export_dir):
    image.<precision>.onnx   pixels (N, 3, S, S) float32 -> image_embeds (N, D) float32, unnormalised
    text.<precision>.onnx    tokens (N, 77) int64        -> text_embeds (N, D) float32, unnormalised
    manifest.json            what the files are, where the weights came from, checksums, parity
The manifest is written last (atomically), so a directory with a manifest is a complete export.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from vigil.errors import ModelUnavailableError, VigilError
from vigil.models.clip.config import PRECISIONS, ClipSpec, export_dir, weights_help
from vigil.models.clip.int8 import INT8_RECIPE, derive_int8, u8s8_saturation_risks
from vigil.models.clip.manifest import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    RECIPE_VERSIONS,
    TOWERS,
    read_manifest,
    stale_precisions,
    write_manifest,
)
from vigil.models.clip.preprocess import INTERPOLATIONS, RESIZE_MODES
from vigil.models.clip.tokenizer import ClipTokenizer
from vigil.models.encoder import sha256_file
from vigil.models.onnx_session import Device, create_session

if TYPE_CHECKING:
    import torch

log = logging.getLogger("vigil.models")

OPSET = 18
# An exported fp32 tower must reproduce PyTorch to this; measured ~4e-6 for ViT-B-32 at opset 18.
FP32_TOLERANCE = 1e-4
# A single-file ONNX model is a protobuf, which cannot exceed 2 GiB; keep a margin for the graph.
MAX_SINGLE_FILE_BYTES = 1_900_000_000

# Kept alive for the life of the process: the op schemas it defines vanish when it is collected.
_torchvision_stub_ops: torch.library.Library | None = None


class ExportError(VigilError):
    """An export that ran but produced something wrong (e.g. ONNX disagreeing with PyTorch)."""


def _torchvision_ops_registered(torch: ModuleType) -> bool:
    try:
        torch.ops.torchvision.nms  # noqa: B018 - attribute lookup is the probe
    except (AttributeError, RuntimeError):
        return False
    return True


def _load_torchvision_extension(torch: ModuleType) -> None:
    """Load torchvision's C++ ops exactly as `import torchvision` would, if they load at all.

    Done before deciding on stubs: the ops only exist after torchvision's import, and a stub
    schema defined first would stop a working extension from registering its real kernels.
    """
    import importlib.machinery
    import importlib.util

    spec = importlib.util.find_spec("torchvision")
    for location in (spec.submodule_search_locations or []) if spec else []:
        loader_details = (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES)
        extension = importlib.machinery.FileFinder(location, loader_details).find_spec("_C")
        if extension is not None and extension.origin:
            try:
                torch.ops.load_library(extension.origin)
            except (ImportError, OSError):
                pass  # built for another torch: the case the stubs below are for
            return


def import_open_clip() -> Any:  # the open_clip module, which is untyped
    """Import open_clip, working around a torchvision build that does not match the installed torch.

    open_clip imports torchvision. When torchvision's compiled extension does not load (a CPU torch
    with a torchvision built for another torch, as in our `make setup`), torchvision's Python code
    still registers fake kernels for its `nms` / `qnms` operators, which fails with "operator
    torchvision::nms does not exist" and makes the whole import fail. CLIP never calls those
    operators, so defining their schemas (without kernels) is enough for the import to succeed.
    Where torchvision's extension does load, nothing is defined and torchvision works fully.
    """
    global _torchvision_stub_ops
    import sys

    import torch

    if "torchvision" not in sys.modules and not _torchvision_ops_registered(torch):
        _load_torchvision_extension(torch)
    if not _torchvision_ops_registered(torch) and _torchvision_stub_ops is None:
        # torch leaves torch.library.Library's methods unannotated.
        _torchvision_stub_ops = torch.library.Library("torchvision", "DEF")  # type: ignore[no-untyped-call]
        _torchvision_stub_ops.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")  # type: ignore[no-untyped-call]
        _torchvision_stub_ops.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")  # type: ignore[no-untyped-call]
    import open_clip

    return open_clip


class _DropQuantizerChatter(logging.Filter):
    """Drop onnxruntime.quantization's root-logger INFO lines and its "consider pre-processing" advice."""

    def filter(self, record: logging.LogRecord) -> bool:
        from_quantizer = f"onnxruntime{os.sep}quantization" in record.pathname
        advice = str(record.msg).startswith("Please consider to run pre-processing")
        return not (from_quantizer and (record.levelno < logging.WARNING or advice))


@contextmanager
def _quiet_third_party() -> Iterator[None]:
    """Silence advice meant for the library authors, not for someone running `vigil export`.

    torch's exporter emits FutureWarnings about its own internals, onnxruntime's quantizer logs
    every node at INFO and "consider pre-processing" (advice for static quantisation) on the root
    logger, and onnx_ir logs every deduplicated initializer at INFO.
    """
    root = logging.getLogger()
    dropped = _DropQuantizerChatter()
    onnx_ir = logging.getLogger("onnx_ir")
    onnx_ir_level = onnx_ir.level
    root.addFilter(dropped)
    onnx_ir.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        root.removeFilter(dropped)
        onnx_ir.setLevel(onnx_ir_level)


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def _check_supported(open_clip: ModuleType, model_name: str) -> None:
    """Refuse models whose tokenizer our runtime cannot reproduce, before any download."""
    config = open_clip.get_model_config(model_name)
    if config is None:
        usable = [
            name
            for name in open_clip.list_models()
            if name.startswith("ViT-")
            and "hf_tokenizer_name" not in open_clip.get_model_config(name).get("text_cfg", {})
        ]
        raise ModelUnavailableError(
            f"unknown open_clip model {model_name!r} "
            f"(ViT models with the CLIP tokenizer: {', '.join(usable)})"
        )
    text_cfg = config.get("text_cfg", {})
    if "hf_tokenizer_name" in text_cfg:
        raise ModelUnavailableError(
            f"open_clip model {model_name!r} uses a Hugging Face tokenizer; Vigil's CLIP runtime only "
            "has the OpenAI CLIP BPE tokenizer"
        )
    from open_clip.tokenizer import SimpleTokenizer, _clean_lower

    tokenizer = open_clip.get_tokenizer(model_name)
    if not (
        isinstance(tokenizer, SimpleTokenizer)
        and tokenizer.clean_fn is _clean_lower
        and tokenizer.reduction_fn is None
        and tokenizer.vocab_size == 49408
    ):
        raise ModelUnavailableError(
            f"open_clip model {model_name!r} tokenizes differently from OpenAI CLIP "
            f"({type(tokenizer).__name__}); Vigil's CLIP runtime cannot reproduce it"
        )


def load_open_clip_model(spec: ClipSpec, random_init: bool = False) -> tuple[Any, dict[str, Any]]:
    """The open_clip PyTorch model of `spec` in eval mode (an untyped open_clip CLIP), and a dict
    describing its weights.

    `random_init=True` gives seeded random weights: the same every call, so that tests can compare
    an export with the PyTorch model it came from.
    """
    import torch

    open_clip = import_open_clip()
    _check_supported(open_clip, spec.model)
    config_quick_gelu = bool(open_clip.get_model_config(spec.model).get("quick_gelu", False))
    if random_init:
        # Seeded so that two exports of "random weights" are the same file (reproducible benches).
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = open_clip.create_model(spec.model, pretrained=None)
        return model.eval(), {"pretrained": None, "checkpoint": None, "quick_gelu": config_quick_gelu}
    if spec.checkpoint is not None:
        checkpoint = spec.checkpoint.expanduser().resolve()
        if not checkpoint.is_file():
            raise ModelUnavailableError(f"CLIP checkpoint {spec.checkpoint} does not exist; {weights_help()}")
        try:
            # The checkpoint must match the architecture exactly (open_clip loads strictly); for
            # OpenAI-trained weights pick a "-quickgelu" model name, since the file cannot tell.
            model = open_clip.create_model(spec.model, pretrained=str(checkpoint))
        except Exception as error:  # noqa: BLE001 - any failure means: these weights are unusable
            raise ModelUnavailableError(
                f"cannot load CLIP checkpoint {checkpoint} into {spec.model} ({_one_line(error)}); "
                f"{weights_help()}"
            ) from None
        return model.eval(), {
            "pretrained": None,
            "checkpoint": str(checkpoint),
            "checkpoint_sha256": sha256_file(checkpoint),
            "quick_gelu": config_quick_gelu,
        }
    if spec.pretrained:
        tag_cfg = open_clip.get_pretrained_cfg(spec.model, spec.pretrained)
        if not tag_cfg:
            tags = ", ".join(open_clip.list_pretrained_tags_by_model(spec.model)) or "none"
            raise ModelUnavailableError(
                f"open_clip has no pretrained tag {spec.pretrained!r} for {spec.model} (known: {tags}); "
                f"{weights_help()}"
            )
        # open_clip 3 builds the architecture from the model name alone and only warns when the
        # tag was trained with QuickGELU (all OpenAI weights): the embeddings would be quietly
        # wrong, so we follow the tag.
        quick_gelu = config_quick_gelu or bool(tag_cfg.get("quick_gelu", False))
        log.info(
            "getting weights %s/%s through open_clip (a download unless cached; offline, set "
            "HF_HUB_OFFLINE=1 to fail at once instead of after retries)",
            spec.model,
            spec.pretrained,
        )
        try:
            model = open_clip.create_model(
                spec.model, pretrained=spec.pretrained, force_quick_gelu=quick_gelu
            )
        except Exception as error:  # noqa: BLE001 - network, cache, disk: all mean no weights
            raise ModelUnavailableError(
                f"cannot get CLIP weights {spec.model}/{spec.pretrained} ({_one_line(error)}); "
                f"{weights_help()}"
            ) from None
        return model.eval(), {"pretrained": spec.pretrained, "checkpoint": None, "quick_gelu": quick_gelu}
    raise ModelUnavailableError(f"CLIP {spec.model}: no weights named; {weights_help()}")


def _describe_weights(spec: ClipSpec, weights: dict[str, Any], random_init: bool) -> dict[str, str]:
    if random_init:
        return {
            "name": f"clip:{spec.model}/random-init",
            "source": "random-init (not a result)",
            "licence": "none: random weights, for tests and benchmarks only (not a result)",
        }
    if weights["checkpoint"]:
        return {
            "name": f"clip:{spec.model}/ckpt-{weights['checkpoint_sha256'][:12]}",
            "source": f"checkpoint {weights['checkpoint']}",
            "licence": "see the licence of the checkpoint's origin (a local file, unknown to Vigil)",
        }
    tag = weights["pretrained"]
    licence = (
        "MIT (OpenAI CLIP weights, https://github.com/openai/CLIP)"
        if tag == "openai"
        else f"see upstream pretrained tag licence (open_clip {spec.model}/{tag})"
    )
    return {
        "name": f"clip:{spec.model}/{tag}",
        "source": f"open_clip pretrained tag {tag}",
        "licence": licence,
    }


def _preprocess_config(model: Any, model_name: str) -> dict[str, Any]:  # model: open_clip's (untyped)
    cfg = model.visual.preprocess_cfg
    size = cfg["size"]
    if isinstance(size, (tuple, list)):
        if len(set(size)) != 1:
            raise ModelUnavailableError(f"{model_name}: non-square image size {size} is not supported")
        size = size[0]
    interpolation = cfg.get("interpolation") or "bicubic"
    resize_mode = cfg.get("resize_mode") or "shortest"
    if interpolation not in INTERPOLATIONS or resize_mode not in RESIZE_MODES:
        raise ModelUnavailableError(
            f"{model_name}: preprocessing {resize_mode}/{interpolation} is not supported by Vigil "
            f"(supported: resize {RESIZE_MODES} with {sorted(INTERPOLATIONS)})"
        )
    return {
        "image_size": int(size),
        "mean": [float(x) for x in cfg["mean"]],
        "std": [float(x) for x in cfg["std"]],
        "interpolation": interpolation,
        "resize_mode": resize_mode,
    }


def _tower_modules(model: Any) -> dict[str, torch.nn.Module]:  # model: open_clip's CLIP (untyped)
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


def _example_inputs(tower: str, batch: int, image_size: int, context_length: int) -> np.ndarray:
    """Deterministic NumPy inputs: normal noise for pixels (the scale of normalised images), real tokens.

    NumPy, not torch, so that add_precisions can check int8 / fp16 files without torch.
    """
    if tower == "image":
        generator = np.random.default_rng(batch)
        return generator.standard_normal((batch, 3, image_size, image_size), dtype=np.float32)
    texts = ["a photo of a red motorbike", "một xe máy màu đỏ", "two people at a gate at night"]
    return ClipTokenizer(context_length=context_length).tokenize((texts * batch)[:batch]).ids


def _export_fp32_tower(
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
    example = torch.from_numpy(_example_inputs(tower, 2, image_size, context_length))
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


def _compare_with_torch(
    module: torch.nn.Module, tower: str, path: Path, image_size: int, context_length: int
) -> tuple[float, int]:
    """Max abs difference ONNX vs PyTorch, and the embedding size.

    Runs a batch size unlike the export example (3), so the dynamic batch axis is exercised too.
    """
    import torch

    inputs = _example_inputs(tower, 3, image_size, context_length)
    with torch.no_grad():
        expected = module(torch.from_numpy(inputs)).numpy()
    session = create_session(path, device="cpu")
    actual = session.run(None, {session.get_inputs()[0].name: inputs})[0]
    return float(np.abs(actual - expected).max()), int(expected.shape[1])


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
        inputs = _example_inputs(tower, 3, manifest["image_size"], manifest["context_length"])
        outputs = []
        for name in (files["fp32"][tower]["file"], files[precision][tower]["file"]):
            session = create_session(directory / name, device=device)
            outputs.append(l2_normalise(session.run(None, {session.get_inputs()[0].name: inputs})[0]))
        result[f"{tower}_min_cosine_vs_fp32"] = float((outputs[0] * outputs[1]).sum(axis=1).min())
    return result


def _file_entry(path: Path) -> dict[str, Any]:
    return {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}


def _check_precisions(precisions: Iterable[str]) -> list[str]:
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
    for precision in _check_precisions(precisions):
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
            with _quiet_third_party():
                _DERIVERS[precision](source, target)
        files[precision] = {tower: _file_entry(directory / f"{tower}.{precision}.onnx") for tower in TOWERS}
        manifest.setdefault("recipes", {})[precision] = {
            "version": RECIPE_VERSIONS[precision],
            "recipe": _RECIPES[precision],
        }
        manifest["parity"][precision] = _min_cosine(directory, files, precision, manifest)
        write_manifest(manifest_path, manifest)
    return manifest_path


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
    wanted = _check_precisions(["fp32", *precisions])
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
        **_describe_weights(spec, weights, random_init),
        "embed_dim": None,  # measured from the towers' outputs below
        **_preprocess_config(model, spec.model),
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
        towers = _tower_modules(model)
        parity = {}
        for tower, module in towers.items():
            path = staging / f"{tower}.fp32.onnx"
            log.info("exporting %s tower of %s to ONNX", tower, manifest["name"])
            with _quiet_third_party():
                _export_fp32_tower(module, tower, path, manifest["image_size"], manifest["context_length"])
            diff, dim = _compare_with_torch(
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
        manifest["files"]["fp32"] = {tower: _file_entry(staging / f"{tower}.fp32.onnx") for tower in TOWERS}
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
