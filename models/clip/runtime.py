"""CLIP at run time: an exported model (manifest + ONNX towers) behind the Encoder interface.

Needs numpy, Pillow, ftfy, regex and onnxruntime only; torch and open_clip are touched solely
by `from_spec` when it has to export a missing model and they happen to be installed.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from vigil.errors import ModelUnavailableError, VigilError
from vigil.models.clip.config import PRECISIONS, ClipSpec, export_dir
from vigil.models.clip.manifest import MANIFEST_NAME, TOWERS, read_manifest, stale_precisions
from vigil.models.clip.preprocess import ClipPreprocess
from vigil.models.clip.tokenizer import default_tokenizer
from vigil.models.encoder import Encoder, EncoderInfo
from vigil.models.onnx_session import Device, active_providers, create_session

log = logging.getLogger("vigil.models")

# Inputs per onnxruntime call: bounds memory for long lists (an image is 0.6 MB of float32
# pixels at 224x224, plus activations) while keeping batches large enough to use the cores.
DEFAULT_BATCH_SIZE = 32

_EXPORT_HELP = (
    "export it with `vigil models export-clip --pretrained openai` (downloads the weights once) or "
    "`vigil models export-clip --checkpoint PATH` for a local checkpoint file; exporting needs "
    "torch and open_clip (the `export` extra)"
)


def _export_tools_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "open_clip", "onnx"))


def _will_run_on_cuda(device: Device) -> bool:
    """The same provider choice create_session makes, known before any session exists."""
    return device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers()


def _refuse_fp16_without_cuda(precision: str, device: Device) -> None:
    """Refuse before any session exists: onnxruntime's CPU provider does not merely run fp16 CLIP
    slowly, it crashes the process (segfault, onnxruntime 1.31) optimising the graph."""
    if precision == "fp16" and not _will_run_on_cuda(device):
        raise ModelUnavailableError(
            f"fp16 CLIP runs on CUDA only and onnxruntime here has no usable CUDA provider "
            f"(device={device!r}, available: {', '.join(ort.get_available_providers())}); "
            "use precision fp32 or int8 on CPU"
        )


def _needs_deriving(manifest: dict[str, Any], precision: str) -> bool:
    """Whether `precision` is missing from an export, or was derived by an older recipe."""
    return precision not in manifest["files"] or precision in stale_precisions(manifest)


class ClipEncoder(Encoder):
    """An exported open_clip model run by onnxruntime: our tokenizer + preprocessing + ONNX towers.

    fp32 reproduces open_clip to ~1e-7 per embedding component. int8 quantises activations with
    one scale per batch, so an embedding moves slightly with its batch-mates (cosine >= 0.999
    measured); cache int8 embeddings knowing they are not bit-stable across batchings.
    """

    def __init__(
        self,
        directory: Path,
        precision: str = "fp32",
        device: Device = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = None,
    ):
        self.directory = Path(directory)
        if precision not in PRECISIONS:
            raise VigilError(f"CLIP precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.manifest = read_manifest(self.directory)
        self.precision = precision
        self.batch_size = batch_size
        files = self.manifest["files"].get(precision)
        if files is None:
            raise ModelUnavailableError(
                f"CLIP export {self.directory} has no {precision} files (it has: "
                f"{', '.join(self.manifest['files'])}); re-export with `vigil models export-clip "
                f"--precision fp32 --precision {precision}` and the same weights options"
            )
        paths = {tower: self.directory / files[tower]["file"] for tower in TOWERS}
        missing = [str(path) for path in paths.values() if not path.is_file()]
        if missing:
            raise ModelUnavailableError(
                f"CLIP export {self.directory} is incomplete: {', '.join(missing)} missing; re-export it"
            )
        _refuse_fp16_without_cuda(precision, device)
        if precision in stale_precisions(self.manifest):
            # Still usable (exact enough on CPUs with VNNI), so a warning; every service opens CLIP
            # through from_spec, which re-derives the files first.
            log.warning(
                "%s: its %s files were made by an older recipe (int8 before version 2 loses accuracy "
                "on x86 CPUs without VNNI); ClipEncoder.from_spec, which the services and `vigil` use, "
                "re-derives them from fp32",
                self.directory,
                precision,
            )
        # Checksums come from the manifest, written from these files at export time; hashing
        # ~600 MB again at every start would cost seconds for no new information.
        self._checksums = {files[tower]["file"]: files[tower]["sha256"] for tower in TOWERS}
        self._image_session = create_session(paths["image"], device, threads)
        self._text_session = create_session(paths["text"], device, threads)
        self._image_input = self._image_session.get_inputs()[0].name
        self._text_input = self._text_session.get_inputs()[0].name
        self.preprocess = ClipPreprocess.from_manifest(self.manifest)
        self.tokenizer = default_tokenizer(int(self.manifest["context_length"]))
        self._info = EncoderInfo(
            name=self.manifest["name"],
            dim=int(self.manifest["embed_dim"]),
            source=self.manifest["source"],
            licence=self.manifest["licence"],
            checksums=self._checksums,
            providers=active_providers(self._image_session),
            details={
                "precision": precision,
                "export_dir": str(self.directory),
                "random_init": str(bool(self.manifest["random_init"])).lower(),
                "opset": str(self.manifest["opset"]),
                "text_providers": ",".join(active_providers(self._text_session)),
            },
        )
        if self.manifest["random_init"]:
            log.warning(
                "%s has random weights: its embeddings are for tests and benchmarks only", self.directory
            )

    @classmethod
    def from_spec(cls, spec: ClipSpec, **kwargs: Any) -> ClipEncoder:
        """The encoder for `spec`, exporting it first if needed and torch + open_clip are installed."""
        _refuse_fp16_without_cuda(spec.precision, spec.device)  # before spending minutes exporting
        directory = export_dir(spec)
        manifest_path = directory / MANIFEST_NAME
        if not manifest_path.is_file():
            if not _export_tools_installed():
                raise ModelUnavailableError(f"no CLIP export at {directory}; {_EXPORT_HELP}")
            from vigil.models.clip.export import export_clip

            log.info("no CLIP export at %s; exporting it now", directory)
            export_clip(spec, directory, precisions=("fp32", "int8", spec.precision))
        elif _needs_deriving(read_manifest(directory), spec.precision):
            if importlib.util.find_spec("onnx") is None:
                raise ModelUnavailableError(
                    f"CLIP export {directory} has no current {spec.precision} files and the onnx package, "
                    f"needed to derive them from fp32, is not installed; {_EXPORT_HELP}"
                )
            from vigil.models.clip.export import add_precisions

            add_precisions(manifest_path, [spec.precision])
        return cls(directory, spec.precision, spec.device, **kwargs)

    @property
    def info(self) -> EncoderInfo:
        return self._info

    def _run_batched(
        self,
        session: ort.InferenceSession,
        input_name: str,
        count: int,
        make_batch: Callable[[int, int], np.ndarray],
    ) -> np.ndarray:
        outputs = []
        for start in range(0, count, self.batch_size):
            stop = min(start + self.batch_size, count)
            outputs.append(session.run(None, {input_name: make_batch(start, stop)})[0])
        return np.concatenate(outputs).astype(np.float32, copy=False)

    def _embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        # Preprocess per micro-batch, so a long list never holds all float32 pixels at once.
        return self._run_batched(
            self._image_session,
            self._image_input,
            len(images),
            lambda start, stop: self.preprocess(images[start:stop]),
        )

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        tokenized = self.tokenizer.tokenize(texts)
        for index, truncated in enumerate(tokenized.truncated):
            if truncated:
                log.warning("text #%d truncated to %d tokens", index, self.tokenizer.context_length)
        return self._run_batched(
            self._text_session,
            self._text_input,
            len(texts),
            lambda start, stop: tokenized.ids[start:stop],
        )
