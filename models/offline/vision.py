"""The two image models of the offline encoder, run with onnxruntime.

ImageNetClassifier: MobileNetV2, 1000 ImageNet classes, softmax probabilities.
YoloDetector: YOLOv3-tiny, 80 COCO classes, boxes after per-class non-maximum suppression.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vigil.models.offline.preprocess import Letterbox, imagenet_input, yolo_input
from vigil.models.onnx_session import Device, active_providers, create_session

if TYPE_CHECKING:
    import onnxruntime as ort

# A detection counts when objectness * class probability reaches this (darknet's default
# -thresh for YOLOv3 demos is .25; OpenCV's samples use .5 for the same network).
DETECTION_THRESHOLD = 0.25
NMS_IOU = 0.45
# Images per onnxruntime call. On CPU a bigger call is not faster (16 images took the same time,
# within noise, in calls of 1, 2, 8 or 16: 16-22 images/s on 2 cores), but onnxruntime's memory
# arena keeps what its biggest call needed: YOLOv3-tiny held 1.5 GiB of RSS after calls of 16
# images, 0.37 GiB after calls of 2 (768x576 frames; the detector's RSS at 8 cameras is in
# BENCHMARKS.md). A GPU does gain from big calls, so CUDA sessions keep 16.
CPU_CHUNK, CUDA_CHUNK = 2, 16


def images_per_call(session: ort.InferenceSession) -> int:
    return CUDA_CHUNK if active_providers(session)[0] == "CUDAExecutionProvider" else CPU_CHUNK


def _box(row: np.ndarray) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(value) for value in row)
    return x0, y0, x1, y1


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    probabilities: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
    return probabilities


class ImageNetClassifier:
    def __init__(self, onnx_path: Path, device: Device = "auto"):
        self.session = create_session(onnx_path, device)
        self.input_name = self.session.get_inputs()[0].name
        self.chunk = images_per_call(self.session)

    @property
    def providers(self) -> list[str]:
        return active_providers(self.session)

    def logits(self, images: list[np.ndarray]) -> np.ndarray:
        """(n, 1000) float32 logits for (H, W, 3) uint8 RGB images."""
        out = []
        for start in range(0, len(images), self.chunk):
            batch = np.stack([imagenet_input(image) for image in images[start : start + self.chunk]])
            out.append(self.session.run(None, {self.input_name: batch})[0])
        return np.concatenate(out).astype(np.float32)

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        return softmax(self.logits(images))


@dataclass(frozen=True)
class Detection:
    class_index: int
    confidence: float  # objectness * class probability
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the frame, in [0, 1]

    @property
    def area(self) -> float:
        """Fraction of the frame the box covers."""
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, 0.0) * max(y1 - y0, 0.0)


class YoloDetector:
    def __init__(
        self,
        onnx_path: Path,
        device: Device = "auto",
        threshold: float = DETECTION_THRESHOLD,
        nms_iou: float = NMS_IOU,
    ):
        self.session = create_session(onnx_path, device)
        self.input_name = self.session.get_inputs()[0].name
        self.chunk = images_per_call(self.session)
        self.threshold = threshold
        self.nms_iou = nms_iou

    @property
    def providers(self) -> list[str]:
        return active_providers(self.session)

    def raw(self, images: list[np.ndarray]) -> tuple[np.ndarray, list[Letterbox]]:
        """(n, 2535, 85) rows: [cx, cy, w, h] as fractions of the letterboxed input, objectness,
        80 class probabilities; and each image's letterbox geometry."""
        out, geometries = [], []
        for start in range(0, len(images), self.chunk):
            chunk = images[start : start + self.chunk]
            inputs, boxes = zip(*(yolo_input(image) for image in chunk), strict=True)
            out.append(self.session.run(None, {self.input_name: np.stack(inputs)})[0])
            geometries += boxes
        return np.concatenate(out), geometries

    def detect(self, images: list[np.ndarray]) -> list[list[Detection]]:
        rows, geometries = self.raw(images)
        return [self.decode(r, g) for r, g in zip(rows, geometries, strict=True)]

    def decode(self, rows: np.ndarray, geometry: Letterbox) -> list[Detection]:
        scores = rows[:, 4:5] * rows[:, 5:]
        candidates, classes = np.nonzero(scores >= self.threshold)
        if candidates.size == 0:
            return []
        confidences = scores[candidates, classes]
        cx, cy, w, h = rows[candidates, :4].T
        corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        # Boxes may reach past the frame (an object cut by the border); clip as darknet does.
        boxes = np.clip(geometry.to_frame(corners), 0.0, 1.0)
        detections = []
        for class_index in np.unique(classes):
            members = np.flatnonzero(classes == class_index)
            for keep in non_max_suppression(boxes[members], confidences[members], self.nms_iou):
                i = members[keep]
                detections.append(Detection(int(class_index), float(confidences[i]), _box(boxes[i])))
        return sorted(detections, key=lambda d: -d.confidence)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Indices of the boxes kept, best first: greedy NMS as in darknet and OpenCV."""
    order = np.argsort(-scores, kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    kept: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(int(best))
        x0 = np.maximum(boxes[best, 0], boxes[rest, 0])
        y0 = np.maximum(boxes[best, 1], boxes[rest, 1])
        x1 = np.minimum(boxes[best, 2], boxes[rest, 2])
        y1 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-12)
        order = rest[iou <= iou_threshold]
    return kept
