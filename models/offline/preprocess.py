"""Image preprocessing of the two image models, in Pillow/OpenCV + NumPy (no torch at run time)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from vigil.models.preprocess import center_crop, normalised_chw, resize_shorter_side

IMAGENET_RESIZE = 256
IMAGENET_CROP = 224
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
YOLO_SIZE = 416


def imagenet_input(image: np.ndarray) -> np.ndarray:
    """torchvision's ImageNet eval transform: Resize(256) bilinear, CenterCrop(224), mean/std.

    Returns (3, 224, 224) float32. Pillow's bilinear resize is what torchvision applies to PIL
    images, so the classifier sees exactly what it was evaluated with.
    """
    resized = resize_shorter_side(Image.fromarray(image), IMAGENET_RESIZE, Image.Resampling.BILINEAR)
    crop = center_crop(resized, IMAGENET_CROP)
    return np.ascontiguousarray(normalised_chw(crop, IMAGENET_MEAN, IMAGENET_STD))


@dataclass(frozen=True)
class Letterbox:
    """Where the frame sits inside the square network input, as fractions of that input."""

    left: float
    top: float
    width: float
    height: float

    def to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """Map (n, 4) x0, y0, x1, y1 from network-input fractions to frame fractions."""
        out = boxes.copy()
        out[:, [0, 2]] = (boxes[:, [0, 2]] - self.left) / self.width
        out[:, [1, 3]] = (boxes[:, [1, 3]] - self.top) / self.height
        return out


def yolo_input(image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
    """Letterbox to 416x416 (bilinear, grey 0.5 border) and scale to [0, 1]: (3, 416, 416) float32 RGB.

    Darknet feeds YOLOv3 this way (letterbox_image): keeping the aspect ratio detects more
    than stretching does, e.g. the cup in skimage's coffee photo (0.64 letterboxed; stretched,
    the network calls it a toilet).
    """
    height, width = image.shape[:2]
    scale = min(YOLO_SIZE / width, YOLO_SIZE / height)
    new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    left, top = (YOLO_SIZE - new_width) // 2, (YOLO_SIZE - new_height) // 2
    canvas = np.full((YOLO_SIZE, YOLO_SIZE, 3), 0.5, np.float32)
    resized = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_LINEAR)
    canvas[top : top + new_height, left : left + new_width] = resized.astype(np.float32) / 255.0
    geometry = Letterbox(left / YOLO_SIZE, top / YOLO_SIZE, new_width / YOLO_SIZE, new_height / YOLO_SIZE)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)), geometry
